//! The bitcoind chain source: the [`ChainSource`] port over Bitcoin Core's JSON-RPC (versions 27
//! to 29), woken by its ZMQ notifications.
//!
//! A sync reads blocks and the mempool, like the simulator and unlike Electrum: the node has no
//! index by script (and no `-txindex` is assumed), so every block above the caller's fork point
//! is fetched and searched for the watched scripts, outpoints and txids, and so is the mempool.
//! What the node cannot say without an index (where a transaction confirmed long ago is, whether
//! one that vanished is gone for good) comes from what this source itself saw in earlier syncs:
//! see [`BitcoindChain`] for the exact rules.
//!
//! The RPC client (`bitcoincore-rpc`, through `bdk_bitcoind_rpc`) is blocking, so every exchange
//! runs on tokio's blocking pool. Syncs run one at a time (the hot and the cold wallet share one
//! source); broadcasts, fee estimates and polls go on beside them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bdk_bitcoind_rpc::bitcoincore_rpc::jsonrpc::{self, simple_http};
use bdk_bitcoind_rpc::bitcoincore_rpc::{self, Client, RpcApi};
use bdk_bitcoind_rpc::{Emitter, NO_EXPECTED_MEMPOOL_TXS};
use bdk_wallet::chain::{BlockId, CheckPoint};
use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::{Block, BlockHash, OutPoint, ScriptBuf, Transaction, Txid};
use flash_core::onchain::{
    bitcoin_network, BlockRef, ChainError, ChainSource, ChainSyncRequest, ChainTx, ChainUpdate, TxPosition,
};
use flash_core::ports::BoxFuture;
use flash_core::Network;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use zeromq::{Socket, SocketEvent, SocketRecv};

pub use crate::remote::DEFAULT_TIMEOUT_SECS;
use crate::remote::{
    check_known_genesis, url_without_credentials, TxCache, BATCH_MAX, FEE_RATE_MAX_SAT_PER_KVB, SYNC_ATTEMPTS_MAX,
};

/// Most mempool transactions kept between syncs (the cache mirrors the node's mempool; beyond
/// this, the rest are fetched again at every sync).
const MEMPOOL_CACHE_MAX: usize = 50_000;

/// Most transactions whose whereabouts are remembered (see [`BitcoindChain`]); emptied when full.
const RECORDS_MAX: usize = 100_000;

/// How far below the fork point a sync looks for a watched transaction it has no record of
/// (after a restart): the hot wallet's own re-check depth.
const LOCATE_DEPTH: u32 = 144;

/// How far below the fork point a sync scans to prove a watched transaction missing (a week of
/// blocks); deeper than that it gives no verdict.
const EXTEND_MAX: u32 = 1_008;

/// A forward scan longer than this is logged as a warning (its cost is one `getblock` per block).
const LONG_SCAN_BLOCKS: u32 = 1_000;

/// Estimates are asked for 1 to 1,008 blocks (`estimatesmartfee`'s range).
const FEE_TARGET_MAX: u16 = 1_008;

/// How often [`ChainSource::wait_for_activity`] polls the node when no ZMQ notification
/// connection is up.
const ACTIVITY_POLL_MS: u64 = 1_000;

/// After a ZMQ notification, [`ChainSource::wait_for_activity`] returns no sooner than this after
/// it was called: a mainnet mempool notifies several transactions a second, and one sync a second
/// is enough.
const ACTIVITY_MIN_GAP_MS: u64 = 1_000;

/// Longest pause between two attempts to connect a ZMQ endpoint.
const ZMQ_BACKOFF_MAX_SECS: u64 = 30;

/// How long one attempt to connect a ZMQ endpoint may take.
const ZMQ_CONNECT_TIMEOUT_SECS: u64 = 30;

/// Bitcoin Core's RPC error codes this source tells apart (`src/rpc/protocol.h`).
mod code {
    /// `RPC_INVALID_PARAMETER`: a block height out of range, among others.
    pub const INVALID_PARAMETER: i32 = -8;
    /// `RPC_INVALID_ADDRESS_OR_KEY`: no such block or transaction.
    pub const NOT_FOUND: i32 = -5;
    /// `RPC_DESERIALIZATION_ERROR`: a transaction it cannot decode.
    pub const DESERIALIZATION: i32 = -22;
    /// `RPC_VERIFY_ERROR` / `RPC_TRANSACTION_ERROR`: missing inputs, fee above the maximum.
    pub const VERIFY_ERROR: i32 = -25;
    /// `RPC_VERIFY_REJECTED` / `RPC_TRANSACTION_REJECTED`: refused by mempool policy.
    pub const VERIFY_REJECTED: i32 = -26;
    /// `RPC_VERIFY_ALREADY_IN_CHAIN` / `RPC_TRANSACTION_ALREADY_IN_CHAIN`.
    pub const ALREADY_IN_CHAIN: i32 = -27;
    /// `RPC_IN_WARMUP`: the node is still starting.
    pub const IN_WARMUP: i32 = -28;
}

/// How Flash proves who it is to bitcoind.
#[derive(Clone, PartialEq, Eq)]
pub enum BitcoindAuth {
    /// The cookie file bitcoind writes at start (`-rpccookiefile`, by default `.cookie` in its
    /// data directory). Read at connection, and again whenever bitcoind refuses it (a restarted
    /// node writes a new cookie).
    CookieFile(PathBuf),
    /// `-rpcuser` / `-rpcpassword` (or an `-rpcauth` entry).
    UserPass {
        /// The user name.
        user: String,
        /// The password (never printed).
        password: String,
    },
}

impl fmt::Debug for BitcoindAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitcoindAuth::CookieFile(path) => f.debug_tuple("CookieFile").field(path).finish(),
            BitcoindAuth::UserPass { user, .. } => f
                .debug_struct("UserPass")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// How to reach a bitcoind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitcoindConfig {
    /// The RPC endpoint, `http://host:port` (bitcoind speaks plain HTTP: reach a remote node over
    /// a private network or a tunnel). Credentials go in `auth`, never in the URL.
    pub rpc_url: String,
    /// The RPC credentials.
    pub auth: BitcoindAuth,
    /// The network the node must serve (checked against its chain name and genesis block).
    pub network: Network,
    /// bitcoind's `-zmqpubrawtx` endpoint (`tcp://host:port`), to wake on new transactions.
    pub zmq_rawtx: Option<String>,
    /// bitcoind's `-zmqpubhashblock` endpoint (`tcp://host:port`), to wake on new blocks.
    pub zmq_hashblock: Option<String>,
    /// Timeout of each RPC request, seconds (at least 1); also how long connecting waits for a
    /// node that is still starting.
    pub timeout_secs: u64,
}

impl BitcoindConfig {
    /// `rpc_url` with `auth` for `network`, no ZMQ, a [`DEFAULT_TIMEOUT_SECS`] timeout.
    pub fn new(rpc_url: impl Into<String>, auth: BitcoindAuth, network: Network) -> BitcoindConfig {
        BitcoindConfig {
            rpc_url: rpc_url.into(),
            auth,
            network,
            zmq_rawtx: None,
            zmq_hashblock: None,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
        }
    }
}

