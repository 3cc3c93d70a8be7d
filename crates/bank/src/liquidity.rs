//! The liquidity manager: reads the node's channels and on-chain funds periodically, judges
//! them against the operator's policy, and acts — an alert when liquidity leaves the policy,
//! and a channel to a preferred peer when outbound capacity is low and on-chain funds (and the
//! daily budget) allow. Every action is recorded (`ln_liquidity_actions` and the audit log)
//! and the latest report is kept for `/metrics` and the admin query.
//!
//! Judging is a pure function ([`assess`]) so the policy is tested apart from any node.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use flash_core::lightning::{ChannelInfo, Invoice, InvoiceRequest, LightningError, OpenChannelRequest};
use flash_core::Sats;
use flash_store::{LiquidityAction, LiquidityActionKind};
use serde::Deserialize;

use crate::{Bank, BankError};

/// A peer the manager may open channels to.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferredPeer {
    /// Public key, hex.
    pub pubkey: String,
    /// `host:port`, to connect if not connected.
    pub address: Option<String>,
}

/// The liquidity policy (`[lightning.liquidity]` in `flashd`'s file).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiquidityConfig {
    /// Whether the manager runs.
    pub enabled: bool,
    /// Seconds between checks.
    pub interval_secs: u64,
    /// Outbound capacity below this share of all capacity is out of policy, percent.
    pub min_outbound_percent: u64,
    /// Inbound capacity below this share is out of policy, percent.
    pub min_inbound_percent: u64,
    /// Peers channels may be opened to, in order of preference.
    pub preferred_peers: Vec<PreferredPeer>,
    /// Whether to open channels on its own when outbound is low.
    pub auto_open: bool,
    /// Largest channel it opens, satoshis.
    pub max_channel_sats: u64,
    /// Smallest channel worth opening, satoshis.
    pub min_channel_sats: u64,
    /// On-chain funds it never spends (fees, later closes), satoshis.
    pub onchain_reserve_sats: u64,
    /// Most it puts into new channels per 24 hours, satoshis.
    pub daily_budget_sats: u64,
    /// Whether an invoice larger than the inbound capacity is issued through a just-in-time
    /// channel from the node's LSPS2 service (nodes with one: LDK).
    pub jit_inbound: bool,
    /// The LSP's fee a just-in-time invoice may cost at most, basis points of its amount …
    pub jit_max_fee_bps: u32,
    /// … but at least this many satoshis (LSPs charge a minimum for opening a channel).
    pub jit_max_fee_min_sats: i64,
}

impl Default for LiquidityConfig {
    fn default() -> Self {
        LiquidityConfig {
            enabled: true,
            interval_secs: 60,
            min_outbound_percent: 20,
            min_inbound_percent: 20,
            preferred_peers: Vec::new(),
            auto_open: true,
            max_channel_sats: 10_000_000,
            min_channel_sats: 100_000,
            onchain_reserve_sats: 50_000,
            daily_budget_sats: 20_000_000,
            jit_inbound: true,
            jit_max_fee_bps: 100,
            jit_max_fee_min_sats: 5_000,
        }
    }
}

/// Something out of policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiquidityIssue {
    /// No usable channel.
    NoChannels,
    /// Outbound capacity is below the policy's share.
    OutboundLow,
    /// Inbound capacity is below the policy's share.
    InboundLow,
    /// The node could not be read.
    NodeUnavailable(String),
}

impl LiquidityIssue {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            LiquidityIssue::NoChannels => "NO_CHANNELS",
            LiquidityIssue::OutboundLow => "OUTBOUND_LOW",
            LiquidityIssue::InboundLow => "INBOUND_LOW",
            LiquidityIssue::NodeUnavailable(_) => "NODE_UNAVAILABLE",
        }
    }
}

/// The node's liquidity as last checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiquidityReport {
    /// When, Unix ms.
    pub checked_at_ms: i64,
    /// Channels, and how many are usable.
    pub channels: usize,
    /// Usable channels.
    pub active_channels: usize,
    /// What the node can send, satoshis.
    pub outbound_sats: u64,
    /// What the node can receive, satoshis.
    pub inbound_sats: u64,
    /// Confirmed on-chain funds, if the node tells.
    pub onchain_sats: Option<u64>,
    /// Outbound share of capacity, percent.
    pub outbound_percent: u64,
    /// Inbound share, percent.
    pub inbound_percent: u64,
    /// What is out of policy (empty: in policy).
    pub issues: Vec<LiquidityIssue>,
}

