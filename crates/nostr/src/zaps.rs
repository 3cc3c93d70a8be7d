//! Zaps (NIP-57): BOLT11 reading shared with wallet connect.

use std::str::FromStr;

use lightning_invoice::Bolt11Invoice;

/// A BOLT11 invoice's amount in millisatoshis (none for an amountless one).
pub fn invoice_msat(invoice: &str) -> Result<Option<u64>, String> {
    let invoice = parse(invoice)?;
    Ok(invoice.amount_milli_satoshis())
}

/// A BOLT11 invoice's payment hash, hex.
pub fn invoice_hash(invoice: &str) -> Result<String, String> {
    Ok(parse(invoice)?.payment_hash().to_string())
}

fn parse(invoice: &str) -> Result<Bolt11Invoice, String> {
    let text = invoice.trim();
    let text = text.strip_prefix("lightning:").unwrap_or(text);
    Bolt11Invoice::from_str(text).map_err(|e| e.to_string())
}
