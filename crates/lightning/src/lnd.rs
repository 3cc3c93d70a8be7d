//! The `lnd` backend: an external LND node over gRPC (TLS with LND's pinned certificate, a
//! macaroon for authorisation), through a tonic client generated from LND's own protos (the
//! subset in `proto/lnd`; the generated code is committed in `lnd/rpc`, so building needs no
//! `protoc`).
//!
//! How each port method maps to LND:
//!
//! | port | LND |
//! |---|---|
//! | `create_invoice` | `Lightning.AddInvoice`, then the returned invoice is decoded and checked here |
//! | `decode_invoice` | decoded here (signature and network checked), no round trip |
//! | `cancel_invoice` | `Invoices.CancelInvoice` |
//! | `estimate_fee` | `Router.EstimateRouteFee`: a probe for an invoice with an amount, the graph for a no-amount one |
//! | `pay` | `Router.SendPaymentV2`, read until final or the caller's timeout; a duplicate falls back to `TrackPaymentV2` |
//! | `track_payment` | `Router.TrackPaymentV2`, first update |
//! | `wait_settled` | `Lightning.SubscribeInvoices` from the settle index (plus `ListInvoices` from index 0), reconnecting with backoff |
//! | `node_info` | `Lightning.GetInfo` |
//! | `channels` | `Lightning.ListChannels` |
//! | `open_channel` | `Lightning.ConnectPeer` (when an address is given), then `Lightning.OpenChannelSync` |
//!
//! Beyond the port, for the liquidity manager: [`LndNode::onchain_balance`] (`Lightning.WalletBalance`).
//!
//! Errors: transport failures are [`LightningError::Unavailable`], LND's `InvalidArgument` is
//! [`LightningError::InvalidInput`], `NotFound` is [`LightningError::NotFound`], a refused
//! macaroon is `Unavailable` saying so. LND reports most failures with gRPC code `Unknown` and a
//! text, so the few texts that matter (already settled, already paid, no route) are recognised by
//! their wording as well as by their code.
//!
//! Money safety in [`pay`](LightningNode::pay): an `Err` means the payment certainly did not
//! start (refused by LND before it began, or the request never left this process). Whenever it
//! may have started, the answer is a [`PaymentState`] (`InFlight` when unknown), to be resolved
//! with `track_payment`; LND itself never pays one hash twice.

// `tonic::Status`, the gRPC client's own error, is large; it is passed on as it comes.
#![allow(clippy::result_large_err)]

mod rpc;
mod tls;

use std::error::Error as _;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::PublicKey;
use bitcoin::Txid;
use flash_core::lightning::{
    ChannelInfo, FeeEstimateRequest, Hash32, Invoice, InvoiceDescription, InvoiceRequest, LightningError,
    LightningNode, NodeInfo, OpenChannelRequest, PayRequest, PaymentHash, PaymentState, SettledInvoice,
};
use flash_core::ports::BoxFuture;
use flash_core::Network;
use tokio::time::{timeout, timeout_at, Instant};
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Response, Status, Streaming};

use self::rpc::invoicesrpc::{invoices_client::InvoicesClient, CancelInvoiceMsg};
use self::rpc::lnrpc::{
    self, channel_point::FundingTxid, invoice::InvoiceState, lightning_client::LightningClient, payment::PaymentStatus,
    ConnectPeerRequest, GetInfoRequest, GetInfoResponse, InvoiceSubscription, LightningAddress, ListChannelsRequest,
    ListInvoiceRequest, PaymentFailureReason, WalletBalanceRequest,
};
use self::rpc::routerrpc::{router_client::RouterClient, RouteFeeRequest, SendPaymentRequest, TrackPaymentRequest};
use self::tls::Macaroon;
use crate::bolt11::{self, amount_to_pay};

/// How long a unary call may take before it counts as unanswered.
const RPC_TIMEOUT_SECS: u64 = 60;
/// How long LND may probe the route in `estimate_fee` (its `timeout` field).
const PROBE_TIMEOUT_SECS: u32 = 60;
/// How long `ConnectPeer` may try to reach the peer (its `timeout` field).
const CONNECT_PEER_TIMEOUT_SECS: u64 = 30;
/// How long `OpenChannelSync` may take (it waits for the funding negotiation with the peer).
const OPEN_CHANNEL_TIMEOUT_SECS: u64 = 120;
/// First wait before re-subscribing to invoices after the stream broke; doubles each time.
const RECONNECT_MIN_MS: u64 = 250;
/// Longest wait between re-subscriptions.
const RECONNECT_MAX_MS: u64 = 30_000;
/// A quiet invoice stream is re-opened this often, so a connection that died silently (no
/// reset, no keep-alive) cannot leave `wait_settled` waiting forever. Nothing is lost: the new
/// subscription replays from the same settle index.
const RESUBSCRIBE_AFTER_SECS: u64 = 300;
/// Invoices per `ListInvoices` page when looking for the first settlement.
const LIST_INVOICES_PAGE: u64 = 500;
/// Longest memo a BOLT11 description holds.
const MEMO_MAX_BYTES: usize = 639;

