//! Test harness: the real `flash-api` router served on 127.0.0.1 over a fresh store (SQLite or
//! PostgreSQL) with a clock the test moves, an [`Auth`] whose code sender hands login codes to
//! the test, and an operator key. Tests talk to it over HTTP (reqwest) and websockets
//! (tokio-tungstenite, graphql-transport-ws) exactly as a client would.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flash_api::{ApiState, Metrics, ServerInfo};
use flash_auth::{Auth, AuthConfig};
use flash_bank::{Bank, BankConfig, LightningConfig};
use flash_core::lightning::{DevOutcome, InvoiceDescription, InvoiceRequest, LightningNode};
use flash_core::ports::{BoxFuture, Clock, CodeChannel, CodeSendError, CodeSender};
use flash_core::Network;
use flash_lightning::{DevNode, HttpLnurlClient, LnurlClientConfig};
use flash_onchain::{BdkHotWallet, DevChain};
use futures_util::{SinkExt, StreamExt};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

pub use flash_store::testing::Backend;

/// The simulator's default: payments to other nodes succeed at once with a 0.1% fee.
pub const INSTANT: DevOutcome = DevOutcome::Succeed {
    delay_ms: 0,
    fee_ppm: 1_000,
};

/// How long a test waits for a websocket message before failing.
pub const WS_TIMEOUT: Duration = Duration::from_secs(15);

/// A clock the test moves forward; starts at the real time.
pub struct TestClock(Arc<AtomicI64>);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Captures every code "sent", by identifier (normalized phone or email).
#[derive(Clone, Default)]
pub struct CapturedCodes(Arc<Mutex<HashMap<String, String>>>);

impl CodeSender for CapturedCodes {
    fn send_code<'a>(
        &'a self,
        _channel: CodeChannel,
        identifier: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<(), CodeSendError>> {
        self.0
            .lock()
            .expect("codes lock")
            .insert(identifier.to_string(), code.to_string());
        Box::pin(async { Ok(()) })
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub text: String,
}

impl Resp {
    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// `error.code` of a REST error body.
    pub fn rest_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_string()
    }
}

/// A logged-in user with its account and default wallet.
#[derive(Clone, Debug)]
pub struct Member {
    /// Session token.
    pub token: String,
    /// Login phone.
    pub phone: String,
    /// User id.
    pub user_id: String,
    /// Account id.
    pub account_id: String,
    /// Default (only) wallet.
    pub wallet_id: String,
    /// Username, if set.
    pub username: Option<String>,
}

static NEXT_PHONE: AtomicU64 = AtomicU64::new(1);

/// A phone number no other call in this process returns.
pub fn unique_phone() -> String {
    let n = NEXT_PHONE.fetch_add(1, Ordering::Relaxed);
    format!("+1555{:03}{n:04}", std::process::id() % 1000)
}

/// Numbers the dev chains' directories.
static NEXT_CHAIN: AtomicU64 = AtomicU64::new(1);

/// A running server and the handles a test needs.
pub struct TestServer {
    /// The backend under test.
    pub backend: Backend,
    /// Where it listens.
    pub addr: SocketAddr,
    /// HTTP client.
    pub http: reqwest::Client,
    /// An operator key.
    pub admin_key: String,
    /// The state the router was built from (for assertions only).
    pub state: ApiState,
    /// Where the store is.
    pub store_config: flash_store::StoreConfig,
    /// The bank's Lightning node: the dev simulator.
    pub node: Arc<DevNode>,
    /// The hot wallet's chain: the dev simulator, in `chain_dir`.
    pub chain: Arc<DevChain>,
    chain_dir: std::path::PathBuf,
    clock: Arc<AtomicI64>,
    codes: CapturedCodes,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.chain_dir);
    }
}

