//! What the two chain sources that talk to a server (bitcoind, Electrum) share: their limits, the
//! bounded cache of transactions they have fetched, and how a server URL is shown in messages.

use std::collections::HashMap;
use std::sync::Arc;

use bitcoin::{BlockHash, Transaction, Txid};
use flash_core::onchain::{ChainError, ChainSyncRequest};
use flash_core::Network;

/// Default timeout of one request to the server (connecting, sending, reading the answer),
/// seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// How many times a sync starts again when the chain moves under it (a block arrives between
/// two of its requests) before it gives up with `ChainError::Unavailable`.
pub(crate) const SYNC_ATTEMPTS_MAX: u32 = 3;

/// Most requests sent in one batch.
pub(crate) const BATCH_MAX: usize = 100;

/// A fee rate above this (10,000 sat/vB) is taken for a broken estimate, not a quote.
pub(crate) const FEE_RATE_MAX_SAT_PER_KVB: u64 = 10_000_000;

/// Most transactions kept in a [`TxCache`]; it is emptied when full.
const TX_CACHE_MAX: usize = 20_000;

/// Transactions fetched from the server, by txid (a txid names one transaction for good).
#[derive(Default)]
pub(crate) struct TxCache(HashMap<Txid, Arc<Transaction>>);

impl TxCache {
    /// The cached transaction `txid`.
    pub(crate) fn get(&self, txid: &Txid) -> Option<&Arc<Transaction>> {
        self.0.get(txid)
    }

    /// Keeps `tx`; the cache is emptied first when full.
    pub(crate) fn remember(&mut self, txid: Txid, tx: Arc<Transaction>) {
        if self.0.len() >= TX_CACHE_MAX {
            self.0.clear();
        }
        self.0.insert(txid, tx);
    }
}

/// Refuses a sync request whose known chain starts at another genesis block than the server's
/// (`genesis`, of `network`): a wallet of another network.
pub(crate) fn check_known_genesis(
    request: &ChainSyncRequest,
    genesis: BlockHash,
    network: Network,
) -> Result<(), ChainError> {
    match request.known_chain.iter().find(|b| b.height == 0 && b.hash != genesis) {
        Some(theirs) => Err(ChainError::WrongNetwork(
            format!("a known chain with genesis block {}", theirs.hash),
            network,
        )),
        None => Ok(()),
    }
}

/// `url` without any `user:password@` part, for messages and logs.
pub fn url_without_credentials(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_out_of_urls_shown() {
        assert_eq!(
            url_without_credentials("http://u:p@127.0.0.1:8332/"),
            "http://127.0.0.1:8332/"
        );
        assert_eq!(
            url_without_credentials("http://127.0.0.1:8332"),
            "http://127.0.0.1:8332"
        );
        assert_eq!(url_without_credentials("u:p@host:1/x"), "host:1/x");
        assert_eq!(
            url_without_credentials("ssl://e.example:50002"),
            "ssl://e.example:50002"
        );
    }
}
