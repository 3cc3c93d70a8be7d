-- Merchant webhooks (BTCPay Greenfield-compatible) and their deliveries. One text for both
-- dialects.

-- A store's webhook: where to POST the store's events, signed with `secret` (kept in clear:
-- every delivery signs with it). `specific_events` is a space-separated list of BTCPay event
-- types, read only when `everything` is 0.
CREATE TABLE merchant_webhooks (
    id                   TEXT PRIMARY KEY,
    store_id             TEXT NOT NULL REFERENCES merchant_stores (id),
    url                  TEXT NOT NULL,
    secret               TEXT NOT NULL,
    enabled              BIGINT NOT NULL,
    automatic_redelivery BIGINT NOT NULL,
    everything           BIGINT NOT NULL,
    specific_events      TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX merchant_webhooks_by_store ON merchant_webhooks (store_id, created_at);

-- One delivery of one event to one webhook: the exact body sent (and signed), and the state of
-- its attempts. `event_seq` is the outbox event a first delivery came from (one per webhook and
-- event); a redelivery has none. `next_attempt_at` is when the sender tries it next, NULL once
-- it succeeded or gave up; `status` is NULL until the first attempt.
CREATE TABLE merchant_webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES merchant_webhooks (id),
    event_seq       BIGINT,
    event_type      TEXT NOT NULL,
    original_id     TEXT NOT NULL,
    is_redelivery   BIGINT NOT NULL,
    request         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    status          TEXT CHECK (status IN ('Failed', 'HttpError', 'HttpSuccess')),
    http_code       BIGINT,
    error_message   TEXT,
    attempted_at    BIGINT
);
CREATE UNIQUE INDEX merchant_webhook_deliveries_once ON merchant_webhook_deliveries (webhook_id, event_seq);
CREATE INDEX merchant_webhook_deliveries_by_webhook ON merchant_webhook_deliveries (webhook_id, created_at);
CREATE INDEX merchant_webhook_deliveries_due ON merchant_webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
