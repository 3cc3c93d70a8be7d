//! Stores and Greenfield API keys on both backends: who may see and change what, the
//! permission hierarchy and store scoping, validation that writes nothing, revocation.

use std::sync::atomic::{AtomicU64, Ordering};

use flash_bank::{AccountRecord, Bank, BankConfig, Identity};
use flash_merchant::permissions::{CAN_CREATE_INVOICE, CAN_MODIFY_STORE_SETTINGS, CAN_VIEW_STORE_SETTINGS};
use flash_merchant::{Caller, Merchant, MerchantError};
use flash_store::testing::{fresh_store, Backend};
use serde_json::json;

flash_store::on_both_backends!(
    an_owner_creates_lists_updates_and_deletes_stores,
    keys_act_within_their_permissions_and_stores,
    bad_input_is_refused_and_writes_nothing,
    revoked_keys_stop_working,
);

static NEXT: AtomicU64 = AtomicU64::new(1);

async fn lab(backend: Backend) -> (Merchant, Bank) {
    let store = fresh_store(backend).await;
    let bank = Bank::new(store.clone(), BankConfig::default());
    (Merchant::new(bank.clone(), store), bank)
}

async fn member(bank: &Bank) -> AccountRecord {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let device = format!("merchant-test-{}-{n}", std::process::id());
    bank.user_for_identity(&Identity::Device(device))
        .await
        .expect("sign up")
        .1
}

async fn an_owner_creates_lists_updates_and_deletes_stores(backend: Backend) {
    let (merchant, bank) = lab(backend).await;
    let alice = member(&bank).await;
    let owner = Caller::owner(alice.id);
    let shop = merchant
        .create_store(
            &owner,
            &json!({"name": "Shop", "defaultCurrency": "eur", "speedPolicy": "HighSpeed"}),
        )
        .await
        .expect("created");
    assert_eq!((shop.name.as_str(), shop.default_currency.as_str()), ("Shop", "EUR"));
    let json = shop.to_json();
    assert_eq!(
        (json["speedPolicy"].clone(), json["invoiceExpiration"].clone()),
        (json!("HighSpeed"), json!(900))
    );

    let listed = merchant.stores(&owner).await.expect("list");
    assert_eq!(listed, vec![shop.clone()]);
    let changed = merchant
        .update_store(&owner, &shop.id, &json!({"invoiceExpiration": 3600, "archived": true}))
        .await
        .expect("updated");
    assert_eq!(
        (
            changed.name.as_str(),
            changed.settings.invoice_expiration,
            changed.archived
        ),
        ("Shop", 3600, true)
    );
    assert_eq!(merchant.store(&owner, &shop.id).await.expect("read"), changed);

    // Another member cannot see it, change it or delete it: to them it does not exist.
    let bob = Caller::owner(member(&bank).await.id);
    assert!(merchant.stores(&bob).await.expect("list").is_empty());
    assert!(matches!(
        merchant.store(&bob, &shop.id).await,
        Err(MerchantError::StoreNotFound)
    ));
    assert!(matches!(
        merchant.update_store(&bob, &shop.id, &json!({"name": "Mine"})).await,
        Err(MerchantError::StoreNotFound)
    ));
    assert!(matches!(
        merchant.delete_store(&bob, &shop.id).await,
        Err(MerchantError::StoreNotFound)
    ));

    merchant.delete_store(&owner, &shop.id).await.expect("deleted");
    assert!(matches!(
        merchant.store(&owner, &shop.id).await,
        Err(MerchantError::StoreNotFound)
    ));
    assert!(merchant.stores(&owner).await.expect("list").is_empty());
    assert!(matches!(
        merchant.delete_store(&owner, &shop.id).await,
        Err(MerchantError::StoreNotFound)
    ));
}

