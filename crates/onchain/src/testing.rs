//! Test support (the `testing` feature), for the tests and benchmarks of this crate and of the
//! crates above it:
//!
//! - a `bitcoind -regtest` of the test's own, for the tests that need a real node. They read
//!   `FLASH_TEST_BITCOIND` (the path to a `bitcoind` binary, Bitcoin Core 27 to 29) through
//!   [`bitcoind_binary`], and without it print why they were skipped and pass;
//! - the pieces the hot wallet's tests share: wallet state in memory ([`MemoryWalletState`]),
//!   a hot wallet opened from a seed ([`open_hot_wallet`]), addresses of another wallet to pay
//!   ([`outside_address`]), and a hot wallet whose payouts and broadcasts a test can watch or
//!   fail ([`HookedHotWallet`]);
//! - unsigned transactions and regtest blocks for the fake chain sources of the tests
//!   ([`outside_payment`], [`spend`], [`coinbase`], [`mine_block`]).
//!
//! Everything here panics on failure, with a message saying what failed: it is for tests only.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bdk_bitcoind_rpc::bitcoincore_rpc::{Auth, Client, RpcApi};
use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut,
    Txid, Witness,
};
use flash_core::onchain::{
    BlockRef, ChainError, ChainSource, HotWallet, PayoutOutput, SignedTx, WalletSnapshot, WalletStateStore,
};
use flash_core::ports::BoxFuture;
use flash_core::{Network, Sats};
use serde_json::{json, Value};

use crate::bitcoind::{BitcoindAuth, BitcoindConfig};
use crate::{hot_descriptors, BdkHotWallet, SoftwareSigner};

/// The line a test prints when it is skipped for want of a bitcoind.
pub const SKIP_LINE: &str = "skipped: FLASH_TEST_BITCOIND is not set (path to a bitcoind binary)";

/// How long a node may take to answer its first RPC.
const STARTUP_TIMEOUT_SECS: u64 = 60;

/// The name of the node's own wallet (it mines to it and pays from it).
const WALLET: &str = "flash-test";

static NEXT: AtomicU64 = AtomicU64::new(1);

/// The bitcoind binary named by `FLASH_TEST_BITCOIND`; `None` (after printing [`SKIP_LINE`])
/// when the variable is unset or empty.
pub fn bitcoind_binary() -> Option<PathBuf> {
    match std::env::var_os("FLASH_TEST_BITCOIND") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            println!("{SKIP_LINE}");
            None
        }
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; taken by whoever binds it first).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// `sats` as a BTC amount string (`"0.00050000"`): bitcoind takes amounts as strings too, and
/// money never passes through a float.
pub fn btc_string(sats: u64) -> String {
    format!("{}.{:08}", sats / 100_000_000, sats % 100_000_000)
}

/// A `bitcoind -regtest` on a temporary data directory, RPC, P2P and ZMQ (`rawtx`,
/// `hashblock`) on free 127.0.0.1 ports, cookie authentication, no peers, and a wallet of its own
/// (`createwallet`) that mining pays. Killed, and its directory removed, when dropped.
pub struct RegtestNode {
    child: Child,
    dir: PathBuf,
    client: Client,
    address: String,
    /// Its RPC endpoint, `http://127.0.0.1:PORT`.
    pub rpc_url: String,
    /// Its cookie file (written by the node at start).
    pub cookie_file: PathBuf,
    /// Its `-zmqpubrawtx` endpoint, `tcp://127.0.0.1:PORT`.
    pub zmq_rawtx: String,
    /// Its `-zmqpubhashblock` endpoint, `tcp://127.0.0.1:PORT`.
    pub zmq_hashblock: String,
}