/// Where and how to reach an LND node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LndConfig {
    /// gRPC address, `https://host:port` (LND's `rpclisten`, usually port 10009).
    pub address: String,
    /// LND's `tls.cert` (PEM). It is pinned: the node must present exactly this certificate.
    pub tls_cert_path: PathBuf,
    /// A macaroon file (e.g. `admin.macaroon`; it needs invoice, offchain, onchain and peer
    /// permissions).
    pub macaroon_path: PathBuf,
    /// The network Flash runs on; LND must run on the same one.
    pub network: Network,
}

/// The gRPC clients of the LND services used, over one channel.
#[derive(Clone)]
struct Client {
    lightning: LightningClient<Service>,
    router: RouterClient<Service>,
    invoices: InvoicesClient<Service>,
}

type Service = InterceptedService<Channel, Macaroon>;

impl Client {
    /// Sets the clients up; the channel connects on the first call.
    fn new(address: &str, cert_pem: &[u8], macaroon: &[u8]) -> Result<Client, LightningError> {
        let settings = |e: String| LightningError::InvalidInput(format!("LND connection settings: {e}"));
        let macaroon = Macaroon::new(macaroon).map_err(settings)?;
        let channel = tls::channel(address, cert_pem).map_err(settings)?;
        let service = InterceptedService::new(channel, macaroon);
        Ok(Client {
            lightning: LightningClient::new(service.clone()),
            router: RouterClient::new(service.clone()),
            invoices: InvoicesClient::new(service),
        })
    }

    fn lightning(&mut self) -> &mut LightningClient<Service> {
        &mut self.lightning
    }

    fn router(&mut self) -> &mut RouterClient<Service> {
        &mut self.router
    }

    fn invoices(&mut self) -> &mut InvoicesClient<Service> {
        &mut self.invoices
    }
}

/// A [`LightningNode`] backed by an LND node over gRPC.
pub struct LndNode {
    client: Client,
    network: Network,
    address: String,
}

