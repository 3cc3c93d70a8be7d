/// The core bank schema (sqlite): the shared text in `migrations/core_bank.sql` with this
/// dialect's row-id and table options.
pub fn migration() -> String {
    include_str!("../migrations/core_bank.sql")
        .replace("{row_id}", "INTEGER PRIMARY KEY")
        .replace("{clustered}", " WITHOUT ROWID")
}
