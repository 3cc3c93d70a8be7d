//! The operator API (`/admin/graphql`), behind an admin key. Names follow Blink's admin
//! schema where the operation exists there.

use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use flash_bank::AccountRecord;
use flash_bank::BankError;
use flash_core::lightning::DevOutcome;
use flash_core::ErrorCode;
use flash_core::{AccountId, JournalId};

use super::types::*;
use super::{gql, operator, state};
use crate::error::ApiError;

/// An account as operators see it.
pub struct AuditedAccount(AccountRecord);

#[Object]
impl AuditedAccount {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn level(&self) -> AccountLevel {
        self.0.level.into()
    }
    async fn status(&self) -> AccountStatus {
        self.0.status.into()
    }
    async fn created_at(&self) -> Timestamp {
        ts(self.0.created_at_ms)
    }
    async fn default_wallet_id(&self) -> WalletId {
        WalletId(self.0.default_wallet_id.to_string())
    }
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<AuditedUser> {
        let user = gql(state(ctx).bank.user(self.0.user_id).await)?;
        Ok(AuditedUser {
            id: ID(user.id.to_string()),
            phone: user.phone.map(Phone),
            email: user.email.map(|e| EmailGql {
                address: Some(e),
                verified: Some(true),
            }),
            username: user.username.map(Username),
            created_at: ts(user.created_at_ms),
        })
    }
    async fn wallets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WalletIface>> {
        let wallets = gql(state(ctx).bank.wallets(self.0.id).await)?;
        Ok(wallets.into_iter().map(|w| WalletIface::Btc(BtcWallet(w))).collect())
    }
}

/// An account's owner.
#[derive(SimpleObject)]
pub struct AuditedUser {
    /// Id.
    pub id: ID,
    /// Phone.
    pub phone: Option<Phone>,
    /// Email.
    pub email: Option<EmailGql>,
    /// Username.
    pub username: Option<Username>,
    /// Created.
    pub created_at: Timestamp,
}

/// An account or errors.
#[derive(SimpleObject)]
pub struct AccountDetailPayload {
    /// The account.
    pub account_details: Option<AuditedAccount>,
    /// Errors.
    pub errors: Vec<ErrorIface>,
}

/// Sum of all balances of one currency.
#[derive(SimpleObject)]
pub struct CurrencyTotal {
    /// Currency.
    pub currency: WalletCurrency,
    /// Sum of balances (must be 0).
    pub total: SignedAmount,
}

/// The global ledger invariant check.
#[derive(SimpleObject)]
pub struct LedgerVerification {
    /// No invariant broken.
    pub ok: bool,
    /// Per-currency totals.
    pub currencies: Vec<CurrencyTotal>,
    /// Ledger accounts checked.
    pub accounts_checked: i64,
    /// Journals checked.
    pub journals_checked: i64,
    /// What is wrong, if anything.
    pub problems: Vec<String>,
}

/// One ledger entry.
#[derive(SimpleObject)]
pub struct JournalEntry {
    /// Ledger account.
    pub account_id: String,
    /// Currency.
    pub currency: WalletCurrency,
    /// Signed amount.
    pub amount: SignedAmount,
}

/// A journal.
#[derive(SimpleObject)]
pub struct Journal {
    /// Id.
    pub id: ID,
    /// Kind.
    pub kind: String,
    /// Memo.
    pub memo: Option<String>,
    /// The hold it opened or closed.
    pub hold_id: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Entries (sum to zero).
    pub entries: Vec<JournalEntry>,
}

fn account_id(id: &str) -> Result<AccountId, BankError> {
    id.parse().map_err(|_| BankError::AccountNotFound)
}

/// Operator queries.
#[derive(Default)]
pub struct Query;

