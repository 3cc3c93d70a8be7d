/// Pull-payment Flash Cards (postgres): the shared text in `migrations/boltcard_pull_payments.sql`.
pub fn migration() -> String {
    include_str!("../migrations/boltcard_pull_payments.sql").to_string()
}
