//! GraphQL documents sent by the client and the helpers that turn a GraphQL
//! response into data or a [`ClientError`].

use serde_json::Value;

use crate::error::{ClientError, GraphQlError};

/// `me` with the default account and its wallets.
pub const ME_QUERY: &str = "query { me { id username phone email { address } defaultAccount { id level \
defaultWalletId wallets { id walletCurrency balance pendingIncomingBalance } } } }";

/// The selection set of one transaction node.
const TRANSACTION_FIELDS: &str = "id createdAt direction status memo settlementAmount \
settlementFee settlementCurrency settlementVia { __typename ... on SettlementViaIntraLedger \
{ counterPartyUsername counterPartyWalletId } ... on SettlementViaOnChain { transactionHash vout } } \
initiationVia { __typename ... on InitiationViaOnChain { address } }";

/// Builds the transaction history query; `walletIds` is only sent when a wallet
/// is chosen (the server returns all wallets when it is omitted).
pub fn transactions_query(with_wallet: bool) -> String {
    let (var, arg) = if with_wallet {
        ("$walletId: WalletId, ", ", walletIds: [$walletId]")
    } else {
        ("", "")
    };
    format!(
        "query({var}$first: Int, $after: String) {{ me {{ defaultAccount {{ \
transactions(first: $first, after: $after{arg}) {{ edges {{ cursor node {{ {TRANSACTION_FIELDS} }} }} \
pageInfo {{ hasNextPage endCursor }} }} }} }} }}"
    )
}

/// Looks up the default wallet of a username.
pub const ACCOUNT_DEFAULT_WALLET_QUERY: &str = "query($username: Username!) { \
accountDefaultWallet(username: $username) { id walletCurrency } }";

/// The selection set of every payment payload (`PaymentSendPayload`).
macro_rules! payment_payload {
    () => {
        "{ status errors { message code } transaction { id status direction settlementAmount \
settlementFee settlementCurrency memo } }"
    };
}

/// Builds a payment mutation document from its input type and field name.
macro_rules! payment_mutation {
    ($input:literal, $field:literal) => {
        concat!(
            "mutation($input: ",
            $input,
            "!) { ",
            $field,
            "(input: $input) ",
            payment_payload!(),
            " }"
        )
    };
}

/// Pays any destination; the server picks the rail (Flash extension).
pub const PAYMENT_SEND: &str = payment_mutation!("PaymentSendInput", "paymentSend");

/// Creates an invoice with an amount.
pub const LN_INVOICE_CREATE: &str = "mutation($input: LnInvoiceCreateInput!) { lnInvoiceCreate(input: $input) \
{ errors { message code } invoice { paymentHash paymentRequest paymentStatus satoshis createdAt expiresAt } } }";

/// Creates an invoice the payer chooses the amount of.
pub const LN_NO_AMOUNT_INVOICE_CREATE: &str = "mutation($input: LnNoAmountInvoiceCreateInput!) { \
lnNoAmountInvoiceCreate(input: $input) { errors { message code } invoice { paymentHash paymentRequest \
paymentStatus createdAt expiresAt } } }";

/// The payment status of an invoice this bank issued.
pub const LN_INVOICE_PAYMENT_STATUS: &str = "query($input: LnInvoicePaymentStatusInput!) { \
lnInvoicePaymentStatus(input: $input) { errors { message code } status paymentHash paymentRequest } }";

/// The fee paying an invoice with an amount would cost.
pub const LN_INVOICE_FEE_PROBE: &str = "mutation($input: LnInvoiceFeeProbeInput!) { \
lnInvoiceFeeProbe(input: $input) { errors { message code } amount } }";

/// The fee paying a no-amount invoice a given amount would cost.
pub const LN_NO_AMOUNT_INVOICE_FEE_PROBE: &str = "mutation($input: LnNoAmountInvoiceFeeProbeInput!) { \
lnNoAmountInvoiceFeeProbe(input: $input) { errors { message code } amount } }";

