//! The `ldk` backend: an embedded Lightning node (LDK through ldk-node 0.7.1) in the `flashd`
//! process, with its keys, channels and on-chain wallet under one data directory. Built only
//! with the `ldk` feature of this crate (ldk-node is a large dependency).
//!
//! ldk-node generates the node's seed on first start and keeps it in `keys_seed` under
//! [`LdkConfig::data_dir`], beside its SQLite store: back that directory up. Chain data comes
//! from bitcoind's RPC, an Electrum server or an Esplora server ([`LdkChainSource`]).
//!
//! How each port method maps to ldk-node:
//!
//! | port | ldk-node |
//! |---|---|
//! | `create_invoice` | `Bolt11Payment::receive_for_hash` / `receive_variable_amount_for_hash` with a preimage made and recorded here (see below) |
//! | `decode_invoice` | decoded here (signature and network checked), no round trip |
//! | `cancel_invoice` | recorded here, then `Bolt11Payment::fail_for_hash`; a later payment is failed back |
//! | `estimate_fee` | no ldk-node call exists: the cheapest fee over the known graph and the invoice's route hints, computed here (an approximation, see `ldk/route.rs`) |
//! | `pay` | `Bolt11Payment::send` / `send_using_amount` with `max_total_routing_fee_msat`, then the payment store and `PaymentSuccessful`/`PaymentFailed` events until final or the caller's timeout |
//! | `track_payment` | `Node::payment` (ldk-node's payment store) |
//! | `wait_settled` | the settlements recorded here from `PaymentReceived` events |
//! | `node_info` | `Node::node_id`, `Node::status` (best block, last wallet syncs) |
//! | `channels` | `Node::list_channels` (id: the `UserChannelId`, as hex) |
//! | `onchain_balance` | `Node::list_balances().spendable_onchain_balance_sats` |
//! | `open_channel` | `Node::open_channel` (connects first; unannounced channel) |
//!
//! Beyond the port: [`LdkNode::create_jit_invoice`] (LSPS2 just-in-time inbound liquidity, for
//! the liquidity manager), [`LdkNode::new_onchain_address`], [`LdkNode::sync_wallets`],
//! [`LdkNode::stop`].
//!
//! Invoices are claimed by hand. ldk-node cannot cancel an invoice it claims by itself (a
//! payment arriving for it is accepted whatever its stored status), and the bank must be able
//! to cancel an invoice that was paid inside Flash. So every invoice is registered by hash with a
//! preimage this adapter makes and records first; when a payment arrives (`PaymentClaimable`)
//! it is claimed if the invoice is still open (the claim is recorded before it is made, and from
//! then on the invoice cannot be cancelled) and failed back otherwise.
//!
//! Settle indexes: LDK has none, so each `PaymentReceived` for one of our invoices is appended to
//! the adapter's receipts file (`flash-receipts.jsonl` in the data directory, `fsync`ed) with the
//! next index *before* the event is marked handled. A crash in between replays the event, which
//! is recognised by its hash, so a settlement is neither lost nor repeated, and indexes are
//! stable across restarts. Payments received for no invoice of ours (keysend, BOLT12) are
//! logged and not reported.
//!
//! Money safety in [`pay`](LightningNode::pay): an `Err` means the payment certainly did not
//! start (bad invoice, LDK refused it before sending, node not running). Whenever it may have
//! started the answer is a [`PaymentState`], `InFlight` when unknown. ldk-node refuses to pay a
//! hash that is pending or paid, so the same hash is never paid twice.
//!
//! ldk-node blocks in place inside some calls, so the node needs a multi-threaded Tokio runtime;
//! [`LdkNode::start`] refuses a current-thread one. Its log lines go to the `log` facade (shown by
//! `flashd`'s tracing subscriber).

mod receipts;
mod route;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{sha256, Hash as _};
use flash_core::lightning::{
    ChannelInfo, FeeEstimateRequest, Hash32, Invoice, InvoiceDescription, InvoiceRequest, LightningError,
    LightningNode, NodeInfo, OpenChannelRequest, PayRequest, PaymentHash, PaymentState, SettledInvoice,
};
use flash_core::ports::BoxFuture;
use flash_core::Network;
use ldk_node::bitcoin::secp256k1::PublicKey;
use ldk_node::lightning::ln::channelmanager::PaymentId;
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::lightning::routing::gossip::NodeId;
use ldk_node::lightning::routing::router::RouteParametersConfig;
use ldk_node::lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Description, Sha256};
use ldk_node::lightning_types::payment::{PaymentHash as LdkHash, PaymentPreimage};
use ldk_node::payment::{PaymentDirection, PaymentKind, PaymentStatus};
use ldk_node::{Builder, Event, Node, NodeError, UserChannelId};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::receipts::{Arrival, Receipts};
use self::route::{Edge, NodeKey};
use crate::bolt11::{self, amount_to_pay};

/// Longest memo a BOLT11 description holds.
const MEMO_MAX_BYTES: usize = 639;
/// A wallet sync older than this means the node is not synced.
const SYNC_STALE_SECS: u64 = 600;
/// While waiting for a payment, its state is read again at least this often.
const PAYMENT_POLL: Duration = Duration::from_secs(1);
/// The longest `pay` waits, whatever timeout it is given (a year: "until final").
const LONGEST_WAIT_SECS: u64 = 365 * 24 * 3_600;
/// First pause after an event could not be handled; doubles up to the next constant.
const EVENT_RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest pause between attempts to handle an event.
const EVENT_RETRY_MAX: Duration = Duration::from_secs(30);

/// Where the embedded node reads the chain from.
#[derive(Clone, PartialEq, Eq)]
pub enum LdkChainSource {
    /// A `bitcoind` over JSON-RPC (polled for blocks and mempool; needs no `txindex`).
    BitcoindRpc {
        /// RPC host name or address.
        host: String,
        /// RPC port.
        port: u16,
        /// RPC user.
        user: String,
        /// RPC password.
        password: String,
    },
    /// An Electrum server, `ssl://host:port` (or `tcp://host:port` off mainnet or on loopback).
    Electrum {
        /// Server URL.
        url: String,
    },
    /// An Esplora HTTP API, e.g. `https://blockstream.info/api` (`http://` off mainnet or on
    /// loopback).
    Esplora {
        /// Base URL.
        url: String,
    },
}

impl fmt::Debug for LdkChainSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LdkChainSource::BitcoindRpc { host, port, user, .. } => f
                .debug_struct("BitcoindRpc")
                .field("host", host)
                .field("port", port)
                .field("user", user)
                .finish_non_exhaustive(),
            LdkChainSource::Electrum { url } => f.debug_struct("Electrum").field("url", url).finish(),
            LdkChainSource::Esplora { url } => f.debug_struct("Esplora").field("url", url).finish(),
        }
    }
}