/// The bitcoind chain source.
///
/// What [`ChainSource::sync`] answers, precisely:
///
/// - `chain`: blocks of the node's best chain, ascending by height: the fork point (the highest
///   block of `known_chain` still in the best chain, else genesis), the best chain's block at every
///   height of `known_chain` above it and not above the tip, the block of every confirmed
///   transaction in `transactions` (some may lie below the fork point), and the tip. As with
///   Electrum, a chain that became *shorter* than the caller's (only `invalidateblock` does that)
///   cannot remove the caller's blocks above the new tip; the next block mined replaces them.
/// - `transactions`: every transaction in a block above the fork point or in the mempool that
///   pays a watched script, spends a watched outpoint (or an output of such a transaction paying
///   a watched script), and the watched txids wherever this source can place them: in a block
///   above the fork point, in the mempool, or in a block of the best chain where an earlier sync
///   saw it confirmed. Mempool transactions carry the time this source first saw them there as
///   `seen_at` (stable from sync to sync, so the wallet's state does not change for nothing; after
///   a transaction was reported missing, later than that).
/// - `missing`: watched txids that are in neither the best chain nor the mempool, reported only
///   when that is proven. Without `-txindex` the node cannot say where an arbitrary transaction
///   is, so this source remembers, for each transaction it reported, a *floor*: a block such
///   that the transaction is in no block of the chain ending there (the tip when it was seen in
///   the mempool; the parent of the block it confirmed in, once that block left the best
///   chain). A watched transaction that is not in the mempool is missing when the best chain
///   above the floor's last ancestor still in the best chain has been scanned without finding
///   it: that part is usually above the fork point, scanned anyway; otherwise up to
///   1,008 blocks (a week) below the fork point are scanned for it. A watched transaction this
///   source has no record of (after a restart) is looked for once in the 144 blocks
///   below the fork point; not found there and not in the mempool, it is left out of both lists
///   (its holder keeps what it knew).
///
/// Costs: a sync fetches every block above the fork point (`getblock`, twice per block through
/// BDK's emitter), so a wallet that knows only the genesis block scans the whole chain once:
/// seconds on a young regtest chain, hours on signet, testnet or mainnet (the port has no wallet
/// birthday to start from yet). The mempool is read with `getrawmempool` and each new transaction
/// fetched once, in batches, then cached (at most 50,000 of them).
///
/// The rest of the port:
///
/// - [`ChainSource::broadcast`] is `sendrawtransaction`. What the node already has is a success:
///   error -27 (already in the chain) and the "already in the mempool" reasons; and after a
///   refusal (-22, -25, -26) the node is asked whether it has the transaction anyway (in its
///   mempool, in a block this source saw it in, or as an unspent output), since a confirmed
///   transaction whose outputs are all spent is refused as "missing inputs". Other refusals are
///   [`ChainError::Refused`]; other RPC errors and transport failures
///   [`ChainError::Unavailable`].
/// - [`ChainSource::fee_rate`] is `estimatesmartfee` (target clamped to 1..=1,008), its BTC/kvB
///   read from the JSON text exactly and rounded up to whole satoshis per 1,000 vbytes; without
///   an estimate (always on a young regtest chain) [`ChainError::Unavailable`], and the bank
///   uses its configured fallback.
/// - [`ChainSource::wait_for_activity`] wakes on any ZMQ `rawtx` or `hashblock` message when
///   those endpoints are configured and connected (at most once a second), and otherwise polls
///   the tip and the mempool's size every second.
/// - The cookie file is read again whenever bitcoind refuses it (a restarted node writes a new
///   one).
///
/// Blocks are read through `bdk_bitcoind_rpc`'s [`Emitter`], built afresh for each sync from the
/// request's `known_chain` (it finds the fork point and follows reorganisations during the scan).
/// Its mempool half is not used: it keeps, per consumer, the mempool it emitted last time to
/// report evictions, whereas this port answers requests from several wallets, each saying what
/// it knows, so the mempool, the scans below the fork point and the broadcasts use the RPC client
/// directly.
pub struct BitcoindChain {
    shared: Arc<Shared>,
    /// The ZMQ listeners, stopped when the source is dropped.
    listeners: Vec<JoinHandle<()>>,
}

impl fmt::Debug for BitcoindChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BitcoindChain")
            .field("rpc_url", &self.shared.url())
            .field("network", &self.shared.config.network)
            .field("notifications_connected", &self.notifications_connected())
            .finish()
    }
}

impl Drop for BitcoindChain {
    fn drop(&mut self) {
        for listener in &self.listeners {
            listener.abort();
        }
    }
}

struct Shared {
    config: BitcoindConfig,
    genesis: BlockHash,
    /// The RPC client; replaced when a cookie is read again.
    client: Mutex<Arc<Client>>,
    /// Held for a whole sync: one at a time.
    caches: Mutex<Caches>,
    records: Mutex<Records>,
    /// Woken by ZMQ messages (a permit is kept when nobody waits).
    activity: Notify,
    /// How many ZMQ connections are up now.
    zmq_up: AtomicUsize,
    /// The node's tip and mempool as of the last sync or poll, for polling without ZMQ.
    last_seen: Mutex<Option<Fingerprint>>,
}

/// What a sync remembers between runs.
#[derive(Default)]
struct Caches {
    /// The node's mempool as last read, with when each transaction was first seen there (Unix
    /// seconds).
    mempool: HashMap<Txid, (Arc<Transaction>, u64)>,
    /// Transactions reported confirmed.
    txs: TxCache,
}

/// Where a reported transaction was last seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Record {
    /// In `block` (whose parent is `parent`), of timestamp `time`.
    Confirmed {
        block: BlockRef,
        parent: BlockRef,
        time: u64,
    },
    /// Unconfirmed: in no block of the chain ending at `floor`.
    Unconfirmed { floor: BlockRef },
}

#[derive(Default)]
struct Records {
    by_txid: HashMap<Txid, Record>,
    /// Txids looked for below the fork point (no record) and not found.
    searched: HashSet<Txid>,
    /// When each txid was last reported missing (a transaction back in the mempool must be seen
    /// after that, or its holder keeps it evicted).
    missing_at: HashMap<Txid, u64>,
}

impl Records {
    fn apply(&mut self, changes: RecordChanges) {
        if self.by_txid.len() + changes.records.len() > RECORDS_MAX {
            self.by_txid.clear();
        }
        if self.searched.len() + changes.searched.len() > RECORDS_MAX {
            self.searched.clear();
        }
        if self.missing_at.len() + changes.missing.len() > RECORDS_MAX {
            self.missing_at.clear();
        }
        self.missing_at.extend(changes.missing);
        for (txid, record) in changes.records {
            self.searched.remove(&txid);
            self.by_txid.insert(txid, record);
        }
        self.searched.extend(changes.searched);
    }
}

/// What one sync learnt.
#[derive(Default)]
struct RecordChanges {
    records: Vec<(Txid, Record)>,
    searched: Vec<Txid>,
    missing: Vec<(Txid, u64)>,
}

/// The node's tip and mempool size, to notice a change by polling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    tip: BlockHash,
    mempool_size: u64,
    mempool_bytes: u64,
}

/// What went wrong in one exchange with the node.
#[derive(Debug)]
enum Fault {
    /// It could not be reached, or its HTTP answer was not JSON-RPC.
    Transport(String),
    /// It refused the credentials (HTTP 401).
    Auth,
    /// It answered with an RPC error.
    Rpc { code: i32, message: String },
    /// It answered something unreadable or inconsistent.
    Answer(String),
    /// The chain moved between two requests of a sync: start again.
    Moved(String),
    /// A typed outcome for the caller.
    Chain(ChainError),
}

