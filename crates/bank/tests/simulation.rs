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
//! deposits, blocks and one-block reorganisations (returned to the mempool or dropped), clock
//! moves (invoice expiry, the rolling 24-hour limits) and crashes: a payment's future is
//! dropped after a random number of polls (the process dying between two steps of the saga:
//! before the hold, after it, during the node call), the bank is rebuilt over the same store
//! and node and the reconciler runs.
//!
//! The auditor ([`Model`]) keeps what every wallet should hold, what is held in flight and the
//! totals of each rail, from the operations alone: it never reads a balance from the bank to
//! decide what a balance should be. After a crash the real system may end a payment several
//! ways (never started, failed, paid, still in flight); the auditor reads which one the bank
//! recorded, checks it is one the rail allows (a payment can succeed only if its outcome was a
//! success, with exactly the fee that outcome charges) and books it. Every answer is checked
//! (success, replay, or the exact typed refusal), every wallet after every operation, and at
//! the end the system accounts against the rail totals and `ledger verify`.
//!
//! `FLASH_SIM_SEED=n` replays one seed, `FLASH_SIM_SEEDS=a..b` runs a range,
//! `FLASH_SIM_OPS=n` sets the operations per seed (docs/testing.md). A failure prints the
//! seed and the command that replays it.

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use flash_bank::{
    Bank, BankConfig, BankError, InvoiceCreate, InvoiceFor, LightningConfig, LnPayOutcome, LnPayRequest, OnchainConfig,
    PaymentStatus, Recipient, SendRequest,
};
use flash_core::lightning::{DevOutcome, InvoiceDescription, InvoiceRequest, LightningNode};
use flash_core::ports::{Clock, SystemClock};
use flash_core::{AccountId, HoldId, IdempotencyKey, LevelLimits, LimitPolicy, Network, SystemAccount, WalletId};
use flash_lightning::DevNode;
use flash_onchain::DevChain;
use flash_store::testing::{fresh_store_with_clock, Backend};
use flash_store::{LnPaymentStatus, Store};
use futures_util::FutureExt;

/// Seeds run by default on SQLite (CI), and operations per seed.
const SQLITE_SEEDS: u64 = 200;
/// Seeds run by default on PostgreSQL.
const POSTGRES_SEEDS: u64 = 6;
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
/// A jump of the clock that empties every limit window (24 hours and one bucket, and more).
const DAY_JUMP_MS: i64 = 25 * 3_600_000;
/// Longest the clock moves in small steps between two day jumps, so a window never rolls
/// part-way (which bucket an amount falls out of is the store's business, not the model's).
const SMALL_STEPS_MAX_MS: i64 = 23 * 3_600_000;

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
                let stats = simulate(backend, seed, ops).await;
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
    }
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

/// Everything the auditor expects.
#[derive(Default)]
struct Model {
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
            ..OnchainConfig::default()
        },
        node_name: support::NODE.into(),
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
    rng: Rng,
    model: Model,
    stats: Stats,
    /// The last operations, for the failure message.
    log: Vec<String>,
    /// A member with nothing, whose refused sends are a barrier in the writer's queue.
    barrier: Member,
}

async fn simulate(backend: Backend, seed: u64, ops: u64) -> Stats {
    let clock = Arc::new(SimClock(AtomicI64::new(SystemClock.now_ms())));
    let store = fresh_store_with_clock(backend, clock.clone()).await;
    let node = Arc::new(DevNode::new(Network::Regtest, DevNode::generate_key(), Outcome::Fail.dev()).expect("node"));
    let outside = Arc::new(DevNode::new(Network::Regtest, DevNode::generate_key(), Outcome::Fail.dev()).expect("node"));
    let chain_dir = std::env::temp_dir().join(format!("flash-sim-{}-{seed}-{backend:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&chain_dir);
    let chain = Arc::new(DevChain::open(&chain_dir, Network::Regtest, 2_000).expect("dev chain"));
    let bank = open_bank(&store, &node, &chain).await;
    let barrier = support::member(&bank).await;
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
    };
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
async fn open_bank(store: &Store, node: &Arc<DevNode>, chain: &Arc<DevChain>) -> Bank {
    let wallet = support::hot_wallet(store, chain.clone()).await;
    Bank::new(store.clone(), config())
        .with_lightning(node.clone(), Some(node.clone()))
        .with_onchain(wallet, Some(chain.clone()))
}

impl Sim {
    fn note(&mut self, what: String) {
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
        match self.rng.below(100) {
            0..=3 if self.model.members.len() < MEMBERS_MAX => self.sign_up().await,
            0..=10 => self.fund().await,
            11..=32 => self.intraledger().await,
            33..=38 => self.retry_intraledger().await,
            39..=46 => self.create_invoice().await,
            47..=53 => self.receive_from_outside().await,
            54..=59 => self.pay_own_invoice().await,
            60..=71 => self.pay_out(None).await,
            72..=74 => self.pay_again().await,
            75..=78 => self.crash_during_payment().await,
            79..=80 => self.restart().await,
            81..=83 => self.reconcile().await,
            84..=88 => self.deposit().await,
            89..=92 => self.mine().await,
            93..=94 => self.reorg().await,
            _ => self.move_clock().await,
        }
    }

    // --- members and funding -----------------------------------------------------------------

    async fn sign_up(&mut self) {
        let m = support::member(&self.bank).await;
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
        self.bank = open_bank(&self.store, &self.node, &self.chain).await;
        self.reconcile().await;
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
        let drop = self.rng.chance(50);
        self.note(format!("reorganise the last block (drop its transactions: {drop})"));
        if let Err(e) = self.bank.dev_chain_reorg(1, drop).await {
            self.fail(format!("reorganisation failed: {e}"));
        }
        let tip = self.model.tip;
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
    }

    /// The end of a seed: late payments land, every wallet and system account matches the
    /// model and the rails' totals, and the books verify.
    async fn finish(&mut self) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        self.restart().await;
        self.check_wallets().await;
        for p in &self.model.payments {
            if matches!(p.state, OutState::Pending { .. }) && p.outcome != Outcome::Hang {
                self.fail(format!(
                    "a {:?} payment is still pending after reconciliation",
                    p.outcome
                ));
            }
        }
        let system = |a: SystemAccount| support::system_balance(&self.bank, a);
        let expect = [
            (SystemAccount::DevFaucet, -self.model.faucet_in),
            (SystemAccount::LightningPending, self.model.held()),
            (SystemAccount::LightningNode, self.model.ln_out - self.model.ln_in),
            (SystemAccount::FeesRevenue, self.model.deposit_fees),
            (SystemAccount::OnchainHot, -self.model.onchain_in),
            (SystemAccount::OnchainPending, 0),
            (SystemAccount::OnchainReview, 0),
        ];
        for (account, sats) in expect {
            let actual = system(account).await;
            if actual != sats {
                self.fail(format!("{account:?} holds {actual}, the model {sats}"));
            }
        }
        let users: i64 = self.model.members.iter().map(|m| m.balance).sum();
        let outstanding = self.model.faucet_in + self.model.ln_in + self.model.onchain_in
            - self.model.deposit_fees
            - self.model.ln_out
            - self.model.held();
        if users != outstanding {
            self.fail(format!(
                "members hold {users}; in minus out minus held is {outstanding}"
            ));
        }
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