impl fmt::Debug for LndNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LndNode")
            .field("address", &self.address)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl LndNode {
    /// Connects to LND, checks that it answers with these credentials (`GetInfo`) and that it
    /// runs on `config.network`; refuses otherwise.
    ///
    /// Installs rustls' `ring` provider as the process default if none is installed yet (the
    /// gRPC client's TLS needs one).
    pub async fn connect(config: LndConfig) -> Result<LndNode, LightningError> {
        if !config.address.starts_with("https://") {
            return Err(LightningError::InvalidInput(format!(
                "LND address {:?} must start with https://",
                config.address
            )));
        }
        let (cert, macaroon) = read_files(&config).await?;
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race to another installer is fine: a provider is installed either way.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = Client::new(&config.address, &cert, &macaroon)?;
        let node = LndNode {
            client,
            network: config.network,
            address: config.address,
        };
        let info = node.get_info().await.map_err(|e| match e {
            LightningError::Unavailable(msg) => LightningError::Unavailable(format!("LND at {}: {msg}", node.address)),
            other => other,
        })?;
        let found = lnd_network(&info)?;
        if found != node.network {
            return Err(LightningError::InvalidInput(format!(
                "LND at {} runs on {found}, but Flash is configured for {}",
                node.address, node.network
            )));
        }
        tracing::info!(
            address = %node.address,
            node = %info.identity_pubkey,
            alias = %info.alias,
            network = %found,
            synced = info.synced_to_chain,
            "Lightning: connected to LND"
        );
        Ok(node)
    }

    /// The confirmed balance of LND's on-chain wallet, in satoshis: LND's
    /// `WalletBalance.confirmed_balance` (outputs with at least one confirmation, default account).
    /// LND may keep part of it locked or in reserve for anchor channels; unconfirmed outputs are
    /// not counted.
    async fn wallet_balance(&self) -> Result<u64, LightningError> {
        let mut client = self.client.clone();
        let balance = within(
            RPC_TIMEOUT_SECS,
            client.lightning().wallet_balance(WalletBalanceRequest::default()),
        )
        .await
        .map_err(|s| map_status("WalletBalance", &s))?;
        non_negative(balance.confirmed_balance, "confirmed on-chain balance")
    }

    async fn get_info(&self) -> Result<GetInfoResponse, LightningError> {
        let mut client = self.client.clone();
        within(RPC_TIMEOUT_SECS, client.lightning().get_info(GetInfoRequest {}))
            .await
            .map_err(|s| map_status("GetInfo", &s))
    }

    async fn add_invoice(&self, req: InvoiceRequest) -> Result<Invoice, LightningError> {
        if req.amount_msat == Some(0) {
            return Err(LightningError::InvalidInput("amount must be positive".into()));
        }
        let (memo, description_hash) = match &req.description {
            InvoiceDescription::Memo(memo) if memo.len() > MEMO_MAX_BYTES => {
                return Err(LightningError::InvalidInput(format!(
                    "memo over {MEMO_MAX_BYTES} bytes"
                )))
            }
            InvoiceDescription::Memo(memo) => (memo.clone(), Vec::new()),
            InvoiceDescription::Hash(hash) => (String::new(), hash.0.to_vec()),
        };
        let request = lnrpc::Invoice {
            memo,
            description_hash,
            value_msat: to_i64(req.amount_msat.unwrap_or(0), "amount_msat")?,
            expiry: to_i64(req.expiry_secs, "expiry_secs")?,
            ..Default::default()
        };
        let mut client = self.client.clone();
        let added = within(RPC_TIMEOUT_SECS, client.lightning().add_invoice(request))
            .await
            .map_err(|s| map_status("AddInvoice", &s))?;
        let invoice = bolt11::decode(&added.payment_request, self.network)
            .map_err(|e| LightningError::Unavailable(format!("LND returned an invoice Flash cannot accept: {e}")))?;
        // Check after reading: the invoice must be the one asked for.
        if added.r_hash != invoice.payment_hash.0 {
            return Err(LightningError::Unavailable(
                "LND returned an invoice whose hash differs from r_hash".into(),
            ));
        }
        if invoice.amount_msat != req.amount_msat || invoice.description != req.description {
            return Err(LightningError::Unavailable(
                "LND returned an invoice with another amount or description than asked".into(),
            ));
        }
        Ok(invoice)
    }

    async fn cancel(&self, hash: PaymentHash) -> Result<(), LightningError> {
        let mut client = self.client.clone();
        let request = CancelInvoiceMsg {
            payment_hash: hash.0.to_vec(),
        };
        match within(RPC_TIMEOUT_SECS, client.invoices().cancel_invoice(request)).await {
            Ok(_) => Ok(()),
            Err(s) if from_lnd(&s) && says(&s, &["already settled"]) => Err(LightningError::AlreadyPaid),
            Err(s)
                if from_lnd(&s)
                    && (s.code() == Code::NotFound
                        || says(&s, &["unable to locate invoice", "no existing invoices", "not found"])) =>
            {
                Err(LightningError::NotFound)
            }
            Err(s) => Err(map_status("CancelInvoice", &s)),
        }
    }

    async fn estimate(&self, req: FeeEstimateRequest) -> Result<u64, LightningError> {
        let invoice = bolt11::decode(&req.payment_request, self.network)?;
        let amount_msat = amount_to_pay(&invoice, req.amount_msat)?;
        let request = if invoice.amount_msat.is_some() {
            // A probe along the invoice's own route hints: what the payment would really meet.
            RouteFeeRequest {
                payment_request: invoice.payment_request.clone(),
                timeout: PROBE_TIMEOUT_SECS,
                ..Default::default()
            }
        } else {
            // LND refuses to probe a no-amount invoice: estimate on the graph to the payee with
            // the amount rounded up to whole satoshis (its unit here).
            let payee = PublicKey::from_str(&invoice.payee)
                .map_err(|e| LightningError::InvalidInvoice(format!("payee key: {e}")))?;
            RouteFeeRequest {
                dest: payee.serialize().to_vec(),
                amt_sat: to_i64(amount_msat.div_ceil(1_000), "amount_msat")?,
                ..Default::default()
            }
        };
        let mut client = self.client.clone();
        let limit = u64::from(PROBE_TIMEOUT_SECS) + RPC_TIMEOUT_SECS;
        let answer = match within(limit, client.router().estimate_route_fee(request)).await {
            Ok(answer) => answer,
            Err(s) if from_lnd(&s) && says(&s, NO_ROUTE_WORDS) => {
                return Err(LightningError::NoRoute(s.message().to_string()))
            }
            Err(s) => return Err(map_status("EstimateRouteFee", &s)),
        };
        let reason = answer.failure_reason();
        if reason != PaymentFailureReason::FailureReasonNone {
            return Err(LightningError::NoRoute(failure_text(reason)));
        }
        u64::try_from(answer.routing_fee_msat).map_err(|_| {
            LightningError::Unavailable(format!(
                "LND estimated a negative routing fee ({} msat)",
                answer.routing_fee_msat
            ))
        })
    }

    async fn send(&self, req: PayRequest) -> Result<PaymentState, LightningError> {
        let invoice = bolt11::decode(&req.payment_request, self.network)?;
        let amount_msat = amount_to_pay(&invoice, req.amount_msat)?;
        let hash = invoice.payment_hash;
        let request = SendPaymentRequest {
            payment_request: invoice.payment_request.clone(),
            // Only for a no-amount invoice; LND refuses an amount next to the invoice's own.
            amt_msat: if invoice.amount_msat.is_none() {
                to_i64(amount_msat, "amount_msat")?
            } else {
                0
            },
            fee_limit_msat: to_i64(req.max_fee_msat, "max_fee_msat")?,
            // LND reads 0 as its default of 60 s; at least 1 s keeps the caller's meaning.
            timeout_seconds: i32::try_from(req.timeout_secs).unwrap_or(i32::MAX).max(1),
            ..Default::default()
        };
        let now = Instant::now();
        let deadline = now
            .checked_add(Duration::from_secs(req.timeout_secs))
            .unwrap_or(now + Duration::from_secs(24 * 60 * 60));
        let mut client = self.client.clone();
        let mut updates = match timeout_at(deadline, client.router().send_payment_v2(request)).await {
            // No answer yet: LND may well be paying.
            Err(_) => return Ok(PaymentState::InFlight),
            Ok(Err(status)) => return self.after_refusal(hash, status).await,
            Ok(Ok(response)) => response.into_inner(),
        };
        loop {
            match timeout_at(deadline, updates.message()).await {
                Err(_) => return Ok(PaymentState::InFlight),
                Ok(Ok(Some(payment))) => match final_state(&payment, hash) {
                    Ok(Some(state)) => return Ok(state),
                    Ok(None) => {}
                    // The payment has started: an unreadable update is no reason for an `Err`.
                    Err(e) => {
                        tracing::warn!(payment_hash = %hash, error = %e, "unreadable LND payment update");
                        return Ok(self.state_or_in_flight(hash).await);
                    }
                },
                Ok(Ok(None)) => return Ok(self.state_or_in_flight(hash).await),
                Ok(Err(status)) if is_duplicate(&status) => return Ok(self.state_or_in_flight(hash).await),
                Ok(Err(status)) => {
                    tracing::warn!(payment_hash = %hash, error = %status.message(), "LND payment stream broke");
                    return Ok(self.state_or_in_flight(hash).await);
                }
            }
        }
    }

    /// `SendPaymentV2` was answered with an error before any update.
    async fn after_refusal(&self, hash: PaymentHash, status: Status) -> Result<PaymentState, LightningError> {
        if is_duplicate(&status) {
            // Already paid, or being paid: report that payment, never start another.
            tracing::info!(payment_hash = %hash, "LND knows this payment already; tracking it");
            return Ok(self.state_or_in_flight(hash).await);
        }
        if !from_lnd(&status) {
            if never_sent(&status) {
                return Err(map_status("SendPaymentV2", &status));
            }
            // The connection failed after the request may have left. LND may record the
            // payment only after this track arrives, so "not found" proves nothing yet: in
            // flight, and reconciliation (after its grace period) decides.
            return Ok(self.state_or_in_flight(hash).await);
        }
        match status.code() {
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                Err(map_status("SendPaymentV2", &status))
            }
            Code::Unauthenticated | Code::PermissionDenied | Code::Unimplemented => {
                Err(map_status("SendPaymentV2", &status))
            }
            _ if refused_credentials(&status) => Err(map_status("SendPaymentV2", &status)),
            // Anything else may come after LND recorded the payment (a failed subscription,
            // a shutdown): only its record can say it never started.
            _ => match self.track(hash).await {
                Err(LightningError::NotFound) => Ok(PaymentState::Failed {
                    reason: format!("LND refused the payment: {}", status.message()),
                }),
                Ok(state) => Ok(state),
                Err(_) => Ok(PaymentState::InFlight),
            },
        }
    }

    /// The payment's state from `TrackPaymentV2`, or `InFlight` when that cannot be known now.
    async fn state_or_in_flight(&self, hash: PaymentHash) -> PaymentState {
        match self.track(hash).await {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(payment_hash = %hash, error = %e, "cannot track payment; reporting it in flight");
                PaymentState::InFlight
            }
        }
    }

    async fn track(&self, hash: PaymentHash) -> Result<PaymentState, LightningError> {
        let request = TrackPaymentRequest {
            payment_hash: hash.0.to_vec(),
            no_inflight_updates: false,
        };
        let mut client = self.client.clone();
        let first = timeout(Duration::from_secs(RPC_TIMEOUT_SECS), async {
            let mut updates = client.router().track_payment_v2(request).await?.into_inner();
            updates.message().await
        })
        .await
        .unwrap_or_else(|_| Err(no_answer(RPC_TIMEOUT_SECS)));
        match first {
            Ok(Some(payment)) => Ok(final_state(&payment, hash)?.unwrap_or(PaymentState::InFlight)),
            Ok(None) => Err(LightningError::Unavailable(
                "TrackPaymentV2: LND closed the stream without an update".into(),
            )),
            Err(s)
                if from_lnd(&s) && (s.code() == Code::NotFound || says(&s, &["isn't initiated", "not initiated"])) =>
            {
                Err(LightningError::NotFound)
            }
            Err(s) => Err(map_status("TrackPaymentV2", &s)),
        }
    }

    async fn wait_for_settlement(&self, after_index: u64) -> Result<SettledInvoice, LightningError> {
        let mut backoff = Duration::from_millis(RECONNECT_MIN_MS);
        loop {
            match self.settlement_attempt(after_index).await {
                Ok(Some(settled)) => {
                    // The one property callers rely on: strictly after what they saw.
                    if settled.settle_index <= after_index {
                        return Err(LightningError::Unavailable(format!(
                            "LND reported settle index {} after {after_index}",
                            settled.settle_index
                        )));
                    }
                    return Ok(settled);
                }
                // Quiet for a while: re-open the stream (no backoff, nothing went wrong).
                Ok(None) => backoff = Duration::from_millis(RECONNECT_MIN_MS),
                Err(broken) => {
                    if let Some(fatal) = broken.fatal {
                        return Err(fatal);
                    }
                    if broken.received {
                        backoff = Duration::from_millis(RECONNECT_MIN_MS);
                    }
                    tracing::warn!(
                        after_index,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        reason = %broken.reason,
                        "LND invoice stream broke; re-subscribing from the same settle index"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(RECONNECT_MAX_MS));
                }
            }
        }
    }

    /// One subscription: the first settlement after `after_index`, `None` when the stream stayed
    /// quiet for [`RESUBSCRIBE_AFTER_SECS`], or why it broke.
    async fn settlement_attempt(&self, after_index: u64) -> Result<Option<SettledInvoice>, Broken> {
        // LND's settle_index 0 means "no replay", not "from the start": from index 0, look
        // through the invoices first, so none settled before this call is missed.
        if after_index == 0 {
            if let Some(settled) = self.first_settled_by_listing().await? {
                return Ok(Some(settled));
            }
        }
        let subscribed = timeout(
            Duration::from_secs(RESUBSCRIBE_AFTER_SECS),
            self.first_settled_on_stream(after_index),
        );
        let Ok(settled) = subscribed.await else {
            return Ok(None);
        };
        let settled = settled?;
        if after_index == 0 && settled.settle_index != 1 {
            // Something settled between the listing and the subscription: the first one is in
            // the listing now.
            return Ok(Some(self.first_settled_by_listing().await?.unwrap_or(settled)));
        }
        Ok(Some(settled))
    }

    /// `SubscribeInvoices` from `after_index`: its first settlement after that index.
    async fn first_settled_on_stream(&self, after_index: u64) -> Result<SettledInvoice, Broken> {
        let request = InvoiceSubscription {
            add_index: 0,
            settle_index: after_index,
        };
        let mut client = self.client.clone();
        // LND may send the response headers only with the first event: this too can wait.
        let mut updates: Streaming<lnrpc::Invoice> = client
            .lightning()
            .subscribe_invoices(request)
            .await
            .map_err(|s| Broken::from_status("SubscribeInvoices", &s, false))?
            .into_inner();
        let mut received = false;
        loop {
            match updates.message().await {
                Ok(Some(invoice)) => {
                    received = true;
                    if invoice.state() == InvoiceState::Settled && invoice.settle_index > after_index {
                        return settled_invoice(&invoice).map_err(Broken::fatal);
                    }
                }
                Ok(None) => {
                    return Err(Broken {
                        reason: "LND closed the invoice stream".into(),
                        received,
                        fatal: None,
                    })
                }
                Err(s) => return Err(Broken::from_status("SubscribeInvoices", &s, received)),
            }
        }
    }

    /// The settled invoice with the lowest settle index, read with `ListInvoices` page by page.
    async fn first_settled_by_listing(&self) -> Result<Option<SettledInvoice>, Broken> {
        let mut client = self.client.clone();
        let mut offset = 0;
        let mut first: Option<SettledInvoice> = None;
        loop {
            let request = ListInvoiceRequest {
                pending_only: false,
                index_offset: offset,
                num_max_invoices: LIST_INVOICES_PAGE,
                reversed: false,
                ..Default::default()
            };
            let page = within(RPC_TIMEOUT_SECS, client.lightning().list_invoices(request))
                .await
                .map_err(|s| Broken::from_status("ListInvoices", &s, false))?;
            for invoice in &page.invoices {
                if invoice.state() != InvoiceState::Settled || invoice.settle_index == 0 {
                    continue;
                }
                let settled = settled_invoice(invoice).map_err(Broken::fatal)?;
                if first.as_ref().is_none_or(|f| settled.settle_index < f.settle_index) {
                    first = Some(settled);
                }
            }
            if first.as_ref().is_some_and(|f| f.settle_index == 1) {
                break;
            }
            if page.invoices.is_empty() || page.last_index_offset <= offset {
                break;
            }
            offset = page.last_index_offset;
        }
        Ok(first)
    }

    async fn info(&self) -> Result<NodeInfo, LightningError> {
        let info = self.get_info().await?;
        Ok(NodeInfo {
            network: lnd_network(&info)?,
            pubkey: info.identity_pubkey,
            alias: info.alias,
            block_height: info.block_height,
            synced: info.synced_to_chain,
            simulated: false,
        })
    }

    async fn list_channels(&self) -> Result<Vec<ChannelInfo>, LightningError> {
        let mut client = self.client.clone();
        let answer = within(
            RPC_TIMEOUT_SECS,
            client.lightning().list_channels(ListChannelsRequest::default()),
        )
        .await
        .map_err(|s| map_status("ListChannels", &s))?;
        answer
            .channels
            .into_iter()
            .map(|c| {
                Ok(ChannelInfo {
                    capacity_sat: non_negative(c.capacity, "channel capacity")?,
                    local_sat: non_negative(c.local_balance, "local balance")?,
                    remote_sat: non_negative(c.remote_balance, "remote balance")?,
                    id: c.channel_point,
                    peer: c.remote_pubkey,
                    active: c.active,
                })
            })
            .collect()
    }

    async fn open(&self, req: OpenChannelRequest) -> Result<String, LightningError> {
        let peer = PublicKey::from_str(&req.peer)
            .map_err(|e| LightningError::InvalidInput(format!("peer must be a node public key in hex: {e}")))?;
        if req.amount_sat == 0 {
            return Err(LightningError::InvalidInput("channel amount must be positive".into()));
        }
        let local_funding_amount = to_i64(req.amount_sat, "amount_sat")?;
        let mut client = self.client.clone();
        if let Some(host) = req.address {
            let request = ConnectPeerRequest {
                addr: Some(LightningAddress {
                    pubkey: peer.to_string(),
                    host,
                }),
                perm: false,
                timeout: CONNECT_PEER_TIMEOUT_SECS,
            };
            match within(RPC_TIMEOUT_SECS, client.lightning().connect_peer(request)).await {
                Ok(_) => {}
                Err(s) if from_lnd(&s) && says(&s, &["already connected"]) => {}
                Err(s) => return Err(map_status("ConnectPeer", &s)),
            }
        }
        let request = lnrpc::OpenChannelRequest {
            node_pubkey: peer.serialize().to_vec(),
            local_funding_amount,
            ..Default::default()
        };
        let point = within(OPEN_CHANNEL_TIMEOUT_SECS, client.lightning().open_channel_sync(request))
            .await
            .map_err(|s| map_status("OpenChannelSync", &s))?;
        let txid = match point.funding_txid {
            // Bytes are in the transaction's internal order; `Txid` displays them reversed.
            Some(FundingTxid::FundingTxidBytes(bytes)) => <[u8; 32]>::try_from(bytes.as_slice())
                .map(Txid::from_byte_array)
                .map_err(|_| LightningError::Unavailable("LND returned a funding txid of the wrong length".into()))?,
            Some(FundingTxid::FundingTxidStr(text)) => Txid::from_str(&text)
                .map_err(|e| LightningError::Unavailable(format!("LND returned an unreadable funding txid: {e}")))?,
            None => return Err(LightningError::Unavailable("LND returned no funding txid".into())),
        };
        Ok(format!("{txid}:{}", point.output_index))
    }
}