fn fault(e: bitcoincore_rpc::Error) -> Fault {
    use bitcoincore_rpc::Error as E;
    match e {
        E::JsonRpc(e) => jsonrpc_fault(e),
        E::Io(e) => Fault::Transport(e.to_string()),
        E::InvalidCookieFile => Fault::Transport("unreadable cookie file".into()),
        other => Fault::Answer(other.to_string()),
    }
}

fn jsonrpc_fault(e: jsonrpc::Error) -> Fault {
    match e {
        jsonrpc::Error::Rpc(e) => Fault::Rpc {
            code: e.code,
            message: e.message,
        },
        jsonrpc::Error::Transport(e) => match e.downcast_ref::<simple_http::Error>() {
            Some(simple_http::Error::HttpErrorCode(401)) => Fault::Auth,
            Some(simple_http::Error::HttpErrorCode(403)) => {
                Fault::Transport("HTTP 403 Forbidden: this address is not in the node's -rpcallowip".into())
            }
            _ => Fault::Transport(e.to_string()),
        },
        other => Fault::Answer(other.to_string()),
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The network a chain name of `getblockchaininfo` is (testnet4 is Flash's testnet too).
fn network_of_chain(chain: &str) -> Option<Network> {
    match chain {
        "main" => Some(Network::Mainnet),
        "test" | "testnet4" => Some(Network::Testnet),
        "signet" => Some(Network::Signet),
        "regtest" => Some(Network::Regtest),
        _ => None,
    }
}

/// Checks a ZMQ endpoint's form.
fn check_zmq_endpoint(endpoint: &str) -> Result<(), ChainError> {
    let bad = |why: &str| ChainError::InvalidInput(format!("ZMQ endpoint {endpoint:?}: {why}"));
    let Some(address) = endpoint.strip_prefix("tcp://") else {
        return Err(bad("must be tcp://host:port"));
    };
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => Ok(()),
        _ => Err(bad("must be tcp://host:port")),
    }
}

/// An RPC client for `config`, reading the cookie file if that is the authentication.
fn new_client(config: &BitcoindConfig) -> Result<Client, ChainError> {
    let url = config.rpc_url.trim();
    if !url.starts_with("http://") {
        return Err(ChainError::InvalidInput(format!(
            "bitcoind RPC URL {:?}: must start with http:// (bitcoind speaks plain HTTP)",
            url_without_credentials(url)
        )));
    }
    let builder = simple_http::SimpleHttpTransport::builder()
        .url(url)
        .map_err(|e| match e {
            simple_http::Error::InvalidUrl { reason, .. } => {
                ChainError::InvalidInput(format!("bitcoind RPC URL {:?}: {reason}", url_without_credentials(url)))
            }
            other => ChainError::Unavailable(format!("bitcoind at {}: {other}", url_without_credentials(url))),
        })?
        .timeout(Duration::from_secs(config.timeout_secs.max(1)));
    let builder = match &config.auth {
        BitcoindAuth::UserPass { user, password } => builder.auth(user.as_str(), Some(password.as_str())),
        BitcoindAuth::CookieFile(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ChainError::Unavailable(format!("cannot read bitcoind's cookie file {}: {e}", path.display()))
            })?;
            let cookie = text.lines().next().unwrap_or_default().trim();
            if !cookie.contains(':') {
                return Err(ChainError::Unavailable(format!(
                    "{} is not a bitcoind cookie file (user:password)",
                    path.display()
                )));
            }
            builder.cookie_auth(cookie)
        }
    };
    Ok(Client::from_jsonrpc(jsonrpc::Client::with_transport(builder.build())))
}

fn call<T: DeserializeOwned>(c: &Client, method: &str, params: &[Value]) -> Result<T, Fault> {
    c.call(method, params).map_err(fault)
}

/// An RPC error of one batched call: code and message.
type RpcError = (i32, String);

/// Calls `method` once per entry of `params`, in batches. Per call: its result, or its RPC
/// error (code, message).
fn batch<T: DeserializeOwned>(
    c: &Client,
    method: &str,
    params: &[Vec<Value>],
) -> Result<Vec<Result<T, RpcError>>, Fault> {
    let jc = c.get_jsonrpc_client();
    let mut out = Vec::with_capacity(params.len());
    for chunk in params.chunks(BATCH_MAX) {
        let raws = chunk
            .iter()
            .map(serde_json::value::to_raw_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Fault::Answer(e.to_string()))?;
        let requests: Vec<_> = raws.iter().map(|r| jc.build_request(method, Some(r))).collect();
        let responses = jc.send_batch(&requests).map_err(jsonrpc_fault)?;
        for response in responses {
            let response = response.ok_or_else(|| Fault::Answer(format!("no answer to a batched {method}")))?;
            match response.result::<T>() {
                Ok(value) => out.push(Ok(value)),
                Err(jsonrpc::Error::Rpc(e)) => out.push(Err((e.code, e.message))),
                Err(e) => return Err(Fault::Answer(format!("{method}: {e}"))),
            }
        }
    }
    Ok(out)
}

fn parse_hash(text: &str) -> Result<BlockHash, Fault> {
    text.parse()
        .map_err(|e| Fault::Answer(format!("block hash {text:?}: {e}")))
}

fn parse_txid(text: &str) -> Result<Txid, Fault> {
    text.parse().map_err(|e| Fault::Answer(format!("txid {text:?}: {e}")))
}

fn decode_tx(txid: Txid, hex: &str) -> Result<Arc<Transaction>, Fault> {
    let tx: Transaction = deserialize_hex(hex).map_err(|e| Fault::Answer(format!("transaction {txid}: {e}")))?;
    if tx.compute_txid() != txid {
        return Err(Fault::Answer(format!("asked for transaction {txid}, got another")));
    }
    Ok(Arc::new(tx))
}

/// The parts of `getblockheader` (verbose) read here.
#[derive(Deserialize)]
struct HeaderInfo {
    height: u32,
    previousblockhash: Option<String>,
}

fn header_info(c: &Client, hash: BlockHash) -> Result<HeaderInfo, Fault> {
    call(c, "getblockheader", &[json!(hash.to_string()), json!(true)])
}

/// The best chain's tip.
fn best_tip(c: &Client) -> Result<BlockRef, Fault> {
    let hash = parse_hash(&call::<String>(c, "getbestblockhash", &[])?)?;
    let info = header_info(c, hash).map_err(moved_on_not_found)?;
    Ok(BlockRef {
        height: info.height,
        hash,
    })
}

/// A block or transaction the node no longer has, in the middle of a sync: the chain moved.
fn moved_on_not_found(e: Fault) -> Fault {
    match e {
        Fault::Rpc { code, message } if code == code::NOT_FOUND || code == code::INVALID_PARAMETER => {
            Fault::Moved(message)
        }
        other => other,
    }
}

/// Checks that `block` is the block `hash` names and that its transactions are the ones its
/// header commits to.
fn check_block(block: &Block, hash: BlockHash) -> Result<(), Fault> {
    if block.block_hash() != hash {
        return Err(Fault::Answer(format!(
            "asked for block {hash}, got {}",
            block.block_hash()
        )));
    }
    if !block.check_merkle_root() {
        return Err(Fault::Answer(format!(
            "block {hash}: transactions do not match the merkle root"
        )));
    }
    Ok(())
}

/// The best chain's block hashes, fetched as needed, for one sync.
struct Best {
    tip: BlockRef,
    hashes: BTreeMap<u32, BlockHash>,
}

