//! Command-line arguments of the `flash` binary (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use flash_sdk::{
    looks_like_base58_address, parse_invoice_arg, parse_onchain_address, AccountLevel, AccountStatus, BudgetPeriod,
    Destination, PaymentTarget, Scope, Speed,
};
use flash_sdk::{BitcoinNetwork, ClientError};

/// The environment `flash` reads, shown at the end of `flash --help`.
pub const ENVIRONMENT_HELP: &str = "\
Environment:
  FLASH_SERVER      the server's URL, like --server. Without either, the server of the last
                    `flash login` in this config dir, else http://127.0.0.1:8080
  FLASH_TOKEN       a session token or API key, like --token (instead of the stored one)
  FLASH_ADMIN_KEY   the operator key, like --admin-key (for `flash admin ...`)
  FLASH_CONFIG_DIR  where credentials.json is kept (one profile per directory); default
                    $XDG_CONFIG_HOME/flash, else $HOME/.config/flash";

/// flash — command-line client for a Flash bank server.
#[derive(Debug, Parser)]
#[command(name = "flash", version, propagate_version = true, after_help = ENVIRONMENT_HELP)]
pub struct Cli {
    /// Server base URL [default: the server of the last `flash login`, else http://127.0.0.1:8080]
    #[arg(long, global = true, env = "FLASH_SERVER")]
    pub server: Option<String>,
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
    /// Pay a user or wallet of this bank, a Lightning invoice, a Lightning address, an LNURL or a Bitcoin address
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
    ///   bc1…, tb1…, bcrt1…, 1…, 3…, m…, n…, 2…
    ///                          a Bitcoin address (segwit in one case, or base58), paid on-chain:
    ///                          SATS required, or --all for the wallet's whole balance less the
    ///                          fee; --speed fast pays it in its own transaction at once, medium
    ///                          (the default) and slow in the next batch. An address of this
    ///                          bank is paid inside the ledger, without a fee.
    ///   bitcoin:ADDRESS?amount=BTC&message=TEXT
    ///                          a BIP21 payment request: its amount is paid (SATS, if given,
    ///                          must be the same) and its message is the memo unless --memo
    ///
    /// Prints the status, the fee and the transaction id. Exits 0 on SUCCESS, PENDING (in
    /// flight: the outcome shows in `flash history`; an on-chain payment is PENDING until its
    /// transaction is out) and ALREADY_PAID, 1 on FAILURE. If the connection fails the
    /// payment may or may not have gone through: retry with the printed --idempotency-key to
    /// avoid paying twice.
    ///
    /// With --json, prints one object:
    ///   {"status": "SUCCESS" | "PENDING" | "ALREADY_PAID" | "FAILURE",
    ///    "destination": {"kind": "USERNAME" | "WALLET_ID" | "LN_INVOICE" | "LN_ADDRESS" | "LNURL"
    ///                            | "ONCHAIN_ADDRESS",
    ///                    "value": STRING},
    ///    "amount": SATS | null (sent, fee excluded; null when unknown), "fee": SATS | null
    ///    (on-chain while PENDING: the most it will cost, held with the payment),
    ///    "speed": "FAST" | "MEDIUM" | "SLOW" | null (on-chain only), "all": BOOL,
    ///    "transaction": {"id", "status", "direction", "settlementAmount", "settlementFee",
    ///                    "settlementCurrency", "memo"} | null,
    ///    "errors": [{"message", "code"}], "idempotencyKey": STRING}
    #[command(verbatim_doc_comment)]
    Pay(PayArgs),
    /// Show a wallet's on-chain deposit address, or make a fresh one with --new
    ///
    /// Prints the address alone on stdout (so that `ADDR=$(flash address)` works). Deposits
    /// to it are credited to the wallet after the server's confirmations; until then they
    /// show as pending incoming in `flash balance`.
    ///
    /// With --json, prints {"walletId", "address", "new": BOOL}.
    #[command(verbatim_doc_comment)]
    Address(AddressArgs),
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
    /// Show the fee paying a Lightning invoice or a Bitcoin address would cost
    ///
    /// For an invoice, give SATS when it has no amount; paying an invoice of this bank is
    /// free. For a Bitcoin address (or a bitcoin: URI) give SATS (or the URI's amount) and
    /// optionally --speed; the fee shown is the most the payment will cost (what is held with
    /// it), 0 to an address of this bank.
    ///
    /// With --json, prints {"fee": SATS}.
    #[command(verbatim_doc_comment)]
    Fee(FeeArgs),
    /// Turn wallet balance into ecash (Cashu tokens of this bank's mint) and back
    ///
    /// `flash ecash mint SATS` takes SATS from a wallet and prints a token: whoever holds it
    /// holds the sats, so it can be handed over like cash (in a message, a QR code, a file)
    /// and redeemed by anyone, here with `flash ecash redeem TOKEN` or in any Cashu wallet
    /// that knows this bank's mint. A token is redeemed once.
    #[command(subcommand, verbatim_doc_comment)]
    Ecash(EcashCommand),
    /// List transactions, newest first.
    History(HistoryArgs),
    /// Manage the username.
    #[command(subcommand)]
    Username(UsernameCommand),
    /// Link your NOSTR key: your NIP-05 name (username@host) and zaps to you
    ///
    /// `flash nostr link NPUB` takes an npub1… key or 64 hex characters.
    ///
    /// With --json, prints {"id", "username", "npub"}.
    #[command(subcommand, verbatim_doc_comment)]
    Nostr(NostrCommand),
    /// The keystore: this client's NOSTR key and ecash seed, sealed under a passphrase
    ///
    /// The keystore is `keystore.json` in the config directory (Argon2id + XChaCha20-Poly1305;
    /// docs/client.md). The passphrase is read from FLASH_PASSPHRASE, else from the first line
    /// of stdin.
    #[command(subcommand, verbatim_doc_comment)]
    Keys(KeysCommand),
    /// Private messages (NIP-17) over your relays, kept in the local database
    ///
    /// Relays: --relay (repeatable), else FLASH_RELAYS (comma-separated), else the server's
    /// own relay. PEER is an npub1…, nprofile1… or a hex public key. Needs `flash keys init`.
    #[command(subcommand, verbatim_doc_comment)]
    Chat(ChatCommand),
    /// Group chats (NIP-29) on a relay that keeps groups (a Flash relay does)
    ///
    /// GROUP is the group's id on the relay (a-z, 0-9, - and _), with --relay naming the relay
    /// (default: the server's own). Needs `flash keys init`.
    #[command(subcommand, verbatim_doc_comment)]
    Group(GroupCommand),
    /// Back up the keystore, settings, contacts and groups (to a file and/or the relays)
    ///
    /// The keystore's passphrase is the first line of stdin (or FLASH_PASSPHRASE). The ecash
    /// notes come back from the seed in the backup; the history from the server.
    #[command(verbatim_doc_comment)]
    Backup(BackupArgs),
    /// Make this config directory the client of a backup: a new keystore (passphrase: the first
    /// line of stdin, or FLASH_PASSPHRASE), settings, contacts, groups, then the ecash notes
    #[command(verbatim_doc_comment)]
    Restore(RestoreArgs),
    /// Nostr Wallet Connect: let an app (NIP-47) pay from and read a wallet, within a budget
    ///
    /// `flash nwc create --name APP` prints a nostr+walletconnect:// URI, shown once (and as a
    /// QR code on a terminal): give it to the app. `flash nwc list` shows the connections and
    /// what each spent this period; `flash nwc revoke ID` cuts one off.
    #[command(subcommand, verbatim_doc_comment)]
    Nwc(NwcCommand),
    /// Merchant services: BTCPay Greenfield-compatible stores and their API keys
    ///
    /// `flash merchant store create NAME` makes a store settled into your default wallet;
    /// `flash merchant key create --permission btcpay.store.cancreateinvoice:STORE_ID` makes a
    /// key for an integration (WooCommerce, scripts) to use as `Authorization: token KEY`
    /// against /api/v1 (docs/merchant.md).
    #[command(subcommand, verbatim_doc_comment)]
    Merchant(MerchantCommand),
    /// LNURL-withdraw links (LUD-03): vouchers anyone holding them can withdraw from
    ///
    /// Whoever holds a link may withdraw from your wallet, within its limits.
    /// `flash withdraw-link create MAX_SATS` prints the LNURL, shown once (and as a QR code on
    /// a terminal); `list` shows the links and their uses left; `revoke ID` ends one.
    #[command(subcommand, verbatim_doc_comment)]
    WithdrawLink(WithdrawLinkCommand),
    /// Flash Cards: Bolt Cards (NFC) that pay from a wallet, within limits
    ///
    /// `flash card create NAME --tap-limit SATS --day-limit SATS` (or `flash card program`)
    /// prints a one-time link (and a QR code on a terminal) for the Bolt Card NFC Programmer
    /// app, which writes the card; `list` shows the cards, `limits ID` changes what they may
    /// spend, `disable ID` / `enable ID` stop and restart one, `wipe ID` retires one for good
    /// `pin ID --pin-limit SATS` asks for a PIN from that amount on (`pin ID --remove` drops it)
    /// and `reset-link` prints the app's link to reset a card to its factory keys.
    #[command(subcommand, verbatim_doc_comment)]
    Card(CardCommand),
    /// Rewards programs: cashback or a fixed reward for purchases at your stores
    ///
    /// `flash rewards create --store ID NAME --budget SATS --rate 2.5%` (or `--fixed SATS`)
    /// sets the budget aside from the store's wallet; customers who pay inside Flash get their
    /// reward at once, and points of sale ask for others' (docs/rewards.md). `status` shows
    /// what is granted and left, `end ID` stops a program and gives the rest back.
    #[command(subcommand, verbatim_doc_comment)]
    Rewards(RewardsCommand),
    /// The users you have paid or been paid by, and your names for them.
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Operator commands (need --admin-key).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Cold-storage cosigner tools; OFFLINE: they never contact a server
    ///
    /// A cosigner keeps a key file on an offline machine (`flash cold keygen`), gives its
    /// account key to the operator for [onchain.cold] cosigners, and signs the PSBTs the
    /// operator creates (`flash admin cold psbt create`) with `flash cold sign`.
    #[command(subcommand, verbatim_doc_comment)]
    Cold(ColdCommand),
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
    /// Recipient: a username, a wallet id, a Lightning invoice, a Lightning address, an LNURL
    /// (pay or withdraw), a Bitcoin address, a bitcoin: URI (its lightning= invoice is paid
    /// when it has one) or a NOSTR user (npub); the server picks the rail.
    pub destination: String,
    /// Amount in sats (optional for an invoice or a bitcoin: URI that carries its amount).
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
    /// On-chain only: how fast it should confirm (default medium: the next batch).
    #[arg(long, value_enum)]
    pub speed: Option<Speed>,
    /// On-chain only: send the wallet's whole balance, less the fee (no SATS).
    #[arg(long, conflicts_with = "sats")]
    pub all: bool,
}

