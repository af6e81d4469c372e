//! Rewriting with the target's cost model: equality saturation in `nasc_ir::rewrite`,
//! extraction priced by `nasc_costmodel::opcost::OpCost`, and the whole-network cost model's
//! verdict before and after.

use anyhow::Result;
use nasc_costmodel::opcost::OpCost;
use nasc_costmodel::{cost, Model};
use nasc_ir::rewrite::{self, Limits, Report};
use nasc_ir::{Graph, Weights};
use serde::Serialize;

/// A rewritten graph, its weights and what happened.
#[derive(Debug)]
pub struct Optimized {
    /// The extracted graph (the input itself when extraction found nothing cheaper).
    pub graph: Graph,
    /// Its weights, derived from the input's (when the input's were given).
    pub weights: Option<Weights>,
    /// The saturation and extraction report, with the network-level prediction.
    pub report: OptimizeReport,
}

/// [`Report`] plus the cost model's whole-network latency before and after.
#[derive(Clone, Debug, Serialize)]
pub struct OptimizeReport {
    /// The target.
    pub target: String,
    /// Saturation and extraction.
    #[serde(flatten)]
    pub rewrite: Report,
    /// Predicted latency of the input graph (ms), the whole-network model.
    pub latency_before_ms: f64,
    /// Predicted latency of the result (ms).
    pub latency_after_ms: f64,
    /// Whether the input was kept because the extracted graph was not predicted faster.
    pub kept_input: bool,
}

/// Optimises a concrete graph for `model`'s target.
pub fn optimize(g: &Graph, weights: Option<&Weights>, model: &Model, limits: &Limits) -> Result<Optimized> {
    let (mut out, mut out_w, mut report) = rewrite::optimize(g, weights, Box::new(OpCost::new(model.clone())), limits)?;
    let before = cost(g, model)?.latency_ms;
    let mut after = cost(&out, model)?.latency_ms;
    // Extraction prices ops one by one; the whole-network model fuses kernels and can disagree
    // about a merged convolution (a wider kernel plus slices). When it does, try again
    // without merging.
    // Equal up to rounding counts as equal (the model sums the same kernels in another order).
    let worse = |a: f64| a > before * (1.0 + 1e-9);
    if worse(after) && limits.merge_matches > 0 {
        let no_merge = Limits { merge_matches: 0, ..limits.clone() };
        let (o2, w2, r2) = rewrite::optimize(g, weights, Box::new(OpCost::new(model.clone())), &no_merge)?;
        let a2 = cost(&o2, model)?.latency_ms;
        if a2 < after {
            (out, out_w, report, after) = (o2, w2, r2, a2);
        }
    }
    // The per-op extraction cost and the fused whole-network model can disagree at the margin;
    // never hand back a graph the model predicts slower.
    let kept_input = worse(after);
    let (graph, weights, latency_after_ms) =
        if kept_input { (g.clone(), weights.cloned(), before) } else { (out, out_w, after) };
    Ok(Optimized {
        graph,
        weights,
        report: OptimizeReport {
            target: model.target.name.clone(),
            rewrite: report,
            latency_before_ms: before,
            latency_after_ms,
            kept_input,
        },
    })
}
