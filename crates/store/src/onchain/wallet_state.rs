//! The on-chain wallets' recorded state (BDK change sets), kept in the store so it moves with
//! the database.

use flash_core::onchain::{ChainError, WalletStateStore};
use flash_core::ports::BoxFuture;

use crate::sql::params;
use crate::{Store, StoreError};

fn chain_storage(e: StoreError) -> ChainError {
    ChainError::Storage(e.to_string())
}

impl WalletStateStore for Store {
    fn load_wallet_state<'a>(&'a self, wallet: &'a str) -> BoxFuture<'a, Result<Vec<String>, ChainError>> {
        Box::pin(async move {
            let rows = self
                .db
                .query(
                    "SELECT change FROM wallet_state WHERE wallet = $1 ORDER BY seq",
                    params![wallet],
                )
                .await
                .map_err(chain_storage)?;
            rows.iter().map(|r| r.text(0).map_err(chain_storage)).collect()
        })
    }

    fn append_wallet_state<'a>(&'a self, wallet: &'a str, change: String) -> BoxFuture<'a, Result<(), ChainError>> {
        Box::pin(async move {
            self.db
                .execute(
                    "INSERT INTO wallet_state (wallet, seq, change) \
                     SELECT $1, COALESCE(MAX(seq), 0) + 1, $2 FROM wallet_state WHERE wallet = $1",
                    params![wallet, change],
                )
                .await
                .map(|_| ())
                .map_err(chain_storage)
        })
    }
}