/// Creates an API key.
pub const API_KEY_CREATE: &str = "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) \
{ errors { message code } apiKey { id name scopes createdAt expiresAt } apiKeySecret } }";

/// Lists the caller's API keys.
pub const API_KEYS_QUERY: &str = "query { me { apiKeys { id name scopes createdAt expiresAt revoked lastUsedAt } } }";

/// Revokes an API key.
pub const API_KEY_REVOKE: &str = "mutation($input: ApiKeyRevokeInput!) { apiKeyRevoke(input: $input) \
{ errors { message code } apiKey { id revoked } } }";

/// Sets the caller's username.
pub const USER_UPDATE_USERNAME: &str = "mutation($input: UserUpdateUsernameInput!) { \
userUpdateUsername(input: $input) { errors { message code } user { id username } } }";

/// Links the caller's NOSTR key.
pub const USER_UPDATE_NPUB: &str = "mutation($input: UserUpdateNpubInput!) { \
userUpdateNpub(input: $input) { errors { message code } user { id username npub } } }";

/// The fields of a wallet connection.
macro_rules! nwc_fields {
    () => {
        "id name walletId methods budgetSats budgetPeriod spentSats expiresAt createdAt revokedAt lastUsedAt"
    };
}

/// Connects an app to a wallet (Nostr Wallet Connect).
pub const NWC_CONNECTION_CREATE: &str = concat!(
    "mutation($input: NwcConnectionCreateInput!) { nwcConnectionCreate(input: $input) { \
errors { message code } uri connection { ",
    nwc_fields!(),
    " } } }"
);

/// The caller's wallet connections.
pub const NWC_CONNECTIONS_QUERY: &str = concat!("query { nwcConnections { ", nwc_fields!(), " } }");

/// Cuts a wallet connection off.
pub const NWC_CONNECTION_REVOKE: &str = "mutation($input: NwcConnectionRevokeInput!) { \
nwcConnectionRevoke(input: $input) { errors { message code } revoked } }";

/// Makes a merchant store.
pub const MERCHANT_STORE_CREATE: &str = "mutation($input: MerchantStoreCreateInput!) { \
merchantStoreCreate(input: $input) { errors { message code } store { id name defaultCurrency archived } } }";

/// The caller's merchant stores.
pub const MERCHANT_STORES_QUERY: &str = "query { merchantStores { id name defaultCurrency archived } }";

/// Makes a Greenfield API key.
pub const MERCHANT_API_KEY_CREATE: &str = "mutation($input: MerchantApiKeyCreateInput!) { \
merchantApiKeyCreate(input: $input) { errors { message code } secret apiKey { id label permissions createdAt } } }";

/// The caller's Greenfield API keys.
pub const MERCHANT_API_KEYS_QUERY: &str = "query { merchantApiKeys { id label permissions createdAt } }";

/// Revokes a Greenfield API key.
pub const MERCHANT_API_KEY_REVOKE: &str = "mutation($input: MerchantApiKeyRevokeInput!) { \
merchantApiKeyRevoke(input: $input) { errors { message code } revoked } }";

/// The fields of an LNURL-withdraw link.
macro_rules! withdraw_link_fields {
    () => {
        "id walletId title minAmount maxAmount usesTotal usesLeft expiresAt revoked createdAt"
    };
}

/// Creates an LNURL-withdraw link.
pub const LNURL_WITHDRAW_CREATE: &str = concat!(
    "mutation($input: LnurlWithdrawCreateInput!) { lnurlWithdrawCreate(input: $input) { \
errors { message code } lnurl url link { ",
    withdraw_link_fields!(),
    " } } }"
);

/// The caller's LNURL-withdraw links.
pub const LNURL_WITHDRAW_LINKS_QUERY: &str = concat!("query { lnurlWithdrawLinks { ", withdraw_link_fields!(), " } }");

