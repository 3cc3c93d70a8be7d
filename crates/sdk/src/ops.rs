//! The GraphQL operations the client sends, typed from the server's schema by
//! [`graphql_client`]: one document per operation under `crates/sdk/graphql/` (`public/`
//! checked against `schema/public.graphql`, `admin/` against `schema/admin.graphql`), so a
//! field or argument the server does not have fails the build.
//!
//! Each operation is a unit struct implementing [`graphql_client::GraphQLQuery`] with a
//! module of the same name in snake case holding its generated `Variables` and
//! `ResponseData`. Custom scalars map to the Rust types in [`scalars`]. The schema's enums
//! that the client sends map to the SDK's own enums ([`crate::Speed`], [`crate::Scope`], …);
//! those it only reads are kept as the server's text, so that a newer server adding a value
//! does not break an older client.

// graphql_client generates the `Variables`, `ResponseData` and selection types of each
// operation's module without doc comments; what they are is the document they come from.
#![allow(missing_docs)]

use graphql_client::GraphQLQuery;

pub use crate::types::{AccountLevel, AccountStatus, BudgetPeriod as NwcBudgetPeriod, Scope, Speed as PayoutSpeed};

/// How a payment went (`SUCCESS`, `FAILURE`, `PENDING`, `ALREADY_PAID`), as the server names it.
pub type PaymentSendResult = String;
/// A transaction's state (`SUCCESS`, `PENDING`, `FAILURE`), as the server names it.
pub type TxStatus = String;
/// `SEND` or `RECEIVE`, as the server names it.
pub type TxDirection = String;
/// `BTC` or `USD`, as the server names it.
pub type WalletCurrency = String;
/// An invoice's state (`PENDING`, `PAID`, `EXPIRED`), as the server names it.
pub type InvoicePaymentStatus = String;

/// The Rust types of the schema's custom scalars.
pub mod scalars {
    /// A time: Unix seconds (see [`crate::Timestamp`]).
    pub type Timestamp = crate::types::Timestamp;
    /// Sats, never negative.
    pub type SatAmount = i64;
    /// Sats, signed (a send is negative).
    pub type SignedAmount = i64;
    /// An integer that fits a JavaScript number.
    pub type SafeInt = i64;
    /// Cents.
    pub type CentAmount = i64;
    /// Minutes.
    pub type Minutes = i64;
    /// Seconds.
    pub type Seconds = i64;
    /// A wallet id (a UUID).
    pub type WalletId = String;
    /// A username.
    pub type Username = String;
    /// A Bitcoin address.
    pub type OnChainAddress = String;
    /// A Bitcoin transaction id.
    pub type OnChainTxHash = String;
    /// A Lightning payment hash, hex.
    pub type PaymentHash = String;
    /// A BOLT11 invoice.
    pub type LnPaymentRequest = String;
    /// A Lightning preimage, hex.
    pub type LnPaymentPreImage = String;
    /// A Lightning payment secret, hex.
    pub type LnPaymentSecret = String;
    /// A memo.
    pub type Memo = String;
    /// A phone number.
    pub type Phone = String;
    /// An e-mail address.
    pub type EmailAddress = String;
    /// A contact's name.
    pub type ContactAlias = String;
    /// A display currency code.
    pub type DisplayCurrency = String;
    /// A session token.
    pub type AuthToken = String;
    /// 32 bytes, hex.
    pub type Hex32Bytes = String;
    /// A one-time login code.
    pub type OneTimeAuthCode = String;
    /// An e-mail registration id.
    pub type EmailRegistrationId = String;
}