/// An LSPS2 (bLIP-52) service that sells just-in-time inbound channels.
#[derive(Clone, PartialEq, Eq)]
pub struct Lsps2Config {
    /// The LSP's node public key (hex).
    pub node_id: String,
    /// Its address, `host:port`.
    pub address: String,
    /// The access token it gave us, if it wants one.
    pub token: Option<String>,
}

impl fmt::Debug for Lsps2Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lsps2Config")
            .field("node_id", &self.node_id)
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// How to run the embedded LDK node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdkConfig {
    /// Its data: seed, channel state, wallet, payments, and the adapter's receipts file.
    pub data_dir: PathBuf,
    /// The network; must stay the same for a data directory.
    pub network: Network,
    /// Where chain data comes from.
    pub chain: LdkChainSource,
    /// `host:port` to accept Lightning peers on, if any.
    pub listen: Option<String>,
    /// An LSPS2 service for just-in-time inbound liquidity, if any.
    pub lsps2: Option<Lsps2Config>,
}

/// The chain source, checked and ready for ldk-node's builder.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ChainPlan {
    Bitcoind {
        host: String,
        port: u16,
        user: String,
        password: String,
    },
    Electrum {
        url: String,
    },
    Esplora {
        url: String,
    },
}

/// A configuration, checked.
#[derive(Debug)]
struct Checked {
    network: ldk_node::bitcoin::Network,
    chain: ChainPlan,
    listen: Option<SocketAddress>,
    lsps2: Option<(PublicKey, SocketAddress, Option<String>)>,
}

fn invalid(msg: impl Into<String>) -> LightningError {
    LightningError::InvalidInput(msg.into())
}

/// Bitcoin's name for a Flash network.
fn bitcoin_network(network: Network) -> ldk_node::bitcoin::Network {
    match network {
        Network::Mainnet => ldk_node::bitcoin::Network::Bitcoin,
        Network::Testnet => ldk_node::bitcoin::Network::Testnet,
        Network::Signet => ldk_node::bitcoin::Network::Signet,
        Network::Regtest => ldk_node::bitcoin::Network::Regtest,
    }
}

/// Whether `host` (a name or an address, IPv6 possibly in brackets) is this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `scheme://rest` and returns the scheme and the host of `rest`.
fn scheme_and_host(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then_some((scheme, host))
}

fn parse_address(what: &str, text: &str) -> Result<SocketAddress, LightningError> {
    SocketAddress::from_str(text.trim()).map_err(|e| invalid(format!("{what} {text:?} is not host:port ({e:?})")))
}

impl LdkConfig {
    /// Checks the configuration without starting anything: a data directory, a chain source
    /// in the form ldk-node takes (on mainnet, Electrum over `ssl://` and Esplora over
    /// `https://` unless the server is on this machine, since chain data decides what counts as
    /// paid), `host:port` addresses, and a valid LSP key.
    pub fn validate(&self) -> Result<(), LightningError> {
        self.check().map(|_| ())
    }

    fn check(&self) -> Result<Checked, LightningError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("the LDK node needs a data directory"));
        }
        let mainnet = self.network == Network::Mainnet;
        let chain = match &self.chain {
            LdkChainSource::BitcoindRpc {
                host,
                port,
                user,
                password,
            } => {
                let host = host.trim();
                if host.is_empty() || *port == 0 {
                    return Err(invalid("bitcoind RPC needs a host and a port"));
                }
                if user.is_empty() || password.is_empty() {
                    return Err(invalid("bitcoind RPC needs a user and a password (rpcauth)"));
                }
                if mainnet && !is_loopback(host) {
                    tracing::warn!(
                        host,
                        "bitcoind RPC is not on this machine: its password crosses the network in clear text"
                    );
                }
                ChainPlan::Bitcoind {
                    host: host.to_string(),
                    port: *port,
                    user: user.clone(),
                    password: password.clone(),
                }
            }
            LdkChainSource::Electrum { url } => {
                let url = url.trim();
                let (scheme, host) = scheme_and_host(url).ok_or_else(|| {
                    invalid(format!(
                        "Electrum URL {url:?} must be ssl://host:port or tcp://host:port"
                    ))
                })?;
                match scheme {
                    "ssl" => {}
                    "tcp" if !mainnet || is_loopback(host) => {}
                    "tcp" => {
                        return Err(invalid(format!(
                            "Electrum URL {url:?}: on mainnet a remote server must be reached over ssl://"
                        )))
                    }
                    _ => {
                        return Err(invalid(format!(
                            "Electrum URL {url:?} must start with ssl:// or tcp://"
                        )))
                    }
                }
                ChainPlan::Electrum { url: url.to_string() }
            }
            LdkChainSource::Esplora { url } => {
                let url = url.trim().trim_end_matches('/');
                let (scheme, host) = scheme_and_host(url)
                    .ok_or_else(|| invalid(format!("Esplora URL {url:?} must be an http(s):// URL")))?;
                match scheme {
                    "https" => {}
                    "http" if !mainnet || is_loopback(host) => {}
                    "http" => {
                        return Err(invalid(format!(
                            "Esplora URL {url:?}: on mainnet a remote server must be reached over https://"
                        )))
                    }
                    _ => return Err(invalid(format!("Esplora URL {url:?} must start with https://"))),
                }
                ChainPlan::Esplora { url: url.to_string() }
            }
        };
        let listen = self
            .listen
            .as_deref()
            .map(|l| parse_address("listen address", l))
            .transpose()?;
        let lsps2 = match &self.lsps2 {
            None => None,
            Some(lsp) => {
                let key = PublicKey::from_str(lsp.node_id.trim())
                    .map_err(|e| invalid(format!("LSPS2 node id {:?}: {e}", lsp.node_id)))?;
                let address = parse_address("LSPS2 address", &lsp.address)?;
                let token = lsp.token.clone().filter(|t| !t.is_empty());
                Some((key, address, token))
            }
        };
        Ok(Checked {
            network: bitcoin_network(self.network),
            chain,
            listen,
            lsps2,
        })
    }
}

fn data_dir_text(config: &LdkConfig) -> Result<String, LightningError> {
    config
        .data_dir
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| invalid(format!("data directory {} is not UTF-8", config.data_dir.display())))
}

