/// Merchant apps, the point of sale (sqlite): the shared text in `migrations/merchant_apps.sql`.
pub fn migration() -> String {
    include_str!("../migrations/merchant_apps.sql").to_string()
}
