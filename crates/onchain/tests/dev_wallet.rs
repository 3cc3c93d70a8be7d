//! The BDK hot wallet on the dev chain: deposits seen in the mempool, confirmed, reorganised
//! away or re-confirmed, and everything surviving a restart of both.

use std::path::PathBuf;
use std::sync::Arc;

use bitcoin::bip32::{DerivationPath, Xpriv};
use bitcoin::secp256k1::{Message, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, OutPoint, ScriptBuf, Witness};
use flash_core::onchain::{ChainError, ChainSimulator, ChainSource, HotWallet, PayoutOutput};
use flash_core::{Network, Sats};
use flash_onchain::testing::{open_hot_wallet, outside_address, sats, MemoryWalletState};
use flash_onchain::{BdkHotWallet, DevChain};

const SEED: [u8; 32] = [9u8; 32];

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flash-onchain-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The dev chain in `dir` and the hot wallet over it, its state in `state` (shared across
/// "restarts").
async fn open(dir: &std::path::Path, state: &Arc<MemoryWalletState>) -> (Arc<DevChain>, BdkHotWallet) {
    let chain = Arc::new(DevChain::open(dir, Network::Regtest, 2_000).expect("dev chain"));
    let wallet = open_hot_wallet(&SEED, chain.clone(), state.clone()).await;
    (chain, wallet)
}

#[tokio::test]
async fn deposits_confirm_reorganise_and_survive_a_restart() {
    let dir = temp_dir("deposits");
    let state = Arc::new(MemoryWalletState::default());
    let (chain, wallet) = open(&dir, &state).await;

    let a0 = wallet.deposit_address(0).await.expect("address");
    let a1 = wallet.deposit_address(1).await.expect("address");
    assert_ne!(a0, a1);
    assert_eq!(
        wallet.deposit_address(0).await.expect("address"),
        a0,
        "an index always gives the same address"
    );
    assert!(a0.starts_with("bcrt1q"), "{a0}");

    let tx0 = chain.deposit(&a0, sats(50_000)).await.expect("deposit");
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.tip.height, 0);
    assert_eq!(snap.received.len(), 1);
    assert_eq!(snap.received[0].outpoint.txid, tx0);
    assert_eq!(snap.received[0].address, a0);
    assert_eq!(snap.received[0].amount, sats(50_000));
    assert_eq!(snap.received[0].confirmed_height, None, "in the mempool");

    let tip = chain.mine(2).await.expect("mine");
    assert_eq!(tip.height, 2);
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.tip, tip);
    assert_eq!(snap.received[0].confirmed_height, Some(1));
    assert_eq!(snap.confirmed_balance, sats(50_000));

    // A reorganisation that sends the deposit back to the mempool; mined again later.
    chain.reorg(2, false).await.expect("reorg");
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.tip.height, 3);
    assert_eq!(snap.received.len(), 1);
    assert_eq!(snap.received[0].confirmed_height, None, "back in the mempool");
    assert_eq!(snap.confirmed_balance, Sats::ZERO);
    chain.mine(1).await.expect("mine");
    let snap = wallet.sync(0).await.expect("sync");
    assert_eq!(snap.received[0].confirmed_height, Some(4), "confirmed in a new block");

    // A second deposit, confirmed, then dropped by a reorganisation (as if double-spent).
    let tx1 = chain.deposit(&a1, sats(7_000)).await.expect("deposit");
    chain.mine(1).await.expect("mine");
    let snap = wallet.sync(0).await.expect("sync");
    let confirmed: Vec<_> = snap
        .received
        .iter()
        .map(|r| (r.outpoint.txid, r.confirmed_height))
        .collect();
    assert!(confirmed.contains(&(tx1, Some(5))), "{confirmed:?}");
    chain.reorg(1, true).await.expect("reorg");
    let snap = wallet.sync(0).await.expect("sync");
    assert!(
        snap.received.iter().all(|r| r.outpoint.txid != tx1),
        "the dropped deposit is gone: {:?}",
        snap.received
    );
    assert_eq!(snap.confirmed_balance, sats(50_000));

    // `from_height` leaves out what confirmed below it.
    assert!(wallet.sync(5).await.expect("sync").received.is_empty());

    // Restart both: the chain from its file, the wallet from its recorded state.
    drop(wallet);
    drop(chain);
    let (chain, wallet) = open(&dir, &state).await;
    assert_eq!(chain.height(), 6);
    let before_sync = wallet.sync(0).await.expect("sync");
    assert_eq!(before_sync.tip.height, 6);
    assert_eq!(before_sync.received.len(), 1);
    assert_eq!(before_sync.received[0].outpoint.txid, tx0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_dev_chain_relays_only_valid_spends() {
    let dir = temp_dir("relay");
    let state = Arc::new(MemoryWalletState::default());
    let (chain, wallet) = open(&dir, &state).await;
    let address = wallet.deposit_address(0).await.expect("address");
    let txid = chain.deposit(&address, sats(10_000)).await.expect("deposit");
    chain.mine(1).await.expect("mine");
    // Spends of the deposit, signed with the key of deposit address 0 (BIP84, regtest).
    let secp = Secp256k1::new();
    let path: DerivationPath = "m/84'/1'/0'/0/0".parse().expect("path");
    let key = Xpriv::new_master(bitcoin::Network::Regtest, &SEED)
        .and_then(|m| m.derive_priv(&secp, &path))
        .expect("key")
        .to_priv();
    let public = key.public_key(&secp);
    let coin = ScriptBuf::new_p2wpkh(&public.wpubkey_hash().expect("compressed"));
    let spend = |vout: u32, value: u64| {
        let mut tx = flash_onchain::testing::spend(
            OutPoint { txid, vout },
            Witness::new(),
            value,
            ScriptBuf::new_op_return([]),
        );
        let hash = SighashCache::new(&tx)
            .p2wpkh_signature_hash(0, &coin, Amount::from_sat(10_000), EcdsaSighashType::All)
            .expect("sighash");
        let signature = secp.sign_ecdsa(&Message::from(hash), &key.inner);
        tx.input[0].witness = Witness::p2wpkh(&bitcoin::ecdsa::Signature::sighash_all(signature), &public.inner);
        tx
    };
    let mut unsigned = spend(0, 9_000);
    unsigned.input[0].witness = Witness::new();
    assert!(
        matches!(chain.broadcast(&unsigned).await, Err(ChainError::Refused(_))),
        "no signature"
    );
    let mut forged = spend(0, 9_000);
    forged.output[0].value = Amount::from_sat(8_999);
    assert!(
        matches!(chain.broadcast(&forged).await, Err(ChainError::Refused(_))),
        "a signature of another transaction"
    );
    assert!(
        matches!(chain.broadcast(&spend(1, 1_000)).await, Err(ChainError::Refused(_))),
        "no such output"
    );
    assert!(
        matches!(chain.broadcast(&spend(0, 10_001)).await, Err(ChainError::Refused(_))),
        "creates money"
    );
    assert!(chain.mempool().is_empty(), "refusals change nothing");
    let good = spend(0, 9_000);
    chain.broadcast(&good).await.expect("a valid spend is relayed");
    assert_eq!(chain.mempool(), vec![good.compute_txid()]);
    chain
        .broadcast(&good)
        .await
        .expect("a known transaction is accepted again");
    assert_eq!(chain.mempool(), vec![good.compute_txid()], "once");
    assert!(
        matches!(chain.broadcast(&spend(0, 9_500)).await, Err(ChainError::Refused(_))),
        "a double spend paying less is refused"
    );
    let replacement = spend(0, 8_000);
    chain
        .broadcast(&replacement)
        .await
        .expect("one paying more replaces it");
    assert_eq!(chain.mempool(), vec![replacement.compute_txid()]);
    assert!(matches!(
        chain
            .deposit("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", sats(1))
            .await,
        Err(ChainError::WrongNetwork(..))
    ));
    assert!(matches!(chain.mine(0).await, Err(ChainError::InvalidInput(_))));
    assert!(matches!(chain.reorg(5, false).await, Err(ChainError::InvalidInput(_))));
    assert!(
        DevChain::open(&dir, Network::Mainnet, 1_000).is_err(),
        "never on mainnet"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn payout(address: &str, sats_: i64) -> PayoutOutput {
    PayoutOutput {
        address: address.to_string(),
        amount: sats(sats_),
    }
}

/// Outside addresses (another wallet's) to pay.
fn outside(index: u32) -> String {
    outside_address(&[5u8; 32], index)
}

#[tokio::test]
async fn payouts_are_built_signed_batched_bumped_and_relayed() {
    let dir = temp_dir("payouts");
    let state = Arc::new(MemoryWalletState::default());
    let (chain, wallet) = open(&dir, &state).await;
    let address = wallet.deposit_address(0).await.expect("address");
    chain.deposit(&address, sats(1_000_000)).await.expect("deposit");
    // Unconfirmed coins are not spent.
    wallet.sync(0).await.expect("sync");
    let refused = wallet.build_payout(&[payout(&outside(0), 10_000)], 2_000).await;
    assert!(matches!(refused, Err(ChainError::InsufficientFunds(_))), "{refused:?}");
    chain.mine(1).await.expect("mine");
    wallet.sync(0).await.expect("sync");

    // One transaction pays twenty payouts.
    let payouts: Vec<PayoutOutput> = (0..20).map(|i| payout(&outside(i), 10_000 + i64::from(i))).collect();
    let batch = wallet.build_payout(&payouts, 2_000).await.expect("batch");
    assert_eq!(batch.tx.output.len(), 21, "twenty payouts and change");
    assert_eq!(batch.payout_vouts.len(), 20);
    for (p, vout) in payouts.iter().zip(&batch.payout_vouts) {
        let out = &batch.tx.output[*vout as usize];
        assert_eq!(out.value, p.amount.to_amount());
    }
    // 2 sat/vB of its weight (vsize is the weight rounded up to whole vbytes).
    let vsize = i64::try_from(batch.vsize).expect("vsize");
    assert!(
        (batch.fee.get() - 2 * vsize).abs() <= 2,
        "{} sats for {vsize} vB",
        batch.fee.get()
    );
    assert!(batch.tx.input.iter().all(|i| i.sequence.is_rbf()), "replaceable");
    // Its coins are taken: nothing is left to build another payout with.
    let again = wallet.build_payout(&[payout(&outside(30), 10_000)], 2_000).await;
    assert!(matches!(again, Err(ChainError::InsufficientFunds(_))), "{again:?}");

    chain
        .broadcast(&batch.tx)
        .await
        .expect("relayed: known coins, amounts that add up");
    let bumped = wallet.bump_fee(batch.txid, 5_000).await.expect("bump");
    assert_ne!(bumped.txid, batch.txid);
    assert!(bumped.fee > batch.fee);
    assert_eq!(bumped.payout_vouts.len(), 20, "the same payouts");
    // The replacement is not out yet. The wallet holds one of the two (they spend the same
    // coins), unconfirmed, and never drops its own spend for missing from the chain (its coins
    // stay spent, see the next build); but one the source has in neither its chain nor its
    // mempool is not listed among the spends, so that the bank broadcasts it again.
    let snap = wallet.sync(0).await.expect("sync");
    let pending: Vec<_> = snap
        .spending
        .iter()
        .filter(|s| s.confirmed_height.is_none())
        .map(|s| s.txid)
        .collect();
    assert!(
        pending == vec![batch.txid] || pending.is_empty(),
        "the original, in the mempool, or the replacement, not listed: {pending:?}"
    );
    let still = wallet.build_payout(&[payout(&outside(31), 10_000)], 2_000).await;
    assert!(
        matches!(still, Err(ChainError::InsufficientFunds(_))),
        "the coins stay spent: {still:?}"
    );

    // The replacement pays more, so the chain takes it instead of the original (BIP125); the
    // original cannot come back.
    chain.broadcast(&bumped.tx).await.expect("the replacement is relayed");
    assert_eq!(chain.mempool(), vec![bumped.txid]);
    let back = chain.broadcast(&batch.tx).await;
    assert!(matches!(back, Err(ChainError::Refused(_))), "{back:?}");
    chain.mine(1).await.expect("mine");
    let snap = wallet.sync(0).await.expect("sync");
    let confirmed: Vec<_> = snap
        .spending
        .iter()
        .filter(|s| s.confirmed_height.is_some())
        .map(|s| s.txid)
        .collect();
    assert_eq!(confirmed, vec![bumped.txid]);
    assert!(
        snap.spending.iter().all(|s| s.txid != batch.txid),
        "the original is gone"
    );

    // A built transaction that is forgotten frees its coins.
    let unsent = wallet
        .build_payout(&[payout(&outside(40), 5_000)], 2_000)
        .await
        .expect("build");
    assert!(
        wallet
            .build_payout(&[payout(&outside(41), 5_000)], 2_000)
            .await
            .is_err(),
        "coins taken"
    );
    wallet.forget(unsent.txid).await.expect("forget");
    wallet
        .build_payout(&[payout(&outside(41), 5_000)], 2_000)
        .await
        .expect("coins free again");
    let _ = std::fs::remove_dir_all(&dir);
}