/// ldk-node's builder, set up from a checked configuration.
fn builder(config: &LdkConfig, checked: Checked) -> Result<Builder, LightningError> {
    let mut builder = Builder::new();
    builder.set_network(checked.network);
    builder.set_storage_dir_path(data_dir_text(config)?);
    builder.set_log_facade_logger();
    match checked.chain {
        ChainPlan::Bitcoind {
            host,
            port,
            user,
            password,
        } => {
            builder.set_chain_source_bitcoind_rpc(host, port, user, password);
        }
        ChainPlan::Electrum { url } => {
            builder.set_chain_source_electrum(url, None);
        }
        ChainPlan::Esplora { url } => {
            builder.set_chain_source_esplora(url, None);
        }
    }
    if let Some(listen) = checked.listen {
        builder
            .set_listening_addresses(vec![listen])
            .map_err(|e| invalid(format!("listen address: {e}")))?;
    }
    if let Some((key, address, token)) = checked.lsps2 {
        builder.set_liquidity_source_lsps2(key, address, token);
    }
    Ok(builder)
}

/// What the adapter and its event task share.
struct Inner {
    node: Arc<Node>,
    network: Network,
    receipts: Mutex<Receipts>,
    /// Woken when a settlement is recorded.
    settlements: Notify,
    /// Woken when an outgoing payment succeeded or failed.
    payment_updates: Notify,
    /// Why outgoing payments failed, as LDK said (this run only).
    failures: Mutex<HashMap<PaymentHash, String>>,
    /// Payments sent in this run, in case ldk-node's store lacks them.
    attempted: Mutex<HashSet<PaymentHash>>,
    /// When this run started, Unix seconds (older syncs do not count as synced).
    started_at: u64,
    lsps2: bool,
}

/// A [`LightningNode`] backed by an embedded LDK node.
pub struct LdkNode {
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    events: Mutex<Option<JoinHandle<()>>>,
    data_dir: PathBuf,
}

impl fmt::Debug for LdkNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdkNode")
            .field("node_id", &self.inner.node.node_id().to_string())
            .field("network", &self.inner.network)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn random32() -> [u8; 32] {
    let mut out = [0u8; 32];
    bitcoin::secp256k1::rand::Rng::fill(&mut bitcoin::secp256k1::rand::thread_rng(), &mut out[..]);
    out
}

fn poisoned<T>(_: T) -> LightningError {
    LightningError::Unavailable("LDK adapter state poisoned".into())
}

/// An ldk-node error as the port's.
fn node_error(what: &str, e: NodeError) -> LightningError {
    match e {
        NodeError::NotRunning => LightningError::Unavailable(format!("{what}: the LDK node is not running")),
        NodeError::InvalidInvoice
        | NodeError::InvalidAmount
        | NodeError::InvalidPublicKey
        | NodeError::InvalidNodeId
        | NodeError::InvalidSocketAddress
        | NodeError::InvalidPaymentHash
        | NodeError::InvalidNetwork
        | NodeError::InvalidAddress
        | NodeError::InsufficientFunds
        | NodeError::LiquidityFeeTooHigh => LightningError::InvalidInput(format!("{what}: {e}")),
        NodeError::PaymentSendingFailed => LightningError::NoRoute(format!("{what}: {e}")),
        NodeError::LiquiditySourceUnavailable => {
            LightningError::Unavailable(format!("{what}: no LSPS2 service configured or reachable ({e})"))
        }
        other => LightningError::Unavailable(format!("{what}: {other}")),
    }
}

fn join_error(what: &str, e: tokio::task::JoinError) -> LightningError {
    LightningError::Unavailable(format!("{what}: the LDK call did not finish ({e})"))
}

/// The port's channel id for ldk-node's `UserChannelId`: stable from the open on.
fn channel_id(id: &UserChannelId) -> String {
    format!("{:032x}", id.0)
}

/// The description to put into an invoice, checked.
fn ldk_description(description: &InvoiceDescription) -> Result<Bolt11InvoiceDescription, LightningError> {
    match description {
        InvoiceDescription::Memo(m) if m.len() > MEMO_MAX_BYTES => {
            Err(invalid(format!("memo over {MEMO_MAX_BYTES} bytes")))
        }
        InvoiceDescription::Memo(m) => Ok(Bolt11InvoiceDescription::Direct(
            Description::new(m.clone()).map_err(|e| invalid(format!("memo: {e}")))?,
        )),
        InvoiceDescription::Hash(h) => Ok(Bolt11InvoiceDescription::Hash(Sha256(sha256::Hash::from_byte_array(
            h.0,
        )))),
    }
}

fn expiry_u32(expiry_secs: u64) -> Result<u32, LightningError> {
    match u32::try_from(expiry_secs) {
        Ok(0) => Err(invalid("expiry_secs must be more than 0")),
        Ok(secs) => Ok(secs),
        Err(_) => Err(invalid("expiry_secs is too large")),
    }
}

