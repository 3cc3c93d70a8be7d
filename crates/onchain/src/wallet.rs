//! The hot wallet: BDK's wallet engine (descriptors, address derivation, the transaction graph
//! and its canonical view across reorgs) over any [`ChainSource`], its changes kept through a
//! [`WalletStateStore`] (the Flash store). Watch-only: it never holds a private key.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bdk_wallet::chain::local_chain::CannotConnectError;
use bdk_wallet::chain::{BlockId, ChainPosition, CheckPoint, ConfirmationBlockTime, TxUpdate};
use bdk_wallet::error::CreateTxError;
use bdk_wallet::{ChangeSet, KeychainKind, SignOptions, Update, Wallet};
use bitcoin::{Address, FeeRate, Psbt, Transaction, Txid};
use flash_core::onchain::{
    bitcoin_network, parse_address, BlockRef, ChainError, ChainSource, ChainSyncRequest, ChainUpdate, ColdWallet,
    HotWallet, PayoutOutput, ReceivedOutput, SignedTx, Signer, SpendingTx, TxPosition, UnsignedPsbt, WalletSnapshot,
    WalletStateStore,
};
use flash_core::ports::BoxFuture;
use flash_core::{Network, Sats};
use tokio::sync::Mutex;

use crate::keys::HotDescriptors;

/// How many of the wallet's most recent blocks a sync sends as its known chain (plus genesis):
/// a reorganisation deeper than this is answered from genesis, which still connects.
const KNOWN_CHAIN_LEN: usize = 64;

/// Transactions confirmed less than this many blocks deep are re-checked on every sync, so a
/// reorganisation that drops one is noticed.
const RECHECK_DEPTH: u32 = 144;

/// A signer for a wallet that never signs (the cold wallet: its cosigners sign offline).
struct WatchOnly;

impl Signer for WatchOnly {
    fn sign_psbt(&self, _psbt: Psbt) -> BoxFuture<'_, Result<Psbt, ChainError>> {
        Box::pin(async { Err(ChainError::Unsupported("signing with a watch-only wallet")) })
    }
}

/// The cold wallet: the same BDK engine over a multisig descriptor, watch-only.
pub struct BdkColdWallet(BdkHotWallet);

impl BdkColdWallet {
    /// Opens cold wallet `name` over `descriptors` (see [`crate::keys::cold_descriptors`]).
    pub async fn open(
        name: &str,
        descriptors: &HotDescriptors,
        chain: Arc<dyn ChainSource>,
        state: Arc<dyn WalletStateStore>,
    ) -> Result<BdkColdWallet, ChainError> {
        BdkHotWallet::open(name, descriptors, chain, state, Arc::new(WatchOnly))
            .await
            .map(BdkColdWallet)
    }
}

impl ColdWallet for BdkColdWallet {
    fn receive_address(&self) -> BoxFuture<'_, Result<String, ChainError>> {
        Box::pin(async move {
            let inner = &self.0;
            let mut wallet = inner.wallet.lock().await;
            let address = wallet.next_unused_address(KeychainKind::External).address.to_string();
            inner.persist(&mut wallet).await?;
            Ok(address)
        })
    }

    fn sync(&self, from_height: u32) -> BoxFuture<'_, Result<WalletSnapshot, ChainError>> {
        Box::pin(self.0.sync(from_height))
    }

    fn create_psbt<'a>(
        &'a self,
        outputs: &'a [PayoutOutput],
        fee_rate_sat_per_kvb: u64,
    ) -> BoxFuture<'a, Result<UnsignedPsbt, ChainError>> {
        Box::pin(async move {
            let inner = &self.0;
            let mut wallet = inner.wallet.lock().await;
            let psbt = build_psbt(&mut wallet, outputs, inner.network, fee_rate_sat_per_kvb)?;
            // The change address it revealed must be watched from now on.
            inner.persist(&mut wallet).await?;
            let fee = psbt
                .fee()
                .map_err(|e| ChainError::InvalidInput(format!("cannot compute the fee: {e}")))?;
            Ok(UnsignedPsbt {
                psbt,
                fee: Sats::from_amount(fee).map_err(|e| ChainError::InvalidInput(e.to_string()))?,
            })
        })
    }

    fn finalize(&self, signed: Vec<Psbt>) -> BoxFuture<'_, Result<SignedTx, ChainError>> {
        Box::pin(async move {
            let mut signed = signed.into_iter();
            let mut psbt = signed
                .next()
                .ok_or_else(|| ChainError::InvalidInput("no signed PSBT given".into()))?;
            for other in signed {
                psbt.combine(other)
                    .map_err(|e| ChainError::InvalidInput(format!("the PSBTs are not of one transaction: {e}")))?;
            }
            let inner = &self.0;
            let mut wallet = inner.wallet.lock().await;
            inner.finalize_and_keep(&mut wallet, psbt, &[]).await
        })
    }

    fn broadcast<'a>(&'a self, tx: &'a Transaction) -> BoxFuture<'a, Result<(), ChainError>> {
        self.0.chain.broadcast(tx)
    }

    fn forget(&self, txid: Txid) -> BoxFuture<'_, Result<(), ChainError>> {
        HotWallet::forget(&self.0, txid)
    }

    fn owns<'a>(&'a self, script: &'a bitcoin::Script) -> BoxFuture<'a, bool> {
        HotWallet::owns(&self.0, script)
    }

    fn reload(&self) -> BoxFuture<'_, Result<(), ChainError>> {
        Box::pin(self.0.reload_state())
    }
}

