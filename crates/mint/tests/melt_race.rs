//! Issue 14, item 7: one invoice, two sagas. A Flash wallet's send (`lnInvoicePaymentSend`)
//! and a Cashu melt of the same outside invoice, started together round after round on both
//! stores: the invoice is paid once. The winner pays it; the loser is refused with a typed
//! error and keeps its money (the wallet its balance, the melt its notes, unspent). An auditor
//! independent of the ledger checks that `lightning:node` moved exactly what the node sent,
//! and the mint's books and the ledger balance after every round.

mod support;

use std::sync::Arc;

use cashu::nuts::{CheckStateRequest, MeltQuoteState, MeltRequest, State};
use flash_bank::{LnPayRequest, PaymentStatus};
use flash_core::lightning::{DevOutcome, InvoiceDescription, InvoiceRequest, LightningNode};
use flash_core::SystemAccount;
use flash_store::testing::Backend;
use support::*;
use tokio::sync::Barrier;

flash_store::on_both_backends!(a_wallet_send_and_a_melt_of_one_invoice_pay_it_once);

/// Rounds of the race per backend.
const ROUNDS: u64 = 24;
/// What each round's invoice asks, sats.
const AMOUNT: u64 = 1_000;
/// What the paying wallet and the melt's notes bring, sats (amount, fee cap, input fee).
const FUNDS: u64 = 2_000;
/// Most reconciliation passes waited for before a round's outcome must be final.
const RECONCILE_PASSES: usize = 100;

/// How a racer ended once everything in flight was reconciled.
#[derive(Debug)]
struct Ended {
    wallet_paid: bool,
    melt_paid: bool,
}

/// The node's outbound balance, sats: what has left it over Lightning.
async fn outbound_sats(lab: &Lab) -> u64 {
    lab.node
        .channels()
        .await
        .expect("channels")
        .iter()
        .map(|c| c.local_sat)
        .sum()
}

async fn a_wallet_send_and_a_melt_of_one_invoice_pay_it_once(backend: Backend) {
    let lab = lab(backend).await;
    // Payments spend a little time on the network, as real ones do: both sagas are then in
    // flight together, and a second send of one hash gets the first one's state (as LND
    // answers a duplicate send with the existing payment).
    lab.bank
        .dev_ln_set_outcome(DevOutcome::Succeed {
            delay_ms: 20,
            fee_ppm: 0,
        })
        .expect("outcome");
    let (keyset, _) = active(&lab.mint);
    let mut wallet_wins = 0;
    let mut melt_wins = 0;
    for round in 0..ROUNDS {
        let request = lab
            .outside
            .create_invoice(InvoiceRequest {
                amount_msat: Some(AMOUNT * 1_000),
                description: InvoiceDescription::Memo(format!("race {round}")),
                expiry_secs: 3_600,
            })
            .await
            .expect("invoice elsewhere")
            .payment_request;
        let payer = member(&lab.bank, i64::try_from(FUNDS).expect("sats")).await;
        let proofs = mint_notes(&lab, FUNDS).await;
        let quote = melt_quote(&lab, &request).await;
        assert_eq!(quote.amount.to_u64(), AMOUNT);
        let blanks = premint(keyset, &[0; 10]);
        let node_ledger_before = system_balance(&lab.bank, SystemAccount::LightningNode).await;
        let outbound_before = outbound_sats(&lab).await;

        let start = Arc::new(Barrier::new(2));
        let send = {
            let (bank, start, request) = (lab.bank.clone(), start.clone(), request.clone());
            tokio::spawn(async move {
                start.wait().await;
                bank.ln_pay(LnPayRequest {
                    account: payer.id,
                    wallet_id: payer.default_wallet_id,
                    payment_request: request,
                    amount: None,
                    memo: None,
                    idempotency_key: None,
                })
                .await
            })
        };
        let melt = {
            let (mint, start) = (lab.mint.clone(), start.clone());
            let req = MeltRequest::new(quote.quote.clone(), proofs.clone(), Some(blanks.outputs.clone()));
            tokio::spawn(async move {
                start.wait().await;
                mint.melt(req).await
            })
        };
        let sent = send.await.expect("send task");
        let melted = melt.await.expect("melt task");

        // Whatever is still in flight is finished from the node's answer.
        for _ in 0..RECONCILE_PASSES {
            lab.bank.ln_reconcile().await.expect("reconcile payments");
            lab.mint.reconcile_melts().await.expect("reconcile melts");
            let payments = lab
                .bank
                .store_for_tests()
                .pending_ln_payments(10)
                .await
                .expect("pending");
            let melts = lab.mint.store().pending_melt_quotes().await.expect("pending melts");
            if payments.is_empty() && melts.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }

        let wallet_balance = lab
            .bank
            .store_for_tests()
            .wallet_balance(payer.default_wallet_id)
            .await
            .expect("balance");
        let quote_now = lab.mint.melt_quote_state(&quote.quote).await.expect("quote");
        let ended = Ended {
            wallet_paid: wallet_balance < i64::try_from(FUNDS).expect("sats"),
            melt_paid: quote_now.state == MeltQuoteState::Paid,
        };
        let context = format!("round {round}: send {sent:?}, melt {melted:?}, ended {ended:?}");

        // One Lightning payment left the node, and the ledger says exactly that.
        let sent_out = outbound_before - outbound_sats(&lab).await;
        assert_eq!(sent_out, AMOUNT, "one payment left the node; {context}");
        let node_ledger_after = system_balance(&lab.bank, SystemAccount::LightningNode).await;
        assert_eq!(
            node_ledger_after - node_ledger_before,
            i64::try_from(sent_out).expect("sats"),
            "lightning:node moved what the node sent, once; {context}"
        );
        assert!(
            ended.wallet_paid != ended.melt_paid,
            "exactly one of them paid; {context}"
        );

        let states = lab
            .mint
            .check_state(CheckStateRequest {
                ys: proofs.iter().map(y).collect(),
            })
            .await
            .expect("states");
        if ended.wallet_paid {
            wallet_wins += 1;
            let outcome = sent.as_ref().expect("the wallet's send succeeded");
            assert_eq!(outcome.status, PaymentStatus::Success, "{context}");
            assert_eq!(
                wallet_balance,
                i64::try_from(FUNDS - AMOUNT).expect("sats"),
                "{context}"
            );
            // The melt is refused as an invoice paid by someone else, and keeps its notes.
            assert_eq!(code(melted), 20006, "{context}");
            assert_eq!(quote_now.state, MeltQuoteState::Unpaid, "{context}");
            assert!(
                states.states.iter().all(|s| s.state == State::Unspent),
                "the loser's notes are not spent; {context}"
            );
        } else {
            melt_wins += 1;
            let paid = melted.as_ref().expect("the melt succeeded");
            assert_eq!(paid.state, MeltQuoteState::Paid, "{context}");
            assert!(states.states.iter().all(|s| s.state == State::Spent), "{context}");
            // The wallet is refused (the invoice is being paid, or was paid, by the mint) and
            // its balance is whole again.
            match &sent {
                Err(e) => assert_eq!(e.code().as_str(), "PAYMENT_IN_FLIGHT", "{context}"),
                Ok(o) => assert_eq!(o.status, PaymentStatus::AlreadyPaid, "{context}"),
            }
            assert_eq!(wallet_balance, i64::try_from(FUNDS).expect("sats"), "{context}");
        }
        assert_books(&lab).await;
    }
    // Both sides won sometimes, or the race was not a race.
    println!("{ROUNDS} rounds: the wallet won {wallet_wins}, the melt {melt_wins}");
}
