//! On-chain ports: [`ChainSource`] (what a chain backend answers: bitcoind, Electrum, or the
//! `dev` simulator), [`HotWallet`] (the bank's view of its hot wallet: addresses it hands out
//! and the outputs it received) and [`WalletStateStore`] (where a wallet adapter keeps its
//! state, so it lives in the bank's database beside the ledger).
//!
//! A chain source answers one question, [`ChainSource::sync`]: "given the blocks I know and
//! the scripts, outpoints and transactions I watch, what changed?" It fits all three backends:
//! Electrum answers it per script, bitcoind and the simulator by reading blocks and the
//! mempool. A reorganisation shows as an update whose chain forks below the caller's tip.

use std::sync::Arc;
use std::time::Duration;

use bitcoin::{Address, BlockHash, OutPoint, Psbt, ScriptBuf, Transaction, Txid};

use crate::ports::BoxFuture;
use crate::{Network, Sats};

/// Why a chain operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The chain backend could not be reached or answered badly; try again later.
    #[error("chain backend unavailable: {0}")]
    Unavailable(String),
    /// The backend refused (a transaction it will not relay, a block it does not have).
    #[error("refused by the chain backend: {0}")]
    Refused(String),
    /// Bad input: an address, amount or transaction that cannot be used.
    #[error("{0}")]
    InvalidInput(String),
    /// An address or transaction of another network.
    #[error("{0} is for another network than {1}")]
    WrongNetwork(String, Network),
    /// The wallet's confirmed coins do not cover the payouts and their fee.
    #[error("the hot wallet cannot cover this: {0}")]
    InsufficientFunds(String),
    /// The wallet's state could not be read or written.
    #[error("wallet state storage failed: {0}")]
    Storage(String),
    /// The operation needs the `dev` simulator, or dev features, which this Flash does not run.
    #[error("not supported here: {0}")]
    Unsupported(&'static str),
}

/// A block by height and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockRef {
    /// Its height.
    pub height: u32,
    /// Its hash.
    pub hash: BlockHash,
}

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxPosition {
    /// In a block of the best chain.
    Confirmed {
        /// The block.
        block: BlockRef,
        /// The block's timestamp, Unix seconds.
        time: u64,
    },
    /// In the backend's mempool.
    Mempool {
        /// When the backend reported it, Unix seconds.
        seen_at: u64,
    },
}

/// A transaction and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTx {
    /// The transaction.
    pub tx: Arc<Transaction>,
    /// Confirmed or in the mempool.
    pub position: TxPosition,
}

/// What a [`ChainSource::sync`] caller knows and watches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainSyncRequest {
    /// Blocks the caller holds, any order; the source answers from the highest of these that
    /// is still in its best chain.
    pub known_chain: Vec<BlockRef>,
    /// Scripts whose new transactions are wanted.
    pub scripts: Vec<ScriptBuf>,
    /// Outputs whose spending transactions are wanted.
    pub outpoints: Vec<OutPoint>,
    /// Transactions the caller knows of, whose position is wanted (confirmed, in the mempool,
    /// or gone).
    pub txids: Vec<Txid>,
}

/// What changed since the caller's known chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainUpdate {
    /// Blocks of the best chain, ascending: the fork point (the highest block of `known_chain`
    /// still in the best chain, else genesis), the best chain's block at every height of
    /// `known_chain` above it, the block of every confirmed transaction in `transactions`, and
    /// the tip. Sources may send more heights (the simulator sends them all).
    pub chain: Vec<BlockRef>,
    /// Transactions that touch the watched scripts or outpoints in blocks after the fork point
    /// or in the mempool, and the watched transactions wherever they are.
    pub transactions: Vec<ChainTx>,
    /// Watched transactions that are neither in the best chain nor in the mempool, with the
    /// time (Unix seconds) they were found missing.
    pub missing: Vec<(Txid, u64)>,
}