/// `errors[*].extensions.code` of a GraphQL response.
pub fn top_codes(resp: &Value) -> Vec<String> {
    resp["errors"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("<no code>").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The first top-level error code (panics, showing the response, when there is none).
pub fn top_code(resp: &Value) -> String {
    top_codes(resp)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("expected a top-level error: {resp}"))
}

/// Whether the response has any top-level error.
pub fn has_top_errors(resp: &Value) -> bool {
    resp["errors"].as_array().is_some_and(|e| !e.is_empty())
}

/// `errors[0].code` of a mutation payload (panics, showing it, when there is none).
pub fn payload_code(payload: &Value) -> String {
    payload["errors"][0]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a payload error: {payload}"))
        .to_string()
}

/// Asserts a payload has no errors, showing them otherwise.
pub fn assert_no_payload_errors(payload: &Value) {
    assert_eq!(payload["errors"], json!([]), "unexpected payload errors: {payload}");
}

/// `data.<field>` of a GraphQL response that must have no top-level errors.
pub fn data<'a>(resp: &'a Value, field: &str) -> &'a Value {
    assert!(!has_top_errors(resp), "unexpected errors: {resp}");
    &resp["data"][field]
}

/// The transaction fields the tests look at.
pub const TX_FIELDS: &str = "id createdAt direction memo settlementAmount settlementFee settlementCurrency status \
     settlementVia { __typename ... on SettlementViaIntraLedger { counterPartyUsername counterPartyWalletId } } \
     initiationVia { __typename ... on InitiationViaIntraLedger { counterPartyUsername counterPartyWalletId } }";

/// `intraLedgerPaymentSend` with its whole payload.
pub fn pay_mutation() -> String {
    format!(
        "mutation Pay($input: IntraLedgerPaymentSendInput!) {{ intraLedgerPaymentSend(input: $input) {{ \
         status errors {{ code message }} transaction {{ {TX_FIELDS} }} }} }}"
    )
}

/// Another Lightning node on regtest, with the simulator's default outcome.
pub fn other_node(network: Network) -> DevNode {
    DevNode::new(network, DevNode::generate_key(), INSTANT).expect("other dev node")
}

/// An invoice of `node` for `sats` (none: no amount) expiring in `expiry_secs`.
pub async fn external_invoice(node: &DevNode, sats: Option<u64>, expiry_secs: u64) -> String {
    node.create_invoice(InvoiceRequest {
        amount_msat: sats.map(|s| s * 1_000),
        description: InvoiceDescription::Memo("from another node".into()),
        expiry_secs,
    })
    .await
    .expect("invoice on the other node")
    .payment_request
}