impl LightningNode for LndNode {
    fn create_invoice(&self, req: InvoiceRequest) -> BoxFuture<'_, Result<Invoice, LightningError>> {
        Box::pin(self.add_invoice(req))
    }

    /// Decoded here rather than with LND's `DecodePayReq`: the same checks (signature, network)
    /// as every other backend, no round trip, and nothing for a remote node to get wrong.
    fn decode_invoice<'a>(&'a self, payment_request: &'a str) -> BoxFuture<'a, Result<Invoice, LightningError>> {
        Box::pin(async move { bolt11::decode(payment_request, self.network) })
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
        Box::pin(self.track(hash))
    }

    fn wait_settled(&self, after_index: u64) -> BoxFuture<'_, Result<SettledInvoice, LightningError>> {
        Box::pin(self.wait_for_settlement(after_index))
    }

    fn node_info(&self) -> BoxFuture<'_, Result<NodeInfo, LightningError>> {
        Box::pin(self.info())
    }

    fn channels(&self) -> BoxFuture<'_, Result<Vec<ChannelInfo>, LightningError>> {
        Box::pin(self.list_channels())
    }

    fn onchain_balance(&self) -> BoxFuture<'_, Result<u64, LightningError>> {
        Box::pin(self.wallet_balance())
    }

    fn open_channel(&self, req: OpenChannelRequest) -> BoxFuture<'_, Result<String, LightningError>> {
        Box::pin(self.open(req))
    }
}

