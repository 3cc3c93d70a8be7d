//! The app API: queries, mutations and the `myUpdates` subscription.

use async_graphql::{Context, InputObject, Object, SimpleObject, Subscription, Union, ID};
use flash_auth::{ApiKeyRequest, Credential, Identifier, Scope as AuthScope};
use flash_bank::{BankError, Identity, Transaction, WalletChange};
use flash_core::destination::Destination;
use flash_core::ErrorCode;
use flash_core::{ApiKeyId, Email as CoreEmail, Phone as CorePhone, WalletId as CoreWalletId};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::pay::{pay_request, send};
use super::types::*;
use super::{caller, gql, principal, state};
use crate::error::ApiError;
use crate::rest::session_for;

/// Queries.
#[derive(Default)]
pub struct Query;

#[Object]
impl Query {
    /// The logged-in user (scope `read`).
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let p = principal(ctx, AuthScope::Read)?;
        Ok(Some(User(gql(state(ctx).bank.user(p.user_id).await)?)))
    }

    /// Whether a username is free.
    async fn username_available(&self, ctx: &Context<'_>, username: Username) -> async_graphql::Result<Option<bool>> {
        Ok(Some(gql(state(ctx).bank.username_available(&username.0).await)?))
    }

    /// The NOSTR key a user linked to `username` (null when none).
    async fn npub_by_username(
        &self,
        ctx: &Context<'_>,
        username: Username,
    ) -> async_graphql::Result<Option<NpubByUsername>> {
        let username = gql(flash_core::Username::parse(&username.0).map_err(BankError::from))?;
        let found = gql(state(ctx).names.npub_by_username(&username).await)?;
        Ok(found.map(|(username, npub)| NpubByUsername {
            npub: Some(npub),
            username: Some(Username(username)),
        }))
    }

    /// The wallet that receives payments to `username`.
    async fn account_default_wallet(
        &self,
        ctx: &Context<'_>,
        username: Username,
        wallet_currency: Option<WalletCurrency>,
    ) -> async_graphql::Result<PublicWallet> {
        let wallet = gql(state(ctx).bank.default_wallet_of(&username.0).await)?;
        let currency: WalletCurrency = wallet.currency.into();
        if wallet_currency.is_some_and(|c| c != currency) {
            return Err(ApiError::from(BankError::WalletNotFound).to_graphql());
        }
        Ok(PublicWallet {
            id: ID(wallet.id.to_string()),
            currency,
            wallet_currency: currency,
        })
    }
}

/// Payload error list from a failed operation.
fn errors(e: impl Into<ApiError>) -> Vec<ErrorIface> {
    vec![e.into().into()]
}

/// `userLogin` input: a phone (as Galoy) or, as a Flash extension, an email, plus the code.
#[derive(InputObject)]
pub struct UserLoginInput {
    /// The six-digit code.
    pub code: OneTimeAuthCode,
    /// Phone the code was sent to.
    pub phone: Option<Phone>,
    /// Email the code was sent to (Flash extension).
    pub email: Option<EmailAddress>,
}

/// `userLogout` input.
#[derive(InputObject)]
pub struct UserLogoutInput {
    /// Push-notification token to forget (unused until notifications exist).
    pub device_token: Option<String>,
}

/// A session token or errors.
#[derive(SimpleObject)]
pub struct AuthTokenPayload {
    /// The token.
    pub auth_token: Option<AuthToken>,
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// Always false: TOTP is not offered yet.
    pub totp_required: Option<bool>,
}

/// Success or errors.
#[derive(SimpleObject)]
pub struct SuccessPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// Whether it worked.
    pub success: Option<bool>,
}

/// `intraLedgerPaymentSend` input.
#[derive(InputObject)]
pub struct IntraLedgerPaymentSendInput {
    /// Paying wallet (one of the caller's).
    pub wallet_id: WalletId,
    /// Receiving wallet; or give `recipientUsername`.
    pub recipient_wallet_id: Option<WalletId>,
    /// Receiving user (Flash extension); or give `recipientWalletId`.
    pub recipient_username: Option<Username>,
    /// Amount in satoshis.
    pub amount: SatAmount,
    /// Memo.
    pub memo: Option<Memo>,
    /// Makes the request safe to retry (Flash extension; 1–128 characters).
    pub idempotency_key: Option<String>,
}