/// A chain backend: bitcoind, Electrum, or the `dev` simulator.
pub trait ChainSource: Send + Sync {
    /// The network it serves.
    fn network(&self) -> Network;
    /// `dev`, `bitcoind` or `electrum`, for logs and `/healthz`.
    fn kind(&self) -> &'static str;
    /// What changed since `request.known_chain`.
    fn sync(&self, request: ChainSyncRequest) -> BoxFuture<'_, Result<ChainUpdate, ChainError>>;
    /// Hands a signed transaction to the network. A transaction the backend already has (in
    /// its mempool or chain) is a success, so a broadcast can be repeated safely.
    fn broadcast<'a>(&'a self, tx: &'a Transaction) -> BoxFuture<'a, Result<(), ChainError>>;
    /// The fee rate, in satoshis per 1,000 virtual bytes, for confirmation within
    /// `target_blocks`.
    fn fee_rate(&self, target_blocks: u16) -> BoxFuture<'_, Result<u64, ChainError>>;
    /// Waits until the chain or mempool may have changed, or `timeout` passes (backends that
    /// cannot be notified just sleep).
    fn wait_for_activity(&self, timeout: Duration) -> BoxFuture<'_, ()>;
}

/// What the dev simulator does with the transactions it is given: relay them, or fail the way
/// a real backend can fail (the operator's fault injection, to rehearse crashes and outages).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BroadcastBehaviour {
    /// Checks and relays them, and answers at once.
    #[default]
    Relay,
    /// The network never gets them: the call hangs until relaying resumes, then fails as
    /// unavailable.
    Lose,
    /// The network gets them (they enter the mempool) but the answer is lost: the call hangs
    /// until relaying resumes, then fails as unavailable.
    LoseAnswer,
}

/// The dev simulator's controls, behind the dev-only admin mutations. Refused on mainnet.
pub trait ChainSimulator: Send + Sync {
    /// From now on, broadcasts behave as `behaviour` (until changed or the process restarts).
    fn set_broadcasts(&self, behaviour: BroadcastBehaviour);
    /// A payment from outside Flash: a transaction paying `amount` to `address`, put in the
    /// mempool. Returns its txid.
    fn deposit<'a>(&'a self, address: &'a str, amount: Sats) -> BoxFuture<'a, Result<Txid, ChainError>>;
    /// Mines `blocks` blocks (the mempool goes into the first). Returns the new tip.
    fn mine(&self, blocks: u32) -> BoxFuture<'_, Result<BlockRef, ChainError>>;
    /// Replaces the top `depth` blocks with `depth + 1` new, empty ones (a longer competing
    /// chain). Their transactions go back to the mempool, unconfirmed, or with
    /// `drop_transactions` vanish with their descendants (as if double-spent). Returns the new
    /// tip.
    fn reorg(&self, depth: u32, drop_transactions: bool) -> BoxFuture<'_, Result<BlockRef, ChainError>>;
}

/// An output the hot wallet received on a deposit address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedOutput {
    /// Which output.
    pub outpoint: OutPoint,
    /// The address it pays (the address index maps it to a wallet).
    pub address: String,
    /// Its value.
    pub amount: Sats,
    /// The height of the block that confirmed it, if confirmed.
    pub confirmed_height: Option<u32>,
}

/// A transaction of the wallet that spends its coins (a payout batch, a sweep), as of one
/// sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendingTx {
    /// Its txid.
    pub txid: Txid,
    /// The height of the block that confirmed it, if confirmed.
    pub confirmed_height: Option<u32>,
}

/// The hot wallet as of one sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletSnapshot {
    /// The best block.
    pub tip: BlockRef,
    /// Outputs received on deposit addresses, unconfirmed or confirmed at or above the height
    /// asked for.
    pub received: Vec<ReceivedOutput>,
    /// The wallet's confirmed balance (all its outputs, deposit and change).
    pub confirmed_balance: Sats,
    /// What unconfirmed transactions would add to or take from it.
    pub unconfirmed_balance: Sats,
    /// The wallet's own spending transactions that are unconfirmed or confirmed at or above
    /// the height asked for. One it made that is missing here is in neither the chain nor the
    /// mempool.
    pub spending: Vec<SpendingTx>,
}

/// One output of a payout transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutOutput {
    /// Where to (already checked for the network).
    pub address: String,
    /// How much.
    pub amount: Sats,
}