/// Why one invoice subscription ended without a settlement.
struct Broken {
    reason: String,
    /// Whether the stream delivered anything (then the connection worked: reset the backoff).
    received: bool,
    /// Set when retrying cannot help (refused credentials, a call LND does not offer...).
    fatal: Option<LightningError>,
}

impl Broken {
    fn from_status(call: &'static str, status: &Status, received: bool) -> Broken {
        let permanent = from_lnd(status)
            && (matches!(
                status.code(),
                Code::InvalidArgument
                    | Code::Unauthenticated
                    | Code::PermissionDenied
                    | Code::Unimplemented
                    | Code::FailedPrecondition
                    | Code::OutOfRange
            ) || refused_credentials(status));
        Broken {
            reason: format!("{call}: {}", status.message()),
            received,
            fatal: permanent.then(|| map_status(call, status)),
        }
    }

    fn fatal(error: LightningError) -> Broken {
        Broken {
            reason: error.to_string(),
            received: true,
            fatal: Some(error),
        }
    }
}

impl From<Broken> for LightningError {
    fn from(broken: Broken) -> LightningError {
        broken.fatal.unwrap_or(LightningError::Unavailable(broken.reason))
    }
}

/// Texts LND uses when there is no route.
const NO_ROUTE_WORDS: &[&str] = &["unable to find a path", "no route", "insufficient"];

