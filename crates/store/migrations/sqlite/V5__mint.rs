/// The Cashu mint tables (sqlite): the shared text in `migrations/mint.sql`.
pub fn migration() -> String {
    include_str!("../migrations/mint.sql").to_string()
}
