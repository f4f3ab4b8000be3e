//! Effective bindings and the delivery plan.
//!
//! [`resolve_binding`] turns configuration into what one binding will actually do (destinations,
//! group, binder, retry, partitioning, binder-specific properties). [`Plan`] is the serialisable
//! summary printed by `cloud-stream plan` (its JSON form is a stable interface) and logged by the
//! runtime at start.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::binder::{BinderRegistry, ConsumerSpec, ProducerSpec, ProvisionPlan};
use crate::binding::{binding_name, parse_definition, split_binding_name, Direction};
use crate::config::{
    deep_merge, BindingProperties, ConsumerProperties, ProducerProperties, StreamConfig,
};

mod asyncapi;
mod graph;

pub use asyncapi::{payload_schema, AsyncApiInfo, PayloadSchemas};
pub use graph::{FlowEdge, FlowGraph, FlowNode, NodeKind};

/// Binding names are resolved against configuration that names no binder.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The binding's binder (or the default binder) is not configured.
    #[error(
        "binding `{binding}` uses binder `{binder}`, which is not configured (configured: {known})"
    )]
    UnknownBinder {
        /// The binding.
        binding: String,
        /// The missing binder name.
        binder: String,
        /// The configured names, comma-separated.
        known: String,
    },
    /// Several binders are configured, no default, and the binding names none.
    #[error("binding `{binding}` names no binder and there are several ({known}); set `spring.cloud.stream.default-binder` or `spring.cloud.stream.bindings.{binding}.binder`")]
    AmbiguousBinder {
        /// The binding.
        binding: String,
        /// The configured names, comma-separated.
        known: String,
    },
}

/// What one binding does, after every default, profile and override.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectiveBinding {
    /// The binding name (after aliasing).
    pub name: String,
    /// Input or output.
    pub direction: Direction,
    /// Destinations (several for a comma-separated input).
    pub destinations: Vec<String>,
    /// The consumer group (`None` = anonymous).
    pub group: Option<String>,
    /// The binder configuration name.
    pub binder: String,
    /// The binder type.
    pub binder_type: String,
    /// The content type.
    pub content_type: String,
    /// Consumer properties, with instance index/count resolved from the global ones.
    pub consumer: ConsumerProperties,
    /// Producer properties.
    pub producer: ProducerProperties,
    /// Binder-specific properties of this binding's direction (`consumer` or `producer`).
    pub binder_properties: serde_json::Value,
}

impl EffectiveBinding {
    /// The spec a binder receives for an input binding.
    pub fn consumer_spec(&self) -> ConsumerSpec {
        ConsumerSpec {
            binding: self.name.clone(),
            concurrency: self.consumer.concurrency.max(1),
            partitioned: self.consumer.partitioned,
            instance_index: u32::try_from(self.consumer.instance_index).unwrap_or(0),
            instance_count: u32::try_from(self.consumer.instance_count)
                .unwrap_or(1)
                .max(1),
            max_attempts: self.consumer.max_attempts.max(1),
            batch_mode: self.consumer.batch_mode,
            redelivery_delays: self.consumer.redelivery_schedule(),
            binder_properties: self.binder_properties.clone(),
        }
    }

    /// The spec a binder receives for an output binding.
    pub fn producer_spec(&self) -> ProducerSpec {
        ProducerSpec {
            binding: self.name.clone(),
            partition_count: self.producer.partition_count.max(1),
            required_groups: self.producer.required_groups.clone(),
            binder_properties: self.binder_properties.clone(),
        }
    }
}

