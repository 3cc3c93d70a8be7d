-- Merchant payment requests and store Lightning addresses. Shared by both dialects as is.

-- A payment request of a store. `data` is the JSON of its Greenfield fields (amount, currency,
-- title, expiry, …) as the merchant crate reads and writes them; its invoices are the store's
-- invoices whose order id is `PAY_REQUEST_<id>`. `status` is the status last computed from
-- them (for the `PaymentRequestStatusChanged` event), changed under `version`.
CREATE TABLE merchant_payment_requests (
    id         TEXT PRIMARY KEY,
    store_id   TEXT NOT NULL REFERENCES merchant_stores (id),
    data       TEXT NOT NULL,
    status     TEXT NOT NULL,
    archived   BIGINT NOT NULL DEFAULT 0,
    version    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX merchant_payment_requests_by_store ON merchant_payment_requests (store_id, created_at);

-- A store's Lightning address `<username>@<host>`. `name_key` is the lower-case username, so
-- one name is one store's across all stores. `data` is the JSON of its Greenfield fields
-- (currencyCode, min, max, invoiceMetadata).
CREATE TABLE merchant_lightning_addresses (
    name_key   TEXT PRIMARY KEY,
    store_id   TEXT NOT NULL REFERENCES merchant_stores (id),
    username   TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX merchant_lightning_addresses_by_store ON merchant_lightning_addresses (store_id, name_key);
