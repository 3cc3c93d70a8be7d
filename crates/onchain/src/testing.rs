//! Test support (the `testing` feature): a `bitcoind -regtest` of the test's own, for the tests
//! that need a real node. They read `FLASH_TEST_BITCOIND` (the path to a `bitcoind` binary,
//! Bitcoin Core 27 to 29) through [`bitcoind_binary`], and without it print why they were skipped
//! and pass.
//!
//! Everything here panics on failure, with a message saying what failed: it is for tests only.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bdk_bitcoind_rpc::bitcoincore_rpc::{Auth, Client, RpcApi};
use bitcoin::{BlockHash, Txid};
use flash_core::Network;
use serde_json::{json, Value};

use crate::bitcoind::{BitcoindAuth, BitcoindConfig};

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
