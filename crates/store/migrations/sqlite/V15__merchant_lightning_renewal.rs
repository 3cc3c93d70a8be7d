/// Several Lightning methods per invoice, one current (sqlite): the table is rebuilt without
/// its primary key on `(invoice_id, method)` and with `amount_sat` and `superseded_at` (SQLite
/// drops a primary key only that way; nothing references the table), then the shared text in
/// `migrations/merchant_lightning_renewal.sql`.
pub fn migration() -> String {
    let rebuild = "
CREATE TABLE merchant_invoice_methods_v15 (
    invoice_id    TEXT NOT NULL REFERENCES merchant_invoices (id),
    method        TEXT NOT NULL,
    destination   TEXT NOT NULL,
    lookup_key    TEXT NOT NULL UNIQUE,
    amount_sat    BIGINT CHECK (amount_sat > 0),
    superseded_at BIGINT
);
INSERT INTO merchant_invoice_methods_v15 (invoice_id, method, destination, lookup_key)
SELECT invoice_id, method, destination, lookup_key FROM merchant_invoice_methods;
DROP TABLE merchant_invoice_methods;
ALTER TABLE merchant_invoice_methods_v15 RENAME TO merchant_invoice_methods;
";
    format!("{rebuild}\n{}", include_str!("../migrations/merchant_lightning_renewal.sql"))
}
