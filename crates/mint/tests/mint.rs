//! The mint end to end on both stores, with the bank's simulated Lightning node: keysets,
//! minting, swapping, melting inside and outside Flash, spending conditions, restore, and the
//! refusals with their NUT codes. After every scenario unspent ecash equals
//! `mint:outstanding` and the ledger balances.

mod support;

use std::sync::Arc;

use cashu::nuts::{
    CheckStateRequest, Conditions, CurrencyUnit, MeltRequest, MintQuoteBolt11Request, MintRequest, RestoreRequest,
    SecretKey, SigFlag, SpendingConditions, State, SwapRequest,
};
use cashu::secret::Secret;
use cashu::Amount;
use flash_core::lightning::{DevOutcome, InvoiceDescription, InvoiceRequest, LightningNode};
use flash_core::SystemAccount;
use flash_mint::MintConfig;
use flash_store::testing::Backend;
use support::*;

flash_store::on_both_backends!(
    keysets_are_derived_stable_and_listed,
    mint_over_lightning_then_swap,
    double_spends_and_replays_are_refused,
    a_thousand_concurrent_swaps_of_one_note_one_wins,
    malformed_requests_get_nut_codes_and_change_nothing,
    rotation_keeps_old_notes_redeemable_and_charges_input_fees,
    p2pk_and_htlc_conditions_are_enforced,
    locked_mint_quotes_need_the_key_signature,
    check_state_and_restore,
    melt_to_a_flash_invoice_settles_inside_with_change,
    melt_outside_pays_the_node_and_returns_unused_reserve,
    failed_and_slow_melts_release_or_keep_notes_pending,
    wallet_balance_to_ecash_and_back,
    a_flash_wallet_pays_a_mint_quote_inside_the_ledger,
    a_retried_ecash_mint_hands_out_nothing_new,
    retried_mint_and_melt_requests_get_their_first_answer,
    melt_change_the_blanks_cannot_carry_is_kept_as_revenue,
    a_melt_the_node_never_heard_of_gives_its_notes_back,
    amountless_invoices_are_melted_for_the_amount_asked,
);

fn quote_request(amount: u64) -> MintQuoteBolt11Request {
    MintQuoteBolt11Request {
        amount: Amount::from(amount),
        unit: CurrencyUnit::Sat,
        description: None,
        pubkey: None,
    }
}

async fn keysets_are_derived_stable_and_listed(backend: Backend) {
    let lab = lab(backend).await;
    let keys = lab.mint.keys();
    assert_eq!(keys.keysets.len(), 1, "one active keyset");
    let set = &keys.keysets[0];
    assert_eq!(set.unit, CurrencyUnit::Sat);
    assert_eq!(set.keys.len(), 32, "amounts 1 … 2^31");
    assert_eq!(set.id.to_string().len(), 16, "a version-1 id");
    assert_eq!(
        set.id,
        cashu::nuts::Id::v1_from_keys(&set.keys),
        "the id commits to the keys"
    );
    assert_eq!(lab.mint.keyset(&set.id.to_string()).expect("by id").keys, set.keys);
    assert_eq!(code(lab.mint.keyset("00ffffffffffffff")), 12001);
    assert_eq!(code(lab.mint.keyset("not hex")), 12001);
    let listed = lab.mint.keysets().keysets;
    assert_eq!((listed.len(), listed[0].active, listed[0].input_fee_ppk), (1, true, 0));

    // Opening again over the same store derives the same keys from the sealed seed.
    let kek = flash_core::secrets::KeyEncryptionKey::new([7u8; 32]);
    let again = flash_mint::Mint::open(
        lab.bank.clone(),
        lab.mint.store().clone(),
        &kek,
        MintConfig::default(),
        MINT_URL.into(),
    )
    .await
    .expect("reopen");
    assert_eq!(again.keys().keysets[0].keys, set.keys);
    // Another key-encryption key cannot open the seed.
    let wrong = flash_core::secrets::KeyEncryptionKey::new([8u8; 32]);
    assert!(flash_mint::Mint::open(
        lab.bank.clone(),
        lab.mint.store().clone(),
        &wrong,
        MintConfig::default(),
        MINT_URL.into()
    )
    .await
    .is_err());
    let info = lab.mint.info();
    assert_eq!(info.name.as_deref(), Some("Flash"));
    assert!(info.nuts.nut07.supported && info.nuts.nut12.supported && info.nuts.nut20.supported);
    assert!(!info.nuts.nut04.disabled);
    assert_books(&lab).await;
}

