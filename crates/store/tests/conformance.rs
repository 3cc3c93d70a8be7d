//! The store conformance suite: every test runs on SQLite and on PostgreSQL.

use flash_core::ledger::{IdempotencyKey, JournalKind, JournalRequest, LedgerError, LedgerOp, LimitCheck};
use flash_core::{
    AccountLevel, Currency, HoldId, LedgerAccountId, LimitKind, Phone, SystemAccount, Username, WalletId,
};
use flash_store::testing::{fresh_config, fresh_store, Backend};
use flash_store::{
    Audit, CodeCheck, HistoryQuery, NewApiKey, NewEvent, NewUser, PageStart, PostRequest, Record, SaveOutcome, Store,
    StoreConfig, StoreError, UsernameUpdate, WalletRecord, WindowHit,
};
use proptest::prelude::*;

flash_store::on_both_backends!(
    users_accounts_and_usernames,
    concurrent_sends_cannot_overdraw,
    concurrent_retries_post_one_journal,
    holds_close_exactly_once_under_concurrency,
    limits_hold_across_batches,
    history_pages_both_ways,
    contacts_follow_payments,
    login_codes_sessions_and_api_keys,
    verify_detects_tampering,
    locked_accounts_cannot_move_money,
    random_operations_keep_invariants,
    leases_go_to_one_holder_until_they_expire,
    login_codes_are_used_up_once,
    rate_windows_cap_exactly_and_expire,
    a_refused_record_fails_only_its_own_request,
    an_event_the_database_refuses_fails_alone,
    concurrent_writes_commit_together_and_fail_alone,
);

fn faucet() -> LedgerAccountId {
    SystemAccount::DevFaucet.ledger_id(Currency::Btc)
}

async fn new_wallet(store: &Store) -> WalletRecord {
    let user = NewUser {
        phone: None,
        email: None,
        device_id: Some(uuid_like()),
        level: AccountLevel::One,
    };
    store.create_user(&user).await.expect("create user").2
}

fn uuid_like() -> String {
    WalletId::generate().to_string()
}

fn transfer(
    key: &str,
    from: impl Into<LedgerAccountId>,
    to: impl Into<LedgerAccountId>,
    amount: i64,
) -> JournalRequest {
    JournalRequest {
        idempotency: IdempotencyKey {
            scope: "test".into(),
            key: key.into(),
        },
        kind: JournalKind::IntraLedger,
        op: LedgerOp::Transfer {
            from: from.into(),
            to: to.into(),
            amount,
            fee: 0,
            fee_to: None,
        },
        memo: Some(format!("memo {key}")),
        limit: None,
    }
}

async fn fund(store: &Store, wallet: WalletId, amount: i64) {
    let req = JournalRequest {
        kind: JournalKind::DevFaucet,
        ..transfer(&uuid_like(), faucet(), wallet, amount)
    };
    store.post(req).await.expect("store").expect("funded");
}

async fn assert_verified(store: &Store) {
    let report = store.verify().await.expect("verify");
    assert!(report.ok(), "ledger problems: {:?}", report.problems);
    assert!(report.totals.iter().all(|(_, total)| *total == 0));
}

async fn users_accounts_and_usernames(backend: Backend) {
    let store = fresh_store(backend).await;
    let phone = Phone::parse("+15550001111").expect("phone");
    let new = NewUser {
        phone: Some(phone.clone()),
        email: None,
        device_id: None,
        level: AccountLevel::One,
    };
    let (user, account, wallet) = store.create_user(&new).await.expect("create");
    assert_eq!(account.default_wallet_id, wallet.id);
    assert_eq!(
        store.user_by_phone(&phone).await.expect("q").map(|u| u.id),
        Some(user.id)
    );
    let duplicate = store.create_user(&new).await.expect_err("duplicate phone");
    assert!(duplicate.is_unique_violation());
    assert_eq!(
        store.wallets_of(account.id).await.expect("wallets"),
        vec![wallet.clone()]
    );
    assert_eq!(store.wallet_balance(wallet.id).await.expect("balance"), 0);

    let name = Username::parse("Alice_1").expect("name");
    assert!(store.username_available(&name).await.expect("q"));
    assert_eq!(
        store.set_username(user.id, &name).await.expect("set"),
        UsernameUpdate::Set
    );
    assert_eq!(
        store.set_username(user.id, &name).await.expect("again"),
        UsernameUpdate::AlreadySet
    );
    let other = new_wallet(&store).await;
    let other_user = store
        .account(other.account_id)
        .await
        .expect("q")
        .expect("account")
        .user_id;
    let shouty = Username::parse("ALICE_1").expect("name");
    assert!(!store.username_available(&shouty).await.expect("q"));
    assert_eq!(
        store.set_username(other_user, &shouty).await.expect("set"),
        UsernameUpdate::Taken
    );
    let found = store.account_by_username(&shouty).await.expect("q").map(|a| a.id);
    assert_eq!(found, Some(account.id));

    let audit = |subject: String| Audit {
        actor: "ops".into(),
        action: "account.level".into(),
        subject,
        detail: "3".into(),
    };
    assert!(store
        .set_account_level(account.id, AccountLevel::Three, &audit(account.id.to_string()))
        .await
        .expect("level"));
    let nobody = flash_core::AccountId::generate();
    assert!(!store
        .set_account_level(nobody, AccountLevel::Three, &audit(nobody.to_string()))
        .await
        .expect("level"));
    let audited = store
        .db()
        .query("SELECT subject FROM audit_log", vec![])
        .await
        .expect("audit");
    let subjects: Vec<String> = audited.iter().map(|r| r.text(0).expect("subject")).collect();
    assert_eq!(
        subjects,
        vec![account.id.to_string()],
        "audited with the change, and only if it happened"
    );
    assert!(!store.set_default_wallet(account.id, other.id).await.expect("not ours"));
    let account = store.account(account.id).await.expect("q").expect("account");
    assert_eq!(account.level, AccountLevel::Three);
    assert_eq!(account.default_wallet_id, wallet.id);
}

