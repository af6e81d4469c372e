//! Rewrite rules, one table per family, each rule a kebab-case name and a function from a
//! matched e-node to the terms equal to its e-class.
//!
//! A rule sees the whole e-graph, so it can look into its children's e-classes (a batch norm
//! over a convolution) and across siblings (convolutions sharing an input) — the attribute
//! conditions (`act` is none, kernels odd and centred, channels that add up) are plain Rust.
//! [`FnRule`] adapts a rule to egg's `Searcher` and `Applier`.

use std::collections::BTreeMap;

use egg::{Id, Rewrite, SearchMatches, Subst, Symbol, Var};

use super::lang::{EGraph, ENode, Shapes, WRef};
use crate::op::{Conv2d, Groups, Op, SliceChannels};

/// A term to add to the e-graph: an existing class or a new node over terms.
#[derive(Clone, Debug)]
pub enum Term {
    /// An existing e-class.
    Class(Id),
    /// A new node.
    Node(Op, Option<WRef>, Vec<Term>),
}

/// What a rule does with one e-node of an e-class: the terms equal to that class.
pub type RuleFn = fn(&EGraph, Id, &ENode) -> Vec<Term>;

/// A named rule.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Kebab-case name, as reports show it.
    pub name: &'static str,
    /// What it states.
    pub doc: &'static str,
    /// The rule.
    pub f: RuleFn,
}

/// Conv + batch-norm folding.
pub const BN_FOLDING: &[Rule] = &[Rule {
    name: "fold-batchnorm-into-conv",
    doc: "batchnorm(conv(x)) = conv'(x), the norm folded into the weights and a bias",
    f: fold_bn,
}];

/// Activation fusion into the producing conv or dense layer.
pub const ACTIVATION_FUSION: &[Rule] = &[
    Rule { name: "fuse-activation-into-conv", doc: "act(conv(x)) = conv{act}(x)", f: fuse_act_conv },
    Rule { name: "fuse-activation-into-dense", doc: "act(dense(x)) = dense{act}(x)", f: fuse_act_dense },
];

/// Identity and `zero` elimination.
pub const ELIMINATION: &[Rule] = &[
    Rule { name: "eliminate-identity", doc: "identity(x) = x", f: elim_identity },
    Rule { name: "add-drop-zero", doc: "add(x, zero, …) = add(x, …); add(zero, zero) = zero", f: add_drop_zero },
    Rule { name: "mul-by-zero", doc: "mul(x, zero) = zero of the product's shape", f: mul_by_zero },
    Rule {
        name: "zero-through-op",
        doc: "f(zero) = zero for shape-preserving f with f(0) = 0 (relu, relu6, hswish, swish, identity, pools)",
        f: zero_through,
    },
    Rule { name: "zero-reroot", doc: "zero(y) = zero(x) when y is computed from x of the same shape", f: zero_reroot },
];

/// Kernel zero-padding equivalence.
pub const KERNEL_PADDING: &[Rule] = &[Rule {
    name: "pad-kernel-to-sibling",
    doc: "conv_k(x) = conv_K(x) with the k×k kernel zero-padded to K×K, when a K×K conv also reads x",
    f: pad_kernel,
}];

/// Merging parallel convolutions that share an input (a multi-pattern rule: it matches two
/// convolutions at once), budgeted separately.
pub const MERGE_PARALLEL: &[Rule] = &[Rule {
    name: "merge-parallel-convs",
    doc: "conv_a(x), conv_b(x) = slice(conv_ab(x), ..a), slice(conv_ab(x), a..)",
    f: merge_parallel,
}];

/// Concat/split algebra.
pub const CONCAT_SPLIT: &[Rule] = &[
    Rule { name: "slice-full", doc: "slice(x, 0..C) = x", f: slice_full },
    Rule { name: "slice-of-slice", doc: "slice(slice(x, a..b), s..e) = slice(x, a+s..a+e)", f: slice_of_slice },
    Rule {
        name: "slice-of-concat",
        doc: "slice(concat(a, b, …), range inside one input) = slice of it",
        f: slice_of_concat,
    },
    Rule {
        name: "concat-adjacent-slices",
        doc: "concat(…, slice(x, a..b), slice(x, b..c), …) = concat(…, slice(x, a..c), …)",
        f: concat_adjacent,
    },
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
    ]
}

/// egg adapter: searches every node of an e-class with the rule's function and adds what it
/// returns, unioned with the class.
pub struct FnRule(pub Rule);

