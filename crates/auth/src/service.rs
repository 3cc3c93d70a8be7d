//! The [`Auth`] service: codes, sessions, API keys and operator keys.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use flash_core::ports::{CodeChannel, CodeSender};
use flash_core::{AccountId, ApiKeyId, Email, Phone, UserId};
use flash_store::{ApiKeyRecord, CodeCheck, NewApiKey, Store};
use serde::Deserialize;

use crate::ratelimit::{defaults, RateLimit, RateLimiter};
use crate::scope::{Scope, Scopes};
use crate::secret::{self, CodeHasher};
use crate::stored::StoredLimits;
use crate::{AuthError, IpAllowlist};

/// Auth settings. Defaults follow Galoy/Blink.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a login code lives.
    pub code_ttl_secs: i64,
    /// Wrong guesses allowed per code.
    pub code_max_attempts: i64,
    /// How long a session lives.
    pub session_ttl_secs: i64,
    /// Live API keys per account.
    pub api_keys_max: i64,
    /// Requests per minute per API key.
    pub api_key_requests_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            code_ttl_secs: 600,
            code_max_attempts: 5,
            session_ttl_secs: 30 * 24 * 3600,
            api_keys_max: 10,
            api_key_requests_per_minute: defaults::API_KEY_REQUESTS.max,
        }
    }
}

/// What a login code is sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identifier {
    /// A phone number (SMS).
    Phone(Phone),
    /// An email address.
    Email(Email),
}

impl Identifier {
    /// Namespaced key for codes and rate limits.
    fn key(&self) -> String {
        match self {
            Identifier::Phone(p) => format!("phone:{}", p.as_str()),
            Identifier::Email(e) => format!("email:{}", e.as_str()),
        }
    }
    fn channel(&self) -> (CodeChannel, &str) {
        match self {
            Identifier::Phone(p) => (CodeChannel::Sms, p.as_str()),
            Identifier::Email(e) => (CodeChannel::Email, e.as_str()),
        }
    }
}

/// How a request authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A login session: every scope.
    Session {
        /// Hash of the session token (logout revokes it).
        token_hash: String,
    },
    /// An API key: its scopes only.
    ApiKey {
        /// The key.
        id: ApiKeyId,
        /// Its scopes.
        scopes: Scopes,
    },
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: UserId,
    /// Their account: everything they may see or move belongs to it.
    pub account_id: AccountId,
    /// How they authenticated.
    pub credential: Credential,
}

impl Principal {
    /// Fails unless the credential carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        match &self.credential {
            Credential::Session { .. } => Ok(()),
            Credential::ApiKey { scopes, .. } if scopes.allows(scope) => Ok(()),
            Credential::ApiKey { .. } => Err(AuthError::MissingScope(scope.as_str())),
        }
    }
}

/// Parameters of a new API key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiKeyRequest {
    /// A name for the owner's benefit (1–100 characters).
    pub name: String,
    /// Scopes; at least one.
    pub scopes: Vec<String>,
    /// Days until it expires (1–3,650), or never.
    pub expire_in_days: Option<i64>,
    /// Addresses or CIDR networks it may be used from (empty: anywhere).
    pub ip_allowlist: Vec<String>,
}

/// Don't write `last_used_at` more often than this per key.
const TOUCH_INTERVAL_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The authentication service.
#[derive(Clone)]
pub struct Auth {
    store: Store,
    sender: Arc<dyn CodeSender>,
    hasher: CodeHasher,
    /// In-process limits on traffic that is cheap to repeat (signups, public Lightning
    /// requests, API key use).
    limiter: Arc<RateLimiter>,
    /// Store-kept limits on what guesses secrets (codes, operator keys): exact under
    /// concurrency, across restarts and between nodes.
    limits: StoredLimits,
    config: AuthConfig,
}

/// Counts one attempt for `key` in the in-process limiter.
fn limited(limiter: &RateLimiter, key: &str, limit: RateLimit) -> Result<(), AuthError> {
    limiter
        .check(key, limit, Instant::now())
        .map_err(|r| AuthError::RateLimited {
            retry_after_secs: r.secs,
        })
}