impl LdkNode {
    /// Starts the node on `config.data_dir` (creating it, and the seed, on first start), then
    /// the task that handles its events. Refused outside a multi-threaded Tokio runtime, for a
    /// data directory of another network, or with an invalid configuration; fails when the chain
    /// source cannot be read at start (ldk-node fetches fee rates first).
    pub async fn start(config: LdkConfig) -> Result<LdkNode, LightningError> {
        let checked = config.check()?;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {}
            _ => {
                return Err(invalid(
                    "the LDK node needs a multi-threaded Tokio runtime (ldk-node blocks in place)",
                ))
            }
        }
        // The directory holds the node's seed and channel state: for its owner only.
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(&config.data_dir).map_err(|e| {
            LightningError::Unavailable(format!("LDK data directory {}: {e}", config.data_dir.display()))
        })?;
        let started_at = now_secs();
        let receipts = Receipts::open(&config.data_dir, config.network, started_at)?;
        let lsps2 = checked.lsps2.is_some();
        let builder = builder(&config, checked)?;
        let node = tokio::task::spawn_blocking(move || -> Result<Node, LightningError> {
            let node = builder.build().map_err(|e| match e {
                ldk_node::BuildError::NetworkMismatch => invalid(format!(
                    "the LDK data directory belongs to another network than {}",
                    config.network
                )),
                other => LightningError::Unavailable(format!("building the LDK node: {other}")),
            })?;
            node.start().map_err(|e| node_error("starting the LDK node", e))?;
            Ok(node)
        })
        .await
        .map_err(|e| join_error("starting the LDK node", e))??;
        let node = Arc::new(node);
        let inner = Arc::new(Inner {
            node,
            network: config.network,
            receipts: Mutex::new(receipts),
            settlements: Notify::new(),
            payment_updates: Notify::new(),
            failures: Mutex::new(HashMap::new()),
            attempted: Mutex::new(HashSet::new()),
            started_at,
            lsps2,
        });
        let (shutdown, stop) = watch::channel(false);
        let events = tokio::spawn(run_events(Arc::clone(&inner), stop));
        let status = inner.node.status();
        tracing::info!(
            node = %inner.node.node_id(),
            network = %config.network,
            data_dir = %config.data_dir.display(),
            block_height = status.current_best_block.height,
            lsps2,
            "Lightning: embedded LDK node started"
        );
        Ok(LdkNode {
            inner,
            shutdown,
            events: Mutex::new(Some(events)),
            data_dir: config.data_dir,
        })
    }

    /// Stops the event task, then the node (peers disconnected, state persisted). Calls on a
    /// stopped node answer [`LightningError::Unavailable`]; start a new one on the same data
    /// directory to go on.
    pub async fn stop(&self) -> Result<(), LightningError> {
        let _ = self.shutdown.send(true);
        let events = self.events.lock().map_err(poisoned)?.take();
        if let Some(events) = events {
            let _ = events.await;
        }
        let node = Arc::clone(&self.inner.node);
        tokio::task::spawn_blocking(move || node.stop())
            .await
            .map_err(|e| join_error("stopping the LDK node", e))?
            .map_err(|e| node_error("stopping the LDK node", e))
    }

    /// The node's public key (hex).
    pub fn node_id(&self) -> String {
        self.inner.node.node_id().to_string()
    }

    /// The `host:port` addresses it accepts peers on.
    pub fn listening_addresses(&self) -> Vec<String> {
        self.inner
            .node
            .listening_addresses()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// A fresh address of the node's on-chain wallet, to fund channel opens.
    pub async fn new_onchain_address(&self) -> Result<String, LightningError> {
        self.blocking("new on-chain address", |node| node.onchain_payment().new_address())
            .await?
            .map(|a| a.to_string())
            .map_err(|e| node_error("new on-chain address", e))
    }

    /// Syncs the wallets with the chain source now, instead of at the next background sync.
    pub async fn sync_wallets(&self) -> Result<(), LightningError> {
        self.blocking("wallet sync", |node| node.sync_wallets())
            .await?
            .map_err(|e| node_error("wallet sync", e))
    }

    /// For the liquidity manager: an invoice paid through a just-in-time channel that the
    /// configured LSPS2 service opens to us when the payment arrives (inbound liquidity on
    /// demand). The LSP keeps its opening fee, at most `max_lsp_fee_msat` (its cheapest offer
    /// when `None`), out of the payment: the settlement reports what actually arrived.
    /// Like every invoice here it can be cancelled, and settles through `wait_settled`.
    pub async fn create_jit_invoice(
        &self,
        amount_msat: u64,
        description: InvoiceDescription,
        expiry_secs: u64,
        max_lsp_fee_msat: Option<u64>,
    ) -> Result<Invoice, LightningError> {
        if !self.inner.lsps2 {
            return Err(LightningError::Unsupported(
                "JIT channels: no LSPS2 service is configured",
            ));
        }
        if amount_msat == 0 {
            return Err(invalid("amount must be positive"));
        }
        let request = InvoiceRequest {
            amount_msat: Some(amount_msat),
            description,
            expiry_secs,
        };
        self.issue_invoice(request, Some(max_lsp_fee_msat)).await
    }

    /// Runs a blocking ldk-node call on Tokio's blocking pool.
    async fn blocking<T, F>(&self, what: &str, f: F) -> Result<T, LightningError>
    where
        T: Send + 'static,
        F: FnOnce(&Node) -> T + Send + 'static,
    {
        let node = Arc::clone(&self.inner.node);
        tokio::task::spawn_blocking(move || f(&node))
            .await
            .map_err(|e| join_error(what, e))
    }

    /// Makes an invoice claimed by hand (see the module docs); through an LSPS2 JIT channel when
    /// `jit` is `Some(max_lsp_fee_msat)`.
    async fn issue_invoice(&self, req: InvoiceRequest, jit: Option<Option<u64>>) -> Result<Invoice, LightningError> {
        if req.amount_msat == Some(0) {
            return Err(invalid("amount must be positive"));
        }
        let expiry = expiry_u32(req.expiry_secs)?;
        // ldk-node would make an invoice on a stopped node, which could not be paid.
        if !self.inner.node.status().is_running {
            return Err(node_error("create invoice", NodeError::NotRunning));
        }
        let description = ldk_description(&req.description)?;
        let preimage = Hash32(random32());
        let hash = Hash32(sha256::Hash::hash(&preimage.0).to_byte_array());
        // The preimage is on disk before LDK knows the hash: a payment always finds it.
        self.inner.receipts.lock().map_err(poisoned)?.issue(
            hash,
            preimage,
            now_secs().saturating_add(req.expiry_secs),
        )?;
        let amount = req.amount_msat;
        let ldk_hash = LdkHash(hash.0);
        let created = self
            .blocking("create invoice", move |node| {
                let bolt11 = node.bolt11_payment();
                match (jit, amount) {
                    (Some(max_fee), Some(msat)) => {
                        bolt11.receive_via_jit_channel_for_hash(msat, &description, expiry, max_fee, ldk_hash)
                    }
                    (Some(_), None) => Err(NodeError::InvalidAmount),
                    (None, Some(msat)) => bolt11.receive_for_hash(msat, &description, expiry, ldk_hash),
                    (None, None) => bolt11.receive_variable_amount_for_hash(&description, expiry, ldk_hash),
                }
            })
            .await?
            .map_err(|e| node_error("create invoice", e))?;
        let invoice = bolt11::decode(&created.to_string(), self.inner.network)
            .map_err(|e| LightningError::Unavailable(format!("LDK made an invoice Flash cannot accept: {e}")))?;
        if invoice.payment_hash != hash
            || invoice.amount_msat != req.amount_msat
            || invoice.description != req.description
        {
            return Err(LightningError::Unavailable(
                "LDK made an invoice with another hash, amount or description than asked".into(),
            ));
        }
        Ok(invoice)
    }

    async fn cancel(&self, hash: PaymentHash) -> Result<(), LightningError> {
        let newly = self.inner.receipts.lock().map_err(poisoned)?.cancel(hash)?;
        if newly {
            // Fails back a payment that may be waiting to be claimed right now; later ones are
            // failed by the event task, which reads the cancellation from the receipts.
            let failed = self
                .blocking("cancel invoice", move |node| {
                    node.bolt11_payment().fail_for_hash(LdkHash(hash.0))
                })
                .await?;
            if let Err(e) = failed {
                tracing::debug!(payment_hash = %hash, error = %e, "LDK: fail_for_hash after a cancel");
            }
        }
        Ok(())
    }

    async fn estimate(&self, req: FeeEstimateRequest) -> Result<u64, LightningError> {
        let invoice = bolt11::decode(&req.payment_request, self.inner.network)?;
        let amount_msat = amount_to_pay(&invoice, req.amount_msat)?;
        let parsed = Bolt11Invoice::from_str(&invoice.payment_request)
            .map_err(|e| LightningError::InvalidInvoice(e.to_string()))?;
        self.blocking("estimate fee", move |node| {
            estimate_on_graph(node, &parsed, amount_msat)
        })
        .await?
    }

    async fn send(&self, req: PayRequest) -> Result<PaymentState, LightningError> {
        let deadline = Instant::now()
            .checked_add(Duration::from_secs(req.timeout_secs))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(LONGEST_WAIT_SECS));
        let invoice = bolt11::decode(&req.payment_request, self.inner.network)?;
        let amount_msat = amount_to_pay(&invoice, req.amount_msat)?;
        let hash = invoice.payment_hash;
        if invoice.payee == self.node_id() {
            return Ok(PaymentState::Failed {
                reason: "cannot pay an invoice of this node".into(),
            });
        }
        // An earlier payment of this hash that is pending or paid is reported, never repeated.
        match self.inner.track(hash) {
            Ok(PaymentState::Failed { .. }) | Err(LightningError::NotFound) => {}
            Ok(_) => return Ok(self.wait_final(hash, deadline).await),
            Err(e) => return Err(e),
        }
        if invoice.expired_at(now_secs()) {
            return Ok(PaymentState::Failed {
                reason: "invoice expired".into(),
            });
        }
        let parsed = Bolt11Invoice::from_str(&invoice.payment_request)
            .map_err(|e| LightningError::InvalidInvoice(e.to_string()))?;
        let params = RouteParametersConfig {
            max_total_routing_fee_msat: Some(req.max_fee_msat),
            ..RouteParametersConfig::default()
        };
        let no_amount = invoice.amount_msat.is_none();
        self.inner.attempted.lock().map_err(poisoned)?.insert(hash);
        let node = Arc::clone(&self.inner.node);
        let sent = tokio::task::spawn_blocking(move || {
            let bolt11 = node.bolt11_payment();
            if no_amount {
                bolt11.send_using_amount(&parsed, amount_msat, Some(params))
            } else {
                bolt11.send(&parsed, Some(params))
            }
        })
        .await;
        match sent {
            Ok(Ok(_)) => {}
            // Already pending or paid (a concurrent call): report that payment.
            Ok(Err(NodeError::DuplicatePayment)) => {}
            // Refused before anything was sent.
            Ok(Err(
                e @ (NodeError::NotRunning
                | NodeError::InvalidInvoice
                | NodeError::InvalidAmount
                | NodeError::PaymentSendingFailed),
            )) => {
                self.inner.attempted.lock().map_err(poisoned)?.remove(&hash);
                return Err(match e {
                    NodeError::PaymentSendingFailed => {
                        LightningError::NoRoute("LDK found no route to the payee within the fee limit".into())
                    }
                    other => node_error("pay", other),
                });
            }
            // Anything else may have happened after the payment started.
            Ok(Err(e)) => {
                tracing::warn!(payment_hash = %hash, error = %e, "LDK pay: unclear error; tracking the payment");
                return Ok(self.state_or_in_flight(hash));
            }
            Err(e) => {
                tracing::warn!(payment_hash = %hash, error = %e, "LDK pay: the send call did not finish");
                return Ok(PaymentState::InFlight);
            }
        }
        Ok(self.wait_final(hash, deadline).await)
    }

    fn state_or_in_flight(&self, hash: PaymentHash) -> PaymentState {
        self.inner.track(hash).unwrap_or(PaymentState::InFlight)
    }

    /// Waits until the payment is final or `deadline` passes (then `InFlight`).
    async fn wait_final(&self, hash: PaymentHash, deadline: Instant) -> PaymentState {
        loop {
            let updated = self.inner.payment_updates.notified();
            tokio::pin!(updated);
            updated.as_mut().enable();
            match self.inner.track(hash) {
                Ok(PaymentState::InFlight) | Err(LightningError::NotFound) => {}
                Ok(state) => return state,
                Err(_) => return PaymentState::InFlight,
            }
            if Instant::now() >= deadline {
                return PaymentState::InFlight;
            }
            let next_poll = (Instant::now() + PAYMENT_POLL).min(deadline);
            tokio::select! {
                _ = &mut updated => {}
                _ = tokio::time::sleep_until(next_poll) => {}
            }
        }
    }

    async fn wait_for_settlement(&self, after_index: u64) -> Result<SettledInvoice, LightningError> {
        loop {
            let notified = self.inner.settlements.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(settled) = self
                .inner
                .receipts
                .lock()
                .map_err(poisoned)?
                .first_settled_after(after_index)
            {
                return Ok(settled);
            }
            notified.await;
        }
    }

    fn info(&self) -> NodeInfo {
        let node = &self.inner.node;
        let status = node.status();
        let now = now_secs();
        let fresh = |ts: Option<u64>| {
            ts.is_some_and(|t| t >= self.inner.started_at && now.saturating_sub(t) <= SYNC_STALE_SECS)
        };
        NodeInfo {
            pubkey: node.node_id().to_string(),
            alias: node.node_alias().map(|a| a.to_string()).unwrap_or_default(),
            network: self.inner.network,
            block_height: status.current_best_block.height,
            synced: status.is_running
                && fresh(status.latest_lightning_wallet_sync_timestamp)
                && fresh(status.latest_onchain_wallet_sync_timestamp),
            simulated: false,
        }
    }

    fn list_channels(&self) -> Vec<ChannelInfo> {
        self.inner
            .node
            .list_channels()
            .iter()
            .map(|c| ChannelInfo {
                id: channel_id(&c.user_channel_id),
                peer: c.counterparty_node_id.to_string(),
                capacity_sat: c.channel_value_sats,
                // What can be sent and received now (reserves and in-flight HTLCs excluded).
                local_sat: c.outbound_capacity_msat / 1_000,
                remote_sat: c.inbound_capacity_msat / 1_000,
                active: c.is_usable,
            })
            .collect()
    }

    async fn open(&self, req: OpenChannelRequest) -> Result<String, LightningError> {
        if req.amount_sat == 0 {
            return Err(invalid("a channel needs a positive amount"));
        }
        let peer =
            PublicKey::from_str(req.peer.trim()).map_err(|e| invalid(format!("peer key {:?}: {e}", req.peer)))?;
        let address = match req.address.as_deref() {
            Some(address) => parse_address("peer address", address)?,
            None => self
                .inner
                .node
                .list_peers()
                .into_iter()
                .find(|p| p.node_id == peer)
                .map(|p| p.address)
                .ok_or_else(|| invalid("not connected to that peer: give its host:port"))?,
        };
        let amount = req.amount_sat;
        let opened = self
            .blocking("open channel", move |node| {
                node.open_channel(peer, address, amount, None, None)
            })
            .await?;
        match opened {
            Ok(id) => {
                tracing::info!(peer = %peer, sat = amount, channel = %channel_id(&id), "LDK: channel open started");
                Ok(channel_id(&id))
            }
            Err(NodeError::ConnectionFailed) => {
                Err(LightningError::Unavailable(format!("could not connect to peer {peer}")))
            }
            Err(NodeError::InsufficientFunds) => Err(invalid(format!(
                "{amount} sats (and the anchor reserve) exceed the spendable on-chain funds"
            ))),
            Err(e) => Err(node_error("open channel", e)),
        }
    }
}

