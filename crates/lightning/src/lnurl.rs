//! [`HttpLnurlClient`]: the `LnurlClient` port over HTTPS, hardened for a bank that fetches
//! URLs other people chose. Every request has a deadline; bodies are capped; only HTTPS is
//! spoken (plain HTTP only to the local machine, and only when allowed, for development);
//! redirects may not leave the host; answers are checked against LUD-06 before anything is
//! paid, including that the invoice commits to the metadata's hash and the requested amount.

use std::time::Duration;

use bitcoin::hashes::{sha256, Hash};
use flash_core::lightning::{Hash32, InvoiceDescription};
use flash_core::lnurl::{LnurlClient, LnurlError, LnurlPayParams};
use flash_core::ports::BoxFuture;
use flash_core::Network;
use reqwest::{redirect, Url};
use serde::Deserialize;

use crate::bolt11;

/// Largest response body read.
const BODY_MAX_BYTES: usize = 64 * 1024;
/// Most redirects followed (all on the same host).
const REDIRECTS_MAX: usize = 3;
/// Longest LNURL text accepted.
const TARGET_MAX_CHARS: usize = 2_048;

/// How the client behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LnurlClientConfig {
    /// The network invoices must be for.
    pub network: Network,
    /// Deadline of each request.
    pub timeout: Duration,
    /// Whether plain HTTP to `localhost`/loopback addresses, and private addresses at all, are
    /// allowed (development only).
    pub allow_local_http: bool,
}

impl LnurlClientConfig {
    /// Defaults for `network`: a 10-second deadline; plain HTTP to this machine (and private
    /// addresses) only on regtest, for development and tests.
    pub fn for_network(network: Network) -> Self {
        LnurlClientConfig {
            network,
            timeout: Duration::from_secs(10),
            allow_local_http: network == Network::Regtest,
        }
    }
}

