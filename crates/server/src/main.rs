//! `flashd`: the Flash server. With no configuration it runs the embedded tier: SQLite in
//! `./flash-data`, regtest, codes written to the log, an operator key printed once.

mod config;
mod datadir;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use flash_api::{ApiState, Metrics, ServerInfo};
use flash_auth::{Auth, LogCodeSender, SmtpCodeSender};
use flash_bank::{Bank, BankConfig};
use flash_core::lightning::{LightningNode, SimulatorControls};
use flash_core::onchain::{ChainSimulator, ChainSource, ColdWallet, HotWallet};
use flash_core::ports::{BoxFuture, CodeChannel, CodeSendError, CodeSender, SystemClock};
use flash_core::secrets::KeyEncryptionKey;
use flash_core::{Currency, Network};
use flash_lightning::{DevNode, HttpLnurlClient, LndConfig, LndNode, LnurlClientConfig};
use flash_mint::Mint;
use flash_onchain::{
    BdkColdWallet, BdkHotWallet, BitcoindAuth, BitcoindChain, BitcoindConfig, DevChain, ElectrumChain, ElectrumConfig,
};
use flash_store::Store;

use crate::config::{AdminKeyCommand, Args, Command, Config, LightningBackend, LogFormat, OnchainBackend};
use crate::datadir::DataDir;

/// Email through SMTP when configured; on non-mainnet networks anything else goes to the log
/// (there is no SMS gateway yet), and on mainnet it is refused rather than logged.
struct CodeRouter {
    smtp: Option<SmtpCodeSender>,
    log: Option<LogCodeSender>,
}

