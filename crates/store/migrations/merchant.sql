-- Merchant services (BTCPay Greenfield-compatible). Shared by both dialects as is.

-- A store: owned by a Flash account, settled into one of its wallets. `settings` is the JSON
-- of the store's Greenfield settings (expiry, speed policy, tolerance, checkout options) as the
-- merchant crate reads and writes them; only what is queried has a column of its own.
CREATE TABLE merchant_stores (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    wallet_id        TEXT NOT NULL REFERENCES wallets (id),
    name             TEXT NOT NULL,
    default_currency TEXT NOT NULL,
    settings         TEXT NOT NULL,
    archived_at      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    deleted_at       BIGINT
);
CREATE INDEX merchant_stores_by_account ON merchant_stores (account_id, created_at);

-- Greenfield API keys: only the SHA-256 of the key is kept. `permissions` are BTCPay's
-- permission strings (`btcpay.store.cancreateinvoice:<storeId>`), space-separated.
CREATE TABLE merchant_api_keys (
    key_hash    TEXT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    label       TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX merchant_api_keys_by_account ON merchant_api_keys (account_id, created_at);
