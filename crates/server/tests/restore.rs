//! A fresh machine with only a backup becomes the user's client again, against a real
//! `flashd` (its relay and its mint): first from the backup file and its passphrase, then from
//! the relays with the NOSTR key alone. Each time the keys, settings, contacts and groups come
//! back, and the ecash balance through NUT-09 restore from the seed in the backup.

mod common;

use std::collections::BTreeMap;

use common::{Api, Flashd, Launch, TempDir};
use flash_sdk::identity::{from_mnemonic, new_mnemonic};
use flash_sdk::{
    Backup, BackupError, EcashWallet, GroupRef, KdfParams, Keystore, LocalContact, LocalStore, Messenger, Received,
    Secrets,
};
use nostr_sdk::prelude::{Keys, ToBech32};
use serde_json::json;

/// Cheap key derivation: the test checks behaviour, not cost.
const FAST: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// What a restored client must hold again.
fn assert_restored(store: &LocalStore, backup: &Backup, original: &LocalStore) {
    assert_eq!(
        store.settings().expect("settings"),
        original.settings().expect("settings")
    );
    assert_eq!(store.groups().expect("groups"), original.groups().expect("groups"));
    let names: Vec<_> = store
        .contacts()
        .expect("contacts")
        .into_iter()
        .map(|c| (c.username, c.alias))
        .collect();
    let expected: Vec<_> = original
        .contacts()
        .expect("contacts")
        .into_iter()
        .map(|c| (c.username, c.alias))
        .collect();
    assert_eq!(names, expected);
    assert!(backup.secrets.nostr_secret_key.is_some() && backup.secrets.ecash_mnemonic.is_some());
}

#[tokio::test]
async fn a_fresh_machine_comes_back_from_the_file_then_from_the_relays() {
    let dir = TempDir::new("restore");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let admin_key = server.admin_key.clone().expect("admin key");
    let api = Api::new(&server.base);
    let relay = server.base.replacen("http://", "ws://", 1);

    // Alice's client: a NOSTR key from NIP-06 words, an ecash seed, a keystore.
    let words = new_mnemonic();
    let keys = from_mnemonic(&words).expect("keys");
    let ecash_words = new_mnemonic();
    let home = TempDir::new("restore-alice");
    let secrets = Secrets {
        nostr_secret_key: Some(keys.secret_key().to_secret_hex()),
        ecash_mnemonic: Some(ecash_words.clone()),
        credentials: BTreeMap::from([(server.base.clone(), "a session token".into())]),
    };
    let keystore =
        Keystore::create(&home.path().join("keystore.json"), "alice's passphrase", FAST, secrets).expect("keystore");
    let mut db = LocalStore::open(&home.path().join("flash.db")).expect("db");
    db.set_setting("server", &server.base).expect("setting");
    db.set_setting("relays", &relay).expect("setting");
    db.save_contacts(&[LocalContact {
        username: "bob".into(),
        alias: Some("Bob from climbing".into()),
        tx_count: 2,
    }])
    .expect("contacts");
    let messenger = Messenger::connect(keys.clone(), std::slice::from_ref(&relay))
        .await
        .expect("messenger");
    let group = GroupRef::new(&relay, "climbers").expect("group");
    messenger
        .group_create(&mut db, &group, "Climbers", true)
        .await
        .expect("group");

    // 700 sats of her own ecash.
    let user = api.device_user(&common::unique("restore-alice")).await;
    api.fund(&admin_key, &user.wallet_id, 5_000, "fund-restore").await;
    let minted = api
        .gql(
            &user.token,
            "mutation($input: EcashMintInput!) { ecashMint(input: $input) { errors { code } token } }",
            json!({ "input": { "walletId": user.wallet_id, "amount": 700 } }),
        )
        .await;
    let token = minted["ecashMint"]["token"].as_str().expect("token");
    let wallet = EcashWallet::new(&server.base, &ecash_words).expect("wallet");
    assert_eq!(
        wallet.receive(&mut db, token, None).await.expect("receive"),
        Received::Redeemed(700)
    );

    // Both backups.
    let backup = Backup::collect(&keystore.secrets, &db).expect("collect");
    let file = home.path().join("flash-backup.json");
    backup.write_file(&file, "backup passphrase", FAST).expect("file");
    backup.publish(&messenger).await.expect("relays");
    messenger.shutdown().await;

    // A fresh machine with the file: keys, settings, contacts, groups, then the notes.
    let fresh = TempDir::new("restore-fresh-file");
    let read = Backup::read_file(&file, "backup passphrase").expect("read the file");
    let mut restored = LocalStore::open(&fresh.path().join("flash.db")).expect("db");
    read.apply(&mut restored).expect("apply");
    assert_restored(&restored, &read, &db);
    let keystore2 = Keystore::create(
        &fresh.path().join("keystore.json"),
        "a new passphrase",
        FAST,
        read.secrets.clone(),
    )
    .expect("new keystore");
    assert_eq!(keystore2.secrets, keystore.secrets);
    let words_back = read.secrets.ecash_mnemonic.clone().expect("ecash words");
    let wallet2 = EcashWallet::new(&server.base, &words_back).expect("wallet");
    assert_eq!(wallet2.restore(&mut restored).await.expect("NUT-09"), 700);
    assert_eq!(wallet2.balance(&restored).expect("balance"), 700);

    // Another fresh machine with only the NOSTR key (its npub shown, its words typed again).
    let keys_again = from_mnemonic(&words).expect("keys from the words");
    assert_eq!(
        keys_again.public_key().to_bech32().ok(),
        keys.public_key().to_bech32().ok()
    );
    let messenger = Messenger::connect(keys_again, std::slice::from_ref(&relay))
        .await
        .expect("messenger");
    let fetched = Backup::fetch(&messenger).await.expect("from the relays");
    assert_eq!(fetched, backup);
    let mut from_relay = LocalStore::in_memory().expect("db");
    fetched.apply(&mut from_relay).expect("apply");
    assert_restored(&from_relay, &fetched, &db);
    let wallet3 =
        EcashWallet::new(&server.base, fetched.secrets.ecash_mnemonic.as_deref().expect("words")).expect("wallet");
    assert_eq!(wallet3.restore(&mut from_relay).await.expect("NUT-09"), 700);

    // Someone else's key finds no backup.
    let stranger = Messenger::connect(Keys::generate(), &[relay]).await.expect("stranger");
    assert!(matches!(Backup::fetch(&stranger).await, Err(BackupError::NotFound)));
    for m in [messenger, stranger] {
        m.shutdown().await;
    }
    api.assert_ledger_ok(&admin_key).await;
}