async fn concurrent_sends_cannot_overdraw(backend: Backend) {
    let store = fresh_store(backend).await;
    let (payer, payee) = (new_wallet(&store).await, new_wallet(&store).await);
    fund(&store, payer.id, 10).await;
    let sends = (0..1_000).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.post(transfer(&format!("send-{i}"), payer.id, payee.id, 1)).await })
    });
    let outcomes: Vec<_> = futures_util::future::join_all(sends).await;
    let mut ok = 0;
    for o in outcomes {
        match o.expect("task").expect("store") {
            Ok(_) => ok += 1,
            Err(LedgerError::InsufficientBalance {
                available: 0,
                required: 1,
            }) => {}
            Err(e) => panic!("unexpected refusal {e}"),
        }
    }
    assert_eq!(ok, 10);
    assert_eq!(store.wallet_balance(payer.id).await.expect("balance"), 0);
    assert_eq!(store.wallet_balance(payee.id).await.expect("balance"), 10);
    assert_verified(&store).await;
}

async fn concurrent_retries_post_one_journal(backend: Backend) {
    let store = fresh_store(backend).await;
    let (payer, payee) = (new_wallet(&store).await, new_wallet(&store).await);
    fund(&store, payer.id, 1_000).await;
    let retries = (0..50).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.post(transfer("same-key", payer.id, payee.id, 7)).await })
    });
    let outcomes: Vec<_> = futures_util::future::join_all(retries).await;
    let posted: Vec<_> = outcomes
        .into_iter()
        .map(|o| o.expect("task").expect("store").expect("posted"))
        .collect();
    assert!(posted.iter().all(|p| p.journal_id == posted[0].journal_id));
    assert!(posted.iter().all(|p| p.created_at_ms == posted[0].created_at_ms));
    assert_eq!(posted.iter().filter(|p| !p.replayed).count(), 1);
    assert_eq!(store.wallet_balance(payee.id).await.expect("balance"), 7);
    let different = store
        .post(transfer("same-key", payer.id, payee.id, 8))
        .await
        .expect("store");
    assert_eq!(different, Err(LedgerError::IdempotencyKeyReused));
    assert_verified(&store).await;
}

async fn holds_close_exactly_once_under_concurrency(backend: Backend) {
    let store = fresh_store(backend).await;
    let wallet = new_wallet(&store).await;
    fund(&store, wallet.id, 100).await;
    let pending = SystemAccount::LightningPending.ledger_id(Currency::Btc);
    let hold = HoldId::new("ln:test-hash");
    let open = JournalRequest {
        kind: JournalKind::HoldOpen,
        op: LedgerOp::HoldOpen {
            hold: hold.clone(),
            wallet: wallet.id.into(),
            pending: pending.clone(),
            amount: 60,
        },
        ..transfer("open", faucet(), faucet(), 1)
    };
    store.post(open).await.expect("store").expect("opened");
    assert_eq!(store.wallet_balance(wallet.id).await.expect("balance"), 40);
    let attempts = (0..40).map(|i| {
        let store = store.clone();
        let hold = hold.clone();
        let op = if i % 2 == 0 {
            LedgerOp::HoldSettle {
                hold,
                to: SystemAccount::FeesRevenue.ledger_id(Currency::Btc),
                used: 55,
                fee: 0,
                keep: 0,
                keep_to: None,
            }
        } else {
            LedgerOp::HoldReverse { hold }
        };
        let req = JournalRequest {
            kind: JournalKind::HoldSettle,
            op,
            ..transfer(&format!("close-{i}"), faucet(), faucet(), 1)
        };
        tokio::spawn(async move { store.post(req).await })
    });
    let outcomes: Vec<_> = futures_util::future::join_all(attempts).await;
    let closed = outcomes.into_iter().filter(|o| matches!(o, Ok(Ok(Ok(_))))).count();
    assert_eq!(closed, 1);
    let balance = store.wallet_balance(wallet.id).await.expect("balance");
    assert!(
        balance == 45 || balance == 100,
        "settled (45) or reversed (100), got {balance}"
    );
    assert_verified(&store).await;
}