#[Object]
impl Query {
    /// The Lightning node: identity, chain state and channels.
    async fn lightning_node(&self, ctx: &Context<'_>) -> async_graphql::Result<LightningNodeView> {
        operator(ctx)?;
        let node = state(ctx).bank.lightning_node().ok_or_else(|| {
            ApiError::new(ErrorCode::LightningUnavailable, "no Lightning node is configured").to_graphql()
        })?;
        let unavailable = |e: flash_core::lightning::LightningError| {
            ApiError::new(ErrorCode::LightningUnavailable, e.to_string()).to_graphql()
        };
        let info = node.node_info().await.map_err(unavailable)?;
        let channels = node.channels().await.map_err(unavailable)?;
        Ok(LightningNodeView {
            pubkey: info.pubkey,
            alias: info.alias,
            network: info.network.as_str().to_string(),
            block_height: i64::from(info.block_height),
            synced: info.synced,
            simulated: info.simulated,
            channels: channels
                .into_iter()
                .map(|c| LightningChannel {
                    id: c.id,
                    peer: c.peer,
                    capacity: SatAmount(i64::try_from(c.capacity_sat).unwrap_or(i64::MAX)),
                    local_balance: SatAmount(i64::try_from(c.local_sat).unwrap_or(i64::MAX)),
                    remote_balance: SatAmount(i64::try_from(c.remote_sat).unwrap_or(i64::MAX)),
                    active: c.active,
                })
                .collect(),
        })
    }

    /// The Lightning liquidity manager: policy, the latest check and its recent actions.
    async fn lightning_liquidity(&self, ctx: &Context<'_>) -> async_graphql::Result<LightningLiquidity> {
        operator(ctx)?;
        let bank = &state(ctx).bank;
        let actions = gql(bank.liquidity_actions(50).await)?;
        Ok(LightningLiquidity::new(
            bank.liquidity_report(),
            bank.liquidity_policy(),
            actions,
        ))
    }

    /// Checks every global ledger invariant.
    async fn ledger_verify(&self, ctx: &Context<'_>) -> async_graphql::Result<LedgerVerification> {
        operator(ctx)?;
        let report = gql(state(ctx).bank.verify_ledger().await)?;
        Ok(LedgerVerification {
            ok: report.ok(),
            currencies: report
                .totals
                .iter()
                .map(|(c, t)| CurrencyTotal {
                    currency: (*c).into(),
                    total: SignedAmount(*t),
                })
                .collect(),
            accounts_checked: report.accounts_checked,
            journals_checked: report.journals_checked,
            problems: report.problems,
        })
    }

    /// A journal with its entries.
    async fn journal(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Journal>> {
        operator(ctx)?;
        let Ok(id) = id.parse::<JournalId>() else {
            return Ok(None);
        };
        let journal = gql(state(ctx).bank.journal(id).await)?;
        Ok(journal.map(|j| Journal {
            id: ID(j.id.to_string()),
            kind: j.kind,
            memo: j.memo,
            hold_id: j.hold,
            created_at: ts(j.created_at_ms),
            entries: j
                .entries
                .into_iter()
                .map(|(account, amount)| JournalEntry {
                    account_id: account.to_string(),
                    currency: j.currency.into(),
                    amount: SignedAmount(amount),
                })
                .collect(),
        }))
    }

    /// An account by id.
    async fn account_details_by_account_id(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
    ) -> async_graphql::Result<AuditedAccount> {
        operator(ctx)?;
        let id = gql(self::account_id(&account_id))?;
        Ok(AuditedAccount(gql(state(ctx).bank.account(id).await)?))
    }

    /// An account by its user's username.
    async fn account_details_by_username(
        &self,
        ctx: &Context<'_>,
        username: Username,
    ) -> async_graphql::Result<AuditedAccount> {
        operator(ctx)?;
        let bank = &state(ctx).bank;
        let wallet = gql(bank.default_wallet_of(&username.0).await)?;
        Ok(AuditedAccount(gql(bank.account(wallet.account_id).await)?))
    }
}

/// `accountUpdateLevel` input.
#[derive(InputObject)]
pub struct AccountUpdateLevelInput {
    /// The account.
    pub account_id: ID,
    /// New level.
    pub level: AccountLevel,
}

/// `accountUpdateStatus` input.
#[derive(InputObject)]
pub struct AccountUpdateStatusInput {
    /// The account.
    pub account_id: ID,
    /// Why (goes to the audit log).
    pub comment: Option<String>,
    /// New status.
    pub status: AccountStatus,
}

/// `walletFund` input.
#[derive(InputObject)]
pub struct WalletFundInput {
    /// The wallet to credit.
    pub wallet_id: WalletId,
    /// Satoshis.
    pub amount: SatAmount,
    /// Makes the request safe to retry.
    pub idempotency_key: Option<String>,
}

/// The funded wallet's transaction or errors.
#[derive(SimpleObject)]
pub struct WalletFundPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The wallet's transaction.
    pub transaction: Option<TransactionGql>,
}

