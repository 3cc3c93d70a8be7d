//! The `LightningNode` port: what the bank needs from a Lightning node, whichever node it is
//! (LND over gRPC, embedded LDK, or the `dev` simulator). Amounts are millisatoshis, as on the
//! wire; the bank converts to satoshis with its own rounding rule.
//!
//! Settled invoices are read as a long poll: [`LightningNode::wait_settled`] returns the first
//! settlement after a given settle index, waiting if there is none yet. Asking again with the
//! last index seen is both the live stream and the catch-up after a restart.

use std::fmt;
use std::str::FromStr;

use crate::ports::BoxFuture;
use crate::Network;

/// A 32-byte hash or preimage, shown as lower-case hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash32(pub [u8; 32]);

/// The hash an invoice is paid against.
pub type PaymentHash = Hash32;
/// The secret that proves payment.
pub type Preimage = Hash32;

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({self})")
    }
}

impl FromStr for Hash32 {
    type Err = LightningError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || LightningError::InvalidInput("expected 64 hex characters".into());
        if s.len() != 64 || !s.is_ascii() {
            return Err(invalid());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(Hash32(out))
    }
}

/// What an invoice says it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvoiceDescription {
    /// A text memo.
    Memo(String),
    /// The SHA-256 of a longer description (LNURL-pay metadata, zaps).
    Hash(Hash32),
}

/// A request for a new invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRequest {
    /// Amount, or none for a no-amount invoice.
    pub amount_msat: Option<u64>,
    /// Memo or description hash.
    pub description: InvoiceDescription,
    /// Seconds until it expires; more than 0 (nodes differ on what 0 means).
    pub expiry_secs: u64,
}

/// A BOLT11 invoice, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    /// The encoded invoice (`lnbc…`, `lnbcrt…`).
    pub payment_request: String,
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// Its payment secret (not the preimage): what a payer must present with the payment.
    pub payment_secret: Hash32,
    /// Its amount, if it has one.
    pub amount_msat: Option<u64>,
    /// Memo or description hash.
    pub description: InvoiceDescription,
    /// The payee node's public key (hex).
    pub payee: String,
    /// Creation time, Unix seconds.
    pub created_at_secs: u64,
    /// Seconds from creation until it expires.
    pub expiry_secs: u64,
    /// The network it is for.
    pub network: Network,
}

impl Invoice {
    /// Whether it has expired at `now_secs`.
    pub fn expired_at(&self, now_secs: u64) -> bool {
        now_secs >= self.created_at_secs.saturating_add(self.expiry_secs)
    }
}

/// A request to pay an invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayRequest {
    /// The invoice.
    pub payment_request: String,
    /// The amount to pay, required for a no-amount invoice and refused otherwise.
    pub amount_msat: Option<u64>,
    /// The most the node may spend on routing fees.
    pub max_fee_msat: u64,
    /// How long the node may keep trying.
    pub timeout_secs: u64,
}

/// A request to estimate the routing fee of a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeEstimateRequest {
    /// The invoice.
    pub payment_request: String,
    /// The amount, required for a no-amount invoice.
    pub amount_msat: Option<u64>,
}

/// Where a payment stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentState {
    /// Still being tried (or the node does not know yet): resolve later with `track_payment`.
    InFlight,
    /// Paid.
    Succeeded {
        /// The preimage, when the node learned one.
        preimage: Option<Preimage>,
        /// Routing fees actually paid.
        fee_msat: u64,
    },
    /// Definitely not paid; the funds can be released.
    Failed {
        /// Why, in the node's words.
        reason: String,
    },
}

/// An invoice of ours that was paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledInvoice {
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// What was received.
    pub amount_received_msat: u64,
    /// The node's settle counter: strictly increasing across settlements.
    pub settle_index: u64,
}

/// The node's identity and state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Public key (hex).
    pub pubkey: String,
    /// Alias.
    pub alias: String,
    /// Network.
    pub network: Network,
    /// Best block height known.
    pub block_height: u32,
    /// Whether it is synced to the chain.
    pub synced: bool,
    /// True for a simulator (`dev`), so nobody mistakes it for a real node.
    pub simulated: bool,
}

/// One channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Channel id as the node names it.
    pub id: String,
    /// The peer's public key (hex).
    pub peer: String,
    /// Capacity, satoshis.
    pub capacity_sat: u64,
    /// Our side, satoshis.
    pub local_sat: u64,
    /// Their side, satoshis.
    pub remote_sat: u64,
    /// Usable now.
    pub active: bool,
}

/// A request to open a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenChannelRequest {
    /// The peer's public key (hex).
    pub peer: String,
    /// `host:port` to connect to, if not connected yet.
    pub address: Option<String>,
    /// Channel size, satoshis.
    pub amount_sat: u64,
}