async fn limits_hold_across_batches(backend: Backend) {
    let store = fresh_store(backend).await;
    let (payer, payee) = (new_wallet(&store).await, new_wallet(&store).await);
    fund(&store, payer.id, 1_000).await;
    let limited = |i: usize| JournalRequest {
        limit: Some(LimitCheck {
            subject: payer.account_id.to_string(),
            kind: LimitKind::IntraLedger,
            max: 100,
            amount: 30,
        }),
        ..transfer(&format!("lim-{i}"), payer.id, payee.id, 30)
    };
    for i in 0..3 {
        store.post(limited(i)).await.expect("store").expect("within limit");
    }
    let refused = store.post(limited(3)).await.expect("store");
    assert_eq!(
        refused,
        Err(LedgerError::LimitExceeded {
            kind: LimitKind::IntraLedger,
            limit: 100,
            remaining: 10
        })
    );
    assert_eq!(store.wallet_balance(payee.id).await.expect("balance"), 90);
}

async fn history_pages_both_ways(backend: Backend) {
    let store = fresh_store(backend).await;
    let (a, b) = (new_wallet(&store).await, new_wallet(&store).await);
    fund(&store, a.id, 100).await;
    for i in 0..5 {
        store
            .post(transfer(&format!("h{i}"), a.id, b.id, i + 1))
            .await
            .expect("store")
            .expect("posted");
    }
    let q = |limit, start| HistoryQuery {
        accounts: vec![a.id.into()],
        limit,
        start,
    };
    let first = store.history(&q(4, PageStart::Newest)).await.expect("history");
    assert!(first.has_more);
    let amounts: Vec<i64> = first.items.iter().map(|i| i.amount).collect();
    assert_eq!(amounts, vec![-5, -4, -3, -2]);
    assert_eq!(first.items[0].counterparty, LedgerAccountId::from(b.id));
    assert_eq!(first.items[0].memo.as_deref(), Some("memo h4"));
    let last_cursor = first.items[3].journal_id;
    let second = store
        .history(&q(4, PageStart::After(last_cursor)))
        .await
        .expect("history");
    let amounts: Vec<i64> = second.items.iter().map(|i| i.amount).collect();
    assert_eq!(amounts, vec![-1, 100]);
    assert!(!second.has_more);
    let back = store
        .history(&q(2, PageStart::Before(second.items[0].journal_id)))
        .await
        .expect("history");
    let amounts: Vec<i64> = back.items.iter().map(|i| i.amount).collect();
    assert_eq!(amounts, vec![-3, -2]);
    assert!(back.has_more);
    let oldest = store.history(&q(2, PageStart::Oldest)).await.expect("history");
    let amounts: Vec<i64> = oldest.items.iter().map(|i| i.amount).collect();
    assert_eq!(amounts, vec![-1, 100], "the oldest two, newest first");
    assert!(oldest.has_more);
    let received_query = HistoryQuery {
        accounts: vec![b.id.into()],
        limit: 10,
        ..Default::default()
    };
    let received = store.history(&received_query).await.expect("history");
    assert_eq!(received.items.len(), 5);
    assert!(received.items.iter().all(|i| i.amount > 0 && i.fee == 0));
}

async fn contacts_follow_payments(backend: Backend) {
    let store = fresh_store(backend).await;
    let (a, b) = (new_wallet(&store).await, new_wallet(&store).await);
    fund(&store, a.id, 100).await;
    let b_user = store.account(b.account_id).await.expect("q").expect("b").user_id;
    let bob = Username::parse("bob").expect("name");
    store.set_username(b_user, &bob).await.expect("set");
    for i in 0..2 {
        let req = PostRequest {
            contact: Some((a.account_id, b.account_id)),
            ..PostRequest::from(transfer(&format!("c{i}"), a.id, b.id, 1))
        };
        store.post(req.clone()).await.expect("store").expect("posted");
        store.post(req).await.expect("store").expect("replayed");
    }
    let contacts = store.contacts(a.account_id).await.expect("contacts");
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].username.as_deref(), Some("bob"));
    assert_eq!(contacts[0].transactions_count, 2, "replays do not count");
    assert!(store
        .set_contact_alias(a.account_id, &bob, "Bobby")
        .await
        .expect("alias"));
    assert_eq!(
        store.contacts(a.account_id).await.expect("q")[0].alias.as_deref(),
        Some("Bobby")
    );
    assert_eq!(store.contacts(b.account_id).await.expect("q").len(), 1);
}