/// Revokes an LNURL-withdraw link.
pub const LNURL_WITHDRAW_REVOKE: &str = "mutation($input: LnurlWithdrawRevokeInput!) { \
lnurlWithdrawRevoke(input: $input) { errors { message code } success } }";

/// The fields of a Flash Card.
macro_rules! card_fields {
    () => {
        "id name walletId state keyVersion counter tapLimit dayLimit createdAt pinLimit pinFailures"
    };
}

/// Makes a Flash Card and its one-time programming link.
pub const CARD_CREATE: &str = concat!(
    "mutation($input: CardCreateInput!) { cardCreate(input: $input) { \
errors { message code } programUrl programDeeplink card { ",
    card_fields!(),
    " } } }"
);

/// The caller's Flash Cards.
pub const CARDS_QUERY: &str = concat!("query { cards { ", card_fields!(), " } }");

/// The deep link that opens the Bolt Card NFC Programmer app to reset a card.
pub const CARD_RESET_DEEPLINK_QUERY: &str = "query { cardResetDeeplink }";

/// Sets a card's limits.
pub const CARD_LIMITS_UPDATE: &str = concat!(
    "mutation($input: CardLimitsUpdateInput!) { cardLimitsUpdate(input: $input) { \
errors { message code } card { ",
    card_fields!(),
    " } } }"
);

/// Sets or removes a card's PIN.
pub const CARD_PIN_SET: &str = concat!(
    "mutation($input: CardPinSetInput!) { cardPinSet(input: $input) { \
errors { message code } card { ",
    card_fields!(),
    " } } }"
);

/// One of the mutations that change a card's state, by its field name (`cardDisable`,
/// `cardEnable`, `cardWipe`).
macro_rules! card_state_mutation {
    ($field:literal) => {
        concat!(
            "mutation($input: CardInput!) { ",
            $field,
            "(input: $input) { errors { message code } card { ",
            card_fields!(),
            " } } }"
        )
    };
}

/// Stops a card paying.
pub const CARD_DISABLE: &str = card_state_mutation!("cardDisable");

/// Lets a disabled card pay again.
pub const CARD_ENABLE: &str = card_state_mutation!("cardEnable");

/// Retires a card for good.
pub const CARD_WIPE: &str = card_state_mutation!("cardWipe");

/// The fields of a rewards program, as the CLI reads them.
macro_rules! reward_program_fields {
    () => {
        "id storeId name status budget granted left held returned grants rateBasisPoints fixed cardOnly \
minPurchase minReward maxReward customerCap cooldownSeconds claimDays startsAt endsAt createdAt"
    };
}

/// Makes a rewards program.
pub const REWARD_PROGRAM_CREATE: &str = concat!(
    "mutation($input: RewardProgramCreateInput!) { rewardProgramCreate(input: $input) { \
errors { message code } program { ",
    reward_program_fields!(),
    " } } }"
);

/// Ends a rewards program.
pub const REWARD_PROGRAM_END: &str = concat!(
    "mutation($input: RewardProgramEndInput!) { rewardProgramEnd(input: $input) { \
errors { message code } program { ",
    reward_program_fields!(),
    " } } }"
);

/// One rewards program.
pub const REWARD_PROGRAM_QUERY: &str = concat!(
    "query($id: ID!) { rewardProgram(id: $id) { ",
    reward_program_fields!(),
    " } }"
);

/// A store's rewards programs.
pub const REWARD_PROGRAMS_QUERY: &str = concat!(
    "query($storeId: ID!) { rewardPrograms(storeId: $storeId) { ",
    reward_program_fields!(),
    " } }"
);

/// The caller's contacts.
pub const CONTACTS_QUERY: &str = "query { me { contacts { username alias transactionsCount } } }";

/// Names a contact.
pub const USER_CONTACT_UPDATE_ALIAS: &str = "mutation($input: UserContactUpdateAliasInput!) { \
userContactUpdateAlias(input: $input) { errors { message code } contact { username alias transactionsCount } } }";

