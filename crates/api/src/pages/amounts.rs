//! Amounts as the pages write them (`$5.00`, `2,100 sats`, `0.0001 BTC`, `1,500 JPY`), and the
//! same rule handed to the pages' scripts, so an amount reads alike whichever side wrote it.

use flash_merchant::invoice_data::InvoiceCurrency;

/// How amounts of one currency are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unit {
    /// Before the number (`$`), or empty.
    pub prefix: String,
    /// After the number (` sats`, ` JPY`), or empty.
    pub suffix: String,
    /// Decimals the currency has (0 for sats and JPY, 8 for BTC).
    pub digits: usize,
    /// Whether every decimal is written (`$5.00`) or only those there are (`0.0001 BTC`).
    pub pad: bool,
}

impl Unit {
    /// The unit of `currency` (a fiat code, `BTC` or `SATS`).
    pub(crate) fn of(currency: &str) -> Unit {
        let unit = |prefix: &str, suffix: &str, digits: usize, pad: bool| Unit {
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
            digits,
            pad,
        };
        match InvoiceCurrency::parse(currency) {
            Some(InvoiceCurrency::Sats) => unit("", " sats", 0, true),
            Some(InvoiceCurrency::Btc) => unit("", " BTC", 8, false),
            Some(InvoiceCurrency::Fiat(c)) => {
                let digits = usize::from(c.exponent());
                match c.code() {
                    "USD" => unit("$", "", digits, true),
                    "EUR" => unit("€", "", digits, true),
                    "GBP" => unit("£", "", digits, true),
                    code => unit("", &format!(" {code}"), digits, true),
                }
            }
            None => unit("", &format!(" {currency}"), 2, false),
        }
    }
}

/// An amount (a decimal string) in its currency as people write it: `$5.00`, `2,100 sats`,
/// `0.0001 BTC`, `1,500 JPY`.
pub(crate) fn money(amount: &str, currency: &str) -> String {
    let unit = Unit::of(currency);
    let (int, frac) = amount.split_once('.').unwrap_or((amount, ""));
    let digits = unit.digits;
    let number = match (digits, unit.pad) {
        (0, _) => group(int),
        (_, true) => format!("{}.{frac:0<digits$}", group(int)),
        (_, false) if frac.is_empty() => group(int),
        (_, false) => format!("{}.{frac}", group(int)),
    };
    format!("{}{number}{}", unit.prefix, unit.suffix)
}

/// Satoshis as `1 sat`, `2,100 sats`.
pub(crate) fn sats_text(sats: i64) -> String {
    let unit = if sats == 1 { "sat" } else { "sats" };
    format!("{} {unit}", group(&sats.to_string()))
}

/// Digits in groups of three: `1234567` → `1,234,567`; anything else unchanged.
fn group(digits: &str) -> String {
    let (sign, digits) = digits.strip_prefix('-').map_or(("", digits), |d| ("-", d));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return format!("{sign}{digits}");
    }
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_people_write_them() {
        assert_eq!(money("5", "USD"), "$5.00");
        assert_eq!(money("1234.5", "EUR"), "€1,234.50");
        assert_eq!(money("1500", "JPY"), "1,500 JPY");
        assert_eq!(money("2100", "SATS"), "2,100 sats");
        assert_eq!(money("0.0001", "BTC"), "0.0001 BTC");
        assert_eq!(sats_text(1), "1 sat");
        assert_eq!(sats_text(1_234_567), "1,234,567 sats");
        assert_eq!(group("123"), "123");
        assert_eq!(group("-1000"), "-1,000");
    }
}
