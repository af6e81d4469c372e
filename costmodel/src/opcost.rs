//! The cost model as the rewriter's per-op cost ([`nasc_ir::rewrite::NodeCost`]): one op,
//! priced as the kernel it forms on its own, cached by op and shapes.

use std::collections::HashMap;
use std::sync::Mutex;

use nasc_ir::op::{Input, Op};
use nasc_ir::rewrite::NodeCost;
use nasc_ir::shape::numel;
use nasc_ir::{Graph, Shape};

use crate::analytic::Model;
use crate::kernel::{fuse, Class, Kernel};

/// A target's analytic model pricing single ops for extraction, in milliseconds.
pub struct OpCost {
    model: Model,
    cache: Mutex<HashMap<String, f64>>,
}

impl OpCost {
    /// Prices ops with this model (calibrated or not).
    pub fn new(model: Model) -> OpCost {
        OpCost { model, cache: Mutex::new(HashMap::new()) }
    }

    /// The kernels `op` forms on its own over inputs of these shapes.
    fn kernels(op: &Op, inputs: &[&Shape]) -> Vec<Kernel> {
        let mut g = Graph::new("op");
        let mut ins = Vec::new();
        for (k, s) in inputs.iter().enumerate() {
            match g.add(format!("in{k}"), Op::Input(Input { shape: s.to_vec() }), &[]) {
                Ok(id) => ins.push(id),
                Err(_) => return Vec::new(),
            }
        }
        if g.add("op", op.clone(), &ins).is_err() {
            return Vec::new();
        }
        let Ok(shapes) = g.infer_shapes() else { return Vec::new() };
        let (kernels, _) = fuse(&g, &shapes);
        kernels.into_iter().filter(|k| !matches!(g.node(k.anchor).op, Op::Input(_)) && k.class != Class::Free).collect()
    }

    /// `op`'s latency on the target (`host` false) or on an NPU's host, cached.
    fn cached(&self, op: &Op, inputs: &[&Shape], host: bool) -> f64 {
        // Sinks, gates and choices cost the same in every equivalent graph.
        if matches!(op, Op::Input(_) | Op::Output | Op::Exit(_) | Op::Gate(_) | Op::Choice(_)) {
            return 0.0;
        }
        let key = format!("{}|{inputs:?}|{host}", serde_json::to_string(op).unwrap_or_default());
        if let Some(&c) = self.cache.lock().expect("cache lock").get(&key) {
            return c;
        }
        let c = Self::kernels(op, inputs)
            .iter()
            .map(|k| match if host { self.model.host_kernel(k) } else { None } {
                Some(h) => h.latency_s * 1e3,
                None => self.model.kernel(k).latency_s * 1e3,
            })
            .sum();
        self.cache.lock().expect("cache lock").insert(key, c);
        c
    }
}

impl NodeCost for OpCost {
    fn cost(&self, op: &Op, inputs: &[&Shape], _output: &Shape) -> f64 {
        self.cached(op, inputs, false)
    }

    fn has_host(&self) -> bool {
        self.model.host.is_some()
    }

    fn supports(&self, op: &Op, inputs: &[&Shape], _output: &Shape) -> bool {
        Self::kernels(op, inputs).iter().all(|k| self.model.runs_on_target(k))
    }

    fn host_cost(&self, op: &Op, inputs: &[&Shape], _output: &Shape) -> f64 {
        self.cached(op, inputs, true)
    }

    fn transfer_cost(&self, shape: &Shape, to_host: bool) -> f64 {
        self.model.transfer(numel(shape) as u64, to_host).latency_s * 1e3
    }
}
