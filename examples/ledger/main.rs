//! The ledger: event sourcing and a CQRS read model rebuilt from history.
//!
//! * Commands (`Deposit`, `Withdraw`) go to `ledger-commands`, keyed by account (per-account
//!   order).
//! * `handle` (the write model, group `accounts`) decides: `Deposited`, `Withdrawn`, or
//!   `Rejected` (insufficient funds), appended to `ledger-events`, keyed by account.
//! * `project` (group `balances-v1`) folds the events into the read model: balances. It lags
//!   the write model a little (eventual consistency): `main` prints by how much.
//! * `rebuild` (group `balances-v2`, not started with the app) is started once the commands
//!   are done: a new group starts from the earliest event (`start-offset: earliest`; the memory
//!   binder keeps history with `retention`, Kafka keeps its log) and must arrive at the same
//!   balances. It replays in batches (`batch-mode`, a `.batch_consumer` taking `Vec<Event>`).
//!   `main` exits 0 when it does.
//!
//! ```text
//! cargo run --example ledger                                      # memory binder
//! cargo run --example ledger -- --accounts 10 --commands 1000
//! cargo run --example ledger --features kafka -- --profile kafka  # scripts/brokers up kafka
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use cloud_stream::prelude::*;

/// How long the read models may take to catch up.
const CATCH_UP: Duration = Duration::from_secs(60);

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "ledger",
    about = "Event sourcing and a rebuilt CQRS read model"
)]
struct Args {
    /// Accounts.
    #[arg(long, default_value_t = 5)]
    accounts: u64,
    /// Commands sent.
    #[arg(long, default_value_t = 200)]
    commands: u64,
    /// Activate a configuration profile (e.g. kafka).
    #[arg(long = "profile", short = 'p')]
    profiles: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Command {
    Deposit { account: String, amount: i64 },
    Withdraw { account: String, amount: i64 },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Event {
    Deposited {
        account: String,
        amount: i64,
    },
    Withdrawn {
        account: String,
        amount: i64,
    },
    Rejected {
        account: String,
        amount: i64,
        balance: i64,
    },
}

impl Event {
    fn account(&self) -> &str {
        match self {
            Event::Deposited { account, .. }
            | Event::Withdrawn { account, .. }
            | Event::Rejected { account, .. } => account,
        }
    }
}

/// A read model: balances by account, and how many events it applied.
#[derive(Clone, Default)]
struct ReadModel {
    balances: Arc<Mutex<BTreeMap<String, i64>>>,
    applied: Arc<AtomicU64>,
}

impl ReadModel {
    /// Applies `event` if it belongs to this run (a Kafka topic also holds earlier runs).
    fn apply(&self, event: &Event, run: &str) {
        if !event.account().starts_with(run) {
            return;
        }
        let mut balances = self.balances.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Deposited { account, amount } => {
                *balances.entry(account.clone()).or_default() += amount
            }
            Event::Withdrawn { account, amount } => {
                *balances.entry(account.clone()).or_default() -= amount
            }
            Event::Rejected { .. } => {}
        }
        self.applied.fetch_add(1, Ordering::Release);
    }

    fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The batch consumer folding a batch of events into this model, counting the batches.
    fn batch_consumer(
        &self,
        run: &str,
        batches: &Arc<AtomicU64>,
    ) -> impl Fn(Vec<Event>) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static
    {
        let (model, run, batches) = (self.clone(), run.to_owned(), Arc::clone(batches));
        move |events: Vec<Event>| {
            batches.fetch_add(1, Ordering::Relaxed);
            for event in &events {
                model.apply(event, &run);
            }
            std::future::ready(Ok(()))
        }
    }

    fn snapshot(&self) -> BTreeMap<String, i64> {
        self.balances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The consumer folding events into this model.
    fn consumer(
        &self,
        run: &str,
    ) -> impl Fn(Event) -> std::future::Ready<Result<(), HandlerError>> + Send + Sync + 'static
    {
        let (model, run) = (self.clone(), run.to_owned());
        move |event: Event| {
            model.apply(&event, &run);
            std::future::ready(Ok(()))
        }
    }
}

/// The write model: decides each command against the balances of the events it appended.
fn handle(
    state: Arc<Mutex<BTreeMap<String, i64>>>,
) -> impl Fn(Command) -> std::future::Ready<Result<Message<Event>, HandlerError>> + Send + Sync {
    move |command: Command| {
        let mut balances = state.lock().unwrap_or_else(|e| e.into_inner());
        let event = match command {
            Command::Deposit { account, amount } => {
                *balances.entry(account.clone()).or_default() += amount;
                Event::Deposited { account, amount }
            }
            Command::Withdraw { account, amount } => {
                let balance = balances.entry(account.clone()).or_default();
                if *balance < amount {
                    Event::Rejected {
                        balance: *balance,
                        account,
                        amount,
                    }
                } else {
                    *balance -= amount;
                    Event::Withdrawn { account, amount }
                }
            }
        };
        let key = event.account().to_owned();
        std::future::ready(Ok(Message::new(event).header(header::PARTITION_KEY, key)))
    }
}

/// The i-th command: deposits, and withdrawals some of which overdraw (and are rejected).
fn command(run: &str, i: u64, accounts: u64) -> Command {
    let account = format!("{run}-acct-{}", i % accounts.max(1));
    let amount = (i * 37 % 100 + 1) as i64;
    if i % 3 == 2 {
        Command::Withdraw {
            account,
            amount: amount * 2,
        }
    } else {
        Command::Deposit { account, amount }
    }
}

/// Waits until `model` applied `n` events.
async fn caught_up(model: &ReadModel, n: u64) -> bool {
    let deadline = Instant::now() + CATCH_UP;
    while model.applied() < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Sends the commands, each keyed by its account, so that one account's commands keep their
/// order.
async fn send_commands(
    bridge: &StreamBridge,
    run: &str,
    args: &Args,
) -> Result<(), Box<dyn std::error::Error>> {
    for i in 0..args.commands {
        let c = command(run, i, args.accounts);
        let key = match &c {
            Command::Deposit { account, .. } | Command::Withdraw { account, .. } => account.clone(),
        };
        let message = Message::new(c).header(header::PARTITION_KEY, key);
        bridge.send_message("commands", message).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let run = format!("r{}", std::process::id());
    let (live, rebuilt) = (ReadModel::default(), ReadModel::default());
    let batches = Arc::new(AtomicU64::new(0));
    let mut builder = StreamApp::builder().config_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ledger/application.yaml"
    ));
    for p in &args.profiles {
        builder = builder.profile(p);
    }
    let app = builder
        .property(
            "spring.cloud.stream.bindings.project-in-0.group",
            &format!("balances-v1-{run}"),
        )
        .property(
            "spring.cloud.stream.bindings.rebuild-in-0.group",
            &format!("balances-v2-{run}"),
        )
        .function("handle", handle(Arc::default()))
        .consumer("project", live.consumer(&run))
        .batch_consumer("rebuild", rebuilt.batch_consumer(&run, &batches))
        .build()
        .await?;
    send_commands(&app.bridge(), &run, &args).await?;
    println!(
        "[ledger]  {} commands accepted; the read model has applied {} events so far (eventual consistency)",
        args.commands,
        live.applied()
    );
    if !caught_up(&live, args.commands).await {
        eprintln!(
            "[ledger]  the read model applied only {} of {} events",
            live.applied(),
            args.commands
        );
        app.shutdown().await;
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "[project] caught up: {} events, balances {:?}",
        live.applied(),
        live.snapshot()
    );
    println!("[rebuild] starting a new group from the earliest event");
    app.bindings().start("rebuild-in-0")?;
    let done = caught_up(&rebuilt, args.commands).await;
    println!(
        "[rebuild] applied {} events in {} batches, balances {:?}",
        rebuilt.applied(),
        batches.load(Ordering::Relaxed),
        rebuilt.snapshot()
    );
    app.shutdown().await;
    if done && rebuilt.snapshot() == live.snapshot() {
        println!("[ledger]  the rebuilt read model equals the live one");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("[ledger]  the rebuilt read model differs from the live one");
        Ok(ExitCode::FAILURE)
    }
}
