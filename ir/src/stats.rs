//! Multiply-accumulates and parameter counts, per node and per graph.
//!
//! MACs follow the counting of the public data sets the project validates against
//! (HW-NAS-Bench / NAS-Bench-201): every convolution `k_h·k_w·(C_in/g)·C_out·H_out·W_out`
//! (grouped and depthwise included), dense `C_in·C_out` per batch row, window pooling one MAC
//! per element read by a window `k_h·k_w·C·H_out·W_out` (also where padding is excluded from
//! the average), global average pooling `C·H·W`. BatchNorm, activations, additions, products,
//! shuffles, concat and identities count zero. Parameters are learnable values: conv and dense
//! weights and biases, BatchNorm's γ and β.

use crate::error::Result;
use crate::graph::Graph;
use crate::op::Op;
use crate::shape::{numel, Shape};

/// MACs of one node given its input shapes and output shape.
pub fn op_macs(op: &Op, ins: &[&Shape], out: &Shape) -> u64 {
    match op {
        Op::Conv2d(c) => {
            let cin = ins[0][1];
            let g = c.groups.resolve(cin);
            (c.kernel[0] * c.kernel[1] * (cin / g)) as u64 * numel(out) as u64
        }
        Op::Dense(_) => (ins[0][1] * out[1] * out[0]) as u64,
        Op::AvgPool(p) | Op::MaxPool(p) => (p.kernel[0] * p.kernel[1]) as u64 * numel(out) as u64,
        Op::GlobalAvgPool => numel(ins[0]) as u64,
        _ => 0,
    }
}

/// Learnable parameters of one node given its input shapes and output shape.
pub fn op_params(op: &Op, ins: &[&Shape], out: &Shape) -> u64 {
    match op {
        Op::Conv2d(c) => {
            let cin = ins[0][1];
            let g = c.groups.resolve(cin);
            let cout = out[1];
            (cout * (cin / g) * c.kernel[0] * c.kernel[1] + if c.bias { cout } else { 0 }) as u64
        }
        Op::Dense(d) => (ins[0][1] * d.out_features + if d.bias { d.out_features } else { 0 }) as u64,
        Op::BatchNorm(_) => 2 * ins[0][1] as u64,
        _ => 0,
    }
}

/// Per-node statistics of a concrete graph.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeStats {
    /// Output shape.
    pub shape: Shape,
    /// MACs.
    pub macs: u64,
    /// Parameters.
    pub params: u64,
}

/// Statistics of every node of a concrete graph, in node order.
pub fn node_stats(graph: &Graph) -> Result<Vec<NodeStats>> {
    let shapes = graph.infer_shapes()?;
    Ok(graph
        .node_ids()
        .map(|id| {
            let ins: Vec<&Shape> = graph.inputs(id).iter().map(|i| &shapes[i.index()]).collect();
            let op = &graph.node(id).op;
            let out = &shapes[id.index()];
            NodeStats { shape: out.clone(), macs: op_macs(op, &ins, out), params: op_params(op, &ins, out) }
        })
        .collect())
}

/// Total MACs and parameters of a concrete graph (every node, exit heads and gated blocks
/// included).
pub fn totals(graph: &Graph) -> Result<(u64, u64)> {
    let s = node_stats(graph)?;
    // Saturating: every node's count fits (shapes are bounded, [`crate::shape::MAX_ELEMENTS`]),
    // a sum of many maximal ones might not.
    let sum = |f: fn(&NodeStats) -> u64| s.iter().map(f).fold(0u64, u64::saturating_add);
    Ok((sum(|n| n.macs), sum(|n| n.params)))
}
