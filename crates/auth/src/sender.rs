//! Delivery of one-time login codes.
//!
//! The [`CodeSender`] port says where a code goes; this module provides two
//! adapters:
//!
//! - [`LogCodeSender`] writes the code to the log (target `flash::auth`). It is
//!   the embedded/development default and must not be used where logs are
//!   readable by anyone but the user.
//! - [`SmtpCodeSender`] emails the code through an SMTP server (email only; SMS
//!   needs another adapter).

use std::fmt;
use std::time::Duration;

use flash_core::ports::{BoxFuture, CodeChannel, CodeSendError, CodeSender};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long a login code stays valid, as stated in the email.
pub const CODE_VALIDITY_MINUTES: u32 = 10;

/// Subject line of login-code emails.
pub const CODE_EMAIL_SUBJECT: &str = "Your Flash login code";

/// Timeout for each SMTP command.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Logs login codes instead of delivering them (development / embedded default).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogCodeSender;

impl LogCodeSender {
    /// A new log sender.
    pub const fn new() -> Self {
        LogCodeSender
    }
}

impl CodeSender for LogCodeSender {
    fn send_code<'a>(
        &'a self,
        _channel: CodeChannel,
        identifier: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<(), CodeSendError>> {
        Box::pin(async move {
            tracing::info!(target: "flash::auth", "login code for {identifier}: {code}");
            Ok(())
        })
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// TLS from the first byte ("SMTPS", usually port 465). The default.
    #[default]
    #[serde(alias = "implicit")]
    Tls,
    /// Plain connection upgraded with STARTTLS, which is required (usually port 587).
    #[serde(alias = "start_tls")]
    StartTls,
    /// No encryption at all. Only for a relay on localhost or a trusted network.
    None,
}

/// SMTP settings for [`SmtpCodeSender`].
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name; also the name checked against its TLS certificate.
    pub host: String,
    /// Server port (465 for `tls`, 587 for `starttls`, 25 for a local relay).
    pub port: u16,
    /// Login user name; no authentication when absent.
    #[serde(default)]
    pub username: Option<String>,
    /// Login password (needs `username`).
    #[serde(default)]
    pub password: Option<String>,
    /// Sender address, e.g. `"Flash <login@example.com>"`.
    pub from: String,
    /// Connection security: `"tls"` (default), `"starttls"` or `"none"`.
    #[serde(default)]
    pub tls: SmtpTls,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("tls", &self.tls)
            .finish()
    }
}

/// An [`SmtpConfig`] that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    /// `from` is not a valid mailbox.
    #[error("invalid SMTP from address {address:?}: {reason}")]
    From {
        /// The configured `from`.
        address: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A password was given without a user name.
    #[error("SMTP password given without a username")]
    PasswordWithoutUsername,
    /// The transport (TLS settings) could not be built.
    #[error("SMTP transport: {0}")]
    Transport(String),
}

/// Emails login codes over SMTP. Handles [`CodeChannel::Email`] only.
pub struct SmtpCodeSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for SmtpCodeSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCodeSender")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpCodeSender {
    /// Build a sender from `config`. Does not connect; the first send does.
    pub fn new(config: &SmtpConfig) -> Result<Self, SmtpConfigError> {
        let from: Mailbox = config.from.parse().map_err(|e| SmtpConfigError::From {
            address: config.from.clone(),
            reason: format!("{e}"),
        })?;
        let builder = match config.tls {
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                .map_err(|e| SmtpConfigError::Transport(e.to_string()))?,
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                .map_err(|e| SmtpConfigError::Transport(e.to_string()))?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
        };
        let mut builder = builder.port(config.port).timeout(Some(SMTP_TIMEOUT));
        match (&config.username, &config.password) {
            (Some(user), password) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone().unwrap_or_default()));
            }
            (None, Some(_)) => return Err(SmtpConfigError::PasswordWithoutUsername),
            (None, None) => {}
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

/// The login-code email from `from` to `to` carrying `code`.
///
/// Fails (without echoing the address) if `to` is not a valid email address.
pub fn build_code_email(from: &Mailbox, to: &str, code: &str) -> Result<Message, CodeSendError> {
    let to: Mailbox = to
        .trim()
        .parse()
        .map_err(|e| CodeSendError::Failed(format!("invalid email address: {e}")))?;
    let body = format!(
        "Your Flash login code is: {code}\n\
         \n\
         It is valid for {CODE_VALIDITY_MINUTES} minutes and can be used once.\n\
         If you did not try to log in to Flash, you can ignore this email.\n"
    );
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(CODE_EMAIL_SUBJECT)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| CodeSendError::Failed(format!("could not build email: {e}")))
}