async fn mint_over_lightning_then_swap(backend: Backend) {
    let lab = lab(backend).await;
    let quote = lab.mint.mint_quote(quote_request(100)).await.expect("quote");
    assert_eq!(quote.state, cashu::nuts::MintQuoteState::Unpaid);
    let (id, keys) = active(&lab.mint);
    let pre = premint(id, &split(100));
    let unpaid = lab
        .mint
        .mint(MintRequest {
            quote: quote.quote.clone(),
            outputs: pre.outputs.clone(),
            signature: None,
        })
        .await;
    assert_eq!(code(unpaid), 20001, "not paid yet");
    assert_books(&lab).await;

    lab.bank
        .dev_ln_pay_from_outside(&quote.request, None)
        .await
        .expect("paid");
    let state = lab.mint.mint_quote_state(&quote.quote).await.expect("state");
    assert_eq!(state.state, cashu::nuts::MintQuoteState::Paid);
    assert_eq!(system_balance(&lab.bank, SystemAccount::MintQuotes).await, 100);
    assert_books(&lab).await;

    // Outputs that do not add up to the quote are refused; the right ones are signed once.
    let short = premint(id, &[64, 32]);
    let refused = lab
        .mint
        .mint(MintRequest {
            quote: quote.quote.clone(),
            outputs: short.outputs,
            signature: None,
        })
        .await;
    assert_eq!(code(refused), 11005);
    let minted = lab
        .mint
        .mint(MintRequest {
            quote: quote.quote.clone(),
            outputs: pre.outputs.clone(),
            signature: None,
        })
        .await
        .expect("mint");
    let proofs = unblind(pre, minted.signatures, &keys);
    assert_eq!(total(&proofs), 100);
    assert_eq!(
        system_balance(&lab.bank, SystemAccount::MintOutstanding).await,
        100,
        "a liability"
    );
    assert_eq!(system_balance(&lab.bank, SystemAccount::MintQuotes).await, 0);
    let again = premint(id, &split(100));
    let twice = lab
        .mint
        .mint(MintRequest {
            quote: quote.quote.clone(),
            outputs: again.outputs,
            signature: None,
        })
        .await;
    assert_eq!(code(twice), 20002, "a quote is issued once");
    assert_eq!(
        lab.mint.mint_quote_state(&quote.quote).await.expect("state").state,
        cashu::nuts::MintQuoteState::Issued
    );

    // Swap 100 into other denominations.
    let pre = premint(id, &[50u64, 50].iter().flat_map(|a| split(*a)).collect::<Vec<_>>());
    let swapped = lab
        .mint
        .swap(SwapRequest::new(proofs.clone(), pre.outputs.clone()))
        .await
        .expect("swap");
    let new = unblind(pre, swapped.signatures, &keys);
    assert_eq!(total(&new), 100);
    let states = lab
        .mint
        .check_state(CheckStateRequest {
            ys: proofs.iter().chain(&new).map(y).collect(),
        })
        .await
        .expect("states");
    let (old_states, new_states) = states.states.split_at(proofs.len());
    assert!(old_states.iter().all(|s| s.state == State::Spent));
    assert!(new_states.iter().all(|s| s.state == State::Unspent));
    assert_books(&lab).await;
}

async fn double_spends_and_replays_are_refused(backend: Backend) {
    let lab = lab(backend).await;
    let proofs = mint_notes(&lab, 8).await;
    let (id, _) = active(&lab.mint);
    let first = premint(id, &[8]);
    lab.mint
        .swap(SwapRequest::new(proofs.clone(), first.outputs.clone()))
        .await
        .expect("first swap");
    let spent_before = lab.mint.store().mint_totals().await.expect("totals");
    let second = premint(id, &[8]);
    assert_eq!(
        code(lab.mint.swap(SwapRequest::new(proofs.clone(), second.outputs)).await),
        11001
    );
    assert_eq!(lab.mint.store().mint_totals().await.expect("totals"), spent_before);
    // The very same request again is answered as the first time (NUT-19), from the store.
    let replay = lab
        .mint
        .swap(SwapRequest::new(proofs.clone(), first.outputs.clone()))
        .await
        .expect("replayed");
    let (_, keys) = active(&lab.mint);
    let again = unblind(first.clone(), replay.signatures, &keys);
    assert_eq!(total(&again), 8, "the same notes, unblinded again");
    assert_eq!(lab.mint.store().mint_totals().await.expect("totals"), spent_before);
    // Another request reusing those outputs with other inputs is refused.
    let other = mint_notes(&lab, 8).await;
    let before = lab.mint.store().mint_totals().await.expect("totals");
    assert_eq!(code(lab.mint.swap(SwapRequest::new(other, first.outputs)).await), 11003);
    assert_eq!(lab.mint.store().mint_totals().await.expect("totals"), before);
    assert_books(&lab).await;
}

async fn a_thousand_concurrent_swaps_of_one_note_one_wins(backend: Backend) {
    let lab = lab(backend).await;
    let proofs = mint_notes(&lab, 4).await;
    let (id, _) = active(&lab.mint);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1_000 {
        let mint = lab.mint.clone();
        let req = SwapRequest::new(proofs.clone(), premint(id, &[4]).outputs);
        tasks.spawn(async move { mint.swap(req).await });
    }
    let (mut won, mut spent, mut other) = (0, 0, Vec::new());
    while let Some(done) = tasks.join_next().await {
        match done.expect("task") {
            Ok(_) => won += 1,
            Err(e) if e.code() == 11001 => spent += 1,
            Err(e) => other.push(e.to_string()),
        }
    }
    assert_eq!((won, spent), (1, 999), "exactly one swap wins; others: {other:?}");
    let totals = lab.mint.store().mint_totals().await.expect("totals");
    assert_eq!(
        (totals.issued, totals.spent),
        (8, 4),
        "one swap's notes signed, the input spent once"
    );
    assert_books(&lab).await;
}