impl Best {
    /// The best chain's block at `height`; `None` above the tip.
    fn hash_at(&mut self, c: &Client, height: u32) -> Result<Option<BlockHash>, Fault> {
        if height > self.tip.height {
            return Ok(None);
        }
        if let Some(hash) = self.hashes.get(&height) {
            return Ok(Some(*hash));
        }
        let text: String = call(c, "getblockhash", &[json!(height)]).map_err(moved_on_not_found)?;
        let hash = parse_hash(&text)?;
        self.hashes.insert(height, hash);
        Ok(Some(hash))
    }

    /// The best chain's block at `height` (at most the tip), fetched and checked.
    fn block_at(&mut self, c: &Client, height: u32) -> Result<(BlockRef, Block), Fault> {
        let hash = self
            .hash_at(c, height)?
            .ok_or_else(|| Fault::Moved(format!("no block at height {height}")))?;
        let hex: String = call(c, "getblock", &[json!(hash.to_string()), json!(0)]).map_err(moved_on_not_found)?;
        let block: Block = deserialize_hex(&hex).map_err(|e| Fault::Answer(format!("block {hash}: {e}")))?;
        check_block(&block, hash)?;
        Ok((BlockRef { height, hash }, block))
    }

    /// The highest ancestor of `block` (itself included) that is in the best chain, walking back
    /// at most [`EXTEND_MAX`] blocks; `None` when not found (or the node does not know `block`).
    fn branch_point(&mut self, c: &Client, block: BlockRef) -> Result<Option<BlockRef>, Fault> {
        let mut at = block;
        for _ in 0..=EXTEND_MAX {
            if self.hash_at(c, at.height)? == Some(at.hash) {
                return Ok(Some(at));
            }
            if at.height == 0 {
                return Ok(None);
            }
            let info = match header_info(c, at.hash) {
                Ok(info) => info,
                Err(Fault::Rpc { code, .. }) if code == code::NOT_FOUND => return Ok(None),
                Err(e) => return Err(e),
            };
            let Some(prev) = info.previousblockhash else {
                return Ok(None);
            };
            at = BlockRef {
                height: at.height - 1,
                hash: parse_hash(&prev)?,
            };
        }
        Ok(None)
    }
}

/// What a sync looks for.
struct Watch {
    scripts: HashSet<ScriptBuf>,
    outpoints: HashSet<OutPoint>,
    txids: HashSet<Txid>,
}

impl Watch {
    fn new(request: &ChainSyncRequest) -> Watch {
        Watch {
            scripts: request.scripts.iter().cloned().collect(),
            outpoints: request.outpoints.iter().copied().collect(),
            txids: request.txids.iter().copied().collect(),
        }
    }

    /// Whether `tx` is wanted. The outputs of a wanted transaction that pay a watched script are
    /// watched from now on (their spends are wanted too).
    fn take(&mut self, tx: &Transaction, txid: Txid) -> bool {
        let mut pays = false;
        for (vout, out) in tx.output.iter().enumerate() {
            if self.scripts.contains(&out.script_pubkey) {
                pays = true;
                if let Ok(vout) = u32::try_from(vout) {
                    self.outpoints.insert(OutPoint { txid, vout });
                }
            }
        }
        pays || self.txids.contains(&txid) || tx.input.iter().any(|i| self.outpoints.contains(&i.previous_output))
    }
}

/// A transaction a sync reports.
struct Found {
    tx: Arc<Transaction>,
    position: TxPosition,
    /// For a confirmed one, its block's parent.
    parent: Option<BlockRef>,
}

/// Why a sync looks below its fork point for a transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// To prove it missing: not found there means missing.
    Prove,
    /// It has no record: not found there means no verdict.
    Locate,
}

/// The mempool's transactions (those the node still had when asked) and when each was first
/// seen there, refreshing the cache.
fn read_mempool(c: &Client, caches: &mut Caches, now: u64) -> Result<Vec<(Txid, Arc<Transaction>, u64)>, Fault> {
    let texts: Vec<String> = call(c, "getrawmempool", &[])?;
    let ids = texts.iter().map(|t| parse_txid(t)).collect::<Result<Vec<_>, _>>()?;
    let wanted: Vec<Txid> = ids
        .iter()
        .filter(|t| !caches.mempool.contains_key(*t))
        .copied()
        .collect();
    let params: Vec<Vec<Value>> = wanted
        .iter()
        .map(|t| vec![json!(t.to_string()), json!(false)])
        .collect();
    let mut fetched = HashMap::with_capacity(wanted.len());
    for (txid, answer) in wanted.iter().zip(batch::<String>(c, "getrawtransaction", &params)?) {
        match answer {
            Ok(hex) => {
                fetched.insert(*txid, decode_tx(*txid, &hex)?);
            }
            // It left the mempool since: mined (the tip check notices) or evicted.
            Err((code, _)) if code == code::NOT_FOUND => {}
            Err((code, message)) => return Err(Fault::Rpc { code, message }),
        }
    }
    let mut next = HashMap::with_capacity(ids.len().min(MEMPOOL_CACHE_MAX));
    let mut out = Vec::with_capacity(ids.len());
    for txid in ids {
        let entry = caches
            .mempool
            .remove(&txid)
            .or_else(|| fetched.remove(&txid).map(|tx| (tx, now)));
        if let Some((tx, first_seen)) = entry {
            if next.len() < MEMPOOL_CACHE_MAX {
                next.insert(txid, (Arc::clone(&tx), first_seen));
            }
            out.push((txid, tx, first_seen));
        }
    }
    caches.mempool = next;
    Ok(out)
}

/// The node's tip and mempool size now.
fn fingerprint(c: &Client) -> Result<Fingerprint, Fault> {
    #[derive(Deserialize)]
    struct MempoolInfo {
        size: u64,
        bytes: u64,
    }
    let tip = parse_hash(&call::<String>(c, "getbestblockhash", &[])?)?;
    let info: MempoolInfo = call(c, "getmempoolinfo", &[])?;
    Ok(Fingerprint {
        tip,
        mempool_size: info.size,
        mempool_bytes: info.bytes,
    })
}