/// A payment's result.
#[derive(SimpleObject)]
pub struct PaymentSendPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// Outcome.
    pub status: Option<PaymentSendResult>,
    /// The payer's transaction.
    pub transaction: Option<TransactionGql>,
}

/// `userUpdateUsername` input.
#[derive(InputObject)]
pub struct UserUpdateUsernameInput {
    /// The username.
    pub username: Username,
}

/// The user or errors.
#[derive(SimpleObject)]
pub struct UserUpdateUsernamePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The user.
    pub user: Option<User>,
}

/// A username's NOSTR key.
#[derive(SimpleObject)]
pub struct NpubByUsername {
    /// The key, `npub1…`.
    pub npub: Option<String>,
    /// The username as its owner wrote it.
    pub username: Option<Username>,
}

/// `userUpdateNpub` input.
#[derive(InputObject)]
pub struct UserUpdateNpubInput {
    /// The user's NOSTR public key, `npub1…` (or 64 hex characters).
    pub npub: String,
}

/// The user or errors.
#[derive(SimpleObject)]
pub struct UserUpdateNpubPayload {
    /// Errors (`INVALID_NPUB`, `NPUB_NOT_AVAILABLE`).
    pub errors: Vec<ErrorIface>,
    /// The user.
    pub user: Option<User>,
}

/// `userEmailRegistrationInitiate` input.
#[derive(InputObject)]
pub struct UserEmailRegistrationInitiateInput {
    /// The email to add.
    pub email: EmailAddress,
}

/// A registration id or errors.
#[derive(SimpleObject)]
pub struct UserEmailRegistrationInitiatePayload {
    /// Pass it to `userEmailRegistrationValidate` with the code.
    pub email_registration_id: Option<EmailRegistrationId>,
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The user.
    pub me: Option<User>,
}

/// `userEmailRegistrationValidate` input.
#[derive(InputObject)]
pub struct UserEmailRegistrationValidateInput {
    /// The emailed code.
    pub code: OneTimeAuthCode,
    /// From the initiate step.
    pub email_registration_id: EmailRegistrationId,
}

/// The user or errors.
#[derive(SimpleObject)]
pub struct UserEmailRegistrationValidatePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The user.
    pub me: Option<User>,
}

/// `userContactUpdateAlias` input.
#[derive(InputObject)]
pub struct UserContactUpdateAliasInput {
    /// The alias.
    pub alias: ContactAlias,
    /// The contact.
    pub username: Username,
}

/// The contact or errors.
#[derive(SimpleObject)]
pub struct UserContactUpdateAliasPayload {
    /// The contact.
    pub contact: Option<UserContact>,
    /// Errors.
    pub errors: Vec<ErrorIface>,
}

/// `accountUpdateDefaultWalletId` input.
#[derive(InputObject)]
pub struct AccountUpdateDefaultWalletIdInput {
    /// One of the account's wallets.
    pub wallet_id: WalletId,
}

/// The account or errors.
#[derive(SimpleObject)]
pub struct AccountUpdateDefaultWalletIdPayload {
    /// The account.
    pub account: Option<ConsumerAccount>,
    /// Errors.
    pub errors: Vec<ErrorIface>,
}

/// `apiKeyCreate` input.
#[derive(InputObject)]
pub struct ApiKeyCreateInput {
    /// A name.
    pub name: String,
    /// Scopes (default `[READ]`).
    pub scopes: Option<Vec<Scope>>,
    /// Days until it expires.
    pub expire_in_days: Option<i32>,
    /// Addresses or CIDR networks it may be used from.
    pub ip_allowlist: Option<Vec<String>>,
}

/// A new key and its secret (shown once) or errors.
#[derive(SimpleObject)]
pub struct ApiKeyCreatePayload {
    /// The key.
    pub api_key: Option<ApiKey>,
    /// The secret: store it now, it is not shown again.
    pub api_key_secret: Option<String>,
    /// Errors.
    pub errors: Vec<ErrorIface>,
}

/// `apiKeyRevoke` input.
#[derive(InputObject)]
pub struct ApiKeyRevokeInput {
    /// The key.
    pub id: ID,
}

