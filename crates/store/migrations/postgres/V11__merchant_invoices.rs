/// Merchant invoices and the merchant outbox (postgres): the shared text in
/// `migrations/merchant_invoices.sql` with this dialect's row id.
pub fn migration() -> String {
    include_str!("../migrations/merchant_invoices.sql").replace("{row_id}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
}
