//! The event flow of a [`Plan`] as a graph: functions, destinations (grouped by binder), the
//! bindings between them (labelled with their group) and dead-letter queues, rendered as
//! Mermaid (`cloud-stream plan --format mermaid`, which GitHub and most wikis draw) or
//! Graphviz DOT (`--format dot`).
//!
//! ```
//! use stream_core::plan::{Plan, PlannedBinder, PlannedBinding};
//! # fn binding(name: &str, function: Option<&str>, direction: &'static str, dest: &str) -> PlannedBinding {
//! #     PlannedBinding { name: name.into(), function: function.map(Into::into), direction,
//! #         destinations: vec![dest.into()], group: Some("g".into()), binder: "memory".into(),
//! #         binder_type: "memory".into(), content_type: "application/json".into(),
//! #         consumer: None, producer: None, dlq: None, resources: vec![] }
//! # }
//! let plan = Plan {
//!     bindings: vec![binding("upper-in-0", Some("upper"), "input", "words")],
//!     binders: vec![PlannedBinder { name: "memory".into(), binder_type: "memory".into(), default: true }],
//! };
//! let mermaid = plan.mermaid();
//! assert!(mermaid.starts_with("flowchart LR"));
//! assert!(mermaid.contains(r#"-->|"g"|"#)); // words --(group g)--> upper
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::Plan;

/// What a node stands for (its shape in the picture).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    /// A function, or the app's `StreamBridge` for bindings without one.
    Function,
    /// A destination (topic, exchange, queue).
    Destination,
    /// A dead-letter queue.
    DeadLetters,
}

/// A node of the flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowNode {
    /// `n<index>`: safe in Mermaid, DOT and HTML.
    pub id: String,
    /// The function's or destination's name.
    pub label: String,
    /// What it is.
    pub kind: NodeKind,
    /// The binder of a destination or DLQ.
    pub binder: Option<String>,
}

/// An edge of the flow: a binding (into or out of a function), or dead letters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowEdge {
    /// The source node's id.
    pub from: String,
    /// The target node's id.
    pub to: String,
    /// The group (inputs), the binding's name (outputs) or `dead letters`.
    pub label: String,
    /// The binding the edge stands for.
    pub binding: String,
    /// Whether it carries dead letters (drawn dashed).
    pub dead_letters: bool,
}

/// The event flow of a plan: functions, destinations and DLQs, and the bindings between them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowGraph {
    /// Nodes in order of appearance.
    pub nodes: Vec<FlowNode>,
    /// Edges in the plan's binding order.
    pub edges: Vec<FlowEdge>,
}

impl FlowGraph {
    fn of(plan: &Plan) -> FlowGraph {
        let mut g = FlowGraph::default();
        for b in &plan.bindings {
            let function = b
                .function
                .clone()
                .unwrap_or_else(|| "StreamBridge".to_owned());
            let f = g.node(NodeKind::Function, None, &function);
            for d in &b.destinations {
                let dest = g.node(NodeKind::Destination, Some(&b.binder), d);
                let (from, to, label) = match b.direction {
                    "input" => (dest, f.clone(), b.group.clone().unwrap_or_default()),
                    _ => (f.clone(), dest, b.name.clone()),
                };
                g.edge(from, to, label, &b.name, false);
            }
            if let Some(dlq) = &b.dlq {
                let q = g.node(NodeKind::DeadLetters, Some(&b.binder), dlq);
                g.edge(f.clone(), q, "dead letters".to_owned(), &b.name, true);
            }
        }
        g
    }

    fn edge(&mut self, from: String, to: String, label: String, binding: &str, dead: bool) {
        self.edges.push(FlowEdge {
            from,
            to,
            label,
            binding: binding.to_owned(),
            dead_letters: dead,
        });
    }

    /// The id of the node for `name` (created on first use).
    fn node(&mut self, kind: NodeKind, binder: Option<&str>, name: &str) -> String {
        let found = self
            .nodes
            .iter()
            .find(|n| n.kind == kind && n.binder.as_deref() == binder && n.label == name);
        if let Some(n) = found {
            return n.id.clone();
        }
        let id = format!("n{}", self.nodes.len());
        self.nodes.push(FlowNode {
            id: id.clone(),
            label: name.to_owned(),
            kind,
            binder: binder.map(str::to_owned),
        });
        id
    }

    /// The nodes outside any binder's box (functions).
    fn loose(&self) -> impl Iterator<Item = &FlowNode> {
        self.nodes.iter().filter(|n| n.binder.is_none())
    }

    /// The nodes drawn inside each binder's box.
    fn by_binder(&self) -> BTreeMap<&str, Vec<&FlowNode>> {
        let mut out: BTreeMap<&str, Vec<&FlowNode>> = BTreeMap::new();
        for n in &self.nodes {
            if let Some(b) = &n.binder {
                out.entry(b.as_str()).or_default().push(n);
            }
        }
        out
    }
}

/// Text safe inside a double-quoted label: quotes and line breaks replaced, `escape` applied.
fn label(text: &str, escape: fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match escape(c) {
            Some(e) => out.push_str(e),
            None if c.is_control() => out.push(' '),
            None => out.push(c),
        }
    }
    out
}

fn mermaid_escape(c: char) -> Option<&'static str> {
    match c {
        '"' => Some("#quot;"),
        '#' => Some("#35;"),
        _ => None,
    }
}

fn dot_escape(c: char) -> Option<&'static str> {
    match c {
        '"' => Some("\\\""),
        '\\' => Some("\\\\"),
        _ => None,
    }
}

