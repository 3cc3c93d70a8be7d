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
{ counterPartyUsername counterPartyWalletId } }";

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

/// Sends sats to another wallet of this bank.
pub const INTRA_LEDGER_PAYMENT_SEND: &str = "mutation($input: IntraLedgerPaymentSendInput!) { \
intraLedgerPaymentSend(input: $input) { status errors { message code } transaction { id } } }";

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
    fn transactions_query_only_filters_when_asked() {
        let all = transactions_query(false);
        assert!(!all.contains("walletIds"));
        assert!(!all.contains("$walletId"));
        let one = transactions_query(true);
        assert!(one.contains("$walletId: WalletId"));
        assert!(one.contains("walletIds: [$walletId]"));
    }
}
