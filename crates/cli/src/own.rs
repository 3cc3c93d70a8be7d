//! `flash keys` and `flash chat`: commands over what the client keeps itself (the keystore and
//! the local database, both in the config directory) and the user's NOSTR relays.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use flash_cli::identity::{self, Keys, PublicKey};
use flash_cli::{
    default_config_dir, latest_payment_request, payment_request_in, ChatCommand, ChatError, KdfParams, KeysCommand,
    Keystore, LocalStore, Messenger, Secrets, SendRequest,
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

/// The keystore's passphrase: `FLASH_PASSPHRASE`, else the first line of stdin.
fn passphrase() -> Result<String> {
    if let Ok(p) = std::env::var("FLASH_PASSPHRASE") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        eprint!("Keystore passphrase: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the passphrase")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
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
