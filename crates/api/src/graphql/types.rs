//! GraphQL scalars, enums and objects, named and shaped as in the Galoy/Blink public schema.

use async_graphql::{
    Context, Enum, InputValueError, InputValueResult, Interface, Object, Scalar, ScalarType, SimpleObject, Union,
    Value, ID,
};
use flash_bank::{AccountRecord, ApiKeyRecord, ContactRecord, UserRecord};
use flash_bank::{Direction, HistoryPageRequest, LimitView, Transaction, TransactionPage, TxStatus, WalletView};
use flash_core::{AccountLevel as Level, AccountStatus as Status, Currency, LimitKind, WalletId as CoreWalletId};

use super::{gql, state, NeedsRead};

macro_rules! string_scalar {
    ($rust:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $rust(pub String);

        #[Scalar(name = $name)]
        impl ScalarType for $rust {
            fn parse(value: Value) -> InputValueResult<Self> {
                match value {
                    Value::String(s) => Ok(Self(s)),
                    other => Err(InputValueError::expected_type(other)),
                }
            }
            fn to_value(&self) -> Value {
                Value::String(self.0.clone())
            }
        }
    };
}

macro_rules! int_scalar {
    ($rust:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $rust(pub i64);

        #[Scalar(name = $name)]
        impl ScalarType for $rust {
            fn parse(value: Value) -> InputValueResult<Self> {
                match &value {
                    Value::Number(n) => n
                        .as_i64()
                        .map(Self)
                        .ok_or_else(|| InputValueError::custom("must be an integer within the signed 64-bit range")),
                    _ => Err(InputValueError::expected_type(value)),
                }
            }
            fn to_value(&self) -> Value {
                Value::Number(self.0.into())
            }
        }
    };
}

string_scalar!(WalletId, "WalletId", "Unique identifier of a wallet.");
string_scalar!(
    Username,
    "Username",
    "Unique identifier of a user (3–50 of [A-Za-z0-9_])."
);
string_scalar!(Memo, "Memo", "Text shown with a payment (at most 1,000 characters).");
string_scalar!(Phone, "Phone", "Phone number in international format.");
string_scalar!(EmailAddress, "EmailAddress", "Email address.");
string_scalar!(OneTimeAuthCode, "OneTimeAuthCode", "A six-digit one-time code.");
string_scalar!(AuthToken, "AuthToken", "A session token.");
string_scalar!(ContactAlias, "ContactAlias", "A user's name for one of their contacts.");
string_scalar!(
    EmailRegistrationId,
    "EmailRegistrationId",
    "Identifier of an email registration in progress."
);
string_scalar!(LnPaymentRequest, "LnPaymentRequest", "A BOLT11 invoice.");
string_scalar!(OnChainAddress, "OnChainAddress", "A Bitcoin address.");
string_scalar!(OnChainTxHash, "OnChainTxHash", "A Bitcoin transaction id (hex).");
string_scalar!(PaymentHash, "PaymentHash", "A payment hash, 64 hex characters.");
string_scalar!(Hex32Bytes, "Hex32Bytes", "32 bytes as 64 hex characters.");
string_scalar!(
    LnPaymentSecret,
    "LnPaymentSecret",
    "An invoice's payment secret, 64 hex characters."
);
string_scalar!(
    LnPaymentPreImage,
    "LnPaymentPreImage",
    "A payment preimage, 64 hex characters."
);
int_scalar!(Minutes, "Minutes", "A whole number of minutes.");
int_scalar!(SatAmount, "SatAmount", "An amount in satoshis.");
int_scalar!(
    SignedAmount,
    "SignedAmount",
    "A signed amount in the wallet's minor unit."
);
int_scalar!(CentAmount, "CentAmount", "An amount in US cents.");
int_scalar!(Timestamp, "Timestamp", "Unix time in seconds.");
int_scalar!(Seconds, "Seconds", "A duration in seconds.");

/// Unix ms to the API's seconds.
pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp(ms.div_euclid(1000))
}

