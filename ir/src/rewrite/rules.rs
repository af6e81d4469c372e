//! Rewrite rules, one table per family, each rule a kebab-case name and a function from a
//! matched e-node to the terms equal to its e-class.
//!
//! A rule sees the whole e-graph, so it can look into its children's e-classes (a batch norm
//! over a convolution) and across siblings (convolutions sharing an input) — the attribute
//! conditions (`act` is none, kernels odd and centred, channels that add up) are plain Rust.
//! [`FnRule`] adapts a rule to egg's `Searcher` and `Applier`.

use std::collections::BTreeMap;

use egg::{Id, Rewrite, SearchMatches, Subst, Symbol, Var};

use super::lang::{EGraph, ENode, Place, Shapes, WRef};
use crate::op::{Activation, Conv2d, Groups, Op, SliceChannels};

/// A term to add to the e-graph: an existing class or a new node over terms.
#[derive(Clone, Debug)]
pub enum Term {
    /// An existing e-class.
    Class(Id),
    /// A new node, in the place of the node the rule matched.
    Node(Op, Option<WRef>, Vec<Term>),
    /// A new node in a given place (placement rules).
    Placed(Op, Option<WRef>, Place, Vec<Term>),
}

/// What a rule does with one e-node of an e-class: the terms equal to that class.
pub type RuleFn = fn(&EGraph, Id, &ENode) -> Vec<Term>;

/// What a multi-pattern rule does with one e-node and one partner e-class (found by
/// [`PairFn`]): the terms equal to the node's class.
pub type PairApply = fn(&EGraph, Id, &ENode, Id) -> Vec<Term>;
/// The partner e-classes of one e-node for a multi-pattern rule.
pub type PairFn = fn(&EGraph, Id, &ENode) -> Vec<Id>;

/// A named rule.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Kebab-case name, as reports show it.
    pub name: &'static str,
    /// What it states.
    pub doc: &'static str,
    /// The rule.
    pub f: RuleFn,
    /// For a multi-pattern rule: its partners and what one pair gives. Each (node, partner)
    /// is one match, so egg's scheduler budgets the rule by pairs.
    pub pair: Option<(PairFn, PairApply)>,
    /// Whether the rule sees transfer nodes (placement rules); the others never match one.
    pub transfers: bool,
}

impl Rule {
    const fn single(name: &'static str, doc: &'static str, f: RuleFn) -> Rule {
        Rule { name, doc, f, pair: None, transfers: false }
    }

    const fn placement(name: &'static str, doc: &'static str, f: RuleFn) -> Rule {
        Rule { name, doc, f, pair: None, transfers: true }
    }

    /// Whether the rule looks at node `n` at all.
    fn sees(&self, n: &ENode) -> bool {
        self.transfers || !n.place.is_transfer()
    }
}

/// Conv + batch-norm folding.
pub const BN_FOLDING: &[Rule] = &[Rule::single(
    "fold-batchnorm-into-conv",
    "batchnorm(conv(x)) = conv'(x), the norm folded into the weights and a bias",
    fold_bn,
)];

/// Activation fusion into the producing conv or dense layer.
pub const ACTIVATION_FUSION: &[Rule] = &[
    Rule::single("fuse-activation-into-conv", "act(conv(x)) = conv{act}(x)", fuse_act_conv),
    Rule::single("fuse-activation-into-dense", "act(dense(x)) = dense{act}(x)", fuse_act_dense),
];

/// Identity and `zero` elimination.
pub const ELIMINATION: &[Rule] = &[
    Rule::single("eliminate-identity", "identity(x) = x", elim_identity),
    Rule::single("add-drop-zero", "add(x, zero, …) = add(x, …); add(zero, zero) = zero", add_drop_zero),
    Rule::single("mul-by-zero", "mul(x, zero) = zero of the product's shape", mul_by_zero),
    Rule::single(
        "zero-through-op",
        "f(zero) = zero for shape-preserving f with f(0) = 0 (relu, relu6, hswish, swish, identity, pools)",
        zero_through,
    ),
    Rule::single(
        "conv-of-zero",
        "conv(zero) = zero when the conv has no bias, keeps the shape and its activation maps 0 to 0",
        conv_of_zero,
    ),
    Rule::single("zero-reroot", "zero(y) = zero(x) when y is computed from x of the same shape", zero_reroot),
];

