//! Graph rewriting by equality saturation (egg), extracted by DAG cost.
//!
//! [`optimize`] converts a concrete graph into an e-graph ([`convert`]), saturates it with the
//! rule families of [`rules`] under explicit node, iteration and time limits (the
//! multi-pattern merge rule with its own match budget), extracts the cheapest graph by DAG cost
//! under a target's per-op cost ([`NodeCost`], implemented by the cost model) with
//! [`extract::greedy_dag`] (and, when asked, the exact [`extract::ilp`] under a time limit),
//! and converts it back with its weights. The [`Report`] says why
//! saturation stopped, how big the e-graph grew, which rules fired and the cost before and
//! after.
//!
//! Families: conv + batch-norm folding, activation fusion into conv/dense, identity and `zero`
//! elimination (NAS-Bench-201's `none` edges and everything only they feed), kernel
//! zero-padding (a k3 conv inside a k5 one), merging parallel convolutions that share an input
//! (multi-pattern), and concat/split algebra. Placement (NPU targets): an op on the target or on its host CPU, with transfer nodes that
//! extraction pays for (see [`lang::Place`]).

pub mod convert;
pub mod extract;
pub mod lang;
pub mod rules;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use egg::{BackoffScheduler, Runner, StopReason};
use serde::Serialize;

pub use lang::{ClassData, EGraph, ENode, NoCost, NodeCost, Place, Shapes, WRef};

use crate::error::Result;
use crate::graph::Graph;
use crate::weights::Weights;

/// Saturation limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Stop when the e-graph has this many nodes.
    pub nodes: usize,
    /// Stop after this many iterations.
    pub iterations: usize,
    /// Stop after this long.
    pub time: Duration,
    /// Matches per iteration of the multi-pattern merge rule (its own budget; 0 disables it).
    pub merge_matches: usize,
    /// After greedy DAG extraction, also solve the extraction ILP for at most this long and
    /// keep its selection when it is cheaper (`None`: greedy only).
    pub ilp_time: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { nodes: 20_000, iterations: 12, time: Duration::from_millis(800), merge_matches: 16, ilp_time: None }
    }
}

/// What happened: the stop reason, the e-graph's size, rules fired, costs.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Why saturation stopped: `saturated`, `iteration-limit`, `node-limit`, `time-limit`.
    pub stop_reason: String,
    /// Iterations run.
    pub iterations: usize,
    /// E-graph nodes and classes at the end.
    pub egraph_nodes: usize,
    /// E-graph classes at the end.
    pub egraph_classes: usize,
    /// Nodes and classes of the input graph's e-graph.
    pub initial_nodes: usize,
    /// How many times each rule fired (rules that never fired are listed with 0).
    pub rules_fired: BTreeMap<String, usize>,
    /// DAG cost of the input graph under the per-op cost (ms).
    pub cost_before: f64,
    /// DAG cost of the extracted graph (ms).
    pub cost_after: f64,
    /// DAG cost of the greedy extraction (ms; equal to `cost_after` unless the ILP beat it).
    pub cost_greedy: f64,
    /// How the ILP extraction ended, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ilp: Option<extract::IlpStatus>,
    /// Nodes of the input and output graphs.
    pub graph_nodes_before: usize,
    /// Nodes of the extracted graph.
    pub graph_nodes_after: usize,
    /// Wall time: saturation, extraction.
    pub saturate_s: f64,
    /// Seconds extracting and converting back.
    pub extract_s: f64,
}

/// Rewrites a graph (with its weights, when given) and extracts the cheapest equivalent one
/// under `cost`. The result computes what the input computes (the rules are equalities; the
/// property tests check each against the interpreter).
pub fn optimize(
    g: &Graph,
    weights: Option<&Weights>,
    cost: Box<dyn NodeCost>,
    limits: &Limits,
) -> Result<(Graph, Option<Weights>, Report)> {
    let all: Vec<rules::Rule> = rules::families().into_iter().flat_map(|(_, r)| r.iter().copied()).collect();
    optimize_with(g, weights, cost, limits, &all)
}