impl TestServer {
    /// Starts a server over a fresh store on `backend`.
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server whose bank settings `adjust` changes first.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut BankConfig)) -> TestServer {
        Self::launch(backend, adjust, flash_nostr::RelayConfig::default()).await
    }

    /// Starts a server whose relay has these settings.
    pub async fn start_with_relay(backend: Backend, relay: flash_nostr::RelayConfig) -> TestServer {
        Self::launch(backend, |_| {}, relay).await
    }

    async fn launch(
        backend: Backend,
        adjust: impl FnOnce(&mut BankConfig),
        relay: flash_nostr::RelayConfig,
    ) -> TestServer {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("time after epoch");
        let clock = Arc::new(AtomicI64::new(i64::try_from(now.as_millis()).expect("now fits in i64")));
        let store_config = flash_store::testing::fresh_config(backend).await;
        let store = flash_store::Store::open(&store_config, Arc::new(TestClock(clock.clone())))
            .await
            .expect("open store");
        store
            .ensure_system_accounts(flash_core::Currency::Btc)
            .await
            .expect("system accounts");
        let codes = CapturedCodes::default();
        let auth = Auth::new(
            store.clone(),
            Arc::new(codes.clone()),
            [42u8; 32],
            AuthConfig::default(),
        );
        let admin_key = auth.create_admin_key("tests").await.expect("admin key");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let info = ServerInfo {
            backend: store.backend(),
            simulated_rails: vec!["lightning", "onchain", "prices"],
            public_url: format!("http://{addr}"),
        };
        let node = Arc::new(DevNode::new(Network::Regtest, DevNode::generate_key(), INSTANT).expect("dev node"));
        let mut config = BankConfig {
            lightning: LightningConfig {
                pay_timeout_secs: 1,
                reconcile_grace_secs: 0,
                ..LightningConfig::default()
            },
            lightning_address_domain: Some(addr.to_string()),
            ..BankConfig::default()
        };
        adjust(&mut config);
        let lnurl = HttpLnurlClient::new(LnurlClientConfig::for_network(Network::Regtest)).expect("lnurl client");
        let chain_dir = std::env::temp_dir().join(format!(
            "flash-api-chain-{}-{}",
            std::process::id(),
            NEXT_CHAIN.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&chain_dir);
        let chain = Arc::new(DevChain::open(&chain_dir, Network::Regtest, 2_000).expect("dev chain"));
        let descriptors = flash_onchain::hot_descriptors(&[7u8; 32], Network::Regtest).expect("descriptors");
        let signer = Arc::new(flash_onchain::SoftwareSigner::new(&[7u8; 32], Network::Regtest).expect("signer"));
        let hot = BdkHotWallet::open("hot", &descriptors, chain.clone(), Arc::new(store.clone()), signer)
            .await
            .expect("hot wallet");
        let (store_for_relay, public_url) = (store.clone(), info.public_url.clone());
        let bank = Bank::new(store, config)
            .with_lightning(node.clone(), Some(node.clone()))
            .with_onchain(Arc::new(hot), Some(chain.clone()))
            .with_lnurl(Arc::new(lnurl));
        let kek = flash_core::secrets::KeyEncryptionKey::new([9u8; 32]);
        let mint = flash_mint::Mint::open(
            bank.clone(),
            store_for_relay.clone(),
            &kek,
            flash_mint::MintConfig::default(),
            info.public_url.clone(),
        )
        .await
        .expect("mint");
        let relay = flash_nostr::Relay::start(
            store_for_relay.clone(),
            relay,
            &public_url,
            None,
            nostr::Keys::generate(),
        );
        let nwc = flash_nostr::WalletConnect::start(bank.clone(), relay.clone(), Some(addr.to_string())).await;
        let zaps = flash_nostr::Zaps::start(bank.clone(), relay.clone());
        let admission = flash_nostr::AdmissionFees::new(bank.clone(), relay.clone());
        let prices: Arc<dyn flash_core::price::PriceSource> = Arc::new(flash_rates::DevPrices::with_defaults(
            Arc::new(TestClock(clock.clone())),
        ));
        let merchant = flash_merchant::Merchant::new(bank.clone(), store_for_relay.clone()).with_prices(prices.clone());
        let cards = flash_merchant::cards::Cards::open(&merchant, &kek, &public_url)
            .await
            .expect("cards");
        let state = ApiState {
            names: flash_nostr::Names::new(store_for_relay.clone()),
            cards,
            merchant,
            bank,
            auth,
            metrics: Arc::new(Metrics::default()),
            info: Arc::new(info),
            mint: Some(mint),
            relay: Some(relay),
            nwc: Some(nwc),
            zaps: Some(zaps),
            admission,
            prices: prices.clone(),
        };
        let app = flash_api::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("server failed");
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        TestServer {
            backend,
            store_config,
            addr,
            http,
            admin_key,
            state,
            node,
            chain,
            chain_dir,
            clock,
            codes,
            task,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Clock and codes
    // -----------------------------------------------------------------------------------------

    /// Moves the store's clock forward.
    pub fn advance_secs(&self, secs: i64) {
        self.clock.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    /// The last code sent to `identifier` (normalized phone, lowercase email).
    pub fn code_for(&self, identifier: &str) -> String {
        self.codes
            .0
            .lock()
            .expect("codes lock")
            .get(identifier)
            .cloned()
            .unwrap_or_else(|| panic!("no code was sent to {identifier}"))
    }

    /// How many codes were sent so far (to distinct identifiers).
    pub fn codes_sent(&self) -> usize {
        self.codes.0.lock().expect("codes lock").len()
    }

    /// A six-digit code that is not the one sent to `identifier`.
    pub fn wrong_code_for(&self, identifier: &str) -> String {
        let right = self.code_for(identifier);
        if right == "000000" {
            "111111".into()
        } else {
            "000000".into()
        }
    }

    // -----------------------------------------------------------------------------------------
    // HTTP
    // -----------------------------------------------------------------------------------------

    /// `http://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("read body");
        Resp { status, headers, text }
    }

    /// A request as Greenfield clients send it: `method` on `path` with a whole `Authorization`
    /// header value (`token …`, `Bearer …`) if given, a JSON body if given, and extra headers.
    pub async fn greenfield(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, self.url(path));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_string());
        }
        Self::read(req.send().await.expect("request")).await
    }

    /// Runs the merchant's invoice watcher as flashd does, until the handle is dropped or the
    /// test ends.
    pub fn watch_invoices(&self) -> tokio::task::JoinHandle<()> {
        let merchant = self.state.merchant.clone();
        tokio::spawn(async move { merchant.run_invoice_watcher(std::future::pending()).await })
    }

    /// The merchant outbox's events whose body has `field` = `id`: (type, body), in order.
    pub async fn merchant_events(&self, field: &str, id: &str) -> Vec<(String, Value)> {
        let rows = self
            .state
            .bank
            .store_for_tests()
            .db()
            .query(
                "SELECT event_type, payload FROM merchant_events ORDER BY seq",
                Vec::new(),
            )
            .await
            .expect("outbox");
        rows.iter()
            .map(|r| {
                let payload: Value = serde_json::from_str(&r.text(1).expect("payload")).expect("json");
                (r.text(0).expect("type"), payload)
            })
            .filter(|(_, p)| p[field] == id)
            .collect()
    }

    /// POSTs raw bytes with a content type and optional bearer token.
    pub async fn post_raw(&self, path: &str, token: Option<&str>, content_type: &str, body: Vec<u8>) -> Resp {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::read(req.send().await.expect("POST")).await
    }

    /// POSTs JSON with an optional bearer token.
    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.post_raw(path, token, "application/json", body.to_string().into_bytes())
            .await
    }

    /// POSTs `body` over a raw connection, announced with Content-Length or sent chunked
    /// (8 KiB chunks, no Content-Length); the response status and the raw response. Write
    /// errors are ignored: a server may answer (413) and close before reading the whole body,
    /// and its answer is still read. (reqwest gives up on the answer when its write fails.)
    pub async fn post_tcp(&self, path: &str, token: Option<&str>, body: &[u8], chunked: bool) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(self.addr).await.expect("connect");
        let auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let framing = if chunked {
            "transfer-encoding: chunked".to_string()
        } else {
            format!("content-length: {}", body.len())
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n{auth}{framing}\r\n\
             connection: close\r\n\r\n",
            self.addr
        );
        let mut wire = head.into_bytes();
        if chunked {
            for chunk in body.chunks(8 * 1024) {
                wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
        } else {
            wire.extend_from_slice(body);
        }
        let _ = conn.write_all(&wire).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer).to_string();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"));
        (status, answer)
    }

    /// GETs a path with extra headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.http.get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::read(req.send().await.expect("GET")).await
    }

    /// A GraphQL request to `path` (HTTP 200 expected); the whole response body.
    pub async fn graphql_at(&self, path: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
        let resp = self
            .post_json(path, token, &json!({ "query": query, "variables": variables }))
            .await;
        assert_eq!(
            resp.status, 200,
            "GraphQL over HTTP answered {}: {}",
            resp.status, resp.text
        );
        resp.json()
    }

    /// A GraphQL request to `/graphql` with extra headers (no bearer token); the HTTP answer.
    pub async fn gql_with_headers(&self, headers: &[(&str, &str)], query: &str, variables: Value) -> Resp {
        let mut req = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::read(req.send().await.expect("POST")).await
    }

    /// The app API.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.graphql_at("/graphql", token, query, variables).await
    }

    /// The operator API with the operator key.
    pub async fn admin(&self, query: &str, variables: Value) -> Value {
        self.graphql_at("/admin/graphql", Some(&self.admin_key.clone()), query, variables)
            .await
    }

    // -----------------------------------------------------------------------------------------
    // Logins
    // -----------------------------------------------------------------------------------------

    /// `POST /auth/phone/code`.
    pub async fn request_phone_code(&self, phone: &str) -> Resp {
        self.post_json("/auth/phone/code", None, &json!({ "phone": phone }))
            .await
    }

    /// `POST /auth/phone/login`.
    pub async fn phone_login(&self, phone: &str, code: &str) -> Resp {
        self.post_json("/auth/phone/login", None, &json!({ "phone": phone, "code": code }))
            .await
    }

    /// Requests a code for `phone` and logs in with it; the session token.
    pub async fn login_phone(&self, phone: &str) -> String {
        let r = self.request_phone_code(phone).await;
        assert_eq!(r.status, 200, "phone code: {}", r.text);
        let r = self.phone_login(phone, &self.code_for(phone)).await;
        assert_eq!(r.status, 200, "phone login: {}", r.text);
        r.json()["authToken"]
            .as_str()
            .expect("authToken in phone login answer")
            .to_string()
    }

    /// `me` with ids, as `token` sees it.
    pub async fn me(&self, token: &str) -> Value {
        self.gql(
            Some(token),
            "{ me { id username phone email { address } defaultAccount { id level defaultWalletId \
             wallets { id balance walletCurrency } } } }",
            json!({}),
        )
        .await
    }

    /// A new phone user.
    pub async fn member(&self) -> Member {
        let phone = unique_phone();
        let token = self.login_phone(&phone).await;
        let me = self.me(&token).await;
        let me = data(&me, "me");
        Member {
            token,
            phone,
            user_id: me["id"].as_str().expect("me.id").to_string(),
            account_id: me["defaultAccount"]["id"].as_str().expect("account id").to_string(),
            wallet_id: me["defaultAccount"]["defaultWalletId"]
                .as_str()
                .expect("default wallet")
                .to_string(),
            username: None,
        }
    }

    /// A new phone user with a username.
    pub async fn named_member(&self, username: &str) -> Member {
        let mut m = self.member().await;
        let r = self
            .gql(
                Some(&m.token),
                "mutation($u: Username!) { userUpdateUsername(input: { username: $u }) { errors { code } user { username } } }",
                json!({ "u": username }),
            )
            .await;
        let payload = data(&r, "userUpdateUsername");
        assert_no_payload_errors(payload);
        assert_eq!(payload["user"]["username"], username);
        m.username = Some(username.to_string());
        m
    }

    // -----------------------------------------------------------------------------------------
    // Money
    // -----------------------------------------------------------------------------------------

    /// Funds a wallet through the operator faucet; the wallet's transaction.
    pub async fn fund(&self, wallet_id: &str, amount: i64) -> Value {
        self.fund_with_key(wallet_id, amount, None).await
    }

    /// Pays an invoice from outside Flash (`devLightningPayInvoice`: the dev node's simulated
    /// network), asserting it was accepted.
    pub async fn pay_from_outside(&self, payment_request: &str) {
        let r = self
            .admin(
                "mutation($input: DevLightningPayInvoiceInput!) { devLightningPayInvoice(input: $input) { \
                 success errors { code message } } }",
                json!({ "input": { "paymentRequest": payment_request } }),
            )
            .await;
        let payload = data(&r, "devLightningPayInvoice");
        assert_no_payload_errors(payload);
        assert_eq!(payload["success"], true, "{r}");
    }

    /// Funds a wallet with an optional idempotency key; the wallet's transaction.
    pub async fn fund_with_key(&self, wallet_id: &str, amount: i64, key: Option<&str>) -> Value {
        let r = self
            .admin(
                &format!(
                    "mutation($input: WalletFundInput!) {{ walletFund(input: $input) {{ errors {{ code message }} \
                     transaction {{ {TX_FIELDS} }} }} }}"
                ),
                json!({ "input": { "walletId": wallet_id, "amount": amount, "idempotencyKey": key } }),
            )
            .await;
        let payload = data(&r, "walletFund");
        assert_no_payload_errors(payload);
        payload["transaction"].clone()
    }

    /// A wallet's balance, read through the operator API.
    pub async fn balance(&self, m: &Member) -> i64 {
        let r = self
            .admin(
                "query($id: ID!) { accountDetailsByAccountId(accountId: $id) { wallets { id balance } } }",
                json!({ "id": m.account_id }),
            )
            .await;
        let wallets = data(&r, "accountDetailsByAccountId")["wallets"]
            .as_array()
            .expect("wallets")
            .clone();
        wallets
            .iter()
            .find(|w| w["id"] == m.wallet_id.as_str())
            .and_then(|w| w["balance"].as_i64())
            .unwrap_or_else(|| panic!("wallet {} not in {wallets:?}", m.wallet_id))
    }

    /// Verifies the ledger through the operator API (must be ok); the number of journals.
    pub async fn journals(&self) -> i64 {
        let r = self
            .admin(
                "{ ledgerVerify { ok problems journalsChecked accountsChecked currencies { currency total } } }",
                json!({}),
            )
            .await;
        let v = data(&r, "ledgerVerify");
        assert_eq!(v["ok"], true, "ledger invariants broken: {v}");
        v["journalsChecked"].as_i64().expect("journalsChecked")
    }

    /// Pays with `intraLedgerPaymentSend`; the whole GraphQL response.
    pub async fn pay_raw(&self, token: &str, input: Value) -> Value {
        self.gql(Some(token), &pay_mutation(), json!({ "input": input })).await
    }

    /// Pays `amount` from `from` to wallet `to` with `token`; the payload (no top-level errors).
    pub async fn pay(&self, token: &str, from: &Member, to: &Member, amount: i64) -> Value {
        let r = self
            .pay_raw(
                token,
                json!({ "walletId": from.wallet_id, "recipientWalletId": to.wallet_id, "amount": amount }),
            )
            .await;
        data(&r, "intraLedgerPaymentSend").clone()
    }

    // -----------------------------------------------------------------------------------------
    // API keys
    // -----------------------------------------------------------------------------------------

    /// Creates an API key with a session; the payload (no top-level errors).
    pub async fn create_key_payload(&self, token: &str, input: Value) -> Value {
        let r = self
            .gql(
                Some(token),
                "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { apiKeySecret errors { code message } \
                 apiKey { id name scopes readOnly expiresAt revoked expired ipAllowlist } } }",
                json!({ "input": input }),
            )
            .await;
        data(&r, "apiKeyCreate").clone()
    }

    /// Creates an API key with these scopes; `(id, secret)`.
    pub async fn create_key(&self, token: &str, name: &str, scopes: &[&str]) -> (String, String) {
        let payload = self
            .create_key_payload(token, json!({ "name": name, "scopes": scopes }))
            .await;
        assert_no_payload_errors(&payload);
        let id = payload["apiKey"]["id"].as_str().expect("key id").to_string();
        let secret = payload["apiKeySecret"].as_str().expect("key secret").to_string();
        (id, secret)
    }

    /// `apiKeyRevoke`; the payload.
    pub async fn revoke_key(&self, token: &str, id: &str) -> Value {
        let r = self
            .gql(
                Some(token),
                "mutation($id: ID!) { apiKeyRevoke(input: { id: $id }) { errors { code } apiKey { id revoked } } }",
                json!({ "id": id }),
            )
            .await;
        data(&r, "apiKeyRevoke").clone()
    }

    // -----------------------------------------------------------------------------------------
    // Websockets
    // -----------------------------------------------------------------------------------------

    /// Opens a graphql-transport-ws connection, sends `connection_init` (with the token, if
    /// any) and waits for `connection_ack`.
    pub async fn ws_connect(&self, token: Option<&str>) -> WsClient {
        let mut req = format!("ws://{}/graphql", self.addr)
            .into_client_request()
            .expect("ws request");
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (ws, resp) = tokio_tungstenite::connect_async(req).await.expect("ws connect");
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("graphql-transport-ws")
        );
        let mut client = WsClient { ws };
        let payload = match token {
            Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
            None => json!({}),
        };
        client
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = client.next().await;
        assert_eq!(ack["type"], "connection_ack", "expected connection_ack, got {ack}");
        client
    }
}

