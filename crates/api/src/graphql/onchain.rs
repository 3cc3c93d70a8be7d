//! The on-chain part of the app API, with Galoy/Blink names: deposit addresses.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use flash_auth::Scope as AuthScope;
use flash_bank::BankError;
use flash_core::WalletId as CoreWalletId;

use super::types::*;
use super::{operator, principal, state};
use crate::error::ApiError;

/// `onChainAddressCreate` / `onChainAddressCurrent` input.
#[derive(InputObject)]
pub struct OnChainAddressCreateInput {
    /// The wallet the address pays into.
    pub wallet_id: WalletId,
}

/// `onChainAddressCurrent` input.
#[derive(InputObject)]
pub struct OnChainAddressCurrentInput {
    /// The wallet the address pays into.
    pub wallet_id: WalletId,
}

/// A deposit address, or why there is none.
#[derive(SimpleObject)]
pub struct OnChainAddressPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The address.
    pub address: Option<OnChainAddress>,
}

impl From<Result<String, BankError>> for OnChainAddressPayload {
    fn from(r: Result<String, BankError>) -> Self {
        match r {
            Ok(address) => OnChainAddressPayload {
                errors: vec![],
                address: Some(OnChainAddress(address)),
            },
            Err(e) => OnChainAddressPayload {
                errors: vec![ApiError::from(e).into()],
                address: None,
            },
        }
    }
}

fn wallet(id: &WalletId) -> Result<CoreWalletId, BankError> {
    id.0.parse().map_err(|_| BankError::WalletNotFound)
}

/// On-chain mutations.
#[derive(Default)]
pub struct OnchainMutation;

#[Object]
impl OnchainMutation {
    /// A new deposit address for one of the caller's wallets (scope `receive`). Deposits are
    /// credited after the configured confirmations.
    async fn on_chain_address_create(
        &self,
        ctx: &Context<'_>,
        input: OnChainAddressCreateInput,
    ) -> async_graphql::Result<OnChainAddressPayload> {
        let p = principal(ctx, AuthScope::Receive)?;
        let bank = &state(ctx).bank;
        let result = async {
            bank.onchain_address_create(p.account_id, wallet(&input.wallet_id)?)
                .await
        };
        Ok(result.await.into())
    }

    /// The wallet's newest deposit address, created if it has none (scope `receive`).
    async fn on_chain_address_current(
        &self,
        ctx: &Context<'_>,
        input: OnChainAddressCurrentInput,
    ) -> async_graphql::Result<OnChainAddressPayload> {
        let p = principal(ctx, AuthScope::Receive)?;
        let bank = &state(ctx).bank;
        let result = async {
            bank.onchain_address_current(p.account_id, wallet(&input.wallet_id)?)
                .await
        };
        Ok(result.await.into())
    }
}

/// `devChainDeposit` input.
#[derive(InputObject)]
pub struct DevChainDepositInput {
    /// The address paid (a deposit address of this Flash, or any address of the network).
    pub address: OnChainAddress,
    /// Amount, satoshis.
    pub amount: SatAmount,
}

/// `devChainMine` input.
#[derive(InputObject)]
pub struct DevChainMineInput {
    /// Blocks to mine (1 to 1,000).
    pub blocks: i32,
}

/// `devChainReorg` input.
#[derive(InputObject)]
pub struct DevChainReorgInput {
    /// How many blocks to replace.
    pub depth: i32,
    /// Whether their transactions vanish (as if double-spent) instead of going back to the
    /// mempool.
    pub drop_transactions: Option<bool>,
}

/// What a dev chain command did.
#[derive(SimpleObject, Default)]
pub struct DevChainPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The deposit's transaction (`devChainDeposit`).
    pub tx_hash: Option<OnChainTxHash>,
    /// The chain's height afterwards (`devChainMine`, `devChainReorg`).
    pub height: Option<i32>,
}

impl DevChainPayload {
    fn failed(e: BankError) -> Self {
        DevChainPayload {
            errors: vec![ApiError::from(e).into()],
            ..DevChainPayload::default()
        }
    }

    fn tip(r: Result<flash_core::onchain::BlockRef, BankError>) -> Self {
        match r {
            Ok(tip) => DevChainPayload {
                height: i32::try_from(tip.height).ok(),
                ..DevChainPayload::default()
            },
            Err(e) => DevChainPayload::failed(e),
        }
    }
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// Dev-only operator mutations of the simulated chain. Refused on mainnet and on a real chain.
#[derive(Default)]
pub struct OnchainAdminMutation;

#[Object]
impl OnchainAdminMutation {
    /// Dev/regtest: a payment from outside to `address`, in the simulated mempool.
    async fn dev_chain_deposit(
        &self,
        ctx: &Context<'_>,
        input: DevChainDepositInput,
    ) -> async_graphql::Result<DevChainPayload> {
        operator(ctx)?;
        Ok(
            match state(ctx)
                .bank
                .dev_chain_deposit(&input.address.0, input.amount.0)
                .await
            {
                Ok(txid) => DevChainPayload {
                    tx_hash: Some(OnChainTxHash(txid)),
                    ..DevChainPayload::default()
                },
                Err(e) => DevChainPayload::failed(e),
            },
        )
    }

    /// Dev/regtest: mines blocks (the mempool goes into the first), then credits what they
    /// confirmed.
    async fn dev_chain_mine(
        &self,
        ctx: &Context<'_>,
        input: DevChainMineInput,
    ) -> async_graphql::Result<DevChainPayload> {
        operator(ctx)?;
        Ok(DevChainPayload::tip(
            state(ctx).bank.dev_chain_mine(count(input.blocks)).await,
        ))
    }

    /// Dev/regtest: replaces the top `depth` blocks with a longer chain of empty blocks.
    async fn dev_chain_reorg(
        &self,
        ctx: &Context<'_>,
        input: DevChainReorgInput,
    ) -> async_graphql::Result<DevChainPayload> {
        operator(ctx)?;
        let drop = input.drop_transactions.unwrap_or(false);
        Ok(DevChainPayload::tip(
            state(ctx).bank.dev_chain_reorg(count(input.depth), drop).await,
        ))
    }
}