/// The binder a binding uses: its own `binder`, else `default-binder`, else the only one.
pub fn binder_for(
    config: &StreamConfig,
    binding: &str,
    props: &BindingProperties,
) -> Result<(String, String), PlanError> {
    let binders = &config.stream.binders;
    let known = || {
        if binders.is_empty() {
            "memory".to_owned()
        } else {
            binders.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    };
    let name = match (&props.binder, &config.stream.default_binder) {
        (Some(b), _) | (None, Some(b)) => b.clone(),
        (None, None) => match binders.len() {
            0 => "memory".to_owned(),
            1 => binders.keys().next().cloned().unwrap_or_default(),
            _ => {
                let candidates: Vec<_> = binders
                    .iter()
                    .filter(|(_, b)| b.default_candidate)
                    .map(|(n, _)| n.clone())
                    .collect();
                match candidates.as_slice() {
                    [only] => only.clone(),
                    _ => {
                        return Err(PlanError::AmbiguousBinder {
                            binding: binding.to_owned(),
                            known: known(),
                        })
                    }
                }
            }
        },
    };
    if binders.is_empty() {
        // No `binders` section: the binder is implicit and its type is its name.
        return Ok((name.clone(), name));
    }
    match binders.get(&name) {
        Some(b) => Ok((name.clone(), b.binder_type.clone().unwrap_or(name))),
        None => Err(PlanError::UnknownBinder {
            binding: binding.to_owned(),
            binder: name,
            known: known(),
        }),
    }
}

/// Resolves binding `name` in `direction`. Bindings absent from configuration (e.g. created at
/// runtime by `StreamBridge`) get `spring.cloud.stream.default`.
pub fn resolve_binding(
    config: &StreamConfig,
    name: &str,
    direction: Direction,
) -> Result<EffectiveBinding, PlanError> {
    let props = config
        .stream
        .bindings
        .get(name)
        .cloned()
        .unwrap_or_else(|| config.stream.default.clone());
    let (binder, binder_type) = binder_for(config, name, &props)?;
    let mut consumer = props.consumer.clone();
    if consumer.instance_count < 0 {
        consumer.instance_count = i32::try_from(config.stream.instance_count).unwrap_or(1);
    }
    if consumer.instance_index < 0 {
        consumer.instance_index = i32::try_from(config.stream.instance_index).unwrap_or(0);
    }
    let side = match direction {
        Direction::Input => "consumer",
        Direction::Output => "producer",
    };
    let mut binder_properties = serde_json::Value::Object(Default::default());
    if let Some(section) = config.binder_sections.get(&binder_type) {
        if let Some(d) = section.pointer(&format!("/default/{side}")) {
            deep_merge(&mut binder_properties, d);
        }
        // JSON pointer escaping for binding names that contain `/` or `~`.
        let escaped = name.replace('~', "~0").replace('/', "~1");
        if let Some(b) = section.pointer(&format!("/bindings/{escaped}/{side}")) {
            deep_merge(&mut binder_properties, b);
        }
    }
    Ok(EffectiveBinding {
        name: name.to_owned(),
        direction,
        destinations: props.destinations(name),
        group: props.group.clone(),
        binder,
        binder_type,
        content_type: props.content_type.clone(),
        consumer,
        producer: props.producer.clone(),
        binder_properties,
    })
}

/// The direction a configured binding name implies, without the application's code:
/// `-in-<n>`/`-out-<n>` suffixes, aliases, `input-bindings`/`output-bindings`, else input when it
/// has a group.
pub fn infer_direction(config: &StreamConfig, name: &str) -> Direction {
    let from_suffix = |n: &str| split_binding_name(n).map(|(_, d, _)| d);
    if let Some(d) = from_suffix(name) {
        return d;
    }
    if let Some((derived, _)) = config
        .stream
        .function
        .bindings
        .iter()
        .find(|(_, alias)| *alias == name)
    {
        if let Some(d) = from_suffix(derived) {
            return d;
        }
    }
    let listed = |list: &Option<String>| {
        list.as_deref()
            .map(|l| l.split(';').any(|s| s.trim() == name))
            .unwrap_or(false)
    };
    if listed(&config.stream.input_bindings) {
        return Direction::Input;
    }
    if listed(&config.stream.output_bindings) {
        return Direction::Output;
    }
    // A group written on the binding itself marks a consumer (Spring 2.x `input` bindings);
    // one inherited from `default` does not (StreamBridge outputs share those defaults).
    match config.stream.bindings.get(name) {
        Some(b) if b.group.is_some() && b.group != config.stream.default.group => Direction::Input,
        _ => Direction::Output,
    }
}

/// The function binding `name` belongs to: the `<function>` of its `<function>-in-<n>` or
/// `<function>-out-<n>` name, or of the derived name it is an alias of.
pub fn function_of(config: &StreamConfig, name: &str) -> Option<String> {
    let aliases = &config.stream.function.bindings;
    let derived = aliases
        .iter()
        .find(|(_, alias)| *alias == name)
        .map_or(name, |(derived, _)| derived.as_str());
    split_binding_name(derived).map(|(function, _, _)| function.to_owned())
}

/// Every binding the configuration implies, without the application's code: the configured
/// bindings, plus `<fn>-in-0`/`<fn>-out-0` of each defined function that has no configured
/// binding at all (its kind is unknown, so both are assumed).
pub fn configured_bindings(config: &StreamConfig) -> Vec<(String, Direction)> {
    let mut out: Vec<(String, Direction)> = config
        .stream
        .bindings
        .keys()
        .map(|n| (n.clone(), infer_direction(config, n)))
        .collect();
    let mut seen: BTreeSet<String> = out.iter().map(|(n, _)| n.clone()).collect();
    let alias = |n: String| crate::binding::apply_alias(&n, &config.stream.function.bindings);
    if let Some(defs) = config
        .function
        .definition
        .as_deref()
        .and_then(|d| parse_definition(d).ok())
    {
        for def in defs {
            let fname = def.name();
            let input = alias(binding_name(&fname, Direction::Input, 0));
            let output = alias(binding_name(&fname, Direction::Output, 0));
            if seen.contains(&input) || seen.contains(&output) {
                continue;
            }
            for (n, d) in [(input, Direction::Input), (output, Direction::Output)] {
                seen.insert(n.clone());
                out.push((n, d));
            }
        }
    }
    if config.stream.function.routing.enabled {
        let n = alias(binding_name(
            crate::binding::ROUTER_FUNCTION,
            Direction::Input,
            0,
        ));
        if seen.insert(n.clone()) {
            out.push((n, Direction::Input));
        }
    }
    out
}

/// The serialisable plan (`cloud-stream plan --format json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// Every binding.
    pub bindings: Vec<PlannedBinding>,
    /// Every configured (or implicit) binder.
    pub binders: Vec<PlannedBinder>,
}