fn detail(result: Result<AccountRecord, BankError>) -> AccountDetailPayload {
    match result {
        Ok(a) => AccountDetailPayload {
            account_details: Some(AuditedAccount(a)),
            errors: vec![],
        },
        Err(e) => AccountDetailPayload {
            account_details: None,
            errors: vec![ApiError::from(e).into()],
        },
    }
}

/// The Lightning node as operators see it.
#[derive(SimpleObject)]
pub struct LightningNodeView {
    /// Public key.
    pub pubkey: String,
    /// Alias.
    pub alias: String,
    /// Network.
    pub network: String,
    /// Best block known.
    pub block_height: i64,
    /// Synced to the chain.
    pub synced: bool,
    /// True for the `dev` simulator.
    pub simulated: bool,
    /// Channels.
    pub channels: Vec<LightningChannel>,
}

/// One channel.
#[derive(SimpleObject)]
pub struct LightningChannel {
    /// Channel id.
    pub id: String,
    /// Peer public key.
    pub peer: String,
    /// Capacity.
    pub capacity: SatAmount,
    /// Our side.
    pub local_balance: SatAmount,
    /// Their side.
    pub remote_balance: SatAmount,
    /// Usable now.
    pub active: bool,
}

/// The liquidity manager's view.
#[derive(SimpleObject)]
pub struct LightningLiquidity {
    /// Whether the latest check found everything within policy (null before the first).
    pub in_policy: Option<bool>,
    /// When it ran.
    pub checked_at: Option<Timestamp>,
    /// Usable channels.
    pub active_channels: i64,
    /// What the node can send.
    pub outbound: SatAmount,
    /// What it can receive.
    pub inbound: SatAmount,
    /// Outbound share of capacity, percent.
    pub outbound_percent: i64,
    /// Inbound share, percent.
    pub inbound_percent: i64,
    /// Confirmed on-chain funds, if the node tells.
    pub onchain: Option<SatAmount>,
    /// Codes of what is out of policy (NO_CHANNELS, OUTBOUND_LOW, INBOUND_LOW, NODE_UNAVAILABLE).
    pub issues: Vec<String>,
    /// The policy's minimum outbound share, percent.
    pub min_outbound_percent: i64,
    /// The policy's minimum inbound share, percent.
    pub min_inbound_percent: i64,
    /// Recent actions, newest first.
    pub actions: Vec<LiquidityActionView>,
}

impl LightningLiquidity {
    fn new(
        report: Option<flash_bank::LiquidityReport>,
        policy: &flash_bank::LiquidityConfig,
        actions: Vec<flash_bank::LiquidityAction>,
    ) -> Self {
        let sats = |v: u64| SatAmount(i64::try_from(v).unwrap_or(i64::MAX));
        let pct = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let r = report.clone().unwrap_or_default();
        LightningLiquidity {
            in_policy: report.as_ref().map(|r| r.in_policy()),
            checked_at: report.as_ref().map(|r| ts(r.checked_at_ms)),
            active_channels: i64::try_from(r.active_channels).unwrap_or(i64::MAX),
            outbound: sats(r.outbound_sats),
            inbound: sats(r.inbound_sats),
            outbound_percent: pct(r.outbound_percent),
            inbound_percent: pct(r.inbound_percent),
            onchain: r.onchain_sats.map(sats),
            issues: r.issues.iter().map(|i| i.code().to_string()).collect(),
            min_outbound_percent: pct(policy.min_outbound_percent),
            min_inbound_percent: pct(policy.min_inbound_percent),
            actions: actions
                .into_iter()
                .map(|a| LiquidityActionView {
                    kind: match a.kind {
                        flash_bank::LiquidityActionKind::Alert => "ALERT".into(),
                        flash_bank::LiquidityActionKind::ChannelOpen => "CHANNEL_OPEN".into(),
                        flash_bank::LiquidityActionKind::JitInvoice => "JIT_INVOICE".into(),
                    },
                    peer: a.peer,
                    amount: SatAmount(a.amount_sat),
                    ok: a.ok,
                    detail: a.detail,
                    created_at: ts(a.created_at_ms),
                })
                .collect(),
        }
    }
}