/// One sync, from the tip the node reports now. [`Fault::Moved`] when the chain moved under it.
/// `records` holds what is remembered of the watched txids.
fn sync_once(
    c: &Client,
    genesis: BlockHash,
    request: &ChainSyncRequest,
    caches: &mut Caches,
    records: &HashMap<Txid, Record>,
    searched: &HashSet<Txid>,
    now: u64,
) -> Result<(ChainUpdate, RecordChanges), Fault> {
    let tip_before = best_tip(c)?;

    // The blocks above the fork point, through BDK's emitter from the caller's known chain.
    let mut known: BTreeMap<u32, BlockHash> = request.known_chain.iter().map(|b| (b.height, b.hash)).collect();
    known.insert(0, genesis);
    let checkpoint = CheckPoint::from_block_ids(known.iter().map(|(height, hash)| BlockId {
        height: *height,
        hash: *hash,
    }))
    .map_err(|_| Fault::Answer("the known chain does not form a checkpoint".into()))?;
    let top_known = known.keys().next_back().copied().unwrap_or(0);
    if tip_before.height.saturating_sub(top_known) > LONG_SCAN_BLOCKS {
        tracing::warn!(
            from = top_known,
            to = tip_before.height,
            "bitcoind sync: scanning every block above the wallet's last known block; this takes a while"
        );
    }
    let mut emitter = Emitter::new(c, checkpoint, 0, NO_EXPECTED_MEMPOOL_TXS);
    let mut watch = Watch::new(request);
    let mut found: BTreeMap<Txid, Found> = BTreeMap::new();
    let mut scanned: BTreeMap<u32, BlockHash> = BTreeMap::new();
    let mut fork: Option<BlockRef> = None;
    let mut last: Option<BlockRef> = None;
    while let Some(event) = emitter.next_block().map_err(|e| moved_on_not_found(fault(e)))? {
        let block = BlockRef {
            height: event.block_height(),
            hash: event.block_hash(),
        };
        let parent = match last {
            Some(last) => last,
            None => {
                let agreed = event.connected_to();
                let agreed = BlockRef {
                    height: agreed.height,
                    hash: agreed.hash,
                };
                fork = Some(agreed);
                agreed
            }
        };
        if block.height != parent.height + 1 || event.block.header.prev_blockhash != parent.hash {
            return Err(Fault::Moved(format!(
                "the block at height {} changed during the scan",
                block.height
            )));
        }
        check_block(&event.block, block.hash)?;
        let time = u64::from(event.block.header.time);
        for tx in &event.block.txdata {
            let txid = tx.compute_txid();
            if watch.take(tx, txid) {
                found.insert(
                    txid,
                    Found {
                        tx: Arc::new(tx.clone()),
                        position: TxPosition::Confirmed { block, time },
                        parent: Some(parent),
                    },
                );
            }
        }
        scanned.insert(block.height, block.hash);
        last = Some(block);
    }
    let (fork, tip) = match (fork, last) {
        (Some(fork), Some(tip)) => (fork, tip),
        // Nothing above the agreement point: it is the tip.
        _ => (tip_before, tip_before),
    };

    // The mempool (parents before children are not guaranteed: repeat until nothing is added).
    let mempool = read_mempool(c, caches, now)?;
    let in_mempool: HashSet<Txid> = mempool.iter().map(|(txid, _, _)| *txid).collect();
    let mut left: Vec<&(Txid, Arc<Transaction>, u64)> = mempool
        .iter()
        .filter(|(txid, _, _)| !found.contains_key(txid))
        .collect();
    loop {
        let before = found.len();
        left.retain(|(txid, tx, first_seen)| {
            if watch.take(tx, *txid) {
                found.insert(
                    *txid,
                    Found {
                        tx: Arc::clone(tx),
                        position: TxPosition::Mempool { seen_at: *first_seen },
                        parent: None,
                    },
                );
                false
            } else {
                true
            }
        });
        if found.len() == before {
            break;
        }
    }

    // The watched txids found neither above the fork point nor in the mempool.
    let mut best = Best { tip, hashes: scanned };
    best.hashes.insert(fork.height, fork.hash);
    let mut missing = Vec::new();
    let mut targets: BTreeMap<Txid, (u32, Target)> = BTreeMap::new();
    let mut by_record: Vec<(Txid, BlockRef, BlockRef, u64)> = Vec::new();
    let mut watched: Vec<Txid> = request.txids.clone();
    watched.sort_unstable();
    watched.dedup();
    for txid in watched {
        if found.contains_key(&txid) || in_mempool.contains(&txid) {
            continue;
        }
        let floor = match records.get(&txid) {
            Some(Record::Confirmed { block, parent, time }) => {
                if best.hash_at(c, block.height)? == Some(block.hash) {
                    by_record.push((txid, *block, *parent, *time));
                    continue;
                }
                *parent
            }
            Some(Record::Unconfirmed { floor }) => *floor,
            None => {
                if !searched.contains(&txid) && fork.height > 0 {
                    let lowest = fork.height.saturating_sub(LOCATE_DEPTH - 1).max(1);
                    targets.insert(txid, (lowest, Target::Locate));
                }
                continue;
            }
        };
        match best.branch_point(c, floor)? {
            Some(branch) if branch.height >= fork.height => missing.push((txid, now)),
            Some(branch) if fork.height - branch.height <= EXTEND_MAX => {
                targets.insert(txid, (branch.height + 1, Target::Prove));
            }
            _ => {}
        }
    }

    // Below the fork point, downwards, for as long as a target may be there.
    let mut searched_now = Vec::new();
    if let Some(lowest) = targets.values().map(|(height, _)| *height).min() {
        let mut height = fork.height;
        while height >= lowest && height > 0 && targets.keys().any(|t| !found.contains_key(t)) {
            let (block, data) = best.block_at(c, height)?;
            let parent = BlockRef {
                height: height - 1,
                hash: data.header.prev_blockhash,
            };
            let time = u64::from(data.header.time);
            for tx in &data.txdata {
                let txid = tx.compute_txid();
                if targets.get(&txid).is_some_and(|(low, _)| *low <= height) && !found.contains_key(&txid) {
                    found.insert(
                        txid,
                        Found {
                            tx: Arc::new(tx.clone()),
                            position: TxPosition::Confirmed { block, time },
                            parent: Some(parent),
                        },
                    );
                }
            }
            height -= 1;
        }
        for (txid, (_, target)) in &targets {
            if found.contains_key(txid) {
                continue;
            }
            match target {
                Target::Prove => missing.push((*txid, now)),
                Target::Locate => searched_now.push(*txid),
            }
        }
    }

    // Watched transactions confirmed below the fork point, as recorded.
    for (txid, block, parent, time) in by_record {
        let tx = match caches.txs.get(&txid) {
            Some(tx) => Arc::clone(tx),
            None => {
                let hex: String = call(
                    c,
                    "getrawtransaction",
                    &[json!(txid.to_string()), json!(false), json!(block.hash.to_string())],
                )
                .map_err(moved_on_not_found)?;
                decode_tx(txid, &hex)?
            }
        };
        found.insert(
            txid,
            Found {
                tx,
                position: TxPosition::Confirmed { block, time },
                parent: Some(parent),
            },
        );
    }

    // All of it as of one tip: unchanged since the start, or start over.
    let tip_now = parse_hash(&call::<String>(c, "getbestblockhash", &[])?)?;
    if tip_now != tip.hash {
        return Err(Fault::Moved("a new tip".into()));
    }

    let mut chain = BTreeMap::from([(fork.height, fork.hash), (tip.height, tip.hash)]);
    for height in request.known_chain.iter().map(|b| b.height) {
        if height > fork.height && height <= tip.height {
            let hash = best
                .hash_at(c, height)?
                .ok_or_else(|| Fault::Moved(format!("no block at height {height}")))?;
            chain.insert(height, hash);
        }
    }
    let mut changes = RecordChanges {
        searched: searched_now,
        ..RecordChanges::default()
    };
    let mut transactions: Vec<(Txid, ChainTx)> = Vec::with_capacity(found.len());
    for (txid, f) in found {
        match (f.position, f.parent) {
            (TxPosition::Confirmed { block, time }, Some(parent)) => {
                chain.insert(block.height, block.hash);
                caches.txs.remember(txid, Arc::clone(&f.tx));
                changes.records.push((txid, Record::Confirmed { block, parent, time }));
            }
            _ => changes.records.push((txid, Record::Unconfirmed { floor: tip })),
        }
        transactions.push((
            txid,
            ChainTx {
                tx: f.tx,
                position: f.position,
            },
        ));
    }
    for (txid, _) in &missing {
        changes.records.push((*txid, Record::Unconfirmed { floor: tip }));
    }
    changes.missing.clone_from(&missing);
    // Confirmed first, by height; then the mempool.
    transactions.sort_by_key(|(txid, t)| match t.position {
        TxPosition::Confirmed { block, .. } => (0, block.height, *txid),
        TxPosition::Mempool { .. } => (1, 0, *txid),
    });
    let update = ChainUpdate {
        chain: chain
            .into_iter()
            .map(|(height, hash)| BlockRef { height, hash })
            .collect(),
        transactions: transactions.into_iter().map(|(_, t)| t).collect(),
        missing,
    };
    Ok((update, changes))
}

