/// Merchant payment requests and store Lightning addresses (postgres): the shared text in
/// `migrations/merchant_requests.sql`.
pub fn migration() -> String {
    include_str!("../migrations/merchant_requests.sql").to_string()
}
