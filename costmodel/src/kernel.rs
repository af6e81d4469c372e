//! Fusion of a concrete graph into kernels: the units a runtime launches and the cost model
//! prices.
//!
//! A convolution or dense node absorbs the BatchNorm and the activation that follow it when
//! it is their only producer and they its only consumer (what every inference runtime does:
//! BN folds into the weights, the activation into the epilogue). Every other op with work is a
//! kernel of its own. `input`, `output`, `identity`, `flatten` and `gate` move no data and are
//! free; an `exit` is a decision kernel (softmax statistic and compare on the scores).

use nasc_ir::op::{GateDecision, Groups, Op};
use nasc_ir::shape::numel;
use nasc_ir::{stats, Graph, NodeId, Precision, Shape};

/// What kind of work a kernel does; selects its efficiency and mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Dense k×k convolution (k > 1, groups 1).
    Conv,
    /// 1×1 convolution, groups 1.
    Pointwise,
    /// Depthwise convolution.
    Depthwise,
    /// Grouped convolution (1 < groups < channels).
    Grouped,
    /// Fully connected.
    Dense,
    /// Window pooling.
    Pool,
    /// Global average pooling.
    GlobalPool,
    /// Elementwise or data movement (BN, activations, add, mul, concat, shuffle, zero, …).
    Elementwise,
    /// An exit's decision: softmax statistic of the scores and a compare.
    ExitDecision,
    /// Free: no data moves (identity, flatten, gate, input, output).
    Free,
}

/// Geometry of a convolution-like kernel (also pools and dense, as 1×1 on 1×1 maps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Geometry {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Groups.
    pub groups: usize,
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Input `[H, W]`.
    pub input_hw: [usize; 2],
    /// Output `[H, W]`.
    pub output_hw: [usize; 2],
}

/// A fused kernel.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Kernel {
    /// Name of the anchor node.
    pub name: String,
    /// The op names fused, anchor first (`conv2d+batchnorm+relu`).
    pub ops: String,
    /// Anchor node.
    #[serde(skip)]
    pub anchor: NodeId,
    /// Every node in the kernel (anchor first); its output is the last one's.
    #[serde(skip)]
    pub nodes: Vec<NodeId>,
    /// Class of work.
    pub class: Class,
    /// Geometry, for convolution-like kernels.
    pub geometry: Option<Geometry>,
    /// Multiply-accumulates (the HW-NAS-Bench count).
    pub macs: u64,
    /// Learnable parameters.
    pub params: u64,
    /// Elements read from activations (every input tensor).
    pub in_elems: u64,
    /// Elements of weights read.
    pub weight_elems: u64,
    /// Elements written.
    pub out_elems: u64,
    /// Output shape.
    pub out_shape: Shape,
    /// Elementwise operations beyond MACs (standalone elementwise work, fused epilogues).
    pub elementwise_ops: u64,
    /// The arithmetic of its anchor node ([`nasc_ir::Precision`]; int8 only on a convolution
    /// or dense layer).
    pub precision: Precision,
}

fn classify(op: &Op, ins: &[&Shape]) -> Class {
    match op {
        Op::Conv2d(c) => {
            let cin = ins[0][1];
            let g = c.groups.resolve(cin);
            let cout = c.resolve_out(cin);
            let declared_depthwise = matches!(c.groups, Groups::Depthwise(_));
            if declared_depthwise || (g == cin && g > 1 && cout % cin == 0) {
                Class::Depthwise
            } else if g == 1 {
                if c.kernel == [1, 1] {
                    Class::Pointwise
                } else {
                    Class::Conv
                }
            } else {
                Class::Grouped
            }
        }
        Op::Dense(_) => Class::Dense,
        Op::AvgPool(_) | Op::MaxPool(_) => Class::Pool,
        Op::GlobalAvgPool => Class::GlobalPool,
        Op::Exit(_) => Class::ExitDecision,
        Op::Input(_) | Op::Output | Op::Identity | Op::Flatten | Op::Gate(_) | Op::Choice(_) => Class::Free,
        _ => Class::Elementwise,
    }
}

fn geometry(op: &Op, ins: &[&Shape], out: &Shape) -> Option<Geometry> {
    let s = ins.first()?;
    match op {
        Op::Conv2d(c) => Some(Geometry {
            cin: s[1],
            cout: out[1],
            groups: c.groups.resolve(s[1]),
            kernel: c.kernel,
            stride: c.stride,
            input_hw: [s[2], s[3]],
            output_hw: [out[2], out[3]],
        }),
        Op::AvgPool(p) | Op::MaxPool(p) => Some(Geometry {
            cin: s[1],
            cout: out[1],
            groups: s[1],
            kernel: p.kernel,
            stride: p.stride,
            input_hw: [s[2], s[3]],
            output_hw: [out[2], out[3]],
        }),
        Op::GlobalAvgPool => Some(Geometry {
            cin: s[1],
            cout: s[1],
            groups: s[1],
            kernel: [s[2], s[3]],
            stride: [1, 1],
            input_hw: [s[2], s[3]],
            output_hw: [1, 1],
        }),
        Op::Dense(d) => Some(Geometry {
            cin: s[1],
            cout: d.out_features,
            groups: 1,
            kernel: [1, 1],
            stride: [1, 1],
            input_hw: [1, 1],
            output_hw: [1, 1],
        }),
        _ => None,
    }
}

