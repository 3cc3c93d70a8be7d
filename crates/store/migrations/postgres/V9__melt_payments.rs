/// Melts paid through the bank's Lightning saga (postgres): `ln_payments.wallet_id` may be
/// NULL for a payment the mint makes, then the shared text in `migrations/melt_payments.sql`.
pub fn migration() -> String {
    let relax = "
ALTER TABLE ln_payments ALTER COLUMN wallet_id DROP NOT NULL;
ALTER TABLE ln_payments ADD CONSTRAINT ln_payments_payer CHECK (wallet_id IS NOT NULL OR origin LIKE 'melt:%');
";
    format!("{relax}\n{}", include_str!("../migrations/melt_payments.sql"))
}