impl PayArgs {
    /// Classifies the destination and checks the amount against it (required except for an
    /// invoice, a bitcoin: URI with an amount, or --all).
    pub fn destination(&self) -> Result<Destination, ClientError> {
        self.target().map(|t| t.destination)
    }

    /// The destination with the amount to send (SATS or a bitcoin: URI's, which must agree;
    /// `None` for an invoice's own amount or --all) and the URI's message. Refuses --speed
    /// and --all for anything but a Bitcoin address, and --all with an amount.
    pub fn target(&self) -> Result<PaymentTarget, ClientError> {
        let target = PaymentTarget::parse(&self.destination)?;
        let amount = target.amount(self.sats)?;
        let onchain = target.destination.is_onchain();
        if !onchain && (self.all || self.speed.is_some()) {
            let flag = if self.all { "--all" } else { "--speed" };
            return Err(ClientError::InvalidInput(format!(
                "{flag} is only for paying a Bitcoin address, not {}",
                target.destination
            )));
        }
        if self.all {
            if amount.is_some() {
                return Err(ClientError::InvalidInput(
                    "--all sends the whole balance: give no amount (the payment request has one)".into(),
                ));
            }
        } else {
            target.destination.check_amount(amount)?;
        }
        Ok(PaymentTarget { amount, ..target })
    }
}

/// `flash address`.
#[derive(Debug, Args)]
pub struct AddressArgs {
    /// The receiving wallet (default: the account's default wallet).
    #[arg(long, value_name = "WALLET_ID")]
    pub wallet: Option<String>,
    /// Make a fresh address instead of showing the newest one.
    #[arg(long)]
    pub new: bool,
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
    /// An invoice (optionally as lightning:INVOICE), a Bitcoin address or a bitcoin: URI.
    pub destination: String,
    /// Amount in sats: for an invoice without an amount, or an address.
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    pub sats: Option<u64>,
    /// Paying wallet (default: the account's default wallet).
    #[arg(long, value_name = "WALLET_ID")]
    pub wallet: Option<String>,
    /// On-chain only: how fast it should confirm (default medium).
    #[arg(long, value_enum)]
    pub speed: Option<Speed>,
}

/// What `flash fee` is asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeeTarget {
    /// A Lightning invoice (lowercased) and the amount for one without an amount.
    Invoice {
        /// The invoice.
        payment_request: String,
        /// Sats, for an invoice without an amount.
        amount: Option<u64>,
    },
    /// An on-chain payment.
    Onchain {
        /// The Bitcoin address.
        address: String,
        /// Sats.
        amount: u64,
    },
}

impl FeeArgs {
    /// Reads the destination: a Bitcoin address or bitcoin: URI needs an amount (SATS or the
    /// URI's, which must agree); anything else must be an invoice, without --speed.
    pub fn target(&self) -> Result<FeeTarget, ClientError> {
        let onchain = PaymentTarget::parse(&self.destination)
            .ok()
            .filter(|t| t.destination.is_onchain());
        match onchain {
            Some(target) => {
                let amount = target.amount(self.sats)?;
                let amount = amount.ok_or_else(|| {
                    ClientError::InvalidInput(format!(
                        "the fee of paying {} depends on the amount: give SATS",
                        target.destination
                    ))
                })?;
                Ok(FeeTarget::Onchain {
                    address: target.destination.value().to_owned(),
                    amount,
                })
            }
            None => {
                if self.speed.is_some() {
                    return Err(ClientError::InvalidInput(
                        "--speed is only for an on-chain payment".into(),
                    ));
                }
                if looks_like_base58_address(self.destination.trim()) {
                    // A base58 address with a wrong checksum: say so rather than "a username".
                    parse_onchain_address(&self.destination)?;
                }
                if let Ok(target) = PaymentTarget::parse(&self.destination) {
                    if !matches!(target.destination, Destination::Invoice(_)) {
                        return Err(ClientError::InvalidInput(format!(
                            "`flash fee` takes a Lightning invoice or a Bitcoin address, not {}",
                            target.destination
                        )));
                    }
                }
                Ok(FeeTarget::Invoice {
                    payment_request: parse_invoice_arg(&self.destination)?,
                    amount: self.sats,
                })
            }
        }
    }
}

/// `flash ecash ...`.
#[derive(Debug, Subcommand)]
pub enum EcashCommand {
    /// Turn SATS of a wallet into a Cashu token
    ///
    /// Takes SATS from the default BTC wallet (or --wallet) and prints the token alone on
    /// stdout (so that `TOKEN=$(flash ecash mint 1000)` works), and what was minted on
    /// stderr. The token is a bearer secret: whoever holds it can spend it. It exists only in
    /// this answer, so if the command fails in transit check `flash history` before minting
    /// again.
    ///
    /// With --json, prints {"token": "cashuB…", "amount": SATS, "walletId"}.
    #[command(verbatim_doc_comment)]
    Mint {
        /// Amount in sats.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        sats: u64,
        /// The wallet the sats come from (default: the account's default BTC wallet).
        #[arg(long, value_name = "WALLET_ID")]
        wallet: Option<String>,
    },
    /// Redeem a Cashu token of this bank's mint into a wallet
    ///
    /// TOKEN is a cashuA… or cashuB… token (optionally as cashu:TOKEN), or - to read it from
    /// stdin, which keeps it out of the shell history and the process list
    /// (`flash ecash redeem - < token.txt`). The default BTC wallet (or --wallet) is credited
    /// the token's value less the mint's input fee. A token already redeemed is refused
    /// (ECASH_ALREADY_SPENT) and exits 1.
    ///
    /// Prints `Redeemed N sats (fee F) into wallet W.`
    ///
    /// With --json, prints {"amount": SATS (credited), "fee": SATS, "walletId"}.
    #[command(verbatim_doc_comment)]
    Redeem {
        // Not named `token`: that id is the global --token (the session token), which clap
        // would fill from this argument.
        /// The token, or - to read it from stdin.
        #[arg(value_name = "TOKEN")]
        cashu_token: String,
        /// The wallet to credit (default: the account's default BTC wallet).
        #[arg(long, value_name = "WALLET_ID")]
        wallet: Option<String>,
    },
    /// Make a token of SATS from this client's own notes, locked to --to when given
    ///
    /// The client's own notes live in its local database, their secrets derived from the
    /// keystore's seed (docs/client.md). A token locked to a NOSTR user (npub1…, hex) can be
    /// redeemed by that user alone. Prints the token on stdout. Needs the mint (a swap).
    #[command(verbatim_doc_comment)]
    Send {
        /// Amount in sats.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        sats: u64,
        /// The NOSTR user the token is locked to.
        #[arg(long, value_name = "PEER")]
        to: Option<String>,
    },
    /// Take a token into this client's own notes
    ///
    /// Checked first with no mint needed: the mint's DLEQ proof on every note, and a lock to
    /// this client's key. When the mint cannot be reached the token is kept as pending and
    /// redeemed by the next `flash ecash notes`. Exit 1 when it is refused.
    #[command(verbatim_doc_comment)]
    Receive {
        /// The token, or - to read it from stdin.
        #[arg(value_name = "TOKEN")]
        cashu_token: String,
    },
    /// Show this client's own notes: spendable and pending sats (redeeming pending tokens
    /// when the mint answers)
    Notes,
    /// Bring this client's notes back from the keystore's seed (NUT-09)
    Restore,
}

/// The token `flash ecash redeem` was given: TOKEN itself or, for `-`, what `stdin` holds.
/// Whitespace (a wrapped token) and a `cashu:` prefix are dropped; anything but a Cashu token
/// (`cashuA…` / `cashuB…`) is refused before it is sent, without echoing it whole.
pub fn ecash_token_arg(arg: &str, mut stdin: impl std::io::Read) -> Result<String, ClientError> {
    let text = if arg.trim() == "-" {
        let mut text = String::new();
        stdin.read_to_string(&mut text).map_err(|source| ClientError::Io {
            path: PathBuf::from("stdin"),
            source,
        })?;
        if text.trim().is_empty() {
            return Err(ClientError::InvalidInput("no token on stdin".into()));
        }
        text
    } else {
        arg.to_owned()
    };
    let token: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let token = match token.get(..6) {
        Some(scheme) if scheme.eq_ignore_ascii_case("cashu:") => token.get(6..).unwrap_or_default().to_owned(),
        _ => token,
    };
    if token.starts_with("cashuA") || token.starts_with("cashuB") {
        return Ok(token);
    }
    let start: String = token.chars().take(8).collect();
    Err(ClientError::InvalidInput(if token.is_empty() {
        "no token given".into()
    } else {
        format!("`{start}…` is not a Cashu token (cashuA… or cashuB…)")
    }))
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

/// `flash nostr ...`.
#[derive(Debug, Subcommand)]
pub enum NostrCommand {
    /// Link a NOSTR public key (npub1… or hex) to your user.
    Link {
        /// The key.
        npub: String,
    },
}

/// `flash keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make the keystore: a new NOSTR key (or --import one) and a new ecash seed
    ///
    /// Prints the npub. With --json, prints {"npub", "publicKey", "keystore"}.
    #[command(verbatim_doc_comment)]
    Init {
        /// An existing key: nsec1…, 64 hex digits, or the words of a NIP-06 mnemonic.
        #[arg(long, value_name = "KEY")]
        import: Option<String>,
    },
    /// Show the public key.
    Show,
    /// Export the NOSTR key as a NIP-49 ncryptsec, sealed under the keystore's passphrase.
    Export,
}