/// Kernel zero-padding equivalence.
pub const KERNEL_PADDING: &[Rule] = &[Rule::single(
    "pad-kernel-to-sibling",
    "conv_k(x) = conv_K(x) with the k×k kernel zero-padded to K×K, when a K×K conv also reads x",
    pad_kernel,
)];

/// Merging parallel convolutions that share an input (a multi-pattern rule: it matches two
/// convolutions at once), budgeted separately.
pub const MERGE_PARALLEL: &[Rule] = &[Rule {
    name: "merge-parallel-convs",
    doc: "conv_a(x), conv_b(x) = slice(conv_ab(x), ..a), slice(conv_ab(x), a..)",
    f: merge_parallel,
    pair: Some((merge_partners, merge_pair)),
    transfers: false,
}];

/// Concat/split algebra.
pub const CONCAT_SPLIT: &[Rule] = &[
    Rule::single("slice-full", "slice(x, 0..C) = x", slice_full),
    Rule::single("slice-of-slice", "slice(slice(x, a..b), s..e) = slice(x, a+s..a+e)", slice_of_slice),
    Rule::single("slice-of-concat", "slice(concat(a, b, …), range inside one input) = slice of it", slice_of_concat),
    Rule::single(
        "concat-adjacent-slices",
        "concat(…, slice(x, a..b), slice(x, b..c), …) = concat(…, slice(x, a..c), …)",
        concat_adjacent,
    ),
];

/// Placement on NPU targets: an op on the target or on its host CPU, values crossing the link
/// through transfer nodes that extraction pays for. Only targets with a host fire these, and a
/// node is offered to the host only next to work already there, so a graph the target runs
/// whole grows no host copy.
pub const PLACEMENT: &[Rule] = &[
    Rule::placement(
        "place-on-host",
        "f@target(x, …) = to-target(f@host(to-host(x), …)) when an input comes from the host or a host op reads f",
        place_on_host,
    ),
    Rule::placement(
        "place-on-target",
        "f@host(x, …) = to-host(f@target(to-target(x), …)) when the target runs f",
        place_on_target,
    ),
    Rule::placement("cancel-transfers", "to-host(to-target(x)) = x; to-target(to-host(x)) = x", cancel_transfers),
];

/// Every family, in order.
pub fn families() -> Vec<(&'static str, &'static [Rule])> {
    vec![
        ("bn-folding", BN_FOLDING),
        ("activation-fusion", ACTIVATION_FUSION),
        ("elimination", ELIMINATION),
        ("kernel-padding", KERNEL_PADDING),
        ("merge-parallel", MERGE_PARALLEL),
        ("concat-split", CONCAT_SPLIT),
        ("placement", PLACEMENT),
    ]
}

/// egg adapter: searches every node of an e-class with the rule's function and adds what it
/// returns, unioned with the class.
pub struct FnRule(pub Rule);

fn partner_var() -> Var {
    "?partner".parse().expect("a valid variable")
}

