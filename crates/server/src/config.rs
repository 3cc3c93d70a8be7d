//! `flashd` configuration: defaults, then a TOML file, then `FLASH_*` environment variables,
//! then flags. Every key is documented in `docs/config.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use flash_auth::{AuthConfig, SmtpConfig};
use flash_bank::{LightningConfig, LiquidityConfig, OnchainConfig};
use flash_core::{LimitPolicy, Network};
use flash_onchain::url_without_credentials;
use flash_store::StoreConfig;
use serde::Deserialize;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./flash-data";

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Command-line flags; each also reads a `FLASH_*` environment variable.
#[derive(Parser, Debug)]
#[command(name = "flashd", version, about = "Flash: a Bitcoin bank server")]
pub struct Args {
    /// TOML configuration file.
    #[arg(long, env = "FLASH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "FLASH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database and secrets [default: ./flash-data].
    #[arg(long, env = "FLASH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL, `sqlite:PATH` for another SQLite file
    /// [default: SQLite at DATA_DIR/flash.db].
    #[arg(long, env = "FLASH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// mainnet, testnet, signet or regtest [default: regtest].
    #[arg(long, env = "FLASH_NETWORK")]
    pub network: Option<Network>,
    /// text or json [default: text].
    #[arg(long, env = "FLASH_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// The URL clients reach this server at; its host names Lightning addresses
    /// (`name@host`) [default: http://LISTEN].
    #[arg(long, env = "FLASH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// `nats://host:port` of the NATS that links the nodes of a scale-out deployment (relay
    /// fan-out) [default: none, one node].
    #[arg(long, env = "FLASH_NATS_URL")]
    pub nats_url: Option<String>,
    /// Maintenance instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `flashd <command>`: maintenance run against the configured data dir and database (the
/// same flags, file and environment as serving). Without one, flashd serves.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Operator keys (the keys of `/admin/graphql` and `flash admin`).
    #[command(subcommand)]
    AdminKey(AdminKeyCommand),
    /// Prints the GraphQL schema in SDL, for clients to generate their types from (the SDK
    /// commits it as `crates/sdk/schema/public.graphql` and `admin.graphql`).
    Schema {
        /// The operator API's schema instead of the app API's.
        #[arg(long)]
        admin: bool,
    },
}

/// `flashd admin-key ...`.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AdminKeyCommand {
    /// Revokes every operator key and prints a new one, once: to rotate the key, or to recover
    /// when it is lost. Needs only the database (and works while flashd runs: the old keys stop
    /// working at once).
    Rotate {
        /// A label for the new key (shown in the audit log).
        #[arg(long, default_value = "rotated")]
        label: String,
    },
}

/// The TOML file: the same top-level keys as the flags, plus sections.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    network: Option<Network>,
    log_format: Option<LogFormat>,
    public_url: Option<String>,
    nats_url: Option<String>,
    #[serde(default)]
    limits: LimitPolicy,
    #[serde(default)]
    auth: AuthConfig,
    smtp: Option<SmtpConfig>,
    #[serde(default)]
    lightning: LightningSection,
    #[serde(default)]
    onchain: OnchainSection,
    #[serde(default)]
    mint: flash_mint::MintConfig,
    #[serde(default)]
    relay: flash_nostr::RelayConfig,
    #[serde(default)]
    rates: flash_rates::RatesConfig,
}

/// Which Lightning node backs the bank.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LightningBackend {
    /// The simulator (regtest, signet, testnet only).
    #[default]
    Dev,
    /// An LND node over gRPC (`[lightning.lnd]`).
    Lnd,
    /// The embedded LDK node (`[lightning.ldk]`; flashd built with `--features ldk`).
    Ldk,
    /// No Lightning: its API answers LIGHTNING_UNAVAILABLE.
    None,
}

/// `[lightning.lnd]`: how to reach LND.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LndSection {
    /// gRPC address, `https://host:port` (LND's `rpclisten`, usually port 10009).
    pub address: String,
    /// LND's `tls.cert`; the node must present exactly this certificate.
    pub tls_cert: PathBuf,
    /// A macaroon with invoice, offchain, onchain and peer permissions (e.g. `admin.macaroon`).
    pub macaroon: PathBuf,
}