/// `flash chat ...`.
#[derive(Debug, Subcommand)]
pub enum ChatCommand {
    /// Send PEER a message.
    Send {
        /// Who to write to.
        peer: String,
        /// The message.
        text: String,
        /// A relay to use (repeatable).
        #[arg(long = "relay", value_name = "URL")]
        relays: Vec<String>,
    },
    /// Fetch new messages from the relays, then show the conversation with PEER (or list the
    /// conversations).
    Read {
        /// Whose conversation to show.
        peer: Option<String>,
        /// A relay to use (repeatable).
        #[arg(long = "relay", value_name = "URL")]
        relays: Vec<String>,
    },
    /// Pay the newest payment request PEER sent you (an invoice, a bitcoin: URI, an LNURL)
    Pay {
        /// Who asked to be paid.
        peer: String,
        /// The paying wallet (default: the account's default wallet).
        #[arg(long, value_name = "WALLET_ID")]
        wallet: Option<String>,
        /// A relay to use (repeatable).
        #[arg(long = "relay", value_name = "URL")]
        relays: Vec<String>,
    },
}

/// `flash group ...`.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create GROUP, closed (joining takes an invite) unless --open; you are its admin.
    Create {
        /// The group's id.
        group: String,
        /// Its name.
        #[arg(long)]
        name: String,
        /// Anyone may join without an invite.
        #[arg(long)]
        open: bool,
        /// The relay that keeps it.
        #[arg(long, value_name = "URL")]
        relay: Option<String>,
    },
    /// Make an invite to GROUP (admins); prints it (RELAY'GROUP?code=CODE).
    Invite {
        /// The group's id.
        group: String,
        /// The relay that keeps it.
        #[arg(long, value_name = "URL")]
        relay: Option<String>,
    },
    /// Join the group of INVITE.
    Join {
        /// The invite, as `flash group invite` printed it.
        invite: String,
    },
    /// Post TEXT to GROUP; prints the post's id.
    Post {
        /// The group's id.
        group: String,
        /// The message.
        text: String,
        /// The relay that keeps it.
        #[arg(long, value_name = "URL")]
        relay: Option<String>,
    },
    /// Read GROUP's posts (kept in the local database).
    Read {
        /// The group's id.
        group: String,
        /// The relay that keeps it.
        #[arg(long, value_name = "URL")]
        relay: Option<String>,
    },
    /// Leave GROUP.
    Leave {
        /// The group's id.
        group: String,
        /// The relay that keeps it.
        #[arg(long, value_name = "URL")]
        relay: Option<String>,
    },
    /// Remove MEMBER from GROUP (admins and moderators).
    Remove {
        /// The group's id.
        group: String,
        /// The member (npub1…, hex).
        member: String,
        /// The relay that keeps it.
        #[arg(long, value_name = "URL")]
        relay: Option<String>,
    },
    /// Delete the post POST (its event id) from GROUP (admins and moderators).
    Delete {
        /// The group's id.
        group: String,
        /// The post's event id (hex).
        post: String,
        /// The relay that keeps it.
        #[arg(long, value_name = "URL")]
        relay: Option<String>,
    },
}

/// `flash backup`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("to").required(true).multiple(true).args(["file", "relays_too"])))]
pub struct BackupArgs {
    /// Write the backup to this file, sealed under a backup passphrase (FLASH_BACKUP_PASSPHRASE,
    /// else the second line of stdin).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Publish it to the relays (NIP-78, encrypted to your own key).
    #[arg(long = "relays")]
    pub relays_too: bool,
    /// A relay to use (repeatable).
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,
}

/// `flash restore`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("from").required(true).args(["file", "key"])))]
pub struct RestoreArgs {
    /// Restore from this backup file (its passphrase: FLASH_BACKUP_PASSPHRASE, else the
    /// second line of stdin).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Restore from the relays with this NOSTR key (nsec1…, hex, or NIP-06 words).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// A relay to use (repeatable).
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,
}

/// `flash merchant ...`.
#[derive(Debug, Subcommand)]
pub enum MerchantCommand {
    /// Stores.
    #[command(subcommand)]
    Store(MerchantStoreCommand),
    /// Greenfield API keys.
    #[command(subcommand)]
    Key(MerchantKeyCommand),
    /// Invoices of your stores.
    #[command(subcommand)]
    Invoice(MerchantInvoiceCommand),
    /// Webhooks of your stores (BTCPay's events, signed with BTCPay-Sig).
    #[command(subcommand)]
    Webhook(MerchantWebhookCommand),
}

/// `flash merchant webhook ...`.
#[derive(Debug, Subcommand)]
pub enum MerchantWebhookCommand {
    /// Register a webhook; prints its id, and its secret once (check BTCPay-Sig with it)
    ///
    /// With --json, prints Greenfield's WebhookDataCreateResult.
    #[command(verbatim_doc_comment)]
    Add {
        /// The store's id.
        #[arg(long)]
        store: String,
        /// Where the events are POSTed (absolute http(s) URL).
        url: String,
        /// Only this event type (e.g. InvoiceSettled); repeat for several. Default: every event.
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
        /// The signing secret (default: one is made).
        #[arg(long)]
        secret: Option<String>,
    },
    /// List a store's webhooks
    ///
    /// With --json, prints Greenfield's WebhookData list.
    #[command(verbatim_doc_comment)]
    List {
        /// The store's id.
        #[arg(long)]
        store: String,
    },
    /// A webhook's deliveries, newest first
    ///
    /// With --json, prints Greenfield's WebhookDeliveryData list.
    #[command(verbatim_doc_comment)]
    Deliveries {
        /// The store's id.
        #[arg(long)]
        store: String,
        /// The webhook's id.
        webhook: String,
    },
    /// Send a delivery again (as a new delivery); prints the new delivery's id
    Redeliver {
        /// The store's id.
        #[arg(long)]
        store: String,
        /// The webhook's id.
        webhook: String,
        /// The delivery's id.
        delivery: String,
    },
}