impl Drop for LdkNode {
    /// Ends the event task and, unless [`LdkNode::stop`] did already, stops the node while the
    /// runtime is still there (ldk-node would otherwise stop itself whenever its last handle
    /// goes, possibly during the runtime's shutdown).
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if !self.inner.node.status().is_running {
            return;
        }
        let node = Arc::clone(&self.inner.node);
        let stopped = match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| node.stop()).map_err(|e| e.to_string())
            }
            // Blocking in place is not allowed here: stop from a thread outside the runtime.
            Ok(_) => std::thread::spawn(move || node.stop())
                .join()
                .map_err(|_| "the stopping thread panicked".to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(_) => node.stop().map_err(|e| e.to_string()),
        };
        if let Err(e) = stopped {
            tracing::warn!(error = %e, "LDK: stopping the node on drop");
        }
    }
}

impl Inner {
    /// Where an outgoing payment stands, from ldk-node's payment store.
    fn track(&self, hash: PaymentHash) -> Result<PaymentState, LightningError> {
        let Some(details) = self.node.payment(&PaymentId(hash.0)) else {
            if self.attempted.lock().map_err(poisoned)?.contains(&hash) {
                return Ok(PaymentState::InFlight);
            }
            return Err(LightningError::NotFound);
        };
        if details.direction != PaymentDirection::Outbound {
            return Err(LightningError::NotFound);
        }
        if details.status != PaymentStatus::Pending {
            // ldk-node's store has it for good now.
            self.attempted.lock().map_err(poisoned)?.remove(&hash);
        }
        Ok(match details.status {
            PaymentStatus::Pending => PaymentState::InFlight,
            PaymentStatus::Succeeded => {
                let preimage = match details.kind {
                    PaymentKind::Bolt11 { preimage, .. } | PaymentKind::Bolt11Jit { preimage, .. } => {
                        preimage.map(|p| Hash32(p.0))
                    }
                    _ => None,
                };
                PaymentState::Succeeded {
                    preimage,
                    fee_msat: details.fee_paid_msat.unwrap_or(0),
                }
            }
            PaymentStatus::Failed => PaymentState::Failed {
                reason: self
                    .failures
                    .lock()
                    .map_err(poisoned)?
                    .get(&hash)
                    .cloned()
                    .unwrap_or_else(|| "payment failed".into()),
            },
        })
    }

