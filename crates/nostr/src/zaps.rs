//! Zaps (NIP-57) to Flash users' Lightning addresses.
//!
//! The address's LNURL-pay offer says `allowsNostr` with the relay's service key as
//! `nostrPubkey`. A zap request (kind 9734) given to the callback is checked (signature, one
//! `p`, at most one `e`, `relays`, `amount` equal to the amount asked) and the invoice commits
//! to it (its description hash is the request's SHA-256). When the invoice is paid, a zap
//! receipt (kind 9735) signed by the service key is published on this relay and, best effort
//! with timeouts, on the relays the request lists.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use flash_bank::{Bank, Direction, TxStatus, WalletChange, WalletEvent};
use lightning_invoice::Bolt11Invoice;
use nostr::{Event, EventBuilder, JsonUtil, Kind, RelayUrl, Tag, TagKind, TagStandard, Timestamp};
use tokio::sync::broadcast;

use crate::relay::{next_broadcast, Relay, Sender};

/// Most relays a receipt is sent to besides this one.
const RECEIPT_RELAYS_MAX: usize = 10;
/// How long sending a receipt to another relay may take.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Why a zap request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid zap request: {0}")]
pub struct ZapError(pub String);

/// Checks a zap request (NIP-57 appendix D) for `amount_msat`; the request event.
pub fn check_request(json: &str, amount_msat: u64) -> Result<Event, ZapError> {
    let bad = |m: &str| ZapError(m.to_string());
    let event = Event::from_json(json).map_err(|e| ZapError(format!("not an event: {e}")))?;
    if event.kind != Kind::ZapRequest {
        return Err(bad("the kind must be 9734"));
    }
    event.verify().map_err(|_| bad("bad id or signature"))?;
    let count = |name: &str| {
        event
            .tags
            .iter()
            .filter(|t| t.as_slice().first().map(String::as_str) == Some(name))
            .count()
    };
    if count("p") != 1 {
        return Err(bad("it must have exactly one p tag"));
    }
    if count("e") > 1 {
        return Err(bad("it may have at most one e tag"));
    }
    if relays(&event).is_empty() {
        return Err(bad("it must list relays"));
    }
    let amount = event
        .tags
        .iter()
        .find(|t| t.as_slice().first().map(String::as_str) == Some("amount"))
        .and_then(|t| t.content());
    if let Some(amount) = amount {
        if amount.parse::<u64>().ok() != Some(amount_msat) {
            return Err(bad("its amount is not the amount asked"));
        }
    }
    Ok(event)
}

/// The relays a zap request lists.
fn relays(event: &Event) -> Vec<String> {
    event
        .tags
        .iter()
        .filter(|t| t.as_slice().first().map(String::as_str) == Some("relays"))
        .flat_map(|t| t.as_slice().iter().skip(1).cloned())
        .collect()
}

/// The zap receipt for a paid request.
fn receipt(request: &Event, request_json: &str, bolt11: &str, paid_at: Timestamp) -> EventBuilder {
    let copied = request.tags.iter().filter(|t| {
        matches!(
            t.as_slice().first().map(String::as_str),
            Some("p") | Some("e") | Some("a")
        )
    });
    EventBuilder::new(Kind::ZapReceipt, "")
        .tags(copied.cloned())
        .tag(Tag::custom(TagKind::custom("P"), [request.pubkey.to_hex()]))
        .tag(Tag::from_standardized(TagStandard::Bolt11(bolt11.to_string())))
        .tag(Tag::from_standardized(TagStandard::Description(
            request_json.to_string(),
        )))
        .custom_created_at(paid_at)
}

/// Publishes zap receipts as zapped invoices are paid. Cheap to clone.
#[derive(Clone)]
pub struct Zaps {
    bank: Bank,
    relay: Relay,
}

impl Zaps {
    /// Starts publishing receipts for invoices paid from now on.
    pub fn start(bank: Bank, relay: Relay) -> Zaps {
        let zaps = Zaps { bank, relay };
        tokio::spawn(zaps.clone().run(zaps.bank.subscribe()));
        zaps
    }