/// Whether a refusal's message says the node already has the transaction.
fn already_known(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "txn-already-in-mempool",
        "txn-already-known",
        "txn-same-nonwitness-data-in-mempool",
        "already in block chain",
        "outputs already in utxo set",
    ]
    .iter()
    .any(|reason| message.contains(reason))
}

/// Whether the node has `tx` (in its mempool, in a block this source saw it in, or as an unspent
/// output in its UTXO set), after a refusal.
fn node_has(c: &Client, tx: &Transaction, record: Option<Record>) -> Result<bool, Fault> {
    let txid = tx.compute_txid();
    match call::<String>(c, "getrawtransaction", &[json!(txid.to_string()), json!(false)]) {
        Ok(_) => return Ok(true),
        Err(Fault::Rpc { .. }) => {}
        Err(e) => return Err(e),
    }
    if let Some(Record::Confirmed { block, .. }) = record {
        let at: Result<String, Fault> = call(c, "getblockhash", &[json!(block.height)]);
        if at.ok().and_then(|h| parse_hash(&h).ok()) == Some(block.hash) {
            return Ok(true);
        }
    }
    let params: Vec<Vec<Value>> = (0..tx.output.len().min(BATCH_MAX))
        .filter_map(|vout| u32::try_from(vout).ok())
        .map(|vout| vec![json!(txid.to_string()), json!(vout), json!(true)])
        .collect();
    if params.is_empty() {
        return Ok(false);
    }
    let outs = batch::<Value>(c, "gettxout", &params)?;
    Ok(outs.iter().any(|o| matches!(o, Ok(v) if !v.is_null())))
}

fn broadcast_with(c: &Client, tx: &Transaction, record: Option<Record>) -> Result<(), Fault> {
    let txid = tx.compute_txid();
    match call::<String>(c, "sendrawtransaction", &[json!(serialize_hex(tx))]) {
        Ok(answered) if parse_txid(&answered)? == txid => Ok(()),
        Ok(answered) => Err(Fault::Answer(format!(
            "broadcast of {txid} answered with txid {answered}"
        ))),
        Err(Fault::Rpc { code, message }) => {
            if code == code::ALREADY_IN_CHAIN || already_known(&message) {
                return Ok(());
            }
            if [code::DESERIALIZATION, code::VERIFY_ERROR, code::VERIFY_REJECTED].contains(&code) {
                // "Missing inputs" is also what a confirmed transaction whose outputs are all
                // spent gets: ask before calling it refused.
                if node_has(c, tx, record)? {
                    return Ok(());
                }
                return Err(Fault::Chain(ChainError::Refused(format!(
                    "bitcoind refused transaction {txid}: {message} (code {code})"
                ))));
            }
            Err(Fault::Rpc { code, message })
        }
        Err(e) => Err(e),
    }
}

/// The satoshis of a BTC amount as bitcoind writes it (`0.00012345`; `1e-05` also read), rounded
/// up to a whole satoshi; `None` for anything else (negative, not a number). Exact: no floats.
fn btc_text_to_sats_ceil(text: &str) -> Option<u64> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let mantissa = mantissa.strip_prefix('+').unwrap_or(mantissa);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return None;
    }
    let value: u128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    // value × 10^(exponent − fraction digits) BTC = value × 10^(exponent − fraction digits + 8) sats.
    let fraction_len = i32::try_from(fraction.len()).ok()?;
    let scale = exponent.checked_sub(fraction_len)?.checked_add(8)?;
    let sats = if scale >= 0 {
        value.checked_mul(10u128.checked_pow(u32::try_from(scale).ok()?)?)?
    } else {
        let divisor = 10u128.checked_pow(scale.unsigned_abs());
        match divisor {
            Some(divisor) => value.div_ceil(divisor),
            // Below 10^-38 of a satoshi: one satoshi if anything at all.
            None => u128::from(value > 0),
        }
    };
    u64::try_from(sats).ok()
}

/// `estimatesmartfee`'s answer as satoshis per 1,000 vbytes.
fn fee_from_estimate(estimate: &SmartFee, target: u16) -> Result<u64, ChainError> {
    let none = || ChainError::Unavailable(format!("no fee estimate for confirmation within {target} blocks"));
    let Some(raw) = &estimate.feerate else {
        if let Some(errors) = &estimate.errors {
            tracing::debug!(?errors, target, "bitcoind has no fee estimate");
        }
        return Err(none());
    };
    let sats = btc_text_to_sats_ceil(raw.get())
        .ok_or_else(|| ChainError::Unavailable(format!("bitcoind's fee estimate {} is not an amount", raw.get())))?;
    if sats == 0 {
        return Err(none());
    }
    if sats > FEE_RATE_MAX_SAT_PER_KVB {
        return Err(ChainError::Unavailable(format!(
            "bitcoind's fee estimate ({} BTC/kvB) is implausible",
            raw.get()
        )));
    }
    Ok(sats)
}

/// The parts of `estimatesmartfee` read here; the fee rate as written (BTC per 1,000 vbytes).
#[derive(Deserialize)]
struct SmartFee {
    feerate: Option<Box<RawValue>>,
    errors: Option<Vec<String>>,
}

/// The parts of `getblockchaininfo` read here.
#[derive(Deserialize)]
struct ChainInfo {
    chain: String,
    blocks: u64,
    #[serde(default)]
    initialblockdownload: bool,
    #[serde(default)]
    pruned: bool,
}

impl Shared {
    fn url(&self) -> String {
        url_without_credentials(&self.config.rpc_url)
    }

    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn to_chain_error(&self, e: Fault) -> ChainError {
        let url = self.url();
        match e {
            Fault::Transport(why) => ChainError::Unavailable(format!("bitcoind at {url}: {why}")),
            Fault::Auth => {
                let what = match &self.config.auth {
                    BitcoindAuth::CookieFile(path) => format!("the cookie file {}", path.display()),
                    BitcoindAuth::UserPass { .. } => "the RPC user and password".into(),
                };
                ChainError::Unavailable(format!(
                    "bitcoind at {url} refused the RPC credentials (HTTP 401 Unauthorized): check {what}"
                ))
            }
            Fault::Rpc { code, message } if code == code::IN_WARMUP => {
                ChainError::Unavailable(format!("bitcoind at {url} is starting: {message}"))
            }
            Fault::Rpc { code, message } => {
                ChainError::Unavailable(format!("bitcoind at {url} answered error {code}: {message}"))
            }
            Fault::Answer(why) => ChainError::Unavailable(format!("bitcoind at {url} answered badly: {why}")),
            Fault::Moved(why) => ChainError::Unavailable(format!("the chain moved during the sync, try again: {why}")),
            Fault::Chain(e) => e,
        }
    }

    /// Runs `op` with the client. When bitcoind refuses a cookie, the cookie file is read again
    /// (bitcoind writes a new one each time it starts) and `op` is tried once more.
    fn run<T>(&self, mut op: impl FnMut(&Client) -> Result<T, Fault>) -> Result<T, ChainError> {
        let client = Arc::clone(&Self::lock(&self.client));
        match op(&client) {
            Err(Fault::Auth) if matches!(self.config.auth, BitcoindAuth::CookieFile(_)) => {
                let fresh = Arc::new(new_client(&self.config)?);
                *Self::lock(&self.client) = Arc::clone(&fresh);
                tracing::info!(url = %self.url(), "bitcoind refused the cookie; read it again");
                op(&fresh).map_err(|e| self.to_chain_error(e))
            }
            other => other.map_err(|e| self.to_chain_error(e)),
        }
    }

