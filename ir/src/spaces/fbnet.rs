//! FBNet (Wu et al., CVPR 2019) as defined by HW-NAS-Bench (Li et al., ICLR 2021).
//!
//! 22 searchable layers, each one of nine blocks: `k{3,5}_e{1,3,6}` inverted-residual
//! ConvBlocks, the grouped `k{3,5}_e1_g2` variants, and `skip`. A ConvBlock(Cin→Cout, e, k, s,
//! g) is a 1×1 conv Cin→Cin·e (groups g) + BN + ReLU → channel shuffle if g > 1 → depthwise
//! k×k stride s pad ⌈(k−s)/2⌉ + BN + ReLU → 1×1 conv Cin·e→Cout (groups g) + BN → residual
//! add iff Cin = Cout and s = 1. `skip` is the identity when s = 1 and Cin = Cout, else a 1×1
//! conv stride s + BN + ReLU. Macro: stem 3×3 conv 3→16 + BN + ReLU (stride 1 on 32×32, 2 on
//! 224×224), stages of channels [16, 24, 32, 64, 112, 184, 352], depths [1, 4, 4, 4, 4, 4, 1],
//! strides [1, 1, 2, 2, 1, 2, 1] (CIFAR) or [1, 2, 2, 2, 1, 2, 1] (ImageNet) on the first block
//! of a stage; head 1×1 conv to 1504 (CIFAR) or 1984 (ImageNet) + BN + ReLU; global average
//! pool; flatten; linear classifier with bias. Convolutions have no bias.
//!
//! Architecture strings: 22 block names separated by `,` (or `|`, as in HW-NAS-Bench's
//! tables), or 22 option indices joined by `-` (`7-8-1-…`). Printing uses the `,` form.
//!
//! [`crate::stats::totals`] of a subnet equals the `macs` of HW-NAS-Bench's table
//! (`data/fbnet_archs.csv`) for every listed architecture; its parameter count exceeds the
//! table's by exactly the BatchNorm γ/β, which the table does not count.

use std::sync::OnceLock;

use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId};
use crate::op::{BatchNorm, ChannelShuffle, Choice, Conv2d, Dense, Input, Op};
use crate::select::{Config, Supernet};
use crate::spaces::{format_labels, parse_labels, SearchSpace};

/// The nine blocks, in option-index order.
pub const OPS: [&str; 9] = ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip"];

/// Number of searchable layers.
pub const LAYERS: usize = 22;

/// Output channels of the stages.
const CHANNELS: [usize; 7] = [16, 24, 32, 64, 112, 184, 352];
/// Blocks per stage.
const DEPTHS: [usize; 7] = [1, 4, 4, 4, 4, 4, 1];

/// A dataset variant of the FBNet space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// CIFAR-100: 32×32 input, 100 classes, head of 1504 channels.
    Cifar100,
    /// ImageNet: 224×224 input, 1000 classes, head of 1984 channels.
    ImageNet,
}

impl Variant {
    /// All variants, the first being the family's default.
    pub const ALL: [Variant; 2] = [Variant::Cifar100, Variant::ImageNet];

    /// Full space name, e.g. `fbnet:cifar100`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Cifar100 => "fbnet:cifar100",
            Variant::ImageNet => "fbnet:imagenet",
        }
    }

    /// Input side (square images, 3 channels, batch 1).
    pub fn resolution(self) -> usize {
        match self {
            Variant::Cifar100 => 32,
            Variant::ImageNet => 224,
        }
    }

    /// Number of classes.
    pub fn classes(self) -> usize {
        match self {
            Variant::Cifar100 => 100,
            Variant::ImageNet => 1000,
        }
    }

    /// Channels of the head 1×1 conv.
    pub fn head_channels(self) -> usize {
        match self {
            Variant::Cifar100 => 1504,
            Variant::ImageNet => 1984,
        }
    }

    /// Stride of the stem conv.
    pub fn stem_stride(self) -> usize {
        match self {
            Variant::Cifar100 => 1,
            Variant::ImageNet => 2,
        }
    }

    /// Stride of the first block of each stage.
    pub fn stage_strides(self) -> [usize; 7] {
        match self {
            Variant::Cifar100 => [1, 1, 2, 2, 1, 2, 1],
            Variant::ImageNet => [1, 2, 2, 2, 1, 2, 1],
        }
    }

    /// The variant of a full space name.
    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    fn index(self) -> usize {
        match self {
            Variant::Cifar100 => 0,
            Variant::ImageNet => 1,
        }
    }
}

/// The FBNet search space of one variant.
#[derive(Debug)]
pub struct FbNet {
    variant: Variant,
    supernet: &'static Supernet,
}

impl FbNet {
    /// The space of a variant (its supernet is built and validated once per process).
    pub fn new(variant: Variant) -> Result<Self> {
        static CELLS: [OnceLock<Supernet>; 2] = [OnceLock::new(), OnceLock::new()];
        let supernet = crate::spaces::cached(&CELLS[variant.index()], || build(variant))?;
        Ok(FbNet { variant, supernet })
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }
}

impl SearchSpace for FbNet {
    fn name(&self) -> &str {
        self.variant.name()
    }

    fn description(&self) -> &str {
        match self.variant {
            Variant::Cifar100 => "FBNet block space, CIFAR-100 (Wu et al., CVPR 2019; as in HW-NAS-Bench, ICLR 2021)",
            Variant::ImageNet => "FBNet block space, ImageNet (Wu et al., CVPR 2019; as in HW-NAS-Bench, ICLR 2021)",
        }
    }

    fn supernet(&self) -> &Supernet {
        self.supernet
    }

