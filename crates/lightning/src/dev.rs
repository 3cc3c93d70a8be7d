//! The `dev` Lightning backend: a simulated network for the embedded tier and tests.
//!
//! What is real: the invoices (BOLT11, signed with this node's key, checked on decode) and the
//! bookkeeping a node does (settle indexes, one payment per hash). What is simulated: the
//! network. Our invoices are settled by `SimulatorControls::pay_from_outside`; other nodes'
//! invoices are "paid" with the configured [`DevOutcome`] and no real preimage. The outcome of
//! a payment is decided when it is sent and delivered after its delay, whether or not the payer
//! is still waiting, like a real network.
//!
//! [`DevNode::open`] keeps the node's key and an append-only event log in a directory, so its
//! invoices, settlements and payments survive a restart (or a `kill -9`) of `flashd`.
//!
//! Liquidity is simulated too, so a liquidity manager has something to manage: the node starts
//! with on-chain funds and one channel to a simulated peer ([`DEV_ONCHAIN_SATS`],
//! [`DEV_CHANNEL_SATS`], half on each side); a payment out needs outbound capacity in one
//! channel and moves it to the other side, a receipt needs inbound capacity, and opening a
//! channel spends on-chain funds and is usable at once.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use flash_core::lightning::{
    ChannelInfo, DevOutcome, FeeEstimateRequest, Hash32, Invoice, InvoiceRequest, LightningError, LightningNode,
    NodeInfo, OpenChannelRequest, PayRequest, PaymentHash, PaymentState, SettledInvoice, SimulatorControls,
};
use flash_core::ports::BoxFuture;
use flash_core::Network;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::bolt11::{self, amount_to_pay, NewInvoice};

/// On-chain funds a new simulated node starts with, satoshis.
pub const DEV_ONCHAIN_SATS: u64 = 100_000_000;
/// Capacity of the channel a new simulated node starts with, satoshis (half on each side).
pub const DEV_CHANNEL_SATS: u64 = 200_000_000;
/// The simulated peer of the starting channel.
const DEV_PEER: &str = "02000000000000000000000000000000000000000000000000000000000000dev0";

/// Longest memo a BOLT11 description holds.
const MEMO_MAX_BYTES: usize = 639;

#[derive(Clone, Copy, PartialEq, Eq)]
enum InvoiceStatus {
    Open,
    Settled,
    Cancelled,
}

struct OwnInvoice {
    invoice: Invoice,
    status: InvoiceStatus,
}

#[derive(Default)]
struct State {
    invoices: HashMap<PaymentHash, OwnInvoice>,
    settled: Vec<SettledInvoice>,
    payments: HashMap<PaymentHash, PaymentState>,
    /// Results the simulated network delivers once their time comes: (when, what).
    late: HashMap<PaymentHash, (Duration, PaymentState)>,
    /// Where events are appended, for a node opened on a directory.
    log: Option<File>,
    /// Simulated channels.
    channels: Vec<SimChannel>,
    /// Simulated confirmed on-chain funds, satoshis.
    onchain_sat: u64,
}

/// A simulated channel.
#[derive(Clone)]
struct SimChannel {
    id: String,
    peer: String,
    capacity_msat: u64,
    local_msat: u64,
}

impl State {
    /// A node's starting liquidity.
    fn fresh() -> State {
        State {
            onchain_sat: DEV_ONCHAIN_SATS,
            channels: vec![SimChannel {
                id: "sim:0:0".into(),
                peer: DEV_PEER.into(),
                capacity_msat: DEV_CHANNEL_SATS * 1_000,
                local_msat: DEV_CHANNEL_SATS * 500,
            }],
            ..State::default()
        }
    }

    /// Moves `msat` out through the channel with the most outbound capacity, if one can.
    fn spend(&mut self, msat: u64) -> bool {
        let best = self.channels.iter_mut().max_by_key(|c| c.local_msat);
        match best {
            Some(c) if c.local_msat >= msat => {
                c.local_msat -= msat;
                true
            }
            _ => false,
        }
    }

    /// Takes `msat` in through the channel with the most inbound capacity, if one can.
    fn take_in(&mut self, msat: u64) -> bool {
        let best = self.channels.iter_mut().max_by_key(|c| c.capacity_msat - c.local_msat);
        match best {
            Some(c) if c.capacity_msat - c.local_msat >= msat => {
                c.local_msat += msat;
                true
            }
            _ => false,
        }
    }

