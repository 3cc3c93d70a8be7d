//! The `lnd` adapter against an in-process fake LND: a tonic gRPC server with TLS (a self-signed
//! certificate made here the way LND makes its own) and macaroon checking, whose service stubs are
//! the ones generated from LND's own protos beside the adapter's client (`src/lnd/rpc`, from
//! `proto/lnd`), included here. The fake keeps LND's semantics for the used subset
//! (invoices with add and settle indexes, payments that cannot be started twice, the settle-index
//! replay of `SubscribeInvoices`), records every request, answers from a per-test script, and
//! can break invoice streams. A TCP relay in front of it can cut the connection, for transport
//! failures.

// `tonic::Status`, the error type of every gRPC handler and interceptor, is large.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bitcoin::hashes::{sha256, Hash as _};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use flash_core::lightning::{
    FeeEstimateRequest, Hash32, InvoiceDescription, InvoiceRequest, LightningError, LightningNode, OpenChannelRequest,
    PayRequest, PaymentState,
};
use flash_core::Network;
use flash_lightning::{LndConfig, LndNode};
use lightning_invoice::{Bolt11InvoiceDescription, Currency, Description, InvoiceBuilder, PaymentSecret, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::codegen::BoxStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};

/// LND's messages and services, the same generated code the adapter uses; its server stubs are
/// compiled here (under `cfg(test)`) for the fake.
#[path = "../src/lnd/rpc/mod.rs"]
mod rpc;

use rpc::{invoicesrpc, lnrpc, routerrpc};

use lnrpc::invoice::InvoiceState;
use lnrpc::payment::PaymentStatus;
use lnrpc::PaymentFailureReason;

// ---------------------------------------------------------------------------------------------
// The fake LND
// ---------------------------------------------------------------------------------------------

/// How `SendPaymentV2` ends a new payment.
#[derive(Clone, Copy, Debug)]
enum PayScript {
    /// Succeeds with this routing fee.
    Succeed { fee_msat: i64 },
    /// Fails for this reason.
    Fail(PaymentFailureReason),
    /// Stays in flight (one IN_FLIGHT update, then silence).
    Hang,
}