impl Plan {
    /// The event flow as a graph (what the pictures draw).
    pub fn flow(&self) -> FlowGraph {
        FlowGraph::of(self)
    }

    /// The event flow as a Mermaid flowchart.
    pub fn mermaid(&self) -> String {
        let g = self.flow();
        let binder_type = self.binder_types();
        let mut out = String::from("flowchart LR\n");
        let shape = |n: &FlowNode| {
            let (id, t) = (&n.id, label(&n.label, mermaid_escape));
            match n.kind {
                NodeKind::Function => format!("{id}[\"{t}\"]"),
                NodeKind::Destination => format!("{id}[(\"{t}\")]"),
                NodeKind::DeadLetters => format!("{id}[/\"{t}\"/]"),
            }
        };
        for n in g.loose() {
            let _ = writeln!(out, "  {}", shape(n));
        }
        for (i, (binder, nodes)) in g.by_binder().into_iter().enumerate() {
            let title = format!("{binder} ({})", binder_type(binder));
            let _ = writeln!(
                out,
                "  subgraph b{i}[\"{}\"]",
                label(&title, mermaid_escape)
            );
            for n in nodes {
                let _ = writeln!(out, "    {}", shape(n));
            }
            out.push_str("  end\n");
        }
        for e in &g.edges {
            let arrow = if e.dead_letters { "-.->" } else { "-->" };
            let text = match e.label.is_empty() {
                true => String::new(),
                false => format!("|\"{}\"|", label(&e.label, mermaid_escape)),
            };
            let _ = writeln!(out, "  {} {arrow}{text} {}", e.from, e.to);
        }
        out
    }

    /// The event flow as a Graphviz digraph.
    pub fn dot(&self) -> String {
        let g = self.flow();
        let binder_type = self.binder_types();
        let mut out = String::from("digraph flow {\n  rankdir=LR;\n");
        let node = |n: &FlowNode| {
            let shape = match n.kind {
                NodeKind::Function => "box",
                NodeKind::Destination => "cylinder",
                NodeKind::DeadLetters => "folder",
            };
            let text = label(&n.label, dot_escape);
            format!("{} [label=\"{text}\", shape={shape}];", n.id)
        };
        for n in g.loose() {
            let _ = writeln!(out, "  {}", node(n));
        }
        for (i, (binder, nodes)) in g.by_binder().into_iter().enumerate() {
            let title = format!("{binder} ({})", binder_type(binder));
            let _ = writeln!(out, "  subgraph cluster_{i} {{");
            let _ = writeln!(out, "    label=\"{}\";", label(&title, dot_escape));
            for n in nodes {
                let _ = writeln!(out, "    {}", node(n));
            }
            out.push_str("  }\n");
        }
        for e in &g.edges {
            let style = if e.dead_letters { ", style=dashed" } else { "" };
            let text = label(&e.label, dot_escape);
            let _ = writeln!(out, "  {} -> {} [label=\"{text}\"{style}];", e.from, e.to);
        }
        out.push_str("}\n");
        out
    }

    /// A binder name's type, for the binder boxes' titles.
    fn binder_types(&self) -> impl Fn(&str) -> String + '_ {
        |name| {
            self.binders
                .iter()
                .find(|b| b.name == name)
                .map(|b| b.binder_type.clone())
                .unwrap_or_else(|| name.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PlannedBinder, PlannedBinding};
    use super::*;

    fn binding(name: &str, function: Option<&str>, direction: &'static str) -> PlannedBinding {
        PlannedBinding {
            name: name.into(),
            function: function.map(Into::into),
            direction,
            destinations: vec![format!("{name}-dest \"q\"")],
            group: (direction == "input").then(|| "g".to_owned()),
            binder: "rabbit".into(),
            binder_type: "rabbit".into(),
            content_type: "application/json".into(),
            consumer: None,
            producer: None,
            dlq: (direction == "input").then(|| "x.g.dlq".to_owned()),
            resources: vec![],
        }
    }

    fn plan() -> Plan {
        Plan {
            bindings: vec![
                binding("up-in-0", Some("up"), "input"),
                binding("up-out-0", Some("up"), "output"),
                binding("audit", None, "output"),
            ],
            binders: vec![PlannedBinder {
                name: "rabbit".into(),
                binder_type: "rabbit".into(),
                default: true,
            }],
        }
    }

    #[test]
    fn mermaid_draws_functions_destinations_groups_and_dlqs() {
        let m = plan().mermaid();
        assert!(m.contains("[\"up\"]"), "{m}");
        assert!(m.contains("[\"StreamBridge\"]"), "{m}");
        assert!(m.contains("subgraph b0[\"rabbit (rabbit)\"]"), "{m}");
        assert!(m.contains("[(\"up-in-0-dest #quot;q#quot;\")]"), "{m}");
        assert!(m.contains("-->|\"g\"|"), "{m}");
        assert!(m.contains("-.->|\"dead letters\"|"), "{m}");
        assert!(m.contains("[/\"x.g.dlq\"/]"), "{m}");
        assert_eq!(m.matches("[\"up\"]").count(), 1, "one node per function");
    }

    #[test]
    fn dot_is_a_digraph_with_a_cluster_per_binder() {
        let d = plan().dot();
        assert!(d.starts_with("digraph flow {"), "{d}");
        assert!(d.contains("subgraph cluster_0 {"), "{d}");
        assert!(
            d.contains("label=\"up-in-0-dest \\\"q\\\"\", shape=cylinder"),
            "{d}"
        );
        assert!(d.contains("style=dashed"), "{d}");
        assert!(d.trim_end().ends_with('}'));
    }
}