/// `flash merchant invoice ...`.
#[derive(Debug, Subcommand)]
pub enum MerchantInvoiceCommand {
    /// Make an invoice and show how to pay it (a QR code of its payment link)
    ///
    /// The invoice id alone is printed on stdout, the rest on stderr.
    /// With --json, prints Greenfield's InvoiceData with its paymentMethods.
    #[command(verbatim_doc_comment)]
    Create {
        /// The store's id (from `flash merchant store list`).
        #[arg(long)]
        store: String,
        /// The amount, a decimal in --currency; leave it out for a top-up invoice.
        #[arg(long)]
        amount: Option<String>,
        /// BTC, SATS or a fiat code such as USD (default: the store's currency).
        #[arg(long, value_name = "CODE")]
        currency: Option<String>,
        /// The order it is for (metadata.orderId).
        #[arg(long)]
        order_id: Option<String>,
        /// What is sold (metadata.itemDesc, shown to the payer).
        #[arg(long)]
        item: Option<String>,
        /// Minutes until it expires (default: the store's).
        #[arg(long, value_name = "MINUTES")]
        expires_in: Option<u32>,
    },
    /// List a store's invoices, newest first
    ///
    /// With --json, prints Greenfield's InvoiceData list.
    #[command(verbatim_doc_comment)]
    List {
        /// The store's id.
        #[arg(long)]
        store: String,
        /// Only invoices in this status (New, Processing, Settled, Expired, Invalid).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show an invoice, its payments and a QR code of its payment link
    ///
    /// With --json, prints Greenfield's InvoiceData with its paymentMethods.
    #[command(verbatim_doc_comment)]
    Show {
        /// The invoice's id.
        id: String,
    },
}

/// `flash merchant store ...`.
#[derive(Debug, Subcommand)]
pub enum MerchantStoreCommand {
    /// Make a store, settled into your default wallet; prints its id
    ///
    /// With --json, prints {"id", "name", "defaultCurrency", "archived"}.
    #[command(verbatim_doc_comment)]
    Create {
        /// Its name, 1-50 characters.
        name: String,
        /// The currency its invoices are priced in by default (server default: USD).
        #[arg(long, value_name = "CODE")]
        currency: Option<String>,
    },
    /// List your stores
    ///
    /// With --json, prints [{"id", "name", "defaultCurrency", "archived"}].
    #[command(verbatim_doc_comment)]
    List,
}

/// `flash merchant key ...`.
#[derive(Debug, Subcommand)]
pub enum MerchantKeyCommand {
    /// Make a Greenfield API key and print it (shown once)
    ///
    /// The key alone is printed on stdout (KEY=$(flash merchant key create ...) works).
    /// With --json, prints {"secret", "apiKey": {"id", "label", "permissions", "createdAt"}}.
    #[command(verbatim_doc_comment)]
    Create {
        /// What it is for.
        #[arg(long, default_value = "")]
        label: String,
        /// A BTCPay permission, e.g. btcpay.store.cancreateinvoice:STORE_ID; repeat for several.
        #[arg(long = "permission", value_name = "PERMISSION", required = true)]
        permissions: Vec<String>,
    },
    /// List your keys (never their secrets)
    ///
    /// With --json, prints [{"id", "label", "permissions", "createdAt"}].
    #[command(verbatim_doc_comment)]
    List,
    /// Revoke a key by its id
    Revoke {
        /// The key's id (from `flash merchant key list`).
        id: String,
    },
}

/// `flash nwc ...`.
#[derive(Debug, Subcommand)]
pub enum NwcCommand {
    /// Connect an app to a wallet and print its nostr+walletconnect:// URI (shown once)
    ///
    /// The URI holds the connection's secret: whoever has it may use the wallet within the
    /// methods and budget given here. It is printed alone on stdout (so that
    /// `URI=$(flash nwc create --name app)` works), as a QR code too when stdout is a terminal.
    ///
    /// With --json, prints {"uri", "connection": CONNECTION}, CONNECTION as in `flash nwc list`.
    #[command(verbatim_doc_comment)]
    Create {
        /// What the app is (shown in the list).
        #[arg(long)]
        name: String,
        /// The wallet it may use (default: the account's default wallet).
        #[arg(long, value_name = "WALLET_ID")]
        wallet: Option<String>,
        /// A method it may call; repeat for several (default: all): pay_invoice, make_invoice,
        /// lookup_invoice, list_transactions, get_balance, get_info.
        #[arg(long = "method", value_name = "METHOD")]
        methods: Vec<String>,
        /// Most sats it may spend per period, fees included (default: no budget).
        #[arg(long, value_name = "SATS", value_parser = clap::value_parser!(u64).range(1..))]
        budget: Option<u64>,
        /// How often the budget starts afresh (server default: monthly).
        #[arg(long, value_enum, requires = "budget")]
        period: Option<BudgetPeriod>,
    },
    /// List the wallet connections, newest first
    ///
    /// With --json, prints [{"id", "name", "walletId", "methods", "budgetSats": SATS | null,
    ///   "budgetPeriod", "spentSats", "expiresAt", "createdAt", "revokedAt", "lastUsedAt"}].
    #[command(verbatim_doc_comment)]
    List,
    /// Cut a connection off: the app's requests are refused from now on.
    Revoke {
        /// The connection's id.
        id: String,
    },
}

/// `flash withdraw-link ...`.
#[derive(Debug, Subcommand)]
pub enum WithdrawLinkCommand {
    /// Create a link and print its LNURL (shown once)
    ///
    /// Whoever holds the LNURL may withdraw up to MAX_SATS per use from the wallet, --uses
    /// times. It is printed alone on stdout, as a QR code too when stdout is a terminal.
    ///
    /// With --json, prints {"lnurl", "url", "link": LINK}, LINK as in `flash withdraw-link list`.
    #[command(verbatim_doc_comment)]
    Create {
        /// Largest withdrawal per use, sats.
        #[arg(value_name = "MAX_SATS", value_parser = clap::value_parser!(u64).range(1..))]
        max_sats: u64,
        /// Smallest withdrawal, sats (server default 1).
        #[arg(long, value_name = "SATS", value_parser = clap::value_parser!(u64).range(1..))]
        min: Option<u64>,
        /// Withdrawals allowed (server default 1).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        uses: Option<u32>,
        /// Minutes until it stops working (default: never).
        #[arg(long, value_name = "MINUTES", value_parser = clap::value_parser!(u32).range(1..))]
        expires_in: Option<u32>,
        /// Shown to whoever withdraws.
        #[arg(long)]
        title: Option<String>,
        /// The wallet it pays from (default: the account's default wallet).
        #[arg(long, value_name = "WALLET_ID")]
        wallet: Option<String>,
    },
    /// List the links, newest first
    ///
    /// With --json, prints [{"id", "walletId", "title", "minAmount", "maxAmount", "usesTotal",
    ///   "usesLeft", "expiresAt", "revoked", "createdAt"}].
    #[command(verbatim_doc_comment)]
    List,
    /// Revoke a link: it can no longer be withdrawn from.
    Revoke {
        /// The link's id.
        id: String,
    },
}

/// `flash rewards ...`.
#[derive(Debug, Subcommand)]
pub enum RewardsCommand {
    /// Make a rewards program for one of your stores
    ///
    /// The budget is set aside from the store's wallet now, and the program grants exactly
    /// that much, never more: one reward per purchase, --rate of it (at least --min-reward,
    /// at most --max-reward, for purchases of --min-purchase or more) or --fixed sats. Event
    /// mode: --customer-cap, --cooldown and --duration. A program ends when its budget is
    /// granted, when --duration is over, or with `flash rewards end`.
    ///
    /// With --json, prints PROGRAM as in `flash rewards status ID --json`.
    #[command(verbatim_doc_comment)]
    #[command(group(clap::ArgGroup::new("reward").required(true).args(["rate", "fixed"])))]
    Create {
        /// What to call it, shown in customers' histories (1 to 100 characters).
        name: String,
        /// The store whose purchases it rewards (from `flash merchant store list`).
        #[arg(long, value_name = "STORE_ID")]
        store: String,
        /// Its budget, sats.
        #[arg(long, value_name = "SATS", value_parser = clap::value_parser!(u64).range(1..))]
        budget: u64,
        /// Cashback: a percentage of the purchase, at most two decimals (`2.5%`).
        #[arg(long, value_name = "PERCENT", value_parser = parse_rate)]
        rate: Option<u32>,
        /// A fixed reward per purchase, sats.
        #[arg(long, value_name = "SATS", value_parser = clap::value_parser!(u64).range(1..))]
        fixed: Option<u64>,
        /// Only purchases paid with a Flash Card (a reward per card tap).
        #[arg(long)]
        card_only: bool,
        /// The smallest purchase rewarded, sats.
        #[arg(long, value_name = "SATS")]
        min_purchase: Option<u64>,
        /// The smallest reward, sats (a smaller cashback is raised to it).
        #[arg(long, value_name = "SATS", value_parser = clap::value_parser!(u64).range(1..))]
        min_reward: Option<u64>,
        /// The largest reward, sats.
        #[arg(long, value_name = "SATS", value_parser = clap::value_parser!(u64).range(1..))]
        max_reward: Option<u64>,
        /// The most one customer gets from the program, sats.
        #[arg(long, value_name = "SATS", value_parser = clap::value_parser!(u64).range(1..))]
        customer_cap: Option<u64>,
        /// The least time between one customer's rewards (`90s`, `30m`, `12h`, `7d`).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        cooldown: Option<u64>,
        /// How long the program runs from now (`2h`, `3d`); without it, until its budget is
        /// granted or it is ended.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<u64>,
        /// How long a claim link on a receipt may be claimed, days (default 30).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..=365))]
        claim_days: Option<u64>,
    },
    /// Show one program, or a store's programs
    ///
    /// With --json, prints PROGRAM (or [PROGRAM] for --store), PROGRAM being {"id", "storeId",
    ///   "name", "status", "budget", "granted", "left", "held", "returned", "grants",
    ///   "rateBasisPoints", "fixed", "cardOnly", "minPurchase", "minReward", "maxReward",
    ///   "customerCap", "cooldownSeconds", "claimDays", "startsAt", "endsAt", "createdAt"}.
    #[command(verbatim_doc_comment)]
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "store"])))]
    Status {
        /// The program's id.
        id: Option<String>,
        /// List this store's programs instead.
        #[arg(long, value_name = "STORE_ID")]
        store: Option<String>,
    },
    /// End a program now: it grants nothing more, and what it does not owe (claim links not
    /// yet claimed, payouts not yet paid) goes back to the store's wallet
    ///
    /// With --json, prints PROGRAM as in `flash rewards status ID --json`.
    #[command(verbatim_doc_comment)]
    End {
        /// The program's id.
        id: String,
    },
}

/// A percentage with at most two decimals (`2.5`, `2.5%`, `10`), as basis points (1 to 10000).
pub fn parse_rate(text: &str) -> Result<u32, String> {
    let bad = || format!("{text:?} is not a percentage from 0.01% to 100% with at most two decimals");
    let number = text.trim().trim_end_matches('%').trim();
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.len() > 2 || !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let hundredths: u32 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    let bps = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(hundredths))
        .ok_or_else(bad)?;
    if (1..=10_000).contains(&bps) {
        Ok(bps)
    } else {
        Err(bad())
    }
}

/// A duration as a whole number and a unit (`s`, `m`, `h`, `d`), as seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a duration such as 90s, 30m, 12h or 7d");
    let text = text.trim();
    let unit = text.chars().last().ok_or_else(bad)?;
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    let count: u64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
    count.checked_mul(per).filter(|s| *s > 0).ok_or_else(bad)
}

/// `flash card ...`.
#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Make a card and print its programming link (shown once, valid for an hour)
    ///
    /// Prints the boltcard://program?url=… deep link alone on stdout, as a QR code too when
    /// stdout is a terminal: scan it with the Bolt Card NFC Programmer app within the hour,
    /// then hold a blank card (or one reset) to the phone. The card is `programming` until its
    /// first tap, then `active`. Each tap may spend up to --tap-limit sats, and all taps of any
    /// 24 hours up to --day-limit sats (at least the per-tap limit; at most 1 BTC).
    ///
    /// With --json, prints {"card": CARD, "programUrl", "programDeeplink"}, CARD as in
    ///   `flash card list`.
    #[command(visible_alias = "program", verbatim_doc_comment)]
    Create {
        /// What to call it (1 to 64 characters).
        name: String,
        /// Most one tap may spend, sats.
        #[arg(long, value_name = "SATS", value_parser = clap::value_parser!(u64).range(1..))]
        tap_limit: u64,
        /// Most it may spend in any 24 hours, sats.
        #[arg(long, value_name = "SATS", value_parser = clap::value_parser!(u64).range(1..))]
        day_limit: u64,
        /// The wallet it pays from (default: the account's default wallet).
        #[arg(long, value_name = "WALLET_ID")]
        wallet: Option<String>,
    },
    /// List the cards, newest first
    ///
    /// STATE is programming (waiting for the app or its first tap), active, disabled or
    /// wiped; PIN is the amount from which withdrawals need the card's PIN, sats (- when it has
    /// none); KEY VER is how many times the physical card was programmed before; COUNTER is its
    /// last tap's.
    ///
    /// With --json, prints [{"id", "name", "walletId", "state", "keyVersion", "counter",
    ///   "tapLimit", "dayLimit", "createdAt", "pinLimit" (null without a PIN), "pinFailures"}].
    #[command(verbatim_doc_comment)]
    List,
    /// Set a card's limits
    ///
    /// With --json, prints CARD as in `flash card list`.
    #[command(verbatim_doc_comment)]
    Limits {
        /// The card's id (from `flash card list`).
        id: String,
        /// Most one tap may spend, sats.
        #[arg(long, value_name = "SATS", value_parser = clap::value_parser!(u64).range(1..))]
        tap_limit: u64,
        /// Most it may spend in any 24 hours, sats (at least the per-tap limit).
        #[arg(long, value_name = "SATS", value_parser = clap::value_parser!(u64).range(1..))]
        day_limit: u64,
    },
    /// Give a card a PIN, asked for withdrawals of --pin-limit sats or more (or --remove it)
    ///
    /// The PIN (4 to 8 digits) is never an argument, which would land in the shell history:
    /// on a terminal it is asked for twice without echo; otherwise the first line of stdin is
    /// the PIN (`flash card pin ID --pin-limit 10000 < pin.txt`). Setting a PIN forgives the
    /// wrong PINs counted so far; three wrong PINs in a row disable the card.
    ///
    /// With --json, prints CARD as in `flash card list`.
    #[command(verbatim_doc_comment)]
    Pin {
        /// The card's id.
        id: String,
        /// Withdrawals of this many sats or more need the PIN.
        #[arg(
            long,
            value_name = "SATS",
            value_parser = clap::value_parser!(u64).range(1..),
            required_unless_present = "remove",
            conflicts_with = "remove"
        )]
        pin_limit: Option<u64>,
        /// Remove the card's PIN.
        #[arg(long)]
        remove: bool,
    },
    /// Stop a card paying until `flash card enable`
    ///
    /// With --json, prints CARD as in `flash card list`.
    #[command(verbatim_doc_comment)]
    Disable {
        /// The card's id.
        id: String,
    },
    /// Let a disabled card pay again (a card not yet tapped once cannot be enabled)
    ///
    /// With --json, prints CARD as in `flash card list`.
    #[command(verbatim_doc_comment)]
    Enable {
        /// The card's id.
        id: String,
    },
    /// Retire a card for good (a lost card): it never pays again
    ///
    /// Asks `Wipe card ID? [y/N]` on the terminal first; with --yes there is no question (for
    /// scripts), and without a terminal on stdin nothing is wiped unless --yes is given. The
    /// physical card can still be reset with the app (`flash card reset-link`) and programmed
    /// again, with new keys.
    ///
    /// With --json, prints CARD as in `flash card list`.
    #[command(verbatim_doc_comment)]
    Wipe {
        /// The card's id.
        id: String,
        /// Wipe without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Print the link that resets a card to its factory keys
    ///
    /// Prints the boltcard://reset?url=… deep link alone on stdout, as a QR code too when
    /// stdout is a terminal: scan it with the Bolt Card NFC Programmer app, then hold the card
    /// to the phone. The card's own tap proves it; the card is then wiped here.
    ///
    /// With --json, prints {"resetDeeplink"}.
    #[command(verbatim_doc_comment)]
    ResetLink,
}

