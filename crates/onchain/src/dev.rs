//! The `dev` chain: an honest simulator for the embedded tier and tests. It keeps a real chain
//! of real blocks (linked headers, merkle roots, regtest proof of work, BIP34 heights) starting
//! at the network's genesis block, and a mempool of real transactions. Deposits "from outside"
//! are transactions spending a simulated outside coin; everything else must spend outputs the
//! chain knows, with witnesses that verify (P2WPKH, and P2WSH multisig). Mining, reorganisations and deposits are operator commands (dev-only admin
//! mutations); nothing happens on its own.
//!
//! State is saved to `DIR/chain.json` after every change (written to a temporary file, synced,
//! then renamed), so a restart finds the same chain.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Message, Secp256k1};
use bitcoin::sighash::SighashCache;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, Block, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness,
};
use flash_core::onchain::{
    bitcoin_network, parse_address, BlockRef, BroadcastBehaviour, ChainError, ChainSimulator, ChainSource,
    ChainSyncRequest, ChainTx, ChainUpdate, TxPosition,
};
use flash_core::ports::BoxFuture;
use flash_core::{Network, Sats};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

/// Regtest's proof-of-work limit, used for every simulated block.
const REGTEST_BITS: u32 = 0x207f_ffff;

/// A simulated outside coin a deposit spends: its witness is shaped like a P2WPKH spend (a
/// 72-byte signature and a 33-byte key), so sizes and fees look real.
fn outside_input() -> TxIn {
    let mut txid = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut txid);
    TxIn {
        previous_output: OutPoint {
            txid: Txid::from_byte_array(txid),
            vout: 0,
        },
        script_sig: ScriptBuf::new(),
        sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
        witness: Witness::from_slice(&[vec![0x30; 72], vec![0x02; 33]]),
    }
}

/// Saved form of the chain.
#[derive(Default, Serialize, Deserialize)]
struct Saved {
    /// Blocks above genesis, consensus-encoded hex, lowest first.
    blocks: Vec<String>,
    /// Mempool transactions (hex) and when they arrived (Unix seconds).
    mempool: Vec<(String, u64)>,
}

struct State {
    /// The best chain, genesis first.
    blocks: Vec<Block>,
    /// Unconfirmed transactions in arrival order, with arrival time.
    mempool: Vec<(Arc<Transaction>, u64)>,
}

