//! Command-line arguments of the `flash` binary (clap derive).

use clap::{Args, Parser, Subcommand};

use crate::client::DEFAULT_SERVER;
use crate::error::ClientError;
use crate::types::{AccountLevel, AccountStatus, Destination, Scope};

/// flash — command-line client for a Flash bank server.
#[derive(Debug, Parser)]
#[command(name = "flash", version, propagate_version = true)]
pub struct Cli {
    /// Server base URL.
    #[arg(long, global = true, env = "FLASH_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Session token or API key to use instead of the stored one.
    #[arg(long, global = true, env = "FLASH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Admin key for `flash admin ...`.
    #[arg(long, global = true, env = "FLASH_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Print raw JSON results instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in by email or phone code, or create a device account.
    Login(LoginArgs),
    /// End the session and forget the stored token.
    Logout,
    /// Show the logged-in user.
    Whoami,
    /// Show the balance of each wallet.
    Balance,
    /// Pay a user or wallet of this bank, a Lightning invoice, a Lightning address or an LNURL
    ///
    /// DESTINATION is one of:
    ///   name, @name            a username of this bank (SATS required)
    ///   UUID                   a wallet id of this bank (SATS required)
    ///   lnbc…, lntb…, lntbs…, lnbcrt…
    ///                          a BOLT11 invoice, optionally as lightning:INVOICE, any case;
    ///                          without SATS the invoice's own amount is paid, with SATS it must
    ///                          be an invoice without an amount (the server checks)
    ///   name@host              a Lightning address (SATS required; --memo is sent as comment)
    ///   lnurl1…, lnurlp://…    an LNURL-pay link (SATS required; --memo is sent as comment)
    ///
    /// Prints the status, the fee and the transaction id. Exits 0 on SUCCESS, PENDING (in
    /// flight: the outcome shows in `flash history`) and ALREADY_PAID, 1 on FAILURE. If the
    /// connection fails the payment may or may not have gone through: retry with the
    /// printed --idempotency-key to avoid paying twice.
    ///
    /// With --json, prints one object:
    ///   {"status": "SUCCESS" | "PENDING" | "ALREADY_PAID" | "FAILURE",
    ///    "destination": {"kind": "USERNAME" | "WALLET_ID" | "LN_INVOICE" | "LN_ADDRESS" | "LNURL",
    ///                    "value": STRING},
    ///    "amount": SATS | null (sent, fee excluded; null when unknown), "fee": SATS | null,
    ///    "transaction": {"id", "status", "direction", "settlementAmount", "settlementFee",
    ///                    "settlementCurrency", "memo"} | null,
    ///    "errors": [{"message", "code"}], "idempotencyKey": STRING}
    #[command(verbatim_doc_comment)]
    Pay(PayArgs),
    /// Create a Lightning invoice, or check one with `flash invoice status`
    ///
    /// `flash invoice [SATS]` creates an invoice on the default wallet (or --wallet): for
    /// SATS, or without SATS one the payer chooses the amount of. It prints the payment
    /// request alone on stdout (so that `PR=$(flash invoice 1000)` works) and its details on
    /// stderr.
    ///
    /// With --json, prints the invoice:
    ///   {"paymentHash", "paymentRequest", "paymentStatus": "PENDING" | "PAID" | "EXPIRED",
    ///    "satoshis": SATS | null, "createdAt": UNIX_SECS, "expiresAt": UNIX_SECS}
    #[command(verbatim_doc_comment)]
    Invoice(InvoiceArgs),
    /// Show the fee paying a Lightning invoice would cost
    ///
    /// Give SATS for an invoice without an amount. Paying an invoice of this bank is free.
    ///
    /// With --json, prints {"fee": SATS}.
    #[command(verbatim_doc_comment)]
    Fee(FeeArgs),
    /// List transactions, newest first.
    History(HistoryArgs),
    /// Manage the username.
    #[command(subcommand)]
    Username(UsernameCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Operator commands (need --admin-key).
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// `flash login`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("method").required(true).args(["email", "phone", "device"])))]
pub struct LoginArgs {
    /// Log in with a code sent to this email address.
    #[arg(long, value_name = "ADDR")]
    pub email: Option<String>,
    /// Log in with a code sent by SMS to this number (E.164, e.g. +15551234567).
    #[arg(long, value_name = "NUM")]
    pub phone: Option<String>,
    /// Create an anonymous device account.
    #[arg(long)]
    pub device: bool,
    /// Optional device identifier for --device.
    #[arg(long, value_name = "ID", requires = "device")]
    pub device_id: Option<String>,
    /// A code already received; skips requesting a new one and the prompt.
    #[arg(long, conflicts_with = "device")]
    pub code: Option<String>,
}

/// `flash pay`.
#[derive(Debug, Args)]
pub struct PayArgs {
    /// Recipient: a username, a wallet id, a Lightning invoice, a Lightning address or an LNURL.
    pub destination: String,
    /// Amount in sats (optional only for an invoice that carries its amount).
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    pub sats: Option<u64>,
    /// Memo for the history (the comment sent to a Lightning address or LNURL).
    #[arg(long)]
    pub memo: Option<String>,
    /// Paying wallet (default: the account's default wallet).
    #[arg(long, value_name = "WALLET_ID")]
    pub wallet: Option<String>,
    /// Idempotency key (default: a fresh random one).
    #[arg(long, value_name = "K")]
    pub idempotency_key: Option<String>,
}

impl PayArgs {
    /// Classifies the destination and checks the amount against it (required except for an
    /// invoice).
    pub fn destination(&self) -> Result<Destination, ClientError> {
        let destination = Destination::parse(&self.destination)?;
        destination.check_amount(self.sats)?;
        Ok(destination)
    }
}

/// `flash invoice`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InvoiceArgs {
    /// Checking an invoice instead of creating one.
    #[command(subcommand)]
    pub command: Option<InvoiceCommand>,
    /// Amount in sats (omit for an invoice the payer chooses the amount of).
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    pub sats: Option<u64>,
    /// Memo shown to the payer.
    #[arg(long)]
    pub memo: Option<String>,
    /// Minutes until the invoice expires (server default otherwise).
    #[arg(long, value_name = "MINUTES", value_parser = clap::value_parser!(u32).range(1..))]
    pub expires_in: Option<u32>,
    /// Receiving wallet (default: the account's default wallet).
    #[arg(long, value_name = "WALLET_ID")]
    pub wallet: Option<String>,
}

/// `flash invoice ...`.
#[derive(Debug, Subcommand)]
pub enum InvoiceCommand {
    /// Show whether an invoice of this bank was paid (no login needed)
    ///
    /// Prints PENDING, PAID or EXPIRED.
    ///
    /// With --json, prints {"status", "paymentHash", "paymentRequest"}.
    #[command(verbatim_doc_comment)]
    Status {
        /// The invoice (payment request), optionally as lightning:INVOICE.
        payment_request: String,
    },
}

/// `flash fee`.
#[derive(Debug, Args)]
pub struct FeeArgs {
    /// The invoice (payment request), optionally as lightning:INVOICE.
    pub invoice: String,
    /// Amount in sats, for an invoice without an amount.
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    pub sats: Option<u64>,
    /// Paying wallet (default: the account's default wallet).
    #[arg(long, value_name = "WALLET_ID")]
    pub wallet: Option<String>,
}

/// `flash history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Number of transactions to show.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub first: Option<u32>,
    /// Start after this cursor (printed at the end of a page).
    #[arg(long)]
    pub after: Option<String>,
    /// Only this wallet.
    #[arg(long, value_name = "ID")]
    pub wallet: Option<String>,
}