impl RegtestNode {
    /// Starts `binary` and waits until its RPC answers (up to a minute), then creates its wallet.
    pub fn start(binary: &Path) -> RegtestNode {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("flash-regtest-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // bitcoind refuses a -datadir that does not exist.
        std::fs::create_dir_all(&dir).expect("bitcoind data dir");
        let rpc_port = free_port();
        let zmq_rawtx = format!("tcp://127.0.0.1:{}", free_port());
        let zmq_hashblock = format!("tcp://127.0.0.1:{}", free_port());
        let mut child = Command::new(binary)
            .arg("-regtest")
            .arg(format!("-datadir={}", dir.display()))
            .arg(format!("-rpcport={rpc_port}"))
            .arg("-rpcbind=127.0.0.1")
            .arg("-rpcallowip=127.0.0.1")
            // No peers: -listen=0 binds no P2P port; -port keeps it off the default anyway.
            .arg(format!("-port={}", free_port()))
            .arg("-listen=0")
            .arg("-dnsseed=0")
            .arg("-fixedseeds=0")
            .arg("-server=1")
            .arg("-txindex=0")
            // Regtest has no fee estimates: the node's wallet pays this (BTC/kvB) meanwhile.
            .arg("-fallbackfee=0.0002")
            .arg("-walletrbf=1")
            .arg(format!("-zmqpubrawtx={zmq_rawtx}"))
            .arg(format!("-zmqpubhashblock={zmq_hashblock}"))
            .arg("-printtoconsole=0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (FLASH_TEST_BITCOIND): {e}", binary.display()));
        let rpc_url = format!("http://127.0.0.1:{rpc_port}");
        let cookie_file = dir.join("regtest").join(".cookie");
        let deadline = Instant::now() + Duration::from_secs(STARTUP_TIMEOUT_SECS);
        let client = loop {
            if let Ok(Some(status)) = child.try_wait() {
                let _ = std::fs::remove_dir_all(&dir);
                panic!("bitcoind exited at start: {status}");
            }
            if cookie_file.exists() {
                if let Ok(client) = Client::new(&rpc_url, Auth::CookieFile(cookie_file.clone())) {
                    // Answers -28 (warming up) until it is ready.
                    if client.call::<Value>("getblockchaininfo", &[]).is_ok() {
                        break client;
                    }
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&dir);
                panic!("bitcoind's RPC did not come up in {STARTUP_TIMEOUT_SECS} s");
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        let mut node = RegtestNode {
            child,
            dir,
            client,
            address: String::new(),
            rpc_url,
            cookie_file,
            zmq_rawtx,
            zmq_hashblock,
        };
        node.rpc("createwallet", json!([WALLET]));
        node.address = node
            .rpc("getnewaddress", json!([]))
            .as_str()
            .expect("getnewaddress answers an address")
            .to_string();
        node
    }

    /// The configuration of a [`crate::BitcoindChain`] on this node, for `network` (regtest,
    /// unless a test checks the network check), with both ZMQ endpoints.
    pub fn config(&self, network: Network) -> BitcoindConfig {
        BitcoindConfig {
            rpc_url: self.rpc_url.clone(),
            auth: BitcoindAuth::CookieFile(self.cookie_file.clone()),
            network,
            zmq_rawtx: Some(self.zmq_rawtx.clone()),
            zmq_hashblock: Some(self.zmq_hashblock.clone()),
            timeout_secs: 30,
        }
    }

    /// Calls `method` with `params` (a JSON array); its result, or the node's error as text.
    pub fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let params = match params {
            Value::Array(params) => params,
            Value::Null => Vec::new(),
            other => vec![other],
        };
        self.client
            .call::<Value>(method, &params)
            .map_err(|e| format!("{method}: {e}"))
    }

    /// Calls `method` with `params` (a JSON array); its result. Panics on an error.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params)
            .unwrap_or_else(|e| panic!("bitcoind RPC {e}"))
    }

    /// The node wallet's own address (where mined coins go).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Mines `blocks` blocks to the node's wallet; their hashes.
    pub fn mine(&self, blocks: u32) -> Vec<BlockHash> {
        let hashes = self.rpc("generatetoaddress", json!([blocks, self.address]));
        hashes
            .as_array()
            .expect("generatetoaddress answers a list")
            .iter()
            .map(|h| BlockHash::from_str(h.as_str().expect("a block hash")).expect("a block hash"))
            .collect()
    }

    /// Pays `sats` to `address` from the node's wallet (BIP125-replaceable); the txid.
    pub fn send_to(&self, address: &str, sats: u64) -> Txid {
        // address, amount, comment, comment_to, subtractfeefromamount, replaceable.
        let txid = self.rpc("sendtoaddress", json!([address, btc_string(sats), "", "", false, true]));
        Txid::from_str(txid.as_str().expect("sendtoaddress answers a txid")).expect("a txid")
    }

    /// Marks block `hash` invalid: it and its descendants leave the best chain, their
    /// transactions go back to the mempool.
    pub fn invalidate(&self, hash: &BlockHash) {
        self.rpc("invalidateblock", json!([hash.to_string()]));
    }

    /// The best chain's height.
    pub fn height(&self) -> u32 {
        let count = self.rpc("getblockcount", json!([]));
        count
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .expect("getblockcount answers a height")
    }

    /// The txids in the node's mempool.
    pub fn mempool(&self) -> Vec<Txid> {
        let txids = self.rpc("getrawmempool", json!([]));
        txids
            .as_array()
            .expect("getrawmempool answers a list")
            .iter()
            .map(|t| Txid::from_str(t.as_str().expect("a txid")).expect("a txid"))
            .collect()
    }
}