/// The simulated chain.
pub struct DevChain {
    network: Network,
    path: PathBuf,
    fee_rate_sat_per_kvb: u64,
    /// Mempool transactions paying less than this (satoshis per 1,000 vbytes) are not mined.
    mining_floor: std::sync::atomic::AtomicU64,
    state: Mutex<State>,
    activity: Notify,
    /// What broadcasts do; not saved (a restart relays again).
    broadcasts: watch::Sender<BroadcastBehaviour>,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn decode<T: bitcoin::consensus::Decodable>(hex: &str, what: &str) -> Result<T, ChainError> {
    deserialize_hex(hex).map_err(|e| ChainError::Storage(format!("dev chain: unreadable {what}: {e}")))
}

impl DevChain {
    /// Opens the simulated chain saved in `dir` (created if missing), for `network`, quoting
    /// `fee_rate_sat_per_kvb` as its fee estimate. Refused on mainnet.
    pub fn open(dir: &Path, network: Network, fee_rate_sat_per_kvb: u64) -> Result<DevChain, ChainError> {
        if !network.allows_dev_features() {
            return Err(ChainError::Unsupported("the dev chain simulator on mainnet"));
        }
        std::fs::create_dir_all(dir).map_err(|e| ChainError::Storage(format!("{}: {e}", dir.display())))?;
        let path = dir.join("chain.json");
        let saved: Saved = match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| ChainError::Storage(format!("{}: {e}", path.display())))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(ChainError::Storage(format!("{}: {e}", path.display()))),
        };
        let mut blocks = vec![bitcoin::constants::genesis_block(bitcoin_network(network))];
        for hex in &saved.blocks {
            let block: Block = decode(hex, "block")?;
            let tip = blocks.last().map(|b| b.block_hash());
            if Some(block.header.prev_blockhash) != tip {
                return Err(ChainError::Storage("dev chain: saved blocks do not link up".into()));
            }
            blocks.push(block);
        }
        let mempool = saved
            .mempool
            .iter()
            .map(|(hex, seen)| Ok((Arc::new(decode::<Transaction>(hex, "transaction")?), *seen)))
            .collect::<Result<_, ChainError>>()?;
        tracing::warn!(%network, dir = %dir.display(), "on-chain backend is the dev SIMULATOR: no real bitcoin moves");
        Ok(DevChain {
            network,
            path,
            fee_rate_sat_per_kvb,
            mining_floor: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(State { blocks, mempool }),
            activity: Notify::new(),
            broadcasts: watch::Sender::new(BroadcastBehaviour::Relay),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Saves `state` (temporary file, sync, rename) and wakes a waiting watcher.
    fn save(&self, state: &State) -> Result<(), ChainError> {
        let saved = Saved {
            blocks: state.blocks.iter().skip(1).map(serialize_hex).collect(),
            mempool: state
                .mempool
                .iter()
                .map(|(tx, seen)| (serialize_hex(&**tx), *seen))
                .collect(),
        };
        let io = |e: std::io::Error| ChainError::Storage(format!("{}: {e}", self.path.display()));
        let text = serde_json::to_vec(&saved).map_err(|e| ChainError::Storage(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp).map_err(io)?;
            file.write_all(&text).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        self.activity.notify_one();
        Ok(())
    }

    /// Applies `change` to a copy of the state, saves it, and only then makes it current: a
    /// failed save changes nothing.
    fn change<T>(&self, change: impl FnOnce(&mut State) -> Result<T, ChainError>) -> Result<T, ChainError> {
        let mut state = self.lock();
        let mut next = State {
            blocks: state.blocks.clone(),
            mempool: state.mempool.clone(),
        };
        let out = change(&mut next)?;
        self.save(&next)?;
        *state = next;
        Ok(out)
    }

    /// From now on, blocks leave out mempool transactions paying less than
    /// `sat_per_kvb` (they stay in the mempool, stuck, until replaced or the floor drops).
    /// Simulated deposits always get in.
    pub fn set_mining_floor(&self, sat_per_kvb: u64) {
        self.mining_floor
            .store(sat_per_kvb, std::sync::atomic::Ordering::Relaxed);
    }

    /// The height of the tip.
    pub fn height(&self) -> u32 {
        u32::try_from(self.lock().blocks.len().saturating_sub(1)).unwrap_or(u32::MAX)
    }

    /// The mempool's txids, in arrival order.
    pub fn mempool(&self) -> Vec<Txid> {
        self.lock().mempool.iter().map(|(tx, _)| tx.compute_txid()).collect()
    }

    /// Disconnects the top `depth` blocks with nothing in their place, as bitcoind's
    /// `invalidateblock` does: the chain gets shorter and their transactions go back to the
    /// mempool, ahead of what was there. Returns the new tip.
    pub fn disconnect(&self, depth: u32) -> Result<BlockRef, ChainError> {
        let tip = self.change(|state| {
            let mut returned = state.cut(depth)?;
            returned.append(&mut state.mempool);
            state.mempool = returned;
            Ok(state.tip())
        })?;
        tracing::info!(depth, height = tip.height, "dev chain: blocks disconnected");
        Ok(tip)
    }
}

impl State {
    /// Takes the top `depth` blocks off the chain; returns their transactions (coinbases
    /// aside), as just seen.
    fn cut(&mut self, depth: u32) -> Result<Vec<(Arc<Transaction>, u64)>, ChainError> {
        let height = self.tip().height;
        if depth == 0 || depth > height {
            return Err(ChainError::InvalidInput(format!(
                "reorg depth must be between 1 and the chain height ({height})"
            )));
        }
        let cut = self.blocks.len() - depth as usize;
        Ok(self
            .blocks
            .drain(cut..)
            .flat_map(|b| b.txdata.into_iter().skip(1))
            .map(|tx| (Arc::new(tx), now_secs()))
            .collect())
    }

    fn tip(&self) -> BlockRef {
        let height = u32::try_from(self.blocks.len().saturating_sub(1)).unwrap_or(u32::MAX);
        let hash = self
            .blocks
            .last()
            .map(Block::block_hash)
            .unwrap_or_else(|| unreachable!("genesis is always there"));
        BlockRef { height, hash }
    }

    /// Mines one block holding the mempool's transactions that pay at least `floor` (satoshis
    /// per 1,000 vbytes; those whose fee is unknown, the simulated deposits, always). A random
    /// extra nonce in the coinbase makes every block new, also when it replaces one with the
    /// same transactions.
    fn mine_one(&mut self, floor: u64) {
        let mut extra_nonce = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut extra_nonce);
        let tip = self.tip();
        let height = tip.height + 1;
        let prev_time = self.blocks.last().map_or(0, |b| b.header.time);
        let coinbase = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: bitcoin::script::Builder::new()
                    .push_int(i64::from(height))
                    .push_slice(b"flash dev chain")
                    .push_slice(extra_nonce)
                    .into_script(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::new_op_return([]),
            }],
        };
        let pays = |state: &State, tx: &Transaction| {
            let vsize = u64::try_from(tx.vsize()).unwrap_or(u64::MAX);
            state
                .fee_of(tx)
                .is_none_or(|fee| u128::from(fee.to_sat()) * 1_000 >= u128::from(floor) * u128::from(vsize))
        };
        let (mined, stuck): (Vec<_>, Vec<_>) = std::mem::take(&mut self.mempool)
            .into_iter()
            .partition(|(tx, _)| pays(self, tx));
        self.mempool = stuck;
        let mut txdata = vec![coinbase];
        txdata.extend(mined.into_iter().map(|(tx, _)| Arc::unwrap_or_clone(tx)));
        let mut block = Block {
            header: Header {
                version: BlockVersion::TWO,
                prev_blockhash: tip.hash,
                merkle_root: TxMerkleNode::all_zeros(),
                time: u32::try_from(now_secs())
                    .unwrap_or(u32::MAX)
                    .max(prev_time.saturating_add(1)),
                bits: CompactTarget::from_consensus(REGTEST_BITS),
                nonce: 0,
            },
            txdata,
        };
        if let Some(root) = block.compute_merkle_root() {
            block.header.merkle_root = root;
        }
        while block.header.validate_pow(block.header.target()).is_err() {
            block.header.nonce = block.header.nonce.wrapping_add(1);
        }
        self.blocks.push(block);
    }