    /// Handles one ldk-node event; `Err` leaves it unhandled, to be tried again.
    fn handle(&self, event: Event) -> Result<(), LightningError> {
        match event {
            Event::PaymentClaimable {
                payment_hash,
                claimable_amount_msat,
                ..
            } => self.on_claimable(Hash32(payment_hash.0), claimable_amount_msat),
            Event::PaymentReceived {
                payment_hash,
                amount_msat,
                ..
            } => self.on_received(Hash32(payment_hash.0), amount_msat),
            Event::PaymentSuccessful {
                payment_hash,
                fee_paid_msat,
                ..
            } => {
                tracing::info!(payment_hash = %Hash32(payment_hash.0), fee_msat = ?fee_paid_msat, "LDK: payment succeeded");
                self.payment_updates.notify_waiters();
                Ok(())
            }
            Event::PaymentFailed {
                payment_hash, reason, ..
            } => {
                let reason = match reason {
                    Some(r) => format!("payment failed: {r:?}"),
                    None => "payment failed".to_string(),
                };
                if let Some(hash) = payment_hash {
                    tracing::info!(payment_hash = %Hash32(hash.0), %reason, "LDK: payment failed");
                    self.failures.lock().map_err(poisoned)?.insert(Hash32(hash.0), reason);
                }
                self.payment_updates.notify_waiters();
                Ok(())
            }
            Event::ChannelPending {
                user_channel_id,
                counterparty_node_id,
                funding_txo,
                ..
            } => {
                tracing::info!(channel = %channel_id(&user_channel_id), peer = %counterparty_node_id, funding = %funding_txo, "LDK: channel pending");
                Ok(())
            }
            Event::ChannelReady {
                user_channel_id,
                counterparty_node_id,
                ..
            } => {
                tracing::info!(channel = %channel_id(&user_channel_id), peer = ?counterparty_node_id.map(|p| p.to_string()), "LDK: channel ready");
                Ok(())
            }
            Event::ChannelClosed {
                user_channel_id,
                counterparty_node_id,
                reason,
                ..
            } => {
                tracing::warn!(channel = %channel_id(&user_channel_id), peer = ?counterparty_node_id.map(|p| p.to_string()), reason = ?reason.map(|r| r.to_string()), "LDK: channel closed");
                Ok(())
            }
            other => {
                tracing::debug!(event = ?other, "LDK event");
                Ok(())
            }
        }
    }

    fn on_claimable(&self, hash: PaymentHash, amount_msat: u64) -> Result<(), LightningError> {
        let arrival = self.receipts.lock().map_err(poisoned)?.arrival(hash)?;
        let bolt11 = self.node.bolt11_payment();
        match arrival {
            Arrival::Claim(preimage) => {
                match bolt11.claim_for_hash(LdkHash(hash.0), amount_msat, PaymentPreimage(preimage.0)) {
                    Ok(()) => tracing::info!(payment_hash = %hash, msat = amount_msat, "LDK: claiming a payment"),
                    Err(e) => {
                        tracing::warn!(payment_hash = %hash, msat = amount_msat, error = %e, "LDK: cannot claim; failing the payment back");
                        self.receipts.lock().map_err(poisoned)?.reopen(hash)?;
                        if let Err(e) = bolt11.fail_for_hash(LdkHash(hash.0)) {
                            tracing::warn!(payment_hash = %hash, error = %e, "LDK: fail_for_hash");
                        }
                    }
                }
            }
            Arrival::Refuse(why) => {
                tracing::info!(payment_hash = %hash, msat = amount_msat, why, "LDK: failing an incoming payment back");
                if let Err(e) = bolt11.fail_for_hash(LdkHash(hash.0)) {
                    tracing::warn!(payment_hash = %hash, error = %e, "LDK: fail_for_hash");
                }
            }
        }
        Ok(())
    }

