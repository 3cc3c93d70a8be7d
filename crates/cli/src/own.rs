//! `flash keys`, `flash chat`, `flash group`, the client's own ecash (`flash ecash send|receive|notes|restore`),
//! `flash backup` and `flash restore`: commands over what the client keeps itself (the keystore
//! and the local database, both in the config directory), the user's NOSTR relays, and the
//! server's mint.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use flash_cli::ecash::{lock_for, signing_key};
use flash_cli::identity::{self, Keys, PublicKey};
use flash_cli::{
    default_config_dir, latest_payment_request, payment_request_in, Backup, BackupArgs, ChatCommand, ChatError,
    EcashCommand, EcashWallet, GroupCommand, GroupInvite, GroupRef, KdfParams, KeysCommand, Keystore, LocalStore,
    Messenger, Received, RestoreArgs, Secrets, SendRequest,
};
use serde_json::json;

use crate::{print_json, stdout_failed, wallet_or_default, Ctx};

/// The keystore's file name in the config directory.
const KEYSTORE_FILE: &str = "keystore.json";
/// The local database's file name in the config directory.
const LOCAL_DB_FILE: &str = "flash.db";

/// `<config dir>/<name>`.
fn config_file(name: &str) -> Result<PathBuf> {
    Ok(default_config_dir()?.join(name))
}