/// Account level.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum AccountLevel {
    /// Level 0.
    Zero,
    /// Level 1.
    One,
    /// Level 2.
    Two,
    /// Level 3.
    Three,
}

impl From<Level> for AccountLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Zero => AccountLevel::Zero,
            Level::One => AccountLevel::One,
            Level::Two => AccountLevel::Two,
            Level::Three => AccountLevel::Three,
        }
    }
}

impl From<AccountLevel> for Level {
    fn from(l: AccountLevel) -> Self {
        match l {
            AccountLevel::Zero => Level::Zero,
            AccountLevel::One => Level::One,
            AccountLevel::Two => Level::Two,
            AccountLevel::Three => Level::Three,
        }
    }
}

/// Account status.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum AccountStatus {
    /// May move money.
    Active,
    /// Frozen by an operator.
    Locked,
    /// Closed.
    Closed,
}

impl From<Status> for AccountStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Active => AccountStatus::Active,
            Status::Locked => AccountStatus::Locked,
            Status::Closed => AccountStatus::Closed,
        }
    }
}

impl From<AccountStatus> for Status {
    fn from(s: AccountStatus) -> Self {
        match s {
            AccountStatus::Active => Status::Active,
            AccountStatus::Locked => Status::Locked,
            AccountStatus::Closed => Status::Closed,
        }
    }
}

/// Wallet currency.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum WalletCurrency {
    /// Bitcoin (satoshis).
    Btc,
    /// US dollar (cents).
    Usd,
}

impl From<Currency> for WalletCurrency {
    fn from(c: Currency) -> Self {
        match c {
            Currency::Btc => WalletCurrency::Btc,
            Currency::Usd => WalletCurrency::Usd,
        }
    }
}

/// Result of a payment.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum PaymentSendResult {
    /// Already paid.
    AlreadyPaid,
    /// Failed.
    Failure,
    /// In flight.
    Pending,
    /// Done.
    Success,
}

/// Transaction direction.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum TxDirection {
    /// Incoming.
    Receive,
    /// Outgoing.
    Send,
}

/// Transaction status.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(name = "TxStatus")]
pub enum TxStatusGql {
    /// Failed.
    Failure,
    /// In flight.
    Pending,
    /// Done.
    Success,
}

/// What kind of update `myUpdates` delivers (Galoy spells these in PascalCase).
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(rename_items = "PascalCase")]
pub enum TxNotificationType {
    /// Sent to another Flash user.
    IntraLedgerPayment,
    /// Received from another Flash user.
    IntraLedgerReceipt,
    /// Received over Lightning (Galoy's spelling).
    #[graphql(name = "LigtningReceipt")]
    LigtningReceipt,
    /// An on-chain deposit, credited.
    OnchainReceipt,
    /// An on-chain deposit seen, waiting for its confirmations.
    OnchainReceiptPending,
}

/// An API key scope.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum Scope {
    /// Read-only queries.
    Read,
    /// Create invoices and addresses.
    Receive,
    /// Send payments and change settings.
    Write,
}

/// An application error inside a payload.
pub struct GraphQlApplicationError {
    pub(crate) code: flash_core::ErrorCode,
    pub(crate) message: String,
}

#[Object(name = "GraphQLApplicationError")]
impl GraphQlApplicationError {
    async fn code(&self) -> Option<String> {
        Some(self.code.as_str().to_string())
    }
    async fn message(&self) -> String {
        self.message.clone()
    }
    async fn path(&self) -> Option<Vec<Option<String>>> {
        None
    }
}

/// The `Error` interface of payloads.
#[derive(Interface)]
#[graphql(
    name = "Error",
    field(name = "code", ty = "Option<String>"),
    field(name = "message", ty = "String"),
    field(name = "path", ty = "Option<Vec<Option<String>>>")
)]
pub enum ErrorIface {
    /// The only kind.
    App(GraphQlApplicationError),
}