/// `flash contacts ...`.
#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// List the contacts
    ///
    /// With --json, prints [{"username", "alias", "transactionsCount"}].
    #[command(verbatim_doc_comment)]
    List,
    /// Give a contact a name of your own.
    Alias {
        /// The contact's username.
        username: String,
        /// Your name for them.
        alias: String,
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
    /// The on-chain hot wallet: status, payout queue, batches.
    #[command(subcommand)]
    Onchain(AdminOnchainCommand),
    /// The dev chain simulator: deposits from outside, mining, reorgs (dev backend only).
    #[command(subcommand)]
    Chain(AdminChainCommand),
    /// Cold storage: status, sweeps, cold → hot PSBTs.
    #[command(subcommand)]
    Cold(AdminColdCommand),
    /// The Cashu mint: its books against the ledger, keyset rotation.
    #[command(subcommand)]
    Ecash(AdminEcashCommand),
}

/// `flash admin ecash ...`.
#[derive(Debug, Subcommand)]
pub enum AdminEcashCommand {
    /// Show the mint's books against the ledger, and its keysets
    ///
    /// The notes issued, spent and pending in melts; those outstanding against the ledger's
    /// mint:outstanding, and the quotes paid (not yet issued) against mint:quotes; whether
    /// they agree; every keyset, oldest first. Exits 1 when they do not agree.
    ///
    /// With --json, prints
    ///   {"issued", "spent", "pending", "outstanding", "ledgerOutstanding", "quotesPaid",
    ///    "ledgerQuotes" (all SATS), "balanced": BOOL,
    ///    "keysets": [{"id", "unit", "active": BOOL, "inputFeePpk"}]}
    #[command(verbatim_doc_comment)]
    Status,
    /// Make a new active sat keyset; the old one stops signing and stays redeemable
    ///
    /// The new keyset has the amounts and input fee of flashd's [mint] section. Prints it.
    ///
    /// With --json, prints {"id", "unit", "active": BOOL, "inputFeePpk"}.
    #[command(verbatim_doc_comment)]
    Rotate,
}

/// `flash admin onchain ...`.
#[derive(Debug, Subcommand)]
pub enum AdminOnchainCommand {
    /// Show the hot wallet, pending deposits and queued payouts
    ///
    /// With --json, prints
    ///   {"source": "dev" | "bitcoind" | "electrum", "confirmations", "tipHeight": N | null,
    ///    "hotBalance": SATS | null, "hotUnconfirmed": SATS | null (signed),
    ///    "pendingDeposits", "pendingDepositAmount", "queuedPayouts", "queuedPayoutAmount"}
    #[command(verbatim_doc_comment)]
    Status,
    /// List the payouts waiting for a batch, oldest first
    ///
    /// With --json, prints
    ///   [{"id", "walletId", "address", "amount", "feeReserved", "speed": "batch" | "immediate",
    ///     "status", "batchId": STRING | null, "createdAt": UNIX_SECS}]
    #[command(verbatim_doc_comment)]
    Queue {
        /// How many (server default 100).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        first: Option<u32>,
    },
    /// List the payout transactions, newest first
    ///
    /// With --json, prints
    ///   [{"id", "txHash", "status": "signed" | "broadcast" | "confirmed" | "replaced" | "failed",
    ///     "fee", "vsize", "feeRate" (sats per 1,000 vbytes), "replaces": STRING | null,
    ///     "confirmedHeight": N | null, "failure": STRING | null, "createdAt": UNIX_SECS}]
    #[command(verbatim_doc_comment)]
    Batches {
        /// How many (server default 20).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        first: Option<u32>,
    },
    /// Send the queued payouts now instead of at the next batch interval
    ///
    /// With --json, prints {"broadcast": N (transactions), "settled": N (payouts)}.
    #[command(verbatim_doc_comment)]
    BatchNow,
    /// List the deposits under review (credited, then gone from the chain), oldest first
    ///
    /// A review ends by itself when the deposit is confirmed again. With --json, prints
    ///   [{"outpoint", "walletId", "accountId", "amount", "credited", "held", "reason"}]
    #[command(verbatim_doc_comment)]
    Reviews,
    /// End a review whose deposit is not coming back: take back what the wallet still holds
    ///
    /// The deposit then counts as dropped; what the wallet had already spent is the bank's
    /// loss (the shortfall). With --json, prints {"reclaimed": SATS, "shortfall": SATS}.
    #[command(verbatim_doc_comment)]
    Reclaim {
        /// The deposit, `txid:vout` (from `flash admin onchain reviews`).
        outpoint: String,
    },
}

/// `flash admin chain ...`.
#[derive(Debug, Subcommand)]
pub enum AdminChainCommand {
    /// Pay an address from the simulated outside world (into the mempool; mine to confirm)
    ///
    /// With --json, prints {"txHash": TXID, "address", "amount"}.
    #[command(verbatim_doc_comment)]
    Deposit {
        /// The address paid: a deposit address of this bank, or any address of its network.
        address: String,
        /// Amount in sats.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        sats: u64,
    },
    /// Mine blocks (the mempool goes into the first) and credit what they confirm
    ///
    /// With --json, prints {"height": N}.
    #[command(verbatim_doc_comment)]
    Mine {
        /// Blocks to mine.
        #[arg(default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        blocks: u32,
    },
    /// Replace the top DEPTH blocks with a longer chain of empty blocks
    ///
    /// Their transactions go back to the mempool, or with --drop vanish (as if
    /// double-spent).
    ///
    /// With --json, prints {"height": N}.
    #[command(verbatim_doc_comment)]
    Reorg {
        /// How many blocks to replace.
        #[arg(value_parser = clap::value_parser!(u32).range(1..=1000))]
        depth: u32,
        /// Drop the replaced blocks' transactions instead of returning them to the mempool.
        #[arg(long)]
        drop: bool,
    },
}

/// `flash admin cold ...`.
#[derive(Debug, Subcommand)]
pub enum AdminColdCommand {
    /// Show cold storage's balance, the sweep policy and the latest sweeps
    ///
    /// Exits 1 when no cold wallet is configured.
    ///
    /// With --json, prints
    ///   {"configured": BOOL, "confirmedBalance": SATS | null, "unconfirmedBalance": SATS | null,
    ///    "maxHotBalance": SATS | null, "minHotBalance": SATS | null, "minRebalance": SATS | null,
    ///    "sweeps": [SWEEP]}
    /// where SWEEP is
    ///   {"id", "direction": "to_cold" | "to_hot", "address", "amount", "fee",
    ///    "status": "awaiting_signatures" | "signed" | "broadcast" | "confirmed" | "failed",
    ///    "txHash": TXID | null, "psbt": BASE64 | null (while awaiting signatures),
    ///    "createdAt": UNIX_SECS}
    #[command(verbatim_doc_comment)]
    Status {
        /// How many sweeps (server default 20).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        first: Option<u32>,
    },
    /// Sweep the hot wallet's excess to cold storage now, if the policy calls for it
    ///
    /// The payout batcher also checks at every batch. Prints the sweep, or that the hot
    /// wallet is within policy.
    ///
    /// With --json, prints {"sweep": SWEEP | null} (SWEEP as in `flash admin cold status`).
    #[command(verbatim_doc_comment)]
    Sweep,
    /// Cold → hot PSBTs, signed offline by the cosigners.
    #[command(subcommand)]
    Psbt(AdminColdPsbtCommand),
}