/// The revoked key or errors.
#[derive(SimpleObject)]
pub struct ApiKeyRevokePayload {
    /// The key.
    pub api_key: Option<ApiKey>,
    /// Errors.
    pub errors: Vec<ErrorIface>,
}

fn parse_wallet(id: &WalletId) -> Result<CoreWalletId, BankError> {
    id.0.parse().map_err(|_| BankError::WalletNotFound)
}

fn scope_name(s: Scope) -> String {
    match s {
        Scope::Read => "read",
        Scope::Receive => "receive",
        Scope::Write => "write",
    }
    .to_string()
}

/// API keys and identity settings need a login session, not an API key.
fn require_session(p: &flash_auth::Principal) -> async_graphql::Result<()> {
    match p.credential {
        Credential::Session { .. } => Ok(()),
        Credential::ApiKey { .. } => {
            Err(ApiError::new(ErrorCode::ForbiddenScope, "this needs a login session").to_graphql())
        }
    }
}

/// Mutations.
#[derive(Default)]
pub struct Mutation;

#[Object]
impl Mutation {
    /// Logs in with a code sent by `POST /auth/phone/code` (or `/auth/email/code`).
    async fn user_login(&self, ctx: &Context<'_>, input: UserLoginInput) -> async_graphql::Result<AuthTokenPayload> {
        let st = state(ctx);
        let ip = caller(ctx)?.ip;
        let result: Result<String, ApiError> = async {
            let (identifier, identity) = match (&input.phone, &input.email) {
                (Some(p), None) => {
                    let p = CorePhone::parse(&p.0).map_err(flash_auth::AuthError::from)?;
                    (Identifier::Phone(p.clone()), Identity::Phone(p))
                }
                (None, Some(e)) => {
                    let e = CoreEmail::parse(&e.0).map_err(flash_auth::AuthError::from)?;
                    (Identifier::Email(e.clone()), Identity::Email(e))
                }
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        "give exactly one of phone or email",
                    ))
                }
            };
            st.auth.verify_code(&identifier, &input.code.0, ip).await?;
            session_for(st, &identity).await
        }
        .await;
        Ok(match result {
            Ok(token) => AuthTokenPayload {
                auth_token: Some(AuthToken(token)),
                errors: vec![],
                totp_required: Some(false),
            },
            Err(e) => AuthTokenPayload {
                auth_token: None,
                errors: errors(e),
                totp_required: None,
            },
        })
    }

    /// Ends the caller's session.
    async fn user_logout(
        &self,
        ctx: &Context<'_>,
        input: Option<UserLogoutInput>,
    ) -> async_graphql::Result<SuccessPayload> {
        let _ = input.and_then(|i| i.device_token);
        let c = caller(ctx)?;
        let p = c.principal.as_ref().map_err(ApiError::to_graphql)?;
        require_session(p)?;
        let token = c.token.as_deref().unwrap_or_default();
        Ok(match state(ctx).auth.logout(token).await {
            Ok(()) => SuccessPayload {
                errors: vec![],
                success: Some(true),
            },
            Err(e) => SuccessPayload {
                errors: errors(e),
                success: Some(false),
            },
        })
    }

    /// Sends a code to an email to add it to the account.
    async fn user_email_registration_initiate(
        &self,
        ctx: &Context<'_>,
        input: UserEmailRegistrationInitiateInput,
    ) -> async_graphql::Result<UserEmailRegistrationInitiatePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        require_session(p)?;
        let st = state(ctx);
        let ip = caller(ctx)?.ip;
        let result: Result<String, ApiError> = async {
            let email = CoreEmail::parse(&input.email.0).map_err(flash_auth::AuthError::from)?;
            Ok(st.auth.start_email_registration(p.user_id, &email, ip).await?)
        }
        .await;
        Ok(match result {
            Ok(id) => UserEmailRegistrationInitiatePayload {
                email_registration_id: Some(EmailRegistrationId(id)),
                errors: vec![],
                me: Some(User(gql(st.bank.user(p.user_id).await)?)),
            },
            Err(e) => UserEmailRegistrationInitiatePayload {
                email_registration_id: None,
                errors: errors(e),
                me: None,
            },
        })
    }

    /// Confirms the emailed code; the email is then the user's.
    async fn user_email_registration_validate(
        &self,
        ctx: &Context<'_>,
        input: UserEmailRegistrationValidateInput,
    ) -> async_graphql::Result<UserEmailRegistrationValidatePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        require_session(p)?;
        let st = state(ctx);
        let ip = caller(ctx)?.ip;
        let result: Result<_, ApiError> = async {
            let email = st
                .auth
                .finish_email_registration(p.user_id, &input.email_registration_id.0, &input.code.0, ip)
                .await?;
            Ok(st.bank.set_email(p.user_id, &email).await?)
        }
        .await;
        Ok(match result {
            Ok(user) => UserEmailRegistrationValidatePayload {
                errors: vec![],
                me: Some(User(user)),
            },
            Err(e) => UserEmailRegistrationValidatePayload {
                errors: errors(e),
                me: None,
            },
        })
    }

    /// Sets the username (once).
    async fn user_update_username(
        &self,
        ctx: &Context<'_>,
        input: UserUpdateUsernameInput,
    ) -> async_graphql::Result<UserUpdateUsernamePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        require_session(p)?;
        Ok(match state(ctx).bank.set_username(p.user_id, &input.username.0).await {
            Ok(user) => UserUpdateUsernamePayload {
                errors: vec![],
                user: Some(User(user)),
            },
            Err(e) => UserUpdateUsernamePayload {
                errors: errors(e),
                user: None,
            },
        })
    }

    /// Links the user's NOSTR key: their NIP-05 name (`username@host`), zaps to them, and
    /// writing to the relay when only Flash users may.
    async fn user_update_npub(
        &self,
        ctx: &Context<'_>,
        input: UserUpdateNpubInput,
    ) -> async_graphql::Result<UserUpdateNpubPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let bank = &state(ctx).bank;
        Ok(match state(ctx).names.set_npub(p.user_id, &input.npub).await {
            Ok(_) => UserUpdateNpubPayload {
                errors: vec![],
                user: Some(User(gql(bank.user(p.user_id).await)?)),
            },
            Err(e) => UserUpdateNpubPayload {
                errors: errors(e),
                user: None,
            },
        })
    }

    /// Names a contact.
    async fn user_contact_update_alias(
        &self,
        ctx: &Context<'_>,
        input: UserContactUpdateAliasInput,
    ) -> async_graphql::Result<UserContactUpdateAliasPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        Ok(
            match state(ctx)
                .bank
                .set_contact_alias(p.account_id, &input.username.0, &input.alias.0)
                .await
            {
                Ok(c) => UserContactUpdateAliasPayload {
                    contact: Some(UserContact(c)),
                    errors: vec![],
                },
                Err(e) => UserContactUpdateAliasPayload {
                    contact: None,
                    errors: errors(e),
                },
            },
        )
    }

    /// Chooses the wallet that receives by default.
    async fn account_update_default_wallet_id(
        &self,
        ctx: &Context<'_>,
        input: AccountUpdateDefaultWalletIdInput,
    ) -> async_graphql::Result<AccountUpdateDefaultWalletIdPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let bank = &state(ctx).bank;
        let result = match parse_wallet(&input.wallet_id) {
            Ok(w) => bank.set_default_wallet(p.account_id, w).await,
            Err(e) => Err(e),
        };
        Ok(match result {
            Ok(a) => AccountUpdateDefaultWalletIdPayload {
                account: Some(ConsumerAccount(a)),
                errors: vec![],
            },
            Err(e) => AccountUpdateDefaultWalletIdPayload {
                account: None,
                errors: errors(e),
            },
        })
    }

    /// Pays another Flash wallet, by wallet id or username (scope `write`).
    async fn intra_ledger_payment_send(
        &self,
        ctx: &Context<'_>,
        input: IntraLedgerPaymentSendInput,
    ) -> async_graphql::Result<PaymentSendPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let to = match (input.recipient_wallet_id, input.recipient_username) {
            (Some(w), None) => Ok(Destination::WalletId(w.0)),
            (None, Some(u)) => Ok(Destination::Username(u.0)),
            _ => Err(BankError::AmbiguousRecipient),
        };
        let amount = Some(input.amount.0);
        let req = to.and_then(|to| {
            pay_request(
                p.account_id,
                &input.wallet_id,
                to.into(),
                amount,
                input.memo,
                input.idempotency_key,
            )
        });
        Ok(send(ctx, req).await)
    }

    /// Creates an API key (login session only; at most 10 live keys).
    async fn api_key_create(
        &self,
        ctx: &Context<'_>,
        input: ApiKeyCreateInput,
    ) -> async_graphql::Result<ApiKeyCreatePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        require_session(p)?;
        let st = state(ctx);
        let req = ApiKeyRequest {
            name: input.name,
            scopes: input
                .scopes
                .unwrap_or_else(|| vec![Scope::Read])
                .into_iter()
                .map(scope_name)
                .collect(),
            expire_in_days: input.expire_in_days.map(i64::from),
            ip_allowlist: input.ip_allowlist.unwrap_or_default(),
        };
        Ok(match st.auth.create_api_key(p.account_id, &req).await {
            Ok((key, secret)) => ApiKeyCreatePayload {
                api_key: Some(ApiKey(key, st.bank.now_ms())),
                api_key_secret: Some(secret),
                errors: vec![],
            },
            Err(e) => ApiKeyCreatePayload {
                api_key: None,
                api_key_secret: None,
                errors: errors(e),
            },
        })
    }

    /// Revokes one of the account's API keys.
    async fn api_key_revoke(
        &self,
        ctx: &Context<'_>,
        input: ApiKeyRevokeInput,
    ) -> async_graphql::Result<ApiKeyRevokePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        require_session(p)?;
        let st = state(ctx);
        let result = match input.id.parse::<ApiKeyId>() {
            Ok(id) => st.auth.revoke_api_key(p.account_id, id).await,
            Err(_) => Err(flash_auth::AuthError::ApiKeyNotFound),
        };
        Ok(match result {
            Ok(key) => ApiKeyRevokePayload {
                api_key: Some(ApiKey(key, st.bank.now_ms())),
                errors: vec![],
            },
            Err(e) => ApiKeyRevokePayload {
                api_key: None,
                errors: errors(e),
            },
        })
    }
}

