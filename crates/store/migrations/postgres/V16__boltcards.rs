/// Flash Cards (Bolt Cards) (postgres): the shared text in `migrations/boltcards.sql`.
pub fn migration() -> String {
    include_str!("../migrations/boltcards.sql").to_string()
}