async fn login_codes_sessions_and_api_keys(backend: Backend) {
    let store = fresh_store(backend).await;
    let expires = store.now_ms() + 600_000;
    store
        .put_login_code("+15550002222", "hash", expires)
        .await
        .expect("put");
    for _ in 0..5 {
        let check = store.check_login_code("+15550002222", 5).await.expect("check");
        assert_eq!(
            check,
            CodeCheck::Candidate {
                code_hash: "hash".into()
            }
        );
    }
    assert_eq!(
        store.check_login_code("+15550002222", 5).await.expect("check"),
        CodeCheck::Exhausted
    );
    assert_eq!(
        store.check_login_code("nobody", 5).await.expect("check"),
        CodeCheck::Missing
    );
    store
        .put_login_code("old", "hash", store.now_ms() - 1)
        .await
        .expect("put");
    assert_eq!(
        store.check_login_code("old", 5).await.expect("check"),
        CodeCheck::Expired
    );

    let wallet = new_wallet(&store).await;
    let user = store
        .account(wallet.account_id)
        .await
        .expect("q")
        .expect("account")
        .user_id;
    store.create_session("tokenhash", user, expires).await.expect("session");
    assert_eq!(
        store.session("tokenhash").await.expect("q").map(|s| s.user_id),
        Some(user)
    );
    assert!(store.revoke_session("tokenhash").await.expect("revoke"));
    assert!(!store.revoke_session("tokenhash").await.expect("revoke twice"));
    assert!(store
        .session("tokenhash")
        .await
        .expect("q")
        .and_then(|s| s.revoked_at_ms)
        .is_some());

    let key = |i: usize| NewApiKey {
        account_id: wallet.account_id,
        name: format!("k{i}"),
        key_hash: format!("keyhash{i}"),
        scopes: "read".into(),
        ip_allowlist: String::new(),
        expires_at_ms: None,
    };
    let mut first = None;
    for i in 0..10 {
        let created = store
            .create_api_key(&key(i), 10)
            .await
            .expect("create")
            .expect("under max");
        first.get_or_insert(created.id);
    }
    assert_eq!(store.create_api_key(&key(10), 10).await.expect("create"), None);
    let first = first.expect("created");
    let revoked = store
        .revoke_api_key(wallet.account_id, first)
        .await
        .expect("revoke")
        .expect("found");
    assert!(revoked.revoked_at_ms.is_some());
    assert!(store.create_api_key(&key(11), 10).await.expect("create").is_some());
    let other = new_wallet(&store).await;
    assert_eq!(
        store.revoke_api_key(other.account_id, first).await.expect("revoke"),
        None
    );
    assert_eq!(
        store.api_key_by_hash("keyhash3").await.expect("q").map(|k| k.name),
        Some("k3".into())
    );
    assert_eq!(store.api_keys(wallet.account_id).await.expect("list").len(), 11);
}

async fn locked_accounts_cannot_move_money(backend: Backend) {
    let store = fresh_store(backend).await;
    let (a, b) = (new_wallet(&store).await, new_wallet(&store).await);
    fund(&store, a.id, 100).await;
    let lock = |status| {
        let store = store.clone();
        let audit = Audit {
            actor: "ops".into(),
            action: "account.status".into(),
            subject: b.account_id.to_string(),
            detail: String::new(),
        };
        async move {
            store
                .set_account_status(b.account_id, status, &audit)
                .await
                .expect("status")
        }
    };
    assert!(lock(flash_core::AccountStatus::Locked).await);
    let to_locked = store.post(transfer("to-locked", a.id, b.id, 5)).await.expect("store");
    assert_eq!(to_locked, Err(LedgerError::AccountNotActive(b.id.to_string())));
    let from_locked = store.post(transfer("from-locked", b.id, a.id, 1)).await.expect("store");
    assert_eq!(from_locked, Err(LedgerError::AccountNotActive(b.id.to_string())));
    assert!(lock(flash_core::AccountStatus::Active).await);
    store
        .post(transfer("to-active", a.id, b.id, 5))
        .await
        .expect("store")
        .expect("posted");
    assert_eq!(store.wallet_balance(b.id).await.expect("balance"), 5);
    assert_verified(&store).await;
}

async fn verify_detects_tampering(backend: Backend) {
    let store = fresh_store(backend).await;
    let wallet = new_wallet(&store).await;
    fund(&store, wallet.id, 50).await;
    assert_verified(&store).await;
    let sql = "UPDATE ledger_accounts SET balance = balance + 1 WHERE id = $1";
    store
        .db()
        .execute(sql, vec![wallet.id.to_string().into()])
        .await
        .expect("tamper");
    let report = store.verify().await.expect("verify");
    assert!(!report.ok());
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
}

