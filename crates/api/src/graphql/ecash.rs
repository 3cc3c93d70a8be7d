//! Ecash from and to Flash wallets (Flash extensions): `ecashMint` turns balance into a Cashu
//! token of this Flash's mint, `ecashRedeem` credits a wallet from one. Both stay inside the
//! ledger: no Lightning hop.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use flash_auth::Scope as AuthScope;
use flash_core::WalletId as CoreWalletId;
use flash_mint::MintError;

use super::types::*;
use super::{operator, principal, state};
use crate::error::ApiError;

/// Input of `ecashMint`.
#[derive(InputObject)]
pub struct EcashMintInput {
    /// The BTC wallet to take the sats from (one of the caller's).
    pub wallet_id: WalletId,
    /// Sats to turn into ecash.
    pub amount: SatAmount,
    /// Makes the request safe to retry (1–128 characters).
    pub idempotency_key: Option<String>,
}

/// Input of `ecashRedeem`.
#[derive(InputObject)]
pub struct EcashRedeemInput {
    /// A Cashu token (`cashuA…` / `cashuB…`) of this Flash's mint.
    pub token: String,
    /// The BTC wallet to credit (one of the caller's).
    pub wallet_id: WalletId,
}

/// A token, or why there is none.
#[derive(SimpleObject)]
pub struct EcashMintPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The token: whoever holds it holds the sats.
    pub token: Option<String>,
    /// Its value in sats.
    pub amount: Option<SatAmount>,
}

/// What a redeem credited, or why nothing was.
#[derive(SimpleObject)]
pub struct EcashRedeemPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// Sats credited (the token's value less the mint's input fee).
    pub amount: Option<SatAmount>,
    /// The mint's input fee, sats.
    pub fee: Option<SatAmount>,
}

/// A mint refusal as an app error: `ECASH_<name>` with the NUT code in the message, or the
/// bank's own error for the wallet side.
fn ecash_error(e: &MintError) -> ErrorIface {
    match e {
        MintError::Bank(_) => ApiError::new(e.name(), e.to_string()).into(),
        _ => ApiError::new(e.name(), format!("{e} (NUT code {})", e.code())).into(),
    }
}

fn wallet(id: &WalletId) -> Result<CoreWalletId, MintError> {
    id.0.parse()
        .map_err(|_| MintError::BadRequest("wallet not found".into()))
}

fn mint(ctx: &Context<'_>) -> Result<flash_mint::Mint, MintError> {
    state(ctx)
        .mint
        .clone()
        .ok_or_else(|| MintError::MintingDisabled("this Flash runs no mint".into()))
}

/// Ecash mutations.
#[derive(Default)]
pub struct EcashMutation;

#[Object]
impl EcashMutation {
    /// Turns wallet balance into a Cashu token of this Flash's mint (scope `write`).
    async fn ecash_mint(&self, ctx: &Context<'_>, input: EcashMintInput) -> async_graphql::Result<EcashMintPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let result = async {
            mint(ctx)?
                .ecash_from_wallet(
                    p.account_id,
                    wallet(&input.wallet_id)?,
                    input.amount.0,
                    input.idempotency_key,
                )
                .await
        };
        Ok(match result.await {
            Ok(minted) => EcashMintPayload {
                errors: vec![],
                token: Some(minted.token),
                amount: Some(SatAmount(minted.amount)),
            },
            Err(e) => EcashMintPayload {
                errors: vec![ecash_error(&e)],
                token: None,
                amount: None,
            },
        })
    }

    /// Credits a wallet from a Cashu token of this Flash's mint (scope `receive`).
    async fn ecash_redeem(
        &self,
        ctx: &Context<'_>,
        input: EcashRedeemInput,
    ) -> async_graphql::Result<EcashRedeemPayload> {
        let p = principal(ctx, AuthScope::Receive)?;
        let result = async {
            mint(ctx)?
                .ecash_to_wallet(p.account_id, wallet(&input.wallet_id)?, &input.token)
                .await
        };
        Ok(match result.await {
            Ok(r) => EcashRedeemPayload {
                errors: vec![],
                amount: Some(SatAmount(r.amount)),
                fee: Some(SatAmount(r.fee)),
            },
            Err(e) => EcashRedeemPayload {
                errors: vec![ecash_error(&e)],
                amount: None,
                fee: None,
            },
        })
    }
}

