//! The invoice watcher: sees invoices paid and moves them on.
//!
//! - As it happens: the bank announces each of its Lightning invoices paid (by the network, a
//!   Flash user or an ecash melt) and each on-chain deposit seen; the watcher refreshes the
//!   invoice the payment hash or address belongs to. Every flashd node does this for the
//!   events it sees.
//! - By the clock: one node (holding a lease) refreshes the invoices that change with time:
//!   those past their expiry and those waiting for confirmations, every few seconds.
//! - As a safety net: at start-up, after missing announcements (a slow subscriber), and every
//!   ten minutes, the leaseholder refreshes every invoice still watched. A payment is never
//!   lost to a crash or a dropped announcement, because a refresh reads the rails' records,
//!   not the announcement.

use std::time::Duration;

use flash_bank::WalletChange;
use tokio::sync::broadcast::error::RecvError;

use crate::{Merchant, MerchantError};

/// The lease the clock-driven passes hold.
pub const WATCHER_LEASE: &str = "merchant-invoice-watcher";
/// How often the clock-driven pass runs.
const PASS_INTERVAL: Duration = Duration::from_secs(5);
/// How often every watched invoice is refreshed, in passes (ten minutes).
const SWEEP_EVERY_PASSES: u32 = 120;
/// Invoices read per page of a pass.
const PAGE: i64 = 500;
/// Announced payments followed at once (each a few reads and one write): enough to keep up
/// with hundreds of payments a second when each database round trip takes a millisecond.
const MAX_IN_FLIGHT: usize = 32;

/// Which invoices a pass refreshes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassKind {
    /// Those the clock may move: past expiry and still `New`, or `Processing`.
    Due,
    /// Every invoice still watched.
    Sweep,
}

impl Merchant {
    /// One pass of the watcher over the invoices of `kind`: the number refreshed. Runs without
    /// the lease (tests, operators); the worker takes it first.
    pub async fn watch_pass(&self, kind: PassKind) -> Result<usize, MerchantError> {
        let now = self.bank.now_ms();
        let mut after = String::new();
        let mut refreshed = 0;
        loop {
            let page = match kind {
                PassKind::Due => self.store.merchant_invoices_due(now, &after, PAGE).await?,
                PassKind::Sweep => self.store.merchant_invoices_watched(now, &after, PAGE).await?,
            };
            let Some(last) = page.last() else {
                return Ok(refreshed);
            };
            after = last.id.clone();
            for record in page {
                if let Err(e) = self.refresh_invoice(&record.id).await {
                    tracing::warn!(invoice = %record.id, error = %e, "could not refresh an invoice; next pass retries");
                }
                refreshed += 1;
            }
        }
    }

    /// The payment an announcement is about, refreshed if it pays one of our invoices.
    async fn on_wallet_change(&self, change: &WalletChange) -> Result<(), MerchantError> {
        let key = match change {
            WalletChange::InvoicePaid { payment_hash } => payment_hash.clone(),
            WalletChange::Deposit { outpoint, .. } => match self.bank.onchain_deposit(outpoint).await? {
                Some(deposit) => deposit.address,
                None => return Ok(()),
            },
            WalletChange::Journal(_) => return Ok(()),
        };
        if let Some(invoice) = self.store.merchant_invoice_by_lookup(&key).await? {
            self.refresh_invoice(&invoice).await?;
        }
        Ok(())
    }

    /// Runs the watcher until `shutdown` completes.
    pub async fn run_invoice_watcher(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut announcements = self.bank.subscribe();
        let mut ticker = tokio::time::interval(PASS_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first pass after taking the lease sweeps everything (what came while no node
        // watched), and so does one after missed announcements.
        let mut sweep_due = true;
        let mut passes: u32 = 0;
        let node = self.bank.config().node_name.clone();
        let ttl_ms = i64::try_from(PASS_INTERVAL.as_millis().saturating_mul(3)).unwrap_or(i64::MAX);
        let mut following: tokio::task::JoinSet<Result<(), MerchantError>> = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                Some(done) = following.join_next(), if !following.is_empty() => {
                    let failure = match done {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(error) = failure {
                        tracing::warn!(%error, "invoice watcher: could not follow a payment; the next sweep will");
                        sweep_due = true;
                    }
                }
                received = announcements.recv(), if following.len() < MAX_IN_FLIGHT => match received {
                    Ok(event) => {
                        let merchant = self.clone();
                        following.spawn(async move { merchant.on_wallet_change(&event.change).await });
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "invoice watcher fell behind the bank's announcements; sweeping");
                        sweep_due = true;
                    }
                    Err(RecvError::Closed) => announcements = self.bank.subscribe(),
                },
                _ = ticker.tick() => {
                    match self.store.take_lease(WATCHER_LEASE, &node, ttl_ms).await {
                        Ok(true) => {}
                        Ok(false) => {
                            sweep_due = true;
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "invoice watcher: could not take its lease");
                            continue;
                        }
                    }
                    passes = passes.wrapping_add(1);
                    let kind = if sweep_due || passes.is_multiple_of(SWEEP_EVERY_PASSES) {
                        PassKind::Sweep
                    } else {
                        PassKind::Due
                    };
                    match self.watch_pass(kind).await {
                        Ok(_) => sweep_due = false,
                        Err(e) => tracing::warn!(error = %e, "invoice watcher pass failed; retrying"),
                    }
                }
            }
        }
    }
}