impl From<crate::error::ApiError> for ErrorIface {
    fn from(e: crate::error::ApiError) -> Self {
        ErrorIface::App(GraphQlApplicationError {
            code: e.code,
            message: e.message,
        })
    }
}

/// Relay page info.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Cursor of the last edge.
    pub end_cursor: Option<String>,
    /// More after the last edge.
    pub has_next_page: bool,
    /// More before the first edge.
    pub has_previous_page: bool,
    /// Cursor of the first edge.
    pub start_cursor: Option<String>,
}

/// A transaction edge.
#[derive(SimpleObject)]
pub struct TransactionEdge {
    /// Cursor.
    pub cursor: String,
    /// The transaction.
    pub node: TransactionGql,
}

/// A page of transactions.
#[derive(SimpleObject)]
pub struct TransactionConnection {
    /// Edges, newest first.
    pub edges: Option<Vec<TransactionEdge>>,
    /// Page info.
    pub page_info: PageInfo,
}

impl From<TransactionPage> for TransactionConnection {
    fn from(p: TransactionPage) -> Self {
        let page_info = PageInfo {
            start_cursor: p.items.first().map(|t| t.cursor.clone()),
            end_cursor: p.items.last().map(|t| t.cursor.clone()),
            has_next_page: p.has_next_page,
            has_previous_page: p.has_previous_page,
        };
        let edges = p
            .items
            .into_iter()
            .map(|t| TransactionEdge {
                cursor: t.cursor,
                node: TransactionGql(t.transaction),
            })
            .collect();
        TransactionConnection {
            edges: Some(edges),
            page_info,
        }
    }
}

/// Settlement of a payment inside Flash.
#[derive(SimpleObject)]
pub struct SettlementViaIntraLedger {
    /// The other side's username, if any.
    pub counter_party_username: Option<String>,
    /// The other side's wallet, if a Flash wallet.
    pub counter_party_wallet_id: Option<String>,
    /// Unused for intraledger payments.
    pub pre_image: Option<String>,
}

/// Settlement over the Lightning network.
#[derive(SimpleObject)]
pub struct SettlementViaLn {
    /// The preimage, proof of payment, when the node learned it.
    pub pre_image: Option<LnPaymentPreImage>,
}

/// Settlement on the Bitcoin chain.
#[derive(SimpleObject)]
pub struct SettlementViaOnChain {
    /// The transaction.
    pub transaction_hash: Option<OnChainTxHash>,
    /// Its output that paid the wallet.
    pub vout: Option<i32>,
}

/// How a transaction settled.
#[derive(Union)]
// The variants are GraphQL type names, fixed by Galoy's schema.
#[allow(clippy::enum_variant_names)]
pub enum SettlementVia {
    /// Inside Flash.
    SettlementViaIntraLedger(SettlementViaIntraLedger),
    /// Over Lightning.
    SettlementViaLn(SettlementViaLn),
    /// On chain.
    SettlementViaOnChain(SettlementViaOnChain),
}

/// Initiation of a payment inside Flash.
#[derive(SimpleObject)]
pub struct InitiationViaIntraLedger {
    /// The other side's username, if any.
    pub counter_party_username: Option<String>,
    /// The other side's wallet.
    pub counter_party_wallet_id: Option<String>,
}

/// A payment started with a Lightning invoice.
#[derive(SimpleObject)]
pub struct InitiationViaLn {
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// The invoice.
    pub payment_request: LnPaymentRequest,
}

/// A payment to or from a Bitcoin address.
#[derive(SimpleObject)]
pub struct InitiationViaOnChain {
    /// The address.
    pub address: OnChainAddress,
}

/// How a transaction started.
#[derive(Union)]
// The variants are GraphQL type names, fixed by Galoy's schema.
#[allow(clippy::enum_variant_names)]
pub enum InitiationVia {
    /// Inside Flash.
    InitiationViaIntraLedger(InitiationViaIntraLedger),
    /// With a Lightning invoice.
    InitiationViaLn(InitiationViaLn),
    /// With a Bitcoin address.
    InitiationViaOnChain(InitiationViaOnChain),
}

