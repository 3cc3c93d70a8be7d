//! The Electrum chain source: the [`ChainSource`] port over one Electrum server (ElectrumX,
//! electrs, Fulcrum), plain TCP (`tcp://host:port`) or TLS (`ssl://host:port`).
//!
//! Electrum answers per script (its "scripthash" index), so a sync asks for the history of
//! every watched script in batches, fetches the transactions it has not seen yet (kept in a
//! bounded cache: a txid names one transaction for good), proves each confirmation with the
//! server's merkle branch against the block header, and answers with as few blocks as BDK's
//! `LocalChain` needs to connect the update (see [`ElectrumChain`]).
//!
//! The client library (`electrum-client`) is blocking, so every exchange runs on tokio's
//! blocking pool, one at a time per connection: the library only reports a server's error
//! reliably for the request whose answer it is reading, and one at a time keeps it so. A
//! connection that fails is dropped and opened again on the next call (checking the server's
//! network again); a call that failed on an old connection is retried once on a new one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::block::Header;
use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::{BlockHash, OutPoint, Script, ScriptBuf, Transaction, Txid};
use electrum_client::raw_client::{ElectrumPlaintextStream, ElectrumSslStream, RawClient};
use electrum_client::{ElectrumApi, GetHistoryRes, Param};
use flash_core::onchain::{
    bitcoin_network, BlockRef, ChainError, ChainSource, ChainSyncRequest, ChainTx, ChainUpdate, TxPosition,
};
use flash_core::ports::BoxFuture;
use flash_core::Network;

pub use crate::remote::DEFAULT_TIMEOUT_SECS;
use crate::remote::{check_known_genesis, TxCache, BATCH_MAX, FEE_RATE_MAX_SAT_PER_KVB, SYNC_ATTEMPTS_MAX};

/// The Electrum protocol version asked for (`server.version`): 1.4 is what ElectrumX,
/// electrs and Fulcrum all speak.
const PROTOCOL_VERSION: &str = "1.4";

/// Most verified merkle proofs (txid, block) remembered; emptied when full.
const PROOF_CACHE_MAX: usize = 100_000;

/// Most scripts subscribed to per connection; beyond it, activity on further scripts is
/// noticed at the next timeout only.
const SUBSCRIPTIONS_MAX: usize = 100_000;

/// How often [`ChainSource::wait_for_activity`] reads the server's notifications.
const ACTIVITY_POLL_MS: u64 = 1_000;

/// How to reach an Electrum server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectrumConfig {
    /// `tcp://host:port` (plain) or `ssl://host:port` (TLS).
    pub url: String,
    /// The network the server must serve (checked against its genesis block).
    pub network: Network,
    /// Timeout of connecting and of each request, seconds (at least 1).
    pub timeout_secs: u64,
    /// For `ssl://`: check the server's certificate against the web's root authorities and
    /// its name. Turn off only for a server you reach over a trusted path with a self-signed
    /// certificate.
    pub validate_domain: bool,
}

impl ElectrumConfig {
    /// `url` for `network`, with a [`DEFAULT_TIMEOUT_SECS`] timeout and certificates checked.
    pub fn new(url: impl Into<String>, network: Network) -> ElectrumConfig {
        ElectrumConfig {
            url: url.into(),
            network,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            validate_domain: true,
        }
    }
}

/// The Electrum chain source.
///
/// What [`ChainSource::sync`] answers, precisely:
///
/// - `chain`: blocks of the server's best chain, ascending by height, always holding
///   1. the fork point: the highest block of `known_chain` that is still in the best chain (the
///      genesis block when none is);
///   2. the best chain's block at every height of `known_chain` above the fork point and not
///      above the tip, so that each block the caller knew there and that changed is replaced;
///   3. the block of every confirmed transaction in `transactions` (these may lie below the
///      fork point);
///   4. the tip.
///
///   Other heights are left out: unlike the simulator, an Electrum chain has gaps. That is what
///   BDK's `LocalChain::apply_update` needs: it connects where a block agrees and drops the
///   caller's blocks above it once the update replaces the lowest of them, which item 2 does
///   for every block the caller sent. Blocks the caller holds but did not send (beyond
///   `known_chain`) are not replaced; a reorganisation that reaches below all of
///   `known_chain` except genesis does not connect then, and neither does one to a shorter
///   chain that removes a height the caller knew (there is no block there to replace it).
/// - `transactions`: every transaction in the history of a watched script (paying it or
///   spending from it) that is in a block above the fork point or in the mempool; every
///   transaction spending a watched outpoint there; and the watched txids wherever they are.
///   Confirmed ones carry their block and its timestamp, each confirmation proven by a merkle
///   branch against the block's header; mempool ones carry the time of the sync as `seen_at`
///   (Electrum does not say when a transaction arrived).
/// - `missing`: watched txids the server has neither in its best chain nor in its mempool.
///   A watched transaction whose outputs are all `OP_RETURN` cannot be located through the
///   script index; unless the server does not know it at all, it is left out of both lists.
pub struct ElectrumChain {
    shared: Arc<Shared>,
}

