//! The `dev` Lightning backend: a simulated network for the embedded tier and tests.
//!
//! What is real: the invoices (BOLT11, signed with this node's key, checked on decode) and the
//! bookkeeping a node does (settle indexes, one payment per hash). What is simulated: the
//! network. Our invoices are settled by [`DevNode::pay_from_outside`]; other nodes' invoices are
//! "paid" with the configured [`DevOutcome`] and no real preimage.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use flash_core::lightning::{
    ChannelInfo, FeeEstimateRequest, Hash32, Invoice, InvoiceRequest, LightningError, LightningNode, NodeInfo,
    OpenChannelRequest, PayRequest, PaymentHash, PaymentState, SettledInvoice,
};
use flash_core::ports::BoxFuture;
use flash_core::Network;
use tokio::sync::Notify;

use crate::bolt11::{self, NewInvoice};

/// How the simulated network treats payments to other nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevOutcome {
    /// Paid after `delay_ms`, with `fee_ppm` of the amount as routing fee (within the cap).
    Succeed {
        /// Simulated routing time.
        delay_ms: u64,
        /// Routing fee, parts per million.
        fee_ppm: u64,
    },
    /// Fails after `delay_ms` ("no route").
    Fail {
        /// Simulated routing time.
        delay_ms: u64,
    },
    /// Never resolves: stays in flight (to exercise reconciliation).
    Hang,
}

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
    /// Results the simulated network delivers after the payer stopped waiting: (when, what).
    late: HashMap<PaymentHash, (Duration, PaymentState)>,
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
            state: Mutex::new(State::default()),
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

    /// Changes how payments to other nodes turn out.
    pub fn set_outcome(&self, outcome: DevOutcome) -> Result<(), LightningError> {
        *self.outcome.lock().map_err(unavailable)? = outcome;
        Ok(())
    }

    /// Pays one of this node's invoices "from outside" (the dev-only way to see a receive).
    /// `amount_msat` is required for a no-amount invoice and must match otherwise.
    pub fn pay_from_outside(
        &self,
        payment_request: &str,
        amount_msat: Option<u64>,
    ) -> Result<SettledInvoice, LightningError> {
        let decoded = bolt11::decode(payment_request, self.network)?;
        let mut state = self.state.lock().map_err(unavailable)?;
        let next_index = state.settled.len() as u64 + 1;
        let own = state
            .invoices
            .get_mut(&decoded.payment_hash)
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
        own.status = InvoiceStatus::Settled;
        let settled = SettledInvoice {
            payment_hash: decoded.payment_hash,
            amount_received_msat: amount,
            settle_index: next_index,
        };
        state.settled.push(settled.clone());
        drop(state);
        self.settlements.notify_waiters();
        Ok(settled)
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
        {
            let mut state = self.state.lock().map_err(unavailable)?;
            if let Some(existing) = state.payments.get(&invoice.payment_hash) {
                return Ok(existing.clone());
            }
            state.payments.insert(invoice.payment_hash, PaymentState::InFlight);
        }
        let outcome = *self.outcome.lock().map_err(unavailable)?;
        let timeout = Duration::from_secs(req.timeout_secs);
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
            DevOutcome::Hang => return Ok(PaymentState::InFlight),
        };
        if delay > timeout {
            // The simulated network answers after the caller stopped waiting.
            tokio::time::sleep(timeout).await;
            self.record_later(invoice.payment_hash, delay - timeout, result)?;
            return Ok(PaymentState::InFlight);
        }
        tokio::time::sleep(delay).await;
        self.state
            .lock()
            .map_err(unavailable)?
            .payments
            .insert(invoice.payment_hash, result.clone());
        Ok(result)
    }

    /// The simulated network answers after the caller stopped waiting; the answer shows on the
    /// next `track_payment` from `after` on.
    fn record_later(&self, hash: PaymentHash, after: Duration, result: PaymentState) -> Result<(), LightningError> {
        let mut state = self.state.lock().map_err(unavailable)?;
        state.payments.insert(hash, PaymentState::InFlight);
        state.late.insert(hash, (now() + after, result));
        Ok(())
    }
}

/// The amount a payment sends: the invoice's own, or the payer's for a no-amount invoice.
fn amount_to_pay(invoice: &Invoice, amount_msat: Option<u64>) -> Result<u64, LightningError> {
    match (invoice.amount_msat, amount_msat) {
        (Some(a), None) => Ok(a),
        (None, Some(b)) if b > 0 => Ok(b),
        (Some(_), Some(_)) => Err(LightningError::InvalidInput("the invoice has an amount".into())),
        _ => Err(LightningError::InvalidInput(
            "a no-amount invoice needs an amount".into(),
        )),
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
            self.state
                .lock()
                .map_err(unavailable)?
                .invoices
                .insert(payment_hash, own);
            Ok(invoice)
        })
    }

    fn decode_invoice<'a>(&'a self, payment_request: &'a str) -> BoxFuture<'a, Result<Invoice, LightningError>> {
        Box::pin(async move { bolt11::decode(payment_request, self.network) })
    }

    fn cancel_invoice(&self, hash: PaymentHash) -> BoxFuture<'_, Result<(), LightningError>> {
        Box::pin(async move {
            let mut state = self.state.lock().map_err(unavailable)?;
            let own = state.invoices.get_mut(&hash).ok_or(LightningError::NotFound)?;
            match own.status {
                InvoiceStatus::Settled => Err(LightningError::AlreadyPaid),
                InvoiceStatus::Open | InvoiceStatus::Cancelled => {
                    own.status = InvoiceStatus::Cancelled;
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
        Box::pin(async move {
            let mut state = self.state.lock().map_err(unavailable)?;
            if state.late.get(&hash).is_some_and(|(at, _)| now() >= *at) {
                if let Some((_, result)) = state.late.remove(&hash) {
                    state.payments.insert(hash, result);
                }
            }
            state.payments.get(&hash).cloned().ok_or(LightningError::NotFound)
        })
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
        Box::pin(async { Ok(Vec::new()) })
    }

    fn open_channel(&self, _req: OpenChannelRequest) -> BoxFuture<'_, Result<String, LightningError>> {
        Box::pin(async { Err(LightningError::Unsupported("the dev simulator has no channels")) })
    }
}
