//! The e-graph language: one e-node per IR op, its attributes inside the node (not as
//! children), plus where its weights come from; the analysis that gives every e-class its
//! shape and a lower bound on its cost.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use egg::{DidMerge, Id, Language};

use crate::op::Op;
use crate::shape::{infer_op_shape, Shape};

/// Where an e-node's weights come from: an original node's, or derived from others by a
/// rewrite. Evaluated when the extracted graph is converted back ([`super::convert`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WRef {
    /// The named node's weights in the input graph.
    Node(String),
    /// A convolution's weights with a batch norm folded in (the result has a bias).
    FoldBn {
        /// The convolution's weights.
        conv: Box<WRef>,
        /// The batch norm's node name.
        bn: String,
    },
    /// A convolution's kernel zero-padded (centred) from `from` to `to`.
    PadKernel {
        /// The smaller convolution's weights.
        inner: Box<WRef>,
        /// Its kernel.
        from: [usize; 2],
        /// The padded kernel.
        to: [usize; 2],
    },
    /// Convolutions merged along output channels, in order.
    Concat(Vec<WRef>),
}

/// Where an e-node's value is computed, on a target with an accelerator and a host CPU.
///
/// Every e-class lives in one place: a node on the host reads host classes, a node on the
/// target reads target classes, and the two transfer nodes (an `identity` op with a
/// `ToHost`/`ToTarget` place) move a value over the link. Placement rules add a node's twin on
/// the other side; extraction pays for the transfers the chosen placement needs, each
/// transferred value once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place {
    /// On the target (an NPU's array, or the CPU of a CPU target).
    #[default]
    Target,
    /// On the NPU's host CPU.
    Host,
    /// A target value sent to the host.
    ToHost,
    /// A host value sent to the target.
    ToTarget,
}

impl Place {
    /// Whether this is a transfer node.
    pub fn is_transfer(self) -> bool {
        matches!(self, Place::ToHost | Place::ToTarget)
    }

    /// Where the node's value lives: its own place, or the transfer's destination.
    pub fn location(self) -> Place {
        match self {
            Place::Target | Place::ToTarget => Place::Target,
            Place::Host | Place::ToHost => Place::Host,
        }
    }
}

/// An e-node: an op with its attributes, its weights' source, an optional name (kept for
/// inputs, outputs, exits, gates and choices, whose names mean something), where it runs and
/// its children.
#[derive(Clone, Debug)]
pub struct ENode {
    /// The op and its attributes.
    pub op: Op,
    /// Where its weights come from (ops with weights only).
    pub w: Option<WRef>,
    /// The node's name when it must survive rewriting.
    pub name: Option<String>,
    /// Where it runs.
    pub place: Place,
    /// Input e-classes in port order.
    pub children: Vec<Id>,
    /// Canonical text of (op, w, name, place): equality, hashing and order go through it.
    key: String,
}

impl ENode {
    /// A node on the target; `key` is derived.
    pub fn new(op: Op, w: Option<WRef>, name: Option<String>, children: Vec<Id>) -> ENode {
        ENode::placed(op, w, name, Place::Target, children)
    }

    /// A node in `place`.
    pub fn placed(op: Op, w: Option<WRef>, name: Option<String>, place: Place, children: Vec<Id>) -> ENode {
        let op_text = serde_json::to_string(&op).unwrap_or_else(|_| format!("{op:?}"));
        let key = match place {
            Place::Target => format!("{op_text}|{w:?}|{name:?}"),
            p => format!("{op_text}|{w:?}|{name:?}|{p:?}"),
        };
        ENode { op, w, name, place, children, key }
    }

    /// A transfer of `value` to `place` (`ToHost` or `ToTarget`).
    pub fn transfer(place: Place, value: Id) -> ENode {
        debug_assert!(place.is_transfer());
        ENode::placed(Op::Identity, None, None, place, vec![value])
    }

    /// The canonical key (op, attributes, weights, name).
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl PartialEq for ENode {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.children == other.children
    }
}
impl Eq for ENode {}
impl Hash for ENode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
        self.children.hash(state);
    }
}
impl PartialOrd for ENode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ENode {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.key, &self.children).cmp(&(&other.key, &other.children))
    }
}

impl Language for ENode {
    type Discriminant = String;

    fn discriminant(&self) -> String {
        self.key.clone()
    }

    fn matches(&self, other: &Self) -> bool {
        self.key == other.key && self.children.len() == other.children.len()
    }

