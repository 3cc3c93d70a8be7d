/// Several Lightning methods per invoice, one current (postgres): the primary key on
/// `(invoice_id, method)` goes, `amount_sat` and `superseded_at` come, then the shared text in
/// `migrations/merchant_lightning_renewal.sql`.
pub fn migration() -> String {
    let relax = "
ALTER TABLE merchant_invoice_methods DROP CONSTRAINT merchant_invoice_methods_pkey;
ALTER TABLE merchant_invoice_methods ADD COLUMN amount_sat BIGINT CHECK (amount_sat > 0);
ALTER TABLE merchant_invoice_methods ADD COLUMN superseded_at BIGINT;
";
    format!("{relax}\n{}", include_str!("../migrations/merchant_lightning_renewal.sql"))
}
