//! The shop: a saga by events, every service a function of one cloud-stream application.
//!
//! * `orders` (order service, polled supplier) emits `OrderCreated` on `orders`.
//! * `reserve` (stock service, group `stock`), `notify` (group `notification`) and `analytics`
//!   (group `analytics`) each get every order: fan-out by consumer groups.
//! * `reserve` answers `StockReserved` on `stock-reserved`, or `StockRejected` routed to
//!   `stock-rejected` with the `spring.cloud.stream.sendto.destination` header.
//! * `pay` (payment service) turns reservations into `PaymentCompleted` on `payments`.
//! * `compensate` (order service) cancels rejected orders: `OrderCancelled` on `orders-cancelled`.
//! * `track` (order service) follows `payments` and `orders-cancelled` to see each order's final
//!   state; `main` exits 0 once every order is paid or cancelled.
//!
//! ```text
//! cargo run --example shop                    # 10 orders on the memory binder, then exit 0
//! cargo run --example shop -- --orders 25     # more orders
//! cargo run --example shop -- --forever       # until Ctrl-C
//! cargo run --example shop --features actuator -- --profile actuator --forever
//!                                               # + http://127.0.0.1:8081/actuator/topology
//! cargo run --example shop -- --profile kafka # same handlers on another binder (once built in)
//! cargo run --example shop --features postgres -- --profile outbox
//!                                               # orders and payments stored with their events
//!                                               # (PostgreSQL outbox + idempotent payment)
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(feature = "postgres")]
#[path = "outbox.rs"]
mod store;
#[cfg(not(feature = "postgres"))]
#[path = "no_outbox.rs"]
mod store;

use clap::Parser;
use cloud_stream::prelude::*;
use tokio::sync::watch;

/// How long a fixed-size run may take before it is declared stuck.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "shop",
    about = "The cloud-stream shop example: a saga by events"
)]
struct Args {
    /// Number of orders to place before exiting (ignored with --forever).
    #[arg(long, default_value_t = 10)]
    orders: u64,
    /// Keep placing orders until Ctrl-C.
    #[arg(long)]
    forever: bool,
    /// Activate a configuration profile (repeatable), e.g. rabbit, kafka, sqs.
    #[arg(long = "profile", short = 'p')]
    profiles: Vec<String>,
}