/// A signed transaction the wallet built (not yet broadcast).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTx {
    /// The transaction, ready to broadcast.
    pub tx: Transaction,
    /// Its txid.
    pub txid: Txid,
    /// The fee it pays.
    pub fee: Sats,
    /// Its size, virtual bytes.
    pub vsize: u64,
    /// For each payout output asked for, in order, its index in the transaction.
    pub payout_vouts: Vec<u32>,
}

/// Signs the hot wallet's transactions: a software key in the embedded default, an HSM later.
pub trait Signer: Send + Sync {
    /// Signs every input of `psbt` it holds the key for (found by the inputs' BIP32
    /// derivations) and returns it; inputs it cannot sign are left as they are.
    fn sign_psbt(&self, psbt: Psbt) -> BoxFuture<'_, Result<Psbt, ChainError>>;
}

/// The bank's hot wallet: deposit addresses and what arrived on them.
pub trait HotWallet: Send + Sync {
    /// The network it is on.
    fn network(&self) -> Network;
    /// Its chain source's kind (`dev`, `bitcoind`, `electrum`).
    fn source_kind(&self) -> &'static str;
    /// The deposit address at derivation `index`, watched from now on. The same index always
    /// gives the same address.
    fn deposit_address(&self, index: u32) -> BoxFuture<'_, Result<String, ChainError>>;
    /// A fresh address of the wallet's own (change) chain: for money the bank moves to itself,
    /// never attributed to a user.
    fn internal_address(&self) -> BoxFuture<'_, Result<String, ChainError>>;
    /// Whether `script` is one of the wallet's own (revealed, or within its look-ahead).
    fn owns<'a>(&'a self, script: &'a bitcoin::Script) -> BoxFuture<'a, bool>;
    /// Brings the wallet up to date with the chain. `received` in the answer holds the
    /// outputs that are unconfirmed or confirmed at `from_height` or above.
    fn sync(&self, from_height: u32) -> BoxFuture<'_, Result<WalletSnapshot, ChainError>>;
    /// Waits until the chain may have changed, or `timeout` passes.
    fn wait_for_activity(&self, timeout: Duration) -> BoxFuture<'_, ()>;
    /// The chain's fee rate for confirmation within `target_blocks`, satoshis per 1,000
    /// virtual bytes.
    fn fee_rate(&self, target_blocks: u16) -> BoxFuture<'_, Result<u64, ChainError>>;
    /// Builds and signs a transaction paying `outputs` at `fee_rate_sat_per_kvb` from the
    /// wallet's confirmed coins, change back to the wallet (or to its fee when below dust).
    /// The wallet counts its coins as spent from now on; [`HotWallet::forget`] gives them back.
    fn build_payout<'a>(
        &'a self,
        outputs: &'a [PayoutOutput],
        fee_rate_sat_per_kvb: u64,
    ) -> BoxFuture<'a, Result<SignedTx, ChainError>>;
    /// Builds and signs a replacement of unconfirmed `txid` (BIP125) paying
    /// `fee_rate_sat_per_kvb`: same payouts, less change.
    fn bump_fee(&self, txid: Txid, fee_rate_sat_per_kvb: u64) -> BoxFuture<'_, Result<SignedTx, ChainError>>;
    /// Hands a signed transaction to the network. Already known to the network is success.
    fn broadcast<'a>(&'a self, tx: &'a Transaction) -> BoxFuture<'a, Result<(), ChainError>>;
    /// Drops a transaction the wallet built that will never be broadcast, so its coins can
    /// be spent again.
    fn forget(&self, txid: Txid) -> BoxFuture<'_, Result<(), ChainError>>;
    /// The unconfirmed transactions spending the wallet's coins, as the wallet holds them now
    /// (no network call): those it built and those the chain source reported.
    fn unconfirmed_spends(&self) -> BoxFuture<'_, Result<Vec<Txid>, ChainError>>;
    /// Reads the wallet's state again from where it is kept, for what another process recorded
    /// (the flashd node that ran the wallet before this one took over).
    fn reload(&self) -> BoxFuture<'_, Result<(), ChainError>>;
}

/// A PSBT for cosigners to sign, and the fee it pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsignedPsbt {
    /// The PSBT, with the inputs' BIP32 derivations so each cosigner finds its key.
    pub psbt: Psbt,
    /// The fee it pays.
    pub fee: Sats,
}

