//! Invoice refunds (Greenfield `POST /api/v1/invoices/{invoiceId}/refund`): a refund is a pull
//! payment of the invoice's store, for an amount the refund's variant computes from the invoice,
//! claimable by the customer to any destination (auto-approved).

use flash_core::price::Decimal;
use flash_store::MerchantInvoiceRecord;
use serde_json::{json, Value};

use crate::invoice_data::{decimal_string, sats_due, InvoiceCurrency};
use crate::payment_requests::{amount_of, decimal_field, text_field, units};
use crate::permissions::CAN_CREATE_PULL_PAYMENTS;
use crate::{Caller, FieldError, Merchant, MerchantError, PullPaymentView, PAYOUT_LIGHTNING, PAYOUT_ONCHAIN};

/// Basis points in 100 %.
const WHOLE_BPS: u128 = 10_000;

/// A refund's amount before any percentage is taken off: units of `currency`.
struct Refund {
    currency: InvoiceCurrency,
    units: u128,
}

impl Merchant {
    /// Refunds an invoice (`btcpay.store.cancreatepullpayments` on its store): makes an
    /// auto-approved pull payment of `refundVariant`'s amount (`RateThen`: the bitcoin paid;
    /// `CurrentRate`: the invoice's amount in bitcoin at today's rate; `Fiat`: the invoice's
    /// amount in its currency; `OverpaidAmount`: what was paid above the amount due; `Custom`:
    /// `customAmount` of `customCurrency`), less `subtractPercentage`.
    pub async fn refund_invoice(
        &self,
        caller: &Caller,
        route_store: Option<&str>,
        invoice_id: &str,
        body: &Value,
    ) -> Result<PullPaymentView, MerchantError> {
        let invoice = self
            .own_invoice(caller, route_store, invoice_id, CAN_CREATE_PULL_PAYMENTS)
            .await?;
        let Some(fields) = body.as_object() else {
            return Err(MerchantError::field("", "the body is a JSON object"));
        };
        if invoice.paid_sat < 1 {
            return Err(MerchantError::field("", "the invoice has no payment to refund"));
        }
        let variant = fields.get("refundVariant").and_then(Value::as_str).unwrap_or_default();
        let refund = self.refund_amount(&invoice, variant, fields).await?;
        let kept_bps = match fields.get("subtractPercentage") {
            None | Some(Value::Null) => WHOLE_BPS,
            Some(v) => decimal_field(v)
                .and_then(percent_bps)
                .filter(|bps| *bps <= WHOLE_BPS)
                .map(|bps| WHOLE_BPS - bps)
                .ok_or_else(|| {
                    MerchantError::field(
                        "subtractPercentage",
                        "subtractPercentage is 0 to 100, two decimals at most",
                    )
                })?,
        };
        let refunded = refund.units.saturating_mul(kept_bps) / WHOLE_BPS;
        if refunded == 0 {
            return Err(MerchantError::field("", "nothing is left to refund"));
        }
        let mut errors = Vec::new();
        let name = text_field(fields, "name", 100, &mut errors).unwrap_or_else(|| format!("Refund {}", invoice.id));
        let description = text_field(fields, "description", 5_000, &mut errors).unwrap_or_default();
        if !errors.is_empty() {
            return Err(MerchantError::Invalid(errors));
        }
        let payout_methods = match fields.get("payoutMethods") {
            None | Some(Value::Null) => self.refund_methods(&invoice).await?,
            Some(given) => given.clone(),
        };
        let pull_payment = json!({
            "name": name,
            "description": description,
            "amount": decimal_string(amount_of(refunded, &refund.currency)),
            "currency": refund.currency.code(),
            "autoApproveClaims": true,
            "payoutMethods": payout_methods,
        });
        self.create_pull_payment(caller, &invoice.store_id, &pull_payment).await
    }

    /// The amount `variant` refunds of `invoice`.
    async fn refund_amount(
        &self,
        invoice: &MerchantInvoiceRecord,
        variant: &str,
        fields: &serde_json::Map<String, Value>,
    ) -> Result<Refund, MerchantError> {
        let currency = InvoiceCurrency::parse(&invoice.currency)
            .ok_or_else(|| MerchantError::field("", "the invoice's currency is not refundable"))?;
        let in_btc = |sats: i64| Refund {
            currency: InvoiceCurrency::Btc,
            units: u128::try_from(sats).unwrap_or(0),
        };
        let amount = || {
            Decimal::parse(&invoice.amount)
                .map_err(|_| MerchantError::field("refundVariant", "the invoice has no amount (a top-up)"))
        };
        Ok(match variant {
            "RateThen" => in_btc(invoice.paid_sat),
            "CurrentRate" => match &currency {
                InvoiceCurrency::Fiat(c) => {
                    let price = self.price(*c).await?;
                    let sats = sats_due(amount()?, &currency, Some(&price))
                        .map_err(|_| MerchantError::field("refundVariant", "the invoice's amount cannot be priced"))?;
                    in_btc(sats)
                }
                _ => in_btc(invoice.paid_sat),
            },
            "Fiat" => Refund {
                units: units(amount()?, &currency).unwrap_or(0),
                currency,
            },
            "OverpaidAmount" => {
                let due = invoice.due_sat.unwrap_or(invoice.paid_sat);
                if invoice.paid_sat <= due {
                    return Err(MerchantError::field("refundVariant", "the invoice was not overpaid"));
                }
                in_btc(invoice.paid_sat - due)
            }
            "Custom" => {
                let mut errors = Vec::new();
                let custom_currency =
                    text_field(fields, "customCurrency", 10, &mut errors).and_then(|c| InvoiceCurrency::parse(&c));
                let custom_amount = fields.get("customAmount").and_then(decimal_field);
                match (custom_currency, custom_amount) {
                    (Some(currency), Some(amount)) => Refund {
                        units: units(amount, &currency).ok_or_else(|| {
                            MerchantError::field("customAmount", "customAmount has more decimals than its currency")
                        })?,
                        currency,
                    },
                    _ => {
                        errors.push(FieldError::new(
                            "customAmount",
                            "Custom needs customAmount and customCurrency (BTC, SATS or an ISO 4217 code)",
                        ));
                        return Err(MerchantError::Invalid(errors));
                    }
                }
            }
            _ => {
                return Err(MerchantError::field(
                    "refundVariant",
                    "refundVariant is RateThen, CurrentRate, Fiat, OverpaidAmount or Custom",
                ))
            }
        })
    }

    /// The payout methods a refund offers by default: the invoice's own, as payout methods
    /// (`null`, every method, when it had none).
    async fn refund_methods(&self, invoice: &MerchantInvoiceRecord) -> Result<Value, MerchantError> {
        let mut methods = Vec::new();
        for m in self.store.merchant_invoice_methods(&invoice.id).await? {
            let payout = if m.method == PAYOUT_ONCHAIN {
                PAYOUT_ONCHAIN
            } else {
                PAYOUT_LIGHTNING
            };
            if !methods.contains(&json!(payout)) {
                methods.push(json!(payout));
            }
        }
        Ok(if methods.is_empty() {
            Value::Null
        } else {
            Value::Array(methods)
        })
    }
}

/// A percentage with at most two decimals, in basis points.
fn percent_bps(d: Decimal) -> Option<u128> {
    let shift = 2u32.checked_sub(d.scale)?;
    d.mantissa.checked_mul(10u128.pow(shift))
}
