//! Nostr Wallet Connect (NIP-47) on Flash wallets.
//!
//! A user makes a connection (name, wallet, allowed methods, a budget per period, an expiry);
//! its `nostr+walletconnect://` URI carries a fresh client secret that Flash does not keep
//! (only its pubkey). The service listens on this relay for kind-23194 requests addressed to
//! the relay's service key, answers with kind-23195 responses (NIP-44 v2 or NIP-04, as the
//! request was sealed), announces itself with a kind-13194 info event, and sends
//! `payment_received` / `payment_sent` notifications (23197 sealed with NIP-44, 23196 with
//! NIP-04).
//!
//! A payment first reserves its amount plus the bank's fee cap against the connection's
//! budget, with one conditional update in the store (so concurrent requests cannot overspend);
//! the reservation is kept as amount + fee paid, or released if the payment fails, exactly
//! once. A request's event id makes it idempotent: a replay gets the first answer.

use std::sync::Arc;
use std::time::Duration;

use flash_bank::{
    Bank, BankError, HistoryPageRequest, InvoiceCreate, InvoiceFor, LnPayRequest, PaymentStatus, Transaction,
};
use flash_core::calendar::{civil_from_days, days_from_civil};
use flash_core::lightning::Hash32;
use flash_core::text::percent_encode;
use flash_core::{AccountId, WalletId};
use flash_store::{NwcConnectionRecord, Reservation, StoreError};
use nostr::nips::nip47::{
    ErrorCode, GetBalanceResponse, GetInfoResponse, ListTransactionsRequest, LookupInvoiceRequest,
    LookupInvoiceResponse, MakeInvoiceRequest, MakeInvoiceResponse, Method, NIP47Error, Notification,
    NotificationResult, NotificationType, PayInvoiceRequest, PayInvoiceResponse, PaymentNotification, Request,
    RequestParams, Response, ResponseResult, TransactionState, TransactionType,
};
use nostr::{Event, EventBuilder, JsonUtil, Keys, Kind, PublicKey, Tag, TagKind, Timestamp};
use tokio::sync::{broadcast, Semaphore};

use crate::cipher::{self, Cipher};
use crate::relay::{next_broadcast, Relay, Sender};

/// The methods a connection may be given.
pub const METHODS: &[&str] = &[
    "pay_invoice",
    "make_invoice",
    "lookup_invoice",
    "list_transactions",
    "get_balance",
    "get_info",
];
/// The notifications the service sends.
pub const NOTIFICATIONS: &[&str] = &["payment_received", "payment_sent"];
/// Budget periods.
pub const PERIODS: &[&str] = &["daily", "weekly", "monthly", "yearly", "never"];
/// Longest connection name, characters.
const NAME_MAX_CHARS: usize = 100;
/// Requests answered at once; more wait.
const CONCURRENT_REQUESTS: usize = 256;
/// How long a pay_invoice waits for a payment still in flight before answering.
const PAY_WAIT: Duration = Duration::from_secs(60);
/// How often open budget reservations are looked at (payments answered while in flight).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// A reservation older than this is finished by the sweep as its payment stands; younger
/// ones may still be being paid and answered.
const SWEEP_AFTER: Duration = Duration::from_secs(5 * 60);
/// Reservations the sweep finishes per pass.
const SWEEP_BATCH: i64 = 500;
/// Most transactions one `list_transactions` returns.
const LIST_MAX: u64 = 200;
/// Most unrevoked connections one account may have.
const CONNECTIONS_MAX: usize = 50;
/// The kind NIP-44 notifications are sent with (NIP-04 ones use 23196).
const NOTIFICATION_NIP44: u16 = 23197;

/// A wallet-connect operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NwcError {
    /// The request is not acceptable.
    #[error("{0}")]
    InvalidInput(String),
    /// No such connection of this account.
    #[error("no such wallet connection")]
    NotFound,
    /// The bank refused.
    #[error(transparent)]
    Bank(#[from] BankError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NwcError {
    /// The stable code the API shows.
    pub fn code(&self) -> flash_core::ErrorCode {
        match self {
            NwcError::InvalidInput(_) => flash_core::ErrorCode::InvalidInput,
            NwcError::NotFound => flash_core::ErrorCode::NotFound,
            NwcError::Bank(e) => e.code(),
            NwcError::Store(_) => flash_core::ErrorCode::InternalError,
        }
    }
}

/// What a new connection may do.
#[derive(Clone, Debug, Default)]
pub struct NewConnection {
    /// What the user calls it.
    pub name: String,
    /// The wallet it uses; the account's default when none.
    pub wallet_id: Option<WalletId>,
    /// The methods it may call; all of [`METHODS`] when none.
    pub methods: Option<Vec<String>>,
    /// Most satoshis (amounts and fees) per period; none for no budget.
    pub budget_sats: Option<i64>,
    /// One of [`PERIODS`]; `monthly` when none.
    pub budget_period: Option<String>,
    /// When it stops working (Unix ms).
    pub expires_at_ms: Option<i64>,
}