/// Admin: checks that the ledger balances.
pub const LEDGER_VERIFY_QUERY: &str = "query { ledgerVerify { ok currencies { currency total } \
accountsChecked journalsChecked problems } }";

/// Admin: credits a wallet.
pub const WALLET_FUND: &str = "mutation($input: WalletFundInput!) { walletFund(input: $input) \
{ errors { message code } transaction { id } } }";

/// Admin: changes an account's level.
pub const ACCOUNT_UPDATE_LEVEL: &str = "mutation($input: AccountUpdateLevelInput!) { \
accountUpdateLevel(input: $input) { errors { message code } accountDetails { id level status } } }";

/// Admin: changes an account's status.
pub const ACCOUNT_UPDATE_STATUS: &str = "mutation($input: AccountUpdateStatusInput!) { \
accountUpdateStatus(input: $input) { errors { message code } accountDetails { id level status } } }";

/// Admin: reads one ledger journal.
pub const JOURNAL_QUERY: &str = "query($id: ID!) { journal(id: $id) { id kind memo createdAt \
entries { accountId currency amount } } }";

/// Admin (dev simulator): pays an invoice of this bank from the simulated outside world.
pub const DEV_LIGHTNING_PAY_INVOICE: &str = "mutation($input: DevLightningPayInvoiceInput!) { \
devLightningPayInvoice(input: $input) { errors { message code } success } }";

/// Admin: the Lightning node and its channels.
pub const LIGHTNING_NODE_QUERY: &str = "query { lightningNode { pubkey alias network blockHeight synced \
simulated channels { id peer capacity localBalance remoteBalance active } } }";

/// The selection set of `LightningLiquidity`.
macro_rules! liquidity_fields {
    () => {
        "{ inPolicy checkedAt activeChannels outbound inbound outboundPercent inboundPercent onchain \
issues minOutboundPercent minInboundPercent actions { kind peer amount ok detail createdAt } }"
    };
}

/// Admin: the liquidity manager's latest view.
pub const LIGHTNING_LIQUIDITY_QUERY: &str = concat!("query { lightningLiquidity ", liquidity_fields!(), " }");

/// Admin: runs a liquidity check now.
pub const LIGHTNING_LIQUIDITY_CHECK: &str = concat!(
    "mutation { lightningLiquidityCheck { errors { message code } liquidity ",
    liquidity_fields!(),
    " } }"
);

/// Admin: resolves pending Lightning payments now.
pub const LIGHTNING_RECONCILE: &str = "mutation { lightningReconcile { errors { message code } checked \
succeeded failed pending } }";

/// Sends a wallet's whole balance, less the fee, to a Bitcoin address.
pub const ON_CHAIN_PAYMENT_SEND_ALL: &str = payment_mutation!("OnChainPaymentSendAllInput", "onChainPaymentSendAll");

/// The most an on-chain payment costs in fees (0 to an address of this bank).
pub const ON_CHAIN_TX_FEE_QUERY: &str = "query($walletId: WalletId!, $address: OnChainAddress!, \
$amount: SatAmount!, $speed: PayoutSpeed) { onChainTxFee(walletId: $walletId, address: $address, \
amount: $amount, speed: $speed) { amount } }";

/// A fresh deposit address for a wallet.
pub const ON_CHAIN_ADDRESS_CREATE: &str = "mutation($input: OnChainAddressCreateInput!) { \
onChainAddressCreate(input: $input) { errors { message code } address } }";

/// A wallet's newest deposit address (created if it has none).
pub const ON_CHAIN_ADDRESS_CURRENT: &str = "mutation($input: OnChainAddressCurrentInput!) { \
onChainAddressCurrent(input: $input) { errors { message code } address } }";

/// Admin: the hot wallet, pending deposits and queued payouts.
pub const ONCHAIN_STATUS_QUERY: &str = "query { onchainStatus { source confirmations tipHeight \
hotBalance hotUnconfirmed pendingDeposits pendingDepositAmount queuedPayouts queuedPayoutAmount } }";