/// The BDK hot wallet over a chain source.
pub struct BdkHotWallet {
    name: String,
    network: Network,
    descriptors: HotDescriptors,
    wallet: Mutex<Wallet>,
    chain: Arc<dyn ChainSource>,
    state: Arc<dyn WalletStateStore>,
    signer: Arc<dyn Signer>,
}

/// Wallet `name` as its recorded state says (or new, when nothing is recorded); refuses state
/// recorded for other descriptors or another network.
async fn load_wallet(
    name: &str,
    descriptors: &HotDescriptors,
    network: Network,
    state: &dyn WalletStateStore,
) -> Result<Wallet, ChainError> {
    let mut merged = ChangeSet::default();
    for change in state.load_wallet_state(name).await? {
        let change: ChangeSet = serde_json::from_str(&change).map_err(storage)?;
        bdk_wallet::chain::Merge::merge(&mut merged, change);
    }
    let loaded = Wallet::load()
        .descriptor(KeychainKind::External, Some(descriptors.external.clone()))
        .descriptor(KeychainKind::Internal, Some(descriptors.internal.clone()))
        .check_network(bitcoin_network(network))
        .load_wallet_no_persist(merged)
        .map_err(|e| ChainError::Storage(format!("recorded wallet state does not match this wallet: {e}")))?;
    let wallet = match loaded {
        Some(wallet) => wallet,
        None => Wallet::create(descriptors.external.clone(), descriptors.internal.clone())
            .network(bitcoin_network(network))
            .create_wallet_no_persist()
            .map_err(|e| ChainError::InvalidInput(format!("bad wallet descriptor: {e}")))?,
    };
    Ok(wallet)
}

fn storage(e: impl std::fmt::Display) -> ChainError {
    ChainError::Storage(e.to_string())
}

impl BdkHotWallet {
    /// Opens wallet `name` with `descriptors`, signing with `signer`: loads its recorded state,
    /// or creates it (and records that). Refuses state recorded for other descriptors or
    /// another network.
    pub async fn open(
        name: &str,
        descriptors: &HotDescriptors,
        chain: Arc<dyn ChainSource>,
        state: Arc<dyn WalletStateStore>,
        signer: Arc<dyn Signer>,
    ) -> Result<BdkHotWallet, ChainError> {
        let network = chain.network();
        let wallet = load_wallet(name, descriptors, network, state.as_ref()).await?;
        let hot = BdkHotWallet {
            name: name.to_string(),
            network,
            descriptors: descriptors.clone(),
            wallet: Mutex::new(wallet),
            chain,
            state,
            signer,
        };
        hot.persist(&mut *hot.wallet.lock().await).await?;
        Ok(hot)
    }

    /// Reads the wallet's state again from the store, for changes another process recorded
    /// (a flashd node that ran the wallet before this one took over). Changes staged here and
    /// not yet recorded are recorded first.
    async fn reload_state(&self) -> Result<(), ChainError> {
        let mut wallet = self.wallet.lock().await;
        self.persist(&mut wallet).await?;
        *wallet = load_wallet(&self.name, &self.descriptors, self.network, self.state.as_ref()).await?;
        Ok(())
    }