/// The wallet-connect service. Cheap to clone.
#[derive(Clone)]
pub struct WalletConnect {
    inner: Arc<Inner>,
}

struct Inner {
    bank: Bank,
    relay: Relay,
    keys: Keys,
    lud16_domain: Option<String>,
    busy: Arc<Semaphore>,
}

/// How a payment request ended without a payment.
enum PayEnd {
    /// Refused or failed, with this error (any reservation given back).
    Refused(NIP47Error),
    /// Answered before: that answer.
    Replayed(String),
}

/// What a request gets back.
enum Reply {
    /// A fresh answer.
    Fresh(Result<ResponseResult, NIP47Error>),
    /// The answer given the first time this request came (a replay).
    Stored(String),
    /// Nothing: the first copy of this request is still being answered.
    Nothing,
}

fn nip47_error(code: ErrorCode, message: impl Into<String>) -> NIP47Error {
    NIP47Error {
        code,
        message: message.into(),
    }
}

fn bank_error(e: BankError) -> NIP47Error {
    match e.code() {
        flash_core::ErrorCode::InsufficientBalance => nip47_error(ErrorCode::InsufficientBalance, e.to_string()),
        flash_core::ErrorCode::InternalError => nip47_error(ErrorCode::Internal, "internal error"),
        _ => nip47_error(ErrorCode::Other, e.to_string()),
    }
}

/// The start (Unix ms, UTC) of the budget period `now_ms` falls in; `never` counts from the
/// connection's creation.
pub fn period_start(period: &str, created_at_ms: i64, now_ms: i64) -> i64 {
    const DAY_MS: i64 = 86_400_000;
    let days = now_ms.div_euclid(DAY_MS);
    match period {
        "daily" => days * DAY_MS,
        // 1970-01-01 was a Thursday; weeks start on Monday.
        "weekly" => (days - (days + 3).rem_euclid(7)) * DAY_MS,
        "monthly" => {
            let (y, m, _) = civil_from_days(days);
            days_from_civil(y, m, 1) * DAY_MS
        }
        "yearly" => days_from_civil(civil_from_days(days).0, 1, 1) * DAY_MS,
        _ => created_at_ms,
    }
}

fn secs(ms: i64) -> Timestamp {
    Timestamp::from(u64::try_from(ms / 1_000).unwrap_or(0))
}

fn msat(sats: i64) -> u64 {
    u64::try_from(sats.saturating_abs()).unwrap_or(0).saturating_mul(1_000)
}

impl WalletConnect {
    /// Starts the service on `relay` (whose service key it answers as): announces it
    /// (kind 13194), then answers requests and sends notifications while the process runs.
    /// `lud16_domain` puts the user's Lightning address in the URIs it makes.
    pub async fn start(bank: Bank, relay: Relay, lud16_domain: Option<String>) -> WalletConnect {
        let nwc = WalletConnect {
            inner: Arc::new(Inner {
                keys: relay.service_keys().clone(),
                bank,
                relay,
                lud16_domain,
                busy: Arc::new(Semaphore::new(CONCURRENT_REQUESTS)),
            }),
        };
        nwc.announce().await;
        tokio::spawn(nwc.clone().serve(nwc.inner.relay.live()));
        tokio::spawn(nwc.clone().notify(nwc.inner.bank.subscribe()));
        tokio::spawn(nwc.clone().sweep());
        nwc
    }

