//! Store Lightning addresses: `name@<this Flash's host>` paying a store. The address is
//! served by the same LNURL-pay routes as users' addresses (LUD-06, LUD-16); each callback
//! makes a store invoice for the amount, committing to the address's metadata, so the
//! payment is a store invoice with its events and webhooks. A name is one store's, and never
//! a Flash user's, case-insensitively.

use flash_bank::{address_metadata, description_hash, offered_sats, AddressOffer, BankError};
use flash_store::LightningAddressRecord;
use serde_json::{json, Map, Value};

use crate::invoice_data::{btc, InvoiceCurrency, LIGHTNING};
use crate::permissions::{CAN_MODIFY_STORE_SETTINGS, CAN_VIEW_STORE_SETTINGS};
use crate::{invoice_data, Caller, CreateOptions, FieldError, Merchant, MerchantError};

/// Longest address name.
const MAX_NAME_CHARS: usize = 64;
/// Most satoshis an address asks for when it sets no maximum.
const DEFAULT_MAX_SATS: i64 = 100_000_000;

/// A store's Lightning address, as Greenfield shows it (`LightningAddressData`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LightningAddressView {
    /// The store it pays.
    pub store_id: String,
    /// The name before `@`, lower case.
    pub username: String,
    /// The invoices' currency (`None`: the store's default).
    pub currency_code: Option<String>,
    /// Smallest payment, satoshis.
    pub min: Option<i64>,
    /// Largest payment, satoshis.
    pub max: Option<i64>,
    /// Merged into each invoice's metadata.
    pub invoice_metadata: Option<Map<String, Value>>,
}

impl LightningAddressView {
    /// Greenfield's `LightningAddressData`.
    pub fn to_json(&self) -> Value {
        json!({
            "username": self.username,
            "currencyCode": self.currency_code,
            "min": self.min.map(|m| m.to_string()),
            "max": self.max.map(|m| m.to_string()),
            "invoiceMetadata": self.invoice_metadata,
        })
    }

    fn from_record(r: &LightningAddressRecord) -> Result<LightningAddressView, MerchantError> {
        let decode =
            |e: String| MerchantError::Store(flash_store::StoreError::Decode(format!("address {}: {e}", r.username)));
        let data: Value = serde_json::from_str(&r.data).map_err(|e| decode(e.to_string()))?;
        let mut view = parse(&r.username, &data).map_err(|e| decode(format!("{e:?}")))?;
        view.store_id = r.store_id.clone();
        Ok(view)
    }
}

/// A name as an address takes it: 1 to 64 of `a-z 0-9 - _ .` (LUD-16), lower-cased.
fn address_name(name: &str) -> Option<String> {
    let name = name.trim().to_lowercase();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    ok.then_some(name)
}

