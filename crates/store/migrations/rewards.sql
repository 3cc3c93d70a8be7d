-- Rewards programs: money an account sets aside in a budget wallet (funded from
-- `source_wallet` in the transaction that inserts the row) and gives to customers, one grant
-- per purchase. `granted_sat` counts every grant, paid or still to claim, and may never pass
-- `budget_sat`: the grant's update of this row is the guard (and the lock that decides a
-- program's grants one at a time). A program ends when it is granted out, at `ends_at`, or by
-- its owner; what its budget still holds beyond the claims it owes then goes back.
--
-- A purchase program rewards the settled invoices of `store_id`: `rate_bps` of the purchase
-- (cashback) or `fixed_sat` (a fixed reward; only for purchases paid with a Flash Card when
-- `card_only`), at least `min_reward_sat` and at most `max_reward_sat`, for purchases of
-- `min_purchase_sat` or more. A referral program (no store) rewards an invitee and its inviter
-- once, when the invitee's account reaches `referral_level`. `customer_cap_sat` and
-- `cooldown_ms` bound what one customer gets (event mode).
CREATE TABLE reward_programs (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    store_id         TEXT REFERENCES merchant_stores (id),
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('purchase', 'referral')),
    source_wallet    TEXT NOT NULL REFERENCES wallets (id),
    budget_wallet    TEXT NOT NULL UNIQUE REFERENCES wallets (id),
    budget_sat       BIGINT NOT NULL CHECK (budget_sat > 0),
    granted_sat      BIGINT NOT NULL DEFAULT 0 CHECK (granted_sat >= 0 AND granted_sat <= budget_sat),
    rate_bps         BIGINT CHECK (rate_bps > 0 AND rate_bps <= 10000),
    fixed_sat        BIGINT CHECK (fixed_sat > 0),
    card_only        BIGINT NOT NULL DEFAULT 0 CHECK (card_only IN (0, 1)),
    min_purchase_sat BIGINT NOT NULL DEFAULT 0 CHECK (min_purchase_sat >= 0),
    min_reward_sat   BIGINT NOT NULL DEFAULT 1 CHECK (min_reward_sat > 0),
    max_reward_sat   BIGINT CHECK (max_reward_sat > 0),
    customer_cap_sat BIGINT CHECK (customer_cap_sat > 0),
    cooldown_ms      BIGINT CHECK (cooldown_ms > 0),
    referral_level   BIGINT,
    inviter_sat      BIGINT CHECK (inviter_sat >= 0),
    claim_ms         BIGINT NOT NULL CHECK (claim_ms > 0),
    starts_at        BIGINT NOT NULL,
    ends_at          BIGINT,
    state            TEXT NOT NULL CHECK (state IN ('active', 'ended')),
    returned_sat     BIGINT NOT NULL DEFAULT 0 CHECK (returned_sat >= 0),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CHECK ((rate_bps IS NULL) <> (fixed_sat IS NULL)),
    CHECK ((kind = 'referral') = (store_id IS NULL))
);
CREATE INDEX reward_programs_by_store ON reward_programs (store_id, state);
CREATE INDEX reward_programs_by_account ON reward_programs (account_id, created_at);

-- One grant per program and purchase (`purchase`: an invoice id, or `referral:<account>` and
-- `inviter:<account>`), whatever retries or races there are. A grant is paid into the
-- customer's wallet by the journal that inserts it (`wallet_id`); or it is a payout of the
-- store from the program's budget (`payout_id`: to a Lightning address, inserted with it); or it
-- is owed as a claim link (LNURL-withdraw by the bearer of `claim_id`) until `expires_at`, and
-- claiming it makes the payout. `customer` is `account:<id>`, `card:<id>` or `address:<ln
-- address>` when known (caps and cooldowns count by it).
CREATE TABLE reward_grants (
    id          TEXT PRIMARY KEY,
    program_id  TEXT NOT NULL REFERENCES reward_programs (id),
    purchase    TEXT NOT NULL,
    customer    TEXT,
    amount_sat  BIGINT NOT NULL CHECK (amount_sat > 0),
    wallet_id   TEXT REFERENCES wallets (id),
    claim_id    TEXT UNIQUE,
    expires_at  BIGINT,
    payout_id   TEXT REFERENCES merchant_payouts (id),
    created_at  BIGINT NOT NULL,
    UNIQUE (program_id, purchase),
    CHECK (wallet_id IS NULL OR (claim_id IS NULL AND payout_id IS NULL))
);
CREATE INDEX reward_grants_by_customer ON reward_grants (program_id, customer, created_at);

-- Who invited an account and when (set once, by the invitee), for referral programs.
ALTER TABLE accounts ADD COLUMN referred_by TEXT REFERENCES accounts (id);
ALTER TABLE accounts ADD COLUMN referred_at BIGINT;
CREATE INDEX accounts_referred ON accounts (referred_at) WHERE referred_by IS NOT NULL;
