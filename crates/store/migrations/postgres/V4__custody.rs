/// The cold storage and on-chain leadership tables (postgres): the shared text in `migrations/custody.sql`.
pub fn migration() -> String {
    include_str!("../migrations/custody.sql").to_string()
}