    /// Records the wallet's staged changes; they stay staged if recording fails, so nothing is
    /// lost.
    async fn persist(&self, wallet: &mut Wallet) -> Result<(), ChainError> {
        let Some(staged) = wallet.staged() else { return Ok(()) };
        let change = serde_json::to_string(staged).map_err(storage)?;
        self.state.append_wallet_state(&self.name, change).await?;
        wallet.take_staged();
        Ok(())
    }

    /// What to ask the chain source.
    fn sync_request(wallet: &Wallet) -> ChainSyncRequest {
        let tip = wallet.latest_checkpoint();
        let mut known_chain: Vec<BlockRef> = tip
            .iter()
            .take(KNOWN_CHAIN_LEN)
            .map(|cp| block_ref(cp.block_id()))
            .collect();
        if let Some(genesis) = tip.get(0) {
            known_chain.push(block_ref(genesis.block_id()));
        }
        let recheck_from = tip.height().saturating_sub(RECHECK_DEPTH);
        let txids = wallet
            .transactions()
            .filter(|tx| match tx.chain_position.confirmation_height_upper_bound() {
                Some(height) => height >= recheck_from,
                None => true,
            })
            .map(|tx| tx.tx_node.txid)
            .collect();
        ChainSyncRequest {
            known_chain,
            scripts: wallet.spk_index().revealed_spks(..).map(|(_, spk)| spk).collect(),
            outpoints: wallet.list_unspent().map(|o| o.outpoint).collect(),
            txids,
        }
    }

    /// The wallet as of a sync whose chain source's best block is `source_tip`. BDK keeps the
    /// blocks it knows above a source's tip when the chain only got shorter (a block
    /// invalidated and none yet in its place), so what they confirmed counts as unconfirmed
    /// here, as the source sees it.
    ///
    /// `lost` are the wallet's own spends the source has in neither its chain nor its mempool:
    /// the wallet keeps them (their coins stay spent) but they are not in `spending`.
    fn snapshot(
        &self,
        wallet: &Wallet,
        from_height: u32,
        source_tip: Option<BlockRef>,
        lost: &HashSet<Txid>,
    ) -> WalletSnapshot {
        let wallet_tip = block_ref(wallet.latest_checkpoint().block_id());
        let tip = source_tip
            .filter(|t| t.height < wallet_tip.height)
            .unwrap_or(wallet_tip);
        let in_chain = |height: Option<u32>| height.filter(|h| *h <= tip.height);
        let received = wallet
            .list_output()
            .filter(|o| o.keychain == KeychainKind::External)
            .filter_map(|o| {
                let confirmed_height = in_chain(o.chain_position.confirmation_height_upper_bound());
                if confirmed_height.is_some_and(|h| h < from_height) {
                    return None;
                }
                let address = Address::from_script(&o.txout.script_pubkey, bitcoin_network(self.network)).ok()?;
                Some(ReceivedOutput {
                    outpoint: o.outpoint,
                    address: address.to_string(),
                    amount: Sats::from_amount(o.txout.value).ok()?,
                    confirmed_height,
                })
            })
            .collect();
        let spending = wallet
            .transactions()
            .filter(|tx| spends_ours(wallet, &tx.tx_node.tx) && !lost.contains(&tx.tx_node.txid))
            .filter_map(|tx| {
                let confirmed_height = in_chain(tx.chain_position.confirmation_height_upper_bound());
                if confirmed_height.is_some_and(|h| h < from_height) {
                    return None;
                }
                Some(SpendingTx {
                    txid: tx.tx_node.txid,
                    confirmed_height,
                })
            })
            .collect();
        let balance = wallet.balance();
        let sats = |a: bitcoin::Amount| Sats::from_amount(a).unwrap_or(Sats::ZERO);
        WalletSnapshot {
            tip,
            received,
            confirmed_balance: sats(balance.confirmed),
            unconfirmed_balance: sats(balance.trusted_pending + balance.untrusted_pending),
            spending,
        }
    }

    /// Signs `psbt` with the signer, finalises it with the wallet's descriptors, marks its
    /// coins spent and records that.
    async fn sign_and_keep(
        &self,
        wallet: &mut Wallet,
        psbt: Psbt,
        payouts: &[PayoutOutput],
    ) -> Result<SignedTx, ChainError> {
        let psbt = self.signer.sign_psbt(psbt).await?;
        self.finalize_and_keep(wallet, psbt, payouts).await
    }

