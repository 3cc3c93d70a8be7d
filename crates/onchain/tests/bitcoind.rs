//! The bitcoind chain source.
//!
//! - Against a fake Bitcoin Core JSON-RPC server (HTTP with basic authentication, JSON-RPC 2.0
//!   single and batched calls, Core's error codes and messages) serving an in-memory chain of
//!   real blocks (linked headers, merkle roots, regtest proof of work), stale blocks it still
//!   knows after a reorganisation, and a mempool: the network and credential checks, syncs of
//!   deposits in blocks and the mempool, reorganisations, missing transactions, broadcast
//!   outcomes, fee estimates, polling, ZMQ notifications from a real ZeroMQ publisher, and the
//!   BDK hot wallet over it all.
//! - Against a real `bitcoind -regtest` when `FLASH_TEST_BITCOIND` names a binary (else it
//!   prints why it was skipped).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bitcoin::base64::prelude::{Engine, BASE64_STANDARD};
use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::hashes::Hash;
use bitcoin::{Amount, Block, BlockHash, OutPoint, ScriptBuf, Transaction, Txid};
use flash_core::onchain::{
    parse_address, BlockRef, ChainError, ChainSource, ChainSyncRequest, ChainUpdate, HotWallet, PayoutOutput,
    ReceivedOutput, TxPosition, WalletSnapshot,
};
use flash_core::{Network, Sats};
use flash_onchain::testing::{
    self, bitcoind_binary, coinbase, mine_block, open_hot_wallet, outside_payment, p2wpkh_sized_witness, sats, tip_of,
    MemoryWalletState, RegtestNode,
};
use flash_onchain::{BdkHotWallet, BitcoindAuth, BitcoindChain, BitcoindConfig};
use serde_json::{json, Value};
use zeromq::{Socket, SocketSend};

// ---------------------------------------------------------------------------------------------
// The fake Bitcoin Core.

const USER: &str = "flash";
const PASSWORD: &str = "correct horse";

static NEXT: AtomicU64 = AtomicU64::new(1);

/// An RPC error: code and message, as Bitcoin Core words them.
type RpcError = (i32, String);

/// A result as JSON, or as raw JSON text (a number written the way bitcoind writes it).
enum Answer {
    Json(Value),
    Raw(String),
}

struct FakeState {
    /// `getblockchaininfo.chain`.
    chain_name: String,
    /// The best chain, genesis first.
    blocks: Vec<Block>,
    /// Every block ever made, by hash, with its height (stale ones too).
    known: HashMap<BlockHash, (u32, Block)>,
    mempool: Vec<Transaction>,
    /// `estimatesmartfee`'s fee rate as written (BTC/kvB); none: "Insufficient data".
    fee: Option<String>,
    /// What `sendrawtransaction` answers instead of accepting.
    broadcast_error: Option<RpcError>,
    /// How many more `getblockchaininfo` calls answer -28 (warming up).
    warmup_calls: u32,
    /// The credentials accepted.
    user: String,
    password: String,
    /// Methods called, in order (`getblock:` and the verbosity; `batch:` and the method for each
    /// batch, before its calls).
    calls: Vec<String>,
    /// Targets asked of `estimatesmartfee`.
    fee_targets: Vec<u64>,
}

impl FakeState {
    fn tip(&self) -> BlockRef {
        tip_of(&self.blocks)
    }

    fn best_height_of(&self, hash: &BlockHash) -> Option<u32> {
        let (height, _) = self.known.get(hash)?;
        (self.blocks.get(*height as usize).map(Block::block_hash) == Some(*hash)).then_some(*height)
    }

    /// Mines one block holding the mempool (`with_mempool`) or nothing but its coinbase.
    fn mine_one(&mut self, with_mempool: bool) -> BlockRef {
        let tip = self.tip();
        let height = tip.height + 1;
        let mut txdata = vec![coinbase(height, Amount::from_sat(50 * 100_000_000))];
        if with_mempool {
            txdata.append(&mut self.mempool);
        }
        let prev_time = self.blocks.last().map_or(0, |b| b.header.time);
        let block = mine_block(tip.hash, prev_time.max(1_700_000_000) + 600, txdata);
        let hash = block.block_hash();
        self.known.insert(hash, (height, block.clone()));
        self.blocks.push(block);
        BlockRef { height, hash }
    }

    /// Replaces the top `depth` blocks with `depth + 1` empty ones. Their transactions go back
    /// to the mempool, or (`keep` false) vanish with their mempool descendants, as if
    /// double-spent.
    fn reorg(&mut self, depth: usize, keep: bool) -> BlockRef {
        let cut = self.blocks.len() - depth;
        let removed: Vec<Transaction> = self
            .blocks
            .drain(cut..)
            .flat_map(|b| b.txdata.into_iter().skip(1))
            .collect();
        let mempool = std::mem::take(&mut self.mempool);
        for _ in 0..=depth {
            self.mine_one(false);
        }
        if keep {
            self.mempool = removed;
            self.mempool.extend(mempool);
        } else {
            let mut gone: HashSet<Txid> = removed.iter().map(Transaction::compute_txid).collect();
            self.mempool = mempool
                .into_iter()
                .filter(|tx| {
                    let spends_gone = tx.input.iter().any(|i| gone.contains(&i.previous_output.txid));
                    if spends_gone {
                        gone.insert(tx.compute_txid());
                    }
                    !spends_gone
                })
                .collect();
        }
        self.tip()
    }

    /// Like `invalidateblock` on the tip: the chain gets shorter, its transactions go back to
    /// the mempool.
    fn invalidate_tip(&mut self) {
        let block = self.blocks.pop().expect("a block above genesis");
        let mut back: Vec<Transaction> = block.txdata.into_iter().skip(1).collect();
        back.append(&mut self.mempool);
        self.mempool = back;
    }

    /// A payment from outside to `script` (spending a made-up coin), in the mempool.
    fn deposit(&mut self, script: &ScriptBuf, sats: u64) -> Txid {
        let tx = outside_payment(script, sats);
        let txid = tx.compute_txid();
        self.mempool.push(tx);
        txid
    }