    /// Opens a channel funded on chain.
    fn open(&mut self, peer: &str, sat: u64) -> Result<String, LightningError> {
        if sat > self.onchain_sat {
            return Err(LightningError::InvalidInput(format!(
                "{sat} sats exceed the {} sats on chain",
                self.onchain_sat
            )));
        }
        self.onchain_sat -= sat;
        let id = format!("sim:{}:0", self.channels.len());
        self.channels.push(SimChannel {
            id: id.clone(),
            peer: peer.to_string(),
            capacity_msat: sat.saturating_mul(1_000),
            local_msat: sat.saturating_mul(1_000),
        });
        Ok(id)
    }
}

/// One change of a node's state, as logged (one JSON object per line).
#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    /// The first line: the network the log belongs to.
    Opened { network: String },
    /// An invoice was issued.
    Invoice { payment_request: String },
    /// An invoice was paid; its settle index is its position among settlements.
    Settled { payment_hash: String, msat: u64 },
    /// An invoice was cancelled.
    Cancelled { payment_hash: String },
    /// A payment was sent; `state` is delivered at `at_ms`. A success spent `spent_msat`
    /// (amount and fee) of outbound capacity when it was sent.
    Payment {
        payment_hash: String,
        at_ms: u64,
        state: LoggedState,
        #[serde(default)]
        spent_msat: u64,
    },
    /// A channel was opened with on-chain funds.
    ChannelOpened { peer: String, sat: u64 },
}

/// A payment outcome, as logged.
#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum LoggedState {
    InFlight,
    Succeeded { fee_msat: u64 },
    Failed { reason: String },
}

impl From<&PaymentState> for LoggedState {
    fn from(s: &PaymentState) -> Self {
        match s {
            PaymentState::InFlight => LoggedState::InFlight,
            PaymentState::Succeeded { fee_msat, .. } => LoggedState::Succeeded { fee_msat: *fee_msat },
            PaymentState::Failed { reason } => LoggedState::Failed { reason: reason.clone() },
        }
    }
}

impl From<LoggedState> for PaymentState {
    fn from(s: LoggedState) -> Self {
        match s {
            LoggedState::InFlight => PaymentState::InFlight,
            LoggedState::Succeeded { fee_msat } => PaymentState::Succeeded {
                preimage: None,
                fee_msat,
            },
            LoggedState::Failed { reason } => PaymentState::Failed { reason },
        }
    }
}

fn log_error(e: impl std::fmt::Display) -> LightningError {
    LightningError::Unavailable(format!("dev node log: {e}"))
}

impl State {
    /// Appends an event to the log (if any). Called with the state locked, before the change
    /// is applied, so the log never lags what callers were told.
    fn record(&mut self, event: &Event) -> Result<(), LightningError> {
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(event).map_err(log_error)?;
        line.push(b'\n');
        let before = log.metadata().map_err(log_error)?.len();
        if let Err(e) = log.write_all(&line) {
            // A partial line would swallow the next event on replay: take it back.
            let _ = log.set_len(before);
            return Err(log_error(e));
        }
        Ok(())
    }

    /// Where a payment stands now: its result once its time has come.
    fn current(&mut self, hash: PaymentHash) -> Option<PaymentState> {
        if self.late.get(&hash).is_some_and(|(at, _)| now() >= *at) {
            if let Some((_, result)) = self.late.remove(&hash) {
                self.payments.insert(hash, result);
            }
        }
        self.payments.get(&hash).cloned()
    }