async fn malformed_requests_get_nut_codes_and_change_nothing(backend: Backend) {
    let config = MintConfig {
        max_inputs: 3,
        max_outputs: 3,
        ..MintConfig::default()
    };
    let lab = lab_with(backend, config).await;
    let proofs = mint_notes(&lab, 7).await; // 4 + 2 + 1
    let (id, _) = active(&lab.mint);
    let before = lab.mint.store().mint_totals().await.expect("totals");
    let swap = |inputs: Vec<cashu::nuts::Proof>, outputs: Vec<cashu::nuts::BlindedMessage>| {
        let mint = lab.mint.clone();
        async move { mint.swap(SwapRequest::new(inputs, outputs)).await }
    };

    // A forged signature on a note.
    let mut forged = proofs.clone();
    forged[0].c = SecretKey::generate().public_key();
    assert_eq!(code(swap(forged, premint(id, &[4, 2, 1]).outputs).await), 10001);
    // A note from a keyset this mint never had.
    let mut foreign = proofs.clone();
    foreign[0].keyset_id = "00ffffffffffffff".parse().expect("id");
    assert_eq!(code(swap(foreign, premint(id, &[4, 2, 1]).outputs).await), 12001);
    // Outputs for an unknown keyset.
    let unknown = premint("00ffffffffffffff".parse().expect("id"), &[4, 2, 1]);
    assert_eq!(code(swap(proofs.clone(), unknown.outputs).await), 12001);
    // Duplicate inputs and outputs.
    let dup_in = vec![proofs[0].clone(), proofs[0].clone()];
    assert_eq!(code(swap(dup_in, premint(id, &[4, 4]).outputs).await), 11007);
    let mut dup_out = premint(id, &[4, 2]).outputs;
    dup_out.push(dup_out[0].clone());
    assert_eq!(code(swap(proofs.clone(), dup_out).await), 11008);
    // Amounts that do not balance, and an amount with no key.
    assert_eq!(code(swap(proofs.clone(), premint(id, &[4, 2]).outputs).await), 11005);
    assert_eq!(code(swap(proofs.clone(), premint(id, &[4, 2, 2]).outputs).await), 11005);
    assert_eq!(code(swap(proofs.clone(), premint(id, &[4, 3]).outputs).await), 11006);
    // Over the caps.
    let four = vec![
        proofs[0].clone(),
        proofs[1].clone(),
        proofs[2].clone(),
        proofs[2].clone(),
    ];
    assert_eq!(code(swap(four, premint(id, &[7]).outputs).await), 11014);
    assert_eq!(
        code(swap(proofs.clone(), premint(id, &[1, 1, 1, 4]).outputs).await),
        11015
    );
    assert_eq!(code(swap(Vec::new(), premint(id, &[1]).outputs).await), 11005);
    assert_eq!(code(swap(proofs.clone(), Vec::new()).await), 11005);
    // A unit the mint does not issue, quotes that do not exist, amounts out of range.
    let usd = MintQuoteBolt11Request {
        unit: CurrencyUnit::Usd,
        ..quote_request(10)
    };
    assert_eq!(code(lab.mint.mint_quote(usd).await), 11013);
    assert_eq!(code(lab.mint.mint_quote(quote_request(0)).await), 11006);
    assert_eq!(code(lab.mint.mint_quote(quote_request(10_000_000)).await), 11006);
    assert_eq!(code(lab.mint.mint_quote_state("nope").await), 20001);
    assert_eq!(
        lab.mint.store().mint_totals().await.expect("totals"),
        before,
        "nothing written"
    );

    // Outputs already signed are refused, even with valid inputs.
    let pre = premint(id, &[4, 2, 1]);
    lab.mint
        .swap(SwapRequest::new(proofs.clone(), pre.outputs.clone()))
        .await
        .expect("swap");
    let more = mint_notes(&lab, 7).await;
    let before = lab.mint.store().mint_totals().await.expect("totals");
    assert_eq!(code(swap(more.clone(), pre.outputs).await), 11003);
    assert_eq!(lab.mint.store().mint_totals().await.expect("totals"), before);
    let states = lab
        .mint
        .check_state(CheckStateRequest {
            ys: more.iter().map(y).collect(),
        })
        .await
        .expect("states");
    assert!(
        states.states.iter().all(|s| s.state == State::Unspent),
        "a refused swap spends nothing"
    );
    assert_books(&lab).await;
}

async fn rotation_keeps_old_notes_redeemable_and_charges_input_fees(backend: Backend) {
    let config = MintConfig {
        input_fee_ppk: 500,
        ..MintConfig::default()
    };
    let lab = lab_with(backend, config).await;
    let old = mint_notes(&lab, 16).await;
    let (old_id, _) = active(&lab.mint);
    let rotated = lab.mint.rotate(CurrencyUnit::Sat, "test").await.expect("rotate");
    assert_ne!(rotated.id, old_id);
    let listed = lab.mint.keysets().keysets;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|k| k.id == old_id && !k.active));
    assert_eq!(lab.mint.keys().keysets.len(), 1, "only the active keyset in /v1/keys");
    let (new_id, keys) = active(&lab.mint);
    assert_eq!(new_id, rotated.id);
    // The old keyset no longer signs.
    assert_eq!(
        code(
            lab.mint
                .swap(SwapRequest::new(old.clone(), premint(old_id, &[16]).outputs))
                .await
        ),
        12002
    );
    // Its notes still redeem (1 input at 500 ppk: fee 1 sat).
    let revenue = system_balance(&lab.bank, SystemAccount::FeesRevenue).await;
    assert_eq!(
        code(
            lab.mint
                .swap(SwapRequest::new(old.clone(), premint(new_id, &[16]).outputs))
                .await
        ),
        11005,
        "the fee must be left out"
    );
    let pre = premint(new_id, &split(15));
    let swapped = lab
        .mint
        .swap(SwapRequest::new(old, pre.outputs.clone()))
        .await
        .expect("swap with fee");
    let new = unblind(pre, swapped.signatures, &keys);
    assert_eq!(total(&new), 15);
    assert_eq!(system_balance(&lab.bank, SystemAccount::FeesRevenue).await, revenue + 1);
    // The new keyset's notes cost 500 ppk each: 4 inputs, fee 2.
    let pre = premint(new_id, &split(13));
    lab.mint
        .swap(SwapRequest::new(new, pre.outputs))
        .await
        .expect("second fee swap");
    assert_eq!(system_balance(&lab.bank, SystemAccount::FeesRevenue).await, revenue + 3);
    assert_books(&lab).await;
}

