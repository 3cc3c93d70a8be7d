//! The Electrum chain source against a fake Electrum server: line-delimited JSON-RPC over
//! TCP (and TLS), serving an in-memory chain of real blocks (linked headers, merkle roots,
//! regtest proof of work) and a mempool, with header and script notifications. No real
//! Electrum server can run here (it needs bitcoind); the fake answers the protocol's methods
//! the way ElectrumX and electrs do, its own implementation of scripthashes, statuses and
//! merkle branches.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::hashes::{sha256, sha256d, Hash};
use bitcoin::{Amount, Block, OutPoint, ScriptBuf, Transaction, TxMerkleNode, Txid, Witness};
use flash_core::onchain::{
    parse_address, BlockRef, ChainError, ChainSource, ChainSyncRequest, ChainUpdate, HotWallet, PayoutOutput,
    TxPosition,
};
use flash_core::{Network, Sats};
use flash_onchain::testing::{
    self, coinbase, mine_block, open_hot_wallet, outside_payment, sats, tip_of, MemoryWalletState,
};
use flash_onchain::{BdkHotWallet, ElectrumChain, ElectrumConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

// ---------------------------------------------------------------------------------------------
// The fake Electrum server.

/// The Electrum index key of a script: its SHA-256, byte-reversed, in hex.
fn scripthash(script: &ScriptBuf) -> String {
    let mut bytes = sha256::Hash::hash(script.as_bytes()).to_byte_array();
    bytes.reverse();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct FakeState {
    /// The best chain, genesis first.
    blocks: Vec<Block>,
    mempool: Vec<Transaction>,
    /// What `blockchain.estimatefee` answers (BTC/kvB, -1 for none).
    fee: f64,
    /// Connections accepted so far.
    connections: usize,
}

impl FakeState {
    fn tip(&self) -> BlockRef {
        tip_of(&self.blocks)
    }

    fn all_txs(&self) -> impl Iterator<Item = &Transaction> {
        self.blocks
            .iter()
            .flat_map(|b| b.txdata.iter())
            .chain(self.mempool.iter())
    }

    fn find_tx(&self, txid: Txid) -> Option<&Transaction> {
        self.all_txs().find(|tx| tx.compute_txid() == txid)
    }

    fn mine_one(&mut self) {
        let tip = self.tip();
        let height = tip.height + 1;
        let mut txdata = vec![coinbase(height, Amount::ZERO)];
        txdata.append(&mut self.mempool);
        self.blocks
            .push(mine_block(tip.hash, 1_700_000_000 + height * 600, txdata));
    }

    /// Transactions paying or spending from the script with `hash`: confirmed in chain order,
    /// then the mempool at height 0.
    fn history(&self, hash: &str) -> Vec<(i64, Txid)> {
        let mut paid: HashMap<OutPoint, String> = HashMap::new();
        for tx in self.all_txs() {
            let txid = tx.compute_txid();
            for (vout, out) in tx.output.iter().enumerate() {
                let vout = u32::try_from(vout).expect("vout");
                paid.insert(OutPoint { txid, vout }, scripthash(&out.script_pubkey));
            }
        }
        let touches = |tx: &Transaction| {
            tx.output.iter().any(|o| scripthash(&o.script_pubkey) == hash)
                || tx
                    .input
                    .iter()
                    .any(|i| paid.get(&i.previous_output).is_some_and(|h| h == hash))
        };
        let mut history = Vec::new();
        for (height, block) in self.blocks.iter().enumerate() {
            for tx in block.txdata.iter().filter(|tx| touches(tx)) {
                history.push((i64::try_from(height).expect("height"), tx.compute_txid()));
            }
        }
        for tx in self.mempool.iter().filter(|tx| touches(tx)) {
            history.push((0, tx.compute_txid()));
        }
        history
    }

    /// A script's status: the hash of its history, `null` when it has none.
    fn status(&self, hash: &str) -> Value {
        let history = self.history(hash);
        if history.is_empty() {
            return Value::Null;
        }
        let text: String = history.iter().map(|(h, txid)| format!("{txid}:{h}:")).collect();
        json!(sha256::Hash::hash(text.as_bytes()).to_string())
    }

    fn unspent(&self) -> HashSet<OutPoint> {
        let mut unspent = HashSet::new();
        for tx in self.all_txs() {
            for input in &tx.input {
                unspent.remove(&input.previous_output);
            }
            let txid = tx.compute_txid();
            for vout in 0..tx.output.len() {
                unspent.insert(OutPoint {
                    txid,
                    vout: u32::try_from(vout).expect("vout"),
                });
            }
        }
        unspent
    }
}

/// Merkle branch of the transaction at `pos`, each hash in Electrum's (display) hex.
fn merkle_branch(txids: &[Txid], mut pos: usize) -> Vec<String> {
    let mut level: Vec<[u8; 32]> = txids.iter().map(|t| t.to_byte_array()).collect();
    let mut branch = Vec::new();
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            level.push(*level.last().expect("not empty"));
        }
        branch.push(TxMerkleNode::from_byte_array(level[pos ^ 1]).to_string());
        level = level
            .chunks(2)
            .map(|pair| sha256d::Hash::hash(&[pair[0], pair[1]].concat()).to_byte_array())
            .collect();
        pos /= 2;
    }
    branch
}

