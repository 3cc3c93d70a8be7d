/// Rewards programs and their grants (sqlite): the shared text in `migrations/rewards.sql`.
pub fn migration() -> String {
    include_str!("../migrations/rewards.sql").to_string()
}