    /// Applies a logged event while loading.
    fn replay(&mut self, event: Event, network: Network) -> Result<(), LightningError> {
        let hash = |h: &str| h.parse::<Hash32>();
        match event {
            Event::Opened { network: logged } if logged != network.as_str() => {
                return Err(LightningError::InvalidInput(format!(
                    "the dev node's data is for {logged}, not {network}"
                )))
            }
            Event::Opened { .. } => {}
            Event::Invoice { payment_request } => {
                let invoice = bolt11::decode(&payment_request, network)?;
                let own = OwnInvoice {
                    invoice,
                    status: InvoiceStatus::Open,
                };
                self.invoices.insert(own.invoice.payment_hash, own);
            }
            Event::Settled { payment_hash, msat } => {
                self.take_in(msat);
                let payment_hash = hash(&payment_hash)?;
                if let Some(own) = self.invoices.get_mut(&payment_hash) {
                    own.status = InvoiceStatus::Settled;
                }
                let settle_index = self.settled.len() as u64 + 1;
                self.settled.push(SettledInvoice {
                    payment_hash,
                    amount_received_msat: msat,
                    settle_index,
                });
            }
            Event::Cancelled { payment_hash } => {
                if let Some(own) = self.invoices.get_mut(&hash(&payment_hash)?) {
                    own.status = InvoiceStatus::Cancelled;
                }
            }
            Event::Payment {
                payment_hash,
                at_ms,
                state,
                spent_msat,
            } => {
                self.spend(spent_msat);
                let payment_hash = hash(&payment_hash)?;
                self.payments.insert(payment_hash, PaymentState::InFlight);
                self.late
                    .insert(payment_hash, (Duration::from_millis(at_ms), state.into()));
            }
            Event::ChannelOpened { peer, sat } => {
                self.open(&peer, sat)?;
            }
        }
        Ok(())
    }
}

/// A simulated Lightning node. See the module docs for what is real and what is not.
pub struct DevNode {
    key: SecretKey,
    pubkey: PublicKey,
    network: Network,
    outcome: Mutex<DevOutcome>,
    state: Mutex<State>,
    settlements: Notify,
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn random32() -> [u8; 32] {
    let mut out = [0u8; 32];
    bitcoin::secp256k1::rand::Rng::fill(&mut bitcoin::secp256k1::rand::thread_rng(), &mut out[..]);
    out
}

fn unavailable<T>(_: T) -> LightningError {
    LightningError::Unavailable("dev node state poisoned".into())
}

impl DevNode {
    /// A simulated node on `network` with the 32-byte secret `key` (keep it to keep the node's
    /// identity across restarts). Refused on mainnet.
    pub fn new(network: Network, key: [u8; 32], outcome: DevOutcome) -> Result<DevNode, LightningError> {
        DevNode::with_state(network, key, outcome, State::fresh())
    }