impl egg::Searcher<ENode, Shapes> for FnRule {
    fn search_eclass_with_limit(&self, egraph: &EGraph, eclass: Id, limit: usize) -> Option<SearchMatches<'_, ENode>> {
        if limit == 0 {
            return None;
        }
        egraph[eclass].iter().any(|n| !(self.0.f)(egraph, eclass, n).is_empty()).then(|| SearchMatches {
            eclass,
            substs: vec![Subst::default()],
            ast: None,
        })
    }

    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
}

impl egg::Applier<ENode, Shapes> for FnRule {
    fn apply_one(
        &self,
        egraph: &mut EGraph,
        eclass: Id,
        _subst: &Subst,
        _ast: Option<&egg::PatternAst<ENode>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let class = egraph.find(eclass);
        let nodes: Vec<ENode> = egraph[class].nodes.clone();
        let mut changed = Vec::new();
        for n in &nodes {
            for t in (self.0.f)(egraph, class, n) {
                let id = add_term(egraph, &t);
                if egraph.union(class, id) {
                    changed.push(egraph.find(class));
                }
            }
        }
        changed
    }
}

/// Adds a term; returns its class.
pub fn add_term(egraph: &mut EGraph, t: &Term) -> Id {
    match t {
        Term::Class(c) => egraph.find(*c),
        Term::Node(op, w, kids) => {
            let children: Vec<Id> = kids.iter().map(|k| add_term(egraph, k)).collect();
            egraph.add(ENode::new(op.clone(), w.clone(), None, children))
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

fn zero_reroot(eg: &EGraph, _class: Id, n: &ENode) -> Vec<Term> {
    if !matches!(n.op, Op::Zero) {
        return Vec::new();
    }
    let y = n.children[0];
    let want = shape(eg, y);
    let mut out = Vec::new();
    for m in eg[y].iter() {
        if matches!(m.op, Op::Zero | Op::Input(_)) {
            continue;
        }
        for &x in &m.children {
            if x != y && shape(eg, x) == want && want.is_some() {
                out.push(Term::Node(Op::Zero, None, vec![Term::Class(x)]));
            }
        }
    }
    out
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
    let mut v = Vec::new();
    for class in eg.classes() {
        if class.id == not {
            continue;
        }
        for n in class.iter() {
            if matches!(n.op, Op::Conv2d(_)) && n.children.first().map(|&c| eg.find(c)) == Some(eg.find(x)) {
                v.push((class.id, n.clone()));
            }
        }
    }
    v
}

fn pad_kernel(eg: &EGraph, class: Id, n: &ENode) -> Vec<Term> {
    let (Op::Conv2d(cv), Some(w)) = (&n.op, &n.w) else { return Vec::new() };
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

fn merge_parallel(eg: &EGraph, class: Id, n: &ENode) -> Vec<Term> {
    let (Op::Conv2d(cv), Some(w)) = (&n.op, &n.w) else { return Vec::new() };
    if cv.groups != Groups::Fixed(1) || matches!(&w, WRef::Concat(_)) {
        return Vec::new();
    }
    let Some(a) = cv.out_channels else { return Vec::new() };
    let mut out = Vec::new();
    for (other_class, m) in convs_reading(eg, n.children[0], class) {
        let (Op::Conv2d(ov), Some(ow)) = (&m.op, &m.w) else { continue };
        let Some(b) = ov.out_channels else { continue };
        let same = Conv2d { out_channels: Some(b), ..cv.clone() } == *ov;
        if !same || matches!(ow, WRef::Concat(_)) {
            continue;
        }
        // The pair in class order, so both sides build the same merged node.
        let first = eg.find(class) < eg.find(other_class);
        let (ws, start) = if first { (vec![w.clone(), ow.clone()], 0) } else { (vec![ow.clone(), w.clone()], b) };
        let merged = Conv2d { out_channels: Some(a + b), ..cv.clone() };
        let conv = Term::Node(Op::Conv2d(merged), Some(WRef::Concat(ws)), vec![Term::Class(n.children[0])]);
        out.push(Term::Node(Op::SliceChannels(SliceChannels { start, end: start + a }), None, vec![conv]));
    }
    out
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

/// Names of every rule, for reports and tests.
pub fn rule_names() -> BTreeMap<&'static str, &'static str> {
    families().into_iter().flat_map(|(_, rs)| rs.iter().map(|r| (r.name, r.doc))).collect()
}
