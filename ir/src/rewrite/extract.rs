//! Extraction by DAG cost: a shared value is paid for once.
//!
//! [`greedy_dag`] is the greedy DAG extractor (as in extraction-gym's `greedy-dag`): every
//! e-class keeps its best node together with the set of e-classes that node's sub-DAG
//! computes and their costs; a node's cost is the sum over the union of its children's sets
//! plus its own, so a value two consumers share is counted once. It iterates to a fixed point.
//! [`tree_cost`] is the tree cost egg's default extractor minimises, kept to show the
//! difference (it counts a shared value once per use).

use std::collections::{BTreeMap, HashMap};

use egg::Id;

use super::lang::{EGraph, ENode};
use crate::shape::Shape;

/// Added to every node's cost so that, between equally priced graphs, the one with fewer
/// nodes wins (an identity the cost model prices at zero still goes).
pub const PER_NODE: f64 = 1e-9;

/// The cost of one e-node alone, from the analysis' [`super::NodeCost`].
pub fn node_cost(eg: &EGraph, class: Id, n: &ENode) -> f64 {
    let ins: Option<Vec<&Shape>> = n.children.iter().map(|&c| eg[c].data.shape.as_ref()).collect();
    PER_NODE
        + match (ins, eg[class].data.shape.as_ref()) {
            (Some(ins), Some(out)) => eg.analysis.cost.cost_in(&n.op, n.place, &ins, out),
            _ => 0.0,
        }
}

/// A selection: one node per reachable e-class, and its DAG cost.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The chosen node of each e-class.
    pub choice: HashMap<Id, ENode>,
    /// Total cost of everything reachable from the roots, each class once.
    pub cost: f64,
}

/// Greedy DAG extraction from `roots`: a worklist over e-nodes; when a class's best set
/// improves, the nodes that use it are looked at again.
pub fn greedy_dag(eg: &EGraph, roots: &[Id]) -> Selection {
    use std::collections::VecDeque;
    // Every e-node, by index; the e-nodes using each class.
    let mut nodes: Vec<(Id, &ENode)> = Vec::new();
    for class in eg.classes() {
        for n in class.iter() {
            nodes.push((class.id, n));
        }
    }
    let mut users: HashMap<Id, Vec<usize>> = HashMap::new();
    for (i, (_, n)) in nodes.iter().enumerate() {
        for &c in &n.children {
            users.entry(eg.find(c)).or_default().push(i);
        }
    }
    let own: Vec<f64> = nodes.iter().map(|&(c, n)| node_cost(eg, c, n)).collect();
    // class → (best node index, the classes its sub-DAG computes with their costs, total).
    let mut best: HashMap<Id, (usize, BTreeMap<Id, f64>, f64)> = HashMap::new();
    let mut queued = vec![false; nodes.len()];
    let mut work: VecDeque<usize> = (0..nodes.len()).filter(|&i| nodes[i].1.children.is_empty()).collect();
    for &i in &work {
        queued[i] = true;
    }
    while let Some(i) = work.pop_front() {
        queued[i] = false;
        let (cid, n) = nodes[i];
        // Start from the largest child set (cloned once), add the others.
        let mut kids: Vec<Id> = n.children.iter().map(|&c| eg.find(c)).collect();
        kids.sort();
        kids.dedup();
        if kids.iter().any(|k| !best.contains_key(k)) {
            continue;
        }
        let largest = kids.iter().copied().max_by_key(|k| best[k].1.len());
        let mut set = match largest {
            Some(k) => best[&k].1.clone(),
            None => BTreeMap::new(),
        };
        for k in &kids {
            if Some(*k) != largest {
                set.extend(best[k].1.iter().map(|(a, b)| (*a, *b)));
            }
        }
        // A node whose inputs need this very class is a cycle, not a choice.
        if set.contains_key(&cid) {
            continue;
        }
        set.insert(cid, own[i]);
        let total: f64 = set.values().sum();
        let better = match best.get(&cid) {
            None => true,
            Some((_, _, t)) => total < *t - 1e-12,
        };
        if better {
            best.insert(cid, (i, set, total));
            for &u in users.get(&cid).map(Vec::as_slice).unwrap_or(&[]) {
                if !queued[u] {
                    queued[u] = true;
                    work.push_back(u);
                }
            }
        }
    }
    let mut choice = HashMap::new();
    let mut stack: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    while let Some(c) = stack.pop() {
        if choice.contains_key(&c) {
            continue;
        }
        let Some((i, _, _)) = best.get(&c) else { continue };
        let n = nodes[*i].1;
        choice.insert(c, n.clone());
        stack.extend(n.children.iter().map(|&k| eg.find(k)));
    }
    refine(eg, roots, choice)
}

