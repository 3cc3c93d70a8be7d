//! The `ldk` backend (embedded ldk-node), built only with the `ldk` feature.
//!
//! - Without bitcoind: a node started on a stand-in Esplora server (it answers fee estimates
//!   only, which is all ldk-node needs to start): invoices, cancellation, refusals, restarts.
//! - With bitcoind (`FLASH_TEST_BITCOIND`, the path to a `bitcoind` binary): two nodes on a
//!   private regtest chain open a channel and pay each other through the port, and the receiver's
//!   settle indexes survive its restart. Without the variable it prints why it was skipped.
#![cfg(feature = "ldk")]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bitcoin::hashes::{sha256, Hash as _};
use flash_core::lightning::{
    FeeEstimateRequest, Hash32, Invoice, InvoiceDescription, InvoiceRequest, LightningError, LightningNode,
    OpenChannelRequest, PayRequest, PaymentState,
};
use flash_core::Network;
use flash_lightning::ldk::{LdkChainSource, LdkConfig, LdkNode, Lsps2Config};
use flash_lightning::{DevNode, DevOutcome};
use serde_json::{json, Value};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flash-ldk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,flash_lightning=info")),
        )
        .with_test_writer()
        .try_init();
}

/// A stand-in Esplora server that answers `/fee-estimates` (empty: ldk-node falls back to its
/// regtest default) and 404 to the rest (background syncs fail quietly).
async fn fake_esplora() -> SocketAddr {
    let app = axum::Router::new().route("/fee-estimates", axum::routing::get(|| async { axum::Json(json!({})) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn esplora_config(dir: &Path, esplora: SocketAddr) -> LdkConfig {
    LdkConfig {
        data_dir: dir.to_path_buf(),
        network: Network::Regtest,
        chain: LdkChainSource::Esplora {
            url: format!("http://{esplora}"),
        },
        listen: None,
        lsps2: None,
    }
}

fn memo(amount_msat: Option<u64>, text: &str) -> InvoiceRequest {
    InvoiceRequest {
        amount_msat,
        description: InvoiceDescription::Memo(text.into()),
        expiry_secs: 3_600,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_cancellation_and_refusals_without_a_chain() {
    logs();
    let esplora = fake_esplora().await;
    let dir = temp_dir("offline");
    let node = LdkNode::start(esplora_config(&dir, esplora)).await.expect("start");
    let info = node.node_info().await.expect("info");
    assert!(!info.simulated);
    assert_eq!(info.network, Network::Regtest);
    assert_eq!(info.pubkey, node.node_id());
    assert!(
        dir.join("keys_seed").exists(),
        "ldk-node keeps its seed in the data directory"
    );

    // Invoices: memo, description hash, no amount; real BOLT11 signed by the node.
    let invoice = node
        .create_invoice(memo(Some(21_000), "coffee"))
        .await
        .expect("invoice");
    assert!(
        invoice.payment_request.starts_with("lnbcrt210n1"),
        "{}",
        invoice.payment_request
    );
    assert_eq!(invoice.payee, info.pubkey);
    assert_eq!(invoice.expiry_secs, 3_600);
    assert_eq!(
        node.decode_invoice(&invoice.payment_request).await.expect("decode"),
        invoice
    );
    let hashed = InvoiceRequest {
        description: InvoiceDescription::Hash(Hash32([7; 32])),
        expiry_secs: 600,
        ..memo(None, "")
    };
    let hashed = node.create_invoice(hashed).await.expect("description hash");
    assert_eq!(hashed.description, InvoiceDescription::Hash(Hash32([7; 32])));
    assert_eq!((hashed.amount_msat, hashed.expiry_secs), (None, 600));
    let zero_expiry = InvoiceRequest {
        expiry_secs: 0,
        ..memo(Some(1_000), "x")
    };
    assert!(matches!(
        node.create_invoice(zero_expiry).await,
        Err(LightningError::InvalidInput(_))
    ));
    assert!(matches!(
        node.create_invoice(memo(Some(0), "x")).await,
        Err(LightningError::InvalidInput(_))
    ));

    // Cancelling: open invoices only, idempotent; unknown hashes are not found.
    node.cancel_invoice(invoice.payment_hash).await.expect("cancel");
    node.cancel_invoice(invoice.payment_hash).await.expect("cancel again");
    assert_eq!(
        node.cancel_invoice(Hash32([9; 32])).await,
        Err(LightningError::NotFound)
    );

    // Paying: our own invoice fails at once; another node's, without channels, never starts.
    let own = PayRequest {
        payment_request: hashed.payment_request.clone(),
        amount_msat: Some(5_000),
        max_fee_msat: 1_000,
        timeout_secs: 5,
    };
    assert!(matches!(node.pay(own).await, Ok(PaymentState::Failed { .. })));
    let other = DevNode::new(Network::Regtest, DevNode::generate_key(), DevOutcome::Hang).expect("dev node");
    let foreign = other
        .create_invoice(memo(Some(10_000), "elsewhere"))
        .await
        .expect("foreign");
    let pay_foreign = PayRequest {
        payment_request: foreign.payment_request.clone(),
        amount_msat: None,
        max_fee_msat: 1_000,
        timeout_secs: 5,
    };
    assert!(
        matches!(node.pay(pay_foreign.clone()).await, Err(LightningError::NoRoute(_))),
        "no channel: the payment certainly did not start"
    );
    assert!(matches!(
        node.pay(PayRequest {
            amount_msat: Some(1),
            ..pay_foreign
        })
        .await,
        Err(LightningError::InvalidInput(_))
    ));
    let wrong_network = DevNode::new(Network::Testnet, DevNode::generate_key(), DevOutcome::Hang).expect("dev");
    let testnet = wrong_network
        .create_invoice(memo(Some(1_000), "t"))
        .await
        .expect("testnet invoice");
    assert!(matches!(
        node.decode_invoice(&testnet.payment_request).await,
        Err(LightningError::WrongNetwork { .. })
    ));
    assert!(matches!(
        node.estimate_fee(FeeEstimateRequest {
            payment_request: foreign.payment_request.clone(),
            amount_msat: None,
        })
        .await,
        Err(LightningError::NoRoute(_))
    ));
    assert_eq!(node.track_payment(Hash32([3; 32])).await, Err(LightningError::NotFound));
    assert_eq!(node.channels().await.expect("channels"), Vec::new());
    assert_eq!(node.onchain_balance().await.expect("balance"), 0);
    assert!(node.new_onchain_address().await.expect("address").starts_with("bcrt1"));
    assert!(matches!(
        node.create_jit_invoice(10_000, InvoiceDescription::Memo("jit".into()), 600, None)
            .await,
        Err(LightningError::Unsupported(_))
    ));
    // Nothing settled: wait_settled waits.
    assert!(tokio::time::timeout(Duration::from_millis(300), node.wait_settled(0))
        .await
        .is_err());
    let pubkey = info.pubkey.clone();
    node.stop().await.expect("stop");
    drop(node);

    // The same data directory is the same node, with its invoices' state.
    let node = LdkNode::start(esplora_config(&dir, esplora)).await.expect("restart");
    assert_eq!(node.node_id(), pubkey, "the seed is kept");
    node.cancel_invoice(invoice.payment_hash)
        .await
        .expect("still cancelled");
    node.cancel_invoice(hashed.payment_hash)
        .await
        .expect("still open, now cancelled");
    node.stop().await.expect("stop");
    drop(node);

    // Dropping a running node stops it; the next start finds its data intact.
    let node = LdkNode::start(esplora_config(&dir, esplora))
        .await
        .expect("start again");
    drop(node);
    let node = LdkNode::start(esplora_config(&dir, esplora))
        .await
        .expect("start after a drop");
    assert_eq!(node.node_id(), pubkey);
    node.stop().await.expect("stop");
    assert!(matches!(
        node.create_invoice(memo(Some(1_000), "stopped")).await,
        Err(LightningError::Unavailable(_))
    ));
    drop(node);

    // Another network on the same data is refused.
    let mut signet = esplora_config(&dir, esplora);
    signet.network = Network::Signet;
    assert!(LdkNode::start(signet).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_bad_settings_and_an_unreachable_chain() {
    let dir = temp_dir("refusals");
    let closed = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let unreachable = LdkNode::start(esplora_config(&dir, closed)).await;
    assert!(
        matches!(unreachable, Err(LightningError::Unavailable(_))),
        "{unreachable:?}"
    );
    let mut bad = esplora_config(&dir, closed);
    bad.lsps2 = Some(Lsps2Config {
        node_id: "not a key".into(),
        address: "127.0.0.1:9735".into(),
        token: None,
    });
    assert!(matches!(
        LdkNode::start(bad).await,
        Err(LightningError::InvalidInput(_))
    ));
    let mut mainnet_plain = esplora_config(&dir, closed);
    mainnet_plain.network = Network::Mainnet;
    mainnet_plain.chain = LdkChainSource::Esplora {
        url: "http://esplora.example/api".into(),
    };
    assert!(mainnet_plain.validate().is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_current_thread_runtime_is_refused() {
    let dir = temp_dir("current-thread");
    let config = esplora_config(&dir, SocketAddr::from(([127, 0, 0, 1], free_port())));
    assert!(matches!(
        LdkNode::start(config).await,
        Err(LightningError::InvalidInput(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// End to end against a real bitcoind.

const RPC_USER: &str = "flash";
const RPC_PASSWORD: &str = "flash-test-password";

/// A `bitcoind -regtest` of our own, killed when dropped.
struct Bitcoind {
    child: Child,
    rpc_port: u16,
    http: reqwest::Client,
    dir: PathBuf,
}

impl Drop for Bitcoind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bitcoind {
    fn spawn(binary: &str, dir: PathBuf) -> Bitcoind {
        let rpc_port = free_port();
        let p2p_port = free_port();
        // bitcoind refuses a -datadir that does not exist.
        std::fs::create_dir_all(&dir).expect("bitcoind data dir");
        let child = Command::new(binary)
            .arg("-regtest")
            .arg(format!("-datadir={}", dir.display()))
            .arg(format!("-rpcport={rpc_port}"))
            // No peers: -listen=0 binds no P2P (nor onion) port; -port keeps it off the default.
            .arg(format!("-port={p2p_port}"))
            .arg("-listen=0")
            .arg("-rpcbind=127.0.0.1")
            .arg("-rpcallowip=127.0.0.1")
            .arg(format!("-rpcuser={RPC_USER}"))
            .arg(format!("-rpcpassword={RPC_PASSWORD}"))
            .arg("-server=1")
            .arg("-fallbackfee=0.0002")
            .arg("-txindex=0")
            .arg("-printtoconsole=0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bitcoind starts (FLASH_TEST_BITCOIND must be a bitcoind binary)");
        Bitcoind {
            child,
            rpc_port,
            http: reqwest::Client::new(),
            dir,
        }
    }

    async fn call_at(&self, path: &str, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "1.0", "id": "flash", "method": method, "params": params});
        let response = self
            .http
            .post(format!("http://127.0.0.1:{}{path}", self.rpc_port))
            .basic_auth(RPC_USER, Some(RPC_PASSWORD))
            .json(&body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let answer: Value = response.json().await.map_err(|e| e.to_string())?;
        match answer.get("error") {
            Some(error) if !error.is_null() => Err(format!("{method}: {error}")),
            _ => Ok(answer.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        self.call_at("/", method, params)
            .await
            .unwrap_or_else(|e| panic!("bitcoind RPC {method}: {e}"))
    }

    async fn wallet(&self, method: &str, params: Value) -> Value {
        self.call_at("/wallet/flash", method, params)
            .await
            .unwrap_or_else(|e| panic!("bitcoind wallet RPC {method}: {e}"))
    }

    async fn wait_ready(&mut self) {
        for _ in 0..120 {
            if self.call_at("/", "getblockchaininfo", json!([])).await.is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("bitcoind exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("bitcoind's RPC did not come up in 60 s");
    }

    async fn mine(&self, blocks: u64) {
        let address = self.wallet("getnewaddress", json!([])).await;
        self.wallet("generatetoaddress", json!([blocks, address])).await;
    }

    async fn height(&self) -> u32 {
        let count = self.call("getblockcount", json!([])).await;
        count.as_u64().and_then(|c| u32::try_from(c).ok()).expect("block count")
    }
}

fn bitcoind_config(dir: &Path, bitcoind: &Bitcoind, listen_port: u16) -> LdkConfig {
    LdkConfig {
        data_dir: dir.to_path_buf(),
        network: Network::Regtest,
        chain: LdkChainSource::BitcoindRpc {
            host: "127.0.0.1".into(),
            port: bitcoind.rpc_port,
            user: RPC_USER.into(),
            password: RPC_PASSWORD.into(),
        },
        listen: Some(format!("127.0.0.1:{listen_port}")),
        lsps2: None,
    }
}

/// Polls `check` (syncing both nodes first) until it holds, or panics after `secs`.
async fn eventually<F, Fut>(what: &str, secs: u64, nodes: &[&LdkNode], mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        for node in nodes {
            let _ = node.sync_wallets().await;
        }
        if check().await {
            println!("ok: {what}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Our side of the node's first channel, in satoshis.
async fn local_sat(node: &LdkNode) -> Option<u64> {
    node.channels().await.ok()?.first().map(|c| c.local_sat)
}

async fn synced_to(node: &LdkNode, height: u32) -> bool {
    node.node_info()
        .await
        .is_ok_and(|i| i.synced && i.block_height == height)
}

async fn usable_channel(node: &LdkNode, id: Option<&str>) -> bool {
    node.channels()
        .await
        .is_ok_and(|cs| cs.iter().any(|c| c.active && id.is_none_or(|id| c.id == id)))
}

/// Pays a new invoice of `payee` from `payer` through the port; returns the invoice.
async fn pay_and_check(payer: &LdkNode, payee: &LdkNode, amount_msat: u64, memo_text: &str) -> Invoice {
    let invoice = payee
        .create_invoice(memo(Some(amount_msat), memo_text))
        .await
        .expect("invoice");
    let fee = payer
        .estimate_fee(FeeEstimateRequest {
            payment_request: invoice.payment_request.clone(),
            amount_msat: None,
        })
        .await
        .expect("fee estimate");
    assert_eq!(fee, 0, "a direct channel costs no routing fee");
    let state = payer
        .pay(PayRequest {
            payment_request: invoice.payment_request.clone(),
            amount_msat: None,
            max_fee_msat: 10_000,
            timeout_secs: 60,
        })
        .await
        .expect("pay");
    match state {
        PaymentState::Succeeded { preimage, fee_msat } => {
            let preimage = preimage.expect("LDK learns the preimage");
            assert_eq!(
                Hash32(sha256::Hash::hash(&preimage.0).to_byte_array()),
                invoice.payment_hash
            );
            assert_eq!(fee_msat, 0);
        }
        other => panic!("payment of {memo_text} did not succeed: {other:?}"),
    }
    assert!(matches!(
        payer.track_payment(invoice.payment_hash).await,
        Ok(PaymentState::Succeeded { .. })
    ));
    invoice
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_open_a_channel_and_pay_both_ways_on_regtest() {
    let Ok(binary) = std::env::var("FLASH_TEST_BITCOIND") else {
        println!("skipped: FLASH_TEST_BITCOIND is not set (path to a bitcoind binary)");
        return;
    };
    logs();
    let root = temp_dir("e2e");
    let mut bitcoind = Bitcoind::spawn(&binary, root.join("bitcoind"));
    bitcoind.wait_ready().await;
    bitcoind.call("createwallet", json!(["flash"])).await;
    bitcoind.mine(101).await;
    let btc = &bitcoind;

    let (port_a, port_b) = (free_port(), free_port());
    let config_b = bitcoind_config(&root.join("b"), &bitcoind, port_b);
    let a = LdkNode::start(bitcoind_config(&root.join("a"), &bitcoind, port_a))
        .await
        .expect("start A");
    let b = LdkNode::start(config_b.clone()).await.expect("start B");
    println!("A = {}, B = {}", a.node_id(), b.node_id());

    // Fund A (channel) and B (ldk-node keeps an on-chain reserve to accept anchor channels).
    let address_a = a.new_onchain_address().await.expect("address A");
    let address_b = b.new_onchain_address().await.expect("address B");
    // Amounts as strings: bitcoind takes them so, and money never passes through a float.
    btc.wallet("sendtoaddress", json!([address_a, "0.02"])).await;
    btc.wallet("sendtoaddress", json!([address_b, "0.001"])).await;
    btc.mine(6).await;
    let height = btc.height().await;
    let (ra, rb) = (&a, &b);
    eventually("both nodes synced and funded", 120, &[ra, rb], move || async move {
        synced_to(ra, height).await
            && synced_to(rb, height).await
            && ra.onchain_balance().await.is_ok_and(|s| s >= 2_000_000)
            && rb.onchain_balance().await.is_ok_and(|s| s >= 100_000)
    })
    .await;

    // A opens a 1 000 000 sat channel to B; it shows at once under the id returned.
    let id = a
        .open_channel(OpenChannelRequest {
            peer: b.node_id(),
            address: Some(format!("127.0.0.1:{port_b}")),
            amount_sat: 1_000_000,
        })
        .await
        .expect("open channel");
    let pending = a.channels().await.expect("channels");
    assert!(
        pending.iter().any(|c| c.id == id && c.capacity_sat == 1_000_000),
        "{pending:?}"
    );
    eventually(
        "the funding transaction is in the mempool",
        60,
        &[],
        move || async move {
            btc.call("getrawmempool", json!([]))
                .await
                .as_array()
                .is_some_and(|txs| !txs.is_empty())
        },
    )
    .await;
    btc.mine(6).await;
    let id_ref = id.as_str();
    eventually(
        "the channel is usable on both sides",
        180,
        &[ra, rb],
        move || async move { usable_channel(ra, Some(id_ref)).await && usable_channel(rb, None).await },
    )
    .await;
    let before_a = a.channels().await.expect("channels")[0].local_sat;

    // A pays B through the port; B reports the settlement once, with index 1.
    let invoice_ab = pay_and_check(&a, &b, 50_000_000, "A to B").await;
    let hash_ab = invoice_ab.payment_hash;
    let settled = tokio::time::timeout(Duration::from_secs(60), b.wait_settled(0))
        .await
        .expect("B settles")
        .expect("settled");
    assert_eq!(
        (settled.payment_hash, settled.amount_received_msat, settled.settle_index),
        (hash_ab, 50_000_000, 1)
    );
    // LDK updates the channel's balances shortly after the payment events: wait for them.
    let (a_ref, b_ref) = (&a, &b);
    eventually("A's side shrank by the payment", 30, &[], move || async move {
        local_sat(a_ref).await.is_some_and(|now| before_a - now >= 50_000)
    })
    .await;
    eventually("B can now pay back", 30, &[], move || async move {
        local_sat(b_ref).await.is_some_and(|now| now > 0)
    })
    .await;
    let after_a = local_sat(&a).await.expect("A's channel");

    // Paying the same invoice again reports the first payment and pays nothing.
    let again = a
        .pay(PayRequest {
            payment_request: invoice_ab.payment_request.clone(),
            amount_msat: None,
            max_fee_msat: 10_000,
            timeout_secs: 10,
        })
        .await
        .expect("pay again");
    assert!(matches!(again, PaymentState::Succeeded { .. }), "{again:?}");
    assert_eq!(
        a.channels().await.expect("channels")[0].local_sat,
        after_a,
        "nothing more was sent"
    );

    // B pays A back.
    let hash_ba = pay_and_check(&b, &a, 20_000_000, "B to A").await.payment_hash;
    let settled_a = tokio::time::timeout(Duration::from_secs(60), a.wait_settled(0))
        .await
        .expect("A settles")
        .expect("settled");
    assert_eq!((settled_a.payment_hash, settled_a.settle_index), (hash_ba, 1));

    // A cancelled invoice is refused over the network: the payer sees a failure.
    let cancelled = b
        .create_invoice(memo(Some(10_000_000), "cancelled"))
        .await
        .expect("invoice");
    b.cancel_invoice(cancelled.payment_hash).await.expect("cancel");
    let refused = a
        .pay(PayRequest {
            payment_request: cancelled.payment_request.clone(),
            amount_msat: None,
            max_fee_msat: 10_000,
            timeout_secs: 60,
        })
        .await
        .expect("pay a cancelled invoice");
    assert!(matches!(refused, PaymentState::Failed { .. }), "{refused:?}");
    assert_eq!(
        b.cancel_invoice(hash_ab).await,
        Err(LightningError::AlreadyPaid),
        "a paid invoice cannot be cancelled"
    );

    // B restarts on the same data: same node, same settlement under the same index, and
    // asking after it waits instead of repeating it.
    let b_id = b.node_id();
    b.stop().await.expect("stop B");
    drop(b);
    let b = LdkNode::start(config_b).await.expect("restart B");
    assert_eq!(b.node_id(), b_id);
    let again = b.wait_settled(0).await.expect("settled after restart");
    assert_eq!((again.payment_hash, again.settle_index), (hash_ab, 1));
    assert!(
        tokio::time::timeout(Duration::from_secs(3), b.wait_settled(1))
            .await
            .is_err(),
        "nothing new: wait_settled(1) waits"
    );
    // A reconnects (it keeps B as a peer); a new payment gets the next index.
    let rb = &b;
    eventually(
        "the channel is usable again after B's restart",
        180,
        &[ra, rb],
        move || async move { usable_channel(ra, Some(id_ref)).await && usable_channel(rb, None).await },
    )
    .await;
    let hash_ab2 = pay_and_check(&a, &b, 5_000_000, "A to B after restart")
        .await
        .payment_hash;
    let next = tokio::time::timeout(Duration::from_secs(60), b.wait_settled(1))
        .await
        .expect("B settles again")
        .expect("settled");
    assert_eq!((next.payment_hash, next.settle_index), (hash_ab2, 2));

    a.stop().await.expect("stop A");
    b.stop().await.expect("stop B");
    drop(bitcoind);
    let _ = std::fs::remove_dir_all(&root);
}
