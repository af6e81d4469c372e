//! NAS-Bench-201 (Dong & Yang, ICLR 2020), the `TinyNetwork` of its code base as used by
//! HW-NAS-Bench.
//!
//! Stem 3×3 conv 3→16 + BN; three stages of five cells at 16, 32 and 64 channels with a ResNet
//! basic reduction block between stages; BN + ReLU, global average pool, flatten, linear
//! classifier. A cell has nodes 0..3; node `j` is the sum over `i < j` of the op on edge
//! `j<-i` applied to node `i`. The six edges are the architecture parameters, shared by all
//! fifteen cells, with the options `none, skip_connect, nor_conv_1x1, nor_conv_3x3,
//! avg_pool_3x3`. Architecture strings are NAS-Bench-201's:
//! `|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|`.
//!
//! The `none` op is [`Op::Zero`], which keeps its input live: like the MAC counts of
//! NAS-Bench-201 / HW-NAS-Bench, a subnet still contains (and counts) the edges whose result
//! nothing uses. [`crate::stats::totals`] of a subnet equals the `macs` of
//! `data/nb201_cifar10.csv` for all 15,625 cells. The table's `params` counts conv and
//! classifier weights and biases plus only the final BatchNorm's γ/β (128 values), not the
//! other BatchNorms, so it is below our count by the other BatchNorms' γ/β.

use std::sync::OnceLock;

use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId};
use crate::op::{BatchNorm, Choice, Conv2d, Dense, Input, Op, Pool};
use crate::select::{Config, Supernet};
use crate::spaces::SearchSpace;

/// The five candidate ops of an edge, in option-index order.
pub const OPS: [&str; 5] = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"];

/// The six edges `(to, from)` in arch-string order.
pub const EDGES: [(usize, usize); 6] = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];

/// Cells per stage.
const CELLS_PER_STAGE: usize = 5;

/// The name of the parameter of edge `to<-from`.
pub fn edge_param(to: usize, from: usize) -> String {
    format!("{to}<-{from}")
}

/// A dataset variant of NAS-Bench-201.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// CIFAR-10: 32×32 input, 10 classes.
    Cifar10,
    /// CIFAR-100: 32×32 input, 100 classes.
    Cifar100,
    /// ImageNet16-120: 16×16 input, 120 classes.
    ImageNet16_120,
}

impl Variant {
    /// All variants, the first being the family's default.
    pub const ALL: [Variant; 3] = [Variant::Cifar10, Variant::Cifar100, Variant::ImageNet16_120];

    /// Full space name, e.g. `nb201:cifar10`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Cifar10 => "nb201:cifar10",
            Variant::Cifar100 => "nb201:cifar100",
            Variant::ImageNet16_120 => "nb201:imagenet16-120",
        }
    }

    /// Input side (square images, 3 channels, batch 1).
    pub fn resolution(self) -> usize {
        match self {
            Variant::Cifar10 | Variant::Cifar100 => 32,
            Variant::ImageNet16_120 => 16,
        }
    }

    /// Number of classes.
    pub fn classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
            Variant::ImageNet16_120 => 120,
        }
    }

    /// The variant of a full space name.
    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    fn index(self) -> usize {
        match self {
            Variant::Cifar10 => 0,
            Variant::Cifar100 => 1,
            Variant::ImageNet16_120 => 2,
        }
    }
}

/// The NAS-Bench-201 search space of one variant.
#[derive(Debug)]
pub struct Nb201 {
    variant: Variant,
    supernet: &'static Supernet,
}

