/// The core bank schema (postgres): the shared text in `migrations/core_bank.sql` with this
/// dialect's row-id and table options.
pub fn migration() -> String {
    include_str!("../migrations/core_bank.sql")
        .replace("{row_id}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
        .replace("{clustered}", "")
}