/// The `myUpdates.update` of a `next` message for subscription `id`.
pub fn update_of(msg: &Value, id: &str) -> Value {
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(msg["id"], id, "{msg}");
    assert!(msg["payload"]["errors"].is_null(), "{msg}");
    let updates = &msg["payload"]["data"]["myUpdates"];
    assert_eq!(updates["errors"], json!([]), "{msg}");
    updates["update"].clone()
}

/// Opens `myUpdates` (as `query`, whose `IntraLedgerUpdate` fragment must select `amount`) for
/// `m` and makes sure it is live: funds the wallet with 1, 2, 3… sats until one of those
/// credits arrives, then drains the rest. Returns the connection.
pub async fn live_updates_with(s: &TestServer, query: &str, m: &Member, id: &str) -> WsClient {
    let mut ws = s.ws_connect(Some(&m.token)).await;
    ws.subscribe(id, query).await;
    let mut sent = 0;
    loop {
        sent += 1;
        assert!(sent <= 20, "the subscription never delivered a probe");
        s.fund(&m.wallet_id, sent).await;
        if let Some(msg) = ws.next_within(Duration::from_millis(500)).await {
            let first = update_of(&msg, id)["amount"].as_i64().expect("probe amount");
            for expected in first + 1..=sent {
                let msg = ws.next().await;
                assert_eq!(update_of(&msg, id)["amount"], expected, "{msg}");
            }
            return ws;
        }
    }
}