/// Where the server is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Tcp,
    Ssl,
}

struct Shared {
    config: ElectrumConfig,
    transport: Transport,
    /// `host:port`.
    address: String,
    genesis: BlockHash,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The open connection, if any.
    session: Option<Session>,
    caches: Caches,
}

/// What a sync remembers between runs, whatever the connection.
#[derive(Default)]
struct Caches {
    txs: TxCache,
    proofs: HashSet<(Txid, BlockHash)>,
}

impl Caches {
    fn remember_proof(&mut self, txid: Txid, block: BlockHash) {
        if self.proofs.len() >= PROOF_CACHE_MAX {
            self.proofs.clear();
        }
        self.proofs.insert((txid, block));
    }
}

enum Client {
    Tcp(RawClient<ElectrumPlaintextStream>),
    Ssl(RawClient<ElectrumSslStream>),
}

/// Runs `$body` with `$c` bound to the connection's client, whatever its transport.
macro_rules! with_client {
    ($client:expr, $c:ident => $body:expr) => {
        match $client {
            Client::Tcp($c) => $body,
            Client::Ssl($c) => $body,
        }
    };
}

/// One connection and what it is subscribed to.
struct Session {
    client: Client,
    /// Scripts whose status changes the server notifies.
    subscribed: HashSet<ScriptBuf>,
    /// The server refused a subscription: stop asking on this connection.
    subscriptions_refused: bool,
    /// The connection failed in a way that was not reported as an error (a subscription
    /// attempt after a sync): drop it.
    broken: bool,
}

/// What went wrong in one exchange with the server.
#[derive(Debug)]
enum OpError {
    /// The connection failed (refused, reset, timed out): drop it.
    Connection(String),
    /// The server answered with an error.
    Server(String),
    /// The server answered something unreadable or inconsistent: drop the connection (and try
    /// once more on a new one).
    Answer(String),
    /// The chain moved between two requests of a sync: start again.
    Moved(String),
    /// A typed outcome for the caller.
    Chain(ChainError),
}

impl From<ChainError> for OpError {
    fn from(e: ChainError) -> OpError {
        OpError::Chain(e)
    }
}

/// The message of a JSON-RPC error object, or the object itself.
fn server_message(error: &serde_json::Value) -> String {
    error
        .get("message")
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| error.to_string(), str::to_string)
}

fn fault(e: electrum_client::Error) -> OpError {
    use electrum_client::Error as E;
    match e {
        E::Protocol(error) => OpError::Server(server_message(&error)),
        // The server closed the connection: the reader sees an empty line.
        E::JSON(e) if e.is_eof() => OpError::Connection(format!("connection closed ({e})")),
        E::JSON(_)
        | E::Hex(_)
        | E::Bitcoin(_)
        | E::InvalidResponse(_)
        | E::Message(_)
        | E::AlreadySubscribed(_)
        | E::NotSubscribed(_) => OpError::Answer(e.to_string()),
        other => OpError::Connection(other.to_string()),
    }
}

