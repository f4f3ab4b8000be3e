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

use super::Plan;

/// What a node stands for (its shape in the picture).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A function, or the app's `StreamBridge` for bindings without one.
    Function,
    /// A destination (topic, exchange, queue).
    Destination,
    /// A dead-letter queue.
    DeadLetters,
}

/// An edge: from, to (node ids), label, and whether it carries dead letters (dashed).
type Edge = (String, String, String, bool);

/// A node: label, shape, and the binder whose box holds it (destinations and DLQs).
type Node = (String, Shape, Option<String>);

/// Nodes, each binder's destinations, and edges, with ids that are safe in both syntaxes.
#[derive(Default)]
struct Graph {
    /// Nodes in order of appearance (the id of node `i` is `n<i>`): label, shape, and the
    /// binder name for destinations and DLQs.
    nodes: Vec<Node>,
    /// Node ids by their (kind, binder, name) key, to give each node one id.
    ids: BTreeMap<(u8, String, String), String>,
    edges: Vec<Edge>,
}

impl Graph {
    fn of(plan: &Plan) -> Graph {
        let mut g = Graph::default();
        for b in &plan.bindings {
            let function = b
                .function
                .clone()
                .unwrap_or_else(|| "StreamBridge".to_owned());
            let f = g.node(Shape::Function, None, &function);
            for d in &b.destinations {
                let dest = g.node(Shape::Destination, Some(&b.binder), d);
                let label = b.group.clone().unwrap_or_default();
                match b.direction {
                    "input" => g.edges.push((dest, f.clone(), label, false)),
                    _ => g.edges.push((f.clone(), dest, b.name.clone(), false)),
                }
            }
            if let Some(dlq) = &b.dlq {
                let q = g.node(Shape::DeadLetters, Some(&b.binder), dlq);
                g.edges
                    .push((f.clone(), q, "dead letters".to_owned(), true));
            }
        }
        g
    }

    /// The id of the node for `name` (created on first use).
    fn node(&mut self, shape: Shape, binder: Option<&str>, name: &str) -> String {
        let key = (
            shape as u8,
            binder.unwrap_or_default().to_owned(),
            name.to_owned(),
        );
        if let Some(id) = self.ids.get(&key) {
            return id.clone();
        }
        let id = format!("n{}", self.nodes.len());
        self.ids.insert(key, id.clone());
        self.nodes
            .push((name.to_owned(), shape, binder.map(str::to_owned)));
        id
    }

    /// The nodes outside any binder's box (functions), with their ids.
    fn loose(&self) -> impl Iterator<Item = (String, &Node)> {
        let nodes = self.nodes.iter().enumerate();
        nodes
            .filter(|(_, n)| n.2.is_none())
            .map(|(i, n)| (format!("n{i}"), n))
    }

    /// The nodes drawn inside each binder's box, with their ids.
    fn by_binder(&self) -> BTreeMap<&str, Vec<(String, &Node)>> {
        let mut out: BTreeMap<&str, Vec<(String, &Node)>> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(b) = &n.2 {
                out.entry(b.as_str())
                    .or_default()
                    .push((format!("n{i}"), n));
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
    /// The event flow as a Mermaid flowchart.
    pub fn mermaid(&self) -> String {
        let g = Graph::of(self);
        let binder_type = self.binder_types();
        let mut out = String::from("flowchart LR\n");
        let shape = |id: &str, (text, shape, _): &Node| {
            let t = label(text, mermaid_escape);
            match shape {
                Shape::Function => format!("{id}[\"{t}\"]"),
                Shape::Destination => format!("{id}[(\"{t}\")]"),
                Shape::DeadLetters => format!("{id}[/\"{t}\"/]"),
            }
        };
        for (id, node) in g.loose() {
            let _ = writeln!(out, "  {}", shape(&id, node));
        }
        for (i, (binder, ids)) in g.by_binder().into_iter().enumerate() {
            let title = format!("{binder} ({})", binder_type(binder));
            let _ = writeln!(
                out,
                "  subgraph b{i}[\"{}\"]",
                label(&title, mermaid_escape)
            );
            for (id, node) in ids {
                let _ = writeln!(out, "    {}", shape(&id, node));
            }
            out.push_str("  end\n");
        }
        for (from, to, text, dead) in &g.edges {
            let arrow = if *dead { "-.->" } else { "-->" };
            let text = match text.is_empty() {
                true => String::new(),
                false => format!("|\"{}\"|", label(text, mermaid_escape)),
            };
            let _ = writeln!(out, "  {from} {arrow}{text} {to}");
        }
        out
    }

    /// The event flow as a Graphviz digraph.
    pub fn dot(&self) -> String {
        let g = Graph::of(self);
        let binder_type = self.binder_types();
        let mut out = String::from("digraph flow {\n  rankdir=LR;\n");
        let node = |id: &str, (text, shape, _): &Node| {
            let shape = match shape {
                Shape::Function => "box",
                Shape::Destination => "cylinder",
                Shape::DeadLetters => "folder",
            };
            format!(
                "{id} [label=\"{}\", shape={shape}];",
                label(text, dot_escape)
            )
        };
        for (id, n) in g.loose() {
            let _ = writeln!(out, "  {}", node(&id, n));
        }
        for (i, (binder, ids)) in g.by_binder().into_iter().enumerate() {
            let title = format!("{binder} ({})", binder_type(binder));
            let _ = writeln!(out, "  subgraph cluster_{i} {{");
            let _ = writeln!(out, "    label=\"{}\";", label(&title, dot_escape));
            for (id, n) in ids {
                let _ = writeln!(out, "    {}", node(&id, n));
            }
            out.push_str("  }\n");
        }
        for (from, to, text, dead) in &g.edges {
            let style = if *dead { ", style=dashed" } else { "" };
            let _ = writeln!(
                out,
                "  {from} -> {to} [label=\"{}\"{style}];",
                label(text, dot_escape)
            );
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
