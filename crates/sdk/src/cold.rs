//! Offline cold-storage cosigning: a cosigner's key, its BIP48 account key for the server's
//! `[onchain.cold] cosigners`, and signing the cold → hot PSBTs the server creates.
//!
//! Nothing here talks to a server: these functions are meant to run on an offline machine.
//! A key is a random 32-byte BIP32 seed kept in a small JSON file (mode 0600):
//!
//! ```json
//! { "version": 1, "network": "regtest", "seed": "<64 hex digits>" }
//! ```
//!
//! Its account key is `[fingerprint/48'/coin'/0'/2']xpub…` (BIP48, script type 2' = P2WSH;
//! coin 0 on mainnet, 1 elsewhere), which the operator lists among the cosigners of the
//! server's `wsh(sortedmulti(…))` cold wallet. Signing refuses anything it cannot account for:
//! a PSBT naming none of the key's derivations, a derivation outside the account, a witness
//! script that is not the coin's, a previous transaction that is not the coin's, a sighash
//! other than ALL, a PSBT of another network.
//!
//! What the PSBT says is never taken on the server's word where the key can check it: an
//! output is shown as change back to cold storage only when its witness script is the
//! output's, contains this key's own child (derived here, within the account), and is a
//! multisig of the same threshold and cosigners as the coins spent; every other output is a
//! payment out. An input without its full previous transaction gets a warning that its
//! amount (and so the fee) is the server's word.
//!
//! ```no_run
//! # fn demo() -> Result<(), flash_sdk::ClientError> {
//! use flash_sdk::{BitcoinNetwork, CosignerKey};
//! let key = CosignerKey::generate(BitcoinNetwork::Regtest)?;
//! key.save(std::path::Path::new("cosigner.json"))?;
//! println!("{}", key.account_key()?);
//! let signed = key.sign_psbt("cHNidP8B…")?;
//! println!("{} input(s) signed", signed.signed_inputs);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use bitcoin::base64::prelude::{Engine, BASE64_STANDARD};
use bitcoin::bip32::{ChildNumber, DerivationPath, Fingerprint, Xpriv, Xpub};
use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::opcodes::all::{OP_CHECKMULTISIG, OP_PUSHNUM_1, OP_PUSHNUM_16};
use bitcoin::opcodes::Opcode;
use bitcoin::psbt::Psbt;
use bitcoin::script::Instruction;
use bitcoin::secp256k1::{self, All, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Address, NetworkKind, TxOut};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// The key file format this version writes and reads.
const KEY_FILE_VERSION: u32 = 1;

/// Length of a generated seed, bytes.
pub const SEED_LEN: usize = 32;

/// Shortest and longest seed BIP32 allows, bytes.
const SEED_LEN_RANGE: std::ops::RangeInclusive<usize> = 16..=64;

/// BIP48's purpose field.
const BIP48_PURPOSE: u32 = 48;

/// BIP48's script type of native segwit multisig (P2WSH).
const BIP48_SCRIPT_TYPE_P2WSH: u32 = 2;

/// The network a cosigner key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum BitcoinNetwork {
    /// Bitcoin's main network (account keys are `xpub`, coin type 0).
    Mainnet,
    /// Testnet (`tpub`, coin type 1).
    Testnet,
    /// Signet (`tpub`, coin type 1).
    Signet,
    /// Regtest (`tpub`, coin type 1).
    Regtest,
}

impl BitcoinNetwork {
    /// `mainnet`, `testnet`, `signet` or `regtest`.
    pub fn as_str(self) -> &'static str {
        match self {
            BitcoinNetwork::Mainnet => "mainnet",
            BitcoinNetwork::Testnet => "testnet",
            BitcoinNetwork::Signet => "signet",
            BitcoinNetwork::Regtest => "regtest",
        }
    }

    /// The `bitcoin` crate's name for it.
    pub fn to_bitcoin(self) -> bitcoin::Network {
        match self {
            BitcoinNetwork::Mainnet => bitcoin::Network::Bitcoin,
            BitcoinNetwork::Testnet => bitcoin::Network::Testnet,
            BitcoinNetwork::Signet => bitcoin::Network::Signet,
            BitcoinNetwork::Regtest => bitcoin::Network::Regtest,
        }
    }

    /// The BIP44/BIP48 coin type: 0 on mainnet, 1 on every test network.
    pub fn coin_type(self) -> u32 {
        u32::from(self != BitcoinNetwork::Mainnet)
    }
}

impl fmt::Display for BitcoinNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    network: BitcoinNetwork,
    seed: String,
}

/// An invalid-input error.
fn invalid(msg: impl Into<String>) -> ClientError {
    ClientError::InvalidInput(msg.into())
}

/// One cosigner's secret key: a BIP32 seed and the network it is for. `Debug` never shows
/// the seed.
#[derive(Clone)]
pub struct CosignerKey {
    network: BitcoinNetwork,
    seed: Vec<u8>,
    master: Xpriv,
    secp: Secp256k1<All>,
}

impl fmt::Debug for CosignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignerKey")
            .field("network", &self.network)
            .field("fingerprint", &self.fingerprint())
            .field("seed", &"<redacted>")
            .finish()
    }
}

impl CosignerKey {
    /// A fresh key from 32 random bytes of the operating system's generator.
    pub fn generate(network: BitcoinNetwork) -> Result<CosignerKey, ClientError> {
        let mut seed = [0u8; SEED_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| invalid(format!("the system's random number generator failed: {e}")))?;
        CosignerKey::from_seed(network, &seed)
    }

    /// The key of `seed` (16 to 64 bytes) on `network`.
    pub fn from_seed(network: BitcoinNetwork, seed: &[u8]) -> Result<CosignerKey, ClientError> {
        if !SEED_LEN_RANGE.contains(&seed.len()) {
            return Err(invalid(format!("a seed must be 16 to 64 bytes (got {})", seed.len())));
        }
        let master =
            Xpriv::new_master(network.to_bitcoin(), seed).map_err(|e| invalid(format!("unusable seed: {e}")))?;
        Ok(CosignerKey {
            network,
            seed: seed.to_vec(),
            master,
            secp: Secp256k1::new(),
        })
    }

    /// Reads a key file written by [`CosignerKey::save`].
    pub fn load(path: &Path) -> Result<CosignerKey, ClientError> {
        let text = fs::read_to_string(path).map_err(|source| ClientError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let not_a_key = |why: String| invalid(format!("{} is not a cosigner key file: {why}", path.display()));
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| not_a_key(e.to_string()))?;
        if file.version != KEY_FILE_VERSION {
            return Err(not_a_key(format!(
                "version {} (this flash reads version {KEY_FILE_VERSION})",
                file.version
            )));
        }
        let seed = Vec::<u8>::from_hex(file.seed.trim()).map_err(|e| not_a_key(format!("seed: {e}")))?;
        CosignerKey::from_seed(file.network, &seed).map_err(|e| not_a_key(e.to_string()))
    }