/// Local improvement of a selection: greedy DAG extraction picks each class's best node for
/// that class alone, so a class may recompute what another selected class already has (an
/// activation fused into a copy of a convolution whose unfused output is needed anyway).
/// Switching one class at a time to another node whose inputs are already selected, while
/// the total DAG cost falls, removes such duplicates.
pub fn refine(eg: &EGraph, roots: &[Id], mut choice: HashMap<Id, ENode>) -> Selection {
    let mut cost = dag_cost(eg, roots, &choice);
    for _round in 0..50 {
        let mut improved = false;
        let mut classes: Vec<Id> = reachable(eg, roots, &choice).into_iter().collect();
        classes.sort();
        for c in classes {
            let Some(current) = choice.get(&c).cloned() else { continue };
            for n in eg[c].iter() {
                if *n == current || n.children.iter().any(|k| !choice.contains_key(&eg.find(*k))) {
                    continue;
                }
                choice.insert(c, n.clone());
                // No cycles: `c` must not be needed by its own new inputs.
                let cyclic = n.children.iter().any(|&k| reachable(eg, &[k], &choice).contains(&c));
                let new_cost = if cyclic { f64::INFINITY } else { dag_cost(eg, roots, &choice) };
                if new_cost < cost - 1e-12 {
                    cost = new_cost;
                    improved = true;
                    break;
                }
                choice.insert(c, current.clone());
            }
        }
        if !improved {
            break;
        }
    }
    let keep = reachable(eg, roots, &choice);
    choice.retain(|c, _| keep.contains(c));
    Selection { choice, cost }
}

/// The classes a selection computes from `roots`.
fn reachable(eg: &EGraph, roots: &[Id], choice: &HashMap<Id, ENode>) -> std::collections::HashSet<Id> {
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    while let Some(c) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        if let Some(n) = choice.get(&c) {
            stack.extend(n.children.iter().map(|&k| eg.find(k)));
        }
    }
    seen
}

/// The tree cost of a selection from `roots`: every use of a value pays for it again.
pub fn tree_cost(eg: &EGraph, roots: &[Id], choice: &HashMap<Id, ENode>) -> f64 {
    fn go(eg: &EGraph, c: Id, choice: &HashMap<Id, ENode>, depth: usize) -> f64 {
        let c = eg.find(c);
        match choice.get(&c) {
            Some(n) if depth < 10_000 => {
                node_cost(eg, c, n) + n.children.iter().map(|&k| go(eg, k, choice, depth + 1)).sum::<f64>()
            }
            _ => 0.0,
        }
    }
    roots.iter().map(|&r| go(eg, r, choice, 0)).sum()
}

/// The DAG cost of a selection from `roots`: each reachable class once.
pub fn dag_cost(eg: &EGraph, roots: &[Id], choice: &HashMap<Id, ENode>) -> f64 {
    reachable(eg, roots, choice).into_iter().filter_map(|c| choice.get(&c).map(|n| node_cost(eg, c, n))).sum()
}

/// egg's tree-cost extractor over the same per-node costs (what nasc does not use).
pub fn greedy_tree(eg: &EGraph, roots: &[Id]) -> HashMap<Id, ENode> {
    struct TreeCost<'a>(&'a EGraph);
    impl egg::CostFunction<ENode> for TreeCost<'_> {
        type Cost = f64;
        fn cost<C: FnMut(Id) -> f64>(&mut self, enode: &ENode, mut costs: C) -> f64 {
            // The class of `enode` is not known here: price it against any class holding it.
            let eg = self.0;
            let class =
                eg.lookup(enode.clone()).unwrap_or_else(|| enode.children.first().copied().unwrap_or(Id::from(0)));
            node_cost(eg, class, enode) + enode.children.iter().map(|&c| costs(c)).sum::<f64>()
        }
    }
    let ex = egg::Extractor::new(eg, TreeCost(eg));
    let mut choice = HashMap::new();
    let mut stack: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    while let Some(c) = stack.pop() {
        if choice.contains_key(&c) {
            continue;
        }
        let n = ex.find_best_node(c).clone();
        stack.extend(n.children.iter().map(|&k| eg.find(k)));
        choice.insert(c, n);
    }
    choice
}

/// How an ILP extraction ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IlpStatus {
    /// The solver proved its selection optimal.
    Optimal,
    /// The time limit stopped it with a feasible selection, not proved optimal.
    TimeLimit,
    /// It found no selection in time (or the solver failed): the greedy one stands.
    NoSolution,
}

