//! Flash's NOSTR relay, kept on the bank's store (SQLite or PostgreSQL).
//!
//! - [`Relay`] checks events (ids, signatures, time window, proof of work, protected events,
//!   write policy, rate limits per connection, address and pubkey), stores them in batches
//!   (replaceable and addressable versions, NIP-09 deletions, NIP-40 expiry), answers queries
//!   (NIP-01 filters, NIP-45 counts, NIP-50 search) and fans accepted events out live.
//! - [`Connection`] is one client's side of the protocol (subscriptions, NIP-42 AUTH, gift
//!   wraps only to their recipient, NIP-29 groups' rules), free of any transport: the API crate runs it on a
//!   websocket.
//! - [`Cluster`] links relay nodes over NATS: two `flashd` on one PostgreSQL serve one relay.
//! - [`WalletConnect`] answers NIP-47 requests on Flash wallets, within per-connection budgets.
//! - [`AdmissionFees`] sells write access to a paid relay (an invoice per pubkey).
//! - [`Zaps`] makes zap invoices for Lightning addresses and publishes their receipts (NIP-57).
//! - [`info`] is the NIP-11 document; [`names`] the pubkeys Flash users set and their NIP-05
//!   identifiers.

pub mod cipher;
mod cluster;
mod config;
mod conn;
pub mod fees;
pub mod filter;
mod groups;
pub mod names;
pub mod nwc;
pub mod protocol;
mod relay;
pub mod zaps;

pub use cluster::{Cluster, ClusterError};
pub use config::{RelayConfig, WritePolicy};
pub use conn::{Connection, Publishing, Step};
pub use fees::{AdmissionFees, AdmissionOffer};
/// A wallet connection as stored (what `nwcConnections` lists).
pub use flash_store::NwcConnectionRecord;
pub use names::Names;
pub use nwc::WalletConnect;
pub use protocol::{Prefix, Reject};
pub use relay::{
    service_keys, Admission, Live, Published, Relay, RelayStats, Sender, ServiceKeyError, ADMISSION_PATH,
    SERVICE_KEY_PURPOSE,
};
pub use zaps::Zaps;

/// The NIPs this relay implements, for NIP-11.
pub const SUPPORTED_NIPS: &[u16] = &[1, 2, 9, 11, 17, 29, 40, 42, 45, 50, 59, 70];

/// The relay information document (NIP-11).
pub fn info(relay: &Relay) -> serde_json::Value {
    let cfg = relay.config();
    let mut doc = serde_json::json!({
        "name": cfg.name,
        "description": cfg.description,
        "supported_nips": SUPPORTED_NIPS,
        "software": "flashd",
        "version": env!("CARGO_PKG_VERSION"),
        "limitation": {
            "max_message_length": cfg.max_message_bytes,
            "max_subscriptions": cfg.max_subscriptions,
            "max_filters": cfg.max_filters,
            "max_limit": cfg.max_limit,
            "max_subid_length": cfg.max_subid_length,
            "max_event_tags": cfg.max_event_tags,
            "min_pow_difficulty": cfg.min_pow_difficulty,
            "auth_required": cfg.auth_required,
            "payment_required": cfg.write_policy == WritePolicy::Paid,
            "restricted_writes": cfg.write_policy != WritePolicy::Open,
            "created_at_upper_limit": cfg.created_at_future_secs,
        },
    });
    if cfg.created_at_past_secs > 0 {
        doc["limitation"]["created_at_lower_limit"] = cfg.created_at_past_secs.into();
    }
    doc["self"] = relay.service_keys().public_key().to_hex().into();
    if cfg.write_policy == WritePolicy::Paid {
        doc["payments_url"] = relay.payments_url().into();
        doc["fees"] = serde_json::json!({
            "admission": [{ "amount": cfg.admission_sats.saturating_mul(1_000), "unit": "msats" }],
        });
    }
    if let Some(pk) = &cfg.operator_pubkey {
        doc["pubkey"] = pk.clone().into();
    }
    if let Some(contact) = &cfg.contact {
        doc["contact"] = contact.clone().into();
    }
    doc
}