/// `flash username ...`.
#[derive(Debug, Subcommand)]
pub enum UsernameCommand {
    /// Set the username.
    Set {
        /// The new username.
        name: String,
    },
}

/// `flash apikey ...`.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key and print its secret (shown only once).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Scope to grant; repeat for several (default: read).
        #[arg(long = "scope", value_enum)]
        scopes: Vec<Scope>,
        /// Days until the key expires.
        #[arg(long, value_name = "D", value_parser = clap::value_parser!(u32).range(1..))]
        expire_days: Option<u32>,
        /// Allowed client network (CIDR); repeat for several.
        #[arg(long = "ip", value_name = "CIDR")]
        ips: Vec<String>,
    },
    /// List keys.
    List,
    /// Revoke a key.
    Revoke {
        /// Key id.
        id: String,
    },
}

/// `flash admin ...`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Ledger checks.
    #[command(subcommand)]
    Ledger(AdminLedgerCommand),
    /// Wallet operations.
    #[command(subcommand)]
    Wallet(AdminWalletCommand),
    /// Account operations.
    #[command(subcommand)]
    Account(AdminAccountCommand),
    /// Show a ledger journal.
    Journal {
        /// Journal id.
        id: String,
    },
    /// Lightning node operations.
    #[command(subcommand)]
    Lightning(AdminLightningCommand),
}

