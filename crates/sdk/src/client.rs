//! The async SDK client for a Flash server.

use std::fmt;
use std::time::Duration;

use graphql_client::GraphQLQuery;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ClientError, GraphQlError};
use crate::graphql::{check_payloads, response_data};
use crate::ops;
use crate::types::{
    AccountDetails, AccountLevel, AccountStatus, ApiKey, ApiKeyCreateInput, Card, CardCreateInput, CardCreated,
    CardStateChange, ColdStorage, ColdSweep, Contact, CreatedApiKey, EcashKeyset, EcashMinted, EcashRedeemed,
    EcashStatus, FundTransaction, InvoiceCreateRequest, InvoicePaymentStatus, Journal, LedgerVerification,
    LightningLiquidity, LightningNode, LightningReconcile, LnInvoice, Me, MerchantApiKey, MerchantApiKeyCreated,
    MerchantStore, NwcConnection, NwcConnectionCreateInput, NwcConnectionCreated, OnchainBatch, OnchainBatchNow,
    OnchainPayout, OnchainReclaim, OnchainReview, OnchainSendAllRequest, OnchainStatus, PayRequest, PaymentResult,
    PaymentTarget, PaymentTransaction, PublicWallet, RevokedApiKey, RewardProgram, RewardProgramCreateInput,
    SendRequest, Speed, Timestamp, TransactionConnection, UserNpub, UserSummary, WithdrawLink, WithdrawLinkCreateInput,
    WithdrawLinkCreated,
};

/// Default server URL when neither `--server` nor `FLASH_SERVER` is given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Longest response body quoted in an error message.
const MAX_BODY_IN_ERROR: usize = 500;

/// A client for one Flash server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    base_url: String,
    http: reqwest::Client,
    token: Option<String>,
    admin_key: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("token", &redact(&self.token))
            .field("admin_key", &redact(&self.admin_key))
            .finish()
    }
}

/// The `{"error": {...}}` body of a failed REST call.
#[derive(Deserialize)]
struct RestErrorBody {
    error: RestError,
}

/// Structured REST error.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RestError {
    code: String,
    message: String,
    #[serde(default)]
    retry_after_secs: Option<u64>,
}

/// Decodes a JSON value into a typed result, naming `what` on failure.
fn decode<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, ClientError> {
    serde_json::from_value(value).map_err(|e| ClientError::Decode(format!("{what}: {e}")))
}

/// Takes `value[key]`, failing if it is missing or null.
fn field(mut value: Value, key: &str) -> Result<Value, ClientError> {
    match value.get_mut(key).map(Value::take) {
        Some(v) if !v.is_null() => Ok(v),
        _ => Err(ClientError::Decode(format!("missing `{key}` in response"))),
    }
}

