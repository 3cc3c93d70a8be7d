-- Flash Cards (Bolt Cards: NTAG 424 DNA). A card is known by its card id (an AES-CMAC of the
-- issuer key and the card's UID, hex), never by its UID; its keys are derived from the issuer
-- key, the UID and `key_version`, so none is stored. A card spends from its owner's wallet.
CREATE TABLE boltcards (
    id                  TEXT PRIMARY KEY,
    card_key_id         TEXT,
    account_id          TEXT NOT NULL REFERENCES accounts (id),
    wallet_id           TEXT NOT NULL REFERENCES wallets (id),
    name                TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('programming', 'active', 'disabled', 'wiped')),
    key_version         BIGINT NOT NULL CHECK (key_version >= 0),
    counter             BIGINT NOT NULL DEFAULT 0 CHECK (counter >= 0),
    tap_limit_sat       BIGINT NOT NULL CHECK (tap_limit_sat > 0),
    day_limit_sat       BIGINT NOT NULL CHECK (day_limit_sat >= tap_limit_sat),
    -- A PIN asked for withdrawals of `pin_limit_sat` or more (LUD-21's `pinLimit`); wrong
    -- PINs are counted, and the card is disabled at the third.
    pin_hash            TEXT,
    pin_limit_sat       BIGINT CHECK (pin_limit_sat > 0),
    pin_failures        BIGINT NOT NULL DEFAULT 0,
    -- The public id of the card's top-up link (LNURL-pay into its wallet).
    pay_id              TEXT NOT NULL UNIQUE,
    program_secret_hash TEXT UNIQUE,
    program_expires_at  BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX boltcards_by_account ON boltcards (account_id, created_at);
-- One card per physical card that is not wiped.
CREATE UNIQUE INDEX boltcards_live_key_id ON boltcards (card_key_id) WHERE state <> 'wiped';

-- A tap whose SUN message checked: its counter was accepted (strictly above the card's last,
-- in the same transaction) and its `k1` (stored as a hash, the id) may be used once, before
-- `expires_at`, to withdraw up to `max_sat`.
CREATE TABLE boltcard_taps (
    id         TEXT PRIMARY KEY,
    card_id    TEXT NOT NULL REFERENCES boltcards (id),
    counter    BIGINT NOT NULL,
    max_sat    BIGINT NOT NULL CHECK (max_sat >= 0),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    UNIQUE (card_id, counter)
);

-- What a tap spent, written with the payment's money (and deleted if the payment fails): a
-- card's rolling 24-hour limit is checked against these in the same transaction.
CREATE TABLE boltcard_spends (
    tap_id     TEXT PRIMARY KEY REFERENCES boltcard_taps (id),
    card_id    TEXT NOT NULL REFERENCES boltcards (id),
    amount_sat BIGINT NOT NULL CHECK (amount_sat > 0),
    spent_at   BIGINT NOT NULL
);
CREATE INDEX boltcard_spends_window ON boltcard_spends (card_id, spent_at);