/// Admin: payouts waiting for a batch, oldest first.
pub const ONCHAIN_PAYOUT_QUEUE_QUERY: &str = "query($first: Int) { onchainPayoutQueue(first: $first) \
{ id walletId address amount feeReserved speed status batchId createdAt } }";

/// Admin: payout transactions, newest first.
pub const ONCHAIN_BATCHES_QUERY: &str = "query($first: Int) { onchainBatches(first: $first) { id txHash \
status fee vsize feeRate replaces confirmedHeight failure createdAt } }";

/// Admin: sends the queued payouts now.
pub const ONCHAIN_PAYOUT_BATCH_NOW: &str =
    "mutation { onchainPayoutBatchNow { errors { message code } broadcast settled } }";

/// Admin: deposits under review, oldest first.
pub const ONCHAIN_REVIEWS_QUERY: &str =
    "query { onchainReviews { outpoint walletId accountId amount credited held reason } }";

/// Admin: ends a review by reclaiming what the wallet still holds.
pub const ONCHAIN_REVIEW_RECLAIM: &str = "mutation($input: OnchainReviewReclaimInput!) { \
onchainReviewReclaim(input: $input) { errors { message code } reclaimed shortfall } }";

/// Admin (dev chain): a payment from outside to an address, into the simulated mempool.
pub const DEV_CHAIN_DEPOSIT: &str = "mutation($input: DevChainDepositInput!) { \
devChainDeposit(input: $input) { errors { message code } txHash height } }";

/// Admin (dev chain): mines blocks.
pub const DEV_CHAIN_MINE: &str = "mutation($input: DevChainMineInput!) { \
devChainMine(input: $input) { errors { message code } txHash height } }";

/// Admin (dev chain): replaces the top blocks.
pub const DEV_CHAIN_REORG: &str = "mutation($input: DevChainReorgInput!) { \
devChainReorg(input: $input) { errors { message code } txHash height } }";

/// The selection set of `ColdSweepView`.
macro_rules! sweep_fields {
    () => {
        "{ id direction address amount fee status txHash psbt createdAt }"
    };
}

/// Admin: cold storage's balance, policy and latest sweeps.
pub const COLD_STORAGE_QUERY: &str = concat!(
    "query($first: Int) { coldStorage(first: $first) { configured confirmedBalance unconfirmedBalance \
maxHotBalance minHotBalance minRebalance sweeps ",
    sweep_fields!(),
    " } }"
);

/// Admin: sweeps the hot wallet's excess to cold storage now, if the policy calls for it.
pub const COLD_SWEEP_NOW: &str = concat!(
    "mutation { coldSweepNow { errors { message code } sweep ",
    sweep_fields!(),
    " } }"
);

/// Admin: a cold → hot PSBT for the cosigners.
pub const COLD_PSBT_CREATE: &str = concat!(
    "mutation($input: ColdPsbtCreateInput!) { coldPsbtCreate(input: $input) { errors { message code } sweep ",
    sweep_fields!(),
    " } }"
);

/// Admin: combines the cosigners' PSBTs, finalises and broadcasts the transaction.
pub const COLD_PSBT_FINALIZE_BROADCAST: &str = concat!(
    "mutation($input: ColdPsbtFinalizeInput!) { coldPsbtFinalizeBroadcast(input: $input) \
{ errors { message code } sweep ",
    sweep_fields!(),
    " } }"
);

/// Admin: cancels a cold → hot PSBT still awaiting signatures.
pub const COLD_PSBT_CANCEL: &str = concat!(
    "mutation($input: ColdPsbtCancelInput!) { coldPsbtCancel(input: $input) { errors { message code } sweep ",
    sweep_fields!(),
    " } }"
);

/// Turns wallet balance into a Cashu token of this bank's mint.
pub const ECASH_MINT: &str = "mutation($input: EcashMintInput!) { ecashMint(input: $input) \
{ errors { message code } token amount } }";