/// `flash admin cold psbt ...`.
#[derive(Debug, Subcommand)]
pub enum AdminColdPsbtCommand {
    /// Create a PSBT bringing SATS from cold storage back to the hot wallet
    ///
    /// Writes the PSBT (base64) to --out, or to stdout, and prints the sweep id and what
    /// the transaction does on stderr. Give the PSBT to the cosigners (`flash cold sign`),
    /// then pass their signed files to `flash admin cold psbt finalize-broadcast`.
    ///
    /// With --json, prints the sweep (as in `flash admin cold status`, "psbt" included) on
    /// stdout; --out still writes the PSBT.
    #[command(verbatim_doc_comment)]
    Create {
        /// Amount to move to the hot wallet, sats.
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        sats: u64,
        /// Write the PSBT to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Combine the cosigners' signed PSBTs, finalise the transaction and broadcast it
    ///
    /// Each PSBT_FILE holds one base64 PSBT signed by one or more cosigners; together they
    /// must carry the threshold's worth of signatures, or nothing happens.
    ///
    /// With --json, prints the sweep (as in `flash admin cold status`).
    #[command(verbatim_doc_comment)]
    FinalizeBroadcast {
        /// The sweep `flash admin cold psbt create` printed.
        #[arg(long, value_name = "ID")]
        sweep: String,
        /// The signed PSBT files.
        #[arg(value_name = "PSBT_FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Cancel a cold → hot PSBT still awaiting signatures
    ///
    /// The sweep becomes `failed` (cancelled by the operator) and its PSBT, signed or not, can
    /// no longer be finalised; another can then be created. Prints `Cancelled sweep ID.`
    ///
    /// With --json, prints the sweep (as in `flash admin cold status`).
    #[command(verbatim_doc_comment)]
    Cancel {
        /// The sweep `flash admin cold psbt create` printed.
        #[arg(long, value_name = "ID")]
        sweep: String,
    },
}

/// `flash cold ...`: offline, no server.
#[derive(Debug, Subcommand)]
pub enum ColdCommand {
    /// Generate a cosigner key (OFFLINE) and print its account key for [onchain.cold]
    ///
    /// Writes KEYFILE (mode 0600; an existing file is never overwritten) holding a fresh
    /// random seed. KEYFILE IS A SECRET: keep it on an offline machine and back it up (a copy
    /// on paper or a second offline medium); whoever holds enough cosigner keys can spend
    /// cold storage, and losing too many loses it.
    ///
    /// Prints the account key, `[fingerprint/48'/coin'/0'/2']xpub…` (BIP48 P2WSH; coin 0 on
    /// mainnet, 1 elsewhere), for the operator's `[onchain.cold] cosigners`.
    ///
    /// With --json, prints {"accountKey", "fingerprint", "network", "keyFile"}.
    #[command(verbatim_doc_comment)]
    Keygen {
        /// The network the key is for.
        #[arg(long, value_enum)]
        network: BitcoinNetwork,
        /// The key file to create.
        #[arg(long, value_name = "KEYFILE")]
        out: PathBuf,
    },
    /// Print a cosigner key's account key again (OFFLINE)
    ///
    /// With --json, prints {"accountKey", "fingerprint", "network", "keyFile"}.
    #[command(verbatim_doc_comment)]
    ShowKey {
        /// The key file.
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
    },
    /// Sign a cold-storage PSBT with a cosigner key (OFFLINE)
    ///
    /// Shows on stderr what the PSBT spends and pays (each output's address on the key's
    /// network and amount, the fee), then asks `Sign? [y/N]` on the terminal: check it
    /// before answering. Only y or yes signs; with --yes there is no question (for scripts),
    /// and without a terminal on stdin nothing is signed unless --yes is given.
    ///
    /// An output is shown as change back to cold storage only when this flash can check it
    /// itself: its witness script is the output's, holds this key's own derivation (of this
    /// key's account), and is a multisig of the same threshold and cosigners as the coins
    /// spent. Anything else is shown as a payment to an outside address, whatever the PSBT
    /// claims. An input that does not carry its full previous transaction is signed with a
    /// warning that its amount (and so the fee) is as the server states it; one that does
    /// must match it.
    ///
    /// Signs every input derived from the key, and refuses a malformed PSBT, one of another
    /// network, or one the key has nothing to sign in. Writes the signed PSBT (base64) to
    /// --out, or to stdout, and says how many inputs it signed on stderr.
    ///
    /// With --json, prints {"signedInputs": N, "psbt": BASE64, "out": FILE | null,
    ///   "summary": {"txid", "inputs": [{"outpoint", "amount": SATS | null, "cosigners": [FP],
    ///   "signedBy": [FP]}], "outputs": [{"address": STRING | null, "script", "amount",
    ///   "change": BOOL}], "inputTotal": SATS | null, "outputTotal", "fee": SATS | null,
    ///   "warnings": [STRING]}}.
    #[command(verbatim_doc_comment)]
    Sign {
        /// The PSBT file (base64), as `flash admin cold psbt create` wrote it.
        #[arg(long, value_name = "FILE")]
        psbt: PathBuf,
        /// The cosigner key file.
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        /// Write the signed PSBT to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Sign without asking (the summary is still checked and, without --json, shown).
        #[arg(long)]
        yes: bool,
    },
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
    fn rates_are_percentages_with_two_decimals_at_most() {
        for (text, bps) in [
            ("2.5%", 250),
            ("2.5", 250),
            ("10", 1_000),
            ("0.01%", 1),
            ("100%", 10_000),
            (" 3.25 % ", 325),
        ] {
            assert_eq!(parse_rate(text), Ok(bps), "{text}");
        }
        for text in [
            "0",
            "0%",
            "100.01",
            "2.555",
            "-1",
            "abc",
            "",
            "%",
            ".5",
            "1e2",
            "99999999999",
        ] {
            assert!(parse_rate(text).is_err(), "{text}");
        }
    }

    #[test]
    fn durations_have_a_unit() {
        for (text, secs) in [("90s", 90), ("30m", 1_800), ("12h", 43_200), ("7d", 604_800)] {
            assert_eq!(parse_duration(text), Ok(secs), "{text}");
        }
        for text in ["0s", "5", "h", "1w", "-1h", "1.5h", "", "99999999999999999999d"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
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
                assert_eq!(server.as_deref(), Some("http://x:1"));
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
            Ok(Command::Fee(FeeArgs { ref destination, sats: None, wallet: None, speed: None })) if destination == "lnbc1x"
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

    /// The regtest form of BIP173's example address.
    const ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

    fn pay_target(args: &[&str]) -> Result<PaymentTarget, String> {
        let p = pay_args(args).ok_or("does not parse")?;
        p.target().map_err(|e| e.to_string())
    }

    #[test]
    fn pay_onchain_arguments() {
        let p = pay_args(&["pay", ADDRESS, "20000", "--speed", "fast", "--memo", "rent"]);
        assert_eq!(p.as_ref().and_then(|p| p.speed), Some(Speed::Fast));
        assert_eq!(p.as_ref().map(|p| p.all), Some(false));
        assert_eq!(
            pay_target(&["pay", ADDRESS, "20000", "--speed", "fast"]),
            Ok(PaymentTarget {
                destination: Destination::OnchainAddress(ADDRESS.into()),
                amount: Some(20_000),
                memo: None,
                lightning: None,
            })
        );
        // --all: no amount at all.
        let all = pay_target(&["pay", ADDRESS, "--all", "--speed", "slow"]);
        assert_eq!(all.map(|t| t.amount), Ok(None));
        let conflict = parse(&["pay", ADDRESS, "100", "--all"]).err().map(|e| e.kind());
        assert_eq!(conflict, Some(ErrorKind::ArgumentConflict));
        assert!(parse(&["pay", ADDRESS, "100", "--speed", "turbo"]).is_err());
        // An address needs an amount; --all and --speed are only for addresses.
        assert!(pay_target(&["pay", ADDRESS]).is_err_and(|e| e.contains("needs an amount")));
        for args in [
            &["pay", "alice", "100", "--speed", "fast"][..],
            &["pay", "alice", "--all"][..],
        ] {
            let e = pay_target(args);
            assert!(
                e.as_ref()
                    .is_err_and(|e| e.contains("only for paying a Bitcoin address")),
                "{args:?}: {e:?}"
            );
        }
        // A BIP21 URI: its amount, or the same SATS; its message as the memo.
        let uri = format!("bitcoin:{ADDRESS}?amount=0.0002&message=rent%20may");
        assert_eq!(
            pay_target(&["pay", &uri]),
            Ok(PaymentTarget {
                destination: Destination::OnchainAddress(ADDRESS.into()),
                amount: Some(20_000),
                memo: Some("rent may".into()),
                lightning: None,
            })
        );
        assert_eq!(pay_target(&["pay", &uri, "20000"]).map(|t| t.amount), Ok(Some(20_000)));
        assert!(pay_target(&["pay", &uri, "20001"]).is_err_and(|e| e.contains("asks for 20000 sats, not 20001")));
        assert!(pay_target(&["pay", &uri, "--all"]).is_err_and(|e| e.contains("--all")));
        assert!(pay_target(&["pay", &format!("bitcoin:{ADDRESS}?amount=0.000000001")])
            .is_err_and(|e| e.contains("decimals")));
        // A malformed address is refused before anything is sent.
        let typo = ADDRESS.replace("kygt080", "kygt081");
        assert!(pay_target(&["pay", &typo, "100"]).is_err_and(|e| e.contains("not a valid Bitcoin address")));
    }

    #[test]
    fn address_arguments() {
        assert!(matches!(
            parse(&["address"]).map(|c| c.command),
            Ok(Command::Address(AddressArgs {
                wallet: None,
                new: false
            }))
        ));
        assert!(matches!(
            parse(&["address", "--new", "--wallet", "w1"]).map(|c| c.command),
            Ok(Command::Address(AddressArgs { wallet: Some(ref w), new: true })) if w == "w1"
        ));
        assert!(parse(&["address", "extra"]).is_err());
    }

    fn fee_target(args: &[&str]) -> Result<FeeTarget, String> {
        match parse(args).map(|c| c.command) {
            Ok(Command::Fee(f)) => f.target().map_err(|e| e.to_string()),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn fee_of_invoices_and_addresses() {
        assert_eq!(
            fee_target(&["fee", ADDRESS, "1000", "--speed", "slow"]),
            Ok(FeeTarget::Onchain {
                address: ADDRESS.into(),
                amount: 1_000
            })
        );
        assert_eq!(
            fee_target(&["fee", &format!("bitcoin:{ADDRESS}?amount=0.001")]),
            Ok(FeeTarget::Onchain {
                address: ADDRESS.into(),
                amount: 100_000
            })
        );
        assert!(fee_target(&["fee", ADDRESS]).is_err_and(|e| e.contains("give SATS")));
        let pr = invoice("lnbcrt15u");
        assert_eq!(
            fee_target(&["fee", &pr]),
            Ok(FeeTarget::Invoice {
                payment_request: pr.clone(),
                amount: None
            })
        );
        assert!(fee_target(&["fee", &pr, "--speed", "fast"]).is_err_and(|e| e.contains("--speed")));
        assert!(fee_target(&["fee", "alice"]).is_err_and(|e| e.contains("not @alice")));
        let typo = fee_target(&["fee", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", "100"]);
        assert!(typo.is_err_and(|e| e.contains("not a valid Bitcoin address")));
        assert!(matches!(
            fee_target(&["fee", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "100"]),
            Ok(FeeTarget::Onchain { amount: 100, .. })
        ));
    }

    #[test]
    fn admin_onchain_and_chain_commands() {
        let admin = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Admin(a)) => Some(a),
            _ => None,
        };
        assert!(matches!(
            admin(&["admin", "onchain", "status"]),
            Some(AdminCommand::Onchain(AdminOnchainCommand::Status))
        ));
        assert!(matches!(
            admin(&["admin", "onchain", "queue", "--first", "5"]),
            Some(AdminCommand::Onchain(AdminOnchainCommand::Queue { first: Some(5) }))
        ));
        assert!(matches!(
            admin(&["admin", "onchain", "batches"]),
            Some(AdminCommand::Onchain(AdminOnchainCommand::Batches { first: None }))
        ));
        assert!(matches!(
            admin(&["admin", "onchain", "batch-now"]),
            Some(AdminCommand::Onchain(AdminOnchainCommand::BatchNow))
        ));
        assert!(matches!(
            admin(&["admin", "onchain", "reviews"]),
            Some(AdminCommand::Onchain(AdminOnchainCommand::Reviews))
        ));
        assert!(matches!(
            admin(&["admin", "onchain", "reclaim", "ab:0"]),
            Some(AdminCommand::Onchain(AdminOnchainCommand::Reclaim { outpoint })) if outpoint == "ab:0"
        ));
        assert!(parse(&["admin", "onchain", "queue", "--first", "0"]).is_err());
        assert!(matches!(
            admin(&["admin", "chain", "deposit", ADDRESS, "1000000"]),
            Some(AdminCommand::Chain(AdminChainCommand::Deposit { ref address, sats: 1_000_000 })) if address == ADDRESS
        ));
        assert!(parse(&["admin", "chain", "deposit", ADDRESS]).is_err());
        assert!(parse(&["admin", "chain", "deposit", ADDRESS, "0"]).is_err());
        assert!(matches!(
            admin(&["admin", "chain", "mine"]),
            Some(AdminCommand::Chain(AdminChainCommand::Mine { blocks: 1 }))
        ));
        assert!(matches!(
            admin(&["admin", "chain", "mine", "3"]),
            Some(AdminCommand::Chain(AdminChainCommand::Mine { blocks: 3 }))
        ));
        assert!(parse(&["admin", "chain", "mine", "0"]).is_err());
        assert!(parse(&["admin", "chain", "mine", "1001"]).is_err());
        assert!(matches!(
            admin(&["admin", "chain", "reorg", "2", "--drop"]),
            Some(AdminCommand::Chain(AdminChainCommand::Reorg { depth: 2, drop: true }))
        ));
        assert!(matches!(
            admin(&["admin", "chain", "reorg", "1"]),
            Some(AdminCommand::Chain(AdminChainCommand::Reorg { depth: 1, drop: false }))
        ));
        assert!(parse(&["admin", "chain", "reorg"]).is_err());
    }

    #[test]
    fn admin_cold_commands() {
        let cold = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Admin(AdminCommand::Cold(c))) => Some(c),
            _ => None,
        };
        assert!(matches!(
            cold(&["admin", "cold", "status"]),
            Some(AdminColdCommand::Status { first: None })
        ));
        assert!(matches!(
            cold(&["admin", "cold", "sweep"]),
            Some(AdminColdCommand::Sweep)
        ));
        assert!(matches!(
            cold(&["admin", "cold", "psbt", "create", "200000", "--out", "p.b64"]),
            Some(AdminColdCommand::Psbt(AdminColdPsbtCommand::Create { sats: 200_000, out: Some(ref o) }))
                if o == std::path::Path::new("p.b64")
        ));
        assert!(matches!(
            cold(&["admin", "cold", "psbt", "create", "1"]),
            Some(AdminColdCommand::Psbt(AdminColdPsbtCommand::Create {
                sats: 1,
                out: None
            }))
        ));
        assert!(parse(&["admin", "cold", "psbt", "create", "0"]).is_err());
        match cold(&[
            "admin",
            "cold",
            "psbt",
            "finalize-broadcast",
            "--sweep",
            "sweep:1",
            "a.b64",
            "b.b64",
        ]) {
            Some(AdminColdCommand::Psbt(AdminColdPsbtCommand::FinalizeBroadcast { sweep, files })) => {
                assert_eq!(sweep, "sweep:1");
                assert_eq!(files, vec![PathBuf::from("a.b64"), PathBuf::from("b.b64")]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["admin", "cold", "psbt", "finalize-broadcast", "--sweep", "s"]).is_err());
        assert!(parse(&["admin", "cold", "psbt", "finalize-broadcast", "a.b64"]).is_err());
        assert!(matches!(
            cold(&["admin", "cold", "psbt", "cancel", "--sweep", "sweep:1"]),
            Some(AdminColdCommand::Psbt(AdminColdPsbtCommand::Cancel { ref sweep })) if sweep == "sweep:1"
        ));
        assert!(parse(&["admin", "cold", "psbt", "cancel"]).is_err());
        assert!(parse(&["admin", "cold", "psbt", "cancel", "sweep:1"]).is_err());
    }

    #[test]
    fn offline_cold_commands() {
        let cold = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Cold(c)) => Some(c),
            _ => None,
        };
        assert!(matches!(
            cold(&["cold", "keygen", "--network", "regtest", "--out", "k.json"]),
            Some(ColdCommand::Keygen { network: BitcoinNetwork::Regtest, ref out }) if out == std::path::Path::new("k.json")
        ));
        assert!(matches!(
            cold(&["cold", "keygen", "--network", "mainnet", "--out", "k.json"]),
            Some(ColdCommand::Keygen {
                network: BitcoinNetwork::Mainnet,
                ..
            })
        ));
        assert!(parse(&["cold", "keygen", "--out", "k.json"]).is_err());
        assert!(parse(&["cold", "keygen", "--network", "regtest"]).is_err());
        assert!(parse(&["cold", "keygen", "--network", "bitcoin", "--out", "k"]).is_err());
        assert!(matches!(
            cold(&["cold", "show-key", "--key", "k.json"]),
            Some(ColdCommand::ShowKey { .. })
        ));
        assert!(matches!(
            cold(&["cold", "sign", "--psbt", "p", "--key", "k", "--out", "s"]),
            Some(ColdCommand::Sign { out: Some(_), .. })
        ));
        assert!(matches!(
            cold(&["cold", "sign", "--psbt", "p", "--key", "k"]),
            Some(ColdCommand::Sign {
                out: None,
                yes: false,
                ..
            })
        ));
        assert!(matches!(
            cold(&["cold", "sign", "--psbt", "p", "--key", "k", "--yes"]),
            Some(ColdCommand::Sign { yes: true, .. })
        ));
        assert!(parse(&["cold", "sign", "--psbt", "p"]).is_err());
        assert!(parse(&["cold", "sign", "--key", "k"]).is_err());
    }

    #[test]
    fn onchain_help_documents_output_and_secrets() {
        let mut cmd = Cli::command();
        let mut long_help = |path: &[&str]| {
            let mut c = &mut cmd;
            for name in path {
                c = c.find_subcommand_mut(name).expect("subcommand exists");
            }
            c.render_long_help().to_string()
        };
        let pay = long_help(&["pay"]);
        for needle in ["ONCHAIN_ADDRESS", "bitcoin:ADDRESS", "--all", "bcrt1", "\"speed\""] {
            assert!(pay.contains(needle), "`flash pay --help` lacks {needle}:\n{pay}");
        }
        assert!(long_help(&["address"]).contains("\"address\""));
        let keygen = long_help(&["cold", "keygen"]);
        for needle in ["SECRET", "offline", "back it up", "0600", "48'/coin'/0'/2'"] {
            assert!(
                keygen.contains(needle),
                "`flash cold keygen --help` lacks {needle}:\n{keygen}"
            );
        }
        let sign = long_help(&["cold", "sign"]);
        for needle in ["\"signedInputs\"", "Sign? [y/N]", "--yes", "as the server states it"] {
            assert!(
                sign.contains(needle),
                "`flash cold sign --help` lacks {needle}:\n{sign}"
            );
        }
        assert!(long_help(&["admin", "cold", "status"]).contains("awaiting_signatures"));
        assert!(long_help(&["admin", "onchain", "batches"]).contains("\"feeRate\""));
        assert!(long_help(&["admin", "onchain", "batch-now"]).contains("\"settled\""));
    }

    #[test]
    fn ecash_commands() {
        let ecash = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Ecash(e)) => Some(e),
            _ => None,
        };
        assert!(matches!(
            ecash(&["ecash", "mint", "2500"]),
            Some(EcashCommand::Mint {
                sats: 2500,
                wallet: None
            })
        ));
        assert!(matches!(
            ecash(&["ecash", "mint", "1", "--wallet", "w1"]),
            Some(EcashCommand::Mint { sats: 1, wallet: Some(ref w) }) if w == "w1"
        ));
        assert!(parse(&["ecash", "mint"]).is_err());
        assert!(parse(&["ecash", "mint", "0"]).is_err());
        assert!(parse(&["ecash", "mint", "-5"]).is_err());
        assert!(parse(&["ecash", "mint", "lots"]).is_err());
        assert!(matches!(
            ecash(&["ecash", "redeem", "cashuBo2F0"]),
            Some(EcashCommand::Redeem { ref cashu_token, wallet: None }) if cashu_token == "cashuBo2F0"
        ));
        assert!(matches!(
            ecash(&["ecash", "redeem", "-", "--wallet", "w2"]),
            Some(EcashCommand::Redeem { ref cashu_token, wallet: Some(ref w) }) if cashu_token == "-" && w == "w2"
        ));
        // The Cashu token is not the session token (the global --token), and both can be given.
        let both = parse(&["--token", "session", "ecash", "redeem", "cashuBo2F0"]);
        match both {
            Ok(Cli {
                token,
                command: Command::Ecash(EcashCommand::Redeem { cashu_token, .. }),
                ..
            }) => assert_eq!(
                (token.as_deref(), cashu_token.as_str()),
                (Some("session"), "cashuBo2F0")
            ),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse(&["ecash", "redeem", "cashuBo2F0"]),
            Ok(Cli { token: None, .. })
        ));
        assert!(parse(&["ecash", "redeem"]).is_err());
        assert!(parse(&["ecash", "redeem", "cashuBa", "cashuBb"]).is_err());
        assert!(parse(&["ecash"]).is_err());
    }

