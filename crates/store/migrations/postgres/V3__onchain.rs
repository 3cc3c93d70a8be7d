/// The on-chain tables (postgres): the shared text in `migrations/onchain.sql`.
pub fn migration() -> String {
    include_str!("../migrations/onchain.sql").to_string()
}
