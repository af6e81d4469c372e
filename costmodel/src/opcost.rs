//! The cost model as the rewriter's per-op cost ([`nasc_ir::rewrite::NodeCost`]): one op,
//! priced as the kernel it forms on its own, cached by op and shapes.

use std::collections::HashMap;
use std::sync::Mutex;

use nasc_ir::op::{Input, Op};
use nasc_ir::rewrite::NodeCost;
use nasc_ir::{Graph, Shape};

use crate::analytic::Model;
use crate::kernel::{fuse, Class};

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

    fn price(&self, op: &Op, inputs: &[&Shape]) -> f64 {
        let mut g = Graph::new("op");
        let mut ins = Vec::new();
        for (k, s) in inputs.iter().enumerate() {
            match g.add(format!("in{k}"), Op::Input(Input { shape: s.to_vec() }), &[]) {
                Ok(id) => ins.push(id),
                Err(_) => return 0.0,
            }
        }
        if g.add("op", op.clone(), &ins).is_err() {
            return 0.0;
        }
        let Ok(shapes) = g.infer_shapes() else { return 0.0 };
        let (kernels, _) = fuse(&g, &shapes);
        kernels
            .iter()
            .filter(|k| !matches!(g.node(k.anchor).op, Op::Input(_)) && k.class != Class::Free)
            .map(|k| self.model.kernel(k).latency_s * 1e3)
            .sum()
    }
}

impl NodeCost for OpCost {
    fn cost(&self, op: &Op, inputs: &[&Shape], _output: &Shape) -> f64 {
        // Sinks, gates and choices cost the same in every equivalent graph.
        if matches!(op, Op::Input(_) | Op::Output | Op::Exit(_) | Op::Gate(_) | Op::Choice(_)) {
            return 0.0;
        }
        let key = format!("{}|{inputs:?}", serde_json::to_string(op).unwrap_or_default());
        if let Some(&c) = self.cache.lock().expect("cache lock").get(&key) {
            return c;
        }
        let c = self.price(op, inputs);
        self.cache.lock().expect("cache lock").insert(key, c);
        c
    }
}
