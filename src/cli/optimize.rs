//! `nasc optimize`: rewrite a concrete model by equality saturation and extract the cheapest
//! equivalent graph for a target.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use nasc::ir::rewrite::Limits;

use super::model::{ModelArgs, WeightArgs};

/// Saturation limits, shared by `nasc optimize` and `nasc cost --optimize`.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Stop saturating at this many e-nodes.
    #[arg(long, default_value_t = 20_000)]
    pub node_limit: usize,
    /// Stop after this many iterations.
    #[arg(long, default_value_t = 12)]
    pub iter_limit: usize,
    /// Stop after this many milliseconds.
    #[arg(long, default_value_t = 800)]
    pub time_limit_ms: u64,
    /// Matches per iteration of the parallel-convolution merge (0 turns it off).
    #[arg(long, default_value_t = 16)]
    pub merge_matches: usize,
    /// After greedy DAG extraction, solve the exact extraction ILP for at most this many
    /// milliseconds and keep its graph when it is cheaper.
    #[arg(long, value_name = "MS")]
    pub ilp_ms: Option<u64>,
}

impl LimitArgs {
    /// The limits.
    pub fn limits(&self) -> Limits {
        Limits {
            nodes: self.node_limit,
            iterations: self.iter_limit,
            time: Duration::from_millis(self.time_limit_ms),
            merge_matches: self.merge_matches,
            ilp_time: self.ilp_ms.map(Duration::from_millis),
        }
    }
}

/// Options of `nasc optimize`.
#[derive(Args, Debug)]
pub struct Options {
    #[command(flatten)]
    model: ModelArgs,
    /// Target whose cost model prices the extraction (built-in name or .toml path).
    #[arg(long, short)]
    target: String,
    /// A calibrated profile for the target: a file, or `builtin:<target>/<data>` for one shipped in `profiles/`.
    #[arg(long, value_name = "PROFILE.json")]
    profile: Option<PathBuf>,
    #[command(flatten)]
    weights: WeightArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// The optimised graph (nasc JSON).
    #[arg(short, long, value_name = "OUT.json")]
    output: PathBuf,
    /// Its weights (safetensors; folded and merged weights are derived from the input's).
    #[arg(long, value_name = "FILE.safetensors")]
    weights_out: Option<PathBuf>,
    /// Write the report (JSON) here.
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,
}

pub fn run(o: Options) -> Result<()> {
    let model = nasc::profiles::target_model(&o.target, o.profile.as_deref())?;
    let (g, w) = o.model.load_concrete_with_weights()?;
    let w = o.weights.resolve(&g, w)?;
    let r = nasc::optimize::optimize(&g, Some(&w), &model, &o.limits.limits())?;
    // Everything is computed before anything is written.
    let graph_json = r.graph.to_json();
    let report_json = serde_json::to_string_pretty(&r.report)?;
    let weights_bytes = match (&o.weights_out, &r.weights) {
        (Some(_), Some(w)) => Some(nasc::io::weights_to_safetensors(w)?),
        _ => None,
    };
    nasc::io::write_atomic(&o.output, graph_json.as_bytes())?;
    if let (Some(p), Some(b)) = (&o.weights_out, weights_bytes) {
        nasc::io::write_atomic(p, &b)?;
    }
    if let Some(p) = &o.report {
        nasc::io::write_atomic(p, report_json.as_bytes())?;
    }
    let rep = &r.report;
    let fired: Vec<String> =
        rep.rewrite.rules_fired.iter().filter(|(_, &n)| n > 0).map(|(k, n)| format!("{k} ×{n}")).collect();
    let mut out = format!(
        "`{}` on {}: predicted {:.4} ms → {:.4} ms ({:+.1} %){}\n",
        g.name,
        rep.target,
        rep.latency_before_ms,
        rep.latency_after_ms,
        100.0 * (rep.latency_after_ms / rep.latency_before_ms - 1.0),
        if rep.kept_input { "; kept the input (the extraction was not predicted faster)" } else { "" }
    );
    out += &format!(
        "{} → {} nodes; e-graph {} nodes in {} classes after {} iterations ({}), {:.3} s saturating, {:.3} s extracting\n",
        rep.rewrite.graph_nodes_before,
        rep.rewrite.graph_nodes_after,
        rep.rewrite.egraph_nodes,
        rep.rewrite.egraph_classes,
        rep.rewrite.iterations,
        rep.rewrite.stop_reason,
        rep.rewrite.saturate_s,
        rep.rewrite.extract_s
    );
    out += &format!("rules fired: {}\n", if fired.is_empty() { "none".into() } else { fired.join(", ") });
    if let Some(status) = &rep.rewrite.ilp {
        out += &format!(
            "extraction: greedy DAG {:.6} ms, ILP ({}) {:.6} ms\n",
            rep.rewrite.cost_greedy,
            serde_json::to_value(status)?.as_str().unwrap_or("?"),
            rep.rewrite.cost_after
        );
    }
    out += &format!("wrote {}\n", o.output.display());
    if let Some(p) = &o.weights_out {
        out += &format!("wrote {}\n", p.display());
    }
    super::emit(&out)
}