impl CodeSender for CodeRouter {
    fn send_code<'a>(
        &'a self,
        channel: CodeChannel,
        identifier: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<(), CodeSendError>> {
        match (channel, &self.smtp, &self.log) {
            (CodeChannel::Email, Some(smtp), _) => smtp.send_code(channel, identifier, code),
            (_, _, Some(log)) => log.send_code(channel, identifier, code),
            _ => Box::pin(async { Err(CodeSendError::Unsupported("no sender for this channel")) }),
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr; stdout carries only the start-up banner (URLs, the admin key).
    // Colour only for a person at a terminal (and never with NO_COLOR set): a log file or a
    // collector gets plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// The hot wallet, the simulator's controls (dev only), cold storage, and the rails to report
/// as simulated.
#[derive(Default)]
struct OnchainWiring {
    hot: Option<Arc<dyn HotWallet>>,
    simulator: Option<Arc<dyn ChainSimulator>>,
    cold: Option<(Arc<dyn ColdWallet>, flash_bank::ColdPolicy)>,
    simulated: Vec<&'static str>,
}

/// Purpose of the sealed hot wallet seed.
const HOT_SEED_PURPOSE: &str = "onchain-hot-seed";

/// The chain backend the configuration names, and the hot wallet on it: its seed sealed in the
/// store under `DATA_DIR/master.key` (made on first start), its state in the store.
async fn hot_wallet(config: &Config, data_dir: &DataDir, store: &Store) -> anyhow::Result<OnchainWiring> {
    let mut simulator: Option<Arc<dyn ChainSimulator>> = None;
    let chain: Arc<dyn ChainSource> = match config.onchain.backend {
        OnchainBackend::None => {
            tracing::warn!("the on-chain wallet is off ([onchain] backend = \"none\")");
            return Ok(OnchainWiring::default());
        }
        OnchainBackend::Dev => {
            if !config.network.allows_dev_features() {
                anyhow::bail!(
                    "the dev chain simulator does not run on {}: set [onchain] backend = \"none\"",
                    config.network
                );
            }
            let dir = config.data_dir.join("onchain-dev").join(config.network.as_str());
            let fee_rate = config.onchain.dev.fee_rate_sat_per_vb.saturating_mul(1_000);
            let chain = Arc::new(DevChain::open(&dir, config.network, fee_rate).context("opening the dev chain")?);
            simulator = Some(chain.clone());
            chain
        }
        OnchainBackend::Bitcoind => {
            let section = config.onchain.bitcoind.as_ref().context(
                "[onchain] backend = \"bitcoind\" needs an [onchain.bitcoind] section with its rpc_url and credentials",
            )?;
            let auth = match (&section.cookie_file, &section.rpc_user, &section.rpc_password) {
                (Some(cookie), None, None) => BitcoindAuth::CookieFile(cookie.clone()),
                (None, Some(user), Some(password)) => BitcoindAuth::UserPass {
                    user: user.clone(),
                    password: password.clone(),
                },
                _ => anyhow::bail!(
                    "[onchain.bitcoind] needs either cookie_file, or rpc_user and rpc_password (not both)"
                ),
            };
            let bitcoind = BitcoindConfig {
                rpc_url: section.rpc_url.clone(),
                auth,
                network: config.network,
                zmq_rawtx: section.zmq_rawtx.clone(),
                zmq_hashblock: section.zmq_hashblock.clone(),
                timeout_secs: section.timeout_secs,
            };
            Arc::new(BitcoindChain::connect(bitcoind).await.with_context(|| {
                format!(
                    "connecting to bitcoind at {}",
                    flash_onchain::url_without_credentials(&section.rpc_url)
                )
            })?)
        }
        OnchainBackend::Electrum => {
            let section = config
                .onchain
                .electrum
                .as_ref()
                .context("[onchain] backend = \"electrum\" needs an [onchain.electrum] section with its url")?;
            let electrum = ElectrumConfig {
                url: section.url.clone(),
                network: config.network,
                timeout_secs: section.timeout_secs,
                validate_domain: section.validate_domain,
            };
            Arc::new(
                ElectrumChain::connect(electrum)
                    .await
                    .with_context(|| format!("connecting to the Electrum server {}", section.url))?,
            )
        }
    };
    let kek = KeyEncryptionKey::new(data_dir.key("master.key")?);
    let sealed = store
        .sealed_secret(HOT_SEED_PURPOSE, || {
            kek.seal(HOT_SEED_PURPOSE, &flash_onchain::generate_seed())
        })
        .await?;
    let seed = kek.open(HOT_SEED_PURPOSE, &sealed).context(
        "the hot wallet seed in the database does not open with DATA_DIR/master.key (every node needs the same key)",
    )?;
    let descriptors = flash_onchain::hot_descriptors(&seed, config.network)?;
    let signer = Arc::new(flash_onchain::SoftwareSigner::new(&seed, config.network)?);
    // Named by network: a database moved to another network starts a fresh wallet state.
    let name = format!("hot-{}", config.network);
    let wallet = BdkHotWallet::open(&name, &descriptors, chain.clone(), Arc::new(store.clone()), signer)
        .await
        .context("opening the hot wallet")?;
    tracing::info!(source = chain.kind(), "hot wallet ready");
    let cold = match &config.onchain.cold {
        Some(section) => {
            let descriptors = flash_onchain::cold_descriptors(section.threshold, &section.cosigners, config.network)
                .context("[onchain.cold]")?;
            let name = format!("cold-{}", config.network);
            let wallet = BdkColdWallet::open(&name, &descriptors, chain.clone(), Arc::new(store.clone()))
                .await
                .context("opening the cold wallet")?;
            tracing::info!(
                threshold = section.threshold,
                cosigners = section.cosigners.len(),
                "cold storage ready"
            );
            Some((Arc::new(wallet) as Arc<dyn ColdWallet>, section.policy()))
        }
        None => None,
    };
    let simulated = if simulator.is_some() { vec!["onchain"] } else { vec![] };
    Ok(OnchainWiring {
        hot: Some(Arc::new(wallet)),
        simulator,
        cold,
        simulated,
    })
}

/// The node a configuration names, with the simulator's controls (dev only) and the rails to
/// report as simulated.
type LightningWiring = (
    Option<Arc<dyn LightningNode>>,
    Option<Arc<dyn SimulatorControls>>,
    Vec<&'static str>,
);

/// The Lightning node the configuration names (connecting to LND checks its credentials and
/// network).
async fn lightning_node(config: &Config) -> anyhow::Result<LightningWiring> {
    match config.lightning.backend {
        LightningBackend::Dev => {
            if !config.network.allows_dev_features() {
                anyhow::bail!(
                    "the dev Lightning simulator does not run on {}: set [lightning] backend = \"lnd\" \
                     (or \"none\" to run without Lightning)",
                    config.network
                );
            }
            // One simulated node per network: its invoices are only valid there.
            let dir = config.data_dir.join("lightning-dev").join(config.network.as_str());
            let node = Arc::new(
                DevNode::open(&dir, config.network, config.lightning.dev.outcome())
                    .context("starting the dev Lightning simulator")?,
            );
            Ok((Some(node.clone()), Some(node), vec!["lightning"]))
        }
        LightningBackend::Lnd => {
            let lnd = config.lightning.lnd.as_ref().context(
                "[lightning] backend = \"lnd\" needs a [lightning.lnd] section (address, tls_cert, macaroon)",
            )?;
            let node = LndNode::connect(LndConfig {
                address: lnd.address.clone(),
                tls_cert_path: lnd.tls_cert.clone(),
                macaroon_path: lnd.macaroon.clone(),
                network: config.network,
            })
            .await
            .context("connecting to LND")?;
            Ok((Some(Arc::new(node)), None, Vec::new()))
        }
        LightningBackend::Ldk => ldk_node(config).await,
        LightningBackend::None => {
            tracing::warn!("Lightning is off ([lightning] backend = \"none\")");
            Ok((None, None, Vec::new()))
        }
    }
}

/// The embedded LDK node, with its data (seed included) in `DATA_DIR/ldk`.
#[cfg(feature = "ldk")]
async fn ldk_node(config: &Config) -> anyhow::Result<LightningWiring> {
    use flash_lightning::ldk::{LdkChainSource, LdkConfig, LdkNode, Lsps2Config};

    use crate::config::LdkChainSection;

    let ldk = config.lightning.ldk.clone().unwrap_or_default();
    let shared = match ldk.chain.clone() {
        Some(chain) => chain,
        None => config.onchain.ldk_chain()?,
    };
    let chain = match shared {
        LdkChainSection::Bitcoind {
            host,
            port,
            user,
            password,
        } => LdkChainSource::BitcoindRpc {
            host,
            port,
            user,
            password,
        },
        LdkChainSection::Electrum { url } => LdkChainSource::Electrum { url },
        LdkChainSection::Esplora { url } => LdkChainSource::Esplora { url },
    };
    let node = LdkNode::start(LdkConfig {
        data_dir: config.data_dir.join("ldk"),
        network: config.network,
        chain,
        listen: ldk.listen.clone(),
        lsps2: ldk.lsps2.as_ref().map(|l| Lsps2Config {
            node_id: l.node_id.clone(),
            address: l.address.clone(),
            token: l.token.clone(),
        }),
    })
    .await
    .context("starting the embedded LDK node")?;
    Ok((Some(Arc::new(node)), None, Vec::new()))
}

/// Without the `ldk` feature there is no embedded LDK node to start.
#[cfg(not(feature = "ldk"))]
async fn ldk_node(_config: &Config) -> anyhow::Result<LightningWiring> {
    anyhow::bail!(
        "[lightning] backend = \"ldk\": this flashd was built without the embedded LDK node; \
         rebuild with --features ldk (cargo build -p flashd --features ldk)"
    )
}

/// Prints a banner line; a closed stdout (e.g. `flashd | head`) is not a reason to die.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => tracing::error!(error = %e, "cannot listen for SIGTERM"),
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Schema { admin }) = args.command {
        // Needs no configuration, data dir or database.
        let sdl = if admin {
            flash_api::admin_schema_sdl()
        } else {
            flash_api::public_schema_sdl()
        };
        print!("{sdl}");
        return Ok(());
    }
    let command = args.command.clone();
    let config = Config::resolve(args)?;
    init_logging(config.log_format);
    match command {
        None => serve(config).await,
        Some(Command::AdminKey(AdminKeyCommand::Rotate { label })) => rotate_admin_keys(&config, &label).await,
        // Printed above, before any configuration is read.
        Some(Command::Schema { .. }) => Ok(()),
    }
}

/// `flashd admin-key rotate`: every operator key revoked and a new one printed, through the
/// database alone (no data dir lock: a running flashd sees the change at its next request).
async fn rotate_admin_keys(config: &Config, label: &str) -> anyhow::Result<()> {
    let store = Store::open(&config.store, Arc::new(SystemClock))
        .await
        .context("opening the database")?;
    let (key, revoked) = flash_auth::rotate_admin_keys(&store, label).await?;
    tracing::info!(revoked, label, "operator keys rotated");
    say(&format!("Operator (admin) key, shown once — keep it safe: {key}"));
    say(&format!("{revoked} earlier operator key(s) revoked."));
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // First: one process per data dir (a second one would share the node id and the dev rails'
    // state files, and corrupt both).
    let data_dir = DataDir::lock(&config.data_dir)?;

    // Before anything is created: a configuration that cannot run must not half-start.
    let (node, simulator, mut simulated_rails) = lightning_node(&config).await?;
    let store = Store::open(&config.store, Arc::new(SystemClock))
        .await
        .context("opening the database")?;
    store.ensure_system_accounts(Currency::Btc).await?;
    let onchain = hot_wallet(&config, &data_dir, &store).await?;
    let onchain_off = onchain.hot.is_none();
    simulated_rails.extend(onchain.simulated.iter().copied());
    let prices = flash_rates::build(&config.rates, Arc::new(SystemClock)).context("[rates]")?;
    if prices.is_simulated() {
        simulated_rails.push("prices");
        if !config.network.allows_dev_features() {
            tracing::warn!(network = %config.network, "prices are the dev fixed rates: configure [rates] source");
        }
    }
    tracing::info!(source = %prices.name(), "price source ready");
    tracing::info!(database = store.backend(), network = %config.network, "storage ready");

    let sender = CodeRouter {
        smtp: config
            .smtp
            .as_ref()
            .map(SmtpCodeSender::new)
            .transpose()
            .context("SMTP configuration")?,
        log: config.network.allows_dev_features().then(LogCodeSender::new),
    };
    let auth = Auth::new(
        store.clone(),
        Arc::new(sender),
        data_dir.key("auth.key")?,
        config.auth.clone(),
    );
    if !auth.has_admin_key().await? {
        let key = auth.create_admin_key("initial").await?;
        say(&format!("Operator (admin) key, shown once — keep it safe: {key}"));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let address_domain = config::address_domain(&public_url)?;
    let bank = Bank::new(
        store.clone(),
        BankConfig {
            network: config.network,
            limits: config.limits.clone(),
            lightning: config.lightning.payments.clone(),
            lightning_address_domain: Some(address_domain.clone()),
            liquidity: config.lightning.liquidity.clone(),
            onchain: config.onchain.policy.clone(),
            node_name: data_dir.node_name()?,
        },
    );
    let bank = match node {
        Some(node) => bank.with_lightning(node, simulator),
        None => bank,
    }
    .with_lnurl(Arc::new(
        HttpLnurlClient::new(LnurlClientConfig::for_network(config.network)).context("LNURL client")?,
    ));
    let bank = match onchain.hot {
        Some(wallet) => bank.with_onchain(wallet, onchain.simulator),
        None => bank,
    };
    let bank = match onchain.cold {
        Some((wallet, policy)) => bank.with_cold(wallet, policy),
        None => bank,
    };
    let mint = if config.mint.enabled {
        let kek = KeyEncryptionKey::new(data_dir.key("master.key")?);
        let mint = Mint::open(
            bank.clone(),
            store.clone(),
            &kek,
            config.mint.clone(),
            public_url.clone(),
        )
        .await
        .context("opening the mint (its seed is sealed with DATA_DIR/master.key)")?;
        Some(mint)
    } else {
        None
    };
    let cluster = match &config.nats_url {
        Some(url) => Some(
            flash_nostr::Cluster::connect(url)
                .await
                .with_context(|| format!("connecting to NATS at {url}"))?,
        ),
        None => None,
    };
    let (relay, nwc, zaps, admission) = if config.relay.enabled {
        let kek = KeyEncryptionKey::new(data_dir.key("master.key")?);
        let keys = flash_nostr::service_keys(&store, &kek)
            .await
            .context("the relay's service key (sealed with DATA_DIR/master.key)")?;
        let relay = flash_nostr::Relay::start(store.clone(), config.relay.clone(), &public_url, cluster, keys);
        let nwc = flash_nostr::WalletConnect::start(bank.clone(), relay.clone(), Some(address_domain.clone())).await;
        let zaps = flash_nostr::Zaps::start(bank.clone(), relay.clone());
        let admission = flash_nostr::AdmissionFees::new(bank.clone(), relay.clone());
        if let Some(fees) = &admission {
            if let Err(e) = fees.wallet().await {
                tracing::warn!(error = %e, "the relay is paid, but sells no admission until admission_username can receive");
            }
        }
        (Some(relay), Some(nwc), Some(zaps), admission)
    } else {
        (None, None, None, None)
    };
    let info = ServerInfo {
        backend: store.backend(),
        simulated_rails,
        public_url,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mint_worker = mint.clone().map(|mint| {
        let stop = until_stopped();
        tokio::spawn(async move { mint.run_melt_reconciler(stop).await })
    });
    // Webhooks may reach this machine or a private network only where dev features are allowed
    // (not on mainnet): see docs/merchant.md, "Webhooks".
    let merchant = flash_merchant::Merchant::new(bank.clone(), store.clone())
        .with_prices(prices.clone())
        .with_config(flash_merchant::MerchantConfig {
            allow_private_webhooks: config.network.allows_dev_features(),
            ..flash_merchant::MerchantConfig::default()
        });
    let cards = flash_merchant::cards::Cards::open(
        &merchant,
        &KeyEncryptionKey::new(data_dir.key("master.key")?),
        &info.public_url,
    )
    .await
    .context("opening Flash Cards (their issuer key is sealed with DATA_DIR/master.key)")?;
    let workers = [
        tokio::spawn({
            let (merchant, stop) = (merchant.clone(), until_stopped());
            async move { merchant.run_invoice_watcher(stop).await }
        }),
        tokio::spawn({
            let (merchant, stop) = (merchant.clone(), until_stopped());
            async move { merchant.run_webhook_sender(stop).await }
        }),
        tokio::spawn({
            let (merchant, stop) = (merchant.clone(), until_stopped());
            async move { merchant.run_payouts(stop).await }
        }),
        tokio::spawn({
            let (bank, stop) = (bank.clone(), until_stopped());
            async move { bank.run_ln_settlements(stop).await }
        }),
        tokio::spawn({
            let (bank, stop) = (bank.clone(), until_stopped());
            async move { bank.run_ln_reconciler(stop).await }
        }),
        tokio::spawn({
            let (bank, stop) = (bank.clone(), until_stopped());
            async move { bank.run_liquidity_manager(stop).await }
        }),
        tokio::spawn({
            let (bank, stop) = (bank.clone(), until_stopped());
            async move { bank.run_onchain_watcher(stop).await }
        }),
        tokio::spawn({
            let (bank, stop) = (bank.clone(), until_stopped());
            async move { bank.run_payout_batcher(stop).await }
        }),
    ];
    let workers = workers.into_iter().chain(mint_worker);
    let lightning_on = bank.lightning_node().is_some();
    let state = ApiState {
        names: flash_nostr::Names::new(store.clone()),
        merchant,
        cards,
        bank,
        auth,
        metrics: Arc::new(Metrics::default()),
        info: Arc::new(info),
        mint: mint.clone(),
        relay: relay.clone(),
        nwc,
        zaps,
        admission,
        prices,
    };

    if config.network == Network::Mainnet {
        tracing::warn!("running on mainnet: dev features are disabled");
    }
    say(&format!("flashd listening on http://{addr}"));
    say(&format!("  GraphQL:   http://{addr}/graphql"));
    say(&format!("  Admin:     http://{addr}/admin/graphql"));
    say(&format!("  Health:    http://{addr}/healthz"));
    // Only what this configuration serves: a rail that is off is said to be off.
    match (mint.is_some(), lightning_on) {
        (true, true) => say(&format!("  Mint:      http://{addr}/v1/info (Cashu)")),
        (true, false) => say(&format!(
            "  Mint:      http://{addr}/v1/info (Cashu; swaps only: minting and melting need Lightning)"
        )),
        (false, _) => {}
    }
    if let Some(url) = relay.as_ref().and_then(|r| r.url()) {
        say(&format!("  Relay:     {url} (NOSTR)"));
    }
    if lightning_on {
        say(&format!("  Lightning addresses: username@{address_domain}"));
    } else {
        say("  Lightning: off ([lightning] backend = \"none\")");
    }
    if onchain_off {
        say("  On-chain:  off ([onchain] backend = \"none\")");
    }
    let app = flash_api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    // No Nagle: small answers (an EOSE, an OK) leave at once instead of waiting for an ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        })
        .await?;
    for worker in workers {
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "a background worker failed");
        }
    }
    tracing::info!("stopped");
    Ok(())
}
