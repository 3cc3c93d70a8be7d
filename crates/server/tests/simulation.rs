//! A whole-bank simulation in the manner of TigerBeetle's VOPR: a seeded random run of `Bank`
//! over the `dev` Lightning and chain rails, a hand-moved clock and crashes, checked by an
//! independent auditor.
//!
//! Each seed builds a fresh store and a bank with its own dev node (a second dev node plays the
//! rest of the network) and a hot wallet on its own dev chain, then draws operations from a deterministic generator: members signing
//! up, faucet funding, intraledger payments (valid, overdrawn, to oneself, from a wallet that is
//! not the caller's, to nobody, zero amounts, retried idempotency keys with the same and with a
//! different body), Lightning invoices paid from outside, Flash invoices paid inside the
//! ledger, payments to other nodes that succeed, fail, exceed the fee cap, hang or finish after
//! the bank stopped waiting, repeated payments of one invoice, reconciliation passes, on-chain
//! deposits, blocks and one-block reorganisations (returned to the mempool, or dropped when no
//! payout transaction the store recorded is in the mempool or the tip block), clock
//! moves (invoice expiry, the rolling 24-hour limits), on-chain withdrawals (fast and batched,
//! refused below dust, over the limit or the balance) and batcher passes, the Cashu mint (mint
//! quotes paid from outside or from a wallet, minting, swaps and double spends, melts inside
//! Flash and over Lightning), Nostr Wallet Connect (an app connected with a random budget
//! asks the service through an in-process relay with NIP-44 or NIP-04 sealed, signed NIP-47
//! requests: its balance, payments to other nodes and to Flash invoices, at the edge of its
//! budget and of the wallet's balance, replays, revoked and expired connections) and crashes: a payment's, a payout pass's or a melt's future is
//! dropped after a random number of polls (the process dying between two steps of the saga:
//! before the hold, after it, during the node or chain call), the bank and the mint are
//! rebuilt over the same store, node and chain and their reconcilers run.
//!
//! It lives in the server crate because it drives the mint, which depends on the bank.
//!
//! The auditor ([`Model`]) keeps what every wallet should hold, what is held in flight and the
//! totals of each rail and every ecash note, from the operations alone: it never reads a balance from the bank to
//! decide what a balance should be. After a crash the real system may end a payment several
//! ways (never started, failed, paid, still in flight); the auditor reads which one the bank
//! recorded, checks it is one the rail allows (a payment can succeed only if its outcome was a
//! success, with exactly the fee that outcome charges) and books it. Every answer is checked
//! (success, replay, or the exact typed refusal), every wallet after every operation, and at
//! the end the system accounts against the rail totals, every wallet connection's spent budget
//! and `ledger verify`.
//!
//! `FLASH_SIM_SEED=n` replays one seed, `FLASH_SIM_SEEDS=a..b` runs a range,
//! `FLASH_SIM_OPS=n` sets the operations per seed (docs/testing.md). A failure prints the
//! seed and the command that replays it.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use cashu::nuts::{
    CheckStateRequest, CurrencyUnit, MeltQuoteBolt11Request, MeltRequest, MintQuoteBolt11Request, MintRequest, Proof,
    State, SwapRequest,
};
use cashu::Amount;
use flash_bank::{
    Bank, BankConfig, BankError, Identity, InvoiceCreate, InvoiceFor, LightningConfig, LnPayOutcome, LnPayRequest,
    OnchainConfig, OnchainSend, PaymentStatus, Recipient, SendRequest, Speed,
};
use flash_core::lightning::{DevOutcome, InvoiceDescription, InvoiceRequest, LightningNode};
use flash_core::onchain::{ChainSource, HotWallet, TxPosition};
use flash_core::ports::{Clock, SystemClock};
use flash_core::{
    AccountId, Currency, HoldId, IdempotencyKey, LevelLimits, LimitPolicy, Network, Phone, SystemAccount, WalletId,
};
use flash_lightning::DevNode;
use flash_mint::wallet::{split, Premint};
use flash_mint::{Mint, MintConfig, MintError};
use flash_nostr::nwc::NewConnection;
use flash_nostr::{Relay, RelayConfig, Sender, WalletConnect};
use flash_onchain::testing::{open_hot_wallet, outside_address};
use flash_onchain::DevChain;
use flash_store::testing::{fresh_store_with_clock, Backend};
use flash_store::{AccountRecord, LnPaymentStatus, MeltQuoteState, PayoutStatus, Store};
use futures_util::FutureExt;
use serde_json::{json, Value};

/// Seeds run by default on SQLite (CI), and operations per seed.
const SQLITE_SEEDS: u64 = 48;
/// Seeds run by default on PostgreSQL.
const POSTGRES_SEEDS: u64 = 4;
/// Operations per seed by default.
const OPS_PER_SEED: u64 = 100;
/// Seeds run at once (each on its own database).
const PARALLEL_SEEDS: usize = 4;