/// `[lightning.ldk.chain]`: where the embedded LDK node reads the chain, chosen by `source`.
// Read by main.rs only in a build with the `ldk` feature.
#[cfg_attr(not(feature = "ldk"), allow(dead_code))]
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase", deny_unknown_fields)]
pub enum LdkChainSection {
    /// `source = "bitcoind"`: bitcoind's JSON-RPC.
    Bitcoind {
        /// RPC host.
        host: String,
        /// RPC port.
        port: u16,
        /// RPC user.
        user: String,
        /// RPC password.
        password: String,
    },
    /// `source = "electrum"`: an Electrum server, `ssl://host:port`.
    Electrum {
        /// Server URL.
        url: String,
    },
    /// `source = "esplora"`: an Esplora API, `https://host/api`.
    Esplora {
        /// Base URL.
        url: String,
    },
}

impl std::fmt::Debug for LdkChainSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LdkChainSection::Bitcoind { host, port, user, .. } => f
                .debug_struct("Bitcoind")
                .field("host", host)
                .field("port", port)
                .field("user", user)
                .finish_non_exhaustive(),
            LdkChainSection::Electrum { url } => f.debug_struct("Electrum").field("url", url).finish(),
            LdkChainSection::Esplora { url } => f.debug_struct("Esplora").field("url", url).finish(),
        }
    }
}

/// `[lightning.ldk.lsps2]`: an LSPS2 service for just-in-time inbound channels.
// Read by main.rs only in a build with the `ldk` feature.
#[cfg_attr(not(feature = "ldk"), allow(dead_code))]
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdkLsps2Section {
    /// The LSP's node public key (hex).
    pub node_id: String,
    /// Its `host:port`.
    pub address: String,
    /// Its access token, if it wants one.
    pub token: Option<String>,
}

impl std::fmt::Debug for LdkLsps2Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdkLsps2Section")
            .field("node_id", &self.node_id)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// `[lightning.ldk]`: the embedded LDK node (its data lives in `DATA_DIR/ldk`).
// Read by main.rs only in a build with the `ldk` feature.
#[cfg_attr(not(feature = "ldk"), allow(dead_code))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdkSection {
    /// Where it reads the chain; without it, the `[onchain]` backend's node or server.
    pub chain: Option<LdkChainSection>,
    /// `host:port` to accept Lightning peers on, if any.
    pub listen: Option<String>,
    /// An LSPS2 service, if any.
    pub lsps2: Option<LdkLsps2Section>,
}

/// How the dev simulator's payments to other nodes end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevOutcomeKind {
    /// Paid.
    #[default]
    Succeed,
    /// Not paid.
    Fail,
    /// Never resolved.
    Hang,
}

/// `[lightning.dev]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevLightningSection {
    /// How payments to other nodes end.
    pub outcome: DevOutcomeKind,
    /// Simulated routing time, milliseconds.
    pub delay_ms: u64,
    /// Simulated routing fee, parts per million.
    pub fee_ppm: u64,
}

impl Default for DevLightningSection {
    fn default() -> Self {
        DevLightningSection {
            outcome: DevOutcomeKind::Succeed,
            delay_ms: 200,
            fee_ppm: 1_000,
        }
    }
}

impl DevLightningSection {
    /// The simulator's outcome setting.
    pub fn outcome(&self) -> flash_core::lightning::DevOutcome {
        use flash_core::lightning::DevOutcome;
        match self.outcome {
            DevOutcomeKind::Succeed => DevOutcome::Succeed {
                delay_ms: self.delay_ms,
                fee_ppm: self.fee_ppm,
            },
            DevOutcomeKind::Fail => DevOutcome::Fail {
                delay_ms: self.delay_ms,
            },
            DevOutcomeKind::Hang => DevOutcome::Hang,
        }
    }
}

/// `[lightning]`: the node, and (`[lightning.payments]`) the bank's fee cap, timeouts, invoice
/// expiries and reconciliation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LightningSection {
    /// The node.
    pub backend: LightningBackend,
    /// The bank's Lightning policy.
    pub payments: LightningConfig,
    /// The simulator's settings.
    pub dev: DevLightningSection,
    /// LND, when `backend = "lnd"`.
    pub lnd: Option<LndSection>,
    /// The embedded LDK node, when `backend = "ldk"`.
    pub ldk: Option<LdkSection>,
    /// The liquidity manager's policy.
    pub liquidity: LiquidityConfig,
}