impl LiquidityReport {
    /// True when nothing is out of policy.
    pub fn in_policy(&self) -> bool {
        self.issues.is_empty()
    }
}

/// A channel the policy asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenPlan {
    /// The peer.
    pub peer: PreferredPeer,
    /// Its size, satoshis.
    pub amount_sats: u64,
}

/// Judges channels and on-chain funds against `policy`, with `budget_left_sats` of the daily
/// budget unspent: the report, and the channel to open, if any.
pub fn assess(
    channels: &[ChannelInfo],
    onchain_sats: Option<u64>,
    policy: &LiquidityConfig,
    budget_left_sats: u64,
) -> (LiquidityReport, Option<OpenPlan>) {
    let active: Vec<&ChannelInfo> = channels.iter().filter(|c| c.active).collect();
    let outbound: u64 = active.iter().map(|c| c.local_sat).sum();
    let inbound: u64 = active.iter().map(|c| c.remote_sat).sum();
    let total = outbound.saturating_add(inbound);
    let percent = |part: u64| part.saturating_mul(100).checked_div(total).unwrap_or(0);
    let mut issues = Vec::new();
    if active.is_empty() {
        issues.push(LiquidityIssue::NoChannels);
    }
    if percent(outbound) < policy.min_outbound_percent {
        issues.push(LiquidityIssue::OutboundLow);
    }
    if percent(inbound) < policy.min_inbound_percent {
        issues.push(LiquidityIssue::InboundLow);
    }
    let report = LiquidityReport {
        checked_at_ms: 0,
        channels: channels.len(),
        active_channels: active.len(),
        outbound_sats: outbound,
        inbound_sats: inbound,
        onchain_sats,
        outbound_percent: percent(outbound),
        inbound_percent: percent(inbound),
        issues,
    };
    let wants_outbound = report.issues.contains(&LiquidityIssue::OutboundLow);
    let plan = match (wants_outbound && policy.auto_open, onchain_sats) {
        (true, Some(onchain)) => {
            let spendable = onchain.saturating_sub(policy.onchain_reserve_sats);
            let amount = policy.max_channel_sats.min(spendable).min(budget_left_sats);
            // The preferred peer we have the least capacity with.
            let capacity_with = |p: &PreferredPeer| -> u64 {
                channels
                    .iter()
                    .filter(|c| c.peer.eq_ignore_ascii_case(&p.pubkey))
                    .map(|c| c.capacity_sat)
                    .sum()
            };
            let peer = policy.preferred_peers.iter().min_by_key(|p| capacity_with(p));
            match peer {
                Some(peer) if amount >= policy.min_channel_sats && amount > 0 => Some(OpenPlan {
                    peer: peer.clone(),
                    amount_sats: amount,
                }),
                _ => None,
            }
        }
        _ => None,
    };
    (report, plan)
}

/// The latest report, shared between the manager and readers.
#[derive(Default)]
pub(crate) struct LiquidityState {
    latest: Mutex<Option<LiquidityReport>>,
    /// Set once the node answered that it has no just-in-time channels.
    no_jit: AtomicBool,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1_000;

impl Bank {
    /// The latest liquidity report, if a check ran.
    pub fn liquidity_report(&self) -> Option<LiquidityReport> {
        self.liquidity.latest.lock().ok().and_then(|r| r.clone())
    }

    /// The liquidity policy.
    pub fn liquidity_policy(&self) -> &LiquidityConfig {
        &self.config.liquidity
    }

    /// The latest liquidity-manager actions, newest first.
    pub async fn liquidity_actions(&self, limit: i64) -> Result<Vec<LiquidityAction>, BankError> {
        Ok(self.store.liquidity_actions(limit.clamp(1, 500)).await?)
    }

