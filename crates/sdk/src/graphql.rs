//! The helpers that turn a GraphQL response into data or a [`ClientError`]. The documents
//! the client sends are in `crates/sdk/graphql`, typed by [`crate::ops`].

use serde_json::Value;

use crate::error::{ClientError, GraphQlError};

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

/// Checks the payloads of a mutation's `data` (every field of it): one that is missing or
/// null fails, and so does one that carries a non-empty `errors` list.
pub fn check_payloads(data: &Value) -> Result<(), ClientError> {
    let fields = data
        .as_object()
        .ok_or_else(|| ClientError::Decode("GraphQL data is not an object".into()))?;
    for (field, payload) in fields {
        if payload.is_null() {
            return Err(ClientError::Decode(format!("missing `{field}` in response")));
        }
        let errors = payload_errors(payload);
        if !errors.is_empty() {
            return Err(ClientError::GraphQl(errors));
        }
    }
    Ok(())
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
        match check_payloads(&data) {
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
        assert!(check_payloads(&data).is_ok());
        assert!(matches!(
            check_payloads(&json!({"walletFund": null})),
            Err(ClientError::Decode(_))
        ));
    }
}
