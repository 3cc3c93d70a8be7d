/// Paid relay admission and open wallet-connect reservations (sqlite): the shared text in
/// `migrations/nostr_payments.sql`.
pub fn migration() -> String {
    include_str!("../migrations/nostr_payments.sql").to_string()
}