impl Nb201 {
    /// The space of a variant (its supernet is built and validated once per process).
    pub fn new(variant: Variant) -> Result<Self> {
        static CELLS: [OnceLock<Supernet>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let supernet = crate::spaces::cached(&CELLS[variant.index()], || build(variant))?;
        Ok(Nb201 { variant, supernet })
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    fn err(&self, message: String) -> IrError {
        IrError::Arch { space: self.variant.name().into(), message }
    }
}

impl SearchSpace for Nb201 {
    fn name(&self) -> &str {
        self.variant.name()
    }

    fn description(&self) -> &str {
        match self.variant {
            Variant::Cifar10 => "NAS-Bench-201 cell space, CIFAR-10 (Dong & Yang, ICLR 2020; HW-NAS-Bench)",
            Variant::Cifar100 => "NAS-Bench-201 cell space, CIFAR-100 (Dong & Yang, ICLR 2020; HW-NAS-Bench)",
            Variant::ImageNet16_120 => {
                "NAS-Bench-201 cell space, ImageNet16-120 (Dong & Yang, ICLR 2020; HW-NAS-Bench)"
            }
        }
    }

    fn supernet(&self) -> &Supernet {
        self.supernet
    }

    fn parse_arch(&self, arch: &str) -> Result<Config> {
        let arch = arch.trim();
        let nodes: Vec<&str> = arch.split('+').collect();
        if nodes.len() != 3 {
            return Err(self.err(format!(
                "expected 3 `+`-separated node groups like `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, got {}",
                nodes.len()
            )));
        }
        let mut cfg = Config::default();
        for (g, group) in nodes.iter().enumerate() {
            let to = g + 1;
            let inner = group
                .strip_prefix('|')
                .and_then(|s| s.strip_suffix('|'))
                .ok_or_else(|| self.err(format!("node group {to} (`{group}`) must start and end with `|`")))?;
            let tokens: Vec<&str> = inner.split('|').collect();
            if tokens.len() != to {
                return Err(self.err(format!(
                    "node group {to} (`{group}`) has {} entries, expected {to} (edges from nodes 0..{})",
                    tokens.len(),
                    to - 1
                )));
            }
            for (from, tok) in tokens.iter().enumerate() {
                let param = edge_param(to, from);
                let pos = EDGES.iter().position(|&e| e == (to, from)).map_or(0, |p| p + 1);
                let bad = |why: String| self.err(format!("entry {pos} (edge `{param}`) is `{tok}`: {why}"));
                let (op, src) = tok.split_once('~').ok_or_else(|| bad("expected `op~index`".into()))?;
                if src != from.to_string() {
                    return Err(bad(format!("the input index must be {from}")));
                }
                let idx = OPS
                    .iter()
                    .position(|o| *o == op)
                    .ok_or_else(|| bad(format!("unknown op `{op}`, expected one of {}", OPS.join(", "))))?;
                cfg.choices.insert(param, idx);
            }
        }
        Ok(cfg)
    }

    fn format_arch(&self, config: &Config) -> String {
        let mut out = String::new();
        for to in 1..=3 {
            if to > 1 {
                out.push('+');
            }
            out.push('|');
            for from in 0..to {
                let op = config.choices.get(&edge_param(to, from)).and_then(|&i| OPS.get(i)).copied().unwrap_or("?");
                out.push_str(&format!("{op}~{from}|"));
            }
        }
        out
    }
}

/// ReLU → conv (no bias) → BN, named `{prefix}.relu/.conv/.bn`.
fn relu_conv_bn(g: &mut Graph, prefix: &str, x: NodeId, conv: Conv2d) -> Result<NodeId> {
    let r = g.add(format!("{prefix}.relu"), Op::Relu, &[x])?;
    let c = g.add(format!("{prefix}.conv"), Op::Conv2d(conv), &[r])?;
    g.add(format!("{prefix}.bn"), Op::BatchNorm(BatchNorm::default()), &[c])
}

/// A cell at `c` channels: returns node 3.
fn cell(g: &mut Graph, prefix: &str, x: NodeId, c: usize) -> Result<NodeId> {
    let mut nodes = vec![x];
    for to in 1..=3 {
        let mut terms = Vec::with_capacity(to);
        for (from, &src) in nodes.iter().enumerate() {
            let e = format!("{prefix}.edge{to}-{from}");
            let none = g.add(format!("{e}.none"), Op::Zero, &[src])?;
            let skip = g.add(format!("{e}.skip"), Op::Identity, &[src])?;
            let c1 = relu_conv_bn(g, &format!("{e}.conv1x1"), src, Conv2d::new(c, 1, 1))?;
            let c3 = relu_conv_bn(g, &format!("{e}.conv3x3"), src, Conv2d::new(c, 3, 1))?;
            let pool = g.add(format!("{e}.avgpool"), Op::AvgPool(Pool::new(3, 1, 1)), &[src])?;
            let choice = Op::Choice(Choice { param: edge_param(to, from) });
            terms.push(g.add(e, choice, &[none, skip, c1, c3, pool])?);
        }
        let node = if terms.len() == 1 { terms[0] } else { g.add(format!("{prefix}.node{to}"), Op::Add, &terms)? };
        nodes.push(node);
    }
    Ok(nodes[3])
}

/// The ResNet basic block with stride 2 between stages, `c` → `2c` channels.
fn reduction(g: &mut Graph, prefix: &str, x: NodeId, c: usize) -> Result<NodeId> {
    let a = relu_conv_bn(g, &format!("{prefix}.conv_a"), x, Conv2d::new(2 * c, 3, 2))?;
    let b = relu_conv_bn(g, &format!("{prefix}.conv_b"), a, Conv2d::new(2 * c, 3, 1))?;
    let pool = g.add(format!("{prefix}.down.pool"), Op::AvgPool(Pool::new(2, 2, 0)), &[x])?;
    let down = g.add(format!("{prefix}.down.conv"), Op::Conv2d(Conv2d::new(2 * c, 1, 1)), &[pool])?;
    g.add(format!("{prefix}.add"), Op::Add, &[down, b])
}

/// Builds the supernet graph of a variant.
pub fn build(variant: Variant) -> Result<Graph> {
    let mut g = Graph::new(variant.name());
    for (to, from) in EDGES {
        g.add_param(edge_param(to, from), &OPS)?;
    }
    let r = variant.resolution();
    let x = g.add("input", Op::Input(Input { shape: vec![1, 3, r, r] }), &[])?;
    let s = g.add("stem.conv", Op::Conv2d(Conv2d::new(16, 3, 1)), &[x])?;
    let mut x = g.add("stem.bn", Op::BatchNorm(BatchNorm::default()), &[s])?;
    let mut c = 16;
    let mut n = 0;
    for stage in 0..3 {
        if stage > 0 {
            x = reduction(&mut g, &format!("reduce{stage}"), x, c)?;
            c *= 2;
        }
        for _ in 0..CELLS_PER_STAGE {
            x = cell(&mut g, &format!("cell{n}"), x, c)?;
            n += 1;
        }
    }
    let bn = g.add("lastact.bn", Op::BatchNorm(BatchNorm::default()), &[x])?;
    let relu = g.add("lastact.relu", Op::Relu, &[bn])?;
    let gap = g.add("gap", Op::GlobalAvgPool, &[relu])?;
    let flat = g.add("flatten", Op::Flatten, &[gap])?;
    let fc =
        g.add("classifier", Op::Dense(Dense { out_features: variant.classes(), bias: true, act: None }), &[flat])?;
    g.add("output", Op::Output, &[fc])?;
    Ok(g)
}