/// What one connection subscribed to, and what it was last told.
#[derive(Default)]
struct Subscriptions {
    tip: Option<BlockRef>,
    scripts: HashMap<String, Value>,
}

type Answer = Result<Value, (i64, String)>;

struct Fake {
    state: Mutex<FakeState>,
    changed: broadcast::Sender<()>,
    kill: broadcast::Sender<()>,
    addr: SocketAddr,
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Fake {
    async fn start(network: bitcoin::Network) -> Arc<Fake> {
        Fake::start_with(network, None).await
    }

    async fn start_with(network: bitcoin::Network, tls: Option<tokio_rustls::TlsAcceptor>) -> Arc<Fake> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let fake = Arc::new(Fake {
            state: Mutex::new(FakeState {
                blocks: vec![bitcoin::constants::genesis_block(network)],
                mempool: Vec::new(),
                fee: 0.000_2,
                connections: 0,
            }),
            changed: broadcast::channel(64).0,
            kill: broadcast::channel(4).0,
            addr: listener.local_addr().expect("address"),
            accept: Mutex::new(None),
        });
        let server = Arc::clone(&fake);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                server.lock().connections += 1;
                let server = Arc::clone(&server);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                server.serve(stream).await;
                            }
                        }
                        None => server.serve(stream).await,
                    }
                });
            }
        });
        *fake.accept.lock().expect("lock") = Some(task);
        fake
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake state")
    }

    fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    fn changed(&self) {
        let _ = self.changed.send(());
    }

    /// A payment from outside: spends a made-up coin, pays `sats` to `script`.
    fn deposit(&self, script: &ScriptBuf, sats: u64) -> Txid {
        let tx = outside_payment(script, sats);
        let txid = tx.compute_txid();
        self.lock().mempool.push(tx);
        self.changed();
        txid
    }

    fn mine(&self, blocks: u32) -> BlockRef {
        let tip = {
            let mut state = self.lock();
            (0..blocks).for_each(|_| state.mine_one());
            state.tip()
        };
        self.changed();
        tip
    }

    /// Replaces the top `depth` blocks with `depth + 1` new ones; their transactions go back
    /// to the mempool, or vanish with `drop`.
    fn reorg(&self, depth: u32, drop: bool) -> BlockRef {
        let tip = {
            let mut state = self.lock();
            let cut = state.blocks.len() - depth as usize;
            let removed: Vec<Transaction> = state
                .blocks
                .drain(cut..)
                .flat_map(|b| b.txdata.into_iter().skip(1))
                .collect();
            let mempool = std::mem::take(&mut state.mempool);
            (0..=depth).for_each(|_| state.mine_one());
            state.mempool = if drop {
                mempool
            } else {
                removed.into_iter().chain(mempool).collect()
            };
            state.tip()
        };
        self.changed();
        tip
    }

    /// Evicts `txid` from the mempool (as if double-spent elsewhere).
    fn evict(&self, txid: Txid) {
        self.lock().mempool.retain(|tx| tx.compute_txid() != txid);
        self.changed();
    }

    fn block_ref(&self, height: u32) -> BlockRef {
        let state = self.lock();
        BlockRef {
            height,
            hash: state.blocks[height as usize].block_hash(),
        }
    }

    fn block_time(&self, height: u32) -> u64 {
        u64::from(self.lock().blocks[height as usize].header.time)
    }

    fn mempool(&self) -> Vec<Txid> {
        self.lock().mempool.iter().map(Transaction::compute_txid).collect()
    }

    /// Closes every open connection (the listener stays).
    fn kill_connections(&self) {
        let _ = self.kill.send(());
    }

    /// Stops listening and closes every connection.
    fn stop(&self) {
        if let Some(task) = self.accept.lock().expect("lock").take() {
            task.abort();
        }
        self.kill_connections();
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(self: Arc<Self>, stream: S) {
        let (reader, mut writer) = tokio::io::split(stream);
        let mut lines = BufReader::new(reader).lines();
        let mut changed = self.changed.subscribe();
        let mut kill = self.kill.subscribe();
        let mut subscriptions = Subscriptions::default();
        loop {
            let out: Vec<Value> = tokio::select! {
                line = lines.next_line() => {
                    let Ok(Some(line)) = line else { return };
                    let Ok(request) = serde_json::from_str::<Value>(&line) else { return };
                    vec![self.respond(&request, &mut subscriptions)]
                }
                event = changed.recv() => {
                    if matches!(event, Err(broadcast::error::RecvError::Closed)) {
                        return;
                    }
                    self.notifications(&mut subscriptions)
                }
                _ = kill.recv() => return,
            };
            for message in out {
                let mut line = message.to_string();
                line.push('\n');
                if writer.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }

    fn respond(&self, request: &Value, subscriptions: &mut Subscriptions) -> Value {
        let id = request["id"].clone();
        let method = request["method"].as_str().unwrap_or_default();
        let params = request["params"].as_array().cloned().unwrap_or_default();
        let (answer, changed) = self.answer(method, &params, subscriptions);
        if changed {
            self.changed();
        }
        match answer {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err((code, message)) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
        }
    }

    /// The answer to one request, and whether the chain or mempool changed.
    fn answer(&self, method: &str, params: &[Value], subscriptions: &mut Subscriptions) -> (Answer, bool) {
        let mut state = self.lock();
        let text = |i: usize| params.get(i).and_then(Value::as_str).unwrap_or_default().to_string();
        let number = |i: usize| params.get(i).and_then(Value::as_u64).unwrap_or(u64::MAX);
        let no_tx = || {
            Err((
                2,
                "daemon error: DaemonError({'code': -5, 'message': 'No such mempool or blockchain transaction'})"
                    .to_string(),
            ))
        };
        let answer = match method {
            "server.version" => Ok(json!(["fake electrum", "1.4"])),
            "server.ping" => Ok(Value::Null),
            "blockchain.headers.subscribe" => {
                let tip = state.tip();
                subscriptions.tip = Some(tip);
                Ok(json!({"height": tip.height, "hex": serialize_hex(&state.blocks[tip.height as usize].header)}))
            }
            "blockchain.block.header" => match state.blocks.get(usize::try_from(number(0)).unwrap_or(usize::MAX)) {
                Some(block) => Ok(json!(serialize_hex(&block.header))),
                None => Err((1, format!("height {} out of range", number(0)))),
            },
            "blockchain.scripthash.get_history" => {
                let history: Vec<Value> = state
                    .history(&text(0))
                    .iter()
                    .map(|(height, txid)| json!({"height": height, "tx_hash": txid.to_string()}))
                    .collect();
                Ok(json!(history))
            }
            "blockchain.scripthash.subscribe" => {
                let status = state.status(&text(0));
                subscriptions.scripts.insert(text(0), status.clone());
                Ok(status)
            }
            "blockchain.transaction.get" => match text(0).parse::<Txid>().ok().and_then(|t| state.find_tx(t)) {
                Some(tx) => Ok(json!(serialize_hex(tx))),
                None => no_tx(),
            },
            "blockchain.transaction.get_merkle" => {
                let txid = text(0).parse::<Txid>().ok();
                let block = state.blocks.get(usize::try_from(number(1)).unwrap_or(usize::MAX));
                let txids: Vec<Txid> = block
                    .map(|b| b.txdata.iter().map(Transaction::compute_txid).collect())
                    .unwrap_or_default();
                match txids.iter().position(|t| Some(*t) == txid) {
                    Some(pos) => {
                        Ok(json!({"block_height": number(1), "merkle": merkle_branch(&txids, pos), "pos": pos}))
                    }
                    None => Err((1, "tx not in block".to_string())),
                }
            }
            "blockchain.transaction.broadcast" => {
                let rejected = |reason: &str| {
                    Err((
                        1,
                        format!("the transaction was rejected by network rules.\n\n{reason}\n"),
                    ))
                };
                match deserialize_hex::<Transaction>(&text(0)) {
                    Err(_) => rejected("TX decode failed"),
                    Ok(tx) => {
                        let txid = tx.compute_txid();
                        let unspent = state.unspent();
                        if state.mempool.iter().any(|t| t.compute_txid() == txid) {
                            rejected("txn-already-in-mempool")
                        } else if !tx.input.iter().all(|i| unspent.contains(&i.previous_output)) {
                            // What bitcoind says for a confirmed transaction too.
                            rejected("bad-txns-inputs-missingorspent")
                        } else {
                            state.mempool.push(tx);
                            drop(state);
                            return (Ok(json!(txid.to_string())), true);
                        }
                    }
                }
            }
            "blockchain.estimatefee" => Ok(json!(state.fee)),
            _ => Err((-32601, format!("unknown method {method:?}"))),
        };
        (answer, false)
    }

    /// What a change means for this connection's subscriptions.
    fn notifications(&self, subscriptions: &mut Subscriptions) -> Vec<Value> {
        let state = self.lock();
        let mut out = Vec::new();
        let tip = state.tip();
        if subscriptions.tip.is_some_and(|last| last != tip) {
            subscriptions.tip = Some(tip);
            let hex = serialize_hex(&state.blocks[tip.height as usize].header);
            out.push(json!({"jsonrpc": "2.0", "method": "blockchain.headers.subscribe", "params": [{"height": tip.height, "hex": hex}]}));
        }
        for (hash, last) in subscriptions.scripts.iter_mut() {
            let status = state.status(hash);
            if status != *last {
                *last = status.clone();
                out.push(
                    json!({"jsonrpc": "2.0", "method": "blockchain.scripthash.subscribe", "params": [hash, status]}),
                );
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn config(url: String) -> ElectrumConfig {
    ElectrumConfig {
        url,
        network: Network::Regtest,
        timeout_secs: 5,
        validate_domain: true,
    }
}

async fn connect(fake: &Fake) -> ElectrumChain {
    ElectrumChain::connect(config(fake.url())).await.expect("connect")
}

fn genesis() -> BlockRef {
    let block = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
    BlockRef {
        height: 0,
        hash: block.block_hash(),
    }
}

/// A script nobody else pays.
fn random_script() -> ScriptBuf {
    let mut key_hash = [0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key_hash);
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array(key_hash))
}

fn txids(update: &ChainUpdate) -> Vec<Txid> {
    update.transactions.iter().map(|t| t.tx.compute_txid()).collect()
}

fn position_of(update: &ChainUpdate, txid: Txid) -> Option<TxPosition> {
    update
        .transactions
        .iter()
        .find(|t| t.tx.compute_txid() == txid)
        .map(|t| t.position)
}

// ---------------------------------------------------------------------------------------------
// The chain source.

#[tokio::test]
async fn a_deposit_is_seen_in_the_mempool_then_confirmed() {
    let fake = Fake::start(bitcoin::Network::Regtest).await;
    let chain = connect(&fake).await;
    assert_eq!(chain.kind(), "electrum");
    assert_eq!(chain.network(), Network::Regtest);

    let script = random_script();
    let txid = fake.deposit(&script, 50_000);
    let request = |known_chain: Vec<BlockRef>| ChainSyncRequest {
        known_chain,
        scripts: vec![script.clone(), random_script()],
        ..Default::default()
    };
    let update = chain.sync(request(vec![genesis()])).await.expect("sync");
    assert_eq!(update.chain, vec![genesis()]);
    assert_eq!(txids(&update), vec![txid]);
    assert!(matches!(position_of(&update, txid), Some(TxPosition::Mempool { .. })));
    assert!(update.missing.is_empty());
    assert_eq!(update.transactions[0].tx.output[0].script_pubkey, script);

    let tip = fake.mine(2);
    let update = chain.sync(request(vec![genesis()])).await.expect("sync");
    assert_eq!(
        update.chain,
        vec![genesis(), fake.block_ref(1), tip],
        "fork point, anchor, tip"
    );
    assert_eq!(
        position_of(&update, txid),
        Some(TxPosition::Confirmed {
            block: fake.block_ref(1),
            time: fake.block_time(1),
        })
    );

    // From the tip on, nothing is new; a watched txid is still reported where it is, with its
    // block (below the fork point) in the chain.
    let update = chain.sync(request(vec![genesis(), tip])).await.expect("sync");
    assert_eq!(update.chain, vec![tip]);
    assert!(update.transactions.is_empty());
    let update = chain
        .sync(ChainSyncRequest {
            txids: vec![txid],
            ..request(vec![genesis(), tip])
        })
        .await
        .expect("sync");
    assert_eq!(update.chain, vec![fake.block_ref(1), tip]);
    assert_eq!(txids(&update), vec![txid]);
    assert!(matches!(position_of(&update, txid), Some(TxPosition::Confirmed { block, .. }) if block.height == 1));
}

#[tokio::test]
async fn a_reorganisation_is_answered_from_the_fork_point() {
    let fake = Fake::start(bitcoin::Network::Regtest).await;
    let chain = connect(&fake).await;
    let script = random_script();
    fake.mine(1);
    let txid = fake.deposit(&script, 10_000);
    fake.mine(2);
    let known: Vec<BlockRef> = (0..=3).map(|h| fake.block_ref(h)).collect();
    let request = ChainSyncRequest {
        known_chain: known.clone(),
        scripts: vec![script.clone()],
        txids: vec![txid],
        ..Default::default()
    };
    let update = chain.sync(request.clone()).await.expect("sync");
    assert_eq!(update.chain, vec![fake.block_ref(2), fake.block_ref(3)]);

    // Blocks 2 and 3 replaced by three others; the deposit back in the mempool.
    let tip = fake.reorg(2, false);
    assert_eq!(tip.height, 4);
    let update = chain.sync(request.clone()).await.expect("sync");
    let expected: Vec<BlockRef> = (1..=4).map(|h| fake.block_ref(h)).collect();
    assert_eq!(
        update.chain, expected,
        "the fork point, every known height above it replaced, the tip"
    );
    assert_ne!(update.chain[1], known[2]);
    assert!(matches!(position_of(&update, txid), Some(TxPosition::Mempool { .. })));

    // A sparse known chain: the heights it knew are replaced, the others left out.
    let old_tip = fake.mine(1);
    fake.reorg(3, false);
    let update = chain
        .sync(ChainSyncRequest {
            known_chain: vec![genesis(), known[1], expected[3], old_tip],
            ..request.clone()
        })
        .await
        .expect("sync");
    let heights: Vec<u32> = update.chain.iter().map(|b| b.height).collect();
    assert_eq!(heights, vec![1, 4, 5, 6], "{:?}", update.chain);
    assert_eq!(update.chain[0], known[1]);
    assert_eq!(update.chain[1], fake.block_ref(4));
    assert_ne!(update.chain[1], expected[3], "replaced");
}

#[tokio::test]
async fn a_vanished_watched_transaction_is_missing() {
    let fake = Fake::start(bitcoin::Network::Regtest).await;
    let chain = connect(&fake).await;
    let script = random_script();
    let kept = fake.deposit(&script, 20_000);
    let gone = fake.deposit(&script, 30_000);
    let request = ChainSyncRequest {
        known_chain: vec![genesis()],
        scripts: vec![script.clone()],
        txids: vec![kept, gone],
        ..Default::default()
    };
    let update = chain.sync(request.clone()).await.expect("sync");
    assert_eq!(update.transactions.len(), 2);
    assert!(update.missing.is_empty());

    fake.evict(gone);
    let update = chain.sync(request.clone()).await.expect("sync");
    assert_eq!(txids(&update), vec![kept]);
    assert_eq!(update.missing.iter().map(|(t, _)| *t).collect::<Vec<_>>(), vec![gone]);
    assert!(update.missing[0].1 > 1_600_000_000, "found missing now");

    // Watched alone (its script not asked for): found through its own output's script.
    let update = chain
        .sync(ChainSyncRequest {
            scripts: vec![],
            ..request
        })
        .await
        .expect("sync");
    assert_eq!(txids(&update), vec![kept]);
    assert_eq!(update.missing.len(), 1);
}

#[tokio::test]
async fn spends_of_watched_outpoints_are_found() {
    let fake = Fake::start(bitcoin::Network::Regtest).await;
    let chain = connect(&fake).await;
    let funding = fake.deposit(&random_script(), 40_000);
    let tip = fake.mine(1);
    let outpoint = OutPoint { txid: funding, vout: 0 };
    let spend = testing::spend(outpoint, Witness::new(), 39_000, random_script());
    chain.broadcast(&spend).await.expect("broadcast");
    assert_eq!(fake.mempool(), vec![spend.compute_txid()]);
    let update = chain
        .sync(ChainSyncRequest {
            known_chain: vec![genesis(), tip],
            outpoints: vec![outpoint],
            ..Default::default()
        })
        .await
        .expect("sync");
    assert_eq!(txids(&update), vec![spend.compute_txid()], "the spend, not the funding");
    assert_eq!(update.chain, vec![tip]);
}

#[tokio::test]
async fn broadcasts_are_relayed_repeated_or_refused() {
    let fake = Fake::start(bitcoin::Network::Regtest).await;
    let chain = connect(&fake).await;
    let txid = fake.deposit(&random_script(), 10_000);
    let spend = |vout: u32| testing::spend(OutPoint { txid, vout }, Witness::new(), 9_000, random_script());
    let refused = chain.broadcast(&spend(1)).await;
    assert!(
        matches!(&refused, Err(ChainError::Refused(why)) if why.contains("missingorspent")),
        "{refused:?}"
    );
    let good = spend(0);
    chain.broadcast(&good).await.expect("relayed");
    chain.broadcast(&good).await.expect("already in the mempool is success");
    fake.mine(1);
    chain.broadcast(&good).await.expect("already confirmed is success");
    assert_eq!(fake.mempool(), Vec::<Txid>::new());

    // A transaction the adapter has seen (and cached) but the server no longer has is not
    // "already known": its coin is gone.
    let script = random_script();
    let deposit = fake.deposit(&script, 5_000);
    let update = chain
        .sync(ChainSyncRequest {
            known_chain: vec![genesis()],
            scripts: vec![script],
            ..Default::default()
        })
        .await
        .expect("sync");
    let seen = Arc::clone(&update.transactions[0].tx);
    assert_eq!(seen.compute_txid(), deposit);
    fake.evict(deposit);
    let gone = chain.broadcast(&seen).await;
    assert!(matches!(gone, Err(ChainError::Refused(_))), "{gone:?}");
}

#[tokio::test]
async fn fee_estimates_are_sat_per_kvb() {
    let fake = Fake::start(bitcoin::Network::Regtest).await;
    let chain = connect(&fake).await;
    fake.lock().fee = 0.000_123_45;
    assert_eq!(chain.fee_rate(6).await.expect("fee"), 12_345);
    assert_eq!(
        chain.fee_rate(0).await.expect("fee"),
        12_345,
        "a target of 0 asks for 1"
    );
    fake.lock().fee = -1.0;
    let none = chain.fee_rate(2).await;
    assert!(
        matches!(&none, Err(ChainError::Unavailable(why)) if why.contains("no fee estimate")),
        "{none:?}"
    );
}

#[tokio::test]
async fn a_server_of_another_network_is_refused() {
    let fake = Fake::start(bitcoin::Network::Testnet).await;
    let refused = ElectrumChain::connect(config(fake.url())).await.err();
    assert!(
        matches!(&refused, Some(ChainError::WrongNetwork(_, Network::Regtest))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_are_told_apart() {
    let bad = ElectrumChain::connect(config("http://127.0.0.1:1".into())).await.err();
    assert!(matches!(bad, Some(ChainError::InvalidInput(_))), "{bad:?}");

    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let down = ElectrumChain::connect(config(format!("tcp://127.0.0.1:{port}")))
        .await
        .err();
    assert!(matches!(down, Some(ChainError::Unavailable(_))), "{down:?}");

    // Something listens but never answers: the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", silent.local_addr().expect("address"));
    let started = Instant::now();
    let mute = ElectrumChain::connect(ElectrumConfig {
        timeout_secs: 1,
        ..config(url)
    })
    .await
    .err();
    assert!(matches!(mute, Some(ChainError::Unavailable(_))), "{mute:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    drop(silent);
}

#[tokio::test]
async fn a_dropped_connection_is_opened_again() {
    let fake = Fake::start(bitcoin::Network::Regtest).await;
    let chain = connect(&fake).await;
    let script = random_script();
    let txid = fake.deposit(&script, 10_000);
    let request = ChainSyncRequest {
        known_chain: vec![genesis()],
        scripts: vec![script],
        ..Default::default()
    };
    chain.sync(request.clone()).await.expect("sync");
    assert_eq!(fake.lock().connections, 1);

    fake.kill_connections();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let update = chain.sync(request.clone()).await.expect("sync on a new connection");
    assert_eq!(txids(&update), vec![txid]);
    assert_eq!(fake.lock().connections, 2);

    fake.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let down = chain.sync(request).await;
    assert!(matches!(down, Err(ChainError::Unavailable(_))), "{down:?}");
    assert!(matches!(chain.fee_rate(1).await, Err(ChainError::Unavailable(_))));
}

#[tokio::test]
async fn activity_is_notified() {
    let fake = Fake::start(bitcoin::Network::Regtest).await;
    let chain = Arc::new(connect(&fake).await);
    let script = random_script();
    chain
        .sync(ChainSyncRequest {
            known_chain: vec![genesis()],
            scripts: vec![script.clone()],
            ..Default::default()
        })
        .await
        .expect("sync subscribes to the script");

    // Nothing happens: the whole timeout.
    let started = Instant::now();
    chain.wait_for_activity(Duration::from_millis(1_500)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1_400),
        "{:?}",
        started.elapsed()
    );

    // A new block.
    let miner = Arc::clone(&fake);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        miner.mine(1);
    });
    let started = Instant::now();
    chain.wait_for_activity(Duration::from_secs(30)).await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    // A deposit to the watched script entering the mempool.
    let payer = Arc::clone(&fake);
    let paid = script.clone();
    let deposit = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        payer.deposit(&paid, 1_000)
    });
    let started = Instant::now();
    chain.wait_for_activity(Duration::from_secs(30)).await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let txid = deposit.await.expect("deposit");

    // It leaves the mempool: the script's status becomes `null`, a notification the client
    // library cannot read. That counts as activity, and the next sync works on a new
    // connection.
    let request = ChainSyncRequest {
        known_chain: vec![genesis()],
        scripts: vec![script],
        txids: vec![txid],
        ..Default::default()
    };
    assert_eq!(txids(&chain.sync(request.clone()).await.expect("sync")), vec![txid]);
    let evicter = Arc::clone(&fake);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        evicter.evict(txid);
    });
    let started = Instant::now();
    chain.wait_for_activity(Duration::from_secs(30)).await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let update = chain.sync(request).await.expect("sync");
    assert!(update.transactions.is_empty());
    assert_eq!(update.missing.iter().map(|(t, _)| *t).collect::<Vec<_>>(), vec![txid]);
}

// ---------------------------------------------------------------------------------------------
// TLS.

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn ssl_urls_speak_tls() {
    let fake = Fake::start_with(bitcoin::Network::Regtest, Some(tls_acceptor())).await;
    let url = format!("ssl://localhost:{}", fake.addr.port());

    // A self-signed certificate is refused when certificates are checked...
    let refused = ElectrumChain::connect(config(url.clone())).await.err();
    assert!(matches!(refused, Some(ChainError::Unavailable(_))), "{refused:?}");

    // ...and works when they are not.
    let chain = ElectrumChain::connect(ElectrumConfig {
        validate_domain: false,
        ..config(url)
    })
    .await
    .expect("connect over TLS");
    let script = random_script();
    let txid = fake.deposit(&script, 5_000);
    fake.mine(1);
    let update = chain
        .sync(ChainSyncRequest {
            known_chain: vec![genesis()],
            scripts: vec![script],
            ..Default::default()
        })
        .await
        .expect("sync");
    assert_eq!(txids(&update), vec![txid]);
    assert!(matches!(position_of(&update, txid), Some(TxPosition::Confirmed { block, .. }) if block.height == 1));
}

// ---------------------------------------------------------------------------------------------
// The BDK hot wallet over Electrum.

const SEED: [u8; 32] = [7u8; 32];

/// The hot wallet over a connection to `fake`, its state in memory.
async fn open_wallet(fake: &Fake) -> BdkHotWallet {
    let chain = Arc::new(connect(fake).await);
    open_hot_wallet(&SEED, chain, Arc::new(MemoryWalletState::default())).await
}

fn script_of(address: &str) -> ScriptBuf {
    parse_address(address, Network::Regtest)
        .expect("address")
        .script_pubkey()
}

#[tokio::test]
async fn the_hot_wallet_follows_deposits_and_reorganisations() {
    let fake = Fake::start(bitcoin::Network::Regtest).await;
    let wallet = open_wallet(&fake).await;
    assert_eq!(wallet.source_kind(), "electrum");
    let a0 = wallet.deposit_address(0).await.expect("address");
    let a1 = wallet.deposit_address(1).await.expect("address");

    let tx0 = fake.deposit(&script_of(&a0), 50_000);
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.tip, genesis());
    assert_eq!(snap.received.len(), 1);
    assert_eq!(snap.received[0].outpoint.txid, tx0);
    assert_eq!(snap.received[0].address, a0);
    assert_eq!(snap.received[0].amount, sats(50_000));
    assert_eq!(snap.received[0].confirmed_height, None, "in the mempool");

    let tip = fake.mine(2);
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.tip, tip);
    assert_eq!(snap.received[0].confirmed_height, Some(1));
    assert_eq!(snap.confirmed_balance, sats(50_000));

    // Blocks 1 and 2 replaced: the deposit goes back to the mempool, then confirms again.
    fake.reorg(2, false);
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.tip, fake.block_ref(3));
    assert_eq!(snap.received.len(), 1);
    assert_eq!(snap.received[0].confirmed_height, None, "back in the mempool");
    assert_eq!(snap.confirmed_balance, Sats::ZERO);
    fake.mine(1);
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.received[0].confirmed_height, Some(4), "confirmed in a new block");

    // A block at a time, so the wallet knows every height; then a reorganisation in the middle.
    for _ in 0..3 {
        fake.mine(1);
        wallet.sync(0).await.expect("sync");
    }
    fake.reorg(4, false);
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.tip, fake.block_ref(8));
    assert_eq!(snap.received[0].confirmed_height, None, "block 4 was replaced");
    fake.mine(1);
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.received[0].confirmed_height, Some(9));

    // A second deposit, confirmed, then dropped by a reorganisation (as if double-spent).
    let tx1 = fake.deposit(&script_of(&a1), 7_000);
    fake.mine(1);
    let snap = wallet.sync(0).await.expect("sync");
    assert!(snap
        .received
        .iter()
        .any(|r| r.outpoint.txid == tx1 && r.confirmed_height == Some(10)));
    fake.reorg(1, true);
    let snap = wallet.sync(0).await.expect("sync");
    assert!(
        snap.received.iter().all(|r| r.outpoint.txid != tx1),
        "the dropped deposit is gone: {:?}",
        snap.received
    );
    assert_eq!(snap.confirmed_balance, sats(50_000));
    assert_eq!(snap.tip, fake.block_ref(11));
}

