//! The dev Lightning simulator: real BOLT11 in and out, simulated network.

use std::time::Duration;

use flash_core::lightning::{
    Hash32, InvoiceDescription, InvoiceRequest, LightningError, LightningNode, PayRequest, PaymentState,
    SimulatorControls,
};
use flash_core::Network;
use flash_lightning::{DevNode, DevOutcome};

const INSTANT: DevOutcome = DevOutcome::Succeed {
    delay_ms: 0,
    fee_ppm: 1_000,
};

fn node(network: Network, outcome: DevOutcome) -> DevNode {
    DevNode::new(network, DevNode::generate_key(), outcome).expect("dev node")
}

fn memo_invoice(amount_msat: Option<u64>) -> InvoiceRequest {
    InvoiceRequest {
        amount_msat,
        description: InvoiceDescription::Memo("coffee".into()),
        expiry_secs: 3_600,
    }
}

fn pay(req: &str, amount_msat: Option<u64>) -> PayRequest {
    PayRequest {
        payment_request: req.into(),
        amount_msat,
        max_fee_msat: 10_000,
        timeout_secs: 5,
    }
}

#[tokio::test]
async fn invoices_are_real_signed_bolt11() {
    let n = node(Network::Regtest, INSTANT);
    let info = n.node_info().await.expect("info");
    assert!(info.simulated);
    let invoice = n.create_invoice(memo_invoice(Some(21_000))).await.expect("invoice");
    assert!(
        invoice.payment_request.starts_with("lnbcrt210n1"),
        "{}",
        invoice.payment_request
    );
    assert_eq!(invoice.payee, info.pubkey, "signed by the node's key");
    let decoded = n.decode_invoice(&invoice.payment_request).await.expect("decode");
    assert_eq!(decoded, invoice);
    assert_eq!(decoded.description, InvoiceDescription::Memo("coffee".into()));
    let hashed = InvoiceRequest {
        description: InvoiceDescription::Hash(Hash32([7; 32])),
        ..memo_invoice(None)
    };
    let hashed = n.create_invoice(hashed).await.expect("description hash invoice");
    assert_eq!(hashed.description, InvoiceDescription::Hash(Hash32([7; 32])));
    assert_eq!(hashed.amount_msat, None);
    let with_scheme = format!("lightning:{}", invoice.payment_request.to_uppercase());
    assert_eq!(
        n.decode_invoice(&with_scheme)
            .await
            .expect("uppercase with scheme")
            .payment_hash,
        invoice.payment_hash
    );
}

#[tokio::test]
async fn bad_invoices_are_refused() {
    let regtest = node(Network::Regtest, INSTANT);
    let signet = node(Network::Signet, INSTANT);
    let invoice = signet.create_invoice(memo_invoice(Some(1_000))).await.expect("invoice");
    assert_eq!(
        regtest.decode_invoice(&invoice.payment_request).await,
        Err(LightningError::WrongNetwork {
            expected: Network::Regtest,
            found: Network::Signet
        })
    );
    assert!(matches!(
        regtest.decode_invoice("lnbcrt1garbage").await,
        Err(LightningError::InvalidInvoice(_))
    ));
    let mut tampered = invoice.payment_request.clone();
    tampered.replace_range(20..21, if &tampered[20..21] == "q" { "p" } else { "q" });
    assert!(
        signet.decode_invoice(&tampered).await.is_err(),
        "a changed character breaks the checksum or signature"
    );
    assert!(matches!(
        regtest.create_invoice(memo_invoice(Some(0))).await,
        Err(LightningError::InvalidInput(_))
    ));
    assert!(
        DevNode::new(Network::Mainnet, DevNode::generate_key(), INSTANT).is_err(),
        "never on mainnet"
    );
}