async fn keys_act_within_their_permissions_and_stores(backend: Backend) {
    let (merchant, bank) = lab(backend).await;
    let alice = member(&bank).await;
    let owner = Caller::owner(alice.id);
    let one = merchant
        .create_store(&owner, &json!({"name": "One"}))
        .await
        .expect("one");
    let two = merchant
        .create_store(&owner, &json!({"name": "Two"}))
        .await
        .expect("two");

    // A key that may only create invoices on store one.
    let made = merchant
        .create_key(&owner, "till", &[format!("btcpay.store.cancreateinvoice:{}", one.id)])
        .await
        .expect("key");
    let (caller, key) = merchant.authenticate(&made.secret).await.expect("auth").expect("live");
    assert_eq!((caller.account, key.id.clone()), (alice.id, made.key.id.clone()));
    assert!(caller.require(CAN_CREATE_INVOICE, Some(&one.id)).is_ok());
    assert!(caller.require(CAN_CREATE_INVOICE, Some(&two.id)).is_err());
    assert!(matches!(
        merchant.store(&caller, &one.id).await,
        Err(MerchantError::Forbidden(CAN_VIEW_STORE_SETTINGS))
    ));
    assert!(
        merchant.stores(&caller).await.expect("list").is_empty(),
        "may view none"
    );
    assert!(matches!(
        merchant.create_store(&caller, &json!({"name": "Three"})).await,
        Err(MerchantError::Forbidden(CAN_MODIFY_STORE_SETTINGS))
    ));
    // It cannot mint itself a broader key.
    assert!(matches!(
        merchant
            .create_key(&caller, "wider", &[CAN_MODIFY_STORE_SETTINGS.to_string()])
            .await,
        Err(MerchantError::Forbidden(CAN_MODIFY_STORE_SETTINGS))
    ));

    // A key over store two's settings sees store two, and through the hierarchy may create
    // invoices there, but nothing of store one.
    let admin = merchant
        .create_key(
            &owner,
            "two",
            &[format!("BTCPay.Store.CanModifyStoreSettings:{}", two.id)],
        )
        .await
        .expect("key");
    let (caller, _) = merchant.authenticate(&admin.secret).await.expect("auth").expect("live");
    assert_eq!(merchant.stores(&caller).await.expect("list"), vec![two.clone()]);
    assert!(caller.require(CAN_CREATE_INVOICE, Some(&two.id)).is_ok());
    assert!(caller.require(CAN_CREATE_INVOICE, Some(&one.id)).is_err());
    merchant
        .update_store(&caller, &two.id, &json!({"name": "Two!"}))
        .await
        .expect("may modify two");
    assert!(matches!(
        merchant.update_store(&caller, &one.id, &json!({"name": "One!"})).await,
        Err(MerchantError::Forbidden(_))
    ));

    // A key scoped to a store of someone else is refused at creation.
    let bob = Caller::owner(member(&bank).await.id);
    assert!(matches!(
        merchant
            .create_key(&bob, "steal", &[format!("{CAN_CREATE_INVOICE}:{}", one.id)])
            .await,
        Err(MerchantError::StoreNotFound)
    ));
    assert_eq!(merchant.keys(alice.id).await.expect("keys").len(), 2);
}

async fn bad_input_is_refused_and_writes_nothing(backend: Backend) {
    let (merchant, bank) = lab(backend).await;
    let owner = Caller::owner(member(&bank).await.id);
    for body in [
        json!({}),
        json!([]),
        json!({"name": ""}),
        json!({"name": "x".repeat(51)}),
        json!({"name": "x", "defaultCurrency": "DOLLARS"}),
        json!({"name": "x", "invoiceExpiration": 10}),
        json!({"name": "x", "paymentTolerance": "5"}),
    ] {
        let err = merchant.create_store(&owner, &body).await.expect_err("refused");
        assert!(matches!(err, MerchantError::Invalid(_)), "{body}: {err:?}");
    }
    assert!(
        merchant.stores(&owner).await.expect("list").is_empty(),
        "nothing written"
    );
    for bad in [
        "btcpay.store.cantakeeverything",
        "btcpay.user.canviewprofile:abc",
        "unrestricted:",
    ] {
        let err = merchant
            .create_key(&owner, "k", &[bad.to_string()])
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, MerchantError::Invalid(e) if e[0].path == "permissions[0]"),
            "{bad}: {err:?}"
        );
    }
    assert!(
        merchant.keys(owner.account).await.expect("keys").is_empty(),
        "nothing written"
    );
}

async fn revoked_keys_stop_working(backend: Backend) {
    let (merchant, bank) = lab(backend).await;
    let alice = member(&bank).await;
    let owner = Caller::owner(alice.id);
    let made = merchant
        .create_key(&owner, "k", &["unrestricted".to_string()])
        .await
        .expect("key");
    assert!(merchant.authenticate(&made.secret).await.expect("auth").is_some());
    assert!(merchant.authenticate("not-a-key").await.expect("auth").is_none());
    let bob = member(&bank).await;
    assert!(matches!(
        merchant.revoke_key(bob.id, &made.key.id).await,
        Err(MerchantError::KeyNotFound)
    ));
    merchant.revoke_key(alice.id, &made.key.id).await.expect("revoked");
    assert!(merchant.authenticate(&made.secret).await.expect("auth").is_none());
    assert!(matches!(
        merchant.revoke_key(alice.id, &made.key.id).await,
        Err(MerchantError::KeyNotFound)
    ));
}
