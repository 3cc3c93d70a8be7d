-- Lightning: invoices issued to Flash wallets, outgoing payments, and how far the node's
-- settlements have been read. Shared by both dialects as is.

-- A rail's reference on the journals it posts (`ln:<payment hash>`), shown in history.
ALTER TABLE journals ADD COLUMN reference TEXT;

-- An invoice is credited once: its crediting journal's idempotency key is
-- ('ln-invoice', payment_hash), whether a Flash wallet or the network paid it.
CREATE TABLE ln_invoices (
    payment_hash     TEXT PRIMARY KEY,
    wallet_id        TEXT NOT NULL REFERENCES wallets (id),
    payment_request  TEXT NOT NULL,
    payment_secret   TEXT NOT NULL,
    amount_sat       BIGINT CHECK (amount_sat > 0),
    memo             TEXT,
    description_hash TEXT,
    origin           TEXT NOT NULL,
    expires_at       BIGINT NOT NULL,
    paid_sat         BIGINT,
    paid_via         TEXT CHECK (paid_via IN ('lightning', 'intraledger')),
    paid_at          BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX ln_invoices_by_wallet ON ln_invoices (wallet_id, created_at);

-- An outgoing payment: a saga whose row is written with its hold (same id) and finished by
-- the journal that settles or reverses the hold.
CREATE TABLE ln_payments (
    id              TEXT PRIMARY KEY REFERENCES holds (id),
    payment_hash    TEXT NOT NULL,
    wallet_id       TEXT NOT NULL REFERENCES wallets (id),
    payment_request TEXT NOT NULL,
    amount_sat      BIGINT NOT NULL CHECK (amount_sat > 0),
    max_fee_sat     BIGINT NOT NULL CHECK (max_fee_sat >= 0),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    fee_sat         BIGINT,
    preimage        TEXT,
    failure         TEXT,
    -- What started it, when not the wallet's owner directly: `lnurlw:<link id>`.
    origin          TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- At most one payment per hash is in flight or done; a failed one may be tried again.
CREATE UNIQUE INDEX ln_payments_live_hash ON ln_payments (payment_hash) WHERE status <> 'failed';
CREATE INDEX ln_payments_pending ON ln_payments (created_at) WHERE status = 'pending';

-- The last settle index of the node whose settlements have all been credited.
CREATE TABLE ln_settle_cursor (
    node         TEXT PRIMARY KEY,
    settle_index BIGINT NOT NULL
);

-- LNURL-withdraw links (LUD-03): whoever holds the link's secret may withdraw from the wallet,
-- within the amounts, uses and time the owner set. Only the secret's hash is kept. A use is
-- taken in the transaction that holds the payment's funds, and given back if it fails.
CREATE TABLE lnurl_withdraw_links (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    wallet_id   TEXT NOT NULL REFERENCES wallets (id),
    title       TEXT NOT NULL,
    min_sat     BIGINT NOT NULL CHECK (min_sat > 0),
    max_sat     BIGINT NOT NULL CHECK (max_sat >= min_sat),
    uses_total  BIGINT NOT NULL CHECK (uses_total > 0),
    uses_left   BIGINT NOT NULL CHECK (uses_left >= 0 AND uses_left <= uses_total),
    expires_at  BIGINT,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX lnurl_withdraw_links_by_account ON lnurl_withdraw_links (account_id, created_at);

-- What the liquidity manager did: alerts when the node's liquidity left its policy, the
-- channels it opened (the amounts count against its daily budget), and invoices issued through
-- just-in-time channels.
CREATE TABLE ln_liquidity_actions (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('alert', 'channel_open', 'jit_invoice')),
    peer       TEXT,
    amount_sat BIGINT NOT NULL DEFAULT 0,
    outcome    TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
    detail     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ln_liquidity_actions_by_time ON ln_liquidity_actions (created_at);