/// Declares operations of one API: `$schema` is the schema they are checked against, each
/// `$file` the document under `crates/sdk/graphql/`.
macro_rules! operations {
    ($schema:tt: $($(#[$doc:meta])* $name:ident = $file:tt;)+) => {
        $(
            $(#[$doc])*
            #[derive(GraphQLQuery)]
            #[graphql(
                schema_path = $schema,
                query_path = $file,
                response_derives = "Debug, Clone, PartialEq, Serialize",
                variables_derives = "Debug, Clone",
                custom_scalars_module = "crate::ops::scalars",
                extern_enums("AccountLevel", "AccountStatus", "NwcBudgetPeriod", "Scope", "PayoutSpeed",
                    "PaymentSendResult", "TxStatus", "TxDirection", "WalletCurrency", "InvoicePaymentStatus"),
                skip_serializing_none
            )]
            pub struct $name;
        )+
    };
}

operations! { "schema/public.graphql":
    /// The signed-in user with the default account and its wallets.
    Me = "graphql/public/me.graphql";
    /// One page of the default account's transactions, of some wallets or all.
    Transactions = "graphql/public/transactions.graphql";
    /// The default wallet of a username.
    AccountDefaultWallet = "graphql/public/account_default_wallet.graphql";
    /// Pays any destination; the server picks the rail.
    PaymentSend = "graphql/public/payment_send.graphql";
    /// Sends a wallet's whole balance, less the fee, to a Bitcoin address.
    OnChainPaymentSendAll = "graphql/public/on_chain_payment_send_all.graphql";
    /// Creates an invoice with an amount.
    LnInvoiceCreate = "graphql/public/ln_invoice_create.graphql";
    /// Creates an invoice the payer chooses the amount of.
    LnNoAmountInvoiceCreate = "graphql/public/ln_no_amount_invoice_create.graphql";
    /// The payment status of an invoice this bank issued.
    LnInvoicePaymentStatus = "graphql/public/ln_invoice_payment_status.graphql";
    /// The fee paying an invoice with an amount would cost.
    LnInvoiceFeeProbe = "graphql/public/ln_invoice_fee_probe.graphql";
    /// The fee paying a no-amount invoice a given amount would cost.
    LnNoAmountInvoiceFeeProbe = "graphql/public/ln_no_amount_invoice_fee_probe.graphql";
    /// The most an on-chain payment costs in fees (0 to an address of this bank).
    OnChainTxFee = "graphql/public/on_chain_tx_fee.graphql";
    /// A fresh deposit address for a wallet.
    OnChainAddressCreate = "graphql/public/on_chain_address_create.graphql";
    /// A wallet's newest deposit address (created if it has none).
    OnChainAddressCurrent = "graphql/public/on_chain_address_current.graphql";
    /// Turns wallet balance into a Cashu token of this bank's mint.
    EcashMint = "graphql/public/ecash_mint.graphql";
    /// Credits a wallet from a Cashu token of this bank's mint.
    EcashRedeem = "graphql/public/ecash_redeem.graphql";
    /// Sets the caller's username.
    UserUpdateUsername = "graphql/public/user_update_username.graphql";
    /// Links the caller's NOSTR key.
    UserUpdateNpub = "graphql/public/user_update_npub.graphql";
    /// Creates an API key.
    ApiKeyCreate = "graphql/public/api_key_create.graphql";
    /// The caller's API keys.
    ApiKeys = "graphql/public/api_keys.graphql";
    /// Revokes an API key.
    ApiKeyRevoke = "graphql/public/api_key_revoke.graphql";
    /// Connects an app to a wallet (Nostr Wallet Connect).
    NwcConnectionCreate = "graphql/public/nwc_connection_create.graphql";
    /// The caller's wallet connections.
    NwcConnections = "graphql/public/nwc_connections.graphql";
    /// Cuts a wallet connection off.
    NwcConnectionRevoke = "graphql/public/nwc_connection_revoke.graphql";
    /// Makes a merchant store.
    MerchantStoreCreate = "graphql/public/merchant_store_create.graphql";
    /// The caller's merchant stores.
    MerchantStores = "graphql/public/merchant_stores.graphql";
    /// Makes a Greenfield API key.
    MerchantApiKeyCreate = "graphql/public/merchant_api_key_create.graphql";
    /// The caller's Greenfield API keys.
    MerchantApiKeys = "graphql/public/merchant_api_keys.graphql";
    /// Revokes a Greenfield API key.
    MerchantApiKeyRevoke = "graphql/public/merchant_api_key_revoke.graphql";
    /// Creates an LNURL-withdraw link.
    LnurlWithdrawCreate = "graphql/public/lnurl_withdraw_create.graphql";
    /// The caller's LNURL-withdraw links.
    LnurlWithdrawLinks = "graphql/public/lnurl_withdraw_links.graphql";
    /// Revokes an LNURL-withdraw link.
    LnurlWithdrawRevoke = "graphql/public/lnurl_withdraw_revoke.graphql";
    /// Makes a Flash Card and its one-time programming link.
    CardCreate = "graphql/public/card_create.graphql";
    /// The caller's Flash Cards.
    Cards = "graphql/public/cards.graphql";
    /// The deep link that opens the Bolt Card NFC Programmer app to reset a card.
    CardResetDeeplink = "graphql/public/card_reset_deeplink.graphql";
    /// Sets a card's limits.
    CardLimitsUpdate = "graphql/public/card_limits_update.graphql";
    /// Sets or removes a card's PIN.
    CardPinSet = "graphql/public/card_pin_set.graphql";
    /// Stops a card paying.
    CardDisable = "graphql/public/card_disable.graphql";
    /// Lets a disabled card pay again.
    CardEnable = "graphql/public/card_enable.graphql";
    /// Retires a card for good.
    CardWipe = "graphql/public/card_wipe.graphql";
    /// Makes a rewards program.
    RewardProgramCreate = "graphql/public/reward_program_create.graphql";
    /// Ends a rewards program.
    RewardProgramEnd = "graphql/public/reward_program_end.graphql";
    /// One rewards program.
    RewardProgram = "graphql/public/reward_program.graphql";
    /// A store's rewards programs.
    RewardPrograms = "graphql/public/reward_programs.graphql";
    /// The caller's contacts.
    Contacts = "graphql/public/contacts.graphql";
    /// Names a contact.
    UserContactUpdateAlias = "graphql/public/user_contact_update_alias.graphql";
}

operations! { "schema/admin.graphql":
    /// Checks that the ledger balances.
    LedgerVerify = "graphql/admin/ledger_verify.graphql";
    /// Credits a wallet.
    WalletFund = "graphql/admin/wallet_fund.graphql";
    /// Changes an account's level.
    AccountUpdateLevel = "graphql/admin/account_update_level.graphql";
    /// Changes an account's status.
    AccountUpdateStatus = "graphql/admin/account_update_status.graphql";
    /// Reads one ledger journal.
    Journal = "graphql/admin/journal.graphql";
    /// Dev simulator: pays an invoice of this bank from the simulated outside world.
    DevLightningPayInvoice = "graphql/admin/dev_lightning_pay_invoice.graphql";
    /// The Lightning node and its channels.
    LightningNode = "graphql/admin/lightning_node.graphql";
    /// The liquidity manager's latest view.
    LightningLiquidity = "graphql/admin/lightning_liquidity.graphql";
    /// Runs a liquidity check now.
    LightningLiquidityCheck = "graphql/admin/lightning_liquidity_check.graphql";
    /// Resolves pending Lightning payments now.
    LightningReconcile = "graphql/admin/lightning_reconcile.graphql";
    /// The hot wallet, pending deposits and queued payouts.
    OnchainStatus = "graphql/admin/onchain_status.graphql";
    /// Payouts waiting for a batch, oldest first.
    OnchainPayoutQueue = "graphql/admin/onchain_payout_queue.graphql";
    /// Payout transactions, newest first.
    OnchainBatches = "graphql/admin/onchain_batches.graphql";
    /// Sends the queued payouts now.
    OnchainPayoutBatchNow = "graphql/admin/onchain_payout_batch_now.graphql";
    /// Deposits under review, oldest first.
    OnchainReviews = "graphql/admin/onchain_reviews.graphql";
    /// Ends a review by reclaiming what the wallet still holds.
    OnchainReviewReclaim = "graphql/admin/onchain_review_reclaim.graphql";
    /// Dev chain: a payment from outside to an address, into the simulated mempool.
    DevChainDeposit = "graphql/admin/dev_chain_deposit.graphql";
    /// Dev chain: mines blocks.
    DevChainMine = "graphql/admin/dev_chain_mine.graphql";
    /// Dev chain: replaces the top blocks.
    DevChainReorg = "graphql/admin/dev_chain_reorg.graphql";
    /// Cold storage's balance, policy and latest sweeps.
    ColdStorage = "graphql/admin/cold_storage.graphql";
    /// Sweeps the hot wallet's excess to cold storage now, if the policy calls for it.
    ColdSweepNow = "graphql/admin/cold_sweep_now.graphql";
    /// A cold → hot PSBT for the cosigners.
    ColdPsbtCreate = "graphql/admin/cold_psbt_create.graphql";
    /// Combines the cosigners' PSBTs, finalises and broadcasts the transaction.
    ColdPsbtFinalizeBroadcast = "graphql/admin/cold_psbt_finalize_broadcast.graphql";
    /// Cancels a cold → hot PSBT still awaiting signatures.
    ColdPsbtCancel = "graphql/admin/cold_psbt_cancel.graphql";
    /// The mint's books against the ledger, and its keysets.
    EcashStatus = "graphql/admin/ecash_status.graphql";
    /// A new active keyset; the old one stops signing and stays redeemable.
    EcashKeysetRotate = "graphql/admin/ecash_keyset_rotate.graphql";
}

/// graphql_client generates a fragment's struct once in every operation's module that spreads
/// it; this turns the copies into the one the SDK hands out, field by field, so a field one
/// copy lacks fails the build.
macro_rules! same_fragment {
    (@one $to:ty, $from:ty, { $($field:ident),+ $(,)? }) => {
        impl From<$from> for $to {
            fn from(v: $from) -> Self {
                Self { $($field: v.$field),+ }
            }
        }
    };
    ($to:ty, $fields:tt, $($from:ty),+ $(,)?) => {
        $(same_fragment!(@one $to, $from, $fields);)+
    };
}

same_fragment!(cards::CardFields, {
    id, name, wallet_id, state, key_version, counter, tap_limit, day_limit, created_at, pin_limit, pin_failures,
}, card_create::CardFields, card_limits_update::CardFields, card_pin_set::CardFields,
    card_disable::CardFields, card_enable::CardFields, card_wipe::CardFields);

same_fragment!(reward_programs::RewardProgramFields, {
    id, store_id, name, status, budget, granted, left, held, returned, grants, rate_basis_points, fixed,
    card_only, min_purchase, min_reward, max_reward, customer_cap, cooldown_seconds, claim_days, starts_at,
    ends_at, created_at,
}, reward_program_create::RewardProgramFields, reward_program_end::RewardProgramFields,
    reward_program::RewardProgramFields);

same_fragment!(api_keys::ApiKeyFields, {
    id, name, scopes, created_at, expires_at, revoked, last_used_at,
}, api_key_create::ApiKeyFields);

same_fragment!(nwc_connections::NwcConnectionFields, {
    id, name, wallet_id, methods, budget_sats, budget_period, spent_sats, expires_at, created_at, revoked_at,
    last_used_at,
}, nwc_connection_create::NwcConnectionFields);

same_fragment!(merchant_stores::MerchantStoreFields, { id, name, default_currency, archived },
    merchant_store_create::MerchantStoreFields);

same_fragment!(merchant_api_keys::MerchantApiKeyFields, { id, label, permissions, created_at },
    merchant_api_key_create::MerchantApiKeyFields);

same_fragment!(lnurl_withdraw_links::WithdrawLinkFields, {
    id, wallet_id, title, min_amount, max_amount, uses_total, uses_left, expires_at, revoked, created_at,
}, lnurl_withdraw_create::WithdrawLinkFields);

same_fragment!(contacts::ContactFields, { username, alias, transactions_count },
    user_contact_update_alias::ContactFields);

same_fragment!(account_update_level::AccountDetailsFields, { id, level, status },
    account_update_status::AccountDetailsFields);

same_fragment!(payment_send::PaymentTransactionFields, {
    id, status, direction, settlement_amount, settlement_fee, settlement_currency, memo,
}, on_chain_payment_send_all::PaymentTransactionFields);

same_fragment!(cold_storage::SweepFields, {
    id, direction, address, amount, fee, status, tx_hash, psbt, created_at,
}, cold_sweep_now::SweepFields, cold_psbt_create::SweepFields, cold_psbt_finalize_broadcast::SweepFields,
    cold_psbt_cancel::SweepFields);

same_fragment!(ecash_status::KeysetFields, { id, unit, active, input_fee_ppk }, ecash_keyset_rotate::KeysetFields);

same_fragment!(lightning_liquidity::LiquidityActionFields, { kind, peer, amount, ok, detail, created_at },
    lightning_liquidity_check::LiquidityActionFields);

impl From<lightning_liquidity_check::LiquidityFields> for lightning_liquidity::LiquidityFields {
    fn from(v: lightning_liquidity_check::LiquidityFields) -> Self {
        Self {
            in_policy: v.in_policy,
            checked_at: v.checked_at,
            active_channels: v.active_channels,
            outbound: v.outbound,
            inbound: v.inbound,
            outbound_percent: v.outbound_percent,
            inbound_percent: v.inbound_percent,
            onchain: v.onchain,
            issues: v.issues,
            min_outbound_percent: v.min_outbound_percent,
            min_inbound_percent: v.min_inbound_percent,
            actions: v.actions.into_iter().map(Into::into).collect(),
        }
    }
}