impl egg::Searcher<ENode, Shapes> for FnRule {
    fn search_eclass_with_limit(&self, egraph: &EGraph, eclass: Id, limit: usize) -> Option<SearchMatches<'_, ENode>> {
        if limit == 0 {
            return None;
        }
        let substs: Vec<Subst> = match self.0.pair {
            // One match per partner, so the scheduler's budget counts pairs.
            Some((partners, _)) => {
                let mut ps: Vec<Id> = egraph[eclass]
                    .iter()
                    .filter(|n| self.0.sees(n))
                    .flat_map(|n| partners(egraph, eclass, n))
                    .collect();
                ps.sort();
                ps.dedup();
                ps.into_iter()
                    .take(limit)
                    .map(|p| {
                        let mut s = Subst::default();
                        s.insert(partner_var(), p);
                        s
                    })
                    .collect()
            }
            None => {
                if egraph[eclass].iter().any(|n| self.0.sees(n) && !(self.0.f)(egraph, eclass, n).is_empty()) {
                    vec![Subst::default()]
                } else {
                    Vec::new()
                }
            }
        };
        (!substs.is_empty()).then_some(SearchMatches { eclass, substs, ast: None })
    }

    fn vars(&self) -> Vec<Var> {
        match self.0.pair {
            Some(_) => vec![partner_var()],
            None => Vec::new(),
        }
    }
}

impl egg::Applier<ENode, Shapes> for FnRule {
    fn apply_one(
        &self,
        egraph: &mut EGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&egg::PatternAst<ENode>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let class = egraph.find(eclass);
        let nodes: Vec<ENode> = egraph[class].nodes.clone();
        let mut changed = Vec::new();
        for n in nodes.iter().filter(|n| self.0.sees(n)) {
            let terms = match (self.0.pair, subst.get(partner_var())) {
                (Some((_, apply)), Some(&partner)) => apply(egraph, class, n, partner),
                _ => (self.0.f)(egraph, class, n),
            };
            for t in terms {
                let id = add_term(egraph, &t, n.place.location());
                if egraph.union(class, id) {
                    changed.push(egraph.find(class));
                }
            }
        }
        changed
    }
}

/// Adds a term whose unplaced nodes go to `place`; returns its class.
pub fn add_term(egraph: &mut EGraph, t: &Term, place: Place) -> Id {
    match t {
        Term::Class(c) => egraph.find(*c),
        Term::Node(op, w, kids) => {
            let children: Vec<Id> = kids.iter().map(|k| add_term(egraph, k, place)).collect();
            egraph.add(ENode::placed(op.clone(), w.clone(), None, place, children))
        }
        Term::Placed(op, w, at, kids) => {
            let children: Vec<Id> = kids.iter().map(|k| add_term(egraph, k, at.location())).collect();
            egraph.add(ENode::placed(op.clone(), w.clone(), None, *at, children))
        }
    }
}

/// The egg rewrites of these rules.
pub fn rewrites(rules: &[Rule]) -> Vec<Rewrite<ENode, Shapes>> {
    rules
        .iter()
        .map(|&r| Rewrite::new(r.name, FnRule(r), FnRule(r)).expect("rule names are unique and need no variables"))
        .collect()
}

fn shape(eg: &EGraph, c: Id) -> Option<&Vec<usize>> {
    eg[c].data.shape.as_ref()
}

fn is_zero(eg: &EGraph, c: Id) -> bool {
    eg[c].iter().any(|n| matches!(n.op, Op::Zero))
}

fn fold_bn(eg: &EGraph, _class: Id, n: &ENode) -> Vec<Term> {
    let (Op::BatchNorm(_), Some(WRef::Node(bn))) = (&n.op, &n.w) else { return Vec::new() };
    eg[n.children[0]]
        .iter()
        .filter_map(|c| match (&c.op, &c.w) {
            (Op::Conv2d(cv), Some(w)) if cv.act.is_none() => {
                let folded = Conv2d { bias: true, ..cv.clone() };
                let w = WRef::FoldBn { conv: Box::new(w.clone()), bn: bn.clone() };
                Some(Term::Node(Op::Conv2d(folded), Some(w), vec![Term::Class(c.children[0])]))
            }
            _ => None,
        })
        .collect()
}

