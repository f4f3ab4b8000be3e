//! `cloud-stream dlq list`: every input binding's dead-letter queue and how many messages it
//! holds, asked of the brokers the configuration names (the same binders, with the same
//! environment and credentials, as the application; nothing in arguments).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use cloud_stream::binder::{Binder, BinderEnvironment};
use cloud_stream::binding::Direction;
use cloud_stream::config::LoadedConfig;
use cloud_stream::plan::{resolve_binding, Plan};
use cloud_stream::runtime::BACKLOG_TIMEOUT;
use serde::Serialize;

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

/// The input bindings of `plan` (only `only`, when given) with their dead-letter depths.
pub async fn list(
    loaded: &LoadedConfig,
    plan: &Plan,
    only: Option<&str>,
) -> Result<Vec<DlqRow>, String> {
    let inputs: Vec<_> = plan
        .bindings
        .iter()
        .filter(|b| b.direction == "input" && only.is_none_or(|o| o == b.name))
        .collect();
    let mut binders: BTreeMap<String, Arc<dyn Binder>> = BTreeMap::new();
    let mut rows = Vec::new();
    for planned in inputs {
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
        let spec = eff.consumer_spec();
        for destination in &eff.destinations {
            let count = binder.backlog(destination, eff.group.as_deref(), &spec);
            let backlog = tokio::time::timeout(BACKLOG_TIMEOUT, count)
                .await
                .unwrap_or_default();
            rows.push(DlqRow {
                binding: eff.name.clone(),
                destination: destination.clone(),
                group: eff.group.clone(),
                binder: eff.binder.clone(),
                dlq: planned.dlq.clone(),
                dead_letters: backlog.dead_letters,
                pending: backlog.pending,
            });
        }
    }
    for b in binders.values() {
        b.close().await;
    }
    Ok(rows)
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