/// One binding in the plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedBinding {
    /// Binding name.
    pub name: String,
    /// The function it binds (from its `<function>-in-<n>`/`-out-<n>` name, after aliases);
    /// `null` for `StreamBridge` bindings.
    pub function: Option<String>,
    /// `input` or `output`.
    pub direction: &'static str,
    /// Destinations.
    pub destinations: Vec<String>,
    /// Group, `null` when anonymous.
    pub group: Option<String>,
    /// Binder configuration name.
    pub binder: String,
    /// Binder type.
    pub binder_type: String,
    /// Content type.
    pub content_type: String,
    /// Consumer settings (inputs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<PlannedConsumer>,
    /// Producer settings (outputs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer: Option<PlannedProducer>,
    /// Dead-letter destination, `null` when none.
    pub dlq: Option<String>,
    /// Broker resources that would be provisioned.
    pub resources: Vec<String>,
}

/// Consumer settings in the plan (intervals in ms).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedConsumer {
    /// `max-attempts`.
    pub max_attempts: u32,
    /// `back-off-initial-interval`.
    pub back_off_initial_interval: u64,
    /// `back-off-multiplier`.
    pub back_off_multiplier: f64,
    /// `back-off-max-interval`.
    pub back_off_max_interval: u64,
    /// `concurrency`.
    pub concurrency: u32,
    /// `partitioned`.
    pub partitioned: bool,
    /// Effective `instance-index`.
    pub instance_index: i32,
    /// Effective `instance-count`.
    pub instance_count: i32,
    /// `batch-mode`.
    pub batch_mode: bool,
    /// `redelivery-delays` (ms), in order.
    pub redelivery_delays: Vec<u64>,
}