/// Pays LNURL-pay links and Lightning addresses of other services.
pub struct HttpLnurlClient {
    http: reqwest::Client,
    config: LnurlClientConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayResponse {
    tag: Option<String>,
    callback: Option<String>,
    min_sendable: Option<u64>,
    max_sendable: Option<u64>,
    metadata: Option<String>,
    comment_allowed: Option<u32>,
    status: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WithdrawResponse {
    tag: Option<String>,
    callback: Option<String>,
    k1: Option<String>,
    min_withdrawable: Option<u64>,
    max_withdrawable: Option<u64>,
    status: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct StatusResponse {
    status: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct InvoiceResponse {
    pr: Option<String>,
    status: Option<String>,
    reason: Option<String>,
}

fn bad(what: impl Into<String>) -> LnurlError {
    LnurlError::BadResponse(what.into())
}

fn is_local(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether a URL names this machine or a private network by address or as `localhost`. (A
/// public name that resolves to a private address is not caught here.)
fn is_private(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified() || ip.is_broadcast()
        }
        Some(url::Host::Ipv6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback() || ip.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
        None => true,
    }
}

/// A target or link as given, trimmed and without a `lightning:` prefix; `None` when it is empty
/// or longer than [`TARGET_MAX_CHARS`].
fn link_text(given: &str) -> Option<&str> {
    let text = given.trim();
    if text.is_empty() || text.chars().count() > TARGET_MAX_CHARS {
        return None;
    }
    Some(
        text.get(..10)
            .filter(|p| p.eq_ignore_ascii_case("lightning:"))
            .map_or(text, |_| &text[10..]),
    )
}

/// The URL in a bech32 LNURL (`lnurl1…`): `None` when `text` is not one, `Some(None)` when it
/// is one that does not decode.
fn bech32_url(text: &str) -> Option<Option<String>> {
    if !text.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("lnurl1")) {
        return None;
    }
    let decoded = bitcoin::bech32::decode(text)
        .ok()
        .filter(|(hrp, _)| hrp.as_str().eq_ignore_ascii_case("lnurl"))
        .and_then(|(_, data)| String::from_utf8(data).ok());
    Some(decoded)
}

/// A refusal in the LNURL error shape, if the body is one.
fn refusal(status: &Option<String>, reason: &Option<String>) -> Option<LnurlError> {
    status
        .as_deref()
        .filter(|s| s.eq_ignore_ascii_case("ERROR"))
        .map(|_| LnurlError::Refused(reason.clone().unwrap_or_else(|| "no reason given".into())))
}

impl HttpLnurlClient {
    /// A client with `config`.
    pub fn new(config: LnurlClientConfig) -> Result<HttpLnurlClient, LnurlError> {
        let allow_local_http = config.allow_local_http;
        let policy = redirect::Policy::custom(move |attempt| {
            let same_host = attempt
                .previous()
                .first()
                .is_some_and(|first| first.host_str() == attempt.url().host_str());
            let plain_allowed = allow_local_http && is_local(attempt.url());
            if attempt.previous().len() > REDIRECTS_MAX {
                attempt.error("too many redirects")
            } else if !same_host {
                attempt.error("redirect to another host")
            } else if attempt.url().scheme() != "https" && !plain_allowed {
                attempt.error("redirect away from https")
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(policy)
            .no_proxy()
            .user_agent(concat!("flash/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LnurlError::Unreachable(format!("HTTP client: {e}")))?;
        Ok(HttpLnurlClient { http, config })
    }

    /// The URL a target names: `name@host`, `lnurl1…` (bech32) or `lnurlp://host/path`.
    pub fn target_url(&self, target: &str) -> Result<Url, LnurlError> {
        let invalid = || LnurlError::InvalidTarget(target.chars().take(80).collect());
        let text = link_text(target).ok_or_else(invalid)?;
        let url = if let Some((name, host)) = text.split_once('@') {
            let name_ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
            if !name_ok || host.is_empty() || host.contains(['/', '@', '?', '#']) {
                return Err(invalid());
            }
            let probe = Url::parse(&format!("http://{host}/")).map_err(|_| invalid())?;
            let scheme = if self.config.allow_local_http && is_local(&probe) {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{host}/.well-known/lnurlp/{}", name.to_ascii_lowercase())
        } else if let Some(url) = bech32_url(text) {
            url.ok_or_else(invalid)?
        } else if let Some(rest) = text.strip_prefix("lnurlp://") {
            format!("https://{rest}")
        } else {
            return Err(invalid());
        };
        let url = Url::parse(&url).map_err(|_| invalid())?;
        self.check_url(&url).map_err(|_| invalid())?;
        Ok(url)
    }

    /// The URL of a withdraw link: `lnurlw://host/path?…` (LUD-17; plain HTTP only to this
    /// machine, when allowed), `lnurl1…` (bech32) or the URL itself.
    pub fn withdraw_url(&self, link: &str) -> Result<Url, LnurlError> {
        let invalid = || LnurlError::InvalidTarget(link.chars().take(80).collect());
        let text = link_text(link).ok_or_else(invalid)?;
        let url = if let Some(rest) = text
            .get(..9)
            .filter(|p| p.eq_ignore_ascii_case("lnurlw://"))
            .map(|_| &text[9..])
        {
            let probe = Url::parse(&format!("http://{rest}")).map_err(|_| invalid())?;
            let scheme = if self.config.allow_local_http && is_local(&probe) {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{rest}")
        } else if let Some(url) = bech32_url(text) {
            url.ok_or_else(invalid)?
        } else {
            text.to_string()
        };
        let url = Url::parse(&url).map_err(|_| invalid())?;
        self.check_url(&url).map_err(|_| invalid())?;
        Ok(url)
    }

    /// HTTPS, or plain HTTP to the local machine when allowed; never an address of this
    /// machine or its private networks otherwise (the URL is someone else's choice).
    fn check_url(&self, url: &Url) -> Result<(), LnurlError> {
        if !self.config.allow_local_http && is_private(url) {
            return Err(bad("private and local addresses are not followed"));
        }
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.config.allow_local_http && is_local(url) => Ok(()),
            other => Err(bad(format!("{other}:// URLs are not followed, only https"))),
        }
    }

    /// GETs `url` and parses its JSON body, read up to [`BODY_MAX_BYTES`].
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: Url) -> Result<T, LnurlError> {
        let unreachable = |e: reqwest::Error| LnurlError::Unreachable(e.without_url().to_string());
        let mut response = self.http.get(url).send().await.map_err(unreachable)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > BODY_MAX_BYTES {
                return Err(bad(format!("response over {BODY_MAX_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|_| {
            if status.is_success() {
                bad("not JSON")
            } else {
                bad(format!("HTTP {status}"))
            }
        })
    }
}

impl LnurlClient for HttpLnurlClient {
    fn pay_params<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<LnurlPayParams, LnurlError>> {
        Box::pin(async move {
            let url = self.target_url(target)?;
            let domain = url.host_str().unwrap_or_default().to_string();
            let r: PayResponse = self.get_json(url).await?;
            if let Some(e) = refusal(&r.status, &r.reason) {
                return Err(e);
            }
            match r.tag.as_deref() {
                Some("payRequest") => {}
                Some("withdrawRequest") => return Err(LnurlError::WithdrawLink),
                _ => return Err(bad("not a payRequest")),
            }
            let callback = r.callback.ok_or_else(|| bad("no callback"))?;
            let callback_url = Url::parse(&callback).map_err(|_| bad("callback is not a URL"))?;
            self.check_url(&callback_url)?;
            let (min, max) = (r.min_sendable.unwrap_or(0), r.max_sendable.unwrap_or(0));
            if min == 0 || min > max {
                return Err(bad(format!("sendable range {min}..{max} msat is not valid")));
            }
            let metadata = r.metadata.ok_or_else(|| bad("no metadata"))?;
            let entries: Vec<Vec<serde_json::Value>> =
                serde_json::from_str(&metadata).map_err(|_| bad("metadata is not a JSON array of entries"))?;
            if !entries
                .iter()
                .any(|e| e.first().and_then(|v| v.as_str()) == Some("text/plain"))
            {
                return Err(bad("metadata has no text/plain entry"));
            }
            Ok(LnurlPayParams {
                callback,
                min_sendable_msat: min,
                max_sendable_msat: max,
                metadata,
                comment_allowed: r.comment_allowed.unwrap_or(0),
                domain,
            })
        })
    }

    fn invoice<'a>(
        &'a self,
        params: &'a LnurlPayParams,
        amount_msat: u64,
        comment: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, LnurlError>> {
        Box::pin(async move {
            let mut url = Url::parse(&params.callback).map_err(|_| bad("callback is not a URL"))?;
            self.check_url(&url)?;
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("amount", &amount_msat.to_string());
                if let Some(c) = comment.filter(|c| !c.is_empty()) {
                    query.append_pair("comment", c);
                }
            }
            let r: InvoiceResponse = self.get_json(url).await?;
            if let Some(e) = refusal(&r.status, &r.reason) {
                return Err(e);
            }
            let pr = r.pr.ok_or_else(|| bad("no invoice (pr)"))?;
            let invoice = bolt11::decode(&pr, self.config.network).map_err(|e| bad(e.to_string()))?;
            if invoice.amount_msat != Some(amount_msat) {
                return Err(bad(format!(
                    "invoice is for {:?} msat, {amount_msat} were asked",
                    invoice.amount_msat
                )));
            }
            let expected = Hash32(sha256::Hash::hash(params.metadata.as_bytes()).to_byte_array());
            if invoice.description != InvoiceDescription::Hash(expected) {
                return Err(bad("invoice does not commit to the metadata"));
            }
            Ok(invoice.payment_request)
        })
    }

    fn withdraw<'a>(
        &'a self,
        link: &'a str,
        payment_request: &'a str,
        amount_msat: u64,
    ) -> BoxFuture<'a, Result<(), LnurlError>> {
        Box::pin(async move {
            let r: WithdrawResponse = self.get_json(self.withdraw_url(link)?).await?;
            if let Some(e) = refusal(&r.status, &r.reason) {
                return Err(e);
            }
            if r.tag.as_deref() != Some("withdrawRequest") {
                return Err(bad("not a withdrawRequest"));
            }
            let callback = r.callback.ok_or_else(|| bad("no callback"))?;
            let k1 = r.k1.ok_or_else(|| bad("no k1"))?;
            let (min, max) = (r.min_withdrawable.unwrap_or(0), r.max_withdrawable.unwrap_or(0));
            if !(min..=max).contains(&amount_msat) {
                return Err(LnurlError::Refused(format!(
                    "it allows {} to {} sats now",
                    min.div_ceil(1_000),
                    max / 1_000
                )));
            }
            let mut url = Url::parse(&callback).map_err(|_| bad("callback is not a URL"))?;
            self.check_url(&url)?;
            url.query_pairs_mut()
                .append_pair("k1", &k1)
                .append_pair("pr", payment_request);
            let answer: StatusResponse = self.get_json(url).await?;
            if let Some(e) = refusal(&answer.status, &answer.reason) {
                return Err(e);
            }
            match answer.status.as_deref() {
                Some(s) if s.eq_ignore_ascii_case("OK") => Ok(()),
                _ => Err(bad("the callback did not answer OK")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(allow_local_http: bool) -> HttpLnurlClient {
        HttpLnurlClient::new(LnurlClientConfig {
            network: Network::Mainnet,
            timeout: Duration::from_secs(1),
            allow_local_http,
        })
        .expect("client")
    }

    fn lnurl(url: &str) -> String {
        let hrp = bitcoin::bech32::Hrp::parse("lnurl").expect("hrp");
        bitcoin::bech32::encode::<bitcoin::bech32::Bech32>(hrp, url.as_bytes()).expect("bech32")
    }

    #[test]
    fn withdraw_links_map_to_urls() {
        let c = client(false);
        let url = c
            .withdraw_url("lnurlw://cards.example.com/ln?p=AB&c=CD")
            .expect("lnurlw");
        assert_eq!(url.as_str(), "https://cards.example.com/ln?p=AB&c=CD");
        let url = c.withdraw_url(&lnurl("https://cards.example.com/w/1")).expect("bech32");
        assert_eq!(url.as_str(), "https://cards.example.com/w/1");
        for bad in [
            "",
            "lnurlw://127.0.0.1:8080/ln",
            "http://cards.example.com/w",
            "lnurl1€€",
            "w@x",
        ] {
            assert!(c.withdraw_url(bad).is_err(), "{bad:?} is refused");
        }
        let local = client(true);
        let url = local
            .withdraw_url("LNURLW://127.0.0.1:8080/ln?p=1")
            .expect("local lnurlw");
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/ln?p=1");
    }

    #[test]
    fn targets_map_to_https_urls() {
        let c = client(false);
        let url = c.target_url("Alice@pay.example.com").expect("address");
        assert_eq!(url.as_str(), "https://pay.example.com/.well-known/lnurlp/alice");
        let url = c
            .target_url(&lnurl("https://pay.example.com/lnurlp/x"))
            .expect("bech32");
        assert_eq!(url.as_str(), "https://pay.example.com/lnurlp/x");
        let url = c.target_url("lnurlp://pay.example.com/p").expect("lnurlp");
        assert_eq!(url.as_str(), "https://pay.example.com/p");
        for bad in ["", "nobody", "a@", "@host", "a@h/p", "abcde€x", "lnurl1€€", "ftp://x"] {
            assert!(c.target_url(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn private_and_local_addresses_are_refused_outside_development() {
        let strict = client(false);
        for target in [
            "x@127.0.0.1:8080".to_string(),
            "x@localhost".to_string(),
            "x@10.1.2.3".to_string(),
            "x@192.168.0.10".to_string(),
            "x@[::1]".to_string(),
            "x@[fd00::1]".to_string(),
            lnurl("http://127.0.0.1:3000/lnurlp/x"),
            lnurl("https://169.254.169.254/latest"),
        ] {
            assert!(strict.target_url(&target).is_err(), "{target} is refused");
        }
        let dev = client(true);
        let url = dev.target_url("x@127.0.0.1:8080").expect("local in development");
        assert_eq!(url.scheme(), "http");
        assert!(dev.target_url("x@pay.example.com").is_ok());
    }
}
