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