/// Which chain backend the hot wallet reads and broadcasts through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnchainBackend {
    /// The simulated chain (regtest, signet, testnet only).
    #[default]
    Dev,
    /// Bitcoin Core over JSON-RPC, with ZMQ notifications when configured
    /// (`[onchain.bitcoind]`).
    Bitcoind,
    /// An Electrum server (`[onchain.electrum]`).
    Electrum,
    /// No on-chain wallet: its API answers ONCHAIN_UNAVAILABLE.
    None,
}

/// `[onchain.bitcoind]`: the Bitcoin Core node. Authenticate with its cookie file or with
/// `rpc_user` and `rpc_password`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitcoindSection {
    /// JSON-RPC URL, e.g. `http://127.0.0.1:8332`.
    pub rpc_url: String,
    /// The node's `.cookie` file (default authentication of Bitcoin Core).
    pub cookie_file: Option<PathBuf>,
    /// RPC user (`rpcauth`/`rpcuser`), with `rpc_password`.
    pub rpc_user: Option<String>,
    /// RPC password.
    pub rpc_password: Option<String>,
    /// The node's `zmqpubrawtx` endpoint, e.g. `tcp://127.0.0.1:28332`: new transactions are
    /// seen at once instead of at the next poll.
    pub zmq_rawtx: Option<String>,
    /// The node's `zmqpubhashblock` endpoint: new blocks are seen at once.
    pub zmq_hashblock: Option<String>,
    /// Timeout of each RPC call, seconds.
    #[serde(default = "default_chain_timeout")]
    pub timeout_secs: u64,
}

impl std::fmt::Debug for BitcoindSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitcoindSection")
            .field("rpc_url", &url_without_credentials(&self.rpc_url))
            .field("cookie_file", &self.cookie_file)
            .field("rpc_user", &self.rpc_user)
            .field("zmq_rawtx", &self.zmq_rawtx)
            .field("zmq_hashblock", &self.zmq_hashblock)
            .field("timeout_secs", &self.timeout_secs)
            .finish_non_exhaustive()
    }
}

/// `[onchain.electrum]`: the Electrum server.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectrumSection {
    /// `ssl://host:port` or `tcp://host:port`.
    pub url: String,
    /// Timeout of connecting and of each request, seconds.
    #[serde(default = "default_chain_timeout")]
    pub timeout_secs: u64,
    /// For `ssl://`: check the certificate against the web's root authorities.
    #[serde(default = "yes")]
    pub validate_domain: bool,
}

fn default_chain_timeout() -> u64 {
    30
}

fn yes() -> bool {
    true
}

/// `[onchain.cold]`: cold storage, an m-of-n multisig of the cosigners' keys, and when the hot
/// wallet is swept into it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColdSection {
    /// Signatures needed (default 2).
    #[serde(default = "two")]
    pub threshold: usize,
    /// The cosigners' account keys, `[fingerprint/48'/coin'/0'/2']xpub…` (`flash cold keygen`).
    pub cosigners: Vec<String>,
    /// Above this confirmed balance the hot wallet is swept.
    #[serde(default = "default_max_hot")]
    pub max_hot_sats: i64,
    /// What a sweep leaves in the hot wallet.
    #[serde(default = "default_min_hot")]
    pub min_hot_sats: i64,
    /// Smaller sweeps are not made.
    #[serde(default = "default_min_rebalance")]
    pub min_rebalance_sats: i64,
}

fn two() -> usize {
    2
}
fn default_max_hot() -> i64 {
    flash_bank::ColdPolicy::default().max_hot_sats
}
fn default_min_hot() -> i64 {
    flash_bank::ColdPolicy::default().min_hot_sats
}
fn default_min_rebalance() -> i64 {
    flash_bank::ColdPolicy::default().min_rebalance_sats
}

impl ColdSection {
    /// The sweep policy.
    pub fn policy(&self) -> flash_bank::ColdPolicy {
        flash_bank::ColdPolicy {
            max_hot_sats: self.max_hot_sats,
            min_hot_sats: self.min_hot_sats,
            min_rebalance_sats: self.min_rebalance_sats,
        }
    }
}

/// `[onchain.dev]`: the simulated chain.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevChainSection {
    /// The fee rate it quotes, satoshis per virtual byte.
    pub fee_rate_sat_per_vb: u64,
}

impl Default for DevChainSection {
    fn default() -> Self {
        DevChainSection { fee_rate_sat_per_vb: 2 }
    }
}

