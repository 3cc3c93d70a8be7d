/// Merchant stores and Greenfield API keys (sqlite): the shared text in
/// `migrations/merchant.sql`.
pub fn migration() -> String {
    include_str!("../migrations/merchant.sql").to_string()
}
