/// The Lightning tables (postgres): the shared text in `migrations/lightning.sql`.
pub fn migration() -> String {
    include_str!("../migrations/lightning.sql").to_string()
}