/// A server error in the middle of a sync (a header or transaction it no longer has) means
/// the chain moved.
fn moved_on_server_error(e: OpError) -> OpError {
    match e {
        OpError::Server(message) => OpError::Moved(message),
        other => other,
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `tcp://host:port` or `ssl://host:port` → transport and `host:port`.
fn parse_url(url: &str) -> Result<(Transport, String), ChainError> {
    let bad = |why: &str| ChainError::InvalidInput(format!("Electrum URL {url:?}: {why}"));
    let (transport, rest) = if let Some(rest) = url.strip_prefix("tcp://") {
        (Transport::Tcp, rest)
    } else if let Some(rest) = url.strip_prefix("ssl://") {
        (Transport::Ssl, rest)
    } else {
        return Err(bad("must start with tcp:// or ssl://"));
    };
    let address = rest.trim_end_matches('/');
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(bad("needs host:port"));
    };
    if host.is_empty() || !port.parse::<u16>().is_ok_and(|p| p != 0) {
        return Err(bad("needs host:port"));
    }
    Ok((transport, address.to_string()))
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unreachable(&self, why: &str) -> ChainError {
        ChainError::Unavailable(format!("Electrum server {}: {why}", self.config.url))
    }

    fn to_chain_error(&self, e: OpError) -> ChainError {
        match e {
            OpError::Connection(why) => self.unreachable(&why),
            OpError::Server(why) => self.unreachable(&format!("it answered an error: {why}")),
            OpError::Answer(why) => self.unreachable(&format!("unreadable answer: {why}")),
            OpError::Moved(why) => {
                ChainError::Unavailable(format!("the chain moved during the sync, try again: {why}"))
            }
            OpError::Chain(e) => e,
        }
    }

    /// Opens a connection: protocol handshake, then the network check.
    fn open(&self) -> Result<Session, OpError> {
        let timeout = Some(Duration::from_secs(self.config.timeout_secs.max(1)));
        let address = self.address.as_str();
        let client = match self.transport {
            Transport::Tcp => Client::Tcp(RawClient::new(address, timeout).map_err(fault)?),
            Transport::Ssl => Client::Ssl(
                RawClient::new_ssl(address, self.config.validate_domain, timeout).map_err(|e| match e {
                    electrum_client::Error::MissingDomain | electrum_client::Error::InvalidDNSNameError(_) => {
                        OpError::Chain(ChainError::InvalidInput(format!(
                            "Electrum URL {}: no domain name to check the certificate against",
                            self.config.url
                        )))
                    }
                    other => fault(other),
                })?,
            ),
        };
        with_client!(&client, c => self.handshake(c))?;
        Ok(Session {
            client,
            subscribed: HashSet::new(),
            subscriptions_refused: false,
            broken: false,
        })
    }

    fn handshake<C: ElectrumApi>(&self, c: &C) -> Result<(), OpError> {
        let agent = format!("flash {}", env!("CARGO_PKG_VERSION"));
        c.raw_call(
            "server.version",
            [Param::String(agent), Param::String(PROTOCOL_VERSION.to_string())],
        )
        .map_err(|e| match fault(e) {
            OpError::Server(why) => OpError::Chain(self.unreachable(&format!(
                "it does not speak Electrum protocol {PROTOCOL_VERSION}: {why}"
            ))),
            other => other,
        })?;
        let raw = c.block_header_raw(0).map_err(fault)?;
        let genesis: Header = deserialize(&raw).map_err(|e| OpError::Answer(format!("genesis header: {e}")))?;
        let theirs = genesis.block_hash();
        if theirs != self.genesis {
            return Err(OpError::Chain(ChainError::WrongNetwork(
                format!("the Electrum server at {} (genesis block {theirs})", self.config.url),
                self.config.network,
            )));
        }
        Ok(())
    }

    /// Runs `op` on the connection (opened first if needed), one at a time. A connection that
    /// fails or answers something unreadable is dropped; if it was an old one, `op` is tried
    /// once more on a new connection. (An old connection can hold a notification the client
    /// library cannot read, such as a script status that became `null` when the script's only
    /// transaction left the chain and the mempool; it fails whatever call reads it.)
    fn run<T>(&self, mut op: impl FnMut(&mut Session, &mut Caches) -> Result<T, OpError>) -> Result<T, ChainError> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut retried = false;
        loop {
            let (mut session, fresh) = match state.session.take() {
                Some(session) => (session, false),
                None => (self.open().map_err(|e| self.to_chain_error(e))?, true),
            };
            let result = op(&mut session, &mut state.caches);
            match result {
                Err(e @ (OpError::Connection(_) | OpError::Answer(_))) => {
                    tracing::warn!(url = %self.config.url, error = ?e, "Electrum connection dropped");
                    if fresh || retried {
                        return Err(self.to_chain_error(e));
                    }
                    retried = true;
                }
                other => {
                    if !session.broken {
                        state.session = Some(session);
                    }
                    return other.map_err(|e| self.to_chain_error(e));
                }
            }
        }
    }

    /// Reads the server's notifications: whether a block or a watched script changed. Never
    /// connects. A connection that fails is dropped and counts as activity: the caller's next
    /// sync opens a new one and finds what changed (a notification the library could not
    /// read fails the connection too).
    fn poll_activity(&self) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(session) = state.session.take() else {
            return false;
        };
        let active = with_client!(&session.client, c => notified(c, &session.subscribed));
        match active {
            Ok(active) => {
                state.session = Some(session);
                active
            }
            Err(e) => {
                tracing::debug!(url = %self.config.url, error = ?e, "Electrum connection dropped while waiting");
                true
            }
        }
    }
}

/// Pings (which reads every notification queued before the answer), then drains the queues.
fn notified<C: ElectrumApi>(c: &C, subscribed: &HashSet<ScriptBuf>) -> Result<bool, OpError> {
    c.ping().map_err(fault)?;
    let mut active = false;
    while c.block_headers_pop_raw().map_err(fault)?.is_some() {
        active = true;
    }
    for script in subscribed {
        while c.script_pop(script).map_err(fault)?.is_some() {
            active = true;
        }
    }
    Ok(active)
}

/// Subscribes to the scripts not subscribed yet on this connection, so their changes are
/// notified. A refusal is remembered (no more attempts on this connection), not an error.
fn subscribe(session: &mut Session, scripts: &[ScriptBuf]) {
    if session.subscriptions_refused {
        return;
    }
    let room = SUBSCRIPTIONS_MAX.saturating_sub(session.subscribed.len());
    let mut seen = HashSet::new();
    let new: Vec<&ScriptBuf> = scripts
        .iter()
        .filter(|s| !session.subscribed.contains(*s) && seen.insert(*s))
        .take(room)
        .collect();
    for chunk in new.chunks(BATCH_MAX) {
        let result = with_client!(&session.client, c => c.batch_script_subscribe(chunk.iter().map(|s| s.as_script())));
        match result.map_err(fault) {
            Ok(_) => session.subscribed.extend(chunk.iter().map(|s| (*s).clone())),
            Err(OpError::Connection(why)) => {
                tracing::debug!(%why, "Electrum connection failed while subscribing");
                session.broken = true;
                return;
            }
            Err(e) => {
                tracing::warn!(error = ?e, "the Electrum server refused script subscriptions; deposits are noticed at each timeout");
                session.subscriptions_refused = true;
                return;
            }
        }
    }
}

