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
            (Some(ins), Some(out)) => eg.analysis.cost.cost(&n.op, &ins, out),
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

/// Greedy DAG extraction from `roots`.
pub fn greedy_dag(eg: &EGraph, roots: &[Id]) -> Selection {
    // class → (best node, the classes its sub-DAG computes with their own costs, total).
    let mut best: HashMap<Id, (ENode, BTreeMap<Id, f64>, f64)> = HashMap::new();
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds < 10_000 {
        changed = false;
        rounds += 1;
        for class in eg.classes() {
            let cid = class.id;
            for n in class.iter() {
                let mut set: BTreeMap<Id, f64> = BTreeMap::new();
                let mut ok = true;
                for &c in &n.children {
                    let c = eg.find(c);
                    match best.get(&c) {
                        Some((_, s, _)) => set.extend(s.iter().map(|(k, v)| (*k, *v))),
                        None => {
                            ok = false;
                            break;
                        }
                    }
                }
                // A node whose inputs need this very class is a cycle, not a choice.
                if !ok || set.contains_key(&cid) {
                    continue;
                }
                set.insert(cid, node_cost(eg, cid, n));
                let total: f64 = set.values().sum();
                let better = match best.get(&cid) {
                    None => true,
                    Some((_, _, t)) => total < *t - 1e-12,
                };
                if better {
                    best.insert(cid, (n.clone(), set, total));
                    changed = true;
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
        let Some((n, _, _)) = best.get(&c) else { continue };
        choice.insert(c, n.clone());
        stack.extend(n.children.iter().map(|&k| eg.find(k)));
    }
    // The chosen nodes' costs, each class once (a child may have been picked for another
    // parent's set with a different node; re-price what is actually selected).
    let cost = choice.iter().map(|(&c, n)| node_cost(eg, c, n)).sum();
    Selection { choice, cost }
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
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    let mut total = 0.0;
    while let Some(c) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        if let Some(n) = choice.get(&c) {
            total += node_cost(eg, c, n);
            stack.extend(n.children.iter().map(|&k| eg.find(k)));
        }
    }
    total
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
