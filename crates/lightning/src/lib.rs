//! Adapters of `flash_core::lightning::LightningNode`. A rail never touches the ledger: it
//! creates invoices, pays, and reports settlements to the bank, which posts them.
//!
//! - [`DevNode`]: the embedded default, an honest simulator. It issues real BOLT11 invoices
//!   signed with a key it keeps, settles them when "paid from outside" (the dev-only way to see a
//!   receive), and pays other nodes' invoices with a configured outcome. It refuses mainnet and
//!   says it is simulated in [`NodeInfo`](flash_core::lightning::NodeInfo).

mod bolt11;
mod dev;

pub use dev::{DevNode, DevOutcome};
