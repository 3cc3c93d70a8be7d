-- The Cashu mint: its keysets, the notes it signed, the notes redeemed, and its quotes. Money
-- moves on the ledger (`mint:quotes`, `mint:outstanding`) in the same transaction as these
-- rows change. Shared by both dialects as is.

-- A keyset: its keys are derived from the sealed mint seed at `derivation_index`. Old keysets
-- stay redeemable; only the active one signs.
CREATE TABLE mint_keysets (
    id               TEXT PRIMARY KEY,
    unit             TEXT NOT NULL,
    derivation_index BIGINT NOT NULL,
    max_order        BIGINT NOT NULL CHECK (max_order > 0 AND max_order <= 64),
    input_fee_ppk    BIGINT NOT NULL CHECK (input_fee_ppk >= 0),
    active           BIGINT NOT NULL CHECK (active IN (0, 1)),
    created_at       BIGINT NOT NULL,
    UNIQUE (unit, derivation_index)
);
-- At most one active keyset per unit.
CREATE UNIQUE INDEX mint_keysets_active ON mint_keysets (unit) WHERE active = 1;

-- A note the mint signed, by its blinded message B_: a B_ is signed once (NUT-09 restore
-- answers from here). `origin` is the quote or swap that issued it.
CREATE TABLE mint_signatures (
    blinded    TEXT PRIMARY KEY,
    keyset_id  TEXT NOT NULL REFERENCES mint_keysets (id),
    amount     BIGINT NOT NULL CHECK (amount > 0),
    signature  TEXT NOT NULL,
    dleq_e     TEXT NOT NULL,
    dleq_s     TEXT NOT NULL,
    origin     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX mint_signatures_by_origin ON mint_signatures (origin);

-- A note presented to the mint, by Y = hash_to_curve(secret): the primary key is what makes
-- a note spendable once. `pending` while a melt pays with it; `spent` for good.
CREATE TABLE mint_proofs (
    y          TEXT PRIMARY KEY,
    keyset_id  TEXT NOT NULL REFERENCES mint_keysets (id),
    amount     BIGINT NOT NULL CHECK (amount > 0),
    secret     TEXT NOT NULL,
    signature  TEXT NOT NULL,
    witness    TEXT,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'spent')),
    origin     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX mint_proofs_by_origin ON mint_proofs (origin);

-- Mint quotes (NUT-04/23): paid by a Lightning invoice or from a Flash wallet, then issued
-- once. A quote locked to a key (NUT-20) is issued only against that key's signature.
CREATE TABLE mint_quotes (
    id           TEXT PRIMARY KEY,
    unit         TEXT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    request      TEXT NOT NULL,
    payment_hash TEXT UNIQUE,
    pubkey       TEXT,
    state        TEXT NOT NULL CHECK (state IN ('unpaid', 'paid', 'issued')),
    expires_at   BIGINT NOT NULL,
    paid_at      BIGINT,
    issued_at    BIGINT,
    created_at   BIGINT NOT NULL
);

-- Melt quotes (NUT-05/23): pay a BOLT11 invoice with notes. `pending` while the payment is in
-- flight; a payment hash is paid by at most one live quote.
CREATE TABLE melt_quotes (
    id           TEXT PRIMARY KEY,
    unit         TEXT NOT NULL,
    request      TEXT NOT NULL,
    payment_hash TEXT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    fee_reserve  BIGINT NOT NULL CHECK (fee_reserve >= 0),
    internal     BIGINT NOT NULL CHECK (internal IN (0, 1)),
    state        TEXT NOT NULL CHECK (state IN ('unpaid', 'pending', 'paid')),
    -- Set when the payment starts: the blank outputs for change (NUT-08, JSON), the inputs'
    -- total and the input fee they paid.
    change_outputs TEXT,
    inputs_total BIGINT,
    input_fee    BIGINT,
    -- When the payment started (reconciliation leaves younger ones to the node paying them).
    pending_at   BIGINT,
    fee_paid     BIGINT,
    preimage     TEXT,
    expires_at   BIGINT NOT NULL,
    paid_at      BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX melt_quotes_live_hash ON melt_quotes (payment_hash) WHERE state <> 'unpaid';
CREATE INDEX melt_quotes_pending ON melt_quotes (created_at) WHERE state = 'pending';
