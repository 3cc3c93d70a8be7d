/// Merchant webhooks and their deliveries (sqlite): the shared text in
/// `migrations/merchant_webhooks.sql`.
pub fn migration() -> String {
    include_str!("../migrations/merchant_webhooks.sql").to_string()
}
