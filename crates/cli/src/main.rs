//! `flash`: command-line client for a Flash bank server.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use serde::Serialize;
use serde_json::{json, Value};

use flash_cli::{
    decode_psbt, ecash_token_arg, new_idempotency_key, normalize_server, parse_invoice_arg, parse_onchain_address,
    qr_text, signing_confirmed, AddressArgs, AdminAccountCommand, AdminChainCommand, AdminColdCommand,
    AdminColdPsbtCommand, AdminCommand, AdminEcashCommand, AdminLedgerCommand, AdminLightningCommand,
    AdminOnchainCommand, AdminWalletCommand, ApiKeyCommand, ApiKeyCreateInput, CardCommand, CardCreateInput,
    CardStateChange, Cli, Client, ClientError, ColdCommand, ColdStorage, ColdSweep, Command, ContactsCommand,
    CosignerKey, CredentialStore, CurrencyTotal, EcashCommand, EcashStatus, FeeArgs, FeeTarget, HistoryArgs,
    InitiationVia, InvoiceArgs, InvoiceCommand, InvoiceCreateRequest, LightningLiquidity, LoginArgs, MerchantCommand,
    MerchantInvoiceCommand, MerchantKeyCommand, MerchantStoreCommand, MerchantWebhookCommand, NostrCommand, NwcCommand,
    NwcConnectionCreateInput, OnchainSendAllRequest, PayArgs, PaymentResult, RewardProgram, RewardProgramCreateInput,
    RewardsCommand, Scope, SendRequest, SettlementVia, Speed, Timestamp, Transaction, UsernameCommand,
    WithdrawLinkCommand, WithdrawLinkCreateInput, DEFAULT_SERVER,
};

/// `println!` that ends the process quietly when stdout is closed (`flash history | head -1`):
/// the reader has what it wanted, so a broken pipe exits 0 without a message, as `ripgrep`
/// does. Any other write error exits 1 with a message.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            stdout_failed(e);
        }
    }};
}

mod own;

/// What to do when stdout cannot be written: see [`outln!`].
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout: {e}");
    std::process::exit(1);
}