/// A graphql-transport-ws client.
pub struct WsClient {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl WsClient {
    /// Sends one JSON message.
    pub async fn send(&mut self, msg: Value) {
        self.ws.send(Message::text(msg.to_string())).await.expect("ws send");
    }

    /// Starts a subscription with id `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query } }))
            .await;
    }

    /// The next protocol message within `wait`, answering pings; `None` on timeout.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next()).await.ok()?;
            let msg = msg.expect("websocket closed").expect("websocket error");
            let text = match msg {
                Message::Text(t) => t.as_str().to_string(),
                Message::Close(frame) => panic!("websocket closed by server: {frame:?}"),
                _ => continue,
            };
            let value: Value = serde_json::from_str(&text).expect("ws message is JSON");
            if value["type"] == "ping" {
                self.send(json!({ "type": "pong" })).await;
                continue;
            }
            return Some(value);
        }
    }

    /// The next protocol message (fails the test after [`WS_TIMEOUT`]).
    pub async fn next(&mut self) -> Value {
        self.next_within(WS_TIMEOUT)
            .await
            .expect("no websocket message within the timeout")
    }
}

/// Holds the relay's event writes back, from outside the store: SQLite's write lock, or
/// PostgreSQL's lock on `nostr_events`; reads go on. Released by [`EventWriteBlock::release`].
pub enum EventWriteBlock {
    /// A connection in a write transaction.
    Sqlite(rusqlite::Connection),
    /// A client in a transaction that locked the table.
    Postgres(tokio_postgres::Client),
}