    /// Checks the node: reachable, of the configured network. Waits while it is starting, up to
    /// the timeout.
    fn check_node(&self) -> Result<(), ChainError> {
        let deadline = Instant::now() + Duration::from_secs(self.config.timeout_secs.max(1));
        let network = self.config.network;
        let url = self.url();
        let info: ChainInfo = self.run(|c| loop {
            match call::<ChainInfo>(c, "getblockchaininfo", &[]) {
                Err(Fault::Rpc { code, message }) if code == code::IN_WARMUP && Instant::now() < deadline => {
                    tracing::info!(%url, %message, "bitcoind is starting; waiting");
                    std::thread::sleep(Duration::from_secs(1));
                }
                other => return other,
            }
        })?;
        if network_of_chain(&info.chain) != Some(network) {
            return Err(ChainError::WrongNetwork(
                format!("the bitcoind at {url} (chain {:?})", info.chain),
                network,
            ));
        }
        let genesis = self.run(|c| parse_hash(&call::<String>(c, "getblockhash", &[json!(0)])?))?;
        if genesis != self.genesis {
            return Err(ChainError::WrongNetwork(
                format!(
                    "the bitcoind at {url} (chain {:?}, genesis block {genesis} where {network} has {})",
                    info.chain, self.genesis
                ),
                network,
            ));
        }
        if info.initialblockdownload {
            tracing::warn!(%url, blocks = info.blocks, "bitcoind is still downloading the chain; deposits show once it has caught up");
        }
        if info.pruned {
            tracing::warn!(%url, "bitcoind is pruned: a wallet behind its pruned blocks cannot sync");
        }
        Ok(())
    }

    fn sync(&self, request: &ChainSyncRequest) -> Result<ChainUpdate, ChainError> {
        let mut caches = Self::lock(&self.caches);
        let (records, searched) = {
            let all = Self::lock(&self.records);
            let records: HashMap<Txid, Record> = request
                .txids
                .iter()
                .filter_map(|t| all.by_txid.get(t).map(|r| (*t, *r)))
                .collect();
            let searched: HashSet<Txid> = request
                .txids
                .iter()
                .filter(|t| all.searched.contains(*t))
                .copied()
                .collect();
            (records, searched)
        };
        // The polling baseline, taken first: a change during the sync wakes the next poll.
        let seen = self.run(fingerprint).ok();
        let (mut update, changes) = self.run(|c| {
            let mut why = String::new();
            for _ in 0..SYNC_ATTEMPTS_MAX {
                match sync_once(c, self.genesis, request, &mut caches, &records, &searched, now_secs()) {
                    Err(Fault::Moved(reason)) => {
                        tracing::debug!(%reason, "the chain moved during a bitcoind sync; again");
                        why = reason;
                    }
                    other => return other,
                }
            }
            Err(Fault::Moved(why))
        })?;
        let mut all = Self::lock(&self.records);
        all.apply(changes);
        // A transaction back in the mempool is seen after it was last reported missing.
        for t in &mut update.transactions {
            if let TxPosition::Mempool { seen_at } = &mut t.position {
                let txid = t.tx.compute_txid();
                if let Some(missing_at) = all.missing_at.get(&txid).filter(|m| **m >= *seen_at) {
                    *seen_at = missing_at.saturating_add(1);
                    if let Some(entry) = caches.mempool.get_mut(&txid) {
                        entry.1 = *seen_at;
                    }
                }
            }
        }
        drop(all);
        if seen.is_some() {
            *Self::lock(&self.last_seen) = seen;
        }
        Ok(update)
    }

    /// Whether the node's tip or mempool changed since the last sync or poll. Errors (a node
    /// that is down) are no change.
    fn poll_changed(&self) -> bool {
        let Ok(now) = self.run(fingerprint) else { return false };
        let mut last = Self::lock(&self.last_seen);
        let changed = last.is_some_and(|seen| seen != now);
        *last = Some(now);
        changed
    }
}

impl BitcoindChain {
    /// Connects to the bitcoind of `config`: checks that it answers (waiting while it starts, up
    /// to the timeout) and serves `config.network` (its chain name and genesis block), then
    /// listens to its ZMQ notifications in the background (reconnecting whenever they drop).
    ///
    /// [`ChainError::InvalidInput`] for a bad URL or ZMQ endpoint, [`ChainError::WrongNetwork`]
    /// for a node of another network, [`ChainError::Unavailable`] when it cannot be reached,
    /// refuses the credentials or the cookie file cannot be read.
    pub async fn connect(config: BitcoindConfig) -> Result<BitcoindChain, ChainError> {
        for endpoint in [&config.zmq_rawtx, &config.zmq_hashblock].into_iter().flatten() {
            check_zmq_endpoint(endpoint)?;
        }
        let genesis = bitcoin::constants::genesis_block(bitcoin_network(config.network)).block_hash();
        let shared = tokio::task::spawn_blocking(move || -> Result<Shared, ChainError> {
            let client = new_client(&config)?;
            let shared = Shared {
                config,
                genesis,
                client: Mutex::new(Arc::new(client)),
                caches: Mutex::new(Caches::default()),
                records: Mutex::new(Records::default()),
                activity: Notify::new(),
                zmq_up: AtomicUsize::new(0),
                last_seen: Mutex::new(None),
            };
            shared.check_node()?;
            Ok(shared)
        })
        .await
        .map_err(|e| ChainError::Unavailable(format!("the bitcoind client failed: {e}")))??;
        let shared = Arc::new(shared);
        let mut endpoints: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
        if let Some(endpoint) = &shared.config.zmq_rawtx {
            endpoints.entry(endpoint.clone()).or_default().push("rawtx");
        }
        if let Some(endpoint) = &shared.config.zmq_hashblock {
            endpoints.entry(endpoint.clone()).or_default().push("hashblock");
        }
        let listeners = endpoints
            .into_iter()
            .map(|(endpoint, topics)| tokio::spawn(listen(Arc::clone(&shared), endpoint, topics)))
            .collect();
        tracing::info!(url = %shared.url(), network = %shared.config.network, "on-chain backend is bitcoind");
        Ok(BitcoindChain { shared, listeners })
    }

    /// The node's RPC URL (without credentials).
    pub fn rpc_url(&self) -> String {
        self.shared.url()
    }

    /// Whether every configured ZMQ endpoint is connected now (`false` without ZMQ: the source
    /// polls then).
    pub fn notifications_connected(&self) -> bool {
        !self.listeners.is_empty() && self.shared.zmq_up.load(Ordering::SeqCst) >= self.listeners.len()
    }

    /// Runs `op` on the blocking pool (see [`Shared::run`]).
    async fn blocking<T, F>(&self, op: F) -> Result<T, ChainError>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T, ChainError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || op(&shared))
            .await
            .map_err(|e| ChainError::Unavailable(format!("the bitcoind client failed: {e}")))?
    }
}

