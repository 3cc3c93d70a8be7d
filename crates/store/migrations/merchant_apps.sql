-- Merchant apps (BTCPay's point of sale). Shared by both dialects as is.

-- An app of a store. `settings` is the JSON of its Greenfield settings (title, views, tips,
-- currency, texts) and `items` the JSON list of what it sells, as the merchant crate reads and
-- writes them; its sales are the invoices carrying its id (`merchant_invoices.app_id`).
CREATE TABLE merchant_apps (
    id         TEXT PRIMARY KEY,
    store_id   TEXT NOT NULL REFERENCES merchant_stores (id),
    app_type   TEXT NOT NULL,
    name       TEXT NOT NULL,
    settings   TEXT NOT NULL,
    items      TEXT NOT NULL,
    archived   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX merchant_apps_by_store ON merchant_apps (store_id, created_at);
