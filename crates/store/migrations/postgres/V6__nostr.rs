/// The NOSTR relay tables (postgres): the shared text in `migrations/nostr.sql`.
pub fn migration() -> String {
    include_str!("../migrations/nostr.sql").to_string()
}
