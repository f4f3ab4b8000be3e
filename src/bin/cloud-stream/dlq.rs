//! `cloud-stream dlq list|peek|replay|purge`: every input binding's dead-letter queue, how many
//! messages it holds, what they are (left in place), and republishing or deleting them, asked
//! of the brokers the configuration names (the same binders, with the same environment and
//! credentials, as the application; nothing in arguments).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use cloud_stream::binder::{Backlog, Binder, BinderEnvironment, ConsumerSpec};
use cloud_stream::binding::Direction;
use cloud_stream::config::LoadedConfig;
use cloud_stream::message::RawMessage;
use cloud_stream::plan::{resolve_binding, EffectiveBinding, Plan};
use cloud_stream::runtime::dead_letters::{self, Action};
use cloud_stream::runtime::BACKLOG_TIMEOUT;
use serde::Serialize;
use serde_json::{json, Value};

/// One input binding on one destination (a `dlq list --format json` array element).
#[derive(Debug, Serialize)]
pub struct DlqRow {
    /// The binding's name.
    pub binding: String,
    /// The destination it consumes.
    pub destination: String,
    /// Its group, if any.
    pub group: Option<String>,
    /// The binder's name.
    pub binder: String,
    /// Its dead-letter queue or topic, if it has one.
    pub dlq: Option<String>,
    /// Messages in the dead-letter queue (`null`: the broker did not tell).
    pub dead_letters: Option<u64>,
    /// Messages waiting for the binding itself (`null`: the broker did not tell).
    pub pending: Option<u64>,
}

/// One input binding, resolved, with its connected binder.
struct Input {
    eff: EffectiveBinding,
    dlq: Option<String>,
    binder: Arc<dyn Binder>,
}

/// The input bindings of `plan` (only `only`, when given), each with its binder connected
/// (once per binder); run `work` on them, then close the binders.
async fn with_inputs<T>(
    loaded: &LoadedConfig,
    plan: &Plan,
    only: Option<&str>,
    work: impl AsyncFnOnce(&[Input]) -> T,
) -> Result<T, String> {
    let mut binders: BTreeMap<String, Arc<dyn Binder>> = BTreeMap::new();
    let mut inputs = Vec::new();
    let planned = plan.bindings.iter().filter(|b| b.direction == "input");
    for planned in planned.filter(|b| only.is_none_or(|o| o == b.name)) {
        let eff = resolve_binding(&loaded.config, &planned.name, Direction::Input)
            .map_err(|e| e.to_string())?;
        let binder = match binders.get(&eff.binder) {
            Some(b) => Arc::clone(b),
            None => {
                let b = connect(loaded, &eff.binder, &eff.binder_type).await?;
                binders.insert(eff.binder.clone(), Arc::clone(&b));
                b
            }
        };
        let dlq = planned.dlq.clone();
        inputs.push(Input { eff, dlq, binder });
    }
    let out = work(&inputs).await;
    for b in binders.values() {
        b.close().await;
    }
    Ok(out)
}

/// What the binder counts for the binding (nothing known when it does not answer in time).
async fn backlog(
    binder: &dyn Binder,
    destination: &str,
    group: Option<&str>,
    spec: &ConsumerSpec,
) -> Backlog {
    tokio::time::timeout(BACKLOG_TIMEOUT, binder.backlog(destination, group, spec))
        .await
        .unwrap_or_default()
}

/// Each input with its consumer spec, once per destination it consumes.
fn each_destination(inputs: &[Input]) -> impl Iterator<Item = (&Input, ConsumerSpec, &String)> {
    inputs.iter().flat_map(|input| {
        let spec = input.eff.consumer_spec();
        input
            .eff
            .destinations
            .iter()
            .map(move |d| (input, spec.clone(), d))
    })
}