    /// Writes the key file with mode 0600; refuses to overwrite an existing file.
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        let file = KeyFile {
            version: KEY_FILE_VERSION,
            network: self.network,
            seed: self.seed.to_lower_hex_string(),
        };
        let mut text =
            serde_json::to_string_pretty(&file).map_err(|e| invalid(format!("cannot encode the key: {e}")))?;
        text.push('\n');
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let io_err = |source| ClientError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut out = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                invalid(format!(
                    "{} already exists; refusing to overwrite a key file",
                    path.display()
                ))
            } else {
                io_err(e)
            }
        })?;
        let written = out.write_all(text.as_bytes()).and_then(|()| out.sync_all());
        if let Err(e) = written {
            drop(out);
            let _ = fs::remove_file(path);
            return Err(io_err(e));
        }
        Ok(())
    }

    /// The network the key is for.
    pub fn network(&self) -> BitcoinNetwork {
        self.network
    }

    /// The master key's fingerprint, 8 hex digits.
    pub fn fingerprint(&self) -> String {
        self.master.fingerprint(&self.secp).to_string()
    }

    /// The BIP48 P2WSH account path `m/48'/coin'/0'/2'`.
    pub fn account_path(&self) -> DerivationPath {
        [BIP48_PURPOSE, self.network.coin_type(), 0, BIP48_SCRIPT_TYPE_P2WSH]
            .into_iter()
            .map(|index| ChildNumber::Hardened { index })
            .collect::<Vec<_>>()
            .into()
    }

    /// The account's extended public key.
    pub fn account_xpub(&self) -> Result<Xpub, ClientError> {
        let account = self
            .master
            .derive_priv(&self.secp, &self.account_path())
            .map_err(|e| invalid(format!("cannot derive the account key: {e}")))?;
        Ok(Xpub::from_priv(&self.secp, &account))
    }

    /// The account key as `[onchain.cold] cosigners` takes it:
    /// `[fingerprint/48'/coin'/0'/2']xpub…` (`tpub…` off mainnet).
    pub fn account_key(&self) -> Result<String, ClientError> {
        Ok(format!(
            "[{}/{BIP48_PURPOSE}'/{}'/0'/{BIP48_SCRIPT_TYPE_P2WSH}']{}",
            self.fingerprint(),
            self.network.coin_type(),
            self.account_xpub()?
        ))
    }

    /// What a PSBT spends and pays, with the addresses of this key's network; refused when the
    /// PSBT is malformed or of another network. Outputs are change only when this key can
    /// check it (see [`PsbtOutputSummary::change`]).
    pub fn describe_psbt(&self, psbt: &str) -> Result<PsbtSummary, ClientError> {
        let psbt = decode_psbt(psbt)?;
        self.check_network(&psbt)?;
        summarize(&psbt, self)
    }

    /// Whether output `i` of `psbt` verifiably goes back to the cold wallet this key cosigns:
    /// its witness script is the output's, one of its derivations is this key's own (this
    /// fingerprint, a path within the account, and the public key derived here), the script
    /// holds that key, and it is a multisig of the same threshold and cosigner fingerprints as
    /// the coins `spending` (see [`spending_shape`]). The PSBT's word alone counts for nothing.
    fn is_own_change(&self, psbt: &Psbt, i: usize, spending: Option<&MultisigShape>) -> bool {
        let (Some(output), Some(txout)) = (psbt.outputs.get(i), psbt.unsigned_tx.output.get(i)) else {
            return false;
        };
        let Some(script) = &output.witness_script else {
            return false;
        };
        if script.to_p2wsh() != txout.script_pubkey {
            return false;
        }
        let ours = self.master.fingerprint(&self.secp);
        let account = self.account_path();
        let holds_own_key = output.bip32_derivation.iter().any(|(pubkey, (fingerprint, path))| {
            *fingerprint == ours
                && path.as_ref().len() > account.as_ref().len()
                && path.as_ref().starts_with(account.as_ref())
                && self
                    .master
                    .derive_priv(&self.secp, path)
                    .is_ok_and(|child| child.private_key.public_key(&self.secp) == *pubkey)
                && script_has_key(script, pubkey)
        });
        holds_own_key
            && spending.is_some_and(|shape| multisig_shape(script, &output.bip32_derivation).as_ref() == Some(shape))
    }

    /// Signs every input of a base64 PSBT whose BIP32 derivations name this key, and returns
    /// the PSBT with the signatures added. Refused when the PSBT is malformed, of another
    /// network, or has nothing this key signs.
    pub fn sign_psbt(&self, psbt: &str) -> Result<SignedPsbt, ClientError> {
        let mut psbt = decode_psbt(psbt)?;
        self.check_network(&psbt)?;
        summarize(&psbt, self)?;
        let ours = self.master.fingerprint(&self.secp);
        let account = self.account_path();
        let tx = psbt.unsigned_tx.clone();
        let mut cache = SighashCache::new(&tx);
        let mut signatures = Vec::new();
        let mut signed_inputs = 0;
        for (i, input) in psbt.inputs.iter().enumerate() {
            let keys: Vec<(secp256k1::PublicKey, &DerivationPath)> = input
                .bip32_derivation
                .iter()
                .filter(|(_, (fingerprint, _))| *fingerprint == ours)
                .map(|(pk, (_, path))| (*pk, path))
                .collect();
            if keys.is_empty() {
                continue;
            }
            let utxo = input.witness_utxo.as_ref().ok_or_else(|| {
                invalid(format!(
                    "input {i} does not say what it spends (no witness UTXO); only P2WSH multisig inputs are signed"
                ))
            })?;
            if !utxo.script_pubkey.is_p2wsh() {
                return Err(invalid(format!(
                    "input {i} spends a coin that is not P2WSH; only P2WSH multisig inputs are signed"
                )));
            }
            let script = input
                .witness_script
                .as_ref()
                .ok_or_else(|| invalid(format!("input {i} has no witness script")))?;
            if script.to_p2wsh() != utxo.script_pubkey {
                return Err(invalid(format!(
                    "input {i}'s witness script is not the script of the coin it spends"
                )));
            }
            match input.sighash_type.map(|t| t.ecdsa_hash_ty()) {
                None | Some(Ok(EcdsaSighashType::All)) => {}
                Some(other) => {
                    return Err(invalid(format!(
                        "input {i} asks for sighash type {other:?}; only ALL is signed"
                    )))
                }
            }
            let (message, sighash_type) = psbt
                .sighash_ecdsa(i, &mut cache)
                .map_err(|e| invalid(format!("cannot compute input {i}'s signature hash: {e}")))?;
            for (pubkey, path) in keys {
                if !path.as_ref().starts_with(account.as_ref()) {
                    return Err(invalid(format!(
                        "input {i} asks for key m/{path}, outside this key's account m/{account}"
                    )));
                }
                let child = self
                    .master
                    .derive_priv(&self.secp, path)
                    .map_err(|e| invalid(format!("cannot derive m/{path}: {e}")))?;
                if child.private_key.public_key(&self.secp) != pubkey {
                    return Err(invalid(format!(
                        "input {i} names key m/{path} of this key's fingerprint {ours}, but it is not this key's"
                    )));
                }
                if !script_has_key(script, &pubkey) {
                    return Err(invalid(format!(
                        "input {i}'s witness script does not contain this key's m/{path}"
                    )));
                }
                let signature = bitcoin::ecdsa::Signature {
                    signature: self.secp.sign_ecdsa(&message, &child.private_key),
                    sighash_type,
                };
                signatures.push((i, bitcoin::PublicKey::new(pubkey), signature));
            }
            signed_inputs += 1;
        }
        if signed_inputs == 0 {
            let named = named_fingerprints(&psbt);
            let named = if named.is_empty() {
                "none".to_owned()
            } else {
                named.join(", ")
            };
            return Err(invalid(format!(
                "this key ({ours}) signs nothing in this PSBT: none of its inputs is derived from it \
                 (the inputs name key(s) {named})"
            )));
        }
        for (i, pubkey, signature) in signatures {
            psbt.inputs[i].partial_sigs.insert(pubkey, signature);
        }
        let summary = summarize(&psbt, self)?;
        Ok(SignedPsbt {
            psbt: BASE64_STANDARD.encode(psbt.serialize()),
            signed_inputs,
            summary,
        })
    }

    /// Refuses a PSBT whose derivations (or global xpubs) of this key's fingerprint are of
    /// another network (BIP48's coin type, or the xpub's version).
    fn check_network(&self, psbt: &Psbt) -> Result<(), ClientError> {
        let ours = self.master.fingerprint(&self.secp);
        let coin = ChildNumber::Hardened {
            index: self.network.coin_type(),
        };
        let purpose = ChildNumber::Hardened { index: BIP48_PURPOSE };
        let foreign = |other_coin: &ChildNumber| {
            let theirs = if *other_coin == (ChildNumber::Hardened { index: 0 }) {
                "mainnet"
            } else {
                "a test network"
            };
            invalid(format!(
                "this PSBT is for {theirs} (coin type {other_coin}), but the key is for {}",
                self.network
            ))
        };
        let sources = psbt
            .inputs
            .iter()
            .flat_map(|i| i.bip32_derivation.values())
            .chain(psbt.outputs.iter().flat_map(|o| o.bip32_derivation.values()));
        for (fingerprint, path) in sources {
            let path = path.as_ref();
            if *fingerprint == ours && path.len() >= 2 && path[0] == purpose && path[1] != coin {
                return Err(foreign(&path[1]));
            }
        }
        let expected = NetworkKind::from(self.network.to_bitcoin());
        for (xpub, (fingerprint, _)) in &psbt.xpub {
            if *fingerprint == ours && xpub.network != expected {
                return Err(invalid(format!(
                    "this PSBT's extended key {xpub} is of another network than the key's ({})",
                    self.network
                )));
            }
        }
        Ok(())
    }
}