    #[test]
    fn ecash_tokens_from_the_argument_or_stdin() {
        let none = std::io::empty();
        assert_eq!(
            ecash_token_arg("cashuBo2F0", none).map_err(|e| e.to_string()),
            Ok("cashuBo2F0".into())
        );
        assert_eq!(
            ecash_token_arg(" cashu:cashuAeyJ0 ", std::io::empty()).map_err(|e| e.to_string()),
            Ok("cashuAeyJ0".into())
        );
        // `-` reads stdin; a wrapped token is joined.
        let piped = std::io::Cursor::new("cashuBo2F0\nYWJj\n");
        assert_eq!(
            ecash_token_arg("-", piped).map_err(|e| e.to_string()),
            Ok("cashuBo2F0YWJj".into())
        );
        let empty = ecash_token_arg("-", std::io::Cursor::new(" \n")).map_err(|e| e.to_string());
        assert!(empty.is_err_and(|e| e.contains("no token on stdin")));
        // Anything else is refused without being echoed whole.
        let wrong = ecash_token_arg("lnbc1secretstuff", std::io::empty()).map_err(|e| e.to_string());
        assert!(
            wrong
                .as_ref()
                .is_err_and(|e| e.contains("not a Cashu token") && !e.contains("secretstuff")),
            "{wrong:?}"
        );
        assert!(ecash_token_arg("", std::io::empty()).is_err_and(|e| e.to_string().contains("no token given")));
    }