    /// Makes the invoice for a zap of `name@host`: checks the request and commits to it.
    pub async fn invoice(
        &self,
        name: &str,
        amount_msat: u64,
        comment: Option<&str>,
        request_json: &str,
    ) -> Result<flash_bank::LnInvoice, ZapInvoiceError> {
        check_request(request_json, amount_msat)?;
        let invoice = self
            .bank
            .lnurl_address_invoice(name, amount_msat, comment, Some(request_json))
            .await?;
        self.relay
            .store()
            .nostr_zap_create(
                &invoice.payment_hash.to_string(),
                request_json,
                &invoice.payment_request,
            )
            .await
            .map_err(|e| ZapInvoiceError::Bank(e.into()))?;
        Ok(invoice)
    }

    async fn run(self, mut events: broadcast::Receiver<WalletEvent>) {
        while let Some(event) = next_broadcast(&mut events, "zaps: wallet events").await {
            let WalletChange::Journal(journal) = event.change else {
                continue;
            };
            let Ok(tx) = self.bank.transaction(event.wallet_id, journal).await else {
                continue;
            };
            if tx.direction != Direction::Receive || tx.status != TxStatus::Success {
                continue;
            }
            let Some(hash) = tx.payment_hash else { continue };
            match self.relay.store().nostr_zap_paid(&hash).await {
                Ok(Some((request, bolt11))) => self.publish(&request, &bolt11).await,
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "zaps: could not mark a zap paid"),
            }
        }
    }

    async fn publish(&self, request_json: &str, bolt11: &str) {
        let Ok(request) = Event::from_json(request_json) else {
            return;
        };
        let signed =
            receipt(&request, request_json, bolt11, Timestamp::now()).sign_with_keys(self.relay.service_keys());
        let receipt = match signed {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "zaps: cannot sign a receipt");
                return;
            }
        };
        if let Err(e) = self.relay.publish(receipt.clone(), &Sender::default()).await {
            tracing::warn!(reason = %e, "zaps: our relay refused a receipt");
        }
        let ours = self.relay.url().map(|u| u.as_str().trim_end_matches('/').to_string());
        let allow_private = self.relay.config().zap_receipts_to_private_relays;
        let mut targets = vec![];
        for url in relays(&request).into_iter().take(RECEIPT_RELAYS_MAX) {
            if ours.as_deref() == Some(url.trim_end_matches('/')) {
                continue;
            }
            if let Ok(url) = RelayUrl::parse(&url) {
                if allow_private || public_host(&url).await {
                    targets.push(url);
                }
            }
        }
        if !targets.is_empty() {
            tokio::spawn(send_elsewhere(Arc::new(receipt), targets));
        }
    }
}

/// Whether every address a relay's host resolves to is public (receipts are not sent into
/// the operator's own network by whoever asks).
async fn public_host(url: &RelayUrl) -> bool {
    let Ok(url) = url::Url::parse(url.as_str()) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let Ok(Ok(addrs)) = tokio::time::timeout(RECEIPT_TIMEOUT, tokio::net::lookup_host((host, port))).await else {
        return false;
    };
    let ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
    !ips.is_empty() && ips.iter().all(is_public)
}

fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// Sends a receipt to other relays, each within [`RECEIPT_TIMEOUT`].
async fn send_elsewhere(receipt: Arc<Event>, targets: Vec<RelayUrl>) {
    let client = nostr_sdk::Client::default();
    for url in &targets {
        let _ = client.add_relay(url).await;
    }
    client.connect().await;
    client.wait_for_connection(RECEIPT_TIMEOUT).await;
    match tokio::time::timeout(RECEIPT_TIMEOUT, client.send_event(&receipt)).await {
        Ok(Ok(out)) if !out.failed.is_empty() => {
            tracing::debug!(failed = ?out.failed, "zaps: some relays refused a receipt");
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "zaps: sending a receipt failed"),
        Err(_) => tracing::debug!("zaps: sending a receipt timed out"),
        Ok(Ok(_)) => {}
    }
    client.shutdown().await;
}

/// A zap invoice could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ZapInvoiceError {
    /// The zap request is not acceptable.
    #[error(transparent)]
    Request(#[from] ZapError),
    /// The bank refused (unknown user, amount out of range, …).
    #[error(transparent)]
    Bank(#[from] flash_bank::BankError),
}