    fn in_best_chain(&self, txid: &Txid) -> Option<(u32, &Transaction)> {
        self.blocks.iter().enumerate().find_map(|(height, block)| {
            block
                .txdata
                .iter()
                .find(|tx| tx.compute_txid() == *txid)
                .map(|tx| (u32::try_from(height).expect("height"), tx))
        })
    }

    fn header_json(&self, hash: &BlockHash, height: u32, block: &Block) -> Value {
        let tip = self.tip().height;
        let best = self.best_height_of(hash).is_some();
        let mut v = json!({
            "hash": hash.to_string(),
            "confirmations": if best { i64::from(tip) - i64::from(height) + 1 } else { -1 },
            "height": height,
            "version": block.header.version.to_consensus(),
            "versionHex": format!("{:08x}", block.header.version.to_consensus()),
            "merkleroot": block.header.merkle_root.to_string(),
            "time": block.header.time,
            "mediantime": block.header.time,
            "nonce": block.header.nonce,
            "bits": format!("{:08x}", block.header.bits.to_consensus()),
            "difficulty": 4.656542373906925e-10,
            "chainwork": format!("{:064x}", u64::from(height) * 2 + 2),
            "nTx": block.txdata.len(),
        });
        if height > 0 {
            v["previousblockhash"] = json!(block.header.prev_blockhash.to_string());
        }
        if best && height < tip {
            v["nextblockhash"] = json!(self.blocks[height as usize + 1].block_hash().to_string());
        }
        v
    }

