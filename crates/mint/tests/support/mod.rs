//! Helpers shared by the mint's integration tests: a bank with a simulated Lightning node, the
//! mint over it, a minimal Cashu wallet (blind, unblind), and the check that ecash in
//! circulation equals `mint:outstanding` with the ledger balanced.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cashu::nuts::{CurrencyUnit, Id, Keys, MintQuoteBolt11Request, MintRequest, Proof, Proofs, PublicKey};
use cashu::secret::Secret;
use cashu::Amount;
use flash_bank::{Bank, BankConfig, Identity};
use flash_core::lightning::DevOutcome;
use flash_core::{Currency, Network, Phone, SystemAccount};
use flash_lightning::DevNode;
use flash_mint::{Mint, MintConfig, MintError};
use flash_store::testing::{fresh_store, Backend};
use flash_store::AccountRecord;

/// The URL the test mint says it is at.
pub const MINT_URL: &str = "http://127.0.0.1:3000";

/// A mint over a fresh bank whose Lightning node is a simulator.
pub struct Lab {
    /// The bank.
    pub bank: Bank,
    /// The mint.
    pub mint: Mint,
    /// The bank's node.
    pub node: Arc<DevNode>,
    /// Another node on the network (invoices from outside Flash).
    pub outside: Arc<DevNode>,
}

fn dev_node() -> Arc<DevNode> {
    Arc::new(
        DevNode::new(
            Network::Regtest,
            DevNode::generate_key(),
            DevOutcome::Succeed {
                delay_ms: 0,
                fee_ppm: 0,
            },
        )
        .expect("dev node"),
    )
}

/// A lab with the default mint settings.
pub async fn lab(backend: Backend) -> Lab {
    lab_with(backend, MintConfig::default()).await
}

/// A lab with these mint settings.
pub async fn lab_with(backend: Backend, config: MintConfig) -> Lab {
    let node = dev_node();
    let mut bank_config = BankConfig::default();
    bank_config.lightning.pay_timeout_secs = 1;
    bank_config.lightning.reconcile_grace_secs = 0;
    let store = fresh_store(backend).await;
    let bank = Bank::new(store.clone(), bank_config).with_lightning(node.clone(), Some(node.clone()));
    let kek = flash_core::secrets::KeyEncryptionKey::new([7u8; 32]);
    let mint = Mint::open(bank.clone(), store, &kek, config, MINT_URL.into())
        .await
        .expect("mint opens");
    Lab {
        bank,
        mint,
        node,
        outside: dev_node(),
    }
}

static NEXT_PHONE: AtomicU64 = AtomicU64::new(1);

/// A member with `sats` from the faucet.
pub async fn member(bank: &Bank, sats: i64) -> AccountRecord {
    let n = NEXT_PHONE.fetch_add(1, Ordering::Relaxed);
    let phone = Phone::parse(&format!("+1558{n:07}")).expect("phone");
    let (_, account) = bank.user_for_identity(&Identity::Phone(phone)).await.expect("sign up");
    if sats > 0 {
        bank.wallet_fund("test", account.default_wallet_id, sats, None)
            .await
            .expect("faucet");
    }
    account
}

/// A new member's invoice for `sats` (a melt to it stays inside the ledger).
pub async fn wallet_invoice(lab: &Lab, sats: i64) -> (AccountRecord, flash_bank::LnInvoice) {
    let member = member(&lab.bank, 0).await;
    let invoice = lab
        .bank
        .ln_invoice_create(
            flash_bank::InvoiceFor::Owner(member.id),
            flash_bank::InvoiceCreate {
                wallet_id: member.default_wallet_id,
                amount: Some(sats),
                memo: None,
                description_hash: None,
                expires_in_mins: None,
            },
        )
        .await
        .expect("invoice");
    (member, invoice)
}

