//! `flash`: command-line client for a Flash bank server.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Serialize;
use serde_json::json;

use flash_cli::{
    new_idempotency_key, normalize_server, parse_invoice_arg, AdminAccountCommand, AdminCommand, AdminLedgerCommand,
    AdminLightningCommand, AdminWalletCommand, ApiKeyCommand, ApiKeyCreateInput, Cli, Client, ClientError, Command,
    CredentialStore, FeeArgs, HistoryArgs, InvoiceArgs, InvoiceCommand, InvoiceCreateRequest, LightningLiquidity,
    LoginArgs, PayArgs, PaymentResult, Scope, SendRequest, Timestamp, UsernameCommand,
};

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

    /// A client with `--token`/`FLASH_TOKEN` or the stored session token.
    fn authed(&self) -> Result<Client> {
        let token = match &self.token {
            Some(t) => t.clone(),
            None => CredentialStore::load_default()?
                .token(&self.server)
                .map(str::to_owned)
                .ok_or_else(|| ClientError::NotLoggedIn {
                    server: self.server.clone(),
                })?,
        };
        Ok(self.client()?.with_token(token))
    }

    /// A client with the admin key.
    fn admin(&self) -> Result<Client> {
        let key = self.admin_key.clone().ok_or(ClientError::NoAdminKey)?;
        Ok(self.client()?.with_admin_key(key))
    }
}

/// Prints a value as pretty JSON on stdout.
fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
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