    fn handle(&mut self, method: &str, params: &[Value]) -> Result<Answer, RpcError> {
        let not_found = |what: &str| Err((-5, what.to_string()));
        let param_hash = |i: usize| -> Result<BlockHash, RpcError> {
            params
                .get(i)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or((-8, "blockhash must be of length 64".to_string()))
        };
        let param_txid = |i: usize| -> Result<Txid, RpcError> {
            params
                .get(i)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or((-8, "txid must be of length 64".to_string()))
        };
        match method {
            "getblockchaininfo" => {
                if self.warmup_calls > 0 {
                    self.warmup_calls -= 1;
                    return Err((-28, "Loading block index…".into()));
                }
                let tip = self.tip();
                Ok(Answer::Json(json!({
                    "chain": self.chain_name,
                    "blocks": tip.height,
                    "headers": tip.height,
                    "bestblockhash": tip.hash.to_string(),
                    "difficulty": 4.656542373906925e-10,
                    "verificationprogress": 1,
                    "initialblockdownload": false,
                    "chainwork": "00",
                    "size_on_disk": 1000,
                    "pruned": false,
                    "warnings": [],
                })))
            }
            "getblockhash" => {
                let height = params.first().and_then(Value::as_u64).unwrap_or(u64::MAX);
                match self.blocks.get(usize::try_from(height).unwrap_or(usize::MAX)) {
                    Some(block) => Ok(Answer::Json(json!(block.block_hash().to_string()))),
                    None => Err((-8, "Block height out of range".into())),
                }
            }
            "getbestblockhash" => Ok(Answer::Json(json!(self.tip().hash.to_string()))),
            "getblockcount" => Ok(Answer::Json(json!(self.tip().height))),
            "getblockheader" => {
                let hash = param_hash(0)?;
                let Some((height, block)) = self.known.get(&hash) else {
                    return not_found("Block not found");
                };
                Ok(Answer::Json(self.header_json(&hash, *height, block)))
            }
            "getblock" => {
                let hash = param_hash(0)?;
                let Some((height, block)) = self.known.get(&hash) else {
                    return not_found("Block not found");
                };
                match params.get(1).and_then(Value::as_u64).unwrap_or(1) {
                    0 => Ok(Answer::Json(json!(serialize_hex(block)))),
                    _ => {
                        let mut v = self.header_json(&hash, *height, block);
                        let size = bitcoin::consensus::encode::serialize(block).len();
                        v["size"] = json!(size);
                        v["strippedsize"] = json!(size);
                        v["weight"] = json!(block.weight().to_wu());
                        v["tx"] = json!(block
                            .txdata
                            .iter()
                            .map(|tx| tx.compute_txid().to_string())
                            .collect::<Vec<_>>());
                        Ok(Answer::Json(v))
                    }
                }
            }
            "getrawmempool" => Ok(Answer::Json(json!(self
                .mempool
                .iter()
                .map(|tx| tx.compute_txid().to_string())
                .collect::<Vec<_>>()))),
            "getmempoolinfo" => Ok(Answer::Json(json!({
                "loaded": true,
                "size": self.mempool.len(),
                "bytes": self.mempool.iter().map(Transaction::vsize).sum::<usize>(),
            }))),
            "getrawtransaction" => {
                let txid = param_txid(0)?;
                match params.get(2).filter(|v| !v.is_null()) {
                    Some(_) => {
                        let hash = param_hash(2)?;
                        let Some((_, block)) = self.known.get(&hash) else {
                            return not_found("Block hash not found");
                        };
                        match block.txdata.iter().find(|tx| tx.compute_txid() == txid) {
                            Some(tx) => Ok(Answer::Json(json!(serialize_hex(tx)))),
                            None => not_found("No such transaction found in the provided block. Use gettransaction for wallet transactions."),
                        }
                    }
                    None => match self.mempool.iter().find(|tx| tx.compute_txid() == txid) {
                        Some(tx) => Ok(Answer::Json(json!(serialize_hex(tx)))),
                        None => not_found("No such mempool transaction. Use -txindex or provide a block hash to enable blockchain transaction queries. Use gettransaction for wallet transactions."),
                    },
                }
            }
            "gettxout" => {
                let txid = param_txid(0)?;
                let vout = params.get(1).and_then(Value::as_u64).unwrap_or(0);
                let include_mempool = params.get(2).and_then(Value::as_bool).unwrap_or(true);
                let outpoint = OutPoint {
                    txid,
                    vout: u32::try_from(vout).unwrap_or(u32::MAX),
                };
                let confirmed = self.in_best_chain(&txid).map(|(h, tx)| (Some(h), tx.clone()));
                let pooled = include_mempool
                    .then(|| self.mempool.iter().find(|tx| tx.compute_txid() == txid))
                    .flatten()
                    .map(|tx| (None, tx.clone()));
                let Some((height, tx)) = confirmed.or(pooled) else {
                    return Ok(Answer::Json(Value::Null));
                };
                let spenders = self
                    .blocks
                    .iter()
                    .flat_map(|b| b.txdata.iter())
                    .chain(self.mempool.iter().filter(|_| include_mempool));
                let spent = spenders
                    .flat_map(|t| t.input.iter())
                    .any(|i| i.previous_output == outpoint);
                match tx.output.get(outpoint.vout as usize) {
                    Some(out) if !spent => Ok(Answer::Json(json!({
                        "bestblock": self.tip().hash.to_string(),
                        "confirmations": height.map_or(0, |h| self.tip().height - h + 1),
                        "value": out.value.to_sat(),
                    }))),
                    _ => Ok(Answer::Json(Value::Null)),
                }
            }
            "sendrawtransaction" => {
                if let Some(error) = self.broadcast_error.clone() {
                    return Err(error);
                }
                let hex = params.first().and_then(Value::as_str).unwrap_or_default();
                let Ok(tx) = deserialize_hex::<Transaction>(hex) else {
                    return Err((-22, "TX decode failed. Make sure the tx has at least one input.".into()));
                };
                let txid = tx.compute_txid();
                if self.in_best_chain(&txid).is_some() {
                    return Err((-27, "Transaction outputs already in utxo set".into()));
                }
                if self.mempool.iter().any(|t| t.compute_txid() == txid) {
                    return Ok(Answer::Json(json!(txid.to_string())));
                }
                let spent: HashSet<OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
                let conflicts = self
                    .mempool
                    .iter()
                    .any(|t| t.input.iter().any(|i| spent.contains(&i.previous_output)));
                if conflicts {
                    return Err((-26, "txn-mempool-conflict".into()));
                }
                self.mempool.push(tx);
                Ok(Answer::Json(json!(txid.to_string())))
            }
            "estimatesmartfee" => {
                let target = params.first().and_then(Value::as_u64).unwrap_or(0);
                self.fee_targets.push(target);
                match &self.fee {
                    Some(rate) => Ok(Answer::Raw(format!(r#"{{"feerate":{rate},"blocks":{target}}}"#))),
                    None => Ok(Answer::Json(json!({
                        "errors": ["Insufficient data or no feerate found"],
                        "blocks": 0,
                    }))),
                }
            }
            _ => Err((-32601, "Method not found".into())),
        }
    }
}

struct Fake {
    state: Mutex<FakeState>,
}

impl Fake {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state")
    }
}

/// One JSON-RPC answer, as text.
fn answer(state: &mut FakeState, request: &Value) -> String {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str).unwrap_or_default();
    let params = request
        .get("params")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let call = match (method, params.get(1)) {
        ("getblock", Some(verbosity)) => format!("getblock:{verbosity}"),
        _ => method.to_string(),
    };
    state.calls.push(call);
    match state.handle(method, &params) {
        Ok(Answer::Json(result)) => format!(r#"{{"jsonrpc":"2.0","result":{result},"id":{id}}}"#),
        Ok(Answer::Raw(result)) => format!(r#"{{"jsonrpc":"2.0","result":{result},"id":{id}}}"#),
        Err((code, message)) => {
            let error = json!({"code": code, "message": message});
            format!(r#"{{"jsonrpc":"2.0","error":{error},"id":{id}}}"#)
        }
    }
}

async fn serve_rpc(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = fake.lock();
    let expected = format!(
        "Basic {}",
        BASE64_STANDARD.encode(format!("{}:{}", state.user, state.password))
    );
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    // Every answer closes its connection, so a stopped server refuses the next one.
    let close = (header::CONNECTION, "close");
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"jsonrpc\""), close],
            "",
        )
            .into_response();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, [close], "not JSON").into_response();
    };
    let text = match request {
        Value::Array(requests) => {
            let method = requests
                .first()
                .and_then(|r| r.get("method"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            state.calls.push(format!("batch:{method}"));
            let answers: Vec<String> = requests.iter().map(|r| answer(&mut state, r)).collect();
            format!("[{}]", answers.join(","))
        }
        single => answer(&mut state, &single),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json"), close],
        text,
    )
        .into_response()
}

/// A running fake node.
struct Server {
    fake: Arc<Fake>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn config(&self) -> BitcoindConfig {
        BitcoindConfig {
            rpc_url: self.url(),
            auth: BitcoindAuth::UserPass {
                user: USER.into(),
                password: PASSWORD.into(),
            },
            network: Network::Regtest,
            zmq_rawtx: None,
            zmq_hashblock: None,
            timeout_secs: 5,
        }
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.fake.lock()
    }

    /// Stops answering: connections are refused from now on.
    fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fake_node(chain_name: &str) -> Server {
    let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
    let state = FakeState {
        chain_name: chain_name.to_string(),
        known: HashMap::from([(genesis.block_hash(), (0, genesis.clone()))]),
        blocks: vec![genesis],
        mempool: Vec::new(),
        fee: None,
        broadcast_error: None,
        warmup_calls: 0,
        user: USER.into(),
        password: PASSWORD.into(),
        calls: Vec::new(),
        fee_targets: Vec::new(),
    };
    let fake = Arc::new(Fake {
        state: Mutex::new(state),
    });
    let app = axum::Router::new()
        .fallback(axum::routing::post(serve_rpc))
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { fake, addr, task }
}

/// A spend of `outpoint` to an unwatched script.
fn spend(outpoint: OutPoint, sats: u64) -> Transaction {
    testing::spend(outpoint, p2wpkh_sized_witness(), sats, script(200))
}

/// A distinct P2WPKH-shaped script.
fn script(n: u8) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([n; 20]))
}

fn chain_of(state: &FakeState) -> Vec<BlockRef> {
    state
        .blocks
        .iter()
        .enumerate()
        .map(|(h, b)| BlockRef {
            height: u32::try_from(h).expect("height"),
            hash: b.block_hash(),
        })
        .collect()
}

/// The fake's best chain (its lock released: never hold it across an await).
fn best_chain(server: &Server) -> Vec<BlockRef> {
    chain_of(&server.state())
}

fn heights(update: &ChainUpdate) -> Vec<u32> {
    update.chain.iter().map(|b| b.height).collect()
}