/// `[onchain]`: the hot wallet's chain backend, and (`[onchain.policy]`) confirmations, deposit
/// fees, payout batching and fee rates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnchainSection {
    /// The chain backend.
    pub backend: OnchainBackend,
    /// Confirmations, deposit fees, payout batching and fee rates.
    pub policy: OnchainConfig,
    /// The simulator's settings.
    pub dev: DevChainSection,
    /// The Bitcoin Core node, when `backend = "bitcoind"`.
    pub bitcoind: Option<BitcoindSection>,
    /// The Electrum server, when `backend = "electrum"`.
    pub electrum: Option<ElectrumSection>,
    /// Cold storage, if any.
    pub cold: Option<ColdSection>,
}

impl OnchainSection {
    /// The chain source of the embedded LDK node when `[lightning.ldk.chain]` is not given: the
    /// bitcoind node or Electrum server of `[onchain]` (a cookie file is read now).
    // Called by main.rs only in a build with the `ldk` feature.
    #[cfg_attr(not(feature = "ldk"), allow(dead_code))]
    pub fn ldk_chain(&self) -> anyhow::Result<LdkChainSection> {
        use anyhow::Context;
        match (self.backend, &self.bitcoind, &self.electrum) {
            (OnchainBackend::Bitcoind, Some(b), _) => {
                let url = url::Url::parse(&b.rpc_url).with_context(|| {
                    format!(
                        "[onchain.bitcoind] rpc_url {} is not a URL",
                        url_without_credentials(&b.rpc_url)
                    )
                })?;
                let host = url
                    .host_str()
                    .context("[onchain.bitcoind] rpc_url has no host")?
                    .to_string();
                let port = url
                    .port_or_known_default()
                    .context("[onchain.bitcoind] rpc_url has no port")?;
                let (user, password) = match (&b.cookie_file, &b.rpc_user, &b.rpc_password) {
                    (Some(cookie), _, _) => {
                        let text = std::fs::read_to_string(cookie)
                            .with_context(|| format!("reading the bitcoind cookie {}", cookie.display()))?;
                        let (user, password) = text.trim().split_once(':').with_context(|| {
                            format!("{} is not a bitcoind cookie (user:password)", cookie.display())
                        })?;
                        (user.to_string(), password.to_string())
                    }
                    (None, Some(user), Some(password)) => (user.clone(), password.clone()),
                    _ => anyhow::bail!("[onchain.bitcoind] needs either cookie_file, or rpc_user and rpc_password"),
                };
                Ok(LdkChainSection::Bitcoind {
                    host,
                    port,
                    user,
                    password,
                })
            }
            (OnchainBackend::Electrum, _, Some(e)) => Ok(LdkChainSection::Electrum { url: e.url.clone() }),
            _ => anyhow::bail!(
                "[lightning] backend = \"ldk\" needs a [lightning.ldk.chain] source, or [onchain] backend = \
                 \"bitcoind\" or \"electrum\" to share"
            ),
        }
    }
}

/// The resolved configuration.
#[derive(Debug)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// The URL clients reach this server at, without a trailing slash; `http://` and the
    /// bound address when not configured.
    pub public_url: Option<String>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database.
    pub store: StoreConfig,
    /// NATS linking the nodes of a scale-out deployment, if any.
    pub nats_url: Option<String>,
    /// Network.
    pub network: Network,
    /// Log format.
    pub log_format: LogFormat,
    /// Limits.
    pub limits: LimitPolicy,
    /// Auth settings.
    pub auth: AuthConfig,
    /// SMTP for email codes.
    pub smtp: Option<SmtpConfig>,
    /// Lightning backend and policy.
    pub lightning: LightningSection,
    /// On-chain backend and policy.
    pub onchain: OnchainSection,
    /// The Cashu mint.
    pub mint: flash_mint::MintConfig,
    /// The NOSTR relay.
    pub relay: flash_nostr::RelayConfig,
    /// Where BTC prices come from (`dev` fixed rates by default).
    pub rates: flash_rates::RatesConfig,
}