/// Extraction by integer linear programming, exact for DAG cost over an acyclic part of the
/// e-graph: a depth-first walk from the roots drops every e-node that points back to a class
/// on the walk's stack (what extraction-gym's ILP extractors do to avoid level constraints,
/// whose big-M relaxations are too weak to prove anything on these graphs); then one binary
/// per e-node (chosen or not) and per e-class (computed or not): a computed class chooses
/// exactly one node, a chosen node needs its children's classes computed, the roots are
/// computed, and the objective is the sum of the chosen nodes' costs. The solver starts from
/// the greedy selection (`fallback`), which is returned when it finds nothing cheaper within
/// `time`.
pub fn ilp(eg: &EGraph, roots: &[Id], time: std::time::Duration, fallback: Selection) -> (Selection, IlpStatus) {
    use microlp::{ComparisonOp, OptimizationDirection, Problem};
    use std::collections::HashSet;
    let roots: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    // The walk: classes in visit order, and the (class, node index) pairs it drops.
    let mut state: HashMap<Id, bool> = HashMap::new(); // true: on the stack, false: done
    let mut dropped: HashSet<(Id, usize)> = HashSet::new();
    let mut classes: Vec<Id> = Vec::new();
    let mut stack: Vec<(Id, usize, usize)> = Vec::new();
    for &r in &roots {
        if state.contains_key(&r) {
            continue;
        }
        state.insert(r, true);
        classes.push(r);
        stack.push((r, 0, 0));
        while let Some(top) = stack.len().checked_sub(1) {
            let (c, ni, ci) = stack[top];
            let nodes = &eg[c].nodes;
            if ni == nodes.len() {
                state.insert(c, false);
                stack.pop();
                continue;
            }
            if ci == nodes[ni].children.len() {
                stack[top] = (c, ni + 1, 0);
                continue;
            }
            stack[top] = (c, ni, ci + 1);
            let k = eg.find(nodes[ni].children[ci]);
            match state.get(&k) {
                Some(true) => {
                    dropped.insert((c, ni));
                }
                Some(false) => {}
                None => {
                    state.insert(k, true);
                    classes.push(k);
                    stack.push((k, 0, 0));
                }
            }
        }
    }
    let index: HashMap<Id, usize> = classes.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let mut p = Problem::new(OptimizationDirection::Minimize);
    let active: Vec<_> = classes.iter().map(|_| p.add_binary_var(0.0)).collect();
    let mut chosen: Vec<(Id, &ENode, microlp::Variable)> = Vec::new();
    for (i, &c) in classes.iter().enumerate() {
        let mut one = vec![(active[i], -1.0)];
        for (ni, n) in eg[c].nodes.iter().enumerate() {
            if dropped.contains(&(c, ni)) {
                continue;
            }
            let x = p.add_binary_var(node_cost(eg, c, n));
            one.push((x, 1.0));
            let mut kids: Vec<usize> = n.children.iter().map(|&k| index[&eg.find(k)]).collect();
            kids.sort();
            kids.dedup();
            for k in kids {
                p.add_constraint([(x, 1.0), (active[k], -1.0)], ComparisonOp::Le, 0.0);
            }
            chosen.push((c, n, x));
        }
        p.add_constraint(one, ComparisonOp::Eq, 0.0);
    }
    for r in &roots {
        p.add_constraint([(active[index[r]], 1.0)], ComparisonOp::Ge, 1.0);
    }
    // Seed the search with the greedy selection (ignored by the solver if it uses a dropped
    // node).
    let mut warm = Vec::new();
    for (i, &c) in classes.iter().enumerate() {
        warm.push((active[i], if fallback.choice.contains_key(&c) { 1.0 } else { 0.0 }));
    }
    for (c, n, x) in &chosen {
        warm.push((*x, if fallback.choice.get(c) == Some(*n) { 1.0 } else { 0.0 }));
    }
    let mut options = microlp::SolveOptions::default();
    options.time_limit = Some(time);
    options.warm_start = Some(warm);
    let outcome = match p.solve_with(options) {
        Ok(o) => o,
        Err(_) => return (fallback, IlpStatus::NoSolution),
    };
    let Some(sol) = outcome.solution() else { return (fallback, IlpStatus::NoSolution) };
    let status =
        if sol.status() == microlp::SolutionStatus::Optimal { IlpStatus::Optimal } else { IlpStatus::TimeLimit };
    let mut choice = HashMap::new();
    for (c, n, x) in chosen {
        if sol.var_value(x) > 0.5 {
            choice.insert(c, n.clone());
        }
    }
    let keep = reachable(eg, &roots, &choice);
    choice.retain(|c, _| keep.contains(c));
    if roots.iter().any(|r| !choice.contains_key(r)) {
        return (fallback, IlpStatus::NoSolution);
    }
    let cost = dag_cost(eg, &roots, &choice);
    if cost < fallback.cost - 1e-12 || status == IlpStatus::Optimal && cost <= fallback.cost + 1e-9 {
        (Selection { choice, cost }, status)
    } else {
        (fallback, status)
    }
}