    /// Every output the chain and mempool created and did not spend, with its value.
    fn unspent(&self) -> HashMap<OutPoint, TxOut> {
        let txs = self
            .blocks
            .iter()
            .flat_map(|b| b.txdata.iter())
            .chain(self.mempool.iter().map(|(tx, _)| &**tx));
        let mut unspent = HashMap::new();
        for tx in txs {
            for input in &tx.input {
                unspent.remove(&input.previous_output);
            }
            let txid = tx.compute_txid();
            for (vout, out) in tx.output.iter().enumerate() {
                let vout = u32::try_from(vout).unwrap_or(u32::MAX);
                unspent.insert(OutPoint { txid, vout }, out.clone());
            }
        }
        unspent
    }

    /// The fee `tx` pays, when all its inputs are outputs the chain or mempool created.
    fn fee_of(&self, tx: &Transaction) -> Option<Amount> {
        let created: HashMap<OutPoint, Amount> = self
            .blocks
            .iter()
            .flat_map(|b| b.txdata.iter())
            .chain(self.mempool.iter().map(|(t, _)| &**t))
            .flat_map(|t| {
                let txid = t.compute_txid();
                t.output.iter().enumerate().map(move |(vout, o)| {
                    let vout = u32::try_from(vout).unwrap_or(u32::MAX);
                    (OutPoint { txid, vout }, o.value)
                })
            })
            .collect();
        let value_in = tx
            .input
            .iter()
            .map(|i| created.get(&i.previous_output).copied())
            .try_fold(Amount::ZERO, |sum, v| sum.checked_add(v?))?;
        let value_out = tx
            .output
            .iter()
            .try_fold(Amount::ZERO, |sum, o| sum.checked_add(o.value))?;
        value_in.checked_sub(value_out)
    }