/// `txid:vout` split into its parts.
fn split_outpoint(outpoint: &str) -> (Option<OnChainTxHash>, Option<i32>) {
    match outpoint.split_once(':') {
        Some((txid, vout)) => (Some(OnChainTxHash(txid.to_string())), vout.parse().ok()),
        None => (None, None),
    }
}

/// A transaction (one wallet's side of a journal).
pub struct TransactionGql(pub Transaction);

#[Object(name = "Transaction")]
impl TransactionGql {
    async fn id(&self) -> ID {
        ID(self.0.journal_id.to_string())
    }
    async fn created_at(&self) -> Timestamp {
        ts(self.0.created_at_ms)
    }
    async fn direction(&self) -> TxDirection {
        match self.0.direction {
            Direction::Send => TxDirection::Send,
            Direction::Receive => TxDirection::Receive,
        }
    }
    async fn memo(&self) -> Option<String> {
        self.0.memo.clone()
    }
    async fn settlement_amount(&self) -> SignedAmount {
        SignedAmount(self.0.amount)
    }
    async fn settlement_fee(&self) -> SignedAmount {
        SignedAmount(self.0.fee)
    }
    async fn settlement_currency(&self) -> WalletCurrency {
        self.0.currency.into()
    }
    /// `settlementAmount` in the display currency (US dollars, major units), at the price of
    /// now (not of the settlement).
    async fn settlement_display_amount(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(super::prices::display_amounts(ctx, self.0.amount, self.0.fee)
            .await?
            .amount)
    }
    /// `settlementFee` in the display currency, at the price of now.
    async fn settlement_display_fee(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(super::prices::display_amounts(ctx, self.0.amount, self.0.fee)
            .await?
            .fee)
    }
    /// The display currency: `USD`.
    async fn settlement_display_currency(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<super::prices::DisplayCurrency> {
        let shown = super::prices::display_amounts(ctx, self.0.amount, self.0.fee).await?;
        Ok(super::prices::DisplayCurrency(shown.currency))
    }
    /// The price of one sat in the display currency's minor unit, now.
    async fn settlement_price(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<super::prices::PriceOfOneSettlementMinorUnitInDisplayMinorUnit> {
        Ok(super::prices::display_amounts(ctx, self.0.amount, self.0.fee)
            .await?
            .price)
    }
    async fn status(&self) -> TxStatusGql {
        match self.0.status {
            TxStatus::Success => TxStatusGql::Success,
            TxStatus::Pending => TxStatusGql::Pending,
            TxStatus::Failure => TxStatusGql::Failure,
        }
    }
    /// Inside Flash when the other side is a Flash wallet (an invoice of this Flash paid by a
    /// Flash user settles there too), otherwise over Lightning.
    async fn settlement_via(&self, ctx: &Context<'_>) -> async_graphql::Result<SettlementVia> {
        if let Some(payout) = &self.0.onchain_payout {
            let details = gql(state(ctx).bank.onchain_payout_details(payout).await)?;
            return Ok(SettlementVia::SettlementViaOnChain(SettlementViaOnChain {
                transaction_hash: details.as_ref().and_then(|d| d.txid.clone()).map(OnChainTxHash),
                vout: details.and_then(|d| d.vout).and_then(|v| i32::try_from(v).ok()),
            }));
        }
        if let Some(outpoint) = &self.0.onchain_outpoint {
            let (transaction_hash, vout) = split_outpoint(outpoint);
            return Ok(SettlementVia::SettlementViaOnChain(SettlementViaOnChain {
                transaction_hash,
                vout,
            }));
        }
        match (&self.0.payment_hash, self.0.counterparty_wallet_id) {
            (Some(hash), None) => {
                let details = gql(state(ctx).bank.ln_details(self.0.journal_id, hash).await)?;
                Ok(SettlementVia::SettlementViaLn(SettlementViaLn {
                    pre_image: details.preimage.map(LnPaymentPreImage),
                }))
            }
            _ => Ok(SettlementVia::SettlementViaIntraLedger(SettlementViaIntraLedger {
                counter_party_username: self.0.counterparty_username.clone(),
                counter_party_wallet_id: self.0.counterparty_wallet_id.map(|w| w.to_string()),
                pre_image: None,
            })),
        }
    }
    async fn initiation_via(&self, ctx: &Context<'_>) -> async_graphql::Result<InitiationVia> {
        if let Some(payout) = &self.0.onchain_payout {
            let details = gql(state(ctx).bank.onchain_payout_details(payout).await)?;
            return Ok(InitiationVia::InitiationViaOnChain(InitiationViaOnChain {
                address: OnChainAddress(details.map(|d| d.address).unwrap_or_default()),
            }));
        }
        if let Some(outpoint) = &self.0.onchain_outpoint {
            let deposit = gql(state(ctx).bank.onchain_deposit(outpoint).await)?;
            let address = deposit.map(|d| d.address).unwrap_or_default();
            return Ok(InitiationVia::InitiationViaOnChain(InitiationViaOnChain {
                address: OnChainAddress(address),
            }));
        }
        match &self.0.payment_hash {
            Some(hash) => {
                let details = gql(state(ctx).bank.ln_details(self.0.journal_id, hash).await)?;
                Ok(InitiationVia::InitiationViaLn(InitiationViaLn {
                    payment_hash: PaymentHash(hash.clone()),
                    payment_request: LnPaymentRequest(details.payment_request.unwrap_or_default()),
                }))
            }
            None => Ok(InitiationVia::InitiationViaIntraLedger(InitiationViaIntraLedger {
                counter_party_username: self.0.counterparty_username.clone(),
                counter_party_wallet_id: self.0.counterparty_wallet_id.map(|w| w.to_string()),
            })),
        }
    }
}

/// A wallet anyone can pay.
#[derive(SimpleObject)]
pub struct PublicWallet {
    /// Id.
    pub id: ID,
    /// Currency.
    pub currency: WalletCurrency,
    /// Currency (older name).
    pub wallet_currency: WalletCurrency,
}

/// A BTC wallet.
pub struct BtcWallet(pub WalletView);

#[Object(name = "BTCWallet")]
impl BtcWallet {
    async fn id(&self) -> ID {
        ID(self.0.wallet.id.to_string())
    }
    #[graphql(guard = "NeedsRead")]
    async fn account_id(&self) -> ID {
        ID(self.0.wallet.account_id.to_string())
    }
    #[graphql(guard = "NeedsRead")]
    async fn wallet_currency(&self) -> WalletCurrency {
        self.0.wallet.currency.into()
    }
    #[graphql(guard = "NeedsRead")]
    async fn balance(&self) -> SignedAmount {
        SignedAmount(self.0.balance)
    }
    #[graphql(guard = "NeedsRead")]
    async fn pending_incoming_balance(&self) -> SignedAmount {
        SignedAmount(self.0.pending_incoming)
    }
    #[graphql(guard = "NeedsRead")]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Option<TransactionConnection>> {
        let page = HistoryPageRequest {
            first,
            after,
            last,
            before,
        };
        let ids = [self.0.wallet.id];
        let result = state(ctx)
            .bank
            .history(self.0.wallet.account_id, Some(&ids), &page)
            .await;
        Ok(Some(gql(result)?.into()))
    }
    /// The credited deposits to one of this wallet's addresses, newest first (`first`, at most
    /// 100; pending deposits show in `pendingIncomingBalance` until credited).
    #[graphql(guard = "NeedsRead")]
    async fn transactions_by_address(
        &self,
        ctx: &Context<'_>,
        address: OnChainAddress,
        first: Option<i32>,
    ) -> async_graphql::Result<Option<TransactionConnection>> {
        let limit = i64::from(first.unwrap_or(20).clamp(1, 100));
        let w = &self.0.wallet;
        let result = state(ctx)
            .bank
            .onchain_transactions_by_address(w.account_id, w.id, &address.0, limit + 1)
            .await;
        let mut found = gql(result)?;
        let has_next_page = found.len() > limit as usize;
        found.truncate(limit as usize);
        let items = found
            .into_iter()
            .map(|t| flash_bank::Paged {
                cursor: t.journal_id.to_string(),
                transaction: t,
            })
            .collect();
        Ok(Some(
            TransactionPage {
                items,
                has_next_page,
                has_previous_page: false,
            }
            .into(),
        ))
    }
}

/// The `Wallet` interface.
#[derive(Interface)]
#[graphql(
    name = "Wallet",
    field(name = "id", ty = "ID"),
    field(name = "account_id", ty = "ID"),
    field(name = "wallet_currency", ty = "WalletCurrency"),
    field(name = "balance", ty = "SignedAmount"),
    field(name = "pending_incoming_balance", ty = "SignedAmount"),
    field(
        name = "transactions",
        ty = "Option<TransactionConnection>",
        arg(name = "first", ty = "Option<i32>"),
        arg(name = "after", ty = "Option<String>"),
        arg(name = "last", ty = "Option<i32>"),
        arg(name = "before", ty = "Option<String>")
    )
)]
pub enum WalletIface {
    /// A BTC wallet.
    Btc(BtcWallet),
}