impl CodeSender for SmtpCodeSender {
    fn send_code<'a>(
        &'a self,
        channel: CodeChannel,
        identifier: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<(), CodeSendError>> {
        Box::pin(async move {
            match channel {
                CodeChannel::Sms => Err(CodeSendError::Unsupported("sms")),
                CodeChannel::Email => {
                    let message = build_code_email(&self.from, identifier, code)?;
                    self.transport
                        .send(message)
                        .await
                        .map(|_| ())
                        .map_err(|e| CodeSendError::Failed(format!("smtp: {e}")))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    fn local_config(tls: SmtpTls) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: 2525,
            username: None,
            password: None,
            from: "Flash <login@example.com>".into(),
            tls,
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    /// Records (target, message) of every event.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<(String, String)>>>);

    struct MessageVisitor(String);

    impl Visit for MessageVisitor {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut v = MessageVisitor(String::new());
            event.record(&mut v);
            if let Ok(mut events) = self.0.lock() {
                events.push((event.metadata().target().to_owned(), v.0));
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn log_sender_logs_code_and_returns_ok() {
        let capture = Capture::default();
        let result = tracing::subscriber::with_default(capture.clone(), || {
            block_on(LogCodeSender::new().send_code(CodeChannel::Sms, "+15551234567", "012345"))
        });
        assert!(result.is_ok());
        let events = capture.0.lock().map(|e| e.clone()).unwrap_or_default();
        assert_eq!(
            events,
            vec![(
                "flash::auth".to_owned(),
                "login code for +15551234567: 012345".to_owned()
            )]
        );
    }

    #[tokio::test]
    async fn log_sender_handles_email_too() {
        let sender: Box<dyn CodeSender> = Box::new(LogCodeSender);
        assert!(sender
            .send_code(CodeChannel::Email, "a@example.com", "999999")
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn smtp_sender_refuses_sms() {
        let sender = SmtpCodeSender::new(&local_config(SmtpTls::None)).expect("config");
        let err = sender.send_code(CodeChannel::Sms, "+15551234567", "123456").await.err();
        assert!(matches!(err, Some(CodeSendError::Unsupported("sms"))), "{err:?}");
    }

    #[tokio::test]
    async fn smtp_sender_rejects_bad_address_before_connecting() {
        let sender = SmtpCodeSender::new(&local_config(SmtpTls::None)).expect("config");
        let err = sender
            .send_code(CodeChannel::Email, "not an address", "123456")
            .await
            .err();
        assert!(matches!(err, Some(CodeSendError::Failed(_))), "{err:?}");
    }

    #[test]
    fn smtp_sender_builds_for_every_tls_mode() {
        for tls in [SmtpTls::Tls, SmtpTls::StartTls, SmtpTls::None] {
            let mut cfg = local_config(tls);
            cfg.host = "smtp.example.com".into();
            cfg.username = Some("user".into());
            cfg.password = Some("hunter2".into());
            assert!(SmtpCodeSender::new(&cfg).is_ok(), "{tls:?}");
            assert!(!format!("{cfg:?}").contains("hunter2"));
        }
    }

    #[test]
    fn smtp_config_errors() {
        let mut cfg = local_config(SmtpTls::None);
        cfg.from = "nobody".into();
        assert!(matches!(SmtpCodeSender::new(&cfg), Err(SmtpConfigError::From { .. })));
        let mut cfg = local_config(SmtpTls::None);
        cfg.password = Some("x".into());
        assert!(matches!(
            SmtpCodeSender::new(&cfg),
            Err(SmtpConfigError::PasswordWithoutUsername)
        ));
    }

    #[test]
    fn code_email_contents() {
        let from: Mailbox = "Flash <login@example.com>".parse().expect("from");
        let msg = build_code_email(&from, " alice@example.com ", "004217").expect("message");
        let env = msg.envelope();
        assert_eq!(env.to().len(), 1);
        assert_eq!(env.to()[0].to_string(), "alice@example.com");
        assert_eq!(env.from().map(|a| a.to_string()).as_deref(), Some("login@example.com"));
        let text = String::from_utf8_lossy(&msg.formatted()).into_owned();
        assert!(text.contains("Subject: Your Flash login code\r\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8"), "{text}");
        assert!(text.contains("Your Flash login code is: 004217"), "{text}");
        assert!(text.contains("valid for 10 minutes"), "{text}");
    }

    #[test]
    fn code_email_rejects_bad_or_injected_addresses() {
        let from: Mailbox = "login@example.com".parse().expect("from");
        for bad in ["", "alice", "alice@example.com\r\nBcc: eve@example.com", "a@b@c"] {
            assert!(
                matches!(build_code_email(&from, bad, "123456"), Err(CodeSendError::Failed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn smtp_tls_deserializes() {
        use serde::de::value::{Error, StrDeserializer};
        use serde::de::IntoDeserializer;
        use serde::Deserialize;

        let parse = |s: &'static str| {
            let de: StrDeserializer<'_, Error> = s.into_deserializer();
            SmtpTls::deserialize(de).ok()
        };
        assert_eq!(parse("tls"), Some(SmtpTls::Tls));
        assert_eq!(parse("implicit"), Some(SmtpTls::Tls));
        assert_eq!(parse("starttls"), Some(SmtpTls::StartTls));
        assert_eq!(parse("start_tls"), Some(SmtpTls::StartTls));
        assert_eq!(parse("none"), Some(SmtpTls::None));
        assert_eq!(parse("ssl"), None);
        assert_eq!(SmtpTls::default(), SmtpTls::Tls);
    }
}