/// Listens to one ZMQ endpoint for `topics`, waking [`Shared::activity`] on every message, for
/// as long as the source lives. Connects again (with a growing pause) whenever it fails; the
/// socket itself reconnects a connection that drops, and a reconnection wakes too (messages
/// were lost meanwhile).
async fn listen(shared: Arc<Shared>, endpoint: String, topics: Vec<&'static str>) {
    let mut backoff = Duration::from_millis(500);
    let mut warned = false;
    loop {
        let mut socket = zeromq::SubSocket::new();
        let mut monitor = socket.monitor();
        let connected =
            tokio::time::timeout(Duration::from_secs(ZMQ_CONNECT_TIMEOUT_SECS), socket.connect(&endpoint)).await;
        let mut subscribed = matches!(connected, Ok(Ok(())));
        for topic in &topics {
            if subscribed {
                subscribed = socket.subscribe(topic).await.is_ok();
            }
        }
        if !subscribed {
            if !warned {
                tracing::warn!(%endpoint, ?topics, "cannot connect bitcoind's ZMQ notifications; polling meanwhile");
                warned = true;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(ZMQ_BACKOFF_MAX_SECS));
            continue;
        }
        tracing::info!(%endpoint, ?topics, "listening to bitcoind's ZMQ notifications");
        backoff = Duration::from_millis(500);
        warned = false;
        let mut up = true;
        shared.zmq_up.fetch_add(1, Ordering::SeqCst);
        // Whatever happened before the subscription is not known: wake once.
        shared.activity.notify_one();
        loop {
            match tokio::time::timeout(Duration::from_secs(1), socket.recv()).await {
                Ok(Ok(_)) => shared.activity.notify_one(),
                Ok(Err(e)) => {
                    tracing::debug!(%endpoint, error = %e, "ZMQ receive failed; connecting again");
                    break;
                }
                Err(_) => {}
            }
            while let Ok(event) = monitor.try_recv() {
                match event {
                    SocketEvent::Disconnected(_) if up => {
                        up = false;
                        shared.zmq_up.fetch_sub(1, Ordering::SeqCst);
                        tracing::warn!(%endpoint, "bitcoind's ZMQ notifications dropped; polling until they are back");
                    }
                    SocketEvent::Connected(..) if !up => {
                        up = true;
                        shared.zmq_up.fetch_add(1, Ordering::SeqCst);
                        shared.activity.notify_one();
                        tracing::info!(%endpoint, "bitcoind's ZMQ notifications are back");
                    }
                    _ => {}
                }
            }
        }
        if up {
            shared.zmq_up.fetch_sub(1, Ordering::SeqCst);
        }
        tokio::time::sleep(backoff).await;
    }
}

impl ChainSource for BitcoindChain {
    fn network(&self) -> Network {
        self.shared.config.network
    }

    fn kind(&self) -> &'static str {
        "bitcoind"
    }

    fn sync(&self, request: ChainSyncRequest) -> BoxFuture<'_, Result<ChainUpdate, ChainError>> {
        let genesis = self.shared.genesis;
        let network = self.shared.config.network;
        Box::pin(async move {
            check_known_genesis(&request, genesis, network)?;
            self.blocking(move |shared| shared.sync(&request)).await
        })
    }

    fn broadcast<'a>(&'a self, tx: &'a Transaction) -> BoxFuture<'a, Result<(), ChainError>> {
        let tx = tx.clone();
        Box::pin(async move {
            self.blocking(move |shared| {
                let record = Shared::lock(&shared.records).by_txid.get(&tx.compute_txid()).copied();
                shared.run(|c| broadcast_with(c, &tx, record))
            })
            .await
        })
    }

    fn fee_rate(&self, target_blocks: u16) -> BoxFuture<'_, Result<u64, ChainError>> {
        let target = target_blocks.clamp(1, FEE_TARGET_MAX);
        Box::pin(async move {
            let estimate = self
                .blocking(move |shared| shared.run(|c| call::<SmartFee>(c, "estimatesmartfee", &[json!(target)])))
                .await?;
            fee_from_estimate(&estimate, target)
        })
    }

    /// With ZMQ connected: returns on a notification (no sooner than a second after the call)
    /// or at the timeout. Without (not configured, or down): polls the tip and the mempool's
    /// size every second.
    fn wait_for_activity(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let start = tokio::time::Instant::now();
            let deadline = start + timeout;
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return;
                }
                let step = left.min(Duration::from_millis(ACTIVITY_POLL_MS));
                if self.shared.zmq_up.load(Ordering::SeqCst) > 0 {
                    if tokio::time::timeout(step, self.shared.activity.notified())
                        .await
                        .is_ok()
                    {
                        let earliest = start + Duration::from_millis(ACTIVITY_MIN_GAP_MS);
                        tokio::time::sleep_until(earliest.min(deadline)).await;
                        return;
                    }
                } else {
                    tokio::time::sleep(step).await;
                    let shared = Arc::clone(&self.shared);
                    if let Ok(true) = tokio::task::spawn_blocking(move || shared.poll_changed()).await {
                        return;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rates_are_read_exactly() {
        assert_eq!(btc_text_to_sats_ceil("0.00012345"), Some(12_345));
        assert_eq!(btc_text_to_sats_ceil("0.00001000"), Some(1_000));
        assert_eq!(btc_text_to_sats_ceil("1e-05"), Some(1_000));
        assert_eq!(btc_text_to_sats_ceil("1.5E-5"), Some(1_500));
        assert_eq!(btc_text_to_sats_ceil("0.000000001"), Some(1), "rounded up");
        assert_eq!(btc_text_to_sats_ceil("0.000123451"), Some(12_346), "rounded up");
        assert_eq!(btc_text_to_sats_ceil("2"), Some(200_000_000));
        assert_eq!(btc_text_to_sats_ceil("0"), Some(0));
        assert_eq!(btc_text_to_sats_ceil(".5"), Some(50_000_000));
        for bad in ["-0.0001", "abc", "", ".", "1e", "0x10", "1.2.3", "1e999999999999"] {
            assert_eq!(btc_text_to_sats_ceil(bad), None, "{bad}");
        }
    }

    #[test]
    fn chain_names_map_to_networks() {
        assert_eq!(network_of_chain("main"), Some(Network::Mainnet));
        assert_eq!(network_of_chain("test"), Some(Network::Testnet));
        assert_eq!(network_of_chain("testnet4"), Some(Network::Testnet));
        assert_eq!(network_of_chain("signet"), Some(Network::Signet));
        assert_eq!(network_of_chain("regtest"), Some(Network::Regtest));
        assert_eq!(network_of_chain("mainnet"), None);
    }

    #[test]
    fn refusals_that_mean_already_known() {
        assert!(already_known("txn-already-in-mempool"));
        assert!(already_known("Transaction outputs already in utxo set"));
        assert!(already_known("Transaction already in block chain"));
        assert!(already_known("txn-same-nonwitness-data-in-mempool"));
        assert!(!already_known("insufficient fee, rejecting replacement"));
        assert!(!already_known("bad-txns-inputs-missingorspent"));
    }

    #[test]
    fn zmq_endpoints_are_checked() {
        assert!(check_zmq_endpoint("tcp://127.0.0.1:28332").is_ok());
        for bad in ["127.0.0.1:28332", "ipc:///tmp/x", "tcp://:1", "tcp://h:0", "tcp://h"] {
            assert!(check_zmq_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_password_is_never_printed() {
        let auth = BitcoindAuth::UserPass {
            user: "flash".into(),
            password: "hunter2".into(),
        };
        let config = BitcoindConfig::new("http://127.0.0.1:8332", auth, Network::Regtest);
        let printed = format!("{config:?}");
        assert!(printed.contains("flash") && !printed.contains("hunter2"), "{printed}");
    }
}