/// One liquidity-manager action.
#[derive(SimpleObject)]
pub struct LiquidityActionView {
    /// ALERT, CHANNEL_OPEN or JIT_INVOICE.
    pub kind: String,
    /// The peer of a channel open.
    pub peer: Option<String>,
    /// The channel's size.
    pub amount: SatAmount,
    /// Whether it worked.
    pub ok: bool,
    /// In words.
    pub detail: String,
    /// When.
    pub created_at: Timestamp,
}

/// A liquidity check's result.
#[derive(SimpleObject)]
pub struct LightningLiquidityPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The manager's view after the check.
    pub liquidity: Option<LightningLiquidity>,
}

/// `devLightningPayInvoice` input.
#[derive(InputObject)]
pub struct DevLightningPayInvoiceInput {
    /// An invoice this Flash issued.
    pub payment_request: String,
    /// Amount for a no-amount invoice, satoshis.
    pub amount: Option<SatAmount>,
}

/// How the simulator's payments to other nodes end.
#[derive(async_graphql::Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum DevLightningOutcomeKind {
    /// Paid after the delay, with the fee rate.
    Succeed,
    /// Fails after the delay.
    Fail,
    /// Never resolves.
    Hang,
}

/// `devLightningSetOutcome` input.
#[derive(InputObject)]
pub struct DevLightningSetOutcomeInput {
    /// What happens.
    pub outcome: DevLightningOutcomeKind,
    /// Simulated routing time, milliseconds (default 0).
    pub delay_ms: Option<i64>,
    /// Routing fee, parts per million (default 1,000).
    pub fee_ppm: Option<i64>,
}

/// What a reconciliation pass did.
#[derive(SimpleObject)]
pub struct LightningReconcilePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// Pending payments looked at.
    pub checked: i64,
    /// Settled.
    pub succeeded: i64,
    /// Reversed.
    pub failed: i64,
    /// Still pending.
    pub pending: i64,
}

/// Done, or errors.
#[derive(SimpleObject)]
pub struct DevLightningPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// Whether it worked.
    pub success: bool,
}

impl From<Result<(), BankError>> for DevLightningPayload {
    fn from(r: Result<(), BankError>) -> Self {
        match r {
            Ok(()) => DevLightningPayload {
                errors: vec![],
                success: true,
            },
            Err(e) => DevLightningPayload {
                errors: vec![ApiError::from(e).into()],
                success: false,
            },
        }
    }
}

/// Operator mutations.
#[derive(Default)]
pub struct Mutation;

#[Object]
impl Mutation {
    /// Sets an account's level (audited).
    async fn account_update_level(
        &self,
        ctx: &Context<'_>,
        input: AccountUpdateLevelInput,
    ) -> async_graphql::Result<AccountDetailPayload> {
        let actor = operator(ctx)?;
        let result = match account_id(&input.account_id) {
            Ok(id) => state(ctx).bank.set_account_level(actor, id, input.level.into()).await,
            Err(e) => Err(e),
        };
        Ok(detail(result))
    }

    /// Sets an account's status (audited).
    async fn account_update_status(
        &self,
        ctx: &Context<'_>,
        input: AccountUpdateStatusInput,
    ) -> async_graphql::Result<AccountDetailPayload> {
        let actor = operator(ctx)?;
        let result = match account_id(&input.account_id) {
            Ok(id) => {
                state(ctx)
                    .bank
                    .set_account_status(actor, id, input.status.into(), input.comment.as_deref())
                    .await
            }
            Err(e) => Err(e),
        };
        Ok(detail(result))
    }

