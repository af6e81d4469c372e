//! Graphviz DOT export.

use std::fmt::Write;

use crate::graph::Graph;
use crate::op::Op;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn attrs_summary(op: &Op) -> String {
    match op {
        Op::Conv2d(c) => {
            let out = c.out_channels.map_or("=in".to_string(), |o| o.to_string());
            let g = match c.groups {
                crate::op::Groups::Fixed(1) => String::new(),
                crate::op::Groups::Fixed(g) => format!(" g{g}"),
                crate::op::Groups::Depthwise(_) => " dw".into(),
            };
            let act = c.act.map_or(String::new(), |a| format!(" +{}", a.name()));
            format!("{}x{} s{} →{out}{g}{act}", c.kernel[0], c.kernel[1], c.stride[0])
        }
        Op::AvgPool(p) | Op::MaxPool(p) => format!("{}x{} s{}", p.kernel[0], p.kernel[1], p.stride[0]),
        Op::Dense(d) => format!("→{}", d.out_features),
        Op::Exit(e) => format!("{:?} θ={}", e.rule, e.threshold),
        Op::Choice(c) => format!("param {}", c.param),
        Op::Input(i) => format!("{:?}", i.shape),
        _ => String::new(),
    }
}

/// The graph in Graphviz DOT. Choices are diamonds (edges labelled with option names), exits
/// octagons, gates houses (edges labelled `skip`, `body`, `logit`). With `shapes`, node labels
/// carry output shapes.
pub fn to_dot(graph: &Graph, shapes: Option<&[Vec<usize>]>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph \"{}\" {{", escape(&graph.name));
    let _ = writeln!(s, "  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];");
    for id in graph.node_ids() {
        let n = graph.node(id);
        let shape = match n.op {
            Op::Choice(_) => "diamond",
            Op::Exit(_) => "octagon",
            Op::Gate(_) => "house",
            Op::Input(_) | Op::Output => "oval",
            _ => "box",
        };
        let mut label = format!("{}\\n{}", escape(&n.name), n.op.name());
        let a = attrs_summary(&n.op);
        if !a.is_empty() {
            let _ = write!(label, " {}", escape(&a));
        }
        if let Some(sh) = shapes {
            let _ = write!(label, "\\n{:?}", sh[id.index()]);
        }
        let _ = writeln!(s, "  n{} [label=\"{label}\", shape={shape}];", id.index());
    }
    for id in graph.node_ids() {
        let n = graph.node(id);
        for (port, &i) in graph.inputs(id).iter().enumerate() {
            let label = match &n.op {
                Op::Choice(c) => graph.param(&c.param).map(|p| p.options[port].clone()).unwrap_or_default(),
                Op::Gate(_) => ["skip", "body", "logit"][port].to_string(),
                _ => String::new(),
            };
            if label.is_empty() {
                let _ = writeln!(s, "  n{} -> n{};", i.index(), id.index());
            } else {
                let _ = writeln!(s, "  n{} -> n{} [label=\"{}\"];", i.index(), id.index(), escape(&label));
            }
        }
    }
    s.push_str("}\n");
    s
}