/// Where `txid` is in `update`: `Some(Some(height))` confirmed, `Some(None)` in the mempool.
fn position(update: &ChainUpdate, txid: Txid) -> Option<Option<u32>> {
    update
        .transactions
        .iter()
        .find(|t| t.tx.compute_txid() == txid)
        .map(|t| match t.position {
            TxPosition::Confirmed { block, .. } => Some(block.height),
            TxPosition::Mempool { .. } => None,
        })
}

/// Checks the chain is ascending and agrees with the fake's best chain.
fn assert_best_chain(update: &ChainUpdate, server: &Server) {
    let best = best_chain(server);
    for pair in update.chain.windows(2) {
        assert!(pair[0].height < pair[1].height, "ascending: {:?}", update.chain);
    }
    for b in &update.chain {
        assert_eq!(best.get(b.height as usize), Some(b), "{:?} is in the best chain", b);
    }
    assert_eq!(update.chain.last(), best.last(), "ends at the tip");
}

async fn connected(server: &Server) -> BitcoindChain {
    BitcoindChain::connect(server.config()).await.expect("connect")
}

fn temp_path(name: &str) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("flash-bitcoind-test-{name}-{}-{n}", std::process::id()))
}

fn unavailable(result: Result<impl std::fmt::Debug, ChainError>) -> String {
    match result {
        Err(ChainError::Unavailable(why)) => why,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Waits in a task for activity on `chain` (at most `timeout`); the task answers how long it
/// waited.
fn spawn_waiter(chain: &Arc<BitcoindChain>, timeout: Duration) -> tokio::task::JoinHandle<Duration> {
    let chain = Arc::clone(chain);
    tokio::spawn(async move {
        let started = Instant::now();
        chain.wait_for_activity(timeout).await;
        started.elapsed()
    })
}

/// Waits until `chain`'s ZMQ listener is connected; panics after `within`.
async fn wait_for_notifications(chain: &BitcoindChain, within: Duration) {
    let deadline = Instant::now() + within;
    while !chain.notifications_connected() {
        assert!(Instant::now() < deadline, "the ZMQ listener connects");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Connecting.

#[tokio::test]
async fn connect_checks_the_network_the_credentials_and_the_address() {
    let server = fake_node("regtest").await;
    let chain = connected(&server).await;
    assert_eq!(chain.kind(), "bitcoind");
    assert_eq!(chain.network(), Network::Regtest);
    assert!(!chain.notifications_connected(), "no ZMQ configured");

    // Another network, by name or by genesis block.
    let err = BitcoindChain::connect(BitcoindConfig {
        network: Network::Mainnet,
        ..server.config()
    })
    .await
    .err();
    assert!(
        matches!(err, Some(ChainError::WrongNetwork(_, Network::Mainnet))),
        "{err:?}"
    );
    let main = fake_node("main").await;
    let err = BitcoindChain::connect(main.config()).await.err();
    assert!(
        matches!(&err, Some(ChainError::WrongNetwork(what, Network::Regtest)) if what.contains("\"main\"")),
        "{err:?}"
    );
    let testnet4 = fake_node("testnet4").await;
    let err = BitcoindChain::connect(BitcoindConfig {
        network: Network::Testnet,
        ..testnet4.config()
    })
    .await
    .err();
    assert!(
        matches!(&err, Some(ChainError::WrongNetwork(what, Network::Testnet)) if what.contains("genesis")),
        "a testnet node whose genesis block is not Flash's testnet: {err:?}"
    );

    // A wrong password is said so.
    let why = unavailable(
        BitcoindChain::connect(BitcoindConfig {
            auth: BitcoindAuth::UserPass {
                user: USER.into(),
                password: "wrong".into(),
            },
            ..server.config()
        })
        .await,
    );
    assert!(why.contains("refused the RPC credentials"), "{why}");
    assert!(!why.contains("wrong"), "the password is not repeated: {why}");

    // Nobody there; not even HTTP.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let why = unavailable(
        BitcoindChain::connect(BitcoindConfig {
            rpc_url: format!("http://{closed}"),
            ..server.config()
        })
        .await,
    );
    assert!(why.contains(&closed.to_string()), "{why}");

    // Bad settings.
    for (url, zmq) in [
        ("https://127.0.0.1:8332", None),
        ("127.0.0.1:8332", None),
        (server.url().as_str(), Some("127.0.0.1:28332")),
    ] {
        let err = BitcoindChain::connect(BitcoindConfig {
            rpc_url: url.to_string(),
            zmq_rawtx: zmq.map(str::to_string),
            ..server.config()
        })
        .await
        .err();
        assert!(
            matches!(err, Some(ChainError::InvalidInput(_))),
            "{url} {zmq:?}: {err:?}"
        );
    }

    // A node that is still starting is waited for.
    server.state().warmup_calls = 2;
    connected(&server).await;
    assert_eq!(server.state().warmup_calls, 0);
}

#[tokio::test]
async fn cookie_files_are_read_and_read_again_when_bitcoind_restarts() {
    let server = fake_node("regtest").await;
    let cookie = temp_path("cookie");
    {
        let mut state = server.state();
        state.user = "__cookie__".into();
        state.password = "first".into();
    }
    let config = BitcoindConfig {
        auth: BitcoindAuth::CookieFile(cookie.clone()),
        ..server.config()
    };
    let why = unavailable(BitcoindChain::connect(config.clone()).await);
    assert!(why.contains("cookie file"), "{why}");

    std::fs::write(&cookie, "__cookie__:first\n").expect("cookie");
    let chain = BitcoindChain::connect(config.clone())
        .await
        .expect("connect with the cookie");
    chain.sync(ChainSyncRequest::default()).await.expect("sync");

    // bitcoind restarted: a new cookie. The next call reads it again.
    {
        let mut state = server.state();
        state.password = "second".into();
    }
    std::fs::write(&cookie, "__cookie__:second\n").expect("cookie");
    chain
        .sync(ChainSyncRequest::default())
        .await
        .expect("sync after the cookie changed");

    // A cookie that does not work is said so.
    server.state().password = "third".into();
    let why = unavailable(chain.sync(ChainSyncRequest::default()).await);
    assert!(
        why.contains("refused the RPC credentials") && why.contains("cookie"),
        "{why}"
    );
    let _ = std::fs::remove_file(&cookie);
}

// ---------------------------------------------------------------------------------------------
// Syncing.

#[tokio::test]
async fn deposits_are_found_in_blocks_and_in_the_mempool() {
    let server = fake_node("regtest").await;
    let (watched, other) = (script(1), script(2));
    let (confirmed, pending, unrelated) = {
        let mut state = server.state();
        for _ in 0..3 {
            state.mine_one(true);
        }
        let confirmed = state.deposit(&watched, 50_000);
        state.deposit(&script(9), 1_000);
        state.mine_one(true);
        state.mine_one(true);
        let pending = state.deposit(&other, 20_000);
        let unrelated = state.deposit(&script(9), 2_000);
        (confirmed, pending, unrelated)
    };
    let chain = connected(&server).await;
    let genesis = best_chain(&server)[0];

    // A wallet that knows only genesis: every block is scanned.
    let update = chain
        .sync(ChainSyncRequest {
            known_chain: vec![genesis],
            scripts: vec![watched.clone(), other.clone()],
            ..ChainSyncRequest::default()
        })
        .await
        .expect("sync");
    assert_best_chain(&update, &server);
    assert_eq!(heights(&update), vec![0, 4, 5], "fork, the deposit's block, the tip");
    assert_eq!(position(&update, confirmed), Some(Some(4)));
    assert_eq!(position(&update, pending), Some(None));
    assert_eq!(position(&update, unrelated), None);
    assert_eq!(update.transactions.len(), 2);
    assert!(update.missing.is_empty());
    match update.transactions[0].position {
        TxPosition::Confirmed { time, .. } => {
            assert_eq!(time, u64::from(server.state().blocks[4].header.time))
        }
        other => panic!("{other:?}"),
    }
    assert!(
        server.state().calls.iter().any(|c| c == "batch:getrawtransaction"),
        "mempool transactions are fetched in batches"
    );

    // Up to date: nothing above the fork point; the watched ones wherever they are (the
    // confirmed one from where this source saw it), and a spend of a watched output.
    let payout = spend(
        OutPoint {
            txid: confirmed,
            vout: 0,
        },
        49_000,
    );
    server.state().mempool.push(payout.clone());
    let calls_before = server.state().calls.len();
    let update = chain
        .sync(ChainSyncRequest {
            known_chain: best_chain(&server),
            scripts: vec![watched.clone(), other.clone()],
            outpoints: vec![OutPoint {
                txid: confirmed,
                vout: 0,
            }],
            txids: vec![confirmed, pending],
        })
        .await
        .expect("sync");
    assert_best_chain(&update, &server);
    assert_eq!(
        heights(&update),
        vec![4, 5],
        "the confirmed one's block, the fork point and tip"
    );
    assert_eq!(position(&update, confirmed), Some(Some(4)));
    assert_eq!(position(&update, pending), Some(None));
    assert_eq!(position(&update, payout.compute_txid()), Some(None));
    let fetched: Vec<String> = server.state().calls[calls_before..].to_vec();
    assert!(
        !fetched.iter().any(|c| c == "getblock:0"),
        "no block fetched when nothing is new: {fetched:?}"
    );

    // Mined: the mempool ones confirm in the new block.
    server.state().mine_one(true);
    let update = chain
        .sync(ChainSyncRequest {
            known_chain: vec![genesis, best_chain(&server)[5]],
            scripts: vec![watched, other],
            outpoints: vec![OutPoint {
                txid: confirmed,
                vout: 0,
            }],
            txids: vec![confirmed, pending, payout.compute_txid()],
        })
        .await
        .expect("sync");
    assert_best_chain(&update, &server);
    assert_eq!(heights(&update), vec![4, 5, 6]);
    assert_eq!(position(&update, pending), Some(Some(6)));
    assert_eq!(position(&update, payout.compute_txid()), Some(Some(6)));
    assert!(update.missing.is_empty());
}

#[tokio::test]
async fn reorganisations_fork_below_the_callers_tip_and_double_spends_go_missing() {
    let server = fake_node("regtest").await;
    let watched = script(1);
    let deposit = {
        let mut state = server.state();
        for _ in 0..4 {
            state.mine_one(true);
        }
        let txid = state.deposit(&watched, 30_000);
        state.mine_one(true); // 5: the deposit
        state.mine_one(true); // 6
        txid
    };
    let chain = connected(&server).await;
    let request = |known: Vec<BlockRef>| ChainSyncRequest {
        known_chain: known,
        scripts: vec![watched.clone()],
        txids: vec![deposit],
        ..ChainSyncRequest::default()
    };
    let update = chain.sync(request(best_chain(&server))).await.expect("sync");
    assert_eq!(
        position(&update, deposit),
        Some(Some(5)),
        "located below the fork point"
    );
    assert_eq!(heights(&update), vec![5, 6]);

    // The top two blocks replaced by three empty ones: the deposit is back in the mempool.
    let before = best_chain(&server);
    server.state().reorg(2, true);
    let update = chain.sync(request(before[2..].to_vec())).await.expect("sync");
    assert_best_chain(&update, &server);
    assert_eq!(
        heights(&update),
        vec![4, 5, 6, 7],
        "the fork point, the blocks replacing the caller's, the tip"
    );
    assert_ne!(update.chain[1].hash, before[5].hash);
    assert_eq!(position(&update, deposit), Some(None), "unconfirmed again");
    assert!(update.missing.is_empty());

    // Confirmed again, then double-spent: its block replaced, and not in the mempool.
    server.state().mine_one(true); // 8
    let known = best_chain(&server);
    let update = chain.sync(request(known.clone())).await.expect("sync");
    assert_eq!(position(&update, deposit), Some(Some(8)));
    server.state().reorg(1, false);
    let update = chain.sync(request(known[2..].to_vec())).await.expect("sync");
    assert_best_chain(&update, &server);
    assert_eq!(heights(&update), vec![7, 8, 9]);
    assert_eq!(position(&update, deposit), None);
    assert_eq!(
        update.missing.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        vec![deposit],
        "proven gone: its block left the chain and the chain above its parent was scanned"
    );
    // And still missing later, as long as it is asked about.
    server.state().mine_one(true);
    let update = chain
        .sync(request(best_chain(&server)[..10].to_vec()))
        .await
        .expect("sync");
    assert_eq!(update.missing.len(), 1);
}

#[tokio::test]
async fn a_transaction_that_leaves_the_mempool_is_missing_once_the_chain_above_is_scanned() {
    let server = fake_node("regtest").await;
    let watched = script(3);
    let txid = {
        let mut state = server.state();
        state.mine_one(true);
        state.deposit(&watched, 10_000)
    };
    let chain = connected(&server).await;
    let request = |known: Vec<BlockRef>| ChainSyncRequest {
        known_chain: known,
        scripts: vec![watched.clone()],
        txids: vec![txid],
        ..ChainSyncRequest::default()
    };
    let update = chain.sync(request(best_chain(&server))).await.expect("sync");
    assert_eq!(position(&update, txid), Some(None));

    // Evicted while five empty blocks came; asked by a caller that already knows them: the
    // five blocks below its fork point are scanned to prove it.
    let evicted = {
        let mut state = server.state();
        for _ in 0..5 {
            state.mine_one(false);
        }
        state.mempool.pop().expect("the deposit")
    };
    let known = best_chain(&server);
    let update = chain.sync(request(vec![known[0], known[6]])).await.expect("sync");
    assert_eq!(heights(&update), vec![6]);
    assert_eq!(update.missing.iter().map(|(t, _)| *t).collect::<Vec<_>>(), vec![txid]);
    let missing_at = update.missing[0].1;

    // Back in the mempool at once: seen after it went missing (or its holder would keep it
    // evicted), and at the same time on the next sync (nothing changed).
    server.state().mempool.push(evicted);
    let update = chain.sync(request(vec![known[6]])).await.expect("sync");
    let seen_at = match update.transactions[0].position {
        TxPosition::Mempool { seen_at } => seen_at,
        other => panic!("{other:?}"),
    };
    assert!(seen_at > missing_at, "{seen_at} after {missing_at}");
    let again = chain.sync(request(vec![known[6]])).await.expect("sync");
    assert_eq!(again.transactions[0].position, TxPosition::Mempool { seen_at });

    // A txid this source never saw is neither placed nor called missing.
    let stranger = Txid::from_byte_array([7; 32]);
    let update = chain
        .sync(ChainSyncRequest {
            known_chain: vec![known[6]],
            txids: vec![stranger],
            ..ChainSyncRequest::default()
        })
        .await
        .expect("sync");
    assert!(
        update.transactions.is_empty() && update.missing.is_empty(),
        "{update:?}"
    );
}

#[tokio::test]
async fn after_a_restart_watched_transactions_are_located_below_the_fork_point() {
    let server = fake_node("regtest").await;
    let deposit = {
        let mut state = server.state();
        state.mine_one(true);
        let txid = state.deposit(&script(4), 5_000);
        for _ in 0..10 {
            state.mine_one(true);
        }
        txid
    };
    // A new source, as after a restart: it has no record of the deposit.
    let chain = connected(&server).await;
    let known = best_chain(&server);
    let update = chain
        .sync(ChainSyncRequest {
            known_chain: vec![known[0], known[11]],
            txids: vec![deposit],
            ..ChainSyncRequest::default()
        })
        .await
        .expect("sync");
    assert_eq!(position(&update, deposit), Some(Some(2)));
    assert_eq!(heights(&update), vec![2, 11]);
    assert_best_chain(&update, &server);
}

#[tokio::test]
async fn a_shorter_chain_moves_confirmed_transactions_back_to_the_mempool() {
    let server = fake_node("regtest").await;
    let watched = script(5);
    let txid = {
        let mut state = server.state();
        state.mine_one(true);
        let txid = state.deposit(&watched, 7_000);
        state.mine_one(true);
        txid
    };
    let chain = connected(&server).await;
    let known = best_chain(&server);
    server.state().invalidate_tip();
    let update = chain
        .sync(ChainSyncRequest {
            known_chain: known,
            scripts: vec![watched],
            txids: vec![txid],
            ..ChainSyncRequest::default()
        })
        .await
        .expect("sync");
    assert_eq!(heights(&update), vec![1], "fork point and tip");
    assert_eq!(position(&update, txid), Some(None));
}

#[tokio::test]
async fn a_known_chain_of_another_network_is_refused() {
    let server = fake_node("regtest").await;
    let chain = connected(&server).await;
    let mainnet = bitcoin::constants::genesis_block(bitcoin::Network::Bitcoin).block_hash();
    let err = chain
        .sync(ChainSyncRequest {
            known_chain: vec![BlockRef {
                height: 0,
                hash: mainnet,
            }],
            ..ChainSyncRequest::default()
        })
        .await;
    assert!(matches!(err, Err(ChainError::WrongNetwork(..))), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Broadcasts and fee estimates.

#[tokio::test]
async fn broadcasts_map_bitcoinds_answers() {
    let server = fake_node("regtest").await;
    let chain = connected(&server).await;
    let tx = outside_payment(&script(1), 1_000);
    chain.broadcast(&tx).await.expect("relayed");
    assert_eq!(server.state().mempool, vec![tx.clone()]);
    chain.broadcast(&tx).await.expect("already in the mempool: fine");

    let set = |code: i32, message: &str| server.state().broadcast_error = Some((code, message.to_string()));
    let fresh = outside_payment(&script(1), 2_000);
    for (code, message) in [
        (-26, "txn-already-in-mempool"),
        (-26, "txn-already-known"),
        (-27, "Transaction already in block chain"),
        (-27, "Transaction outputs already in utxo set"),
    ] {
        set(code, message);
        chain
            .broadcast(&fresh)
            .await
            .unwrap_or_else(|e| panic!("{code} {message}: {e}"));
    }
    for (code, message) in [
        (-26, "min relay fee not met, 100 < 141"),
        (-26, "insufficient fee, rejecting replacement"),
        (-25, "bad-txns-inputs-missingorspent"),
        (
            -25,
            "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
        ),
        (-22, "TX decode failed"),
    ] {
        set(code, message);
        let refused = chain.broadcast(&fresh).await;
        assert!(
            matches!(&refused, Err(ChainError::Refused(why)) if why.contains(message)),
            "{code} {message}: {refused:?}"
        );
    }
    // "Missing inputs" for a transaction the node has: in its mempool, or confirmed with an
    // unspent output.
    set(-25, "bad-txns-inputs-missingorspent");
    chain.broadcast(&tx).await.expect("in the mempool");
    server.state().mine_one(true);
    chain.broadcast(&tx).await.expect("confirmed, its output unspent");
    // The node's own trouble is no verdict.
    set(-28, "Loading block index…");
    let why = unavailable(chain.broadcast(&fresh).await);
    assert!(why.contains("starting"), "{why}");
    set(-1, "something odd");
    unavailable(chain.broadcast(&fresh).await);

    server.state().broadcast_error = None;
    server.stop();
    unavailable(chain.broadcast(&fresh).await);
    unavailable(chain.sync(ChainSyncRequest::default()).await);
    unavailable(chain.fee_rate(6).await);
}

#[tokio::test]
async fn fee_estimates_are_exact_sat_per_kvb_or_absent() {
    let server = fake_node("regtest").await;
    let chain = connected(&server).await;
    let why = unavailable(chain.fee_rate(6).await);
    assert!(why.contains("no fee estimate"), "{why}");
    for (written, sats) in [
        ("0.00012345", 12_345),
        ("0.00001000", 1_000),
        ("1e-05", 1_000),
        ("0.00203040", 203_040),
    ] {
        server.state().fee = Some(written.to_string());
        assert_eq!(chain.fee_rate(6).await.expect("estimate"), sats, "{written}");
    }
    server.state().fee = Some("0.5".into());
    let why = unavailable(chain.fee_rate(6).await);
    assert!(why.contains("implausible"), "{why}");
    server.state().fee = Some("0.00001".into());
    chain.fee_rate(0).await.expect("estimate");
    chain.fee_rate(u16::MAX).await.expect("estimate");
    let targets = server.state().fee_targets.clone();
    assert_eq!(
        &targets[targets.len() - 2..],
        &[1, 1_008],
        "targets within bitcoind's range"
    );
}

// ---------------------------------------------------------------------------------------------
// Waiting for activity.

#[tokio::test]
async fn without_zmq_the_node_is_polled() {
    let server = fake_node("regtest").await;
    let chain = Arc::new(connected(&server).await);
    chain.sync(ChainSyncRequest::default()).await.expect("sync");
    let started = Instant::now();
    chain.wait_for_activity(Duration::from_millis(1_500)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1_400),
        "nothing happened: the timeout"
    );

    let waiter = spawn_waiter(&chain, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.state().deposit(&script(1), 1_000);
    let waited = waiter.await.expect("waiter");
    assert!(
        waited < Duration::from_secs(5),
        "woken by the new transaction after {waited:?}"
    );
}

#[tokio::test]
async fn zmq_notifications_wake_the_watcher() {
    let server = fake_node("regtest").await;
    let mut publisher = zeromq::PubSocket::new();
    let endpoint = publisher.bind("tcp://127.0.0.1:0").await.expect("bind a publisher");
    let endpoint = endpoint.to_string();
    let chain = Arc::new(
        BitcoindChain::connect(BitcoindConfig {
            zmq_rawtx: Some(endpoint.clone()),
            zmq_hashblock: Some(endpoint),
            ..server.config()
        })
        .await
        .expect("connect"),
    );
    wait_for_notifications(&chain, Duration::from_secs(10)).await;
    // The wake-up for connecting, then quiet: no polling while notifications are up (the fake
    // node's mempool changes and nobody notices).
    chain.wait_for_activity(Duration::from_secs(3)).await;
    server.state().deposit(&script(1), 1_000);
    let started = Instant::now();
    chain.wait_for_activity(Duration::from_millis(2_500)).await;
    assert!(started.elapsed() >= Duration::from_millis(2_400), "not polled");

    let waiter = spawn_waiter(&chain, Duration::from_secs(30));
    // Published until the waiter wakes (a new subscription takes a moment to reach the
    // publisher).
    let mut sequence = 0u32;
    while !waiter.is_finished() {
        let mut message = zeromq::ZmqMessage::from("hashblock");
        message.push_back(Bytes::from(vec![0u8; 32]));
        message.push_back(Bytes::from(sequence.to_le_bytes().to_vec()));
        let _ = publisher.send(message).await;
        sequence += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = waiter.await.expect("waiter");
    assert!(
        waited < Duration::from_secs(10),
        "woken by the notification after {waited:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The hot wallet over it.

const SEED: [u8; 32] = [11u8; 32];

/// The hot wallet over `chain`, its state in memory.
async fn hot_wallet(chain: Arc<dyn ChainSource>) -> BdkHotWallet {
    open_hot_wallet(&SEED, chain, Arc::new(MemoryWalletState::default())).await
}

#[tokio::test]
async fn the_hot_wallet_sees_deposits_pending_confirmed_reorganised_and_double_spent() {
    let server = fake_node("regtest").await;
    for _ in 0..3 {
        server.state().mine_one(true);
    }
    let chain = Arc::new(connected(&server).await);
    let wallet = hot_wallet(chain.clone()).await;
    let address = wallet.deposit_address(0).await.expect("address");
    let to_us = parse_address(&address, Network::Regtest)
        .expect("address")
        .script_pubkey();

    let first = server.state().deposit(&to_us, 80_000);
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.tip.height, 3);
    assert_eq!(snap.received.len(), 1);
    assert_eq!(snap.received[0].outpoint.txid, first);
    assert_eq!(snap.received[0].amount, sats(80_000));
    assert_eq!(snap.received[0].confirmed_height, None, "pending");

    server.state().mine_one(true);
    server.state().mine_one(true);
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.tip, server.state().tip());
    assert_eq!(snap.received[0].confirmed_height, Some(4), "confirmed");
    assert_eq!(snap.confirmed_balance, sats(80_000));

    // A reorganisation sends it back to the mempool; mined again.
    server.state().reorg(2, true);
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.tip, server.state().tip());
    assert_eq!(snap.received[0].confirmed_height, None, "unconfirmed again");
    assert_eq!(snap.confirmed_balance, Sats::ZERO);
    server.state().mine_one(true);
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.received[0].confirmed_height, Some(7));

    // A second deposit, confirmed, then double-spent away.
    let second = server.state().deposit(&to_us, 7_000);
    server.state().mine_one(true);
    let snap = wallet.sync(0).await.expect("sync");
    assert!(snap
        .received
        .iter()
        .any(|r| r.outpoint.txid == second && r.confirmed_height == Some(8)));
    server.state().reorg(1, false);
    let snap = wallet.sync(0).await.expect("sync");
    assert!(
        snap.received.iter().all(|r| r.outpoint.txid != second),
        "gone: {:?}",
        snap.received
    );
    assert_eq!(snap.confirmed_balance, sats(80_000));

    // A payout from the confirmed coin, through the node.
    let payout = wallet
        .build_payout(
            &[PayoutOutput {
                address: bitcoin::Address::from_script(&script(99), bitcoin::Network::Regtest)
                    .expect("address")
                    .to_string(),
                amount: sats(30_000),
            }],
            2_000,
        )
        .await
        .expect("payout");
    wallet.broadcast(&payout.tx).await.expect("broadcast");
    wallet.broadcast(&payout.tx).await.expect("again: fine");
    assert!(server.state().mempool.iter().any(|t| t.compute_txid() == payout.txid));
    server.state().mine_one(true);
    let snap = wallet.sync(0).await.expect("sync");
    let height = server.state().tip().height;
    assert!(snap
        .spending
        .iter()
        .any(|s| s.txid == payout.txid && s.confirmed_height == Some(height)));
    assert_eq!(
        snap.confirmed_balance.get(),
        80_000 - 30_000 - payout.fee.get(),
        "change back"
    );
}

// ---------------------------------------------------------------------------------------------
// Against a real bitcoind.

/// What `snap` says of the output `txid` paid to the wallet.
fn received(snap: &WalletSnapshot, txid: Txid) -> &ReceivedOutput {
    snap.received
        .iter()
        .find(|r| r.outpoint.txid == txid)
        .unwrap_or_else(|| panic!("{txid} received: {:?}", snap.received))
}

async fn blocking<T: Send + 'static>(node: &Arc<RegtestNode>, f: impl FnOnce(&RegtestNode) -> T + Send + 'static) -> T {
    let node = Arc::clone(node);
    tokio::task::spawn_blocking(move || f(&node)).await.expect("node call")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_real_regtest_bitcoind() {
    let Some(binary) = bitcoind_binary() else { return };
    let node = Arc::new(
        tokio::task::spawn_blocking(move || RegtestNode::start(&binary))
            .await
            .expect("start"),
    );
    blocking(&node, |n| n.mine(101)).await;

    let err = BitcoindChain::connect(node.config(Network::Mainnet)).await.err();
    assert!(matches!(err, Some(ChainError::WrongNetwork(..))), "{err:?}");
    let chain = Arc::new(
        BitcoindChain::connect(node.config(Network::Regtest))
            .await
            .expect("connect"),
    );
    wait_for_notifications(&chain, Duration::from_secs(15)).await;
    let why = unavailable(chain.fee_rate(6).await);
    assert!(why.contains("no fee estimate"), "regtest has none: {why}");

    let wallet = hot_wallet(chain.clone()).await;
    let address = wallet.deposit_address(0).await.expect("address");
    let snap = wallet.sync(0).await.expect("first sync scans the chain");
    assert_eq!(snap.tip.height, 101);
    assert!(snap.received.is_empty());

    // ZMQ wakes the watcher when the deposit enters the mempool.
    chain.wait_for_activity(Duration::from_secs(2)).await;
    let waiter = spawn_waiter(&chain, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = {
        let address = address.clone();
        blocking(&node, move |n| n.send_to(&address, 100_000)).await
    };
    let waited = waiter.await.expect("waiter");
    assert!(waited < Duration::from_secs(10), "woken by ZMQ rawtx after {waited:?}");

    let snap = wallet.sync(0).await.expect("sync");
    let deposit = received(&snap, sent);
    assert_eq!(deposit.amount, sats(100_000));
    assert_eq!(deposit.confirmed_height, None, "pending");

    let mined = blocking(&node, |n| n.mine(1)).await;
    let snap = wallet.sync(0).await.expect("sync");
    let deposit = received(&snap, sent);
    assert_eq!(deposit.confirmed_height, Some(102), "confirmed");
    assert_eq!(snap.confirmed_balance, sats(100_000));

    // Its block invalidated and replaced by an empty one: unconfirmed again, then confirmed.
    let replaced = blocking(&node, move |n| {
        n.invalidate(&mined[0]);
        let block = n.rpc("generateblock", json!([n.address(), []]));
        block["hash"].as_str().expect("a block hash").to_string()
    })
    .await;
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.tip.height, 102);
    assert_eq!(snap.tip.hash.to_string(), replaced);
    let deposit = received(&snap, sent);
    assert_eq!(deposit.confirmed_height, None, "back in the mempool");
    blocking(&node, |n| n.mine(1)).await;
    let snap = wallet.sync(0).await.expect("sync");
    let deposit = received(&snap, sent);
    assert_eq!(deposit.confirmed_height, Some(103));

    // A payout from the wallet, broadcast through the node, twice; and again once mined.
    let outside = blocking(&node, |n| n.rpc("getnewaddress", json!([]))).await;
    let payout = wallet
        .build_payout(
            &[PayoutOutput {
                address: outside.as_str().expect("address").to_string(),
                amount: sats(40_000),
            }],
            2_000,
        )
        .await
        .expect("payout");
    chain.broadcast(&payout.tx).await.expect("broadcast");
    chain
        .broadcast(&payout.tx)
        .await
        .expect("again: already in the mempool");
    assert!(blocking(&node, |n| n.mempool()).await.contains(&payout.txid));
    blocking(&node, |n| n.mine(1)).await;
    chain.broadcast(&payout.tx).await.expect("again: already in the chain");
    let snap = wallet.sync(0).await.expect("sync");
    assert!(snap
        .spending
        .iter()
        .any(|s| s.txid == payout.txid && s.confirmed_height == Some(104)));
    assert_eq!(snap.confirmed_balance.get(), 100_000 - 40_000 - payout.fee.get());
}