/// `flash admin lightning ...`.
#[derive(Debug, Subcommand)]
pub enum AdminLightningCommand {
    /// Pay an invoice of this bank from the simulated outside world (dev simulator only)
    ///
    /// Give SATS for an invoice without an amount. The receiving wallet is credited at once.
    ///
    /// With --json, prints {"paid": true, "paymentRequest": STRING}.
    #[command(verbatim_doc_comment)]
    Pay {
        /// The invoice (payment request), optionally as lightning:INVOICE.
        invoice: String,
        /// Amount in sats, for an invoice without an amount.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        sats: Option<u64>,
    },
    /// Show the node: identity, chain state and channels
    ///
    /// With --json, prints
    ///   {"pubkey", "alias", "network", "blockHeight", "synced", "simulated",
    ///    "channels": [{"id", "peer", "capacity", "localBalance", "remoteBalance", "active"}]}
    #[command(verbatim_doc_comment)]
    Node,
    /// Show the liquidity manager's latest check and recent actions
    ///
    /// With --check, runs a check now and exits 1 when it finds the liquidity out of policy.
    ///
    /// With --json, prints
    ///   {"inPolicy": BOOL | null, "checkedAt": UNIX_SECS | null, "activeChannels",
    ///    "outbound", "inbound", "outboundPercent", "inboundPercent", "onchain": SATS | null,
    ///    "issues": ["CODE"], "minOutboundPercent", "minInboundPercent",
    ///    "actions": [{"kind", "peer", "amount", "ok", "detail", "createdAt"}]}
    #[command(verbatim_doc_comment)]
    Liquidity {
        /// Run a check now (and act on it) instead of showing the latest one.
        #[arg(long)]
        check: bool,
    },
    /// Resolve pending Lightning payments from the node now (also runs on its own)
    ///
    /// With --json, prints {"checked", "succeeded", "failed", "pending"}.
    #[command(verbatim_doc_comment)]
    Reconcile,
}

/// `flash admin ledger ...`.
#[derive(Debug, Subcommand)]
pub enum AdminLedgerCommand {
    /// Check that the ledger balances (exit code 1 if not).
    Verify,
}

/// `flash admin wallet ...`.
#[derive(Debug, Subcommand)]
pub enum AdminWalletCommand {
    /// Credit sats to a wallet.
    Fund {
        /// Wallet id.
        wallet_id: String,
        /// Amount in sats.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        sats: u64,
    },
}