/// The input bindings of `plan` (only `only`, when given) with their dead-letter depths.
pub async fn list(
    loaded: &LoadedConfig,
    plan: &Plan,
    only: Option<&str>,
) -> Result<Vec<DlqRow>, String> {
    with_inputs(loaded, plan, only, async |inputs: &[Input]| {
        let mut rows = Vec::new();
        for (Input { eff, dlq, binder }, spec, destination) in each_destination(inputs) {
            let backlog = backlog(binder.as_ref(), destination, eff.group.as_deref(), &spec).await;
            rows.push(DlqRow {
                binding: eff.name.clone(),
                destination: destination.clone(),
                group: eff.group.clone(),
                binder: eff.binder.clone(),
                dlq: dlq.clone(),
                dead_letters: backlog.dead_letters,
                pending: backlog.pending,
            });
        }
        rows
    })
    .await
}

/// What `dlq replay|purge` did for one binding on one destination (a `--format json` element).
#[derive(Debug, Serialize)]
pub struct Drained {
    /// The binding's name.
    pub binding: String,
    /// The destination it consumes.
    pub destination: String,
    /// Its dead-letter queue or topic.
    pub dlq: Option<String>,
    /// Where the dead letters were republished (`null` for a purge).
    pub to: Option<String>,
    /// How many were republished (or deleted).
    pub count: u64,
}

/// Replays (to `to`, else each binding's own destination) or, with `purge`, deletes up to
/// `count` dead letters of each input binding (only `only`, when given), printing progress on
/// stderr. Each is removed from its DLQ only after its republish was confirmed.
pub async fn drain(
    loaded: &LoadedConfig,
    plan: &Plan,
    only: Option<&str>,
    count: Option<u64>,
    to: Option<&str>,
    purge: bool,
) -> Result<Vec<Drained>, String> {
    let verb = if purge { "purged" } else { "replayed" };
    with_inputs(loaded, plan, only, async |inputs: &[Input]| {
        let mut out = Vec::new();
        for (Input { eff, dlq, binder }, spec, destination) in each_destination(inputs) {
            let group = eff.group.as_deref();
            let depth = backlog(binder.as_ref(), destination, group, &spec)
                .await
                .dead_letters;
            let max = count.unwrap_or(u64::MAX).min(depth.unwrap_or(u64::MAX));
            let target = to.unwrap_or(destination);
            let mut done = 0;
            if max > 0 && dlq.is_some() {
                let action = match purge {
                    true => Action::Purge,
                    false => Action::Replay { to: target },
                };
                let of = depth
                    .map(|d| format!(" of {}", d.min(max)))
                    .unwrap_or_default();
                let progress = |n: u64| {
                    if n == 1 || n % 100 == 0 || n == max {
                        eprintln!("{} ({destination}): {verb} {n}{of}", eff.name);
                    }
                };
                done = dead_letters::drain(
                    binder.as_ref(),
                    (destination, group, &spec),
                    action,
                    max,
                    progress,
                )
                .await
                .map_err(|e| format!("{} ({destination}): {e}", eff.name))?;
            }
            out.push(Drained {
                binding: eff.name.clone(),
                destination: destination.clone(),
                dlq: dlq.clone(),
                to: (!purge).then(|| target.to_owned()),
                count: done,
            });
        }
        Ok(out)
    })
    .await?
}

/// What `dlq replay|purge` did, as text.
pub fn drained_text(all: &[Drained]) -> String {
    let mut out = String::new();
    for d in all {
        let dlq = d.dlq.as_deref().unwrap_or("(no DLQ)");
        let _ = match &d.to {
            Some(to) => writeln!(
                out,
                "{} ({}): replayed {} from {dlq} to {to}",
                d.binding, d.destination, d.count
            ),
            None => writeln!(
                out,
                "{} ({}): purged {} from {dlq}",
                d.binding, d.destination, d.count
            ),
        };
    }
    out
}

/// Dead letters of one binding on one destination (a `dlq peek --format json` element).
#[derive(Debug, Serialize)]
pub struct Peeked {
    /// The binding's name.
    pub binding: String,
    /// The destination it consumes.
    pub destination: String,
    /// Its dead-letter queue or topic.
    pub dlq: Option<String>,
    /// Up to `--count` messages, oldest first: headers (the error headers among them) and
    /// payload (as text; bytes that are not UTF-8 are replaced).
    pub messages: Vec<Value>,
}