/// The host (and port) of a public URL: the domain of this server's Lightning addresses.
pub fn address_domain(public_url: &str) -> anyhow::Result<String> {
    let parsed = url::Url::parse(public_url).with_context(|| format!("public_url {public_url:?}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.path() != "/" || parsed.query().is_some() {
        bail!("public_url must be http(s)://host[:port] without a path (got {public_url:?})");
    }
    match (parsed.host_str(), parsed.port()) {
        (Some(host), Some(port)) => Ok(format!("{host}:{port}")),
        (Some(host), None) => Ok(host.to_string()),
        (None, _) => bail!("public_url needs a host (got {public_url:?})"),
    }
}

fn store_config(url: Option<String>, data_dir: &Path) -> anyhow::Result<StoreConfig> {
    Ok(match url {
        None => StoreConfig::Sqlite {
            path: data_dir.join("flash.db"),
        },
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => StoreConfig::Postgres { url: u },
        Some(u) => match u.strip_prefix("sqlite:") {
            Some(path) if !path.is_empty() => StoreConfig::Sqlite {
                path: PathBuf::from(path),
            },
            _ => bail!("database URL must start with postgres:// or sqlite: (got {u:?})"),
        },
    })
}

impl Config {
    /// Resolves flags and environment over the file over the defaults.
    pub fn resolve(args: Args) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let store = store_config(args.database_url.or(file.database_url), &data_dir)?;
        let default_listen: SocketAddr = DEFAULT_LISTEN.parse().context("default listen address")?;
        if file.limits.reference_sats_per_usd <= 0 {
            bail!("limits.reference_sats_per_usd must be positive");
        }
        let listen = args.listen.or(file.listen).unwrap_or(default_listen);
        let public_url = args
            .public_url
            .or(file.public_url)
            .map(|u| u.trim_end_matches('/').to_string());
        if let Some(u) = &public_url {
            address_domain(u)?;
        }
        file.relay.validate().map_err(anyhow::Error::msg)?;
        Ok(Config {
            listen,
            public_url,
            data_dir,
            store,
            nats_url: args.nats_url.or(file.nats_url),
            network: args.network.or(file.network).unwrap_or(Network::Regtest),
            log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            limits: file.limits,
            auth: file.auth,
            smtp: file.smtp,
            lightning: file.lightning,
            onchain: file.onchain,
            mint: file.mint,
            relay: file.relay,
            rates: file.rates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["flashd"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).expect("args")
    }

    #[test]
    fn defaults_are_the_embedded_tier() {
        let c = Config::resolve(args(&[])).expect("config");
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: PathBuf::from("./flash-data/flash.db")
            }
        );
        assert_eq!(c.network, Network::Regtest);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("flashd-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("flash.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nnetwork = \"signet\"\n[limits]\nreference_sats_per_usd = 2000\n",
        )
        .expect("write");
        let path = file.to_string_lossy().to_string();
        let c = Config::resolve(args(&["--config", &path, "--listen", "127.0.0.1:9001"])).expect("config");
        assert_eq!(c.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(c.network, Network::Signet);
        assert_eq!(c.limits.reference_sats_per_usd, 2000);
        std::fs::write(&file, "bogus = 1\n").expect("write");
        assert!(
            Config::resolve(args(&["--config", &path])).is_err(),
            "unknown keys are refused"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn onchain_sections_parse_with_defaults() {
        let parsed: FileConfig = toml::from_str(
            "[onchain]\nbackend = \"electrum\"\n[onchain.electrum]\nurl = \"ssl://e.example:50002\"\n\
             [onchain.policy]\nconfirmations = 3\ndust_sats = 1000\n\
             [onchain.cold]\ncosigners = [\"a\", \"b\", \"c\"]\nmax_hot_sats = 5\n",
        )
        .expect("parses");
        assert_eq!(parsed.onchain.backend, OnchainBackend::Electrum);
        let electrum = parsed.onchain.electrum.expect("electrum");
        assert_eq!((electrum.timeout_secs, electrum.validate_domain), (30, true));
        assert_eq!(parsed.onchain.policy.confirmations, 3);
        assert_eq!(parsed.onchain.policy.dust_sats, 1_000);
        assert_eq!(parsed.onchain.policy.batch_interval_secs, 60, "defaults fill the rest");
        let cold = parsed.onchain.cold.expect("cold");
        assert_eq!((cold.threshold, cold.cosigners.len()), (2, 3));
        assert_eq!(cold.policy().max_hot_sats, 5);
        assert_eq!(
            cold.policy().min_hot_sats,
            flash_bank::ColdPolicy::default().min_hot_sats
        );
        assert!(toml::from_str::<FileConfig>("[onchain]\nbackend = \"bitcoin-core\"\n").is_err());
        let bitcoind: FileConfig = toml::from_str(
            "[onchain]\nbackend = \"bitcoind\"\n[onchain.bitcoind]\nrpc_url = \"http://127.0.0.1:8332\"\n\
             rpc_user = \"flash\"\nrpc_password = \"hunter2\"\nzmq_rawtx = \"tcp://127.0.0.1:28332\"\n",
        )
        .expect("parses");
        let section = bitcoind.onchain.bitcoind.expect("bitcoind");
        assert_eq!(section.timeout_secs, 30);
        assert_eq!(section.zmq_hashblock, None);
        assert!(
            !format!("{section:?}").contains("hunter2"),
            "the password is not logged"
        );
        assert_eq!(
            url_without_credentials("http://flash:hunter2@127.0.0.1:8332/"),
            "http://127.0.0.1:8332/"
        );
        assert!(
            toml::from_str::<FileConfig>("[onchain.policy]\nconfirmatons = 3\n").is_err(),
            "typos refused"
        );
    }

    #[test]
    fn ldk_section_parses_each_chain_source() {
        let parsed: FileConfig = toml::from_str(
            "[lightning]\nbackend = \"ldk\"\n[lightning.ldk]\nlisten = \"0.0.0.0:9735\"\n\
             [lightning.ldk.chain]\nsource = \"bitcoind\"\nhost = \"127.0.0.1\"\nport = 8332\n\
             user = \"u\"\npassword = \"secret\"\n[lightning.ldk.lsps2]\nnode_id = \"02ab\"\n\
             address = \"lsp.example:9735\"\ntoken = \"t\"\n",
        )
        .expect("ldk section");
        assert_eq!(parsed.lightning.backend, LightningBackend::Ldk);
        let ldk = parsed.lightning.ldk.expect("ldk");
        assert!(matches!(ldk.chain, Some(LdkChainSection::Bitcoind { port: 8332, .. })));
        assert_eq!(ldk.listen.as_deref(), Some("0.0.0.0:9735"));
        assert!(
            !format!("{ldk:?}").contains("secret"),
            "the RPC password stays out of logs"
        );
        let esplora: FileConfig =
            toml::from_str("[lightning.ldk.chain]\nsource = \"esplora\"\nurl = \"https://blockstream.info/api\"\n")
                .expect("esplora");
        assert!(matches!(
            esplora.lightning.ldk.and_then(|l| l.chain),
            Some(LdkChainSection::Esplora { .. })
        ));
        assert!(
            toml::from_str::<FileConfig>(
                "[lightning.ldk.chain]\nsource = \"electrum\"\nurl = \"ssl://e:1\"\nport = 1\n"
            )
            .is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn the_ldk_node_shares_the_onchain_chain_source() {
        let dir = std::env::temp_dir().join(format!("flash-ldk-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let cookie = dir.join(".cookie");
        std::fs::write(&cookie, "__cookie__:s3cr3t\n").expect("cookie");
        let parsed: FileConfig = toml::from_str(&format!(
            "[onchain]\nbackend = \"bitcoind\"\n[onchain.bitcoind]\nrpc_url = \"http://127.0.0.1:18443\"\n\
             cookie_file = {:?}\n",
            cookie.display().to_string()
        ))
        .expect("parses");
        assert_eq!(
            parsed.onchain.ldk_chain().expect("shared"),
            LdkChainSection::Bitcoind {
                host: "127.0.0.1".into(),
                port: 18443,
                user: "__cookie__".into(),
                password: "s3cr3t".into(),
            }
        );
        let electrum: FileConfig =
            toml::from_str("[onchain]\nbackend = \"electrum\"\n[onchain.electrum]\nurl = \"ssl://e.example:50002\"\n")
                .expect("parses");
        assert_eq!(
            electrum.onchain.ldk_chain().expect("shared"),
            LdkChainSection::Electrum {
                url: "ssl://e.example:50002".into()
            }
        );
        let dev = FileConfig::default().onchain.ldk_chain().expect_err("nothing to share");
        assert!(dev.to_string().contains("[lightning.ldk.chain]"), "{dev}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn database_urls() {
        let pg = store_config(Some("postgres://u@h/db".into()), Path::new("d")).expect("pg");
        assert_eq!(
            pg,
            StoreConfig::Postgres {
                url: "postgres://u@h/db".into()
            }
        );
        let lite = store_config(Some("sqlite:/tmp/x.db".into()), Path::new("d")).expect("sqlite");
        assert_eq!(
            lite,
            StoreConfig::Sqlite {
                path: PathBuf::from("/tmp/x.db")
            }
        );
        assert!(store_config(Some("mysql://x".into()), Path::new("d")).is_err());
    }
}