fn fuse_act_conv(eg: &EGraph, _class: Id, n: &ENode) -> Vec<Term> {
    let Some(act) = n.op.as_activation() else { return Vec::new() };
    eg[n.children[0]]
        .iter()
        .filter_map(|c| match &c.op {
            Op::Conv2d(cv) if cv.act.is_none() => {
                let fused = Conv2d { act: Some(act), ..cv.clone() };
                Some(Term::Node(Op::Conv2d(fused), c.w.clone(), vec![Term::Class(c.children[0])]))
            }
            _ => None,
        })
        .collect()
}

fn fuse_act_dense(eg: &EGraph, _class: Id, n: &ENode) -> Vec<Term> {
    let Some(act) = n.op.as_activation() else { return Vec::new() };
    eg[n.children[0]]
        .iter()
        .filter_map(|c| match &c.op {
            Op::Dense(d) if d.act.is_none() => {
                let mut fused = d.clone();
                fused.act = Some(act);
                Some(Term::Node(Op::Dense(fused), c.w.clone(), vec![Term::Class(c.children[0])]))
            }
            _ => None,
        })
        .collect()
}

fn elim_identity(_eg: &EGraph, _class: Id, n: &ENode) -> Vec<Term> {
    match n.op {
        Op::Identity => vec![Term::Class(n.children[0])],
        _ => Vec::new(),
    }
}

fn add_drop_zero(eg: &EGraph, class: Id, n: &ENode) -> Vec<Term> {
    if !matches!(n.op, Op::Add) {
        return Vec::new();
    }
    let out = shape(eg, class);
    let (zeros, rest): (Vec<Id>, Vec<Id>) = n.children.iter().partition(|&&c| is_zero(eg, c));
    // Only zeros of the sum's own shape (no broadcasting hides behind them).
    if zeros.is_empty() || zeros.iter().any(|&z| shape(eg, z) != out) {
        return Vec::new();
    }
    match rest.len() {
        0 => vec![Term::Class(zeros[0])],
        1 if shape(eg, rest[0]) == out => vec![Term::Class(rest[0])],
        1 => Vec::new(),
        _ => vec![Term::Node(Op::Add, None, rest.into_iter().map(Term::Class).collect())],
    }
}

fn mul_by_zero(eg: &EGraph, class: Id, n: &ENode) -> Vec<Term> {
    if !matches!(n.op, Op::Mul) || !n.children.iter().any(|&c| is_zero(eg, c)) {
        return Vec::new();
    }
    // zero(x) of the product's shape: x is the operand with that shape.
    let out = shape(eg, class);
    n.children
        .iter()
        .find(|&&c| shape(eg, c) == out)
        .map(|&x| vec![Term::Node(Op::Zero, None, vec![Term::Class(x)])])
        .unwrap_or_default()
}

fn zero_through(eg: &EGraph, class: Id, n: &ENode) -> Vec<Term> {
    let keeps_zero =
        matches!(&n.op, Op::Relu | Op::Relu6 | Op::Hswish | Op::Swish | Op::Identity | Op::AvgPool(_) | Op::MaxPool(_));
    if !keeps_zero
        || n.children.len() != 1
        || !is_zero(eg, n.children[0])
        || shape(eg, n.children[0]) != shape(eg, class)
    {
        return Vec::new();
    }
    vec![Term::Class(n.children[0])]
}

fn conv_of_zero(eg: &EGraph, class: Id, n: &ENode) -> Vec<Term> {
    let Op::Conv2d(cv) = &n.op else { return Vec::new() };
    let zero_act =
        matches!(cv.act, None | Some(Activation::Relu | Activation::Relu6 | Activation::Hswish | Activation::Swish));
    if cv.bias || !zero_act || !is_zero(eg, n.children[0]) || shape(eg, n.children[0]) != shape(eg, class) {
        return Vec::new();
    }
    vec![Term::Class(n.children[0])]
}