/// The cold wallet: an m-of-n multisig the server only watches. Spending it takes cosigners'
/// signatures made offline on a PSBT.
pub trait ColdWallet: Send + Sync {
    /// A fresh receive address (for sweeps from the hot wallet).
    fn receive_address(&self) -> BoxFuture<'_, Result<String, ChainError>>;
    /// Whether `script` is one of the wallet's own (see [`HotWallet::owns`]).
    fn owns<'a>(&'a self, script: &'a bitcoin::Script) -> BoxFuture<'a, bool>;
    /// Brings the wallet up to date: its balances, and its spending transactions (the sweeps
    /// back to the hot wallet) unconfirmed or confirmed at or above `from_height`.
    fn sync(&self, from_height: u32) -> BoxFuture<'_, Result<WalletSnapshot, ChainError>>;
    /// A PSBT paying `outputs` from the confirmed coins at `fee_rate_sat_per_kvb`.
    fn create_psbt<'a>(
        &'a self,
        outputs: &'a [PayoutOutput],
        fee_rate_sat_per_kvb: u64,
    ) -> BoxFuture<'a, Result<UnsignedPsbt, ChainError>>;
    /// Combines cosigners' signed copies of one PSBT and finalises it; refused while it lacks
    /// signatures.
    fn finalize(&self, signed: Vec<Psbt>) -> BoxFuture<'_, Result<SignedTx, ChainError>>;
    /// Hands a finalised transaction to the network.
    fn broadcast<'a>(&'a self, tx: &'a Transaction) -> BoxFuture<'a, Result<(), ChainError>>;
    /// Drops a finalised transaction that will never be broadcast (refused, or not recorded),
    /// so its coins can be spent again.
    fn forget(&self, txid: Txid) -> BoxFuture<'_, Result<(), ChainError>>;
    /// Reads the wallet's state again (see [`HotWallet::reload`]).
    fn reload(&self) -> BoxFuture<'_, Result<(), ChainError>>;
}

/// Where a wallet adapter keeps its state: an append-only list of changes per wallet, read
/// back in order at start-up.
pub trait WalletStateStore: Send + Sync {
    /// Every change recorded for `wallet`, oldest first.
    fn load_wallet_state<'a>(&'a self, wallet: &'a str) -> BoxFuture<'a, Result<Vec<String>, ChainError>>;
    /// Records one more change for `wallet`.
    fn append_wallet_state<'a>(&'a self, wallet: &'a str, change: String) -> BoxFuture<'a, Result<(), ChainError>>;
}

/// The `bitcoin` crate's name for `network`.
pub fn bitcoin_network(network: Network) -> bitcoin::Network {
    match network {
        Network::Mainnet => bitcoin::Network::Bitcoin,
        Network::Testnet => bitcoin::Network::Testnet,
        Network::Signet => bitcoin::Network::Signet,
        Network::Regtest => bitcoin::Network::Regtest,
    }
}

/// Parses `text` as an address of `network`: typed errors for garbage and for addresses of
/// another network.
pub fn parse_address(text: &str, network: Network) -> Result<Address, ChainError> {
    let text = text.trim();
    let unchecked = text
        .parse::<Address<bitcoin::address::NetworkUnchecked>>()
        .map_err(|e| ChainError::InvalidInput(format!("not a Bitcoin address: {e}")))?;
    unchecked
        .require_network(bitcoin_network(network))
        .map_err(|_| ChainError::WrongNetwork(format!("address {text}"), network))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_for_their_network() {
        let regtest = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        let mainnet = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
        assert!(parse_address(regtest, Network::Regtest).is_ok());
        assert!(matches!(
            parse_address(mainnet, Network::Regtest),
            Err(ChainError::WrongNetwork(_, Network::Regtest))
        ));
        assert!(matches!(
            parse_address(regtest, Network::Mainnet),
            Err(ChainError::WrongNetwork(_, Network::Mainnet))
        ));
        assert!(matches!(
            parse_address("bcrt1qnotanaddress", Network::Regtest),
            Err(ChainError::InvalidInput(_))
        ));
    }
}