// ---- events -------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderCreated {
    id: u64,
    customer: String,
    sku: String,
    qty: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StockReserved {
    order_id: u64,
    sku: String,
    qty: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StockRejected {
    order_id: u64,
    sku: String,
    requested: u32,
    available: u32,
}

/// What the stock service answers; serialized as the inner event.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum StockOutcome {
    Reserved(StockReserved),
    Rejected(StockRejected),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PaymentCompleted {
    order_id: u64,
    amount_cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderCancelled {
    order_id: u64,
    reason: String,
}

/// A final state, as read from `payments` or `orders-cancelled`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OrderOutcome {
    Paid(PaymentCompleted),
    Cancelled(OrderCancelled),
}

// ---- the services' state ------------------------------------------------------------------

/// Catalogue: sku, unit price (cents), stock on hand at start (and after a restock).
const CATALOGUE: &[(&str, u64, u32)] =
    &[("widget", 250, 8), ("gadget", 1200, 4), ("gizmo", 799, 3)];
/// Quantities ordered, in turn (deterministic, so the same orders are rejected every run).
const QUANTITIES: &[u32] = &[2, 1, 3, 2, 1];

fn price_of(sku: &str) -> u64 {
    CATALOGUE
        .iter()
        .find(|(s, _, _)| *s == sku)
        .map_or(0, |(_, p, _)| *p)
}

/// The n-th order the order service places (n from 1).
fn order(id: u64) -> OrderCreated {
    let i = (id - 1) as usize;
    OrderCreated {
        id,
        customer: format!("customer-{}", 40 + i % 7),
        sku: CATALOGUE[i % CATALOGUE.len()].0.to_owned(),
        qty: QUANTITIES[i % QUANTITIES.len()],
    }
}

/// Stock on hand per sku (the stock service's database).
struct Warehouse(Mutex<BTreeMap<String, u32>>);

impl Warehouse {
    fn new() -> Self {
        Warehouse(Mutex::new(
            CATALOGUE
                .iter()
                .map(|(s, _, q)| ((*s).to_owned(), *q))
                .collect(),
        ))
    }

    /// Takes `qty` of `sku`, or says how many are left. A rejection triggers a restock, so
    /// later orders can succeed again.
    fn reserve(&self, sku: &str, qty: u32) -> Result<u32, u32> {
        let mut stock = self.0.lock().expect("warehouse");
        let left = stock.entry(sku.to_owned()).or_insert(0);
        if *left >= qty {
            *left -= qty;
            Ok(*left)
        } else {
            let available = *left;
            *left = CATALOGUE
                .iter()
                .find(|(s, _, _)| *s == sku)
                .map_or(0, |(_, _, q)| *q);
            Err(available)
        }
    }
}

/// What analytics has seen.
#[derive(Default)]
struct Analytics {
    orders: u64,
    units: BTreeMap<String, u64>,
}

/// Final states, seen by `track`.
#[derive(Default, Clone, Copy, Debug)]
struct Outcomes {
    paid: u64,
    cancelled: u64,
    revenue_cents: u64,
}

fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// What the services share, given once to `with_state` and taken by the handlers that need
/// it as `State<Shop>` (cheap to clone: handles only).
#[derive(Clone)]
struct Shop {
    warehouse: Arc<Warehouse>,
    analytics: Arc<Mutex<Analytics>>,
    outcomes: Arc<watch::Sender<Outcomes>>,
    next_id: Arc<AtomicU64>,
    /// The order and payment database, with the `outbox` profile.
    store: Option<Arc<store::Store>>,
    /// How many orders to place (`None`: until Ctrl-C).
    limit: Option<u64>,
}

/// Order service: one order per poll; `None` once the fixed number is placed. With the outbox,
/// the order and its event are stored together and the relay publishes it.
async fn place_order(State(shop): State<Shop>) -> Result<Option<OrderCreated>, HandlerError> {
    if shop
        .limit
        .is_some_and(|n| shop.next_id.load(Ordering::Relaxed) > n)
    {
        return Ok(None);
    }
    let o = order(shop.next_id.fetch_add(1, Ordering::Relaxed));
    println!(
        "[order]     #{} created: {} x {} for {}",
        o.id, o.qty, o.sku, o.customer
    );
    match &shop.store {
        Some(s) => s.place(&o).await.map(|()| None),
        None => Ok(Some(o)),
    }
}

/// Stock service: reserve, or reject to `stock-rejected` via the sendto header.
async fn reserve(
    State(shop): State<Shop>,
    o: OrderCreated,
) -> Result<Message<StockOutcome>, HandlerError> {
    Ok(match shop.warehouse.reserve(&o.sku, o.qty) {
        Ok(left) => {
            println!(
                "[stock]     #{} reserved {} x {} ({left} left)",
                o.id, o.qty, o.sku
            );
            Message::new(StockOutcome::Reserved(StockReserved {
                order_id: o.id,
                sku: o.sku,
                qty: o.qty,
            }))
        }
        Err(available) => {
            println!(
                "[stock]     #{} rejected: only {available} {} left, {} wanted (restocking)",
                o.id, o.sku, o.qty
            );
            Message::new(StockOutcome::Rejected(StockRejected {
                order_id: o.id,
                sku: o.sku,
                requested: o.qty,
                available,
            }))
            .header(header::SENDTO_DESTINATION, "stock-rejected")
        }
    })
}

/// Analytics service: counts quietly; the summary is printed at the end.
async fn count_order(State(shop): State<Shop>, o: OrderCreated) -> Result<(), HandlerError> {
    let mut a = shop
        .analytics
        .lock()
        .map_err(|_| HandlerError::permanent("analytics lock poisoned"))?;
    a.orders += 1;
    *a.units.entry(o.sku).or_default() += u64::from(o.qty);
    Ok(())
}

/// Payment service: charge reserved orders (with the outbox: once per reservation, the payment
/// stored with its event).
async fn pay(
    State(shop): State<Shop>,
    m: Message<StockReserved>,
) -> Result<Option<PaymentCompleted>, HandlerError> {
    if let Some(s) = &shop.store {
        return s.pay(m).await.map(|()| None);
    }
    let r = m.payload;
    let amount_cents = price_of(&r.sku) * u64::from(r.qty);
    println!("[payment]   #{} paid {}", r.order_id, dollars(amount_cents));
    Ok(Some(PaymentCompleted {
        order_id: r.order_id,
        amount_cents,
    }))
}

/// Order service: follow every order to its final state.
async fn track(State(shop): State<Shop>, m: Message<OrderOutcome>) -> Result<(), HandlerError> {
    shop.outcomes.send_modify(|s| match &m.payload {
        OrderOutcome::Paid(p) => {
            println!("[order]     #{} completed", p.order_id);
            s.paid += 1;
            s.revenue_cents += p.amount_cents;
        }
        OrderOutcome::Cancelled(c) => {
            println!("[order]     #{} closed: {}", c.order_id, c.reason);
            s.cancelled += 1;
        }
    });
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    let limit = (!args.forever).then_some(args.orders);

    let (outcomes_tx, mut outcomes) = watch::channel(Outcomes::default());
    let store = match args.profiles.iter().any(|p| p == "outbox") {
        true => match store::Store::connect().await {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                eprintln!("shop: {e}");
                return ExitCode::FAILURE;
            }
        },
        false => None,
    };
    let shop = Shop {
        warehouse: Arc::new(Warehouse::new()),
        analytics: Arc::default(),
        outcomes: Arc::new(outcomes_tx),
        next_id: Arc::new(AtomicU64::new(1)),
        store,
        limit,
    };
    let app = match build_app(&args, &shop).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("shop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = run(app, limit, &mut outcomes).await;
    let final_states = *outcomes.borrow();
    report(&shop, &final_states);
    code
}

/// The shop's services on one app: orders, stock, notification, analytics, payment,
/// compensation and tracking.
async fn build_app(
    args: &Args,
    shop: &Shop,
) -> Result<cloud_stream::RunningApp, cloud_stream::Error> {
    let mut builder = StreamApp::builder().config_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/shop/application.yaml"
    ));
    for p in &args.profiles {
        builder = builder.profile(p);
    }
    if let Some(s) = &shop.store {
        builder = builder.extension(s.relay());
    }
    builder
        .with_state(shop.clone())
        .supplier("orders", place_order)
        .function("reserve", reserve)
        // Notification service: its own group, so it sees every order too.
        .consumer("notify", |o: OrderCreated| async move {
            println!(
                "[notify]    #{} confirmation mail queued for {}",
                o.id, o.customer
            );
            Ok(())
        })
        .consumer("analytics", count_order)
        .function("pay", pay)
        // Order service, compensation: a rejected reservation cancels the order.
        .function("compensate", |r: StockRejected| async move {
            println!("[order]     #{} cancelled (compensation)", r.order_id);
            Ok::<_, HandlerError>(OrderCancelled {
                order_id: r.order_id,
                reason: format!(
                    "out of stock: {} {} wanted, {} available",
                    r.requested, r.sku, r.available
                ),
            })
        })
        .consumer("track", track)
        .build()
        .await
}