fn zero_reroot(eg: &EGraph, _class: Id, n: &ENode) -> Vec<Term> {
    if !matches!(n.op, Op::Zero) {
        return Vec::new();
    }
    let y = n.children[0];
    let want = shape(eg, y);
    // One step down, through the first node with an input of the same shape (the rest of
    // the class computes the same value; one path to the bottom is enough).
    for m in eg[y].iter() {
        if matches!(m.op, Op::Zero | Op::Input(_)) || m.place.is_transfer() {
            continue;
        }
        if let Some(&x) = m.children.iter().find(|&&x| eg.find(x) != eg.find(y) && shape(eg, x) == want) {
            if want.is_some() {
                return vec![Term::Node(Op::Zero, None, vec![Term::Class(x)])];
            }
        }
    }
    Vec::new()
}

/// A square, odd, centred ("same") kernel with groups 1 and dilation 1.
fn centred(cv: &Conv2d) -> Option<usize> {
    let k = cv.kernel[0];
    (cv.kernel[1] == k
        && k % 2 == 1
        && cv.padding == [(k - 1) / 2; 2]
        && cv.dilation == [1, 1]
        && cv.groups == Groups::Fixed(1))
    .then_some(k)
}

/// The convolutions (other than in `not`) reading class `x`: (class, node).
fn convs_reading(eg: &EGraph, x: Id, not: Id) -> Vec<(Id, ENode)> {
    let x = eg.find(x);
    let not = eg.find(not);
    let mut classes: Vec<Id> = eg[x].parents().map(|p| eg.find(p)).filter(|&c| c != not).collect();
    classes.sort();
    classes.dedup();
    let mut v = Vec::new();
    for c in classes {
        for n in eg[c].iter() {
            if matches!(n.op, Op::Conv2d(_)) && n.children.first().map(|&k| eg.find(k)) == Some(x) {
                v.push((c, n.clone()));
            }
        }
    }
    v
}

fn pad_kernel(eg: &EGraph, class: Id, n: &ENode) -> Vec<Term> {
    let (Op::Conv2d(cv), Some(w)) = (&n.op, &n.w) else { return Vec::new() };
    if is_zero(eg, n.children[0]) {
        return Vec::new();
    }
    let Some(k) = centred(cv) else { return Vec::new() };
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for (_, m) in convs_reading(eg, n.children[0], class) {
        let Op::Conv2d(other) = &m.op else { continue };
        let Some(big) = centred(other) else { continue };
        if big > k && big <= 7 && other.stride == cv.stride && other.act == cv.act && !seen.contains(&big) {
            seen.push(big);
            let padded = Conv2d { kernel: [big, big], padding: [(big - 1) / 2; 2], ..cv.clone() };
            let w = WRef::PadKernel { inner: Box::new(w.clone()), from: [k, k], to: [big, big] };
            out.push(Term::Node(Op::Conv2d(padded), Some(w), vec![Term::Class(n.children[0])]));
        }
    }
    out
}