/// Whether `script` pushes `key` (compressed).
fn script_has_key(script: &bitcoin::Script, key: &secp256k1::PublicKey) -> bool {
    let key = key.serialize();
    script
        .instructions()
        .any(|i| matches!(i, Ok(Instruction::PushBytes(b)) if b.as_bytes() == key.as_slice()))
}

/// A multisig's threshold and the fingerprints its keys' derivations name (sorted, each once).
#[derive(Debug, Clone, PartialEq, Eq)]
struct MultisigShape {
    threshold: usize,
    fingerprints: Vec<Fingerprint>,
}

/// `n` of `OP_PUSHNUM_n`.
fn pushnum(op: Opcode) -> Option<usize> {
    let (first, last, op) = (OP_PUSHNUM_1.to_u8(), OP_PUSHNUM_16.to_u8(), op.to_u8());
    (first..=last).contains(&op).then(|| usize::from(op - first) + 1)
}

/// The shape of `script` when it is exactly `m <key>… n OP_CHECKMULTISIG` over distinct
/// compressed keys, each with a derivation in `derivations` of a fingerprint no other key has.
fn multisig_shape(
    script: &bitcoin::Script,
    derivations: &std::collections::BTreeMap<secp256k1::PublicKey, bitcoin::bip32::KeySource>,
) -> Option<MultisigShape> {
    let mut instructions = script.instructions();
    let Instruction::Op(first) = instructions.next()?.ok()? else {
        return None;
    };
    let threshold = pushnum(first)?;
    let mut keys = Vec::new();
    let total = loop {
        match instructions.next()?.ok()? {
            Instruction::PushBytes(bytes) if bytes.len() == 33 => {
                keys.push(secp256k1::PublicKey::from_slice(bytes.as_bytes()).ok()?);
            }
            Instruction::PushBytes(_) => return None,
            Instruction::Op(op) => break pushnum(op)?,
        }
    };
    let ends = matches!(instructions.next(), Some(Ok(Instruction::Op(op))) if op == OP_CHECKMULTISIG);
    if !ends || instructions.next().is_some() || total != keys.len() || threshold > total {
        return None;
    }
    let mut fingerprints = keys
        .iter()
        .map(|key| derivations.get(key).map(|(fingerprint, _)| *fingerprint))
        .collect::<Option<Vec<_>>>()?;
    fingerprints.sort();
    fingerprints.dedup();
    (fingerprints.len() == total).then_some(MultisigShape {
        threshold,
        fingerprints,
    })
}

/// The multisig every input of `psbt` spends, when they all spend the same one (threshold and
/// cosigners) through a witness script that is their coin's; `None` otherwise, and then no
/// output counts as change.
fn spending_shape(psbt: &Psbt) -> Option<MultisigShape> {
    let mut shape = None;
    for (i, input) in psbt.inputs.iter().enumerate() {
        let script = input.witness_script.as_ref()?;
        let coin = spent_output(psbt, i).ok()??;
        if script.to_p2wsh() != coin.script_pubkey {
            return None;
        }
        let this = multisig_shape(script, &input.bip32_derivation)?;
        match &shape {
            None => shape = Some(this),
            Some(first) if *first == this => {}
            Some(_) => return None,
        }
    }
    shape
}

