//! On-chain storage, one module per aggregate: deposits (with the address index), payouts and
//! their batches, cold-storage sweeps, and the wallets' recorded state.

mod deposits;
mod payouts;
mod sweeps;
mod wallet_state;

pub use deposits::{AddressOwner, DepositRecord, DepositStatus, OnchainTotals, SeenDeposit};
pub use payouts::{BatchRecord, BatchStatus, NewBatch, NewPayout, PayoutRecord, PayoutSpeed, PayoutStatus};
pub use sweeps::{SweepDirection, SweepRecord};