/// The convolutions `n` can merge with: same input, same attributes but output channels,
/// groups 1, neither already a merge.
fn merge_partners(eg: &EGraph, class: Id, n: &ENode) -> Vec<Id> {
    let (Op::Conv2d(cv), Some(w)) = (&n.op, &n.w) else { return Vec::new() };
    if cv.groups != Groups::Fixed(1)
        || matches!(w, WRef::Concat(_))
        || cv.out_channels.is_none()
        || is_zero(eg, n.children[0])
    {
        return Vec::new();
    }
    let mut v: Vec<Id> = convs_reading(eg, n.children[0], class)
        .into_iter()
        .filter(|(_, m)| match (&m.op, &m.w) {
            (Op::Conv2d(ov), Some(ow)) => {
                ov.out_channels.is_some()
                    && Conv2d { out_channels: ov.out_channels, ..cv.clone() } == *ov
                    && !matches!(ow, WRef::Concat(_))
            }
            _ => false,
        })
        .map(|(c, _)| c)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The merge of `n` with a convolution of class `other`: `n`'s class is a slice of the merged
/// convolution (the pair in class order, so both sides build the same merged node).
fn merge_pair(eg: &EGraph, class: Id, n: &ENode, other: Id) -> Vec<Term> {
    let (Op::Conv2d(cv), Some(w)) = (&n.op, &n.w) else { return Vec::new() };
    let Some(a) = cv.out_channels else { return Vec::new() };
    let other = eg.find(other);
    let x = eg.find(n.children[0]);
    let mut out = Vec::new();
    for m in eg[other].iter() {
        let (Op::Conv2d(ov), Some(ow)) = (&m.op, &m.w) else { continue };
        let Some(b) = ov.out_channels else { continue };
        if m.children.first().map(|&k| eg.find(k)) != Some(x)
            || (Conv2d { out_channels: Some(b), ..cv.clone() }) != *ov
            || matches!(ow, WRef::Concat(_))
        {
            continue;
        }
        let first = eg.find(class) < other;
        let (ws, start) = if first { (vec![w.clone(), ow.clone()], 0) } else { (vec![ow.clone(), w.clone()], b) };
        let merged = Conv2d { out_channels: Some(a + b), ..cv.clone() };
        let conv = Term::Node(Op::Conv2d(merged), Some(WRef::Concat(ws)), vec![Term::Class(x)]);
        out.push(Term::Node(Op::SliceChannels(SliceChannels { start, end: start + a }), None, vec![conv]));
        break;
    }
    out
}

fn merge_parallel(eg: &EGraph, class: Id, n: &ENode) -> Vec<Term> {
    merge_partners(eg, class, n).into_iter().flat_map(|o| merge_pair(eg, class, n, o)).collect()
}

fn channels(eg: &EGraph, c: Id) -> Option<usize> {
    shape(eg, c).and_then(|s| s.get(1).copied())
}

fn slice_full(eg: &EGraph, _class: Id, n: &ENode) -> Vec<Term> {
    match &n.op {
        Op::SliceChannels(s) if s.start == 0 && Some(s.end) == channels(eg, n.children[0]) => {
            vec![Term::Class(n.children[0])]
        }
        _ => Vec::new(),
    }
}

fn slice_of_slice(eg: &EGraph, _class: Id, n: &ENode) -> Vec<Term> {
    let Op::SliceChannels(s) = &n.op else { return Vec::new() };
    eg[n.children[0]]
        .iter()
        .filter_map(|m| match &m.op {
            Op::SliceChannels(inner) => Some(Term::Node(
                Op::SliceChannels(SliceChannels { start: inner.start + s.start, end: inner.start + s.end }),
                None,
                vec![Term::Class(m.children[0])],
            )),
            _ => None,
        })
        .collect()
}

fn slice_of_concat(eg: &EGraph, _class: Id, n: &ENode) -> Vec<Term> {
    let Op::SliceChannels(s) = &n.op else { return Vec::new() };
    let mut out = Vec::new();
    for m in eg[n.children[0]].iter() {
        let Op::Concat(c) = &m.op else { continue };
        if c.axis != 1 {
            continue;
        }
        let mut at = 0;
        for &k in &m.children {
            let Some(ck) = channels(eg, k) else { break };
            if s.start >= at && s.end <= at + ck {
                out.push(if s.start == at && s.end == at + ck {
                    Term::Class(k)
                } else {
                    Term::Node(
                        Op::SliceChannels(SliceChannels { start: s.start - at, end: s.end - at }),
                        None,
                        vec![Term::Class(k)],
                    )
                });
            }
            at += ck;
        }
    }
    out
}

fn concat_adjacent(eg: &EGraph, _class: Id, n: &ENode) -> Vec<Term> {
    let Op::Concat(c) = &n.op else { return Vec::new() };
    if c.axis != 1 || n.children.len() < 2 {
        return Vec::new();
    }
    // Slices per child: (source, start, end).
    let slices: Vec<Vec<(Id, usize, usize)>> = n
        .children
        .iter()
        .map(|&k| {
            eg[k]
                .iter()
                .filter_map(|m| match &m.op {
                    Op::SliceChannels(s) => Some((eg.find(m.children[0]), s.start, s.end)),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for i in 0..n.children.len() - 1 {
        for &(x, a, b) in &slices[i] {
            for &(y, b2, e) in &slices[i + 1] {
                if x == y && b == b2 {
                    let joined =
                        Term::Node(Op::SliceChannels(SliceChannels { start: a, end: e }), None, vec![Term::Class(x)]);
                    let mut kids: Vec<Term> = n.children[..i].iter().map(|&k| Term::Class(k)).collect();
                    kids.push(joined);
                    kids.extend(n.children[i + 2..].iter().map(|&k| Term::Class(k)));
                    out.push(if kids.len() == 1 {
                        kids.pop().expect("one")
                    } else {
                        Term::Node(n.op.clone(), None, kids)
                    });
                }
            }
        }
    }
    out
}

/// Ops placement leaves where they are: graph inputs and sinks (whose names mean something),
/// choices, and `zero`, which moves no data.
fn placeable(n: &ENode) -> bool {
    n.name.is_none() && !n.children.is_empty() && !matches!(n.op, Op::Zero | Op::Choice(_))
}

/// A transfer of class `c` to `place`.
fn transfer(place: Place, c: Id) -> Term {
    Term::Placed(Op::Identity, None, place, vec![Term::Class(c)])
}

/// Whether class `c` holds a node in `place`.
fn holds(eg: &EGraph, c: Id, place: Place) -> bool {
    eg[c].iter().any(|m| m.place == place)
}

fn place_on_host(eg: &EGraph, class: Id, n: &ENode) -> Vec<Term> {
    if n.place != Place::Target || !placeable(n) || !eg.analysis.cost.has_host() {
        return Vec::new();
    }
    // Next to host work: an input arrives from the host, or a host op reads this value.
    let from_host = n.children.iter().any(|&c| holds(eg, c, Place::ToTarget));
    let read_on_host = eg[class].parents().any(|p| {
        eg[p].iter().any(|m| m.place == Place::ToHost && m.children.iter().any(|&k| eg.find(k) == eg.find(class)))
    });
    if !(from_host || read_on_host) {
        return Vec::new();
    }
    let kids = n.children.iter().map(|&c| transfer(Place::ToHost, c)).collect();
    vec![Term::Placed(
        Op::Identity,
        None,
        Place::ToTarget,
        vec![Term::Placed(n.op.clone(), n.w.clone(), Place::Host, kids)],
    )]
}

fn place_on_target(eg: &EGraph, class: Id, n: &ENode) -> Vec<Term> {
    if n.place != Place::Host || !placeable(n) {
        return Vec::new();
    }
    let ins: Option<Vec<&Vec<usize>>> = n.children.iter().map(|&c| shape(eg, c)).collect();
    let (Some(ins), Some(out)) = (ins, shape(eg, class)) else { return Vec::new() };
    if !eg.analysis.cost.supports(&n.op, &ins, out) {
        return Vec::new();
    }
    let kids = n.children.iter().map(|&c| transfer(Place::ToTarget, c)).collect();
    vec![Term::Placed(
        Op::Identity,
        None,
        Place::ToHost,
        vec![Term::Placed(n.op.clone(), n.w.clone(), Place::Target, kids)],
    )]
}

fn cancel_transfers(eg: &EGraph, _class: Id, n: &ENode) -> Vec<Term> {
    let back = match n.place {
        Place::ToHost => Place::ToTarget,
        Place::ToTarget => Place::ToHost,
        _ => return Vec::new(),
    };
    eg[n.children[0]].iter().filter(|m| m.place == back).map(|m| Term::Class(m.children[0])).collect()
}

/// Names of every rule, for reports and tests.
pub fn rule_names() -> BTreeMap<&'static str, &'static str> {
    families().into_iter().flat_map(|(_, rs)| rs.iter().map(|r| (r.name, r.doc))).collect()
}