/// A rolling one-day limit.
pub struct OneDayAccountLimit(pub LimitView);

#[Object]
impl OneDayAccountLimit {
    async fn interval(&self) -> Option<Seconds> {
        Some(Seconds(self.0.interval_secs))
    }
    async fn remaining_limit(&self) -> Option<CentAmount> {
        Some(CentAmount(self.0.remaining_cents))
    }
    async fn total_limit(&self) -> CentAmount {
        CentAmount(self.0.total_cents)
    }
    /// Flash extension: the limit in satoshis at the configured reference rate.
    async fn total_limit_sats(&self) -> SatAmount {
        SatAmount(self.0.total_sats)
    }
    /// Flash extension: what remains, in satoshis.
    async fn remaining_limit_sats(&self) -> SatAmount {
        SatAmount(self.0.remaining_sats)
    }
}

/// The `AccountLimit` interface.
#[derive(Interface)]
#[graphql(
    name = "AccountLimit",
    field(name = "interval", ty = "Option<Seconds>"),
    field(name = "remaining_limit", ty = "Option<CentAmount>"),
    field(name = "total_limit", ty = "CentAmount")
)]
pub enum AccountLimitIface {
    /// One day.
    OneDay(OneDayAccountLimit),
}

/// An account's limits.
#[derive(SimpleObject)]
pub struct AccountLimits {
    /// Between an account's own wallets (none yet).
    pub convert: Vec<AccountLimitIface>,
    /// Payments to other Flash users.
    pub internal_send: Vec<AccountLimitIface>,
    /// Payments leaving Flash.
    pub withdrawal: Vec<AccountLimitIface>,
}

