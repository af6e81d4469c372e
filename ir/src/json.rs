//! The JSON form of graphs (supernets and subnets).
//!
//! ```json
//! {
//!   "format": "nasc-graph",
//!   "version": 1,
//!   "name": "tiny",
//!   "meta": {"space": "fbnet:cifar100"},
//!   "params": [{"name": "layer0", "options": ["k3_e1", "skip"]}],
//!   "nodes": [
//!     {"name": "x", "op": "input", "attrs": {"shape": [1, 3, 32, 32]}},
//!     {"name": "c", "op": "conv2d", "inputs": ["x"],
//!      "attrs": {"out_channels": 16, "kernel": [3, 3], "padding": [1, 1]}},
//!     {"name": "r", "op": "relu", "inputs": ["c"]},
//!     {"name": "y", "op": "output", "inputs": ["r"]}
//!   ]
//! }
//! ```
//!
//! A node that placement rewriting moved onto an NPU's host CPU says `"device": "host"`
//! (absent = `"target"`, the default). A convolution or dense layer of a quantized network
//! says `"precision": "int8"`, a node a runtime computes in half precision `"precision": "f16"`
//! (absent = `"f32"`; see [`crate::Precision`]).
//!
//! Nodes are listed in topological order: an input must be defined before the node using it.
//! `params` and `meta` are omitted when empty, `inputs` when there are none, `attrs` for ops
//! without attributes, and attribute fields equal to their defaults (stride 1, padding 0,
//! dilation 1, groups 1, no bias, no fused activation, BatchNorm ε 1e-5). Unknown fields are
//! errors. Parsing then printing a printed graph gives the same text; printing a parsed graph
//! gives an equal graph.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{IrError, Result};
use crate::graph::{ArchParam, Device, Graph, Precision};
use crate::op::Op;

/// The `format` value of graph files.
pub const FORMAT: &str = "nasc-graph";
/// The current `version`.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphJson {
    format: String,
    version: u32,
    name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    meta: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    params: Vec<ArchParam>,
    nodes: Vec<NodeJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeJson {
    name: String,
    op: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    inputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attrs: Option<Value>,
    #[serde(default, skip_serializing_if = "Device::is_target")]
    device: Device,
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    precision: Precision,
}

fn op_to_parts(op: &Op) -> (String, Option<Value>) {
    let v = serde_json::to_value(op).expect("ops serialise to JSON");
    let mut obj = match v {
        Value::Object(o) => o,
        _ => unreachable!("adjacently tagged enums serialise to objects"),
    };
    let name = obj.remove("op").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    (name, obj.remove("attrs"))
}

fn op_from_parts(node: &str, op: &str, attrs: Option<Value>) -> Result<Op> {
    let mut obj = serde_json::Map::new();
    obj.insert("op".into(), Value::String(op.into()));
    if let Some(a) = attrs {
        obj.insert("attrs".into(), a);
    }
    serde_json::from_value(Value::Object(obj)).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("unknown variant") {
            IrError::Json(format!("node `{node}`: unknown op `{op}`"))
        } else {
            IrError::Json(format!("node `{node}` ({op}): {msg}"))
        }
    })
}

impl Graph {
    /// Prints the graph as pretty JSON.
    pub fn to_json(&self) -> String {
        let nodes = self
            .node_ids()
            .map(|id| {
                let n = self.node(id);
                let (op, attrs) = op_to_parts(&n.op);
                NodeJson {
                    name: n.name.clone(),
                    op,
                    inputs: self.inputs(id).iter().map(|&i| self.node(i).name.clone()).collect(),
                    attrs,
                    device: n.device,
                    precision: n.precision,
                }
            })
            .collect();
        let g = GraphJson {
            format: FORMAT.into(),
            version: VERSION,
            name: self.name.clone(),
            meta: self.meta.clone(),
            params: self.params.clone(),
            nodes,
        };
        let mut s = serde_json::to_string_pretty(&g).expect("graphs serialise to JSON");
        s.push('\n');
        s
    }

    /// Parses the JSON form. Errors name the line and column (syntax) or the node (content).
    /// Structure is checked (names, inputs, arity, choices name declared params); shapes are
    /// checked by [`Graph::validate`].
    pub fn from_json(text: &str) -> Result<Graph> {
        let g: GraphJson = serde_json::from_str(text).map_err(|e| IrError::Json(e.to_string()))?;
        if g.format != FORMAT {
            return Err(IrError::Json(format!("`format` is `{}`, expected `{FORMAT}`", g.format)));
        }
        if g.version != VERSION {
            return Err(IrError::Json(format!("`version` is {}, this build reads {VERSION}", g.version)));
        }
        let mut graph = Graph::new(g.name);
        graph.meta = g.meta;
        for p in g.params {
            let opts: Vec<&str> = p.options.iter().map(String::as_str).collect();
            graph.add_param(p.name, &opts)?;
        }
        for n in g.nodes {
            let op = op_from_parts(&n.name, &n.op, n.attrs)?;
            let mut ids = Vec::with_capacity(n.inputs.len());
            for i in &n.inputs {
                let id = graph.find(i).ok_or_else(|| {
                    IrError::Json(format!(
                        "node `{}`: input `{i}` is not defined before it (nodes are listed in topological order)",
                        n.name
                    ))
                })?;
                ids.push(id);
            }
            let id = graph.add(n.name, op, &ids)?;
            let node = graph.node_mut(id);
            if n.precision == Precision::Int8 && !matches!(node.op, Op::Conv2d(_) | Op::Dense(_)) {
                return Err(IrError::Json(format!(
                    "node `{}`: precision `int8` applies to conv2d and dense nodes, not {}",
                    node.name,
                    node.op.name()
                )));
            }
            node.device = n.device;
            node.precision = n.precision;
        }
        graph.validate_structure()?;
        Ok(graph)
    }
}
