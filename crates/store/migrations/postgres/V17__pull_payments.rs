/// Budget wallets, pull payments and payouts (postgres): the shared text in `migrations/pull_payments.sql`.
pub fn migration() -> String {
    include_str!("../migrations/pull_payments.sql").to_string()
}