/// Reads the certificate (PEM) and the macaroon, with clear errors.
async fn read_files(config: &LndConfig) -> Result<(Vec<u8>, Vec<u8>), LightningError> {
    let cert = tokio::fs::read(&config.tls_cert_path).await.map_err(|e| {
        LightningError::InvalidInput(format!(
            "cannot read LND's TLS certificate {}: {e}",
            config.tls_cert_path.display()
        ))
    })?;
    if !cert.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(LightningError::InvalidInput(format!(
            "{} is not a PEM certificate (expected LND's tls.cert)",
            config.tls_cert_path.display()
        )));
    }
    let macaroon = tokio::fs::read(&config.macaroon_path).await.map_err(|e| {
        LightningError::InvalidInput(format!(
            "cannot read the LND macaroon {}: {e}",
            config.macaroon_path.display()
        ))
    })?;
    if macaroon.is_empty() {
        return Err(LightningError::InvalidInput(format!(
            "the LND macaroon {} is empty",
            config.macaroon_path.display()
        )));
    }
    Ok((cert, macaroon))
}

/// Awaits a unary call for at most `secs`; no answer by then is `DeadlineExceeded`.
async fn within<T>(secs: u64, call: impl Future<Output = Result<Response<T>, Status>>) -> Result<T, Status> {
    match timeout(Duration::from_secs(secs), call).await {
        Ok(answer) => answer.map(Response::into_inner),
        Err(_) => Err(no_answer(secs)),
    }
}