    /// Finishes open budget reservations every [`SWEEP_EVERY`], from start-up on.
    async fn sweep(self) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = self.finish_open_payments().await {
                tracing::warn!(error = %e, "wallet connect: finishing open budget reservations failed");
            }
        }
    }

    /// Finishes the budget reservations of payments older than a few minutes that were
    /// answered while still in flight, or cut off by a restart: amount and fee stay taken once
    /// the payment succeeded; everything goes back once it failed, or if no payment was ever
    /// made. Each happens once, by the request's state. Returns how many were finished.
    pub async fn finish_open_payments(&self) -> Result<usize, flash_bank::BankError> {
        let bank = &self.inner.bank;
        let store = self.inner.relay.store();
        let age = i64::try_from(SWEEP_AFTER.as_millis()).unwrap_or(i64::MAX);
        let open = store
            .nwc_unfinished(store.now_ms().saturating_sub(age), SWEEP_BATCH)
            .await?;
        let mut finished = 0;
        for request in open {
            let key = payment_key(&request.event_id);
            let tx = match bank
                .transaction_by_key(request.account_id, request.wallet_id, &key)
                .await
            {
                Ok(tx) => tx,
                Err(e) => {
                    tracing::warn!(error = %e, request = %request.event_id, "wallet connect: cannot read a payment");
                    continue;
                }
            };
            match tx.map(|tx| (tx.status, tx)) {
                Some((flash_bank::TxStatus::Pending, _)) => continue,
                Some((flash_bank::TxStatus::Success, tx)) => {
                    self.spend(&request.event_id, &tx).await;
                }
                Some((flash_bank::TxStatus::Failure, _)) => {
                    let failed = nip47_error(ErrorCode::PaymentFailed, "the payment failed");
                    self.give_back(&request.event_id, &failed).await;
                }
                None => {
                    let never = nip47_error(ErrorCode::Internal, "the payment was not made; try again");
                    self.give_back(&request.event_id, &never).await;
                }
            }
            finished += 1;
        }
        Ok(finished)
    }

    /// The service's pubkey (the URI's).
    pub fn pubkey(&self) -> PublicKey {
        self.inner.keys.public_key()
    }

    async fn announce(&self) {
        let info = EventBuilder::new(Kind::WalletConnectInfo, METHODS.join(" ") + " notifications").tags([
            Tag::custom(
                TagKind::custom("encryption"),
                [format!("{} {}", Cipher::Nip44.name(), Cipher::Nip04.name())],
            ),
            Tag::custom(TagKind::custom("notifications"), [NOTIFICATIONS.join(" ")]),
        ]);
        match info.sign_with_keys(&self.inner.keys) {
            Ok(event) => {
                if let Err(e) = self.inner.relay.publish(event, &Sender::default()).await {
                    tracing::warn!(reason = %e, "wallet connect: the info event was refused");
                }
            }
            Err(e) => tracing::error!(error = %e, "wallet connect: cannot sign the info event"),
        }
    }

    /// Makes a connection for `account`; returns it and its URI (shown once: the secret is
    /// not kept).
    pub async fn create(
        &self,
        account: AccountId,
        new: NewConnection,
    ) -> Result<(NwcConnectionRecord, String), NwcError> {
        let bank = &self.inner.bank;
        let name = flash_core::text::label(&new.name, NAME_MAX_CHARS)
            .map_err(|e| NwcError::InvalidInput(format!("the connection name {e}")))?
            .to_string();
        let methods = new
            .methods
            .unwrap_or_else(|| METHODS.iter().map(|m| m.to_string()).collect());
        if methods.is_empty() || methods.iter().any(|m| !METHODS.contains(&m.as_str())) {
            return Err(NwcError::InvalidInput(format!(
                "methods are some of: {}",
                METHODS.join(", ")
            )));
        }
        let period = new.budget_period.unwrap_or_else(|| "monthly".into());
        if !PERIODS.contains(&period.as_str()) {
            return Err(NwcError::InvalidInput(format!(
                "budget periods are: {}",
                PERIODS.join(", ")
            )));
        }
        if new.budget_sats.is_some_and(|b| b < 0) {
            return Err(NwcError::InvalidInput("a budget is not negative".into()));
        }
        let now = self.inner.relay.store().now_ms();
        if new.expires_at_ms.is_some_and(|at| at <= now) {
            return Err(NwcError::InvalidInput("the expiry is in the past".into()));
        }
        let live = self.inner.relay.store().nwc_of_account(account).await?;
        if live.iter().filter(|c| c.revoked_at.is_none()).count() >= CONNECTIONS_MAX {
            return Err(NwcError::InvalidInput(format!(
                "at most {CONNECTIONS_MAX} connections: revoke one first"
            )));
        }
        let account_record = bank.account(account).await?;
        let wallet_id = match new.wallet_id {
            Some(w) => bank.own_wallet(account, w).await?.id,
            None => account_record.default_wallet_id,
        };
        let client = Keys::generate();
        let record = NwcConnectionRecord {
            id: uuid::Uuid::now_v7().to_string(),
            account_id: account,
            wallet_id,
            client_pubkey: client.public_key().to_hex(),
            name,
            methods,
            budget_sats: new.budget_sats,
            budget_period: period.clone(),
            period_start: period_start(&period, now, now),
            spent_sats: 0,
            expires_at: new.expires_at_ms,
            created_at: now,
            revoked_at: None,
            last_used_at: None,
        };
        self.inner.relay.store().nwc_create(&record).await?;
        let mut uri = format!(
            "nostr+walletconnect://{}?secret={}",
            self.pubkey().to_hex(),
            client.secret_key().to_secret_hex()
        );
        if let Some(relay) = self.inner.relay.url() {
            uri.push_str(&format!("&relay={}", percent_encode(relay.as_str())));
        }
        let user = bank.user(account_record.user_id).await?;
        if let (Some(name), Some(domain)) = (user.username, &self.inner.lud16_domain) {
            uri.push_str(&format!("&lud16={}", percent_encode(&format!("{name}@{domain}"))));
        }
        Ok((record, uri))
    }

    /// An account's connections, newest first.
    pub async fn list(&self, account: AccountId) -> Result<Vec<NwcConnectionRecord>, NwcError> {
        Ok(self.inner.relay.store().nwc_of_account(account).await?)
    }

    /// Revokes one of an account's connections: its requests are refused from now on.
    pub async fn revoke(&self, account: AccountId, id: &str) -> Result<(), NwcError> {
        if self.inner.relay.store().nwc_revoke(account, id).await? {
            Ok(())
        } else {
            Err(NwcError::NotFound)
        }
    }

    /// Answers requests addressed to the service as they reach the relay.
    async fn serve(self, mut live: broadcast::Receiver<Arc<crate::relay::Live>>) {
        let me = self.pubkey();
        while let Some(event) = next_broadcast(&mut live, "wallet connect: requests").await {
            if event.event.kind != Kind::WalletConnectRequest || !event.event.tags.public_keys().any(|pk| *pk == me) {
                continue;
            }
            let Ok(permit) = self.inner.busy.clone().acquire_owned().await else {
                return;
            };
            let service = self.clone();
            tokio::spawn(async move {
                service.answer(&event.event).await;
                drop(permit);
            });
        }
    }

    /// Answers one request (or nothing, when it cannot be read or has expired).
    async fn answer(&self, request: &Event) {
        let tag = request
            .tags
            .find(TagKind::custom("encryption"))
            .and_then(|t| t.content())
            .map(str::to_string);
        let Some(cipher) = Cipher::from_tag(tag.as_deref()) else {
            // Unreadable to us, so the answer is sealed the old way any client reads.
            let error = nip47_error(ErrorCode::Other, "UNSUPPORTED_ENCRYPTION: use nip44_v2 or nip04");
            self.reply(request, Cipher::Nip04, Method::GetInfo, Err(error)).await;
            return;
        };
        if request
            .tags
            .expiration()
            .is_some_and(|t| t.as_secs() <= Timestamp::now().as_secs())
        {
            return;
        }
        let Ok(plain) = cipher::open(cipher, self.inner.keys.secret_key(), &request.pubkey, &request.content) else {
            tracing::debug!(from = %request.pubkey, "wallet connect: a request did not open");
            return;
        };
        let Ok(req) = Request::from_json(&plain) else {
            let error = nip47_error(ErrorCode::Other, "unreadable request");
            self.reply(request, cipher, Method::GetInfo, Err(error)).await;
            return;
        };
        let reply = match self.connection(request, req.method).await {
            Ok(conn) => self.dispatch(&conn, request, req.params).await,
            Err(e) => Reply::Fresh(Err(e)),
        };
        match reply {
            Reply::Fresh(result) => self.reply(request, cipher, req.method, result).await,
            Reply::Stored(json) => self.send(request, cipher, json).await,
            Reply::Nothing => {}
        }
    }

    /// The live connection a request is signed for, allowed to call `method`.
    async fn connection(&self, request: &Event, method: Method) -> Result<NwcConnectionRecord, NIP47Error> {
        let store = self.inner.relay.store();
        let conn = store
            .nwc_by_client(&request.pubkey.to_hex())
            .await
            .map_err(|_| nip47_error(ErrorCode::Internal, "internal error"))?
            .ok_or_else(|| nip47_error(ErrorCode::Unauthorized, "no wallet is connected to this key"))?;
        if conn.revoked_at.is_some() {
            return Err(nip47_error(ErrorCode::Unauthorized, "this connection was revoked"));
        }
        if conn.expires_at.is_some_and(|at| at <= store.now_ms()) {
            return Err(nip47_error(ErrorCode::Unauthorized, "this connection has expired"));
        }
        if !conn.methods.iter().any(|m| m == method.as_str()) {
            return Err(nip47_error(
                ErrorCode::Restricted,
                format!("this connection may not call {}", method.as_str()),
            ));
        }
        let _ = store.nwc_touch(&conn.id).await;
        Ok(conn)
    }

    async fn dispatch(&self, conn: &NwcConnectionRecord, request: &Event, params: RequestParams) -> Reply {
        let result = match params {
            RequestParams::PayInvoice(p) => return self.pay_invoice(conn, request, p).await,
            RequestParams::MakeInvoice(p) => self.make_invoice(conn, p).await.map(ResponseResult::MakeInvoice),
            RequestParams::LookupInvoice(p) => self.lookup_invoice(conn, p).await.map(ResponseResult::LookupInvoice),
            RequestParams::ListTransactions(p) => self
                .list_transactions(conn, p)
                .await
                .map(ResponseResult::ListTransactions),
            RequestParams::GetBalance => self.get_balance(conn).await.map(ResponseResult::GetBalance),
            RequestParams::GetInfo => self.get_info(conn).await.map(ResponseResult::GetInfo),
            _ => Err(nip47_error(
                ErrorCode::NotImplemented,
                "this wallet does not offer that method",
            )),
        };
        Reply::Fresh(result)
    }

    async fn pay_invoice(&self, conn: &NwcConnectionRecord, request: &Event, p: PayInvoiceRequest) -> Reply {
        match self.pay(conn, request, p).await {
            Ok(Some(paid)) => Reply::Fresh(Ok(ResponseResult::PayInvoice(paid))),
            Ok(None) => Reply::Nothing,
            Err(PayEnd::Refused(e)) => Reply::Fresh(Err(e)),
            Err(PayEnd::Replayed(json)) => Reply::Stored(json),
        }
    }

    /// Pays for a connection within its budget: the payment, or `None` when this request is
    /// already being paid.
    async fn pay(
        &self,
        conn: &NwcConnectionRecord,
        request: &Event,
        p: PayInvoiceRequest,
    ) -> Result<Option<PayInvoiceResponse>, PayEnd> {
        let bank = &self.inner.bank;
        let store = self.inner.relay.store();
        let refuse = |m: String| PayEnd::Refused(nip47_error(ErrorCode::Other, m));
        let invoice_msat =
            crate::zaps::invoice_msat(&p.invoice).map_err(|e| refuse(format!("invalid invoice: {e}")))?;
        let (msat_amount, amount_for_bank) = match (invoice_msat, p.amount) {
            (Some(m), _) => (m, false),
            (None, Some(m)) => (m, true),
            (None, None) => return Err(refuse("this invoice has no amount: give one".into())),
        };
        if !msat_amount.is_multiple_of(1_000) {
            return Err(refuse("amounts are whole satoshis".into()));
        }
        let sats = i64::try_from(msat_amount / 1_000).map_err(|_| refuse("amount too large".into()))?;
        let fee_cap = bank.ln_fee_cap(sats).map_err(|e| PayEnd::Refused(bank_error(e)))?;
        let reserve = sats.saturating_add(fee_cap);
        let now = store.now_ms();
        let event_id = request.id.to_hex();
        let period = period_start(&conn.budget_period, conn.created_at, now);
        match store
            .nwc_reserve(&conn.id, &event_id, "pay_invoice", reserve, period)
            .await
            .map_err(|_| PayEnd::Refused(nip47_error(ErrorCode::Internal, "internal error")))?
        {
            Reservation::Reserved => {}
            Reservation::Refused => {
                return Err(PayEnd::Refused(nip47_error(
                    ErrorCode::QuotaExceeded,
                    "this payment would exceed the connection's budget",
                )))
            }
            Reservation::Replayed(Some(json)) => return Err(PayEnd::Replayed(json)),
            Reservation::Replayed(None) => return Ok(None),
        }
        let outcome = bank
            .ln_pay(LnPayRequest {
                account: conn.account_id,
                wallet_id: conn.wallet_id,
                payment_request: p.invoice.clone(),
                amount: amount_for_bank.then_some(sats),
                memo: None,
                idempotency_key: Some(payment_key(&event_id)),
            })
            .await;
        let paid = match outcome {
            Ok(o) if o.status == PaymentStatus::Success => o.transaction,
            Ok(o) if o.status == PaymentStatus::Pending => self.settled(conn, o.transaction).await,
            Ok(o) if o.status == PaymentStatus::AlreadyPaid => {
                return self
                    .release(
                        &event_id,
                        nip47_error(ErrorCode::PaymentFailed, "this invoice was paid before"),
                    )
                    .await
            }
            Ok(o) => {
                let why = o.failure.unwrap_or_else(|| "the payment failed".into());
                return self
                    .release(&event_id, nip47_error(ErrorCode::PaymentFailed, why))
                    .await;
            }
            Err(e) => return self.release(&event_id, bank_error(e)).await,
        };
        match paid {
            Some(tx) if tx.status == flash_bank::TxStatus::Success => Ok(Some(self.spend(&event_id, &tx).await)),
            Some(tx) if tx.status == flash_bank::TxStatus::Failure => {
                self.release(&event_id, nip47_error(ErrorCode::PaymentFailed, "the payment failed"))
                    .await
            }
            // Answered now; the sweep finishes the reservation once the payment ends.
            _ => Err(PayEnd::Refused(nip47_error(
                ErrorCode::Other,
                "the payment is still in flight; look it up later",
            ))),
        }
    }

    /// Keeps a paid payment's amount and fee taken from the budget (the rest of the
    /// reservation goes back) and records the answer replays get; the answer.
    async fn spend(&self, event_id: &str, tx: &Transaction) -> PayInvoiceResponse {
        let bank = &self.inner.bank;
        let details = match &tx.payment_hash {
            Some(hash) => bank.ln_details(tx.journal_id, hash).await.unwrap_or_default(),
            None => Default::default(),
        };
        let response = PayInvoiceResponse {
            preimage: details.preimage.unwrap_or_default(),
            fees_paid: Some(msat(tx.fee)),
        };
        let answer = Response {
            result_type: Method::PayInvoice,
            error: None,
            result: Some(ResponseResult::PayInvoice(response.clone())),
        };
        let json = serde_json::to_string(&answer).unwrap_or_default();
        // A send's amount is the wallet's change, fee included.
        let spent = tx.amount.saturating_abs();
        if let Err(e) = self.inner.relay.store().nwc_spend(event_id, spent, &json).await {
            tracing::error!(error = %e, request = %event_id, "wallet connect: could not settle a budget reservation");
        }
        response
    }

    /// Waits (a while) for a payment in flight to end; its transaction as it last stood.
    async fn settled(&self, conn: &NwcConnectionRecord, tx: Option<Transaction>) -> Option<Transaction> {
        let mut tx = tx?;
        let deadline = tokio::time::Instant::now() + PAY_WAIT;
        while tx.status == flash_bank::TxStatus::Pending && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if let Ok(now) = self.inner.bank.transaction(conn.wallet_id, tx.journal_id).await {
                tx = now;
            }
        }
        Some(tx)
    }

    /// Gives a failed payment's reservation back, and answers with `error`.
    async fn release<T>(&self, event_id: &str, error: NIP47Error) -> Result<T, PayEnd> {
        self.give_back(event_id, &error).await;
        Err(PayEnd::Refused(error))
    }

    /// Gives a reservation back whole, recording `error` as the answer replays get.
    async fn give_back(&self, event_id: &str, error: &NIP47Error) {
        let answer = Response {
            result_type: Method::PayInvoice,
            error: Some(error.clone()),
            result: None,
        };
        let json = serde_json::to_string(&answer).unwrap_or_default();
        if let Err(e) = self.inner.relay.store().nwc_release(event_id, &json).await {
            tracing::error!(error = %e, request = %event_id, "wallet connect: could not release a budget reservation");
        }
    }

    async fn make_invoice(
        &self,
        conn: &NwcConnectionRecord,
        p: MakeInvoiceRequest,
    ) -> Result<MakeInvoiceResponse, NIP47Error> {
        if p.amount == 0 || !p.amount.is_multiple_of(1_000) {
            return Err(nip47_error(
                ErrorCode::Other,
                "amounts are whole satoshis, more than zero",
            ));
        }
        let description_hash = match &p.description_hash {
            Some(h) => Some(
                h.parse::<Hash32>()
                    .map_err(|_| nip47_error(ErrorCode::Other, "description_hash is 64 hex characters"))?,
            ),
            None => None,
        };
        let invoice = self
            .inner
            .bank
            .ln_invoice_create(
                InvoiceFor::Owner(conn.account_id),
                InvoiceCreate {
                    wallet_id: conn.wallet_id,
                    amount: Some(i64::try_from(p.amount / 1_000).unwrap_or(i64::MAX)),
                    memo: if description_hash.is_some() {
                        None
                    } else {
                        p.description.clone()
                    },
                    description_hash,
                    expires_in_mins: p.expiry.map(|s| i64::try_from(s.div_ceil(60)).unwrap_or(i64::MAX)),
                },
            )
            .await
            .map_err(bank_error)?;
        Ok(MakeInvoiceResponse {
            invoice: invoice.payment_request,
            payment_hash: Some(invoice.payment_hash.to_string()),
            description: p.description,
            description_hash: p.description_hash,
            preimage: None,
            amount: Some(p.amount),
            created_at: Some(secs(invoice.created_at_ms)),
            expires_at: Some(secs(invoice.expires_at_ms)),
        })
    }

    async fn lookup_invoice(
        &self,
        conn: &NwcConnectionRecord,
        p: LookupInvoiceRequest,
    ) -> Result<LookupInvoiceResponse, NIP47Error> {
        let hash = match (&p.payment_hash, &p.invoice) {
            (Some(h), _) => h.clone(),
            (None, Some(invoice)) => crate::zaps::invoice_hash(invoice)
                .map_err(|e| nip47_error(ErrorCode::Other, format!("invalid invoice: {e}")))?,
            (None, None) => return Err(nip47_error(ErrorCode::Other, "give a payment_hash or an invoice")),
        };
        let not_found = || nip47_error(ErrorCode::NotFound, "no such invoice or payment in this wallet");
        // An invoice of this wallet: one not paid yet has no transaction, so it is answered
        // without reading the history (apps poll this while they wait for a payment).
        let own = match hash.parse::<Hash32>() {
            Ok(parsed) => self
                .inner
                .bank
                .ln_invoice_by_hash(parsed)
                .await
                .ok()
                .filter(|i| i.wallet_id == conn.wallet_id),
            Err(_) => None,
        };
        if own.as_ref().is_none_or(|i| i.status == flash_bank::InvoiceStatus::Paid) {
            // A payment this wallet made or received, by its hash, among its recent history.
            let page = self
                .inner
                .bank
                .history(
                    conn.account_id,
                    Some(&[conn.wallet_id]),
                    &HistoryPageRequest {
                        first: Some(1_000),
                        ..HistoryPageRequest::default()
                    },
                )
                .await
                .map_err(bank_error)?;
            if let Some(tx) = page
                .items
                .into_iter()
                .map(|p| p.transaction)
                .find(|t| t.payment_hash.as_deref() == Some(hash.as_str()))
            {
                return Ok(self.describe(&tx).await);
            }
        }
        let invoice = own.ok_or_else(not_found)?;
        Ok(LookupInvoiceResponse {
            transaction_type: Some(TransactionType::Incoming),
            state: Some(match invoice.status {
                flash_bank::InvoiceStatus::Expired => TransactionState::Expired,
                flash_bank::InvoiceStatus::Paid => TransactionState::Settled,
                _ => TransactionState::Pending,
            }),
            invoice: Some(invoice.payment_request),
            description: None,
            description_hash: None,
            preimage: None,
            payment_hash: hash,
            amount: invoice.amount.map_or(0, msat),
            fees_paid: 0,
            created_at: secs(invoice.created_at_ms),
            expires_at: Some(secs(invoice.expires_at_ms)),
            settled_at: None,
            metadata: None,
        })
    }

    /// A wallet transaction in NIP-47 terms.
    async fn describe(&self, tx: &Transaction) -> LookupInvoiceResponse {
        let details = match &tx.payment_hash {
            Some(hash) => self
                .inner
                .bank
                .ln_details(tx.journal_id, hash)
                .await
                .unwrap_or_default(),
            None => Default::default(),
        };
        let outgoing = tx.direction == flash_bank::Direction::Send;
        let state = match tx.status {
            flash_bank::TxStatus::Success => TransactionState::Settled,
            flash_bank::TxStatus::Pending => TransactionState::Pending,
            flash_bank::TxStatus::Failure => TransactionState::Failed,
        };
        LookupInvoiceResponse {
            transaction_type: Some(if outgoing {
                TransactionType::Outgoing
            } else {
                TransactionType::Incoming
            }),
            state: Some(state),
            invoice: details.payment_request,
            description: tx.memo.clone(),
            description_hash: None,
            preimage: details.preimage,
            payment_hash: tx.payment_hash.clone().unwrap_or_default(),
            amount: msat(tx.amount.saturating_abs() - if outgoing { tx.fee.abs() } else { 0 }),
            fees_paid: msat(tx.fee),
            created_at: secs(tx.created_at_ms),
            expires_at: None,
            settled_at: (state == TransactionState::Settled).then(|| secs(tx.created_at_ms)),
            metadata: None,
        }
    }

    async fn list_transactions(
        &self,
        conn: &NwcConnectionRecord,
        p: ListTransactionsRequest,
    ) -> Result<Vec<LookupInvoiceResponse>, NIP47Error> {
        let limit = p.limit.unwrap_or(LIST_MAX).min(LIST_MAX);
        let offset = p.offset.unwrap_or(0);
        let wanted = usize::try_from(limit.saturating_add(offset)).unwrap_or(usize::MAX);
        let page = self
            .inner
            .bank
            .history(
                conn.account_id,
                Some(&[conn.wallet_id]),
                &HistoryPageRequest {
                    first: Some(i32::try_from(wanted.saturating_mul(2).min(2_000)).unwrap_or(2_000)),
                    ..HistoryPageRequest::default()
                },
            )
            .await
            .map_err(bank_error)?;
        let from = p.from.map(|t| t.as_secs());
        let until = p.until.map(|t| t.as_secs());
        let mut out = vec![];
        for item in page.items {
            let tx = item.transaction;
            let at = u64::try_from(tx.created_at_ms / 1_000).unwrap_or(0);
            let kind_ok = match p.transaction_type {
                Some(TransactionType::Incoming) => tx.direction == flash_bank::Direction::Receive,
                Some(TransactionType::Outgoing) => tx.direction == flash_bank::Direction::Send,
                None => true,
            };
            let unpaid_ok = p.unpaid.unwrap_or(false) || tx.status != flash_bank::TxStatus::Pending;
            if kind_ok && unpaid_ok && from.is_none_or(|f| at >= f) && until.is_none_or(|u| at <= u) {
                out.push(self.describe(&tx).await);
            }
        }
        Ok(out
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect())
    }

    async fn get_balance(&self, conn: &NwcConnectionRecord) -> Result<GetBalanceResponse, NIP47Error> {
        let wallets = self.inner.bank.wallets(conn.account_id).await.map_err(bank_error)?;
        let balance = wallets
            .iter()
            .find(|w| w.wallet.id == conn.wallet_id)
            .map_or(0, |w| w.balance);
        Ok(GetBalanceResponse { balance: msat(balance) })
    }

    async fn get_info(&self, conn: &NwcConnectionRecord) -> Result<GetInfoResponse, NIP47Error> {
        let node = match self.inner.bank.lightning_node() {
            Some(node) => node.node_info().await.ok(),
            None => None,
        };
        let network = self.inner.bank.config().network.as_str();
        Ok(GetInfoResponse {
            alias: Some(node.as_ref().map_or_else(|| "Flash".to_string(), |n| n.alias.clone())),
            color: None,
            pubkey: node.as_ref().map(|n| n.pubkey.clone()),
            network: Some(network.to_string()),
            block_height: node.as_ref().map(|n| n.block_height),
            block_hash: None,
            methods: conn.methods.iter().filter_map(|m| method(m)).collect(),
            notifications: NOTIFICATIONS.iter().map(|n| n.to_string()).collect(),
        })
    }

    /// Seals and publishes an answer to `request`.
    async fn reply(&self, request: &Event, cipher: Cipher, method: Method, result: Result<ResponseResult, NIP47Error>) {
        let (result, error) = match result {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        let response = Response {
            result_type: method,
            error,
            result,
        };
        let json = serde_json::to_string(&response).unwrap_or_default();
        self.send(request, cipher, json).await;
    }

    /// Seals `json` for the requester and publishes it as the response to `request`.
    async fn send(&self, request: &Event, cipher: Cipher, json: String) {
        let sealed = match cipher::seal(cipher, self.inner.keys.secret_key(), &request.pubkey, &json) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "wallet connect: cannot seal a response");
                return;
            }
        };
        let event = EventBuilder::new(Kind::WalletConnectResponse, sealed)
            .tags([Tag::public_key(request.pubkey), Tag::event(request.id)])
            .sign_with_keys(&self.inner.keys);
        match event {
            Ok(event) => {
                if let Err(e) = self.inner.relay.publish(event, &Sender::default()).await {
                    tracing::warn!(reason = %e, "wallet connect: a response was refused");
                }
            }
            Err(e) => tracing::error!(error = %e, "wallet connect: cannot sign a response"),
        }
    }

    /// Sends payment notifications to the connections of wallets whose Lightning payments
    /// settle.
    async fn notify(self, mut events: broadcast::Receiver<flash_bank::WalletEvent>) {
        while let Some(event) = next_broadcast(&mut events, "wallet connect: wallet events").await {
            let flash_bank::WalletChange::Journal(journal) = event.change else {
                continue;
            };
            let store = self.inner.relay.store();
            let conns = match store.nwc_of_wallet(event.wallet_id, store.now_ms()).await {
                Ok(c) if !c.is_empty() => c,
                _ => continue,
            };
            let Ok(tx) = self.inner.bank.transaction(event.wallet_id, journal).await else {
                continue;
            };
            if tx.status != flash_bank::TxStatus::Success || tx.payment_hash.is_none() {
                continue;
            }
            let d = self.describe(&tx).await;
            let (kind, result) = if tx.direction == flash_bank::Direction::Send {
                (
                    NotificationType::PaymentSent,
                    NotificationResult::PaymentSent as fn(_) -> _,
                )
            } else {
                (
                    NotificationType::PaymentReceived,
                    NotificationResult::PaymentReceived as fn(_) -> _,
                )
            };
            let note = Notification {
                notification_type: kind,
                notification: result(PaymentNotification {
                    transaction_type: d.transaction_type,
                    state: d.state,
                    invoice: d.invoice.clone().unwrap_or_default(),
                    description: d.description.clone(),
                    description_hash: None,
                    preimage: d.preimage.clone().unwrap_or_default(),
                    payment_hash: d.payment_hash.clone(),
                    amount: d.amount,
                    fees_paid: d.fees_paid,
                    created_at: d.created_at,
                    expires_at: None,
                    settled_at: d.settled_at.unwrap_or(d.created_at),
                    metadata: None,
                }),
            };
            let json = match serde_json::to_string(&note) {
                Ok(j) => j,
                Err(_) => continue,
            };
            for conn in conns {
                let Ok(client) = PublicKey::from_hex(&conn.client_pubkey) else {
                    continue;
                };
                for (cipher, kind) in [
                    (Cipher::Nip44, Kind::Custom(NOTIFICATION_NIP44)),
                    (Cipher::Nip04, Kind::WalletConnectNotification),
                ] {
                    self.send_notification(client, cipher, kind, &json).await;
                }
            }
        }
    }

    async fn send_notification(&self, client: PublicKey, cipher: Cipher, kind: Kind, json: &str) {
        let Ok(sealed) = cipher::seal(cipher, self.inner.keys.secret_key(), &client, json) else {
            return;
        };
        if let Ok(event) = EventBuilder::new(kind, sealed)
            .tag(Tag::public_key(client))
            .sign_with_keys(&self.inner.keys)
        {
            if let Err(e) = self.inner.relay.publish(event, &Sender::default()).await {
                tracing::warn!(reason = %e, "wallet connect: a notification was refused");
            }
        }
    }
}

/// The idempotency key of the payment a `pay_invoice` request makes.
fn payment_key(event_id: &str) -> String {
    format!("nwc:{event_id}")
}

fn method(name: &str) -> Option<Method> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}
