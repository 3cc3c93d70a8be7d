//! Adapters of `flash_core::lightning::LightningNode`. A rail never touches the ledger: it
//! creates invoices, pays, and reports settlements to the bank, which posts them.
//!
//! - [`DevNode`]: the embedded default, an honest simulator. It issues real BOLT11 invoices
//!   signed with a key it keeps, settles them when "paid from outside" (the dev-only way to see a
//!   receive), and pays other nodes' invoices with a configured outcome. It refuses mainnet and
//!   says it is simulated in [`NodeInfo`](flash_core::lightning::NodeInfo).
//! - [`LndNode`]: an external LND node over gRPC (TLS with its pinned certificate, a macaroon),
//!   configured by [`LndConfig`]. It refuses to start when LND runs on another network.
//! - `ldk::LdkNode` (cargo feature `ldk`): the embedded LDK node (ldk-node), its chain from
//!   bitcoind, Electrum or Esplora, with an optional LSPS2 client for just-in-time inbound.
//! - [`HttpLnurlClient`]: pays other services' LNURL-pay links and Lightning addresses, over a
//!   hardened HTTP client.

mod bolt11;
mod dev;
#[cfg(feature = "ldk")]
pub mod ldk;
pub mod lnd;
mod lnurl;

pub use dev::{DevNode, DEV_CHANNEL_SATS, DEV_ONCHAIN_SATS};
pub use flash_core::lightning::DevOutcome;
pub use lnd::{LndConfig, LndNode};
pub use lnurl::{HttpLnurlClient, LnurlClientConfig};
