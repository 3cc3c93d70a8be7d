//! Flash's on-chain adapters. They implement `flash-core`'s on-chain ports and nothing else:
//! the bank decides and posts; these only talk to the chain and derive addresses.
//!
//! - [`wallet::BdkHotWallet`]: the hot wallet, BDK's wallet engine over any chain source, its
//!   state kept in the Flash store;
//! - [`dev::DevChain`]: the simulated chain of the embedded tier;
//! - [`electrum::ElectrumChain`]: the chain seen through an Electrum server;
//! - [`bitcoind::BitcoindChain`]: the chain read from Bitcoin Core over JSON-RPC, woken by ZMQ;
//! - [`keys`]: the hot wallet's BIP84 descriptors from its seed;
//! - [`remote`]: what the bitcoind and Electrum sources share.

pub mod bitcoind;
pub mod dev;
pub mod electrum;
pub mod keys;
pub mod remote;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wallet;

pub use bitcoind::{BitcoindAuth, BitcoindChain, BitcoindConfig};
pub use dev::DevChain;
pub use electrum::{ElectrumChain, ElectrumConfig};
pub use keys::{cold_descriptors, generate_seed, hot_descriptors, HotDescriptors, SoftwareSigner};
pub use remote::url_without_credentials;
pub use wallet::{BdkColdWallet, BdkHotWallet};