/// `flash admin account ...`.
#[derive(Debug, Subcommand)]
pub enum AdminAccountCommand {
    /// Set an account's level (0..3).
    Level {
        /// Account id.
        account_id: String,
        /// New level.
        #[arg(value_enum)]
        level: AccountLevel,
    },
    /// Set an account's status.
    Status {
        /// Account id.
        account_id: String,
        /// New status.
        #[arg(value_enum)]
        status: AccountStatus,
        /// Reason, kept in the audit log.
        #[arg(long)]
        comment: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("flash").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn login_needs_exactly_one_method() {
        let cli = parse(&["login", "--email", "a@b.c", "--code", "123456"]);
        match cli.map(|c| c.command) {
            Ok(Command::Login(l)) => {
                assert_eq!(l.email.as_deref(), Some("a@b.c"));
                assert_eq!(l.code.as_deref(), Some("123456"));
                assert!(!l.device);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(parse(&["login", "--device"]).map(|c| c.command),
            Ok(Command::Login(l)) if l.device));
        let err = |args: &[&str]| parse(args).err().map(|e| e.kind());
        assert_eq!(err(&["login"]), Some(ErrorKind::MissingRequiredArgument));
        assert_eq!(
            err(&["login", "--email", "a@b.c", "--phone", "+1555"]),
            Some(ErrorKind::ArgumentConflict)
        );
        assert_eq!(
            err(&["login", "--device", "--code", "1"]),
            Some(ErrorKind::ArgumentConflict)
        );
    }

    #[test]
    fn pay_arguments() {
        let cli = parse(&[
            "--server",
            "http://x:1",
            "pay",
            "alice",
            "1000",
            "--memo",
            "hi",
            "--idempotency-key",
            "k1",
            "--json",
        ]);
        match cli {
            Ok(Cli {
                server,
                json,
                command: Command::Pay(p),
                ..
            }) => {
                assert_eq!(server, "http://x:1");
                assert!(json);
                assert_eq!(p.destination, "alice");
                assert_eq!(p.sats, Some(1000));
                assert_eq!(p.memo.as_deref(), Some("hi"));
                assert_eq!(p.idempotency_key.as_deref(), Some("k1"));
                assert_eq!(p.wallet, None);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["pay", "alice", "0"]).is_err());
        assert!(parse(&["pay", "alice", "-5"]).is_err());
        assert!(parse(&["pay", "alice", "lots"]).is_err());
        assert!(parse(&["pay"]).is_err());
        // The amount is optional for clap; the destination decides whether it is needed.
        let no_amount = pay_args(&["pay", "alice"]).map(|p| p.destination());
        assert!(
            matches!(no_amount, Some(Err(ClientError::InvalidInput(_)))),
            "{no_amount:?}"
        );
    }

    /// A synthetic (well-shaped, not checksummed) BOLT11 invoice with `hrp`.
    fn invoice(hrp: &str) -> String {
        format!("{hrp}1{}", "qpzry9x8gf2tvdw0s3jn54khce6mua7l".repeat(8))
    }

    fn pay_args(args: &[&str]) -> Option<PayArgs> {
        match parse(args).map(|c| c.command) {
            Ok(Command::Pay(p)) => Some(p),
            _ => None,
        }
    }

    #[test]
    fn pay_classifies_lightning_destinations() {
        let pr = invoice("lnbcrt15u");
        // An invoice with its own amount: no sats.
        let p = pay_args(&["pay", &pr, "--idempotency-key", "k"]);
        assert_eq!(
            p.as_ref().map(PayArgs::destination).and_then(Result::ok),
            Some(Destination::Invoice(pr.clone()))
        );
        assert_eq!(p.and_then(|p| p.sats), None);
        // A no-amount invoice with sats, upper case and a `lightning:` prefix.
        let upper = format!("LIGHTNING:{}", pr.to_ascii_uppercase());
        let p = pay_args(&["pay", &upper, "700"]);
        assert_eq!(p.as_ref().and_then(|p| p.sats), Some(700));
        assert_eq!(
            p.as_ref().map(PayArgs::destination).and_then(Result::ok),
            Some(Destination::Invoice(pr))
        );
        // A Lightning address and an LNURL need sats; --memo goes along.
        let p = pay_args(&["pay", "alice@127.0.0.1:8080", "100", "--memo", "hi"]);
        assert_eq!(
            p.as_ref().map(PayArgs::destination).and_then(Result::ok),
            Some(Destination::LightningAddress("alice@127.0.0.1:8080".into()))
        );
        assert_eq!(p.and_then(|p| p.memo).as_deref(), Some("hi"));
        for needs_sats in ["alice@example.com", "lnurlp://example.com/pay/alice"] {
            let r = pay_args(&["pay", needs_sats]).map(|p| p.destination());
            assert!(
                matches!(r, Some(Err(ClientError::InvalidInput(_)))),
                "{needs_sats}: {r:?}"
            );
        }
        let r = pay_args(&["pay", "lnurlp://example.com/pay/alice", "21"]).map(|p| p.destination());
        assert!(matches!(r, Some(Ok(Destination::Lnurl(_)))), "{r:?}");
    }

    #[test]
    fn invoice_create_and_status() {
        match parse(&["invoice", "1500", "--memo", "tea", "--expires-in", "30"]).map(|c| c.command) {
            Ok(Command::Invoice(i)) => {
                assert!(i.command.is_none());
                assert_eq!(i.sats, Some(1500));
                assert_eq!(i.memo.as_deref(), Some("tea"));
                assert_eq!(i.expires_in, Some(30));
                assert_eq!(i.wallet, None);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse(&["invoice", "--wallet", "w1"]).map(|c| c.command),
            Ok(Command::Invoice(InvoiceArgs { sats: None, command: None, wallet: Some(ref w), .. })) if w == "w1"
        ));
        assert!(matches!(
            parse(&["invoice", "status", "lnbc1x"]).map(|c| c.command),
            Ok(Command::Invoice(InvoiceArgs {
                command: Some(InvoiceCommand::Status { ref payment_request }),
                sats: None,
                ..
            })) if payment_request == "lnbc1x"
        ));
        assert!(parse(&["invoice", "0"]).is_err());
        assert!(parse(&["invoice", "10", "--expires-in", "0"]).is_err());
        assert!(parse(&["invoice", "status"]).is_err());
        assert!(parse(&["invoice", "100", "status", "lnbc1x"]).is_err());
        assert!(parse(&["invoice", "--memo", "x", "status", "lnbc1x"]).is_err());
    }

    #[test]
    fn fee_arguments() {
        assert!(matches!(
            parse(&["fee", "lnbc1x"]).map(|c| c.command),
            Ok(Command::Fee(FeeArgs { ref invoice, sats: None, wallet: None })) if invoice == "lnbc1x"
        ));
        assert!(matches!(
            parse(&["fee", "lnbc1x", "250", "--wallet", "w"]).map(|c| c.command),
            Ok(Command::Fee(FeeArgs {
                sats: Some(250),
                wallet: Some(_),
                ..
            }))
        ));
        assert!(parse(&["fee"]).is_err());
        assert!(parse(&["fee", "lnbc1x", "0"]).is_err());
    }

    #[test]
    fn admin_lightning_commands() {
        let lightning = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Admin(AdminCommand::Lightning(l))) => Some(l),
            _ => None,
        };
        assert!(matches!(
            lightning(&["admin", "lightning", "pay", "lnbc1x"]),
            Some(AdminLightningCommand::Pay { ref invoice, sats: None }) if invoice == "lnbc1x"
        ));
        assert!(matches!(
            lightning(&["admin", "lightning", "pay", "lnbc1x", "42"]),
            Some(AdminLightningCommand::Pay { sats: Some(42), .. })
        ));
        assert!(matches!(
            lightning(&["admin", "lightning", "node"]),
            Some(AdminLightningCommand::Node)
        ));
        assert!(matches!(
            lightning(&["admin", "lightning", "liquidity"]),
            Some(AdminLightningCommand::Liquidity { check: false })
        ));
        assert!(matches!(
            lightning(&["admin", "lightning", "liquidity", "--check"]),
            Some(AdminLightningCommand::Liquidity { check: true })
        ));
        assert!(matches!(
            lightning(&["admin", "lightning", "reconcile"]),
            Some(AdminLightningCommand::Reconcile)
        ));
        assert!(parse(&["admin", "lightning", "pay"]).is_err());
        assert!(parse(&["admin", "lightning", "pay", "lnbc1x", "0"]).is_err());
        assert!(parse(&["admin", "lightning"]).is_err());
    }