/// Whether the answer to `Sign? [y/N]` is yes: `y` or `yes`, in any case, around blanks.
/// Anything else, an empty line included, is no.
pub fn signing_confirmed(answer: &str) -> bool {
    let answer = answer.trim();
    answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
}

/// The fingerprints the inputs' derivations name, sorted, without repeats.
fn named_fingerprints(psbt: &Psbt) -> Vec<String> {
    let mut all: Vec<Fingerprint> = psbt
        .inputs
        .iter()
        .flat_map(|i| i.bip32_derivation.values().map(|(f, _)| *f))
        .collect();
    all.sort();
    all.dedup();
    all.iter().map(ToString::to_string).collect()
}

/// Reads a base64 PSBT (whitespace and line breaks ignored).
pub fn decode_psbt(text: &str) -> Result<Psbt, ClientError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(invalid("the PSBT is empty"));
    }
    let bytes = BASE64_STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| invalid(format!("the PSBT is not base64: {e}")))?;
    Psbt::deserialize(&bytes).map_err(|e| invalid(format!("not a valid PSBT: {e}")))
}

/// What a PSBT spends and pays, as [`CosignerKey::describe_psbt`] reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PsbtSummary {
    /// The transaction's id (signatures do not change it).
    pub txid: String,
    /// What it spends.
    pub inputs: Vec<PsbtInputSummary>,
    /// What it pays.
    pub outputs: Vec<PsbtOutputSummary>,
    /// The inputs' total, sats; `None` when the PSBT does not say what an input is worth.
    pub input_total: Option<u64>,
    /// The outputs' total, sats.
    pub output_total: u64,
    /// The mining fee, sats (inputs less outputs), when every input's amount is known.
    pub fee: Option<u64>,
    /// What the signer should know before signing (e.g. amounts only the server vouches for).
    pub warnings: Vec<String>,
}

/// One input of a [`PsbtSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PsbtInputSummary {
    /// The coin spent, `txid:vout`.
    pub outpoint: String,
    /// What it is worth, sats, when the PSBT says (its witness or full previous transaction).
    pub amount: Option<u64>,
    /// Fingerprints of the keys its derivations name (the cosigners).
    pub cosigners: Vec<String>,
    /// Fingerprints of the cosigners whose signatures it already carries.
    pub signed_by: Vec<String>,
}

/// One output of a [`PsbtSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PsbtOutputSummary {
    /// The address paid, on the summary's network; `None` for a script without one.
    pub address: Option<String>,
    /// The output script, hex.
    pub script: String,
    /// Amount, sats.
    pub amount: u64,
    /// Whether it is change going back to cold storage, as the key checked it: its witness
    /// script is the output's, holds the key's own child (derived by the key, within its
    /// account), and is a multisig of the same threshold and cosigners as the coins spent.
    /// What the PSBT claims (its derivations) is not enough.
    pub change: bool,
}

impl fmt::Display for PsbtSummary {
    /// Several lines: the coins spent, each output, the fee.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sats = |v: Option<u64>| v.map_or_else(|| "unknown amount".to_owned(), |v| format!("{v} sats"));
        writeln!(f, "Transaction {}", self.txid)?;
        writeln!(
            f,
            "Spends {} (in {} input(s)):",
            sats(self.input_total),
            self.inputs.len()
        )?;
        for input in &self.inputs {
            let signed = if input.signed_by.is_empty() {
                "no signatures yet".to_owned()
            } else {
                format!("signed by {}", input.signed_by.join(", "))
            };
            writeln!(
                f,
                "  {:>16}  {}  cosigners {}; {signed}",
                sats(input.amount),
                input.outpoint,
                if input.cosigners.is_empty() {
                    "unknown".to_owned()
                } else {
                    input.cosigners.join(", ")
                }
            )?;
        }
        writeln!(f, "Pays {} sats:", self.output_total)?;
        for output in &self.outputs {
            let to = output
                .address
                .clone()
                .unwrap_or_else(|| format!("script {}", output.script));
            let note = if output.change {
                "  (change back to cold storage)"
            } else {
                ""
            };
            writeln!(f, "  {:>16}  {to}{note}", format!("{} sats", output.amount))?;
        }
        write!(f, "Fee: {}", sats(self.fee))?;
        for warning in &self.warnings {
            write!(f, "\nWarning: {warning}")?;
        }
        Ok(())
    }
}

/// A PSBT with a cosigner's signatures added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedPsbt {
    /// The signed PSBT, base64.
    pub psbt: String,
    /// How many inputs got this key's signature.
    pub signed_inputs: usize,
    /// What it spends and pays, signatures included.
    pub summary: PsbtSummary,
}

/// The coin input `i` spends, from its witness UTXO or its full previous transaction (which
/// must agree, and be the transaction the input names).
fn spent_output(psbt: &Psbt, i: usize) -> Result<Option<TxOut>, ClientError> {
    let (Some(input), Some(txin)) = (psbt.inputs.get(i), psbt.unsigned_tx.input.get(i)) else {
        return Err(invalid(format!("the PSBT has no input {i}")));
    };
    let prevout = txin.previous_output;
    let from_full = match &input.non_witness_utxo {
        None => None,
        Some(tx) => {
            if tx.compute_txid() != prevout.txid {
                return Err(invalid(format!(
                    "input {i}'s previous transaction is not the one it spends"
                )));
            }
            let index = usize::try_from(prevout.vout).unwrap_or(usize::MAX);
            let out = tx
                .output
                .get(index)
                .ok_or_else(|| invalid(format!("input {i} spends an output its previous transaction lacks")))?;
            Some(out.clone())
        }
    };
    match (&input.witness_utxo, from_full) {
        (Some(witness), Some(full)) if *witness != full => Err(invalid(format!(
            "input {i}'s witness UTXO and previous transaction disagree"
        ))),
        (Some(witness), _) => Ok(Some(witness.clone())),
        (None, full) => Ok(full),
    }
}