/// A passphrase: `env`, else the next line of stdin (prompting with `what` on a terminal).
fn read_secret(env: &str, what: &str) -> Result<String> {
    if let Ok(p) = std::env::var(env) {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        eprint!("{what}: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The keystore's passphrase: `FLASH_PASSPHRASE`, else a line of stdin.
fn passphrase() -> Result<String> {
    read_secret("FLASH_PASSPHRASE", "Keystore passphrase")
}

/// A backup's passphrase: `FLASH_BACKUP_PASSPHRASE`, else a line of stdin.
fn backup_passphrase() -> Result<String> {
    read_secret("FLASH_BACKUP_PASSPHRASE", "Backup passphrase")
}

/// The client's own ecash wallet at the server's mint, from the keystore's seed.
fn ecash_wallet(ctx: &Ctx, store: &Keystore) -> Result<EcashWallet> {
    let words = store
        .secrets
        .ecash_mnemonic
        .as_deref()
        .ok_or_else(|| anyhow!("the keystore holds no ecash seed"))?;
    Ok(EcashWallet::new(&ctx.server, words)?)
}

/// Opens the keystore with the passphrase.
fn open_keystore() -> Result<Keystore> {
    let path = config_file(KEYSTORE_FILE)?;
    Keystore::open(&path, &passphrase()?).map_err(|e| match e {
        flash_cli::KeystoreError::NotFound(_) => anyhow!("no keystore yet: run `flash keys init` first"),
        other => other.into(),
    })
}

/// The NOSTR keys the keystore holds.
fn nostr_keys(store: &Keystore) -> Result<Keys> {
    let hex = store
        .secrets
        .nostr_secret_key
        .as_deref()
        .ok_or_else(|| anyhow!("the keystore holds no NOSTR key"))?;
    Ok(identity::import(hex)?)
}

/// The relays to use: those given, else `FLASH_RELAYS`, else the server's own relay.
fn relays(ctx: &Ctx, given: Vec<String>) -> Vec<String> {
    if !given.is_empty() {
        return given;
    }
    if let Ok(list) = std::env::var("FLASH_RELAYS") {
        let list: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        if !list.is_empty() {
            return list;
        }
    }
    let relay = match ctx.server.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => format!("ws://{}", ctx.server),
    };
    vec![relay]
}

/// `flash keys ...`.
pub(crate) async fn keys(ctx: &Ctx, cmd: KeysCommand) -> Result<ExitCode> {
    match cmd {
        KeysCommand::Init { import } => {
            let path = config_file(KEYSTORE_FILE)?;
            let keys = match import {
                Some(text) => identity::import(&text)?,
                None => identity::generate(),
            };
            let secrets = Secrets {
                nostr_secret_key: Some(identity::secret_hex(&keys)),
                ecash_mnemonic: Some(identity::new_mnemonic()),
                credentials: Default::default(),
            };
            Keystore::create(&path, &passphrase()?, KdfParams::default(), secrets)?;
            show(ctx, &keys.public_key(), &path)
        }
        KeysCommand::Show => {
            let store = open_keystore()?;
            show(ctx, &nostr_keys(&store)?.public_key(), store.path())
        }
        KeysCommand::Export => {
            let passphrase = passphrase()?;
            let store = Keystore::open(&config_file(KEYSTORE_FILE)?, &passphrase)?;
            let sealed = identity::to_ncryptsec(&nostr_keys(&store)?, &passphrase)?;
            if ctx.json {
                print_json(&json!({ "ncryptsec": sealed }))?;
            } else {
                outln!("{sealed}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints a public key and where the keystore is.
fn show(ctx: &Ctx, key: &PublicKey, path: &std::path::Path) -> Result<ExitCode> {
    if ctx.json {
        print_json(&json!({ "npub": identity::npub(key), "publicKey": key.to_hex(), "keystore": path }))?;
    } else {
        outln!("{}", identity::npub(key));
        eprintln!("Keystore: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash chat ...`.
pub(crate) async fn chat(ctx: &Ctx, cmd: ChatCommand) -> Result<ExitCode> {
    let keystore = open_keystore()?;
    let keys = nostr_keys(&keystore)?;
    let mut db = LocalStore::open(&config_file(LOCAL_DB_FILE)?)?;
    let (peer, given) = match &cmd {
        ChatCommand::Send { peer, relays, .. } | ChatCommand::Pay { peer, relays, .. } => {
            (Some(identity::parse_public_key(peer)?), relays.clone())
        }
        ChatCommand::Read { peer, relays } => (
            peer.as_deref().map(identity::parse_public_key).transpose()?,
            relays.clone(),
        ),
    };
    let messenger = Messenger::connect(keys, &relays(ctx, given)).await?;
    let result = match cmd {
        ChatCommand::Send { text, .. } => {
            let peer = peer.ok_or_else(|| anyhow!("no peer"))?;
            match messenger.send(&mut db, peer, &text).await {
                Ok(sent) => {
                    if ctx.json {
                        print_json(
                            &json!({ "id": sent.id, "peer": identity::npub(&peer), "createdAt": sent.created_at }),
                        )?;
                    } else {
                        outln!("Sent to {}.", identity::npub(&peer));
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e @ ChatError::NotSent(_)) => {
                    eprintln!("{e}");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        ChatCommand::Read { .. } => {
            let report = messenger.read(&mut db).await?;
            match peer {
                Some(peer) => {
                    let talk = db.conversation(&peer.to_hex(), 100)?;
                    if ctx.json {
                        print_json(
                            &json!({ "new": report.new_messages, "messages": talk.iter().map(|m| json!({
                            "id": m.id, "fromMe": m.author != peer.to_hex(), "createdAt": m.created_at, "text": m.content,
                        })).collect::<Vec<_>>() }),
                        )?;
                    } else {
                        for m in &talk {
                            let who = if m.author == peer.to_hex() { "them" } else { "me  " };
                            outln!("{} {who}: {}", m.created_at, m.content);
                        }
                    }
                }
                None => {
                    let list = db.conversations()?;
                    if ctx.json {
                        print_json(
                            &json!({ "new": report.new_messages, "conversations": list.iter().map(|(p, at)| json!({
                            "peer": p, "lastAt": at,
                        })).collect::<Vec<_>>() }),
                        )?;
                    } else {
                        outln!("{} new message(s).", report.new_messages);
                        for (p, at) in &list {
                            let name = PublicKey::from_hex(p)
                                .map(|k| identity::npub(&k))
                                .unwrap_or_else(|_| p.clone());
                            outln!("{name}  last at {at}");
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ChatCommand::Pay { wallet, .. } => {
            messenger.read(&mut db).await?;
            let peer = peer.ok_or_else(|| anyhow!("no peer"))?;
            let message = latest_payment_request(&db, &peer.to_hex())?
                .ok_or_else(|| anyhow!("{} sent no payment request", identity::npub(&peer)))?;
            let request = payment_request_in(&message.content).ok_or_else(|| anyhow!("no payment request"))?;
            let client = ctx.authed().await?;
            let wallet_id = wallet_or_default(&client, wallet).await?;
            let req = SendRequest {
                wallet_id,
                destination: request.clone(),
                amount: None,
                memo: Some(format!("chat: {}", identity::npub(&peer))),
                speed: None,
                // One payment per request message, however often this runs.
                idempotency_key: Some(format!("chat-pay:{}", message.id)),
            };
            let result = client.send(&req).await?;
            if ctx.json {
                print_json(
                    &json!({ "status": result.status, "request": request, "message": message.id, "errors": result.errors }),
                )?;
            } else {
                outln!("Status:  {}", result.status);
                outln!("Request: {request}");
            }
            Ok(if result.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    };
    messenger.shutdown().await;
    result
}

/// `flash ecash send|receive|notes|restore`: the client's own notes.
pub(crate) async fn ecash(ctx: &Ctx, cmd: EcashCommand) -> Result<ExitCode> {
    let keystore = open_keystore()?;
    let keys = nostr_keys(&keystore)?;
    let wallet = ecash_wallet(ctx, &keystore)?;
    let mut db = LocalStore::open(&config_file(LOCAL_DB_FILE)?)?;
    let key = signing_key(&keys)?;
    match cmd {
        EcashCommand::Send { sats, to } => {
            let lock = to.as_deref().map(identity::parse_public_key).transpose()?;
            let lock = lock.as_ref().map(lock_for).transpose()?;
            let token = wallet.send(&mut db, sats, lock).await?;
            if ctx.json {
                print_json(&json!({ "token": token, "amount": sats, "lockedTo": to }))?;
            } else {
                outln!("{token}");
            }
        }
        EcashCommand::Receive { cashu_token } => {
            let token = crate::ecash_token_arg(&cashu_token, std::io::stdin())?;
            let received = wallet.receive(&mut db, &token, Some(&key)).await?;
            let (state, amount) = match received {
                Received::Redeemed(a) => ("REDEEMED", a),
                Received::Pending(a) => ("PENDING", a),
            };
            if ctx.json {
                print_json(&json!({ "state": state, "amount": amount }))?;
            } else if state == "PENDING" {
                outln!("Checked {amount} sats offline; kept until the mint answers.");
            } else {
                outln!("Received {amount} sats.");
            }
        }
        EcashCommand::Notes => {
            // While the mint answers, its keys are kept for checks offline and pending tokens
            // are redeemed; while it does not, they wait.
            let reachable = wallet.refresh_keysets(&mut db).await.is_ok();
            let redeemed = if reachable {
                wallet.redeem_pending(&mut db, Some(&key)).await?
            } else {
                0
            };
            let (balance, pending) = (wallet.balance(&db)?, wallet.pending(&db)?);
            if ctx.json {
                print_json(&json!({
                    "balance": balance, "pending": pending, "redeemed": redeemed,
                    "mint": wallet.mint_url(), "mintReachable": reachable,
                }))?;
            } else {
                let state = if reachable { "" } else { ", unreachable" };
                outln!(
                    "{balance} sats spendable, {pending} sats pending (mint {}{state})",
                    wallet.mint_url()
                );
            }
        }
        EcashCommand::Restore => {
            let restored = wallet.restore(&mut db).await?;
            if ctx.json {
                print_json(&json!({ "restored": restored, "balance": wallet.balance(&db)? }))?;
            } else {
                outln!("Restored {restored} sats of notes.");
            }
        }
        EcashCommand::Mint { .. } | EcashCommand::Redeem { .. } => {
            return Err(anyhow!("`flash ecash mint` and `redeem` use the server's wallet"))
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash backup`.
pub(crate) async fn backup(ctx: &Ctx, args: BackupArgs) -> Result<ExitCode> {
    let keystore = open_keystore()?;
    let db = LocalStore::open(&config_file(LOCAL_DB_FILE)?)?;
    let backup = Backup::collect(&keystore.secrets, &db)?;
    if let Some(path) = &args.file {
        backup.write_file(path, &backup_passphrase()?, KdfParams::default())?;
        eprintln!("Backup written to {}.", path.display());
    }
    if args.relays_too {
        let messenger = Messenger::connect(nostr_keys(&keystore)?, &relays(ctx, args.relays)).await?;
        let published = backup.publish(&messenger).await;
        messenger.shutdown().await;
        published?;
        eprintln!("Backup published to the relays.");
    }
    if ctx.json {
        print_json(&json!({ "file": args.file, "relays": args.relays_too }))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash restore`: a new keystore from the backup, its settings, contacts and groups, then
/// the ecash notes from its seed.
pub(crate) async fn restore(ctx: &Ctx, args: RestoreArgs) -> Result<ExitCode> {
    let path = config_file(KEYSTORE_FILE)?;
    if path.exists() {
        return Err(anyhow!(
            "a keystore exists already at {}; restore into a fresh config directory",
            path.display()
        ));
    }
    let passphrase = passphrase()?;
    let backup = match (&args.file, &args.key) {
        (Some(file), _) => Backup::read_file(file, &backup_passphrase()?)?,
        (None, Some(key)) => {
            let messenger = Messenger::connect(identity::import(key)?, &relays(ctx, args.relays)).await?;
            let fetched = Backup::fetch(&messenger).await;
            messenger.shutdown().await;
            fetched?
        }
        (None, None) => return Err(anyhow!("give --file or --key")),
    };
    let mut db = LocalStore::open(&config_file(LOCAL_DB_FILE)?)?;
    backup.apply(&mut db)?;
    let keystore = Keystore::create(&path, &passphrase, KdfParams::default(), backup.secrets.clone())?;
    let restored = ecash_wallet(ctx, &keystore)?.restore(&mut db).await;
    let npub = identity::npub(&nostr_keys(&keystore)?.public_key());
    match &restored {
        Ok(sats) if !ctx.json => outln!(
            "Restored {npub}: {} contacts, {} groups, {sats} sats of notes.",
            backup.contacts.len(),
            backup.groups.len()
        ),
        Err(e) if !ctx.json => {
            eprintln!("Restored {npub}; the notes could not be restored yet ({e}): run `flash ecash restore`.")
        }
        _ => print_json(&json!({
            "npub": npub,
            "contacts": backup.contacts.len(),
            "groups": backup.groups.len(),
            "ecash": restored.as_ref().ok(),
        }))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `flash group ...`.
pub(crate) async fn group(ctx: &Ctx, cmd: GroupCommand) -> Result<ExitCode> {
    let keystore = open_keystore()?;
    let mut db = LocalStore::open(&config_file(LOCAL_DB_FILE)?)?;
    let default_relay = || relays(ctx, Vec::new()).remove(0);
    let at = |group: &str, relay: Option<String>| GroupRef::new(&relay.unwrap_or_else(default_relay), group);
    let invite = match &cmd {
        GroupCommand::Join { invite } => Some(invite.parse::<GroupInvite>()?),
        _ => None,
    };
    let relay = match (&cmd, &invite) {
        (_, Some(invite)) => invite.group.relay.to_string(),
        (
            GroupCommand::Create { relay, .. }
            | GroupCommand::Invite { relay, .. }
            | GroupCommand::Post { relay, .. }
            | GroupCommand::Read { relay, .. }
            | GroupCommand::Leave { relay, .. }
            | GroupCommand::Remove { relay, .. }
            | GroupCommand::Delete { relay, .. },
            None,
        ) => relay.clone().unwrap_or_else(default_relay),
        (GroupCommand::Join { .. }, None) => default_relay(),
    };
    let messenger = Messenger::connect(nostr_keys(&keystore)?, &[relay]).await?;
    let done: Result<serde_json::Value> = async {
        Ok(match cmd {
            GroupCommand::Create {
                group,
                name,
                open,
                relay,
            } => {
                let group = at(&group, relay)?;
                messenger.group_create(&mut db, &group, &name, !open).await?;
                json!({ "group": group.id, "relay": group.relay.to_string(), "name": name })
            }
            GroupCommand::Invite { group, relay } => {
                let invite = messenger.group_invite(&at(&group, relay)?).await?;
                json!({ "invite": invite.to_string() })
            }
            GroupCommand::Join { .. } => {
                let invite = invite.ok_or_else(|| anyhow!("no invite"))?;
                messenger.group_join(&mut db, &invite).await?;
                json!({ "joined": invite.group.id })
            }
            GroupCommand::Post { group, text, relay } => {
                let id = messenger.group_post(&at(&group, relay)?, &text).await?;
                json!({ "id": id.to_hex() })
            }
            GroupCommand::Read { group, relay } => {
                let posts = messenger.group_read(&mut db, &at(&group, relay)?).await?;
                json!({ "posts": posts.iter().map(|p| json!({
                    "id": p.id, "author": p.author, "createdAt": p.created_at, "text": p.content,
                })).collect::<Vec<_>>() })
            }
            GroupCommand::Leave { group, relay } => {
                messenger.group_leave(&mut db, &at(&group, relay)?).await?;
                json!({ "left": group })
            }
            GroupCommand::Remove { group, member, relay } => {
                let member = identity::parse_public_key(&member)?;
                messenger.group_remove(&at(&group, relay)?, member).await?;
                json!({ "removed": identity::npub(&member) })
            }
            GroupCommand::Delete { group, post, relay } => {
                let post = flash_cli::chat::event_id(&post)?;
                messenger.group_delete_post(&at(&group, relay)?, post).await?;
                json!({ "deleted": post.to_hex() })
            }
        })
    }
    .await;
    messenger.shutdown().await;
    let done = done?;
    if ctx.json {
        print_json(&done)?;
    } else if let Some(posts) = done["posts"].as_array() {
        for p in posts {
            outln!(
                "{} {}: {}",
                p["createdAt"],
                p["author"].as_str().unwrap_or_default(),
                p["text"].as_str().unwrap_or_default()
            );
        }
    } else if let Some(invite) = done["invite"].as_str() {
        outln!("{invite}");
    } else if let Some(id) = done["id"].as_str() {
        outln!("{id}");
    } else {
        outln!("Done.");
    }
    Ok(ExitCode::SUCCESS)
}