/// Producer settings in the plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedProducer {
    /// `partition-key-expression`.
    pub partition_key_expression: Option<String>,
    /// `partition-count`.
    pub partition_count: u32,
    /// `required-groups`.
    pub required_groups: Vec<String>,
}

/// One binder in the plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedBinder {
    /// Configuration name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub binder_type: String,
    /// Whether it is the default binder.
    pub default: bool,
}

/// Dead-letter and resource naming for binder types whose crate is not compiled in, so `plan`
/// works for any configuration (the factories, when present, are authoritative).
fn fallback_provision(b: &EffectiveBinding, destination: &str) -> ProvisionPlan {
    let group = b.group.as_deref();
    let enabled = |key: &str| {
        b.binder_properties
            .get(key)
            .and_then(|v| v.as_bool().or_else(|| v.as_str().map(|s| s == "true")))
            .unwrap_or(false)
    };
    let dlq = match (b.direction, b.binder_type.as_str(), group) {
        (Direction::Output, _, _) | (_, _, None) => None,
        (_, "kafka", Some(g)) if enabled("enable-dlq") => Some(
            b.binder_properties
                .get("dlq-name")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("error.{destination}.{g}")),
        ),
        (_, "kafka", _) => None,
        // The rabbit binder binds a DLQ for named groups unless `auto-bind-dlq: false`.
        (_, "rabbit", Some(g))
            if b.binder_properties
                .get("auto-bind-dlq")
                .and_then(|v| v.as_bool().or_else(|| v.as_str().map(|s| s == "true")))
                .unwrap_or(true) =>
        {
            Some(format!("{destination}.{g}.dlq"))
        }
        (_, "rabbit", _) => None,
        (_, "sqs", Some(g)) => Some(format!("{destination}-{g}-dlq")),
        (_, _, Some(g)) => Some(format!("{destination}.{g}.dlq")),
    };
    ProvisionPlan {
        dlq,
        resources: vec![format!("{} destination {destination}", b.binder_type)],
    }
}

/// Builds the plan of `bindings` (name, direction) against `config`. Factories in `registry`
/// describe their provisioning; unknown types fall back to the documented naming rules.
pub fn build_plan(
    config: &StreamConfig,
    registry: &BinderRegistry,
    bindings: &[(String, Direction)],
) -> Result<Plan, PlanError> {
    let mut planned = Vec::with_capacity(bindings.len());
    for (name, direction) in bindings {
        let b = resolve_binding(config, name, *direction)?;
        let mut dlq = None;
        let mut resources = Vec::new();
        for d in &b.destinations {
            let p = match (registry.get(&b.binder_type), direction) {
                (Some(f), Direction::Input) => {
                    f.plan_consumer(d, b.group.as_deref(), &b.consumer_spec())
                }
                (Some(f), Direction::Output) => f.plan_producer(d, &b.producer_spec()),
                (None, _) => fallback_provision(&b, d),
            };
            dlq = dlq.or(p.dlq);
            resources.extend(p.resources);
        }
        planned.push(PlannedBinding {
            name: b.name.clone(),
            function: function_of(config, name),
            direction: direction.as_str(),
            destinations: b.destinations.clone(),
            group: b.group.clone(),
            binder: b.binder.clone(),
            binder_type: b.binder_type.clone(),
            content_type: b.content_type.clone(),
            consumer: (*direction == Direction::Input).then_some(PlannedConsumer {
                max_attempts: b.consumer.max_attempts,
                back_off_initial_interval: b.consumer.back_off_initial_interval,
                back_off_multiplier: b.consumer.back_off_multiplier,
                back_off_max_interval: b.consumer.back_off_max_interval,
                concurrency: b.consumer.concurrency,
                partitioned: b.consumer.partitioned,
                instance_index: b.consumer.instance_index,
                instance_count: b.consumer.instance_count,
                batch_mode: b.consumer.batch_mode,
                redelivery_delays: b.consumer.redelivery_delays.clone(),
            }),
            producer: (*direction == Direction::Output).then(|| PlannedProducer {
                partition_key_expression: b.producer.partition_key_expression.clone(),
                partition_count: b.producer.partition_count,
                required_groups: b.producer.required_groups.clone(),
            }),
            dlq: if *direction == Direction::Input {
                dlq
            } else {
                None
            },
            resources,
        });
    }
    Ok(Plan {
        bindings: planned,
        binders: planned_binders(config),
    })
}