/// A payment inside Flash touched one of the caller's wallets.
#[derive(SimpleObject)]
pub struct IntraLedgerUpdate {
    /// The wallet's transaction.
    pub transaction: TransactionGql,
    /// Payment or receipt.
    pub tx_notification_type: TxNotificationType,
    /// The wallet.
    pub wallet_id: WalletId,
    /// Amount in satoshis (unsigned).
    pub amount: SatAmount,
}

/// A Lightning payment touched one of the caller's wallets: an invoice paid (to it or by
/// it, also inside Flash), or a send that settled or failed.
#[derive(SimpleObject)]
pub struct LnUpdate {
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// `PAID` once the money moved; `PENDING` while a send is in flight or after it failed
    /// (see `transaction.status`).
    pub status: super::lightning::InvoicePaymentStatus,
    /// The wallet's transaction.
    pub transaction: TransactionGql,
    /// The wallet.
    pub wallet_id: WalletId,
}

/// An on-chain deposit to one of the caller's wallets was seen (pending), credited, or
/// dropped before it was credited (pending, with `pendingIncomingBalance` lower again).
#[derive(SimpleObject)]
pub struct OnChainUpdate {
    /// Pending or credited.
    pub tx_notification_type: TxNotificationType,
    /// The deposit's transaction.
    pub tx_hash: OnChainTxHash,
    /// Its value in satoshis.
    pub amount: SatAmount,
    /// The wallet.
    pub wallet_id: WalletId,
    /// The wallet's transaction once credited (none while pending: nothing has moved yet).
    pub transaction: Option<TransactionGql>,
}

