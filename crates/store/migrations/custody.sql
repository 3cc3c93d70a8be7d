-- Moves between the hot wallet and cold storage. Hot → cold is signed by the hot wallet and
-- broadcast at once; cold → hot waits as a PSBT for the cosigners' signatures. A broadcast
-- sweep is followed until a block confirms it.
CREATE TABLE onchain_sweeps (
    id               TEXT PRIMARY KEY,
    direction        TEXT NOT NULL CHECK (direction IN ('to_cold', 'to_hot')),
    address          TEXT NOT NULL,
    amount_sat       BIGINT NOT NULL CHECK (amount_sat > 0),
    fee_sat          BIGINT NOT NULL CHECK (fee_sat >= 0),
    psbt             TEXT,
    txid             TEXT,
    tx_hex           TEXT,
    status           TEXT NOT NULL
                     CHECK (status IN ('awaiting_signatures', 'signed', 'broadcast', 'confirmed', 'failed')),
    confirmed_height BIGINT,
    failure          TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX onchain_sweeps_by_status ON onchain_sweeps (status, created_at);

-- Leases: which flashd node runs a singleton worker (the on-chain wallet's spending side). The
-- holder renews its lease; another node takes it over only once it has expired.
CREATE TABLE worker_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