impl Drop for RegtestNode {
    fn drop(&mut self) {
        // Asked to stop first (it flushes its files), killed if it takes too long.
        let _ = self.try_rpc("stop", json!([]));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// The hot wallet's test pieces.

/// `n` satoshis, which must be positive.
pub fn sats(n: i64) -> Sats {
    Sats::positive(n).expect("amount")
}

/// Wallet state in memory: what the Flash store keeps, for wallets tested without one. Shared
/// (behind an `Arc`) by the wallets opened on it, so a wallet opened again finds its state as
/// after a restart.
#[derive(Default)]
pub struct MemoryWalletState(Mutex<HashMap<String, Vec<String>>>);

impl WalletStateStore for MemoryWalletState {
    fn load_wallet_state<'a>(&'a self, wallet: &'a str) -> BoxFuture<'a, Result<Vec<String>, ChainError>> {
        let changes = self
            .0
            .lock()
            .map(|m| m.get(wallet).cloned().unwrap_or_default())
            .map_err(|e| ChainError::Storage(e.to_string()));
        Box::pin(async move { changes })
    }
    fn append_wallet_state<'a>(&'a self, wallet: &'a str, change: String) -> BoxFuture<'a, Result<(), ChainError>> {
        let done = self
            .0
            .lock()
            .map(|mut m| m.entry(wallet.to_string()).or_default().push(change))
            .map_err(|e| ChainError::Storage(e.to_string()));
        Box::pin(async move { done })
    }
}

/// The regtest hot wallet `hot` of `seed` (its BIP84 descriptors, a software signer) over
/// `chain`, its state in `state`.
pub async fn open_hot_wallet(
    seed: &[u8; 32],
    chain: Arc<dyn ChainSource>,
    state: Arc<dyn WalletStateStore>,
) -> BdkHotWallet {
    let descriptors = hot_descriptors(seed, Network::Regtest).expect("descriptors");
    let signer = Arc::new(SoftwareSigner::new(seed, Network::Regtest).expect("signer"));
    BdkHotWallet::open("hot", &descriptors, chain, state, signer)
        .await
        .expect("hot wallet")
}

/// The regtest deposit address at `index` of the wallet of `seed`: an address outside the
/// wallet under test (of another seed) to pay.
pub fn outside_address(seed: &[u8; 32], index: u32) -> String {
    let other = hot_descriptors(seed, Network::Regtest).expect("descriptors");
    let descriptor: bdk_wallet::descriptor::ExtendedDescriptor = other.external.parse().expect("descriptor");
    let script = descriptor.at_derivation_index(index).expect("index").script_pubkey();
    bitcoin::Address::from_script(&script, bitcoin::Network::Regtest)
        .expect("address")
        .to_string()
}

/// What [`HotWallet::build_payout`] answers.
pub type BuildFuture<'a> = BoxFuture<'a, Result<SignedTx, ChainError>>;
/// What [`HotWallet::broadcast`] answers.
pub type BroadcastFuture<'a> = BoxFuture<'a, Result<(), ChainError>>;

/// What a [`HookedHotWallet`] does in place of its inner wallet. Each method's default hands
/// the call to `inner`; a test's or benchmark's hooks replace those it watches or fails.
pub trait HotWalletHooks: Send + Sync {
    /// [`HotWallet::build_payout`].
    fn build_payout<'a>(&'a self, inner: &'a dyn HotWallet, outputs: &'a [PayoutOutput], rate: u64) -> BuildFuture<'a> {
        inner.build_payout(outputs, rate)
    }
    /// [`HotWallet::broadcast`].
    fn broadcast<'a>(&'a self, inner: &'a dyn HotWallet, tx: &'a Transaction) -> BroadcastFuture<'a> {
        inner.broadcast(tx)
    }
}

/// A hot wallet that hands every call to `inner`, payouts and broadcasts through `hooks`.
pub struct HookedHotWallet<H> {
    /// The real wallet.
    pub inner: Arc<dyn HotWallet>,
    /// What happens to payouts and broadcasts.
    pub hooks: H,
}