fn no_answer(secs: u64) -> Status {
    Status::deadline_exceeded(format!("no answer from LND within {secs} s"))
}

/// Whether the status came from LND over the wire (not from the transport here: those carry
/// the local error as their source).
fn from_lnd(status: &Status) -> bool {
    status.source().is_none()
}

/// Whether a transport error happened before the request could leave (no connection: the
/// channel reports a failed connection attempt as tonic's `ConnectError`).
fn never_sent(status: &Status) -> bool {
    let mut next = status.source();
    while let Some(err) = next {
        if err.is::<tonic::ConnectError>() {
            return true;
        }
        next = err.source();
    }
    false
}

/// A transport error with its causes ("TLS handshake: ...: Server certificates do not match
/// ours"), each said once.
fn transport_detail(status: &Status) -> String {
    let mut parts = vec![status.message().to_string()];
    let mut next = status.source();
    while let Some(err) = next {
        let text = err.to_string();
        // tonic's own wrapper only says "transport error".
        if !err.is::<tonic::transport::Error>() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

fn says(status: &Status, words: &[&str]) -> bool {
    let text = status.message().to_ascii_lowercase();
    words.iter().any(|w| text.contains(w))
}

fn refused_credentials(status: &Status) -> bool {
    matches!(status.code(), Code::Unauthenticated | Code::PermissionDenied)
        || (from_lnd(status) && says(status, &["macaroon", "verification failed", "permission denied"]))
}

/// LND's answer to paying a hash it already paid or is paying.
fn is_duplicate(status: &Status) -> bool {
    from_lnd(status)
        && (status.code() == Code::AlreadyExists
            || says(
                status,
                &["already paid", "in transition", "already exists", "already in flight"],
            ))
}

/// Maps a failed call to the port's error.
fn map_status(call: &str, status: &Status) -> LightningError {
    let message = status.message();
    if !from_lnd(status) {
        return LightningError::Unavailable(format!("{call}: cannot reach LND: {}", transport_detail(status)));
    }
    if refused_credentials(status) {
        return LightningError::Unavailable(format!("{call}: LND refused the macaroon: {message}"));
    }
    match status.code() {
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
            LightningError::InvalidInput(format!("{call}: {message}"))
        }
        Code::NotFound => LightningError::NotFound,
        Code::Unimplemented => {
            LightningError::Unsupported("this LND does not offer the call (is the sub-server compiled in and enabled?)")
        }
        Code::Unavailable => LightningError::Unavailable(format!("{call}: LND unavailable: {message}")),
        Code::DeadlineExceeded => LightningError::Unavailable(format!("{call}: {message}")),
        code => LightningError::Unavailable(format!("{call}: LND answered {code:?}: {message}")),
    }
}

/// The network LND reports in `GetInfo`.
fn lnd_network(info: &GetInfoResponse) -> Result<Network, LightningError> {
    // LND runs on bitcoin only; its (deprecated) `chain` field says so and is not read.
    let chain = info
        .chains
        .first()
        .ok_or_else(|| LightningError::Unavailable("LND reports no chain".into()))?;
    match chain.network.as_str() {
        "mainnet" => Ok(Network::Mainnet),
        "testnet" | "testnet3" | "testnet4" => Ok(Network::Testnet),
        "signet" => Ok(Network::Signet),
        // BOLT11 decoding reads simnet invoices as regtest too.
        "regtest" | "simnet" => Ok(Network::Regtest),
        other => Err(LightningError::Unavailable(format!(
            "LND runs on a network Flash does not know: {other:?}"
        ))),
    }
}

/// The port's state for a payment update, `None` while it is not final.
fn final_state(payment: &lnrpc::Payment, hash: PaymentHash) -> Result<Option<PaymentState>, LightningError> {
    if !payment.payment_hash.is_empty() && payment.payment_hash != hash.to_string() {
        return Err(LightningError::Unavailable(format!(
            "LND reported payment {} while asked about {hash}",
            payment.payment_hash
        )));
    }
    Ok(match payment.status() {
        PaymentStatus::Succeeded => {
            let preimage = match Hash32::from_str(&payment.payment_preimage) {
                Ok(p) if p.0 != [0; 32] => Some(p),
                _ => None,
            };
            let fee_msat = u64::try_from(payment.fee_msat).unwrap_or_else(|_| {
                tracing::error!(payment_hash = %hash, fee_msat = payment.fee_msat, "LND reported a negative fee");
                0
            });
            Some(PaymentState::Succeeded { preimage, fee_msat })
        }
        PaymentStatus::Failed => Some(PaymentState::Failed {
            reason: failure_text(payment.failure_reason()),
        }),
        PaymentStatus::InFlight | PaymentStatus::Initiated | PaymentStatus::Unknown => None,
    })
}

fn failure_text(reason: PaymentFailureReason) -> String {
    match reason {
        PaymentFailureReason::FailureReasonNone => "failed (no reason given)".into(),
        PaymentFailureReason::FailureReasonTimeout => "timeout: no route found before the payment timeout".into(),
        PaymentFailureReason::FailureReasonNoRoute => "no route (within the fee limit)".into(),
        PaymentFailureReason::FailureReasonError => "unrecoverable error on the route".into(),
        PaymentFailureReason::FailureReasonIncorrectPaymentDetails => {
            "the payee refused it (unknown hash, wrong amount or expired)".into()
        }
        PaymentFailureReason::FailureReasonInsufficientBalance => "insufficient local balance".into(),
        PaymentFailureReason::FailureReasonCanceled => "canceled".into(),
    }
}

fn settled_invoice(invoice: &lnrpc::Invoice) -> Result<SettledInvoice, LightningError> {
    let hash = <[u8; 32]>::try_from(invoice.r_hash.as_slice())
        .map_err(|_| LightningError::Unavailable("LND reported a settled invoice without a 32-byte hash".into()))?;
    Ok(SettledInvoice {
        payment_hash: Hash32(hash),
        amount_received_msat: non_negative(invoice.amt_paid_msat, "amount paid")?,
        settle_index: invoice.settle_index,
    })
}

fn to_i64(value: u64, what: &str) -> Result<i64, LightningError> {
    i64::try_from(value).map_err(|_| LightningError::InvalidInput(format!("{what} too large")))
}

fn non_negative(value: i64, what: &str) -> Result<u64, LightningError> {
    u64::try_from(value).map_err(|_| LightningError::Unavailable(format!("LND reported a negative {what} ({value})")))
}