#[derive(Clone, Debug)]
enum Op {
    Send {
        from: usize,
        to: usize,
        amount: i64,
        key: u8,
    },
    Open {
        wallet: usize,
        amount: i64,
    },
    Settle {
        hold: usize,
        used: i64,
    },
    Reverse {
        hold: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 0..3usize, -1..60i64, 0..8u8).prop_map(|(from, to, amount, key)| Op::Send {
            from,
            to,
            amount,
            key
        }),
        (0..3usize, 1..60i64).prop_map(|(wallet, amount)| Op::Open { wallet, amount }),
        (0..4usize, 1..60i64).prop_map(|(hold, used)| Op::Settle { hold, used }),
        (0..4usize).prop_map(|hold| Op::Reverse { hold }),
    ]
}

async fn random_operations_keep_invariants(backend: Backend) {
    let store = fresh_store(backend).await;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        ..ProptestConfig::default()
    });
    let strategy = proptest::collection::vec(op(), 1..40);
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&strategy, |ops| {
        let store = Store::clone(&store);
        tokio::task::block_in_place(|| handle.block_on(run_ops(&store, ops)));
        Ok(())
    });
    result.expect("property holds");
}

/// Runs `ops` concurrently in small groups and checks the store against a sequential model
/// of the outcomes it reported.
async fn run_ops(store: &Store, ops: Vec<Op>) {
    let wallets = [
        new_wallet(store).await,
        new_wallet(store).await,
        new_wallet(store).await,
    ];
    for w in &wallets {
        fund(store, w.id, 100).await;
    }
    let run = uuid_like();
    let pending = SystemAccount::LightningPending.ledger_id(Currency::Btc);
    let revenue = SystemAccount::FeesRevenue.ledger_id(Currency::Btc);
    let mut requests = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let hold = |h: usize| HoldId::new(format!("{run}:{h}"));
        let base = transfer(&format!("{run}:{i}"), faucet(), faucet(), 1);
        let (kind, op) = match *op {
            Op::Send { from, to, amount, key } => {
                requests.push(JournalRequest {
                    idempotency: IdempotencyKey {
                        scope: "test".into(),
                        key: format!("{run}:k{key}"),
                    },
                    ..transfer("", wallets[from].id, wallets[to].id, amount)
                });
                continue;
            }
            Op::Open { wallet, amount } => (
                JournalKind::HoldOpen,
                LedgerOp::HoldOpen {
                    hold: hold(i % 4),
                    wallet: wallets[wallet].id.into(),
                    pending: pending.clone(),
                    amount,
                },
            ),
            Op::Settle { hold: h, used } => (
                JournalKind::HoldSettle,
                LedgerOp::HoldSettle {
                    hold: hold(h),
                    to: revenue.clone(),
                    used,
                    fee: 0,
                    keep: 0,
                    keep_to: None,
                },
            ),
            Op::Reverse { hold: h } => (JournalKind::HoldReverse, LedgerOp::HoldReverse { hold: hold(h) }),
        };
        requests.push(JournalRequest { kind, op, ..base });
    }
    let mut net = 0i64;
    for group in requests.chunks(5) {
        let posts = group.iter().cloned().map(|r| {
            let store = store.clone();
            tokio::spawn(async move { (store.post(r.clone()).await, r) })
        });
        for joined in futures_util::future::join_all(posts).await {
            let (outcome, req) = joined.expect("task");
            if let (Ok(p), LedgerOp::HoldSettle { used, .. }) = (outcome.expect("store"), &req.op) {
                if !p.replayed {
                    net += used;
                }
            }
        }
    }
    let balances = store
        .balances(&wallets.iter().map(|w| w.id.into()).collect::<Vec<_>>())
        .await
        .expect("balances");
    let total: i64 = balances.values().sum();
    assert!(balances.values().all(|b| *b >= 0));
    // Money only leaves the three wallets through settled holds or sits in open holds.
    let open: i64 = store
        .db()
        .query(
            "SELECT COALESCE(CAST(SUM(amount) AS BIGINT), 0) FROM holds WHERE status = 'pending' AND id LIKE $1",
            vec![format!("{run}:%").into()],
        )
        .await
        .expect("open holds")[0]
        .int(0)
        .expect("sum");
    assert_eq!(total + open + net, 300);
    assert_verified(store).await;
}

/// A clock the test moves by hand.
struct HandClock(std::sync::atomic::AtomicI64);