/// A melt quote for `request`, in sats.
pub async fn melt_quote(lab: &Lab, request: &str) -> cashu::nuts::MeltQuoteBolt11Response<String> {
    lab.mint
        .melt_quote(cashu::nuts::MeltQuoteBolt11Request {
            request: request.parse().expect("bolt11"),
            unit: CurrencyUnit::Sat,
            options: None,
        })
        .await
        .expect("melt quote")
}

/// A system account's BTC balance.
pub async fn system_balance(bank: &Bank, account: SystemAccount) -> i64 {
    bank.system_balance(account, Currency::Btc).await.expect("balance")
}

/// The invariant after every scenario: unspent ecash equals `mint:outstanding`, paid and not
/// issued quotes equal `mint:quotes`, and the ledger is balanced.
pub async fn assert_books(lab: &Lab) {
    let totals = lab.mint.store().mint_totals().await.expect("totals");
    assert_eq!(
        totals.outstanding(),
        system_balance(&lab.bank, SystemAccount::MintOutstanding).await,
        "unspent ecash equals mint:outstanding ({totals:?})"
    );
    assert_eq!(
        totals.quotes_paid,
        system_balance(&lab.bank, SystemAccount::MintQuotes).await,
        "paid, unissued quotes equal mint:quotes"
    );
    let report = lab.bank.verify_ledger().await.expect("verify");
    assert!(report.ok(), "ledger invariant: {:?}", report.problems);
}

pub use flash_mint::wallet::{split, Premint};

/// Blinded outputs of these amounts for keyset `id`, with random secrets.
pub fn premint(id: Id, amounts: &[u64]) -> Premint {
    Premint::random(id, amounts).expect("blind")
}

/// Blinded outputs with given secrets.
pub fn premint_with(id: Id, parts: Vec<(u64, Secret)>) -> Premint {
    Premint::with_secrets(id, parts).expect("blind")
}

/// Unblinds, failing the test on a bad signature or DLEQ proof.
pub fn unblind(pre: Premint, sigs: Vec<cashu::nuts::BlindSignature>, keys: &Keys) -> Proofs {
    pre.unblind(sigs, keys).expect("signatures unblind, DLEQ proofs verify")
}

/// Unblinds melt change, failing the test on a bad signature or DLEQ proof.
pub fn unblind_change(pre: Premint, sigs: Vec<cashu::nuts::BlindSignature>, keys: &Keys) -> Proofs {
    pre.unblind_change(sigs, keys)
        .expect("change unblinds, DLEQ proofs verify")
}

/// The active sat keyset's id and keys.
pub fn active(mint: &Mint) -> (Id, Keys) {
    let ks = mint.keyring().active(&CurrencyUnit::Sat).expect("active keyset");
    (ks.id, ks.public_keys())
}

/// Mints `amount` sats of notes over Lightning (the quote's invoice paid from outside).
pub async fn mint_notes(lab: &Lab, amount: u64) -> Proofs {
    let quote = lab
        .mint
        .mint_quote(MintQuoteBolt11Request {
            amount: Amount::from(amount),
            unit: CurrencyUnit::Sat,
            description: None,
            pubkey: None,
        })
        .await
        .expect("mint quote");
    lab.bank
        .dev_ln_pay_from_outside(&quote.request, None)
        .await
        .expect("invoice paid");
    let (id, keys) = active(&lab.mint);
    let pre = premint(id, &split(amount));
    let minted = lab
        .mint
        .mint(MintRequest {
            quote: quote.quote,
            outputs: pre.outputs.clone(),
            signature: None,
        })
        .await
        .expect("mint");
    unblind(pre, minted.signatures, &keys)
}

/// The `Y` of a proof.
pub fn y(proof: &Proof) -> PublicKey {
    proof.y().expect("Y")
}

/// The NUT code of a refusal, failing the test if it was a success.
pub fn code<T: std::fmt::Debug>(result: Result<T, MintError>) -> u32 {
    match result {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// Sum of proofs.
pub fn total(proofs: &[Proof]) -> u64 {
    proofs.iter().map(|p| p.amount.to_u64()).sum()
}