/// The server's tip.
fn tip<C: ElectrumApi>(c: &C) -> Result<BlockRef, OpError> {
    let tip = c.block_headers_subscribe_raw().map_err(fault)?;
    let header: Header = deserialize(&tip.header).map_err(|e| OpError::Answer(format!("tip header: {e}")))?;
    let height = u32::try_from(tip.height).map_err(|_| OpError::Answer(format!("tip height {}", tip.height)))?;
    header
        .validate_pow(header.target())
        .map_err(|_| OpError::Answer(format!("the tip header at height {height} lacks its proof of work")))?;
    Ok(BlockRef {
        height,
        hash: header.block_hash(),
    })
}

/// The best chain's headers at `heights`, each checked against its own proof-of-work target.
fn headers<C: ElectrumApi>(c: &C, heights: &[u32]) -> Result<HashMap<u32, Header>, OpError> {
    let mut out = HashMap::with_capacity(heights.len());
    for chunk in heights.chunks(BATCH_MAX) {
        let raws = c
            .batch_block_header_raw(chunk.iter().copied())
            .map_err(|e| moved_on_server_error(fault(e)))?;
        if raws.len() != chunk.len() {
            return Err(OpError::Answer(format!(
                "{} headers for {} heights",
                raws.len(),
                chunk.len()
            )));
        }
        for (height, raw) in chunk.iter().zip(raws) {
            let header: Header =
                deserialize(&raw).map_err(|e| OpError::Answer(format!("header at height {height}: {e}")))?;
            header
                .validate_pow(header.target())
                .map_err(|_| OpError::Answer(format!("the header at height {height} lacks its proof of work")))?;
            out.insert(*height, header);
        }
    }
    Ok(out)
}

/// The history of each of `scripts`, in order.
fn histories<C: ElectrumApi>(c: &C, scripts: &[&Script]) -> Result<Vec<Vec<GetHistoryRes>>, OpError> {
    let mut out = Vec::with_capacity(scripts.len());
    for chunk in scripts.chunks(BATCH_MAX) {
        let answers = c.batch_script_get_history(chunk.iter().copied()).map_err(fault)?;
        if answers.len() != chunk.len() {
            return Err(OpError::Answer(format!(
                "{} histories for {} scripts",
                answers.len(),
                chunk.len()
            )));
        }
        out.extend(answers);
    }
    Ok(out)
}

fn decode_tx(txid: Txid, raw: &[u8]) -> Result<Arc<Transaction>, OpError> {
    let tx: Transaction = deserialize(raw).map_err(|e| OpError::Answer(format!("transaction {txid}: {e}")))?;
    if tx.compute_txid() != txid {
        return Err(OpError::Answer(format!("asked for transaction {txid}, got another")));
    }
    Ok(Arc::new(tx))
}

/// The transactions `txids` (from the cache, else fetched in batches and checked).
fn fetch_txs<C: ElectrumApi>(
    c: &C,
    caches: &mut Caches,
    txids: &[Txid],
) -> Result<HashMap<Txid, Arc<Transaction>>, OpError> {
    let mut out = HashMap::with_capacity(txids.len());
    let mut wanted = Vec::new();
    for txid in txids {
        match caches.txs.get(txid) {
            Some(tx) => {
                out.insert(*txid, Arc::clone(tx));
            }
            None => wanted.push(*txid),
        }
    }
    for chunk in wanted.chunks(BATCH_MAX) {
        let raws = c.batch_transaction_get_raw(chunk.iter()).map_err(fault)?;
        if raws.len() != chunk.len() {
            return Err(OpError::Answer(format!(
                "{} transactions for {} txids",
                raws.len(),
                chunk.len()
            )));
        }
        for (txid, raw) in chunk.iter().zip(raws) {
            let tx = decode_tx(*txid, &raw)?;
            caches.txs.remember(*txid, Arc::clone(&tx));
            out.insert(*txid, tx);
        }
    }
    Ok(out)
}

