//! The graph: nodes (name + [`Op`]) on a petgraph `DiGraph`, inputs ordered by port.
//!
//! **Invariant:** nodes are stored in a topological order — a node's inputs are always added
//! before it — so the insertion order is an execution order and the graph has no cycle.

use std::collections::{BTreeMap, HashMap};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::error::{IrError, Result};
use crate::op::{GateDecision, Op};
use crate::shape::{infer_op_shape, Shape};

/// Index of a node in a [`Graph`].
pub type NodeId = NodeIndex;

/// A node: a unique name, an op, where it runs and the arithmetic it runs in.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Unique name, e.g. `cell3.edge2-1.conv`.
    pub name: String,
    /// The operator with its attributes.
    pub op: Op,
    /// Where it runs (placement; the interpreter and the compiler ignore it).
    pub device: Device,
    /// The arithmetic of the node (a cost annotation, see [`Precision`]).
    pub precision: Precision,
}

/// The arithmetic a node runs in. `Int8` marks a convolution or dense layer of a quantized
/// network (int8 weights and inputs, 32-bit accumulation, dequantized output, as ncnn and
/// TFLite run them); `F16` marks any node a runtime computes and stores in half precision
/// (ncnn does so with every float layer on cores with ARMv8.2 FP16 arithmetic). The cost model
/// prices their throughput and byte traffic. It is an annotation for pricing measured
/// networks: the interpreter computes every node in f32 (the network's float reference), and
/// the compiler and the rewriter reject nodes that are not f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit float (the default).
    #[default]
    F32,
    /// 8-bit integer weights and inputs (convolution and dense layers only).
    Int8,
    /// 16-bit float arithmetic and storage.
    F16,
}

impl Precision {
    /// Whether this is the default precision (omitted from the JSON form).
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    /// Its name in the JSON form and in layer tables: `f32`, `int8`, `f16`.
    pub fn name(&self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
            Precision::F16 => "f16",
        }
    }
}

/// Where a node runs on a target with an accelerator: on the target itself (the NPU's array
/// when it supports the op, else its host as a fallback the cost model prices) or forced onto
/// the NPU's host CPU, as placement rewriting decides. CPU targets run everything themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The target (the default).
    #[default]
    Target,
    /// The NPU's host CPU; values crossing to or from the target pay the link.
    Host,
}

impl Device {
    /// Whether this is the default placement (omitted from the JSON form).
    pub fn is_target(&self) -> bool {
        *self == Device::Target
    }
}

/// An architecture parameter: a named decision with labelled options.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchParam {
    /// Name, referenced by [`crate::op::Choice::param`].
    pub name: String,
    /// Option labels, e.g. `["k3_e1", "k3_e3", "skip"]`.
    pub options: Vec<String>,
}

/// A dataflow graph, concrete (no [`Op::Choice`]) or a supernet.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Name of the model.
    pub name: String,
    /// Architecture parameters (empty for a concrete graph).
    pub params: Vec<ArchParam>,
    /// Free-form metadata (e.g. `space`, `arch`), kept in the JSON form.
    pub meta: BTreeMap<String, String>,
    graph: DiGraph<Node, usize>,
    inputs: Vec<Vec<NodeId>>,
    by_name: HashMap<String, NodeId>,
}