impl<H: HotWalletHooks> HotWallet for HookedHotWallet<H> {
    fn network(&self) -> Network {
        self.inner.network()
    }
    fn source_kind(&self) -> &'static str {
        self.inner.source_kind()
    }
    fn deposit_address(&self, index: u32) -> BoxFuture<'_, Result<String, ChainError>> {
        self.inner.deposit_address(index)
    }
    fn internal_address(&self) -> BoxFuture<'_, Result<String, ChainError>> {
        self.inner.internal_address()
    }
    fn owns<'a>(&'a self, script: &'a bitcoin::Script) -> BoxFuture<'a, bool> {
        self.inner.owns(script)
    }
    fn sync(&self, from_height: u32) -> BoxFuture<'_, Result<WalletSnapshot, ChainError>> {
        self.inner.sync(from_height)
    }
    fn wait_for_activity(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        self.inner.wait_for_activity(timeout)
    }
    fn fee_rate(&self, target_blocks: u16) -> BoxFuture<'_, Result<u64, ChainError>> {
        self.inner.fee_rate(target_blocks)
    }
    fn build_payout<'a>(
        &'a self,
        outputs: &'a [PayoutOutput],
        fee_rate_sat_per_kvb: u64,
    ) -> BoxFuture<'a, Result<SignedTx, ChainError>> {
        self.hooks.build_payout(&*self.inner, outputs, fee_rate_sat_per_kvb)
    }
    fn bump_fee(&self, txid: Txid, fee_rate_sat_per_kvb: u64) -> BoxFuture<'_, Result<SignedTx, ChainError>> {
        self.inner.bump_fee(txid, fee_rate_sat_per_kvb)
    }
    fn broadcast<'a>(&'a self, tx: &'a Transaction) -> BoxFuture<'a, Result<(), ChainError>> {
        self.hooks.broadcast(&*self.inner, tx)
    }
    fn forget(&self, txid: Txid) -> BoxFuture<'_, Result<(), ChainError>> {
        self.inner.forget(txid)
    }
    fn unconfirmed_spends(&self) -> BoxFuture<'_, Result<Vec<Txid>, ChainError>> {
        self.inner.unconfirmed_spends()
    }
    fn reload(&self) -> BoxFuture<'_, Result<(), ChainError>> {
        self.inner.reload()
    }
}

// ---------------------------------------------------------------------------------------------
// Transactions and blocks for fake chains.

/// Regtest's proof-of-work limit (`bits`).
pub const REGTEST_BITS: u32 = 0x207f_ffff;

/// A version-2 transaction, no lock time, of one input and one output.
fn one_to_one(input: TxIn, output: TxOut) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![input],
        output: vec![output],
    }
}

/// A transaction spending `outpoint` (BIP125-replaceable, no `script_sig`, `witness` as given)
/// and paying `sats` to `script`. Unsigned: for chains that check coins and amounts, not
/// signatures (the dev chain, the tests' fake nodes).
pub fn spend(outpoint: OutPoint, witness: Witness, sats: u64, script: ScriptBuf) -> Transaction {
    let input = TxIn {
        previous_output: outpoint,
        script_sig: ScriptBuf::new(),
        sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
        witness,
    };
    one_to_one(
        input,
        TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: script,
        },
    )
}

/// A witness the size of a P2WPKH spend's (a 72-byte signature, a 33-byte key), so that an
/// unsigned transaction weighs what a signed payment would.
pub fn p2wpkh_sized_witness() -> Witness {
    Witness::from_slice(&[vec![0x30; 72], vec![0x02; 33]])
}

/// A payment from outside: `sats` to `script`, spending a made-up coin (a random txid) with a
/// P2WPKH-sized witness.
pub fn outside_payment(script: &ScriptBuf, sats: u64) -> Transaction {
    let mut txid = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut txid);
    let outpoint = OutPoint {
        txid: Txid::from_byte_array(txid),
        vout: 0,
    };
    spend(outpoint, p2wpkh_sized_witness(), sats, script.clone())
}

/// The coinbase of a block at `height` paying `value` to nobody (`OP_RETURN`). A random extra
/// nonce makes every block new, also one that replaces a block of the same transactions.
pub fn coinbase(height: u32, value: Amount) -> Transaction {
    let mut extra_nonce = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut extra_nonce);
    let script_sig = bitcoin::script::Builder::new()
        .push_int(i64::from(height))
        .push_slice(extra_nonce)
        .into_script();
    let input = TxIn {
        previous_output: OutPoint::null(),
        script_sig,
        sequence: Sequence::MAX,
        witness: Witness::new(),
    };
    one_to_one(
        input,
        TxOut {
            value,
            script_pubkey: ScriptBuf::new_op_return([]),
        },
    )
}

/// The tip of `blocks`, a best chain from genesis.
pub fn tip_of(blocks: &[Block]) -> BlockRef {
    let block = blocks.last().expect("genesis");
    BlockRef {
        height: u32::try_from(blocks.len() - 1).expect("height"),
        hash: block.block_hash(),
    }
}

/// A regtest block on `prev_blockhash` at `time` holding `txdata` (its coinbase first), with
/// its merkle root and a proof of work.
pub fn mine_block(prev_blockhash: BlockHash, time: u32, txdata: Vec<Transaction>) -> Block {
    let header = Header {
        version: BlockVersion::TWO,
        prev_blockhash,
        merkle_root: TxMerkleNode::all_zeros(),
        time,
        bits: CompactTarget::from_consensus(REGTEST_BITS),
        nonce: 0,
    };
    let mut block = Block { header, txdata };
    block.header.merkle_root = block.compute_merkle_root().expect("merkle root");
    while block.header.validate_pow(block.header.target()).is_err() {
        block.header.nonce += 1;
    }
    block
}