    /// Makes room for `tx` when it spends coins of mempool transactions (BIP125): replaces them
    /// and their descendants if it pays a higher fee than they all do; refuses otherwise.
    fn replace_conflicts(&mut self, tx: &Transaction) -> Result<(), ChainError> {
        let spent: HashSet<OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
        let mut gone: HashSet<Txid> = self
            .mempool
            .iter()
            .filter(|(t, _)| t.input.iter().any(|i| spent.contains(&i.previous_output)))
            .map(|(t, _)| t.compute_txid())
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        for (t, _) in &self.mempool {
            if t.input.iter().any(|i| gone.contains(&i.previous_output.txid)) {
                gone.insert(t.compute_txid());
            }
        }
        let replaced: Option<Amount> = self
            .mempool
            .iter()
            .filter(|(t, _)| gone.contains(&t.compute_txid()))
            .map(|(t, _)| self.fee_of(t))
            .try_fold(Amount::ZERO, |sum, fee| sum.checked_add(fee?));
        match (replaced, self.fee_of(tx)) {
            (Some(replaced), Some(fee)) if fee > replaced => {
                self.mempool.retain(|(t, _)| !gone.contains(&t.compute_txid()));
                Ok(())
            }
            _ => Err(ChainError::Refused(
                "conflicts with a mempool transaction and does not pay more to replace it".into(),
            )),
        }
    }

    /// Whether the chain or the mempool has `txid`.
    fn knows(&self, txid: &Txid) -> bool {
        let mut known = self
            .blocks
            .iter()
            .flat_map(|b| b.txdata.iter())
            .chain(self.mempool.iter().map(|(t, _)| &**t));
        known.any(|t| t.compute_txid() == *txid)
    }

    /// Checks a new transaction as a node would before relaying it: known, unspent inputs
    /// worth at least its outputs, and their witnesses' signatures.
    fn accept(&self, tx: &Transaction) -> Result<(), ChainError> {
        if tx.input.is_empty() || tx.output.is_empty() {
            return Err(ChainError::Refused("a transaction needs inputs and outputs".into()));
        }
        let unspent = self.unspent();
        let mut value_in = Amount::ZERO;
        for input in &tx.input {
            let Some(prev) = unspent.get(&input.previous_output) else {
                return Err(ChainError::Refused(format!(
                    "input {} is missing or already spent",
                    input.previous_output
                )));
            };
            value_in = value_in.checked_add(prev.value).unwrap_or(Amount::MAX);
        }
        let value_out = tx
            .output
            .iter()
            .try_fold(Amount::ZERO, |sum, o| sum.checked_add(o.value))
            .ok_or_else(|| ChainError::Refused("outputs overflow".into()))?;
        if value_out > value_in {
            return Err(ChainError::Refused(format!(
                "outputs ({value_out}) exceed inputs ({value_in})"
            )));
        }
        let mut sighashes = SighashCache::new(tx);
        for (i, input) in tx.input.iter().enumerate() {
            if let Some(prev) = unspent.get(&input.previous_output) {
                check_witness(&mut sighashes, i, input, prev)
                    .map_err(|why| ChainError::Refused(format!("input {i}: {why}")))?;
            }
        }
        Ok(())
    }
}

