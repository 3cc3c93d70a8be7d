//! BOLT11 encoding and decoding through the `lightning-invoice` crate, mapped to core's types.

use std::time::Duration;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use flash_core::lightning::{Hash32, Invoice, InvoiceDescription, LightningError};
use flash_core::Network;
use lightning_invoice::{
    Bolt11Invoice, Bolt11InvoiceDescription, Bolt11InvoiceDescriptionRef, Currency, Description, InvoiceBuilder,
    PaymentSecret, Sha256,
};

/// Final-hop CLTV delta written into our invoices (BOLT11's default).
const MIN_FINAL_CLTV_EXPIRY_DELTA: u64 = 18;

fn currency(network: Network) -> Currency {
    match network {
        Network::Mainnet => Currency::Bitcoin,
        Network::Testnet => Currency::BitcoinTestnet,
        Network::Signet => Currency::Signet,
        Network::Regtest => Currency::Regtest,
    }
}

fn network(currency: Currency) -> Network {
    match currency {
        Currency::Bitcoin => Network::Mainnet,
        Currency::BitcoinTestnet => Network::Testnet,
        Currency::Signet => Network::Signet,
        Currency::Regtest | Currency::Simnet => Network::Regtest,
    }
}

/// What goes into a new invoice.
pub(crate) struct NewInvoice {
    pub network: Network,
    pub payment_hash: Hash32,
    pub payment_secret: [u8; 32],
    pub amount_msat: Option<u64>,
    pub description: InvoiceDescription,
    pub created_at: Duration,
    pub expiry_secs: u64,
}

/// Builds and signs an invoice with `key`.
pub(crate) fn sign(new: NewInvoice, key: &SecretKey) -> Result<Invoice, LightningError> {
    let description = match &new.description {
        InvoiceDescription::Memo(m) => Bolt11InvoiceDescription::Direct(
            Description::new(m.clone()).map_err(|e| LightningError::InvalidInput(format!("memo: {e}")))?,
        ),
        InvoiceDescription::Hash(h) => Bolt11InvoiceDescription::Hash(Sha256(sha256::Hash::from_byte_array(h.0))),
    };
    let builder = InvoiceBuilder::new(currency(new.network))
        .invoice_description(description)
        .payment_hash(sha256::Hash::from_byte_array(new.payment_hash.0))
        .payment_secret(PaymentSecret(new.payment_secret))
        .duration_since_epoch(new.created_at)
        .min_final_cltv_expiry_delta(MIN_FINAL_CLTV_EXPIRY_DELTA)
        .expiry_time(Duration::from_secs(new.expiry_secs));
    let builder = match new.amount_msat {
        Some(msat) => builder.amount_milli_satoshis(msat),
        None => builder,
    };
    let secp = Secp256k1::signing_only();
    let invoice = builder
        .build_signed(|hash| secp.sign_ecdsa_recoverable(hash, key))
        .map_err(|e| LightningError::InvalidInput(format!("cannot build invoice: {e}")))?;
    Ok(to_core(&invoice))
}

/// Decodes an invoice and checks its signature and network.
pub(crate) fn decode(payment_request: &str, expected: Network) -> Result<Invoice, LightningError> {
    let text = payment_request.trim();
    let text = text
        .strip_prefix("lightning:")
        .or_else(|| text.strip_prefix("LIGHTNING:"))
        .unwrap_or(text);
    let invoice: Bolt11Invoice = text
        .parse()
        .map_err(|e| LightningError::InvalidInvoice(format!("{e}")))?;
    let found = network(invoice.currency());
    if found != expected {
        return Err(LightningError::WrongNetwork { expected, found });
    }
    Ok(to_core(&invoice))
}

fn to_core(invoice: &Bolt11Invoice) -> Invoice {
    let description = match invoice.description() {
        Bolt11InvoiceDescriptionRef::Direct(d) => InvoiceDescription::Memo(d.to_string()),
        Bolt11InvoiceDescriptionRef::Hash(h) => InvoiceDescription::Hash(Hash32(h.0.to_byte_array())),
    };
    Invoice {
        payment_request: invoice.to_string(),
        payment_hash: Hash32(invoice.payment_hash().to_byte_array()),
        payment_secret: Hash32(invoice.payment_secret().0),
        amount_msat: invoice.amount_milli_satoshis(),
        description,
        payee: invoice.get_payee_pub_key().to_string(),
        created_at_secs: invoice.duration_since_epoch().as_secs(),
        expiry_secs: invoice.expiry_time().as_secs(),
        network: network(invoice.currency()),
    }
}

/// The amount a payment sends: the invoice's own, or the payer's for a no-amount invoice.
pub(crate) fn amount_to_pay(invoice: &Invoice, amount_msat: Option<u64>) -> Result<u64, LightningError> {
    match (invoice.amount_msat, amount_msat) {
        (Some(a), None) => Ok(a),
        (None, Some(b)) if b > 0 => Ok(b),
        (Some(_), Some(_)) => Err(LightningError::InvalidInput("the invoice has an amount".into())),
        _ => Err(LightningError::InvalidInput(
            "a no-amount invoice needs an amount".into(),
        )),
    }
}