/// Most members a seed signs up.
const MEMBERS_MAX: usize = 8;
/// Daily limits of every level, satoshis (10 sats a cent at 1,000 sats per dollar).
const INTRALEDGER_LIMIT_SATS: i64 = 400_000;
const WITHDRAWAL_LIMIT_SATS: i64 = 250_000;
/// Lightning fee cap: basis points and floor (the bank's defaults, restated for the model).
const FEE_CAP_BPS: i64 = 50;
const FEE_CAP_MIN_SATS: i64 = 10;
/// Confirmations before a deposit is credited, and the deposit fee (flat + basis points).
const CONFIRMATIONS: i64 = 2;
const DEPOSIT_FEE_FLAT_SATS: i64 = 50;
const DEPOSIT_FEE_BPS: i64 = 30;
/// The dev chain's fee estimate, satoshis per 1,000 vbytes (every target).
const FEE_RATE_SAT_PER_KVB: i64 = 2_000;
/// Smallest on-chain payout (the bank's default, restated).
const DUST_SATS: i64 = 5_000;
/// Virtual bytes a payout is charged for beyond its own output (overhead, one input, change):
/// the model's statement of the bank's rule.
const PAYOUT_SHARED_VBYTES: i64 = 11 + 68 + 31;
/// What the hot wallet is given at the start of a seed (a deposit credited to a bystander), so
/// that payouts never wait for coins.
const WHALE_SATS: i64 = 100_000_000;
/// A jump of the clock that empties every limit window (24 hours and one bucket, and more).
const DAY_JUMP_MS: i64 = 25 * 3_600_000;
/// Longest the clock moves in small steps between two day jumps, so a window never rolls
/// part-way (which bucket an amount falls out of is the store's business, not the model's).
const SMALL_STEPS_MAX_MS: i64 = 23 * 3_600_000;
/// How long a simulated wallet-connect app waits for an answer before the seed fails.
const NWC_ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulation_sqlite() {
    run(Backend::Sqlite, SQLITE_SEEDS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulation_postgres() {
    run(Backend::Postgres, POSTGRES_SEEDS).await;
}

/// Which seeds to run and how long each is: `FLASH_SIM_SEED`, `FLASH_SIM_SEEDS` (`a..b`) and
/// `FLASH_SIM_OPS`, else `0..default_seeds` of [`OPS_PER_SEED`].
fn plan(default_seeds: u64) -> (std::ops::Range<u64>, u64) {
    let number = |name: &str, text: &str| -> u64 {
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {text:?}"))
    };
    let seeds = match (std::env::var("FLASH_SIM_SEED"), std::env::var("FLASH_SIM_SEEDS")) {
        (Ok(one), _) => {
            let seed = number("FLASH_SIM_SEED", &one);
            seed..seed + 1
        }
        (_, Ok(range)) => {
            let (a, b) = range
                .split_once("..")
                .unwrap_or_else(|| panic!("FLASH_SIM_SEEDS must read a..b, not {range:?}"));
            number("FLASH_SIM_SEEDS", a)..number("FLASH_SIM_SEEDS", b)
        }
        _ => 0..default_seeds,
    };
    let ops = std::env::var("FLASH_SIM_OPS").map_or(OPS_PER_SEED, |v| number("FLASH_SIM_OPS", &v));
    (seeds, ops)
}

/// Runs the planned seeds, [`PARALLEL_SEEDS`] at a time; a failing seed is named with the
/// command that replays it, and fails the test.
async fn run(backend: Backend, default_seeds: u64) {
    if std::env::var_os("RUST_LOG").is_some() {
        // The bank's own account of a failing seed, when asked for.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
    }
    let (seeds, ops) = plan(default_seeds);
    let started = std::time::Instant::now();
    let count = seeds.end.saturating_sub(seeds.start);
    let semaphore = Arc::new(tokio::sync::Semaphore::new(PARALLEL_SEEDS));
    let mut tasks = Vec::new();
    for seed in seeds {
        let permit = semaphore.clone().acquire_owned().await.expect("semaphore");
        tasks.push((
            seed,
            tokio::spawn(async move {
                let stats =
                    tracing::Instrument::instrument(simulate(backend, seed, ops), tracing::info_span!("sim", seed))
                        .await;
                drop(permit);
                stats
            }),
        ));
    }
    let mut total = Stats::default();
    let mut failed = Vec::new();
    for (seed, task) in tasks {
        match task.await {
            Ok(stats) => total.add(&stats),
            Err(e) => failed.push((seed, e)),
        }
    }
    let test = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    if let Some((seed, e)) = failed.into_iter().next() {
        eprintln!(
            "simulation failed on {test}, seed {seed}; replay it with:\n  FLASH_SIM_SEED={seed} FLASH_SIM_OPS={ops} \
             cargo nextest run --workspace --all-features -E 'binary(simulation) and test(simulation_{test})' \
             --no-capture"
        );
        std::panic::resume_unwind(e.into_panic());
    }
    println!(
        "simulation on {test}: {count} seeds x {ops} operations in {:.1?}; {total:?}",
        started.elapsed()
    );
}

/// What a run did, to show it did something.
#[derive(Clone, Debug, Default)]
struct Stats {
    operations: u64,
    refusals: u64,
    crashes: u64,
    ln_sent: u64,
    ln_received: u64,
    intraledger: u64,
    deposits: u64,
    payouts: u64,
    ecash: u64,
    /// Wallet-connect answers checked, by how they ended (`paid`, `balance`, `replayed`, or
    /// the NIP-47 error code), and budget periods that began anew.
    nwc: std::collections::BTreeMap<&'static str, u64>,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.operations += o.operations;
        self.refusals += o.refusals;
        self.crashes += o.crashes;
        self.ln_sent += o.ln_sent;
        self.ln_received += o.ln_received;
        self.intraledger += o.intraledger;
        self.deposits += o.deposits;
        self.payouts += o.payouts;
        self.ecash += o.ecash;
        for (what, n) in &o.nwc {
            *self.nwc.entry(what).or_default() += n;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The world's parts (what `crates/bank/tests/support` gave the simulation before it moved here)
// ---------------------------------------------------------------------------------------------

/// The flashd node every bank of a seed is: a bank built again over the same store is that
/// node restarted.
const NODE: &str = "sim-node";
/// The hot wallet's seed.
const HOT_SEED: [u8; 32] = [42u8; 32];
/// The seed of the wallet outside Flash that payouts pay.
const OUTSIDE_SEED: [u8; 32] = [77u8; 32];

static NEXT_PHONE: AtomicU64 = AtomicU64::new(1);

/// A new member signed up with a phone number of its own.
async fn new_member(bank: &Bank) -> AccountRecord {
    let n = NEXT_PHONE.fetch_add(1, Ordering::Relaxed);
    let phone = Phone::parse(&format!("+1559{n:07}")).expect("phone");
    bank.user_for_identity(&Identity::Phone(phone))
        .await
        .expect("sign up")
        .1
}

/// The regtest hot wallet of [`HOT_SEED`] over `chain`, its state in `store`.
async fn hot_wallet(store: &Store, chain: Arc<dyn ChainSource>) -> Arc<dyn HotWallet> {
    Arc::new(open_hot_wallet(&HOT_SEED, chain, Arc::new(store.clone())).await)
}

/// A system account's BTC balance, read from the store.
async fn system_balance(store: &Store, account: SystemAccount) -> i64 {
    let id = account.ledger_id(Currency::Btc);
    let balances = store.balances(std::slice::from_ref(&id)).await.expect("balances");
    balances.get(&id).copied().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Determinism: the generator and the clock
// ---------------------------------------------------------------------------------------------

/// SplitMix64: small, fast and the same on every platform, so a seed is a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).expect("range");
        lo + i64::try_from(self.below(span)).expect("fits")
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::try_from(self.below(items.len() as u64)).expect("index")]
    }
}

/// The clock the store (and so the bank) reads, moved only by the simulation.
struct SimClock(AtomicI64);

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// The auditor's model
// ---------------------------------------------------------------------------------------------

/// A member as the auditor knows it.
#[derive(Clone, Debug)]
struct Member {
    account: AccountId,
    wallet: WalletId,
    /// What the wallet holds.
    balance: i64,
    /// Limit usage since the last day jump.
    intraledger_used: i64,
    withdrawal_used: i64,
}

/// An intraledger payment that posted, by its idempotency key.
#[derive(Clone, Debug)]
struct Posted {
    key: String,
    to: WalletId,
    amount: i64,
    journal: flash_core::JournalId,
}

/// An invoice of this Flash.
#[derive(Clone, Debug)]
struct OwnInvoice {
    request: String,
    member: usize,
    amount: Option<i64>,
    expires_at_secs: u64,
    paid: bool,
}

/// How a payment to another node turns out, as the dev node was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Paid now with this routing fee rate.
    Succeed { fee_ppm: u64 },
    /// Paid a few milliseconds after the bank stopped waiting.
    Late { fee_ppm: u64 },
    /// No route.
    Fail,
    /// Never resolves.
    Hang,
}

impl Outcome {
    fn dev(self) -> DevOutcome {
        match self {
            Outcome::Succeed { fee_ppm } => DevOutcome::Succeed { delay_ms: 0, fee_ppm },
            Outcome::Late { fee_ppm } => DevOutcome::Succeed { delay_ms: 3, fee_ppm },
            Outcome::Fail => DevOutcome::Fail { delay_ms: 0 },
            Outcome::Hang => DevOutcome::Hang,
        }
    }

    /// The routing fee in satoshis if this outcome pays `amount` within its cap, else `None`
    /// (the payment fails).
    fn fee(self, amount: i64) -> Option<i64> {
        let ppm = match self {
            Outcome::Succeed { fee_ppm } | Outcome::Late { fee_ppm } => fee_ppm,
            Outcome::Fail | Outcome::Hang => return None,
        };
        let msat = u64::try_from(amount).expect("positive") * 1_000;
        let fee_msat = msat * ppm / 1_000_000;
        let cap = fee_cap(amount);
        (fee_msat <= u64::try_from(cap).expect("positive") * 1_000)
            .then(|| i64::try_from(fee_msat.div_ceil(1_000)).expect("fits"))
    }
}

/// The fee on a deposit: the model's own statement of the rule.
fn deposit_fee(amount: i64) -> i64 {
    ((amount * DEPOSIT_FEE_BPS + 9_999) / 10_000 + DEPOSIT_FEE_FLAT_SATS).min(amount)
}

/// An on-chain deposit to a member's address.
#[derive(Clone, Debug)]
struct Deposit {
    member: usize,
    amount: i64,
    state: DepositState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DepositState {
    /// Unconfirmed.
    Mempool,
    /// In the block at this (model) height.
    Mined(i64),
    Credited,
    /// Reorganised out as if double-spent.
    Dropped,
}

/// The fee cap the bank holds with a Lightning payment: the model's own statement of the rule.
fn fee_cap(amount: i64) -> i64 {
    ((amount * FEE_CAP_BPS + 9_999) / 10_000).max(FEE_CAP_MIN_SATS)
}

/// A payment to another node.
#[derive(Clone, Debug)]
struct OutPayment {
    member: usize,
    request: String,
    amount: i64,
    expires_at_secs: u64,
    outcome: Outcome,
    /// Where the auditor knows it to be.
    state: OutState,
    /// Its process died during the attempt: the node may never have heard of it, so it may
    /// fail whatever its outcome.
    crashed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum OutState {
    /// Never started (refused, or a crash before its hold).
    None,
    /// Held (amount + fee cap) under this hold, waiting for the node.
    Pending {
        hold: HoldId,
        held: i64,
    },
    Failed,
    Succeeded,
}

/// The fee a payout of an output of `out_vbytes` is held with: what it costs alone in a
/// transaction at the dev chain's rate, rounded up (the model's statement of the rule).
fn payout_reserve(out_vbytes: i64) -> i64 {
    ((out_vbytes + PAYOUT_SHARED_VBYTES) * FEE_RATE_SAT_PER_KVB + 999) / 1_000
}

/// The script an address pays.
fn output_script(address: &str) -> bitcoin::ScriptBuf {
    let address: bitcoin::Address<bitcoin::address::NetworkUnchecked> = address.parse().expect("address");
    address.assume_checked().script_pubkey()
}

/// The virtual bytes of an output paying `address`: value, script length and script.
fn output_vbytes(address: &str) -> i64 {
    9 + i64::try_from(output_script(address).len()).expect("length")
}

/// An on-chain withdrawal that was queued.
#[derive(Clone, Debug)]
struct Payout {
    member: usize,
    address: String,
    amount: i64,
    reserve: i64,
    /// Its output's size, its weight in the fee split.
    vbytes: i64,
    /// Its own transaction at the next pass (else the next batch).
    fast: bool,
    /// The hold (the payout's id).
    hold: HoldId,
    state: PayoutState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PayoutState {
    /// Held (amount + reserve), waiting for a pass.
    Queued,
    /// In this batch's broadcast transaction, charged this share of its fee.
    Sent { batch: String, share: i64 },
}

/// A payout transaction the network has.
#[derive(Clone, Debug)]
struct Batch {
    /// Its txid, as the bank recorded it.
    txid: String,
    /// What the transaction pays miners.
    fee: i64,
    /// What its payouts were charged together.
    charged: i64,
    /// Where it is: in the mempool (`None`) or in the block at this model height.
    mined: Option<i64>,
}

/// The change a melt's blank outputs carry back (NUT-08, the model's statement of the mint's
/// rule): `amount` split greedily into powers of two, at most one per blank output. The rest
/// is the mint's.
fn change_carried(amount: i64, blanks: usize) -> i64 {
    let mut rest = amount;
    let mut carried = 0;
    for _ in 0..blanks {
        if rest <= 0 {
            break;
        }
        let bit = 1i64 << (63 - rest.leading_zeros());
        carried += bit;
        rest -= bit;
    }
    carried
}

/// An ecash note the simulated wallet holds.
#[derive(Clone, Debug)]
struct Note {
    proof: Proof,
    amount: i64,
    state: NoteState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NoteState {
    Unspent,
    /// In a melt whose payment is in flight.
    Pending,
    Spent,
}

/// A melt over Lightning that went out and is not ended yet, or ended.
#[derive(Clone, Debug)]
struct Melt {
    quote: String,
    /// The notes it spends (indexes into the model's notes).
    notes: Vec<usize>,
    /// Their value.
    inputs: i64,
    amount: i64,
    reserve: i64,
    /// The blank outputs for its change, kept to unblind it.
    blanks: Premint,
    outcome: Outcome,
    /// Its process died during the attempt (the node may never have heard of it).
    crashed: bool,
    state: MeltState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MeltState {
    Pending,
    Paid,
    Failed,
}

/// The start (Unix ms, UTC) of the budget period `now_ms` falls in: the model's own statement
/// of NIP-47 budget periods (days from midnight, weeks from Monday, months and years from their
/// first day, counted out from 1970; `never` from the connection's creation).
fn budget_period_start(period: &str, created_at_ms: i64, now_ms: i64) -> i64 {
    const DAY_MS: i64 = 86_400_000;
    let today = now_ms.div_euclid(DAY_MS);
    let first_day = match period {
        "daily" => today,
        // Day 4 (1970-01-05) was a Monday.
        "weekly" => today - (today - 4).rem_euclid(7),
        "monthly" | "yearly" => {
            let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let year_days = |y: i64| if leap(y) { 366 } else { 365 };
            let (mut year, mut day) = (1970, 0);
            while day + year_days(year) <= today {
                day += year_days(year);
                year += 1;
            }
            if period == "monthly" {
                let february = if leap(year) { 29 } else { 28 };
                for days in [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
                    if day + days > today {
                        break;
                    }
                    day += days;
                }
            }
            day
        }
        _ => return created_at_ms,
    };
    first_day * DAY_MS
}

/// The largest amount that fits in `room` together with its Lightning fee cap (0 when none
/// does): the edge of a budget or a balance.
fn largest_within(room: i64) -> i64 {
    let mut amount = (room - fee_cap(room)).max(0);
    while amount + 1 + fee_cap(amount + 1) <= room {
        amount += 1;
    }
    while amount > 0 && amount + fee_cap(amount) > room {
        amount -= 1;
    }
    amount
}

/// A Nostr Wallet Connect connection as the auditor knows it.
#[derive(Clone, Debug)]
struct NwcConn {
    /// The service's id for it.
    id: String,
    member: usize,
    /// The app's key: the URI's secret.
    app: nostr::Keys,
    /// It may call `pay_invoice` (else only `get_balance`).
    may_pay: bool,
    /// Most satoshis (amounts and fees) per period; none for no budget.
    budget: Option<i64>,
    /// One of the NIP-47 periods.
    period: &'static str,
    created_at_ms: i64,
    expires_at_ms: Option<i64>,
    revoked: bool,
    /// The period the store's count is of (moved on by the first reservation of a new one),
    /// and what payments made in it took: amount and fee.
    period_start_ms: i64,
    spent: i64,
}

impl NwcConn {
    /// What counts against the budget at `now_ms`, and the period that is: a new period starts
    /// from nothing.
    fn counted(&self, now_ms: i64) -> (i64, i64) {
        let period = budget_period_start(self.period, self.created_at_ms, now_ms);
        if self.period_start_ms < period {
            (0, period)
        } else {
            (self.spent, self.period_start_ms)
        }
    }

    /// Not revoked and not expired at `now_ms`.
    fn live(&self, now_ms: i64) -> bool {
        !self.revoked && self.expires_at_ms.is_none_or(|at| at > now_ms)
    }
}

/// How the simulated app seals a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seal {
    /// NIP-44 v2, tagged `nip44_v2`.
    Nip44,
    /// NIP-04, tagged `nip04`.
    Nip04,
    /// NIP-04 with no `encryption` tag (NIP-47's default).
    Untagged,
}

/// A `pay_invoice` request that reserved budget, and its answer: a replay gets that answer
/// again and moves nothing.
#[derive(Clone, Debug)]
struct NwcAsked {
    conn: usize,
    event: nostr::Event,
    seal: Seal,
    answer: serde_json::Value,
}

/// What a wallet-connect payment pays.
#[derive(Clone, Copy, Debug)]
enum NwcTarget {
    /// An invoice of this Flash (`Model::invoices`), with the amount the app gives when it has
    /// none.
    Own { invoice: usize, given: Option<i64> },
    /// Another node's invoice (`Model::payments`).
    Out(usize),
}

/// How the auditor expects a `pay_invoice` to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NwcExpect {
    /// Refused with this NIP-47 code before any budget was reserved.
    Refused(&'static str),
    /// Budget reserved, then given back whole: refused with this code by the bank, or failed
    /// at the node (`went_out`).
    Released { code: &'static str, went_out: bool },
    /// Paid with this routing fee; amount and fee stay taken from the budget.
    Paid { fee: i64 },
}

/// Everything the auditor expects.
#[derive(Default)]
struct Model {
    /// Wallet-connect connections, and the `pay_invoice` requests that reserved budget.
    nwc: Vec<NwcConn>,
    nwc_asked: Vec<NwcAsked>,
    /// The ecash notes of the simulated Cashu wallet, every one it ever held.
    notes: Vec<Note>,
    /// Melts over Lightning that went out.
    melts: Vec<Melt>,
    /// Mint quotes paid from members' wallets (ecash leaving the bank's books of users).
    quotes_from_members: i64,
    /// Melts paid to members' invoices inside Flash.
    melted_to_members: i64,
    /// Of `ln_in`, what paid mint quotes; of `ln_out`, what melts paid (amounts and fees).
    mint_ln_in: i64,
    mint_ln_out: i64,
    /// What melts' blank outputs could not carry back (and input fees): the mint's revenue.
    mint_revenue: i64,
    /// On-chain withdrawals, and the transactions that paid them.
    payouts: Vec<Payout>,
    batches: Vec<Batch>,
    /// What the bystander whose deposit funds the hot wallet holds.
    whale: i64,
    members: Vec<Member>,
    /// Successful intraledger keys per member.
    posted: Vec<Vec<Posted>>,
    invoices: Vec<OwnInvoice>,
    payments: Vec<OutPayment>,
    /// From the faucet.
    faucet_in: i64,
    /// Received over Lightning from outside.
    ln_in: i64,
    /// Paid out over Lightning, fees included.
    ln_out: i64,
    /// Small clock steps since the last day jump.
    since_jump_ms: i64,
    deposits: Vec<Deposit>,
    /// The chain's height, counted from the start of the seed.
    tip: i64,
    /// Credited deposits, and their fees.
    onchain_in: i64,
    deposit_fees: i64,
}

impl Model {
    /// What queued payouts hold in `onchain:pending`.
    fn payouts_held(&self) -> i64 {
        self.payouts
            .iter()
            .filter(|p| p.state == PayoutState::Queued)
            .map(|p| p.amount + p.reserve)
            .sum()
    }

    /// What sent payouts took from their wallets (amounts and fee shares).
    fn payouts_out(&self) -> i64 {
        self.payouts
            .iter()
            .map(|p| match p.state {
                PayoutState::Sent { share, .. } => p.amount + share,
                PayoutState::Queued => 0,
            })
            .sum()
    }

    /// What the payout transactions paid: amounts to their addresses, fees to miners.
    fn chain_out(&self) -> i64 {
        let amounts: i64 = self
            .payouts
            .iter()
            .filter(|p| p.state != PayoutState::Queued)
            .map(|p| p.amount)
            .sum();
        amounts + self.batches.iter().map(|b| b.fee).sum::<i64>()
    }

    /// Fee shares charged beyond what the transactions paid (revenue once they confirm).
    fn payout_fee_surplus(&self) -> i64 {
        self.batches.iter().map(|b| b.charged - b.fee).sum()
    }

    /// Ecash in circulation: the unspent notes (`mint:outstanding`).
    fn ecash_outstanding(&self) -> i64 {
        self.notes
            .iter()
            .filter(|n| n.state == NoteState::Unspent)
            .map(|n| n.amount)
            .sum()
    }

    /// What melts in flight hold in `lightning:pending`.
    fn melts_held(&self) -> i64 {
        self.melts
            .iter()
            .filter(|m| m.state == MeltState::Pending)
            .map(|m| m.inputs)
            .sum()
    }

    fn held(&self) -> i64 {
        self.payments
            .iter()
            .map(|p| match p.state {
                OutState::Pending { held, .. } => held,
                _ => 0,
            })
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// One seed
// ---------------------------------------------------------------------------------------------

/// The bank's configuration in the simulation: limits the model states, a send that never
/// waits for the network (a slow payment answers `PENDING`) and reconciliation with no grace.
fn config() -> BankConfig {
    let level = LevelLimits {
        intraledger_cents: INTRALEDGER_LIMIT_SATS / 10,
        withdrawal_cents: WITHDRAWAL_LIMIT_SATS / 10,
    };
    BankConfig {
        network: Network::Regtest,
        limits: LimitPolicy {
            reference_sats_per_usd: 1_000,
            level0: level,
            level1: level,
            level2: level,
            level3: level,
        },
        lightning: LightningConfig {
            fee_cap_bps: u32::try_from(FEE_CAP_BPS).expect("bps"),
            fee_cap_min_sats: FEE_CAP_MIN_SATS,
            pay_timeout_secs: 0,
            reconcile_grace_secs: 0,
            ..LightningConfig::default()
        },
        onchain: OnchainConfig {
            confirmations: u32::try_from(CONFIRMATIONS).expect("confirmations"),
            deposit_fee_flat_sats: DEPOSIT_FEE_FLAT_SATS,
            deposit_fee_bps: u32::try_from(DEPOSIT_FEE_BPS).expect("bps"),
            dust_sats: DUST_SATS,
            // Every queued payout fits one batch, and payouts confirm at the next block, so
            // fee bumps (tested in crates/bank/tests/onchain.rs) never come into it.
            max_batch_payouts: 1_000,
            rbf_after_blocks: 0,
            ..OnchainConfig::default()
        },
        node_name: NODE.into(),
        ..BankConfig::default()
    }
}

/// A seed's world: the store, the clock, the bank's node and the outside network, the bank
/// (replaced on every crash), the generator and the auditor.
struct Sim {
    seed: u64,
    backend: Backend,
    store: Store,
    clock: Arc<SimClock>,
    node: Arc<DevNode>,
    outside: Arc<DevNode>,
    chain: Arc<DevChain>,
    chain_dir: std::path::PathBuf,
    bank: Bank,
    /// The bank's hot wallet (opened again with it).
    wallet: Arc<dyn HotWallet>,
    /// The Cashu mint over the bank (opened again with it).
    mint: Mint,
    /// The NOSTR relay and the wallet-connect service on it (started again with the bank).
    relay: Relay,
    nwc: WalletConnect,
    /// The relay's service key: the wallet-connect service answers as it, across restarts.
    service_keys: nostr::Keys,
    rng: Rng,
    model: Model,
    stats: Stats,
    /// The last operations, for the failure message.
    log: Vec<String>,
    /// A member with nothing, whose refused sends are a barrier in the writer's queue.
    barrier: Member,
    /// The bystander whose deposit funds the hot wallet.
    whale: WalletId,
}

async fn simulate(backend: Backend, seed: u64, ops: u64) -> Stats {
    let clock = Arc::new(SimClock(AtomicI64::new(SystemClock.now_ms())));
    let store = fresh_store_with_clock(backend, clock.clone()).await;
    let node = Arc::new(DevNode::new(Network::Regtest, DevNode::generate_key(), Outcome::Fail.dev()).expect("node"));
    let outside = Arc::new(DevNode::new(Network::Regtest, DevNode::generate_key(), Outcome::Fail.dev()).expect("node"));
    let chain_dir = std::env::temp_dir().join(format!("flash-sim-{}-{seed}-{backend:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&chain_dir);
    let fee_rate = u64::try_from(FEE_RATE_SAT_PER_KVB).expect("rate");
    let chain = Arc::new(DevChain::open(&chain_dir, Network::Regtest, fee_rate).expect("dev chain"));
    let (bank, wallet) = open_bank(&store, &node, &chain).await;
    let mint = open_mint(&bank, &store).await;
    let service_keys = nostr::Keys::generate();
    let (relay, nwc) = open_nwc(&bank, &store, &service_keys).await;
    let barrier = new_member(&bank).await;
    let whale = new_member(&bank).await;
    let mut sim = Sim {
        seed,
        backend,
        store,
        clock,
        node,
        outside,
        chain,
        chain_dir,
        bank,
        wallet,
        mint,
        relay,
        nwc,
        service_keys,
        rng: Rng(seed),
        model: Model::default(),
        stats: Stats::default(),
        log: Vec::new(),
        barrier: Member {
            account: barrier.id,
            wallet: barrier.default_wallet_id,
            balance: 0,
            intraledger_used: 0,
            withdrawal_used: 0,
        },
        whale: whale.default_wallet_id,
    };
    sim.fund_hot_wallet(whale.id).await;
    for _ in 0..2 {
        sim.sign_up().await;
    }
    for _ in 0..ops {
        sim.step().await;
        sim.check_wallets().await;
    }
    sim.finish().await;
    let _ = std::fs::remove_dir_all(&sim.chain_dir);
    sim.stats
}

/// The bank over `store`, its Lightning node and its hot wallet on `chain` (opened again, as a
/// restarted process does).
async fn open_bank(store: &Store, node: &Arc<DevNode>, chain: &Arc<DevChain>) -> (Bank, Arc<dyn HotWallet>) {
    let wallet = hot_wallet(store, chain.clone()).await;
    let bank = Bank::new(store.clone(), config())
        .with_lightning(node.clone(), Some(node.clone()))
        .with_onchain(wallet.clone(), Some(chain.clone()));
    (bank, wallet)
}

/// Expiry of mint quotes and of the invoices melts pay outside Flash: longer than the
/// simulated clock ever runs ahead of the dev node's real one.
const LONG_EXPIRY_SECS: u64 = 60 * 86_400;

/// The URL the mint says it is at.
const MINT_URL: &str = "http://127.0.0.1:3000";

/// The mint over `bank` (opened again with it, as a restarted flashd does). The one place the
/// mint is opened, so that a change to `Mint::open` is one line here.
async fn open_mint(bank: &Bank, store: &Store) -> Mint {
    let kek = flash_core::secrets::KeyEncryptionKey::new([7u8; 32]);
    // Quotes (and their invoices) outlive every move of the simulated clock.
    let config = MintConfig {
        quote_ttl_secs: LONG_EXPIRY_SECS,
        ..MintConfig::default()
    };
    Mint::open(bank.clone(), store.clone(), &kek, config, MINT_URL.into())
        .await
        .expect("the mint opens")
}

/// The relay over `store` and the wallet-connect service over `bank` on it, answering as
/// `service` (started again with the bank, as a restarted flashd does: the old service keeps
/// listening to the old relay, which nobody publishes to any more).
async fn open_nwc(bank: &Bank, store: &Store, service: &nostr::Keys) -> (Relay, WalletConnect) {
    let relay = Relay::start(store.clone(), RelayConfig::default(), MINT_URL, None, service.clone());
    let nwc = WalletConnect::start(bank.clone(), relay.clone(), None).await;
    (relay, nwc)
}

impl Sim {
    fn note(&mut self, what: String) {
        tracing::info!("sim: {what}");
        if self.log.len() == 64 {
            self.log.remove(0);
        }
        self.log.push(what);
    }

    /// Fails the seed with the recent operations.
    fn fail(&self, what: String) -> ! {
        panic!(
            "seed {}: {what}\nlast operations:\n  {}",
            self.seed,
            self.log.join("\n  ")
        );
    }

    fn now_secs(&self) -> u64 {
        u64::try_from(self.clock.now_ms() / 1_000).expect("positive")
    }

    /// A random member's index.
    fn someone(&mut self) -> usize {
        usize::try_from(self.rng.below(self.model.members.len() as u64)).expect("index")
    }

    /// An amount: mostly small, sometimes large (beyond balances and limits).
    fn amount(&mut self) -> i64 {
        match self.rng.below(10) {
            0 => self.rng.between(1, 20),
            1..=6 => self.rng.between(1, 30_000),
            7 | 8 => self.rng.between(1, 120_000),
            _ => self.rng.between(100_000, 500_000),
        }
    }

    async fn step(&mut self) {
        self.stats.operations += 1;
        match self.rng.below(124) {
            0..=3 if self.model.members.len() < MEMBERS_MAX => self.sign_up().await,
            0..=10 => self.fund().await,
            11..=28 => self.intraledger().await,
            29..=32 => self.retry_intraledger().await,
            33..=39 => self.create_invoice().await,
            40..=45 => self.receive_from_outside().await,
            46..=50 => self.pay_own_invoice().await,
            51..=60 => self.pay_out(None).await,
            61..=62 => self.pay_again().await,
            63..=66 => self.crash_during_payment().await,
            67..=68 => self.restart().await,
            69..=70 => self.reconcile().await,
            71..=75 => self.deposit().await,
            76..=79 => self.mine().await,
            80..=81 => self.reorg().await,
            82..=87 => self.withdraw().await,
            88..=90 => self.payout_pass().await,
            91 => self.crash_during_payout_pass().await,
            92..=95 => self.move_clock().await,
            96..=107 => self.wallet_connect().await,
            _ => self.ecash().await,
        }
    }

    // --- members and funding -----------------------------------------------------------------

    async fn sign_up(&mut self) {
        let m = new_member(&self.bank).await;
        self.note(format!("sign up member {}", self.model.members.len()));
        self.model.members.push(Member {
            account: m.id,
            wallet: m.default_wallet_id,
            balance: 0,
            intraledger_used: 0,
            withdrawal_used: 0,
        });
        self.model.posted.push(Vec::new());
    }

    async fn fund(&mut self) {
        let who = self.someone();
        let amount = self.amount();
        self.note(format!("faucet {amount} to member {who}"));
        let wallet = self.model.members[who].wallet;
        if let Err(e) = self.bank.wallet_fund("sim", wallet, amount, None).await {
            self.fail(format!("faucet refused: {e}"));
        }
        self.model.members[who].balance += amount;
        self.model.faucet_in += amount;
    }

    // --- intraledger -------------------------------------------------------------------------

    async fn intraledger(&mut self) {
        let from = self.someone();
        let to = self.someone();
        let amount = self.amount();
        let variant = self.rng.below(20);
        let (payer, from_wallet, recipient, amount, expected) = match variant {
            // The wallet of somebody else.
            0 if from != to => (
                from,
                self.model.members[to].wallet,
                Recipient::Wallet(self.model.members[from].wallet),
                amount,
                Some("WALLET_NOT_FOUND"),
            ),
            // Nobody.
            1 => (
                from,
                self.model.members[from].wallet,
                Recipient::Wallet(WalletId::generate()),
                amount,
                Some("RECIPIENT_NOT_FOUND"),
            ),
            // Nothing, or less.
            2 => (
                from,
                self.model.members[from].wallet,
                Recipient::Wallet(self.model.members[to].wallet),
                -self.rng.between(0, 5),
                Some("INVALID_AMOUNT"),
            ),
            _ => {
                let expected = self.expect_transfer(from, to, amount);
                (
                    from,
                    self.model.members[from].wallet,
                    Recipient::Wallet(self.model.members[to].wallet),
                    amount,
                    expected,
                )
            }
        };
        let key = format!("intra-{}", self.rng.next());
        self.note(format!(
            "intraledger {amount} from member {payer} ({variant}) to {recipient:?}, key {key}: expect {expected:?}"
        ));
        let answer = self
            .bank
            .send_intraledger(SendRequest {
                account: self.model.members[payer].account,
                from: from_wallet,
                to: recipient.clone(),
                amount,
                memo: None,
                idempotency_key: Some(key.clone()),
            })
            .await;
        match (answer, expected) {
            (Ok(outcome), None) => {
                if outcome.replayed {
                    self.fail("a fresh key was answered as a replay".into());
                }
                let Recipient::Wallet(to_wallet) = recipient else {
                    unreachable!("the simulation pays wallets")
                };
                self.stats.intraledger += 1;
                self.model.members[payer].balance -= amount;
                self.model.members[payer].intraledger_used += amount;
                self.model.members[to].balance += amount;
                self.model.posted[payer].push(Posted {
                    key,
                    to: to_wallet,
                    amount,
                    journal: outcome.journal_id,
                });
            }
            (Err(e), Some(code)) if e.code().as_str() == code => self.stats.refusals += 1,
            (answer, expected) => self.fail(format!("intraledger answered {answer:?}, expected {expected:?}")),
        }
    }

    /// What the ledger answers for a transfer of `amount` between two members' wallets, in the
    /// engine's order of checks: to oneself, the payer's limit, the payer's balance.
    fn expect_transfer(&self, from: usize, to: usize, amount: i64) -> Option<&'static str> {
        let payer = &self.model.members[from];
        if from == to {
            Some("SELF_PAYMENT")
        } else if payer.intraledger_used + amount > INTRALEDGER_LIMIT_SATS {
            Some("LIMIT_EXCEEDED")
        } else if payer.balance < amount {
            Some("INSUFFICIENT_BALANCE")
        } else {
            None
        }
    }

    /// A retry of a posted intraledger payment: the same body replays the first answer and
    /// moves nothing, whatever happened since; another amount under the key is refused.
    async fn retry_intraledger(&mut self) {
        let who = self.someone();
        if self.model.posted[who].is_empty() {
            return self.intraledger().await;
        }
        let n = self.rng.below(self.model.posted[who].len() as u64);
        let prior = self.model.posted[who][usize::try_from(n).expect("index")].clone();
        let same = self.rng.chance(60);
        let amount = if same { prior.amount } else { prior.amount + 1 };
        self.note(format!("retry key {} of member {who} (same body: {same})", prior.key));
        let answer = self
            .bank
            .send_intraledger(SendRequest {
                account: self.model.members[who].account,
                from: self.model.members[who].wallet,
                to: Recipient::Wallet(prior.to),
                amount,
                memo: None,
                idempotency_key: Some(prior.key.clone()),
            })
            .await;
        match answer {
            Ok(o) if same && o.replayed && o.journal_id == prior.journal => {}
            Err(e) if !same && e.code().as_str() == "IDEMPOTENCY_KEY_REUSED" => self.stats.refusals += 1,
            other => self.fail(format!("a retry (same body: {same}) answered {other:?}")),
        }
    }

    // --- Lightning in ------------------------------------------------------------------------

    async fn create_invoice(&mut self) {
        let who = self.someone();
        let amount = self.rng.chance(80).then(|| self.rng.between(1, 60_000));
        let mins = self.rng.pick(&[1, 5, 30, 240, 1_440]);
        self.note(format!("member {who} asks for {amount:?} in {mins} minutes"));
        let invoice = self
            .bank
            .ln_invoice_create(
                InvoiceFor::Owner(self.model.members[who].account),
                InvoiceCreate {
                    wallet_id: self.model.members[who].wallet,
                    amount,
                    memo: None,
                    description_hash: None,
                    expires_in_mins: Some(mins),
                },
            )
            .await
            .unwrap_or_else(|e| self.fail(format!("invoice refused: {e}")));
        let expires_at_secs = u64::try_from(invoice.expires_at_ms / 1_000).expect("positive");
        self.model.invoices.push(OwnInvoice {
            request: invoice.payment_request,
            member: who,
            amount,
            expires_at_secs,
            paid: false,
        });
    }

    /// Somebody outside pays an invoice of ours (the dev node judges expiry by its own clock,
    /// which the simulation does not move: it pays).
    async fn receive_from_outside(&mut self) {
        if self.model.invoices.is_empty() {
            return self.create_invoice().await;
        }
        let n = usize::try_from(self.rng.below(self.model.invoices.len() as u64)).expect("index");
        let invoice = self.model.invoices[n].clone();
        let given = invoice.amount.is_none().then(|| self.rng.between(1, 60_000));
        self.note(format!(
            "outside pays invoice {n} of member {} ({:?}/{given:?}), paid before: {}",
            invoice.member, invoice.amount, invoice.paid
        ));
        let answer = self.bank.dev_ln_pay_from_outside(&invoice.request, given).await;
        match (answer, invoice.paid) {
            (Ok(()), false) => {
                let amount = invoice.amount.or(given).expect("an amount");
                self.stats.ln_received += 1;
                self.model.members[invoice.member].balance += amount;
                self.model.ln_in += amount;
                self.model.invoices[n].paid = true;
            }
            // Paid already (from outside, or inside and so cancelled at the node).
            (Err(_), true) => self.stats.refusals += 1,
            (answer, paid) => self.fail(format!(
                "paying invoice {n} (paid: {paid}) from outside answered {answer:?}"
            )),
        }
    }

    /// A member pays an invoice of this Flash: inside the ledger, no fee, intraledger limit.
    async fn pay_own_invoice(&mut self) {
        if self.model.invoices.is_empty() {
            return self.create_invoice().await;
        }
        let n = usize::try_from(self.rng.below(self.model.invoices.len() as u64)).expect("index");
        let invoice = self.model.invoices[n].clone();
        let payer = self.someone();
        let given = invoice.amount.is_none().then(|| self.amount());
        let amount = invoice.amount.or(given).expect("an amount");
        let expired = self.now_secs() >= invoice.expires_at_secs;
        let expected: Result<PaymentStatus, &str> = if expired {
            Err("INVOICE_EXPIRED")
        } else if invoice.paid {
            Ok(PaymentStatus::AlreadyPaid)
        } else {
            self.expect_transfer(payer, invoice.member, amount)
                .map_or(Ok(PaymentStatus::Success), Err)
        };
        self.note(format!(
            "member {payer} pays invoice {n} of member {} ({amount}): expect {expected:?}",
            invoice.member
        ));
        let answer = self
            .bank
            .ln_pay(LnPayRequest {
                account: self.model.members[payer].account,
                wallet_id: self.model.members[payer].wallet,
                payment_request: invoice.request.clone(),
                amount: given,
                memo: None,
                idempotency_key: Some(format!("own-{}", self.rng.next())),
            })
            .await;
        match (answer, expected) {
            (Ok(o), Ok(status)) if o.status == status => {
                if status == PaymentStatus::Success {
                    self.stats.intraledger += 1;
                    self.model.members[payer].balance -= amount;
                    self.model.members[payer].intraledger_used += amount;
                    self.model.members[invoice.member].balance += amount;
                    self.model.invoices[n].paid = true;
                }
            }
            (Err(e), Err(code)) if e.code().as_str() == code => self.stats.refusals += 1,
            (answer, expected) => self.fail(format!("paying own invoice answered {answer:?}, expected {expected:?}")),
        }
    }

    // --- Lightning out -----------------------------------------------------------------------

    fn outcome(&mut self) -> Outcome {
        let fee_ppm = self.rng.pick(&[0, 0, 100, 1_000, 4_000, 6_000]);
        match self.rng.below(10) {
            0..=4 => Outcome::Succeed { fee_ppm },
            5 | 6 => Outcome::Late { fee_ppm },
            7 | 8 => Outcome::Fail,
            _ => Outcome::Hang,
        }
    }

    /// A fresh invoice of another node for a member to pay.
    async fn outside_invoice(&mut self, who: usize) -> usize {
        let amount = self.amount().min(150_000);
        let expiry_secs = self.rng.pick(&[120, 3_600, 30 * 86_400]);
        let invoice = self
            .outside
            .create_invoice(InvoiceRequest {
                amount_msat: Some(u64::try_from(amount).expect("positive") * 1_000),
                description: InvoiceDescription::Memo(String::new()),
                expiry_secs,
            })
            .await
            .expect("outside invoice");
        let outcome = self.outcome();
        self.model.payments.push(OutPayment {
            member: who,
            request: invoice.payment_request,
            amount,
            expires_at_secs: invoice.created_at_secs + expiry_secs,
            outcome,
            state: OutState::None,
            crashed: false,
        });
        self.model.payments.len() - 1
    }

    /// What paying payment `n` is answered, before the node decides: a refusal, or `None` when
    /// it goes out. An earlier attempt of the same invoice that is in flight or paid answers
    /// for it.
    fn expect_pay_out(&self, n: usize) -> Option<Result<PaymentStatus, &'static str>> {
        let p = &self.model.payments[n];
        let m = &self.model.members[p.member];
        if self.now_secs() >= p.expires_at_secs {
            return Some(Err("INVOICE_EXPIRED"));
        }
        match p.state {
            OutState::Succeeded => return Some(Ok(PaymentStatus::AlreadyPaid)),
            OutState::Pending { .. } => return Some(Err("PAYMENT_IN_FLIGHT")),
            OutState::None | OutState::Failed => {}
        }
        if m.withdrawal_used + p.amount > WITHDRAWAL_LIMIT_SATS {
            Some(Err("LIMIT_EXCEEDED"))
        } else if m.balance < p.amount + fee_cap(p.amount) {
            Some(Err("INSUFFICIENT_BALANCE"))
        } else {
            None
        }
    }

    /// A member pays another node's invoice (a fresh one, or payment `again`).
    async fn pay_out(&mut self, again: Option<usize>) {
        let n = match again {
            Some(n) => n,
            None => {
                let who = self.someone();
                self.outside_invoice(who).await
            }
        };
        if again.is_some() && matches!(self.model.payments[n].state, OutState::None | OutState::Failed) {
            // A new attempt draws a new fate.
            self.model.payments[n].outcome = self.outcome();
            self.model.payments[n].crashed = false;
        }
        let p = self.model.payments[n].clone();
        let expected = self.expect_pay_out(n);
        self.note(format!(
            "member {} pays {} out (payment {n}, {:?}): expect {expected:?}",
            p.member, p.amount, p.outcome
        ));
        self.bank.dev_ln_set_outcome(p.outcome.dev()).expect("outcome");
        let key = format!("out-{}", self.rng.next());
        let answer = self.bank.ln_pay(self.pay_request(n, key)).await;
        self.judge_pay_out(n, answer, expected).await;
    }

    fn pay_request(&self, n: usize, key: String) -> LnPayRequest {
        let p = &self.model.payments[n];
        LnPayRequest {
            account: self.model.members[p.member].account,
            wallet_id: self.model.members[p.member].wallet,
            payment_request: p.request.clone(),
            amount: None,
            memo: None,
            idempotency_key: Some(key),
        }
    }

    /// Checks a payment's answer and books it. A payment that went out answers its outcome's
    /// end (success with exactly its fee, or failure: over the fee cap, or no route), or
    /// `PENDING` when the node has not decided yet (a late or hanging outcome).
    async fn judge_pay_out(
        &mut self,
        n: usize,
        answer: Result<LnPayOutcome, BankError>,
        expected: Option<Result<PaymentStatus, &'static str>>,
    ) {
        let p = self.model.payments[n].clone();
        match (answer, expected) {
            (Ok(o), Some(Ok(status))) if o.status == status => {}
            (Err(e), Some(Err(code))) if e.code().as_str() == code => self.stats.refusals += 1,
            (Ok(o), None) => {
                let fee = p.outcome.fee(p.amount);
                let may_wait = matches!(p.outcome, Outcome::Late { .. } | Outcome::Hang);
                let decided = !matches!(p.outcome, Outcome::Hang);
                self.model.members[p.member].withdrawal_used += p.amount;
                match (o.status, fee) {
                    (PaymentStatus::Success, Some(fee)) if decided => {
                        self.model.members[p.member].balance -= p.amount + fee;
                        self.model.ln_out += p.amount + fee;
                        self.model.payments[n].state = OutState::Succeeded;
                        self.stats.ln_sent += 1;
                    }
                    (PaymentStatus::Failure, None) if decided => {
                        self.model.payments[n].state = OutState::Failed;
                    }
                    (PaymentStatus::Pending, _) if may_wait => {
                        let held = p.amount + fee_cap(p.amount);
                        self.model.members[p.member].balance -= held;
                        let journal = o.transaction.as_ref().map(|t| t.journal_id);
                        let hold = self.hold_of(journal).await;
                        self.model.payments[n].state = OutState::Pending { hold, held };
                    }
                    (status, fee) => self.fail(format!(
                        "payment {n} ended {status:?} for {:?} (the model's fee {fee:?})",
                        p.outcome
                    )),
                }
            }
            (answer, expected) => self.fail(format!("payment {n} answered {answer:?}, expected {expected:?}")),
        }
    }

    /// The hold a payment's opening journal opened: read only to find the record the auditor
    /// follows, never to decide an amount.
    async fn hold_of(&self, journal: Option<flash_core::JournalId>) -> HoldId {
        let journal = journal.unwrap_or_else(|| self.fail("a pending payment without its journal".into()));
        let record = self.store.ln_payment_opened_by(journal).await.expect("payment");
        record
            .unwrap_or_else(|| self.fail("a pending payment's journal opened no payment".into()))
            .payment
            .id
    }

    /// An invoice already tried is paid again: in flight, paid or failed before.
    async fn pay_again(&mut self) {
        if self.model.payments.is_empty() {
            return self.pay_out(None).await;
        }
        let n = usize::try_from(self.rng.below(self.model.payments.len() as u64)).expect("index");
        self.pay_out(Some(n)).await;
    }

    /// A payment whose process dies after a random number of polls; the bank restarts over the
    /// same store and node and reconciles. The auditor then books whichever end the bank
    /// recorded, if the rail allows it.
    async fn crash_during_payment(&mut self) {
        self.stats.crashes += 1;
        let who = self.someone();
        let n = self.outside_invoice(who).await;
        let p = self.model.payments[n].clone();
        let expected = self.expect_pay_out(n);
        let polls = self.rng.below(30);
        let key = format!("crash-{}", self.rng.next());
        self.note(format!(
            "member {who} pays {} out (payment {n}, {:?}) and crashes after {polls} polls: expect {expected:?}",
            p.amount, p.outcome
        ));
        self.bank.dev_ln_set_outcome(p.outcome.dev()).expect("outcome");
        let answer = {
            let bank = self.bank.clone();
            let request = self.pay_request(n, key.clone());
            let mut payment = pin!(async move { bank.ln_pay(request).await });
            poll_times(&mut payment, polls).await
        };
        if let Some(answer) = answer {
            // It finished before the crash.
            self.judge_pay_out(n, answer, expected).await;
            return self.restart().await;
        }
        self.restart().await;
        // What the bank recorded under the key, if anything.
        let account = self.model.members[who].account;
        let journal = self
            .store
            .journal_for_key(&IdempotencyKey {
                scope: account.to_string(),
                key,
            })
            .await
            .expect("journal");
        let Some(journal) = journal else {
            // Died before its hold: nothing happened.
            if matches!(expected, None | Some(Err(_))) {
                return;
            }
            self.fail(format!(
                "payment {n} was answered before, but left nothing: {expected:?}"
            ));
        };
        if expected.is_some() {
            self.fail(format!(
                "payment {n} should have been refused ({expected:?}) but opened a hold"
            ));
        }
        let hold = self.hold_of(Some(journal)).await;
        let held = p.amount + fee_cap(p.amount);
        self.model.payments[n].crashed = true;
        self.model.members[who].withdrawal_used += p.amount;
        self.model.members[who].balance -= held;
        self.model.payments[n].state = OutState::Pending { hold, held };
        self.follow_pending().await;
    }

    /// Books what the bank recorded for every pending payment, if its rail allows it (a
    /// crashed payment may fail whatever its outcome: the node may never have received it).
    async fn follow_pending(&mut self) {
        for n in 0..self.model.payments.len() {
            let p = self.model.payments[n].clone();
            let OutState::Pending { hold, held } = &p.state else {
                continue;
            };
            let record = self
                .store
                .ln_payment(hold)
                .await
                .expect("payment")
                .unwrap_or_else(|| self.fail(format!("payment {n}'s record is gone")));
            let m = p.member;
            match (record.status, p.outcome.fee(p.amount)) {
                (LnPaymentStatus::Pending, _) => {}
                (LnPaymentStatus::Succeeded, Some(fee)) if record.fee_sat == Some(fee) => {
                    self.model.members[m].balance += held - p.amount - fee;
                    self.model.ln_out += p.amount + fee;
                    self.model.payments[n].state = OutState::Succeeded;
                    self.stats.ln_sent += 1;
                }
                (LnPaymentStatus::Failed, fee) if (fee.is_none() && p.outcome != Outcome::Hang) || p.crashed => {
                    self.model.members[m].balance += held;
                    self.model.payments[n].state = OutState::Failed;
                }
                (status, fee) => self.fail(format!(
                    "payment {n} ({:?}) recorded {status:?} with fee {:?}; the model allows fee {fee:?}",
                    p.outcome, record.fee_sat
                )),
            }
        }
    }

    /// The process stops and starts again: a new bank over the same store and node, which
    /// reconciles what was in flight.
    async fn restart(&mut self) {
        self.note("restart".into());
        // Whatever the dead process had queued is decided before the new one reads. SQLite's
        // one writer decides in order, so a refused request queued behind it is a barrier;
        // PostgreSQL's two writers may answer the barrier first, so a batch the other writer
        // still holds is given time to commit (a real restart takes longer than this).
        if self.backend == Backend::Postgres {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let barrier = self
            .bank
            .send_intraledger(SendRequest {
                account: self.barrier.account,
                from: self.barrier.wallet,
                to: Recipient::Wallet(self.model.members[0].wallet),
                amount: 1,
                memo: None,
                idempotency_key: None,
            })
            .await;
        if !matches!(&barrier, Err(e) if e.code().as_str() == "INSUFFICIENT_BALANCE") {
            self.fail(format!("the barrier was answered {barrier:?}"));
        }
        (self.bank, self.wallet) = open_bank(&self.store, &self.node, &self.chain).await;
        self.mint = open_mint(&self.bank, &self.store).await;
        (self.relay, self.nwc) = open_nwc(&self.bank, &self.store, &self.service_keys).await;
        self.reconcile().await;
        self.reconcile_melts().await;
    }

    async fn reconcile(&mut self) {
        self.note("reconcile".into());
        if let Err(e) = self.bank.ln_reconcile().await {
            self.fail(format!("reconciliation failed: {e}"));
        }
        self.follow_pending().await;
    }

    // --- on-chain deposits -------------------------------------------------------------------

    /// Somebody sends to a member's address: unconfirmed, nothing credited yet.
    async fn deposit(&mut self) {
        let who = self.someone();
        let amount = self.rng.between(1_000, 200_000);
        self.note(format!("deposit {amount} on chain to member {who}"));
        let m = &self.model.members[who];
        let (account, wallet) = (m.account, m.wallet);
        let address = self
            .bank
            .onchain_address_current(account, wallet)
            .await
            .unwrap_or_else(|e| self.fail(format!("address refused: {e}")));
        if let Err(e) = self.bank.dev_chain_deposit(&address, amount).await {
            self.fail(format!("deposit refused: {e}"));
        }
        self.model.deposits.push(Deposit {
            member: who,
            amount,
            state: DepositState::Mempool,
        });
    }

    /// Blocks are found: the mempool goes into the first, and deposits with enough
    /// confirmations are credited, less their fee.
    async fn mine(&mut self) {
        let blocks = self.rng.between(1, 3);
        self.mine_blocks(blocks).await;
    }

    async fn mine_blocks(&mut self, blocks: i64) {
        self.note(format!("mine {blocks} blocks"));
        if let Err(e) = self.bank.dev_chain_mine(u32::try_from(blocks).expect("blocks")).await {
            self.fail(format!("mining failed: {e}"));
        }
        let height = self.model.tip + 1;
        for d in &mut self.model.deposits {
            if d.state == DepositState::Mempool {
                d.state = DepositState::Mined(height);
            }
        }
        for b in &mut self.model.batches {
            b.mined = b.mined.or(Some(height));
        }
        self.model.tip += blocks;
        self.credit_confirmed();
    }

    /// The last block is replaced by two empty ones: what it held goes back to the mempool, or
    /// is gone (double-spent). Never deep enough to take back a credited deposit (that is the
    /// review path, tested in `onchain.rs`).
    async fn reorg(&mut self) {
        if self.model.tip < 1 {
            return self.mine().await;
        }
        // A payout transaction is never dropped as double-spent: its coins are the bank's own,
        // nobody else can spend them (nor the deposits it spends, so none is in play then); a
        // conflict that takes a payout is the review path. What is at stake is read from the
        // chain and the store (the transactions the bank recorded that the mempool or the tip
        // block holds), not from the model, which must agree.
        let tip = self.model.tip;
        let at_stake = self.bank_transactions_at_stake().await;
        let mut believed: Vec<String> = self
            .model
            .batches
            .iter()
            .filter(|b| b.mined.is_none_or(|h| h == tip))
            .map(|b| b.txid.clone())
            .collect();
        believed.sort();
        if believed != at_stake {
            self.fail(format!(
                "before a reorganisation the chain holds payout transactions {at_stake:?} unconfirmed or in its \
                 tip block; the model {believed:?}"
            ));
        }
        let payout_in_play = !at_stake.is_empty();
        let drop = self.rng.chance(50) && !payout_in_play;
        self.note(format!("reorganise the last block (drop its transactions: {drop})"));
        if let Err(e) = self.bank.dev_chain_reorg(1, drop).await {
            self.fail(format!("reorganisation failed: {e}"));
        }
        for b in &mut self.model.batches {
            if b.mined == Some(tip) {
                b.mined = None;
            }
        }
        for d in &mut self.model.deposits {
            if d.state == DepositState::Mined(tip) {
                d.state = if drop {
                    DepositState::Dropped
                } else {
                    DepositState::Mempool
                };
            }
        }
        self.model.tip += 1;
        self.credit_confirmed();
    }

    /// The txids (sorted) of the transactions the bank recorded (every payout transaction of
    /// the store, whatever the model believes) that the dev chain holds in its mempool or in
    /// its tip block: what a reorganisation of the tip block puts at stake.
    async fn bank_transactions_at_stake(&self) -> Vec<String> {
        let recorded = self.store.recent_onchain_batches(10_000).await.expect("batches");
        let txids = recorded
            .iter()
            .map(|b| {
                b.batch
                    .txid
                    .parse()
                    .unwrap_or_else(|_| self.fail(format!("batch {} has a bad txid", b.batch.id)))
            })
            .collect();
        let request = flash_core::onchain::ChainSyncRequest {
            known_chain: Vec::new(),
            scripts: Vec::new(),
            outpoints: Vec::new(),
            txids,
        };
        let update = ChainSource::sync(&*self.chain, request)
            .await
            .unwrap_or_else(|e| self.fail(format!("the dev chain did not answer: {e}")));
        let height = self.chain.height();
        let mut at_stake: Vec<String> = update
            .transactions
            .iter()
            .filter(|t| match t.position {
                TxPosition::Confirmed { block, .. } => block.height == height,
                TxPosition::Mempool { .. } => true,
            })
            .map(|t| t.tx.compute_txid().to_string())
            .collect();
        at_stake.sort();
        at_stake
    }

    // --- on-chain withdrawals ----------------------------------------------------------------

    /// The bystander's deposit that gives the hot wallet its coins, credited after
    /// [`CONFIRMATIONS`] blocks.
    async fn fund_hot_wallet(&mut self, whale: AccountId) {
        let address = self
            .bank
            .onchain_address_current(whale, self.whale)
            .await
            .unwrap_or_else(|e| self.fail(format!("address refused: {e}")));
        if let Err(e) = self.bank.dev_chain_deposit(&address, WHALE_SATS).await {
            self.fail(format!("deposit refused: {e}"));
        }
        let blocks = u32::try_from(CONFIRMATIONS).expect("blocks");
        if let Err(e) = self.bank.dev_chain_mine(blocks).await {
            self.fail(format!("mining failed: {e}"));
        }
        self.model.tip += CONFIRMATIONS;
        let fee = deposit_fee(WHALE_SATS);
        self.model.whale += WHALE_SATS - fee;
        self.model.onchain_in += WHALE_SATS;
        self.model.deposit_fees += fee;
    }

    /// A member sends on chain to an address outside Flash: held (amount + fee reserve) and
    /// queued, or refused (below dust, over the limit, more than the wallet holds).
    async fn withdraw(&mut self) {
        let who = self.someone();
        let fast = self.rng.chance(30);
        let index = u32::try_from(self.model.payouts.len() + 1).expect("index");
        let address = outside_address(&OUTSIDE_SEED, index);
        let vbytes = output_vbytes(&address);
        let reserve = payout_reserve(vbytes);
        let all = self.rng.chance(10);
        let amount = match self.rng.below(10) {
            0 => self.rng.between(1, DUST_SATS - 1),
            _ => self.amount().max(DUST_SATS),
        };
        let m = self.model.members[who].clone();
        // What the bank should do, in its order of checks.
        let (amount, expected) = if all {
            let rest = m.balance - reserve;
            if rest <= 0 {
                (rest, Some("INSUFFICIENT_BALANCE"))
            } else if rest < DUST_SATS {
                (rest, Some("AMOUNT_BELOW_DUST"))
            } else if m.withdrawal_used + rest > WITHDRAWAL_LIMIT_SATS {
                (rest, Some("LIMIT_EXCEEDED"))
            } else {
                (rest, None)
            }
        } else if amount < DUST_SATS {
            (amount, Some("AMOUNT_BELOW_DUST"))
        } else if m.withdrawal_used + amount > WITHDRAWAL_LIMIT_SATS {
            (amount, Some("LIMIT_EXCEEDED"))
        } else if m.balance < amount + reserve {
            (amount, Some("INSUFFICIENT_BALANCE"))
        } else {
            (amount, None)
        };
        self.note(format!(
            "member {who} sends {amount} (all: {all}, fast: {fast}) on chain, reserve {reserve}: expect {expected:?}"
        ));
        let answer = self
            .bank
            .onchain_send(OnchainSend {
                account: m.account,
                wallet_id: m.wallet,
                address: address.clone(),
                amount: (!all).then_some(amount),
                speed: if fast { Speed::Fast } else { Speed::Slow },
                memo: None,
                idempotency_key: Some(format!("onchain-{}", self.rng.next())),
            })
            .await;
        match (answer, expected) {
            (Ok(o), None) if o.status == PaymentStatus::Pending => {
                let record = self
                    .store
                    .onchain_payout_opened_by(o.transaction.journal_id)
                    .await
                    .expect("payout")
                    .unwrap_or_else(|| self.fail("a queued payout without its record".into()));
                if (record.payout.amount_sat, record.payout.fee_reserved_sat) != (amount, reserve) {
                    self.fail(format!(
                        "payout recorded {} + {}, the model {amount} + {reserve}",
                        record.payout.amount_sat, record.payout.fee_reserved_sat
                    ));
                }
                self.model.members[who].balance -= amount + reserve;
                self.model.members[who].withdrawal_used += amount;
                self.model.payouts.push(Payout {
                    member: who,
                    address,
                    amount,
                    reserve,
                    vbytes,
                    fast,
                    hold: record.payout.id,
                    state: PayoutState::Queued,
                });
            }
            (Err(e), Some(code)) if e.code().as_str() == code => self.stats.refusals += 1,
            (answer, expected) => self.fail(format!("on-chain send answered {answer:?}, expected {expected:?}")),
        }
    }

    /// A batcher pass: every fast payout queued goes out in its own transaction, and with a
    /// batch every other one in one transaction together.
    async fn payout_pass(&mut self) {
        let batch = self.rng.chance(50);
        self.note(format!("payout pass (batch: {batch})"));
        let report = self
            .bank
            .onchain_payout_pass(batch)
            .await
            .unwrap_or_else(|e| self.fail(format!("payout pass failed: {e}")));
        let (transactions, settled) = self.book_payouts(batch).await;
        if (report.broadcast, report.settled) != (transactions, settled) || report.refused + report.bumped > 0 {
            self.fail(format!(
                "payout pass reported {report:?}; the model {transactions} transactions of {settled} payouts"
            ));
        }
    }

    /// A batcher pass whose process dies after a random number of polls; the bank restarts
    /// and the next pass (with a batch) finishes what it left: every payout queued is then
    /// sent, the fast ones alone, the others together.
    async fn crash_during_payout_pass(&mut self) {
        self.stats.crashes += 1;
        let batch = self.rng.chance(50);
        let polls = self.rng.below(40);
        self.note(format!("payout pass (batch: {batch}) crashes after {polls} polls"));
        let finished = {
            let bank = self.bank.clone();
            let mut pass = pin!(async move { bank.onchain_payout_pass(batch).await });
            poll_times(&mut pass, polls).await
        };
        if let Some(Err(e)) = finished {
            self.fail(format!("payout pass failed: {e}"));
        }
        self.restart().await;
        self.note("payout pass (batch: true) after the restart".into());
        if let Err(e) = self.bank.onchain_payout_pass(true).await {
            self.fail(format!("payout pass failed: {e}"));
        }
        self.book_payouts(true).await;
    }

    /// Books the payouts a pass should have sent (the fast ones, and with `batch` the others),
    /// checking where the bank put each: fast ones alone in a transaction, the others together
    /// in one, each charged its share of its transaction's fee by output size (rounded up,
    /// never above its reserve). The transaction's fee is the bank's record of what its wallet
    /// built; that the chain agrees is checked at the end against the hot wallet's coins.
    /// Returns the transactions and payouts it booked.
    async fn book_payouts(&mut self, batch: bool) -> (u32, u32) {
        let due: Vec<usize> = (0..self.model.payouts.len())
            .filter(|&n| {
                let p = &self.model.payouts[n];
                p.state == PayoutState::Queued && (p.fast || batch)
            })
            .collect();
        let mut groups: Vec<Vec<usize>> = due
            .iter()
            .filter(|&&n| self.model.payouts[n].fast)
            .map(|&n| vec![n])
            .collect();
        let slow: Vec<usize> = due.iter().copied().filter(|&n| !self.model.payouts[n].fast).collect();
        if !slow.is_empty() {
            groups.push(slow);
        }
        let (mut transactions, mut settled) = (0, 0);
        let mut waiting = Vec::new();
        for group in groups {
            let mut batch_id = None;
            let first = self.model.payouts[group[0]].clone();
            let record = self.store.onchain_payout(&first.hold).await.expect("payout");
            if record.is_some_and(|r| r.status == PayoutStatus::Queued) {
                // Not sent: allowed only while the wallet's coins wait for a block (checked
                // below, once this pass's transactions are booked).
                waiting.push(group[0]);
                continue;
            }
            for &n in &group {
                let p = self.model.payouts[n].clone();
                let record = self
                    .store
                    .onchain_payout(&p.hold)
                    .await
                    .expect("payout")
                    .unwrap_or_else(|| self.fail(format!("payout {n}'s record is gone")));
                if record.status != PayoutStatus::Sent || record.batch_id.is_none() {
                    self.fail(format!(
                        "payout {n} (fast: {}) is {:?} after a pass, not sent",
                        p.fast, record.status
                    ));
                }
                if batch_id.is_some() && batch_id != record.batch_id {
                    self.fail(format!("payout {n} went out apart from the rest of its batch"));
                }
                batch_id = record.batch_id.clone();
            }
            let id = batch_id.expect("a group is not empty");
            let sent = self
                .store
                .onchain_batch(&id)
                .await
                .expect("batch")
                .unwrap_or_else(|| self.fail(format!("batch {id} is gone")));
            let on_it = self.store.onchain_batch_payouts(&id).await.expect("payouts");
            if on_it.len() != group.len() {
                self.fail(format!(
                    "batch {id} pays {} payouts, the model {}",
                    on_it.len(),
                    group.len()
                ));
            }
            let tx: bitcoin::Transaction =
                bitcoin::consensus::encode::deserialize_hex(&sent.batch.tx_hex).expect("recorded transaction");
            let fee = sent.batch.fee_sat;
            let least = (sent.batch.vsize * FEE_RATE_SAT_PER_KVB).div_euclid(1_000) - 2;
            if fee < least || fee > least + 1_000 {
                self.fail(format!(
                    "batch {id} pays a fee of {fee} for {} vbytes at {FEE_RATE_SAT_PER_KVB} sat/kvB",
                    sent.batch.vsize
                ));
            }
            let weights: i64 = group.iter().map(|&n| self.model.payouts[n].vbytes).sum();
            let mut charged = 0;
            for &n in &group {
                let p = self.model.payouts[n].clone();
                let script = output_script(&p.address);
                let paid = tx.output.iter().any(|o| {
                    o.script_pubkey == script && o.value.to_sat() == u64::try_from(p.amount).expect("positive")
                });
                if !paid {
                    self.fail(format!("batch {id} does not pay payout {n}'s {} sats", p.amount));
                }
                let share = (fee * p.vbytes + weights - 1).div_euclid(weights).min(p.reserve);
                let record = self
                    .store
                    .onchain_payout(&p.hold)
                    .await
                    .expect("payout")
                    .expect("payout");
                if record.fee_sat != Some(share) {
                    self.fail(format!(
                        "payout {n} was charged {:?} of batch {id}'s {fee}; the model {share}",
                        record.fee_sat
                    ));
                }
                charged += share;
                self.model.members[p.member].balance += p.reserve - share;
                self.model.payouts[n].state = PayoutState::Sent {
                    batch: id.clone(),
                    share,
                };
                self.stats.payouts += 1;
                settled += 1;
            }
            self.model.batches.push(Batch {
                txid: sent.batch.txid.clone(),
                fee,
                charged,
                mined: None,
            });
            transactions += 1;
        }
        // Payouts spend only confirmed coins: one may wait for the change of a payout
        // transaction still in the mempool (the hot wallet's coins are the bystander's one
        // deposit, its change, and members' deposits), never otherwise.
        if let Some(n) = waiting.first() {
            if self.model.batches.iter().all(|b| b.mined.is_some()) {
                self.fail(format!(
                    "payout {n} stayed queued after a pass with every payout transaction confirmed"
                ));
            }
        }
        (transactions, settled)
    }

    fn credit_confirmed(&mut self) {
        for d in &mut self.model.deposits {
            if let DepositState::Mined(h) = d.state {
                if self.model.tip - h + 1 >= CONFIRMATIONS {
                    let fee = deposit_fee(d.amount);
                    d.state = DepositState::Credited;
                    self.model.members[d.member].balance += d.amount - fee;
                    self.model.onchain_in += d.amount;
                    self.model.deposit_fees += fee;
                    self.stats.deposits += 1;
                }
            }
        }
    }

    // --- the mint ----------------------------------------------------------------------------

    /// One of the mint's operations (a seventh of the draws).
    async fn ecash(&mut self) {
        match self.rng.below(20) {
            0..=5 => self.mint_notes().await,
            6..=10 => self.swap().await,
            11..=13 => self.melt_inside().await,
            14..=16 => self.melt_out(false).await,
            17 => self.melt_out(true).await,
            _ => self.reconcile_melts().await,
        }
    }

    fn keys(&self) -> (cashu::nuts::Id, cashu::nuts::Keys) {
        let keyset = self.mint.keyring().active(&CurrencyUnit::Sat).expect("active keyset");
        (keyset.id, keyset.public_keys())
    }

    /// Unspent notes picked at random until they are worth at least `least` (all of them if
    /// they are not); their indexes and value.
    fn pick_notes(&mut self, least: i64) -> (Vec<usize>, i64) {
        let mut unspent: Vec<usize> = (0..self.model.notes.len())
            .filter(|&n| self.model.notes[n].state == NoteState::Unspent)
            .collect();
        let mut picked = Vec::new();
        let mut total = 0;
        while total < least && !unspent.is_empty() {
            let i = usize::try_from(self.rng.below(unspent.len() as u64)).expect("index");
            let n = unspent.swap_remove(i);
            total += self.model.notes[n].amount;
            picked.push(n);
        }
        (picked, total)
    }

    fn proofs(&self, notes: &[usize]) -> Vec<Proof> {
        notes.iter().map(|&n| self.model.notes[n].proof.clone()).collect()
    }

    /// Keeps fresh notes.
    fn keep_notes(&mut self, proofs: Vec<Proof>) {
        for proof in proofs {
            let amount = i64::try_from(proof.amount.to_u64()).expect("amount");
            self.model.notes.push(Note {
                proof,
                amount,
                state: NoteState::Unspent,
            });
        }
    }

    /// A mint quote, its invoice paid from outside or from a member's wallet (refused over the
    /// withdrawal limit or the balance), and the notes minted; minting before it is paid, or
    /// again, is refused.
    async fn mint_notes(&mut self) {
        let amount = self.rng.between(1, 40_000);
        let from_member = self.rng.chance(50).then(|| self.someone());
        let early = self.rng.chance(20);
        let again = self.rng.chance(20);
        self.note(format!(
            "mint {amount} sats of notes, paid by {from_member:?} (early: {early}, again: {again})"
        ));
        let quote = self
            .mint
            .mint_quote(MintQuoteBolt11Request {
                amount: Amount::from(u64::try_from(amount).expect("positive")),
                unit: CurrencyUnit::Sat,
                description: None,
                pubkey: None,
            })
            .await
            .unwrap_or_else(|e| self.fail(format!("mint quote refused: {e}")));
        let (id, keys) = self.keys();
        let request = |outputs: &Premint| MintRequest {
            quote: quote.quote.clone(),
            outputs: outputs.outputs.clone(),
            signature: None,
        };
        let parts = split(u64::try_from(amount).expect("positive"));
        if early {
            let outputs = Premint::random(id, &parts).expect("blind");
            match self.mint.mint(request(&outputs)).await {
                Err(MintError::QuoteUnpaid) => self.stats.refusals += 1,
                other => self.fail(format!("minting an unpaid quote answered {other:?}")),
            }
        }
        match from_member {
            None => {
                if let Err(e) = self.bank.dev_ln_pay_from_outside(&quote.request, None).await {
                    self.fail(format!("paying a mint quote from outside failed: {e}"));
                }
                self.model.ln_in += amount;
                self.model.mint_ln_in += amount;
            }
            Some(who) => {
                let m = self.model.members[who].clone();
                let expected = if m.withdrawal_used + amount > WITHDRAWAL_LIMIT_SATS {
                    Err("LIMIT_EXCEEDED")
                } else if m.balance < amount {
                    Err("INSUFFICIENT_BALANCE")
                } else {
                    Ok(PaymentStatus::Success)
                };
                let answer = self
                    .bank
                    .ln_pay(LnPayRequest {
                        account: m.account,
                        wallet_id: m.wallet,
                        payment_request: quote.request.clone(),
                        amount: None,
                        memo: None,
                        idempotency_key: Some(format!("quote-{}", self.rng.next())),
                    })
                    .await;
                match (answer, expected) {
                    (Ok(o), Ok(status)) if o.status == status => {
                        self.model.members[who].balance -= amount;
                        self.model.members[who].withdrawal_used += amount;
                        self.model.quotes_from_members += amount;
                    }
                    (Err(e), Err(code)) if e.code().as_str() == code => {
                        // Unpaid: nothing to mint.
                        self.stats.refusals += 1;
                        return;
                    }
                    (answer, expected) => self.fail(format!(
                        "member {who} paying a mint quote answered {answer:?}, expected {expected:?}"
                    )),
                }
            }
        }
        let outputs = Premint::random(id, &parts).expect("blind");
        let minted = self
            .mint
            .mint(request(&outputs))
            .await
            .unwrap_or_else(|e| self.fail(format!("minting a paid quote refused: {e}")));
        let proofs = outputs
            .unblind(minted.signatures, &keys)
            .unwrap_or_else(|e| self.fail(format!("the minted notes do not unblind: {e}")));
        self.keep_notes(proofs);
        self.stats.ecash += 1;
        if again {
            let outputs = Premint::random(id, &parts).expect("blind");
            match self.mint.mint(request(&outputs)).await {
                Err(MintError::QuoteIssued) => self.stats.refusals += 1,
                other => self.fail(format!("minting an issued quote again answered {other:?}")),
            }
        }
    }

    /// Notes swapped for new ones of the same value; a note already spent (a double spend) or
    /// outputs worth more than the inputs are refused, and nothing moves.
    async fn swap(&mut self) {
        let least = self.rng.between(1, 30_000);
        let (mut notes, total) = self.pick_notes(least);
        if notes.is_empty() {
            return self.mint_notes().await;
        }
        let spent: Vec<usize> = (0..self.model.notes.len())
            .filter(|&n| self.model.notes[n].state == NoteState::Spent)
            .collect();
        let variant = self.rng.below(10);
        let double = variant < 2 && !spent.is_empty();
        if double {
            notes.push(self.rng.pick(&spent));
        }
        let inputs_total = total
            + if double {
                self.model.notes[*notes.last().expect("a note")].amount
            } else {
                0
            };
        let outputs_total = if variant == 2 { inputs_total + 1 } else { inputs_total };
        let cut = self.rng.between(0, outputs_total);
        let mut parts = split(u64::try_from(cut).expect("positive"));
        parts.extend(split(u64::try_from(outputs_total - cut).expect("positive")));
        let expected = if double {
            Some(11001)
        } else if variant == 2 {
            Some(11005)
        } else {
            None
        };
        self.note(format!(
            "swap {} notes worth {inputs_total} for {outputs_total} (double spend: {double}): expect {expected:?}",
            notes.len()
        ));
        let (id, keys) = self.keys();
        let outputs = Premint::random(id, &parts).expect("blind");
        let answer = self
            .mint
            .swap(SwapRequest::new(self.proofs(&notes), outputs.outputs.clone()))
            .await;
        match (answer, expected) {
            (Ok(swapped), None) => {
                let proofs = outputs
                    .unblind(swapped.signatures, &keys)
                    .unwrap_or_else(|e| self.fail(format!("swapped notes do not unblind: {e}")));
                for &n in &notes {
                    self.model.notes[n].state = NoteState::Spent;
                }
                self.keep_notes(proofs);
                self.stats.ecash += 1;
            }
            (Err(e), Some(code)) if e.code() == code => self.stats.refusals += 1,
            (answer, expected) => self.fail(format!("swap answered {answer:?}, expected code {expected:?}")),
        }
    }

    /// Notes melted to pay a member's invoice: inside Flash, no fee; the change the blank
    /// outputs carry comes back as notes, the rest is the mint's.
    async fn melt_inside(&mut self) {
        let unspent = self.model.ecash_outstanding();
        if unspent < 1 {
            return self.mint_notes().await;
        }
        let who = self.someone();
        let amount = self.rng.between(1, unspent.min(60_000));
        let (notes, total) = self.pick_notes(amount);
        let blanks = usize::try_from(self.rng.below(18)).expect("count");
        self.note(format!(
            "melt {} notes worth {total} to member {who}'s invoice of {amount}, {blanks} blank outputs",
            notes.len()
        ));
        let invoice = self
            .bank
            .ln_invoice_create(
                InvoiceFor::Owner(self.model.members[who].account),
                InvoiceCreate {
                    wallet_id: self.model.members[who].wallet,
                    amount: Some(amount),
                    memo: None,
                    description_hash: None,
                    expires_in_mins: None,
                },
            )
            .await
            .unwrap_or_else(|e| self.fail(format!("invoice refused: {e}")));
        if self.clock.now_ms() >= invoice.expires_at_ms {
            // The simulated clock ran past it (the node dates it by the real one).
            let refused = self
                .mint
                .melt_quote(MeltQuoteBolt11Request {
                    request: invoice.payment_request.parse().expect("bolt11"),
                    unit: CurrencyUnit::Sat,
                    options: None,
                })
                .await;
            if !matches!(&refused, Err(MintError::BadRequest(why)) if why.contains("expired")) {
                self.fail(format!("a melt quote for an expired invoice answered {refused:?}"));
            }
            self.stats.refusals += 1;
            return;
        }
        let quote = self.melt_quote(&invoice.payment_request, amount, 0).await;
        let (id, _) = self.keys();
        let blank = Premint::random(id, &vec![0; blanks]).expect("blind");
        let answer = self
            .mint
            .melt(MeltRequest::new(
                quote,
                self.proofs(&notes),
                Some(blank.outputs.clone()),
            ))
            .await
            .unwrap_or_else(|e| self.fail(format!("melt refused: {e}")));
        if answer.state != cashu::nuts::MeltQuoteState::Paid {
            self.fail(format!("an internal melt ended {:?}", answer.state));
        }
        for &n in &notes {
            self.model.notes[n].state = NoteState::Spent;
        }
        let change = total - amount;
        let carried = change_carried(change, blanks);
        self.book_change(blank, answer.change, carried);
        self.model.mint_revenue += change - carried;
        self.model.members[who].balance += amount;
        self.model.melted_to_members += amount;
        self.stats.ecash += 1;
    }

    /// A melt quote for `request`, checked: its amount, and the fee reserve the model expects.
    async fn melt_quote(&mut self, request: &str, amount: i64, reserve: i64) -> String {
        let quote = self
            .mint
            .melt_quote(MeltQuoteBolt11Request {
                request: request.parse().expect("bolt11"),
                unit: CurrencyUnit::Sat,
                options: None,
            })
            .await
            .unwrap_or_else(|e| self.fail(format!("melt quote refused: {e}")));
        let quoted = (quote.amount.to_u64(), quote.fee_reserve.to_u64());
        if quoted
            != (
                u64::try_from(amount).expect("positive"),
                u64::try_from(reserve).expect("positive"),
            )
        {
            self.fail(format!("melt quote {quoted:?}, the model ({amount}, {reserve})"));
        }
        quote.quote
    }

    /// Unblinds a melt's change, which must carry exactly `carried`.
    fn book_change(&mut self, blanks: Premint, change: Option<Vec<cashu::nuts::BlindSignature>>, carried: i64) {
        let (_, keys) = self.keys();
        let proofs = match change {
            Some(sigs) => blanks
                .unblind_change(sigs, &keys)
                .unwrap_or_else(|e| self.fail(format!("melt change does not unblind: {e}"))),
            None => Vec::new(),
        };
        let got: i64 = proofs
            .iter()
            .map(|p| i64::try_from(p.amount.to_u64()).expect("amount"))
            .sum();
        if got != carried {
            self.fail(format!("melt change of {got}, the model {carried}"));
        }
        self.keep_notes(proofs);
    }

    /// Notes melted to pay another node's invoice, over the bank's Lightning saga: paid (with
    /// the routing fee, the rest of the reserve back as change), failed (the notes unspent
    /// again), or in flight. With `crash`, the process dies after a random number of polls;
    /// the mint restarts and its reconciler ends what the node decided.
    async fn melt_out(&mut self, crash: bool) {
        let unspent = self.model.ecash_outstanding();
        if unspent < 20 {
            return self.mint_notes().await;
        }
        let amount = self.rng.between(1, (unspent - 10).min(50_000));
        let reserve = fee_cap(amount);
        let (notes, total) = self.pick_notes(amount + reserve);
        if total < amount + reserve {
            return self.mint_notes().await;
        }
        let outcome = self.outcome();
        let blanks = usize::try_from(self.rng.below(18)).expect("count");
        let polls = self.rng.below(30);
        self.note(format!(
            "melt {} notes worth {total} to pay {amount} out ({outcome:?}), {blanks} blank outputs{}",
            notes.len(),
            if crash {
                format!(", crash after {polls} polls")
            } else {
                String::new()
            }
        ));
        let invoice = self
            .outside
            .create_invoice(InvoiceRequest {
                amount_msat: Some(u64::try_from(amount).expect("positive") * 1_000),
                description: InvoiceDescription::Memo(String::new()),
                expiry_secs: LONG_EXPIRY_SECS,
            })
            .await
            .expect("outside invoice");
        let quote = self.melt_quote(&invoice.payment_request, amount, reserve).await;
        let (id, _) = self.keys();
        let blank = Premint::random(id, &vec![0; blanks]).expect("blind");
        self.bank.dev_ln_set_outcome(outcome.dev()).expect("outcome");
        let request = MeltRequest::new(quote.clone(), self.proofs(&notes), Some(blank.outputs.clone()));
        let m = self.model.melts.len();
        self.model.melts.push(Melt {
            quote,
            notes: notes.clone(),
            inputs: total,
            amount,
            reserve,
            blanks: blank,
            outcome,
            crashed: crash,
            state: MeltState::Pending,
        });
        for &n in &notes {
            self.model.notes[n].state = NoteState::Pending;
        }
        if crash {
            self.stats.crashes += 1;
            let finished = {
                let mint = self.mint.clone();
                let mut melt = pin!(async move { mint.melt(request).await });
                poll_times(&mut melt, polls).await
            };
            if finished.is_none() {
                // Died on the way: the restart reconciles, and the auditor books what the
                // mint recorded.
                return self.restart().await;
            }
            self.model.melts[m].crashed = false;
            return self.restart().await;
        }
        let answer = self.mint.melt(request).await;
        let may_wait = matches!(outcome, Outcome::Late { .. } | Outcome::Hang);
        match answer {
            Ok(a) if a.state == cashu::nuts::MeltQuoteState::Paid && outcome.fee(amount).is_some() => {}
            Ok(a) if a.state == cashu::nuts::MeltQuoteState::Pending && may_wait => {}
            Err(MintError::PaymentFailed(_)) if outcome.fee(amount).is_none() && outcome != Outcome::Hang => {}
            other => self.fail(format!("melt m{m} ({outcome:?}) answered {other:?}")),
        }
        self.follow_melts().await;
    }

    /// The mint's reconciler pass: melts in flight end as their payments did.
    async fn reconcile_melts(&mut self) {
        self.note("reconcile melts".into());
        if let Err(e) = self.mint.reconcile_melts().await {
            self.fail(format!("melt reconciliation failed: {e}"));
        }
        self.follow_melts().await;
    }

    /// Books what the mint recorded for every melt in flight, if the rail allows it: paid
    /// only if its outcome pays within the reserve, with exactly that fee and the change the
    /// blank outputs carry; failed (its notes unspent again) only if its outcome fails, or its
    /// process died (the node may never have heard of it).
    async fn follow_melts(&mut self) {
        for m in 0..self.model.melts.len() {
            let melt = self.model.melts[m].clone();
            if melt.state != MeltState::Pending {
                continue;
            }
            let quote = self
                .store
                .melt_quote(&melt.quote)
                .await
                .expect("melt quote")
                .unwrap_or_else(|| self.fail(format!("melt m{m}'s quote is gone")));
            let fee = melt.outcome.fee(melt.amount);
            match (quote.state, fee) {
                (MeltQuoteState::Pending, _) => {}
                (MeltQuoteState::Paid, Some(fee)) if quote.fee_paid == Some(fee) => {
                    let state = self
                        .mint
                        .melt_quote_state(&melt.quote)
                        .await
                        .unwrap_or_else(|e| self.fail(format!("melt m{m}'s state: {e}")));
                    for &n in &melt.notes {
                        self.model.notes[n].state = NoteState::Spent;
                    }
                    let change = melt.inputs - melt.amount - fee;
                    let carried = change_carried(change, melt.blanks.outputs.len());
                    self.book_change(melt.blanks.clone(), state.change, carried);
                    self.model.mint_revenue += change - carried;
                    self.model.ln_out += melt.amount + fee;
                    self.model.mint_ln_out += melt.amount + fee;
                    self.model.melts[m].state = MeltState::Paid;
                    self.stats.ecash += 1;
                }
                (MeltQuoteState::Unpaid, fee) if (fee.is_none() && melt.outcome != Outcome::Hang) || melt.crashed => {
                    for &n in &melt.notes {
                        self.model.notes[n].state = NoteState::Unspent;
                    }
                    self.model.melts[m].state = MeltState::Failed;
                }
                (state, fee) => self.fail(format!(
                    "melt m{m} ({:?}, reserve {}) recorded {state:?} with fee {:?}; the model allows fee {fee:?}",
                    melt.outcome, melt.reserve, quote.fee_paid
                )),
            }
        }
    }

    /// Every note's state at the mint is the model's (NUT-07).
    async fn check_notes(&mut self) {
        for chunk in self.model.notes.chunks(100) {
            let ys = chunk.iter().map(|n| n.proof.y().expect("Y")).collect();
            let states = self
                .mint
                .check_state(CheckStateRequest { ys })
                .await
                .unwrap_or_else(|e| self.fail(format!("check state refused: {e}")));
            for (note, state) in chunk.iter().zip(&states.states) {
                let expected = match note.state {
                    NoteState::Unspent => State::Unspent,
                    NoteState::Pending => State::Pending,
                    NoteState::Spent => State::Spent,
                };
                if state.state != expected {
                    self.fail(format!(
                        "a note of {} is {:?} at the mint, {expected:?} in the model",
                        note.amount, state.state
                    ));
                }
            }
        }
    }

    // --- Nostr Wallet Connect ----------------------------------------------------------------

    /// One wallet-connect operation (about a tenth of the draws): a member connects an app,
    /// revokes one, or an app asks through the relay: its balance, a payment (to another node,
    /// to an invoice of this Flash, at the edge of its budget or of the wallet's balance), or
    /// a request sent again.
    async fn wallet_connect(&mut self) {
        if self.model.nwc.is_empty() || self.rng.chance(10) {
            return self.nwc_connect().await;
        }
        let c = self.nwc_pick(false);
        match self.rng.below(20) {
            0 => self.nwc_revoke(c).await,
            1 | 2 => self.nwc_balance(c).await,
            3 | 4 => self.nwc_replay().await,
            5..=7 => self.nwc_edge_of_budget().await,
            8 | 9 => {
                let c = self.nwc_pick(true);
                self.nwc_edge_of_balance(c).await;
            }
            10..=13 => {
                let invoice = if self.model.invoices.is_empty() || self.rng.chance(60) {
                    self.create_invoice().await;
                    self.model.invoices.len() - 1
                } else {
                    usize::try_from(self.rng.below(self.model.invoices.len() as u64)).expect("index")
                };
                let given = self.model.invoices[invoice].amount.is_none().then(|| self.amount());
                self.nwc_pay(c, NwcTarget::Own { invoice, given }).await;
            }
            _ => {
                let member = self.model.nwc[c].member;
                // Sometimes an invoice this member already paid, or is paying.
                let before: Vec<usize> = (0..self.model.payments.len())
                    .filter(|&n| {
                        let p = &self.model.payments[n];
                        p.member == member && matches!(p.state, OutState::Succeeded | OutState::Pending { .. })
                    })
                    .collect();
                let n = if !before.is_empty() && self.rng.chance(15) {
                    before[usize::try_from(self.rng.below(before.len() as u64)).expect("index")]
                } else {
                    let amount = self.amount().min(150_000);
                    self.nwc_outside_invoice(member, amount).await
                };
                self.nwc_pay(c, NwcTarget::Out(n)).await;
            }
        }
    }

    /// A connection's index: mostly one that may pay and is live (one with no budget when
    /// `unbudgeted` and there is one), sometimes any.
    fn nwc_pick(&mut self, unbudgeted: bool) -> usize {
        let now = self.clock.now_ms();
        let usable: Vec<usize> = (0..self.model.nwc.len())
            .filter(|&c| {
                let conn = &self.model.nwc[c];
                conn.may_pay && conn.live(now) && (!unbudgeted || conn.budget.is_none())
            })
            .collect();
        if !usable.is_empty() && self.rng.chance(85) {
            usable[usize::try_from(self.rng.below(usable.len() as u64)).expect("index")]
        } else {
            usize::try_from(self.rng.below(self.model.nwc.len() as u64)).expect("index")
        }
    }

    /// A member connects an app: a random budget (none, nothing, or up to 150,000 sats) per a
    /// random period, sometimes an expiry, sometimes only `get_balance`.
    async fn nwc_connect(&mut self) {
        let member = self.someone();
        let budget = match self.rng.below(20) {
            0..=2 => None,
            3 => Some(0),
            _ => Some(self.rng.between(1_000, 150_000)),
        };
        let period = self.rng.pick(&[
            None,
            Some("daily"),
            Some("weekly"),
            Some("monthly"),
            Some("yearly"),
            Some("never"),
        ]);
        let may_pay = !self.rng.chance(10);
        let now = self.clock.now_ms();
        let expires_at_ms = self
            .rng
            .chance(20)
            .then(|| now + self.rng.between(3_600_000, 3 * 86_400_000));
        let c = self.model.nwc.len();
        self.note(format!(
            "member {member} connects app {c}: budget {budget:?} {period:?}, expires {expires_at_ms:?}, pays: {may_pay}"
        ));
        let created = self
            .nwc
            .create(
                self.model.members[member].account,
                NewConnection {
                    name: format!("app {c}"),
                    wallet_id: None,
                    methods: (!may_pay).then(|| vec!["get_balance".to_string()]),
                    budget_sats: budget,
                    budget_period: period.map(str::to_string),
                    expires_at_ms,
                },
            )
            .await;
        let (record, uri) = created.unwrap_or_else(|e| self.fail(format!("connecting an app failed: {e}")));
        let uri = nostr::nips::nip47::NostrWalletConnectURI::parse(&uri)
            .unwrap_or_else(|e| self.fail(format!("the connection's URI {uri:?} does not parse: {e}")));
        let period = period.unwrap_or("monthly");
        let period_start_ms = budget_period_start(period, now, now);
        if uri.public_key != self.service_keys.public_key()
            || record.wallet_id != self.model.members[member].wallet
            || record.budget_sats != budget
            || record.spent_sats != 0
            || record.period_start != period_start_ms
        {
            self.fail(format!(
                "app {c}'s connection is {record:?} (URI to {}), the model's period from {period_start_ms}",
                uri.public_key
            ));
        }
        self.model.nwc.push(NwcConn {
            id: record.id,
            member,
            app: nostr::Keys::new(uri.secret),
            may_pay,
            budget,
            period,
            created_at_ms: now,
            expires_at_ms,
            revoked: false,
            period_start_ms,
            spent: 0,
        });
    }

    /// A member revokes a connection (again: not found).
    async fn nwc_revoke(&mut self, c: usize) {
        let conn = self.model.nwc[c].clone();
        self.note(format!(
            "member {} revokes app {c} (revoked: {})",
            conn.member, conn.revoked
        ));
        let answer = self.nwc.revoke(self.model.members[conn.member].account, &conn.id).await;
        match answer {
            Ok(()) if !conn.revoked => self.model.nwc[c].revoked = true,
            Err(e) if conn.revoked && e.code().as_str() == "NOT_FOUND" => self.stats.refusals += 1,
            other => self.fail(format!(
                "revoking app {c} (revoked: {}) answered {other:?}",
                conn.revoked
            )),
        }
    }

    /// App `c` asks for its wallet's balance.
    async fn nwc_balance(&mut self, c: usize) {
        let conn = self.model.nwc[c].clone();
        let live = conn.live(self.clock.now_ms());
        let balance = self.model.members[conn.member].balance;
        self.note(format!("app {c} asks for the balance (live: {live}): expect {balance}"));
        let (event, seal) = self.nwc_request(c, &json!({ "method": "get_balance", "params": {} }));
        let answer = self.nwc_ask(c, &event, seal).await;
        let expected = if live {
            json!({ "result_type": "get_balance", "result": { "balance": balance * 1_000 } })
        } else {
            json!({ "result_type": "get_balance", "code": "UNAUTHORIZED" })
        };
        let seen = match answer["error"]["code"].as_str() {
            Some(code) => json!({ "result_type": answer["result_type"], "code": code }),
            None => json!({ "result_type": answer["result_type"], "result": answer["result"] }),
        };
        if seen != expected {
            self.fail(format!("app {c}'s balance was answered {answer}, expected {expected}"));
        }
        *self
            .stats
            .nwc
            .entry(if live { "balance" } else { "UNAUTHORIZED" })
            .or_default() += 1;
    }

    /// A `pay_invoice` request that reserved budget is sent again, the same event: the first
    /// answer, nothing paid twice (or `UNAUTHORIZED` once the connection is revoked or expired).
    async fn nwc_replay(&mut self) {
        if self.model.nwc_asked.is_empty() {
            let c = self.nwc_pick(false);
            return self.nwc_balance(c).await;
        }
        let n = usize::try_from(self.rng.below(self.model.nwc_asked.len() as u64)).expect("index");
        let asked = self.model.nwc_asked[n].clone();
        let live = self.model.nwc[asked.conn].live(self.clock.now_ms());
        self.note(format!(
            "app {} sends request {} again (live: {live})",
            asked.conn, asked.event.id
        ));
        let answer = self.nwc_ask(asked.conn, &asked.event, asked.seal).await;
        let fine = if live {
            answer == asked.answer
        } else {
            answer["error"]["code"] == "UNAUTHORIZED" && answer["result_type"] == "pay_invoice"
        };
        if !fine {
            self.fail(format!(
                "request {} sent again was answered {answer}; the first answer was {}",
                asked.event.id, asked.answer
            ));
        }
        *self
            .stats
            .nwc
            .entry(if live { "replayed" } else { "UNAUTHORIZED" })
            .or_default() += 1;
    }

    /// An app with a budget pays exactly what is left of it (amount and fee cap), or a
    /// satoshi more (`QUOTA_EXCEEDED`).
    async fn nwc_edge_of_budget(&mut self) {
        let now = self.clock.now_ms();
        let budgeted: Vec<usize> = (0..self.model.nwc.len())
            .filter(|&c| {
                let conn = &self.model.nwc[c];
                conn.budget.is_some() && conn.may_pay && conn.live(now)
            })
            .collect();
        if budgeted.is_empty() {
            return self.nwc_connect().await;
        }
        let c = budgeted[usize::try_from(self.rng.below(budgeted.len() as u64)).expect("index")];
        let conn = &self.model.nwc[c];
        let member = conn.member;
        let room = conn.budget.expect("a budget") - conn.counted(now).0;
        let fits = largest_within(room);
        let amount = if fits > 0 && self.rng.chance(40) {
            fits
        } else {
            fits + 1
        };
        let n = self.nwc_outside_invoice(member, amount).await;
        self.nwc_pay(c, NwcTarget::Out(n)).await;
    }

    /// An app pays exactly what the wallet can (amount and fee cap), or a satoshi more
    /// (`INSUFFICIENT_BALANCE`, unless the budget or the withdrawal limit refuses first).
    async fn nwc_edge_of_balance(&mut self, c: usize) {
        let member = self.model.nwc[c].member;
        let fits = largest_within(self.model.members[member].balance);
        let amount = if fits > 0 && self.rng.chance(30) {
            fits
        } else {
            fits + 1
        };
        let n = self.nwc_outside_invoice(member, amount).await;
        self.nwc_pay(c, NwcTarget::Out(n)).await;
    }

    /// An invoice of the outside node for `amount`, for `member`'s app to pay: it succeeds
    /// now (with a routing fee, perhaps over the cap) or fails; never late or hanging (the
    /// service would wait a minute for it).
    async fn nwc_outside_invoice(&mut self, member: usize, amount: i64) -> usize {
        let invoice = self
            .outside
            .create_invoice(InvoiceRequest {
                amount_msat: Some(u64::try_from(amount).expect("positive") * 1_000),
                description: InvoiceDescription::Memo(String::new()),
                expiry_secs: 3_600,
            })
            .await
            .expect("outside invoice");
        let outcome = if self.rng.chance(75) {
            Outcome::Succeed {
                fee_ppm: self.rng.pick(&[0, 100, 1_000, 4_000, 6_000]),
            }
        } else {
            Outcome::Fail
        };
        self.model.payments.push(OutPayment {
            member,
            request: invoice.payment_request,
            amount,
            expires_at_secs: invoice.created_at_secs + 3_600,
            outcome,
            state: OutState::None,
            crashed: false,
        });
        self.model.payments.len() - 1
    }

    /// How app `c`'s payment of `target` should end, in the service's order of checks: the
    /// connection (revoked or expired, not allowed to pay), the budget (amount and fee cap
    /// against what is left of this period), then the bank's own checks and the rail.
    fn nwc_expect(&self, c: usize, target: NwcTarget, amount: i64) -> NwcExpect {
        let conn = &self.model.nwc[c];
        let now = self.clock.now_ms();
        if !conn.live(now) {
            return NwcExpect::Refused("UNAUTHORIZED");
        }
        if !conn.may_pay {
            return NwcExpect::Refused("RESTRICTED");
        }
        if conn
            .budget
            .is_some_and(|budget| conn.counted(now).0 + amount + fee_cap(amount) > budget)
        {
            return NwcExpect::Refused("QUOTA_EXCEEDED");
        }
        // What the bank answers, as NIP-47 says it.
        let bank_refused = |code: &str| NwcExpect::Released {
            code: if code == "INSUFFICIENT_BALANCE" {
                "INSUFFICIENT_BALANCE"
            } else {
                "OTHER"
            },
            went_out: false,
        };
        let paid_before = NwcExpect::Released {
            code: "PAYMENT_FAILED",
            went_out: false,
        };
        match target {
            NwcTarget::Own { invoice, .. } => {
                let invoice = &self.model.invoices[invoice];
                if self.now_secs() >= invoice.expires_at_secs {
                    bank_refused("INVOICE_EXPIRED")
                } else if invoice.paid {
                    paid_before
                } else {
                    match self.expect_transfer(conn.member, invoice.member, amount) {
                        Some(code) => bank_refused(code),
                        None => NwcExpect::Paid { fee: 0 },
                    }
                }
            }
            NwcTarget::Out(n) => match self.expect_pay_out(n) {
                Some(Err(code)) => bank_refused(code),
                Some(Ok(PaymentStatus::AlreadyPaid)) => paid_before,
                Some(Ok(status)) => self.fail(format!("the model expects {status:?} before a payment goes out")),
                None => match self.model.payments[n].outcome.fee(amount) {
                    Some(fee) => NwcExpect::Paid { fee },
                    None => NwcExpect::Released {
                        code: "PAYMENT_FAILED",
                        went_out: true,
                    },
                },
            },
        }
    }

    /// App `c` pays `target` over the relay; the answer is checked against the model and the
    /// payment and the budget booked.
    async fn nwc_pay(&mut self, c: usize, target: NwcTarget) {
        let (request, amount, given) = match target {
            NwcTarget::Own { invoice, given } => {
                let invoice = &self.model.invoices[invoice];
                (
                    invoice.request.clone(),
                    invoice.amount.or(given).expect("an amount"),
                    given,
                )
            }
            NwcTarget::Out(n) => {
                let p = &self.model.payments[n];
                self.bank.dev_ln_set_outcome(p.outcome.dev()).expect("outcome");
                (p.request.clone(), p.amount, None)
            }
        };
        let expected = self.nwc_expect(c, target, amount);
        let mut params = json!({ "invoice": request });
        if let Some(given) = given {
            params["amount"] = json!(given * 1_000);
        }
        let (event, seal) = self.nwc_request(c, &json!({ "method": "pay_invoice", "params": params }));
        self.note(format!(
            "app {c} pays {amount} ({target:?}, {seal:?}, request {}): expect {expected:?}",
            event.id
        ));
        let answer = self.nwc_ask(c, &event, seal).await;
        let code = answer["error"]["code"].as_str();
        let fine = answer["result_type"] == "pay_invoice"
            && match expected {
                NwcExpect::Refused(want) | NwcExpect::Released { code: want, .. } => {
                    code == Some(want) && answer["result"].is_null()
                }
                NwcExpect::Paid { fee } => code.is_none() && answer["result"]["fees_paid"] == json!(fee * 1_000),
            };
        if !fine {
            self.fail(format!(
                "app {c}'s payment was answered {answer}, expected {expected:?}"
            ));
        }
        let now = self.clock.now_ms();
        let (counted, period) = self.model.nwc[c].counted(now);
        let conn = &mut self.model.nwc[c];
        let member = conn.member;
        match expected {
            NwcExpect::Refused(code) => {
                self.stats.refusals += 1;
                *self.stats.nwc.entry(code).or_default() += 1;
                return;
            }
            NwcExpect::Released { code, went_out } => {
                if conn.period_start_ms < period && conn.spent > 0 {
                    *self.stats.nwc.entry("new period").or_default() += 1;
                }
                (conn.period_start_ms, conn.spent) = (period, counted);
                self.stats.refusals += 1;
                *self.stats.nwc.entry(code).or_default() += 1;
                if let (true, NwcTarget::Out(n)) = (went_out, target) {
                    self.model.payments[n].state = OutState::Failed;
                    self.model.members[member].withdrawal_used += amount;
                }
            }
            NwcExpect::Paid { fee } => {
                if conn.period_start_ms < period && conn.spent > 0 {
                    *self.stats.nwc.entry("new period").or_default() += 1;
                }
                (conn.period_start_ms, conn.spent) = (period, counted + amount + fee);
                *self.stats.nwc.entry("paid").or_default() += 1;
                self.model.members[member].balance -= amount + fee;
                match target {
                    NwcTarget::Own { invoice, .. } => {
                        let payee = self.model.invoices[invoice].member;
                        self.stats.intraledger += 1;
                        self.model.members[member].intraledger_used += amount;
                        self.model.members[payee].balance += amount;
                        self.model.invoices[invoice].paid = true;
                    }
                    NwcTarget::Out(n) => {
                        self.stats.ln_sent += 1;
                        self.model.members[member].withdrawal_used += amount;
                        self.model.ln_out += amount + fee;
                        self.model.payments[n].state = OutState::Succeeded;
                    }
                }
            }
        }
        self.model.nwc_asked.push(NwcAsked {
            conn: c,
            event,
            seal,
            answer,
        });
    }

    /// A NIP-47 request of app `c` as its client makes one: `body` sealed to the service
    /// (NIP-44 v2 mostly, NIP-04 tagged or not), addressed to it, signed with the app's key.
    fn nwc_request(&mut self, c: usize, body: &Value) -> (nostr::Event, Seal) {
        let seal = match self.rng.below(10) {
            0..=6 => Seal::Nip44,
            7 | 8 => Seal::Nip04,
            _ => Seal::Untagged,
        };
        let app = &self.model.nwc[c].app;
        let service = self.service_keys.public_key();
        let text = body.to_string();
        let sealed = match seal {
            Seal::Nip44 => {
                nostr::nips::nip44::encrypt(app.secret_key(), &service, &text, nostr::nips::nip44::Version::V2)
                    .expect("NIP-44 seal")
            }
            Seal::Nip04 | Seal::Untagged => {
                nostr::nips::nip04::encrypt(app.secret_key(), &service, &text).expect("NIP-04 seal")
            }
        };
        let mut tags = vec![nostr::Tag::public_key(service)];
        let named = match seal {
            Seal::Nip44 => Some("nip44_v2"),
            Seal::Nip04 => Some("nip04"),
            Seal::Untagged => None,
        };
        if let Some(name) = named {
            tags.push(nostr::Tag::custom(nostr::TagKind::custom("encryption"), [name]));
        }
        let event = nostr::EventBuilder::new(nostr::Kind::WalletConnectRequest, sealed)
            .tags(tags)
            .sign_with_keys(app)
            .expect("sign");
        (event, seal)
    }

    /// Publishes `request` on the relay as app `c` and waits (at most [`NWC_ANSWER_WAIT`]) for
    /// the service's response to it: from the service, to the app, opened with the request's
    /// cipher.
    async fn nwc_ask(&self, c: usize, request: &nostr::Event, seal: Seal) -> Value {
        let app = &self.model.nwc[c].app;
        let service = self.service_keys.public_key();
        let mut live = self.relay.live();
        if let Err(e) = self.relay.publish(request.clone(), &Sender::default()).await {
            self.fail(format!("the relay refused request {}: {e}", request.id));
        }
        let response = tokio::time::timeout(NWC_ANSWER_WAIT, async {
            loop {
                match live.recv().await {
                    Ok(l)
                        if l.event.kind == nostr::Kind::WalletConnectResponse
                            && l.event.tags.event_ids().any(|id| *id == request.id) =>
                    {
                        return Some(l.event.clone());
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .await;
        let Ok(Some(response)) = response else {
            self.fail(format!("request {} got no answer in {NWC_ANSWER_WAIT:?}", request.id));
        };
        if response.pubkey != service || !response.tags.public_keys().any(|pk| *pk == app.public_key()) {
            self.fail(format!(
                "the answer to {} is not from the service to the app: {response:?}",
                request.id
            ));
        }
        let opened = match seal {
            Seal::Nip44 => nostr::nips::nip44::decrypt(app.secret_key(), &service, &response.content).ok(),
            Seal::Nip04 | Seal::Untagged => {
                nostr::nips::nip04::decrypt(app.secret_key(), &service, &response.content).ok()
            }
        };
        let Some(opened) = opened else {
            self.fail(format!("the answer to {} does not open with {seal:?}", request.id));
        };
        serde_json::from_str(&opened)
            .unwrap_or_else(|e| self.fail(format!("the answer to {} is not JSON ({e}): {opened}", request.id)))
    }

    /// At the end: every connection is as the model has it (budget, the period counted and
    /// what was spent in it, revoked or not), and no reservation is left open.
    async fn check_connections(&mut self) {
        for (m, member) in self.model.members.iter().enumerate() {
            let listed = self
                .nwc
                .list(member.account)
                .await
                .unwrap_or_else(|e| self.fail(format!("listing member {m}'s connections failed: {e}")));
            let ours: Vec<&NwcConn> = self.model.nwc.iter().filter(|c| c.member == m).collect();
            if listed.len() != ours.len() {
                self.fail(format!(
                    "member {m} has {} connections, the model {}",
                    listed.len(),
                    ours.len()
                ));
            }
            for conn in ours {
                let Some(record) = listed.iter().find(|r| r.id == conn.id) else {
                    self.fail(format!("connection {} of member {m} is not listed", conn.id));
                };
                if record.spent_sats != conn.spent
                    || record.period_start != conn.period_start_ms
                    || record.budget_sats != conn.budget
                    || record.budget_period != conn.period
                    || record.revoked_at.is_some() != conn.revoked
                {
                    self.fail(format!(
                        "connection {} of member {m} is {record:?}; the model: {} spent in the period from {}, \
                         budget {:?} {}, revoked: {}",
                        conn.id, conn.spent, conn.period_start_ms, conn.budget, conn.period, conn.revoked
                    ));
                }
            }
        }
        let open = self
            .store
            .nwc_unfinished(i64::MAX, 10)
            .await
            .expect("open reservations");
        if !open.is_empty() {
            self.fail(format!("budget reservations left open: {open:?}"));
        }
    }

    // --- the clock ---------------------------------------------------------------------------

    async fn move_clock(&mut self) {
        let step = if self.rng.chance(5) {
            DAY_JUMP_MS
        } else {
            self.rng.between(1_000, 900_000)
        };
        let jump = step == DAY_JUMP_MS || self.model.since_jump_ms + step > SMALL_STEPS_MAX_MS;
        let step = if jump { DAY_JUMP_MS } else { step };
        self.note(format!("clock +{step} ms"));
        self.clock.0.fetch_add(step, Ordering::SeqCst);
        if jump {
            self.model.since_jump_ms = 0;
            for m in &mut self.model.members {
                m.intraledger_used = 0;
                m.withdrawal_used = 0;
            }
        } else {
            self.model.since_jump_ms += step;
        }
    }

    // --- the audit ---------------------------------------------------------------------------

    /// Every wallet holds what the model says.
    async fn check_wallets(&mut self) {
        for (i, m) in self.model.members.iter().enumerate() {
            let actual = self.store.wallet_balance(m.wallet).await.expect("balance");
            if actual != m.balance {
                self.fail(format!("member {i} holds {actual}, the model {}", m.balance));
            }
        }
        let whale = self.store.wallet_balance(self.whale).await.expect("balance");
        if whale != self.model.whale {
            self.fail(format!("the bystander holds {whale}, the model {}", self.model.whale));
        }
    }

    /// The end of a seed: late payments land, every wallet and system account matches the
    /// model and the rails' totals, and the books verify.
    async fn finish(&mut self) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        self.restart().await;
        // Every payout goes out (a block between passes confirms the change the next one
        // spends) and confirms, and every deposit in the mempool is credited.
        for _ in 0..3 {
            self.note("payout pass (batch: true)".into());
            if let Err(e) = self.bank.onchain_payout_pass(true).await {
                self.fail(format!("payout pass failed: {e}"));
            }
            self.book_payouts(true).await;
            self.mine_blocks(1).await;
        }
        if self.model.payouts_held() != 0 {
            self.fail("payouts are still queued after three passes and blocks".into());
        }
        self.mine_blocks(CONFIRMATIONS).await;
        self.check_wallets().await;
        for p in &self.model.payments {
            if matches!(p.state, OutState::Pending { .. }) && p.outcome != Outcome::Hang {
                self.fail(format!(
                    "a {:?} payment is still pending after reconciliation",
                    p.outcome
                ));
            }
        }
        for melt in &self.model.melts {
            if melt.state == MeltState::Pending && melt.outcome != Outcome::Hang {
                self.fail(format!(
                    "a {:?} melt is still pending after reconciliation",
                    melt.outcome
                ));
            }
        }
        self.check_notes().await;
        let system = |a: SystemAccount| system_balance(&self.store, a);
        let surplus = self.model.payout_fee_surplus();
        let expect = [
            (SystemAccount::DevFaucet, -self.model.faucet_in),
            (
                SystemAccount::LightningPending,
                self.model.held() + self.model.melts_held(),
            ),
            (SystemAccount::LightningNode, self.model.ln_out - self.model.ln_in),
            (
                SystemAccount::FeesRevenue,
                self.model.deposit_fees + surplus + self.model.mint_revenue,
            ),
            (SystemAccount::MintOutstanding, self.model.ecash_outstanding()),
            (SystemAccount::MintQuotes, 0),
            (
                SystemAccount::OnchainHot,
                -self.model.onchain_in + self.model.payouts_out() - surplus,
            ),
            (SystemAccount::OnchainPending, self.model.payouts_held()),
            (SystemAccount::OnchainReview, 0),
        ];
        for (account, sats) in expect {
            let actual = system(account).await;
            if actual != sats {
                self.fail(format!("{account:?} holds {actual}, the model {sats}"));
            }
        }
        let users: i64 = self.model.members.iter().map(|m| m.balance).sum::<i64>() + self.model.whale;
        let outstanding = self.model.faucet_in + self.model.ln_in + self.model.onchain_in
            - self.model.deposit_fees
            - self.model.ln_out
            - self.model.held()
            - self.model.payouts_out()
            - self.model.payouts_held()
            - self.model.quotes_from_members
            + self.model.melted_to_members
            - self.model.mint_ln_in
            + self.model.mint_ln_out;
        if users != outstanding {
            self.fail(format!(
                "members hold {users}; in minus out minus held is {outstanding}"
            ));
        }
        // The chain's side: the hot wallet's coins are every deposit credited, less what the
        // payout transactions paid out and to miners (every one confirmed by now).
        if let Err(e) = self.bank.onchain_sync().await {
            self.fail(format!("watcher pass failed: {e}"));
        }
        let coins = self.wallet.sync(0).await.expect("wallet sync").confirmed_balance.get();
        let expected = self.model.onchain_in - self.model.chain_out();
        if coins != expected {
            self.fail(format!(
                "the hot wallet has {coins} sats confirmed; deposits less payouts and their fees is {expected}"
            ));
        }
        self.check_connections().await;
        let report = self.store.verify().await.expect("verify");
        if !report.ok() {
            self.fail(format!("ledger verify: {report:?}"));
        }
    }
}

/// Polls `fut` up to `times` times, letting other tasks and threads run in between; its answer
/// if it finished, `None` if it was still running (and is then dropped by the caller: the
/// process died there).
async fn poll_times<F: Future + Unpin>(fut: &mut F, times: u64) -> Option<F::Output> {
    for _ in 0..times {
        if let Some(out) = (&mut *fut).now_or_never() {
            return Some(out);
        }
        tokio::task::yield_now().await;
    }
    None
}
