use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn wallet(n: u8) -> LedgerAccountId {
    LedgerAccountId::from_stored(format!("w{n}"))
}

fn system() -> LedgerAccountId {
    LedgerAccountId::from_stored("sys".into())
}

fn pending() -> LedgerAccountId {
    LedgerAccountId::from_stored("pending".into())
}

fn snapshot(balances: &[i64]) -> Snapshot {
    let mut s = Snapshot::default();
    let mut total = 0;
    for (i, b) in balances.iter().enumerate() {
        total += b;
        let state = AccountState {
            currency: Currency::Btc,
            balance: *b,
            kind: AccountKind::Wallet,
            active: true,
        };
        s.accounts.insert(wallet(i as u8), state);
    }
    let sys = AccountState {
        currency: Currency::Btc,
        balance: -total,
        kind: AccountKind::System,
        active: true,
    };
    s.accounts.insert(system(), sys);
    let pend = AccountState {
        currency: Currency::Btc,
        balance: 0,
        kind: AccountKind::System,
        active: true,
    };
    s.accounts.insert(pending(), pend);
    s
}

fn req(key: &str, op: LedgerOp) -> JournalRequest {
    JournalRequest {
        idempotency: IdempotencyKey {
            scope: "t".into(),
            key: key.into(),
        },
        kind: JournalKind::IntraLedger,
        op,
        memo: None,
        limit: None,
    }
}

fn transfer(from: u8, to: u8, amount: i64) -> LedgerOp {
    LedgerOp::Transfer {
        from: wallet(from),
        to: wallet(to),
        amount,
        fee: 0,
        fee_to: None,
    }
}

fn run(snap: &mut Snapshot, batch: &[JournalRequest]) -> (Vec<Outcome>, WriteSet) {
    apply_batch(snap, batch, 1_000, JournalId::generate)
}

#[test]
fn a_batch_cannot_overdraw_a_wallet() {
    let mut snap = snapshot(&[10, 0]);
    let batch: Vec<_> = (0..20).map(|i| req(&i.to_string(), transfer(0, 1, 1))).collect();
    let (outcomes, writes) = run(&mut snap, &batch);
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 10);
    assert!(outcomes[10..].iter().all(|o| matches!(
        o,
        Err(LedgerError::InsufficientBalance {
            available: 0,
            required: 1
        })
    )));
    assert_eq!(writes.journals.len(), 10);
    assert_eq!(writes.balance_deltas.get(&wallet(0)), Some(&-10));
    assert_eq!(snap.accounts[&wallet(1)].balance, 10);
}

#[test]
fn idempotent_retries_replay_and_mismatches_are_refused() {
    let mut snap = snapshot(&[100, 0]);
    let batch = vec![
        req("k", transfer(0, 1, 5)),
        req("k", transfer(0, 1, 5)),
        req("k", transfer(0, 1, 6)),
    ];
    let (outcomes, writes) = run(&mut snap, &batch);
    let first = outcomes[0].clone().expect("posted");
    assert!(!first.replayed);
    let second = outcomes[1].clone().expect("replayed");
    assert!(second.replayed);
    assert_eq!(second.journal_id, first.journal_id);
    assert_eq!(outcomes[2], Err(LedgerError::IdempotencyKeyReused));
    assert_eq!(writes.journals.len(), 1);
}

#[test]
fn bad_requests_change_nothing() {
    let mut snap = snapshot(&[100, 0]);
    let before = snap.accounts.clone();
    let batch = vec![
        req("a", transfer(0, 1, 0)),
        req("b", transfer(0, 1, -3)),
        req("c", transfer(0, 0, 3)),
        req("d", transfer(0, 9, 3)),
        req("e", transfer(0, 1, MAX_SATS + 1)),
        req(
            "f",
            LedgerOp::HoldReverse {
                hold: HoldId::new("nope"),
            },
        ),
    ];
    let (outcomes, writes) = run(&mut snap, &batch);
    let codes: Vec<_> = outcomes
        .iter()
        .map(|o| o.as_ref().map_err(|e| e.code().as_str()).err())
        .collect();
    assert_eq!(
        codes,
        vec![
            Some("INVALID_AMOUNT"),
            Some("INVALID_AMOUNT"),
            Some("SELF_PAYMENT"),
            Some("WALLET_NOT_FOUND"),
            Some("INVALID_AMOUNT"),
            Some("HOLD_NOT_FOUND"),
        ]
    );
    assert!(writes.is_empty());
    assert_eq!(snap.accounts, before);
}

