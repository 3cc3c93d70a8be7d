//! The invoice state machine, as BTCPay's invoice watcher moves an invoice: a pure function of
//! the invoice's terms, the payments accounted to it and the time, so every path is tested
//! without a rail.
//!
//! - `New` until paid within the tolerance (then `Processing`), or until it expires (`Expired`,
//!   `PaidPartial` when something came).
//! - `Processing` until the payments that count are confirmed as the speed policy asks
//!   (`Settled`), or until the monitoring window ends without that (`Invalid`).
//! - A payment that completes an expired invoice leaves it `Expired` with `PaidLate`.
//! - A payment that disappears (replaced, reorganised away) moves the invoice back: a
//!   `Settled` invoice whose confirmations went is `Processing` again, one no longer paid is
//!   `New` (or `Expired`) with `PaidPartial`.
//! - A status marked by hand (`Marked`) and `Invalid` are final.

use serde::{Deserialize, Serialize};

/// Greenfield's invoice status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceStatus {
    /// Waiting for payment.
    New,
    /// Paid, waiting for confirmations.
    Processing,
    /// Not paid in time.
    Expired,
    /// Paid but not confirmed within the monitoring window, or marked invalid.
    Invalid,
    /// Paid and confirmed.
    Settled,
}

/// Greenfield's `additionalStatus`: why the invoice is where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdditionalStatus {
    /// Nothing to add.
    None,
    /// Fully paid after it expired.
    PaidLate,
    /// Some, not all, was paid.
    PaidPartial,
    /// Its status was set by hand.
    Marked,
    /// Invalid (kept for Greenfield's enum; Flash says why with the status itself).
    Invalid,
    /// More than the amount was paid.
    PaidOver,
}

/// Where an invoice stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvoiceState {
    /// Its status.
    pub status: InvoiceStatus,
    /// Why.
    pub additional: AdditionalStatus,
}

impl InvoiceState {
    /// A new invoice.
    pub const NEW: InvoiceState = InvoiceState {
        status: InvoiceStatus::New,
        additional: AdditionalStatus::None,
    };

    /// The statuses it may be marked as by hand: the two final ones it is not in.
    pub fn markable(self) -> Vec<InvoiceStatus> {
        [InvoiceStatus::Settled, InvoiceStatus::Invalid]
            .into_iter()
            .filter(|s| self.status != *s)
            .collect()
    }

    /// The invoice marked `to` by hand, if `to` is one of [`InvoiceState::markable`].
    pub fn mark(self, to: InvoiceStatus) -> Option<InvoiceState> {
        self.markable().contains(&to).then_some(InvoiceState {
            status: to,
            additional: AdditionalStatus::Marked,
        })
    }
}

/// What was asked and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvoiceTerms {
    /// Satoshis due; `None` for a top-up invoice, which any payment pays.
    pub due_sats: Option<i64>,
    /// Shortfall accepted as full payment, hundredths of a percent (0..=10,000).
    pub tolerance_bps: i64,
    /// When it expires unpaid (Unix ms).
    pub expires_at_ms: i64,
    /// Until when its payments are watched for confirmations (Unix ms).
    pub monitoring_until_ms: i64,
}

impl InvoiceTerms {
    /// The least that counts as paid in full: the amount less the tolerance, rounded in the
    /// merchant's favour (the shortfall forgiven is rounded down).
    pub fn threshold_sats(&self) -> Option<i64> {
        let due = self.due_sats?;
        let forgiven = i128::from(due) * i128::from(self.tolerance_bps.clamp(0, 10_000)) / 10_000;
        Some(due - i64::try_from(forgiven).unwrap_or(0))
    }

    fn covered(&self, sats: i64) -> bool {
        match self.threshold_sats() {
            Some(threshold) => sats > 0 && sats >= threshold,
            None => sats > 0,
        }
    }
}

/// One payment accounted to the invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountedPayment {
    /// Satoshis it brought.
    pub sats: i64,
    /// Whether it has the confirmations the speed policy asks for (Lightning and intraledger
    /// payments always do).
    pub confirmed: bool,
}