    /// A simulated node kept in `dir`: its key (`dev-node.key`, created on first use, owner
    /// read/write only) and its event log (`dev-node.log`), replayed on open.
    pub fn open(dir: &Path, network: Network, outcome: DevOutcome) -> Result<DevNode, LightningError> {
        if !network.allows_dev_features() {
            return Err(LightningError::Unsupported(
                "the dev Lightning simulator does not run on mainnet",
            ));
        }
        std::fs::create_dir_all(dir).map_err(log_error)?;
        let key = load_or_create_key(&dir.join("dev-node.key"))?;
        let log_path = dir.join("dev-node.log");
        let mut state = State::fresh();
        let existing = match File::open(&log_path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(log_error(e)),
        };
        let mut good_len = 0u64;
        if let Some(f) = existing.as_ref() {
            let mut reader = BufReader::new(f);
            let mut line = String::new();
            loop {
                line.clear();
                let read = reader.read_line(&mut line).map_err(log_error)?;
                if read == 0 {
                    break;
                }
                // A line cut short by a crash (no newline, or not an event) must be the last
                // one: what it recorded never happened, and it is cut off below.
                let event = line
                    .strip_suffix('\n')
                    .and_then(|l| serde_json::from_str::<Event>(l).ok());
                let Some(event) = event else {
                    let rest = reader.fill_buf().map_err(log_error)?;
                    if !rest.is_empty() {
                        return Err(log_error("an unreadable event in the middle of the log"));
                    }
                    tracing::warn!("dev node log: cutting off an incomplete last line");
                    break;
                };
                state.replay(event, network)?;
                good_len += read as u64;
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(log_error)?;
        // Appends go after the last whole event.
        log.set_len(good_len).map_err(log_error)?;
        state.log = Some(log);
        if existing.is_none() {
            state.record(&Event::Opened {
                network: network.as_str().to_string(),
            })?;
        }
        DevNode::with_state(network, key, outcome, state)
    }

    fn with_state(
        network: Network,
        key: [u8; 32],
        outcome: DevOutcome,
        state: State,
    ) -> Result<DevNode, LightningError> {
        if !network.allows_dev_features() {
            return Err(LightningError::Unsupported(
                "the dev Lightning simulator does not run on mainnet",
            ));
        }
        let key = SecretKey::from_slice(&key).map_err(|e| LightningError::InvalidInput(format!("node key: {e}")))?;
        let pubkey = PublicKey::from_secret_key(&Secp256k1::signing_only(), &key);
        tracing::warn!(network = %network, node = %pubkey, "Lightning: dev backend, a SIMULATOR; no real payments");
        Ok(DevNode {
            key,
            pubkey,
            network,
            outcome: Mutex::new(outcome),
            state: Mutex::new(state),
            settlements: Notify::new(),
        })
    }

    /// A fresh random node key.
    pub fn generate_key() -> [u8; 32] {
        loop {
            let candidate = random32();
            if SecretKey::from_slice(&candidate).is_ok() {
                return candidate;
            }
        }
    }

    fn first_settled_after(&self, after_index: u64) -> Result<Option<SettledInvoice>, LightningError> {
        let state = self.state.lock().map_err(unavailable)?;
        let from = usize::try_from(after_index).unwrap_or(usize::MAX);
        Ok(state.settled.get(from).cloned())
    }

    async fn pay_external(&self, req: PayRequest) -> Result<PaymentState, LightningError> {
        let invoice = bolt11::decode(&req.payment_request, self.network)?;
        let amount = amount_to_pay(&invoice, req.amount_msat)?;
        if invoice.payee == self.pubkey.to_string() {
            return Ok(PaymentState::Failed {
                reason: "cannot pay an invoice of this node".into(),
            });
        }
        if invoice.expired_at(now().as_secs()) {
            return Ok(PaymentState::Failed {
                reason: "invoice expired".into(),
            });
        }
        let outcome = *self.outcome.lock().map_err(unavailable)?;
        let (delay, result) = match outcome {
            DevOutcome::Succeed { delay_ms, fee_ppm } => {
                let fee = amount.saturating_mul(fee_ppm) / 1_000_000;
                let result = if fee > req.max_fee_msat {
                    PaymentState::Failed {
                        reason: "no route within the fee limit".into(),
                    }
                } else {
                    PaymentState::Succeeded {
                        preimage: None,
                        fee_msat: fee,
                    }
                };
                (Duration::from_millis(delay_ms), result)
            }
            DevOutcome::Fail { delay_ms } => (
                Duration::from_millis(delay_ms),
                PaymentState::Failed {
                    reason: "no route".into(),
                },
            ),
            DevOutcome::Hang => (Duration::MAX, PaymentState::InFlight),
        };
        let hash = invoice.payment_hash;
        {
            let mut state = self.state.lock().map_err(unavailable)?;
            // One payment per hash at a time, and none after a success; a failed one may be
            // tried again, as on a real node.
            // Decided under the same lock as the new attempt, so two retries cannot both go.
            match state.current(hash) {
                None | Some(PaymentState::Failed { .. }) => {}
                Some(live) => return Ok(live),
            }
            // A success needs outbound capacity for the amount and the fee, taken as it is sent.
            let (result, spent_msat) = match result {
                PaymentState::Succeeded { fee_msat, .. } => {
                    let spent = amount.saturating_add(fee_msat);
                    if state.channels.iter().any(|c| c.local_msat >= spent) {
                        (result, spent)
                    } else {
                        let reason = "no route: not enough outbound liquidity".to_string();
                        (PaymentState::Failed { reason }, 0)
                    }
                }
                other => (other, 0),
            };
            let at = now().saturating_add(delay);
            state.record(&Event::Payment {
                payment_hash: hash.to_string(),
                at_ms: u64::try_from(at.as_millis()).unwrap_or(u64::MAX),
                state: (&result).into(),
                spent_msat,
            })?;
            state.spend(spent_msat);
            state.payments.insert(hash, PaymentState::InFlight);
            state.late.insert(hash, (at, result));
        }
        tokio::time::sleep(delay.min(Duration::from_secs(req.timeout_secs))).await;
        self.track(hash)
    }

    /// Where a payment stands now: its result once its time has come.
    fn track(&self, hash: PaymentHash) -> Result<PaymentState, LightningError> {
        let mut state = self.state.lock().map_err(unavailable)?;
        state.current(hash).ok_or(LightningError::NotFound)
    }
}

fn load_or_create_key(path: &Path) -> Result<[u8; 32], LightningError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let h = text.trim().parse::<Hash32>().map_err(|_| {
                LightningError::InvalidInput(format!("{} is not a 64-hex-character key", path.display()))
            })?;
            Ok(h.0)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = DevNode::generate_key();
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(log_error)?;
            file.write_all(Hash32(key).to_string().as_bytes()).map_err(log_error)?;
            file.sync_all().map_err(log_error)?;
            Ok(key)
        }
        Err(e) => Err(log_error(e)),
    }
}

