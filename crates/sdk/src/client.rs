//! The async SDK client for a Flash server.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ClientError;
use crate::graphql::{self, mutation_payload, payload_errors, response_data};
use crate::types::{
    AccountDetails, AccountLevel, AccountStatus, ApiKey, ApiKeyCreateInput, Card, CardCreateInput, CardCreated,
    CardStateChange, ColdStorage, ColdSweep, Contact, CreatedApiKey, EcashKeyset, EcashMinted, EcashRedeemed,
    EcashStatus, IdOnly, InvoiceCreateRequest, InvoicePaymentStatus, Journal, LedgerVerification, LightningLiquidity,
    LightningNode, LightningReconcile, LnInvoice, Me, MerchantApiKey, MerchantApiKeyCreated, MerchantStore,
    NwcConnection, NwcConnectionCreateInput, NwcConnectionCreated, OnchainBatch, OnchainBatchNow, OnchainPayout,
    OnchainReclaim, OnchainReview, OnchainSendAllRequest, OnchainStatus, PayRequest, PaymentResult, PaymentTarget,
    PublicWallet, RevokedApiKey, RewardProgram, RewardProgramCreateInput, SendRequest, Speed, TransactionConnection,
    UserNpub, UserSummary, WithdrawLink, WithdrawLinkCreateInput, WithdrawLinkCreated,
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

/// Reads a payment payload `data[field]`: returned as-is when it has a status (a `FAILURE`
/// keeps its errors), an error when it has none.
fn payment_result(mut data: Value, field: &str) -> Result<PaymentResult, ClientError> {
    let payload = data
        .get_mut(field)
        .map(Value::take)
        .filter(|v| !v.is_null())
        .ok_or_else(|| ClientError::Decode(format!("missing `{field}` in response")))?;
    if payload.get("status").is_none_or(Value::is_null) {
        let errors = payload_errors(&payload);
        if errors.is_empty() {
            return Err(ClientError::Decode(format!("missing `status` in `{field}`")));
        }
        return Err(ClientError::GraphQl(errors));
    }
    decode(payload, field)
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

    /// Sends a GraphQL document to `path` and returns its `data`.
    async fn graphql_at(
        &self,
        path: &str,
        bearer: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, ClientError> {
        let body = json!({ "query": query, "variables": variables });
        let (status, text) = self.post(path, &body, bearer).await?;
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
        match self
            .graphql_at("/graphql", self.token.as_deref(), query, variables)
            .await
        {
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
        let key = self.admin_key.as_deref().ok_or(ClientError::NoAdminKey)?;
        match self.graphql_at("/admin/graphql", Some(key), query, variables).await {
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

    /// The authenticated user with the default account and wallets.
    pub async fn me(&self) -> Result<Me, ClientError> {
        let data = self.graphql(graphql::ME_QUERY, json!({})).await?;
        let me = data.get("me").cloned().unwrap_or(Value::Null);
        if me.is_null() {
            return Err(ClientError::NotAuthenticated);
        }
        decode(me, "me")
    }

    /// One page of transactions, newest first; `wallet_id = None` for all wallets.
    pub async fn history(
        &self,
        wallet_id: Option<&str>,
        first: Option<u32>,
        after: Option<&str>,
    ) -> Result<TransactionConnection, ClientError> {
        let mut vars = json!({ "first": first, "after": after });
        if let (Some(id), Some(map)) = (wallet_id, vars.as_object_mut()) {
            map.insert("walletId".into(), json!(id));
        }
        let query = graphql::transactions_query(wallet_id.is_some());
        let data = self.graphql(&query, vars).await?;
        let me = field(data, "me").map_err(|_| ClientError::NotAuthenticated)?;
        let txs = field(field(me, "defaultAccount")?, "transactions")?;
        decode(txs, "transactions")
    }

    /// The default wallet of `username`.
    pub async fn account_default_wallet(&self, username: &str) -> Result<PublicWallet, ClientError> {
        let data = self
            .graphql(graphql::ACCOUNT_DEFAULT_WALLET_QUERY, json!({ "username": username }))
            .await?;
        decode(field(data, "accountDefaultWallet")?, "accountDefaultWallet")
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
        let mut input = serde_json::Map::new();
        input.insert("walletId".into(), json!(req.wallet_id));
        input.insert("destination".into(), json!(req.destination.trim()));
        if let Some(amount) = req.amount {
            input.insert("amount".into(), json!(amount));
        }
        if let Some(memo) = &req.memo {
            input.insert("memo".into(), json!(memo));
        }
        if let Some(speed) = req.speed {
            input.insert("speed".into(), json!(speed));
        }
        if let Some(key) = &req.idempotency_key {
            input.insert("idempotencyKey".into(), json!(key));
        }
        let data = self.graphql(graphql::PAYMENT_SEND, json!({ "input": input })).await?;
        payment_result(data, "paymentSend")
    }

    /// Sends a wallet's whole balance, less the fee, to a Bitcoin address
    /// (`onChainPaymentSendAll`). Returned like [`Client::send`]: usually `PENDING` until the
    /// transaction is out (or `SUCCESS` for an address of this bank, paid inside the ledger).
    pub async fn onchain_send_all(&self, req: &OnchainSendAllRequest) -> Result<PaymentResult, ClientError> {
        let mut input = serde_json::Map::new();
        input.insert("walletId".into(), json!(req.wallet_id));
        input.insert("address".into(), json!(req.address.trim()));
        if let Some(speed) = req.speed {
            input.insert("speed".into(), json!(speed));
        }
        if let Some(memo) = &req.memo {
            input.insert("memo".into(), json!(memo));
        }
        if let Some(key) = &req.idempotency_key {
            input.insert("idempotencyKey".into(), json!(key));
        }
        let data = self
            .graphql(graphql::ON_CHAIN_PAYMENT_SEND_ALL, json!({ "input": input }))
            .await?;
        payment_result(data, "onChainPaymentSendAll")
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
        let vars = json!({ "walletId": wallet_id, "address": address.trim(), "amount": amount, "speed": speed });
        let data = self.graphql(graphql::ON_CHAIN_TX_FEE_QUERY, vars).await?;
        decode(field(field(data, "onChainTxFee")?, "amount")?, "onChainTxFee.amount")
    }

    /// A deposit address of one of the caller's wallets: its newest one
    /// (`onChainAddressCurrent`, created if it has none), or with `new` a fresh one
    /// (`onChainAddressCreate`).
    pub async fn onchain_address(&self, wallet_id: &str, new: bool) -> Result<String, ClientError> {
        let (document, name) = if new {
            (graphql::ON_CHAIN_ADDRESS_CREATE, "onChainAddressCreate")
        } else {
            (graphql::ON_CHAIN_ADDRESS_CURRENT, "onChainAddressCurrent")
        };
        let data = self
            .graphql(document, json!({ "input": { "walletId": wallet_id } }))
            .await?;
        decode(field(mutation_payload(data, name)?, "address")?, name)
    }

    /// Creates a Lightning invoice on one of the caller's wallets: `lnInvoiceCreate` with an
    /// amount, `lnNoAmountInvoiceCreate` without.
    pub async fn ln_invoice_create(&self, req: &InvoiceCreateRequest) -> Result<LnInvoice, ClientError> {
        if req.amount == Some(0) {
            return Err(ClientError::InvalidInput("amount must be at least 1 sat".into()));
        }
        let mut input = serde_json::Map::new();
        input.insert("walletId".into(), json!(req.wallet_id));
        if let Some(amount) = req.amount {
            input.insert("amount".into(), json!(amount));
        }
        if let Some(memo) = &req.memo {
            input.insert("memo".into(), json!(memo));
        }
        if let Some(minutes) = req.expires_in_mins {
            input.insert("expiresIn".into(), json!(minutes));
        }
        let (document, name) = match req.amount {
            Some(_) => (graphql::LN_INVOICE_CREATE, "lnInvoiceCreate"),
            None => (graphql::LN_NO_AMOUNT_INVOICE_CREATE, "lnNoAmountInvoiceCreate"),
        };
        let data = self.graphql(document, json!({ "input": input })).await?;
        let payload = mutation_payload(data, name)?;
        decode(field(payload, "invoice")?, &format!("{name}.invoice"))
    }

    /// The payment status of an invoice this bank issued (no login needed).
    pub async fn ln_invoice_payment_status(&self, payment_request: &str) -> Result<InvoicePaymentStatus, ClientError> {
        let data = self
            .graphql(
                graphql::LN_INVOICE_PAYMENT_STATUS,
                json!({ "input": { "paymentRequest": payment_request.trim() } }),
            )
            .await?;
        decode(
            mutation_payload(data, "lnInvoicePaymentStatus")?,
            "lnInvoicePaymentStatus",
        )
    }

    /// The fee, in sats, paying an invoice from `wallet_id` would cost: `lnInvoiceFeeProbe`
    /// without `amount`, `lnNoAmountInvoiceFeeProbe` with one.
    pub async fn ln_fee_probe(
        &self,
        wallet_id: &str,
        payment_request: &str,
        amount: Option<u64>,
    ) -> Result<i64, ClientError> {
        let mut input = json!({ "walletId": wallet_id, "paymentRequest": payment_request.trim() });
        let (document, name) = match amount {
            Some(0) => return Err(ClientError::InvalidInput("amount must be at least 1 sat".into())),
            Some(a) => {
                if let Some(map) = input.as_object_mut() {
                    map.insert("amount".into(), json!(a));
                }
                (graphql::LN_NO_AMOUNT_INVOICE_FEE_PROBE, "lnNoAmountInvoiceFeeProbe")
            }
            None => (graphql::LN_INVOICE_FEE_PROBE, "lnInvoiceFeeProbe"),
        };
        let data = self.graphql(document, json!({ "input": input })).await?;
        let fee = field(mutation_payload(data, name)?, "amount")?;
        decode(fee, &format!("{name}.amount"))
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
        let mut input = json!({ "walletId": wallet_id, "amount": amount });
        if let (Some(key), Some(map)) = (idempotency_key, input.as_object_mut()) {
            map.insert("idempotencyKey".into(), json!(key));
        }
        let data = self.graphql(graphql::ECASH_MINT, json!({ "input": input })).await?;
        decode(mutation_payload(data, "ecashMint")?, "ecashMint")
    }

    /// Credits one of the caller's BTC wallets from a Cashu token of this bank's mint
    /// (`ecashRedeem`, scope `receive`): its value less the mint's input fee. Payload `errors`
    /// (e.g. `ECASH_ALREADY_SPENT`) become [`ClientError::GraphQl`].
    pub async fn ecash_redeem(&self, wallet_id: &str, token: &str) -> Result<EcashRedeemed, ClientError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(ClientError::InvalidInput("no token given".into()));
        }
        let data = self
            .graphql(
                graphql::ECASH_REDEEM,
                json!({ "input": { "token": token, "walletId": wallet_id } }),
            )
            .await?;
        decode(mutation_payload(data, "ecashRedeem")?, "ecashRedeem")
    }

    /// Sets the caller's username.
    pub async fn set_username(&self, username: &str) -> Result<UserSummary, ClientError> {
        let data = self
            .graphql(
                graphql::USER_UPDATE_USERNAME,
                json!({ "input": { "username": username } }),
            )
            .await?;
        let payload = mutation_payload(data, "userUpdateUsername")?;
        decode(field(payload, "user")?, "userUpdateUsername.user")
    }

    /// Creates an API key; the secret in the result is shown only this once.
    pub async fn api_key_create(&self, input: &ApiKeyCreateInput) -> Result<CreatedApiKey, ClientError> {
        let data = self.graphql(graphql::API_KEY_CREATE, json!({ "input": input })).await?;
        decode(mutation_payload(data, "apiKeyCreate")?, "apiKeyCreate")
    }

    /// Lists the caller's API keys.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, ClientError> {
        let data = self.graphql(graphql::API_KEYS_QUERY, json!({})).await?;
        let me = field(data, "me").map_err(|_| ClientError::NotAuthenticated)?;
        match me.get("apiKeys") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(keys) => decode(keys.clone(), "apiKeys"),
        }
    }

    /// Revokes an API key by id.
    pub async fn api_key_revoke(&self, id: &str) -> Result<RevokedApiKey, ClientError> {
        let data = self
            .graphql(graphql::API_KEY_REVOKE, json!({ "input": { "id": id } }))
            .await?;
        let payload = mutation_payload(data, "apiKeyRevoke")?;
        decode(field(payload, "apiKey")?, "apiKeyRevoke.apiKey")
    }

    /// Links the caller's NOSTR key (`npub1…` or 64 hex characters); returns the user.
    pub async fn set_npub(&self, npub: &str) -> Result<UserNpub, ClientError> {
        let data = self
            .graphql(graphql::USER_UPDATE_NPUB, json!({ "input": { "npub": npub.trim() } }))
            .await?;
        let payload = mutation_payload(data, "userUpdateNpub")?;
        decode(field(payload, "user")?, "userUpdateNpub.user")
    }

    /// Connects an app to a wallet; the URI in the result is shown only this once.
    pub async fn nwc_connection_create(
        &self,
        input: &NwcConnectionCreateInput,
    ) -> Result<NwcConnectionCreated, ClientError> {
        let data = self
            .graphql(graphql::NWC_CONNECTION_CREATE, json!({ "input": input }))
            .await?;
        decode(mutation_payload(data, "nwcConnectionCreate")?, "nwcConnectionCreate")
    }

    /// The caller's wallet connections, newest first.
    pub async fn nwc_connections(&self) -> Result<Vec<NwcConnection>, ClientError> {
        let data = self.graphql(graphql::NWC_CONNECTIONS_QUERY, json!({})).await?;
        decode(field(data, "nwcConnections")?, "nwcConnections")
    }

    /// Cuts a wallet connection off.
    pub async fn nwc_connection_revoke(&self, id: &str) -> Result<(), ClientError> {
        let data = self
            .graphql(graphql::NWC_CONNECTION_REVOKE, json!({ "input": { "id": id } }))
            .await?;
        mutation_payload(data, "nwcConnectionRevoke").map(drop)
    }

    /// Makes a merchant store, settled into the default wallet.
    pub async fn merchant_store_create(
        &self,
        name: &str,
        default_currency: Option<&str>,
    ) -> Result<MerchantStore, ClientError> {
        let input = json!({ "name": name, "defaultCurrency": default_currency });
        let data = self
            .graphql(graphql::MERCHANT_STORE_CREATE, json!({ "input": input }))
            .await?;
        let payload = mutation_payload(data, "merchantStoreCreate")?;
        decode(
            payload.get("store").cloned().unwrap_or_default(),
            "merchantStoreCreate.store",
        )
    }

    /// The caller's merchant stores.
    pub async fn merchant_stores(&self) -> Result<Vec<MerchantStore>, ClientError> {
        let data = self.graphql(graphql::MERCHANT_STORES_QUERY, json!({})).await?;
        decode(field(data, "merchantStores")?, "merchantStores")
    }

    /// Makes a Greenfield API key; its secret is shown only this once.
    pub async fn merchant_api_key_create(
        &self,
        label: &str,
        permissions: &[String],
    ) -> Result<MerchantApiKeyCreated, ClientError> {
        let input = json!({ "label": label, "permissions": permissions });
        let data = self
            .graphql(graphql::MERCHANT_API_KEY_CREATE, json!({ "input": input }))
            .await?;
        decode(mutation_payload(data, "merchantApiKeyCreate")?, "merchantApiKeyCreate")
    }

    /// The caller's Greenfield API keys.
    pub async fn merchant_api_keys(&self) -> Result<Vec<MerchantApiKey>, ClientError> {
        let data = self.graphql(graphql::MERCHANT_API_KEYS_QUERY, json!({})).await?;
        decode(field(data, "merchantApiKeys")?, "merchantApiKeys")
    }

    /// Revokes a Greenfield API key.
    pub async fn merchant_api_key_revoke(&self, id: &str) -> Result<(), ClientError> {
        let data = self
            .graphql(graphql::MERCHANT_API_KEY_REVOKE, json!({ "input": { "id": id } }))
            .await?;
        mutation_payload(data, "merchantApiKeyRevoke").map(drop)
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
        let data = self
            .graphql(graphql::LNURL_WITHDRAW_CREATE, json!({ "input": input }))
            .await?;
        decode(mutation_payload(data, "lnurlWithdrawCreate")?, "lnurlWithdrawCreate")
    }

    /// The caller's LNURL-withdraw links, newest first.
    pub async fn lnurl_withdraw_links(&self) -> Result<Vec<WithdrawLink>, ClientError> {
        let data = self.graphql(graphql::LNURL_WITHDRAW_LINKS_QUERY, json!({})).await?;
        decode(field(data, "lnurlWithdrawLinks")?, "lnurlWithdrawLinks")
    }

    /// Revokes an LNURL-withdraw link.
    pub async fn lnurl_withdraw_revoke(&self, id: &str) -> Result<(), ClientError> {
        let data = self
            .graphql(graphql::LNURL_WITHDRAW_REVOKE, json!({ "input": { "id": id } }))
            .await?;
        mutation_payload(data, "lnurlWithdrawRevoke").map(drop)
    }

    /// Makes a Flash Card; its programming link is shown only this once (valid for an hour).
    pub async fn card_create(&self, input: &CardCreateInput) -> Result<CardCreated, ClientError> {
        let data = self.graphql(graphql::CARD_CREATE, json!({ "input": input })).await?;
        decode(mutation_payload(data, "cardCreate")?, "cardCreate")
    }

    /// The caller's Flash Cards, newest first.
    pub async fn cards(&self) -> Result<Vec<Card>, ClientError> {
        let data = self.graphql(graphql::CARDS_QUERY, json!({})).await?;
        decode(field(data, "cards")?, "cards")
    }

    /// `boltcard://reset?url=…`: the deep link that opens the Bolt Card NFC Programmer app
    /// to reset a card of this server.
    pub async fn card_reset_deeplink(&self) -> Result<String, ClientError> {
        let data = self.graphql(graphql::CARD_RESET_DEEPLINK_QUERY, json!({})).await?;
        decode(field(data, "cardResetDeeplink")?, "cardResetDeeplink")
    }

    /// Sets a card's per-tap and 24-hour limits, sats.
    pub async fn card_limits_update(&self, id: &str, tap_limit: u64, day_limit: u64) -> Result<Card, ClientError> {
        let input = json!({ "id": id, "tapLimit": tap_limit, "dayLimit": day_limit });
        let data = self
            .graphql(graphql::CARD_LIMITS_UPDATE, json!({ "input": input }))
            .await?;
        let payload = mutation_payload(data, "cardLimitsUpdate")?;
        decode(field(payload, "card")?, "cardLimitsUpdate.card")
    }

    /// Gives a card a PIN (4 to 8 digits), asked for withdrawals of `pin_limit` sats or more,
    /// or removes it (`None`); the card as it is now.
    pub async fn card_pin_set(&self, id: &str, pin: Option<(&str, u64)>) -> Result<Card, ClientError> {
        let input = match pin {
            Some((pin, pin_limit)) => json!({ "id": id, "pin": pin, "pinLimit": pin_limit }),
            None => json!({ "id": id, "pin": null }),
        };
        let data = self.graphql(graphql::CARD_PIN_SET, json!({ "input": input })).await?;
        let payload = mutation_payload(data, "cardPinSet")?;
        decode(field(payload, "card")?, "cardPinSet.card")
    }

    /// Disables, enables or wipes a card; the card as it is now.
    pub async fn card_set_state(&self, id: &str, change: CardStateChange) -> Result<Card, ClientError> {
        let (document, name) = match change {
            CardStateChange::Disable => (graphql::CARD_DISABLE, "cardDisable"),
            CardStateChange::Enable => (graphql::CARD_ENABLE, "cardEnable"),
            CardStateChange::Wipe => (graphql::CARD_WIPE, "cardWipe"),
        };
        let data = self.graphql(document, json!({ "input": { "id": id } })).await?;
        let payload = mutation_payload(data, name)?;
        decode(field(payload, "card")?, name)
    }

    /// Makes a rewards program for one of the caller's stores.
    pub async fn reward_program_create(&self, input: &RewardProgramCreateInput) -> Result<RewardProgram, ClientError> {
        let data = self
            .graphql(graphql::REWARD_PROGRAM_CREATE, json!({ "input": input }))
            .await?;
        let payload = mutation_payload(data, "rewardProgramCreate")?;
        decode(field(payload, "program")?, "rewardProgramCreate.program")
    }

    /// One of the caller's rewards programs.
    pub async fn reward_program(&self, id: &str) -> Result<RewardProgram, ClientError> {
        let data = self.graphql(graphql::REWARD_PROGRAM_QUERY, json!({ "id": id })).await?;
        decode(field(data, "rewardProgram")?, "rewardProgram")
    }

    /// A store's rewards programs, newest first.
    pub async fn reward_programs(&self, store_id: &str) -> Result<Vec<RewardProgram>, ClientError> {
        let data = self
            .graphql(graphql::REWARD_PROGRAMS_QUERY, json!({ "storeId": store_id }))
            .await?;
        decode(field(data, "rewardPrograms")?, "rewardPrograms")
    }

    /// Ends a rewards program now.
    pub async fn reward_program_end(&self, id: &str) -> Result<RewardProgram, ClientError> {
        let data = self
            .graphql(graphql::REWARD_PROGRAM_END, json!({ "input": { "id": id } }))
            .await?;
        let payload = mutation_payload(data, "rewardProgramEnd")?;
        decode(field(payload, "program")?, "rewardProgramEnd.program")
    }

    /// The caller's contacts.
    pub async fn contacts(&self) -> Result<Vec<Contact>, ClientError> {
        let data = self.graphql(graphql::CONTACTS_QUERY, json!({})).await?;
        let me = field(data, "me").map_err(|_| ClientError::NotAuthenticated)?;
        match me.get("contacts") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(contacts) => decode(contacts.clone(), "contacts"),
        }
    }

    /// Names a contact (by username).
    pub async fn contact_set_alias(&self, username: &str, alias: &str) -> Result<Contact, ClientError> {
        let data = self
            .graphql(
                graphql::USER_CONTACT_UPDATE_ALIAS,
                json!({ "input": { "username": username.trim_start_matches('@'), "alias": alias } }),
            )
            .await?;
        let payload = mutation_payload(data, "userContactUpdateAlias")?;
        decode(field(payload, "contact")?, "userContactUpdateAlias.contact")
    }

    // ---- admin API -------------------------------------------------------

    /// Admin: verifies the ledger.
    pub async fn ledger_verify(&self) -> Result<LedgerVerification, ClientError> {
        let data = self.admin_graphql(graphql::LEDGER_VERIFY_QUERY, json!({})).await?;
        decode(field(data, "ledgerVerify")?, "ledgerVerify")
    }

    /// Admin: credits `amount` sats to a wallet; returns the transaction id if any.
    pub async fn wallet_fund(&self, wallet_id: &str, amount: u64) -> Result<Option<IdOnly>, ClientError> {
        let data = self
            .admin_graphql(
                graphql::WALLET_FUND,
                json!({ "input": { "walletId": wallet_id, "amount": amount } }),
            )
            .await?;
        let payload = mutation_payload(data, "walletFund")?;
        match payload.get("transaction") {
            None | Some(Value::Null) => Ok(None),
            Some(t) => decode(t.clone(), "walletFund.transaction").map(Some),
        }
    }

    /// Admin: sets an account's level.
    pub async fn account_update_level(
        &self,
        account_id: &str,
        level: AccountLevel,
    ) -> Result<AccountDetails, ClientError> {
        let data = self
            .admin_graphql(
                graphql::ACCOUNT_UPDATE_LEVEL,
                json!({ "input": { "accountId": account_id, "level": level } }),
            )
            .await?;
        let payload = mutation_payload(data, "accountUpdateLevel")?;
        decode(field(payload, "accountDetails")?, "accountDetails")
    }

    /// Admin: sets an account's status, with an optional audit comment.
    pub async fn account_update_status(
        &self,
        account_id: &str,
        status: AccountStatus,
        comment: Option<&str>,
    ) -> Result<AccountDetails, ClientError> {
        let mut input = json!({ "accountId": account_id, "status": status });
        if let (Some(c), Some(map)) = (comment, input.as_object_mut()) {
            map.insert("comment".into(), json!(c));
        }
        let data = self
            .admin_graphql(graphql::ACCOUNT_UPDATE_STATUS, json!({ "input": input }))
            .await?;
        let payload = mutation_payload(data, "accountUpdateStatus")?;
        decode(field(payload, "accountDetails")?, "accountDetails")
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
        let data = self
            .admin_graphql(
                graphql::DEV_LIGHTNING_PAY_INVOICE,
                json!({ "input": { "paymentRequest": payment_request.trim(), "amount": amount } }),
            )
            .await?;
        let payload = mutation_payload(data, "devLightningPayInvoice")?;
        match payload.get("success").and_then(Value::as_bool) {
            Some(true) => Ok(()),
            _ => Err(ClientError::Decode("devLightningPayInvoice did not succeed".into())),
        }
    }

    /// Admin: the Lightning node, its chain state and channels.
    pub async fn lightning_node(&self) -> Result<LightningNode, ClientError> {
        let data = self.admin_graphql(graphql::LIGHTNING_NODE_QUERY, json!({})).await?;
        decode(field(data, "lightningNode")?, "lightningNode")
    }

    /// Admin: the liquidity manager's latest view (`lightningLiquidity`).
    pub async fn lightning_liquidity(&self) -> Result<LightningLiquidity, ClientError> {
        let data = self
            .admin_graphql(graphql::LIGHTNING_LIQUIDITY_QUERY, json!({}))
            .await?;
        decode(field(data, "lightningLiquidity")?, "lightningLiquidity")
    }

    /// Admin: runs a liquidity check now and acts on it (`lightningLiquidityCheck`).
    pub async fn lightning_liquidity_check(&self) -> Result<LightningLiquidity, ClientError> {
        let data = self
            .admin_graphql(graphql::LIGHTNING_LIQUIDITY_CHECK, json!({}))
            .await?;
        let payload = mutation_payload(data, "lightningLiquidityCheck")?;
        decode(field(payload, "liquidity")?, "lightningLiquidityCheck.liquidity")
    }

    /// Admin: resolves pending Lightning payments from the node's truth now.
    pub async fn lightning_reconcile(&self) -> Result<LightningReconcile, ClientError> {
        let data = self.admin_graphql(graphql::LIGHTNING_RECONCILE, json!({})).await?;
        decode(mutation_payload(data, "lightningReconcile")?, "lightningReconcile")
    }

    /// Admin: the hot wallet, pending deposits and queued payouts.
    pub async fn onchain_status(&self) -> Result<OnchainStatus, ClientError> {
        let data = self.admin_graphql(graphql::ONCHAIN_STATUS_QUERY, json!({})).await?;
        decode(field(data, "onchainStatus")?, "onchainStatus")
    }

    /// Admin: payouts waiting for a batch, oldest first (`first` or the server's 100).
    pub async fn onchain_payout_queue(&self, first: Option<u32>) -> Result<Vec<OnchainPayout>, ClientError> {
        let data = self
            .admin_graphql(graphql::ONCHAIN_PAYOUT_QUEUE_QUERY, json!({ "first": first }))
            .await?;
        decode(field(data, "onchainPayoutQueue")?, "onchainPayoutQueue")
    }

    /// Admin: payout transactions, newest first (`first` or the server's 20).
    pub async fn onchain_batches(&self, first: Option<u32>) -> Result<Vec<OnchainBatch>, ClientError> {
        let data = self
            .admin_graphql(graphql::ONCHAIN_BATCHES_QUERY, json!({ "first": first }))
            .await?;
        decode(field(data, "onchainBatches")?, "onchainBatches")
    }

    /// Admin: sends the queued payouts now instead of at the next batch interval.
    pub async fn onchain_batch_now(&self) -> Result<OnchainBatchNow, ClientError> {
        let data = self.admin_graphql(graphql::ONCHAIN_PAYOUT_BATCH_NOW, json!({})).await?;
        decode(
            mutation_payload(data, "onchainPayoutBatchNow")?,
            "onchainPayoutBatchNow",
        )
    }

    /// Admin: the deposits under review, oldest first.
    pub async fn onchain_reviews(&self) -> Result<Vec<OnchainReview>, ClientError> {
        let data = self.admin_graphql(graphql::ONCHAIN_REVIEWS_QUERY, json!({})).await?;
        decode(field(data, "onchainReviews")?, "onchainReviews")
    }

    /// Admin: ends the review of `outpoint` by reclaiming what its wallet still holds.
    pub async fn onchain_review_reclaim(&self, outpoint: &str) -> Result<OnchainReclaim, ClientError> {
        let data = self
            .admin_graphql(
                graphql::ONCHAIN_REVIEW_RECLAIM,
                json!({ "input": { "outpoint": outpoint.trim() } }),
            )
            .await?;
        decode(mutation_payload(data, "onchainReviewReclaim")?, "onchainReviewReclaim")
    }

    /// Admin (dev chain only): pays `amount` sats from outside to `address`, into the
    /// simulated mempool; the transaction id.
    pub async fn dev_chain_deposit(&self, address: &str, amount: u64) -> Result<String, ClientError> {
        if amount == 0 {
            return Err(ClientError::InvalidInput("amount must be at least 1 sat".into()));
        }
        let data = self
            .admin_graphql(
                graphql::DEV_CHAIN_DEPOSIT,
                json!({ "input": { "address": address.trim(), "amount": amount } }),
            )
            .await?;
        decode(
            field(mutation_payload(data, "devChainDeposit")?, "txHash")?,
            "devChainDeposit.txHash",
        )
    }

    /// Admin (dev chain only): mines `blocks` blocks (the mempool goes into the first) and
    /// credits what they confirmed; the new height.
    pub async fn dev_chain_mine(&self, blocks: u32) -> Result<i64, ClientError> {
        let data = self
            .admin_graphql(graphql::DEV_CHAIN_MINE, json!({ "input": { "blocks": blocks } }))
            .await?;
        decode(
            field(mutation_payload(data, "devChainMine")?, "height")?,
            "devChainMine.height",
        )
    }

    /// Admin (dev chain only): replaces the top `depth` blocks with a longer chain of empty
    /// ones; with `drop_transactions` their transactions vanish instead of going back to the
    /// mempool. The new height.
    pub async fn dev_chain_reorg(&self, depth: u32, drop_transactions: bool) -> Result<i64, ClientError> {
        let data = self
            .admin_graphql(
                graphql::DEV_CHAIN_REORG,
                json!({ "input": { "depth": depth, "dropTransactions": drop_transactions } }),
            )
            .await?;
        decode(
            field(mutation_payload(data, "devChainReorg")?, "height")?,
            "devChainReorg.height",
        )
    }

    /// Admin: cold storage's balance and policy, and the latest sweeps (`first` or the
    /// server's 20).
    pub async fn cold_storage(&self, first: Option<u32>) -> Result<ColdStorage, ClientError> {
        let data = self
            .admin_graphql(graphql::COLD_STORAGE_QUERY, json!({ "first": first }))
            .await?;
        decode(field(data, "coldStorage")?, "coldStorage")
    }

    /// Admin: sweeps the hot wallet's excess to cold storage now; `None` when within policy.
    pub async fn cold_sweep_now(&self) -> Result<Option<ColdSweep>, ClientError> {
        let data = self.admin_graphql(graphql::COLD_SWEEP_NOW, json!({})).await?;
        match mutation_payload(data, "coldSweepNow")?.get("sweep") {
            None | Some(Value::Null) => Ok(None),
            Some(sweep) => decode(sweep.clone(), "coldSweepNow.sweep").map(Some),
        }
    }

    /// Admin: a PSBT bringing `amount` sats from cold storage back to the hot wallet, for the
    /// cosigners to sign offline (`flash cold sign`); the sweep carries it in `psbt`.
    pub async fn cold_psbt_create(&self, amount: u64) -> Result<ColdSweep, ClientError> {
        if amount == 0 {
            return Err(ClientError::InvalidInput("amount must be at least 1 sat".into()));
        }
        let data = self
            .admin_graphql(graphql::COLD_PSBT_CREATE, json!({ "input": { "amount": amount } }))
            .await?;
        decode(
            field(mutation_payload(data, "coldPsbtCreate")?, "sweep")?,
            "coldPsbtCreate.sweep",
        )
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
        let data = self
            .admin_graphql(
                graphql::COLD_PSBT_FINALIZE_BROADCAST,
                json!({ "input": { "sweepId": sweep_id, "psbts": compact } }),
            )
            .await?;
        decode(
            field(mutation_payload(data, "coldPsbtFinalizeBroadcast")?, "sweep")?,
            "coldPsbtFinalizeBroadcast.sweep",
        )
    }

    /// Admin: cancels sweep `sweep_id`, a cold → hot PSBT still awaiting signatures; its
    /// signed copies can no longer be finalised.
    pub async fn cold_psbt_cancel(&self, sweep_id: &str) -> Result<ColdSweep, ClientError> {
        if sweep_id.trim().is_empty() {
            return Err(ClientError::InvalidInput("no sweep id given".into()));
        }
        let data = self
            .admin_graphql(
                graphql::COLD_PSBT_CANCEL,
                json!({ "input": { "sweepId": sweep_id.trim() } }),
            )
            .await?;
        decode(
            field(mutation_payload(data, "coldPsbtCancel")?, "sweep")?,
            "coldPsbtCancel.sweep",
        )
    }

    /// Admin: the mint's books (its notes against the ledger's `mint:outstanding` and
    /// `mint:quotes`) and keysets (`ecashStatus`).
    pub async fn ecash_status(&self) -> Result<EcashStatus, ClientError> {
        let data = self.admin_graphql(graphql::ECASH_STATUS_QUERY, json!({})).await?;
        decode(field(data, "ecashStatus")?, "ecashStatus")
    }

    /// Admin: makes a new active sat keyset with the configured amounts and input fee; the
    /// previous one stops signing and stays redeemable (`ecashKeysetRotate`).
    pub async fn ecash_keyset_rotate(&self) -> Result<EcashKeyset, ClientError> {
        let data = self.admin_graphql(graphql::ECASH_KEYSET_ROTATE, json!({})).await?;
        decode(field(data, "ecashKeysetRotate")?, "ecashKeysetRotate")
    }

    /// Admin: reads a ledger journal.
    pub async fn journal(&self, id: &str) -> Result<Journal, ClientError> {
        let data = self.admin_graphql(graphql::JOURNAL_QUERY, json!({ "id": id })).await?;
        decode(field(data, "journal")?, "journal")
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
        let failed = json!({"lnInvoicePaymentSend": {
            "status": "FAILURE",
            "errors": [{"message": "no route", "code": "PAYMENT_FAILED"}],
            "transaction": {"id": "t1", "settlementFee": 0}
        }});
        match payment_result(failed, "lnInvoicePaymentSend") {
            Ok(r) => {
                assert_eq!(r.status, "FAILURE");
                assert_eq!(r.errors.first().and_then(|e| e.code.as_deref()), Some("PAYMENT_FAILED"));
                assert_eq!(r.transaction.map(|t| t.id).as_deref(), Some("t1"));
            }
            other => panic!("expected the failure as a result, got {other:?}"),
        }
        let statusless = json!({"lnurlPaymentSend": {
            "status": null, "errors": [{"message": "bad", "code": "X"}], "transaction": null
        }});
        assert!(matches!(
            payment_result(statusless, "lnurlPaymentSend"),
            Err(ClientError::GraphQl(_))
        ));
        assert!(matches!(
            payment_result(json!({"lnurlPaymentSend": {"errors": []}}), "lnurlPaymentSend"),
            Err(ClientError::Decode(_))
        ));
        assert!(matches!(
            payment_result(json!({}), "lnurlPaymentSend"),
            Err(ClientError::Decode(_))
        ));
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
