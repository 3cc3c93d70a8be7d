//! Command-line arguments of the `flash` binary (clap derive).

use clap::{Args, Parser, Subcommand};

use crate::client::DEFAULT_SERVER;
use crate::types::{AccountLevel, AccountStatus, Scope};

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
    /// Pay a user or wallet of this bank.
    Pay(PayArgs),
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
    /// Recipient: a username, or a wallet id (UUID).
    pub destination: String,
    /// Amount in sats.
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    pub sats: u64,
    /// Memo shown to both sides.
    #[arg(long)]
    pub memo: Option<String>,
    /// Paying wallet (default: the account's default wallet).
    #[arg(long, value_name = "WALLET_ID")]
    pub wallet: Option<String>,
    /// Idempotency key (default: a fresh random one).
    #[arg(long, value_name = "K")]
    pub idempotency_key: Option<String>,
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
                assert_eq!(p.sats, 1000);
                assert_eq!(p.memo.as_deref(), Some("hi"));
                assert_eq!(p.idempotency_key.as_deref(), Some("k1"));
                assert_eq!(p.wallet, None);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["pay", "alice", "0"]).is_err());
        assert!(parse(&["pay", "alice", "-5"]).is_err());
        assert!(parse(&["pay", "alice", "lots"]).is_err());
        assert!(parse(&["pay", "alice"]).is_err());
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