/// Formats an optional timestamp.
fn ts(t: &Option<Timestamp>) -> String {
    t.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Ctx {
        server: normalize_server(&cli.server),
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
        Command::Invoice(args) => invoice(&ctx, args).await,
        Command::Fee(args) => fee(&ctx, args).await,
        Command::History(args) => history(&ctx, args).await,
        Command::Username(UsernameCommand::Set { name }) => {
            let user = ctx.authed()?.set_username(&name).await?;
            if ctx.json {
                print_json(&user)?;
            } else {
                println!("Username set to {}.", user.username.as_deref().unwrap_or(&name));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apikey(cmd) => apikey(&ctx, cmd).await,
        Command::Admin(cmd) => admin(&ctx, cmd).await,
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
    store.set_token(&ctx.server, &token);
    store.save()?;
    if ctx.json {
        print_json(&json!({ "loggedIn": true, "server": ctx.server }))?;
    } else if args.device {
        println!("Created a device account on {}; logged in.", ctx.server);
    } else {
        println!("Logged in to {}.", ctx.server);
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
        println!("Logged out of {}.", ctx.server);
    }
    Ok(ExitCode::SUCCESS)
}

async fn whoami(ctx: &Ctx) -> Result<ExitCode> {
    let me = ctx.authed()?.me().await?;
    if ctx.json {
        print_json(&me)?;
        return Ok(ExitCode::SUCCESS);
    }
    let or_none = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".to_owned());
    println!("User:           {}", me.id);
    println!("Username:       {}", or_none(&me.username));
    println!("Phone:          {}", or_none(&me.phone));
    println!(
        "Email:          {}",
        or_none(&me.email.as_ref().and_then(|e| e.address.clone()))
    );
    if let Some(account) = &me.default_account {
        println!("Account:        {} (level {})", account.id, account.level);
        println!("Default wallet: {}", account.default_wallet_id);
    }
    Ok(ExitCode::SUCCESS)
}

async fn balance(ctx: &Ctx) -> Result<ExitCode> {
    let me = ctx.authed()?.me().await?;
    let Some(account) = me.default_account else {
        bail!("this user has no account");
    };
    if ctx.json {
        print_json(&account.wallets)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<38} {:<8} {:>16} {:>16}",
        "WALLET", "CURRENCY", "BALANCE", "PENDING IN"
    );
    for w in &account.wallets {
        let mark = if w.id == account.default_wallet_id { "*" } else { " " };
        let u = unit(&w.wallet_currency);
        println!(
            "{:<38} {:<8} {:>16} {:>16}",
            format!("{}{mark}", w.id),
            w.wallet_currency,
            format!("{} {u}", w.balance),
            format!("{} {u}", w.pending_incoming_balance.unwrap_or(0)),
        );
    }
    println!("(* default wallet)");
    Ok(ExitCode::SUCCESS)
}

/// The wallet given with `--wallet`, else the account's default wallet.
async fn wallet_or_default(client: &Client, wallet: Option<String>) -> Result<String> {
    match wallet {
        Some(w) => Ok(w),
        None => match client.me().await?.default_account {
            Some(a) => Ok(a.default_wallet_id),
            None => bail!("this user has no account; pass --wallet"),
        },
    }
}

/// What was paid, in sats: the amount asked for, else (an invoice's own amount) what a
/// successful transaction sent.
fn amount_paid(req: &SendRequest, result: &PaymentResult) -> Option<i64> {
    match req.amount {
        Some(a) => i64::try_from(a).ok(),
        None if result.status == "SUCCESS" => result.amount_sent(),
        None => None,
    }
}

/// `flash pay`: classifies the destination and sends the payment.
async fn pay(ctx: &Ctx, args: PayArgs) -> Result<ExitCode> {
    let destination = args.destination()?;
    let client = ctx.authed()?;
    let wallet_id = wallet_or_default(&client, args.wallet).await?;
    let key = args.idempotency_key.unwrap_or_else(new_idempotency_key);
    let req = SendRequest {
        wallet_id,
        destination,
        amount: args.sats,
        memo: args.memo,
        idempotency_key: Some(key.clone()),
    };
    let result = match client.send(&req).await {
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
    let fee = result.fee();
    let amount = amount_paid(&req, &result);
    if ctx.json {
        print_json(&json!({
            "status": result.status,
            "destination": req.destination,
            "amount": amount,
            "fee": fee,
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
        eprintln!("Payment to {} failed: {why}", req.destination);
        if let Some(tx) = &result.transaction {
            eprintln!("Transaction: {}", tx.id);
        }
    } else {
        println!("Status:      {}", result.status);
        println!("Destination: {}", req.destination);
        if let Some(amount) = amount {
            println!("Amount:      {amount} sats");
        }
        if let Some(fee) = fee {
            println!("Fee:         {fee} sats");
        }
        if let Some(tx) = &result.transaction {
            println!("Transaction: {}", tx.id);
        }
        match result.status.as_str() {
            "PENDING" => println!("The payment is in flight; its outcome will show in `flash history`."),
            "ALREADY_PAID" => println!("The invoice was already paid; nothing was sent this time."),
            "SUCCESS" => {}
            other => println!("(unknown status {other}; check `flash history`)"),
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
        let payment_request = parse_invoice_arg(&payment_request)?;
        // No login needed: anyone holding the invoice may ask.
        let status = ctx.client()?.ln_invoice_payment_status(&payment_request).await?;
        if ctx.json {
            print_json(&status)?;
        } else {
            println!("{}", status.status);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let client = ctx.authed()?;
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
    println!("{}", invoice.payment_request);
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

/// `flash fee`: probes the fee of paying an invoice.
async fn fee(ctx: &Ctx, args: FeeArgs) -> Result<ExitCode> {
    let payment_request = parse_invoice_arg(&args.invoice)?;
    let client = ctx.authed()?;
    let wallet_id = wallet_or_default(&client, args.wallet).await?;
    let fee = client.ln_fee_probe(&wallet_id, &payment_request, args.sats).await?;
    if ctx.json {
        print_json(&json!({ "fee": fee }))?;
    } else {
        println!("Fee: {fee} sats");
    }
    Ok(ExitCode::SUCCESS)
}

async fn history(ctx: &Ctx, args: HistoryArgs) -> Result<ExitCode> {
    let page = ctx
        .authed()?
        .history(args.wallet.as_deref(), args.first, args.after.as_deref())
        .await?;
    if ctx.json {
        print_json(&page)?;
        return Ok(ExitCode::SUCCESS);
    }
    if page.edges.is_empty() {
        println!("No transactions.");
    } else {
        println!(
            "{:<23} {:<7} {:<7} {:>14} {:>6}  {:<20} MEMO",
            "DATE", "DIR", "STATUS", "AMOUNT", "FEE", "COUNTERPARTY"
        );
    }
    for edge in &page.edges {
        let t = &edge.node;
        let counterparty = t
            .settlement_via
            .as_ref()
            .and_then(|v| {
                v.counter_party_username
                    .as_ref()
                    .map(|u| format!("@{u}"))
                    .or_else(|| v.counter_party_wallet_id.clone())
                    .or_else(|| Some(v.typename.trim_start_matches("SettlementVia").to_owned()))
            })
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "{:<23} {:<7} {:<7} {:>14} {:>6}  {:<20} {}",
            t.created_at.to_string(),
            t.direction,
            t.status,
            format!("{} {}", t.settlement_amount, unit(&t.settlement_currency)),
            t.settlement_fee,
            counterparty,
            t.memo.as_deref().unwrap_or("")
        );
    }
    if page.page_info.has_next_page {
        if let Some(cursor) = &page.page_info.end_cursor {
            println!("More: flash history --after {cursor}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn apikey(ctx: &Ctx, cmd: ApiKeyCommand) -> Result<ExitCode> {
    let client = ctx.authed()?;
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
                println!(
                    "Created API key {} \"{}\" (scopes {}, expires {}).",
                    k.id,
                    k.name,
                    k.scopes.join(","),
                    ts(&k.expires_at)
                );
                println!("Secret (shown only this once): {}", created.api_key_secret);
            }
        }
        ApiKeyCommand::List => {
            let keys = client.api_keys().await?;
            if ctx.json {
                print_json(&keys)?;
            } else if keys.is_empty() {
                println!("No API keys.");
            } else {
                println!(
                    "{:<38} {:<16} {:<18} {:<23} {:<23} {:<8} LAST USED",
                    "ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "REVOKED"
                );
                for k in &keys {
                    println!(
                        "{:<38} {:<16} {:<18} {:<23} {:<23} {:<8} {}",
                        k.id,
                        k.name,
                        k.scopes.join(","),
                        ts(&k.created_at),
                        ts(&k.expires_at),
                        if k.revoked.unwrap_or(false) { "yes" } else { "no" },
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
                println!("Revoked API key {}.", revoked.id);
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
                println!(
                    "Ledger {}: {} accounts, {} journals checked.",
                    if v.ok { "OK" } else { "NOT OK" },
                    v.accounts_checked,
                    v.journals_checked
                );
                for c in &v.currencies {
                    println!("  {:<6} total {}", c.currency, c.total);
                }
                for p in &v.problems {
                    match p.as_str() {
                        Some(s) => println!("  problem: {s}"),
                        None => println!("  problem: {p}"),
                    }
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
                println!("Funded wallet {wallet_id} with {sats} sats{note}.");
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
                println!(
                    "Account {}: level {}, status {}.",
                    details.id, details.level, details.status
                );
            }
        }
        AdminCommand::Lightning(cmd) => return admin_lightning(ctx, &client, cmd).await,
        AdminCommand::Journal { id } => {
            let j = client.journal(&id).await?;
            if ctx.json {
                print_json(&j)?;
            } else {
                println!("Journal {} ({}) at {}", j.id, j.kind, j.created_at);
                if let Some(memo) = &j.memo {
                    println!("Memo: {memo}");
                }
                println!("{:<40} {:<8} {:>16}", "ACCOUNT", "CURRENCY", "AMOUNT");
                for e in &j.entries {
                    println!("{:<40} {:<8} {:>16}", e.account_id, e.currency, e.amount);
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
    println!("Liquidity:       {policy} (checked {})", ts(&l.checked_at));
    println!("Active channels: {}", l.active_channels);
    println!(
        "Outbound:        {} sats ({}%, minimum {}%)",
        l.outbound, l.outbound_percent, l.min_outbound_percent
    );
    println!(
        "Inbound:         {} sats ({}%, minimum {}%)",
        l.inbound, l.inbound_percent, l.min_inbound_percent
    );
    if let Some(onchain) = l.onchain {
        println!("On-chain:        {onchain} sats");
    }
    if !l.issues.is_empty() {
        println!("Issues:          {}", l.issues.join(", "));
    }
    if !l.actions.is_empty() {
        println!("Recent actions:");
        for a in &l.actions {
            println!(
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
            let payment_request = parse_invoice_arg(&invoice)?;
            client.dev_lightning_pay_invoice(&payment_request, sats).await?;
            if ctx.json {
                print_json(&json!({ "paid": true, "paymentRequest": payment_request }))?;
            } else {
                println!("Paid the invoice from the simulated outside world.");
            }
        }
        AdminLightningCommand::Node => {
            let node = client.lightning_node().await?;
            if ctx.json {
                print_json(&node)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!("Node:     {} ({})", node.pubkey, node.alias);
            println!(
                "Network:  {}, block {}, {}{}",
                node.network,
                node.block_height,
                if node.synced { "synced" } else { "NOT synced" },
                if node.simulated { ", simulated" } else { "" }
            );
            println!("Channels: {}", node.channels.len());
            if !node.channels.is_empty() {
                println!(
                    "  {:<20} {:<20} {:>14} {:>14} {:>14} ACTIVE",
                    "ID", "PEER", "CAPACITY", "LOCAL", "REMOTE"
                );
            }
            for c in &node.channels {
                let peer: String = c.peer.chars().take(20).collect();
                println!(
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
                println!(
                    "Reconciled {} pending payments: {} succeeded, {} failed, {} still pending.",
                    r.checked, r.succeeded, r.failed, r.pending
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