/// The rate-limit key of an address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64, since
/// one client usually holds a whole /64 and could otherwise rotate through it.
fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// A credential is usable until it is revoked or expires.
fn ensure_live(revoked_at_ms: Option<i64>, expires_at_ms: Option<i64>, now: i64) -> Result<(), AuthError> {
    if revoked_at_ms.is_some() {
        return Err(AuthError::TokenRevoked);
    }
    if expires_at_ms.is_some_and(|t| t <= now) {
        return Err(AuthError::TokenExpired);
    }
    Ok(())
}

impl Auth {
    /// An auth service; `code_secret` keys the login-code HMACs.
    pub fn new(store: Store, sender: Arc<dyn CodeSender>, code_secret: [u8; 32], config: AuthConfig) -> Auth {
        Auth {
            limits: StoredLimits::new(store.clone()),
            store,
            sender,
            hasher: CodeHasher::new(code_secret),
            limiter: Arc::new(RateLimiter::new()),
            config,
        }
    }

    /// Sends a fresh code (4 per hour per identifier, 16 per hour per IP, counted by the
    /// store).
    pub async fn request_code(&self, identifier: &Identifier, ip: IpAddr) -> Result<(), AuthError> {
        let key = identifier.key();
        self.count_code_request(&key, ip).await?;
        self.issue_code(&key, identifier).await
    }

    /// Counts a code request for `key` from `ip` under both limits, or under neither.
    async fn count_code_request(&self, key: &str, ip: IpAddr) -> Result<(), AuthError> {
        let rules = [
            (format!("code:ip:{}", ip_key(ip)), defaults::CODE_REQUEST_PER_IP),
            (format!("code:id:{key}"), defaults::CODE_REQUEST_PER_IDENTIFIER),
        ];
        // A code request counts whether or not the code arrives: nothing is given back.
        let _kept = self.limits.count(&rules).await?;
        Ok(())
    }

    async fn issue_code(&self, key: &str, identifier: &Identifier) -> Result<(), AuthError> {
        let code = secret::login_code();
        let expires = self.store.now_ms() + self.config.code_ttl_secs * 1000;
        self.store
            .put_login_code(key, &self.hasher.hash(key, &code), expires)
            .await?;
        let (channel, to) = identifier.channel();
        self.sender
            .send_code(channel, to, &code)
            .await
            .map_err(|e| AuthError::Delivery(e.to_string()))
    }

    /// Counts an account creation without a code (device accounts): 16 per hour per IP.
    pub fn check_signup_rate(&self, ip: IpAddr) -> Result<(), AuthError> {
        limited(
            &self.limiter,
            &format!("signup:ip:{}", ip_key(ip)),
            defaults::CODE_REQUEST_PER_IP,
        )
    }

    /// Counts one unauthenticated Lightning request (an invoice on someone's behalf, a
    /// withdraw-link attempt) from `ip`; refused over the per-IP limit.
    pub fn check_public_lightning_rate(&self, ip: IpAddr) -> Result<(), AuthError> {
        limited(
            &self.limiter,
            &format!("public-ln:ip:{}", ip_key(ip)),
            defaults::PUBLIC_LIGHTNING_PER_IP,
        )
    }

    /// Checks a code (failed logins: 8 per 20 min per identifier, 20 per 6 h per IP, counted
    /// by the store). The code is single-use: of any number of concurrent right answers,
    /// exactly one succeeds.
    pub async fn verify_code(&self, identifier: &Identifier, code: &str, ip: IpAddr) -> Result<(), AuthError> {
        self.check_code(&identifier.key(), code, ip).await
    }

    async fn check_code(&self, key: &str, code: &str, ip: IpAddr) -> Result<(), AuthError> {
        // Every attempt is counted as a failure before the code is looked at, and given back
        // if it succeeds: so attempts in flight cannot pass the caps together.
        let rules = [
            (format!("fail:id:{key}"), defaults::FAILED_LOGIN_PER_IDENTIFIER),
            (format!("fail:ip:{}", ip_key(ip)), defaults::FAILED_LOGIN_PER_IP),
        ];
        let counted = self.limits.count(&rules).await?;
        let outcome = self.try_code(key, code).await;
        if matches!(outcome, Ok(()) | Err(AuthError::Store(_))) {
            self.limits.release(counted).await;
        }
        outcome
    }

