/// Merchant payment requests and store Lightning addresses (sqlite): the shared text in
/// `migrations/merchant_requests.sql`.
pub fn migration() -> String {
    include_str!("../migrations/merchant_requests.sql").to_string()
}
