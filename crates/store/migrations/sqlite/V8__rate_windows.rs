/// Rate-limit windows kept by the database (sqlite): the shared text in
/// `migrations/rate_windows.sql`.
pub fn migration() -> String {
    include_str!("../migrations/rate_windows.sql").to_string()
}
