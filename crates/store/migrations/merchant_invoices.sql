-- Merchant invoices (BTCPay Greenfield-compatible) and the merchant outbox. Shared by both
-- dialects, with `{row_id}` replaced per dialect.

-- An invoice of a store. Its terms are fixed at creation (the rate is locked then); `status`,
-- `additional_status` and `paid_sat` change only by a transition that also appends the events
-- it causes, guarded by `version` so two evaluators never both apply one.
CREATE TABLE merchant_invoices (
    id                TEXT PRIMARY KEY,
    store_id          TEXT NOT NULL REFERENCES merchant_stores (id),
    idempotency_key   TEXT,
    kind              TEXT NOT NULL CHECK (kind IN ('Standard', 'TopUp')),
    amount            TEXT NOT NULL,
    currency          TEXT NOT NULL,
    rate              TEXT,
    due_sat           BIGINT CHECK (due_sat > 0),
    tolerance_bps     BIGINT NOT NULL CHECK (tolerance_bps BETWEEN 0 AND 10000),
    speed_policy      TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('New', 'Processing', 'Expired', 'Invalid', 'Settled')),
    additional_status TEXT NOT NULL,
    paid_sat          BIGINT NOT NULL DEFAULT 0,
    version           BIGINT NOT NULL DEFAULT 0,
    order_id          TEXT,
    metadata          TEXT NOT NULL,
    checkout          TEXT NOT NULL,
    receipt           TEXT NOT NULL,
    search_text       TEXT NOT NULL,
    archived          BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    monitoring_until  BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX merchant_invoices_by_store ON merchant_invoices (store_id, created_at);
CREATE INDEX merchant_invoices_by_order ON merchant_invoices (store_id, order_id);
CREATE UNIQUE INDEX merchant_invoices_idempotency ON merchant_invoices (store_id, idempotency_key);
-- What the watcher's clock moves: expired `New` ones, `Processing` ones.
CREATE INDEX merchant_invoices_by_status ON merchant_invoices (status, expires_at);
-- What the watcher looks at: invoices that may still change by themselves (a settled one
-- moves back if a reorganisation takes its payment's confirmations; `Invalid` and marked ones
-- are final).
CREATE INDEX merchant_invoices_watched ON merchant_invoices (monitoring_until)
    WHERE status IN ('New', 'Processing', 'Expired', 'Settled') AND additional_status <> 'Marked';

-- How an invoice may be paid: `BTC-LN` (a BOLT11 of the bank's node, `key` its payment hash)
-- or `BTC-CHAIN` (a fresh address of the store's wallet, `key` the address). A payment hash or
-- address belongs to one invoice only.
CREATE TABLE merchant_invoice_methods (
    invoice_id  TEXT NOT NULL REFERENCES merchant_invoices (id),
    method      TEXT NOT NULL,
    destination TEXT NOT NULL,
    lookup_key  TEXT NOT NULL UNIQUE,
    PRIMARY KEY (invoice_id, method)
);

-- The payments accounted to an invoice, as last seen on their rail: a Lightning payment (id:
-- its payment hash) or an on-chain output (id: `txid:vout`).
CREATE TABLE merchant_invoice_payments (
    invoice_id  TEXT NOT NULL REFERENCES merchant_invoices (id),
    payment_id  TEXT NOT NULL,
    method      TEXT NOT NULL,
    destination TEXT NOT NULL,
    value_sat   BIGINT NOT NULL CHECK (value_sat > 0),
    fee_sat     BIGINT NOT NULL CHECK (fee_sat >= 0),
    status      TEXT NOT NULL CHECK (status IN ('Processing', 'Settled', 'Invalid')),
    received_at BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, payment_id)
);

-- The merchant outbox: each event (BTCPay's webhook body without the delivery fields) is
-- appended in the same transaction as the change it reports, and stays until the webhook
-- sender has turned it into deliveries (`dispatched_at`).
CREATE TABLE merchant_events (
    seq           {row_id},
    store_id      TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    dispatched_at BIGINT
);
CREATE INDEX merchant_events_undispatched ON merchant_events (seq) WHERE dispatched_at IS NULL;