/// Why the node could not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightningError {
    /// Not a valid invoice.
    #[error("invalid invoice: {0}")]
    InvalidInvoice(String),
    /// An invoice for another network.
    #[error("invoice is for {found}, this node runs on {expected}")]
    WrongNetwork {
        /// This node's network.
        expected: Network,
        /// The invoice's.
        found: Network,
    },
    /// Bad parameters.
    #[error("invalid request: {0}")]
    InvalidInput(String),
    /// No such invoice or payment.
    #[error("not found")]
    NotFound,
    /// The invoice was already paid.
    #[error("invoice already paid")]
    AlreadyPaid,
    /// No route to the payee (within the fee limit).
    #[error("no route: {0}")]
    NoRoute(String),
    /// This node does not do that.
    #[error("not supported by this node: {0}")]
    Unsupported(&'static str),
    /// The node could not be reached or failed.
    #[error("lightning node unavailable: {0}")]
    Unavailable(String),
}

/// How a simulated network treats payments to other nodes (the `dev` backend).
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

/// What only a simulator offers, for development and tests on regtest: paying one of our
/// invoices "from outside", and choosing how payments to other nodes end.
pub trait SimulatorControls: Send + Sync {
    /// Pays one of this node's invoices from the simulated outside world. `amount_msat` is
    /// required for a no-amount invoice and must match otherwise.
    fn pay_from_outside(
        &self,
        payment_request: &str,
        amount_msat: Option<u64>,
    ) -> Result<SettledInvoice, LightningError>;

    /// Changes how payments to other nodes turn out from now on.
    fn set_outcome(&self, outcome: DevOutcome) -> Result<(), LightningError>;
}

/// A Lightning node, as the bank uses it.
pub trait LightningNode: Send + Sync {
    /// Creates an invoice.
    fn create_invoice(&self, req: InvoiceRequest) -> BoxFuture<'_, Result<Invoice, LightningError>>;

    /// Creates an invoice paid through a just-in-time channel an LSP (LSPS2) opens when the
    /// payment arrives: inbound liquidity on demand. The LSP keeps its fee, at most
    /// `max_lsp_fee_msat`, out of the payment; the settlement reports what arrived. Nodes
    /// without an LSP answer `Unsupported`.
    fn create_jit_invoice(
        &self,
        req: InvoiceRequest,
        max_lsp_fee_msat: u64,
    ) -> BoxFuture<'_, Result<Invoice, LightningError>> {
        let _ = (req, max_lsp_fee_msat);
        Box::pin(async { Err(LightningError::Unsupported("just-in-time channels")) })
    }

    /// Decodes (and checks the signature and network of) an invoice.
    fn decode_invoice<'a>(&'a self, payment_request: &'a str) -> BoxFuture<'a, Result<Invoice, LightningError>>;

    /// Cancels an unpaid invoice of ours so it can no longer be paid (done when a Flash user
    /// paid it intraledger). Cancelling a paid invoice is refused.
    fn cancel_invoice(&self, hash: PaymentHash) -> BoxFuture<'_, Result<(), LightningError>>;

    /// The routing fee the node expects for paying an invoice (`amount_msat` for a no-amount
    /// invoice), without paying it.
    fn estimate_fee(&self, req: FeeEstimateRequest) -> BoxFuture<'_, Result<u64, LightningError>>;

    /// Pays an invoice, waiting until the payment is final or `timeout_secs` passes
    /// (then [`PaymentState::InFlight`]). Paying the same hash twice never pays twice.
    ///
    /// `Err` means the payment certainly did not start (bad invoice, refused request, node
    /// unreachable before sending); whenever it may have started, the answer is a state, and
    /// an unknown one is `InFlight`, to be resolved with `track_payment`.
    fn pay(&self, req: PayRequest) -> BoxFuture<'_, Result<PaymentState, LightningError>>;

    /// Where an outgoing payment stands.
    fn track_payment(&self, hash: PaymentHash) -> BoxFuture<'_, Result<PaymentState, LightningError>>;

    /// The first invoice settled after `after_index`, waiting until there is one.
    fn wait_settled(&self, after_index: u64) -> BoxFuture<'_, Result<SettledInvoice, LightningError>>;

    /// Identity and chain state.
    fn node_info(&self) -> BoxFuture<'_, Result<NodeInfo, LightningError>>;

    /// Open channels.
    fn channels(&self) -> BoxFuture<'_, Result<Vec<ChannelInfo>, LightningError>>;

    /// The node's confirmed on-chain balance, satoshis: what channel opens can spend.
    fn onchain_balance(&self) -> BoxFuture<'_, Result<u64, LightningError>> {
        Box::pin(async { Err(LightningError::Unsupported("on-chain balance")) })
    }

    /// Opens a channel; returns its id.
    fn open_channel(&self, req: OpenChannelRequest) -> BoxFuture<'_, Result<String, LightningError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_as_hex() {
        let h = Hash32([0xab; 32]);
        let s = h.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<Hash32>(), Ok(h));
        assert!("zz".repeat(32).parse::<Hash32>().is_err());
        assert!("ab".parse::<Hash32>().is_err());
        assert!("é".repeat(32).parse::<Hash32>().is_err());
    }
}