    fn on_received(&self, hash: PaymentHash, amount_msat: u64) -> Result<(), LightningError> {
        let mut receipts = self.receipts.lock().map_err(poisoned)?;
        let known = receipts.status(hash);
        match receipts.settle(hash, amount_msat)? {
            Some(settled) => {
                drop(receipts);
                if known == Some(receipts::Status::Cancelled) {
                    tracing::warn!(payment_hash = %hash, "LDK: a cancelled invoice was paid; reporting the settlement");
                }
                tracing::info!(payment_hash = %hash, msat = amount_msat, settle_index = settled.settle_index, "LDK: invoice settled");
                self.settlements.notify_waiters();
            }
            None if known.is_none() => {
                tracing::warn!(payment_hash = %hash, msat = amount_msat, "LDK: received a payment for no invoice of Flash (keysend or BOLT12?); not reported");
            }
            None => {}
        }
        Ok(())
    }
}

/// Hands ldk-node's events to [`Inner::handle`] one by one, marking each handled only once it
/// was; stops when `stop` turns true (or the [`LdkNode`] is gone).
async fn run_events(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut pause = EVENT_RETRY_MIN;
    loop {
        if *stop.borrow() {
            return;
        }
        let event = tokio::select! {
            biased;
            _ = stop.changed() => return,
            event = inner.node.next_event_async() => event,
        };
        let worker = Arc::clone(&inner);
        let handled = tokio::task::spawn_blocking(move || {
            worker.handle(event)?;
            worker
                .node
                .event_handled()
                .map_err(|e| node_error("marking an LDK event handled", e))
        })
        .await;
        let error = match handled {
            Ok(Ok(())) => {
                pause = EVENT_RETRY_MIN;
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::error!(error = %error, retry_in_ms = pause.as_millis() as u64, "LDK: could not handle an event; trying again");
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(EVENT_RETRY_MAX);
    }
}

fn node_key(key: &PublicKey) -> NodeKey {
    key.serialize()
}

/// The routing-fee estimate (see `ldk/route.rs`) on ldk-node's channels and graph.
fn estimate_on_graph(node: &Node, invoice: &Bolt11Invoice, amount_msat: u64) -> Result<u64, LightningError> {
    let payee = node_key(&invoice.recover_payee_pub_key());
    if payee == node_key(&node.node_id()) {
        return Ok(0);
    }
    let mut first_hops: HashMap<NodeKey, u64> = HashMap::new();
    for channel in node.list_channels().iter().filter(|c| c.is_usable) {
        let best = first_hops.entry(node_key(&channel.counterparty_node_id)).or_default();
        *best = (*best).max(channel.next_outbound_htlc_limit_msat);
    }
    if first_hops.is_empty() {
        return Err(LightningError::NoRoute("no usable channel".into()));
    }
    // The invoice's route hints: private hops into the payee.
    let mut hints: HashMap<NodeKey, Vec<Edge>> = HashMap::new();
    for hint in invoice.route_hints() {
        let hops = &hint.0;
        for (i, hop) in hops.iter().enumerate() {
            let into = hops.get(i + 1).map_or(payee, |next| node_key(&next.src_node_id));
            hints.entry(into).or_default().push(Edge {
                from: node_key(&hop.src_node_id),
                base_msat: hop.fees.base_msat,
                ppm: hop.fees.proportional_millionths,
                htlc_min_msat: hop.htlc_minimum_msat.unwrap_or(0),
                htlc_max_msat: hop.htlc_maximum_msat.unwrap_or(u64::MAX),
            });
        }
    }
    let graph = node.network_graph();
    let edges_into = |key: &NodeKey| {
        let mut edges = hints.get(key).cloned().unwrap_or_default();
        let Ok(id) = NodeId::from_slice(key) else {
            return edges;
        };
        let Some(info) = graph.node(&id) else {
            return edges;
        };
        for scid in info.channels {
            let Some(channel) = graph.channel(scid) else {
                continue;
            };
            let (from, update) = if channel.node_two == id {
                (channel.node_one, channel.one_to_two)
            } else {
                (channel.node_two, channel.two_to_one)
            };
            let Some(update) = update.filter(|u| u.enabled) else {
                continue;
            };
            edges.push(Edge {
                from: *from.as_array(),
                base_msat: update.fees.base_msat,
                ppm: update.fees.proportional_millionths,
                htlc_min_msat: update.htlc_minimum_msat,
                htlc_max_msat: update.htlc_maximum_msat,
            });
        }
        edges
    };
    route::cheapest_fee(amount_msat, payee, &first_hops, edges_into)
        .ok_or_else(|| LightningError::NoRoute("no path to the payee in the known graph and route hints".into()))
}

impl LightningNode for LdkNode {
    fn create_jit_invoice(
        &self,
        req: InvoiceRequest,
        max_lsp_fee_msat: u64,
    ) -> BoxFuture<'_, Result<Invoice, LightningError>> {
        Box::pin(async move {
            let amount = req
                .amount_msat
                .ok_or_else(|| invalid("a just-in-time invoice needs an amount"))?;
            self.create_jit_invoice(amount, req.description, req.expiry_secs, Some(max_lsp_fee_msat))
                .await
        })
    }

    fn create_invoice(&self, req: InvoiceRequest) -> BoxFuture<'_, Result<Invoice, LightningError>> {
        Box::pin(self.issue_invoice(req, None))
    }

    fn decode_invoice<'a>(&'a self, payment_request: &'a str) -> BoxFuture<'a, Result<Invoice, LightningError>> {
        Box::pin(async move { bolt11::decode(payment_request, self.inner.network) })
    }

    fn cancel_invoice(&self, hash: PaymentHash) -> BoxFuture<'_, Result<(), LightningError>> {
        Box::pin(self.cancel(hash))
    }

    fn estimate_fee(&self, req: FeeEstimateRequest) -> BoxFuture<'_, Result<u64, LightningError>> {
        Box::pin(self.estimate(req))
    }

    fn pay(&self, req: PayRequest) -> BoxFuture<'_, Result<PaymentState, LightningError>> {
        Box::pin(self.send(req))
    }

    fn track_payment(&self, hash: PaymentHash) -> BoxFuture<'_, Result<PaymentState, LightningError>> {
        Box::pin(async move { self.inner.track(hash) })
    }

    fn wait_settled(&self, after_index: u64) -> BoxFuture<'_, Result<SettledInvoice, LightningError>> {
        Box::pin(self.wait_for_settlement(after_index))
    }

    fn node_info(&self) -> BoxFuture<'_, Result<NodeInfo, LightningError>> {
        Box::pin(async move { Ok(self.info()) })
    }

    fn channels(&self) -> BoxFuture<'_, Result<Vec<ChannelInfo>, LightningError>> {
        Box::pin(async move { Ok(self.list_channels()) })
    }

    fn onchain_balance(&self) -> BoxFuture<'_, Result<u64, LightningError>> {
        Box::pin(async move {
            let balances = self.blocking("on-chain balance", |node| node.list_balances()).await?;
            Ok(balances.spendable_onchain_balance_sats)
        })
    }

    fn open_channel(&self, req: OpenChannelRequest) -> BoxFuture<'_, Result<String, LightningError>> {
        Box::pin(self.open(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(network: Network, chain: LdkChainSource) -> LdkConfig {
        LdkConfig {
            data_dir: PathBuf::from("/tmp/flash-ldk-test"),
            network,
            chain,
            listen: None,
            lsps2: None,
        }
    }

    fn esplora(url: &str) -> LdkChainSource {
        LdkChainSource::Esplora { url: url.into() }
    }

    fn electrum(url: &str) -> LdkChainSource {
        LdkChainSource::Electrum { url: url.into() }
    }

    #[test]
    fn chain_sources_map_to_ldk_node_settings() {
        let checked = config(Network::Signet, esplora(" https://mempool.space/signet/api/ "))
            .check()
            .expect("esplora");
        assert_eq!(
            checked.chain,
            ChainPlan::Esplora {
                url: "https://mempool.space/signet/api".into()
            }
        );
        assert_eq!(checked.network, ldk_node::bitcoin::Network::Signet);
        let checked = config(Network::Testnet, electrum("ssl://electrum.blockstream.info:60002"))
            .check()
            .expect("electrum");
        assert_eq!(
            checked.chain,
            ChainPlan::Electrum {
                url: "ssl://electrum.blockstream.info:60002".into()
            }
        );
        let bitcoind = LdkChainSource::BitcoindRpc {
            host: "127.0.0.1".into(),
            port: 18443,
            user: "u".into(),
            password: "p".into(),
        };
        let checked = config(Network::Regtest, bitcoind).check().expect("bitcoind");
        assert!(matches!(checked.chain, ChainPlan::Bitcoind { port: 18443, .. }));
        assert_eq!(checked.network, ldk_node::bitcoin::Network::Regtest);
    }

    #[test]
    fn mainnet_is_bitcoin_and_wants_encrypted_remote_chain_data() {
        let checked = config(Network::Mainnet, esplora("https://blockstream.info/api"))
            .check()
            .expect("mainnet esplora over https");
        assert_eq!(checked.network, ldk_node::bitcoin::Network::Bitcoin);
        assert!(config(Network::Mainnet, esplora("http://blockstream.info/api"))
            .check()
            .is_err());
        assert!(config(Network::Mainnet, esplora("http://127.0.0.1:3002"))
            .check()
            .is_ok());
        assert!(config(Network::Mainnet, electrum("tcp://electrum.example:50001"))
            .check()
            .is_err());
        assert!(config(Network::Mainnet, electrum("tcp://localhost:50001"))
            .check()
            .is_ok());
        assert!(config(Network::Mainnet, electrum("tcp://[::1]:50001")).check().is_ok());
        assert!(config(Network::Regtest, electrum("tcp://electrs:50001"))
            .check()
            .is_ok());
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(config(Network::Regtest, electrum("electrum.example:50001"))
            .check()
            .is_err());
        assert!(config(Network::Regtest, esplora("ftp://x/api")).check().is_err());
        assert!(config(Network::Regtest, esplora("https://")).check().is_err());
        let no_password = LdkChainSource::BitcoindRpc {
            host: "127.0.0.1".into(),
            port: 18443,
            user: "u".into(),
            password: String::new(),
        };
        assert!(config(Network::Regtest, no_password).check().is_err());
        let mut c = config(Network::Regtest, esplora("http://127.0.0.1:3002"));
        c.data_dir = PathBuf::new();
        assert!(c.check().is_err());
        let mut c = config(Network::Regtest, esplora("http://127.0.0.1:3002"));
        c.listen = Some("not an address".into());
        assert!(c.check().is_err());
        c.listen = Some("0.0.0.0:9735".into());
        assert!(c.check().expect("listen").listen.is_some());
        c.lsps2 = Some(Lsps2Config {
            node_id: "02abc".into(),
            address: "lsp.example:9735".into(),
            token: None,
        });
        assert!(c.check().is_err(), "bad LSP key");
        c.lsps2 = Some(Lsps2Config {
            node_id: "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798".into(),
            address: "lsp.example:9735".into(),
            token: Some(String::new()),
        });
        let checked = c.check().expect("lsps2");
        assert!(
            matches!(checked.lsps2, Some((_, _, None))),
            "an empty token is no token"
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c = LdkConfig {
            lsps2: Some(Lsps2Config {
                node_id: "02".into(),
                address: "a:1".into(),
                token: Some("lsp-secret".into()),
            }),
            ..config(
                Network::Regtest,
                LdkChainSource::BitcoindRpc {
                    host: "h".into(),
                    port: 1,
                    user: "u".into(),
                    password: "rpc-secret".into(),
                },
            )
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("rpc-secret") && !shown.contains("lsp-secret"),
            "{shown}"
        );
    }

    #[test]
    fn expiry_and_descriptions_are_checked() {
        assert!(expiry_u32(0).is_err());
        assert!(expiry_u32(u64::from(u32::MAX) + 1).is_err());
        assert_eq!(expiry_u32(3_600), Ok(3_600));
        assert!(ldk_description(&InvoiceDescription::Memo("x".repeat(MEMO_MAX_BYTES + 1))).is_err());
        assert!(matches!(
            ldk_description(&InvoiceDescription::Hash(Hash32([7; 32]))),
            Ok(Bolt11InvoiceDescription::Hash(_))
        ));
        assert_eq!(channel_id(&UserChannelId(255)), "000000000000000000000000000000ff");
    }
}