/// Reads a `LightningAddressData` body for the address `name`.
fn parse(name: &str, body: &Value) -> Result<LightningAddressView, Vec<FieldError>> {
    let Some(body) = body.as_object() else {
        return Err(vec![FieldError::new("", "the body is a JSON object")]);
    };
    let mut errors = Vec::new();
    let username = address_name(name).unwrap_or_else(|| {
        errors.push(FieldError::new(
            "username",
            "a name is 1 to 64 lower-case letters, digits, '-', '_' or '.'",
        ));
        String::new()
    });
    let currency_code = match body.get("currencyCode") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => match InvoiceCurrency::parse(s) {
            Some(c) => Some(c.code()),
            None => {
                errors.push(FieldError::new("currencyCode", "the currency is not known"));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new("currencyCode", "currencyCode is a string"));
            None
        }
    };
    let mut sats = |field: &str| match body.get(field) {
        None | Some(Value::Null) => None,
        Some(v) => {
            let n = match v {
                Value::String(s) => s.trim().parse::<i64>().ok(),
                Value::Number(n) => n.as_i64(),
                _ => None,
            };
            match n {
                Some(n) if n >= 1 => Some(n),
                _ => {
                    errors.push(FieldError::new(
                        field,
                        &format!("{field} is a whole number of satoshis, at least 1"),
                    ));
                    None
                }
            }
        }
    };
    let (min, max) = (sats("min"), sats("max"));
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            errors.push(FieldError::new("min", "min is above max"));
        }
    }
    let invoice_metadata = match body.get("invoiceMetadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) if Value::Object(m.clone()).to_string().len() <= invoice_data::MAX_METADATA_BYTES => {
            Some(m.clone())
        }
        Some(Value::Object(_)) => {
            errors.push(FieldError::new("invoiceMetadata", "invoiceMetadata is too large"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("invoiceMetadata", "invoiceMetadata is a JSON object"));
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(LightningAddressView {
        store_id: String::new(),
        username,
        currency_code,
        min,
        max,
        invoice_metadata,
    })
}

impl Merchant {
    /// A store's Lightning addresses (`btcpay.store.canviewstoresettings`).
    pub async fn lightning_addresses(
        &self,
        caller: &Caller,
        store_id: &str,
    ) -> Result<Vec<LightningAddressView>, MerchantError> {
        self.store_for(caller, store_id, CAN_VIEW_STORE_SETTINGS).await?;
        self.store
            .merchant_lightning_addresses_of(store_id)
            .await?
            .iter()
            .map(LightningAddressView::from_record)
            .collect()
    }

    /// One of a store's Lightning addresses (`btcpay.store.canviewstoresettings`).
    pub async fn lightning_address(
        &self,
        caller: &Caller,
        store_id: &str,
        name: &str,
    ) -> Result<LightningAddressView, MerchantError> {
        self.store_for(caller, store_id, CAN_VIEW_STORE_SETTINGS).await?;
        match self.store.merchant_lightning_address(name).await? {
            Some(r) if r.store_id == store_id => LightningAddressView::from_record(&r),
            _ => Err(MerchantError::LightningAddressNotFound),
        }
    }

    /// Adds a Lightning address to a store, or replaces the store's one of that name
    /// (`btcpay.store.canmodifystoresettings`). A name that is a Flash user's or another
    /// store's is refused.
    pub async fn put_lightning_address(
        &self,
        caller: &Caller,
        store_id: &str,
        name: &str,
        body: &Value,
    ) -> Result<LightningAddressView, MerchantError> {
        let store = self.store_for(caller, store_id, CAN_MODIFY_STORE_SETTINGS).await?;
        let mut view = parse(name, body).map_err(MerchantError::Invalid)?;
        view.store_id = store.id.clone();
        let taken = || MerchantError::field("username", "this name is taken");
        match self.bank.username_available(&view.username).await {
            Ok(true) => {}
            Ok(false) => {
                // Free as a user's name unless a store holds it; this store may replace its own.
                let ours = self
                    .store
                    .merchant_lightning_address(&view.username)
                    .await?
                    .is_some_and(|r| r.store_id == store.id);
                if !ours {
                    return Err(taken());
                }
            }
            // Not a name a Flash user can have.
            Err(BankError::Validation(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let mut data = view.to_json();
        if let Some(object) = data.as_object_mut() {
            object.remove("username");
        }
        let now = self.bank.now_ms();
        let record = LightningAddressRecord {
            store_id: store.id.clone(),
            username: view.username.clone(),
            data: data.to_string(),
            created_at: now,
            updated_at: now,
        };
        if !self.store.merchant_lightning_address_put(&record).await? {
            return Err(taken());
        }
        Ok(view)
    }

    /// Removes a store's Lightning address (`btcpay.store.canmodifystoresettings`).
    pub async fn delete_lightning_address(
        &self,
        caller: &Caller,
        store_id: &str,
        name: &str,
    ) -> Result<(), MerchantError> {
        self.store_for(caller, store_id, CAN_MODIFY_STORE_SETTINGS).await?;
        if self.store.merchant_lightning_address_delete(store_id, name).await? {
            Ok(())
        } else {
            Err(MerchantError::LightningAddressNotFound)
        }
    }

    /// What a store's address `name@<host>` offers (the first LNURL-pay answer); `None` when
    /// no store has that address (or its store is archived or gone).
    pub async fn lightning_address_offer(&self, name: &str) -> Result<Option<AddressOffer>, MerchantError> {
        let Some(record) = self.store.merchant_lightning_address(name).await? else {
            return Ok(None);
        };
        let Some(store) = self.store.merchant_store(&record.store_id).await? else {
            return Ok(None);
        };
        if store.archived_at.is_some() {
            return Ok(None);
        }
        let view = LightningAddressView::from_record(&record)?;
        let domain = self.bank.lightning_address_domain()?;
        let min_sats = view.min.unwrap_or(1);
        // Without a maximum, the smaller of 1 BTC and the bank's limit, and never below the minimum.
        let max_sats = view.max.unwrap_or(
            DEFAULT_MAX_SATS
                .min(self.bank.config().lightning.lnurl_max_sendable_sats)
                .max(min_sats),
        );
        Ok(Some(AddressOffer {
            metadata: address_metadata(
                &format!("Paid to {}", store.name),
                &format!("{}@{domain}", view.username),
            ),
            username: view.username,
            min_sendable_msat: u64::try_from(min_sats).unwrap_or(1).saturating_mul(1_000),
            max_sendable_msat: u64::try_from(max_sats).unwrap_or(0).saturating_mul(1_000),
            comment_allowed: 0,
        }))
    }

    /// The BOLT11 a store's address issues for `amount_msat`: the Lightning method of a new
    /// store invoice for that amount, committing to the address's metadata. `None` when no
    /// store has that address.
    pub async fn lightning_address_invoice(
        &self,
        name: &str,
        amount_msat: u64,
    ) -> Result<Option<String>, MerchantError> {
        let Some(offer) = self.lightning_address_offer(name).await? else {
            return Ok(None);
        };
        let sats = offered_sats(&offer, amount_msat)?;
        let record = self
            .store
            .merchant_lightning_address(name)
            .await?
            .ok_or(MerchantError::LightningAddressNotFound)?;
        let view = LightningAddressView::from_record(&record)?;
        let store = self
            .store
            .merchant_store(&record.store_id)
            .await?
            .ok_or(MerchantError::LightningAddressNotFound)?;
        let mut metadata = view.invoice_metadata.clone().unwrap_or_default();
        metadata.insert("lightningAddress".into(), json!(view.username));
        // The BOLT11 must ask exactly the amount the wallet chose: BTC stays BTC, anything
        // else is invoiced in satoshis.
        let currency = view.currency_code.as_deref().unwrap_or(&store.default_currency);
        let (amount, currency) = match InvoiceCurrency::parse(currency) {
            Some(InvoiceCurrency::Btc) => (btc(sats), "BTC"),
            _ => (sats.to_string(), "SATS"),
        };
        let body = json!({
            "amount": amount,
            "currency": currency,
            "metadata": metadata,
            "checkout": {"paymentMethods": [LIGHTNING]},
        });
        let options = CreateOptions {
            description_hash: Some(description_hash(&offer.metadata)),
            ..CreateOptions::default()
        };
        let invoice = self
            .create_invoice(&Caller::owner(store.account_id), &store.id, &body, &options)
            .await?;
        invoice
            .method(LIGHTNING)
            .map(|m| Some(m.destination.clone()))
            .ok_or(MerchantError::Bank(BankError::LightningUnavailable(
                "this server has no Lightning node".into(),
            )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bodies_are_checked() {
        let v = parse("Shop.One", &json!({"min": "10", "max": 500, "currencyCode": "btc"})).expect("valid");
        assert_eq!(
            v.to_json(),
            json!({"username": "shop.one", "currencyCode": "BTC", "min": "10", "max": "500", "invoiceMetadata": null})
        );
        let errors = parse(
            "no way",
            &json!({"min": "5", "max": "1", "currencyCode": 3, "invoiceMetadata": []}),
        )
        .expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["username", "currencyCode", "min", "invoiceMetadata"]);
    }
}