/// Reads what a PSBT spends and pays, addresses on `key`'s network, change as `key` checks
/// it; refuses inconsistent inputs and a fee below zero.
fn summarize(psbt: &Psbt, key: &CosignerKey) -> Result<PsbtSummary, ClientError> {
    let network = key.network;
    let mut inputs = Vec::with_capacity(psbt.inputs.len());
    let mut input_total = Some(0u64);
    let mut server_amounts = Vec::new();
    for (i, input) in psbt.inputs.iter().enumerate() {
        let spent = spent_output(psbt, i)?;
        if input.non_witness_utxo.is_none() && input.witness_utxo.is_some() {
            server_amounts.push(i.to_string());
        }
        let amount = spent.map(|o| o.value.to_sat());
        input_total = match (input_total, amount) {
            (Some(total), Some(a)) => Some(
                total
                    .checked_add(a)
                    .ok_or_else(|| invalid("the inputs' total overflows"))?,
            ),
            _ => None,
        };
        let mut cosigners: Vec<String> = input.bip32_derivation.values().map(|(f, _)| f.to_string()).collect();
        cosigners.sort();
        cosigners.dedup();
        let mut signed_by: Vec<String> = input
            .partial_sigs
            .keys()
            .map(|pk| match input.bip32_derivation.get(&pk.inner) {
                Some((f, _)) => f.to_string(),
                None => format!("key {pk}"),
            })
            .collect();
        signed_by.sort();
        let outpoint = psbt
            .unsigned_tx
            .input
            .get(i)
            .map(|t| t.previous_output.to_string())
            .unwrap_or_default();
        inputs.push(PsbtInputSummary {
            outpoint,
            amount,
            cosigners,
            signed_by,
        });
    }
    let spending = spending_shape(psbt);
    let mut output_total = 0u64;
    let mut outputs = Vec::with_capacity(psbt.unsigned_tx.output.len());
    for (i, out) in psbt.unsigned_tx.output.iter().enumerate() {
        let amount = out.value.to_sat();
        output_total = output_total
            .checked_add(amount)
            .ok_or_else(|| invalid("the outputs' total overflows"))?;
        outputs.push(PsbtOutputSummary {
            address: Address::from_script(&out.script_pubkey, network.to_bitcoin())
                .ok()
                .map(|a| a.to_string()),
            script: out.script_pubkey.to_hex_string(),
            amount,
            change: key.is_own_change(psbt, i, spending.as_ref()),
        });
    }
    let fee = match input_total {
        Some(total) => Some(total.checked_sub(output_total).ok_or_else(|| {
            invalid(format!(
                "the PSBT pays out more ({output_total} sats) than it spends ({total} sats)"
            ))
        })?),
        None => None,
    };
    let mut warnings = Vec::new();
    if !server_amounts.is_empty() {
        warnings.push(format!(
            "input(s) {} carry no previous transaction: their amounts, and so the fee, are as the \
             server states them",
            server_amounts.join(", ")
        ));
    }
    Ok(PsbtSummary {
        txid: psbt.unsigned_tx.compute_txid().to_string(),
        inputs,
        outputs,
        input_total,
        output_total,
        fee,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use bitcoin::absolute::LockTime;
    use bitcoin::hashes::Hash;
    use bitcoin::opcodes::all::{OP_PUSHNUM_2, OP_PUSHNUM_3};
    use bitcoin::script::Builder;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, Txid, Witness};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Where each public key of a PSBT input comes from.
    type Derivations = BTreeMap<secp256k1::PublicKey, (Fingerprint, DerivationPath)>;

    /// A unique path in the temp dir (not created).
    fn temp_path(tag: &str) -> std::path::PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        std::env::temp_dir().join(format!("flash-cold-{tag}-{}-{nanos}", std::process::id()))
    }

    fn key(seed: u8) -> Result<CosignerKey, ClientError> {
        CosignerKey::from_seed(BitcoinNetwork::Regtest, &[seed; 32])
    }

    /// The public key of `key`'s account at `chain/index`, with its key source.
    fn child(
        key: &CosignerKey,
        chain: u32,
        index: u32,
    ) -> Result<(secp256k1::PublicKey, (Fingerprint, DerivationPath)), Box<dyn std::error::Error>> {
        let path = key
            .account_path()
            .extend([ChildNumber::Normal { index: chain }, ChildNumber::Normal { index }]);
        let sk = key.master.derive_priv(&key.secp, &path)?;
        Ok((
            sk.private_key.public_key(&key.secp),
            (key.master.fingerprint(&key.secp), path),
        ))
    }

    /// A `threshold`-of-3 `sortedmulti` witness script over three keys, with their derivations.
    fn sortedmulti(
        threshold: Opcode,
        keys: [(secp256k1::PublicKey, (Fingerprint, DerivationPath)); 3],
    ) -> (ScriptBuf, Derivations) {
        let mut pubkeys: Vec<[u8; 33]> = keys.iter().map(|(pk, _)| pk.serialize()).collect();
        pubkeys.sort();
        let mut builder = Builder::new().push_opcode(threshold);
        for pk in &pubkeys {
            builder = builder.push_slice(pk);
        }
        let script = builder
            .push_opcode(OP_PUSHNUM_3)
            .push_opcode(OP_CHECKMULTISIG)
            .into_script();
        (script, keys.into_iter().collect())
    }

    /// A 2-of-3 `wsh(sortedmulti)` script over the keys' `chain/index` children, with the
    /// derivations a wallet puts in a PSBT.
    fn multisig(
        keys: &[&CosignerKey],
        chain: u32,
        index: u32,
    ) -> Result<(ScriptBuf, Derivations), Box<dyn std::error::Error>> {
        let [a, b, c] = keys else {
            return Err("three keys".into());
        };
        Ok(sortedmulti(
            OP_PUSHNUM_2,
            [
                child(a, chain, index)?,
                child(b, chain, index)?,
                child(c, chain, index)?,
            ],
        ))
    }

    /// The regtest address of BIP173's example program.
    const PAYEE: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

    /// A cold → hot PSBT over `keys` (2-of-3): one 100,000-sat coin, 60,000 to [`PAYEE`],
    /// 39,000 change back to the multisig, 1,000 fee.
    fn cold_psbt(keys: &[&CosignerKey]) -> Result<Psbt, Box<dyn std::error::Error>> {
        let (script, derivations) = multisig(keys, 0, 0)?;
        let (change_script, change_derivations) = multisig(keys, 1, 0)?;
        let payee = PAYEE
            .parse::<Address<bitcoin::address::NetworkUnchecked>>()?
            .require_network(bitcoin::Network::Regtest)?;
        let funding = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array([7; 32]),
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![
                TxOut {
                    value: Amount::from_sat(5_000),
                    script_pubkey: payee.script_pubkey(),
                },
                TxOut {
                    value: Amount::from_sat(100_000),
                    script_pubkey: script.to_p2wsh(),
                },
            ],
        };
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: funding.compute_txid(),
                    vout: 1,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output: vec![
                TxOut {
                    value: Amount::from_sat(60_000),
                    script_pubkey: payee.script_pubkey(),
                },
                TxOut {
                    value: Amount::from_sat(39_000),
                    script_pubkey: change_script.to_p2wsh(),
                },
            ],
        };
        let mut psbt = Psbt::from_unsigned_tx(tx)?;
        psbt.inputs[0].witness_utxo = funding.output.get(1).cloned();
        psbt.inputs[0].non_witness_utxo = Some(funding);
        psbt.inputs[0].witness_script = Some(script);
        psbt.inputs[0].bip32_derivation = derivations;
        psbt.outputs[1].witness_script = Some(change_script);
        psbt.outputs[1].bip32_derivation = change_derivations;
        Ok(psbt)
    }

    fn encode(psbt: &Psbt) -> String {
        BASE64_STANDARD.encode(psbt.serialize())
    }

    #[test]
    fn account_keys_have_the_bip48_p2wsh_shape() -> TestResult {
        let k = key(1)?;
        let account = k.account_key()?;
        let fingerprint = k.fingerprint();
        assert_eq!(fingerprint.len(), 8);
        assert!(
            account.starts_with(&format!("[{fingerprint}/48'/1'/0'/2']tpub")),
            "{account}"
        );
        let xpub: Xpub = account.rsplit(']').next().unwrap_or_default().parse()?;
        assert_eq!(xpub.network, NetworkKind::Test);
        assert_eq!(xpub.depth, 4);
        assert_eq!(k.account_path().to_string(), "48'/1'/0'/2'");
        let main = CosignerKey::from_seed(BitcoinNetwork::Mainnet, &[1; 32])?;
        assert!(
            main.account_key()?
                .starts_with(&format!("[{fingerprint}/48'/0'/0'/2']xpub")),
            "same seed, same fingerprint, mainnet coin type"
        );
        // Fresh keys differ.
        let a = CosignerKey::generate(BitcoinNetwork::Signet)?;
        let b = CosignerKey::generate(BitcoinNetwork::Signet)?;
        assert_ne!(a.account_key()?, b.account_key()?);
        assert_eq!(a.seed.len(), SEED_LEN);
        assert!(!format!("{a:?}").contains(&a.seed.to_lower_hex_string()));
        Ok(())
    }

    #[test]
    fn key_files_are_private_and_never_overwritten() -> TestResult {
        let path = temp_path("keyfile");
        let k = CosignerKey::generate(BitcoinNetwork::Regtest)?;
        k.save(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        }
        let text = fs::read_to_string(&path)?;
        let json: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(json["version"], 1);
        assert_eq!(json["network"], "regtest");
        assert_eq!(json["seed"].as_str().map(str::len), Some(64));
        let loaded = CosignerKey::load(&path)?;
        assert_eq!(loaded.account_key()?, k.account_key()?);
        assert_eq!(loaded.network(), BitcoinNetwork::Regtest);
        // A second save to the same path is refused and leaves the first key alone.
        let other = CosignerKey::generate(BitcoinNetwork::Regtest)?;
        let refused = other.save(&path).err().map(|e| e.to_string());
        assert!(
            refused.as_deref().is_some_and(|e| e.contains("refusing to overwrite")),
            "{refused:?}"
        );
        assert_eq!(fs::read_to_string(&path)?, text);
        fs::remove_file(&path)?;
        Ok(())
    }

    #[test]
    fn bad_key_files_are_refused() -> TestResult {
        let path = temp_path("badkey");
        for (body, why) in [
            ("not json", "not a cosigner key file"),
            (r#"{"version": 2, "network": "regtest", "seed": "00"}"#, "version 2"),
            (
                r#"{"version": 1, "network": "moon", "seed": "0101010101010101010101010101010101"}"#,
                "not a cosigner key file",
            ),
            (r#"{"version": 1, "network": "regtest", "seed": "zz"}"#, "seed"),
            (
                r#"{"version": 1, "network": "regtest", "seed": "0102"}"#,
                "16 to 64 bytes",
            ),
        ] {
            fs::write(&path, body)?;
            let e = CosignerKey::load(&path).err().map(|e| e.to_string());
            assert!(e.as_deref().is_some_and(|e| e.contains(why)), "{body}: {e:?}");
            fs::remove_file(&path)?;
        }
        assert!(matches!(CosignerKey::load(&path), Err(ClientError::Io { .. })));
        Ok(())
    }

    #[test]
    fn two_of_three_sign_a_cold_psbt() -> TestResult {
        let (k1, k2, k3) = (key(1)?, key(2)?, key(3)?);
        let psbt = cold_psbt(&[&k1, &k2, &k3])?;
        let summary = k1.describe_psbt(&encode(&psbt))?;
        assert_eq!(summary.input_total, Some(100_000));
        assert_eq!(summary.output_total, 99_000);
        assert_eq!(summary.fee, Some(1_000));
        assert_eq!(summary.outputs[0].address.as_deref(), Some(PAYEE));
        assert!(!summary.outputs[0].change && summary.outputs[1].change);
        assert_eq!(summary.inputs[0].cosigners.len(), 3);
        assert!(summary.inputs[0].signed_by.is_empty());
        let text = summary.to_string();
        assert!(
            text.contains("60000 sats") && text.contains(PAYEE) && text.contains("Fee: 1000 sats"),
            "{text}"
        );
        assert!(text.contains("change back to cold storage"), "{text}");

        let by_one = k1.sign_psbt(&encode(&psbt))?;
        assert_eq!(by_one.signed_inputs, 1);
        assert_eq!(by_one.summary.inputs[0].signed_by, vec![k1.fingerprint()]);
        let by_three = k3.sign_psbt(&by_one.psbt)?;
        assert_eq!(by_three.signed_inputs, 1);
        let mut expected = vec![k1.fingerprint(), k3.fingerprint()];
        expected.sort();
        assert_eq!(by_three.summary.inputs[0].signed_by, expected);
        assert_eq!(by_three.summary.txid, psbt.unsigned_tx.compute_txid().to_string());

        // Both signatures verify against the input's signature hash, with the right keys.
        let signed = decode_psbt(&by_three.psbt)?;
        let mut cache = SighashCache::new(&signed.unsigned_tx);
        let (message, _) = signed.sighash_ecdsa(0, &mut cache)?;
        assert_eq!(signed.inputs[0].partial_sigs.len(), 2);
        for (pk, sig) in &signed.inputs[0].partial_sigs {
            assert_eq!(sig.sighash_type, EcdsaSighashType::All);
            k1.secp.verify_ecdsa(&message, &sig.signature, &pk.inner)?;
            let (fingerprint, _) = &signed.inputs[0].bip32_derivation[&pk.inner];
            assert_ne!(fingerprint.to_string(), k2.fingerprint());
        }
        // Signing again changes nothing (deterministic signatures).
        assert_eq!(k3.sign_psbt(&by_three.psbt)?.psbt, by_three.psbt);
        Ok(())
    }

    #[test]
    fn a_foreign_key_signs_nothing() -> TestResult {
        let psbt = encode(&cold_psbt(&[&key(1)?, &key(2)?, &key(3)?])?);
        let stranger = key(9)?;
        let e = stranger.sign_psbt(&psbt).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("signs nothing") && e.contains(&stranger.fingerprint())),
            "{e:?}"
        );
        Ok(())
    }

    #[test]
    fn malformed_psbts_are_refused() -> TestResult {
        let k = key(1)?;
        for (bad, why) in [
            ("", "empty"),
            ("not base64!", "not base64"),
            ("aGVsbG8gd29ybGQ=", "not a valid PSBT"),
        ] {
            let e = k.sign_psbt(bad).err().map(|e| e.to_string());
            assert!(e.as_deref().is_some_and(|e| e.contains(why)), "{bad}: {e:?}");
            assert!(k.describe_psbt(bad).is_err());
        }
        let good = cold_psbt(&[&k, &key(2)?, &key(3)?])?;
        // Whitespace and line breaks are fine.
        let wrapped: String = encode(&good)
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8_lossy(c).into_owned() + "\n")
            .collect();
        assert_eq!(k.sign_psbt(&wrapped)?.signed_inputs, 1);
        // A witness script that is not the coin's.
        let mut swapped = good.clone();
        swapped.inputs[0].witness_script = swapped.outputs[1].witness_script.clone();
        let e = k.sign_psbt(&encode(&swapped)).err().map(|e| e.to_string());
        assert!(e.as_deref().is_some_and(|e| e.contains("witness script")), "{e:?}");
        // A witness UTXO that lies about the amount.
        let mut lying = good.clone();
        if let Some(utxo) = lying.inputs[0].witness_utxo.as_mut() {
            utxo.value = Amount::from_sat(1_000_000);
        }
        let e = k.sign_psbt(&encode(&lying)).err().map(|e| e.to_string());
        assert!(e.as_deref().is_some_and(|e| e.contains("disagree")), "{e:?}");
        // A sighash type other than ALL.
        let mut none = good.clone();
        none.inputs[0].sighash_type = Some(EcdsaSighashType::None.into());
        let e = k.sign_psbt(&encode(&none)).err().map(|e| e.to_string());
        assert!(e.as_deref().is_some_and(|e| e.contains("only ALL")), "{e:?}");
        // A derivation outside the account.
        let mut outside = good;
        let fingerprint = k.master.fingerprint(&k.secp);
        for (_, source) in outside.inputs[0].bip32_derivation.iter_mut() {
            if source.0 == fingerprint {
                source.1 = "m/84'/1'/0'/0/0".parse()?;
            }
        }
        let e = k.sign_psbt(&encode(&outside)).err().map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| e.contains("outside this key's account")),
            "{e:?}"
        );
        Ok(())
    }

    #[test]
    fn a_psbt_of_another_network_is_refused() -> TestResult {
        let seeds = [1u8, 2, 3];
        let mainnet: Vec<CosignerKey> = seeds
            .iter()
            .map(|s| CosignerKey::from_seed(BitcoinNetwork::Mainnet, &[*s; 32]))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&CosignerKey> = mainnet.iter().collect();
        let psbt = encode(&cold_psbt(&refs)?);
        // The same seed on regtest has the same fingerprint but another coin type.
        let e = key(1)?.sign_psbt(&psbt).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("for mainnet") && e.contains("regtest")),
            "{e:?}"
        );
        assert!(key(1)?.describe_psbt(&psbt).is_err());
        assert_eq!(mainnet[0].sign_psbt(&psbt)?.signed_inputs, 1);
        // Outputs are shown as addresses of the key's network.
        let summary = mainnet[0].describe_psbt(&psbt)?;
        assert!(
            summary.outputs[0]
                .address
                .as_deref()
                .is_some_and(|a| a.starts_with("bc1q")),
            "{summary:?}"
        );
        Ok(())
    }

    /// Output 1 of `psbt` made to pay `script` (as P2WSH) with `derivations`, as `key` sees it.
    fn change_of(
        key: &CosignerKey,
        mut psbt: Psbt,
        script: ScriptBuf,
        derivations: Derivations,
    ) -> Result<bool, Box<dyn std::error::Error>> {
        psbt.unsigned_tx.output[1].script_pubkey = script.to_p2wsh();
        psbt.outputs[1].witness_script = Some(script);
        psbt.outputs[1].bip32_derivation = derivations;
        let summary = key.describe_psbt(&encode(&psbt))?;
        let text = summary.to_string();
        let change = summary.outputs[1].change;
        assert_eq!(change, text.contains("change back to cold storage"), "{text}");
        assert!(!summary.outputs[0].change, "{text}");
        Ok(change)
    }

    #[test]
    fn change_is_what_the_key_checks_not_what_the_psbt_claims() -> TestResult {
        let (k1, k2, k3) = (key(1)?, key(2)?, key(3)?);
        let good = cold_psbt(&[&k1, &k2, &k3])?;
        // A real change output: 2-of-3 of the same cosigners, with this key's own child.
        let (script, derivations) = multisig(&[&k1, &k2, &k3], 1, 7)?;
        assert!(change_of(&k1, good.clone(), script.clone(), derivations.clone())?);
        assert!(change_of(&k3, good.clone(), script.clone(), derivations.clone())?);
        assert!(k2.sign_psbt(&encode(&good))?.summary.outputs[1].change);

        // The payee output labelled with the change's script and derivations: the script is
        // not the output's, so it is a payment out.
        let mut relabelled = good.clone();
        relabelled.outputs[0].witness_script = Some(script.clone());
        relabelled.outputs[0].bip32_derivation = derivations.clone();
        let summary = k1.describe_psbt(&encode(&relabelled))?;
        assert!(!summary.outputs[0].change, "{summary}");
        let text = summary.to_string();
        assert_eq!(text.matches("change back to cold storage").count(), 1, "{text}");
        // No witness script at all, derivations only (what the old check believed).
        let mut claimed = good.clone();
        claimed.outputs[1].witness_script = None;
        let summary = k1.describe_psbt(&encode(&claimed))?;
        assert!(!summary.outputs[1].change, "{summary}");

        // A foreign cosigner in place of one of ours: another wallet, a payment out.
        let stranger = key(9)?;
        let (foreign, foreign_derivations) = multisig(&[&k1, &k2, &stranger], 1, 0)?;
        assert!(!change_of(&k1, good.clone(), foreign, foreign_derivations)?);
        // The same keys under a fingerprint relabelled as a cosigner's: still not this key's
        // multisig when this key is not in it.
        let (without_me, mut relabelled) = multisig(&[&k2, &k3, &stranger], 1, 0)?;
        for (_, (fingerprint, _)) in relabelled.iter_mut() {
            if *fingerprint == stranger.master.fingerprint(&stranger.secp) {
                *fingerprint = k1.master.fingerprint(&k1.secp);
            }
        }
        assert!(!change_of(&k1, good.clone(), without_me, relabelled)?);

        // This key's fingerprint on a key it did not derive at that path.
        let (script, mut wrong_path) = multisig(&[&k1, &k2, &k3], 1, 0)?;
        let mine = k1.master.fingerprint(&k1.secp);
        for (_, (fingerprint, path)) in wrong_path.iter_mut() {
            if *fingerprint == mine {
                *path = k1
                    .account_path()
                    .extend([ChildNumber::Normal { index: 1 }, ChildNumber::Normal { index: 1 }]);
            }
        }
        assert!(!change_of(&k1, good.clone(), script, wrong_path)?);
        // This key's own child, but outside its account.
        let outside: DerivationPath = "m/84'/1'/0'/1/0".parse()?;
        let outside_key = k1
            .master
            .derive_priv(&k1.secp, &outside)?
            .private_key
            .public_key(&k1.secp);
        let (script, derivations) = sortedmulti(
            OP_PUSHNUM_2,
            [(outside_key, (mine, outside)), child(&k2, 1, 0)?, child(&k3, 1, 0)?],
        );
        assert!(!change_of(&k1, good.clone(), script, derivations)?);
        // The same cosigners with another threshold: 1-of-3 is not the cold wallet.
        let (script, derivations) =
            sortedmulti(OP_PUSHNUM_1, [child(&k1, 1, 0)?, child(&k2, 1, 0)?, child(&k3, 1, 0)?]);
        assert!(!change_of(&k1, good.clone(), script, derivations)?);
        // A key that does not sign any input sees no change either.
        let summary = stranger.describe_psbt(&encode(&good))?;
        assert!(summary.outputs.iter().all(|o| !o.change), "{summary}");
        Ok(())
    }

    #[test]
    fn a_previous_transaction_must_be_the_coins() -> TestResult {
        let k = key(1)?;
        let good = cold_psbt(&[&k, &key(2)?, &key(3)?])?;
        assert!(k.describe_psbt(&encode(&good))?.warnings.is_empty());
        // Another transaction than the one the input spends.
        let mut other = good.clone();
        if let Some(tx) = other.inputs[0].non_witness_utxo.as_mut() {
            tx.lock_time = LockTime::from_consensus(1);
        }
        let e = k.sign_psbt(&encode(&other)).err().map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| e.contains("not the one it spends")),
            "{e:?}"
        );
        // The right transaction, but an output of it other than the witness UTXO.
        let mut swapped = good.clone();
        swapped.inputs[0].witness_utxo = swapped.inputs[0]
            .non_witness_utxo
            .as_ref()
            .and_then(|tx| tx.output.first().cloned());
        let e = k.sign_psbt(&encode(&swapped)).err().map(|e| e.to_string());
        assert!(e.as_deref().is_some_and(|e| e.contains("disagree")), "{e:?}");
        // An output the transaction lacks.
        let mut missing = good.clone();
        if let Some(tx) = missing.inputs[0].non_witness_utxo.as_mut() {
            tx.output.truncate(1);
        }
        missing.unsigned_tx.input[0].previous_output.txid = missing.inputs[0]
            .non_witness_utxo
            .as_ref()
            .map(Transaction::compute_txid)
            .ok_or("no previous transaction")?;
        let e = k.sign_psbt(&encode(&missing)).err().map(|e| e.to_string());
        assert!(e.as_deref().is_some_and(|e| e.contains("lacks")), "{e:?}");

        // Without it the input is signed, with a warning that the amount is the server's word.
        let mut bare = good;
        bare.inputs[0].non_witness_utxo = None;
        let signed = k.sign_psbt(&encode(&bare))?;
        assert_eq!(signed.signed_inputs, 1);
        assert_eq!(signed.summary.fee, Some(1_000));
        assert_eq!(signed.summary.warnings.len(), 1);
        let text = signed.summary.to_string();
        assert!(
            text.contains("Warning: input(s) 0 carry no previous transaction")
                && text.contains("as the server states them"),
            "{text}"
        );
        // The change check does not need it.
        assert!(signed.summary.outputs[1].change, "{text}");
        Ok(())
    }

    #[test]
    fn only_y_or_yes_confirms_signing() {
        for yes in ["y", "Y", "yes", "YES", "Yes", " y\n", "yes\r\n", "\tyes "] {
            assert!(signing_confirmed(yes), "{yes:?}");
        }
        for no in [
            "",
            "\n",
            "n",
            "no",
            "N",
            "yess",
            "ye",
            "y es",
            "ok",
            "sure",
            "yes please",
            "1",
            "oui",
        ] {
            assert!(!signing_confirmed(no), "{no:?}");
        }
    }

    #[test]
    fn multisig_shapes_are_read_strictly() -> TestResult {
        let (k1, k2, k3) = (key(1)?, key(2)?, key(3)?);
        let (script, derivations) = multisig(&[&k1, &k2, &k3], 0, 0)?;
        let shape = multisig_shape(&script, &derivations).ok_or("a 2-of-3")?;
        assert_eq!(shape.threshold, 2);
        assert_eq!(shape.fingerprints.len(), 3);
        // A key without a derivation, a trailing opcode, a P2WSH script: no shape.
        let mut partial = derivations.clone();
        let first = partial.keys().next().copied().ok_or("a key")?;
        partial.remove(&first);
        assert!(multisig_shape(&script, &partial).is_none());
        let mut longer = script.clone();
        longer.push_opcode(OP_PUSHNUM_1);
        assert!(multisig_shape(&longer, &derivations).is_none());
        assert!(multisig_shape(&script.to_p2wsh(), &derivations).is_none());
        // Two keys of one fingerprint are not two cosigners.
        let (twice, twice_derivations) =
            sortedmulti(OP_PUSHNUM_2, [child(&k1, 0, 0)?, child(&k1, 0, 1)?, child(&k2, 0, 0)?]);
        assert!(multisig_shape(&twice, &twice_derivations).is_none());
        Ok(())
    }
}
