-- Pull-payment Flash Cards (BTCPay's `POST /api/v1/pull-payments/{id}/boltcards`): a card that
-- spends from a pull payment rather than from a wallet. Its `account_id` is the pull payment's
-- store's owner and its `wallet_id` the pull payment's budget wallet (never paid from directly:
-- a withdrawal is a payout claim of the pull payment, paid by the payout saga).
ALTER TABLE boltcards ADD COLUMN pull_payment_id TEXT REFERENCES pull_payments (id);
CREATE INDEX boltcards_by_pull_payment ON boltcards (pull_payment_id);