    /// Dev/regtest faucet: credits a wallet from `dev:faucet`. Refused on mainnet.
    async fn wallet_fund(&self, ctx: &Context<'_>, input: WalletFundInput) -> async_graphql::Result<WalletFundPayload> {
        let actor = operator(ctx)?;
        let bank = &state(ctx).bank;
        let result = match input.wallet_id.0.parse() {
            Ok(w) => bank.wallet_fund(actor, w, input.amount.0, input.idempotency_key).await,
            Err(_) => Err(BankError::WalletNotFound),
        };
        Ok(match result {
            Ok(t) => WalletFundPayload {
                errors: vec![],
                transaction: Some(TransactionGql(t)),
            },
            Err(e) => WalletFundPayload {
                errors: vec![ApiError::from(e).into()],
                transaction: None,
            },
        })
    }

    /// Dev/regtest: pays an invoice of this Flash from the simulated outside world, so a
    /// receive can be seen without a real network. Refused on mainnet and on a real node.
    async fn dev_lightning_pay_invoice(
        &self,
        ctx: &Context<'_>,
        input: DevLightningPayInvoiceInput,
    ) -> async_graphql::Result<DevLightningPayload> {
        operator(ctx)?;
        let bank = &state(ctx).bank;
        let amount = input.amount.map(|a| a.0);
        Ok(bank
            .dev_ln_pay_from_outside(&input.payment_request, amount)
            .await
            .into())
    }

    /// Dev/regtest: how the simulator's payments to other nodes end from now on.
    async fn dev_lightning_set_outcome(
        &self,
        ctx: &Context<'_>,
        input: DevLightningSetOutcomeInput,
    ) -> async_graphql::Result<DevLightningPayload> {
        operator(ctx)?;
        let delay_ms = u64::try_from(input.delay_ms.unwrap_or(0)).unwrap_or(0);
        let outcome = match input.outcome {
            DevLightningOutcomeKind::Succeed => DevOutcome::Succeed {
                delay_ms,
                fee_ppm: u64::try_from(input.fee_ppm.unwrap_or(1_000)).unwrap_or(0),
            },
            DevLightningOutcomeKind::Fail => DevOutcome::Fail { delay_ms },
            DevLightningOutcomeKind::Hang => DevOutcome::Hang,
        };
        Ok(state(ctx).bank.dev_ln_set_outcome(outcome).into())
    }

    /// Runs a liquidity check now (and acts on it, as the manager would).
    async fn lightning_liquidity_check(&self, ctx: &Context<'_>) -> async_graphql::Result<LightningLiquidityPayload> {
        operator(ctx)?;
        let bank = &state(ctx).bank;
        let result = bank.liquidity_check().await;
        let actions = gql(bank.liquidity_actions(50).await)?;
        Ok(match result {
            Ok(report) => LightningLiquidityPayload {
                errors: vec![],
                liquidity: Some(LightningLiquidity::new(Some(report), bank.liquidity_policy(), actions)),
            },
            Err(e) => LightningLiquidityPayload {
                errors: vec![ApiError::from(e).into()],
                liquidity: None,
            },
        })
    }

    /// Resolves pending Lightning payments from the node's truth now (it also runs on its own
    /// every few seconds).
    async fn lightning_reconcile(&self, ctx: &Context<'_>) -> async_graphql::Result<LightningReconcilePayload> {
        operator(ctx)?;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(match state(ctx).bank.ln_reconcile().await {
            Ok(r) => LightningReconcilePayload {
                errors: vec![],
                checked: count(r.checked),
                succeeded: count(r.succeeded),
                failed: count(r.failed),
                pending: count(r.pending),
            },
            Err(e) => LightningReconcilePayload {
                errors: vec![ApiError::from(e).into()],
                checked: 0,
                succeeded: 0,
                failed: 0,
                pending: 0,
            },
        })
    }
}