/// What changed.
#[derive(Union)]
// The variants are GraphQL type names, fixed by Galoy's schema.
#[allow(clippy::enum_variant_names)]
pub enum UserUpdate {
    /// A payment inside Flash.
    IntraLedgerUpdate(IntraLedgerUpdate),
    /// A Lightning payment.
    LnUpdate(LnUpdate),
    /// An on-chain deposit.
    OnChainUpdate(OnChainUpdate),
}

/// One update for the caller.
#[derive(SimpleObject)]
pub struct MyUpdatesPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The update.
    pub update: Option<UserUpdate>,
}

/// Subscriptions.
#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Every balance change of the caller's wallets (scope `read`).
    async fn my_updates(&self, ctx: &Context<'_>) -> async_graphql::Result<impl Stream<Item = MyUpdatesPayload>> {
        let account = principal(ctx, AuthScope::Read)?.account_id;
        let bank = state(ctx).bank.clone();
        let events = bank.subscribe();
        Ok(futures_util::stream::unfold(events, move |mut events| {
            let bank = bank.clone();
            async move {
                loop {
                    match events.recv().await {
                        Ok(e) if e.account_id == account => {
                            let journal = match e.change {
                                WalletChange::Journal(journal) => journal,
                                WalletChange::Deposit { outpoint, amount_sat } => {
                                    let update = pending_deposit(e.wallet_id, &outpoint, amount_sat);
                                    return Some((update, events));
                                }
                                // Announced as its journal just before.
                                WalletChange::InvoicePaid { .. } => continue,
                            };
                            let payload = match bank.transaction(e.wallet_id, journal).await {
                                Ok(t) => update(t),
                                Err(err) => MyUpdatesPayload {
                                    errors: errors(err),
                                    update: None,
                                },
                            };
                            return Some((payload, events));
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "myUpdates subscriber lagged"),
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        }))
    }
}

fn pending_deposit(wallet_id: flash_core::WalletId, outpoint: &str, amount_sat: i64) -> MyUpdatesPayload {
    let txid = outpoint.split_once(':').map_or(outpoint, |(txid, _)| txid);
    MyUpdatesPayload {
        errors: vec![],
        update: Some(UserUpdate::OnChainUpdate(OnChainUpdate {
            tx_notification_type: TxNotificationType::OnchainReceiptPending,
            tx_hash: OnChainTxHash(txid.to_string()),
            amount: SatAmount(amount_sat),
            wallet_id: WalletId(wallet_id.to_string()),
            transaction: None,
        })),
    }
}

fn update(t: Transaction) -> MyUpdatesPayload {
    if let Some(outpoint) = t.onchain_outpoint.clone() {
        let txid = outpoint
            .split_once(':')
            .map_or(outpoint.as_str(), |(txid, _)| txid)
            .to_string();
        // A credit, or the hold of a review that takes it back for now.
        let kind = if t.amount > 0 {
            TxNotificationType::OnchainReceipt
        } else {
            TxNotificationType::OnchainReceiptPending
        };
        return MyUpdatesPayload {
            errors: vec![],
            update: Some(UserUpdate::OnChainUpdate(OnChainUpdate {
                tx_notification_type: kind,
                tx_hash: OnChainTxHash(txid),
                amount: SatAmount(t.amount.abs()),
                wallet_id: WalletId(t.wallet_id.to_string()),
                transaction: Some(TransactionGql(t)),
            })),
        };
    }
    if let Some(hash) = t.payment_hash.clone() {
        let status = if t.status == flash_bank::TxStatus::Success {
            super::lightning::InvoicePaymentStatus::Paid
        } else {
            super::lightning::InvoicePaymentStatus::Pending
        };
        let wallet_id = WalletId(t.wallet_id.to_string());
        return MyUpdatesPayload {
            errors: vec![],
            update: Some(UserUpdate::LnUpdate(LnUpdate {
                payment_hash: PaymentHash(hash),
                status,
                transaction: TransactionGql(t),
                wallet_id,
            })),
        };
    }
    let kind = if t.amount < 0 {
        TxNotificationType::IntraLedgerPayment
    } else {
        TxNotificationType::IntraLedgerReceipt
    };
    let wallet_id = WalletId(t.wallet_id.to_string());
    let amount = SatAmount(t.amount.abs());
    MyUpdatesPayload {
        errors: vec![],
        update: Some(UserUpdate::IntraLedgerUpdate(IntraLedgerUpdate {
            transaction: TransactionGql(t),
            tx_notification_type: kind,
            wallet_id,
            amount,
        })),
    }
}