/// A consumer account.
pub struct ConsumerAccount(pub AccountRecord);

#[Object]
impl ConsumerAccount {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    #[graphql(guard = "NeedsRead")]
    async fn level(&self) -> AccountLevel {
        self.0.level.into()
    }
    #[graphql(guard = "NeedsRead")]
    async fn default_wallet_id(&self) -> WalletId {
        WalletId(self.0.default_wallet_id.to_string())
    }
    #[graphql(guard = "NeedsRead")]
    async fn default_wallet(&self, ctx: &Context<'_>) -> async_graphql::Result<PublicWallet> {
        let wallet = gql(state(ctx).bank.own_wallet(self.0.id, self.0.default_wallet_id).await)?;
        let currency = wallet.currency.into();
        Ok(PublicWallet {
            id: ID(wallet.id.to_string()),
            currency,
            wallet_currency: currency,
        })
    }
    #[graphql(guard = "NeedsRead")]
    async fn wallets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WalletIface>> {
        let wallets = gql(state(ctx).bank.wallets(self.0.id).await)?;
        Ok(wallets.into_iter().map(|w| WalletIface::Btc(BtcWallet(w))).collect())
    }
    #[graphql(guard = "NeedsRead")]
    async fn wallet_by_id(&self, ctx: &Context<'_>, wallet_id: WalletId) -> async_graphql::Result<WalletIface> {
        let id: CoreWalletId = gql(wallet_id.0.parse().map_err(|_| flash_bank::BankError::WalletNotFound))?;
        let wallets = gql(state(ctx).bank.wallets(self.0.id).await)?;
        let wallet = wallets.into_iter().find(|w| w.wallet.id == id);
        let wallet = gql(wallet.ok_or(flash_bank::BankError::WalletNotFound))?;
        Ok(WalletIface::Btc(BtcWallet(wallet)))
    }
    #[graphql(guard = "NeedsRead")]
    async fn limits(&self, ctx: &Context<'_>) -> async_graphql::Result<AccountLimits> {
        let views = gql(state(ctx).bank.limits(&self.0).await)?;
        let of = |kind: LimitKind| -> Vec<AccountLimitIface> {
            views
                .iter()
                .filter(|v| v.kind == kind)
                .cloned()
                .map(|v| AccountLimitIface::OneDay(OneDayAccountLimit(v)))
                .collect()
        };
        Ok(AccountLimits {
            convert: Vec::new(),
            internal_send: of(LimitKind::IntraLedger),
            withdrawal: of(LimitKind::Withdrawal),
        })
    }
    #[graphql(guard = "NeedsRead")]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        wallet_ids: Option<Vec<Option<WalletId>>>,
    ) -> async_graphql::Result<Option<TransactionConnection>> {
        let ids: Option<Vec<CoreWalletId>> =
            wallet_ids.map(|ids| ids.into_iter().flatten().filter_map(|w| w.0.parse().ok()).collect());
        let page = HistoryPageRequest {
            first,
            after,
            last,
            before,
        };
        let result = state(ctx).bank.history(self.0.id, ids.as_deref(), &page).await;
        Ok(Some(gql(result)?.into()))
    }
}