    /// One counted attempt on `key`'s code; on success the code is used up.
    async fn try_code(&self, key: &str, code: &str) -> Result<(), AuthError> {
        let well_formed = code.len() == secret::LOGIN_CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit());
        match self.store.check_login_code(key, self.config.code_max_attempts).await? {
            CodeCheck::Candidate { code_hash } if well_formed && self.hasher.verify(key, code, &code_hash) => {
                // Concurrent right answers all get here; the store lets one of them use it.
                if self.store.consume_login_code(key, &code_hash).await? {
                    Ok(())
                } else {
                    Err(AuthError::InvalidCode)
                }
            }
            CodeCheck::Candidate { .. } | CodeCheck::Missing => Err(AuthError::InvalidCode),
            CodeCheck::Expired => Err(AuthError::CodeExpired),
            CodeCheck::Exhausted => Err(AuthError::TooManyAttempts),
        }
    }

    /// Opens a session for `user` and returns its token (shown once, stored hashed).
    pub async fn create_session(&self, user: UserId) -> Result<String, AuthError> {
        let token = secret::session_token();
        let expires = self.store.now_ms() + self.config.session_ttl_secs * 1000;
        self.store
            .create_session(&secret::hash_token(&token), user, expires)
            .await?;
        Ok(token)
    }

    /// Revokes the session behind `token`. Logging out twice is not an error.
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        self.store.revoke_session(&secret::hash_token(token)).await?;
        Ok(())
    }

    /// Authenticates a bearer token: an API key (`flash_…`) or a session token.
    pub async fn authenticate(&self, token: &str, ip: IpAddr) -> Result<Principal, AuthError> {
        let hash = secret::hash_token(token);
        let now = self.store.now_ms();
        if token.starts_with(secret::API_KEY_PREFIX) {
            let key = self
                .store
                .api_key_by_hash(&hash)
                .await?
                .ok_or(AuthError::Unauthenticated)?;
            return self.api_key_principal(key, ip, now).await;
        }
        let session = self.store.session(&hash).await?.ok_or(AuthError::Unauthenticated)?;
        ensure_live(session.revoked_at_ms, Some(session.expires_at_ms), now)?;
        let account = self
            .store
            .account_of_user(session.user_id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        Ok(Principal {
            user_id: session.user_id,
            account_id: account.id,
            credential: Credential::Session { token_hash: hash },
        })
    }

    async fn api_key_principal(&self, key: ApiKeyRecord, ip: IpAddr, now: i64) -> Result<Principal, AuthError> {
        ensure_live(key.revoked_at_ms, key.expires_at_ms, now)?;
        let allowlist: IpAllowlist = key.ip_allowlist.parse().map_err(|_| AuthError::IpNotAllowed)?;
        if !allowlist.allows(ip) {
            return Err(AuthError::IpNotAllowed);
        }
        let per_minute = RateLimit::per_secs(self.config.api_key_requests_per_minute, 60);
        limited(&self.limiter, &format!("apikey:{}", key.id), per_minute)?;
        let scopes: Scopes = key.scopes.parse().map_err(|_| AuthError::Unauthenticated)?;
        if key.last_used_at_ms.is_none_or(|t| now - t >= TOUCH_INTERVAL_MS) {
            // Bookkeeping only: a failure to record it must not fail the request.
            if let Err(e) = self.store.touch_api_key(key.id).await {
                tracing::warn!(error = %e, key = %key.id, "could not record API key use");
            }
        }
        let account = self
            .store
            .account(key.account_id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        Ok(Principal {
            user_id: account.user_id,
            account_id: account.id,
            credential: Credential::ApiKey { id: key.id, scopes },
        })
    }

    /// Creates an API key for `account`; returns it and its secret (shown once).
    pub async fn create_api_key(
        &self,
        account: AccountId,
        req: &ApiKeyRequest,
    ) -> Result<(ApiKeyRecord, String), AuthError> {
        let name = flash_core::text::label(&req.name, 100)
            .map_err(|e| AuthError::InvalidApiKey(format!("the key's name {e}")))?;
        let scopes: Scopes = req
            .scopes
            .iter()
            .map(|s| s.parse::<Scope>())
            .collect::<Result<_, _>>()
            .map_err(|e| AuthError::InvalidApiKey(e.to_string()))?;
        if scopes.is_empty() {
            return Err(AuthError::InvalidApiKey("at least one scope is required".into()));
        }
        let expires_at_ms = match req.expire_in_days {
            None => None,
            Some(d) if (1..=3_650).contains(&d) => Some(self.store.now_ms() + d * DAY_MS),
            Some(_) => return Err(AuthError::InvalidApiKey("expireInDays must be 1 to 3650".into())),
        };
        let allowlist = IpAllowlist::parse(&req.ip_allowlist).map_err(|e| AuthError::InvalidApiKey(e.to_string()))?;
        let secret = secret::api_key_secret();
        let new = NewApiKey {
            account_id: account,
            name: name.to_string(),
            key_hash: secret::hash_token(&secret),
            scopes: scopes.to_string(),
            ip_allowlist: allowlist.to_string(),
            expires_at_ms,
        };
        let record = self.store.create_api_key(&new, self.config.api_keys_max).await?;
        let record = record.ok_or(AuthError::ApiKeyLimit(self.config.api_keys_max))?;
        Ok((record, secret))
    }

    /// The account's API keys.
    pub async fn api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyRecord>, AuthError> {
        Ok(self.store.api_keys(account).await?)
    }

    /// Revokes one of the account's API keys.
    pub async fn revoke_api_key(&self, account: AccountId, id: ApiKeyId) -> Result<ApiKeyRecord, AuthError> {
        self.store
            .revoke_api_key(account, id)
            .await?
            .ok_or(AuthError::ApiKeyNotFound)
    }

    /// Starts adding an email to a user: sends a code, returns the registration id.
    pub async fn start_email_registration(&self, user: UserId, email: &Email, ip: IpAddr) -> Result<String, AuthError> {
        let identifier = Identifier::Email(email.clone());
        self.count_code_request(&identifier.key(), ip).await?;
        let id = uuid::Uuid::new_v4().to_string();
        self.store.create_email_registration(&id, user, email.as_str()).await?;
        self.issue_code(&format!("emailreg:{id}"), &identifier).await?;
        Ok(id)
    }

    /// Finishes an email registration of `user`: checks the code, returns the email.
    pub async fn finish_email_registration(
        &self,
        user: UserId,
        registration: &str,
        code: &str,
        ip: IpAddr,
    ) -> Result<Email, AuthError> {
        let (owner, email) = self
            .store
            .email_registration(registration)
            .await?
            .ok_or(AuthError::InvalidCode)?;
        if owner != user {
            return Err(AuthError::InvalidCode);
        }
        self.check_code(&format!("emailreg:{registration}"), code, ip).await?;
        Ok(Email::parse(&email)?)
    }

    /// Creates an operator key and returns its secret (shown once).
    pub async fn create_admin_key(&self, label: &str) -> Result<String, AuthError> {
        let secret = secret::admin_key_secret();
        self.store.create_admin_key(&secret::hash_token(&secret), label).await?;
        Ok(secret)
    }

    /// Whether any operator key exists.
    pub async fn has_admin_key(&self) -> Result<bool, AuthError> {
        Ok(self.store.admin_key_count().await? > 0)
    }

    /// The label of the operator key `token`, or `Unauthenticated`. Wrong keys are
    /// throttled (10 per 15 min per IP, 100 per 15 min from anywhere, counted by the store):
    /// past either cap the answer is `RateLimited` and the key is not even looked at.
    pub async fn authenticate_admin(&self, token: &str, ip: IpAddr) -> Result<String, AuthError> {
        // Counted as a failure up front and given back on success, like login codes.
        let rules = [(format!("admin:ip:{}", ip_key(ip)), defaults::ADMIN_KEY_FAILURES_PER_IP)];
        let counted = self.limits.count(&rules).await?;
        let outcome = match self.store.admin_key(&secret::hash_token(token)).await {
            Ok(Some(label)) => Ok(label),
            Ok(None) => Err(AuthError::Unauthenticated),
            Err(e) => Err(AuthError::Store(e)),
        };
        if matches!(outcome, Ok(_) | Err(AuthError::Store(_))) {
            self.limits.release(counted).await;
        }
        outcome
    }
}

/// Revokes every operator key in `store` and creates a new one labelled `label`, in one
/// transaction: the new key's secret (shown once) and how many keys were revoked. Needs only
/// the database, so an operator who lost the key recovers with `flashd admin-key rotate`.
pub async fn rotate_admin_keys(store: &Store, label: &str) -> Result<(String, u64), AuthError> {
    let secret = secret::admin_key_secret();
    let revoked = store.replace_admin_keys(&secret::hash_token(&secret), label).await?;
    Ok((secret, revoked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_keys_group_ipv6_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(ip_key(mapped), "192.0.2.7");
    }
}