impl EventWriteBlock {
    /// Takes the lock.
    pub async fn take(config: &flash_store::StoreConfig) -> EventWriteBlock {
        match config {
            flash_store::StoreConfig::Sqlite { path } => {
                let conn = rusqlite::Connection::open(path).expect("open sqlite");
                conn.execute_batch("BEGIN IMMEDIATE").expect("write lock");
                EventWriteBlock::Sqlite(conn)
            }
            flash_store::StoreConfig::Postgres { url } => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(conn);
                client
                    .batch_execute("BEGIN; LOCK TABLE nostr_events IN EXCLUSIVE MODE")
                    .await
                    .expect("lock");
                EventWriteBlock::Postgres(client)
            }
        }
    }

    /// Lets the writes through.
    pub async fn release(self) {
        match self {
            EventWriteBlock::Sqlite(conn) => conn.execute_batch("COMMIT").expect("commit"),
            EventWriteBlock::Postgres(client) => client.batch_execute("COMMIT").await.expect("commit"),
        }
    }
}

/// A key of a card's program answer (`K0`…`K4`, 32 hex digits).
pub fn card_key(v: &Value) -> [u8; 16] {
    let text = v.as_str().unwrap_or_else(|| panic!("a key: {v}"));
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

/// A card UID as the programming app sends it.
pub fn card_uid_hex(uid: &[u8; 7]) -> String {
    uid.iter().map(|b| format!("{b:02x}")).collect()
}

/// A member's new card ("Coffee card", with these limits), programmed over HTTP as the Bolt
/// Card NFC Programmer app does it: its id, the simulated card, the program answer and the
/// programming link's path.
pub async fn programmed_card(
    s: &TestServer,
    owner: &Member,
    tap: i64,
    day: i64,
    uid: [u8; 7],
) -> (String, flash_merchant::boltcard::testing::SimulatedCard, Value, String) {
    let created = s
        .state
        .cards
        .create(
            owner.account_id.parse().expect("account id"),
            flash_merchant::cards::CardCreate {
                wallet_id: None,
                name: "Coffee card".into(),
                tap_limit_sat: tap,
                day_limit_sat: day,
            },
        )
        .await
        .expect("card");
    assert!(created.deeplink().starts_with("boltcard://program?url=http%3A%2F%2F"));
    let path = created
        .program_url
        .strip_prefix(&format!("http://{}", s.addr))
        .expect("a URL of this server")
        .to_string();
    let keys = s.post_json(&path, None, &json!({ "UID": card_uid_hex(&uid) })).await;
    assert_eq!(keys.status, 200, "{}", keys.text);
    let keys = keys.json();
    let card = flash_merchant::boltcard::testing::SimulatedCard {
        uid,
        k1: card_key(&keys["K1"]),
        k2: card_key(&keys["K2"]),
        counter: 0,
    };
    (created.card.id, card, keys, path)
}

/// A tap of `card` at `/boltcard`: the answer.
pub async fn card_tap(s: &TestServer, card: &mut flash_merchant::boltcard::testing::SimulatedCard) -> Resp {
    let (p, c) = card.tap();
    s.get(&format!("/boltcard?p={p}&c={c}"), &[]).await
}

/// The card withdraw callback for `k1` with `pr`.
pub async fn card_withdraw(s: &TestServer, k1: &str, pr: &str) -> Resp {
    s.get(&format!("/boltcard/callback?k1={k1}&pr={pr}"), &[]).await
}

/// An invoice of `payee` for `sats`, issued by this Flash (paid inside the ledger).
pub async fn wallet_invoice(s: &TestServer, payee: &Member, sats: i64) -> String {
    s.state
        .bank
        .ln_invoice_create(
            flash_bank::InvoiceFor::Owner(payee.account_id.parse().expect("account id")),
            flash_bank::InvoiceCreate {
                wallet_id: payee.wallet_id.parse().expect("wallet id"),
                amount: Some(sats),
                memo: Some("coffee".into()),
                description_hash: None,
                expires_in_mins: None,
            },
        )
        .await
        .expect("invoice")
        .payment_request
}

/// The `reason` of an LNURL error answer (asserting it is one).
pub fn lnurl_reason(r: &Resp) -> String {
    assert_eq!(r.json()["status"], "ERROR", "{}", r.text);
    r.json()["reason"].as_str().unwrap_or_default().to_string()
}