#[tokio::test]
async fn receives_settle_once_in_index_order() {
    let n = node(Network::Regtest, INSTANT);
    let a = n.create_invoice(memo_invoice(Some(5_000))).await.expect("a");
    let b = n.create_invoice(memo_invoice(None)).await.expect("b");
    let first = n.pay_from_outside(&a.payment_request, None).expect("settle a");
    assert_eq!((first.settle_index, first.amount_received_msat), (1, 5_000));
    assert!(n.pay_from_outside(&a.payment_request, None).is_err(), "settles once");
    assert!(
        n.pay_from_outside(&b.payment_request, None).is_err(),
        "no-amount invoice needs an amount"
    );
    assert_eq!(n.wait_settled(0).await.expect("catch-up"), first);

    // A waiter past the last index sleeps until the next settlement.
    let waiting = n.wait_settled(1);
    let n2 = &n;
    let (got, paid) = tokio::join!(waiting, async move {
        tokio::task::yield_now().await;
        n2.pay_from_outside(&b.payment_request, Some(7_000))
    });
    let paid = paid.expect("settle b");
    assert_eq!(got.expect("next"), paid);
    assert_eq!(paid.settle_index, 2);

    let other = node(Network::Regtest, INSTANT);
    let foreign = other.create_invoice(memo_invoice(Some(1))).await.expect("foreign");
    assert_eq!(
        n.pay_from_outside(&foreign.payment_request, None),
        Err(LightningError::NotFound)
    );
}