async fn p2pk_and_htlc_conditions_are_enforced(backend: Backend) {
    let lab = lab(backend).await;
    let (id, keys) = active(&lab.mint);
    let plain = mint_notes(&lab, 8).await;
    let alice = SecretKey::generate();

    // Lock 8 sats to Alice (SIG_INPUTS).
    let locked: Secret = SpendingConditions::new_p2pk(alice.public_key(), None)
        .try_into()
        .expect("p2pk secret");
    let pre = premint_with(id, vec![(8, locked)]);
    let sigs = lab
        .mint
        .swap(SwapRequest::new(plain, pre.outputs.clone()))
        .await
        .expect("lock");
    let mut p2pk = unblind(pre, sigs.signatures, &keys);
    assert_eq!(
        code(
            lab.mint
                .swap(SwapRequest::new(p2pk.clone(), premint(id, &[8]).outputs))
                .await
        ),
        10001,
        "unsigned"
    );
    let mut wrong = p2pk.clone();
    wrong[0].sign_p2pk(SecretKey::generate()).expect("sign");
    assert_eq!(
        code(lab.mint.swap(SwapRequest::new(wrong, premint(id, &[8]).outputs)).await),
        10001,
        "signed by someone else"
    );
    p2pk[0].sign_p2pk(alice.clone()).expect("sign");
    let pre = premint(id, &[8]);
    let sigs = lab
        .mint
        .swap(SwapRequest::new(p2pk, pre.outputs.clone()))
        .await
        .expect("spent by Alice");
    let plain = unblind(pre, sigs.signatures, &keys);

    // 2-of-2 with SIG_ALL: both sign the whole request.
    let bob = SecretKey::generate();
    let conditions = Conditions {
        pubkeys: Some(vec![bob.public_key()]),
        num_sigs: Some(2),
        sig_flag: SigFlag::SigAll,
        ..Conditions::default()
    };
    let locked: Secret = SpendingConditions::new_p2pk(alice.public_key(), Some(conditions))
        .try_into()
        .expect("p2pk secret");
    let pre = premint_with(id, vec![(8, locked)]);
    let sigs = lab
        .mint
        .swap(SwapRequest::new(plain, pre.outputs.clone()))
        .await
        .expect("lock 2-of-2");
    let multi = unblind(pre, sigs.signatures, &keys);
    let mut one = SwapRequest::new(multi.clone(), premint(id, &[8]).outputs);
    one.sign_sig_all(alice.clone()).expect("alice signs");
    assert_eq!(code(lab.mint.swap(one).await), 10001, "one signature of two");
    let pre = premint(id, &[8]);
    let mut both = SwapRequest::new(multi, pre.outputs.clone());
    both.sign_sig_all(alice.clone()).expect("alice signs");
    both.sign_sig_all(bob).expect("bob signs");
    let sigs = lab.mint.swap(both).await.expect("2-of-2 SIG_ALL");
    let plain = unblind(pre, sigs.signatures, &keys);

    // HTLC: the preimage of the hash spends it.
    let preimage = "00".repeat(32);
    let htlc: Secret = SpendingConditions::new_htlc(preimage.clone(), None)
        .expect("htlc")
        .try_into()
        .expect("htlc secret");
    let pre = premint_with(id, vec![(8, htlc)]);
    let sigs = lab
        .mint
        .swap(SwapRequest::new(plain, pre.outputs.clone()))
        .await
        .expect("lock to a hash");
    let mut locked = unblind(pre, sigs.signatures, &keys);
    assert_eq!(
        code(
            lab.mint
                .swap(SwapRequest::new(locked.clone(), premint(id, &[8]).outputs))
                .await
        ),
        10001,
        "no preimage"
    );
    locked[0].add_preimage(preimage);
    lab.mint
        .swap(SwapRequest::new(locked, premint(id, &[8]).outputs))
        .await
        .expect("spent with the preimage");
    assert_books(&lab).await;
}

async fn locked_mint_quotes_need_the_key_signature(backend: Backend) {
    let lab = lab(backend).await;
    let key = SecretKey::generate();
    let quote = lab
        .mint
        .mint_quote(MintQuoteBolt11Request {
            pubkey: Some(key.public_key()),
            ..quote_request(10)
        })
        .await
        .expect("quote");
    assert_eq!(quote.pubkey, Some(key.public_key()));
    lab.bank
        .dev_ln_pay_from_outside(&quote.request, None)
        .await
        .expect("paid");
    let (id, _) = active(&lab.mint);
    let pre = premint(id, &split(10));
    let mut req = MintRequest {
        quote: quote.quote.clone(),
        outputs: pre.outputs.clone(),
        signature: None,
    };
    assert_eq!(code(lab.mint.mint(req.clone()).await), 20008, "unsigned");
    req.sign(&SecretKey::generate()).expect("sign");
    assert_eq!(code(lab.mint.mint(req.clone()).await), 20008, "wrong key");
    req.sign(&key).expect("sign");
    lab.mint.mint(req).await.expect("signed by the quote's key");
    assert_books(&lab).await;
}

async fn check_state_and_restore(backend: Backend) {
    let lab = lab(backend).await;
    let (id, keys) = active(&lab.mint);
    let quote = lab.mint.mint_quote(quote_request(5)).await.expect("quote");
    lab.bank
        .dev_ln_pay_from_outside(&quote.request, None)
        .await
        .expect("paid");
    let pre = premint(id, &split(5));
    let minted = lab
        .mint
        .mint(MintRequest {
            quote: quote.quote,
            outputs: pre.outputs.clone(),
            signature: None,
        })
        .await
        .expect("mint");
    // A wallet that lost its notes asks again with the same outputs (plus one never signed).
    let stranger = premint(id, &[1]);
    let mut outputs = pre.outputs.clone();
    outputs.insert(1, stranger.outputs[0].clone());
    let restored = lab.mint.restore(RestoreRequest { outputs }).await.expect("restore");
    assert_eq!(restored.outputs, pre.outputs, "only the signed outputs, in order");
    assert_eq!(
        restored.signatures, minted.signatures,
        "the same signatures, DLEQ included"
    );
    let proofs = unblind(pre, restored.signatures, &keys);
    let states = lab
        .mint
        .check_state(CheckStateRequest {
            ys: proofs.iter().map(y).collect(),
        })
        .await
        .expect("states");
    assert!(states.states.iter().all(|s| s.state == State::Unspent));
    assert_books(&lab).await;
}