/// Fuses a concrete, validated graph into kernels, in execution order. Returns the kernels and,
/// for every node, the index of the kernel it belongs to.
pub fn fuse(graph: &Graph, shapes: &[Shape]) -> (Vec<Kernel>, Vec<usize>) {
    let n = graph.len();
    let uses: Vec<usize> = {
        let mut u = vec![0; n];
        for id in graph.node_ids() {
            for &i in graph.inputs(id) {
                u[i.index()] += 1;
            }
        }
        u
    };
    let consumers: Vec<Vec<NodeId>> = graph.node_ids().map(|id| graph.consumers(id)).collect();
    let mut owner = vec![usize::MAX; n];
    let mut kernels = Vec::new();
    for id in graph.node_ids() {
        if owner[id.index()] != usize::MAX {
            continue;
        }
        let node = graph.node(id);
        let ins: Vec<&Shape> = graph.inputs(id).iter().map(|i| &shapes[i.index()]).collect();
        let out = &shapes[id.index()];
        let mut nodes = vec![id];
        if matches!(node.op, Op::Conv2d(_) | Op::Dense(_)) {
            let mut last = id;
            let mut seen_bn = false;
            let mut seen_act = match &node.op {
                Op::Conv2d(c) => c.act.is_some(),
                Op::Dense(d) => d.act.is_some(),
                _ => false,
            };
            loop {
                if uses[last.index()] != 1 {
                    break;
                }
                let next = consumers[last.index()][0];
                let op = &graph.node(next).op;
                if graph.node(next).device != node.device {
                    break;
                }
                let fuse_bn = matches!(op, Op::BatchNorm(_)) && !seen_bn && !seen_act;
                let fuse_act = op.as_activation().is_some() && !seen_act;
                if !(fuse_bn || fuse_act) {
                    break;
                }
                seen_bn |= fuse_bn;
                seen_act |= fuse_act;
                nodes.push(next);
                last = next;
            }
        }
        let class = classify(&node.op, &ins);
        let last = *nodes.last().expect("a kernel has a node");
        let (macs, params) = nodes.iter().fold((0u64, 0u64), |(m, p), &x| {
            let xi: Vec<&Shape> = graph.inputs(x).iter().map(|i| &shapes[i.index()]).collect();
            let xo = &shapes[x.index()];
            let op = &graph.node(x).op;
            (m.saturating_add(stats::op_macs(op, &xi, xo)), p.saturating_add(stats::op_params(op, &xi, xo)))
        });
        let in_elems: u64 = match &node.op {
            Op::Gate(g) => {
                // The gate itself reads nothing; its logit is read by the decision.
                if matches!(g.decision, GateDecision::Logit) {
                    1
                } else {
                    0
                }
            }
            Op::Zero => 0,
            _ if class == Class::Free => 0,
            _ => ins.iter().map(|s| numel(s) as u64).sum(),
        };
        let weight_elems: u64 = match &node.op {
            Op::Conv2d(_) | Op::Dense(_) => params,
            Op::BatchNorm(_) => 4 * ins[0][1] as u64,
            _ => 0,
        };
        let out_elems =
            if class == Class::Free || class == Class::ExitDecision { 0 } else { numel(&shapes[last.index()]) as u64 };
        // A conv or dense carrying its activation (after rewriting) names it too: an NPU runs
        // the kernel only if it runs that activation.
        let fused_act = match &node.op {
            Op::Conv2d(c) => c.act,
            Op::Dense(d) => d.act,
            _ => None,
        };
        // Fused elementwise work counts the same whether an activation is a node of its own
        // or carried by the conv (`Op::elementwise_weight`).
        let weight = |x: NodeId| graph.node(x).op.elementwise_weight();
        let elementwise_ops = match class {
            Class::Elementwise => numel(out) as u64 * ins.len().max(1) as u64 * weight(nodes[0]),
            Class::ExitDecision => 3 * numel(out) as u64,
            _ => {
                let fused: u64 = nodes[1..].iter().map(|&x| weight(x)).sum::<u64>()
                    + fused_act.map_or(0, |a| a.elementwise_weight());
                fused * numel(&shapes[last.index()]) as u64
            }
        };
        let ops = std::iter::once(node.op.name())
            .chain(fused_act.map(|a| a.name()))
            .chain(nodes[1..].iter().map(|&x| graph.node(x).op.name()))
            .collect::<Vec<_>>()
            .join("+");
        let k = kernels.len();
        for &x in &nodes {
            owner[x.index()] = k;
        }
        kernels.push(Kernel {
            name: node.name.clone(),
            ops,
            anchor: id,
            geometry: geometry(&node.op, &ins, out),
            nodes,
            class,
            macs,
            params,
            in_elems,
            weight_elems,
            out_elems,
            out_shape: shapes[last.index()].clone(),
            elementwise_ops,
            precision: match node.precision {
                Precision::Int8 if !matches!(node.op, Op::Conv2d(_) | Op::Dense(_)) => Precision::F32,
                p => p,
            },
        });
    }
    (kernels, owner)
}
