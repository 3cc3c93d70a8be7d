-- On-chain: the hot wallet's recorded state, sealed secrets, the deposit address index and
-- deposits. Shared by both dialects as is.

-- Secrets sealed with the key-encryption key (flash_core::secrets), one per purpose. The first
-- node to start writes one; every node reads the same.
CREATE TABLE sealed_secrets (
    purpose    TEXT PRIMARY KEY,
    sealed     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A wallet adapter's state, as the ordered list of its changes.
CREATE TABLE wallet_state (
    wallet  TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    change  TEXT NOT NULL,
    PRIMARY KEY (wallet, seq)
);

-- The next derivation index of the hot wallet's deposit addresses.
CREATE TABLE onchain_address_counter (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    next_index BIGINT NOT NULL
);
INSERT INTO onchain_address_counter (id, next_index) VALUES (1, 0);

-- The address index: every deposit address and the wallet it pays, so each received output
-- is attributed with one key lookup.
CREATE TABLE onchain_addresses (
    address          TEXT PRIMARY KEY,
    wallet_id        TEXT NOT NULL REFERENCES wallets (id),
    derivation_index BIGINT NOT NULL UNIQUE,
    created_at       BIGINT NOT NULL
);
CREATE INDEX onchain_addresses_by_wallet ON onchain_addresses (wallet_id, derivation_index);

-- Outputs received on deposit addresses. Credited once: the crediting journal's idempotency
-- key is ('onchain-deposit', outpoint) and the status moves pending -> credited only with it.
-- A pending deposit that leaves the chain and the mempool is dropped; a credited one that does
-- is put under review (never a silent balance change).
CREATE TABLE onchain_deposits (
    outpoint         TEXT PRIMARY KEY,
    txid             TEXT NOT NULL,
    vout             BIGINT NOT NULL,
    address          TEXT NOT NULL REFERENCES onchain_addresses (address),
    wallet_id        TEXT NOT NULL REFERENCES wallets (id),
    amount_sat       BIGINT NOT NULL CHECK (amount_sat > 0),
    fee_sat          BIGINT NOT NULL DEFAULT 0 CHECK (fee_sat >= 0),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'credited', 'dropped', 'review')),
    confirmed_height BIGINT,
    seen_at          BIGINT NOT NULL,
    credited_at      BIGINT,
    review_reason    TEXT,
    review_hold_id   TEXT REFERENCES holds (id),
    updated_at       BIGINT NOT NULL
);
CREATE INDEX onchain_deposits_by_wallet ON onchain_deposits (wallet_id, status);
CREATE INDEX onchain_deposits_by_address ON onchain_deposits (address);
CREATE INDEX onchain_deposits_recent ON onchain_deposits (confirmed_height);

-- How far the deposit watcher has processed the chain (its tip after the last full pass).
CREATE TABLE onchain_cursor (
    name   TEXT PRIMARY KEY,
    height BIGINT NOT NULL
);

-- Payout transactions: one pays many payouts (a batch). Recorded, signed, before it is
-- broadcast; a replacement (RBF fee bump) is a new row that `replaces` the one it bumps.
CREATE TABLE onchain_batches (
    id               TEXT PRIMARY KEY,
    txid             TEXT NOT NULL UNIQUE,
    tx_hex           TEXT NOT NULL,
    fee_sat          BIGINT NOT NULL CHECK (fee_sat >= 0),
    vsize            BIGINT NOT NULL CHECK (vsize > 0),
    fee_rate         BIGINT NOT NULL CHECK (fee_rate > 0),
    status           TEXT NOT NULL CHECK (status IN ('signed', 'broadcast', 'confirmed', 'replaced', 'failed')),
    replaces         TEXT REFERENCES onchain_batches (id),
    -- The first batch of the payouts: a transaction and its replacements share it.
    group_id         TEXT NOT NULL,
    broadcast_height BIGINT,
    confirmed_height BIGINT,
    failure          TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX onchain_batches_open ON onchain_batches (status, created_at);
CREATE INDEX onchain_batches_by_group ON onchain_batches (group_id);
CREATE INDEX onchain_batches_by_replaced ON onchain_batches (replaces);

-- A payout: a saga whose row is written with its hold (same id). Queued until a batch takes it;
-- sent (the hold settled with its share of the fee) once that batch is broadcast.
CREATE TABLE onchain_payouts (
    id               TEXT PRIMARY KEY REFERENCES holds (id),
    wallet_id        TEXT NOT NULL REFERENCES wallets (id),
    address          TEXT NOT NULL,
    amount_sat       BIGINT NOT NULL CHECK (amount_sat > 0),
    fee_reserved_sat BIGINT NOT NULL CHECK (fee_reserved_sat >= 0),
    speed            TEXT NOT NULL CHECK (speed IN ('batch', 'immediate')),
    status           TEXT NOT NULL CHECK (status IN ('queued', 'batched', 'sent', 'failed')),
    batch_id         TEXT REFERENCES onchain_batches (id),
    vout             BIGINT,
    fee_sat          BIGINT,
    failure          TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX onchain_payouts_by_status ON onchain_payouts (status, created_at);
CREATE INDEX onchain_payouts_by_batch ON onchain_payouts (batch_id);