/// Runs until Ctrl-C, or until `limit` orders reached a final state (failure past
/// [`RUN_TIMEOUT`]).
async fn run(
    app: cloud_stream::RunningApp,
    limit: Option<u64>,
    outcomes: &mut watch::Receiver<Outcomes>,
) -> ExitCode {
    let Some(n) = limit else {
        println!("shop: placing orders until Ctrl-C");
        if let Err(e) = app.run_until_shutdown().await {
            eprintln!("shop: {e}");
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    };
    let settled = tokio::time::timeout(
        RUN_TIMEOUT,
        outcomes.wait_for(|o| o.paid + o.cancelled >= n),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let mut code = ExitCode::SUCCESS;
    if !settled {
        let o = *outcomes.borrow();
        eprintln!(
            "shop: only {} of {n} orders reached a final state within {}s",
            o.paid + o.cancelled,
            RUN_TIMEOUT.as_secs()
        );
        code = ExitCode::FAILURE;
    }
    app.shutdown().await;
    code
}

/// What analytics saw and how the orders ended.
fn report(shop: &Shop, o: &Outcomes) {
    let a = shop.analytics.lock().expect("analytics");
    let units: Vec<String> = a.units.iter().map(|(s, u)| format!("{u} {s}")).collect();
    println!(
        "[analytics] {} orders seen ({}); {} paid for {}, {} cancelled",
        a.orders,
        units.join(", "),
        o.paid,
        dollars(o.revenue_cents),
        o.cancelled
    );
}
