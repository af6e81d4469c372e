//! The one place that converts between the petgraph IR and the e-graph: a graph (with its
//! weights) into an e-graph and its roots; an extracted selection back into a graph with its
//! weights, evaluating each node's [`WRef`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use egg::Id;

use super::lang::{node_shape, EGraph, ENode, NodeCost, Place, Shapes, WRef};
use crate::error::{IrError, Result};
use crate::graph::{Device, Graph, NodeId};
use crate::op::Op;
use crate::tensor::Tensor;
use crate::weights::Weights;

fn err(m: impl Into<String>) -> IrError {
    IrError::Run(m.into())
}

/// Whether an op carries weights.
fn weighted(op: &Op) -> bool {
    matches!(op, Op::Conv2d(_) | Op::BatchNorm(_) | Op::Dense(_))
}

/// Whether a node's name must survive rewriting.
fn named(op: &Op) -> bool {
    matches!(op, Op::Input(_) | Op::Output | Op::Exit(_) | Op::Gate(_) | Op::Choice(_))
}

/// A graph as an e-graph: returns it and its roots (the output and every exit, in node
/// order). Identical unnamed, weightless nodes over the same inputs share one e-class.
pub fn to_egraph(g: &Graph, cost: Box<dyn NodeCost>) -> Result<(EGraph, Vec<Id>)> {
    let mut eg = EGraph::new(Shapes { cost });
    let roots = add_graph(&mut eg, g)?;
    eg.rebuild();
    Ok((eg, roots))
}

/// Adds a graph's nodes to an e-graph (sharing whatever is already there); returns its roots.
///
/// On a target with a host (an NPU), a node goes to the host when the graph places it there
/// or the target does not run it; a value crossing between the two goes through a transfer
/// node. Inputs and sinks stay on the target.
pub fn add_graph(eg: &mut EGraph, g: &Graph) -> Result<Vec<Id>> {
    g.validate_structure()?;
    if let Some(n) = g.node_ids().map(|id| g.node(id)).find(|n| n.precision != crate::graph::Precision::F32) {
        return Err(crate::IrError::node(
            &n.name,
            n.op.name(),
            "int8 layers are priced, not rewritten (the rewrite rules assume f32 arithmetic)",
        ));
    }
    let has_host = eg.analysis.cost.has_host();
    let mut ids: Vec<Id> = Vec::with_capacity(g.len());
    let mut at: Vec<Place> = Vec::with_capacity(g.len());
    let mut roots = Vec::new();
    for id in g.node_ids() {
        let n = g.node(id);
        let inputs = g.inputs(id);
        let place = if !has_host || named(&n.op) || inputs.is_empty() {
            Place::Target
        } else if n.device == Device::Host {
            Place::Host
        } else {
            let ins: Vec<Option<crate::shape::Shape>> =
                inputs.iter().map(|i| eg[ids[i.index()]].data.shape.clone()).collect();
            let supported = match (node_shape(&n.op, &ins), ins.iter().map(Option::as_ref).collect::<Option<Vec<_>>>())
            {
                (Some(out), Some(ins)) => eg.analysis.cost.supports(&n.op, &ins, &out),
                _ => true,
            };
            if supported {
                Place::Target
            } else {
                Place::Host
            }
        };
        let children: Vec<Id> = inputs
            .iter()
            .map(|i| {
                let c = ids[i.index()];
                match (at[i.index()], place) {
                    (Place::Target, Place::Host) => eg.add(ENode::transfer(Place::ToHost, c)),
                    (Place::Host, Place::Target) => eg.add(ENode::transfer(Place::ToTarget, c)),
                    _ => c,
                }
            })
            .collect();
        let w = weighted(&n.op).then(|| WRef::Node(n.name.clone()));
        let name = named(&n.op).then(|| n.name.clone());
        let e = eg.add(ENode::placed(n.op.clone(), w, name, place, children));
        ids.push(e);
        at.push(place);
        if n.op.is_sink() {
            roots.push(e);
        }
    }
    Ok(roots)
}

/// Builds the graph of the selected node per e-class reachable from `roots`, named after
/// `src` where a node keeps its name or its weights' node, with its weights evaluated from
/// `weights` (when given).
pub fn from_selection(
    eg: &EGraph,
    roots: &[Id],
    choice: &HashMap<Id, ENode>,
    src: &Graph,
    weights: Option<&Weights>,
) -> Result<(Graph, Option<Weights>)> {
    let mut g = Graph::new(src.name.clone());
    g.params = src.params.clone();
    g.meta = src.meta.clone();
    let mut out_w = weights.map(|_| Weights::default());
    let mut made: HashMap<Id, NodeId> = HashMap::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut fresh = 0usize;
    for &r in roots {
        build(eg, eg.find(r), choice, src, weights, &mut g, &mut out_w, &mut made, &mut used, &mut fresh, 0)?;
    }
    Ok((g, out_w))
}