/// Up to `count` dead letters of each input binding (only `only`, when given), left in place.
pub async fn peek(
    loaded: &LoadedConfig,
    plan: &Plan,
    only: Option<&str>,
    count: usize,
) -> Result<Vec<Peeked>, String> {
    with_inputs(loaded, plan, only, async |inputs: &[Input]| {
        let mut out = Vec::new();
        for (Input { eff, dlq, binder }, spec, destination) in each_destination(inputs) {
            let group = eff.group.as_deref();
            let messages = binder
                .peek_dead_letters(destination, group, &spec, count)
                .await
                .map_err(|e| format!("{}: {e}", eff.name))?;
            out.push(Peeked {
                binding: eff.name.clone(),
                destination: destination.clone(),
                dlq: dlq.clone(),
                messages: messages.iter().map(message_json).collect(),
            });
        }
        Ok(out)
    })
    .await?
}

fn message_json(m: &RawMessage) -> Value {
    let headers: serde_json::Map<String, Value> = m
        .headers
        .iter()
        .map(|(k, v)| {
            let text = match v.as_str() {
                Some(t) => t.to_owned(),
                None => String::from_utf8_lossy(v.as_bytes()).into_owned(),
            };
            (k.to_owned(), Value::String(text))
        })
        .collect();
    json!({ "headers": headers, "payload": String::from_utf8_lossy(&m.payload) })
}

/// Peeked messages as text: per binding, each message's headers and payload.
pub fn peeked_text(all: &[Peeked]) -> String {
    let mut out = String::new();
    for p in all {
        let dlq = p.dlq.as_deref().unwrap_or("(no DLQ)");
        let _ = writeln!(
            out,
            "{} ({} -> {dlq}): {} message(s)",
            p.binding,
            p.destination,
            p.messages.len()
        );
        for (i, m) in p.messages.iter().enumerate() {
            let _ = writeln!(out, "  #{}", i + 1);
            for (k, v) in m["headers"].as_object().into_iter().flatten() {
                let _ = writeln!(out, "    {k}: {}", v.as_str().unwrap_or_default());
            }
            let _ = writeln!(
                out,
                "    payload: {}",
                m["payload"].as_str().unwrap_or_default()
            );
        }
    }
    out
}

/// Connects binder `name` as the application would (one attempt).
async fn connect(
    loaded: &LoadedConfig,
    name: &str,
    binder_type: &str,
) -> Result<Arc<dyn Binder>, String> {
    let registry = cloud_stream::binder_registry();
    let factory = registry.get(binder_type).ok_or_else(|| {
        format!(
            "binder `{name}` has type `{binder_type}`, not in this build (built with: {})",
            registry.types().join(", ")
        )
    })?;
    let env = BinderEnvironment::for_binder(&loaded.config, &loaded.root, name);
    factory
        .create(name, &env)
        .await
        .map_err(|e| format!("binder `{name}`: {e}"))
}

/// The rows as a table: binding, destination, group, DLQ, dead letters, pending.
pub fn table(rows: &[DlqRow]) -> String {
    let count = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let mut out = format!(
        "{:<28} {:<28} {:<14} {:<36} {:>12} {:>8}\n",
        "BINDING", "DESTINATION", "GROUP", "DLQ", "DEAD-LETTERS", "PENDING"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<28} {:<28} {:<14} {:<36} {:>12} {:>8}",
            r.binding,
            r.destination,
            r.group.as_deref().unwrap_or("-"),
            r.dlq.as_deref().unwrap_or("(none)"),
            count(r.dead_letters),
            count(r.pending)
        );
    }
    if rows
        .iter()
        .any(|r| r.dead_letters.is_none() || r.pending.is_none())
    {
        out.push_str("? = the broker did not tell (no such queue yet, or no count for it)\n");
    }
    out
}
