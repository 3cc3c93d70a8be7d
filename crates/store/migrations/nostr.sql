-- The NOSTR relay: the events it keeps, their indexed tags, what authors deleted, and the
-- pubkeys Flash users set (NIP-05, the relay's "users only" write policy). Shared by both
-- dialects as is.

-- An event, as the relay serves it (`raw`, canonical JSON). `d_tag` is set for replaceable
-- ('') and addressable (the `d` value) kinds; the unique index below keeps one version of
-- each. `search` is the lower-cased content of searchable kinds (NIP-50).
CREATE TABLE nostr_events (
    id          TEXT PRIMARY KEY,
    pubkey      TEXT NOT NULL,
    kind        BIGINT NOT NULL CHECK (kind >= 0 AND kind <= 65535),
    created_at  BIGINT NOT NULL,
    d_tag       TEXT,
    expires_at  BIGINT,
    search      TEXT,
    raw         TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX nostr_events_by_time ON nostr_events (created_at);
CREATE INDEX nostr_events_by_author ON nostr_events (pubkey, kind, created_at);
CREATE INDEX nostr_events_by_kind ON nostr_events (kind, created_at);
CREATE UNIQUE INDEX nostr_events_replaceable ON nostr_events (pubkey, kind, d_tag) WHERE d_tag IS NOT NULL;
CREATE INDEX nostr_events_expiring ON nostr_events (expires_at) WHERE expires_at IS NOT NULL;

-- The single-letter tags of an event (name, first value): what `#x` filters look up.
CREATE TABLE nostr_tags (
    event_id   TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, name, value)
);
CREATE INDEX nostr_tags_by_value ON nostr_tags (name, value, created_at);

-- What an author deleted (NIP-09): an event id, or an address `kind:pubkey:d` up to `until`.
-- Kept so that a deleted event is not accepted again.
CREATE TABLE nostr_deletions (
    target TEXT NOT NULL,
    pubkey TEXT NOT NULL,
    until  BIGINT NOT NULL,
    PRIMARY KEY (target, pubkey)
);

-- The NOSTR pubkey a Flash user set (`userUpdateNpub`): NIP-05 names, zaps, write policy.
CREATE TABLE nostr_user_keys (
    user_id    TEXT PRIMARY KEY REFERENCES users (id),
    pubkey     TEXT NOT NULL UNIQUE,
    updated_at BIGINT NOT NULL
);

-- Nostr Wallet Connect (NIP-47): a connection lets the holder of `client_pubkey`'s secret use
-- one wallet, with the methods listed, until it expires or is revoked. `spent_sats` is what
-- the current budget period (from `period_start`) has taken; a payment reserves its amount
-- and fee cap here before it leaves (the conditional update is the budget check).
CREATE TABLE nwc_connections (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    wallet_id     TEXT NOT NULL,
    client_pubkey TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    methods       TEXT NOT NULL,
    budget_sats   BIGINT CHECK (budget_sats IS NULL OR budget_sats >= 0),
    budget_period TEXT NOT NULL CHECK (budget_period IN ('daily', 'weekly', 'monthly', 'yearly', 'never')),
    period_start  BIGINT NOT NULL,
    spent_sats    BIGINT NOT NULL CHECK (spent_sats >= 0),
    expires_at    BIGINT,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX nwc_connections_by_account ON nwc_connections (account_id, created_at);
CREATE INDEX nwc_connections_by_wallet ON nwc_connections (wallet_id);

-- A wallet-connect request, by its event id: answered once. A payment's budget reservation
-- is released (failed) or kept (paid) exactly once, by `state`.
CREATE TABLE nwc_requests (
    event_id      TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES nwc_connections (id),
    method        TEXT NOT NULL,
    reserved_sats BIGINT NOT NULL CHECK (reserved_sats >= 0),
    period_start  BIGINT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('reserved', 'spent', 'released')),
    response      TEXT,
    created_at    BIGINT NOT NULL
);

-- Zaps (NIP-57): the zap request an invoice of a Lightning address commits to, by the
-- invoice's payment hash; `paid_at` is set once, when its receipt is published.
CREATE TABLE nostr_zaps (
    payment_hash TEXT PRIMARY KEY,
    request      TEXT NOT NULL,
    bolt11       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    paid_at      BIGINT
);

-- NIP-29 relay-based groups: settings, members with their roles (space-separated; empty for
-- a plain member), and invite codes. Events sent to a group are ordinary events with an `h` tag.
CREATE TABLE nostr_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    about      TEXT NOT NULL,
    picture    TEXT NOT NULL,
    private    BIGINT NOT NULL CHECK (private IN (0, 1)),
    closed     BIGINT NOT NULL CHECK (closed IN (0, 1)),
    restricted BIGINT NOT NULL CHECK (restricted IN (0, 1)),
    created_at BIGINT NOT NULL
);
CREATE TABLE nostr_group_members (
    group_id TEXT NOT NULL REFERENCES nostr_groups (id),
    pubkey   TEXT NOT NULL,
    roles    TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, pubkey)
);
CREATE TABLE nostr_group_invites (
    group_id   TEXT NOT NULL REFERENCES nostr_groups (id),
    code       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, code)
);