impl SimulatorControls for DevNode {
    fn pay_from_outside(
        &self,
        payment_request: &str,
        amount_msat: Option<u64>,
    ) -> Result<SettledInvoice, LightningError> {
        let decoded = bolt11::decode(payment_request, self.network)?;
        let mut state = self.state.lock().map_err(unavailable)?;
        let next_index = state.settled.len() as u64 + 1;
        let own = state
            .invoices
            .get(&decoded.payment_hash)
            .ok_or(LightningError::NotFound)?;
        match own.status {
            InvoiceStatus::Open => {}
            InvoiceStatus::Settled => return Err(LightningError::AlreadyPaid),
            InvoiceStatus::Cancelled => return Err(LightningError::InvalidInput("invoice cancelled".into())),
        }
        if own.invoice.expired_at(now().as_secs()) {
            return Err(LightningError::InvalidInput("invoice expired".into()));
        }
        let amount = match (own.invoice.amount_msat, amount_msat) {
            (Some(a), None) => a,
            (Some(a), Some(b)) if a == b => a,
            (None, Some(b)) if b > 0 => b,
            (Some(_), Some(_)) => return Err(LightningError::InvalidInput("amount differs from the invoice".into())),
            _ => {
                return Err(LightningError::InvalidInput(
                    "a no-amount invoice needs an amount".into(),
                ))
            }
        };
        if !state.channels.iter().any(|c| c.capacity_msat - c.local_msat >= amount) {
            return Err(LightningError::NoRoute("not enough inbound liquidity".into()));
        }
        if let Some(own) = state.invoices.get_mut(&decoded.payment_hash) {
            own.status = InvoiceStatus::Settled;
        }
        let settled = SettledInvoice {
            payment_hash: decoded.payment_hash,
            amount_received_msat: amount,
            settle_index: next_index,
        };
        state.record(&Event::Settled {
            payment_hash: decoded.payment_hash.to_string(),
            msat: amount,
        })?;
        state.take_in(amount);
        state.settled.push(settled.clone());
        drop(state);
        self.settlements.notify_waiters();
        Ok(settled)
    }

    fn set_outcome(&self, outcome: DevOutcome) -> Result<(), LightningError> {
        *self.outcome.lock().map_err(unavailable)? = outcome;
        Ok(())
    }
}