    #[test]
    fn help_documents_json_output() {
        let mut cmd = Cli::command();
        let mut long_help = |path: &[&str]| {
            let mut c = &mut cmd;
            for name in path {
                c = c.find_subcommand_mut(name).expect("subcommand exists");
            }
            c.render_long_help().to_string()
        };
        let pay = long_help(&["pay"]);
        for needle in [
            "lnurlp://",
            "name@host",
            "\"idempotencyKey\"",
            "\"fee\"",
            "LN_INVOICE",
            "PENDING",
        ] {
            assert!(pay.contains(needle), "`flash pay --help` lacks {needle}:\n{pay}");
        }
        let invoice = long_help(&["invoice"]);
        assert!(
            invoice.contains("\"paymentRequest\"") && invoice.contains("--expires-in"),
            "{invoice}"
        );
        assert!(long_help(&["invoice", "status"]).contains("PAID"));
        assert!(long_help(&["fee"]).contains("{\"fee\": SATS}"));
        for (sub, needle) in [
            ("pay", "\"paid\""),
            ("node", "\"channels\""),
            ("liquidity", "\"inPolicy\""),
            ("reconcile", "\"succeeded\""),
        ] {
            let help = long_help(&["admin", "lightning", sub]);
            assert!(
                help.contains(needle),
                "`flash admin lightning {sub} --help` lacks {needle}:\n{help}"
            );
        }
    }

