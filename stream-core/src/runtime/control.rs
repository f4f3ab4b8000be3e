//! Runtime control of bindings (pause/resume/stop/start) and health, like Spring's
//! `/actuator/bindings` and binder health indicators.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use crate::binder::{Backlog, Binder, Health};
use crate::binding::Direction;
use crate::plan::EffectiveBinding;

/// The state of a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BindingState {
    /// Consuming (or producing, for suppliers).
    Running,
    /// Not taking new messages; in-flight work finishes; the subscription stays bound.
    Paused,
    /// Unbound: the subscription is closed (anonymous queues are removed).
    Stopped,
}

/// A control operation on a binding failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No binding has this name.
    #[error("no binding named `{name}` (bindings: {known})")]
    UnknownBinding {
        /// The name asked for.
        name: String,
        /// The existing bindings, comma-separated.
        known: String,
    },
    /// Output bindings of functions cannot be paused on their own.
    #[error("binding `{0}` is an output; pause or stop the input that feeds it")]
    NotControllable(String),
}

pub(crate) struct BindingEntry {
    pub direction: Direction,
    pub binder: String,
    pub state: watch::Sender<BindingState>,
    /// Whether the binding drives work (inputs and supplier outputs); a function's output
    /// follows its input.
    pub controllable: bool,
    /// An input binding's effective settings (for its backlog).
    pub input: Option<Arc<EffectiveBinding>>,
}

/// The backlog of one input binding on one of its destinations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BacklogReport {
    /// The binding's name.
    pub binding: String,
    /// The destination.
    pub destination: String,
    /// What its broker counted; `None` when it did not answer in time.
    pub backlog: Option<Backlog>,
}

/// How long one binder may take to count a backlog before it is reported unknown.
pub const BACKLOG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Health of the application: every binder's health and every binding's state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AppHealth {
    /// `UP` when every binder is up.
    pub up: bool,
    /// Binder name → health (`UP` or `DOWN: reason`).
    pub binders: BTreeMap<String, String>,
    /// Binding name → state.
    pub bindings: BTreeMap<String, BindingState>,
}

/// A cheap, cloneable handle to the running bindings.
#[derive(Clone)]
pub struct BindingsHandle {
    pub(crate) entries: Arc<BTreeMap<String, BindingEntry>>,
    pub(crate) binders: Arc<BTreeMap<String, Arc<dyn Binder>>>,
}

impl std::fmt::Debug for BindingsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.keys()).finish()
    }
}

impl BindingsHandle {
    fn entry(&self, name: &str) -> Result<&BindingEntry, ControlError> {
        self.entries
            .get(name)
            .ok_or_else(|| ControlError::UnknownBinding {
                name: name.to_owned(),
                known: self.entries.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    fn set(&self, name: &str, state: BindingState) -> Result<(), ControlError> {
        let e = self.entry(name)?;
        if !e.controllable {
            return Err(ControlError::NotControllable(name.to_owned()));
        }
        e.state.send_replace(state);
        tracing::info!(binding = name, ?state, "binding state changed");
        Ok(())
    }

    /// Stops taking new messages on `name`; in-flight deliveries finish.
    pub fn pause(&self, name: &str) -> Result<(), ControlError> {
        self.set(name, BindingState::Paused)
    }

    /// Resumes a paused binding.
    pub fn resume(&self, name: &str) -> Result<(), ControlError> {
        self.set(name, BindingState::Running)
    }

    /// Unbinds `name` (in-flight deliveries finish first).
    pub fn stop(&self, name: &str) -> Result<(), ControlError> {
        self.set(name, BindingState::Stopped)
    }

    /// Binds a stopped binding again.
    pub fn start(&self, name: &str) -> Result<(), ControlError> {
        self.set(name, BindingState::Running)
    }

    /// The state of `name`.
    pub fn state(&self, name: &str) -> Option<BindingState> {
        self.entries.get(name).map(|e| *e.state.borrow())
    }

    /// Binding names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// Whether `name` is an input or an output.
    pub fn direction(&self, name: &str) -> Option<Direction> {
        self.entries.get(name).map(|e| e.direction)
    }

    /// The binder a binding uses.
    pub fn binder_of(&self, name: &str) -> Option<&str> {
        self.entries.get(name).map(|e| e.binder.as_str())
    }

    /// The backlog of every input binding on each of its destinations, counted concurrently;
    /// `None` where the binder did not answer within [`BACKLOG_TIMEOUT`].
    pub async fn backlogs(&self) -> Vec<BacklogReport> {
        let mut counts = Vec::new();
        for (name, e) in self.entries.iter() {
            let (Some(eff), Some(binder)) = (&e.input, self.binders.get(&e.binder)) else {
                continue;
            };
            for destination in &eff.destinations {
                counts.push(async move {
                    let spec = eff.consumer_spec();
                    let count = binder.backlog(destination, eff.group.as_deref(), &spec);
                    BacklogReport {
                        binding: name.clone(),
                        destination: destination.clone(),
                        backlog: tokio::time::timeout(BACKLOG_TIMEOUT, count).await.ok(),
                    }
                });
            }
        }
        futures::future::join_all(counts).await
    }

    /// Health of every binder and the state of every binding.
    pub async fn health(&self) -> AppHealth {
        let mut binders = BTreeMap::new();
        let mut up = true;
        for (name, b) in self.binders.iter() {
            let h = b.health().await;
            up &= h.is_up();
            binders.insert(
                name.clone(),
                match h {
                    Health::Up => "UP".to_owned(),
                    Health::Down(r) => format!("DOWN: {r}"),
                },
            );
        }
        AppHealth {
            up,
            binders,
            bindings: self
                .entries
                .iter()
                .map(|(n, e)| (n.clone(), *e.state.borrow()))
                .collect(),
        }
    }
}