/// Checks input `i`'s witness as a node would for the two kinds of coins Flash spends: P2WPKH
/// (the hot wallet) and P2WSH multisig (cold storage). Other kinds are refused.
fn check_witness(
    sighashes: &mut SighashCache<&Transaction>,
    i: usize,
    input: &TxIn,
    prev: &TxOut,
) -> Result<(), String> {
    let secp = Secp256k1::verification_only();
    let items: Vec<&[u8]> = input.witness.iter().collect();
    let signature =
        |bytes: &[u8]| bitcoin::ecdsa::Signature::from_slice(bytes).map_err(|e| format!("bad signature encoding: {e}"));
    if prev.script_pubkey.is_p2wpkh() {
        let [sig, key] = items.as_slice() else {
            return Err("a P2WPKH spend needs a signature and a key".into());
        };
        let key = bitcoin::PublicKey::from_slice(key).map_err(|e| format!("bad key: {e}"))?;
        let expected = key
            .wpubkey_hash()
            .map(|h| ScriptBuf::new_p2wpkh(&h))
            .map_err(|_| "an uncompressed key".to_string())?;
        if expected != prev.script_pubkey {
            return Err("the key is not the coin's".into());
        }
        let sig = signature(sig)?;
        let hash = sighashes
            .p2wpkh_signature_hash(i, &prev.script_pubkey, prev.value, sig.sighash_type)
            .map_err(|e| e.to_string())?;
        return secp
            .verify_ecdsa(&Message::from(hash), &sig.signature, &key.inner)
            .map_err(|_| "the signature does not verify".into());
    }
    if prev.script_pubkey.is_p2wsh() {
        let Some((script, sigs)) = items.split_last() else {
            return Err("a P2WSH spend needs its witness script".into());
        };
        let script = bitcoin::Script::from_bytes(script);
        if ScriptBuf::new_p2wsh(&script.wscript_hash()) != prev.script_pubkey {
            return Err("the witness script is not the coin's".into());
        }
        let (threshold, keys) = multisig(script).ok_or("only multisig witness scripts are checked")?;
        // CHECKMULTISIG pops one extra, empty item, then matches signatures to keys in order.
        let Some((dummy, sigs)) = sigs.split_first() else {
            return Err("no signatures".into());
        };
        if !dummy.is_empty() || sigs.len() != threshold {
            return Err(format!("needs an empty item and {threshold} signatures"));
        }
        let mut keys = keys.iter();
        for sig in sigs {
            let sig = signature(sig)?;
            let hash = sighashes
                .p2wsh_signature_hash(i, script, prev.value, sig.sighash_type)
                .map_err(|e| e.to_string())?;
            let message = Message::from(hash);
            if !keys.any(|k| secp.verify_ecdsa(&message, &sig.signature, &k.inner).is_ok()) {
                return Err("a signature does not verify against the remaining keys".into());
            }
        }
        return Ok(());
    }
    Err("the dev chain spends P2WPKH and P2WSH multisig coins only".into())
}

/// `m <keys…> n OP_CHECKMULTISIG`: the threshold and the keys.
fn multisig(script: &bitcoin::Script) -> Option<(usize, Vec<bitcoin::PublicKey>)> {
    use bitcoin::opcodes::all::OP_CHECKMULTISIG;
    use bitcoin::script::Instruction;
    let items: Vec<Instruction> = script.instructions().collect::<Result<_, _>>().ok()?;
    let (first, rest) = items.split_first()?;
    let (last, rest) = rest.split_last()?;
    let (count, keys) = rest.split_last()?;
    if *last != Instruction::Op(OP_CHECKMULTISIG) {
        return None;
    }
    let small = |i: &Instruction| match i {
        // OP_PUSHNUM_1 (0x51) to OP_PUSHNUM_16 (0x60).
        Instruction::Op(op) => (0x51..=0x60)
            .contains(&op.to_u8())
            .then(|| usize::from(op.to_u8() - 0x50)),
        Instruction::PushBytes(_) => None,
    };
    let (threshold, n) = (small(first)?, small(count)?);
    let keys: Vec<bitcoin::PublicKey> = keys
        .iter()
        .map(|k| match k {
            Instruction::PushBytes(b) => bitcoin::PublicKey::from_slice(b.as_bytes()).ok(),
            Instruction::Op(_) => None,
        })
        .collect::<Option<_>>()?;
    (keys.len() == n && (1..=n).contains(&threshold)).then_some((threshold, keys))
}