impl flash_core::ports::Clock for HandClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn leases_go_to_one_holder_until_they_expire(backend: Backend) {
    let clock = std::sync::Arc::new(HandClock(std::sync::atomic::AtomicI64::new(1_000_000)));
    let store = flash_store::testing::fresh_store_with_clock(backend, clock.clone()).await;
    let advance = |ms: i64| clock.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(store.lease("onchain").await.expect("read"), None);
    // Two nodes race for a free lease: exactly one gets it.
    let (a, b) = tokio::join!(
        store.take_lease("onchain", "node-a", 30_000),
        store.take_lease("onchain", "node-b", 30_000)
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert!(a ^ b, "one holder: a={a} b={b}");
    let (holder, other) = if a { ("node-a", "node-b") } else { ("node-b", "node-a") };
    // The holder renews; the other is refused while the lease lives.
    advance(20_000);
    assert!(store.take_lease("onchain", holder, 30_000).await.expect("renew"));
    advance(20_000);
    assert!(!store.take_lease("onchain", other, 30_000).await.expect("refused"));
    assert_eq!(
        store.lease("onchain").await.expect("read"),
        Some((holder.to_string(), 1_020_000 + 30_000))
    );
    // Once it expires, the other takes it over, and the old holder is refused.
    advance(11_000);
    assert!(store.take_lease("onchain", other, 30_000).await.expect("take over"));
    assert!(!store.take_lease("onchain", holder, 30_000).await.expect("refused"));
    // Leases are per name.
    assert!(store
        .take_lease("other-worker", holder, 30_000)
        .await
        .expect("another lease"));
}

/// Writes that arrive together (SQLite commits them in one transaction): each is all or
/// nothing on its own, a failing one takes back only its own changes, and every answer comes
/// after its write is visible.
async fn concurrent_writes_commit_together_and_fail_alone(backend: Backend) {
    let store = fresh_store(backend).await;
    let db = store.db();
    let insert = "INSERT INTO worker_leases (name, holder, expires_at) VALUES ($1, 'test', 1)";
    let writes = (0..60).map(|i| {
        let db = db.clone();
        async move {
            let name = format!("w{}", i % 30);
            let statements = match i % 3 {
                // A plain insert (the second of each name is a duplicate).
                0 => vec![(insert.to_string(), vec![name.as_str().into()])],
                // Two inserts, the second a duplicate of the first: neither is kept.
                1 => vec![
                    (insert.to_string(), vec![format!("pair-{i}").as_str().into()]),
                    (insert.to_string(), vec![format!("pair-{i}").as_str().into()]),
                ],
                // An insert, then an update expected to change a row that is not there.
                _ => {
                    let refused = db
                        .script_exact(
                            vec![
                                (insert.to_string(), vec![format!("exact-{i}").as_str().into()]),
                                (
                                    "UPDATE worker_leases SET holder = 'x' WHERE name = 'nobody'".to_string(),
                                    Vec::new(),
                                ),
                            ],
                            1,
                        )
                        .await;
                    return (i, refused.map(|()| Vec::new()));
                }
            };
            (i, db.script(statements).await)
        }
    });
    let answers = futures_util::future::join_all(writes).await;
    for (i, answer) in &answers {
        match i % 3 {
            0 => {
                let seen = db
                    .query_opt(
                        "SELECT holder FROM worker_leases WHERE name = $1",
                        vec![format!("w{}", i % 30).as_str().into()],
                    )
                    .await
                    .expect("read");
                assert!(seen.is_some(), "write {i} answered before it was visible: {answer:?}");
            }
            1 => assert!(
                answer.as_ref().is_err_and(StoreError::is_unique_violation),
                "{i}: {answer:?}"
            ),
            _ => assert!(matches!(answer, Err(StoreError::Refused(_))), "{i}: {answer:?}"),
        }
    }
    let kept = db
        .query(
            "SELECT name FROM worker_leases WHERE holder = 'test' ORDER BY name",
            vec![],
        )
        .await
        .expect("read");
    let plain = answers.iter().filter(|(i, a)| i % 3 == 0 && a.is_ok()).count();
    assert_eq!(kept.len(), plain, "only the plain inserts that succeeded are kept");
    let names: std::collections::BTreeSet<String> = kept.iter().map(|r| r.text(0).expect("name")).collect();
    assert!(names.iter().all(|n| n.starts_with('w')), "{names:?}");
}

/// Issue 14: of concurrent right answers to one code, exactly one uses it up; a code replaced
/// by a newer one cannot be used up under its old hash.
async fn login_codes_are_used_up_once(backend: Backend) {
    let store = fresh_store(backend).await;
    let expires = store.now_ms() + 600_000;
    for round in 0..5 {
        let who = format!("phone:+1555000{round}");
        store.put_login_code(&who, "hash", expires).await.expect("put");
        let tries: Vec<_> = (0..8)
            .map(|_| {
                let (store, who) = (store.clone(), who.clone());
                tokio::spawn(async move { store.consume_login_code(&who, "hash").await })
            })
            .collect();
        let mut used = 0;
        for t in tries {
            used += usize::from(t.await.expect("task").expect("consume"));
        }
        assert_eq!(used, 1, "round {round}");
        assert_eq!(
            store.check_login_code(&who, 5).await.expect("check"),
            CodeCheck::Missing
        );
    }
    store
        .put_login_code("phone:+15550009", "old", expires)
        .await
        .expect("put");
    store
        .put_login_code("phone:+15550009", "new", expires)
        .await
        .expect("put");
    assert!(!store
        .consume_login_code("phone:+15550009", "old")
        .await
        .expect("consume"));
    assert!(store
        .consume_login_code("phone:+15550009", "new")
        .await
        .expect("consume"));
}

/// Rate windows: the cap is exact under concurrency, refusals count nothing, a window starts
/// over once it ends, releases give back one attempt of that window only, and pruning
/// deletes ended windows alone.
async fn rate_windows_cap_exactly_and_expire(backend: Backend) {
    let clock = std::sync::Arc::new(HandClock(std::sync::atomic::AtomicI64::new(5_000_000)));
    let store = flash_store::testing::fresh_store_with_clock(backend, clock.clone()).await;
    let advance = |ms: i64| clock.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    let hits: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.hit_window("fail:id:x", 7, 60_000).await })
        })
        .collect();
    let mut counted = 0;
    for h in hits {
        match h.await.expect("task").expect("hit") {
            WindowHit::Counted { ends_at_ms } => {
                assert_eq!(ends_at_ms, 5_060_000);
                counted += 1;
            }
            WindowHit::Refused { ends_at_ms } => assert_eq!(ends_at_ms, 5_060_000),
        }
    }
    assert_eq!(counted, 7);
    // Giving one back makes room for exactly one more.
    assert!(store.release_window("fail:id:x", 5_060_000).await.expect("release"));
    assert_eq!(
        store.hit_window("fail:id:x", 7, 60_000).await.expect("hit"),
        WindowHit::Counted { ends_at_ms: 5_060_000 }
    );
    assert_eq!(
        store.hit_window("fail:id:x", 7, 60_000).await.expect("hit"),
        WindowHit::Refused { ends_at_ms: 5_060_000 }
    );
    // A release for another window (or another bucket) changes nothing.
    assert!(!store.release_window("fail:id:x", 5_000_000).await.expect("release"));
    assert!(!store.release_window("fail:id:y", 5_060_000).await.expect("release"));
    // Other buckets are independent; a zero cap refuses without storing.
    assert!(matches!(
        store.hit_window("fail:id:y", 7, 60_000).await.expect("hit"),
        WindowHit::Counted { .. }
    ));
    assert!(matches!(
        store.hit_window("fail:id:z", 0, 60_000).await.expect("hit"),
        WindowHit::Refused { .. }
    ));
    // The window ends: a new one opens with one attempt counted.
    advance(60_000);
    assert_eq!(
        store.hit_window("fail:id:x", 7, 30_000).await.expect("hit"),
        WindowHit::Counted { ends_at_ms: 5_090_000 }
    );
    // A release aimed at the old window does not touch the new one.
    assert!(!store.release_window("fail:id:x", 5_060_000).await.expect("release"));
    // Pruning removes `y` (ended at 5_060_000), keeps `x` (ends at 5_090_000).
    assert_eq!(store.prune_windows().await.expect("prune"), 1);
    let left = store
        .db()
        .query("SELECT bucket, hits FROM rate_windows ORDER BY bucket", vec![])
        .await
        .expect("rows");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].text(0).expect("bucket"), "fail:id:x");
    assert_eq!(left[0].int(1).expect("hits"), 1);
    advance(30_000);
    assert_eq!(store.prune_windows().await.expect("prune"), 1);
}