/// Credits a wallet from a Cashu token of this bank's mint.
pub const ECASH_REDEEM: &str = "mutation($input: EcashRedeemInput!) { ecashRedeem(input: $input) \
{ errors { message code } amount fee } }";

/// The selection set of `EcashKeysetView`.
macro_rules! keyset_fields {
    () => {
        "{ id unit active inputFeePpk }"
    };
}

/// Admin: the mint's books against the ledger, and its keysets.
pub const ECASH_STATUS_QUERY: &str = concat!(
    "query { ecashStatus { issued spent pending outstanding ledgerOutstanding quotesPaid \
ledgerQuotes balanced keysets ",
    keyset_fields!(),
    " } }"
);

/// Admin: a new active keyset; the old one stops signing and stays redeemable.
pub const ECASH_KEYSET_ROTATE: &str = concat!("mutation { ecashKeysetRotate ", keyset_fields!(), " }");

/// Reads a list of `{message, code}` errors; `code_at` says where the code is
/// (`["extensions", "code"]` at the top level, `["code"]` in payloads).
fn read_errors(list: &Value, code_at: &[&str]) -> Vec<GraphQlError> {
    let Some(items) = list.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            let message = item
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_owned();
            let mut code = Some(item);
            for key in code_at {
                code = code.and_then(|v| v.get(*key));
            }
            let code = code.and_then(Value::as_str).map(str::to_owned);
            GraphQlError { message, code }
        })
        .collect()
}

/// Extracts the top-level `errors` of a GraphQL response (empty if none).
pub fn top_level_errors(response: &Value) -> Vec<GraphQlError> {
    response
        .get("errors")
        .map(|e| read_errors(e, &["extensions", "code"]))
        .unwrap_or_default()
}

/// Extracts the `errors` of a mutation payload (empty if none).
pub fn payload_errors(payload: &Value) -> Vec<GraphQlError> {
    payload
        .get("errors")
        .map(|e| read_errors(e, &["code"]))
        .unwrap_or_default()
}

/// Turns a whole GraphQL response into its `data`, failing on any top-level
/// error or on a missing `data`.
pub fn response_data(response: Value) -> Result<Value, ClientError> {
    let errors = top_level_errors(&response);
    if !errors.is_empty() {
        let unauthenticated = errors
            .iter()
            .all(|e| matches!(e.code.as_deref(), Some("UNAUTHENTICATED") | Some("NOT_AUTHENTICATED")));
        if unauthenticated {
            return Err(ClientError::NotAuthenticated);
        }
        return Err(ClientError::GraphQl(errors));
    }
    match response {
        Value::Object(mut map) => match map.remove("data") {
            Some(data) if !data.is_null() => Ok(data),
            _ => Err(ClientError::Decode("GraphQL response has no data".into())),
        },
        _ => Err(ClientError::Decode("GraphQL response is not an object".into())),
    }
}