/// Transaction `txid`, or `None` when the server answers that it does not have it.
fn fetch_tx<C: ElectrumApi>(c: &C, caches: &mut Caches, txid: Txid) -> Result<Option<Arc<Transaction>>, OpError> {
    if let Some(tx) = caches.txs.get(&txid) {
        return Ok(Some(Arc::clone(tx)));
    }
    match c.transaction_get_raw(&txid).map_err(fault) {
        Ok(raw) => {
            let tx = decode_tx(txid, &raw)?;
            caches.txs.remember(txid, Arc::clone(&tx));
            Ok(Some(tx))
        }
        Err(OpError::Server(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Like [`fetch_txs`], leaving out the transactions the server does not have.
fn fetch_known_txs<C: ElectrumApi>(
    c: &C,
    caches: &mut Caches,
    txids: &[Txid],
) -> Result<HashMap<Txid, Arc<Transaction>>, OpError> {
    match fetch_txs(c, caches, txids) {
        Ok(txs) => Ok(txs),
        // One of them is unknown (or the answers came out of order): one by one.
        Err(OpError::Server(_) | OpError::Answer(_)) => {
            let mut out = HashMap::new();
            for txid in txids {
                if let Some(tx) = fetch_tx(c, caches, *txid)? {
                    out.insert(*txid, tx);
                }
            }
            Ok(out)
        }
        Err(e) => Err(e),
    }
}

/// Checks a history entry's height against the tip the sync started from.
fn check_height(entry: &GetHistoryRes, tip: &BlockRef) -> Result<(), OpError> {
    match u32::try_from(entry.height) {
        Ok(height) if height > tip.height => Err(OpError::Moved(format!(
            "transaction {} confirmed at {height}, above the tip {}",
            entry.tx_hash, tip.height
        ))),
        _ => Ok(()),
    }
}

/// The confirmation height of a history entry, `None` in the mempool (0, or -1 with
/// unconfirmed parents).
fn confirmed_height(height: i32) -> Option<u32> {
    u32::try_from(height).ok().filter(|h| *h > 0)
}

fn best_hash(best: &BTreeMap<u32, BlockHash>, height: u32) -> Result<BlockHash, OpError> {
    best.get(&height)
        .copied()
        .ok_or_else(|| OpError::Answer(format!("no header at height {height}")))
}

/// Fetches into `best` the headers' hashes at those of `heights` it lacks.
fn fill_best<C: ElectrumApi>(
    c: &C,
    best: &mut BTreeMap<u32, BlockHash>,
    heights: impl IntoIterator<Item = u32>,
) -> Result<(), OpError> {
    let missing: Vec<u32> = heights.into_iter().filter(|h| !best.contains_key(h)).collect();
    for (height, header) in headers(c, &missing)? {
        best.insert(height, header.block_hash());
    }
    Ok(())
}

/// One sync, from the tip the server reports now. [`OpError::Moved`] when the chain moved
/// under it.
fn sync_once<C: ElectrumApi>(
    c: &C,
    caches: &mut Caches,
    genesis: BlockHash,
    request: &ChainSyncRequest,
    now: u64,
) -> Result<ChainUpdate, OpError> {
    let tip = tip(c)?;

    // The fork point: the highest known block still in the best chain. The highest known one
    // first: usually nothing changed and that is the only header needed.
    let mut known: Vec<BlockRef> = request
        .known_chain
        .iter()
        .filter(|b| b.height <= tip.height)
        .copied()
        .collect();
    known.sort_by_key(|b| std::cmp::Reverse(b.height));
    known.dedup_by_key(|b| b.height);
    let mut best = BTreeMap::from([(0, genesis), (tip.height, tip.hash)]);
    let mut fork = BlockRef {
        height: 0,
        hash: genesis,
    };
    if let Some(top) = known.first().copied() {
        fill_best(c, &mut best, [top.height])?;
        if best_hash(&best, top.height)? == top.hash {
            fork = top;
        } else {
            fill_best(c, &mut best, known.iter().map(|b| b.height))?;
            if let Some(agreed) = known.iter().find(|b| best.get(&b.height) == Some(&b.hash)) {
                fork = *agreed;
            }
        }
    }
    let mut chain = BTreeMap::from([(fork.height, fork.hash), (tip.height, tip.hash)]);
    for b in known.iter().filter(|b| b.height > fork.height) {
        chain.insert(b.height, best_hash(&best, b.height)?);
    }
    let after_fork = |height: i32| confirmed_height(height).is_none_or(|h| h > fork.height);

    // The watched scripts' histories.
    let mut seen = HashSet::new();
    let scripts: Vec<&Script> = request
        .scripts
        .iter()
        .map(ScriptBuf::as_script)
        .filter(|s| seen.insert(*s))
        .collect();
    let mut position: HashMap<Txid, i32> = HashMap::new();
    let mut wanted: HashSet<Txid> = HashSet::new();
    for entry in histories(c, &scripts)?.iter().flatten() {
        check_height(entry, &tip)?;
        position.insert(entry.tx_hash, entry.height);
        if after_fork(entry.height) {
            wanted.insert(entry.tx_hash);
        }
    }

    // Spends of watched outpoints on scripts not watched already: Electrum finds spends by
    // script, so through the history of the script each outpoint pays.
    if !request.outpoints.is_empty() {
        let funding_ids: Vec<Txid> = request
            .outpoints
            .iter()
            .map(|o| o.txid)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let funding = fetch_known_txs(c, caches, &funding_ids)?;
        let mut others: BTreeMap<ScriptBuf, Vec<OutPoint>> = BTreeMap::new();
        for outpoint in &request.outpoints {
            let paid = funding
                .get(&outpoint.txid)
                .and_then(|tx| tx.output.get(outpoint.vout as usize));
            if let Some(out) = paid {
                if !seen.contains(out.script_pubkey.as_script()) {
                    others.entry(out.script_pubkey.clone()).or_default().push(*outpoint);
                }
            }
        }
        let other_scripts: Vec<&Script> = others.keys().map(ScriptBuf::as_script).collect();
        let mut candidates: Vec<(Txid, &[OutPoint])> = Vec::new();
        for (entries, outpoints) in histories(c, &other_scripts)?.iter().zip(others.values()) {
            for entry in entries {
                check_height(entry, &tip)?;
                position.insert(entry.tx_hash, entry.height);
                let funds_only = outpoints.iter().all(|o| o.txid == entry.tx_hash);
                if after_fork(entry.height) && !funds_only && !wanted.contains(&entry.tx_hash) {
                    candidates.push((entry.tx_hash, outpoints));
                }
            }
        }
        let ids: Vec<Txid> = candidates.iter().map(|(txid, _)| *txid).collect();
        let txs = fetch_txs(c, caches, &ids).map_err(moved_on_server_error)?;
        for (txid, outpoints) in candidates {
            let spends = txs
                .get(&txid)
                .is_some_and(|tx| tx.input.iter().any(|i| outpoints.contains(&i.previous_output)));
            if spends {
                wanted.insert(txid);
            }
        }
    }

    // The watched transactions: found in a history already, or looked up through the history
    // of the first output script the index covers.
    let mut missing = Vec::new();
    let mut lookups: Vec<(Txid, ScriptBuf)> = Vec::new();
    let txids: BTreeSet<Txid> = request.txids.iter().copied().collect();
    for txid in txids {
        if position.contains_key(&txid) {
            wanted.insert(txid);
            continue;
        }
        match fetch_tx(c, caches, txid)? {
            None => missing.push((txid, now)),
            Some(tx) => {
                if let Some(out) = tx.output.iter().find(|o| !o.script_pubkey.is_op_return()) {
                    lookups.push((txid, out.script_pubkey.clone()));
                }
            }
        }
    }
    let lookup_scripts: Vec<&Script> = lookups.iter().map(|(_, s)| s.as_script()).collect();
    for ((txid, _), entries) in lookups.iter().zip(histories(c, &lookup_scripts)?) {
        match entries.iter().find(|e| e.tx_hash == *txid) {
            Some(entry) => {
                check_height(entry, &tip)?;
                position.insert(*txid, entry.height);
                wanted.insert(*txid);
            }
            None => missing.push((*txid, now)),
        }
    }

    // The transactions, then their blocks (and the tip again: unchanged, or start over).
    let mut entries: Vec<(Txid, i32)> = wanted
        .iter()
        .map(|txid| (*txid, position.get(txid).copied().unwrap_or(0)))
        .collect();
    entries.sort_by_key(|(txid, height)| (confirmed_height(*height).is_none(), *height, *txid));
    let ids: Vec<Txid> = entries.iter().map(|(txid, _)| *txid).collect();
    let txs = fetch_txs(c, caches, &ids).map_err(moved_on_server_error)?;
    let mut heights: Vec<u32> = entries.iter().filter_map(|(_, h)| confirmed_height(*h)).collect();
    heights.push(tip.height);
    heights.sort_unstable();
    heights.dedup();
    let blocks = headers(c, &heights)?;
    let header_at = |height: u32| {
        blocks
            .get(&height)
            .ok_or_else(|| OpError::Answer(format!("no header at height {height}")))
    };
    if header_at(tip.height)?.block_hash() != tip.hash {
        return Err(OpError::Moved("a new tip".into()));
    }
    for height in &heights {
        let hash = header_at(*height)?.block_hash();
        if best.get(height).is_some_and(|h| *h != hash) {
            return Err(OpError::Moved(format!("the block at height {height} changed")));
        }
        chain.insert(*height, hash);
    }

    // Each confirmation proven by its merkle branch (once per transaction and block).
    let to_prove: Vec<(Txid, usize)> = entries
        .iter()
        .filter_map(|(txid, h)| confirmed_height(*h).map(|h| (*txid, h)))
        .filter(|(txid, h)| {
            blocks
                .get(h)
                .is_none_or(|b| !caches.proofs.contains(&(*txid, b.block_hash())))
        })
        .map(|(txid, h)| (txid, h as usize))
        .collect();
    for chunk in to_prove.chunks(BATCH_MAX) {
        let proofs = c
            .batch_transaction_get_merkle(chunk.iter())
            .map_err(|e| moved_on_server_error(fault(e)))?;
        if proofs.len() != chunk.len() {
            return Err(OpError::Answer(format!(
                "{} merkle proofs for {} asked",
                proofs.len(),
                chunk.len()
            )));
        }
        for ((txid, height), proof) in chunk.iter().zip(proofs) {
            let header = blocks
                .get(&u32::try_from(*height).unwrap_or(u32::MAX))
                .ok_or_else(|| OpError::Answer(format!("no header at height {height}")))?;
            let valid = proof.block_height == *height
                && electrum_client::utils::validate_merkle_proof(txid, &header.merkle_root, &proof);
            if !valid {
                return Err(OpError::Moved(format!(
                    "the merkle proof of {txid} does not match the block at height {height}"
                )));
            }
            caches.remember_proof(*txid, header.block_hash());
        }
    }

    let mut transactions = Vec::with_capacity(entries.len());
    for (txid, height) in entries {
        let tx = txs
            .get(&txid)
            .ok_or_else(|| OpError::Answer(format!("transaction {txid} not sent")))?;
        let position = match confirmed_height(height) {
            Some(height) => {
                let header = header_at(height)?;
                TxPosition::Confirmed {
                    block: BlockRef {
                        height,
                        hash: header.block_hash(),
                    },
                    time: u64::from(header.time),
                }
            }
            None => TxPosition::Mempool { seen_at: now },
        };
        transactions.push(ChainTx {
            tx: Arc::clone(tx),
            position,
        });
    }
    Ok(ChainUpdate {
        chain: chain
            .into_iter()
            .map(|(height, hash)| BlockRef { height, hash })
            .collect(),
        transactions,
        missing,
    })
}

/// Whether a broadcast refusal says the server already has the transaction (Bitcoin Core's
/// reasons, as ElectrumX, electrs and Fulcrum pass them on).
fn already_known(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "txn-already-in-mempool",
        "txn-already-known",
        "already in block chain",
        "outputs already in utxo set",
    ]
    .iter()
    .any(|reason| message.contains(reason))
}

fn broadcast_with<C: ElectrumApi>(c: &C, caches: &mut Caches, tx: &Transaction) -> Result<(), OpError> {
    let txid = tx.compute_txid();
    match c.transaction_broadcast_raw(&serialize(tx)) {
        Ok(answered) if answered == txid => Ok(()),
        Ok(answered) => Err(OpError::Answer(format!(
            "broadcast of {txid} answered with txid {answered}"
        ))),
        Err(electrum_client::Error::Protocol(error)) => {
            let why = server_message(&error);
            if already_known(&why) || server_has_tx(c, caches, txid)? {
                return Ok(());
            }
            if server_trouble(&error) {
                return Err(OpError::Server(why));
            }
            Err(OpError::Chain(ChainError::Refused(why)))
        }
        Err(e) => Err(fault(e)),
    }
}

/// Whether the server has transaction `txid` now (asked, not taken from the cache: a cached
/// transaction may have been replaced since).
fn server_has_tx<C: ElectrumApi>(c: &C, caches: &mut Caches, txid: Txid) -> Result<bool, OpError> {
    match c.transaction_get_raw(&txid).map_err(fault) {
        Ok(raw) => {
            caches.txs.remember(txid, decode_tx(txid, &raw)?);
            Ok(true)
        }
        Err(OpError::Server(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether a JSON-RPC error is the server's trouble rather than a verdict on the request: the
/// protocol's own errors (-32768 to -32000: bad request framing, internal error) and
/// ElectrumX's resource limits (-101 excessive resource usage, -102 server busy).
fn server_trouble(error: &serde_json::Value) -> bool {
    error
        .get("code")
        .and_then(serde_json::Value::as_i64)
        .is_some_and(|code| (-32_768..=-32_000).contains(&code) || code == -101 || code == -102)
}

/// `blockchain.estimatefee` (BTC per 1,000 vbytes, a float; -1 without an estimate) as whole
/// satoshis per 1,000 vbytes, rounded to the nearest (the protocol quotes 8 decimals).
fn sat_per_kvb(btc_per_kvb: f64, target: usize) -> Result<u64, ChainError> {
    if !btc_per_kvb.is_finite() || btc_per_kvb <= 0.0 {
        return Err(ChainError::Unavailable(format!(
            "the Electrum server has no fee estimate for confirmation within {target} blocks"
        )));
    }
    let sats = (btc_per_kvb * 100_000_000.0).round().max(1.0);
    if sats > FEE_RATE_MAX_SAT_PER_KVB as f64 {
        return Err(ChainError::Unavailable(format!(
            "the Electrum server's fee estimate ({btc_per_kvb} BTC/kvB) is implausible"
        )));
    }
    Ok(sats as u64)
}

impl ElectrumChain {
    /// Connects to the server of `config` and checks that it serves `config.network` (its
    /// genesis block). [`ChainError::InvalidInput`] for a bad URL, [`ChainError::WrongNetwork`]
    /// for a server of another network, [`ChainError::Unavailable`] when it cannot be reached
    /// or does not speak the protocol.
    pub async fn connect(config: ElectrumConfig) -> Result<ElectrumChain, ChainError> {
        let (transport, address) = parse_url(&config.url)?;
        let genesis = bitcoin::constants::genesis_block(bitcoin_network(config.network)).block_hash();
        let chain = ElectrumChain {
            shared: Arc::new(Shared {
                config,
                transport,
                address,
                genesis,
                state: Mutex::new(State::default()),
            }),
        };
        chain.run(|_, _| Ok(())).await?;
        tracing::info!(url = %chain.shared.config.url, network = %chain.shared.config.network, "on-chain backend is Electrum");
        Ok(chain)
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.shared.config.url
    }

    /// Runs `op` on the blocking pool (see [`Shared::run`]).
    async fn run<T, F>(&self, op: F) -> Result<T, ChainError>
    where
        T: Send + 'static,
        F: FnMut(&mut Session, &mut Caches) -> Result<T, OpError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.run(op))
            .await
            .map_err(|e| ChainError::Unavailable(format!("the Electrum client failed: {e}")))?
    }
}

impl ChainSource for ElectrumChain {
    fn network(&self) -> Network {
        self.shared.config.network
    }

    fn kind(&self) -> &'static str {
        "electrum"
    }

    fn sync(&self, request: ChainSyncRequest) -> BoxFuture<'_, Result<ChainUpdate, ChainError>> {
        let genesis = self.shared.genesis;
        let network = self.shared.config.network;
        Box::pin(async move {
            check_known_genesis(&request, genesis, network)?;
            self.run(move |session, caches| {
                let mut why = String::new();
                for _ in 0..SYNC_ATTEMPTS_MAX {
                    let attempt =
                        with_client!(&session.client, c => sync_once(c, caches, genesis, &request, now_secs()));
                    match attempt {
                        Err(OpError::Moved(reason)) => why = reason,
                        Ok(update) => {
                            subscribe(session, &request.scripts);
                            return Ok(update);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(OpError::Moved(why))
            })
            .await
        })
    }

    fn broadcast<'a>(&'a self, tx: &'a Transaction) -> BoxFuture<'a, Result<(), ChainError>> {
        let tx = tx.clone();
        Box::pin(async move {
            self.run(move |session, caches| with_client!(&session.client, c => broadcast_with(c, caches, &tx)))
                .await
        })
    }

    fn fee_rate(&self, target_blocks: u16) -> BoxFuture<'_, Result<u64, ChainError>> {
        let target = usize::from(target_blocks.max(1));
        Box::pin(async move {
            let btc_per_kvb = self
                .run(move |session, _| with_client!(&session.client, c => c.estimate_fee(target).map_err(fault)))
                .await?;
            sat_per_kvb(btc_per_kvb, target)
        })
    }

    /// Returns when the server notifies a new block or a change on a script watched by an
    /// earlier sync (a deposit entering the mempool), read every second; or when `timeout`
    /// passes. Without a connection (the server went away) it just sleeps.
    fn wait_for_activity(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(Duration::from_millis(ACTIVITY_POLL_MS))).await;
                let shared = Arc::clone(&self.shared);
                if let Ok(true) = tokio::task::spawn_blocking(move || shared.poll_activity()).await {
                    return;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_a_scheme_a_host_and_a_port() {
        assert_eq!(
            parse_url("tcp://127.0.0.1:50001").ok(),
            Some((Transport::Tcp, "127.0.0.1:50001".to_string()))
        );
        assert_eq!(
            parse_url("ssl://electrum.example.org:50002/").ok(),
            Some((Transport::Ssl, "electrum.example.org:50002".to_string()))
        );
        for bad in [
            "127.0.0.1:50001",
            "http://h:1",
            "tcp://h",
            "tcp://:50001",
            "tcp://h:0",
            "tcp://h:x",
        ] {
            assert!(matches!(parse_url(bad), Err(ChainError::InvalidInput(_))), "{bad}");
        }
    }

    #[test]
    fn fee_estimates_become_sat_per_kvb() {
        assert_eq!(sat_per_kvb(0.000_123_45, 6).ok(), Some(12_345));
        assert_eq!(sat_per_kvb(0.000_01, 1).ok(), Some(1_000));
        assert_eq!(sat_per_kvb(1e-12, 1).ok(), Some(1));
        assert!(matches!(sat_per_kvb(-1.0, 2), Err(ChainError::Unavailable(_))));
        assert!(matches!(sat_per_kvb(0.0, 2), Err(ChainError::Unavailable(_))));
        assert!(matches!(sat_per_kvb(f64::NAN, 2), Err(ChainError::Unavailable(_))));
        assert!(matches!(sat_per_kvb(5.0, 2), Err(ChainError::Unavailable(_))));
    }

    #[test]
    fn server_trouble_is_not_a_verdict() {
        assert!(server_trouble(
            &serde_json::json!({"code": -102, "message": "server busy"})
        ));
        assert!(server_trouble(
            &serde_json::json!({"code": -32603, "message": "internal error"})
        ));
        assert!(!server_trouble(&serde_json::json!({"code": 1, "message": "rejected"})));
        assert!(!server_trouble(&serde_json::json!({"message": "rejected"})));
    }

    #[test]
    fn already_known_reasons() {
        assert!(already_known(
            "the transaction was rejected by network rules.\n\ntxn-already-in-mempool"
        ));
        assert!(already_known("Transaction already in block chain"));
        assert!(!already_known("bad-txns-inputs-missingorspent"));
    }
}