impl LightningNode for DevNode {
    fn create_invoice(&self, req: InvoiceRequest) -> BoxFuture<'_, Result<Invoice, LightningError>> {
        Box::pin(async move {
            if let flash_core::lightning::InvoiceDescription::Memo(m) = &req.description {
                if m.len() > MEMO_MAX_BYTES {
                    return Err(LightningError::InvalidInput(format!(
                        "memo over {MEMO_MAX_BYTES} bytes"
                    )));
                }
            }
            if req.amount_msat == Some(0) {
                return Err(LightningError::InvalidInput("amount must be positive".into()));
            }
            let preimage = random32();
            let payment_hash = Hash32(sha256::Hash::hash(&preimage).to_byte_array());
            let invoice = bolt11::sign(
                NewInvoice {
                    network: self.network,
                    payment_hash,
                    payment_secret: random32(),
                    amount_msat: req.amount_msat,
                    description: req.description,
                    created_at: now(),
                    expiry_secs: req.expiry_secs,
                },
                &self.key,
            )?;
            let own = OwnInvoice {
                invoice: invoice.clone(),
                status: InvoiceStatus::Open,
            };
            let mut state = self.state.lock().map_err(unavailable)?;
            state.record(&Event::Invoice {
                payment_request: invoice.payment_request.clone(),
            })?;
            state.invoices.insert(payment_hash, own);
            Ok(invoice)
        })
    }

    fn decode_invoice<'a>(&'a self, payment_request: &'a str) -> BoxFuture<'a, Result<Invoice, LightningError>> {
        Box::pin(async move { bolt11::decode(payment_request, self.network) })
    }

    fn cancel_invoice(&self, hash: PaymentHash) -> BoxFuture<'_, Result<(), LightningError>> {
        Box::pin(async move {
            let mut state = self.state.lock().map_err(unavailable)?;
            match state.invoices.get(&hash).map(|o| o.status) {
                None => Err(LightningError::NotFound),
                Some(InvoiceStatus::Settled) => Err(LightningError::AlreadyPaid),
                Some(InvoiceStatus::Cancelled) => Ok(()),
                Some(InvoiceStatus::Open) => {
                    state.record(&Event::Cancelled {
                        payment_hash: hash.to_string(),
                    })?;
                    if let Some(own) = state.invoices.get_mut(&hash) {
                        own.status = InvoiceStatus::Cancelled;
                    }
                    Ok(())
                }
            }
        })
    }

    fn estimate_fee(&self, req: FeeEstimateRequest) -> BoxFuture<'_, Result<u64, LightningError>> {
        Box::pin(async move {
            let invoice = bolt11::decode(&req.payment_request, self.network)?;
            let amount = amount_to_pay(&invoice, req.amount_msat)?;
            match *self.outcome.lock().map_err(unavailable)? {
                DevOutcome::Succeed { fee_ppm, .. } => Ok(amount.saturating_mul(fee_ppm) / 1_000_000),
                DevOutcome::Fail { .. } => Err(LightningError::NoRoute("simulated network has no route".into())),
                DevOutcome::Hang => Ok(0),
            }
        })
    }

    fn pay(&self, req: PayRequest) -> BoxFuture<'_, Result<PaymentState, LightningError>> {
        Box::pin(self.pay_external(req))
    }

    fn track_payment(&self, hash: PaymentHash) -> BoxFuture<'_, Result<PaymentState, LightningError>> {
        Box::pin(async move { self.track(hash) })
    }

    fn wait_settled(&self, after_index: u64) -> BoxFuture<'_, Result<SettledInvoice, LightningError>> {
        Box::pin(async move {
            loop {
                let notified = self.settlements.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(settled) = self.first_settled_after(after_index)? {
                    return Ok(settled);
                }
                notified.await;
            }
        })
    }

    fn node_info(&self) -> BoxFuture<'_, Result<NodeInfo, LightningError>> {
        Box::pin(async move {
            Ok(NodeInfo {
                pubkey: self.pubkey.to_string(),
                alias: "flash-dev (simulator)".into(),
                network: self.network,
                block_height: 0,
                synced: true,
                simulated: true,
            })
        })
    }

    fn channels(&self) -> BoxFuture<'_, Result<Vec<ChannelInfo>, LightningError>> {
        Box::pin(async move {
            let state = self.state.lock().map_err(unavailable)?;
            Ok(state
                .channels
                .iter()
                .map(|c| ChannelInfo {
                    id: c.id.clone(),
                    peer: c.peer.clone(),
                    capacity_sat: c.capacity_msat / 1_000,
                    local_sat: c.local_msat / 1_000,
                    remote_sat: (c.capacity_msat - c.local_msat) / 1_000,
                    active: true,
                })
                .collect())
        })
    }

    fn onchain_balance(&self) -> BoxFuture<'_, Result<u64, LightningError>> {
        Box::pin(async move { Ok(self.state.lock().map_err(unavailable)?.onchain_sat) })
    }

    fn open_channel(&self, req: OpenChannelRequest) -> BoxFuture<'_, Result<String, LightningError>> {
        Box::pin(async move {
            if req.amount_sat == 0 || req.peer.len() != 66 || !req.peer.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(LightningError::InvalidInput(
                    "a channel needs a positive amount and a 33-byte hex peer key".into(),
                ));
            }
            let mut state = self.state.lock().map_err(unavailable)?;
            if req.amount_sat > state.onchain_sat {
                return Err(LightningError::InvalidInput(format!(
                    "{} sats exceed the {} sats on chain",
                    req.amount_sat, state.onchain_sat
                )));
            }
            state.record(&Event::ChannelOpened {
                peer: req.peer.clone(),
                sat: req.amount_sat,
            })?;
            state.open(&req.peer, req.amount_sat)
        })
    }
}