/// Takes the mutation payload `data[field]`, failing when it is missing or
/// carries a non-empty `errors` list.
pub fn mutation_payload(mut data: Value, field: &str) -> Result<Value, ClientError> {
    let payload = data
        .get_mut(field)
        .map(Value::take)
        .filter(|v| !v.is_null())
        .ok_or_else(|| ClientError::Decode(format!("missing `{field}` in response")))?;
    let errors = payload_errors(&payload);
    if !errors.is_empty() {
        return Err(ClientError::GraphQl(errors));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_level_errors_are_extracted_with_codes() {
        let resp = json!({
            "data": null,
            "errors": [
                {"message": "bad wallet", "extensions": {"code": "INVALID_INPUT"}},
                {"message": "no code here"}
            ]
        });
        let errs = top_level_errors(&resp);
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].message, "bad wallet");
        assert_eq!(errs[0].code.as_deref(), Some("INVALID_INPUT"));
        assert_eq!(errs[1].code, None);
        match response_data(resp) {
            Err(ClientError::GraphQl(e)) => assert_eq!(e.len(), 2),
            other => panic!("expected GraphQl error, got {other:?}"),
        }
    }

    #[test]
    fn unauthenticated_is_recognised() {
        let resp = json!({"errors": [{"message": "nope", "extensions": {"code": "UNAUTHENTICATED"}}]});
        assert!(matches!(response_data(resp), Err(ClientError::NotAuthenticated)));
    }

    #[test]
    fn data_is_returned_when_no_errors() {
        let resp = json!({"data": {"me": {"id": "u1"}}, "errors": []});
        let data = response_data(resp).ok();
        assert_eq!(data, Some(json!({"me": {"id": "u1"}})));
        assert!(matches!(
            response_data(json!({"data": null})),
            Err(ClientError::Decode(_))
        ));
    }

    #[test]
    fn payload_errors_fail_the_mutation() {
        let data = json!({"intraLedgerPaymentSend": {
            "status": "FAILURE",
            "errors": [{"message": "Insufficient balance", "code": "INSUFFICIENT_BALANCE"}],
            "transaction": null
        }});
        match mutation_payload(data, "intraLedgerPaymentSend") {
            Err(ClientError::GraphQl(e)) => {
                assert_eq!(e[0].message, "Insufficient balance");
                assert_eq!(e[0].code.as_deref(), Some("INSUFFICIENT_BALANCE"));
            }
            other => panic!("expected payload error, got {other:?}"),
        }
    }

    #[test]
    fn empty_payload_errors_succeed() {
        let data = json!({"walletFund": {"errors": [], "transaction": {"id": "t1"}}});
        let payload = mutation_payload(data, "walletFund").ok();
        assert_eq!(
            payload.and_then(|p| p["transaction"]["id"].as_str().map(str::to_owned)),
            Some("t1".to_owned())
        );
        assert!(matches!(
            mutation_payload(json!({"walletFund": null}), "walletFund"),
            Err(ClientError::Decode(_))
        ));
    }

    #[test]
    fn cold_psbt_cancel_takes_the_sweep_id() {
        assert!(COLD_PSBT_CANCEL.contains("coldPsbtCancel(input: $input)"));
        assert!(COLD_PSBT_CANCEL.contains("$input: ColdPsbtCancelInput!"));
        assert!(COLD_PSBT_CANCEL.contains("errors { message code } sweep { id "));
    }

    #[test]
    fn payment_documents_select_the_fee() {
        let doc = PAYMENT_SEND;
        assert!(doc.starts_with("mutation($input: PaymentSendInput!) "), "{doc}");
        assert!(doc.contains("paymentSend(input: $input)"), "{doc}");
        assert!(doc.contains("settlementFee settlementCurrency"), "{doc}");
        assert!(doc.contains("status errors { message code }"), "{doc}");
        assert_eq!(
            doc.matches('{').count(),
            doc.matches('}').count(),
            "unbalanced braces in {doc}"
        );
        let all = ON_CHAIN_PAYMENT_SEND_ALL;
        assert!(all.contains("OnChainPaymentSendAllInput!"), "{all}");
        assert!(all.contains("onChainPaymentSendAll(input: $input)"), "{all}");
        assert!(all.contains("settlementFee settlementCurrency"), "{all}");
        for doc in [
            ON_CHAIN_TX_FEE_QUERY,
            ON_CHAIN_ADDRESS_CREATE,
            ON_CHAIN_ADDRESS_CURRENT,
            ONCHAIN_STATUS_QUERY,
            ONCHAIN_PAYOUT_QUEUE_QUERY,
            ONCHAIN_BATCHES_QUERY,
            ONCHAIN_PAYOUT_BATCH_NOW,
            ONCHAIN_REVIEWS_QUERY,
            ONCHAIN_REVIEW_RECLAIM,
            DEV_CHAIN_DEPOSIT,
            DEV_CHAIN_MINE,
            DEV_CHAIN_REORG,
            COLD_STORAGE_QUERY,
            COLD_SWEEP_NOW,
            COLD_PSBT_CREATE,
            COLD_PSBT_FINALIZE_BROADCAST,
            COLD_PSBT_CANCEL,
            ECASH_MINT,
            ECASH_REDEEM,
            ECASH_STATUS_QUERY,
            ECASH_KEYSET_ROTATE,
        ] {
            assert_eq!(doc.matches('{').count(), doc.matches('}').count(), "{doc}");
            assert!(!doc.contains("  "), "stray spaces from a line continuation: {doc}");
        }
        for doc in [
            COLD_STORAGE_QUERY,
            COLD_SWEEP_NOW,
            COLD_PSBT_CREATE,
            COLD_PSBT_FINALIZE_BROADCAST,
            COLD_PSBT_CANCEL,
        ] {
            assert!(
                doc.contains("{ id direction address amount fee status txHash psbt createdAt }"),
                "{doc}"
            );
        }
        for doc in [LIGHTNING_LIQUIDITY_QUERY, LIGHTNING_LIQUIDITY_CHECK] {
            assert!(doc.contains("minInboundPercent actions { kind"), "{doc}");
            assert_eq!(doc.matches('{').count(), doc.matches('}').count(), "{doc}");
        }
    }

    #[test]
    fn ecash_documents_select_the_payloads() {
        assert!(ECASH_MINT.contains("$input: EcashMintInput!) { ecashMint(input: $input)"));
        assert!(ECASH_MINT.ends_with("{ errors { message code } token amount } }"));
        assert!(ECASH_REDEEM.contains("$input: EcashRedeemInput!) { ecashRedeem(input: $input)"));
        assert!(ECASH_REDEEM.ends_with("{ errors { message code } amount fee } }"));
        assert!(ECASH_STATUS_QUERY.contains("ledgerQuotes balanced keysets { id unit active inputFeePpk }"));
        assert_eq!(
            ECASH_KEYSET_ROTATE,
            "mutation { ecashKeysetRotate { id unit active inputFeePpk } }"
        );
    }

    #[test]
    fn card_documents_select_the_payloads() {
        assert!(CARD_CREATE.contains("$input: CardCreateInput!) { cardCreate(input: $input)"));
        assert!(CARD_CREATE.contains("errors { message code } programUrl programDeeplink card { id name"));
        assert!(CARD_LIMITS_UPDATE.contains("cardLimitsUpdate(input: $input) { errors { message code } card {"));
        assert!(CARD_PIN_SET.starts_with(
            "mutation($input: CardPinSetInput!) { cardPinSet(input: $input) { errors { message code } card {"
        ));
        for (doc, field) in [
            (CARD_DISABLE, "{ cardDisable(input: $input)"),
            (CARD_ENABLE, "{ cardEnable(input: $input)"),
            (CARD_WIPE, "{ cardWipe(input: $input)"),
        ] {
            assert!(doc.starts_with("mutation($input: CardInput!) "), "{doc}");
            assert!(doc.contains(field), "{doc}");
        }
        for doc in [
            CARD_CREATE,
            CARDS_QUERY,
            CARD_RESET_DEEPLINK_QUERY,
            CARD_LIMITS_UPDATE,
            CARD_PIN_SET,
            CARD_DISABLE,
            CARD_ENABLE,
            CARD_WIPE,
        ] {
            assert_eq!(doc.matches('{').count(), doc.matches('}').count(), "{doc}");
            assert!(!doc.contains("  "), "stray spaces from a line continuation: {doc}");
        }
        assert!(CARDS_QUERY.contains("state keyVersion counter tapLimit dayLimit createdAt pinLimit pinFailures"));
    }

    #[test]
    fn transactions_query_only_filters_when_asked() {
        let all = transactions_query(false);
        assert!(!all.contains("walletIds"));
        assert!(!all.contains("$walletId"));
        let one = transactions_query(true);
        assert!(one.contains("$walletId: WalletId"));
        assert!(one.contains("walletIds: [$walletId]"));
    }
}
