//! Behaviour of the bank: sign-up, intraledger payments, refusals, account status, limits,
//! the dev faucet, idempotency, concurrency, history pages and wallet events. Every test runs
//! on SQLite and on PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

use flash_bank::{
    Bank, BankConfig, BankError, Direction, HistoryPageRequest, Identity, PaymentOutcome, Recipient, SendRequest,
    Transaction, TransactionPage, TxStatus, WalletChange, WalletEvent,
};
use flash_core::{
    AccountId, AccountLevel, AccountStatus, Currency, Email, JournalId, JournalKind, LedgerError, LimitKind,
    LimitPolicy, Network, Phone, WalletId, MAX_SATS,
};
use flash_store::testing::{fresh_store, Backend};
use flash_store::{AccountRecord, UserRecord};
use proptest::prelude::*;
use tokio::sync::broadcast::error::TryRecvError;

flash_store::on_both_backends!(
    sign_up_sets_levels_and_reuses_identities,
    concurrent_first_logins_create_one_user,
    intraledger_payment_by_wallet_and_username,
    bad_input_changes_nothing,
    refused_request_does_not_burn_its_idempotency_key,
    locked_accounts_cannot_pay_or_be_paid_and_operator_actions_are_audited,
    status_comments_with_nul_are_invalid_input,
    limits_follow_the_account_level,
    faucet_is_regtest_only_and_idempotent,
    concurrent_identical_sends_post_once,
    concurrent_sends_cannot_overdraw,
    history_pages_forward_and_backward,
    last_without_before_pages_from_the_oldest_end,
    history_rejects_bad_page_arguments,
    events_announce_each_posted_payment_once,
    random_payments_match_a_model,
    retry_after_the_recipient_is_locked_returns_the_first_answer,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The limit settings every test bank uses (1,000 sats per dollar).
fn config(network: Network) -> BankConfig {
    BankConfig {
        network,
        limits: LimitPolicy {
            reference_sats_per_usd: 1_000,
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn bank_on(backend: Backend) -> Bank {
    Bank::new(fresh_store(backend).await, config(Network::Regtest))
}

static NEXT_NUMBER: AtomicU64 = AtomicU64::new(1);

fn unique_phone() -> Phone {
    let n = NEXT_NUMBER.fetch_add(1, Ordering::Relaxed);
    Phone::parse(&format!("+1555{n:07}")).expect("valid phone")
}

fn unique_device() -> String {
    format!("device-{}", uuid::Uuid::new_v4())
}

/// A signed-up user with an account and its one wallet.
#[derive(Clone, Debug)]
struct Member {
    user: UserRecord,
    account: AccountRecord,
}

impl Member {
    fn id(&self) -> AccountId {
        self.account.id
    }
    fn wallet(&self) -> WalletId {
        self.account.default_wallet_id
    }
    fn by_wallet(&self) -> Recipient {
        Recipient::Wallet(self.wallet())
    }
}

async fn sign_up(bank: &Bank, identity: Identity, username: Option<&str>) -> Member {
    let (user, account) = bank.user_for_identity(&identity).await.expect("sign up");
    let user = match username {
        Some(name) => bank.set_username(user.id, name).await.expect("set username"),
        None => user,
    };
    Member { user, account }
}

/// A phone user (level One).
async fn member(bank: &Bank, username: Option<&str>) -> Member {
    sign_up(bank, Identity::Phone(unique_phone()), username).await
}

async fn fund(bank: &Bank, m: &Member, amount: i64) {
    bank.wallet_fund("test", m.wallet(), amount, None)
        .await
        .expect("faucet");
}

async fn balance(bank: &Bank, m: &Member) -> i64 {
    bank.store_for_tests()
        .wallet_balance(m.wallet())
        .await
        .expect("balance")
}

fn payment(from: &Member, to: Recipient, amount: i64) -> SendRequest {
    SendRequest {
        account: from.id(),
        from: from.wallet(),
        to,
        amount,
        memo: None,
        idempotency_key: None,
    }
}

fn page(first: Option<i32>, after: Option<&str>, last: Option<i32>, before: Option<&str>) -> HistoryPageRequest {
    HistoryPageRequest {
        first,
        after: after.map(str::to_string),
        last,
        before: before.map(str::to_string),
    }
}

async fn history(bank: &Bank, m: &Member) -> Vec<Transaction> {
    let all = bank
        .history(m.id(), None, &page(Some(100), None, None, None))
        .await
        .expect("history");
    assert!(!all.has_next_page, "test histories fit one page");
    all.items.into_iter().map(|p| p.transaction).collect()
}

async fn journal_count(bank: &Bank) -> i64 {
    bank.verify_ledger().await.expect("verify").journals_checked
}

async fn count_rows(bank: &Bank, table: &str) -> i64 {
    let rows = bank
        .store_for_tests()
        .db()
        .query(&format!("SELECT COUNT(*) FROM {table}"), vec![])
        .await
        .expect("count");
    rows.first().expect("one row").int(0).expect("count")
}

async fn assert_verified(bank: &Bank) {
    let report = bank.verify_ledger().await.expect("verify");
    assert!(report.ok(), "ledger problems: {:?}", report.problems);
    assert!(
        report.totals.iter().all(|(_, total)| *total == 0),
        "totals: {:?}",
        report.totals
    );
}

fn refused<T: Debug>(result: Result<T, BankError>) -> BankError {
    result.expect_err("the bank must refuse this request")
}

/// Everything a refused request must leave untouched, for a set of members.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    balances: Vec<i64>,
    histories: Vec<Vec<Transaction>>,
    contacts: Vec<Vec<(Option<String>, i64)>>,
    intraledger_remaining: Vec<i64>,
    journals: i64,
}

async fn observe(bank: &Bank, members: &[&Member]) -> Observed {
    let mut o = Observed {
        balances: Vec::new(),
        histories: Vec::new(),
        contacts: Vec::new(),
        intraledger_remaining: Vec::new(),
        journals: journal_count(bank).await,
    };
    for m in members {
        o.balances.push(balance(bank, m).await);
        o.histories.push(history(bank, m).await);
        o.contacts.push(
            bank.contacts(m.id())
                .await
                .expect("contacts")
                .into_iter()
                .map(|c| (c.username, c.transactions_count))
                .collect(),
        );
        let account = bank.account(m.id()).await.expect("account");
        o.intraledger_remaining
            .push(intraledger_limit(bank, &account).await.remaining_sats);
    }
    o
}

async fn intraledger_limit(bank: &Bank, account: &AccountRecord) -> flash_bank::LimitView {
    limit_of(bank, account, LimitKind::IntraLedger).await
}

async fn limit_of(bank: &Bank, account: &AccountRecord, kind: LimitKind) -> flash_bank::LimitView {
    bank.limits(account)
        .await
        .expect("limits")
        .into_iter()
        .find(|l| l.kind == kind)
        .expect("limit listed")
}

// ---------------------------------------------------------------------------------------------
// 1. Sign-up
// ---------------------------------------------------------------------------------------------

async fn sign_up_sets_levels_and_reuses_identities(backend: Backend) {
    let bank = bank_on(backend).await;

    let phone = Phone::parse("+1 555 000 1111").expect("phone");
    let (user, account) = bank
        .user_for_identity(&Identity::Phone(phone))
        .await
        .expect("phone sign-up");
    assert_eq!(account.level, AccountLevel::One, "phone users start at level 1");
    assert_eq!(account.status, AccountStatus::Active);
    assert_eq!(account.user_id, user.id);
    assert_eq!(user.phone.as_deref(), Some("+15550001111"));
    let wallets = bank.wallets(account.id).await.expect("wallets");
    assert_eq!(wallets.len(), 1, "a new account has one wallet");
    assert_eq!(wallets[0].wallet.id, account.default_wallet_id);
    assert_eq!(wallets[0].wallet.currency, Currency::Btc);
    assert_eq!((wallets[0].balance, wallets[0].pending_incoming), (0, 0));

    // The same phone, written differently, is the same user.
    let again = Phone::parse("+15550001111").expect("phone");
    let (user2, account2) = bank
        .user_for_identity(&Identity::Phone(again))
        .await
        .expect("phone login");
    assert_eq!((user2.id, account2.id), (user.id, account.id));
    assert_eq!(account2.default_wallet_id, account.default_wallet_id);

    let email = Email::parse("satoshi@example.com").expect("email");
    let (email_user, email_account) = bank
        .user_for_identity(&Identity::Email(email))
        .await
        .expect("email sign-up");
    assert_eq!(email_account.level, AccountLevel::Zero, "email users start at level 0");
    assert_eq!(email_user.email.as_deref(), Some("satoshi@example.com"));
    assert_eq!(email_user.phone, None);
    let shouty = Email::parse("SATOSHI@Example.COM").expect("email");
    let (email_user2, email_account2) = bank
        .user_for_identity(&Identity::Email(shouty))
        .await
        .expect("email login");
    assert_eq!((email_user2.id, email_account2.id), (email_user.id, email_account.id));

    let device = unique_device();
    let (device_user, device_account) = bank
        .user_for_identity(&Identity::Device(device.clone()))
        .await
        .expect("device sign-up");
    assert_eq!(
        device_account.level,
        AccountLevel::Zero,
        "device users start at level 0"
    );
    assert_eq!(device_user.device_id.as_deref(), Some(device.as_str()));
    let (device_user2, device_account2) = bank
        .user_for_identity(&Identity::Device(device))
        .await
        .expect("device login");
    assert_eq!(
        (device_user2.id, device_account2.id),
        (device_user.id, device_account.id)
    );

    let ids: BTreeSet<AccountId> = [account.id, email_account.id, device_account.id].into();
    assert_eq!(ids.len(), 3, "different identities are different accounts");
    assert_eq!(count_rows(&bank, "users").await, 3);
    assert_eq!(count_rows(&bank, "accounts").await, 3);
    assert_eq!(count_rows(&bank, "wallets").await, 3);
}

async fn concurrent_first_logins_create_one_user(backend: Backend) {
    let bank = bank_on(backend).await;
    let phone = unique_phone();
    let logins = (0..20).map(|_| {
        let bank = bank.clone();
        let identity = Identity::Phone(phone.clone());
        tokio::spawn(async move { bank.user_for_identity(&identity).await })
    });
    let results = futures_util::future::join_all(logins).await;
    let mut seen = BTreeSet::new();
    for joined in results {
        let (user, account) = joined.expect("task").expect("every login succeeds");
        assert_eq!(account.user_id, user.id);
        assert_eq!(account.level, AccountLevel::One);
        seen.insert((user.id, account.id, account.default_wallet_id));
    }
    assert_eq!(seen.len(), 1, "all logins see the same user: {seen:?}");
    assert_eq!(count_rows(&bank, "users").await, 1);
    assert_eq!(count_rows(&bank, "accounts").await, 1);
    assert_eq!(count_rows(&bank, "wallets").await, 1);
}

// ---------------------------------------------------------------------------------------------
// 2. Intraledger payments
// ---------------------------------------------------------------------------------------------

async fn intraledger_payment_by_wallet_and_username(backend: Backend) {
    let bank = bank_on(backend).await;
    let alice = member(&bank, Some("alice")).await;
    let bob = member(&bank, Some("Bob_Smith")).await;
    fund(&bank, &alice, 10_000).await;

    // By wallet id, with a memo.
    let paid = bank
        .send_intraledger(SendRequest {
            memo: Some("lunch".into()),
            ..payment(&alice, bob.by_wallet(), 1_000)
        })
        .await
        .expect("pay by wallet");
    assert!(!paid.replayed);
    let tx = &paid.transaction;
    assert_eq!(tx.journal_id, paid.journal_id);
    assert_eq!(tx.wallet_id, alice.wallet());
    assert_eq!(tx.direction, Direction::Send);
    assert_eq!(tx.amount, -1_000);
    assert_eq!(tx.fee, 0);
    assert_eq!(tx.currency, Currency::Btc);
    assert_eq!(tx.status, TxStatus::Success);
    assert_eq!(tx.kind, JournalKind::IntraLedger);
    assert_eq!(tx.memo.as_deref(), Some("lunch"));
    assert_eq!(tx.counterparty_wallet_id, Some(bob.wallet()));
    assert_eq!(tx.counterparty_username.as_deref(), Some("Bob_Smith"));
    assert_eq!(
        (balance(&bank, &alice).await, balance(&bank, &bob).await),
        (9_000, 1_000)
    );

    let contact_of = |contacts: Vec<flash_store::ContactRecord>| {
        contacts
            .into_iter()
            .map(|c| (c.account_id, c.username, c.transactions_count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        contact_of(bank.contacts(alice.id()).await.expect("contacts")),
        vec![(bob.id(), Some("Bob_Smith".to_string()), 1)]
    );
    assert_eq!(
        contact_of(bank.contacts(bob.id()).await.expect("contacts")),
        vec![(alice.id(), Some("alice".to_string()), 1)]
    );

    // By username, looked up case-insensitively.
    let by_lower = bank
        .send_intraledger(payment(&alice, Recipient::Username("bob_smith".into()), 300))
        .await
        .expect("pay by lower-case username");
    let by_upper = bank
        .send_intraledger(payment(&alice, Recipient::Username("BOB_SMITH".into()), 200))
        .await
        .expect("pay by upper-case username");
    for p in [&by_lower, &by_upper] {
        assert!(!p.replayed);
        assert_eq!(p.transaction.counterparty_wallet_id, Some(bob.wallet()));
        assert_eq!(p.transaction.memo, None);
        assert_eq!(p.transaction.fee, 0);
    }
    assert_ne!(by_lower.journal_id, by_upper.journal_id);
    assert_eq!(
        (balance(&bank, &alice).await, balance(&bank, &bob).await),
        (8_500, 1_500)
    );
    assert_eq!(
        contact_of(bank.contacts(alice.id()).await.expect("contacts")),
        vec![(bob.id(), Some("Bob_Smith".to_string()), 3)]
    );
    assert_eq!(
        contact_of(bank.contacts(bob.id()).await.expect("contacts")),
        vec![(alice.id(), Some("alice".to_string()), 3)]
    );

    // The receiver's history, newest first.
    let bob_history = history(&bank, &bob).await;
    let lines: Vec<_> = bob_history
        .iter()
        .map(|t| (t.journal_id, t.direction, t.amount, t.fee, t.status, t.memo.clone()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (by_upper.journal_id, Direction::Receive, 200, 0, TxStatus::Success, None),
            (by_lower.journal_id, Direction::Receive, 300, 0, TxStatus::Success, None),
            (
                paid.journal_id,
                Direction::Receive,
                1_000,
                0,
                TxStatus::Success,
                Some("lunch".to_string())
            ),
        ]
    );
    for t in &bob_history {
        assert_eq!(t.wallet_id, bob.wallet());
        assert_eq!(t.kind, JournalKind::IntraLedger);
        assert_eq!(t.counterparty_wallet_id, Some(alice.wallet()));
        assert_eq!(t.counterparty_username.as_deref(), Some("alice"));
    }
    assert_eq!(
        bank.transaction(bob.wallet(), paid.journal_id)
            .await
            .expect("receiver's view"),
        bob_history[2]
    );

    // The payer's history: three sends and the faucet.
    let alice_history = history(&bank, &alice).await;
    let lines: Vec<_> = alice_history
        .iter()
        .map(|t| (t.direction, t.amount, t.kind, t.counterparty_username.clone()))
        .collect();
    let bob_name = Some("Bob_Smith".to_string());
    assert_eq!(
        lines,
        vec![
            (Direction::Send, -200, JournalKind::IntraLedger, bob_name.clone()),
            (Direction::Send, -300, JournalKind::IntraLedger, bob_name.clone()),
            (Direction::Send, -1_000, JournalKind::IntraLedger, bob_name),
            (Direction::Receive, 10_000, JournalKind::DevFaucet, None),
        ]
    );
    assert_eq!(alice_history[2], paid.transaction);
    assert_eq!(alice_history[3].counterparty_wallet_id, None, "the faucet is no wallet");
    assert!(alice_history
        .iter()
        .all(|t| t.status == TxStatus::Success && t.fee == 0));
    assert_verified(&bank).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Refusals
// ---------------------------------------------------------------------------------------------

async fn bad_input_changes_nothing(backend: Backend) {
    let bank = bank_on(backend).await;
    let alice = member(&bank, Some("alice")).await;
    let bob = member(&bank, Some("bob")).await;
    let carol = member(&bank, Some("carol")).await;
    fund(&bank, &alice, 10_000).await;
    fund(&bank, &carol, 5_000).await;
    let everyone = [&alice, &bob, &carol];
    let before = observe(&bank, &everyone).await;

    let to_bob = || payment(&alice, bob.by_wallet(), 100);
    let cases: Vec<(&str, SendRequest, &str)> = vec![
        ("zero", SendRequest { amount: 0, ..to_bob() }, "INVALID_AMOUNT"),
        ("negative", SendRequest { amount: -1, ..to_bob() }, "INVALID_AMOUNT"),
        (
            "more than exists",
            SendRequest {
                amount: MAX_SATS + 1,
                ..to_bob()
            },
            "INVALID_AMOUNT",
        ),
        (
            "i64::MAX",
            SendRequest {
                amount: i64::MAX,
                ..to_bob()
            },
            "INVALID_AMOUNT",
        ),
        (
            "i64::MIN",
            SendRequest {
                amount: i64::MIN,
                ..to_bob()
            },
            "INVALID_AMOUNT",
        ),
        (
            "memo of 1,001 chars",
            SendRequest {
                memo: Some("m".repeat(1_001)),
                ..to_bob()
            },
            "MEMO_TOO_LONG",
        ),
        (
            "unknown username",
            payment(&alice, Recipient::Username("nobody_here".into()), 100),
            "RECIPIENT_NOT_FOUND",
        ),
        (
            "malformed username",
            payment(&alice, Recipient::Username("no way!".into()), 100),
            "INVALID_USERNAME",
        ),
        (
            "unknown wallet",
            payment(&alice, Recipient::Wallet(WalletId::generate()), 100),
            "RECIPIENT_NOT_FOUND",
        ),
        (
            "another account's wallet",
            SendRequest {
                from: carol.wallet(),
                ..to_bob()
            },
            "WALLET_NOT_FOUND",
        ),
        (
            "a wallet that does not exist",
            SendRequest {
                from: WalletId::generate(),
                ..to_bob()
            },
            "WALLET_NOT_FOUND",
        ),
        (
            "unknown paying account",
            SendRequest {
                account: AccountId::generate(),
                ..to_bob()
            },
            "WALLET_NOT_FOUND",
        ),
        (
            "self by wallet",
            payment(&alice, alice.by_wallet(), 100),
            "SELF_PAYMENT",
        ),
        (
            "self by username",
            payment(&alice, Recipient::Username("ALICE".into()), 100),
            "SELF_PAYMENT",
        ),
        (
            "empty idempotency key",
            SendRequest {
                idempotency_key: Some(String::new()),
                ..to_bob()
            },
            "INVALID_IDEMPOTENCY_KEY",
        ),
        (
            "129-char idempotency key",
            SendRequest {
                idempotency_key: Some("k".repeat(129)),
                ..to_bob()
            },
            "INVALID_IDEMPOTENCY_KEY",
        ),
        (
            "more than the balance",
            SendRequest {
                amount: 10_001,
                ..to_bob()
            },
            "INSUFFICIENT_BALANCE",
        ),
    ];
    for (what, req, code) in cases {
        let err = refused(bank.send_intraledger(req).await);
        assert_eq!(err.code().as_str(), code, "{what}: {err}");
        assert_eq!(observe(&bank, &everyone).await, before, "{what} changed something");
    }

    // A few refusals are checked by variant, not only by code.
    let err = refused(bank.send_intraledger(payment(&alice, alice.by_wallet(), 1)).await);
    assert!(matches!(err, BankError::Ledger(LedgerError::SelfPayment)), "{err:?}");
    let err = refused(
        bank.send_intraledger(SendRequest {
            from: carol.wallet(),
            ..to_bob()
        })
        .await,
    );
    assert!(matches!(err, BankError::WalletNotFound), "{err:?}");
    let err = refused(
        bank.send_intraledger(SendRequest {
            amount: 10_001,
            ..to_bob()
        })
        .await,
    );
    assert!(
        matches!(
            err,
            BankError::Ledger(LedgerError::InsufficientBalance {
                available: 10_000,
                required: 10_001
            })
        ),
        "{err:?}"
    );
    assert_eq!(balance(&bank, &carol).await, 5_000, "carol's wallet is untouched");
    assert_eq!(observe(&bank, &everyone).await, before);

    // The boundaries themselves are accepted: a 1,000-char memo and a 128-char key.
    let ok = bank
        .send_intraledger(SendRequest {
            memo: Some("é".repeat(1_000)),
            idempotency_key: Some("k".repeat(128)),
            ..to_bob()
        })
        .await
        .expect("boundary values are valid");
    assert_eq!(ok.transaction.memo.as_deref().map(|m| m.chars().count()), Some(1_000));
    assert_eq!((balance(&bank, &alice).await, balance(&bank, &bob).await), (9_900, 100));
    assert_verified(&bank).await;
}

async fn refused_request_does_not_burn_its_idempotency_key(backend: Backend) {
    let bank = bank_on(backend).await;
    let alice = member(&bank, None).await;
    let bob = member(&bank, None).await;
    fund(&bank, &alice, 50).await;
    let keyed = |amount| SendRequest {
        idempotency_key: Some("retry-me".into()),
        ..payment(&alice, bob.by_wallet(), amount)
    };
    let err = refused(bank.send_intraledger(keyed(51)).await);
    assert_eq!(err.code().as_str(), "INSUFFICIENT_BALANCE");
    let ok = bank.send_intraledger(keyed(50)).await.expect("key still free");
    assert!(!ok.replayed);
    assert_eq!((balance(&bank, &alice).await, balance(&bank, &bob).await), (0, 50));
}

// ---------------------------------------------------------------------------------------------
// 4. Account status and the audit log
// ---------------------------------------------------------------------------------------------

async fn audit_rows(bank: &Bank) -> Vec<(String, String, String, String)> {
    bank.store_for_tests()
        .db()
        .query(
            "SELECT actor, action, subject, detail FROM audit_log ORDER BY id",
            vec![],
        )
        .await
        .expect("audit log")
        .iter()
        .map(|r| {
            (
                r.text(0).expect("actor"),
                r.text(1).expect("action"),
                r.text(2).expect("subject"),
                r.text(3).expect("detail"),
            )
        })
        .collect()
}

async fn locked_accounts_cannot_pay_or_be_paid_and_operator_actions_are_audited(backend: Backend) {
    let bank = bank_on(backend).await;
    let alice = member(&bank, Some("alice")).await;
    let bob = member(&bank, Some("bob")).await;
    fund(&bank, &alice, 1_000).await;
    fund(&bank, &bob, 1_000).await;
    let everyone = [&alice, &bob];
    let before = observe(&bank, &everyone).await;

    let locked = bank
        .set_account_status("ops@flash", alice.id(), AccountStatus::Locked, Some("fraud review"))
        .await
        .expect("lock");
    assert_eq!(locked.status, AccountStatus::Locked);
    assert_eq!(
        bank.account(alice.id()).await.expect("account").status,
        AccountStatus::Locked
    );
    let err = refused(bank.send_intraledger(payment(&alice, bob.by_wallet(), 10)).await);
    assert_eq!(err.code().as_str(), "ACCOUNT_NOT_ACTIVE");
    assert!(matches!(err, BankError::AccountNotActive("locked")), "{err:?}");
    // A locked account cannot be paid either.
    for to in [alice.by_wallet(), Recipient::Username("Alice".into())] {
        let err = refused(bank.send_intraledger(payment(&bob, to, 10)).await);
        assert_eq!(err.code().as_str(), "RECIPIENT_NOT_ACTIVE");
    }
    assert_eq!(observe(&bank, &everyone).await, before);

    let active = bank
        .set_account_status("ops@flash", alice.id(), AccountStatus::Active, None)
        .await
        .expect("unlock");
    assert_eq!(active.status, AccountStatus::Active);
    bank.set_account_status("root", bob.id(), AccountStatus::Closed, Some("asked to leave"))
        .await
        .expect("close");
    for to in [bob.by_wallet(), Recipient::Username("BOB".into())] {
        let err = refused(bank.send_intraledger(payment(&alice, to, 10)).await);
        assert_eq!(err.code().as_str(), "RECIPIENT_NOT_ACTIVE");
        assert!(matches!(err, BankError::RecipientNotActive), "{err:?}");
    }
    let err = refused(bank.send_intraledger(payment(&bob, alice.by_wallet(), 10)).await);
    assert!(matches!(err, BankError::AccountNotActive("closed")), "{err:?}");
    assert_eq!(observe(&bank, &everyone).await, before);

    let leveled = bank
        .set_account_level("ops@flash", alice.id(), AccountLevel::Two)
        .await
        .expect("level");
    assert_eq!(leveled.level, AccountLevel::Two);
    assert_eq!(
        bank.account(alice.id()).await.expect("account").level,
        AccountLevel::Two
    );

    let (a, b) = (alice.id().to_string(), bob.id().to_string());
    let row = |actor: &str, action: &str, subject: &String, detail: &str| {
        (
            actor.to_string(),
            action.to_string(),
            subject.clone(),
            detail.to_string(),
        )
    };
    let expected = vec![
        row("ops@flash", "account.status", &a, "locked fraud review"),
        row("ops@flash", "account.status", &a, "active"),
        row("root", "account.status", &b, "closed asked to leave"),
        row("ops@flash", "account.level", &a, "2"),
    ];
    let account_actions: Vec<_> = audit_rows(&bank)
        .await
        .into_iter()
        .filter(|r| r.1.starts_with("account."))
        .collect();
    assert_eq!(account_actions, expected);

    // Operator actions on an account that does not exist fail and are not audited.
    let ghost = AccountId::generate();
    let err = refused(bank.set_account_level("ops@flash", ghost, AccountLevel::Three).await);
    assert_eq!(err.code().as_str(), "ACCOUNT_NOT_FOUND");
    let err = refused(
        bank.set_account_status("ops@flash", ghost, AccountStatus::Locked, None)
            .await,
    );
    assert_eq!(err.code().as_str(), "ACCOUNT_NOT_FOUND");
    let account_actions: Vec<_> = audit_rows(&bank)
        .await
        .into_iter()
        .filter(|r| r.1.starts_with("account."))
        .collect();
    assert_eq!(account_actions, expected);

    // Unlocked, alice pays again.
    let carol = member(&bank, None).await;
    bank.send_intraledger(payment(&alice, carol.by_wallet(), 10))
        .await
        .expect("an active account pays");
    assert_eq!(balance(&bank, &carol).await, 10);
}

// ---------------------------------------------------------------------------------------------
// 5. Limits
// ---------------------------------------------------------------------------------------------

// Payments between two wallets of the same account are exempt from limits, but an account
// has exactly one wallet and the bank offers no way to open another, so that case is not
// testable through the bank's API.
async fn limits_follow_the_account_level(backend: Backend) {
    let bank = bank_on(backend).await;
    let alice = sign_up(&bank, Identity::Device(unique_device()), None).await;
    let bob = member(&bank, Some("bob")).await;
    assert_eq!(alice.account.level, AccountLevel::Zero);
    fund(&bank, &alice, 1_000_000).await;

    let fresh = intraledger_limit(&bank, &alice.account).await;
    assert_eq!(
        (
            fresh.total_sats,
            fresh.remaining_sats,
            fresh.total_cents,
            fresh.remaining_cents
        ),
        (125_000, 125_000, 12_500, 12_500)
    );
    assert_eq!(fresh.interval_secs, 86_400);
    let withdrawal = limit_of(&bank, &alice.account, LimitKind::Withdrawal).await;
    assert_eq!((withdrawal.total_sats, withdrawal.remaining_sats), (125_000, 125_000));
    assert_eq!(bank.limits(&alice.account).await.expect("limits").len(), 2);

    bank.send_intraledger(payment(&alice, bob.by_wallet(), 100_000))
        .await
        .expect("within the limit");
    let after_first = intraledger_limit(&bank, &alice.account).await;
    assert_eq!(
        (
            after_first.total_sats,
            after_first.remaining_sats,
            after_first.total_cents,
            after_first.remaining_cents
        ),
        (125_000, 25_000, 12_500, 2_500)
    );

    // One sat over what remains is refused, with what remains.
    let err = refused(bank.send_intraledger(payment(&alice, bob.by_wallet(), 25_001)).await);
    assert_eq!(
        err.to_string(),
        "intraledger limit of 125000 sats ($125.00) per 24 hours exceeded: 25000 sats remaining"
    );
    assert!(
        matches!(
            err,
            BankError::LimitExceeded {
                kind: LimitKind::IntraLedger,
                limit_sats: 125_000,
                remaining_sats: 25_000,
                ..
            }
        ),
        "{err:?}"
    );

    bank.send_intraledger(payment(&alice, Recipient::Username("bob".into()), 25_000))
        .await
        .expect("exactly the rest of the limit");
    let spent = intraledger_limit(&bank, &alice.account).await;
    assert_eq!((spent.remaining_sats, spent.remaining_cents), (0, 0));

    let before = observe(&bank, &[&alice, &bob]).await;
    let err = refused(bank.send_intraledger(payment(&alice, bob.by_wallet(), 1)).await);
    assert_eq!(err.code().as_str(), "LIMIT_EXCEEDED");
    assert!(
        matches!(
            err,
            BankError::LimitExceeded {
                kind: LimitKind::IntraLedger,
                limit_sats: 125_000,
                remaining_sats: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(observe(&bank, &[&alice, &bob]).await, before);
    assert_eq!(
        (balance(&bank, &alice).await, balance(&bank, &bob).await),
        (875_000, 125_000)
    );
    // Intraledger sends do not use the withdrawal limit, and receiving uses no limit.
    let withdrawal = limit_of(&bank, &alice.account, LimitKind::Withdrawal).await;
    assert_eq!(withdrawal.remaining_sats, 125_000);
    let bob_limit = intraledger_limit(&bank, &bob.account).await;
    assert_eq!((bob_limit.total_sats, bob_limit.remaining_sats), (2_000_000, 2_000_000));

    let upgraded = bank
        .set_account_level("ops@flash", alice.id(), AccountLevel::Three)
        .await
        .expect("upgrade");
    let level3 = intraledger_limit(&bank, &upgraded).await;
    assert_eq!(
        (
            level3.total_sats,
            level3.remaining_sats,
            level3.total_cents,
            level3.remaining_cents
        ),
        (100_000_000, 100_000_000 - 125_000, 10_000_000, 10_000_000 - 12_500)
    );
    bank.send_intraledger(payment(&alice, bob.by_wallet(), 1))
        .await
        .expect("a level-3 account may send more");
    assert_eq!(balance(&bank, &bob).await, 125_001);
    assert_verified(&bank).await;
}

// ---------------------------------------------------------------------------------------------
// 6. The dev faucet
// ---------------------------------------------------------------------------------------------

async fn faucet_is_regtest_only_and_idempotent(backend: Backend) {
    let bank = bank_on(backend).await;
    let alice = member(&bank, None).await;

    let tx = bank
        .wallet_fund("test", alice.wallet(), 5_000, None)
        .await
        .expect("regtest faucet");
    assert_eq!(tx.wallet_id, alice.wallet());
    assert_eq!((tx.direction, tx.amount, tx.fee), (Direction::Receive, 5_000, 0));
    assert_eq!(tx.kind, JournalKind::DevFaucet);
    assert_eq!(tx.status, TxStatus::Success);
    assert_eq!(balance(&bank, &alice).await, 5_000);

    let first = bank
        .wallet_fund("test", alice.wallet(), 1_000, Some("grant-1".into()))
        .await
        .expect("keyed fund");
    let second = bank
        .wallet_fund("test", alice.wallet(), 1_000, Some("grant-1".into()))
        .await
        .expect("repeated keyed fund");
    assert_eq!(first.journal_id, second.journal_id);
    assert_eq!(first, second);
    assert_eq!(balance(&bank, &alice).await, 6_000, "credited once");
    let err = refused(
        bank.wallet_fund("test", alice.wallet(), 2_000, Some("grant-1".into()))
            .await,
    );
    assert_eq!(err.code().as_str(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(history(&bank, &alice).await.len(), 2);

    let err = refused(bank.wallet_fund("test", alice.wallet(), 0, None).await);
    assert_eq!(err.code().as_str(), "INVALID_AMOUNT");
    let err = refused(bank.wallet_fund("test", WalletId::generate(), 10, None).await);
    assert_eq!(err.code().as_str(), "WALLET_NOT_FOUND");
    let err = refused(bank.wallet_fund("test", alice.wallet(), 10, Some(String::new())).await);
    assert_eq!(err.code().as_str(), "INVALID_IDEMPOTENCY_KEY");

    // Other test networks allow it too.
    for network in [Network::Testnet, Network::Signet] {
        let other = Bank::new(bank.store_for_tests().clone(), config(network));
        other
            .wallet_fund("test", alice.wallet(), 1, None)
            .await
            .expect("dev features on test networks");
    }
    assert_eq!(balance(&bank, &alice).await, 6_002);

    let journals = journal_count(&bank).await;
    let mainnet = Bank::new(bank.store_for_tests().clone(), config(Network::Mainnet));
    let err = refused(mainnet.wallet_fund("test", alice.wallet(), 1_000, None).await);
    assert_eq!(err.code().as_str(), "NOT_AVAILABLE_ON_MAINNET");
    assert!(matches!(err, BankError::NotOnMainnet));
    let err = refused(
        mainnet
            .wallet_fund("test", alice.wallet(), 1_000, Some("grant-1".into()))
            .await,
    );
    assert_eq!(err.code().as_str(), "NOT_AVAILABLE_ON_MAINNET", "not even a replay");
    assert_eq!(journal_count(&bank).await, journals, "mainnet wrote a journal");
    assert_eq!(balance(&bank, &alice).await, 6_002);
    // Every posted fund is audited once, with its journal; replays and refusals are not.
    let funds: Vec<_> = audit_rows(&bank)
        .await
        .into_iter()
        .filter(|r| r.1 == "wallet.fund")
        .collect();
    assert_eq!(funds.len(), 4, "{funds:?}");
    assert!(funds.iter().all(|r| r.0 == "test" && r.2 == alice.wallet().to_string()));
    assert_eq!(funds[1].3, format!("1000 sats (journal {})", first.journal_id));
    assert_verified(&bank).await;
}

// ---------------------------------------------------------------------------------------------
// 7. Idempotency
// ---------------------------------------------------------------------------------------------

async fn concurrent_identical_sends_post_once(backend: Backend) {
    let bank = bank_on(backend).await;
    let alice = member(&bank, Some("alice")).await;
    let bob = member(&bank, Some("bob")).await;
    fund(&bank, &alice, 10_000).await;
    let mut events = bank.subscribe();
    let request = SendRequest {
        memo: Some("rent".into()),
        idempotency_key: Some("pay-1".into()),
        ..payment(&alice, bob.by_wallet(), 700)
    };

    let sends = (0..50).map(|_| {
        let bank = bank.clone();
        let request = request.clone();
        tokio::spawn(async move { bank.send_intraledger(request).await })
    });
    let outcomes: Vec<PaymentOutcome> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .map(|joined| joined.expect("task").expect("every retry succeeds"))
        .collect();
    let journals: BTreeSet<JournalId> = outcomes.iter().map(|o| o.journal_id).collect();
    assert_eq!(journals.len(), 1, "one journal: {journals:?}");
    assert_eq!(outcomes.iter().filter(|o| !o.replayed).count(), 1);
    assert!(outcomes.iter().all(|o| o.transaction == outcomes[0].transaction));
    assert_eq!((balance(&bank, &alice).await, balance(&bank, &bob).await), (9_300, 700));
    assert_eq!(history(&bank, &bob).await.len(), 1);
    let contacts = bank.contacts(alice.id()).await.expect("contacts");
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].transactions_count, 1, "a replay is not another payment");
    let mut published = 0;
    while events.try_recv().is_ok() {
        published += 1;
    }
    assert_eq!(published, 2, "one event per side, for the first request only");

    // A later retry replays; the same key for a different request is refused.
    let retry = bank.send_intraledger(request.clone()).await.expect("retry");
    assert!(retry.replayed);
    assert_eq!(Some(&retry.journal_id), journals.first());
    let before = observe(&bank, &[&alice, &bob]).await;
    let carol = member(&bank, None).await;
    let variants = [
        SendRequest {
            amount: 701,
            ..request.clone()
        },
        SendRequest {
            memo: Some("other".into()),
            ..request.clone()
        },
        SendRequest {
            memo: None,
            ..request.clone()
        },
        SendRequest {
            to: carol.by_wallet(),
            ..request.clone()
        },
    ];
    for variant in variants {
        let err = refused(bank.send_intraledger(variant.clone()).await);
        assert_eq!(err.code().as_str(), "IDEMPOTENCY_KEY_REUSED", "{variant:?}");
        assert!(matches!(err, BankError::Ledger(LedgerError::IdempotencyKeyReused)));
    }
    assert_eq!(observe(&bank, &[&alice, &bob]).await, before);
    assert_eq!(balance(&bank, &carol).await, 0);

    // Keys are scoped to the paying account: bob may use the same key.
    let bobs = bank
        .send_intraledger(SendRequest {
            idempotency_key: Some("pay-1".into()),
            ..payment(&bob, alice.by_wallet(), 100)
        })
        .await
        .expect("another account's key space");
    assert!(!bobs.replayed);
    assert_ne!(Some(&bobs.journal_id), journals.first());
    assert_eq!((balance(&bank, &alice).await, balance(&bank, &bob).await), (9_400, 600));
    assert_verified(&bank).await;
}

// ---------------------------------------------------------------------------------------------
// 8. Concurrency
// ---------------------------------------------------------------------------------------------

async fn concurrent_sends_cannot_overdraw(backend: Backend) {
    let bank = bank_on(backend).await;
    let alice = member(&bank, Some("alice")).await;
    let bob = member(&bank, Some("bob")).await;
    bank.set_account_level("test", alice.id(), AccountLevel::Three)
        .await
        .expect("level 3");
    fund(&bank, &alice, 10).await;

    let sends = (0..1_000).map(|_| {
        let bank = bank.clone();
        let req = payment(&alice, bob.by_wallet(), 1);
        tokio::spawn(async move { bank.send_intraledger(req).await })
    });
    let mut codes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut journals = BTreeSet::new();
    for joined in futures_util::future::join_all(sends).await {
        match joined.expect("task") {
            Ok(outcome) => {
                assert!(!outcome.replayed);
                journals.insert(outcome.journal_id);
                *codes.entry("OK").or_default() += 1;
            }
            Err(e) => *codes.entry(e.code().as_str()).or_default() += 1,
        }
    }
    assert_eq!(codes, BTreeMap::from([("OK", 10), ("INSUFFICIENT_BALANCE", 990)]));
    assert_eq!(journals.len(), 10);
    assert_eq!((balance(&bank, &alice).await, balance(&bank, &bob).await), (0, 10));
    assert_eq!(history(&bank, &bob).await.len(), 10);
    let contacts = bank.contacts(bob.id()).await.expect("contacts");
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].transactions_count, 10);
    assert_verified(&bank).await;
}

// ---------------------------------------------------------------------------------------------
// 9. History pages
// ---------------------------------------------------------------------------------------------

/// Seven payments alice → bob of 1..=7 sats; returns (alice, bob, journals oldest first).
async fn seven_payments(bank: &Bank) -> (Member, Member, Vec<JournalId>) {
    let alice = member(bank, Some("alice")).await;
    let bob = member(bank, Some("bob")).await;
    fund(bank, &alice, 100).await;
    let mut journals = Vec::new();
    for amount in 1..=7 {
        let paid = bank
            .send_intraledger(SendRequest {
                memo: Some(format!("p{amount}")),
                ..payment(&alice, bob.by_wallet(), amount)
            })
            .await
            .expect("pay");
        journals.push(paid.journal_id);
    }
    (alice, bob, journals)
}

fn amounts(p: &TransactionPage) -> Vec<i64> {
    p.items.iter().map(|t| t.amount).collect()
}

fn flags(p: &TransactionPage) -> (bool, bool) {
    (p.has_next_page, p.has_previous_page)
}

async fn history_pages_forward_and_backward(backend: Backend) {
    let bank = bank_on(backend).await;
    let (alice, bob, journals) = seven_payments(&bank).await;
    let read = |req: HistoryPageRequest| {
        let bank = bank.clone();
        let account = bob.id();
        async move { bank.history(account, None, &req).await.expect("page") }
    };

    let all = read(page(None, None, None, None)).await;
    assert_eq!(amounts(&all), vec![7, 6, 5, 4, 3, 2, 1], "newest first");
    assert_eq!(flags(&all), (false, false));
    let newest_first: Vec<JournalId> = journals.iter().rev().copied().collect();
    assert_eq!(all.items.iter().map(|t| t.journal_id).collect::<Vec<_>>(), newest_first);
    assert!(all.items.iter().all(|t| t.direction == Direction::Receive));
    assert_eq!(all.items[0].memo.as_deref(), Some("p7"));

    // Forward, three at a time.
    let p1 = read(page(Some(3), None, None, None)).await;
    assert_eq!((amounts(&p1), flags(&p1)), (vec![7, 6, 5], (true, false)));
    let c1 = p1.items.last().expect("item").cursor.clone();
    let p2 = read(page(Some(3), Some(&c1), None, None)).await;
    assert_eq!((amounts(&p2), flags(&p2)), (vec![4, 3, 2], (true, true)));
    let c2 = p2.items.last().expect("item").cursor.clone();
    let p3 = read(page(Some(3), Some(&c2), None, None)).await;
    assert_eq!((amounts(&p3), flags(&p3)), (vec![1], (false, true)));
    let forward: Vec<JournalId> = [&p1, &p2, &p3]
        .iter()
        .flat_map(|p| p.items.iter().map(|t| t.journal_id))
        .collect();
    assert_eq!(forward, newest_first, "the pages cover everything once, in order");
    let c3 = p3.items.last().expect("item").cursor.clone();
    let past_end = read(page(Some(3), Some(&c3), None, None)).await;
    assert_eq!((amounts(&past_end), flags(&past_end)), (vec![], (false, true)));

    // Backward, three at a time, from before the oldest item.
    let oldest = c3;
    let b1 = read(page(None, None, Some(3), Some(&oldest))).await;
    assert_eq!((amounts(&b1), flags(&b1)), (vec![4, 3, 2], (true, true)));
    let d1 = b1.items.first().expect("item").cursor.clone();
    let b2 = read(page(None, None, Some(3), Some(&d1))).await;
    assert_eq!((amounts(&b2), flags(&b2)), (vec![7, 6, 5], (true, false)));
    let d2 = b2.items.first().expect("item").cursor.clone();
    let b3 = read(page(None, None, Some(3), Some(&d2))).await;
    assert_eq!((amounts(&b3), flags(&b3)), (vec![], (true, false)));
    let backward: Vec<JournalId> = [&b2, &b1, &p3]
        .iter()
        .flat_map(|p| p.items.iter().map(|t| t.journal_id))
        .collect();
    assert_eq!(backward, newest_first, "the pages cover everything once, in order");
    // `before` alone uses the default page size.
    let rest = read(page(None, None, None, Some(&oldest))).await;
    assert_eq!((amounts(&rest), flags(&rest)), (vec![7, 6, 5, 4, 3, 2], (true, false)));

    // A page size of zero is an empty page.
    let empty = read(page(Some(0), None, None, None)).await;
    assert!(empty.items.is_empty());

    // The wallet filter: the account's own wallet, or another account's (nothing).
    let own = bank
        .history(bob.id(), Some(&[bob.wallet()]), &page(Some(100), None, None, None))
        .await
        .expect("own wallet");
    assert_eq!(own.items, all.items);
    let foreign = bank
        .history(bob.id(), Some(&[alice.wallet()]), &page(Some(100), None, None, None))
        .await
        .expect("foreign wallet");
    assert!(foreign.items.is_empty(), "another account's wallet leaks: {foreign:?}");
    assert_eq!(flags(&foreign), (false, false));
    let none = bank
        .history(bob.id(), Some(&[]), &page(Some(100), None, None, None))
        .await
        .expect("no wallet");
    assert!(none.items.is_empty());

    // The payer sees seven sends and the faucet.
    let alice_all = history(&bank, &alice).await;
    assert_eq!(
        alice_all.iter().map(|t| t.amount).collect::<Vec<_>>(),
        vec![-7, -6, -5, -4, -3, -2, -1, 100]
    );
}

/// Relay: `last: n` without `before` is the last `n` items of the list, which is newest
/// first, so the three oldest, with older-than-nothing `has_next_page == false` and
/// `has_previous_page == true`.
async fn last_without_before_pages_from_the_oldest_end(backend: Backend) {
    let bank = bank_on(backend).await;
    let (_alice, bob, _) = seven_payments(&bank).await;
    let tail = bank
        .history(bob.id(), None, &page(None, None, Some(3), None))
        .await
        .expect("page");
    // Whatever items come back, the flags must describe them: 7 payments, 3 shown.
    let (next, previous) = flags(&tail);
    let newest_shown = tail.items.first().map(|t| t.amount) == Some(7);
    let oldest_shown = tail.items.last().map(|t| t.amount) == Some(1);
    assert!(
        next != oldest_shown && previous != newest_shown,
        "flags contradict the items: {:?} with has_next_page={next}, has_previous_page={previous}",
        amounts(&tail)
    );
    assert_eq!((amounts(&tail), (next, previous)), (vec![3, 2, 1], (false, true)));
}

async fn history_rejects_bad_page_arguments(backend: Backend) {
    let bank = bank_on(backend).await;
    let (_alice, bob, _) = seven_payments(&bank).await;
    let cases = [
        ("bad after cursor", page(Some(3), Some("abc"), None, None)),
        ("bad before cursor", page(None, None, Some(3), Some("abc"))),
        ("empty cursor", page(Some(3), Some(""), None, None)),
        ("negative first", page(Some(-1), None, None, None)),
        ("negative last", page(None, None, Some(-1), None)),
        ("first and last", page(Some(3), None, Some(3), None)),
    ];
    for (what, req) in cases {
        let err = refused(bank.history(bob.id(), None, &req).await);
        assert_eq!(err.code().as_str(), "INVALID_PAGE", "{what}: {err}");
        assert!(matches!(err, BankError::InvalidPage(_)), "{what}: {err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Events
// ---------------------------------------------------------------------------------------------

async fn events_announce_each_posted_payment_once(backend: Backend) {
    let bank = bank_on(backend).await;
    let alice = member(&bank, None).await;
    let bob = member(&bank, None).await;

    let mut rx = bank.subscribe();
    let funded = bank
        .wallet_fund("test", alice.wallet(), 1_000, None)
        .await
        .expect("fund");
    assert_eq!(
        rx.try_recv().expect("faucet event"),
        WalletEvent {
            account_id: alice.id(),
            wallet_id: alice.wallet(),
            change: WalletChange::Journal(funded.journal_id),
        }
    );
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));

    let request = SendRequest {
        idempotency_key: Some("evt-1".into()),
        ..payment(&alice, bob.by_wallet(), 250)
    };
    let paid = bank.send_intraledger(request.clone()).await.expect("pay");
    let mut got = vec![
        rx.try_recv().expect("first event"),
        rx.try_recv().expect("second event"),
    ];
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    got.sort_by_key(|e| e.wallet_id);
    let mut want = vec![
        WalletEvent {
            account_id: alice.id(),
            wallet_id: alice.wallet(),
            change: WalletChange::Journal(paid.journal_id),
        },
        WalletEvent {
            account_id: bob.id(),
            wallet_id: bob.wallet(),
            change: WalletChange::Journal(paid.journal_id),
        },
    ];
    want.sort_by_key(|e| e.wallet_id);
    assert_eq!(got, want);

    // A replay, and a refusal, publish nothing.
    let replay = bank.send_intraledger(request).await.expect("replay");
    assert!(replay.replayed);
    assert_eq!(replay.journal_id, paid.journal_id);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    let err = refused(bank.send_intraledger(payment(&alice, bob.by_wallet(), 1_000_000)).await);
    assert_eq!(err.code().as_str(), "INSUFFICIENT_BALANCE");
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));

    // A second subscriber sees later events only.
    let mut late = bank.subscribe();
    let next = bank
        .send_intraledger(payment(&bob, alice.by_wallet(), 50))
        .await
        .expect("pay back");
    for receiver in [&mut rx, &mut late] {
        let events = [receiver.try_recv().expect("event"), receiver.try_recv().expect("event")];
        assert!(events
            .iter()
            .all(|e| e.change == WalletChange::Journal(next.journal_id)));
        assert!(matches!(receiver.try_recv(), Err(TryRecvError::Empty)));
    }
}

// ---------------------------------------------------------------------------------------------
// Property: sequences of payments behave like a simple model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Pay {
    from: usize,
    to: usize,
    amount: i64,
    key: Option<u8>,
    by_username: bool,
}

fn pay() -> impl Strategy<Value = Pay> {
    (
        0..3usize,
        0..3usize,
        0..160i64,
        proptest::option::of(0..4u8),
        any::<bool>(),
    )
        .prop_map(|(from, to, amount, key, by_username)| Pay {
            from,
            to,
            amount,
            key,
            by_username,
        })
}

async fn random_payments_match_a_model(backend: Backend) {
    let bank = bank_on(backend).await;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 10,
        ..ProptestConfig::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&proptest::collection::vec(pay(), 1..25), |ops| {
        let bank = bank.clone();
        tokio::task::block_in_place(|| handle.block_on(run_payments(&bank, ops)));
        Ok(())
    });
    result.expect("property holds");
    assert_verified(&bank).await;
}

/// Runs `ops` one by one and checks every answer and every balance against a model.
async fn run_payments(bank: &Bank, ops: Vec<Pay>) {
    let run = NEXT_NUMBER.fetch_add(1, Ordering::Relaxed);
    let mut members = Vec::new();
    for i in 0..3 {
        let m = member(bank, Some(&format!("u{run}x{i}"))).await;
        fund(bank, &m, 100).await;
        members.push(m);
    }
    let mut balances = [100i64; 3];
    // (payer, key) → (payee, amount, journal)
    let mut keys: BTreeMap<(usize, u8), (usize, i64, JournalId)> = BTreeMap::new();
    let mut posted = 0usize;
    for op in ops {
        let (from, to) = (&members[op.from], &members[op.to]);
        let recipient = if op.by_username {
            Recipient::Username(to.user.username.clone().expect("username").to_ascii_uppercase())
        } else {
            to.by_wallet()
        };
        let req = SendRequest {
            idempotency_key: op.key.map(|k| format!("key-{k}")),
            ..payment(from, recipient, op.amount)
        };
        let got = bank.send_intraledger(req).await;
        let prior = op.key.and_then(|k| keys.get(&(op.from, k)).copied());
        let want: Result<Option<JournalId>, &str> = if op.amount == 0 {
            Err("INVALID_AMOUNT")
        } else if let Some((payee, amount, journal)) = prior {
            if (payee, amount) == (op.to, op.amount) {
                Ok(Some(journal))
            } else {
                Err("IDEMPOTENCY_KEY_REUSED")
            }
        } else if op.from == op.to {
            Err("SELF_PAYMENT")
        } else if op.amount > balances[op.from] {
            Err("INSUFFICIENT_BALANCE")
        } else {
            Ok(None)
        };
        match (want, got) {
            (Ok(Some(journal)), Ok(outcome)) => {
                assert!(outcome.replayed, "{op:?}");
                assert_eq!(outcome.journal_id, journal, "{op:?}");
            }
            (Ok(None), Ok(outcome)) => {
                assert!(!outcome.replayed, "{op:?}");
                assert_eq!(outcome.transaction.amount, -op.amount);
                balances[op.from] -= op.amount;
                balances[op.to] += op.amount;
                posted += 1;
                if let Some(k) = op.key {
                    keys.insert((op.from, k), (op.to, op.amount, outcome.journal_id));
                }
            }
            (Err(code), Err(e)) => assert_eq!(e.code().as_str(), code, "{op:?}: {e}"),
            (want, got) => panic!("{op:?}: expected {want:?}, got {got:?}"),
        }
    }
    for (m, want) in members.iter().zip(balances) {
        assert_eq!(balance(bank, m).await, want);
    }
    let lines: usize = {
        let mut n = 0;
        for m in &members {
            n += history(bank, m).await.len();
        }
        n
    };
    assert_eq!(lines, 3 + 2 * posted, "one line per faucet, two per payment");
}

// ---------------------------------------------------------------------------------------------
// Retries after the world changed
// ---------------------------------------------------------------------------------------------

/// The crate promises that "a retried request returns the first answer": a client that lost
/// the response to a successful payment and retries must learn that it succeeded, even if the
/// recipient was locked in between.
async fn retry_after_the_recipient_is_locked_returns_the_first_answer(backend: Backend) {
    let bank = bank_on(backend).await;
    let alice = member(&bank, None).await;
    let bob = member(&bank, None).await;
    fund(&bank, &alice, 1_000).await;
    let request = SendRequest {
        idempotency_key: Some("lost-response".into()),
        ..payment(&alice, bob.by_wallet(), 400)
    };
    let first = bank.send_intraledger(request.clone()).await.expect("pay");
    bank.set_account_status("ops@flash", bob.id(), AccountStatus::Locked, None)
        .await
        .expect("lock");
    let retry = bank.send_intraledger(request).await;
    let retry = retry.expect("the retry reports the payment that was made");
    assert!(retry.replayed);
    assert_eq!(retry.journal_id, first.journal_id);
    assert_eq!((balance(&bank, &alice).await, balance(&bank, &bob).await), (600, 400));
}

/// Issue 14, item 3: an operator's comment is free text under the one rule: a NUL (which
/// PostgreSQL text cannot hold) is `INVALID_INPUT`, and the status does not change.
async fn status_comments_with_nul_are_invalid_input(backend: Backend) {
    let bank = bank_on(backend).await;
    let alice = member(&bank, Some("alice")).await;
    let err = refused(
        bank.set_account_status("ops@flash", alice.id(), AccountStatus::Locked, Some("bad\u{0}comment"))
            .await,
    );
    assert_eq!(err.code().as_str(), "INVALID_INPUT", "{err:?}");
    assert_eq!(
        bank.account(alice.id()).await.expect("account").status,
        AccountStatus::Active
    );
}