    /// Finalises `psbt` with the wallet's descriptors, marks its coins spent and records that.
    async fn finalize_and_keep(
        &self,
        wallet: &mut Wallet,
        mut psbt: Psbt,
        payouts: &[PayoutOutput],
    ) -> Result<SignedTx, ChainError> {
        let finalized = wallet
            .finalize_psbt(&mut psbt, SignOptions::default())
            .map_err(|e| ChainError::InvalidInput(format!("cannot finalise the transaction: {e}")))?;
        if !finalized {
            return Err(ChainError::InvalidInput(
                "not every input is signed (enough cosigners must sign each input)".into(),
            ));
        }
        let fee = psbt
            .fee()
            .map_err(|e| ChainError::InvalidInput(format!("cannot compute the fee: {e}")))?;
        let tx = psbt
            .extract_tx()
            .map_err(|e| ChainError::InvalidInput(format!("cannot extract the transaction: {e}")))?;
        let payout_vouts = payout_vouts(&tx, payouts, self.network)?;
        wallet.apply_unconfirmed_txs([(tx.clone(), now_secs())]);
        self.persist(wallet).await?;
        Ok(SignedTx {
            txid: tx.compute_txid(),
            fee: Sats::from_amount(fee).map_err(|e| ChainError::InvalidInput(e.to_string()))?,
            vsize: u64::try_from(tx.vsize()).unwrap_or(u64::MAX),
            payout_vouts,
            tx,
        })
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fee rate in satoshis per 1,000 vbytes as BDK's per-1,000-weight-units rate, rounded up.
fn fee_rate(sat_per_kvb: u64) -> FeeRate {
    FeeRate::from_sat_per_kwu(sat_per_kvb.div_ceil(4))
}

/// An unsigned PSBT paying `outputs` from the wallet's confirmed coins at
/// `fee_rate_sat_per_kvb`, change back to the wallet.
fn build_psbt(
    wallet: &mut Wallet,
    outputs: &[PayoutOutput],
    network: Network,
    fee_rate_sat_per_kvb: u64,
) -> Result<Psbt, ChainError> {
    let recipients = outputs
        .iter()
        .map(|o| {
            Ok((
                parse_address(&o.address, network)?.script_pubkey(),
                o.amount.to_amount(),
            ))
        })
        .collect::<Result<Vec<_>, ChainError>>()?;
    let balance = wallet.balance();
    let mut builder = wallet.build_tx();
    builder
        .set_recipients(recipients)
        .fee_rate(fee_rate(fee_rate_sat_per_kvb))
        .exclude_unconfirmed();
    builder.finish().map_err(|e| create_error(e, &balance))
}

/// A refused transaction as a [`ChainError`]. A shortfall says what the wallet holds, telling
/// confirmed coins from unconfirmed ones: payouts spend only confirmed coins, so a wallet whose
/// only coin is unconfirmed change is waiting for a block, not empty.
fn create_error(e: CreateTxError, balance: &bdk_wallet::Balance) -> ChainError {
    match e {
        CreateTxError::CoinSelection(e) => {
            let unconfirmed = balance.trusted_pending + balance.untrusted_pending;
            let waiting = if unconfirmed > bitcoin::Amount::ZERO {
                format!(
                    " and {} sats unconfirmed (change or deposits waiting for a block: payouts spend only \
                     confirmed coins, so this goes out once they confirm)",
                    unconfirmed.to_sat()
                )
            } else {
                String::new()
            };
            ChainError::InsufficientFunds(format!(
                "{e}; the hot wallet has {} sats confirmed{waiting}",
                balance.confirmed.to_sat()
            ))
        }
        other => ChainError::InvalidInput(other.to_string()),
    }
}

/// Where each payout landed in `tx` (outputs may be shuffled).
fn payout_vouts(tx: &Transaction, payouts: &[PayoutOutput], network: Network) -> Result<Vec<u32>, ChainError> {
    let mut used = vec![false; tx.output.len()];
    payouts
        .iter()
        .map(|p| {
            let script = parse_address(&p.address, network)?.script_pubkey();
            let found = tx
                .output
                .iter()
                .enumerate()
                .position(|(i, o)| !used[i] && o.script_pubkey == script && o.value == p.amount.to_amount())
                .ok_or_else(|| {
                    ChainError::InvalidInput(format!("payout to {} is not in the transaction", p.address))
                })?;
            used[found] = true;
            u32::try_from(found).map_err(|_| ChainError::InvalidInput("too many outputs".into()))
        })
        .collect()
}

fn block_ref(b: BlockId) -> BlockRef {
    BlockRef {
        height: b.height,
        hash: b.hash,
    }
}

/// Whether `tx` spends one of the wallet's coins (a transaction the wallet made).
fn spends_ours(wallet: &Wallet, tx: &Transaction) -> bool {
    tx.input
        .iter()
        .any(|i| wallet.spk_index().txout(i.previous_output).is_some())
}

/// The chain source's answer in BDK's terms.
fn to_bdk_update(update: ChainUpdate) -> Update {
    let mut tx_update = TxUpdate::<ConfirmationBlockTime>::default();
    for chain_tx in update.transactions {
        let txid = chain_tx.tx.compute_txid();
        match chain_tx.position {
            TxPosition::Confirmed { block, time } => {
                let anchor = ConfirmationBlockTime {
                    block_id: BlockId {
                        height: block.height,
                        hash: block.hash,
                    },
                    confirmation_time: time,
                };
                tx_update.anchors.insert((anchor, txid));
            }
            TxPosition::Mempool { seen_at } => {
                tx_update.seen_ats.insert((txid, seen_at));
            }
        }
        tx_update.txs.push(chain_tx.tx);
    }
    tx_update.evicted_ats = update.missing.into_iter().collect::<HashSet<_>>();
    let chain = CheckPoint::from_block_ids(update.chain.iter().map(|b| BlockId {
        height: b.height,
        hash: b.hash,
    }))
    .ok();
    Update {
        last_active_indices: BTreeMap::new(),
        tx_update,
        chain,
    }
}

impl HotWallet for BdkHotWallet {
    fn network(&self) -> Network {
        self.network
    }

    fn source_kind(&self) -> &'static str {
        self.chain.kind()
    }

    fn internal_address(&self) -> BoxFuture<'_, Result<String, ChainError>> {
        Box::pin(async move {
            let mut wallet = self.wallet.lock().await;
            let address = wallet.next_unused_address(KeychainKind::Internal).address.to_string();
            self.persist(&mut wallet).await?;
            Ok(address)
        })
    }