    /// Checks liquidity now and acts on it: an alert when it has just left the policy, a
    /// channel when the policy asks for one.
    pub async fn liquidity_check(&self) -> Result<LiquidityReport, BankError> {
        let node = self
            .lightning_node()
            .ok_or_else(|| BankError::LightningUnavailable("no Lightning node is configured".into()))?;
        let policy = &self.config.liquidity;
        let now = self.store.now_ms();
        let was_in_policy = self.liquidity_report().is_none_or(|r| r.in_policy());
        let channels = node.channels().await;
        let onchain = match node.onchain_balance().await {
            Ok(sats) => Some(sats),
            Err(LightningError::Unsupported(_)) => None,
            Err(e) => {
                tracing::warn!(error = %e, "liquidity: on-chain balance unavailable");
                None
            }
        };
        let spent = u64::try_from(self.store.liquidity_opened_since(now - DAY_MS).await?).unwrap_or(0);
        let budget_left = policy.daily_budget_sats.saturating_sub(spent);
        let (mut report, plan) = match &channels {
            Ok(channels) => assess(channels, onchain, policy, budget_left),
            Err(e) => {
                let report = LiquidityReport {
                    issues: vec![LiquidityIssue::NodeUnavailable(e.to_string())],
                    ..LiquidityReport::default()
                };
                (report, None)
            }
        };
        report.checked_at_ms = now;
        if was_in_policy && !report.in_policy() {
            let codes: Vec<&str> = report.issues.iter().map(LiquidityIssue::code).collect();
            let detail = format!(
                "out of policy ({}): outbound {}% ({} sats), inbound {}% ({} sats)",
                codes.join(", "),
                report.outbound_percent,
                report.outbound_sats,
                report.inbound_percent,
                report.inbound_sats
            );
            tracing::warn!(%detail, "Lightning liquidity alert");
            self.store
                .record_liquidity_action(&LiquidityAction {
                    kind: LiquidityActionKind::Alert,
                    peer: None,
                    amount_sat: 0,
                    ok: true,
                    detail,
                    created_at_ms: now,
                })
                .await?;
        }
        if let Some(plan) = plan {
            let request = OpenChannelRequest {
                peer: plan.peer.pubkey.clone(),
                address: plan.peer.address.clone(),
                amount_sat: plan.amount_sats,
            };
            let result = node.open_channel(request).await;
            let (ok, detail) = match &result {
                Ok(id) => (true, format!("opened channel {id} of {} sats", plan.amount_sats)),
                Err(e) => (false, format!("opening {} sats failed: {e}", plan.amount_sats)),
            };
            tracing::info!(peer = %plan.peer.pubkey, ok, %detail, "liquidity manager");
            self.store
                .record_liquidity_action(&LiquidityAction {
                    kind: LiquidityActionKind::ChannelOpen,
                    peer: Some(plan.peer.pubkey),
                    amount_sat: i64::try_from(plan.amount_sats).unwrap_or(i64::MAX),
                    ok,
                    detail,
                    created_at_ms: now,
                })
                .await?;
        }
        if let Ok(mut latest) = self.liquidity.latest.lock() {
            *latest = Some(report.clone());
        }
        Ok(report)
    }

    /// An invoice for `req`: through a just-in-time channel when its amount exceeds the
    /// node's inbound capacity and the node has an LSP (recorded as a liquidity action),
    /// otherwise an ordinary one.
    pub(crate) async fn issue_invoice(&self, req: InvoiceRequest) -> Result<Invoice, LightningError> {
        let node = self
            .lightning_node()
            .ok_or(LightningError::Unsupported("no Lightning node is configured"))?;
        let policy = &self.config.liquidity;
        let wanted = match req.amount_msat {
            Some(msat) if policy.jit_inbound && !self.liquidity.no_jit.load(Ordering::Relaxed) => msat,
            _ => return node.create_invoice(req).await,
        };
        let inbound_msat: u64 = node
            .channels()
            .await?
            .iter()
            .filter(|c| c.active)
            .map(|c| c.remote_sat.saturating_mul(1_000))
            .sum();
        if wanted <= inbound_msat {
            return node.create_invoice(req).await;
        }
        let sats = Sats::from_msat_up(wanted).map_err(|e| LightningError::InvalidInput(e.to_string()))?;
        let floor =
            Sats::non_negative(policy.jit_max_fee_min_sats).map_err(|e| LightningError::InvalidInput(e.to_string()))?;
        let max_fee = sats
            .fee(policy.jit_max_fee_bps, floor)
            .map_err(|e| LightningError::InvalidInput(e.to_string()))?;
        match node.create_jit_invoice(req.clone(), max_fee.msat()).await {
            Ok(invoice) => {
                let action = LiquidityAction {
                    kind: LiquidityActionKind::JitInvoice,
                    peer: None,
                    amount_sat: sats.get(),
                    ok: true,
                    detail: format!(
                        "invoice of {} sats through a just-in-time channel (inbound {} sats, LSP fee at most {} sats)",
                        sats.get(),
                        inbound_msat / 1_000,
                        max_fee.get()
                    ),
                    created_at_ms: self.store.now_ms(),
                };
                if let Err(e) = self.store.record_liquidity_action(&action).await {
                    tracing::warn!(error = %e, "could not record a just-in-time invoice");
                }
                Ok(invoice)
            }
            Err(LightningError::Unsupported(_)) => {
                self.liquidity.no_jit.store(true, Ordering::Relaxed);
                node.create_invoice(req).await
            }
            Err(e) => Err(e),
        }
    }