/// The binders of `config` (without a `binders` section, the one implicit binder), each
/// marked whether it is the default.
fn planned_binders(config: &StreamConfig) -> Vec<PlannedBinder> {
    let default_name = config.stream.default_binder.clone();
    if config.stream.binders.is_empty() {
        let name = default_name.unwrap_or_else(|| "memory".to_owned());
        vec![PlannedBinder {
            binder_type: name.clone(),
            name,
            default: true,
        }]
    } else {
        let single = config.stream.binders.len() == 1;
        config
            .stream
            .binders
            .iter()
            .map(|(name, b)| PlannedBinder {
                name: name.clone(),
                binder_type: b.binder_type.clone().unwrap_or_else(|| name.clone()),
                default: single || default_name.as_deref() == Some(name),
            })
            .collect()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "binders:")?;
        for b in &self.binders {
            let default = if b.default { " (default)" } else { "" };
            writeln!(f, "  {} type={}{default}", b.name, b.binder_type)?;
        }
        writeln!(f, "bindings:")?;
        for b in &self.bindings {
            write!(f, "{b}")?;
        }
        Ok(())
    }
}

/// The schedule of delayed redeliveries in the plan's words (empty without).
fn redeliveries(delays_ms: &[u64]) -> String {
    if delays_ms.is_empty() {
        return String::new();
    }
    let each: Vec<String> = delays_ms.iter().map(|ms| format!("{ms} ms")).collect();
    format!(
        ", then redelivered through the broker after {} (each followed by the attempts again)",
        each.join(", ")
    )
}

impl fmt::Display for PlannedBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  {} [{}] -> {} via {} ({}), content-type {}",
            self.name,
            self.direction,
            self.destinations.join(","),
            self.binder,
            self.binder_type,
            self.content_type
        )?;
        if let Some(c) = &self.consumer {
            writeln!(
                f,
                "    group {}; {} attempt(s), back-off {} ms x{} up to {} ms{}; concurrency {}{}{}; dlq {}",
                self.group.as_deref().unwrap_or("(anonymous)"),
                c.max_attempts,
                c.back_off_initial_interval,
                c.back_off_multiplier,
                c.back_off_max_interval,
                redeliveries(&c.redelivery_delays),
                c.concurrency,
                if c.partitioned {
                    format!("; partitioned instance {}/{}", c.instance_index, c.instance_count)
                } else {
                    String::new()
                },
                if c.batch_mode { "; batches" } else { "" },
                self.dlq.as_deref().unwrap_or("none"),
            )?;
        }
        if let Some(p) = &self.producer {
            writeln!(
                f,
                "    partitions {}{}{}",
                p.partition_count,
                p.partition_key_expression
                    .as_deref()
                    .map(|e| format!(" by `{e}`"))
                    .unwrap_or_default(),
                if p.required_groups.is_empty() {
                    String::new()
                } else {
                    format!("; required groups {}", p.required_groups.join(","))
                },
            )?;
        }
        for r in &self.resources {
            writeln!(f, "    provisions {r}")?;
        }
        Ok(())
    }
}