#[test]
fn inactive_wallets_neither_pay_nor_receive_but_holds_finish() {
    let mut snap = snapshot(&[100, 50]);
    let hold = HoldId::new("ln:x");
    let open = LedgerOp::HoldOpen {
        hold: hold.clone(),
        wallet: wallet(0),
        pending: pending(),
        amount: 10,
    };
    let (outcomes, _) = run(&mut snap, &[req("open", open)]);
    assert!(outcomes[0].is_ok());
    if let Some(a) = snap.accounts.get_mut(&wallet(0)) {
        a.active = false;
    }
    let (outcomes, writes) = run(
        &mut snap,
        &[
            req("pay", transfer(0, 1, 5)),
            req("receive", transfer(1, 0, 1)),
            req("reverse", LedgerOp::HoldReverse { hold }),
        ],
    );
    assert_eq!(outcomes[0], Err(LedgerError::AccountNotActive("w0".into())));
    assert_eq!(outcomes[1], Err(LedgerError::AccountNotActive("w0".into())));
    assert!(outcomes[2].is_ok(), "a hold still returns to a locked wallet");
    assert_eq!(writes.journals.len(), 1);

    // Money that already arrived from outside is recorded for a locked wallet, but a locked
    // wallet still cannot pay out under the same kind.
    let receipt = |key: &str, op| JournalRequest {
        kind: JournalKind::LnReceive,
        ..req(key, op)
    };
    let from_node = LedgerOp::Transfer {
        from: system(),
        to: wallet(0),
        amount: 7,
        fee: 0,
        fee_to: None,
    };
    let (outcomes, _) = run(
        &mut snap,
        &[receipt("ln-in", from_node), receipt("ln-out", transfer(0, 1, 1))],
    );
    assert!(outcomes[0].is_ok(), "a Lightning receipt credits a locked wallet");
    assert_eq!(outcomes[1], Err(LedgerError::AccountNotActive("w0".into())));
    assert_eq!(snap.accounts[&wallet(0)].balance, 107);
}

#[test]
fn holds_settle_or_reverse_exactly_once() {
    let mut snap = snapshot(&[100]);
    let hold = HoldId::new("ln:abc");
    let open = LedgerOp::HoldOpen {
        hold: hold.clone(),
        wallet: wallet(0),
        pending: pending(),
        amount: 60,
    };
    let settle = LedgerOp::HoldSettle {
        hold: hold.clone(),
        to: system(),
        used: 50,
        fee: 0,
        keep: 0,
        keep_to: None,
    };
    let batch = vec![
        req("open", open.clone()),
        req("open2", open),
        req("settle", settle.clone()),
        req("reverse", LedgerOp::HoldReverse { hold: hold.clone() }),
        req("settle2", settle),
    ];
    let (outcomes, writes) = run(&mut snap, &batch);
    assert!(outcomes[0].is_ok());
    assert_eq!(outcomes[1], Err(LedgerError::HoldExists("ln:abc".into())));
    assert!(outcomes[2].is_ok());
    assert!(matches!(
        outcomes[3],
        Err(LedgerError::HoldClosed { status: "settled", .. })
    ));
    assert!(matches!(outcomes[4], Err(LedgerError::HoldClosed { .. })));
    assert_eq!(writes.holds_opened.len(), 1);
    assert_eq!(writes.holds_closed.len(), 1);
    // 60 held, 50 used, 10 returned.
    assert_eq!(snap.accounts[&wallet(0)].balance, 50);
    assert_eq!(snap.accounts[&pending()].balance, 0);
}

#[test]
fn a_settlement_records_its_fee_apart_and_refuses_a_fee_beyond_the_amount() {
    let mut snap = snapshot(&[100]);
    let hold = HoldId::new("ln:fee");
    let open = LedgerOp::HoldOpen {
        hold: hold.clone(),
        wallet: wallet(0),
        pending: pending(),
        amount: 60,
    };
    let settle = |used, fee| LedgerOp::HoldSettle {
        hold: hold.clone(),
        to: system(),
        used,
        fee,
        keep: 0,
        keep_to: None,
    };
    let batch = vec![
        req("open", open),
        req("fee-too-big", settle(50, 50)),
        req("negative-fee", settle(50, -1)),
        req("settle", settle(53, 3)),
    ];
    let (outcomes, writes) = run(&mut snap, &batch);
    assert_eq!(outcomes[1], Err(LedgerError::InvalidAmount(50)));
    assert_eq!(outcomes[2], Err(LedgerError::InvalidAmount(-1)));
    assert!(outcomes[3].is_ok());
    let journal = &writes.journals[1];
    assert_eq!((journal.amount, journal.fee), (50, 3));
    assert_eq!(snap.accounts[&wallet(0)].balance, 47);
}