/// Whether `tx` touches a watched script or outpoint.
fn touches(tx: &Transaction, scripts: &HashSet<&ScriptBuf>, outpoints: &HashSet<&OutPoint>) -> bool {
    tx.output.iter().any(|o| scripts.contains(&o.script_pubkey))
        || tx.input.iter().any(|i| outpoints.contains(&i.previous_output))
}

impl ChainSource for DevChain {
    fn network(&self) -> Network {
        self.network
    }

    fn kind(&self) -> &'static str {
        "dev"
    }

    fn sync(&self, request: ChainSyncRequest) -> BoxFuture<'_, Result<ChainUpdate, ChainError>> {
        Box::pin(async move {
            let state = self.lock();
            let fork = request
                .known_chain
                .iter()
                .filter(|b| {
                    state
                        .blocks
                        .get(b.height as usize)
                        .is_some_and(|ours| ours.block_hash() == b.hash)
                })
                .map(|b| b.height)
                .max()
                .unwrap_or(0);
            let chain = (fork..=state.tip().height)
                .filter_map(|h| {
                    state.blocks.get(h as usize).map(|b| BlockRef {
                        height: h,
                        hash: b.block_hash(),
                    })
                })
                .collect();
            let scripts: HashSet<&ScriptBuf> = request.scripts.iter().collect();
            let outpoints: HashSet<&OutPoint> = request.outpoints.iter().collect();
            let mut watched: HashSet<Txid> = request.txids.iter().copied().collect();
            let mut transactions = Vec::new();
            for (height, block) in state.blocks.iter().enumerate() {
                let block_ref = BlockRef {
                    height: u32::try_from(height).unwrap_or(u32::MAX),
                    hash: block.block_hash(),
                };
                for tx in &block.txdata {
                    let txid = tx.compute_txid();
                    let wanted =
                        watched.remove(&txid) || (block_ref.height > fork && touches(tx, &scripts, &outpoints));
                    if wanted {
                        transactions.push(ChainTx {
                            tx: Arc::new(tx.clone()),
                            position: TxPosition::Confirmed {
                                block: block_ref,
                                time: u64::from(block.header.time),
                            },
                        });
                    }
                }
            }
            for (tx, seen_at) in &state.mempool {
                if watched.remove(&tx.compute_txid()) || touches(tx, &scripts, &outpoints) {
                    transactions.push(ChainTx {
                        tx: Arc::clone(tx),
                        position: TxPosition::Mempool { seen_at: *seen_at },
                    });
                }
            }
            let now = now_secs();
            Ok(ChainUpdate {
                chain,
                transactions,
                missing: watched.into_iter().map(|txid| (txid, now)).collect(),
            })
        })
    }

    fn broadcast<'a>(&'a self, tx: &'a Transaction) -> BoxFuture<'a, Result<(), ChainError>> {
        Box::pin(async move {
            let behaviour = *self.broadcasts.borrow();
            if behaviour != BroadcastBehaviour::Lose {
                self.change(|state| {
                    if !state.knows(&tx.compute_txid()) {
                        state.replace_conflicts(tx)?;
                        state.accept(tx)?;
                        state.mempool.push((Arc::new(tx.clone()), now_secs()));
                    }
                    Ok(())
                })?;
            }
            if behaviour == BroadcastBehaviour::Relay {
                return Ok(());
            }
            tracing::warn!(txid = %tx.compute_txid(), ?behaviour, "dev chain: a broadcast hangs until relaying resumes");
            let mut changes = self.broadcasts.subscribe();
            // The sender lives as long as `self`, so waiting cannot fail early.
            let _ = changes.wait_for(|b| *b == BroadcastBehaviour::Relay).await;
            Err(ChainError::Unavailable("the simulated network did not answer".into()))
        })
    }

    fn fee_rate(&self, _target_blocks: u16) -> BoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(async move { Ok(self.fee_rate_sat_per_kvb) })
    }

    fn wait_for_activity(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = tokio::time::timeout(timeout, self.activity.notified()).await;
        })
    }
}

