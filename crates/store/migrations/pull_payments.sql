-- Budget wallets: money set aside on the ledger for a purpose (a pull payment's budget, later a
-- rewards program's). A budget is a wallet ledger account (never negative) owned by the account
-- that funded it, but not one of its wallets: never listed, never a payee, spent only by the
-- payouts of what it funds.
ALTER TABLE wallets ADD COLUMN purpose TEXT NOT NULL DEFAULT 'user' CHECK (purpose IN ('user', 'budget'));

-- A store's pull payment (BTCPay Greenfield): its budget sits in `budget_wallet`, funded from
-- `source_wallet` in the transaction that inserts this row, and goes back there when it closes.
-- `amount`/`currency` are as given; `budget_sat` is the amount in satoshis (a fiat amount at
-- `rate`, fixed at creation). `data` holds the Greenfield fields shown as given (name,
-- description, BOLT11Expiration, payoutMethods).
CREATE TABLE pull_payments (
    id            TEXT PRIMARY KEY,
    store_id      TEXT NOT NULL REFERENCES merchant_stores (id),
    source_wallet TEXT NOT NULL REFERENCES wallets (id),
    budget_wallet TEXT NOT NULL UNIQUE REFERENCES wallets (id),
    currency      TEXT NOT NULL,
    amount        TEXT NOT NULL,
    rate          TEXT,
    budget_sat    BIGINT NOT NULL CHECK (budget_sat > 0),
    auto_approve  BIGINT NOT NULL CHECK (auto_approve IN (0, 1)),
    starts_at     BIGINT NOT NULL,
    expires_at    BIGINT,
    archived      BIGINT NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
    -- What went back to `source_wallet` when it closed (and what it was swept of since).
    returned_sat  BIGINT NOT NULL DEFAULT 0 CHECK (returned_sat >= 0),
    data          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX pull_payments_by_store ON pull_payments (store_id, created_at);

-- A payout: a claim on a pull payment (or a store's own payout, paid from `wallet_id`, the
-- store's wallet, when `pull_payment_id` is null). States as BTCPay's; a payout is paid by
-- attempts: attempt n's money movement (under the idempotency key `payout:<id>:<n>`) takes the
-- payout from AwaitingPayment to InProgress in its own transaction, and a failed attempt gives it
-- back. `proof` is the Greenfield payment proof (JSON), `data` its other fields (metadata, the
-- destination as given, the original amount).
CREATE TABLE merchant_payouts (
    id              TEXT PRIMARY KEY,
    store_id        TEXT NOT NULL REFERENCES merchant_stores (id),
    pull_payment_id TEXT REFERENCES pull_payments (id),
    wallet_id       TEXT NOT NULL REFERENCES wallets (id),
    destination     TEXT NOT NULL,
    method          TEXT NOT NULL CHECK (method IN ('BTC-CHAIN', 'BTC-LN')),
    amount_sat      BIGINT NOT NULL CHECK (amount_sat > 0),
    state           TEXT NOT NULL CHECK (state IN ('AwaitingApproval', 'AwaitingPayment', 'InProgress',
                                                   'Completed', 'Cancelled')),
    revision        BIGINT NOT NULL DEFAULT 0,
    attempt         BIGINT NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    retry_at        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    proof           TEXT,
    data            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX merchant_payouts_by_pull_payment ON merchant_payouts (pull_payment_id, created_at);
CREATE INDEX merchant_payouts_by_store ON merchant_payouts (store_id, created_at);
CREATE INDEX merchant_payouts_open ON merchant_payouts (state, retry_at);