impl PartialEq for Graph {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.params == other.params
            && self.meta == other.meta
            && self.inputs == other.inputs
            && self.graph.node_weights().eq(other.graph.node_weights())
    }
}

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>) -> Self {
        Graph { name: name.into(), ..Default::default() }
    }

    /// Declares an architecture parameter.
    pub fn add_param(&mut self, name: impl Into<String>, options: &[&str]) -> Result<()> {
        let name = name.into();
        if self.params.iter().any(|p| p.name == name) {
            return Err(IrError::Param { param: name, message: "declared twice".into() });
        }
        if options.is_empty() {
            return Err(IrError::Param { param: name, message: "has no options".into() });
        }
        self.params.push(ArchParam { name, options: options.iter().map(|s| s.to_string()).collect() });
        Ok(())
    }

    /// The parameter of that name.
    pub fn param(&self, name: &str) -> Option<&ArchParam> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Adds a node whose inputs are existing nodes, in port order. Checks the name and arity
    /// (shapes are checked by [`Graph::infer_shapes`]).
    pub fn add(&mut self, name: impl Into<String>, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        let name = name.into();
        if name.is_empty() {
            return Err(IrError::Graph("a node has an empty name".into()));
        }
        if self.by_name.contains_key(&name) {
            return Err(IrError::DuplicateName(name));
        }
        let (lo, hi) = op.arity();
        if inputs.len() < lo || inputs.len() > hi {
            let expected = if lo == hi {
                format!("{lo}")
            } else if hi == usize::MAX {
                format!("at least {lo}")
            } else {
                format!("{lo} to {hi}")
            };
            return Err(IrError::node(&name, op.name(), format!("takes {expected} input(s), got {}", inputs.len())));
        }
        for &i in inputs {
            if i.index() >= self.graph.node_count() {
                return Err(IrError::node(&name, op.name(), format!("input index {} out of range", i.index())));
            }
            if self.graph[i].op.is_sink() {
                let sink = &self.graph[i];
                return Err(IrError::node(
                    &name,
                    op.name(),
                    format!("input `{}` is an {} (a sink) and cannot be consumed", sink.name, sink.op.name()),
                ));
            }
        }
        let id =
            self.graph.add_node(Node { name: name.clone(), op, device: Device::Target, precision: Precision::F32 });
        for (port, &i) in inputs.iter().enumerate() {
            self.graph.add_edge(i, id, port);
        }
        self.inputs.push(inputs.to_vec());
        self.by_name.insert(name, id);
        Ok(id)
    }

    /// Adds a node whose inputs are given by name.
    pub fn add_named(&mut self, name: impl Into<String>, op: Op, inputs: &[&str]) -> Result<NodeId> {
        let name = name.into();
        let ids = inputs
            .iter()
            .map(|i| self.find(i).ok_or_else(|| IrError::UnknownInput { node: name.clone(), input: i.to_string() }))
            .collect::<Result<Vec<_>>>()?;
        self.add(name, op, &ids)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Node ids in insertion (= topological) order.
    pub fn node_ids(&self) -> impl DoubleEndedIterator<Item = NodeId> + ExactSizeIterator {
        (0..self.graph.node_count()).map(NodeIndex::new)
    }

    /// The node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.graph[id]
    }

    /// The node, mutably. Changing the op may break shape validity; re-run
    /// [`Graph::infer_shapes`].
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.graph[id]
    }

    /// Looks a node up by name.
    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// The node's inputs in port order.
    pub fn inputs(&self, id: NodeId) -> &[NodeId] {
        &self.inputs[id.index()]
    }

    /// The nodes consuming this node's output (each once, in id order).
    pub fn consumers(&self, id: NodeId) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.graph.edges_directed(id, Direction::Outgoing).map(|e| e.target()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The underlying petgraph graph (edge weight = input port).
    pub fn petgraph(&self) -> &DiGraph<Node, usize> {
        &self.graph
    }

    /// Ids of the nodes with this kind of op.
    pub fn nodes_where(&self, pred: impl Fn(&Op) -> bool) -> Vec<NodeId> {
        self.node_ids().filter(|&n| pred(&self.graph[n].op)).collect()
    }

    /// The early exits in exit-index order (node order).
    pub fn exits(&self) -> Vec<NodeId> {
        self.nodes_where(|op| matches!(op, Op::Exit(_)))
    }

    /// The gates in node order.
    pub fn gates(&self) -> Vec<NodeId> {
        self.nodes_where(|op| matches!(op, Op::Gate(_)))
    }

    /// Whether the graph has no choice left.
    pub fn is_concrete(&self) -> bool {
        self.nodes_where(|op| matches!(op, Op::Choice(_))).is_empty()
    }

    /// The single input node of a concrete graph.
    pub fn input_node(&self) -> Result<NodeId> {
        self.single(|op| matches!(op, Op::Input(_)), "input")
    }

    /// The single output node.
    pub fn output_node(&self) -> Result<NodeId> {
        self.single(|op| matches!(op, Op::Output), "output")
    }

    fn single(&self, pred: impl Fn(&Op) -> bool, what: &str) -> Result<NodeId> {
        let v = self.nodes_where(pred);
        match v.len() {
            1 => Ok(v[0]),
            0 => Err(IrError::Graph(format!("has no {what} node"))),
            n => Err(IrError::Graph(format!(
                "has {n} {what} nodes (`{}`, `{}`, …); a concrete graph has exactly one",
                self.graph[v[0]].name, self.graph[v[1]].name
            ))),
        }
    }

    /// Infers every node's output shape. The graph must be concrete; every error names the
    /// node.
    pub fn infer_shapes(&self) -> Result<Vec<Shape>> {
        let mut shapes: Vec<Shape> = Vec::with_capacity(self.len());
        for id in self.node_ids() {
            let node = &self.graph[id];
            if let Op::Choice(c) = &node.op {
                return Err(IrError::node(
                    &node.name,
                    "choice",
                    format!("choice on param `{}` in a graph used as concrete; select a configuration first", c.param),
                ));
            }
            let ins: Vec<&Shape> = self.inputs(id).iter().map(|i| &shapes[i.index()]).collect();
            let s = infer_op_shape(&node.op, &ins).map_err(|m| IrError::node(&node.name, node.op.name(), m))?;
            shapes.push(s);
        }
        Ok(shapes)
    }

    /// Validates a concrete graph: one input, one output, shapes, exits agreeing with the
    /// output, batch 1 where exits or logit gates decide. Returns the shapes.
    pub fn validate(&self) -> Result<Vec<Shape>> {
        self.validate_structure()?;
        self.input_node()?;
        let out = self.output_node()?;
        let shapes = self.infer_shapes()?;
        let out_shape = &shapes[self.inputs(out)[0].index()];
        for e in self.exits() {
            let s = &shapes[self.inputs(e)[0].index()];
            if s != out_shape {
                let n = &self.graph[e];
                return Err(IrError::node(
                    &n.name,
                    "exit",
                    format!("scores of shape {s:?} differ from the output's {out_shape:?}"),
                ));
            }
            if s[0] != 1 {
                return Err(IrError::node(&self.graph[e].name, "exit", "early exits need batch 1"));
            }
        }
        for g in self.gates() {
            if let Op::Gate(gate) = &self.graph[g].op {
                if matches!(gate.decision, GateDecision::Logit) && shapes[g.index()][0] != 1 {
                    return Err(IrError::node(&self.graph[g].name, "gate", "logit gates need batch 1"));
                }
            }
        }
        Ok(shapes)
    }

    /// Structural checks valid for supernets too: every choice names a declared parameter
    /// with as many options as the choice has candidates.
    pub fn validate_structure(&self) -> Result<()> {
        for id in self.node_ids() {
            let node = &self.graph[id];
            if let Op::Choice(c) = &node.op {
                let p = self.param(&c.param).ok_or_else(|| {
                    IrError::node(&node.name, "choice", format!("param `{}` is not declared in `params`", c.param))
                })?;
                if p.options.len() != self.inputs(id).len() {
                    return Err(IrError::node(
                        &node.name,
                        "choice",
                        format!(
                            "param `{}` has {} options but the choice has {} candidates",
                            c.param,
                            p.options.len(),
                            self.inputs(id).len()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Ids of the nodes that sinks (output and exits) depend on, as a mask by node index.
    pub fn live_mask(&self) -> Vec<bool> {
        let mut live = vec![false; self.len()];
        for id in self.node_ids().rev() {
            if self.graph[id].op.is_sink() {
                live[id.index()] = true;
            }
            if live[id.index()] {
                for &i in self.inputs(id) {
                    live[i.index()] = true;
                }
            }
        }
        live
    }

    /// Mask (by node index) of the nodes computed when pulling `targets`: the targets and
    /// all their ancestors.
    pub fn ancestors_mask(&self, targets: &[NodeId]) -> Vec<bool> {
        let mut mask = vec![false; self.len()];
        for &t in targets {
            mask[t.index()] = true;
        }
        for id in self.node_ids().rev() {
            if mask[id.index()] {
                for &i in self.inputs(id) {
                    mask[i.index()] = true;
                }
            }
        }
        mask
    }

    /// Mask of the nodes that run only when gate `gate` is open: the ancestors of its body
    /// input that no sink needs with the gate closed (other gates counted open).
    pub fn gate_body_mask(&self, gate: NodeId) -> Vec<bool> {
        let mut closed = vec![false; self.len()];
        for id in self.node_ids().rev() {
            if self.graph[id].op.is_sink() {
                closed[id.index()] = true;
            }
            if closed[id.index()] {
                for (port, &i) in self.inputs(id).iter().enumerate() {
                    if !(id == gate && port == 1) {
                        closed[i.index()] = true;
                    }
                }
            }
        }
        let body = self.ancestors_mask(&[self.inputs(gate)[1]]);
        body.iter().zip(&closed).map(|(&b, &c)| b && !c).collect()
    }
}
