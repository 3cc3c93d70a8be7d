/// The Cashu mint tables (postgres): the shared text in `migrations/mint.sql`.
pub fn migration() -> String {
    include_str!("../migrations/mint.sql").to_string()
}