/// The `Account` interface.
#[derive(Interface)]
#[graphql(
    name = "Account",
    field(name = "id", ty = "ID"),
    field(name = "level", ty = "AccountLevel"),
    field(name = "default_wallet_id", ty = "WalletId"),
    field(name = "default_wallet", ty = "PublicWallet"),
    field(name = "wallets", ty = "Vec<WalletIface>"),
    field(name = "wallet_by_id", ty = "WalletIface", arg(name = "wallet_id", ty = "WalletId")),
    field(name = "limits", ty = "AccountLimits"),
    field(
        name = "transactions",
        ty = "Option<TransactionConnection>",
        arg(name = "first", ty = "Option<i32>"),
        arg(name = "after", ty = "Option<String>"),
        arg(name = "last", ty = "Option<i32>"),
        arg(name = "before", ty = "Option<String>"),
        arg(name = "wallet_ids", ty = "Option<Vec<Option<WalletId>>>")
    )
)]
pub enum AccountIface {
    /// A consumer account.
    Consumer(ConsumerAccount),
}

/// An email on a user.
#[derive(SimpleObject)]
#[graphql(name = "Email")]
pub struct EmailGql {
    /// The address.
    pub address: Option<String>,
    /// Verified (always, since only verified emails are stored).
    pub verified: Option<bool>,
}

/// One of the user's contacts.
pub struct UserContact(pub ContactRecord);

#[Object]
impl UserContact {
    #[graphql(guard = "NeedsRead")]
    async fn id(&self) -> Username {
        Username(self.0.username.clone().unwrap_or_default())
    }
    #[graphql(guard = "NeedsRead")]
    async fn username(&self) -> Username {
        Username(self.0.username.clone().unwrap_or_default())
    }
    #[graphql(guard = "NeedsRead")]
    async fn alias(&self) -> Option<ContactAlias> {
        self.0.alias.clone().map(ContactAlias)
    }
    #[graphql(guard = "NeedsRead")]
    async fn transactions_count(&self) -> i64 {
        self.0.transactions_count
    }
}