async fn melt_to_a_flash_invoice_settles_inside_with_change(backend: Backend) {
    let lab = lab(backend).await;
    let (alice, invoice) = wallet_invoice(&lab, 40).await;
    let proofs = mint_notes(&lab, 64).await;
    let quote = melt_quote(&lab, &invoice.payment_request).await;
    assert_eq!(
        (quote.amount.to_u64(), quote.fee_reserve.to_u64()),
        (40, 0),
        "inside Flash: no fee"
    );
    let (id, keys) = active(&lab.mint);
    let blanks = premint(id, &[0, 0, 0, 0, 0, 0]);
    let melted = lab
        .mint
        .melt(MeltRequest::new(
            quote.quote.clone(),
            proofs.clone(),
            Some(blanks.outputs.clone()),
        ))
        .await
        .expect("melt");
    assert_eq!(melted.state, cashu::nuts::MeltQuoteState::Paid);
    let change = melted.change.expect("change");
    let change_proofs = unblind_change(blanks, change, &keys);
    assert_eq!(total(&change_proofs), 24);
    assert_eq!(
        lab.bank
            .store_for_tests()
            .wallet_balance(alice.default_wallet_id)
            .await
            .expect("balance"),
        40
    );
    let other = mint_notes(&lab, 64).await;
    assert_eq!(
        code(lab.mint.melt(MeltRequest::new(quote.quote.clone(), other, None)).await),
        20006,
        "a paid quote takes no other notes"
    );
    let replay = lab
        .mint
        .melt(MeltRequest::new(quote.quote.clone(), proofs, None))
        .await
        .expect("its own notes again: the quote's state");
    assert_eq!(replay.state, cashu::nuts::MeltQuoteState::Paid);
    let state = lab.mint.melt_quote_state(&quote.quote).await.expect("state");
    assert_eq!(state.state, cashu::nuts::MeltQuoteState::Paid);
    assert_eq!(state.change.map(|c| c.len()), Some(change_proofs.len()));
    assert_books(&lab).await;
}

async fn external_invoice(lab: &Lab, sats: u64) -> String {
    lab.outside
        .create_invoice(InvoiceRequest {
            amount_msat: Some(sats * 1_000),
            description: InvoiceDescription::Memo("elsewhere".into()),
            expiry_secs: 3_600,
        })
        .await
        .expect("invoice elsewhere")
        .payment_request
}

async fn melt_outside_pays_the_node_and_returns_unused_reserve(backend: Backend) {
    let lab = lab(backend).await;
    lab.bank
        .dev_ln_set_outcome(DevOutcome::Succeed {
            delay_ms: 0,
            fee_ppm: 1_000,
        })
        .expect("0.1% fee");
    let request = external_invoice(&lab, 10_000).await;
    let proofs = mint_notes(&lab, 12_000).await;
    let quote = melt_quote(&lab, &request).await;
    assert_eq!(quote.amount.to_u64(), 10_000);
    assert!(quote.fee_reserve.to_u64() >= 10, "room for the routing fee");
    let (id, keys) = active(&lab.mint);
    let node_before = system_balance(&lab.bank, SystemAccount::LightningNode).await;
    let blanks = premint(id, &[0; 12]);
    let melted = lab
        .mint
        .melt(MeltRequest::new(
            quote.quote.clone(),
            proofs.clone(),
            Some(blanks.outputs.clone()),
        ))
        .await
        .expect("melt");
    assert_eq!(melted.state, cashu::nuts::MeltQuoteState::Paid);
    // (The simulator does not learn other nodes' preimages; a real node's is passed on.)
    let change = unblind_change(blanks, melted.change.expect("change"), &keys);
    assert_eq!(
        total(&change),
        12_000 - 10_000 - 10,
        "everything but amount and the fee actually paid"
    );
    assert_eq!(
        system_balance(&lab.bank, SystemAccount::LightningNode).await,
        node_before + 10_010,
        "the node paid amount + fee"
    );
    let states = lab
        .mint
        .check_state(CheckStateRequest {
            ys: proofs.iter().map(y).collect(),
        })
        .await
        .expect("states");
    assert!(states.states.iter().all(|s| s.state == State::Spent));
    assert_books(&lab).await;
}

