//! Connecting the configured binders, with retry when a broker is down at start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::binder::{BindError, Binder, BinderEnvironment, BinderRegistry};
use crate::config::StreamConfig;
use crate::error::Error;

/// Attempts to connect a binder before giving up at start.
const CONNECT_ATTEMPTS: u32 = 5;

/// Connects each `(name, type)` binder, retrying with exponential back-off (500 ms doubling,
/// capped at `binding-retry-interval`) before a clear error. `binding-retry-interval: 0` fails
/// fast.
pub(crate) async fn connect_all(
    config: &StreamConfig,
    root: &serde_json::Value,
    registry: &BinderRegistry,
    needed: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Arc<dyn Binder>>, Error> {
    let mut out = BTreeMap::new();
    let cap = Duration::from_secs(config.stream.binding_retry_interval);
    for (name, binder_type) in needed {
        let factory = registry
            .get(binder_type)
            .ok_or_else(|| Error::UnknownBinderType {
                binder: name.clone(),
                binder_type: binder_type.clone(),
                available: registry.types().join(", "),
            })?;
        let env = BinderEnvironment::for_binder(config, root, name);
        let mut wait = Duration::from_millis(500);
        let mut attempt = 1;
        let binder = loop {
            match factory.create(name, &env).await {
                Ok(b) => break b,
                Err(e @ BindError::Config { .. }) => {
                    return Err(Error::Binder {
                        binder: name.clone(),
                        source: e,
                    })
                }
                Err(e) if attempt < CONNECT_ATTEMPTS && !cap.is_zero() => {
                    tracing::warn!(binder = %name, error = %e, attempt, retry_in_ms = wait.as_millis() as u64, "binder not available yet");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(cap);
                    attempt += 1;
                }
                Err(e) => {
                    return Err(Error::Binder {
                        binder: name.clone(),
                        source: e,
                    })
                }
            }
        };
        out.insert(name.clone(), binder);
    }
    Ok(out)
}
