//! The hot wallet's keys: one BIP32 seed, BIP84 (`wpkh`) accounts. The wallet itself only ever
//! sees the public descriptors; private keys stay with the signer.

use bitcoin::bip32::{ChildNumber, DerivationPath, Xpriv, Xpub};
use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::Psbt;
use flash_core::onchain::{bitcoin_network, ChainError, Signer};
use flash_core::ports::BoxFuture;
use flash_core::Network;

/// Length of a freshly generated seed, bytes.
pub const SEED_LEN: usize = 32;

/// The hot wallet's watch-only descriptors: deposits on the external chain (`/0/*`), change on
/// the internal one (`/1/*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotDescriptors {
    /// `wpkh([fingerprint/84'/coin'/0']xpub/0/*)`.
    pub external: String,
    /// `wpkh([fingerprint/84'/coin'/0']xpub/1/*)`.
    pub internal: String,
}

/// The cold wallet's watch-only descriptors: `threshold`-of-n `wsh(sortedmulti(…))` over the
/// cosigners' account keys (`[fingerprint/48'/coin'/0'/2']xpub`, as `flash cold keygen` prints
/// them), receive on `/0/*`, change on `/1/*`.
pub fn cold_descriptors(
    threshold: usize,
    cosigners: &[String],
    network: Network,
) -> Result<HotDescriptors, ChainError> {
    if cosigners.is_empty() || threshold == 0 || threshold > cosigners.len() {
        return Err(ChainError::InvalidInput(format!(
            "a cold wallet needs 1 ≤ threshold ≤ cosigners (got {threshold} of {})",
            cosigners.len()
        )));
    }
    let expected = bitcoin_network(network).into();
    for key in cosigners {
        let xpub = key.rsplit(']').next().unwrap_or(key);
        let parsed: Xpub = xpub.parse().map_err(|e| {
            ChainError::InvalidInput(format!("cosigner key {key:?} is not an extended public key: {e}"))
        })?;
        if parsed.network != expected {
            return Err(ChainError::WrongNetwork(format!("cosigner key {key}"), network));
        }
    }
    let keys = |chain: u8| {
        cosigners
            .iter()
            .map(|k| format!("{k}/{chain}/*"))
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok(HotDescriptors {
        external: format!("wsh(sortedmulti({threshold},{}))", keys(0)),
        internal: format!("wsh(sortedmulti({threshold},{}))", keys(1)),
    })
}

/// A fresh random seed.
pub fn generate_seed() -> [u8; SEED_LEN] {
    let mut seed = [0u8; SEED_LEN];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
    seed
}

/// The BIP84 account path for `network`: `m/84'/0'/0'` on mainnet, `m/84'/1'/0'` elsewhere.
fn account_path(network: Network) -> DerivationPath {
    let coin = u32::from(network != Network::Mainnet);
    [84, coin, 0]
        .into_iter()
        .map(|i| ChildNumber::Hardened { index: i })
        .collect::<Vec<_>>()
        .into()
}

/// The watch-only descriptors of `seed` on `network`.
pub fn hot_descriptors(seed: &[u8], network: Network) -> Result<HotDescriptors, ChainError> {
    let secp = Secp256k1::new();
    let master = Xpriv::new_master(bitcoin_network(network), seed)
        .map_err(|e| ChainError::InvalidInput(format!("unusable wallet seed: {e}")))?;
    let path = account_path(network);
    let account = master
        .derive_priv(&secp, &path)
        .map_err(|e| ChainError::InvalidInput(format!("cannot derive the wallet account: {e}")))?;
    let xpub = Xpub::from_priv(&secp, &account);
    let origin = format!(
        "[{}/{}]",
        master.fingerprint(&secp),
        path.to_string().trim_start_matches("m/")
    );
    Ok(HotDescriptors {
        external: format!("wpkh({origin}{xpub}/0/*)"),
        internal: format!("wpkh({origin}{xpub}/1/*)"),
    })
}

/// The software signer of the embedded default: the seed's master key, in memory only.
pub struct SoftwareSigner {
    master: Xpriv,
    secp: Secp256k1<All>,
}

impl std::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SoftwareSigner(..)")
    }
}

impl SoftwareSigner {
    /// The signer of `seed` on `network`.
    pub fn new(seed: &[u8], network: Network) -> Result<SoftwareSigner, ChainError> {
        let master = Xpriv::new_master(bitcoin_network(network), seed)
            .map_err(|e| ChainError::InvalidInput(format!("unusable wallet seed: {e}")))?;
        Ok(SoftwareSigner {
            master,
            secp: Secp256k1::new(),
        })
    }
}

impl Signer for SoftwareSigner {
    fn sign_psbt(&self, mut psbt: Psbt) -> BoxFuture<'_, Result<Psbt, ChainError>> {
        let signed = psbt.sign(&self.master, &self.secp);
        Box::pin(async move {
            match signed {
                Ok(_) => Ok(psbt),
                Err((_, errors)) => Err(ChainError::InvalidInput(format!(
                    "signing failed for {} input(s): {:?}",
                    errors.len(),
                    errors.values().collect::<Vec<_>>()
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_follow_bip84_for_the_network() {
        let seed = [1u8; 32];
        let regtest = hot_descriptors(&seed, Network::Regtest).expect("descriptors");
        assert!(regtest.external.starts_with("wpkh(["), "{}", regtest.external);
        assert!(regtest.external.contains("/84'/1'/0']tpub"), "{}", regtest.external);
        assert!(regtest.external.ends_with("/0/*)"));
        assert!(regtest.internal.ends_with("/1/*)"));
        let mainnet = hot_descriptors(&seed, Network::Mainnet).expect("descriptors");
        assert!(mainnet.external.contains("/84'/0'/0']xpub"), "{}", mainnet.external);
        assert_eq!(regtest, hot_descriptors(&seed, Network::Regtest).expect("descriptors"));
        assert_ne!(
            regtest,
            hot_descriptors(&[2u8; 32], Network::Regtest).expect("descriptors")
        );
    }
}