#[test]
fn a_settlement_may_keep_part_of_the_hold_for_another_account() {
    let mut snap = snapshot(&[100, 0]);
    let hold = HoldId::new("ln:part");
    let open = LedgerOp::HoldOpen {
        hold: hold.clone(),
        wallet: wallet(0),
        pending: pending(),
        amount: 60,
    };
    let settle = |keep, keep_to: Option<LedgerAccountId>| LedgerOp::HoldSettle {
        hold: hold.clone(),
        to: system(),
        used: 50,
        fee: 0,
        keep,
        keep_to,
    };
    // Nothing kept: the fingerprint stays what settlements stored before `keep` existed.
    assert!(!req("plain", settle(0, None)).fingerprint().contains("keep"));
    let batch = vec![
        req("open", open),
        req("beyond-the-hold", settle(11, Some(wallet(1)))),
        req("nowhere", settle(5, None)),
        req("to-the-payee", settle(5, Some(system()))),
        req("negative", settle(-1, Some(wallet(1)))),
        req("settle", settle(6, Some(wallet(1)))),
    ];
    let (outcomes, writes) = run(&mut snap, &batch);
    assert_eq!(outcomes[1], Err(LedgerError::HoldExceeded { used: 61, held: 60 }));
    assert!(matches!(outcomes[2], Err(LedgerError::Internal(_))));
    assert_eq!(outcomes[3], Err(LedgerError::SelfPayment));
    assert_eq!(outcomes[4], Err(LedgerError::InvalidAmount(-1)));
    assert!(outcomes[5].is_ok());
    assert_eq!(writes.journals.len(), 2);
    // 60 held: 50 used, 6 kept by w1, 4 back to w0.
    assert_eq!(snap.accounts[&wallet(0)].balance, 44);
    assert_eq!(snap.accounts[&wallet(1)].balance, 6);
    assert_eq!(snap.accounts[&pending()].balance, 0);
}

#[test]
fn limits_count_within_the_batch() {
    let mut snap = snapshot(&[1_000, 0]);
    snap.usage.insert(("acct".into(), LimitKind::IntraLedger), 70);
    let limited = |key: &str, amount| JournalRequest {
        limit: Some(LimitCheck {
            subject: "acct".into(),
            kind: LimitKind::IntraLedger,
            max: 100,
            amount,
        }),
        ..req(key, transfer(0, 1, amount))
    };
    let (outcomes, writes) = run(&mut snap, &[limited("a", 20), limited("b", 20), limited("c", 10)]);
    assert!(outcomes[0].is_ok());
    assert_eq!(
        outcomes[1],
        Err(LedgerError::LimitExceeded {
            kind: LimitKind::IntraLedger,
            limit: 100,
            remaining: 10
        })
    );
    assert!(outcomes[2].is_ok());
    assert_eq!(writes.usage.get(&("acct".into(), LimitKind::IntraLedger)), Some(&30));
}

#[derive(Clone, Debug)]
enum Action {
    Transfer { from: u8, to: u8, amount: i64, key: u8 },
    Open { wallet: u8, hold: u8, amount: i64 },
    Settle { hold: u8, used: i64 },
    Reverse { hold: u8 },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0..4u8, 0..4u8, -2..40i64, 0..30u8).prop_map(|(from, to, amount, key)| Action::Transfer {
            from,
            to,
            amount,
            key
        }),
        (0..4u8, 0..6u8, 1..40i64).prop_map(|(wallet, hold, amount)| Action::Open { wallet, hold, amount }),
        (0..6u8, 1..40i64).prop_map(|(hold, used)| Action::Settle { hold, used }),
        (0..6u8).prop_map(|hold| Action::Reverse { hold }),
    ]
}

/// An auditor that models balances and holds on its own and checks every answer.
#[derive(Default)]
struct Auditor {
    balances: HashMap<u8, i64>,
    holds: HashMap<u8, (u8, i64, HoldStatus)>,
    keys: HashMap<u8, (u8, u8, i64, JournalId)>,
    external: i64,
}