/// Holds the ledger writer back: a write lock (SQLite) or a lock on one ledger account
/// (PostgreSQL) taken outside the store, until [`WriterBlock::release`].
enum WriterBlock {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

impl WriterBlock {
    async fn take(config: &StoreConfig, account: &LedgerAccountId) -> WriterBlock {
        match config {
            StoreConfig::Sqlite { path } => {
                let conn = rusqlite::Connection::open(path).expect("open sqlite");
                conn.execute_batch("BEGIN IMMEDIATE").expect("write lock");
                WriterBlock::Sqlite(conn)
            }
            StoreConfig::Postgres { url } => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(conn);
                client.batch_execute("BEGIN").await.expect("begin");
                client
                    .execute(
                        "SELECT 1 FROM ledger_accounts WHERE id = $1 FOR UPDATE",
                        &[&account.as_str()],
                    )
                    .await
                    .expect("lock");
                WriterBlock::Postgres(client)
            }
        }
    }

    async fn release(self) {
        match self {
            WriterBlock::Sqlite(conn) => conn.execute_batch("COMMIT").expect("commit"),
            WriterBlock::Postgres(client) => client.batch_execute("COMMIT").await.expect("commit"),
        }
    }
}

/// Issue 14, item 3: a request refused by its rail record (here a withdraw link that does not
/// exist, as a used-up one) is answered with its refusal, while the requests batched with it
/// post in that same batch: none fails, none is retried alone.
async fn a_refused_record_fails_only_its_own_request(backend: Backend) {
    let config = fresh_config(backend).await;
    let store = Store::open(&config, std::sync::Arc::new(flash_core::ports::SystemClock))
        .await
        .expect("open");
    store
        .ensure_system_accounts(Currency::Btc)
        .await
        .expect("system accounts");
    let (payer, payee) = (new_wallet(&store).await, new_wallet(&store).await);
    fund(&store, payer.id, 1_000).await;
    let batches_before = store.ledger_stats().batches();

    // Everything queued while the writer waits, so it is drained into few batches.
    let block = WriterBlock::take(&config, &LedgerAccountId::from(payer.id)).await;
    const EACH: usize = 24;
    let mut posts = Vec::new();
    for i in 0..2 * EACH {
        let store = store.clone();
        let refused = i % 2 == 1;
        let records: Vec<Record> = if refused {
            vec![Record::lnurl_withdraw_use_taken("no-such-link", 0)]
        } else {
            vec![]
        };
        let req = PostRequest {
            records,
            ..PostRequest::from(transfer(&format!("batched-{i}"), payer.id, payee.id, 1))
        };
        posts.push(tokio::spawn(async move { (refused, store.post(req).await) }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    block.release().await;

    for post in posts {
        match post.await.expect("task") {
            (false, outcome) => assert!(matches!(outcome, Ok(Ok(ref p)) if !p.replayed), "{outcome:?}"),
            (true, outcome) => assert!(matches!(outcome, Err(StoreError::Refused(_))), "{outcome:?}"),
        }
    }
    assert_eq!(store.wallet_balance(payee.id).await.expect("balance"), EACH as i64);
    // Each batch committed once: the neighbours of a refusal were not retried one by one.
    let batches = store.ledger_stats().batches() - batches_before;
    assert!(batches < EACH as u64 / 2, "{batches} batches for {} requests", 2 * EACH);
    assert_verified(&store).await;
}

fn event(id: u8, kind: i64) -> NewEvent {
    NewEvent {
        id: format!("{id:064x}"),
        pubkey: "ab".repeat(32),
        kind,
        created_at: 1_700_000_000,
        d_tag: None,
        expires_at: None,
        search: Some(format!("event {id}")),
        tags: vec![("t".into(), format!("tag{id}"))],
        raw: format!("{{\"id\":\"{id:064x}\"}}"),
        deletes: vec![],
    }
}

/// Issue 14, item 3: one event of a relay batch that the database refuses (here a kind out of
/// range, which only the table's check catches) fails alone; its neighbours are kept.
async fn an_event_the_database_refuses_fails_alone(backend: Backend) {
    let store = fresh_store(backend).await;
    let batch = vec![event(1, 1), event(2, 70_000), event(3, 1), event(3, 1)];
    let outcomes = store.nostr_save(&batch).await;
    assert_eq!(outcomes.len(), 4);
    assert!(matches!(outcomes[0], Ok(SaveOutcome::Saved)), "{outcomes:?}");
    assert!(outcomes[1].is_err(), "{outcomes:?}");
    assert!(matches!(outcomes[2], Ok(SaveOutcome::Saved)), "{outcomes:?}");
    assert!(matches!(outcomes[3], Ok(SaveOutcome::Duplicate)), "{outcomes:?}");
    assert_eq!(store.nostr_event_count().await.expect("count"), 2);
}

/// Issue 14, item 6: the SQLite WAL does not keep the size a burst of writes gave it. Writes
/// made while a reader holds an old snapshot cannot be checkpointed, so the WAL grows; once
/// the reader is gone and the writer idle, it is truncated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_wal_shrinks_once_the_writer_is_idle() {
    let config = fresh_config(Backend::Sqlite).await;
    let StoreConfig::Sqlite { path } = &config else {
        panic!("a SQLite config")
    };
    let store = Store::open(&config, std::sync::Arc::new(flash_core::ports::SystemClock))
        .await
        .expect("open");
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    let wal_bytes = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);

    let reader = rusqlite::Connection::open(path).expect("reader");
    reader
        .execute_batch("BEGIN; SELECT COUNT(*) FROM nostr_zaps;")
        .expect("a read snapshot");
    let big = "z".repeat(64 * 1024);
    for i in 0..128 {
        store
            .nostr_zap_create(&format!("{i:064x}"), &big, "lnbc1")
            .await
            .expect("write");
    }
    let grown = wal_bytes();
    assert!(grown > 8 * 1024 * 1024, "the WAL holds the burst: {grown} bytes");
    reader.execute_batch("COMMIT").expect("end the snapshot");
    drop(reader);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while wal_bytes() > 1024 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "the WAL stayed at {} bytes after the writer went idle",
            wal_bytes()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