    fn parse_arch(&self, arch: &str) -> Result<Config> {
        let sep = if arch.contains(',') {
            ','
        } else if arch.contains('|') {
            '|'
        } else if arch.contains('-') {
            '-'
        } else {
            ','
        };
        parse_labels(self.variant.name(), self.supernet.graph(), arch, sep)
    }

    fn format_arch(&self, config: &Config) -> String {
        format_labels(self.supernet.graph(), config, ",")
    }
}

/// Conv (no bias) → BN, then ReLU when `relu`.
fn conv_bn(g: &mut Graph, prefix: &str, x: NodeId, conv: Conv2d, relu: bool) -> Result<NodeId> {
    let c = g.add(format!("{prefix}.conv"), Op::Conv2d(conv), &[x])?;
    let b = g.add(format!("{prefix}.bn"), Op::BatchNorm(BatchNorm::default()), &[c])?;
    if relu {
        g.add(format!("{prefix}.relu"), Op::Relu, &[b])
    } else {
        Ok(b)
    }
}

/// One candidate block `op` (an entry of [`OPS`]).
fn block(g: &mut Graph, prefix: &str, x: NodeId, op: &str, cin: usize, cout: usize, s: usize) -> Result<NodeId> {
    let internal = |m: &str| IrError::Param { param: prefix.into(), message: format!("bad FBNet block `{op}`: {m}") };
    if op == "skip" {
        return if s == 1 && cin == cout {
            g.add(format!("{prefix}.identity"), Op::Identity, &[x])
        } else {
            conv_bn(g, prefix, x, Conv2d::new(cout, 1, s), true)
        };
    }
    let mut parts = op.split('_');
    let k: usize = parts
        .next()
        .and_then(|p| p.strip_prefix('k'))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| internal("kernel"))?;
    let e: usize = parts
        .next()
        .and_then(|p| p.strip_prefix('e'))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| internal("expand"))?;
    let groups: usize = match parts.next() {
        None => 1,
        Some(p) => p.strip_prefix('g').and_then(|p| p.parse().ok()).ok_or_else(|| internal("groups"))?,
    };
    let mid = cin * e;
    let mut y = conv_bn(g, &format!("{prefix}.conv1"), x, Conv2d::new(mid, 1, 1).with_groups(groups), true)?;
    if groups > 1 {
        y = g.add(format!("{prefix}.shuffle"), Op::ChannelShuffle(ChannelShuffle { groups }), &[y])?;
    }
    let pad = (k - s).div_ceil(2);
    y = conv_bn(g, &format!("{prefix}.conv2"), y, Conv2d::depthwise(k, s, pad), true)?;
    y = conv_bn(g, &format!("{prefix}.conv3"), y, Conv2d::new(cout, 1, 1).with_groups(groups), false)?;
    if cin == cout && s == 1 {
        y = g.add(format!("{prefix}.add"), Op::Add, &[y, x])?;
    }
    Ok(y)
}

/// Whether the node (or fused kernel) named `name` of an FBNet subnet belongs to one of its
/// searchable ConvBlocks: `layer{i}.{op}.…` with `op` not `skip`. The stem, the `skip` blocks'
/// 1×1 convolutions, the head, the pooling and the classifier do not (HW-NAS-Bench's FPGA
/// columns count only these blocks).
pub fn in_convblock(name: &str) -> bool {
    let layer = block_of(name).strip_prefix("layer").is_some_and(|i| i.parse::<usize>().is_ok());
    layer && name.split('.').nth(1).is_some_and(|op| op != "skip" && OPS.contains(&op))
}

/// The block of an FBNet subnet that the node (or fused kernel) named `name` belongs to: its
/// name's first part — `stem`, `layer{i}`, `head`, `gap` or `classifier` (HW-NAS-Bench times
/// each of these on its own on the Jetson TX2).
pub fn block_of(name: &str) -> &str {
    name.split('.').next().unwrap_or_default()
}

/// Builds the supernet graph of a variant.
pub fn build(variant: Variant) -> Result<Graph> {
    let mut g = Graph::new(variant.name());
    for l in 0..LAYERS {
        g.add_param(format!("layer{l}"), &OPS)?;
    }
    let r = variant.resolution();
    let x = g.add("input", Op::Input(Input { shape: vec![1, 3, r, r] }), &[])?;
    let mut x = conv_bn(&mut g, "stem", x, Conv2d::new(16, 3, variant.stem_stride()), true)?;
    let mut cin = 16;
    let mut layer = 0;
    for (stage, (&cout, &depth)) in CHANNELS.iter().zip(&DEPTHS).enumerate() {
        for b in 0..depth {
            let s = if b == 0 { variant.stage_strides()[stage] } else { 1 };
            let mut cands = Vec::with_capacity(OPS.len());
            for op in OPS {
                cands.push(block(&mut g, &format!("layer{layer}.{op}"), x, op, cin, cout, s)?);
            }
            x = g.add(format!("layer{layer}"), Op::Choice(Choice { param: format!("layer{layer}") }), &cands)?;
            cin = cout;
            layer += 1;
        }
    }
    x = conv_bn(&mut g, "head", x, Conv2d::new(variant.head_channels(), 1, 1), true)?;
    let gap = g.add("gap", Op::GlobalAvgPool, &[x])?;
    let flat = g.add("flatten", Op::Flatten, &[gap])?;
    let fc =
        g.add("classifier", Op::Dense(Dense { out_features: variant.classes(), bias: true, act: None }), &[flat])?;
    g.add("output", Op::Output, &[fc])?;
    Ok(g)
}
