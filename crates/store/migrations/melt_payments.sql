-- A melt over Lightning is paid through the bank's Lightning saga: its payment is an
-- `ln_payments` row like a wallet's (its hold taken from `mint:outstanding`, `wallet_id` NULL,
-- origin `melt:<quote>`), so the partial unique index `ln_payments_live_hash` lets one payment
-- per hash be in flight or done, whoever pays. The quote points at its current payment.
-- Shared by both dialects as is; each dialect's V9 first lets `ln_payments.wallet_id` be NULL.
ALTER TABLE melt_quotes ADD COLUMN payment_id TEXT REFERENCES ln_payments (id);