    fn owns<'a>(&'a self, script: &'a bitcoin::Script) -> BoxFuture<'a, bool> {
        Box::pin(async move { self.wallet.lock().await.is_mine(script.to_owned()) })
    }

    fn deposit_address(&self, index: u32) -> BoxFuture<'_, Result<String, ChainError>> {
        Box::pin(async move {
            let mut wallet = self.wallet.lock().await;
            // Revealing is what makes a sync watch the address.
            let _ = wallet.reveal_addresses_to(KeychainKind::External, index).count();
            let address = wallet.peek_address(KeychainKind::External, index).address.to_string();
            self.persist(&mut wallet).await?;
            Ok(address)
        })
    }

    fn sync(&self, from_height: u32) -> BoxFuture<'_, Result<WalletSnapshot, ChainError>> {
        Box::pin(async move {
            // The chain source is asked without the lock held: address requests go on meanwhile.
            let request = Self::sync_request(&*self.wallet.lock().await);
            let mut update = self.chain.sync(request).await?;
            let source_tip = update.chain.last().copied();
            let mut wallet = self.wallet.lock().await;
            // Our own spends (payout batches, sweeps) are never taken as gone because a mempool
            // lost them: their coins stay spent until a conflicting transaction confirms, so
            // they cannot be spent twice. They are left out of this sync's `spending`, as the
            // snapshot promises, so that the bank broadcasts them again (or replaces them).
            let mut lost = HashSet::new();
            update.missing.retain(|(txid, _)| {
                let ours = wallet
                    .get_tx(*txid)
                    .is_some_and(|tx| spends_ours(&wallet, &tx.tx_node.tx));
                if ours {
                    lost.insert(*txid);
                }
                !ours
            });
            wallet
                .apply_update(to_bdk_update(update))
                .map_err(|e: CannotConnectError| {
                    ChainError::Unavailable(format!("the chain moved during the sync, try again: {e}"))
                })?;
            self.persist(&mut wallet).await?;
            Ok(self.snapshot(&wallet, from_height, source_tip, &lost))
        })
    }

    fn wait_for_activity(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        self.chain.wait_for_activity(timeout)
    }

    fn fee_rate(&self, target_blocks: u16) -> BoxFuture<'_, Result<u64, ChainError>> {
        self.chain.fee_rate(target_blocks)
    }

    fn build_payout<'a>(
        &'a self,
        outputs: &'a [PayoutOutput],
        fee_rate_sat_per_kvb: u64,
    ) -> BoxFuture<'a, Result<SignedTx, ChainError>> {
        Box::pin(async move {
            if outputs.is_empty() {
                return Err(ChainError::InvalidInput("a payout needs at least one output".into()));
            }
            let mut wallet = self.wallet.lock().await;
            let psbt = build_psbt(&mut wallet, outputs, self.network, fee_rate_sat_per_kvb)?;
            self.sign_and_keep(&mut wallet, psbt, outputs).await
        })
    }

    fn bump_fee(&self, txid: Txid, fee_rate_sat_per_kvb: u64) -> BoxFuture<'_, Result<SignedTx, ChainError>> {
        Box::pin(async move {
            let mut wallet = self.wallet.lock().await;
            let original = wallet
                .get_tx(txid)
                .ok_or_else(|| ChainError::InvalidInput(format!("transaction {txid} is not the wallet's")))?;
            if matches!(original.chain_position, ChainPosition::Confirmed { .. }) {
                return Err(ChainError::Refused(format!("transaction {txid} is already confirmed")));
            }
            // The payouts are the outputs that do not pay the wallet itself.
            let payouts: Vec<PayoutOutput> = original
                .tx_node
                .tx
                .output
                .iter()
                .filter(|o| !wallet.is_mine(o.script_pubkey.clone()))
                .filter_map(|o| {
                    let address = Address::from_script(&o.script_pubkey, bitcoin_network(self.network)).ok()?;
                    Some(PayoutOutput {
                        address: address.to_string(),
                        amount: Sats::from_amount(o.value).ok()?,
                    })
                })
                .collect();
            let balance = wallet.balance();
            let mut builder = wallet
                .build_fee_bump(txid)
                .map_err(|e| ChainError::Refused(format!("cannot replace {txid}: {e}")))?;
            builder.fee_rate(fee_rate(fee_rate_sat_per_kvb));
            let psbt = builder.finish().map_err(|e| create_error(e, &balance))?;
            self.sign_and_keep(&mut wallet, psbt, &payouts).await
        })
    }

    fn broadcast<'a>(&'a self, tx: &'a Transaction) -> BoxFuture<'a, Result<(), ChainError>> {
        self.chain.broadcast(tx)
    }

    fn forget(&self, txid: Txid) -> BoxFuture<'_, Result<(), ChainError>> {
        Box::pin(async move {
            let mut wallet = self.wallet.lock().await;
            wallet.apply_evicted_txs([(txid, now_secs())]);
            self.persist(&mut wallet).await
        })
    }

    fn unconfirmed_spends(&self) -> BoxFuture<'_, Result<Vec<Txid>, ChainError>> {
        Box::pin(async move {
            let wallet = self.wallet.lock().await;
            Ok(wallet
                .transactions()
                .filter(|tx| !tx.chain_position.is_confirmed())
                .filter(|tx| spends_ours(&wallet, &tx.tx_node.tx))
                .map(|tx| tx.tx_node.txid)
                .collect())
        })
    }

    fn reload(&self) -> BoxFuture<'_, Result<(), ChainError>> {
        Box::pin(self.reload_state())
    }
}

#[cfg(test)]
mod tests {
    use bdk_wallet::coin_selection::InsufficientFunds;
    use bdk_wallet::error::CreateTxError;
    use bdk_wallet::Balance;
    use bitcoin::Amount;

    use super::*;

    fn shortfall() -> CreateTxError {
        CreateTxError::CoinSelection(InsufficientFunds {
            needed: Amount::from_sat(50_300),
            available: Amount::ZERO,
        })
    }

    #[test]
    fn a_shortfall_tells_unconfirmed_coins_from_an_empty_wallet() {
        let waiting = Balance {
            trusted_pending: Amount::from_sat(80_000),
            ..Balance::default()
        };
        let ChainError::InsufficientFunds(why) = create_error(shortfall(), &waiting) else {
            panic!("a shortfall");
        };
        assert!(why.contains("0 sats confirmed"), "{why}");
        assert!(why.contains("80000 sats unconfirmed"), "{why}");
        assert!(why.contains("once they confirm"), "{why}");

        let ChainError::InsufficientFunds(why) = create_error(shortfall(), &Balance::default()) else {
            panic!("a shortfall");
        };
        assert!(why.ends_with("the hot wallet has 0 sats confirmed"), "{why}");
    }
}