/// A keyset of the mint.
#[derive(SimpleObject)]
pub struct EcashKeysetView {
    /// Its NUT-02 id.
    pub id: String,
    /// Its unit.
    pub unit: String,
    /// Whether it signs new notes.
    pub active: bool,
    /// Fee per input, parts per thousand.
    pub input_fee_ppk: i64,
}

/// The mint's books: its notes against the ledger.
#[derive(SimpleObject)]
pub struct EcashStatusView {
    /// Sats of every note signed.
    pub issued: SatAmount,
    /// Sats of notes spent.
    pub spent: SatAmount,
    /// Sats of notes pending in melts.
    pub pending: SatAmount,
    /// Sats of notes in circulation and not pending in a melt (issued - spent - pending): what
    /// `mint:outstanding` holds.
    pub outstanding: SatAmount,
    /// The ledger's `mint:outstanding`.
    pub ledger_outstanding: SatAmount,
    /// Sats of quotes paid and not yet issued.
    pub quotes_paid: SatAmount,
    /// The ledger's `mint:quotes`.
    pub ledger_quotes: SatAmount,
    /// Whether the notes and the ledger agree.
    pub balanced: bool,
    /// Every keyset, oldest first.
    pub keysets: Vec<EcashKeysetView>,
}

fn keyset_view(k: &cashu::nuts::KeySetInfo) -> EcashKeysetView {
    EcashKeysetView {
        id: k.id.to_string(),
        unit: k.unit.to_string(),
        active: k.active,
        input_fee_ppk: i64::try_from(k.input_fee_ppk).unwrap_or(i64::MAX),
    }
}

fn admin(e: MintError) -> async_graphql::Error {
    ApiError::new(e.name(), e.to_string()).to_graphql()
}

/// Operator queries of the mint.
#[derive(Default)]
pub struct EcashAdminQuery;

#[Object]
impl EcashAdminQuery {
    /// The mint's books and keysets.
    async fn ecash_status(&self, ctx: &Context<'_>) -> async_graphql::Result<EcashStatusView> {
        operator(ctx)?;
        let mint = mint(ctx).map_err(admin)?;
        let s = mint.status().await.map_err(admin)?;
        Ok(EcashStatusView {
            issued: SatAmount(s.notes.issued),
            spent: SatAmount(s.notes.spent),
            pending: SatAmount(s.notes.pending),
            outstanding: SatAmount(s.notes.outstanding()),
            ledger_outstanding: SatAmount(s.ledger_outstanding),
            quotes_paid: SatAmount(s.notes.quotes_paid),
            ledger_quotes: SatAmount(s.ledger_quotes),
            balanced: s.balanced(),
            keysets: mint.keysets().keysets.iter().map(keyset_view).collect(),
        })
    }
}

/// Operator mutations of the mint.
#[derive(Default)]
pub struct EcashAdminMutation;

#[Object]
impl EcashAdminMutation {
    /// Makes a new active sat keyset with the configured amounts and input fee; the old one
    /// stops signing and stays redeemable.
    async fn ecash_keyset_rotate(&self, ctx: &Context<'_>) -> async_graphql::Result<EcashKeysetView> {
        let actor = operator(ctx)?.to_string();
        let mint = mint(ctx).map_err(admin)?;
        let info = mint
            .rotate(cashu::nuts::CurrencyUnit::Sat, &actor)
            .await
            .map_err(admin)?;
        Ok(keyset_view(&info))
    }
}