/// An API key (never its secret).
pub struct ApiKey(pub ApiKeyRecord, pub i64);

#[Object]
impl ApiKey {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    #[graphql(guard = "NeedsRead")]
    async fn name(&self) -> String {
        self.0.name.clone()
    }
    #[graphql(guard = "NeedsRead")]
    async fn scopes(&self) -> Vec<Scope> {
        self.0
            .scopes
            .split(',')
            .filter_map(|s| match s {
                "read" => Some(Scope::Read),
                "receive" => Some(Scope::Receive),
                "write" => Some(Scope::Write),
                _ => None,
            })
            .collect()
    }
    #[graphql(guard = "NeedsRead")]
    async fn read_only(&self) -> bool {
        self.0.scopes == "read"
    }
    #[graphql(guard = "NeedsRead")]
    async fn created_at(&self) -> Timestamp {
        ts(self.0.created_at_ms)
    }
    #[graphql(guard = "NeedsRead")]
    async fn expires_at(&self) -> Option<Timestamp> {
        self.0.expires_at_ms.map(ts)
    }
    #[graphql(guard = "NeedsRead")]
    async fn last_used_at(&self) -> Option<Timestamp> {
        self.0.last_used_at_ms.map(ts)
    }
    #[graphql(guard = "NeedsRead")]
    async fn revoked(&self) -> bool {
        self.0.revoked_at_ms.is_some()
    }
    #[graphql(guard = "NeedsRead")]
    async fn expired(&self) -> bool {
        self.0.expires_at_ms.is_some_and(|t| t <= self.1)
    }
    /// Networks the key may be used from (empty: anywhere).
    #[graphql(guard = "NeedsRead")]
    async fn ip_allowlist(&self) -> Vec<String> {
        self.0
            .ip_allowlist
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The logged-in user.
pub struct User(pub UserRecord);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    #[graphql(guard = "NeedsRead")]
    async fn username(&self) -> Option<Username> {
        self.0.username.clone().map(Username)
    }
    #[graphql(guard = "NeedsRead")]
    async fn phone(&self) -> Option<Phone> {
        self.0.phone.clone().map(Phone)
    }
    #[graphql(guard = "NeedsRead")]
    async fn email(&self) -> Option<EmailGql> {
        self.0.email.clone().map(|e| EmailGql {
            address: Some(e),
            verified: Some(true),
        })
    }
    #[graphql(guard = "NeedsRead")]
    async fn created_at(&self) -> Timestamp {
        ts(self.0.created_at_ms)
    }
    /// The NOSTR key the user linked (`userUpdateNpub`), `npub1…`.
    #[graphql(guard = "NeedsRead")]
    async fn npub(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        gql(state(ctx).names.npub_of(self.0.id).await)
    }
    #[graphql(guard = "NeedsRead")]
    async fn default_account(&self, ctx: &Context<'_>) -> async_graphql::Result<AccountIface> {
        let account = gql(state(ctx).bank.account_of_user(self.0.id).await)?;
        Ok(AccountIface::Consumer(ConsumerAccount(account)))
    }
    #[graphql(guard = "NeedsRead")]
    async fn contacts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserContact>> {
        let bank = &state(ctx).bank;
        let account = gql(bank.account_of_user(self.0.id).await)?;
        Ok(gql(bank.contacts(account.id).await)?
            .into_iter()
            .map(UserContact)
            .collect())
    }
    /// The account's API keys (Blink's API-keys extension).
    #[graphql(guard = "NeedsRead")]
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let st = state(ctx);
        let account = gql(st.bank.account_of_user(self.0.id).await)?;
        let keys = st
            .auth
            .api_keys(account.id)
            .await
            .map_err(|e| crate::error::ApiError::from(e).to_graphql())?;
        let now = st.bank.now_ms();
        Ok(keys.into_iter().map(|k| ApiKey(k, now)).collect())
    }
}