impl Auditor {
    fn check(&mut self, a: &Action, outcome: &Outcome) {
        match *a {
            Action::Transfer { from, to, amount, key } => {
                if let Some(&(f, t, amt, id)) = self.keys.get(&key) {
                    if (f, t, amt) == (from, to, amount) {
                        assert_eq!(outcome.as_ref().map(|p| p.journal_id), Ok(id));
                    } else {
                        assert_eq!(outcome, &Err(LedgerError::IdempotencyKeyReused));
                    }
                    return;
                }
                let bal = self.balances[&from];
                let should = amount > 0 && from != to && bal >= amount;
                assert_eq!(outcome.is_ok(), should, "{a:?} {outcome:?}");
                if let Ok(p) = outcome {
                    *self.balances.entry(from).or_default() -= amount;
                    *self.balances.entry(to).or_default() += amount;
                    self.keys.insert(key, (from, to, amount, p.journal_id));
                }
            }
            Action::Open { wallet, hold, amount } => {
                let should = !self.holds.contains_key(&hold) && self.balances[&wallet] >= amount;
                assert_eq!(outcome.is_ok(), should, "{a:?} {outcome:?}");
                if outcome.is_ok() {
                    *self.balances.entry(wallet).or_default() -= amount;
                    self.holds.insert(hold, (wallet, amount, HoldStatus::Pending));
                }
            }
            Action::Settle { hold, used } => {
                let open = self.holds.get(&hold).filter(|h| h.2 == HoldStatus::Pending).copied();
                let should = open.is_some_and(|(_, amount, _)| used <= amount);
                assert_eq!(outcome.is_ok(), should, "{a:?} {outcome:?}");
                if let (Ok(_), Some((wallet, amount, _))) = (outcome, open) {
                    *self.balances.entry(wallet).or_default() += amount - used;
                    self.external += used;
                    self.holds.insert(hold, (wallet, amount, HoldStatus::Settled));
                }
            }
            Action::Reverse { hold } => {
                let open = self.holds.get(&hold).filter(|h| h.2 == HoldStatus::Pending).copied();
                assert_eq!(outcome.is_ok(), open.is_some(), "{a:?} {outcome:?}");
                if let (Ok(_), Some((wallet, amount, _))) = (outcome, open) {
                    *self.balances.entry(wallet).or_default() += amount;
                    self.holds.insert(hold, (wallet, amount, HoldStatus::Reversed));
                }
            }
        }
    }
}

fn to_request(i: usize, a: &Action) -> JournalRequest {
    let hold = |h: u8| HoldId::new(format!("h{h}"));
    match *a {
        Action::Transfer { from, to, amount, key } => req(&format!("t{key}"), transfer(from, to, amount)),
        Action::Open {
            wallet: w,
            hold: h,
            amount,
        } => req(
            &format!("op{i}"),
            LedgerOp::HoldOpen {
                hold: hold(h),
                wallet: wallet(w),
                pending: pending(),
                amount,
            },
        ),
        Action::Settle { hold: h, used } => req(
            &format!("op{i}"),
            LedgerOp::HoldSettle {
                hold: hold(h),
                to: system(),
                used,
                fee: 0,
                keep: 0,
                keep_to: None,
            },
        ),
        Action::Reverse { hold: h } => req(&format!("op{i}"), LedgerOp::HoldReverse { hold: hold(h) }),
    }
}

proptest! {
    #[test]
    fn random_batches_keep_every_invariant(
        start in proptest::collection::vec(0..50i64, 4),
        actions in proptest::collection::vec(action(), 1..120),
        batch_size in 1..20usize,
    ) {
        let mut snap = snapshot(&start);
        let mut auditor = Auditor { balances: start.iter().enumerate().map(|(i, b)| (i as u8, *b)).collect(), ..Default::default() };
        let requests: Vec<_> = actions.iter().enumerate().map(|(i, a)| to_request(i, a)).collect();
        let mut closures = HashMap::new();
        for (chunk, acts) in requests.chunks(batch_size).zip(actions.chunks(batch_size)) {
            let (outcomes, writes) = run(&mut snap, chunk);
            for (a, o) in acts.iter().zip(&outcomes) {
                auditor.check(a, o);
            }
            for j in &writes.journals {
                prop_assert_eq!(j.entries.iter().map(|e| e.amount).sum::<i64>(), 0);
            }
            for c in &writes.holds_closed {
                *closures.entry(c.id.clone()).or_insert(0) += 1;
            }
        }
        prop_assert!(closures.values().all(|n| *n == 1));
        prop_assert_eq!(snap.accounts.values().map(|a| a.balance).sum::<i64>(), 0);
        for (w, b) in &auditor.balances {
            prop_assert!(*b >= 0);
            prop_assert_eq!(snap.accounts[&wallet(*w)].balance, *b);
        }
        let held: i64 = auditor.holds.values().filter(|h| h.2 == HoldStatus::Pending).map(|h| h.1).sum();
        prop_assert_eq!(snap.accounts[&pending()].balance, held);
        // What settled holds paid out went to the outside account, and only that.
        let funded: i64 = start.iter().sum();
        prop_assert_eq!(snap.accounts[&system()].balance, auditor.external - funded);
    }
}
