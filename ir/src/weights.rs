//! Weights of a concrete graph, kept apart from the graph: node name → named tensors.
//!
//! Names and shapes per op:
//! - `conv2d`: `weight` `[C_out, C_in/groups, k_h, k_w]`, `bias` `[C_out]` when it has one;
//! - `batchnorm`: `gamma`, `beta`, `mean`, `var`, each `[C]`;
//! - `dense`: `weight` `[out, in]`, `bias` `[out]` when it has one.
//!
//! [`Weights::random`] generates them deterministically from a seed and each node's name, so
//! one node's weights do not change when other nodes are added or removed.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{IrError, Result};
use crate::graph::Graph;
use crate::op::Op;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Weight tensors by node name, then by tensor name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights {
    /// node name → tensor name → tensor
    pub tensors: BTreeMap<String, BTreeMap<String, Tensor>>,
}

/// The weight tensors an op needs, by name and shape, given its input shape.
pub fn weight_shapes(op: &Op, input: &Shape) -> Vec<(&'static str, Shape)> {
    match op {
        Op::Conv2d(c) => {
            let cin = input[1];
            let g = c.groups.resolve(cin);
            let cout = c.resolve_out(cin);
            let mut v = vec![("weight", vec![cout, cin / g, c.kernel[0], c.kernel[1]])];
            if c.bias {
                v.push(("bias", vec![cout]));
            }
            v
        }
        Op::BatchNorm(_) => ["gamma", "beta", "mean", "var"].iter().map(|&n| (n, vec![input[1]])).collect(),
        Op::Dense(d) => {
            let mut v = vec![("weight", vec![d.out_features, input[1]])];
            if d.bias {
                v.push(("bias", vec![d.out_features]));
            }
            v
        }
        _ => Vec::new(),
    }
}

/// 64-bit FNV-1a, a stable hash for deriving per-node seeds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

impl Weights {
    /// Deterministic random weights for every weighted node of a concrete graph:
    /// He-uniform conv/dense weights, small biases, BatchNorm statistics near identity.
    pub fn random(graph: &Graph, seed: u64) -> Result<Weights> {
        let shapes = graph.infer_shapes()?;
        let mut w = Weights::default();
        for id in graph.node_ids() {
            let node = graph.node(id);
            if !node.op.has_weights() {
                continue;
            }
            let input = &shapes[graph.inputs(id)[0].index()];
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(node.name.as_bytes()));
            let mut map = BTreeMap::new();
            for (name, shape) in weight_shapes(&node.op, input) {
                let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
                let t = match name {
                    "weight" => {
                        let bound = (6.0 / fan_in as f32).sqrt();
                        Tensor::from_fn(&shape, |_| rng.gen_range(-bound..bound))
                    }
                    "bias" | "beta" | "mean" => Tensor::from_fn(&shape, |_| rng.gen_range(-0.1..0.1)),
                    "gamma" | "var" => Tensor::from_fn(&shape, |_| rng.gen_range(0.5..1.5)),
                    _ => unreachable!("weight_shapes only names weight, bias and batchnorm tensors"),
                };
                map.insert(name.to_string(), t);
            }
            w.tensors.insert(node.name.clone(), map);
        }
        Ok(w)
    }

    /// The tensor `name` of node `node`.
    pub fn get(&self, node: &str, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(node)
            .and_then(|m| m.get(name))
            .ok_or_else(|| IrError::Weights { node: node.into(), message: format!("tensor `{name}` is missing") })
    }

    /// Checks that every weighted node of a concrete graph has all its tensors with the right
    /// shapes.
    pub fn check(&self, graph: &Graph) -> Result<()> {
        let shapes = graph.infer_shapes()?;
        for id in graph.node_ids() {
            let node = graph.node(id);
            if !node.op.has_weights() {
                continue;
            }
            let input = &shapes[graph.inputs(id)[0].index()];
            for (name, shape) in weight_shapes(&node.op, input) {
                let t = self.get(&node.name, name)?;
                if t.shape != shape {
                    return Err(IrError::Weights {
                        node: node.name.clone(),
                        message: format!("tensor `{name}` has shape {:?}, expected {shape:?}", t.shape),
                    });
                }
            }
        }
        Ok(())
    }
}