/// Prints `data` as a QR code on stdout when stdout is a terminal (never into a pipe or a
/// file, where it would only get in the way of `X=$(flash ...)`), and not with --json.
fn print_qr(ctx: &Ctx, data: &str) {
    if ctx.json || !std::io::stdout().is_terminal() {
        return;
    }
    match qr_text(data) {
        Ok(text) => outln!("{}", text.trim_end_matches('\n')),
        Err(e) => eprintln!("(no QR code: {e})"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Usage errors exit with 2 (and --help/--version with 0) inside clap.
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// Renders an error chain without repeating messages already included by
/// an outer error's own text.
fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if out.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out
}

/// Settings shared by all commands.
struct Ctx {
    server: String,
    token: Option<String>,
    admin_key: Option<String>,
    json: bool,
}

impl Ctx {
    /// A client without credentials.
    fn client(&self) -> Result<Client> {
        Ok(Client::new(&self.server)?)
    }

    /// A client with `--token`/`FLASH_TOKEN` or the stored session token. Without a token,
    /// says whether the server cannot be reached before saying to log in.
    async fn authed(&self) -> Result<Client> {
        let token = match &self.token {
            Some(t) => Some(t.clone()),
            None => CredentialStore::load_default()?.token(&self.server).map(str::to_owned),
        };
        match token {
            Some(token) => Ok(self.client()?.with_token(token)),
            None => {
                self.client()?.check_reachable().await?;
                Err(ClientError::NotLoggedIn {
                    server: self.server.clone(),
                }
                .into())
            }
        }
    }

    /// A client with the admin key.
    fn admin(&self) -> Result<Client> {
        let key = self.admin_key.clone().ok_or(ClientError::NoAdminKey)?;
        Ok(self.client()?.with_admin_key(key))
    }
}

/// Prints a value as pretty JSON on stdout.
fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Unit name for a wallet currency's minor unit.
fn unit(currency: &str) -> &'static str {
    match currency {
        "BTC" => "sats",
        "USD" => "cents",
        _ => "",
    }
}

/// API key scopes as the server names them, comma-separated.
fn scope_list(scopes: &[Scope]) -> String {
    scopes.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Formats an optional timestamp.
fn ts(t: &Option<Timestamp>) -> String {
    t.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    // --server / FLASH_SERVER, else the server of the last login, else the built-in default.
    // A credentials file that cannot be read is reported by the commands that need it.
    let server = match cli.server {
        Some(server) => server,
        None => CredentialStore::load_default()
            .ok()
            .and_then(|store| store.default_server().map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
    };
    let ctx = Ctx {
        server: normalize_server(&server),
        token: cli.token,
        admin_key: cli.admin_key,
        json: cli.json,
    };
    match cli.command {
        Command::Login(args) => login(&ctx, args).await,
        Command::Logout => logout(&ctx).await,
        Command::Whoami => whoami(&ctx).await,
        Command::Balance => balance(&ctx).await,
        Command::Pay(args) => pay(&ctx, args).await,
        Command::Address(args) => address(&ctx, args).await,
        Command::Invoice(args) => invoice(&ctx, args).await,
        Command::Fee(args) => fee(&ctx, args).await,
        Command::Ecash(cmd) => ecash(&ctx, cmd).await,
        Command::Keys(cmd) => own::keys(&ctx, cmd).await,
        Command::Chat(cmd) => own::chat(&ctx, cmd).await,
        Command::Group(cmd) => own::group(&ctx, cmd).await,
        Command::Backup(args) => own::backup(&ctx, args).await,
        Command::Restore(args) => own::restore(&ctx, args).await,
        Command::History(args) => history(&ctx, args).await,
        Command::Username(UsernameCommand::Set { name }) => {
            let user = ctx.authed().await?.set_username(&name).await?;
            if ctx.json {
                print_json(&user)?;
            } else {
                outln!("Username set to {}.", user.username.as_deref().unwrap_or(&name));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Nostr(NostrCommand::Link { npub }) => {
            let user = ctx.authed().await?.set_npub(&npub).await?;
            if ctx.json {
                print_json(&user)?;
            } else {
                outln!("Linked NOSTR key {}.", user.npub.as_deref().unwrap_or(&npub));
                if let Some(name) = &user.username {
                    let host = ctx
                        .server
                        .split_once("://")
                        .map_or(ctx.server.as_str(), |(_, host)| host);
                    eprintln!("Your NIP-05 name is {name}@{host}; zaps to it reach your wallet.");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Nwc(cmd) => nwc(&ctx, cmd).await,
        Command::Merchant(cmd) => merchant(&ctx, cmd).await,
        Command::WithdrawLink(cmd) => withdraw_link(&ctx, cmd).await,
        Command::Card(cmd) => card(&ctx, cmd).await,
        Command::Rewards(cmd) => rewards(&ctx, cmd).await,
        Command::Contacts(cmd) => contacts(&ctx, cmd).await,
        Command::Apikey(cmd) => apikey(&ctx, cmd).await,
        Command::Admin(cmd) => admin(&ctx, cmd).await,
        Command::Cold(cmd) => cold(&ctx, cmd),
    }
}

/// Reads a login code from stdin after printing `Code: ` on stderr.
fn prompt_code() -> Result<String> {
    eprint!("Code: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the code from stdin")?;
    let code = line.trim().to_owned();
    if code.is_empty() {
        bail!("no code entered");
    }
    Ok(code)
}

async fn login(ctx: &Ctx, args: LoginArgs) -> Result<ExitCode> {
    // Fail early if the credentials file is unusable, before any code is sent.
    let mut store = CredentialStore::load_default()?;
    let mut client = ctx.client()?;
    let token = if args.device {
        client.create_device_account(args.device_id.as_deref()).await?
    } else if let Some(email) = &args.email {
        let code = match args.code {
            Some(c) => c,
            None => {
                client.login_email_code(email).await?;
                eprintln!("A login code was sent to {email}.");
                prompt_code()?
            }
        };
        client.login_email(email, code.trim()).await?
    } else if let Some(phone) = &args.phone {
        let code = match args.code {
            Some(c) => c,
            None => {
                client.login_phone_code(phone).await?;
                eprintln!("A login code was sent to {phone}.");
                prompt_code()?
            }
        };
        client.login_phone(phone, code.trim()).await?
    } else {
        bail!("choose one of --email, --phone or --device");
    };
    // Remembered with the token: later commands use this server without --server.
    store.log_in(&ctx.server, &token);
    store.save()?;
    if ctx.json {
        print_json(&json!({ "loggedIn": true, "server": ctx.server }))?;
    } else if args.device {
        outln!("Created a device account on {}; logged in.", ctx.server);
    } else {
        outln!("Logged in to {}.", ctx.server);
    }
    Ok(ExitCode::SUCCESS)
}

async fn logout(ctx: &Ctx) -> Result<ExitCode> {
    let mut store = CredentialStore::load_default()?;
    let token = match &ctx.token {
        Some(t) => t.clone(),
        None => match store.token(&ctx.server) {
            Some(t) => t.to_owned(),
            None => bail!(ClientError::NotLoggedIn {
                server: ctx.server.clone()
            }),
        },
    };
    let mut client = ctx.client()?.with_token(token);
    let server_result = client.logout().await;
    // Forget the token locally whatever the server said: that is what the
    // user asked for, and a token the server rejects is useless anyway.
    if store.remove(&ctx.server) {
        store.save()?;
    }
    match server_result {
        Ok(()) | Err(ClientError::NotAuthenticated) => {}
        Err(ClientError::Api { status: 401, .. }) => {}
        Err(e) => {
            return Err(anyhow::Error::new(e).context("the local token was removed, but the server logout failed"))
        }
    }
    if ctx.json {
        print_json(&json!({ "loggedOut": true, "server": ctx.server }))?;
    } else {
        outln!("Logged out of {}.", ctx.server);
    }
    Ok(ExitCode::SUCCESS)
}

async fn whoami(ctx: &Ctx) -> Result<ExitCode> {
    let me = ctx.authed().await?.me().await?;
    if ctx.json {
        print_json(&me)?;
        return Ok(ExitCode::SUCCESS);
    }
    let or_none = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".to_owned());
    outln!("User:           {}", me.id);
    outln!("Username:       {}", or_none(&me.username));
    outln!("Phone:          {}", or_none(&me.phone));
    outln!(
        "Email:          {}",
        or_none(&me.email.as_ref().and_then(|e| e.address.clone()))
    );
    let account = &me.default_account;
    outln!("Account:        {} (level {})", account.id, account.level);
    outln!("Default wallet: {}", account.default_wallet_id);
    Ok(ExitCode::SUCCESS)
}

async fn balance(ctx: &Ctx) -> Result<ExitCode> {
    let account = ctx.authed().await?.me().await?.default_account;
    if ctx.json {
        print_json(&account.wallets)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<38} {:<8} {:>16} {:>16}",
        "WALLET",
        "CURRENCY",
        "BALANCE",
        "PENDING IN"
    );
    for w in &account.wallets {
        let mark = if w.id == account.default_wallet_id { "*" } else { " " };
        let u = unit(&w.wallet_currency);
        outln!(
            "{:<38} {:<8} {:>16} {:>16}",
            format!("{}{mark}", w.id),
            w.wallet_currency,
            format!("{} {u}", w.balance),
            format!("{} {u}", w.pending_incoming_balance),
        );
    }
    outln!("(* default wallet)");
    Ok(ExitCode::SUCCESS)
}

/// The wallet given with `--wallet`, else the account's default wallet.
async fn wallet_or_default(client: &Client, wallet: Option<String>) -> Result<String> {
    match wallet {
        Some(w) => Ok(w),
        None => Ok(client.me().await?.default_account.default_wallet_id),
    }
}

/// The wallet given with `--wallet`, else the account's default wallet when it holds BTC,
/// else its first BTC wallet (ecash is in sats).
async fn btc_wallet_or_default(client: &Client, wallet: Option<String>) -> Result<String> {
    if let Some(w) = wallet {
        return Ok(w);
    }
    let account = client.me().await?.default_account;
    let btc: Vec<_> = account.wallets.iter().filter(|w| w.wallet_currency == "BTC").collect();
    btc.iter()
        .find(|w| w.id == account.default_wallet_id)
        .or_else(|| btc.first())
        .map(|w| w.id.clone())
        .ok_or_else(|| anyhow!("this account has no BTC wallet; pass --wallet"))
}

/// What was paid, in sats: the amount asked for, else (an invoice's own amount, or a whole
/// balance) what a successful transaction sent.
fn amount_paid(asked: Option<u64>, result: &PaymentResult) -> Option<i64> {
    match asked {
        Some(a) => i64::try_from(a).ok(),
        None if result.status == "SUCCESS" => result.amount_sent(),
        None => None,
    }
}

/// The fee reserve of an on-chain payment still PENDING: its transaction holds the amount and
/// the reserve together and reports no fee yet, so the reserve is what the hold exceeds the
/// amount by.
fn onchain_fee_reserve(asked: Option<u64>, result: &PaymentResult) -> Option<i64> {
    let held = result.transaction.as_ref()?.settlement_amount.checked_neg()?;
    let amount = i64::try_from(asked?).ok()?;
    held.checked_sub(amount).filter(|reserve| *reserve >= 0)
}

/// `flash pay`: classifies the destination and sends the payment.
async fn pay(ctx: &Ctx, args: PayArgs) -> Result<ExitCode> {
    let target = args.target()?;
    let client = ctx.authed().await?;
    let wallet_id = wallet_or_default(&client, args.wallet).await?;
    let key = args.idempotency_key.unwrap_or_else(new_idempotency_key);
    let memo = args.memo.or(target.memo);
    let onchain = target.destination.is_onchain() && target.lightning.is_none();
    let speed = onchain.then(|| args.speed.unwrap_or(Speed::Medium));
    let sent = if args.all {
        let all = OnchainSendAllRequest {
            wallet_id,
            address: target.destination.value().to_owned(),
            speed: args.speed,
            memo,
            idempotency_key: Some(key.clone()),
        };
        client.onchain_send_all(&all).await
    } else {
        let req = SendRequest {
            wallet_id,
            destination: args.destination.trim().to_owned(),
            amount: target.amount,
            memo,
            speed: args.speed,
            idempotency_key: Some(key.clone()),
        };
        client.send(&req).await
    };
    let result = match sent {
        Ok(r) => r,
        // No answer, or one that is not the payment's: it may have gone through.
        Err(e @ (ClientError::Request { .. } | ClientError::Http { .. })) => {
            return Err(anyhow::Error::new(e).context(format!(
                "the payment may or may not have gone through; retry with \
                 --idempotency-key {key} to avoid paying twice"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let pending_onchain = speed.is_some() && result.status == "PENDING";
    let fee = if pending_onchain {
        onchain_fee_reserve(target.amount, &result).or(result.fee())
    } else {
        result.fee()
    };
    let amount = amount_paid(target.amount, &result);
    if ctx.json {
        print_json(&json!({
            "status": result.status,
            "destination": target.destination,
            "amount": amount,
            "fee": fee,
            "speed": speed,
            "all": args.all,
            "transaction": result.transaction,
            "errors": result.errors,
            "idempotencyKey": key,
        }))?;
    } else if result.status == "FAILURE" {
        let why = if result.errors.is_empty() {
            "status FAILURE".to_owned()
        } else {
            ClientError::GraphQl(result.errors.clone()).to_string()
        };
        eprintln!("Payment to {} failed: {why}", target.destination);
        if let Some(tx) = &result.transaction {
            eprintln!("Transaction: {}", tx.id);
        }
    } else {
        outln!("Status:      {}", result.status);
        outln!("Destination: {}", target.destination);
        match amount {
            Some(amount) => outln!("Amount:      {amount} sats"),
            None if args.all => {
                let held = result
                    .transaction
                    .as_ref()
                    .map(|t| t.settlement_amount)
                    .map(|a| format!(" ({} sats held, fee reserve included)", -a))
                    .unwrap_or_default();
                outln!("Amount:      the whole balance, less the fee{held}");
            }
            None => {}
        }
        match fee {
            Some(fee) if pending_onchain => outln!("Fee:         {fee} sats at most (held with the payment)"),
            Some(fee) => outln!("Fee:         {fee} sats"),
            None => {}
        }
        if let Some(speed) = speed {
            outln!("Speed:       {}", format!("{speed:?}").to_ascii_lowercase());
        }
        if let Some(tx) = &result.transaction {
            outln!("Transaction: {}", tx.id);
        }
        match result.status.as_str() {
            "PENDING" if speed == Some(Speed::Fast) => {
                outln!("The payment goes out in its own transaction now; its outcome will show in `flash history`.")
            }
            "PENDING" if speed.is_some() => {
                outln!("The payment is queued for the next on-chain batch; its outcome will show in `flash history`.")
            }
            "PENDING" => outln!("The payment is in flight; its outcome will show in `flash history`."),
            "ALREADY_PAID" => outln!("The invoice was already paid; nothing was sent this time."),
            "SUCCESS" => {}
            other => outln!("(unknown status {other}; check `flash history`)"),
        }
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `flash invoice`: creates an invoice, or shows one's status.
async fn invoice(ctx: &Ctx, args: InvoiceArgs) -> Result<ExitCode> {
    if let Some(InvoiceCommand::Status { payment_request }) = args.command {
        let payment_request = parse_invoice_arg(&payment_request).map_err(ClientError::from)?;
        // No login needed: anyone holding the invoice may ask.
        let status = ctx.client()?.ln_invoice_payment_status(&payment_request).await?;
        if ctx.json {
            print_json(&status)?;
        } else {
            outln!("{}", status.status);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let client = ctx.authed().await?;
    let wallet_id = wallet_or_default(&client, args.wallet).await?;
    let req = InvoiceCreateRequest {
        wallet_id,
        amount: args.sats,
        memo: args.memo,
        expires_in_mins: args.expires_in,
    };
    let invoice = client.ln_invoice_create(&req).await?;
    if ctx.json {
        print_json(&invoice)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{}", invoice.payment_request);
    print_qr(
        ctx,
        &format!("lightning:{}", invoice.payment_request).to_ascii_uppercase(),
    );
    let amount = invoice
        .satoshis
        .filter(|_| req.amount.is_some())
        .map_or_else(|| "any amount".to_owned(), |s| format!("{s} sats"));
    let memo = req
        .memo
        .as_deref()
        .map(|m| format!(", memo \"{m}\""))
        .unwrap_or_default();
    eprintln!("Invoice for {amount}{memo}, expires {}.", ts(&invoice.expires_at));
    eprintln!("Payment hash: {}", invoice.payment_hash);
    eprintln!("Check it with: flash invoice status <payment request>");
    Ok(ExitCode::SUCCESS)
}

/// `flash address`: the wallet's deposit address, or a fresh one.
async fn address(ctx: &Ctx, args: AddressArgs) -> Result<ExitCode> {
    let client = ctx.authed().await?;
    let wallet_id = wallet_or_default(&client, args.wallet).await?;
    let address = client.onchain_address(&wallet_id, args.new).await?;
    if ctx.json {
        print_json(&json!({ "walletId": wallet_id, "address": address, "new": args.new }))?;
    } else {
        outln!("{address}");
        print_qr(ctx, &format!("bitcoin:{address}"));
        let fresh = if args.new { "A fresh deposit" } else { "Deposit" };
        eprintln!("{fresh} address of wallet {wallet_id}; deposits are credited after confirmation.");
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash fee`: probes the fee of paying an invoice or a Bitcoin address.
async fn fee(ctx: &Ctx, args: FeeArgs) -> Result<ExitCode> {
    let target = args.target()?;
    let client = ctx.authed().await?;
    let wallet_id = wallet_or_default(&client, args.wallet).await?;
    let fee = match target {
        FeeTarget::Invoice {
            payment_request,
            amount,
        } => client.ln_fee_probe(&wallet_id, &payment_request, amount).await?,
        FeeTarget::Onchain { address, amount } => client.onchain_fee(&wallet_id, &address, amount, args.speed).await?,
    };
    if ctx.json {
        print_json(&json!({ "fee": fee }))?;
    } else {
        outln!("Fee: {fee} sats");
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash ecash ...`: wallet balance to Cashu tokens and back (and the client's own notes, in `own`).
async fn ecash(ctx: &Ctx, cmd: EcashCommand) -> Result<ExitCode> {
    match cmd {
        own @ (EcashCommand::Send { .. }
        | EcashCommand::Receive { .. }
        | EcashCommand::Notes
        | EcashCommand::Restore) => {
            return own::ecash(ctx, own).await;
        }
        EcashCommand::Mint { sats, wallet } => {
            let client = ctx.authed().await?;
            let wallet_id = btc_wallet_or_default(&client, wallet).await?;
            let key = new_idempotency_key();
            let minted = match client.ecash_mint(&wallet_id, sats, Some(&key)).await {
                Ok(m) => m,
                // No answer, or one that is not the mint's: the sats may have left the wallet.
                Err(e @ (ClientError::Request { .. } | ClientError::Http { .. })) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "the ecash may or may not have been minted; check `flash history --wallet {wallet_id}` \
                         before minting again"
                    )))
                }
                Err(e) => return Err(e.into()),
            };
            if ctx.json {
                print_json(&json!({ "token": minted.token, "amount": minted.amount, "walletId": wallet_id }))?;
            } else {
                outln!("{}", minted.token);
                eprintln!("Minted {} sats of ecash from wallet {wallet_id}.", minted.amount);
                eprintln!("Whoever holds the token holds the sats; redeem it with `flash ecash redeem`.");
            }
        }
        EcashCommand::Redeem { cashu_token, wallet } => {
            // Read (and check) the token before anything is sent.
            let token = ecash_token_arg(&cashu_token, std::io::stdin())?;
            let client = ctx.authed().await?;
            let wallet_id = btc_wallet_or_default(&client, wallet).await?;
            let redeemed = client.ecash_redeem(&wallet_id, &token).await?;
            if ctx.json {
                print_json(&json!({ "amount": redeemed.amount, "fee": redeemed.fee, "walletId": wallet_id }))?;
            } else {
                outln!(
                    "Redeemed {} sats (fee {}) into wallet {wallet_id}.",
                    redeemed.amount,
                    redeemed.fee
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn history(ctx: &Ctx, args: HistoryArgs) -> Result<ExitCode> {
    let page = ctx
        .authed()
        .await?
        .history(args.wallet.as_deref(), args.first, args.after.as_deref())
        .await?;
    if ctx.json {
        print_json(&page)?;
        return Ok(ExitCode::SUCCESS);
    }
    let edges = page.edges.as_deref().unwrap_or_default();
    if edges.is_empty() {
        outln!("No transactions.");
    } else {
        outln!(
            "{:<23} {:<7} {:<7} {:>14} {:>6}  {:<20} MEMO",
            "DATE",
            "DIR",
            "STATUS",
            "AMOUNT",
            "FEE",
            "COUNTERPARTY"
        );
    }
    for edge in edges {
        let t = &edge.node;
        let counterparty = match &t.settlement_via {
            SettlementVia::SettlementViaIntraLedger(v) => v
                .counter_party_username
                .as_ref()
                .map(|u| format!("@{u}"))
                .or_else(|| v.counter_party_wallet_id.clone())
                .unwrap_or_else(|| "IntraLedger".to_owned()),
            SettlementVia::SettlementViaLn => "Ln".to_owned(),
            SettlementVia::SettlementViaOnChain(_) => "OnChain".to_owned(),
        };
        let onchain = onchain_details(t);
        let counterparty = onchain
            .as_ref()
            .and_then(|(address, _)| address.clone())
            .unwrap_or(counterparty);
        outln!(
            "{:<23} {:<7} {:<7} {:>14} {:>6}  {:<20} {}",
            t.created_at.to_string(),
            t.direction,
            t.status,
            format!("{} {}", t.settlement_amount, unit(&t.settlement_currency)),
            t.settlement_fee,
            counterparty,
            t.memo.as_deref().unwrap_or("")
        );
        if let Some((_, txid)) = onchain {
            outln!("{:<23} txid {txid}", "");
        }
    }
    if page.page_info.has_next_page {
        if let Some(cursor) = &page.page_info.end_cursor {
            outln!("More: flash history --after {cursor}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The address and transaction id (`TXID:VOUT`, or why there is none yet) of an on-chain
/// transaction; `None` for any other.
fn onchain_details(t: &Transaction) -> Option<(Option<String>, String)> {
    let SettlementVia::SettlementViaOnChain(via) = &t.settlement_via else {
        return None;
    };
    let address = match &t.initiation_via {
        InitiationVia::InitiationViaOnChain(i) => Some(i.address.clone()).filter(|a| !a.is_empty()),
        _ => None,
    };
    let txid = match (&via.transaction_hash, via.vout) {
        (Some(hash), Some(vout)) => format!("{hash}:{vout}"),
        (Some(hash), None) => hash.clone(),
        (None, _) => "not broadcast yet".to_owned(),
    };
    Some((address, txid))
}

/// `flash nwc ...`: Nostr Wallet Connect.
async fn nwc(ctx: &Ctx, cmd: NwcCommand) -> Result<ExitCode> {
    let client = ctx.authed().await?;
    match cmd {
        NwcCommand::Create {
            name,
            wallet,
            methods,
            budget,
            period,
        } => {
            let input = NwcConnectionCreateInput {
                name,
                wallet_id: wallet,
                methods: (!methods.is_empty()).then_some(methods),
                budget_sats: budget,
                budget_period: period,
            };
            let created = client.nwc_connection_create(&input).await?;
            if ctx.json {
                print_json(&created)?;
                return Ok(ExitCode::SUCCESS);
            }
            outln!("{}", created.uri);
            print_qr(ctx, &created.uri);
            let c = &created.connection;
            let budget = match c.budget_sats {
                Some(b) => format!("{b} sats {}", c.budget_period),
                None => "no budget".to_owned(),
            };
            eprintln!(
                "Connection {} \"{}\" on wallet {} ({budget}; methods {}).",
                c.id,
                c.name,
                c.wallet_id,
                c.methods.join(",")
            );
            eprintln!("The URI above is shown only this once and holds the connection's secret: give it to the app.");
        }
        NwcCommand::List => {
            let list = client.nwc_connections().await?;
            if ctx.json {
                print_json(&list)?;
            } else if list.is_empty() {
                outln!("No wallet connections.");
            } else {
                outln!(
                    "{:<38} {:<16} {:>10} {:<8} {:>10} {:<23} {:<8} LAST USED",
                    "ID",
                    "NAME",
                    "BUDGET",
                    "PERIOD",
                    "SPENT",
                    "CREATED",
                    "REVOKED"
                );
                for c in &list {
                    outln!(
                        "{:<38} {:<16} {:>10} {:<8} {:>10} {:<23} {:<8} {}",
                        c.id,
                        c.name,
                        c.budget_sats.map_or_else(|| "-".to_owned(), |b| b.to_string()),
                        c.budget_period,
                        c.spent_sats,
                        c.created_at.to_string(),
                        if c.revoked_at.is_some() { "yes" } else { "no" },
                        ts(&c.last_used_at)
                    );
                }
            }
        }
        NwcCommand::Revoke { id } => {
            client.nwc_connection_revoke(&id).await?;
            if ctx.json {
                print_json(&json!({ "id": id, "revoked": true }))?;
            } else {
                outln!("Revoked wallet connection {id}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash merchant ...`: stores and Greenfield API keys.
async fn merchant(ctx: &Ctx, cmd: MerchantCommand) -> Result<ExitCode> {
    let client = ctx.authed().await?;
    match cmd {
        MerchantCommand::Store(MerchantStoreCommand::Create { name, currency }) => {
            let store = client.merchant_store_create(&name, currency.as_deref()).await?;
            if ctx.json {
                print_json(&store)?;
            } else {
                outln!("{}", store.id);
                eprintln!(
                    "Store \"{}\" ({}) settles into your default wallet.",
                    store.name, store.default_currency
                );
            }
        }
        MerchantCommand::Store(MerchantStoreCommand::List) => {
            let stores = client.merchant_stores().await?;
            if ctx.json {
                print_json(&stores)?;
            } else if stores.is_empty() {
                outln!("No stores.");
            } else {
                outln!("{:<46} {:<8} {:<8} NAME", "ID", "CURRENCY", "ARCHIVED");
                for s in &stores {
                    let archived = if s.archived { "yes" } else { "no" };
                    outln!("{:<46} {:<8} {:<8} {}", s.id, s.default_currency, archived, s.name);
                }
            }
        }
        MerchantCommand::Key(MerchantKeyCommand::Create { label, permissions }) => {
            let made = client.merchant_api_key_create(&label, &permissions).await?;
            if ctx.json {
                print_json(&made)?;
            } else {
                outln!("{}", made.secret);
                eprintln!(
                    "Key {} ({}). It is shown only this once: use it as `Authorization: token KEY`.",
                    made.api_key.id,
                    made.api_key.permissions.join(" ")
                );
            }
        }
        MerchantCommand::Key(MerchantKeyCommand::List) => {
            let keys = client.merchant_api_keys().await?;
            if ctx.json {
                print_json(&keys)?;
            } else if keys.is_empty() {
                outln!("No merchant API keys.");
            } else {
                outln!("{:<34} {:<23} {:<16} PERMISSIONS", "ID", "CREATED", "LABEL");
                for k in &keys {
                    outln!(
                        "{:<34} {:<23} {:<16} {}",
                        k.id,
                        k.created_at.to_string(),
                        k.label,
                        k.permissions.join(" ")
                    );
                }
            }
        }
        MerchantCommand::Invoice(cmd) => return merchant_invoice(ctx, &client, cmd).await,
        MerchantCommand::Webhook(cmd) => return merchant_webhook(ctx, &client, cmd).await,
        MerchantCommand::Key(MerchantKeyCommand::Revoke { id }) => {
            client.merchant_api_key_revoke(&id).await?;
            if ctx.json {
                print_json(&json!({ "id": id, "revoked": true }))?;
            } else {
                outln!("Revoked merchant API key {id}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash merchant invoice ...`: a store's invoices over the Greenfield API.
async fn merchant_invoice(ctx: &Ctx, client: &Client, cmd: MerchantInvoiceCommand) -> Result<ExitCode> {
    match cmd {
        MerchantInvoiceCommand::Create {
            store,
            amount,
            currency,
            order_id,
            item,
            expires_in,
        } => {
            let mut metadata = serde_json::Map::new();
            if let Some(order) = order_id {
                metadata.insert("orderId".into(), json!(order));
            }
            if let Some(item) = item {
                metadata.insert("itemDesc".into(), json!(item));
            }
            let mut request = json!({ "amount": amount, "currency": currency, "metadata": metadata });
            if let Some(minutes) = expires_in {
                request["checkout"] = json!({ "expirationMinutes": minutes });
            }
            let created = client
                .merchant_invoice_create(&store, &request, &new_idempotency_key())
                .await?;
            let id = created["id"].as_str().unwrap_or_default().to_string();
            let invoice = client.merchant_invoice(&id).await?;
            if ctx.json {
                print_json(&invoice)?;
            } else {
                outln!("{id}");
                eprint!("{}", invoice_text(&invoice));
            }
        }
        MerchantInvoiceCommand::List { store, status } => {
            let invoices = client.merchant_invoices(&store, status.as_deref()).await?;
            let list = invoices.as_array().cloned().unwrap_or_default();
            if ctx.json {
                print_json(&invoices)?;
            } else if list.is_empty() {
                outln!("No invoices.");
            } else {
                outln!(
                    "{:<24} {:<11} {:<12} {:>14} {:<5} ORDER",
                    "ID",
                    "STATUS",
                    "ADDITIONAL",
                    "AMOUNT",
                    "CUR"
                );
                for i in &list {
                    outln!(
                        "{:<24} {:<11} {:<12} {:>14} {:<5} {}",
                        i["id"].as_str().unwrap_or_default(),
                        i["status"].as_str().unwrap_or_default(),
                        i["additionalStatus"].as_str().unwrap_or_default(),
                        i["amount"].as_str().unwrap_or_default(),
                        i["currency"].as_str().unwrap_or_default(),
                        i["metadata"]["orderId"].as_str().unwrap_or_default()
                    );
                }
            }
        }
        MerchantInvoiceCommand::Show { id } => {
            let invoice = client.merchant_invoice(&id).await?;
            if ctx.json {
                print_json(&invoice)?;
            } else {
                outln!("{}", invoice_text(&invoice));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash merchant webhook ...`: a store's webhooks over the Greenfield API.
async fn merchant_webhook(ctx: &Ctx, client: &Client, cmd: MerchantWebhookCommand) -> Result<ExitCode> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match cmd {
        MerchantWebhookCommand::Add {
            store,
            url,
            events,
            secret,
        } => {
            let authorized = if events.is_empty() {
                json!({ "everything": true })
            } else {
                json!({ "everything": false, "specificEvents": events })
            };
            let request = json!({ "url": url, "secret": secret, "authorizedEvents": authorized });
            let made = client.merchant_webhook_create(&store, &request).await?;
            if ctx.json {
                print_json(&made)?;
            } else {
                outln!("{}", s(&made["id"]));
                eprintln!(
                    "Webhook to {}. Its secret, shown only this once: {}\nCheck each delivery's \
                     BTCPay-Sig header: sha256=HMAC-SHA256(secret, body).",
                    s(&made["url"]),
                    s(&made["secret"])
                );
            }
        }
        MerchantWebhookCommand::List { store } => {
            let hooks = client.merchant_webhooks(&store).await?;
            if ctx.json {
                print_json(&hooks)?;
            } else if hooks.as_array().is_none_or(Vec::is_empty) {
                outln!("No webhooks.");
            } else {
                outln!("{:<24} {:<8} {:<30} URL", "ID", "ENABLED", "EVENTS");
                for h in hooks.as_array().into_iter().flatten() {
                    let events = if h["authorizedEvents"]["everything"] == json!(true) {
                        "everything".to_string()
                    } else {
                        h["authorizedEvents"]["specificEvents"]
                            .as_array()
                            .map(|e| e.iter().map(&s).collect::<Vec<_>>().join(","))
                            .unwrap_or_default()
                    };
                    outln!(
                        "{:<24} {:<8} {:<30} {}",
                        s(&h["id"]),
                        h["enabled"].as_bool().unwrap_or(false),
                        events,
                        s(&h["url"])
                    );
                }
            }
        }
        MerchantWebhookCommand::Deliveries { store, webhook } => {
            let deliveries = client.merchant_webhook_deliveries(&store, &webhook).await?;
            if ctx.json {
                print_json(&deliveries)?;
            } else if deliveries.as_array().is_none_or(Vec::is_empty) {
                outln!("No deliveries.");
            } else {
                outln!("{:<24} {:<12} {:<5} {:<12} ERROR", "ID", "STATUS", "HTTP", "TIME");
                for d in deliveries.as_array().into_iter().flatten() {
                    outln!(
                        "{:<24} {:<12} {:<5} {:<12} {}",
                        s(&d["id"]),
                        s(&d["status"]),
                        d["httpCode"].as_i64().map(|c| c.to_string()).unwrap_or_default(),
                        d["timestamp"].as_i64().unwrap_or_default(),
                        s(&d["errorMessage"])
                    );
                }
            }
        }
        MerchantWebhookCommand::Redeliver {
            store,
            webhook,
            delivery,
        } => {
            let again = client.merchant_webhook_redeliver(&store, &webhook, &delivery).await?;
            if ctx.json {
                print_json(&json!({ "deliveryId": again }))?;
            } else {
                outln!("{}", again.as_str().unwrap_or_default());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An invoice for a terminal: its amount and status, where to pay it (with a QR code of the
/// payment link: BIP21 with `lightning=`, or the BOLT11 alone), and its payments.
fn invoice_text(invoice: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut out = format!(
        "Invoice {}: {} {} ({} paid), {} {}\nCheckout: {}\n",
        s(&invoice["id"]),
        s(&invoice["amount"]),
        s(&invoice["currency"]),
        s(&invoice["paidAmount"]),
        s(&invoice["status"]),
        s(&invoice["additionalStatus"]),
        s(&invoice["checkoutLink"]),
    );
    let methods = invoice["paymentMethods"].as_array().cloned().unwrap_or_default();
    let link = methods
        .iter()
        .find(|m| m["paymentMethodId"] == "BTC-CHAIN")
        .or_else(|| methods.first())
        .map(|m| s(&m["paymentLink"]));
    for m in &methods {
        out.push_str(&format!(
            "{}: {} BTC due of {}, to {}\n",
            s(&m["paymentMethodId"]),
            s(&m["due"]),
            s(&m["amount"]),
            s(&m["destination"])
        ));
        for p in m["payments"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  paid {} BTC ({}) {}\n",
                s(&p["value"]),
                s(&p["status"]),
                s(&p["id"])
            ));
        }
    }
    let open = invoice["status"] == "New";
    if let (true, Some(link)) = (open, link.filter(|l| !l.is_empty())) {
        if let Ok(qr) = qr_text(&link) {
            out.push_str(&qr);
        }
        out.push_str(&format!("{link}\n"));
    }
    out
}

/// `flash withdraw-link ...`: LNURL-withdraw links.
async fn withdraw_link(ctx: &Ctx, cmd: WithdrawLinkCommand) -> Result<ExitCode> {
    let client = ctx.authed().await?;
    match cmd {
        WithdrawLinkCommand::Create {
            max_sats,
            min,
            uses,
            expires_in,
            title,
            wallet,
        } => {
            let input = WithdrawLinkCreateInput {
                wallet_id: wallet,
                min_amount: min,
                max_amount: max_sats,
                uses,
                expires_in,
                title,
            };
            let created = client.lnurl_withdraw_create(&input).await?;
            if ctx.json {
                print_json(&created)?;
                return Ok(ExitCode::SUCCESS);
            }
            outln!("{}", created.lnurl);
            print_qr(ctx, &created.lnurl.to_ascii_uppercase());
            let l = &created.link;
            eprintln!(
                "Withdraw link {}: {} to {} sats per use, {} use(s), from wallet {}, expires {}.",
                l.id,
                l.min_amount,
                l.max_amount,
                l.uses_total,
                l.wallet_id,
                ts(&l.expires_at)
            );
            eprintln!("The LNURL above is shown only this once: whoever holds it can withdraw.");
        }
        WithdrawLinkCommand::List => {
            let links = client.lnurl_withdraw_links().await?;
            if ctx.json {
                print_json(&links)?;
            } else if links.is_empty() {
                outln!("No withdraw links.");
            } else {
                outln!(
                    "{:<38} {:<16} {:>8} {:>8} {:>9} {:<23} {:<8}",
                    "ID",
                    "TITLE",
                    "MIN",
                    "MAX",
                    "USES LEFT",
                    "EXPIRES",
                    "REVOKED"
                );
                for l in &links {
                    outln!(
                        "{:<38} {:<16} {:>8} {:>8} {:>9} {:<23} {:<8}",
                        l.id,
                        l.title,
                        l.min_amount,
                        l.max_amount,
                        format!("{}/{}", l.uses_left, l.uses_total),
                        ts(&l.expires_at),
                        if l.revoked { "yes" } else { "no" }
                    );
                }
            }
        }
        WithdrawLinkCommand::Revoke { id } => {
            client.lnurl_withdraw_revoke(&id).await?;
            if ctx.json {
                print_json(&json!({ "id": id, "revoked": true }))?;
            } else {
                outln!("Revoked withdraw link {id}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash rewards ...`: a store's rewards programs.
async fn rewards(ctx: &Ctx, cmd: RewardsCommand) -> Result<ExitCode> {
    let client = ctx.authed().await?;
    let program = match cmd {
        RewardsCommand::Create {
            name,
            store,
            budget,
            rate,
            fixed,
            card_only,
            min_purchase,
            min_reward,
            max_reward,
            customer_cap,
            cooldown,
            duration,
            claim_days,
        } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let ends_at = duration
                .map(|secs| i64::try_from(now.saturating_add(secs)))
                .transpose()
                .context("the duration is too long")?;
            let input = RewardProgramCreateInput {
                store_id: store,
                name,
                budget,
                rate_basis_points: rate,
                fixed,
                card_only,
                min_purchase,
                min_reward,
                max_reward,
                customer_cap,
                cooldown_seconds: cooldown,
                claim_days,
                ends_at,
            };
            client.reward_program_create(&input).await?
        }
        RewardsCommand::Status { id: Some(id), .. } => client.reward_program(&id).await?,
        RewardsCommand::Status { id: None, store } => {
            let store = store.context("name a program or a --store")?;
            let programs = client.reward_programs(&store).await?;
            if ctx.json {
                print_json(&programs)?;
            } else if programs.is_empty() {
                outln!("No rewards programs.");
            } else {
                outln!(
                    "{:<34} {:<20} {:<7} {:>12} {:>12} {:>12} {:>7}",
                    "ID",
                    "NAME",
                    "STATUS",
                    "BUDGET",
                    "GRANTED",
                    "LEFT",
                    "GRANTS"
                );
                for p in &programs {
                    outln!(
                        "{:<34} {:<20} {:<7} {:>12} {:>12} {:>12} {:>7}",
                        p.id,
                        p.name,
                        p.status,
                        p.budget,
                        p.granted,
                        p.left,
                        p.grants
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        RewardsCommand::End { id } => client.reward_program_end(&id).await?,
    };
    if ctx.json {
        print_json(&program)?;
    } else {
        print_program(&program);
    }
    Ok(ExitCode::SUCCESS)
}

/// A rewards program, one `field: value` per line.
fn print_program(p: &RewardProgram) {
    let reward = match (p.rate_basis_points, p.fixed) {
        (Some(bps), _) => format!("{}.{:02}% of the purchase", bps / 100, bps % 100),
        (None, Some(fixed)) => format!("{fixed} sats per purchase"),
        (None, None) => "-".to_owned(),
    };
    let optional = |v: Option<i64>, unit: &str| v.map_or_else(|| "-".to_owned(), |v| format!("{v} {unit}"));
    outln!("id:            {}", p.id);
    outln!("name:          {}", p.name);
    outln!("store:         {}", p.store_id.as_deref().unwrap_or("-"));
    outln!("status:        {}", p.status);
    outln!(
        "reward:        {reward}{}",
        if p.card_only { ", Flash Card purchases only" } else { "" }
    );
    outln!("min purchase:  {} sats", p.min_purchase);
    outln!("min reward:    {} sats", p.min_reward);
    outln!("max reward:    {}", optional(p.max_reward, "sats"));
    outln!("customer cap:  {}", optional(p.customer_cap, "sats"));
    outln!("cooldown:      {}", optional(p.cooldown_seconds, "s"));
    outln!("budget:        {} sats", p.budget);
    outln!("granted:       {} sats in {} grants", p.granted, p.grants);
    outln!("left:          {} sats", p.left);
    outln!("held:          {} sats", p.held);
    outln!("returned:      {} sats", p.returned);
    outln!("claim links:   {} days", p.claim_days);
    if let Some(end) = &p.ends_at {
        outln!("ends at:       {end}");
    }
}

/// `flash card ...`: Flash Cards (Bolt Cards).
async fn card(ctx: &Ctx, cmd: CardCommand) -> Result<ExitCode> {
    let client = ctx.authed().await?;
    let changed = match cmd {
        CardCommand::Create {
            name,
            tap_limit,
            day_limit,
            wallet,
        } => {
            let input = CardCreateInput {
                name,
                wallet_id: wallet,
                tap_limit,
                day_limit,
            };
            let created = client.card_create(&input).await?;
            if ctx.json {
                print_json(&created)?;
                return Ok(ExitCode::SUCCESS);
            }
            outln!("{}", created.program_deeplink);
            print_qr(ctx, &created.program_deeplink);
            let c = &created.card;
            eprintln!(
                "Card {} \"{}\" on wallet {}: up to {} sats per tap, {} sats per 24 hours.",
                c.id, c.name, c.wallet_id, c.tap_limit, c.day_limit
            );
            eprintln!(
                "Scan the link above with the Bolt Card NFC Programmer app within an hour, then hold the card to the phone; it is shown only this once."
            );
            return Ok(ExitCode::SUCCESS);
        }
        CardCommand::List => {
            let cards = client.cards().await?;
            if ctx.json {
                print_json(&cards)?;
            } else if cards.is_empty() {
                outln!("No cards.");
            } else {
                outln!(
                    "{:<38} {:<16} {:<11} {:>10} {:>10} {:>10} {:>7} {:>8}",
                    "ID",
                    "NAME",
                    "STATE",
                    "TAP LIMIT",
                    "DAY LIMIT",
                    "PIN",
                    "KEY VER",
                    "COUNTER"
                );
                for c in &cards {
                    let pin = c.pin_limit.map_or_else(|| "-".to_owned(), |limit| limit.to_string());
                    outln!(
                        "{:<38} {:<16} {:<11} {:>10} {:>10} {:>10} {:>7} {:>8}",
                        c.id,
                        c.name,
                        c.state,
                        c.tap_limit,
                        c.day_limit,
                        pin,
                        c.key_version,
                        c.counter
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        CardCommand::ResetLink => {
            let link = client.card_reset_deeplink().await?;
            if ctx.json {
                print_json(&json!({ "resetDeeplink": link }))?;
                return Ok(ExitCode::SUCCESS);
            }
            outln!("{link}");
            print_qr(ctx, &link);
            eprintln!(
                "Scan the link above with the Bolt Card NFC Programmer app, then hold the card to the phone: it gets its factory keys back and is wiped here."
            );
            return Ok(ExitCode::SUCCESS);
        }
        // clap makes --pin-limit and --remove exclusive, and one of them required.
        CardCommand::Pin {
            id,
            pin_limit,
            remove: _,
        } => {
            let changed = match pin_limit {
                Some(limit) => {
                    let pin = read_pin()?;
                    client.card_pin_set(&id, Some((&pin, limit))).await?
                }
                None => client.card_pin_set(&id, None).await?,
            };
            if ctx.json {
                print_json(&changed)?;
            } else if let Some(limit) = changed.pin_limit {
                outln!(
                    "Card {} \"{}\" asks for its PIN for withdrawals of {} sats or more.",
                    changed.id,
                    changed.name,
                    limit
                );
            } else {
                outln!("Card {} \"{}\" has no PIN.", changed.id, changed.name);
            }
            return Ok(ExitCode::SUCCESS);
        }
        CardCommand::Limits {
            id,
            tap_limit,
            day_limit,
        } => client.card_limits_update(&id, tap_limit, day_limit).await?,
        CardCommand::Disable { id } => client.card_set_state(&id, CardStateChange::Disable).await?,
        CardCommand::Enable { id } => client.card_set_state(&id, CardStateChange::Enable).await?,
        CardCommand::Wipe { id, yes } => {
            confirm(
                yes,
                &format!("Wipe card {id}?"),
                "not wiped",
                &format!("wiping card {id}; run `flash card wipe` at a terminal, or pass --yes to wipe without asking"),
            )?;
            client.card_set_state(&id, CardStateChange::Wipe).await?
        }
    };
    if ctx.json {
        print_json(&changed)?;
    } else {
        outln!(
            "Card {} \"{}\" is {}: up to {} sats per tap, {} sats per 24 hours.",
            changed.id,
            changed.name,
            changed.state,
            changed.tap_limit,
            changed.day_limit
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash contacts ...`.
async fn contacts(ctx: &Ctx, cmd: ContactsCommand) -> Result<ExitCode> {
    let client = ctx.authed().await?;
    match cmd {
        ContactsCommand::List => {
            let list = client.contacts().await?;
            if ctx.json {
                print_json(&list)?;
            } else if list.is_empty() {
                outln!("No contacts yet: they appear once you pay or are paid by a user of this bank.");
            } else {
                outln!("{:<24} {:<24} TRANSACTIONS", "USERNAME", "ALIAS");
                for c in &list {
                    outln!(
                        "{:<24} {:<24} {}",
                        format!("@{}", c.username),
                        c.alias.as_deref().unwrap_or("-"),
                        c.transactions_count
                    );
                }
            }
        }
        ContactsCommand::Alias { username, alias } => {
            let contact = client.contact_set_alias(&username, &alias).await?;
            if ctx.json {
                print_json(&contact)?;
            } else {
                outln!(
                    "@{} is now \"{}\" in your contacts.",
                    contact.username,
                    contact.alias.as_deref().unwrap_or(&alias)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn apikey(ctx: &Ctx, cmd: ApiKeyCommand) -> Result<ExitCode> {
    let client = ctx.authed().await?;
    match cmd {
        ApiKeyCommand::Create {
            name,
            mut scopes,
            expire_days,
            ips,
        } => {
            if scopes.is_empty() {
                scopes.push(Scope::Read);
            }
            scopes.dedup();
            let input = ApiKeyCreateInput {
                name,
                scopes,
                expire_in_days: expire_days,
                ip_allowlist: (!ips.is_empty()).then_some(ips),
            };
            let created = client.api_key_create(&input).await?;
            if ctx.json {
                print_json(&created)?;
            } else {
                let k = &created.api_key;
                outln!(
                    "Created API key {} \"{}\" (scopes {}, expires {}).",
                    k.id,
                    k.name,
                    scope_list(&k.scopes),
                    ts(&k.expires_at)
                );
                outln!("Secret (shown only this once): {}", created.api_key_secret);
            }
        }
        ApiKeyCommand::List => {
            let keys = client.api_keys().await?;
            if ctx.json {
                print_json(&keys)?;
            } else if keys.is_empty() {
                outln!("No API keys.");
            } else {
                outln!(
                    "{:<38} {:<16} {:<18} {:<23} {:<23} {:<8} LAST USED",
                    "ID",
                    "NAME",
                    "SCOPES",
                    "CREATED",
                    "EXPIRES",
                    "REVOKED"
                );
                for k in &keys {
                    outln!(
                        "{:<38} {:<16} {:<18} {:<23} {:<23} {:<8} {}",
                        k.id,
                        k.name,
                        scope_list(&k.scopes),
                        k.created_at.to_string(),
                        ts(&k.expires_at),
                        if k.revoked { "yes" } else { "no" },
                        ts(&k.last_used_at)
                    );
                }
            }
        }
        ApiKeyCommand::Revoke { id } => {
            let revoked = client.api_key_revoke(&id).await?;
            if ctx.json {
                print_json(&revoked)?;
            } else {
                outln!("Revoked API key {}.", revoked.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn admin(ctx: &Ctx, cmd: AdminCommand) -> Result<ExitCode> {
    let client = ctx.admin()?;
    match cmd {
        AdminCommand::Ledger(AdminLedgerCommand::Verify) => {
            let v = client.ledger_verify().await?;
            if ctx.json {
                print_json(&v)?;
            } else {
                outln!(
                    "Ledger {}: {} accounts, {} journals checked.",
                    if v.ok { "OK" } else { "NOT OK" },
                    v.accounts_checked,
                    v.journals_checked
                );
                for c in &v.currencies {
                    outln!("  {}", currency_total_line(c));
                }
                for p in &v.problems {
                    outln!("  problem: {p}");
                }
            }
            return Ok(if v.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        AdminCommand::Wallet(AdminWalletCommand::Fund { wallet_id, sats }) => {
            let tx = client.wallet_fund(&wallet_id, sats).await?;
            if ctx.json {
                print_json(&json!({ "walletId": wallet_id, "amount": sats, "transaction": tx }))?;
            } else {
                let note = tx.map(|t| format!(" (transaction {})", t.id)).unwrap_or_default();
                outln!("Funded wallet {wallet_id} with {sats} sats{note}.");
            }
        }
        AdminCommand::Account(cmd) => {
            let details = match cmd {
                AdminAccountCommand::Level { account_id, level } => {
                    client.account_update_level(&account_id, level).await?
                }
                AdminAccountCommand::Status {
                    account_id,
                    status,
                    comment,
                } => {
                    client
                        .account_update_status(&account_id, status, comment.as_deref())
                        .await?
                }
            };
            if ctx.json {
                print_json(&details)?;
            } else {
                outln!(
                    "Account {}: level {}, status {}.",
                    details.id,
                    details.level,
                    details.status
                );
            }
        }
        AdminCommand::Lightning(cmd) => return admin_lightning(ctx, &client, cmd).await,
        AdminCommand::Onchain(cmd) => return admin_onchain(ctx, &client, cmd).await,
        AdminCommand::Chain(cmd) => return admin_chain(ctx, &client, cmd).await,
        AdminCommand::Cold(cmd) => return admin_cold(ctx, &client, cmd).await,
        AdminCommand::Ecash(cmd) => return admin_ecash(ctx, &client, cmd).await,
        AdminCommand::Journal { id } => {
            let j = client.journal(&id).await?;
            if ctx.json {
                print_json(&j)?;
            } else {
                outln!("Journal {} ({}) at {}", j.id, j.kind, j.created_at);
                if let Some(memo) = &j.memo {
                    outln!("Memo: {memo}");
                }
                outln!("{:<40} {:<8} {:>16}", "ACCOUNT", "CURRENCY", "AMOUNT");
                for e in &j.entries {
                    outln!("{:<40} {:<8} {:>16}", e.account_id, e.currency, e.amount);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the liquidity manager's view.
fn print_liquidity(l: &LightningLiquidity) {
    let policy = match l.in_policy {
        Some(true) => "in policy",
        Some(false) => "OUT OF POLICY",
        None => "not checked yet",
    };
    outln!("Liquidity:       {policy} (checked {})", ts(&l.checked_at));
    outln!("Active channels: {}", l.active_channels);
    outln!(
        "Outbound:        {} sats ({}%, minimum {}%)",
        l.outbound,
        l.outbound_percent,
        l.min_outbound_percent
    );
    outln!(
        "Inbound:         {} sats ({}%, minimum {}%)",
        l.inbound,
        l.inbound_percent,
        l.min_inbound_percent
    );
    if let Some(onchain) = l.onchain {
        outln!("On-chain:        {onchain} sats");
    }
    if !l.issues.is_empty() {
        outln!("Issues:          {}", l.issues.join(", "));
    }
    if !l.actions.is_empty() {
        outln!("Recent actions:");
        for a in &l.actions {
            outln!(
                "  {:<23} {:<12} {:>12} {:<4} {}",
                a.created_at.to_string(),
                a.kind,
                format!("{} sats", a.amount),
                if a.ok { "ok" } else { "FAIL" },
                a.detail
            );
        }
    }
}

/// `flash admin lightning ...`.
async fn admin_lightning(ctx: &Ctx, client: &Client, cmd: AdminLightningCommand) -> Result<ExitCode> {
    match cmd {
        AdminLightningCommand::Pay { invoice, sats } => {
            let payment_request = parse_invoice_arg(&invoice).map_err(ClientError::from)?;
            client.dev_lightning_pay_invoice(&payment_request, sats).await?;
            if ctx.json {
                print_json(&json!({ "paid": true, "paymentRequest": payment_request }))?;
            } else {
                outln!("Paid the invoice from the simulated outside world.");
            }
        }
        AdminLightningCommand::Node => {
            let node = client.lightning_node().await?;
            if ctx.json {
                print_json(&node)?;
                return Ok(ExitCode::SUCCESS);
            }
            outln!("Node:     {} ({})", node.pubkey, node.alias);
            outln!(
                "Network:  {}, block {}, {}{}",
                node.network,
                node.block_height,
                if node.synced { "synced" } else { "NOT synced" },
                if node.simulated { ", simulated" } else { "" }
            );
            outln!("Channels: {}", node.channels.len());
            if !node.channels.is_empty() {
                outln!(
                    "  {:<20} {:<20} {:>14} {:>14} {:>14} ACTIVE",
                    "ID",
                    "PEER",
                    "CAPACITY",
                    "LOCAL",
                    "REMOTE"
                );
            }
            for c in &node.channels {
                let peer: String = c.peer.chars().take(20).collect();
                outln!(
                    "  {:<20} {:<20} {:>14} {:>14} {:>14} {}",
                    c.id,
                    peer,
                    c.capacity,
                    c.local_balance,
                    c.remote_balance,
                    if c.active { "yes" } else { "no" }
                );
            }
        }
        AdminLightningCommand::Liquidity { check } => {
            let liquidity = if check {
                client.lightning_liquidity_check().await?
            } else {
                client.lightning_liquidity().await?
            };
            if ctx.json {
                print_json(&liquidity)?;
            } else {
                print_liquidity(&liquidity);
            }
            if check && liquidity.in_policy == Some(false) {
                return Ok(ExitCode::FAILURE);
            }
        }
        AdminLightningCommand::Reconcile => {
            let r = client.lightning_reconcile().await?;
            if ctx.json {
                print_json(&r)?;
            } else {
                outln!(
                    "Reconciled {} pending payments: {} succeeded, {} failed, {} still pending.",
                    r.checked,
                    r.succeeded,
                    r.failed,
                    r.pending
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash admin onchain ...`.
async fn admin_onchain(ctx: &Ctx, client: &Client, cmd: AdminOnchainCommand) -> Result<ExitCode> {
    match cmd {
        AdminOnchainCommand::Status => {
            let s = client.onchain_status().await?;
            if ctx.json {
                print_json(&s)?;
                return Ok(ExitCode::SUCCESS);
            }
            let tip = s
                .tip_height
                .map_or_else(|| "not synced yet".to_owned(), |h| format!("tip {h}"));
            outln!("Chain:            {}, {tip}", s.source);
            outln!("Confirmations:    {}", s.confirmations);
            match (s.hot_balance, s.hot_unconfirmed) {
                (Some(confirmed), unconfirmed) => outln!(
                    "Hot wallet:       {confirmed} sats confirmed, {:+} sats unconfirmed",
                    unconfirmed.unwrap_or(0)
                ),
                (None, _) => outln!("Hot wallet:       not synced yet"),
            }
            outln!(
                "Pending deposits: {} ({} sats)",
                s.pending_deposits,
                s.pending_deposit_amount
            );
            outln!(
                "Queued payouts:   {} ({} sats)",
                s.queued_payouts,
                s.queued_payout_amount
            );
        }
        AdminOnchainCommand::Queue { first } => {
            let queue = client.onchain_payout_queue(first).await?;
            if ctx.json {
                print_json(&queue)?;
            } else if queue.is_empty() {
                outln!("No payouts waiting.");
            } else {
                outln!(
                    "{:<23} {:<44} {:>14} {:>10} {:<9} {:<8} {:<38} ID",
                    "QUEUED",
                    "ADDRESS",
                    "AMOUNT",
                    "FEE MAX",
                    "SPEED",
                    "STATUS",
                    "WALLET"
                );
                for p in &queue {
                    outln!(
                        "{:<23} {:<44} {:>14} {:>10} {:<9} {:<8} {:<38} {}",
                        p.created_at.to_string(),
                        p.address,
                        format!("{} sats", p.amount),
                        p.fee_reserved,
                        p.speed,
                        p.status,
                        p.wallet_id,
                        p.id
                    );
                }
            }
        }
        AdminOnchainCommand::Batches { first } => {
            let batches = client.onchain_batches(first).await?;
            if ctx.json {
                print_json(&batches)?;
            } else if batches.is_empty() {
                outln!("No payout transactions yet.");
            } else {
                outln!(
                    "{:<23} {:<10} {:>8} {:>6} {:>9} {:>7} TXID",
                    "SIGNED",
                    "STATUS",
                    "FEE",
                    "VSIZE",
                    "SAT/KVB",
                    "HEIGHT"
                );
                for b in &batches {
                    outln!(
                        "{:<23} {:<10} {:>8} {:>6} {:>9} {:>7} {}",
                        b.created_at.to_string(),
                        b.status,
                        b.fee,
                        b.vsize,
                        b.fee_rate,
                        b.confirmed_height.map_or_else(|| "-".to_owned(), |h| h.to_string()),
                        b.tx_hash
                    );
                    if let Some(replaced) = &b.replaces {
                        outln!("  replaces {replaced}");
                    }
                    if let Some(why) = &b.failure {
                        outln!("  failed: {why}");
                    }
                }
            }
        }
        AdminOnchainCommand::BatchNow => {
            let r = client.onchain_batch_now().await?;
            if ctx.json {
                print_json(&r)?;
            } else {
                outln!(
                    "Broadcast {} transaction(s); settled {} payout(s).",
                    r.broadcast,
                    r.settled
                );
            }
        }
        AdminOnchainCommand::Reviews => {
            let reviews = client.onchain_reviews().await?;
            if ctx.json {
                print_json(&reviews)?;
            } else if reviews.is_empty() {
                outln!("No deposits under review.");
            }
            if !ctx.json {
                for r in &reviews {
                    outln!(
                        "{}  wallet {}  credited {} sats, {} held  {}",
                        r.outpoint,
                        r.wallet_id,
                        r.credited,
                        r.held,
                        r.reason.as_deref().unwrap_or("")
                    );
                }
            }
        }
        AdminOnchainCommand::Reclaim { outpoint } => {
            let r = client.onchain_review_reclaim(&outpoint).await?;
            if ctx.json {
                print_json(&r)?;
            } else {
                outln!(
                    "Reclaimed {} sats from the wallet; {} sats had been spent (the bank's loss). The deposit counts as dropped.",
                    r.reclaimed,
                    r.shortfall
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What a currency's ledger total means: every movement is a journal whose entries sum to
/// zero, so all accounts together sum to zero, or the ledger is broken.
fn currency_total_line(c: &CurrencyTotal) -> String {
    let u = match unit(&c.currency) {
        "" => "units",
        u => u,
    };
    if c.total == 0 {
        format!("{}: all ledger accounts sum to 0 {u} (balanced)", c.currency)
    } else {
        format!(
            "{}: all ledger accounts sum to {} {u}, not 0: NOT BALANCED",
            c.currency, c.total
        )
    }
}

/// `flash admin chain ...` (dev chain simulator).
async fn admin_chain(ctx: &Ctx, client: &Client, cmd: AdminChainCommand) -> Result<ExitCode> {
    match cmd {
        AdminChainCommand::Deposit { address, sats } => {
            let address = parse_onchain_address(&address).map_err(ClientError::from)?;
            let txid = client.dev_chain_deposit(&address, sats).await?;
            if ctx.json {
                print_json(&json!({ "txHash": txid, "address": address, "amount": sats }))?;
            } else {
                outln!("{txid}");
                eprintln!(
                    "Paid {sats} sats to {address} from the simulated outside world (in the mempool: mine to confirm)."
                );
            }
        }
        AdminChainCommand::Mine { blocks } => {
            let height = client.dev_chain_mine(blocks).await?;
            if ctx.json {
                print_json(&json!({ "height": height }))?;
            } else {
                outln!("Mined {blocks} block(s); the tip is at {height}.");
            }
        }
        AdminChainCommand::Reorg { depth, drop } => {
            let height = client.dev_chain_reorg(depth, drop).await?;
            if ctx.json {
                print_json(&json!({ "height": height }))?;
            } else {
                let fate = if drop {
                    "their transactions dropped"
                } else {
                    "their transactions back in the mempool"
                };
                outln!("Replaced the top {depth} block(s), {fate}; the tip is at {height}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line about a sweep.
fn sweep_line(s: &ColdSweep) -> String {
    let direction = match s.direction.as_str() {
        "to_cold" => "hot → cold",
        "to_hot" => "cold → hot",
        other => other,
    };
    format!(
        "{:<23} {:<10} {:<19} {:>14} {:>7}  {}  {}",
        s.created_at.to_string(),
        direction,
        s.status,
        format!("{} sats", s.amount),
        s.fee,
        s.id,
        s.tx_hash.as_deref().unwrap_or("-")
    )
}

/// Prints cold storage's balance, policy and sweeps.
fn print_cold_storage(c: &ColdStorage) {
    let sats = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    outln!(
        "Cold storage: {} sats confirmed, {} sats unconfirmed",
        sats(c.confirmed_balance),
        sats(c.unconfirmed_balance)
    );
    outln!(
        "Policy:       above {} sats the hot wallet is swept down to {} sats (sweeps of at least {} sats)",
        sats(c.max_hot_balance),
        sats(c.min_hot_balance),
        sats(c.min_rebalance)
    );
    if c.sweeps.is_empty() {
        outln!("No sweeps yet.");
        return;
    }
    outln!(
        "{:<23} {:<10} {:<19} {:>14} {:>7}  {:<43}  TXID",
        "CREATED",
        "DIRECTION",
        "STATUS",
        "AMOUNT",
        "FEE",
        "ID"
    );
    for s in &c.sweeps {
        outln!("{}", sweep_line(s));
    }
    if c.sweeps.iter().any(|s| s.status == "awaiting_signatures") {
        outln!("(a sweep awaiting signatures has its PSBT in `flash --json admin cold status`)");
    }
}

/// Prints what a sweep does on stderr.
fn describe_sweep(s: &ColdSweep) {
    let direction = if s.direction == "to_hot" {
        "from cold storage to the hot wallet"
    } else {
        "from the hot wallet to cold storage"
    };
    eprintln!(
        "Sweep {}: {} sats {direction} ({}), fee {} sats, {}.",
        s.id, s.amount, s.address, s.fee, s.status
    );
    if let Some(txid) = &s.tx_hash {
        eprintln!("Transaction: {txid}");
    }
}

/// Writes `text` and a newline to `path` (replacing it).
fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, format!("{}\n", text.trim_end())).with_context(|| format!("writing {}", path.display()))
}

/// `flash admin cold ...`.
async fn admin_cold(ctx: &Ctx, client: &Client, cmd: AdminColdCommand) -> Result<ExitCode> {
    match cmd {
        AdminColdCommand::Status { first } => {
            let c = client.cold_storage(first).await?;
            if ctx.json {
                print_json(&c)?;
            } else if c.configured {
                print_cold_storage(&c);
            } else {
                outln!("No cold wallet is configured (flashd's [onchain.cold] section).");
            }
            if !c.configured {
                return Ok(ExitCode::FAILURE);
            }
        }
        AdminColdCommand::Sweep => {
            let sweep = client.cold_sweep_now().await?;
            if ctx.json {
                print_json(&json!({ "sweep": sweep }))?;
            } else {
                match &sweep {
                    Some(s) => {
                        outln!("{}", s.id);
                        describe_sweep(s);
                    }
                    None => outln!("No sweep: the hot wallet is within policy."),
                }
            }
        }
        AdminColdCommand::Psbt(AdminColdPsbtCommand::Create { sats, out }) => {
            let sweep = client.cold_psbt_create(sats).await?;
            let psbt = sweep
                .psbt
                .clone()
                .ok_or_else(|| anyhow!("the server did not return the PSBT of sweep {}", sweep.id))?;
            if let Some(out) = &out {
                write_text(out, &psbt)?;
            }
            if ctx.json {
                print_json(&sweep)?;
            } else {
                match &out {
                    Some(out) => eprintln!("PSBT written to {}.", out.display()),
                    None => outln!("{psbt}"),
                }
                describe_sweep(&sweep);
                eprintln!(
                    "Next: cosigners run `flash cold sign --psbt FILE --key KEYFILE --out SIGNED`, then \
                     `flash admin cold psbt finalize-broadcast --sweep {} SIGNED...`.",
                    sweep.id
                );
            }
        }
        AdminColdCommand::Psbt(AdminColdPsbtCommand::FinalizeBroadcast { sweep, files }) => {
            let mut psbts = Vec::with_capacity(files.len());
            for file in &files {
                let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
                decode_psbt(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
                psbts.push(text);
            }
            let done = client.cold_psbt_finalize_broadcast(&sweep, &psbts).await?;
            if ctx.json {
                print_json(&done)?;
            } else {
                outln!("{}", done.tx_hash.as_deref().unwrap_or("-"));
                describe_sweep(&done);
            }
        }
        AdminColdCommand::Psbt(AdminColdPsbtCommand::Cancel { sweep }) => {
            let cancelled = client.cold_psbt_cancel(&sweep).await?;
            if ctx.json {
                print_json(&cancelled)?;
            } else {
                outln!("Cancelled sweep {}.", cancelled.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the mint's books and keysets.
fn print_ecash_status(s: &EcashStatus) {
    outln!("Issued:      {} sats", s.issued);
    outln!("Spent:       {} sats", s.spent);
    outln!("Pending:     {} sats (in melts)", s.pending);
    outln!(
        "Outstanding: {} sats (ledger mint:outstanding {} sats)",
        s.outstanding,
        s.ledger_outstanding
    );
    outln!(
        "Quotes paid: {} sats (ledger mint:quotes {} sats)",
        s.quotes_paid,
        s.ledger_quotes
    );
    outln!(
        "Balanced:    {}",
        if s.balanced {
            "yes"
        } else {
            "NO: the notes and the ledger disagree"
        }
    );
    if s.keysets.is_empty() {
        outln!("No keysets.");
        return;
    }
    outln!("Keysets:");
    outln!("  {:<18} {:<6} {:<6} {:>9}", "ID", "UNIT", "ACTIVE", "FEE (PPK)");
    for k in &s.keysets {
        outln!(
            "  {:<18} {:<6} {:<6} {:>9}",
            k.id,
            k.unit,
            if k.active { "yes" } else { "no" },
            k.input_fee_ppk
        );
    }
}

/// `flash admin ecash ...`.
async fn admin_ecash(ctx: &Ctx, client: &Client, cmd: AdminEcashCommand) -> Result<ExitCode> {
    match cmd {
        AdminEcashCommand::Status => {
            let status = client.ecash_status().await?;
            if ctx.json {
                print_json(&status)?;
            } else {
                print_ecash_status(&status);
            }
            if !status.balanced {
                return Ok(ExitCode::FAILURE);
            }
        }
        AdminEcashCommand::Rotate => {
            let k = client.ecash_keyset_rotate().await?;
            if ctx.json {
                print_json(&k)?;
            } else {
                outln!(
                    "New {} keyset {} ({}, input fee {} ppk); the previous one stops signing and stays redeemable.",
                    k.unit,
                    k.id,
                    if k.active { "active" } else { "inactive" },
                    k.input_fee_ppk
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks `Sign? [y/N]` on the terminal unless `yes`, as [`confirm`] does.
fn confirm_signing(yes: bool) -> Result<()> {
    confirm(
        yes,
        "Sign?",
        "not signed",
        "the transaction above; run `flash cold sign` at a terminal, or pass --yes to sign without asking",
    )
}

/// A card's new PIN for `flash card pin`: never an argument (the shell history would keep
/// it). On a terminal it is typed twice without echo; otherwise it is the first line of stdin.
fn read_pin() -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the PIN from stdin")?;
        let pin = line.trim().to_owned();
        if pin.is_empty() {
            bail!("no PIN on stdin: give the PIN (4 to 8 digits) as its first line");
        }
        return Ok(pin);
    }
    let pin = read_hidden("PIN (4 to 8 digits): ")?;
    if pin.is_empty() {
        bail!("no PIN entered");
    }
    if read_hidden("The PIN again: ")? != pin {
        bail!("the two PINs differ: nothing was changed");
    }
    Ok(pin)
}

/// Reads a line from the terminal on stdin after printing `prompt` on stderr, with echo off
/// (`stty -echo`, restored afterwards); refuses when echo cannot be turned off.
fn read_hidden(prompt: &str) -> Result<String> {
    /// Turns the terminal's echo back on when dropped.
    struct EchoOff;
    impl Drop for EchoOff {
        fn drop(&mut self) {
            let _ = std::process::Command::new("stty").arg("echo").status();
        }
    }
    let off = std::process::Command::new("stty")
        .arg("-echo")
        .status()
        .is_ok_and(|s| s.success());
    if !off {
        bail!("cannot turn off the terminal's echo (stty -echo failed): give the PIN on stdin instead (`flash card pin ID --pin-limit SATS < pin.txt`)");
    }
    let echo_off = EchoOff;
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo_off);
    eprintln!();
    read.context("cannot read the PIN from the terminal")?;
    Ok(line.trim().to_owned())
}

/// Asks `QUESTION [y/N]` on the terminal (stderr, then a line of stdin) unless `yes`; refuses
/// without a terminal on stdin (nobody to ask: "NOT_DONE: stdin is not a terminal, so nobody
/// can confirm UNCONFIRMED"), and on any answer but y or yes.
fn confirm(yes: bool, question: &str, not_done: &str, unconfirmed: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("{not_done}: stdin is not a terminal, so nobody can confirm {unconfirmed}");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer from stdin")?;
    if !signing_confirmed(&answer) {
        bail!("{not_done}: the answer was not yes");
    }
    Ok(())
}

/// Warns when a key file can be read by other users.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                eprintln!(
                    "warning: {} can be read by other users (mode {mode:o}); run `chmod 600` on it",
                    path.display()
                );
            }
        }
    }
}

/// The JSON description of a key.
fn key_json(key: &CosignerKey, path: &Path) -> Result<serde_json::Value> {
    Ok(json!({
        "accountKey": key.account_key()?,
        "fingerprint": key.fingerprint(),
        "network": key.network(),
        "keyFile": path.display().to_string(),
    }))
}

/// `flash cold ...`: offline, never contacts a server.
fn cold(ctx: &Ctx, cmd: ColdCommand) -> Result<ExitCode> {
    match cmd {
        ColdCommand::Keygen { network, out } => {
            let key = CosignerKey::generate(network)?;
            key.save(&out)?;
            if ctx.json {
                print_json(&key_json(&key, &out)?)?;
            } else {
                outln!("{}", key.account_key()?);
                eprintln!(
                    "Wrote the {network} cosigner key {} to {} (mode 0600).",
                    key.fingerprint(),
                    out.display()
                );
                eprintln!("It is a SECRET: keep it offline and back it up.");
                eprintln!("Give the operator the account key above for [onchain.cold] cosigners.");
            }
        }
        ColdCommand::ShowKey { key: path } => {
            warn_if_readable_by_others(&path);
            let key = CosignerKey::load(&path)?;
            if ctx.json {
                print_json(&key_json(&key, &path)?)?;
            } else {
                outln!("{}", key.account_key()?);
            }
        }
        ColdCommand::Sign { psbt, key, out, yes } => {
            warn_if_readable_by_others(&key);
            let cosigner = CosignerKey::load(&key)?;
            let text = std::fs::read_to_string(&psbt).with_context(|| format!("reading {}", psbt.display()))?;
            let in_file = |e: ClientError| anyhow!("{}: {e}", psbt.display());
            // What it does, before this key's signatures; then everything signing checks, in
            // memory, so a PSBT that cannot be signed is refused before anyone is asked.
            let summary = cosigner.describe_psbt(&text).map_err(in_file)?;
            if !ctx.json || !yes {
                eprintln!("{summary}");
            }
            let signed = cosigner.sign_psbt(&text).map_err(in_file)?;
            // Nothing leaves this process unless the cosigner says so.
            confirm_signing(yes)?;
            if let Some(out) = &out {
                write_text(out, &signed.psbt)?;
            }
            if ctx.json {
                print_json(&json!({
                    "signedInputs": signed.signed_inputs,
                    "psbt": signed.psbt,
                    "out": out.as_ref().map(|o| o.display().to_string()),
                    "summary": signed.summary,
                }))?;
            } else {
                if out.is_none() {
                    outln!("{}", signed.psbt);
                }
                let to = out
                    .as_ref()
                    .map(|o| format!(", written to {}", o.display()))
                    .unwrap_or_default();
                eprintln!(
                    "Signed {} input(s) with key {} ({}){to}.",
                    signed.signed_inputs,
                    cosigner.fingerprint(),
                    cosigner.network()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