#[tokio::test]
async fn outgoing_payments_follow_the_configured_outcome_once_per_hash() {
    let payer = node(Network::Regtest, INSTANT);
    let payee = node(Network::Regtest, INSTANT);
    let invoice = payee
        .create_invoice(memo_invoice(Some(1_000_000)))
        .await
        .expect("invoice");
    let paid = payer.pay(pay(&invoice.payment_request, None)).await.expect("pay");
    assert_eq!(
        paid,
        PaymentState::Succeeded {
            preimage: None,
            fee_msat: 1_000
        }
    );
    let again = payer.pay(pay(&invoice.payment_request, None)).await.expect("pay again");
    assert_eq!(again, paid, "the same hash is never paid twice");
    assert_eq!(payer.track_payment(invoice.payment_hash).await.expect("track"), paid);

    let expensive = payee
        .create_invoice(memo_invoice(Some(100_000_000)))
        .await
        .expect("invoice");
    let capped = payer.pay(pay(&expensive.payment_request, None)).await.expect("pay");
    assert!(
        matches!(capped, PaymentState::Failed { .. }),
        "fee above the cap: {capped:?}"
    );

    payer.set_outcome(DevOutcome::Fail { delay_ms: 0 }).expect("outcome");
    let doomed = payee.create_invoice(memo_invoice(Some(10))).await.expect("invoice");
    assert!(matches!(
        payer.pay(pay(&doomed.payment_request, None)).await,
        Ok(PaymentState::Failed { .. })
    ));

    payer.set_outcome(DevOutcome::Hang).expect("outcome");
    let stuck = payee.create_invoice(memo_invoice(Some(10))).await.expect("invoice");
    assert_eq!(
        payer.pay(pay(&stuck.payment_request, None)).await,
        Ok(PaymentState::InFlight)
    );
    assert_eq!(
        payer.track_payment(stuck.payment_hash).await,
        Ok(PaymentState::InFlight)
    );

    payer
        .set_outcome(DevOutcome::Succeed {
            delay_ms: 1_500,
            fee_ppm: 0,
        })
        .expect("outcome");
    let slow = payee.create_invoice(memo_invoice(Some(10))).await.expect("invoice");
    let quick_give_up = PayRequest {
        timeout_secs: 1,
        ..pay(&slow.payment_request, None)
    };
    assert_eq!(
        payer.pay(quick_give_up).await,
        Ok(PaymentState::InFlight),
        "timed out while routing"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(matches!(
        payer.track_payment(slow.payment_hash).await,
        Ok(PaymentState::Succeeded { .. })
    ));

    let own = payer.create_invoice(memo_invoice(Some(10))).await.expect("own");
    assert!(matches!(
        payer.pay(pay(&own.payment_request, None)).await,
        Ok(PaymentState::Failed { .. })
    ));
    let no_amount = payee.create_invoice(memo_invoice(None)).await.expect("no amount");
    assert!(
        payer.pay(pay(&no_amount.payment_request, None)).await.is_err(),
        "needs an amount"
    );
    assert_eq!(
        payer.track_payment(Hash32([0; 32])).await,
        Err(LightningError::NotFound)
    );
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    std::env::temp_dir().join(format!("flash-{name}-{}-{nanos}", std::process::id()))
}

#[tokio::test]
async fn a_node_opened_on_a_directory_survives_a_restart() {
    let dir = temp_dir("dev-node");
    let outside = node(Network::Regtest, INSTANT);
    let slow = DevOutcome::Succeed {
        delay_ms: 1_500,
        fee_ppm: 2_000,
    };
    let (pubkey, paid, open, cancelled, sent) = {
        let n = DevNode::open(&dir, Network::Regtest, slow).expect("open");
        let paid = n.create_invoice(memo_invoice(Some(5_000))).await.expect("invoice");
        let open = n.create_invoice(memo_invoice(None)).await.expect("invoice");
        let cancelled = n.create_invoice(memo_invoice(Some(1_000))).await.expect("invoice");
        n.pay_from_outside(&paid.payment_request, None).expect("paid");
        n.cancel_invoice(cancelled.payment_hash).await.expect("cancelled");
        let external = outside
            .create_invoice(memo_invoice(Some(1_000_000)))
            .await
            .expect("external");
        let mut req = pay(&external.payment_request, None);
        req.timeout_secs = 0;
        assert_eq!(n.pay(req).await, Ok(PaymentState::InFlight), "still on its way");
        let pubkey = n.node_info().await.expect("info").pubkey;
        (pubkey, paid, open, cancelled, external)
    };
    // The process "dies" here; the network keeps going.
    let n = DevNode::open(&dir, Network::Regtest, INSTANT).expect("reopen");
    assert_eq!(n.node_info().await.expect("info").pubkey, pubkey, "same identity");
    let settled = n.wait_settled(0).await.expect("settled before the restart");
    assert_eq!((settled.payment_hash, settled.settle_index), (paid.payment_hash, 1));
    assert_eq!(
        n.pay_from_outside(&paid.payment_request, None),
        Err(LightningError::AlreadyPaid)
    );
    assert!(n.pay_from_outside(&cancelled.payment_request, None).is_err());
    assert_eq!(n.track_payment(sent.payment_hash).await, Ok(PaymentState::InFlight));
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(
        n.track_payment(sent.payment_hash).await,
        Ok(PaymentState::Succeeded {
            preimage: None,
            fee_msat: 2_000
        }),
        "the result the network decided before the restart"
    );
    let next = n
        .pay_from_outside(&open.payment_request, Some(7_000))
        .expect("open invoice still payable");
    assert_eq!(next.settle_index, 2, "settle indexes continue");
    assert!(
        DevNode::open(&dir, Network::Signet, INSTANT).is_err(),
        "a log of another network is refused"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn liquidity_is_simulated_and_survives_a_restart() {
    use flash_core::lightning::OpenChannelRequest;
    use flash_lightning::{DEV_CHANNEL_SATS, DEV_ONCHAIN_SATS};
    let dir = temp_dir("dev-liquidity");
    let half = DEV_CHANNEL_SATS / 2;
    let outside = node(Network::Regtest, INSTANT);
    {
        let n = DevNode::open(&dir, Network::Regtest, INSTANT).expect("open");
        let channels = n.channels().await.expect("channels");
        assert_eq!(channels.len(), 1);
        assert_eq!((channels[0].local_sat, channels[0].remote_sat), (half, half));
        assert_eq!(n.onchain_balance().await, Ok(DEV_ONCHAIN_SATS));

        // 1,000,000 sats out with a 0.1% fee, 300,000 in.
        let external = outside
            .create_invoice(memo_invoice(Some(1_000_000_000)))
            .await
            .expect("invoice");
        let mut req = pay(&external.payment_request, None);
        req.max_fee_msat = 10_000_000;
        assert!(matches!(n.pay(req).await, Ok(PaymentState::Succeeded { .. })));
        let ours = n
            .create_invoice(memo_invoice(Some(300_000_000)))
            .await
            .expect("invoice");
        n.pay_from_outside(&ours.payment_request, None).expect("received");
        let c = &n.channels().await.expect("channels")[0];
        assert_eq!(c.local_sat, half - 1_001_000 + 300_000);
        assert_eq!(c.remote_sat, half + 1_001_000 - 300_000);

        // More than any channel holds: no route, nothing moves.
        let too_big = outside
            .create_invoice(memo_invoice(Some(DEV_CHANNEL_SATS * 1_000)))
            .await
            .expect("invoice");
        let mut req = pay(&too_big.payment_request, None);
        req.max_fee_msat = u64::MAX;
        assert!(matches!(n.pay(req).await, Ok(PaymentState::Failed { .. })));

        // A new channel spends on-chain funds and adds outbound capacity.
        let peer = format!("03{}", "ab".repeat(32));
        let open = |amount_sat| OpenChannelRequest {
            peer: peer.clone(),
            address: None,
            amount_sat,
        };
        assert!(
            n.open_channel(open(DEV_ONCHAIN_SATS + 1)).await.is_err(),
            "not enough on chain"
        );
        let id = n.open_channel(open(5_000_000)).await.expect("opened");
        assert_eq!(n.onchain_balance().await, Ok(DEV_ONCHAIN_SATS - 5_000_000));
        let channels = n.channels().await.expect("channels");
        let opened = channels.iter().find(|c| c.id == id).expect("listed");
        assert_eq!(
            (opened.local_sat, opened.remote_sat, opened.peer.as_str()),
            (5_000_000, 0, peer.as_str())
        );
    }
    let n = DevNode::open(&dir, Network::Regtest, INSTANT).expect("reopen");
    let channels = n.channels().await.expect("channels");
    assert_eq!(channels.len(), 2, "the opened channel is still there");
    assert_eq!(channels[0].local_sat, half - 1_001_000 + 300_000, "balances replayed");
    assert_eq!(n.onchain_balance().await, Ok(DEV_ONCHAIN_SATS - 5_000_000));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_torn_last_line_is_cut_off_and_later_events_survive() {
    use std::io::Write as _;
    let dir = temp_dir("dev-torn");
    let first = {
        let n = DevNode::open(&dir, Network::Regtest, INSTANT).expect("open");
        let invoice = n.create_invoice(memo_invoice(Some(1_000))).await.expect("invoice");
        n.pay_from_outside(&invoice.payment_request, None).expect("paid");
        invoice
    };
    // A crash in the middle of writing an event.
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("dev-node.log"))
        .expect("log");
    log.write_all(b"{\"event\":\"settled\",\"payment_ha")
        .expect("torn write");
    drop(log);
    let second = {
        let n = DevNode::open(&dir, Network::Regtest, INSTANT).expect("reopen after a torn line");
        let invoice = n.create_invoice(memo_invoice(Some(2_000))).await.expect("invoice");
        let settled = n.pay_from_outside(&invoice.payment_request, None).expect("paid");
        assert_eq!(settled.settle_index, 2, "the torn event never happened");
        invoice
    };
    let n = DevNode::open(&dir, Network::Regtest, INSTANT).expect("reopen");
    assert_eq!(n.wait_settled(0).await.expect("first").payment_hash, first.payment_hash);
    let later = n.wait_settled(1).await.expect("second");
    assert_eq!(
        (later.payment_hash, later.settle_index),
        (second.payment_hash, 2),
        "nothing after the tear was lost"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
