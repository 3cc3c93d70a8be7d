//! What NUT-17 subscriptions watch: the current state of mint quotes, melt quotes and notes
//! as the payloads a wallet receives, and a wake-up for every change this node makes.
//!
//! A change this node commits (a swap, an issue, a melt) is announced on a broadcast channel
//! at once; changes made elsewhere (a mint quote's invoice settled by the bank's Lightning
//! worker, or another flashd node) are found by reading the state again, so a subscriber
//! compares what it last sent with the current state on each wake-up and on a timer.

use cashu::nuts::{CheckStateRequest, PublicKey};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::{Mint, MintError};

/// What a subscription watches (NUT-17 `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Watch {
    /// `bolt11_mint_quote`: mint quotes by id.
    MintQuote,
    /// `bolt11_melt_quote`: melt quotes by id.
    MeltQuote,
    /// `proof_state`: notes by `Y`.
    ProofState,
}

impl Watch {
    /// The kind for a NUT-17 kind name, if the mint serves it.
    pub fn from_kind(kind: &cashu::nuts::nut17::Kind) -> Option<Watch> {
        use cashu::nuts::nut17::Kind;
        match kind {
            Kind::Bolt11MintQuote => Some(Watch::MintQuote),
            Kind::Bolt11MeltQuote => Some(Watch::MeltQuote),
            Kind::ProofState => Some(Watch::ProofState),
            _ => None,
        }
    }
}

/// Capacity of the change channel; a subscriber that falls behind reads every state again.
const CHANGES_CAPACITY: usize = 1_024;

/// Announces changes to subscribers on this node.
#[derive(Clone)]
pub(crate) struct Changes(broadcast::Sender<()>);

impl Default for Changes {
    fn default() -> Self {
        Changes(broadcast::channel(CHANGES_CAPACITY).0)
    }
}

impl Mint {
    /// A receiver woken after every change this node commits.
    pub fn changes(&self) -> broadcast::Receiver<()> {
        self.changes.0.subscribe()
    }

    /// Tells subscribers that something changed.
    pub(crate) fn changed(&self) {
        // Nobody listening is fine.
        let _ = self.changes.0.send(());
    }

    /// The current payload of each filter that names an existing object, as `(filter,
    /// payload)`; unknown quote ids and malformed `Y`s are left out.
    pub async fn watched(&self, watch: Watch, filters: &[String]) -> Result<Vec<(String, Value)>, MintError> {
        let json = |v: Result<Value, serde_json::Error>| v.map_err(|e| MintError::Internal(e.to_string()));
        let mut out = Vec::with_capacity(filters.len());
        match watch {
            Watch::MintQuote => {
                for id in filters {
                    match self.mint_quote_state(id).await {
                        Ok(q) => out.push((id.clone(), json(serde_json::to_value(q))?)),
                        Err(MintError::UnknownQuote) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Watch::MeltQuote => {
                for id in filters {
                    match self.melt_quote_state(id).await {
                        Ok(q) => out.push((id.clone(), json(serde_json::to_value(q))?)),
                        Err(MintError::UnknownQuote) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Watch::ProofState => {
                let ys: Vec<PublicKey> = filters.iter().filter_map(|y| PublicKey::from_hex(y).ok()).collect();
                let states = self.check_state(CheckStateRequest { ys }).await?;
                for state in states.states {
                    out.push((state.y.to_hex(), json(serde_json::to_value(state))?));
                }
            }
        }
        Ok(out)
    }
}