    /// Checks liquidity every configured interval until `shutdown` (if enabled and a node is
    /// configured).
    pub async fn run_liquidity_manager(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        if !self.config.liquidity.enabled || self.lightning_node().is_none() {
            return;
        }
        let every = Duration::from_secs(self.config.liquidity.interval_secs.max(1));
        loop {
            if let Err(e) = self.liquidity_check().await {
                tracing::warn!(error = %e, "liquidity check failed");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(peer: &str, local: u64, remote: u64, active: bool) -> ChannelInfo {
        ChannelInfo {
            id: format!("{peer}:{local}"),
            peer: peer.into(),
            capacity_sat: local + remote,
            local_sat: local,
            remote_sat: remote,
            active,
        }
    }

    fn policy(peers: &[&str]) -> LiquidityConfig {
        LiquidityConfig {
            preferred_peers: peers
                .iter()
                .map(|p| PreferredPeer {
                    pubkey: (*p).into(),
                    address: None,
                })
                .collect(),
            ..LiquidityConfig::default()
        }
    }

    #[test]
    fn balanced_channels_are_in_policy_and_need_nothing() {
        let (report, plan) = assess(
            &[channel("a", 500, 500, true)],
            Some(10_000_000),
            &policy(&["a"]),
            u64::MAX,
        );
        assert!(report.in_policy(), "{report:?}");
        assert_eq!((report.outbound_percent, report.inbound_percent), (50, 50));
        assert_eq!(plan, None);
    }

    #[test]
    fn low_outbound_opens_to_the_least_used_preferred_peer_within_funds_and_budget() {
        let channels = [channel("a", 100, 900, true), channel("b", 0, 0, false)];
        let (report, plan) = assess(&channels, Some(3_000_000), &policy(&["a", "b"]), u64::MAX);
        assert_eq!(report.issues, vec![LiquidityIssue::OutboundLow]);
        assert_eq!(report.active_channels, 1, "inactive channels do not count");
        let plan = plan.expect("a channel");
        assert_eq!(plan.peer.pubkey, "b", "b has no capacity yet");
        assert_eq!(
            plan.amount_sats,
            3_000_000 - 50_000,
            "all spendable funds, less the reserve"
        );
        let (_, plan) = assess(&channels, Some(30_000_000), &policy(&["a"]), 2_000_000);
        assert_eq!(plan.map(|p| p.amount_sats), Some(2_000_000), "within the budget");
        let (_, plan) = assess(&channels, Some(100_000_000), &policy(&["a"]), u64::MAX);
        assert_eq!(
            plan.map(|p| p.amount_sats),
            Some(10_000_000),
            "at most the largest channel"
        );
    }

    #[test]
    fn nothing_is_opened_without_a_peer_funds_budget_or_permission() {
        let low = [channel("a", 10, 990, true)];
        assert_eq!(
            assess(&low, Some(10_000_000), &policy(&[]), u64::MAX).1,
            None,
            "no peer"
        );
        assert_eq!(
            assess(&low, Some(120_000), &policy(&["a"]), u64::MAX).1,
            None,
            "too little on chain"
        );
        assert_eq!(assess(&low, None, &policy(&["a"]), u64::MAX).1, None, "unknown funds");
        assert_eq!(
            assess(&low, Some(10_000_000), &policy(&["a"]), 1_000).1,
            None,
            "budget spent"
        );
        let manual = LiquidityConfig {
            auto_open: false,
            ..policy(&["a"])
        };
        assert_eq!(
            assess(&low, Some(10_000_000), &manual, u64::MAX).1,
            None,
            "auto_open off"
        );
    }

    #[test]
    fn no_channels_and_low_inbound_are_reported() {
        let (report, _) = assess(&[], Some(0), &policy(&[]), 0);
        assert_eq!(
            report.issues,
            vec![
                LiquidityIssue::NoChannels,
                LiquidityIssue::OutboundLow,
                LiquidityIssue::InboundLow
            ]
        );
        let (report, plan) = assess(
            &[channel("a", 950, 50, true)],
            Some(1_000_000),
            &policy(&["a"]),
            u64::MAX,
        );
        assert_eq!(report.issues, vec![LiquidityIssue::InboundLow]);
        assert_eq!(plan, None, "inbound cannot be bought by opening a channel ourselves");
    }
}