/// Cuts a response body down for an error message.
fn truncate(body: &str) -> String {
    if body.len() <= MAX_BODY_IN_ERROR {
        return body.to_owned();
    }
    let mut end = MAX_BODY_IN_ERROR;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

/// A payment payload (`field`): returned as-is when it has a status (a `FAILURE` keeps its
/// errors, given as `(message, code)`), an error when it has none.
fn payment_result(
    field: &str,
    status: Option<String>,
    errors: impl Iterator<Item = (String, Option<String>)>,
    transaction: Option<PaymentTransaction>,
) -> Result<PaymentResult, ClientError> {
    let errors: Vec<GraphQlError> = errors.map(|(message, code)| GraphQlError { message, code }).collect();
    match status {
        Some(status) => Ok(PaymentResult {
            status,
            errors,
            transaction,
        }),
        None if errors.is_empty() => Err(ClientError::Decode(format!("missing `status` in `{field}`"))),
        None => Err(ClientError::GraphQl(errors)),
    }
}

/// `what` is missing from a response.
fn missing(what: &str) -> ClientError {
    ClientError::Decode(format!("missing `{what}` in response"))
}

/// `n` as a GraphQL integer (`Int`, `SatAmount`: signed 64 bits on the wire).
fn int(n: u64) -> Result<i64, ClientError> {
    i64::try_from(n).map_err(|_| ClientError::InvalidInput(format!("{n} is too large")))
}

/// A fresh random idempotency key (a UUID v4).
pub fn new_idempotency_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Client {
    /// Creates a client for `base_url` (e.g. `http://127.0.0.1:8080`), without a token.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let base_url = crate::credentials::normalize_server(base_url);
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ClientError::InvalidInput(format!(
                "server URL `{base_url}` must start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("flash-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Request {
                url: base_url.clone(),
                source,
            })?;
        Ok(Client {
            base_url,
            http,
            token: None,
            admin_key: None,
        })
    }

    /// Returns the client with a session token or API key attached.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Returns the client with an admin key attached (for `/admin/graphql`).
    pub fn with_admin_key(mut self, key: impl Into<String>) -> Self {
        self.admin_key = Some(key.into());
        self
    }

    /// Replaces (or clears) the session token.
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    /// The current session token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The normalised server URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    // ---- transport -------------------------------------------------------

    /// POSTs `body` as JSON to `path`, returning status and body text.
    async fn post(
        &self,
        path: &str,
        body: &Value,
        bearer: Option<&str>,
    ) -> Result<(reqwest::StatusCode, String), ClientError> {
        let url = format!("{}{path}", self.base_url);
        let mut req = self.http.post(&url).json(body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let to_err = |source| ClientError::Request {
            url: url.clone(),
            source,
        };
        let resp = req.send().await.map_err(|e| self.send_error(&url, e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(to_err)?;
        Ok((status, text))
    }

    /// A request that could not be sent: [`ClientError::Unreachable`] when no connection could
    /// be made (so nothing reached the server), else [`ClientError::Request`].
    fn send_error(&self, url: &str, source: reqwest::Error) -> ClientError {
        if source.is_connect() {
            ClientError::Unreachable {
                server: self.base_url.clone(),
                source,
            }
        } else {
            ClientError::Request {
                url: url.to_owned(),
                source,
            }
        }
    }

    /// Checks that the server answers at all (`GET /healthz`, any status); an error only when
    /// it cannot be reached.
    pub async fn check_reachable(&self) -> Result<(), ClientError> {
        let url = format!("{}/healthz", self.base_url);
        self.http
            .get(&url)
            .send()
            .await
            .map(drop)
            .map_err(|e| self.send_error(&url, e))
    }

    /// Calls a REST route; non-2xx answers become [`ClientError::Api`] or
    /// [`ClientError::Http`].
    async fn rest(&self, path: &str, body: Value, bearer: Option<&str>) -> Result<Value, ClientError> {
        let (status, text) = self.post(path, &body, bearer).await?;
        if !status.is_success() {
            if let Ok(RestErrorBody { error }) = serde_json::from_str::<RestErrorBody>(&text) {
                return Err(ClientError::Api {
                    status: status.as_u16(),
                    code: error.code,
                    message: error.message,
                    retry_after_secs: error.retry_after_secs,
                });
            }
            return Err(ClientError::Http {
                status: status.as_u16(),
                body: truncate(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(format!("{path}: invalid JSON: {e}")))
    }

    /// Calls a Greenfield route (`/api/v1/…`) as the signed-in user; BTCPay's error bodies
    /// (`{code, message}`, or 422's `[{path, message}]`) become [`ClientError::Api`].
    async fn greenfield(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base_url);
        let mut req = self.http.request(method, &url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.send_error(&url, e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|source| ClientError::Request {
            url: url.clone(),
            source,
        })?;
        let value: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return value.ok_or_else(|| ClientError::Decode(format!("{path}: invalid JSON")));
        }
        let api = |code: &str, message: String| ClientError::Api {
            status: status.as_u16(),
            code: code.to_string(),
            message,
            retry_after_secs: None,
        };
        Err(match value {
            Some(Value::Object(o)) => api(
                o.get("code").and_then(Value::as_str).unwrap_or("error"),
                o.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
            ),
            Some(Value::Array(errors)) => api(
                "validation",
                errors
                    .iter()
                    .map(|e| {
                        let path = e["path"].as_str().unwrap_or_default();
                        let message = e["message"].as_str().unwrap_or_default();
                        if path.is_empty() {
                            message.to_string()
                        } else {
                            format!("{path}: {message}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => ClientError::Http {
                status: status.as_u16(),
                body: truncate(&text),
            },
        })
    }

    /// Sends a GraphQL request body (`{query, variables, operationName}`) to `path` and
    /// returns its `data`.
    async fn graphql_at(&self, path: &str, bearer: Option<&str>, body: &Value) -> Result<Value, ClientError> {
        let (status, text) = self.post(path, body, bearer).await?;
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.get("data").is_some() || v.get("errors").is_some() => response_data(v),
            Ok(v) if !status.is_success() => {
                if let Ok(RestErrorBody { error }) = serde_json::from_value::<RestErrorBody>(v) {
                    return Err(ClientError::Api {
                        status: status.as_u16(),
                        code: error.code,
                        message: error.message,
                        retry_after_secs: error.retry_after_secs,
                    });
                }
                Err(ClientError::Http {
                    status: status.as_u16(),
                    body: truncate(&text),
                })
            }
            _ if status == reqwest::StatusCode::UNAUTHORIZED => Err(ClientError::NotAuthenticated),
            _ if !status.is_success() => Err(ClientError::Http {
                status: status.as_u16(),
                body: truncate(&text),
            }),
            _ => Err(ClientError::Decode(format!(
                "{path}: not a GraphQL response: {}",
                truncate(&text)
            ))),
        }
    }

    /// Runs any query or mutation against `/graphql` with the session token,
    /// returning `data` (top-level `errors` become [`ClientError::GraphQl`]).
    /// An expired session becomes [`ClientError::SessionExpired`].
    pub async fn graphql(&self, query: &str, variables: Value) -> Result<Value, ClientError> {
        self.graphql_body(&json!({ "query": query, "variables": variables }))
            .await
    }

    /// Sends a request body to `/graphql` with the session token: see [`Client::graphql`].
    async fn graphql_body(&self, body: &Value) -> Result<Value, ClientError> {
        match self.graphql_at("/graphql", self.token.as_deref(), body).await {
            Err(ClientError::GraphQl(errors)) if errors.iter().any(|e| e.code.as_deref() == Some("TOKEN_EXPIRED")) => {
                Err(ClientError::SessionExpired {
                    server: self.base_url.clone(),
                })
            }
            other => other,
        }
    }

    /// Runs any query or mutation against `/admin/graphql` with the admin key; a key the server
    /// refuses becomes [`ClientError::AdminKeyRefused`].
    pub async fn admin_graphql(&self, query: &str, variables: Value) -> Result<Value, ClientError> {
        self.admin_graphql_body(&json!({ "query": query, "variables": variables }))
            .await
    }

    /// Sends a request body to `/admin/graphql` with the admin key: see
    /// [`Client::admin_graphql`].
    async fn admin_graphql_body(&self, body: &Value) -> Result<Value, ClientError> {
        let key = self.admin_key.as_deref().ok_or(ClientError::NoAdminKey)?;
        match self.graphql_at("/admin/graphql", Some(key), body).await {
            Err(ClientError::NotAuthenticated) => Err(ClientError::AdminKeyRefused {
                server: self.base_url.clone(),
            }),
            other => other,
        }
    }

    // ---- auth (REST) -----------------------------------------------------

    /// Asks the server to send a login code by SMS.
    pub async fn login_phone_code(&self, phone: &str) -> Result<(), ClientError> {
        self.rest("/auth/phone/code", json!({ "phone": phone }), None)
            .await
            .map(drop)
    }

    /// Logs in with a phone number and code; stores and returns the session token.
    pub async fn login_phone(&mut self, phone: &str, code: &str) -> Result<String, ClientError> {
        let v = self
            .rest("/auth/phone/login", json!({ "phone": phone, "code": code }), None)
            .await?;
        self.take_token(v)
    }

    /// Asks the server to send a login code by email.
    pub async fn login_email_code(&self, email: &str) -> Result<(), ClientError> {
        self.rest("/auth/email/code", json!({ "email": email }), None)
            .await
            .map(drop)
    }

    /// Logs in with an email address and code; stores and returns the session token.
    pub async fn login_email(&mut self, email: &str, code: &str) -> Result<String, ClientError> {
        let v = self
            .rest("/auth/email/login", json!({ "email": email, "code": code }), None)
            .await?;
        self.take_token(v)
    }

    /// Creates an anonymous device account; stores and returns its session token.
    pub async fn create_device_account(&mut self, device_id: Option<&str>) -> Result<String, ClientError> {
        let body = match device_id {
            Some(id) => json!({ "deviceId": id }),
            None => json!({}),
        };
        let v = self.rest("/auth/create/device-account", body, None).await?;
        self.take_token(v)
    }

    /// Ends the current session on the server and forgets the token.
    pub async fn logout(&mut self) -> Result<(), ClientError> {
        let token = self.token.clone().ok_or_else(|| ClientError::NotLoggedIn {
            server: self.base_url.clone(),
        })?;
        self.rest("/auth/logout", json!({}), Some(&token)).await?;
        self.token = None;
        Ok(())
    }

    /// Reads `authToken` from a login response and keeps it.
    fn take_token(&mut self, v: Value) -> Result<String, ClientError> {
        let token = field(v, "authToken")?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Decode("`authToken` is not a string".into()))?;
        self.token = Some(token.clone());
        Ok(token)
    }

    // ---- app API (GraphQL) -----------------------------------------------

    /// Sends operation `Q` with `variables` to the app API (`/graphql`), or with `admin` to the
    /// operator API, and decodes its generated `ResponseData`. With `payloads` (a mutation,
    /// or a query answering a payload), a payload field that is null or carries `errors`
    /// fails first ([`check_payloads`]).
    async fn operation<Q: GraphQLQuery>(
        &self,
        admin: bool,
        payloads: bool,
        variables: Q::Variables,
    ) -> Result<Q::ResponseData, ClientError> {
        let body = Q::build_query(variables);
        let name = body.operation_name;
        let body = serde_json::to_value(&body).map_err(|e| ClientError::InvalidInput(format!("{name}: {e}")))?;
        let data = if admin {
            self.admin_graphql_body(&body).await?
        } else {
            self.graphql_body(&body).await?
        };
        if payloads {
            check_payloads(&data)?;
        }
        decode(data, name)
    }

    /// Runs app API query `Q`.
    async fn query<Q: GraphQLQuery>(&self, variables: Q::Variables) -> Result<Q::ResponseData, ClientError> {
        self.operation::<Q>(false, false, variables).await
    }

    /// Runs app API mutation `Q`; payload `errors` become [`ClientError::GraphQl`].
    async fn mutate<Q: GraphQLQuery>(&self, variables: Q::Variables) -> Result<Q::ResponseData, ClientError> {
        self.operation::<Q>(false, true, variables).await
    }

    /// Runs operator API query `Q`.
    async fn admin_query<Q: GraphQLQuery>(&self, variables: Q::Variables) -> Result<Q::ResponseData, ClientError> {
        self.operation::<Q>(true, false, variables).await
    }

    /// Runs operator API mutation `Q`; payload `errors` become [`ClientError::GraphQl`].
    async fn admin_mutate<Q: GraphQLQuery>(&self, variables: Q::Variables) -> Result<Q::ResponseData, ClientError> {
        self.operation::<Q>(true, true, variables).await
    }

    /// The authenticated user with the default account and wallets.
    pub async fn me(&self) -> Result<Me, ClientError> {
        self.query::<ops::Me>(ops::me::Variables)
            .await?
            .me
            .ok_or(ClientError::NotAuthenticated)
    }

    /// One page of transactions, newest first; `wallet_id = None` for all wallets.
    pub async fn history(
        &self,
        wallet_id: Option<&str>,
        first: Option<u32>,
        after: Option<&str>,
    ) -> Result<TransactionConnection, ClientError> {
        // `walletIds` is only sent when a wallet is chosen: the server returns all wallets
        // when it is omitted.
        let vars = ops::transactions::Variables {
            wallet_ids: wallet_id.map(|id| vec![Some(id.to_owned())]),
            first: first.map(i64::from),
            after: after.map(str::to_owned),
        };
        let me = self
            .query::<ops::Transactions>(vars)
            .await?
            .me
            .ok_or(ClientError::NotAuthenticated)?;
        me.default_account.transactions.ok_or_else(|| missing("transactions"))
    }

    /// The default wallet of `username`.
    pub async fn account_default_wallet(&self, username: &str) -> Result<PublicWallet, ClientError> {
        let vars = ops::account_default_wallet::Variables {
            username: username.to_owned(),
        };
        Ok(self
            .query::<ops::AccountDefaultWallet>(vars)
            .await?
            .account_default_wallet)
    }

    /// Sends a payment with a fixed amount to any [`Destination`] (an invoice is paid as a
    /// no-amount invoice). Payload `errors` become [`ClientError::GraphQl`]; a `FAILURE`
    /// status without errors is returned as-is for the caller to judge. See [`Client::send`]
    /// for the full outcome of a failed payment.
    pub async fn pay(&self, req: &PayRequest) -> Result<PaymentResult, ClientError> {
        let result = self.send(&SendRequest::from(req.clone())).await?;
        if !result.errors.is_empty() {
            return Err(ClientError::GraphQl(result.errors));
        }
        Ok(result)
    }

    /// Sends a payment to any destination with `paymentSend`: the server reads the
    /// destination and picks the rail. The destination and amount are checked here first, for
    /// a clear error without a round trip.
    ///
    /// The payload is returned as-is, a `FAILURE` with its `errors` and (for a Lightning
    /// payment that was attempted) its transaction; only a payload without a status becomes
    /// an error. A [`ClientError::Request`] means the outcome is unknown: retry with the same
    /// idempotency key.
    pub async fn send(&self, req: &SendRequest) -> Result<PaymentResult, ClientError> {
        let target = PaymentTarget::parse(&req.destination)?;
        let amount = target.amount(req.amount)?;
        target.destination.check_amount(amount)?;
        let input = ops::payment_send::PaymentSendInput {
            wallet_id: req.wallet_id.clone(),
            destination: req.destination.trim().to_owned(),
            amount: req.amount.map(int).transpose()?,
            memo: req.memo.clone(),
            speed: req.speed,
            idempotency_key: req.idempotency_key.clone(),
        };
        let payload = self
            .query::<ops::PaymentSend>(ops::payment_send::Variables { input })
            .await?
            .payment_send;
        payment_result(
            "paymentSend",
            payload.status,
            payload.errors.into_iter().map(|e| (e.message, e.code)),
            payload.transaction,
        )
    }

    /// Sends a wallet's whole balance, less the fee, to a Bitcoin address
    /// (`onChainPaymentSendAll`). Returned like [`Client::send`]: usually `PENDING` until the
    /// transaction is out (or `SUCCESS` for an address of this bank, paid inside the ledger).
    pub async fn onchain_send_all(&self, req: &OnchainSendAllRequest) -> Result<PaymentResult, ClientError> {
        let input = ops::on_chain_payment_send_all::OnChainPaymentSendAllInput {
            wallet_id: req.wallet_id.clone(),
            address: req.address.trim().to_owned(),
            memo: req.memo.clone(),
            speed: req.speed,
            idempotency_key: req.idempotency_key.clone(),
        };
        let payload = self
            .query::<ops::OnChainPaymentSendAll>(ops::on_chain_payment_send_all::Variables { input })
            .await?
            .on_chain_payment_send_all;
        payment_result(
            "onChainPaymentSendAll",
            payload.status,
            payload.errors.into_iter().map(|e| (e.message, e.code)),
            payload.transaction.map(Into::into),
        )
    }

    /// The most, in sats, sending `amount` from `wallet_id` to a Bitcoin address costs in fees
    /// (`onChainTxFee`; 0 to an address of this bank).
    pub async fn onchain_fee(
        &self,
        wallet_id: &str,
        address: &str,
        amount: u64,
        speed: Option<Speed>,
    ) -> Result<i64, ClientError> {
        if amount == 0 {
            return Err(ClientError::InvalidInput("amount must be at least 1 sat".into()));
        }
        let vars = ops::on_chain_tx_fee::Variables {
            wallet_id: wallet_id.to_owned(),
            address: address.trim().to_owned(),
            amount: int(amount)?,
            speed,
        };
        Ok(self.query::<ops::OnChainTxFee>(vars).await?.on_chain_tx_fee.amount)
    }

    /// A deposit address of one of the caller's wallets: its newest one
    /// (`onChainAddressCurrent`, created if it has none), or with `new` a fresh one
    /// (`onChainAddressCreate`).
    pub async fn onchain_address(&self, wallet_id: &str, new: bool) -> Result<String, ClientError> {
        let wallet_id = wallet_id.to_owned();
        let address = if new {
            let input = ops::on_chain_address_create::OnChainAddressCreateInput { wallet_id };
            self.mutate::<ops::OnChainAddressCreate>(ops::on_chain_address_create::Variables { input })
                .await?
                .on_chain_address_create
                .address
        } else {
            let input = ops::on_chain_address_current::OnChainAddressCurrentInput { wallet_id };
            self.mutate::<ops::OnChainAddressCurrent>(ops::on_chain_address_current::Variables { input })
                .await?
                .on_chain_address_current
                .address
        };
        address.ok_or_else(|| missing("address"))
    }

    /// Creates a Lightning invoice on one of the caller's wallets: `lnInvoiceCreate` with an
    /// amount, `lnNoAmountInvoiceCreate` without.
    pub async fn ln_invoice_create(&self, req: &InvoiceCreateRequest) -> Result<LnInvoice, ClientError> {
        if req.amount == Some(0) {
            return Err(ClientError::InvalidInput("amount must be at least 1 sat".into()));
        }
        let expires_in = req.expires_in_mins.map(i64::from);
        match req.amount {
            Some(amount) => {
                let input = ops::ln_invoice_create::LnInvoiceCreateInput {
                    wallet_id: req.wallet_id.clone(),
                    amount: int(amount)?,
                    memo: req.memo.clone(),
                    expires_in,
                };
                let invoice = self
                    .mutate::<ops::LnInvoiceCreate>(ops::ln_invoice_create::Variables { input })
                    .await?
                    .ln_invoice_create
                    .invoice
                    .ok_or_else(|| missing("lnInvoiceCreate.invoice"))?;
                Ok(LnInvoice {
                    payment_hash: invoice.payment_hash,
                    payment_request: invoice.payment_request,
                    payment_status: invoice.payment_status,
                    satoshis: Some(invoice.satoshis),
                    created_at: Some(invoice.created_at),
                    expires_at: Some(invoice.expires_at),
                })
            }
            None => {
                let input = ops::ln_no_amount_invoice_create::LnNoAmountInvoiceCreateInput {
                    wallet_id: req.wallet_id.clone(),
                    memo: req.memo.clone(),
                    expires_in,
                };
                let invoice = self
                    .mutate::<ops::LnNoAmountInvoiceCreate>(ops::ln_no_amount_invoice_create::Variables { input })
                    .await?
                    .ln_no_amount_invoice_create
                    .invoice
                    .ok_or_else(|| missing("lnNoAmountInvoiceCreate.invoice"))?;
                Ok(LnInvoice {
                    payment_hash: invoice.payment_hash,
                    payment_request: invoice.payment_request,
                    payment_status: invoice.payment_status,
                    satoshis: None,
                    created_at: Some(invoice.created_at),
                    expires_at: Some(invoice.expires_at),
                })
            }
        }
    }

    /// The payment status of an invoice this bank issued (no login needed).
    pub async fn ln_invoice_payment_status(&self, payment_request: &str) -> Result<InvoicePaymentStatus, ClientError> {
        let input = ops::ln_invoice_payment_status::LnInvoicePaymentStatusInput {
            payment_request: payment_request.trim().to_owned(),
        };
        let payload = self
            .operation::<ops::LnInvoicePaymentStatus>(false, true, ops::ln_invoice_payment_status::Variables { input })
            .await?
            .ln_invoice_payment_status;
        Ok(InvoicePaymentStatus {
            status: payload.status.ok_or_else(|| missing("lnInvoicePaymentStatus.status"))?,
            payment_hash: payload.payment_hash,
            payment_request: payload.payment_request,
        })
    }

    /// The fee, in sats, paying an invoice from `wallet_id` would cost: `lnInvoiceFeeProbe`
    /// without `amount`, `lnNoAmountInvoiceFeeProbe` with one.
    pub async fn ln_fee_probe(
        &self,
        wallet_id: &str,
        payment_request: &str,
        amount: Option<u64>,
    ) -> Result<i64, ClientError> {
        let wallet_id = wallet_id.to_owned();
        let payment_request = payment_request.trim().to_owned();
        let fee = match amount {
            Some(0) => return Err(ClientError::InvalidInput("amount must be at least 1 sat".into())),
            Some(amount) => {
                let input = ops::ln_no_amount_invoice_fee_probe::LnNoAmountInvoiceFeeProbeInput {
                    wallet_id,
                    payment_request,
                    amount: int(amount)?,
                };
                self.mutate::<ops::LnNoAmountInvoiceFeeProbe>(ops::ln_no_amount_invoice_fee_probe::Variables { input })
                    .await?
                    .ln_no_amount_invoice_fee_probe
                    .amount
            }
            None => {
                let input = ops::ln_invoice_fee_probe::LnInvoiceFeeProbeInput {
                    wallet_id,
                    payment_request,
                };
                self.mutate::<ops::LnInvoiceFeeProbe>(ops::ln_invoice_fee_probe::Variables { input })
                    .await?
                    .ln_invoice_fee_probe
                    .amount
            }
        };
        fee.ok_or_else(|| missing("amount"))
    }

    /// Turns `amount` sats of one of the caller's BTC wallets into a Cashu token of this bank's
    /// mint (`ecashMint`, scope `write`). Payload `errors` (e.g. `INSUFFICIENT_BALANCE`,
    /// `ECASH_AMOUNT_OUT_OF_RANGE`) become [`ClientError::GraphQl`].
    ///
    /// The token exists only in the answer: if the request fails in transit, check the
    /// wallet's history before minting again.
    pub async fn ecash_mint(
        &self,
        wallet_id: &str,
        amount: u64,
        idempotency_key: Option<&str>,
    ) -> Result<EcashMinted, ClientError> {
        if amount == 0 {
            return Err(ClientError::InvalidInput("amount must be at least 1 sat".into()));
        }
        let input = ops::ecash_mint::EcashMintInput {
            wallet_id: wallet_id.to_owned(),
            amount: int(amount)?,
            idempotency_key: idempotency_key.map(str::to_owned),
        };
        let minted = self
            .mutate::<ops::EcashMint>(ops::ecash_mint::Variables { input })
            .await?
            .ecash_mint;
        Ok(EcashMinted {
            token: minted.token.ok_or_else(|| missing("ecashMint.token"))?,
            amount: minted.amount.ok_or_else(|| missing("ecashMint.amount"))?,
        })
    }

    /// Credits one of the caller's BTC wallets from a Cashu token of this bank's mint
    /// (`ecashRedeem`, scope `receive`): its value less the mint's input fee. Payload `errors`
    /// (e.g. `ECASH_ALREADY_SPENT`) become [`ClientError::GraphQl`].
    pub async fn ecash_redeem(&self, wallet_id: &str, token: &str) -> Result<EcashRedeemed, ClientError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(ClientError::InvalidInput("no token given".into()));
        }
        let input = ops::ecash_redeem::EcashRedeemInput {
            token: token.to_owned(),
            wallet_id: wallet_id.to_owned(),
        };
        let redeemed = self
            .mutate::<ops::EcashRedeem>(ops::ecash_redeem::Variables { input })
            .await?
            .ecash_redeem;
        Ok(EcashRedeemed {
            amount: redeemed.amount.ok_or_else(|| missing("ecashRedeem.amount"))?,
            fee: redeemed.fee.ok_or_else(|| missing("ecashRedeem.fee"))?,
        })
    }

    /// Sets the caller's username.
    pub async fn set_username(&self, username: &str) -> Result<UserSummary, ClientError> {
        let input = ops::user_update_username::UserUpdateUsernameInput {
            username: username.to_owned(),
        };
        self.mutate::<ops::UserUpdateUsername>(ops::user_update_username::Variables { input })
            .await?
            .user_update_username
            .user
            .ok_or_else(|| missing("userUpdateUsername.user"))
    }

    /// Creates an API key; the secret in the result is shown only this once.
    pub async fn api_key_create(&self, input: &ApiKeyCreateInput) -> Result<CreatedApiKey, ClientError> {
        let input = ops::api_key_create::ApiKeyCreateInput {
            name: input.name.clone(),
            scopes: Some(input.scopes.clone()),
            expire_in_days: input.expire_in_days.map(i64::from),
            ip_allowlist: input.ip_allowlist.clone(),
        };
        let created = self
            .mutate::<ops::ApiKeyCreate>(ops::api_key_create::Variables { input })
            .await?
            .api_key_create;
        Ok(CreatedApiKey {
            api_key: created.api_key.ok_or_else(|| missing("apiKeyCreate.apiKey"))?.into(),
            api_key_secret: created
                .api_key_secret
                .ok_or_else(|| missing("apiKeyCreate.apiKeySecret"))?,
        })
    }

    /// Lists the caller's API keys.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, ClientError> {
        let me = self
            .query::<ops::ApiKeys>(ops::api_keys::Variables)
            .await?
            .me
            .ok_or(ClientError::NotAuthenticated)?;
        Ok(me.api_keys)
    }

    /// Revokes an API key by id.
    pub async fn api_key_revoke(&self, id: &str) -> Result<RevokedApiKey, ClientError> {
        let input = ops::api_key_revoke::ApiKeyRevokeInput { id: id.to_owned() };
        self.mutate::<ops::ApiKeyRevoke>(ops::api_key_revoke::Variables { input })
            .await?
            .api_key_revoke
            .api_key
            .ok_or_else(|| missing("apiKeyRevoke.apiKey"))
    }

    /// Links the caller's NOSTR key (`npub1…` or 64 hex characters); returns the user.
    pub async fn set_npub(&self, npub: &str) -> Result<UserNpub, ClientError> {
        let input = ops::user_update_npub::UserUpdateNpubInput {
            npub: npub.trim().to_owned(),
        };
        self.mutate::<ops::UserUpdateNpub>(ops::user_update_npub::Variables { input })
            .await?
            .user_update_npub
            .user
            .ok_or_else(|| missing("userUpdateNpub.user"))
    }

    /// Connects an app to a wallet; the URI in the result is shown only this once.
    pub async fn nwc_connection_create(
        &self,
        input: &NwcConnectionCreateInput,
    ) -> Result<NwcConnectionCreated, ClientError> {
        let input = ops::nwc_connection_create::NwcConnectionCreateInput {
            name: input.name.clone(),
            wallet_id: input.wallet_id.clone(),
            methods: input.methods.clone(),
            budget_sats: input.budget_sats.map(int).transpose()?,
            budget_period: input.budget_period,
            expires_at: None,
        };
        let created = self
            .mutate::<ops::NwcConnectionCreate>(ops::nwc_connection_create::Variables { input })
            .await?
            .nwc_connection_create;
        Ok(NwcConnectionCreated {
            connection: created
                .connection
                .ok_or_else(|| missing("nwcConnectionCreate.connection"))?
                .into(),
            uri: created.uri.ok_or_else(|| missing("nwcConnectionCreate.uri"))?,
        })
    }

    /// The caller's wallet connections, newest first.
    pub async fn nwc_connections(&self) -> Result<Vec<NwcConnection>, ClientError> {
        Ok(self
            .query::<ops::NwcConnections>(ops::nwc_connections::Variables)
            .await?
            .nwc_connections)
    }

    /// Cuts a wallet connection off.
    pub async fn nwc_connection_revoke(&self, id: &str) -> Result<(), ClientError> {
        let input = ops::nwc_connection_revoke::NwcConnectionRevokeInput { id: id.to_owned() };
        self.mutate::<ops::NwcConnectionRevoke>(ops::nwc_connection_revoke::Variables { input })
            .await
            .map(drop)
    }

    /// Makes a merchant store, settled into the default wallet.
    pub async fn merchant_store_create(
        &self,
        name: &str,
        default_currency: Option<&str>,
    ) -> Result<MerchantStore, ClientError> {
        let input = ops::merchant_store_create::MerchantStoreCreateInput {
            name: name.to_owned(),
            default_currency: default_currency.map(str::to_owned),
        };
        self.mutate::<ops::MerchantStoreCreate>(ops::merchant_store_create::Variables { input })
            .await?
            .merchant_store_create
            .store
            .map(Into::into)
            .ok_or_else(|| missing("merchantStoreCreate.store"))
    }

    /// The caller's merchant stores.
    pub async fn merchant_stores(&self) -> Result<Vec<MerchantStore>, ClientError> {
        Ok(self
            .query::<ops::MerchantStores>(ops::merchant_stores::Variables)
            .await?
            .merchant_stores)
    }

    /// Makes a Greenfield API key; its secret is shown only this once.
    pub async fn merchant_api_key_create(
        &self,
        label: &str,
        permissions: &[String],
    ) -> Result<MerchantApiKeyCreated, ClientError> {
        let input = ops::merchant_api_key_create::MerchantApiKeyCreateInput {
            label: label.to_owned(),
            permissions: permissions.to_vec(),
        };
        let created = self
            .mutate::<ops::MerchantApiKeyCreate>(ops::merchant_api_key_create::Variables { input })
            .await?
            .merchant_api_key_create;
        Ok(MerchantApiKeyCreated {
            api_key: created
                .api_key
                .ok_or_else(|| missing("merchantApiKeyCreate.apiKey"))?
                .into(),
            secret: created.secret.ok_or_else(|| missing("merchantApiKeyCreate.secret"))?,
        })
    }

    /// The caller's Greenfield API keys.
    pub async fn merchant_api_keys(&self) -> Result<Vec<MerchantApiKey>, ClientError> {
        Ok(self
            .query::<ops::MerchantApiKeys>(ops::merchant_api_keys::Variables)
            .await?
            .merchant_api_keys)
    }

    /// Revokes a Greenfield API key.
    pub async fn merchant_api_key_revoke(&self, id: &str) -> Result<(), ClientError> {
        let input = ops::merchant_api_key_revoke::MerchantApiKeyRevokeInput { id: id.to_owned() };
        self.mutate::<ops::MerchantApiKeyRevoke>(ops::merchant_api_key_revoke::Variables { input })
            .await
            .map(drop)
    }

    /// Makes an invoice of `store` from a Greenfield `CreateInvoiceRequest`; Greenfield's
    /// `InvoiceData`. The idempotency key makes a retry answer the first invoice.
    pub async fn merchant_invoice_create(
        &self,
        store: &str,
        request: &Value,
        idempotency_key: &str,
    ) -> Result<Value, ClientError> {
        let path = format!("/api/v1/stores/{}/invoices", path_segment(store));
        self.greenfield(
            reqwest::Method::POST,
            &path,
            Some(request),
            &[("Idempotency-Key", idempotency_key)],
        )
        .await
    }

    /// A store's invoices, newest first (Greenfield's `InvoiceData` list); `status` filters.
    pub async fn merchant_invoices(&self, store: &str, status: Option<&str>) -> Result<Value, ClientError> {
        let mut path = format!("/api/v1/stores/{}/invoices", path_segment(store));
        if let Some(status) = status {
            path.push_str(&format!("?status={}", path_segment(status)));
        }
        self.greenfield(reqwest::Method::GET, &path, None, &[]).await
    }

    /// One invoice with its payment methods (`InvoiceData` with `paymentMethods`).
    pub async fn merchant_invoice(&self, id: &str) -> Result<Value, ClientError> {
        let path = format!("/api/v1/invoices/{}?includePaymentMethods=true", path_segment(id));
        self.greenfield(reqwest::Method::GET, &path, None, &[]).await
    }

    /// Registers a webhook of `store` (Greenfield's `WebhookDataCreate`); the answer holds the
    /// secret, shown only this once.
    pub async fn merchant_webhook_create(&self, store: &str, request: &Value) -> Result<Value, ClientError> {
        let path = format!("/api/v1/stores/{}/webhooks", path_segment(store));
        self.greenfield(reqwest::Method::POST, &path, Some(request), &[]).await
    }

    /// A store's webhooks.
    pub async fn merchant_webhooks(&self, store: &str) -> Result<Value, ClientError> {
        let path = format!("/api/v1/stores/{}/webhooks", path_segment(store));
        self.greenfield(reqwest::Method::GET, &path, None, &[]).await
    }

    /// A webhook's deliveries, newest first.
    pub async fn merchant_webhook_deliveries(&self, store: &str, webhook: &str) -> Result<Value, ClientError> {
        let path = format!(
            "/api/v1/stores/{}/webhooks/{}/deliveries",
            path_segment(store),
            path_segment(webhook)
        );
        self.greenfield(reqwest::Method::GET, &path, None, &[]).await
    }

    /// Sends a delivery again; the new delivery's id.
    pub async fn merchant_webhook_redeliver(
        &self,
        store: &str,
        webhook: &str,
        delivery: &str,
    ) -> Result<Value, ClientError> {
        let path = format!(
            "/api/v1/stores/{}/webhooks/{}/deliveries/{}/redeliver",
            path_segment(store),
            path_segment(webhook),
            path_segment(delivery)
        );
        self.greenfield(reqwest::Method::POST, &path, None, &[]).await
    }

    /// Creates an LNURL-withdraw link; its LNURL is shown only this once.
    pub async fn lnurl_withdraw_create(
        &self,
        input: &WithdrawLinkCreateInput,
    ) -> Result<WithdrawLinkCreated, ClientError> {
        let input = ops::lnurl_withdraw_create::LnurlWithdrawCreateInput {
            wallet_id: input.wallet_id.clone(),
            min_amount: input.min_amount.map(int).transpose()?,
            max_amount: int(input.max_amount)?,
            uses: input.uses.map(i64::from),
            expires_in: input.expires_in.map(i64::from),
            title: input.title.clone(),
        };
        let created = self
            .mutate::<ops::LnurlWithdrawCreate>(ops::lnurl_withdraw_create::Variables { input })
            .await?
            .lnurl_withdraw_create;
        Ok(WithdrawLinkCreated {
            link: created.link.ok_or_else(|| missing("lnurlWithdrawCreate.link"))?.into(),
            lnurl: created.lnurl.ok_or_else(|| missing("lnurlWithdrawCreate.lnurl"))?,
            url: created.url.ok_or_else(|| missing("lnurlWithdrawCreate.url"))?,
        })
    }

    /// The caller's LNURL-withdraw links, newest first.
    pub async fn lnurl_withdraw_links(&self) -> Result<Vec<WithdrawLink>, ClientError> {
        Ok(self
            .query::<ops::LnurlWithdrawLinks>(ops::lnurl_withdraw_links::Variables)
            .await?
            .lnurl_withdraw_links)
    }

    /// Revokes an LNURL-withdraw link.
    pub async fn lnurl_withdraw_revoke(&self, id: &str) -> Result<(), ClientError> {
        let input = ops::lnurl_withdraw_revoke::LnurlWithdrawRevokeInput { id: id.to_owned() };
        self.mutate::<ops::LnurlWithdrawRevoke>(ops::lnurl_withdraw_revoke::Variables { input })
            .await
            .map(drop)
    }

    /// Makes a Flash Card; its programming link is shown only this once (valid for an hour).
    pub async fn card_create(&self, input: &CardCreateInput) -> Result<CardCreated, ClientError> {
        let input = ops::card_create::CardCreateInput {
            name: input.name.clone(),
            wallet_id: input.wallet_id.clone(),
            tap_limit: int(input.tap_limit)?,
            day_limit: int(input.day_limit)?,
        };
        let created = self
            .mutate::<ops::CardCreate>(ops::card_create::Variables { input })
            .await?
            .card_create;
        Ok(CardCreated {
            card: created.card.ok_or_else(|| missing("cardCreate.card"))?.into(),
            program_url: created.program_url.ok_or_else(|| missing("cardCreate.programUrl"))?,
            program_deeplink: created
                .program_deeplink
                .ok_or_else(|| missing("cardCreate.programDeeplink"))?,
        })
    }

    /// The caller's Flash Cards, newest first.
    pub async fn cards(&self) -> Result<Vec<Card>, ClientError> {
        Ok(self.query::<ops::Cards>(ops::cards::Variables).await?.cards)
    }

    /// `boltcard://reset?url=…`: the deep link that opens the Bolt Card NFC Programmer app
    /// to reset a card of this server.
    pub async fn card_reset_deeplink(&self) -> Result<String, ClientError> {
        Ok(self
            .query::<ops::CardResetDeeplink>(ops::card_reset_deeplink::Variables)
            .await?
            .card_reset_deeplink)
    }

    /// Sets a card's per-tap and 24-hour limits, sats.
    pub async fn card_limits_update(&self, id: &str, tap_limit: u64, day_limit: u64) -> Result<Card, ClientError> {
        let input = ops::card_limits_update::CardLimitsUpdateInput {
            id: id.to_owned(),
            tap_limit: int(tap_limit)?,
            day_limit: int(day_limit)?,
        };
        self.mutate::<ops::CardLimitsUpdate>(ops::card_limits_update::Variables { input })
            .await?
            .card_limits_update
            .card
            .map(Into::into)
            .ok_or_else(|| missing("cardLimitsUpdate.card"))
    }

    /// Gives a card a PIN (4 to 8 digits), asked for withdrawals of `pin_limit` sats or more,
    /// or removes it (`None`); the card as it is now.
    pub async fn card_pin_set(&self, id: &str, pin: Option<(&str, u64)>) -> Result<Card, ClientError> {
        let input = ops::card_pin_set::CardPinSetInput {
            id: id.to_owned(),
            pin: pin.map(|(pin, _)| pin.to_owned()),
            pin_limit: pin.map(|(_, limit)| int(limit)).transpose()?,
        };
        self.mutate::<ops::CardPinSet>(ops::card_pin_set::Variables { input })
            .await?
            .card_pin_set
            .card
            .map(Into::into)
            .ok_or_else(|| missing("cardPinSet.card"))
    }

    /// Disables, enables or wipes a card; the card as it is now.
    pub async fn card_set_state(&self, id: &str, change: CardStateChange) -> Result<Card, ClientError> {
        let id = id.to_owned();
        let (card, name) = match change {
            CardStateChange::Disable => {
                let input = ops::card_disable::CardInput { id };
                let payload = self
                    .mutate::<ops::CardDisable>(ops::card_disable::Variables { input })
                    .await?
                    .card_disable;
                (payload.card.map(Into::into), "cardDisable")
            }
            CardStateChange::Enable => {
                let input = ops::card_enable::CardInput { id };
                let payload = self
                    .mutate::<ops::CardEnable>(ops::card_enable::Variables { input })
                    .await?
                    .card_enable;
                (payload.card.map(Into::into), "cardEnable")
            }
            CardStateChange::Wipe => {
                let input = ops::card_wipe::CardInput { id };
                let payload = self
                    .mutate::<ops::CardWipe>(ops::card_wipe::Variables { input })
                    .await?
                    .card_wipe;
                (payload.card.map(Into::into), "cardWipe")
            }
        };
        card.ok_or_else(|| missing(&format!("{name}.card")))
    }

    /// Makes a rewards program for one of the caller's stores.
    pub async fn reward_program_create(&self, input: &RewardProgramCreateInput) -> Result<RewardProgram, ClientError> {
        let input = ops::reward_program_create::RewardProgramCreateInput {
            store_id: input.store_id.clone(),
            name: input.name.clone(),
            budget: int(input.budget)?,
            rate_basis_points: input.rate_basis_points.map(i64::from),
            fixed: input.fixed.map(int).transpose()?,
            card_only: Some(input.card_only),
            min_purchase: input.min_purchase.map(int).transpose()?,
            min_reward: input.min_reward.map(int).transpose()?,
            max_reward: input.max_reward.map(int).transpose()?,
            customer_cap: input.customer_cap.map(int).transpose()?,
            cooldown_seconds: input.cooldown_seconds.map(int).transpose()?,
            claim_days: input.claim_days.map(int).transpose()?,
            starts_at: None,
            ends_at: input.ends_at.map(Timestamp::Secs),
        };
        self.mutate::<ops::RewardProgramCreate>(ops::reward_program_create::Variables { input })
            .await?
            .reward_program_create
            .program
            .map(Into::into)
            .ok_or_else(|| missing("rewardProgramCreate.program"))
    }

    /// One of the caller's rewards programs.
    pub async fn reward_program(&self, id: &str) -> Result<RewardProgram, ClientError> {
        let vars = ops::reward_program::Variables { id: id.to_owned() };
        Ok(self.query::<ops::RewardProgram>(vars).await?.reward_program.into())
    }

    /// A store's rewards programs, newest first.
    pub async fn reward_programs(&self, store_id: &str) -> Result<Vec<RewardProgram>, ClientError> {
        let vars = ops::reward_programs::Variables {
            store_id: store_id.to_owned(),
        };
        Ok(self.query::<ops::RewardPrograms>(vars).await?.reward_programs)
    }

    /// Ends a rewards program now.
    pub async fn reward_program_end(&self, id: &str) -> Result<RewardProgram, ClientError> {
        let input = ops::reward_program_end::RewardProgramEndInput { id: id.to_owned() };
        self.mutate::<ops::RewardProgramEnd>(ops::reward_program_end::Variables { input })
            .await?
            .reward_program_end
            .program
            .map(Into::into)
            .ok_or_else(|| missing("rewardProgramEnd.program"))
    }

    /// The caller's contacts.
    pub async fn contacts(&self) -> Result<Vec<Contact>, ClientError> {
        let me = self
            .query::<ops::Contacts>(ops::contacts::Variables)
            .await?
            .me
            .ok_or(ClientError::NotAuthenticated)?;
        Ok(me.contacts)
    }

    /// Names a contact (by username).
    pub async fn contact_set_alias(&self, username: &str, alias: &str) -> Result<Contact, ClientError> {
        let input = ops::user_contact_update_alias::UserContactUpdateAliasInput {
            username: username.trim_start_matches('@').to_owned(),
            alias: alias.to_owned(),
        };
        self.mutate::<ops::UserContactUpdateAlias>(ops::user_contact_update_alias::Variables { input })
            .await?
            .user_contact_update_alias
            .contact
            .map(Into::into)
            .ok_or_else(|| missing("userContactUpdateAlias.contact"))
    }

    // ---- admin API -------------------------------------------------------

    /// Admin: verifies the ledger.
    pub async fn ledger_verify(&self) -> Result<LedgerVerification, ClientError> {
        Ok(self
            .admin_query::<ops::LedgerVerify>(ops::ledger_verify::Variables)
            .await?
            .ledger_verify)
    }

    /// Admin: credits `amount` sats to a wallet; returns the transaction id if any.
    pub async fn wallet_fund(&self, wallet_id: &str, amount: u64) -> Result<Option<FundTransaction>, ClientError> {
        let input = ops::wallet_fund::WalletFundInput {
            wallet_id: wallet_id.to_owned(),
            amount: int(amount)?,
            idempotency_key: None,
        };
        Ok(self
            .admin_mutate::<ops::WalletFund>(ops::wallet_fund::Variables { input })
            .await?
            .wallet_fund
            .transaction)
    }

    /// Admin: sets an account's level.
    pub async fn account_update_level(
        &self,
        account_id: &str,
        level: AccountLevel,
    ) -> Result<AccountDetails, ClientError> {
        let input = ops::account_update_level::AccountUpdateLevelInput {
            account_id: account_id.to_owned(),
            level,
        };
        self.admin_mutate::<ops::AccountUpdateLevel>(ops::account_update_level::Variables { input })
            .await?
            .account_update_level
            .account_details
            .ok_or_else(|| missing("accountDetails"))
    }

    /// Admin: sets an account's status, with an optional audit comment.
    pub async fn account_update_status(
        &self,
        account_id: &str,
        status: AccountStatus,
        comment: Option<&str>,
    ) -> Result<AccountDetails, ClientError> {
        let input = ops::account_update_status::AccountUpdateStatusInput {
            account_id: account_id.to_owned(),
            comment: comment.map(str::to_owned),
            status,
        };
        self.admin_mutate::<ops::AccountUpdateStatus>(ops::account_update_status::Variables { input })
            .await?
            .account_update_status
            .account_details
            .map(Into::into)
            .ok_or_else(|| missing("accountDetails"))
    }

    /// Admin (dev simulator only): pays an invoice of this bank from the simulated outside
    /// world; `amount` is for a no-amount invoice.
    pub async fn dev_lightning_pay_invoice(
        &self,
        payment_request: &str,
        amount: Option<u64>,
    ) -> Result<(), ClientError> {
        if amount == Some(0) {
            return Err(ClientError::InvalidInput("amount must be at least 1 sat".into()));
        }
        let input = ops::dev_lightning_pay_invoice::DevLightningPayInvoiceInput {
            payment_request: payment_request.trim().to_owned(),
            amount: amount.map(int).transpose()?,
        };
        let payload = self
            .admin_mutate::<ops::DevLightningPayInvoice>(ops::dev_lightning_pay_invoice::Variables { input })
            .await?
            .dev_lightning_pay_invoice;
        if payload.success {
            Ok(())
        } else {
            Err(ClientError::Decode("devLightningPayInvoice did not succeed".into()))
        }
    }

    /// Admin: the Lightning node, its chain state and channels.
    pub async fn lightning_node(&self) -> Result<LightningNode, ClientError> {
        Ok(self
            .admin_query::<ops::LightningNode>(ops::lightning_node::Variables)
            .await?
            .lightning_node)
    }

    /// Admin: the liquidity manager's latest view (`lightningLiquidity`).
    pub async fn lightning_liquidity(&self) -> Result<LightningLiquidity, ClientError> {
        Ok(self
            .admin_query::<ops::LightningLiquidity>(ops::lightning_liquidity::Variables)
            .await?
            .lightning_liquidity)
    }

    /// Admin: runs a liquidity check now and acts on it (`lightningLiquidityCheck`).
    pub async fn lightning_liquidity_check(&self) -> Result<LightningLiquidity, ClientError> {
        self.admin_mutate::<ops::LightningLiquidityCheck>(ops::lightning_liquidity_check::Variables)
            .await?
            .lightning_liquidity_check
            .liquidity
            .map(Into::into)
            .ok_or_else(|| missing("lightningLiquidityCheck.liquidity"))
    }

    /// Admin: resolves pending Lightning payments from the node's truth now.
    pub async fn lightning_reconcile(&self) -> Result<LightningReconcile, ClientError> {
        Ok(self
            .admin_mutate::<ops::LightningReconcile>(ops::lightning_reconcile::Variables)
            .await?
            .lightning_reconcile
            .reconcile_fields)
    }

    /// Admin: the hot wallet, pending deposits and queued payouts.
    pub async fn onchain_status(&self) -> Result<OnchainStatus, ClientError> {
        Ok(self
            .admin_query::<ops::OnchainStatus>(ops::onchain_status::Variables)
            .await?
            .onchain_status)
    }

    /// Admin: payouts waiting for a batch, oldest first (`first` or the server's 100).
    pub async fn onchain_payout_queue(&self, first: Option<u32>) -> Result<Vec<OnchainPayout>, ClientError> {
        let vars = ops::onchain_payout_queue::Variables {
            first: first.map(i64::from),
        };
        Ok(self
            .admin_query::<ops::OnchainPayoutQueue>(vars)
            .await?
            .onchain_payout_queue)
    }

    /// Admin: payout transactions, newest first (`first` or the server's 20).
    pub async fn onchain_batches(&self, first: Option<u32>) -> Result<Vec<OnchainBatch>, ClientError> {
        let vars = ops::onchain_batches::Variables {
            first: first.map(i64::from),
        };
        Ok(self.admin_query::<ops::OnchainBatches>(vars).await?.onchain_batches)
    }

    /// Admin: sends the queued payouts now instead of at the next batch interval.
    pub async fn onchain_batch_now(&self) -> Result<OnchainBatchNow, ClientError> {
        Ok(self
            .admin_mutate::<ops::OnchainPayoutBatchNow>(ops::onchain_payout_batch_now::Variables)
            .await?
            .onchain_payout_batch_now
            .batch_now_fields)
    }

    /// Admin: the deposits under review, oldest first.
    pub async fn onchain_reviews(&self) -> Result<Vec<OnchainReview>, ClientError> {
        Ok(self
            .admin_query::<ops::OnchainReviews>(ops::onchain_reviews::Variables)
            .await?
            .onchain_reviews)
    }

    /// Admin: ends the review of `outpoint` by reclaiming what its wallet still holds.
    pub async fn onchain_review_reclaim(&self, outpoint: &str) -> Result<OnchainReclaim, ClientError> {
        let input = ops::onchain_review_reclaim::OnchainReviewReclaimInput {
            outpoint: outpoint.trim().to_owned(),
        };
        let reclaim = self
            .admin_mutate::<ops::OnchainReviewReclaim>(ops::onchain_review_reclaim::Variables { input })
            .await?
            .onchain_review_reclaim;
        Ok(OnchainReclaim {
            reclaimed: reclaim
                .reclaimed
                .ok_or_else(|| missing("onchainReviewReclaim.reclaimed"))?,
            shortfall: reclaim
                .shortfall
                .ok_or_else(|| missing("onchainReviewReclaim.shortfall"))?,
        })
    }

    /// Admin (dev chain only): pays `amount` sats from outside to `address`, into the
    /// simulated mempool; the transaction id.
    pub async fn dev_chain_deposit(&self, address: &str, amount: u64) -> Result<String, ClientError> {
        if amount == 0 {
            return Err(ClientError::InvalidInput("amount must be at least 1 sat".into()));
        }
        let input = ops::dev_chain_deposit::DevChainDepositInput {
            address: address.trim().to_owned(),
            amount: int(amount)?,
        };
        self.admin_mutate::<ops::DevChainDeposit>(ops::dev_chain_deposit::Variables { input })
            .await?
            .dev_chain_deposit
            .tx_hash
            .ok_or_else(|| missing("devChainDeposit.txHash"))
    }

    /// Admin (dev chain only): mines `blocks` blocks (the mempool goes into the first) and
    /// credits what they confirmed; the new height.
    pub async fn dev_chain_mine(&self, blocks: u32) -> Result<i64, ClientError> {
        let input = ops::dev_chain_mine::DevChainMineInput {
            blocks: i64::from(blocks),
        };
        self.admin_mutate::<ops::DevChainMine>(ops::dev_chain_mine::Variables { input })
            .await?
            .dev_chain_mine
            .height
            .ok_or_else(|| missing("devChainMine.height"))
    }

    /// Admin (dev chain only): replaces the top `depth` blocks with a longer chain of empty
    /// ones; with `drop_transactions` their transactions vanish instead of going back to the
    /// mempool. The new height.
    pub async fn dev_chain_reorg(&self, depth: u32, drop_transactions: bool) -> Result<i64, ClientError> {
        let input = ops::dev_chain_reorg::DevChainReorgInput {
            depth: i64::from(depth),
            drop_transactions: Some(drop_transactions),
        };
        self.admin_mutate::<ops::DevChainReorg>(ops::dev_chain_reorg::Variables { input })
            .await?
            .dev_chain_reorg
            .height
            .ok_or_else(|| missing("devChainReorg.height"))
    }

    /// Admin: cold storage's balance and policy, and the latest sweeps (`first` or the
    /// server's 20).
    pub async fn cold_storage(&self, first: Option<u32>) -> Result<ColdStorage, ClientError> {
        let vars = ops::cold_storage::Variables {
            first: first.map(i64::from),
        };
        Ok(self.admin_query::<ops::ColdStorage>(vars).await?.cold_storage)
    }

    /// Admin: sweeps the hot wallet's excess to cold storage now; `None` when within policy.
    pub async fn cold_sweep_now(&self) -> Result<Option<ColdSweep>, ClientError> {
        Ok(self
            .admin_mutate::<ops::ColdSweepNow>(ops::cold_sweep_now::Variables)
            .await?
            .cold_sweep_now
            .sweep
            .map(Into::into))
    }

    /// Admin: a PSBT bringing `amount` sats from cold storage back to the hot wallet, for the
    /// cosigners to sign offline (`flash cold sign`); the sweep carries it in `psbt`.
    pub async fn cold_psbt_create(&self, amount: u64) -> Result<ColdSweep, ClientError> {
        if amount == 0 {
            return Err(ClientError::InvalidInput("amount must be at least 1 sat".into()));
        }
        let input = ops::cold_psbt_create::ColdPsbtCreateInput { amount: int(amount)? };
        self.admin_mutate::<ops::ColdPsbtCreate>(ops::cold_psbt_create::Variables { input })
            .await?
            .cold_psbt_create
            .sweep
            .map(Into::into)
            .ok_or_else(|| missing("coldPsbtCreate.sweep"))
    }

    /// Admin: combines the cosigners' signed PSBTs (base64) of sweep `sweep_id`, finalises
    /// and broadcasts the transaction. Each PSBT is checked to be one before anything is sent.
    pub async fn cold_psbt_finalize_broadcast(
        &self,
        sweep_id: &str,
        psbts: &[String],
    ) -> Result<ColdSweep, ClientError> {
        if psbts.is_empty() {
            return Err(ClientError::InvalidInput("no signed PSBT given".into()));
        }
        let mut compact = Vec::with_capacity(psbts.len());
        for (n, psbt) in psbts.iter().enumerate() {
            crate::cold::decode_psbt(psbt).map_err(|e| match e {
                ClientError::InvalidInput(why) => ClientError::InvalidInput(format!("signed PSBT #{}: {why}", n + 1)),
                other => other,
            })?;
            compact.push(psbt.chars().filter(|c| !c.is_whitespace()).collect::<String>());
        }
        let input = ops::cold_psbt_finalize_broadcast::ColdPsbtFinalizeInput {
            sweep_id: sweep_id.to_owned(),
            psbts: compact,
        };
        self.admin_mutate::<ops::ColdPsbtFinalizeBroadcast>(ops::cold_psbt_finalize_broadcast::Variables { input })
            .await?
            .cold_psbt_finalize_broadcast
            .sweep
            .map(Into::into)
            .ok_or_else(|| missing("coldPsbtFinalizeBroadcast.sweep"))
    }

    /// Admin: cancels sweep `sweep_id`, a cold → hot PSBT still awaiting signatures; its
    /// signed copies can no longer be finalised.
    pub async fn cold_psbt_cancel(&self, sweep_id: &str) -> Result<ColdSweep, ClientError> {
        if sweep_id.trim().is_empty() {
            return Err(ClientError::InvalidInput("no sweep id given".into()));
        }
        let input = ops::cold_psbt_cancel::ColdPsbtCancelInput {
            sweep_id: sweep_id.trim().to_owned(),
        };
        self.admin_mutate::<ops::ColdPsbtCancel>(ops::cold_psbt_cancel::Variables { input })
            .await?
            .cold_psbt_cancel
            .sweep
            .map(Into::into)
            .ok_or_else(|| missing("coldPsbtCancel.sweep"))
    }

    /// Admin: the mint's books (its notes against the ledger's `mint:outstanding` and
    /// `mint:quotes`) and keysets (`ecashStatus`).
    pub async fn ecash_status(&self) -> Result<EcashStatus, ClientError> {
        Ok(self
            .admin_query::<ops::EcashStatus>(ops::ecash_status::Variables)
            .await?
            .ecash_status)
    }

    /// Admin: makes a new active sat keyset with the configured amounts and input fee; the
    /// previous one stops signing and stays redeemable (`ecashKeysetRotate`).
    pub async fn ecash_keyset_rotate(&self) -> Result<EcashKeyset, ClientError> {
        Ok(self
            .admin_mutate::<ops::EcashKeysetRotate>(ops::ecash_keyset_rotate::Variables)
            .await?
            .ecash_keyset_rotate
            .into())
    }

    /// Admin: reads a ledger journal.
    pub async fn journal(&self, id: &str) -> Result<Journal, ClientError> {
        let vars = ops::journal::Variables { id: id.to_owned() };
        self.admin_query::<ops::Journal>(vars)
            .await?
            .journal
            .ok_or_else(|| missing("journal"))
    }
}

/// `text` as one URL path segment (or query value): every byte outside RFC 3986's unreserved
/// set percent-encoded.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_typed_by_users_stay_one_path_segment() {
        assert_eq!(path_segment("Ab3-_.~"), "Ab3-_.~");
        assert_eq!(path_segment("../x?y=1 é"), "..%2Fx%3Fy%3D1%20%C3%A9");
    }

    #[test]
    fn new_normalises_and_validates_url() {
        let c = Client::new("http://127.0.0.1:8080/").map(|c| c.base_url().to_owned());
        assert_eq!(c.ok().as_deref(), Some("http://127.0.0.1:8080"));
        assert!(matches!(
            Client::new("127.0.0.1:8080"),
            Err(ClientError::InvalidInput(_))
        ));
    }

    #[test]
    fn debug_redacts_secrets() -> Result<(), ClientError> {
        let c = Client::new(DEFAULT_SERVER)?
            .with_token("sess-secret")
            .with_admin_key("admin-secret");
        let s = format!("{c:?}");
        assert!(!s.contains("sess-secret"));
        assert!(!s.contains("admin-secret"));
        Ok(())
    }

    #[test]
    fn idempotency_keys_are_fresh_uuids() {
        let a = new_idempotency_key();
        let b = new_idempotency_key();
        assert_ne!(a, b);
        assert!(uuid::Uuid::try_parse(&a).is_ok());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let long = "é".repeat(400);
        let t = truncate(&long);
        assert!(t.ends_with('…'));
        assert!(t.len() <= MAX_BODY_IN_ERROR + '…'.len_utf8());
        assert_eq!(truncate("short"), "short");
    }

    #[test]
    fn payment_payloads_keep_failures_and_reject_statusless_errors() {
        /// Reads `data` as `paymentSend`'s answer, as [`Client::send`] does.
        fn read(data: Value) -> Result<PaymentResult, ClientError> {
            let payload = decode::<ops::payment_send::ResponseData>(data, "PaymentSend")?.payment_send;
            payment_result(
                "paymentSend",
                payload.status,
                payload.errors.into_iter().map(|e| (e.message, e.code)),
                payload.transaction,
            )
        }
        let failed = json!({"paymentSend": {
            "status": "FAILURE",
            "errors": [{"__typename": "GraphQLApplicationError", "message": "no route", "code": "PAYMENT_FAILED"}],
            "transaction": {"id": "t1", "status": "FAILURE", "direction": "SEND", "settlementAmount": -5,
                "settlementFee": 0, "settlementCurrency": "BTC", "memo": null}
        }});
        match read(failed) {
            Ok(r) => {
                assert_eq!(r.status, "FAILURE");
                assert_eq!(r.errors.first().and_then(|e| e.code.as_deref()), Some("PAYMENT_FAILED"));
                assert_eq!(r.transaction.map(|t| t.id).as_deref(), Some("t1"));
            }
            other => panic!("expected the failure as a result, got {other:?}"),
        }
        let statusless = json!({"paymentSend": {
            "status": null,
            "errors": [{"__typename": "GraphQLApplicationError", "message": "bad", "code": "X"}],
            "transaction": null
        }});
        assert!(matches!(read(statusless), Err(ClientError::GraphQl(_))));
        assert!(matches!(
            read(json!({"paymentSend": {"errors": []}})),
            Err(ClientError::Decode(_))
        ));
        assert!(matches!(read(json!({})), Err(ClientError::Decode(_))));
    }

    #[tokio::test]
    async fn sends_are_checked_before_anything_is_sent() -> Result<(), ClientError> {
        // Port 9 (discard) on localhost: nothing listens, so a request would be a Request error.
        let c = Client::new("http://127.0.0.1:9")?.with_token("t");
        let base = SendRequest {
            wallet_id: "w".into(),
            destination: "bob".into(),
            amount: None,
            memo: None,
            speed: None,
            idempotency_key: None,
        };
        assert!(matches!(c.send(&base).await, Err(ClientError::InvalidInput(_))));
        let zero = SendRequest {
            amount: Some(0),
            destination: "a@b.c".into(),
            ..base.clone()
        };
        assert!(matches!(c.send(&zero).await, Err(ClientError::InvalidInput(_))));
        let address = SendRequest {
            destination: "a@b.c".into(),
            ..base.clone()
        };
        assert!(matches!(c.send(&address).await, Err(ClientError::InvalidInput(_))));
        let malformed = SendRequest {
            destination: "lnbc1x".into(),
            amount: Some(5),
            ..base
        };
        assert!(matches!(c.send(&malformed).await, Err(ClientError::InvalidInput(_))));
        let invoice = InvoiceCreateRequest {
            wallet_id: "w".into(),
            amount: Some(0),
            memo: None,
            expires_in_mins: None,
        };
        assert!(matches!(
            c.ln_invoice_create(&invoice).await,
            Err(ClientError::InvalidInput(_))
        ));
        assert!(matches!(
            c.ln_fee_probe("w", "lnbc1x", Some(0)).await,
            Err(ClientError::InvalidInput(_))
        ));
        assert!(matches!(
            c.ecash_mint("w", 0, None).await,
            Err(ClientError::InvalidInput(_))
        ));
        assert!(matches!(
            c.ecash_redeem("w", " \n").await,
            Err(ClientError::InvalidInput(_))
        ));
        Ok(())
    }

    #[tokio::test]
    async fn admin_calls_need_a_key() -> Result<(), ClientError> {
        let c = Client::new(DEFAULT_SERVER)?;
        assert!(matches!(c.ledger_verify().await, Err(ClientError::NoAdminKey)));
        assert!(matches!(c.lightning_node().await, Err(ClientError::NoAdminKey)));
        assert!(matches!(
            c.dev_lightning_pay_invoice("lnbc1x", None).await,
            Err(ClientError::NoAdminKey)
        ));
        assert!(matches!(c.lightning_reconcile().await, Err(ClientError::NoAdminKey)));
        assert!(matches!(c.onchain_status().await, Err(ClientError::NoAdminKey)));
        assert!(matches!(c.dev_chain_mine(1).await, Err(ClientError::NoAdminKey)));
        assert!(matches!(c.cold_storage(None).await, Err(ClientError::NoAdminKey)));
        assert!(matches!(c.cold_sweep_now().await, Err(ClientError::NoAdminKey)));
        assert!(matches!(c.ecash_status().await, Err(ClientError::NoAdminKey)));
        assert!(matches!(c.ecash_keyset_rotate().await, Err(ClientError::NoAdminKey)));
        Ok(())
    }

    #[tokio::test]
    async fn onchain_calls_are_checked_before_anything_is_sent() -> Result<(), ClientError> {
        // Nothing listens on port 9: a request would be a Request error.
        let c = Client::new("http://127.0.0.1:9")?.with_token("t").with_admin_key("k");
        assert!(matches!(
            c.onchain_fee("w", "bcrt1q", 0, None).await,
            Err(ClientError::InvalidInput(_))
        ));
        assert!(matches!(
            c.dev_chain_deposit("bcrt1q", 0).await,
            Err(ClientError::InvalidInput(_))
        ));
        assert!(matches!(c.cold_psbt_create(0).await, Err(ClientError::InvalidInput(_))));
        assert!(matches!(
            c.cold_psbt_cancel(" ").await,
            Err(ClientError::InvalidInput(_))
        ));
        assert!(matches!(
            c.cold_psbt_finalize_broadcast("sweep:1", &[]).await,
            Err(ClientError::InvalidInput(_))
        ));
        let bad = c
            .cold_psbt_finalize_broadcast("sweep:1", &["cHNidP8BAA==".into(), "hello".into()])
            .await
            .err()
            .map(|e| e.to_string());
        assert!(bad.as_deref().is_some_and(|e| e.contains("signed PSBT #1")), "{bad:?}");
        Ok(())
    }
}
