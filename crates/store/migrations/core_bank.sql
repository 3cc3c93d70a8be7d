-- Core bank schema, shared by both dialects: each dialect's V1__core_bank.rs fills in the two
-- placeholders in braces (an auto-numbered primary key; SQLite keeps entries in primary-key
-- order, WITHOUT ROWID). Times are Unix milliseconds; flags are integers; amounts are integer
-- minor units.

CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    phone        TEXT UNIQUE,
    email        TEXT UNIQUE,
    device_id    TEXT UNIQUE,
    username     TEXT,
    username_key TEXT UNIQUE,
    created_at   BIGINT NOT NULL
);

CREATE TABLE accounts (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL UNIQUE REFERENCES users (id),
    level             BIGINT NOT NULL CHECK (level BETWEEN 0 AND 3),
    status            TEXT NOT NULL CHECK (status IN ('active', 'locked', 'closed')),
    default_wallet_id TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);

-- Every balance lives here: user wallets (never negative) and system accounts.
CREATE TABLE ledger_accounts (
    id         TEXT PRIMARY KEY,
    currency   TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('wallet', 'system')),
    balance    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    CHECK (kind = 'system' OR balance >= 0)
);

CREATE TABLE wallets (
    id         TEXT PRIMARY KEY REFERENCES ledger_accounts (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    currency   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX wallets_by_account ON wallets (account_id);

CREATE TABLE journals (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    memo           TEXT,
    idem_scope     TEXT NOT NULL,
    idem_key       TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    debit_account  TEXT NOT NULL,
    credit_account TEXT NOT NULL,
    amount         BIGINT NOT NULL,
    fee            BIGINT NOT NULL,
    currency       TEXT NOT NULL,
    hold_id        TEXT,
    created_at     BIGINT NOT NULL,
    -- Key first: time-ordered keys then share index pages (scope still makes keys per account).
    UNIQUE (idem_key, idem_scope)
);

-- One leg per account per journal. The primary key orders a ledger account's entries by
-- journal id (UUIDv7, so by time): it is both the history index and the history cursor.
CREATE TABLE entries (
    account_id TEXT NOT NULL REFERENCES ledger_accounts (id),
    journal_id TEXT NOT NULL REFERENCES journals (id),
    currency   TEXT NOT NULL,
    amount     BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, journal_id)
)
{clustered};
CREATE INDEX entries_by_journal ON entries (journal_id);

CREATE TABLE holds (
    id              TEXT PRIMARY KEY,
    wallet_id       TEXT NOT NULL REFERENCES ledger_accounts (id),
    pending_account TEXT NOT NULL REFERENCES ledger_accounts (id),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'settled', 'reversed')),
    open_journal_id TEXT NOT NULL REFERENCES journals (id),
    created_at      BIGINT NOT NULL
);

-- A hold closes exactly once: the primary key is the guarantee.
CREATE TABLE hold_closures (
    hold_id    TEXT PRIMARY KEY REFERENCES holds (id),
    outcome    TEXT NOT NULL CHECK (outcome IN ('settled', 'reversed')),
    journal_id TEXT NOT NULL UNIQUE REFERENCES journals (id),
    closed_at  BIGINT NOT NULL
);

-- Rolling-window limit usage in one-minute buckets.
CREATE TABLE limit_usage (
    subject TEXT NOT NULL,
    kind    TEXT NOT NULL,
    minute  BIGINT NOT NULL,
    amount  BIGINT NOT NULL,
    PRIMARY KEY (subject, kind, minute)
);

CREATE TABLE contacts (
    account_id         TEXT NOT NULL REFERENCES accounts (id),
    contact_account_id TEXT NOT NULL REFERENCES accounts (id),
    alias              TEXT,
    transactions_count BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (account_id, contact_account_id)
);

CREATE TABLE login_codes (
    identifier TEXT PRIMARY KEY,
    code_hash  TEXT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE email_registrations (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    ip_allowlist TEXT NOT NULL DEFAULT '',
    expires_at   BIGINT,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_keys_by_account ON api_keys (account_id);

CREATE TABLE admin_keys (
    key_hash   TEXT PRIMARY KEY,
    label      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Append-only record of operator actions.
CREATE TABLE audit_log (
    id         {row_id},
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    detail     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