    #[test]
    fn admin_ecash_commands() {
        let admin = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Admin(AdminCommand::Ecash(e))) => Some(e),
            _ => None,
        };
        assert!(matches!(
            admin(&["admin", "ecash", "status"]),
            Some(AdminEcashCommand::Status)
        ));
        assert!(matches!(
            admin(&["--admin-key", "k", "admin", "ecash", "rotate"]),
            Some(AdminEcashCommand::Rotate)
        ));
        assert!(parse(&["admin", "ecash"]).is_err());
        assert!(parse(&["admin", "ecash", "status", "extra"]).is_err());
    }

    #[test]
    fn ecash_help_documents_output() {
        let mut cmd = Cli::command();
        let mut long_help = |path: &[&str]| {
            let mut c = &mut cmd;
            for name in path {
                c = c.find_subcommand_mut(name).expect("subcommand exists");
            }
            c.render_long_help().to_string()
        };
        let mint = long_help(&["ecash", "mint"]);
        for needle in ["\"token\"", "bearer secret", "TOKEN=$(flash ecash mint 1000)"] {
            assert!(
                mint.contains(needle),
                "`flash ecash mint --help` lacks {needle}:\n{mint}"
            );
        }
        let redeem = long_help(&["ecash", "redeem"]);
        for needle in ["stdin", "ECASH_ALREADY_SPENT", "\"fee\""] {
            assert!(
                redeem.contains(needle),
                "`flash ecash redeem --help` lacks {needle}:\n{redeem}"
            );
        }
        let status = long_help(&["admin", "ecash", "status"]);
        for needle in ["\"ledgerOutstanding\"", "\"balanced\"", "\"inputFeePpk\"", "Exits 1"] {
            assert!(
                status.contains(needle),
                "`flash admin ecash status --help` lacks {needle}:\n{status}"
            );
        }
        assert!(long_help(&["admin", "ecash", "rotate"]).contains("stays redeemable"));
    }

    /// Issue 14: `FLASH_CONFIG_DIR` was missing from `--help`.
    #[test]
    fn help_documents_every_environment_variable() {
        let help = Cli::command().render_help().to_string();
        let long_help = Cli::command().render_long_help().to_string();
        for var in ["FLASH_SERVER", "FLASH_TOKEN", "FLASH_ADMIN_KEY", "FLASH_CONFIG_DIR"] {
            assert!(help.contains(var), "`flash -h` lacks {var}:\n{help}");
            assert!(long_help.contains(var), "`flash --help` lacks {var}:\n{long_help}");
        }
        assert!(help.contains("last `flash login`"), "{help}");
        // No built-in default hides the remembered server.
        assert!(matches!(parse(&["balance"]), Ok(Cli { server: None, .. })));
    }

    #[test]
    fn commands_for_nostr_nwc_withdraw_links_and_contacts() {
        let command = |args: &[&str]| parse(args).map(|c| c.command);
        assert!(matches!(
            command(&["nostr", "link", "npub1xyz"]),
            Ok(Command::Nostr(NostrCommand::Link { ref npub })) if npub == "npub1xyz"
        ));
        match command(&[
            "nwc",
            "create",
            "--name",
            "zapper",
            "--method",
            "pay_invoice",
            "--method",
            "get_balance",
            "--budget",
            "5000",
            "--period",
            "weekly",
        ]) {
            Ok(Command::Nwc(NwcCommand::Create {
                name,
                methods,
                budget,
                period,
                wallet,
            })) => {
                assert_eq!(name, "zapper");
                assert_eq!(methods, ["pay_invoice", "get_balance"]);
                assert_eq!(
                    (budget, period, wallet),
                    (Some(5_000), Some(BudgetPeriod::Weekly), None)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["nwc", "create", "--name", "x", "--budget", "1", "--period", "hourly"]).is_err());
        assert!(
            parse(&["nwc", "create", "--name", "x", "--period", "daily"]).is_err(),
            "a period needs a budget"
        );
        assert!(matches!(command(&["nwc", "list"]), Ok(Command::Nwc(NwcCommand::List))));
        assert!(
            matches!(command(&["nwc", "revoke", "c1"]), Ok(Command::Nwc(NwcCommand::Revoke { ref id })) if id == "c1")
        );
        assert!(matches!(
            command(&["withdraw-link", "create", "2000", "--uses", "3", "--title", "voucher"]),
            Ok(Command::WithdrawLink(WithdrawLinkCommand::Create {
                max_sats: 2_000,
                uses: Some(3),
                ..
            }))
        ));
        assert!(parse(&["withdraw-link", "create", "0"]).is_err());
        assert!(matches!(
            command(&["withdraw-link", "list"]),
            Ok(Command::WithdrawLink(WithdrawLinkCommand::List))
        ));
        assert!(matches!(
            command(&["contacts", "list"]),
            Ok(Command::Contacts(ContactsCommand::List))
        ));
        assert!(matches!(
            command(&["contacts", "alias", "bob", "Bobby"]),
            Ok(Command::Contacts(ContactsCommand::Alias { ref username, ref alias })) if username == "bob" && alias == "Bobby"
        ));
    }

    #[test]
    fn commands_for_cards() {
        let card = |args: &[&str]| match parse(args).map(|c| c.command) {
            Ok(Command::Card(c)) => Some(c),
            _ => None,
        };
        for verb in ["create", "program"] {
            assert!(matches!(
                card(&["card", verb, "coffee", "--tap-limit", "1000", "--day-limit", "5000"]),
                Some(CardCommand::Create { ref name, tap_limit: 1_000, day_limit: 5_000, wallet: None }) if name == "coffee"
            ));
        }
        assert!(matches!(
            card(&["card", "create", "c", "--tap-limit", "1", "--day-limit", "1", "--wallet", "w1"]),
            Some(CardCommand::Create { wallet: Some(ref w), .. }) if w == "w1"
        ));
        assert!(parse(&["card", "create", "c", "--tap-limit", "1000"]).is_err());
        assert!(parse(&["card", "create", "c", "--tap-limit", "0", "--day-limit", "1"]).is_err());
        assert!(parse(&["card", "create", "--tap-limit", "1", "--day-limit", "1"]).is_err());
        assert!(matches!(card(&["card", "list"]), Some(CardCommand::List)));
        assert!(matches!(
            card(&["card", "limits", "k1", "--tap-limit", "10", "--day-limit", "20"]),
            Some(CardCommand::Limits { ref id, tap_limit: 10, day_limit: 20 }) if id == "k1"
        ));
        assert!(parse(&["card", "limits", "k1", "--day-limit", "20"]).is_err());
        assert!(matches!(card(&["card", "disable", "k1"]), Some(CardCommand::Disable { ref id }) if id == "k1"));
        assert!(matches!(card(&["card", "enable", "k1"]), Some(CardCommand::Enable { ref id }) if id == "k1"));
        assert!(matches!(
            card(&["card", "wipe", "k1"]),
            Some(CardCommand::Wipe { ref id, yes: false }) if id == "k1"
        ));
        assert!(matches!(
            card(&["card", "wipe", "k1", "--yes"]),
            Some(CardCommand::Wipe { yes: true, .. })
        ));
        assert!(parse(&["card", "wipe"]).is_err());
        assert!(matches!(card(&["card", "reset-link"]), Some(CardCommand::ResetLink)));
        assert!(matches!(
            card(&["card", "pin", "k1", "--pin-limit", "10000"]),
            Some(CardCommand::Pin { ref id, pin_limit: Some(10_000), remove: false }) if id == "k1"
        ));
        assert!(matches!(
            card(&["card", "pin", "k1", "--remove"]),
            Some(CardCommand::Pin {
                pin_limit: None,
                remove: true,
                ..
            })
        ));
        // A limit or --remove, not both; never the PIN itself as an argument.
        assert!(parse(&["card", "pin", "k1"]).is_err());
        assert!(parse(&["card", "pin", "k1", "--pin-limit", "10", "--remove"]).is_err());
        assert!(parse(&["card", "pin", "k1", "--pin-limit", "0"]).is_err());
        assert!(parse(&["card", "pin", "k1", "1234", "--pin-limit", "10"]).is_err());
        assert!(parse(&["card", "pin", "k1", "--pin", "1234", "--pin-limit", "10"]).is_err());
    }

    #[test]
    fn unknown_command_is_a_usage_error() {
        let e = parse(&["frobnicate"]).err();
        assert_eq!(e.map(|e| e.exit_code()), Some(2));
    }
}