    #[test]
    fn history_and_username() {
        assert!(matches!(
            parse(&["history", "--first", "5", "--after", "c1"]).map(|c| c.command),
            Ok(Command::History(HistoryArgs { first: Some(5), after: Some(ref a), wallet: None })) if a == "c1"
        ));
        assert!(matches!(
            parse(&["username", "set", "bob"]).map(|c| c.command),
            Ok(Command::Username(UsernameCommand::Set { ref name })) if name == "bob"
        ));
    }

    #[test]
    fn apikey_create_collects_scopes_and_ips() {
        let cli = parse(&[
            "apikey",
            "create",
            "--name",
            "bot",
            "--scope",
            "read",
            "--scope",
            "write",
            "--expire-days",
            "30",
            "--ip",
            "10.0.0.0/8",
            "--ip",
            "::1/128",
        ]);
        match cli.map(|c| c.command) {
            Ok(Command::Apikey(ApiKeyCommand::Create {
                name,
                scopes,
                expire_days,
                ips,
            })) => {
                assert_eq!(name, "bot");
                assert_eq!(scopes, vec![Scope::Read, Scope::Write]);
                assert_eq!(expire_days, Some(30));
                assert_eq!(ips, vec!["10.0.0.0/8".to_owned(), "::1/128".to_owned()]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["apikey", "create", "--name", "x", "--scope", "admin"]).is_err());
        assert!(matches!(
            parse(&["apikey", "revoke", "k1"]).map(|c| c.command),
            Ok(Command::Apikey(ApiKeyCommand::Revoke { ref id })) if id == "k1"
        ));
    }

    #[test]
    fn admin_commands() {
        let cli = parse(&["admin", "account", "level", "acc1", "2", "--admin-key", "k"]);
        match cli {
            Ok(Cli {
                admin_key,
                command: Command::Admin(AdminCommand::Account(AdminAccountCommand::Level { account_id, level })),
                ..
            }) => {
                assert_eq!(admin_key.as_deref(), Some("k"));
                assert_eq!(account_id, "acc1");
                assert_eq!(level, AccountLevel::Two);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["admin", "account", "level", "acc1", "4"]).is_err());
        assert!(matches!(
            parse(&["admin", "account", "status", "a", "locked", "--comment", "fraud"]).map(|c| c.command),
            Ok(Command::Admin(AdminCommand::Account(AdminAccountCommand::Status {
                status: AccountStatus::Locked,
                comment: Some(_),
                ..
            })))
        ));
        assert!(matches!(
            parse(&["admin", "wallet", "fund", "w1", "5000"]).map(|c| c.command),
            Ok(Command::Admin(AdminCommand::Wallet(AdminWalletCommand::Fund {
                sats: 5000,
                ..
            })))
        ));
        assert!(matches!(
            parse(&["admin", "ledger", "verify"]).map(|c| c.command),
            Ok(Command::Admin(AdminCommand::Ledger(AdminLedgerCommand::Verify)))
        ));
        assert!(matches!(
            parse(&["admin", "journal", "j1"]).map(|c| c.command),
            Ok(Command::Admin(AdminCommand::Journal { ref id })) if id == "j1"
        ));
    }

    #[test]
    fn unknown_command_is_a_usage_error() {
        let e = parse(&["frobnicate"]).err();
        assert_eq!(e.map(|e| e.exit_code()), Some(2));
    }
}
