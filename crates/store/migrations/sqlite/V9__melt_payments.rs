/// Melts paid through the bank's Lightning saga (sqlite): `ln_payments.wallet_id` may be NULL
/// for a payment the mint makes (SQLite changes a column's constraints only by rebuilding the
/// table, rows and indexes kept; nothing references it yet), then the shared text in
/// `migrations/melt_payments.sql`.
pub fn migration() -> String {
    let rebuild = "
CREATE TABLE ln_payments_v9 (
    id              TEXT PRIMARY KEY REFERENCES holds (id),
    payment_hash    TEXT NOT NULL,
    wallet_id       TEXT REFERENCES wallets (id),
    payment_request TEXT NOT NULL,
    amount_sat      BIGINT NOT NULL CHECK (amount_sat > 0),
    max_fee_sat     BIGINT NOT NULL CHECK (max_fee_sat >= 0),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    fee_sat         BIGINT,
    preimage        TEXT,
    failure         TEXT,
    origin          TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CONSTRAINT ln_payments_payer CHECK (wallet_id IS NOT NULL OR origin LIKE 'melt:%')
);
INSERT INTO ln_payments_v9 (id, payment_hash, wallet_id, payment_request, amount_sat, max_fee_sat, status,
    fee_sat, preimage, failure, origin, created_at, updated_at)
SELECT id, payment_hash, wallet_id, payment_request, amount_sat, max_fee_sat, status,
    fee_sat, preimage, failure, origin, created_at, updated_at FROM ln_payments;
DROP TABLE ln_payments;
ALTER TABLE ln_payments_v9 RENAME TO ln_payments;
CREATE UNIQUE INDEX ln_payments_live_hash ON ln_payments (payment_hash) WHERE status <> 'failed';
CREATE INDEX ln_payments_pending ON ln_payments (created_at) WHERE status = 'pending';
";
    format!("{rebuild}\n{}", include_str!("../migrations/melt_payments.sql"))
}