/// The state an invoice moves to from `state`, given its `terms`, the `payments` accounted to
/// it now and the time.
pub fn next(state: InvoiceState, terms: &InvoiceTerms, payments: &[AccountedPayment], now_ms: i64) -> InvoiceState {
    use AdditionalStatus as A;
    use InvoiceStatus as S;
    if state.additional == A::Marked || state.status == S::Invalid {
        return state;
    }
    let paid: i64 = payments.iter().map(|p| p.sats.max(0)).fold(0, i64::saturating_add);
    let confirmed: i64 = payments
        .iter()
        .filter(|p| p.confirmed)
        .map(|p| p.sats.max(0))
        .fold(0, i64::saturating_add);
    let is_paid = terms.covered(paid);
    let over = terms.due_sats.is_some_and(|due| paid > due);
    let expired = now_ms >= terms.expires_at_ms;
    let unpaid = |status| InvoiceState {
        status,
        additional: if paid > 0 { A::PaidPartial } else { A::None },
    };
    match state.status {
        S::New | S::Expired => {
            let status = if state.status == S::New && expired {
                S::Expired
            } else {
                state.status
            };
            match (status, is_paid) {
                (S::New, true) => next(
                    InvoiceState {
                        status: S::Processing,
                        additional: if over { A::PaidOver } else { A::None },
                    },
                    terms,
                    payments,
                    now_ms,
                ),
                (S::Expired, true) => InvoiceState {
                    status: S::Expired,
                    additional: A::PaidLate,
                },
                (status, _) => unpaid(status),
            }
        }
        S::Processing | S::Settled => {
            if !is_paid {
                return unpaid(if expired { S::Expired } else { S::New });
            }
            let additional = if over { A::PaidOver } else { A::None };
            let status = if terms.covered(confirmed) {
                S::Settled
            } else if now_ms >= terms.monitoring_until_ms {
                S::Invalid
            } else {
                S::Processing
            };
            InvoiceState { status, additional }
        }
        S::Invalid => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AdditionalStatus as A;
    use InvoiceStatus as S;

    const TERMS: InvoiceTerms = InvoiceTerms {
        due_sats: Some(10_000),
        tolerance_bps: 0,
        expires_at_ms: 1_000,
        monitoring_until_ms: 5_000,
    };

    fn st(status: S, additional: A) -> InvoiceState {
        InvoiceState { status, additional }
    }

    fn pay(sats: i64, confirmed: bool) -> AccountedPayment {
        AccountedPayment { sats, confirmed }
    }

    #[test]
    fn paid_in_time_settles_once_confirmed() {
        let s = next(InvoiceState::NEW, &TERMS, &[], 0);
        assert_eq!(s, InvoiceState::NEW);
        let s = next(s, &TERMS, &[pay(10_000, false)], 10);
        assert_eq!(s, st(S::Processing, A::None));
        let s = next(s, &TERMS, &[pay(10_000, true)], 2_000);
        assert_eq!(s, st(S::Settled, A::None), "confirmed after expiry still settles");
        // Lightning: paid and confirmed at once.
        assert_eq!(
            next(InvoiceState::NEW, &TERMS, &[pay(10_000, true)], 10),
            st(S::Settled, A::None)
        );
    }

    #[test]
    fn partial_then_expired_then_paid_late() {
        let s = next(InvoiceState::NEW, &TERMS, &[pay(4_000, true)], 10);
        assert_eq!(s, st(S::New, A::PaidPartial));
        let s = next(s, &TERMS, &[pay(4_000, true)], 1_000);
        assert_eq!(s, st(S::Expired, A::PaidPartial));
        let s = next(s, &TERMS, &[pay(4_000, true), pay(6_000, true)], 1_500);
        assert_eq!(s, st(S::Expired, A::PaidLate));
        assert_eq!(next(InvoiceState::NEW, &TERMS, &[], 1_000), st(S::Expired, A::None));
    }

    #[test]
    fn overpaid_and_several_payments_count_together() {
        let s = next(InvoiceState::NEW, &TERMS, &[pay(6_000, true), pay(6_000, false)], 10);
        assert_eq!(s, st(S::Processing, A::PaidOver));
        let s = next(s, &TERMS, &[pay(6_000, true), pay(6_000, true)], 20);
        assert_eq!(s, st(S::Settled, A::PaidOver));
    }

    #[test]
    fn tolerance_forgives_the_shortfall_rounded_for_the_merchant() {
        let terms = InvoiceTerms {
            due_sats: Some(1_001),
            tolerance_bps: 100, // 1 %: 10.01 sats forgiven, rounded down to 10
            ..TERMS
        };
        assert_eq!(terms.threshold_sats(), Some(991));
        assert_eq!(
            next(InvoiceState::NEW, &terms, &[pay(990, true)], 10),
            st(S::New, A::PaidPartial)
        );
        assert_eq!(
            next(InvoiceState::NEW, &terms, &[pay(991, true)], 10),
            st(S::Settled, A::None)
        );
    }

    #[test]
    fn unconfirmed_past_the_monitoring_window_is_invalid_and_final() {
        let s = next(InvoiceState::NEW, &TERMS, &[pay(10_000, false)], 10);
        let s = next(s, &TERMS, &[pay(10_000, false)], 5_000);
        assert_eq!(s, st(S::Invalid, A::None));
        assert_eq!(next(s, &TERMS, &[pay(10_000, true)], 6_000), s, "final");
    }

    #[test]
    fn a_payment_that_goes_moves_the_invoice_back() {
        let settled = st(S::Settled, A::None);
        // Its block was reorganised away: unconfirmed again.
        assert_eq!(
            next(settled, &TERMS, &[pay(10_000, false)], 10),
            st(S::Processing, A::None)
        );
        // Replaced or dropped: no longer paid.
        assert_eq!(
            next(settled, &TERMS, &[pay(3_000, true)], 10),
            st(S::New, A::PaidPartial)
        );
        assert_eq!(next(settled, &TERMS, &[], 2_000), st(S::Expired, A::None));
    }

    #[test]
    fn top_up_invoices_take_any_payment() {
        let terms = InvoiceTerms {
            due_sats: None,
            ..TERMS
        };
        assert_eq!(
            next(InvoiceState::NEW, &terms, &[pay(1, true)], 10),
            st(S::Settled, A::None)
        );
        assert_eq!(next(InvoiceState::NEW, &terms, &[], 10), InvoiceState::NEW);
    }

    #[test]
    fn marking_by_hand_is_final_and_only_to_another_final_status() {
        let marked = InvoiceState::NEW.mark(S::Settled).expect("markable");
        assert_eq!(marked, st(S::Settled, A::Marked));
        assert_eq!(next(marked, &TERMS, &[], 10_000), marked);
        assert_eq!(marked.markable(), vec![S::Invalid]);
        assert_eq!(marked.mark(S::Settled), None);
        assert_eq!(InvoiceState::NEW.mark(S::Processing), None);
        let invalid = marked.mark(S::Invalid).expect("markable");
        assert_eq!(invalid, st(S::Invalid, A::Marked));
    }
}