#[allow(clippy::too_many_arguments)]
fn build(
    eg: &EGraph,
    class: Id,
    choice: &HashMap<Id, ENode>,
    src: &Graph,
    weights: Option<&Weights>,
    g: &mut Graph,
    out_w: &mut Option<Weights>,
    made: &mut HashMap<Id, NodeId>,
    used: &mut BTreeSet<String>,
    fresh: &mut usize,
    depth: usize,
) -> Result<NodeId> {
    if let Some(&n) = made.get(&class) {
        return Ok(n);
    }
    if depth > 100_000 {
        return Err(err("extraction: the selection has a cycle"));
    }
    let node = choice.get(&class).ok_or_else(|| err(format!("extraction chose nothing for e-class {class}")))?;
    if node.place.is_transfer() {
        // The graph carries placement on its nodes; a transfer is where they differ.
        let id = build(eg, eg.find(node.children[0]), choice, src, weights, g, out_w, made, used, fresh, depth + 1)?;
        made.insert(class, id);
        return Ok(id);
    }
    let mut inputs = Vec::with_capacity(node.children.len());
    for &c in &node.children {
        inputs.push(build(eg, eg.find(c), choice, src, weights, g, out_w, made, used, fresh, depth + 1)?);
    }
    // Sinks were built already through another root only if shared, which they are not.
    // Named after the original node whose weights it carries (a folded or padded conv keeps
    // its conv's name, a merged one its first part's), else after the op.
    fn root(w: &WRef) -> String {
        match w {
            WRef::Node(n) => n.clone(),
            WRef::FoldBn { conv, .. } => root(conv),
            WRef::PadKernel { inner, .. } => root(inner),
            WRef::Concat(parts) => format!("{}+merged", parts.first().map(root).unwrap_or_default()),
        }
    }
    let wanted = match (&node.name, &node.w) {
        (Some(n), _) => n.clone(),
        (None, Some(w)) => root(w),
        _ => format!("rw.{}", node.op.name()),
    };
    let name = if used.contains(&wanted) {
        loop {
            *fresh += 1;
            let c = format!("{wanted}.{fresh}");
            if !used.contains(&c) {
                break c;
            }
        }
    } else {
        wanted
    };
    used.insert(name.clone());
    let id = g.add(name.clone(), node.op.clone(), &inputs)?;
    if node.place == Place::Host {
        g.node_mut(id).device = Device::Host;
    }
    if let (Some(w), Some(src_w), Some(wref)) = (out_w.as_mut(), weights, &node.w) {
        let tensors = eval(wref, src, src_w)?;
        w.tensors.insert(name, tensors);
    }
    made.insert(class, id);
    Ok(id)
}

/// The tensors a weight reference stands for.
pub fn eval(w: &WRef, src: &Graph, weights: &Weights) -> Result<BTreeMap<String, Tensor>> {
    match w {
        WRef::Node(n) => weights.tensors.get(n).cloned().ok_or_else(|| err(format!("no weights for node `{n}`"))),
        WRef::FoldBn { conv, bn } => {
            let mut t = eval(conv, src, weights)?;
            let bn_node = src.find(bn).ok_or_else(|| err(format!("no batch norm `{bn}`")))?;
            let Op::BatchNorm(b) = &src.node(bn_node).op else {
                return Err(err(format!("`{bn}` is not a batch norm")));
            };
            let get = |n: &str| weights.get(bn, n).map(|t| t.data.clone());
            let (gm, bt, mn, vr) = (get("gamma")?, get("beta")?, get("mean")?, get("var")?);
            let scale: Vec<f32> = (0..gm.len()).map(|k| gm[k] / (vr[k] + b.epsilon).sqrt()).collect();
            let weight = t.get_mut("weight").ok_or_else(|| err("folded conv has no weight"))?;
            let per = weight.data.len() / scale.len();
            for (k, chunk) in weight.data.chunks_mut(per).enumerate() {
                chunk.iter_mut().for_each(|v| *v *= scale[k]);
            }
            let bias = match t.get("bias") {
                Some(b) => b.data.clone(),
                None => vec![0.0; scale.len()],
            };
            let folded: Vec<f32> = (0..scale.len()).map(|k| bias[k] * scale[k] + bt[k] - mn[k] * scale[k]).collect();
            t.insert("bias".into(), Tensor::new(vec![scale.len()], folded).ok_or_else(|| err("folded bias"))?);
            Ok(t)
        }
        WRef::PadKernel { inner, from, to } => {
            let mut t = eval(inner, src, weights)?;
            let w = t.get("weight").ok_or_else(|| err("padded conv has no weight"))?;
            let (co, ci) = (w.shape[0], w.shape[1]);
            let (oy, ox) = ((to[0] - from[0]) / 2, (to[1] - from[1]) / 2);
            let mut data = vec![0.0f32; co * ci * to[0] * to[1]];
            for o in 0..co * ci {
                for y in 0..from[0] {
                    for x in 0..from[1] {
                        data[(o * to[0] + y + oy) * to[1] + x + ox] = w.data[(o * from[0] + y) * from[1] + x];
                    }
                }
            }
            t.insert(
                "weight".into(),
                Tensor::new(vec![co, ci, to[0], to[1]], data).ok_or_else(|| err("padded kernel"))?,
            );
            Ok(t)
        }
        WRef::Concat(parts) => {
            let ts: Vec<BTreeMap<String, Tensor>> =
                parts.iter().map(|p| eval(p, src, weights)).collect::<Result<_>>()?;
            let mut out = BTreeMap::new();
            for name in ["weight", "bias"] {
                let present: Vec<&Tensor> = ts.iter().filter_map(|t| t.get(name)).collect();
                if present.is_empty() {
                    continue;
                }
                if present.len() != ts.len() {
                    return Err(err("merged convolutions disagree on having a bias"));
                }
                let mut shape = present[0].shape.clone();
                shape[0] = present.iter().map(|t| t.shape[0]).sum();
                let data: Vec<f32> = present.iter().flat_map(|t| t.data.iter().copied()).collect();
                out.insert(name.to_string(), Tensor::new(shape, data).ok_or_else(|| err("merged weights"))?);
            }
            Ok(out)
        }
    }
}