impl ChainSimulator for DevChain {
    fn set_broadcasts(&self, behaviour: BroadcastBehaviour) {
        tracing::info!(?behaviour, "dev chain: broadcasts changed");
        self.broadcasts.send_replace(behaviour);
    }

    fn deposit<'a>(&'a self, address: &'a str, amount: Sats) -> BoxFuture<'a, Result<Txid, ChainError>> {
        Box::pin(async move {
            let address = parse_address(address, self.network)?;
            if amount.get() == 0 {
                return Err(ChainError::InvalidInput("a deposit needs a positive amount".into()));
            }
            let tx = Transaction {
                version: Version::TWO,
                lock_time: LockTime::ZERO,
                input: vec![outside_input()],
                output: vec![TxOut {
                    value: amount.to_amount(),
                    script_pubkey: address.script_pubkey(),
                }],
            };
            let txid = tx.compute_txid();
            self.change(|state| {
                state.mempool.push((Arc::new(tx), now_secs()));
                Ok(())
            })?;
            tracing::info!(%txid, %address, sats = amount.get(), "dev chain: simulated deposit in the mempool");
            Ok(txid)
        })
    }

    fn mine(&self, blocks: u32) -> BoxFuture<'_, Result<BlockRef, ChainError>> {
        Box::pin(async move {
            if blocks == 0 || blocks > 1_000 {
                return Err(ChainError::InvalidInput(
                    "mine between 1 and 1,000 blocks at a time".into(),
                ));
            }
            let floor = self.mining_floor.load(std::sync::atomic::Ordering::Relaxed);
            let tip = self.change(|state| {
                (0..blocks).for_each(|_| state.mine_one(floor));
                Ok(state.tip())
            })?;
            tracing::info!(height = tip.height, hash = %tip.hash, "dev chain: mined {blocks} block(s)");
            Ok(tip)
        })
    }

    fn reorg(&self, depth: u32, drop_transactions: bool) -> BoxFuture<'_, Result<BlockRef, ChainError>> {
        Box::pin(async move {
            let tip = self.change(|state| {
                let returned = state.cut(depth)?;
                // The replacement blocks are mined first, empty: a competing chain that did not
                // have these transactions. They go back to the mempool ahead of what was there.
                let mempool = std::mem::take(&mut state.mempool);
                (0..=depth).for_each(|_| state.mine_one(0));
                if drop_transactions {
                    // As if double-spent: the dropped transactions and their descendants go.
                    let mut gone: HashSet<Txid> = returned.iter().map(|(tx, _)| tx.compute_txid()).collect();
                    state.mempool = mempool
                        .into_iter()
                        .filter(|(tx, _)| {
                            let spends_gone = tx.input.iter().any(|i| gone.contains(&i.previous_output.txid));
                            if spends_gone {
                                gone.insert(tx.compute_txid());
                            }
                            !spends_gone
                        })
                        .collect();
                } else {
                    state.mempool = returned;
                    state.mempool.extend(mempool);
                }
                Ok(state.tip())
            })?;
            tracing::info!(depth, drop_transactions, height = tip.height, "dev chain: reorganised");
            Ok(tip)
        })
    }
}
