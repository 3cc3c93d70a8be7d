//! flash-sdk's own ecash against a real `flashd` mint: notes from the user's seed (NUT-13),
//! tokens locked to the receiver (NUT-11) with DLEQ proofs (NUT-12), a token checked and kept
//! while flashd is stopped and redeemed after it restarts, and refusals (locked to someone
//! else, a tampered DLEQ proof, a second redemption); then a fresh machine restores the notes
//! from the seed alone (NUT-09).

mod common;

use std::str::FromStr;

use cashu::nuts::nut00::Token;
use cashu::nuts::nut01::{PublicKey, SecretKey};
use cashu::nuts::nut02::{KeySetInfo, KeysetResponse};
use cashu::{CurrencyUnit, MintUrl};
use common::{Api, Flashd, Launch, TempDir};
use flash_sdk::identity::new_mnemonic;
use flash_sdk::{EcashError, EcashWallet, LocalStore, Received};
use serde_json::json;

/// The lock a sender who knows only an npub writes: its x-only key, even.
fn lock_for(key: &SecretKey) -> PublicKey {
    let x = key.public_key().x_only_public_key();
    PublicKey::from_hex(format!("02{x}")).expect("an x-only key is a public key")
}

#[tokio::test]
async fn locked_tokens_are_checked_offline_redeemed_later_and_restored_from_the_seed() {
    let dir = TempDir::new("ecash-wallet");
    let port = common::free_port();
    let mut server = Flashd::start(&Launch::on_port(dir.path(), port)).await;
    let admin_key = server.admin_key.clone().expect("admin key on first start");
    let api = Api::new(&server.base);
    let alice = api.device_user(&common::unique("ecash-wallet-alice")).await;
    api.fund(&admin_key, &alice.wallet_id, 10_000, "fund-alice").await;

    // Alice turns 1,000 sats into a token and takes it into her own notes.
    let minted = api
        .gql(
            &alice.token,
            "mutation($input: EcashMintInput!) { ecashMint(input: $input) { errors { code message } token } }",
            json!({ "input": { "walletId": alice.wallet_id, "amount": 1_000 } }),
        )
        .await;
    let token = minted["ecashMint"]["token"].as_str().expect("token").to_string();
    let (alice_words, bob_words) = (new_mnemonic(), new_mnemonic());
    let alice_wallet = EcashWallet::new(&server.base, &alice_words).expect("wallet");
    let mut alice_db = LocalStore::in_memory().expect("db");
    let taken = alice_wallet
        .receive(&mut alice_db, &token, None)
        .await
        .expect("receive");
    assert_eq!(taken, Received::Redeemed(1_000));
    assert_eq!(alice_wallet.balance(&alice_db).expect("balance"), 1_000);

    // Tokens locked to Bob and to Carol, and Bob's with a tampered DLEQ proof.
    let (bob_key, carol_key) = (SecretKey::generate(), SecretKey::generate());
    let to_bob = alice_wallet
        .send(&mut alice_db, 300, Some(lock_for(&bob_key)))
        .await
        .expect("send");
    let to_carol = alice_wallet
        .send(&mut alice_db, 100, Some(lock_for(&carol_key)))
        .await
        .expect("send");
    assert_eq!(alice_wallet.balance(&alice_db).expect("balance"), 600);
    let keysets: KeysetResponse = reqwest::get(format!("{}/v1/keysets", server.base))
        .await
        .expect("keysets")
        .json()
        .await
        .expect("keysets JSON");
    let infos: Vec<KeySetInfo> = keysets.keysets;
    let mut proofs = Token::from_str(&to_bob).expect("token").proofs(&infos).expect("proofs");
    let dleq = proofs[0].dleq.as_mut().expect("a DLEQ proof");
    std::mem::swap(&mut dleq.e, &mut dleq.s);
    let mint = MintUrl::from_str(&server.base).expect("mint url");
    let tampered = Token::new(mint, proofs, None, CurrencyUnit::Sat).to_string();

    // Bob's wallet has seen the mint's keys once; then flashd stops.
    let bob_wallet = EcashWallet::new(&server.base, &bob_words).expect("wallet");
    let mut bob_db = LocalStore::in_memory().expect("db");
    bob_wallet.refresh_keysets(&mut bob_db).await.expect("keys");
    server.kill_and_wait();

    let kept = bob_wallet
        .receive(&mut bob_db, &to_bob, Some(&bob_key))
        .await
        .expect("checked offline");
    assert_eq!(kept, Received::Pending(300));
    assert_eq!(bob_wallet.pending(&bob_db).expect("pending"), 300);
    let not_his = bob_wallet.receive(&mut bob_db, &to_carol, Some(&bob_key)).await;
    assert!(matches!(not_his, Err(EcashError::LockedToSomeoneElse)), "{not_his:?}");
    let forged = bob_wallet.receive(&mut bob_db, &tampered, Some(&bob_key)).await;
    assert!(matches!(forged, Err(EcashError::BadDleq)), "{forged:?}");
    // While the mint is down, redeeming waits.
    assert!(matches!(
        bob_wallet.redeem_pending(&mut bob_db, Some(&bob_key)).await,
        Err(EcashError::Unreachable(_))
    ));
    assert_eq!(bob_wallet.pending(&bob_db).expect("pending"), 300);

    // Back online: redeemed into Bob's notes, once.
    let server = Flashd::start(&Launch::on_port(dir.path(), port)).await;
    assert_eq!(
        bob_wallet
            .redeem_pending(&mut bob_db, Some(&bob_key))
            .await
            .expect("redeem"),
        300
    );
    assert_eq!(bob_wallet.balance(&bob_db).expect("balance"), 300);
    assert_eq!(bob_wallet.pending(&bob_db).expect("pending"), 0);
    let twice = bob_wallet.receive(&mut bob_db, &to_bob, Some(&bob_key)).await;
    assert!(matches!(twice, Err(EcashError::AlreadySpent)), "{twice:?}");
    assert_eq!(bob_wallet.balance(&bob_db).expect("balance"), 300);

    // A fresh machine with only the seeds gets the notes back.
    let mut fresh = LocalStore::in_memory().expect("db");
    assert_eq!(bob_wallet.restore(&mut fresh).await.expect("restore"), 300);
    assert_eq!(bob_wallet.balance(&fresh).expect("balance"), 300);
    let mut fresh = LocalStore::in_memory().expect("db");
    assert_eq!(alice_wallet.restore(&mut fresh).await.expect("restore"), 600);
    // The restored notes spend: a new token from them, redeemed by Bob.
    let again = alice_wallet
        .send(&mut fresh, 50, None)
        .await
        .expect("send from restored notes");
    assert_eq!(
        bob_wallet.receive(&mut bob_db, &again, None).await.expect("receive"),
        Received::Redeemed(50)
    );
    Api::new(&server.base).assert_ledger_ok(&admin_key).await;
}