/// How `EstimateRouteFee` answers.
#[derive(Clone, Debug)]
enum EstimateScript {
    Fee(i64),
    Reason(PaymentFailureReason),
    Error(Code, &'static str),
}

/// The per-test script: how the fake answers.
struct Script {
    network: &'static str,
    pay: PayScript,
    estimate: EstimateScript,
    channels: Vec<lnrpc::Channel>,
    wallet: lnrpc::WalletBalanceResponse,
    wallet_balance_error: Option<(Code, &'static str)>,
    already_connected: bool,
    list_channels_error: Option<(Code, &'static str)>,
    /// Number of messages each new invoice subscription delivers before it breaks, in order of
    /// subscription; once empty, subscriptions do not break.
    stream_breaks: VecDeque<usize>,
    /// Misbehave: every subscription first sends the earliest settled invoice, whatever index
    /// was asked (the adapter must never return an index at or below the one it was given).
    replay_stale_first: bool,
    /// Misbehave: AddInvoice answers another hash than the invoice's.
    corrupt_r_hash: bool,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            network: "regtest",
            pay: PayScript::Succeed { fee_msat: 1_234 },
            estimate: EstimateScript::Fee(2_000),
            channels: Vec::new(),
            wallet: lnrpc::WalletBalanceResponse::default(),
            wallet_balance_error: None,
            already_connected: false,
            list_channels_error: None,
            stream_breaks: VecDeque::new(),
            replay_stale_first: false,
            corrupt_r_hash: false,
        }
    }
}

/// Every request the fake received, by call.
#[derive(Default)]
struct Seen {
    get_info: usize,
    wallet_balance: Vec<lnrpc::WalletBalanceRequest>,
    add_invoice: Vec<lnrpc::Invoice>,
    list_invoices: Vec<lnrpc::ListInvoiceRequest>,
    subscribe: Vec<lnrpc::InvoiceSubscription>,
    cancel: Vec<invoicesrpc::CancelInvoiceMsg>,
    estimate: Vec<routerrpc::RouteFeeRequest>,
    send_payment: Vec<routerrpc::SendPaymentRequest>,
    track: Vec<routerrpc::TrackPaymentRequest>,
    connect_peer: Vec<lnrpc::ConnectPeerRequest>,
    open_channel: Vec<lnrpc::OpenChannelRequest>,
}

#[derive(Default)]
struct Ledger {
    invoices: Vec<lnrpc::Invoice>,
    next_settle_index: u64,
    /// Outgoing payments by hash (hex), as LND's control tower keeps them.
    payments: HashMap<String, lnrpc::Payment>,
    /// Payments actually started (a duplicate must not add one).
    started: usize,
}

struct Fake {
    key: SecretKey,
    script: Mutex<Script>,
    seen: Mutex<Seen>,
    ledger: Mutex<Ledger>,
    invoice_events: broadcast::Sender<lnrpc::Invoice>,
    payment_events: broadcast::Sender<lnrpc::Payment>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("fake LND lock")
}

fn random32() -> [u8; 32] {
    let mut out = [0u8; 32];
    bitcoin::secp256k1::rand::Rng::fill(&mut bitcoin::secp256k1::rand::thread_rng(), &mut out[..]);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A signed BOLT11 invoice on regtest (or `currency`).
fn sign_invoice(
    key: &SecretKey,
    currency: Currency,
    payment_hash: [u8; 32],
    amount_msat: Option<u64>,
    description: Bolt11InvoiceDescription,
    expiry_secs: u64,
) -> String {
    let builder = InvoiceBuilder::new(currency)
        .invoice_description(description)
        .payment_hash(sha256::Hash::from_byte_array(payment_hash))
        .payment_secret(PaymentSecret(random32()))
        .current_timestamp()
        .min_final_cltv_expiry_delta(18)
        .expiry_time(Duration::from_secs(expiry_secs));
    let builder = match amount_msat {
        Some(msat) => builder.amount_milli_satoshis(msat),
        None => builder,
    };
    let secp = Secp256k1::signing_only();
    builder
        .build_signed(|hash| secp.sign_ecdsa_recoverable(hash, key))
        .expect("sign invoice")
        .to_string()
}

fn memo_description(memo: &str) -> Bolt11InvoiceDescription {
    Bolt11InvoiceDescription::Direct(Description::new(memo.to_string()).expect("memo"))
}

impl Fake {
    fn new(script: Script) -> Arc<Fake> {
        Arc::new(Fake {
            key: SecretKey::from_slice(&random32()).expect("key"),
            script: Mutex::new(script),
            seen: Mutex::new(Seen::default()),
            ledger: Mutex::new(Ledger::default()),
            invoice_events: broadcast::channel(256).0,
            payment_events: broadcast::channel(256).0,
        })
    }

    fn pubkey(&self) -> PublicKey {
        PublicKey::from_secret_key(&Secp256k1::signing_only(), &self.key)
    }

    /// Settles one of the fake's invoices as paid from outside; returns its settle index.
    fn settle(&self, hash: Hash32, amount_msat: i64) -> u64 {
        let mut ledger = lock(&self.ledger);
        ledger.next_settle_index += 1;
        let index = ledger.next_settle_index;
        let invoice = ledger
            .invoices
            .iter_mut()
            .find(|i| i.r_hash == hash.0)
            .expect("settle: unknown invoice");
        invoice.set_state(InvoiceState::Settled);
        invoice.settle_index = index;
        invoice.amt_paid_msat = amount_msat;
        let event = invoice.clone();
        // Sent under the lock: a subscription takes its backlog under the same lock.
        let _ = self.invoice_events.send(event);
        index
    }

    fn invoice_state(&self, hash: Hash32) -> InvoiceState {
        lock(&self.ledger)
            .invoices
            .iter()
            .find(|i| i.r_hash == hash.0)
            .map(|i| i.state())
            .expect("known invoice")
    }

    /// Ends an in-flight payment (the network answered late).
    fn resolve_payment(&self, hash: Hash32, status: PaymentStatus, fee_msat: i64) {
        let mut ledger = lock(&self.ledger);
        let payment = ledger.payments.get_mut(&hash.to_string()).expect("known payment");
        payment.set_status(status);
        payment.fee_msat = fee_msat;
        if status == PaymentStatus::Succeeded {
            payment.payment_preimage = hex(&[9; 32]);
        }
        let _ = self.payment_events.send(payment.clone());
    }

    fn started_payments(&self) -> usize {
        lock(&self.ledger).started
    }
}

/// The macaroon check LND does on every call (with LND's wording and code when it fails).
fn macaroon_check(expected: String) -> impl tonic::service::Interceptor + Clone {
    move |req: Request<()>| -> Result<Request<()>, Status> {
        match req.metadata().get("macaroon").map(|v| v.to_str().map(str::to_owned)) {
            Some(Ok(given)) if given == expected => Ok(req),
            Some(_) => Err(Status::unknown(
                "verification failed: signature mismatch after caveat verification",
            )),
            None => Err(Status::unknown("expected 1 macaroon, got 0")),
        }
    }
}

#[derive(Clone)]
struct LightningSvc(Arc<Fake>);
#[derive(Clone)]
struct RouterSvc(Arc<Fake>);
#[derive(Clone)]
struct InvoicesSvc(Arc<Fake>);

#[tonic::async_trait]
impl lnrpc::lightning_server::Lightning for LightningSvc {
    async fn get_info(&self, _req: Request<lnrpc::GetInfoRequest>) -> Result<Response<lnrpc::GetInfoResponse>, Status> {
        lock(&self.0.seen).get_info += 1;
        let network = lock(&self.0.script).network;
        #[allow(deprecated)]
        let chain = lnrpc::Chain {
            chain: "bitcoin".into(),
            network: network.into(),
        };
        Ok(Response::new(lnrpc::GetInfoResponse {
            identity_pubkey: self.0.pubkey().to_string(),
            alias: "fake-lnd".into(),
            block_height: 4_321,
            synced_to_chain: true,
            chains: vec![chain],
            ..Default::default()
        }))
    }

    async fn add_invoice(&self, req: Request<lnrpc::Invoice>) -> Result<Response<lnrpc::AddInvoiceResponse>, Status> {
        let req = req.into_inner();
        lock(&self.0.seen).add_invoice.push(req.clone());
        let description = if req.description_hash.is_empty() {
            memo_description(&req.memo)
        } else {
            let hash = <[u8; 32]>::try_from(req.description_hash.as_slice())
                .map_err(|_| Status::unknown("description hash must be exactly 32 bytes"))?;
            Bolt11InvoiceDescription::Hash(Sha256(sha256::Hash::from_byte_array(hash)))
        };
        let preimage = random32();
        let r_hash = sha256::Hash::hash(&preimage).to_byte_array();
        let amount = u64::try_from(req.value_msat).map_err(|_| Status::invalid_argument("negative amount"))?;
        let expiry = if req.expiry == 0 { 86_400 } else { req.expiry };
        let payment_request = sign_invoice(
            &self.0.key,
            Currency::Regtest,
            r_hash,
            (amount > 0).then_some(amount),
            description,
            u64::try_from(expiry).map_err(|_| Status::invalid_argument("negative expiry"))?,
        );
        let mut ledger = lock(&self.0.ledger);
        let add_index = ledger.invoices.len() as u64 + 1;
        let invoice = lnrpc::Invoice {
            memo: req.memo,
            r_preimage: preimage.to_vec(),
            r_hash: r_hash.to_vec(),
            value_msat: req.value_msat,
            description_hash: req.description_hash,
            expiry,
            payment_request: payment_request.clone(),
            add_index,
            state: InvoiceState::Open as i32,
            ..Default::default()
        };
        ledger.invoices.push(invoice.clone());
        let _ = self.0.invoice_events.send(invoice);
        let answered_hash = if lock(&self.0.script).corrupt_r_hash {
            vec![0; 32]
        } else {
            r_hash.to_vec()
        };
        Ok(Response::new(lnrpc::AddInvoiceResponse {
            r_hash: answered_hash,
            payment_request,
            add_index,
            payment_addr: Vec::new(),
        }))
    }

    async fn list_invoices(
        &self,
        req: Request<lnrpc::ListInvoiceRequest>,
    ) -> Result<Response<lnrpc::ListInvoiceResponse>, Status> {
        let req = req.into_inner();
        lock(&self.0.seen).list_invoices.push(req);
        let ledger = lock(&self.0.ledger);
        let invoices: Vec<lnrpc::Invoice> = ledger
            .invoices
            .iter()
            .filter(|i| i.add_index > req.index_offset)
            .take(usize::try_from(req.num_max_invoices).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Ok(Response::new(lnrpc::ListInvoiceResponse {
            first_index_offset: invoices.first().map_or(0, |i| i.add_index),
            last_index_offset: invoices.last().map_or(0, |i| i.add_index),
            invoices,
        }))
    }

    async fn subscribe_invoices(
        &self,
        req: Request<lnrpc::InvoiceSubscription>,
    ) -> Result<Response<BoxStream<lnrpc::Invoice>>, Status> {
        let req = req.into_inner();
        lock(&self.0.seen).subscribe.push(req);
        let (break_after, stale_first) = {
            let mut script = lock(&self.0.script);
            (script.stream_breaks.pop_front(), script.replay_stale_first)
        };
        // As LND: the backlog after `settle_index` (none for 0), then live events. Taken under
        // the ledger lock so no settlement falls between the two.
        let (mut backlog, mut live) = {
            let ledger = lock(&self.0.ledger);
            let live = self.0.invoice_events.subscribe();
            let mut backlog: Vec<lnrpc::Invoice> = if req.settle_index > 0 {
                ledger
                    .invoices
                    .iter()
                    .filter(|i| i.settle_index > req.settle_index)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            backlog.sort_by_key(|i| i.settle_index);
            if stale_first {
                if let Some(stale) = ledger
                    .invoices
                    .iter()
                    .filter(|i| i.settle_index > 0)
                    .min_by_key(|i| i.settle_index)
                {
                    backlog.insert(0, stale.clone());
                }
            }
            (VecDeque::from(backlog), live)
        };
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut sent = 0;
            loop {
                if break_after == Some(sent) {
                    let _ = tx.send(Err(Status::unavailable("invoice stream interrupted"))).await;
                    return;
                }
                let next = match backlog.pop_front() {
                    Some(invoice) => invoice,
                    None => match live.recv().await {
                        Ok(invoice) => invoice,
                        Err(_) => return,
                    },
                };
                if tx.send(Ok(next)).await.is_err() {
                    return;
                }
                sent += 1;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn wallet_balance(
        &self,
        req: Request<lnrpc::WalletBalanceRequest>,
    ) -> Result<Response<lnrpc::WalletBalanceResponse>, Status> {
        lock(&self.0.seen).wallet_balance.push(req.into_inner());
        let script = lock(&self.0.script);
        if let Some((code, message)) = script.wallet_balance_error {
            return Err(Status::new(code, message));
        }
        Ok(Response::new(script.wallet.clone()))
    }

    async fn list_channels(
        &self,
        _req: Request<lnrpc::ListChannelsRequest>,
    ) -> Result<Response<lnrpc::ListChannelsResponse>, Status> {
        let script = lock(&self.0.script);
        if let Some((code, message)) = script.list_channels_error {
            return Err(Status::new(code, message));
        }
        Ok(Response::new(lnrpc::ListChannelsResponse {
            channels: script.channels.clone(),
        }))
    }

    async fn connect_peer(
        &self,
        req: Request<lnrpc::ConnectPeerRequest>,
    ) -> Result<Response<lnrpc::ConnectPeerResponse>, Status> {
        let req = req.into_inner();
        lock(&self.0.seen).connect_peer.push(req.clone());
        if lock(&self.0.script).already_connected {
            let addr = req.addr.unwrap_or_default();
            return Err(Status::unknown(format!(
                "already connected to peer: {}@{}",
                addr.pubkey, addr.host
            )));
        }
        Ok(Response::new(lnrpc::ConnectPeerResponse::default()))
    }

    async fn open_channel_sync(
        &self,
        req: Request<lnrpc::OpenChannelRequest>,
    ) -> Result<Response<lnrpc::ChannelPoint>, Status> {
        let req = req.into_inner();
        lock(&self.0.seen).open_channel.push(req);
        let txid_internal_order: Vec<u8> = (1..=32).collect();
        Ok(Response::new(lnrpc::ChannelPoint {
            funding_txid: Some(lnrpc::channel_point::FundingTxid::FundingTxidBytes(txid_internal_order)),
            output_index: 1,
        }))
    }
}

#[tonic::async_trait]
impl routerrpc::router_server::Router for RouterSvc {
    async fn send_payment_v2(
        &self,
        req: Request<routerrpc::SendPaymentRequest>,
    ) -> Result<Response<BoxStream<lnrpc::Payment>>, Status> {
        let req = req.into_inner();
        lock(&self.0.seen).send_payment.push(req.clone());
        let invoice: lightning_invoice::Bolt11Invoice = req
            .payment_request
            .parse()
            .map_err(|_| Status::invalid_argument("invalid payment request"))?;
        let hash = hex(invoice.payment_hash().as_byte_array());
        let script = lock(&self.0.script).pay;
        let mut ledger = lock(&self.0.ledger);
        // LND's control tower: one payment per hash unless the earlier one failed.
        if let Some(existing) = ledger.payments.get(&hash) {
            match existing.status() {
                PaymentStatus::Succeeded => return Err(Status::already_exists("invoice is already paid")),
                PaymentStatus::InFlight | PaymentStatus::Initiated => {
                    return Err(Status::already_exists("payment is in transition"))
                }
                _ => {}
            }
        }
        ledger.started += 1;
        let amount = invoice
            .amount_milli_satoshis()
            .and_then(|a| i64::try_from(a).ok())
            .unwrap_or(req.amt_msat);
        let in_flight = lnrpc::Payment {
            payment_hash: hash.clone(),
            value_msat: amount,
            payment_request: req.payment_request.clone(),
            status: PaymentStatus::InFlight as i32,
            ..Default::default()
        };
        let final_update = match script {
            PayScript::Succeed { fee_msat } => Some(lnrpc::Payment {
                status: PaymentStatus::Succeeded as i32,
                fee_msat,
                payment_preimage: hex(&[7; 32]),
                ..in_flight.clone()
            }),
            PayScript::Fail(reason) => Some(lnrpc::Payment {
                status: PaymentStatus::Failed as i32,
                failure_reason: reason as i32,
                ..in_flight.clone()
            }),
            PayScript::Hang => None,
        };
        ledger
            .payments
            .insert(hash, final_update.clone().unwrap_or_else(|| in_flight.clone()));
        drop(ledger);
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            let _ = tx.send(Ok(in_flight)).await;
            match final_update {
                Some(update) => {
                    let _ = tx.send(Ok(update)).await;
                }
                // Keep the stream open, silent, until the client goes away.
                None => tx.closed().await,
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn track_payment_v2(
        &self,
        req: Request<routerrpc::TrackPaymentRequest>,
    ) -> Result<Response<BoxStream<lnrpc::Payment>>, Status> {
        let req = req.into_inner();
        lock(&self.0.seen).track.push(req.clone());
        let hash = hex(&req.payment_hash);
        let mut events = self.0.payment_events.subscribe();
        let current = lock(&self.0.ledger)
            .payments
            .get(&hash)
            .cloned()
            .ok_or_else(|| Status::not_found("payment isn't initiated"))?;
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            let done = matches!(current.status(), PaymentStatus::Succeeded | PaymentStatus::Failed);
            if tx.send(Ok(current)).await.is_err() || done {
                return;
            }
            while let Ok(update) = events.recv().await {
                if update.payment_hash == hash && tx.send(Ok(update)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn estimate_route_fee(
        &self,
        req: Request<routerrpc::RouteFeeRequest>,
    ) -> Result<Response<routerrpc::RouteFeeResponse>, Status> {
        let req = req.into_inner();
        lock(&self.0.seen).estimate.push(req);
        match lock(&self.0.script).estimate.clone() {
            EstimateScript::Fee(fee) => Ok(Response::new(routerrpc::RouteFeeResponse {
                routing_fee_msat: fee,
                time_lock_delay: 40,
                failure_reason: PaymentFailureReason::FailureReasonNone as i32,
            })),
            EstimateScript::Reason(reason) => Ok(Response::new(routerrpc::RouteFeeResponse {
                routing_fee_msat: 0,
                time_lock_delay: 0,
                failure_reason: reason as i32,
            })),
            EstimateScript::Error(code, message) => Err(Status::new(code, message)),
        }
    }
}

#[tonic::async_trait]
impl invoicesrpc::invoices_server::Invoices for InvoicesSvc {
    async fn cancel_invoice(
        &self,
        req: Request<invoicesrpc::CancelInvoiceMsg>,
    ) -> Result<Response<invoicesrpc::CancelInvoiceResp>, Status> {
        let req = req.into_inner();
        lock(&self.0.seen).cancel.push(req.clone());
        let mut ledger = lock(&self.0.ledger);
        // LND's invoice registry answers with plain errors (gRPC code Unknown).
        let invoice = ledger
            .invoices
            .iter_mut()
            .find(|i| i.r_hash == req.payment_hash)
            .ok_or_else(|| Status::unknown("unable to locate invoice"))?;
        match invoice.state() {
            InvoiceState::Settled => Err(Status::unknown("invoice already settled")),
            _ => {
                invoice.set_state(InvoiceState::Canceled);
                Ok(Response::new(invoicesrpc::CancelInvoiceResp {}))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TLS, files, relay, harness
// ---------------------------------------------------------------------------------------------

/// A TCP relay in front of the fake: `cut` drops every connection and refuses new ones (they
/// are accepted and closed at once) until `restore`.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, connections2) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let handle = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                lock(&connections2).push(handle);
            }
        });
        Relay { addr, up, connections }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for connection in lock(&self.connections).drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Which services the fake offers.
#[derive(Clone, Copy)]
struct Services {
    router: bool,
}

struct Harness {
    fake: Arc<Fake>,
    relay: Relay,
    dir: PathBuf,
    cert_path: PathBuf,
    macaroon_path: PathBuf,
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flash-lnd-test-{}", hex(&random32()[..8])));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A certificate and key (PEM) as LND makes its `tls.cert`: self-signed, ECDSA P-256, and marked as
/// a CA (it signs itself). rustls' usual verification refuses such a certificate as a server's own
/// (`CaUsedAsEndEntity`), so this checks the adapter really pins it. Its names are LND's defaults
/// without the address the test connects to: pinning does not depend on them.
fn self_signed() -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
    let names = ["localhost", "unix", "unixpacket", "bufconn"]
        .map(String::from)
        .to_vec();
    let mut params = CertificateParams::new(names).expect("certificate names");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "lnd autogenerated cert");
    params.distinguished_name.push(DnType::CommonName, "fake-lnd");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("key pair");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    (cert.pem(), key.serialize_pem())
}

impl Harness {
    async fn start(script: Script) -> Harness {
        Harness::start_with(script, Services { router: true }).await
    }

    async fn start_with(script: Script, services: Services) -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let fake = Fake::new(script);
        let dir = temp_dir();
        let (cert_pem, key_pem) = self_signed();
        let cert_path = dir.join("tls.cert");
        std::fs::write(&cert_path, &cert_pem).expect("write cert");
        let macaroon: Vec<u8> = random32().iter().chain(b"fake admin macaroon").copied().collect();
        let macaroon_path = dir.join("admin.macaroon");
        std::fs::write(&macaroon_path, &macaroon).expect("write macaroon");

        let check = macaroon_check(hex(&macaroon));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake LND");
        let server_addr = listener.local_addr().expect("fake LND address");
        let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem));
        let mut builder = Server::builder().tls_config(tls).expect("server TLS");
        let router = builder
            .add_service(lnrpc::lightning_server::LightningServer::with_interceptor(
                LightningSvc(fake.clone()),
                check.clone(),
            ))
            .add_service(invoicesrpc::invoices_server::InvoicesServer::with_interceptor(
                InvoicesSvc(fake.clone()),
                check.clone(),
            ));
        let router = if services.router {
            router.add_service(routerrpc::router_server::RouterServer::with_interceptor(
                RouterSvc(fake.clone()),
                check,
            ))
        } else {
            router
        };
        tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
        let relay = Relay::start(server_addr).await;
        Harness {
            fake,
            relay,
            dir,
            cert_path,
            macaroon_path,
        }
    }

    fn config(&self) -> LndConfig {
        LndConfig {
            address: format!("https://127.0.0.1:{}", self.relay.addr.port()),
            tls_cert_path: self.cert_path.clone(),
            macaroon_path: self.macaroon_path.clone(),
            network: Network::Regtest,
        }
    }

    async fn connect(&self) -> LndNode {
        LndNode::connect(self.config()).await.expect("connect to the fake LND")
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        lock(&self.fake.script)
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        lock(&self.fake.seen)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An invoice of another node (for paying and estimating).
fn foreign_invoice(amount_msat: Option<u64>) -> (String, Hash32, PublicKey) {
    let key = SecretKey::from_slice(&random32()).expect("key");
    let hash = random32();
    let text = sign_invoice(
        &key,
        Currency::Regtest,
        hash,
        amount_msat,
        memo_description("coffee"),
        3_600,
    );
    (
        text,
        Hash32(hash),
        PublicKey::from_secret_key(&Secp256k1::signing_only(), &key),
    )
}

fn memo_request(amount_msat: Option<u64>) -> InvoiceRequest {
    InvoiceRequest {
        amount_msat,
        description: InvoiceDescription::Memo("coffee".into()),
        expiry_secs: 600,
    }
}

fn pay_request(invoice: &str, amount_msat: Option<u64>, timeout_secs: u64) -> PayRequest {
    PayRequest {
        payment_request: invoice.into(),
        amount_msat,
        max_fee_msat: 5_000,
        timeout_secs,
    }
}

/// Awaits at most 15 s, so a broken adapter fails the test instead of hanging it.
async fn soon<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .expect("no answer within 15 s")
}

// ---------------------------------------------------------------------------------------------
// Connecting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn connect_checks_credentials_and_reports_the_node() {
    let h = Harness::start(Script::default()).await;
    let node = h.connect().await;
    assert_eq!(h.seen().get_info, 1, "connect asks GetInfo once");
    let info = soon(node.node_info()).await.expect("node info");
    assert_eq!(info.pubkey, h.fake.pubkey().to_string());
    assert_eq!(info.alias, "fake-lnd");
    assert_eq!(info.network, Network::Regtest);
    assert_eq!(info.block_height, 4_321);
    assert!(info.synced);
    assert!(!info.simulated, "a real node is never reported as a simulator");
}

#[tokio::test]
async fn connect_refuses_a_node_on_another_network() {
    let h = Harness::start(Script {
        network: "signet",
        ..Script::default()
    })
    .await;
    let err = soon(LndNode::connect(h.config()))
        .await
        .expect_err("signet LND for a regtest Flash");
    match err {
        LightningError::InvalidInput(msg) => {
            assert!(msg.contains("signet") && msg.contains("regtest"), "{msg}")
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    // The same node is accepted when Flash is configured for its network.
    let config = LndConfig {
        network: Network::Signet,
        ..h.config()
    };
    soon(LndNode::connect(config))
        .await
        .expect("signet LND for a signet Flash");
}

#[tokio::test]
async fn connect_refuses_a_wrong_macaroon() {
    let h = Harness::start(Script::default()).await;
    let wrong = h.dir.join("other.macaroon");
    std::fs::write(&wrong, b"not the node's macaroon").expect("write");
    let config = LndConfig {
        macaroon_path: wrong,
        ..h.config()
    };
    match soon(LndNode::connect(config)).await {
        Err(LightningError::Unavailable(msg)) => assert!(msg.contains("macaroon"), "{msg}"),
        other => panic!("expected Unavailable naming the macaroon, got {other:?}"),
    }
    assert_eq!(h.seen().get_info, 0, "the fake refused the call before GetInfo ran");
}

#[tokio::test]
async fn connect_refuses_a_certificate_other_than_the_pinned_one() {
    let h = Harness::start(Script::default()).await;
    let other = h.dir.join("other.cert");
    std::fs::write(&other, self_signed().0).expect("write");
    let config = LndConfig {
        tls_cert_path: other,
        ..h.config()
    };
    match soon(LndNode::connect(config)).await {
        Err(LightningError::Unavailable(msg)) => assert!(msg.contains("certificate"), "{msg}"),
        other => panic!("a server presenting another certificate must not be trusted: {other:?}"),
    }
    assert_eq!(h.seen().get_info, 0);
}

/// Why the adapter pins LND's certificate itself instead of giving it to tonic's TLS as the one
/// trusted root: rustls refuses LND's kind of certificate (a CA) as a server's own.
#[tokio::test]
async fn lnd_certificates_are_refused_when_trusted_as_a_root() {
    let h = Harness::start(Script::default()).await;
    let pem = std::fs::read(&h.cert_path).expect("read cert");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(pem))
        .domain_name("localhost");
    let endpoint = tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{}", h.relay.addr.port()))
        .expect("endpoint")
        .tls_config(tls)
        .expect("TLS config");
    let refused = match soon(endpoint.connect()).await {
        Ok(channel) => lnrpc::lightning_client::LightningClient::new(channel)
            .get_info(lnrpc::GetInfoRequest {})
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}")),
        Err(e) => Err(format!("{e:?}")),
    };
    match refused {
        Err(e) => assert!(e.contains("CaUsedAsEndEntity"), "{e}"),
        Ok(()) => panic!("the fake's certificate is not shaped like LND's"),
    }
    // The adapter, pinning it, connects.
    h.connect().await;
}

#[tokio::test]
async fn connect_reports_bad_settings_clearly() {
    let h = Harness::start(Script::default()).await;
    let cases = [
        LndConfig {
            address: format!("http://127.0.0.1:{}", h.relay.addr.port()),
            ..h.config()
        },
        LndConfig {
            tls_cert_path: h.dir.join("missing.cert"),
            ..h.config()
        },
        LndConfig {
            tls_cert_path: h.macaroon_path.clone(),
            ..h.config()
        },
        LndConfig {
            macaroon_path: h.dir.join("missing.macaroon"),
            ..h.config()
        },
    ];
    for config in cases {
        let shown = format!("{config:?}");
        assert!(
            matches!(
                soon(LndNode::connect(config)).await,
                Err(LightningError::InvalidInput(_))
            ),
            "{shown}"
        );
    }
    assert_eq!(h.seen().get_info, 0);
}

#[tokio::test]
async fn unreachable_lnd_is_unavailable_and_a_payment_is_not_started() {
    let h = Harness::start(Script::default()).await;
    h.relay.cut();
    assert!(matches!(
        soon(LndNode::connect(h.config())).await,
        Err(LightningError::Unavailable(_))
    ));
    h.relay.restore();
    let node = h.connect().await;
    h.relay.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (invoice, _, _) = foreign_invoice(Some(10_000));
    let result = soon(node.pay(pay_request(&invoice, None, 5))).await;
    assert!(
        matches!(result, Err(LightningError::Unavailable(_))),
        "a request that never left is an error, not a payment state: {result:?}"
    );
    assert!(h.seen().send_payment.is_empty());
    assert_eq!(h.fake.started_payments(), 0);
}

// ---------------------------------------------------------------------------------------------
// Invoices
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_invoice_sends_memo_or_description_hash_amount_and_expiry() {
    let h = Harness::start(Script::default()).await;
    let node = h.connect().await;

    let invoice = soon(node.create_invoice(memo_request(Some(21_000))))
        .await
        .expect("memo invoice");
    {
        let seen = h.seen();
        let sent = seen.add_invoice.last().expect("AddInvoice");
        assert_eq!(sent.memo, "coffee");
        assert!(sent.description_hash.is_empty());
        assert_eq!(sent.value_msat, 21_000);
        assert_eq!(sent.expiry, 600);
    }
    assert_eq!(invoice.amount_msat, Some(21_000));
    assert_eq!(invoice.description, InvoiceDescription::Memo("coffee".into()));
    assert_eq!(invoice.expiry_secs, 600);
    assert_eq!(
        invoice.payee,
        h.fake.pubkey().to_string(),
        "decoded from LND's signed invoice"
    );
    assert_eq!(invoice.network, Network::Regtest);
    let stored = lock(&h.fake.ledger).invoices.last().cloned().expect("stored");
    assert_eq!(invoice.payment_hash.0.to_vec(), stored.r_hash);
    assert_eq!(invoice.payment_request, stored.payment_request);

    let hashed = InvoiceRequest {
        amount_msat: None,
        description: InvoiceDescription::Hash(Hash32([5; 32])),
        expiry_secs: 3_600,
    };
    let invoice = soon(node.create_invoice(hashed))
        .await
        .expect("description-hash invoice");
    {
        let seen = h.seen();
        let sent = seen.add_invoice.last().expect("AddInvoice");
        assert_eq!(sent.memo, "");
        assert_eq!(sent.description_hash, vec![5; 32]);
        assert_eq!(sent.value_msat, 0, "no amount");
        assert_eq!(sent.expiry, 3_600);
    }
    assert_eq!(invoice.description, InvoiceDescription::Hash(Hash32([5; 32])));
    assert_eq!(invoice.amount_msat, None);

    // Refused here, never sent.
    let before = h.seen().add_invoice.len();
    assert!(matches!(
        soon(node.create_invoice(memo_request(Some(0)))).await,
        Err(LightningError::InvalidInput(_))
    ));
    let long = InvoiceRequest {
        description: InvoiceDescription::Memo("x".repeat(640)),
        ..memo_request(Some(1_000))
    };
    assert!(matches!(
        soon(node.create_invoice(long)).await,
        Err(LightningError::InvalidInput(_))
    ));
    assert_eq!(h.seen().add_invoice.len(), before);
}

#[tokio::test]
async fn create_invoice_refuses_an_answer_that_is_not_the_invoice() {
    let h = Harness::start(Script {
        corrupt_r_hash: true,
        ..Script::default()
    })
    .await;
    let node = h.connect().await;
    assert!(matches!(
        soon(node.create_invoice(memo_request(Some(1_000)))).await,
        Err(LightningError::Unavailable(_))
    ));
}

#[tokio::test]
async fn decode_invoice_checks_signature_and_network_locally() {
    let h = Harness::start(Script::default()).await;
    let node = h.connect().await;
    let (invoice, hash, payee) = foreign_invoice(Some(3_000));
    let decoded = soon(node.decode_invoice(&invoice)).await.expect("decode");
    assert_eq!(decoded.payment_hash, hash);
    assert_eq!(decoded.payee, payee.to_string());
    assert_eq!(decoded.amount_msat, Some(3_000));

    let key = SecretKey::from_slice(&random32()).expect("key");
    let signet = sign_invoice(&key, Currency::Signet, random32(), None, memo_description("x"), 60);
    assert_eq!(
        soon(node.decode_invoice(&signet)).await,
        Err(LightningError::WrongNetwork {
            expected: Network::Regtest,
            found: Network::Signet
        })
    );
    let mut tampered = invoice.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'q' { 'p' } else { 'q' });
    assert!(matches!(
        soon(node.decode_invoice(&tampered)).await,
        Err(LightningError::InvalidInvoice(_))
    ));
}

#[tokio::test]
async fn cancel_invoice_maps_lnd_answers() {
    let h = Harness::start(Script::default()).await;
    let node = h.connect().await;
    let open = soon(node.create_invoice(memo_request(Some(1_000))))
        .await
        .expect("invoice");
    soon(node.cancel_invoice(open.payment_hash))
        .await
        .expect("cancel an open invoice");
    assert_eq!(
        h.seen().cancel.last().map(|c| c.payment_hash.clone()),
        Some(open.payment_hash.0.to_vec())
    );
    assert_eq!(h.fake.invoice_state(open.payment_hash), InvoiceState::Canceled);

    let paid = soon(node.create_invoice(memo_request(Some(1_000))))
        .await
        .expect("invoice");
    h.fake.settle(paid.payment_hash, 1_000);
    assert_eq!(
        soon(node.cancel_invoice(paid.payment_hash)).await,
        Err(LightningError::AlreadyPaid)
    );
    assert_eq!(h.fake.invoice_state(paid.payment_hash), InvoiceState::Settled);

    assert_eq!(
        soon(node.cancel_invoice(Hash32([1; 32]))).await,
        Err(LightningError::NotFound)
    );
}

// ---------------------------------------------------------------------------------------------
// Fees and payments
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn estimate_fee_probes_the_invoice_or_asks_the_graph() {
    let h = Harness::start(Script::default()).await;
    let node = h.connect().await;

    let (invoice, _, _) = foreign_invoice(Some(50_000));
    let fee = soon(node.estimate_fee(FeeEstimateRequest {
        payment_request: invoice.clone(),
        amount_msat: None,
    }))
    .await
    .expect("estimate");
    assert_eq!(fee, 2_000);
    {
        let seen = h.seen();
        let sent = seen.estimate.last().expect("EstimateRouteFee");
        assert_eq!(sent.payment_request, invoice);
        assert!(sent.timeout > 0, "a probe needs a time limit");
        assert!(sent.dest.is_empty() && sent.amt_sat == 0, "probe mode only");
    }

    // A no-amount invoice: LND cannot probe it, so the graph estimate to the payee.
    let (open_amount, _, payee) = foreign_invoice(None);
    h.script().estimate = EstimateScript::Fee(1_000);
    let fee = soon(node.estimate_fee(FeeEstimateRequest {
        payment_request: open_amount,
        amount_msat: Some(1_500),
    }))
    .await
    .expect("estimate");
    assert_eq!(fee, 1_000);
    {
        let seen = h.seen();
        let sent = seen.estimate.last().expect("EstimateRouteFee");
        assert_eq!(sent.dest, payee.serialize().to_vec());
        assert_eq!(sent.amt_sat, 2, "1 500 msat rounded up to whole satoshis");
        assert!(sent.payment_request.is_empty());
    }

    // Amount rules are checked before asking.
    let count = h.seen().estimate.len();
    assert!(matches!(
        soon(node.estimate_fee(FeeEstimateRequest {
            payment_request: invoice.clone(),
            amount_msat: Some(1),
        }))
        .await,
        Err(LightningError::InvalidInput(_))
    ));
    assert_eq!(h.seen().estimate.len(), count);
}

#[tokio::test]
async fn estimate_fee_without_a_route_is_no_route() {
    let h = Harness::start(Script {
        estimate: EstimateScript::Reason(PaymentFailureReason::FailureReasonNoRoute),
        ..Script::default()
    })
    .await;
    let node = h.connect().await;
    let (invoice, _, _) = foreign_invoice(Some(50_000));
    let request = FeeEstimateRequest {
        payment_request: invoice,
        amount_msat: None,
    };
    assert!(matches!(
        soon(node.estimate_fee(request.clone())).await,
        Err(LightningError::NoRoute(_))
    ));
    h.script().estimate = EstimateScript::Error(Code::Unknown, "unable to find a path to destination");
    assert!(matches!(
        soon(node.estimate_fee(request.clone())).await,
        Err(LightningError::NoRoute(_))
    ));
    h.script().estimate = EstimateScript::Error(Code::InvalidArgument, "bad request");
    assert!(matches!(
        soon(node.estimate_fee(request)).await,
        Err(LightningError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn pay_sends_limits_and_reports_success() {
    let h = Harness::start(Script::default()).await;
    let node = h.connect().await;
    let (invoice, hash, _) = foreign_invoice(Some(40_000));
    let state = soon(node.pay(pay_request(&invoice, None, 30))).await.expect("pay");
    assert_eq!(
        state,
        PaymentState::Succeeded {
            preimage: Some(Hash32([7; 32])),
            fee_msat: 1_234
        }
    );
    {
        let seen = h.seen();
        let sent = seen.send_payment.last().expect("SendPaymentV2");
        assert_eq!(sent.payment_request, invoice);
        assert_eq!(sent.fee_limit_msat, 5_000);
        assert_eq!(sent.fee_limit_sat, 0, "the limit goes in msat only");
        assert_eq!(sent.timeout_seconds, 30);
        assert_eq!(sent.amt_msat, 0, "the invoice carries the amount");
        assert_eq!(sent.amt, 0);
    }
    assert_eq!(
        soon(node.track_payment(hash)).await.expect("track"),
        PaymentState::Succeeded {
            preimage: Some(Hash32([7; 32])),
            fee_msat: 1_234
        }
    );

    // A no-amount invoice: the amount goes in amt_msat.
    let (open_amount, _, _) = foreign_invoice(None);
    soon(node.pay(pay_request(&open_amount, Some(12_345), 10)))
        .await
        .expect("pay");
    assert_eq!(h.seen().send_payment.last().map(|s| s.amt_msat), Some(12_345));

    // Amount rules are checked before sending.
    let count = h.seen().send_payment.len();
    let (another, _, _) = foreign_invoice(None);
    assert!(matches!(
        soon(node.pay(pay_request(&another, None, 10))).await,
        Err(LightningError::InvalidInput(_))
    ));
    assert!(matches!(
        soon(node.pay(pay_request(&invoice, Some(40_000), 10))).await,
        Err(LightningError::InvalidInput(_))
    ));
    assert_eq!(h.seen().send_payment.len(), count);
}

#[tokio::test]
async fn pay_reports_a_failed_payment() {
    let h = Harness::start(Script {
        pay: PayScript::Fail(PaymentFailureReason::FailureReasonNoRoute),
        ..Script::default()
    })
    .await;
    let node = h.connect().await;
    let (invoice, hash, _) = foreign_invoice(Some(40_000));
    match soon(node.pay(pay_request(&invoice, None, 30))).await.expect("pay") {
        PaymentState::Failed { reason } => assert!(reason.contains("no route"), "{reason}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(matches!(
        soon(node.track_payment(hash)).await,
        Ok(PaymentState::Failed { .. })
    ));
    // A failed payment may be tried again (LND allows it): that starts a new attempt.
    h.script().pay = PayScript::Succeed { fee_msat: 10 };
    assert!(matches!(
        soon(node.pay(pay_request(&invoice, None, 30))).await,
        Ok(PaymentState::Succeeded { fee_msat: 10, .. })
    ));
    assert_eq!(h.fake.started_payments(), 2);
}

#[tokio::test]
async fn pay_returns_in_flight_when_the_timeout_elapses() {
    let h = Harness::start(Script {
        pay: PayScript::Hang,
        ..Script::default()
    })
    .await;
    let node = h.connect().await;
    let (invoice, hash, _) = foreign_invoice(Some(40_000));
    let started = std::time::Instant::now();
    let state = soon(node.pay(pay_request(&invoice, None, 1))).await.expect("pay");
    let waited = started.elapsed();
    assert_eq!(state, PaymentState::InFlight);
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "waited {waited:?} for a 1 s timeout"
    );
    assert_eq!(h.seen().send_payment.last().map(|s| s.timeout_seconds), Some(1));
    assert_eq!(soon(node.track_payment(hash)).await, Ok(PaymentState::InFlight));
    // The network answers later; tracking sees it.
    h.fake.resolve_payment(hash, PaymentStatus::Succeeded, 99);
    assert_eq!(
        soon(node.track_payment(hash)).await,
        Ok(PaymentState::Succeeded {
            preimage: Some(Hash32([9; 32])),
            fee_msat: 99
        })
    );
}

#[tokio::test]
async fn paying_again_never_pays_twice() {
    let h = Harness::start(Script {
        pay: PayScript::Hang,
        ..Script::default()
    })
    .await;
    let node = h.connect().await;
    let (invoice, hash, _) = foreign_invoice(Some(40_000));
    assert_eq!(
        soon(node.pay(pay_request(&invoice, None, 1))).await,
        Ok(PaymentState::InFlight)
    );
    // Still in flight: LND answers "in transition"; the adapter tracks instead.
    assert_eq!(
        soon(node.pay(pay_request(&invoice, None, 1))).await,
        Ok(PaymentState::InFlight)
    );
    h.fake.resolve_payment(hash, PaymentStatus::Succeeded, 77);
    // Paid: LND answers "already paid"; the adapter reports that payment.
    assert_eq!(
        soon(node.pay(pay_request(&invoice, None, 30))).await,
        Ok(PaymentState::Succeeded {
            preimage: Some(Hash32([9; 32])),
            fee_msat: 77
        })
    );
    assert_eq!(h.seen().send_payment.len(), 3, "each pay asked LND once");
    assert_eq!(h.fake.started_payments(), 1, "only the first one started a payment");
    let tracked: Vec<Vec<u8>> = h.seen().track.iter().map(|t| t.payment_hash.clone()).collect();
    assert!(
        tracked.len() >= 2 && tracked.iter().all(|t| *t == hash.0.to_vec()),
        "{tracked:?}"
    );
}

#[tokio::test]
async fn track_payment_of_an_unknown_hash_is_not_found() {
    let h = Harness::start(Script::default()).await;
    let node = h.connect().await;
    assert_eq!(
        soon(node.track_payment(Hash32([3; 32]))).await,
        Err(LightningError::NotFound)
    );
    let seen = h.seen();
    let sent = seen.track.last().expect("TrackPaymentV2");
    assert_eq!(sent.payment_hash, vec![3; 32]);
    assert!(
        !sent.no_inflight_updates,
        "the current state comes first, even in flight"
    );
}

// ---------------------------------------------------------------------------------------------
// Settlements
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn wait_settled_from_zero_finds_earlier_settlements_then_waits() {
    let h = Harness::start(Script::default()).await;
    let node = h.connect().await;
    let first = soon(node.create_invoice(memo_request(Some(1_000))))
        .await
        .expect("invoice");
    let second = soon(node.create_invoice(memo_request(Some(2_000))))
        .await
        .expect("invoice");
    // Settled before anyone listened: LND's subscription from index 0 would not replay these.
    h.fake.settle(second.payment_hash, 2_000);
    h.fake.settle(first.payment_hash, 1_500);
    let settled = soon(node.wait_settled(0)).await.expect("settled");
    assert_eq!(settled.settle_index, 1);
    assert_eq!(settled.payment_hash, second.payment_hash);
    assert_eq!(settled.amount_received_msat, 2_000);
    let next = soon(node.wait_settled(1)).await.expect("settled");
    assert_eq!((next.settle_index, next.payment_hash), (2, first.payment_hash));
    assert_eq!(
        next.amount_received_msat, 1_500,
        "what was paid, not the invoice amount"
    );
    assert!(!h.seen().list_invoices.is_empty());
    assert_eq!(h.seen().subscribe.last().map(|s| s.settle_index), Some(1));
}

#[tokio::test]
async fn wait_settled_from_zero_with_nothing_settled_waits_for_the_first() {
    let h = Harness::start(Script::default()).await;
    let node = Arc::new(h.connect().await);
    let invoice = soon(node.create_invoice(memo_request(Some(1_000))))
        .await
        .expect("invoice");
    let waiter = {
        let node = node.clone();
        tokio::spawn(async move { node.wait_settled(0).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "nothing settled yet");
    // An unrelated new invoice (an "add" event on the stream) is not a settlement.
    soon(node.create_invoice(memo_request(Some(5)))).await.expect("invoice");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    h.fake.settle(invoice.payment_hash, 1_000);
    let settled = soon(waiter).await.expect("task").expect("settled");
    assert_eq!((settled.settle_index, settled.payment_hash), (1, invoice.payment_hash));
}

#[tokio::test]
async fn wait_settled_survives_dropped_streams_without_losing_or_repeating() {
    let h = Harness::start(Script::default()).await;
    let node = Arc::new(h.connect().await);
    let mut hashes = Vec::new();
    for amount in 1..=6u64 {
        let invoice = soon(node.create_invoice(memo_request(Some(amount * 1_000))))
            .await
            .expect("invoice");
        hashes.push(invoice.payment_hash);
    }
    for hash in &hashes[..3] {
        h.fake.settle(*hash, 1_000);
    }
    // Subscriptions break: at once, after one message, at once, at once, after one message.
    h.script().stream_breaks = VecDeque::from([0, 1, 0, 0, 1]);
    let fake = h.fake.clone();
    let late = hashes[3..].to_vec();
    let settler = tokio::spawn(async move {
        for hash in late {
            tokio::time::sleep(Duration::from_millis(400)).await;
            fake.settle(hash, 1_000);
        }
    });
    let mut seen = Vec::new();
    let mut last = 0;
    while seen.len() < hashes.len() {
        let settled = soon(node.wait_settled(last)).await.expect("settled");
        assert!(settled.settle_index > last, "{} after {last}", settled.settle_index);
        seen.push((settled.settle_index, settled.payment_hash));
        last = settled.settle_index;
    }
    soon(settler).await.expect("settler");
    let expected: Vec<(u64, Hash32)> = (1..=6).zip(hashes.iter().copied()).collect();
    assert_eq!(seen, expected, "every settlement once, in order");

    let subscriptions: Vec<u64> = h.seen().subscribe.iter().map(|s| s.settle_index).collect();
    assert!(
        subscriptions.len() >= 5 + 3,
        "the broken streams were re-opened: {subscriptions:?}"
    );
    assert!(
        subscriptions.iter().all(|i| (1..=5).contains(i)),
        "each subscription resumed from an index already returned: {subscriptions:?}"
    );
    assert!(
        subscriptions.windows(2).all(|w| w[0] <= w[1]),
        "resumed, never went back: {subscriptions:?}"
    );
}

#[tokio::test]
async fn wait_settled_never_returns_an_index_already_seen() {
    let h = Harness::start(Script {
        replay_stale_first: true,
        ..Script::default()
    })
    .await;
    let node = h.connect().await;
    let a = soon(node.create_invoice(memo_request(Some(1_000))))
        .await
        .expect("invoice");
    let b = soon(node.create_invoice(memo_request(Some(1_000))))
        .await
        .expect("invoice");
    h.fake.settle(a.payment_hash, 1_000);
    h.fake.settle(b.payment_hash, 1_000);
    let settled = soon(node.wait_settled(1)).await.expect("settled");
    assert_eq!((settled.settle_index, settled.payment_hash), (2, b.payment_hash));
}

#[tokio::test]
async fn wait_settled_reconnects_after_the_connection_is_lost() {
    let h = Harness::start(Script::default()).await;
    let node = Arc::new(h.connect().await);
    let a = soon(node.create_invoice(memo_request(Some(1_000))))
        .await
        .expect("invoice");
    let b = soon(node.create_invoice(memo_request(Some(1_000))))
        .await
        .expect("invoice");
    h.fake.settle(a.payment_hash, 1_000);
    let waiter = {
        let node = node.clone();
        tokio::spawn(async move { node.wait_settled(1).await })
    };
    soon(async {
        while h.seen().subscribe.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let subscriptions_before = h.seen().subscribe.len();
    assert_eq!(subscriptions_before, 1);
    // LND goes away; the invoice is paid while Flash cannot hear about it.
    h.relay.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.fake.settle(b.payment_hash, 1_000);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!waiter.is_finished(), "nothing can arrive while LND is unreachable");
    h.relay.restore();
    let settled = soon(waiter).await.expect("task").expect("caught up");
    assert_eq!((settled.settle_index, settled.payment_hash), (2, b.payment_hash));
    let seen = h.seen();
    assert!(seen.subscribe.len() > subscriptions_before);
    assert!(
        seen.subscribe.iter().all(|s| s.settle_index == 1),
        "resumed from the same index"
    );
}

// ---------------------------------------------------------------------------------------------
// Channels and error mapping
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn channels_map_lnd_fields() {
    let peer = PublicKey::from_secret_key(
        &Secp256k1::signing_only(),
        &SecretKey::from_slice(&[3; 32]).expect("key"),
    );
    let channel = lnrpc::Channel {
        active: true,
        remote_pubkey: peer.to_string(),
        channel_point: format!("{}:0", "ab".repeat(32)),
        chan_id: 123,
        capacity: 1_000_000,
        local_balance: 600_000,
        remote_balance: 390_000,
        ..Default::default()
    };
    let h = Harness::start(Script {
        channels: vec![
            channel.clone(),
            lnrpc::Channel {
                active: false,
                channel_point: format!("{}:1", "cd".repeat(32)),
                ..channel.clone()
            },
        ],
        ..Script::default()
    })
    .await;
    let node = h.connect().await;
    let channels = soon(node.channels()).await.expect("channels");
    assert_eq!(channels.len(), 2);
    assert_eq!(channels[0].id, channel.channel_point);
    assert_eq!(channels[0].peer, peer.to_string());
    assert_eq!(
        (channels[0].capacity_sat, channels[0].local_sat, channels[0].remote_sat),
        (1_000_000, 600_000, 390_000)
    );
    assert!(channels[0].active);
    assert!(!channels[1].active);

    h.script().channels[0].local_balance = -1;
    assert!(matches!(
        soon(node.channels()).await,
        Err(LightningError::Unavailable(_))
    ));
}

#[tokio::test]
async fn onchain_balance_is_the_confirmed_wallet_balance() {
    let h = Harness::start(Script {
        wallet: lnrpc::WalletBalanceResponse {
            total_balance: 1_500_000,
            confirmed_balance: 1_200_000,
            unconfirmed_balance: 300_000,
            locked_balance: 100_000,
            reserved_balance_anchor_chan: 10_000,
            ..Default::default()
        },
        ..Script::default()
    })
    .await;
    let node = h.connect().await;
    assert_eq!(soon(node.onchain_balance()).await, Ok(1_200_000));
    {
        let seen = h.seen();
        let sent = seen.wallet_balance.last().expect("WalletBalance");
        assert_eq!(
            (sent.account.as_str(), sent.min_confs),
            ("", 0),
            "LND's defaults: the default account, one confirmation"
        );
    }

    h.script().wallet.confirmed_balance = 0;
    assert_eq!(soon(node.onchain_balance()).await, Ok(0));
    h.script().wallet.confirmed_balance = -5;
    assert!(matches!(
        soon(node.onchain_balance()).await,
        Err(LightningError::Unavailable(_))
    ));
    h.script().wallet_balance_error = Some((Code::Unknown, "verification failed: permission denied"));
    match soon(node.onchain_balance()).await {
        Err(LightningError::Unavailable(m)) => assert!(m.contains("WalletBalance") && m.contains("macaroon"), "{m}"),
        other => panic!("expected a refused macaroon, got {other:?}"),
    }
    h.script().wallet_balance_error = Some((Code::Unimplemented, "unknown service"));
    assert!(matches!(
        soon(node.onchain_balance()).await,
        Err(LightningError::Unsupported(_))
    ));
}

#[tokio::test]
async fn open_channel_connects_the_peer_then_opens() {
    let h = Harness::start(Script::default()).await;
    let node = h.connect().await;
    let peer = PublicKey::from_secret_key(
        &Secp256k1::signing_only(),
        &SecretKey::from_slice(&[4; 32]).expect("key"),
    );
    let request = OpenChannelRequest {
        peer: peer.to_string(),
        address: Some("10.0.0.7:9735".into()),
        amount_sat: 250_000,
    };
    let id = soon(node.open_channel(request.clone())).await.expect("open");
    let txid_display: String = (1..=32u8).rev().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        id,
        format!("{txid_display}:1"),
        "txid shown in display (reversed) order"
    );
    {
        let seen = h.seen();
        let connect = seen.connect_peer.last().expect("ConnectPeer");
        let addr = connect.addr.clone().expect("address");
        assert_eq!(
            (addr.pubkey, addr.host),
            (peer.to_string(), "10.0.0.7:9735".to_string())
        );
        let open = seen.open_channel.last().expect("OpenChannelSync");
        assert_eq!(open.node_pubkey, peer.serialize().to_vec());
        assert_eq!(open.local_funding_amount, 250_000);
    }
    // Already connected is fine.
    h.script().already_connected = true;
    soon(node.open_channel(request.clone()))
        .await
        .expect("open while connected");
    assert_eq!(h.seen().open_channel.len(), 2);
    // No address: no ConnectPeer.
    let connects = h.seen().connect_peer.len();
    soon(node.open_channel(OpenChannelRequest {
        address: None,
        ..request.clone()
    }))
    .await
    .expect("open");
    assert_eq!(h.seen().connect_peer.len(), connects);
    // Bad requests are refused before LND sees them.
    let opens = h.seen().open_channel.len();
    for bad in [
        OpenChannelRequest {
            peer: "not a key".into(),
            ..request.clone()
        },
        OpenChannelRequest {
            amount_sat: 0,
            ..request.clone()
        },
    ] {
        assert!(matches!(
            soon(node.open_channel(bad)).await,
            Err(LightningError::InvalidInput(_))
        ));
    }
    assert_eq!(h.seen().open_channel.len(), opens);
}

#[tokio::test]
async fn grpc_errors_map_to_port_errors() {
    let h = Harness::start(Script::default()).await;
    let node = h.connect().await;
    let cases = [
        (Code::InvalidArgument, "bad"),
        (Code::NotFound, "nothing"),
        (Code::Unavailable, "shutting down"),
        (Code::Unimplemented, "no"),
        (Code::Internal, "boom"),
        (Code::Unknown, "verification failed: signature mismatch"),
    ];
    for (code, message) in cases {
        h.script().list_channels_error = Some((code, message));
        let err = soon(node.channels()).await.expect_err("scripted error");
        match (code, &err) {
            (Code::InvalidArgument, LightningError::InvalidInput(m)) => assert!(m.contains("bad"), "{m}"),
            (Code::NotFound, LightningError::NotFound) => {}
            (Code::Unavailable, LightningError::Unavailable(m)) => assert!(m.contains("shutting down"), "{m}"),
            (Code::Unimplemented, LightningError::Unsupported(_)) => {}
            (Code::Internal, LightningError::Unavailable(m)) => assert!(m.contains("boom"), "{m}"),
            (Code::Unknown, LightningError::Unavailable(m)) => assert!(m.contains("macaroon"), "{m}"),
            _ => panic!("{code:?} mapped to {err:?}"),
        }
    }
}

#[tokio::test]
async fn lnd_without_the_router_sub_server_is_unsupported_for_routing() {
    let h = Harness::start_with(Script::default(), Services { router: false }).await;
    let node = h.connect().await;
    let (invoice, hash, _) = foreign_invoice(Some(1_000));
    assert!(matches!(
        soon(node.estimate_fee(FeeEstimateRequest {
            payment_request: invoice,
            amount_msat: None,
        }))
        .await,
        Err(LightningError::Unsupported(_))
    ));
    assert!(matches!(
        soon(node.track_payment(hash)).await,
        Err(LightningError::Unsupported(_))
    ));
}
