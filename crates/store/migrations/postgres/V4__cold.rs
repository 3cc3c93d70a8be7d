/// The cold storage tables (postgres): the shared text in `migrations/cold.sql`.
pub fn migration() -> String {
    include_str!("../migrations/cold.sql").to_string()
}