async fn failed_and_slow_melts_release_or_keep_notes_pending(backend: Backend) {
    let lab = lab(backend).await;
    let proofs = mint_notes(&lab, 2_000).await;
    let (id, keys) = active(&lab.mint);
    lab.bank
        .dev_ln_set_outcome(DevOutcome::Fail { delay_ms: 0 })
        .expect("failing");
    let request = external_invoice(&lab, 1_000).await;
    let quote = melt_quote(&lab, &request).await;
    // Blank outputs are checked before anything is pending: duplicates, unknown keysets.
    let mut dup = premint(id, &[0, 0]).outputs;
    dup.push(dup[0].clone());
    let refused = lab
        .mint
        .melt(MeltRequest::new(quote.quote.clone(), proofs.clone(), Some(dup)))
        .await;
    assert_eq!(code(refused), 11008);
    let foreign = premint("00ffffffffffffff".parse().expect("id"), &[0]).outputs;
    let refused = lab
        .mint
        .melt(MeltRequest::new(quote.quote.clone(), proofs.clone(), Some(foreign)))
        .await;
    assert_eq!(code(refused), 12001);
    let failed = lab
        .mint
        .melt(MeltRequest::new(quote.quote.clone(), proofs.clone(), None))
        .await;
    assert_eq!(code(failed), 20004);
    let states = lab
        .mint
        .check_state(CheckStateRequest {
            ys: proofs.iter().map(y).collect(),
        })
        .await
        .expect("states");
    assert!(states.states.iter().all(|s| s.state == State::Unspent), "released");
    assert_books(&lab).await;

    // Slow: the payment outlives the wait; the notes stay pending until reconciled.
    lab.bank
        .dev_ln_set_outcome(DevOutcome::Succeed {
            delay_ms: 3_000,
            fee_ppm: 0,
        })
        .expect("slow");
    let blanks = premint(id, &[0; 11]);
    let pending = lab
        .mint
        .melt(MeltRequest::new(
            quote.quote.clone(),
            proofs.clone(),
            Some(blanks.outputs.clone()),
        ))
        .await
        .expect("pending melt");
    assert_eq!(pending.state, cashu::nuts::MeltQuoteState::Pending);
    let states = lab
        .mint
        .check_state(CheckStateRequest {
            ys: proofs.iter().map(y).collect(),
        })
        .await
        .expect("states");
    assert!(states.states.iter().all(|s| s.state == State::Pending));
    assert_eq!(
        code(
            lab.mint
                .swap(SwapRequest::new(proofs.clone(), premint(id, &split(2_000)).outputs))
                .await
        ),
        11002,
        "pending notes cannot be swapped"
    );
    let other = mint_notes(&lab, 2_000).await;
    assert_eq!(
        code(lab.mint.melt(MeltRequest::new(quote.quote.clone(), other, None)).await),
        20005,
        "a pending quote takes no other notes"
    );
    let replay = lab
        .mint
        .melt(MeltRequest::new(quote.quote.clone(), proofs.clone(), None))
        .await
        .expect("its own notes again: the quote's state");
    assert_eq!(replay.state, cashu::nuts::MeltQuoteState::Pending);
    // A Flash wallet cannot pay the invoice the mint is paying.
    let payer = member(&lab.bank, 5_000).await;
    let paid = lab
        .bank
        .ln_pay(flash_bank::LnPayRequest {
            account: payer.id,
            wallet_id: payer.default_wallet_id,
            payment_request: request.clone(),
            amount: None,
            memo: None,
            idempotency_key: None,
        })
        .await;
    assert_eq!(
        paid.map(|p| p.status).map_err(|e| e.code().as_str()),
        Err("PAYMENT_IN_FLIGHT")
    );
    assert_eq!(
        lab.bank
            .store_for_tests()
            .wallet_balance(payer.default_wallet_id)
            .await
            .expect("b"),
        5_000
    );
    assert_books(&lab).await;
    let mut ended = 0;
    for _ in 0..50 {
        ended += lab.mint.reconcile_melts().await.expect("reconcile");
        if ended > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(ended, 1);
    let paid = lab.mint.melt_quote_state(&quote.quote).await.expect("state");
    assert_eq!(paid.state, cashu::nuts::MeltQuoteState::Paid);
    let change = unblind_change(blanks, paid.change.expect("change"), &keys);
    assert_eq!(total(&change), 1_000, "the whole unused reserve and surplus back");
    assert_books(&lab).await;
}

async fn wallet_balance_to_ecash_and_back(backend: Backend) {
    let lab = lab(backend).await;
    let alice = member(&lab.bank, 10_000).await;
    let bob = member(&lab.bank, 0).await;
    let minted = lab
        .mint
        .ecash_from_wallet(alice.id, alice.default_wallet_id, 3_000, Some("k1".into()))
        .await
        .expect("ecash");
    assert!(minted.token.starts_with("cashuB"), "a V4 token");
    let balance = |w| {
        let store = lab.bank.store_for_tests().clone();
        async move { store.wallet_balance(w).await.expect("balance") }
    };
    assert_eq!(balance(alice.default_wallet_id).await, 7_000);
    assert_eq!(system_balance(&lab.bank, SystemAccount::MintOutstanding).await, 3_000);
    assert_books(&lab).await;
    // Someone else's wallet cannot be drawn on; balance cannot go negative.
    assert!(lab
        .mint
        .ecash_from_wallet(bob.id, alice.default_wallet_id, 10, None)
        .await
        .is_err());
    assert!(lab
        .mint
        .ecash_from_wallet(alice.id, alice.default_wallet_id, 8_000, None)
        .await
        .is_err());

    let redeemed = lab
        .mint
        .ecash_to_wallet(bob.id, bob.default_wallet_id, &minted.token)
        .await
        .expect("redeem");
    assert_eq!((redeemed.amount, redeemed.fee), (3_000, 0));
    assert_eq!(balance(bob.default_wallet_id).await, 3_000);
    // Bob's retry gets the first answer; anyone else finds the notes spent.
    let retry = lab
        .mint
        .ecash_to_wallet(bob.id, bob.default_wallet_id, &minted.token)
        .await
        .expect("retry");
    assert_eq!(retry, redeemed);
    let other = lab
        .mint
        .ecash_to_wallet(alice.id, alice.default_wallet_id, &minted.token)
        .await;
    assert_eq!(code(other), 11001);
    assert_eq!(balance(alice.default_wallet_id).await, 7_000);
    assert_eq!(
        code(
            lab.mint
                .ecash_to_wallet(bob.id, bob.default_wallet_id, "cashuBnope")
                .await
        ),
        10000
    );
    assert_eq!(balance(bob.default_wallet_id).await, 3_000);
    assert_books(&lab).await;
}

async fn a_flash_wallet_pays_a_mint_quote_inside_the_ledger(backend: Backend) {
    let lab = lab(backend).await;
    let alice = member(&lab.bank, 1_000).await;
    let quote = lab.mint.mint_quote(quote_request(300)).await.expect("quote");
    let node = Arc::clone(&lab.node);
    let paid = lab
        .bank
        .ln_pay(flash_bank::LnPayRequest {
            account: alice.id,
            wallet_id: alice.default_wallet_id,
            payment_request: quote.request.clone(),
            amount: None,
            memo: None,
            idempotency_key: None,
        })
        .await
        .expect("pay");
    assert_eq!(paid.status, flash_bank::PaymentStatus::Success);
    assert_eq!(
        lab.bank
            .store_for_tests()
            .wallet_balance(alice.default_wallet_id)
            .await
            .expect("b"),
        700
    );
    assert_eq!(
        system_balance(&lab.bank, SystemAccount::LightningNode).await,
        0,
        "no Lightning hop"
    );
    let state = lab.mint.mint_quote_state(&quote.quote).await.expect("state");
    assert_eq!(state.state, cashu::nuts::MintQuoteState::Paid);
    // Paying it again, from inside or outside, pays nothing.
    let again = lab
        .bank
        .ln_pay(flash_bank::LnPayRequest {
            account: alice.id,
            wallet_id: alice.default_wallet_id,
            payment_request: quote.request.clone(),
            amount: None,
            memo: None,
            idempotency_key: None,
        })
        .await
        .expect("pay again");
    assert_eq!(again.status, flash_bank::PaymentStatus::AlreadyPaid);
    assert!(lab.bank.dev_ln_pay_from_outside(&quote.request, None).await.is_err());
    let _ = node;
    assert_eq!(
        lab.bank
            .store_for_tests()
            .wallet_balance(alice.default_wallet_id)
            .await
            .expect("b"),
        700
    );
    assert_books(&lab).await;
}

async fn a_retried_ecash_mint_hands_out_nothing_new(backend: Backend) {
    let lab = lab(backend).await;
    let alice = member(&lab.bank, 1_000).await;
    lab.mint
        .ecash_from_wallet(alice.id, alice.default_wallet_id, 100, Some("once".into()))
        .await
        .expect("first");
    let issued = lab.mint.store().mint_totals().await.expect("totals").issued;
    // The first token cannot be made again (its secrets are not kept), and notes signed for
    // a retry that debited nothing must not leave the mint.
    let retry = lab
        .mint
        .ecash_from_wallet(alice.id, alice.default_wallet_id, 100, Some("once".into()))
        .await;
    assert_eq!(
        retry.map(|m| m.amount).map_err(|e| e.name().as_str()),
        Err("IDEMPOTENCY_KEY_REUSED")
    );
    assert_eq!(lab.mint.store().mint_totals().await.expect("totals").issued, issued);
    assert_eq!(
        lab.bank
            .store_for_tests()
            .wallet_balance(alice.default_wallet_id)
            .await
            .expect("b"),
        900
    );
    assert_books(&lab).await;
}

async fn retried_mint_and_melt_requests_get_their_first_answer(backend: Backend) {
    let lab = lab(backend).await;
    let quote = lab.mint.mint_quote(quote_request(64)).await.expect("quote");
    lab.bank
        .dev_ln_pay_from_outside(&quote.request, None)
        .await
        .expect("paid");
    let (id, keys) = active(&lab.mint);
    let pre = premint(id, &[64]);
    let req = MintRequest {
        quote: quote.quote.clone(),
        outputs: pre.outputs.clone(),
        signature: None,
    };
    let first = lab.mint.mint(req.clone()).await.expect("mint");
    let again = lab.mint.mint(req).await.expect("the same request again");
    assert_eq!(again.signatures, first.signatures);
    let proofs = unblind(pre, first.signatures, &keys);

    let (alice, invoice) = wallet_invoice(&lab, 60).await;
    let melt_quote = melt_quote(&lab, &invoice.payment_request).await;
    let blanks = premint(id, &[0, 0, 0]);
    let req = MeltRequest::new(melt_quote.quote.clone(), proofs.clone(), Some(blanks.outputs.clone()));
    let paid = lab.mint.melt(req.clone()).await.expect("melt");
    let replay = lab.mint.melt(req).await.expect("the same melt again");
    assert_eq!((replay.state, replay.change.clone()), (paid.state, paid.change.clone()));
    let change = unblind_change(blanks, replay.change.expect("change"), &keys);
    assert_eq!(total(&change), 4);
    // Other notes for the paid quote are refused.
    let more = mint_notes(&lab, 64).await;
    assert_eq!(
        code(lab.mint.melt(MeltRequest::new(melt_quote.quote, more, None)).await),
        20006
    );
    assert_eq!(
        lab.bank
            .store_for_tests()
            .wallet_balance(alice.default_wallet_id)
            .await
            .expect("b"),
        60
    );
    assert_books(&lab).await;
}

async fn melt_change_the_blanks_cannot_carry_is_kept_as_revenue(backend: Backend) {
    let lab = lab(backend).await;
    let (id, keys) = active(&lab.mint);
    let (_, invoice) = wallet_invoice(&lab, 40).await;
    let revenue = system_balance(&lab.bank, SystemAccount::FeesRevenue).await;
    // 64 in, 40 paid: 24 back, but one blank output carries only 16.
    let proofs = mint_notes(&lab, 64).await;
    let quote = melt_quote(&lab, &invoice.payment_request).await;
    let blanks = premint(id, &[0]);
    let melted = lab
        .mint
        .melt(MeltRequest::new(quote.quote, proofs, Some(blanks.outputs.clone())))
        .await
        .expect("melt");
    let change = unblind_change(blanks, melted.change.expect("change"), &keys);
    assert_eq!(total(&change), 16);
    assert_eq!(system_balance(&lab.bank, SystemAccount::FeesRevenue).await, revenue + 8);
    assert_books(&lab).await;

    // Outside Flash, no blank outputs at all: the unused reserve is kept.
    let request = lab
        .outside
        .create_invoice(InvoiceRequest {
            amount_msat: Some(1_000_000),
            description: InvoiceDescription::Memo("elsewhere".into()),
            expiry_secs: 3_600,
        })
        .await
        .expect("invoice")
        .payment_request;
    let proofs = mint_notes(&lab, 1_024).await;
    let quote = melt_quote(&lab, &request).await;
    let melted = lab
        .mint
        .melt(MeltRequest::new(quote.quote, proofs, None))
        .await
        .expect("melt");
    assert_eq!((melted.state, melted.change), (cashu::nuts::MeltQuoteState::Paid, None));
    assert_eq!(
        system_balance(&lab.bank, SystemAccount::FeesRevenue).await,
        revenue + 8 + 24
    );
    assert_books(&lab).await;
}

async fn a_melt_the_node_never_heard_of_gives_its_notes_back(backend: Backend) {
    let lab = lab(backend).await;
    let proofs = mint_notes(&lab, 2_048).await;
    let request = external_invoice(&lab, 2_000).await;
    let quote = melt_quote(&lab, &request).await;
    // What a crash right after the notes became pending leaves: the node never got the call.
    let now = lab.mint.store().now_ms();
    let origin = format!("melt:{}", quote.quote);
    let mut records: Vec<flash_store::Record> = proofs
        .iter()
        .map(|p| {
            let row = flash_store::ProofRow {
                y: y(p).to_hex(),
                keyset_id: p.keyset_id.to_string(),
                amount: i64::try_from(p.amount.to_u64()).expect("amount"),
                secret: p.secret.to_string(),
                signature: p.c.to_hex(),
                witness: None,
            };
            flash_store::Record::mint_proof_taken(&row, true, &origin, now)
        })
        .collect();
    let payment = lab.bank.melt_payment_id();
    records.push(flash_store::Record::melt_quote_pending(
        &quote.quote,
        "[]",
        2_048,
        0,
        &payment,
        now,
    ));
    // The saga's first step: the hold, the payment row and the pending notes, one transaction.
    let target = lab.bank.melt_target(&request, None).await.expect("target");
    lab.bank
        .melt_pay_start(flash_bank::MeltPayment {
            id: payment,
            quote_id: &quote.quote,
            target: &target,
            held: 2_048,
            records,
        })
        .await
        .expect("pending");
    assert_eq!(
        lab.mint.melt_quote_state(&quote.quote).await.expect("state").state,
        cashu::nuts::MeltQuoteState::Pending
    );
    assert_books(&lab).await;

    assert_eq!(lab.mint.reconcile_melts().await.expect("reconcile"), 1);
    let state = lab.mint.melt_quote_state(&quote.quote).await.expect("state");
    assert_eq!(state.state, cashu::nuts::MeltQuoteState::Unpaid);
    let states = lab
        .mint
        .check_state(CheckStateRequest {
            ys: proofs.iter().map(y).collect(),
        })
        .await
        .expect("states");
    assert!(
        states.states.iter().all(|s| s.state == State::Unspent),
        "the notes are back"
    );
    // And the melt can be made again, for real.
    let (id, _) = active(&lab.mint);
    let paid = lab
        .mint
        .melt(MeltRequest::new(
            quote.quote,
            proofs,
            Some(premint(id, &[0; 6]).outputs),
        ))
        .await
        .expect("melt");
    assert_eq!(paid.state, cashu::nuts::MeltQuoteState::Paid);
    assert_books(&lab).await;
}

async fn amountless_invoices_are_melted_for_the_amount_asked(backend: Backend) {
    let lab = lab(backend).await;
    let request = lab
        .outside
        .create_invoice(InvoiceRequest {
            amount_msat: None,
            description: InvoiceDescription::Memo("any amount".into()),
            expiry_secs: 3_600,
        })
        .await
        .expect("invoice")
        .payment_request;
    let no_amount = lab
        .mint
        .melt_quote(cashu::nuts::MeltQuoteBolt11Request {
            request: request.parse().expect("bolt11"),
            unit: CurrencyUnit::Sat,
            options: None,
        })
        .await;
    assert_eq!(code(no_amount), 11011);
    let options: cashu::nuts::MeltOptions =
        serde_json::from_value(serde_json::json!({ "amountless": { "amount_msat": 500_000 } })).expect("options");
    let quote = lab
        .mint
        .melt_quote(cashu::nuts::MeltQuoteBolt11Request {
            request: request.parse().expect("bolt11"),
            unit: CurrencyUnit::Sat,
            options: Some(options),
        })
        .await
        .expect("quote");
    assert_eq!(quote.amount.to_u64(), 500);
    let proofs = mint_notes(&lab, 512).await;
    let node_before = system_balance(&lab.bank, SystemAccount::LightningNode).await;
    let paid = lab
        .mint
        .melt(MeltRequest::new(quote.quote, proofs, None))
        .await
        .expect("melt");
    assert_eq!(paid.state, cashu::nuts::MeltQuoteState::Paid);
    assert_eq!(
        system_balance(&lab.bank, SystemAccount::LightningNode).await,
        node_before + 500
    );
    assert_books(&lab).await;
}