    fn children(&self) -> &[Id] {
        &self.children
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}

/// The cost of one op on a target, in milliseconds, given its input and output shapes —
/// implemented by the cost model (`nasc_costmodel`), so `ir` never depends on it.
pub trait NodeCost {
    /// Latency of `op` alone on the target (weights resident, inputs in memory).
    fn cost(&self, op: &Op, inputs: &[&Shape], output: &Shape) -> f64;

    /// Whether the target has a host CPU that placement may move work to (NPU targets).
    fn has_host(&self) -> bool {
        false
    }

    /// Whether the target itself runs `op` (an NPU's supported ops and kernel sizes); what it
    /// does not run starts on the host.
    fn supports(&self, _op: &Op, _inputs: &[&Shape], _output: &Shape) -> bool {
        true
    }

    /// Latency of `op` on its host CPU.
    fn host_cost(&self, op: &Op, inputs: &[&Shape], output: &Shape) -> f64 {
        self.cost(op, inputs, output)
    }

    /// Latency of moving a value of this shape over the link, `to_host` or back (a move to
    /// the host includes the hand-off to the host CPU).
    fn transfer_cost(&self, _shape: &Shape, _to_host: bool) -> f64 {
        0.0
    }

    /// Latency of `op` in `place` (a transfer node: of its value).
    fn cost_in(&self, op: &Op, place: Place, inputs: &[&Shape], output: &Shape) -> f64 {
        match place {
            Place::Target => self.cost(op, inputs, output),
            Place::Host => self.host_cost(op, inputs, output),
            Place::ToHost => self.transfer_cost(output, true),
            Place::ToTarget => self.transfer_cost(output, false),
        }
    }
}

/// Zero everywhere: structural rewriting without a target.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCost;

impl NodeCost for NoCost {
    fn cost(&self, _: &Op, _: &[&Shape], _: &Shape) -> f64 {
        0.0
    }
}

/// The analysis: shapes and cost lower bounds, priced by a [`NodeCost`].
pub struct Shapes {
    /// The target's per-op cost.
    pub cost: Box<dyn NodeCost>,
}

impl std::fmt::Debug for Shapes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shapes")
    }
}

/// What the analysis knows about an e-class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassData {
    /// The shape every node of the class produces (`None` for a choice whose candidates
    /// differ, which rules leave alone).
    pub shape: Option<Shape>,
    /// A lower bound on the cost of computing the class (its cheapest node plus the most
    /// expensive input's bound; inputs shared with others are counted at most once by DAG
    /// extraction, so this never exceeds what extraction finds).
    pub lower_bound: f64,
}

/// The e-graph nasc rewrites.
pub type EGraph = egg::EGraph<ENode, Shapes>;

/// The shape of `op` over input classes' shapes (`None` when an input's is unknown or the op
/// has none, as a choice over different shapes).
pub fn node_shape(op: &Op, ins: &[Option<Shape>]) -> Option<Shape> {
    let ins: Option<Vec<&Shape>> = ins.iter().map(Option::as_ref).collect();
    let ins = ins?;
    match op {
        Op::Choice(_) => {
            let first = ins.first()?;
            ins.iter().all(|s| s == first).then(|| (*first).clone())
        }
        _ => infer_op_shape(op, &ins).ok(),
    }
}

impl egg::Analysis<ENode> for Shapes {
    type Data = ClassData;

    fn make(egraph: &mut EGraph, enode: &ENode, _id: Id) -> ClassData {
        let ins: Vec<Option<Shape>> = enode.children.iter().map(|&c| egraph[c].data.shape.clone()).collect();
        let shape = node_shape(&enode.op, &ins);
        let own = match (&shape, ins.iter().map(Option::as_ref).collect::<Option<Vec<&Shape>>>()) {
            (Some(out), Some(ins)) => egraph.analysis.cost.cost_in(&enode.op, enode.place, &ins, out),
            _ => 0.0,
        };
        let below = enode.children.iter().map(|&c| egraph[c].data.lower_bound).fold(0.0, f64::max);
        ClassData { shape, lower_bound: own + below }
    }

    fn merge(&mut self, a: &mut ClassData, b: ClassData) -> DidMerge {
        let mut changed_a = false;
        if a.shape.is_none() && b.shape.is_some() {
            a.shape = b.shape.clone();
            changed_a = true;
        }
        let changed_b = b.shape.is_none() && a.shape.is_some();
        if b.lower_bound < a.lower_bound {
            a.lower_bound = b.lower_bound;
            changed_a = true;
        }
        DidMerge(changed_a, changed_b || b.lower_bound > a.lower_bound)
    }
}
