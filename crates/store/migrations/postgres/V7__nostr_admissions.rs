/// Paid relay admission (postgres): the shared text in `migrations/nostr_admissions.sql`.
pub fn migration() -> String {
    include_str!("../migrations/nostr_admissions.sql").to_string()
}
