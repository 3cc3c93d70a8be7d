//! Which Bitcoin network this Flash serves.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The Bitcoin network. Dev-only features (faucet, simulated rails) are refused on mainnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Real money.
    Mainnet,
    /// Testnet.
    Testnet,
    /// Signet.
    Signet,
    /// Local regtest (the embedded default).
    Regtest,
}

impl Network {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        }
    }

    /// Whether dev-only features (the faucet, simulated rails) may run.
    pub fn allows_dev_features(self) -> bool {
        self != Network::Mainnet
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown network name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network {0:?}: expected mainnet, testnet, signet or regtest")]
pub struct UnknownNetwork(pub String);

impl FromStr for Network {
    type Err = UnknownNetwork;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "mainnet" | "bitcoin" => Ok(Network::Mainnet),
            "testnet" => Ok(Network::Testnet),
            "signet" => Ok(Network::Signet),
            "regtest" => Ok(Network::Regtest),
            _ => Err(UnknownNetwork(s.to_string())),
        }
    }
}