/// [`optimize`] with a chosen set of rules (tests check each rule on its own).
pub fn optimize_with(
    g: &Graph,
    weights: Option<&Weights>,
    cost: Box<dyn NodeCost>,
    limits: &Limits,
    rule_set: &[rules::Rule],
) -> Result<(Graph, Option<Weights>, Report)> {
    let t0 = Instant::now();
    let (eg, roots) = convert::to_egraph(g, cost)?;
    // The input's own selection: its e-graph before any rule, one node per class.
    let initial: std::collections::HashMap<egg::Id, ENode> = eg.classes().map(|c| (c.id, c.nodes[0].clone())).collect();
    let cost_before = extract::dag_cost(&eg, &roots, &initial);
    let initial_nodes = eg.total_number_of_nodes();
    let merge: Vec<&str> = rules::MERGE_PARALLEL.iter().map(|r| r.name).collect();
    let chosen: Vec<rules::Rule> =
        rule_set.iter().copied().filter(|r| limits.merge_matches > 0 || !merge.contains(&r.name)).collect();
    let all_rules = rules::rewrites(&chosen);
    let mut scheduler = BackoffScheduler::default();
    for r in rules::MERGE_PARALLEL {
        scheduler = scheduler.rule_match_limit(r.name, limits.merge_matches.max(1));
    }
    let runner: Runner<ENode, Shapes, ()> = Runner::new(Shapes { cost: Box::new(NoCost) })
        .with_egraph(eg)
        .with_node_limit(limits.nodes)
        .with_iter_limit(limits.iterations)
        .with_time_limit(limits.time)
        .with_scheduler(scheduler)
        .run(&all_rules);
    let saturate_s = t0.elapsed().as_secs_f64();
    let mut fired: BTreeMap<String, usize> = rules::rule_names().keys().map(|k| (k.to_string(), 0)).collect();
    for it in &runner.iterations {
        for (name, n) in &it.applied {
            *fired.entry(name.to_string()).or_default() += n;
        }
    }
    let stop_reason = match &runner.stop_reason {
        Some(StopReason::Saturated) => "saturated".to_string(),
        Some(StopReason::IterationLimit(_)) => "iteration-limit".to_string(),
        Some(StopReason::NodeLimit(_)) => "node-limit".to_string(),
        Some(StopReason::TimeLimit(_)) => "time-limit".to_string(),
        Some(StopReason::Other(s)) => s.clone(),
        None => "unknown".to_string(),
    };
    let t1 = Instant::now();
    let eg = runner.egraph;
    let roots: Vec<egg::Id> = roots.iter().map(|&r| eg.find(r)).collect();
    let greedy = extract::greedy_dag(&eg, &roots);
    let cost_greedy = greedy.cost;
    let (sel, ilp) = match limits.ilp_time {
        Some(t) => {
            let (s, status) = extract::ilp(&eg, &roots, t, greedy);
            (s, Some(status))
        }
        None => (greedy, None),
    };
    let (out, out_w) = convert::from_selection(&eg, &roots, &sel.choice, g, weights)?;
    if out.is_concrete() {
        out.validate()?;
    } else {
        out.validate_structure()?;
    }
    let report = Report {
        stop_reason,
        iterations: runner.iterations.len(),
        egraph_nodes: eg.total_number_of_nodes(),
        egraph_classes: eg.number_of_classes(),
        initial_nodes,
        rules_fired: fired,
        cost_before,
        cost_after: sel.cost,
        cost_greedy,
        ilp,
        graph_nodes_before: g.len(),
        graph_nodes_after: out.len(),
        saturate_s,
        extract_s: t1.elapsed().as_secs_f64(),
    };
    Ok((out, out_w, report))
}