#[tokio::test]
async fn the_hot_wallet_pays_out_through_electrum() {
    let fake = Fake::start(bitcoin::Network::Regtest).await;
    let wallet = open_wallet(&fake).await;
    let address = wallet.deposit_address(0).await.expect("address");
    fake.deposit(&script_of(&address), 1_000_000);
    fake.mine(1);
    wallet.sync(0).await.expect("sync");

    let outside = parse_address("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", Network::Regtest).expect("address");
    let payout = PayoutOutput {
        address: outside.to_string(),
        amount: sats(100_000),
    };
    let fee_rate = wallet.fee_rate(3).await.expect("fee rate");
    assert_eq!(fee_rate, 20_000);
    let signed = wallet.build_payout(&[payout], fee_rate).await.expect("payout");
    wallet.broadcast(&signed.tx).await.expect("broadcast");
    assert_eq!(fake.mempool(), vec![signed.txid]);
    let snap = wallet.sync(0).await.expect("sync");
    assert!(snap
        .spending
        .iter()
        .any(|s| s.txid == signed.txid && s.confirmed_height.is_none()));
    fake.mine(1);
    let snap = wallet.sync(0).await.expect("sync");
    assert!(snap
        .spending
        .iter()
        .any(|s| s.txid == signed.txid && s.confirmed_height == Some(2)));
    assert_eq!(
        snap.confirmed_balance.get(),
        1_000_000 - 100_000 - signed.fee.get(),
        "change back to the wallet"
    );
}
