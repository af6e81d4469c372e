//! `skipnet-resnet:cifar10`: SkipNet (Wang et al., ECCV 2018) — a gated ResNet-38 for
//! CIFAR-10 — with a searchable kernel size per block.
//!
//! Stem 3×3 conv 3→16 + BN + ReLU; three stages of six basic blocks at 16, 32 and 64 channels
//! (blocks 0..17). A basic block is k×k conv stride s + BN + ReLU → k×k conv + BN, plus the
//! shortcut (identity, or 1×1 stride-2 conv + BN at the first block of stages 2 and 3), added,
//! then ReLU. The kernel size is the parameter `b{i}` with options `k3`, `k5` (padding
//! (k−1)/2). Every block that keeps its shape (16 of them) is gated by SkipNet's feed-forward
//! gate: global average pool of the block input → flatten → dense C→1 (bias) gives a logit;
//! the gate `gate{i}` (inputs: block input, block output, logit) runs the block when the logit
//! is > 0. Head: global average pool, flatten, dense → 10, output.
//!
//! Architecture string: the 18 labels of `b0`..`b17`, comma-separated, e.g. `k3,k5,…`.

use std::sync::OnceLock;

use crate::error::Result;
use crate::graph::{Graph, NodeId};
use crate::op::{BatchNorm, Choice, Conv2d, Dense, Gate, GateDecision, Input, Op};
use crate::select::{Config, Supernet};
use crate::spaces::{format_labels, parse_labels, SearchSpace};

/// Full name of the space.
pub const NAME: &str = "skipnet-resnet:cifar10";

/// Kernel options of every block: (label, kernel).
pub const OPTIONS: [(&str, usize); 2] = [("k3", 3), ("k5", 5)];

/// Channels of the three stages.
pub const CHANNELS: [usize; 3] = [16, 32, 64];

/// Basic blocks per stage.
pub const BLOCKS_PER_STAGE: usize = 6;

/// Number of classes.
pub const CLASSES: usize = 10;

/// The SkipNet space.
#[derive(Debug, Clone, Copy, Default)]
pub struct SkipNet;

fn conv_bn(g: &mut Graph, name: &str, conv: Conv2d, x: NodeId, relu: bool) -> Result<NodeId> {
    let c = g.add(name.to_string(), Op::Conv2d(conv), &[x])?;
    let b = g.add(format!("{name}.bn"), Op::BatchNorm(BatchNorm::default()), &[c])?;
    if relu {
        g.add(format!("{name}.relu"), Op::Relu, &[b])
    } else {
        Ok(b)
    }
}

/// Whether block `i` (0-based over the whole network) is gated: all but the first block of
/// stages 2 and 3.
pub fn is_gated(i: usize) -> bool {
    !(i % BLOCKS_PER_STAGE == 0 && i > 0)
}

/// Builds the supernet graph (unvalidated).
pub fn build() -> Result<Graph> {
    let mut g = Graph::new("skipnet-resnet38-cifar10");
    let x = g.add("input", Op::Input(Input { shape: vec![1, 3, 32, 32] }), &[])?;
    let mut x = conv_bn(&mut g, "stem", Conv2d::new(16, 3, 1), x, true)?;
    let mut cin = 16;
    for (stage, &c) in CHANNELS.iter().enumerate() {
        for j in 0..BLOCKS_PER_STAGE {
            let i = stage * BLOCKS_PER_STAGE + j;
            let stride = if j == 0 && stage > 0 { 2 } else { 1 };
            let param = format!("b{i}");
            let labels: Vec<&str> = OPTIONS.iter().map(|o| o.0).collect();
            g.add_param(param.clone(), &labels)?;
            let mut cands = Vec::with_capacity(OPTIONS.len());
            for &(label, k) in &OPTIONS {
                let p = format!("b{i}.{label}");
                let h = conv_bn(&mut g, &format!("{p}.conv1"), Conv2d::new(c, k, stride), x, true)?;
                let h = conv_bn(&mut g, &format!("{p}.conv2"), Conv2d::new(c, k, 1), h, false)?;
                let short = if stride != 1 || cin != c {
                    conv_bn(&mut g, &format!("{p}.shortcut"), Conv2d::new(c, 1, stride), x, false)?
                } else {
                    x
                };
                let a = g.add(format!("{p}.add"), Op::Add, &[h, short])?;
                cands.push(g.add(format!("{p}.relu"), Op::Relu, &[a])?);
            }
            let body = g.add(format!("b{i}.choice"), Op::Choice(Choice { param }), &cands)?;
            x = if is_gated(i) {
                let p = g.add(format!("gate{i}.gap"), Op::GlobalAvgPool, &[x])?;
                let f = g.add(format!("gate{i}.flatten"), Op::Flatten, &[p])?;
                let logit =
                    g.add(format!("gate{i}.fc"), Op::Dense(Dense { out_features: 1, bias: true, act: None }), &[f])?;
                g.add(format!("gate{i}"), Op::Gate(Gate { decision: GateDecision::Logit }), &[x, body, logit])?
            } else {
                body
            };
            cin = c;
        }
    }
    let p = g.add("head.gap", Op::GlobalAvgPool, &[x])?;
    let f = g.add("head.flatten", Op::Flatten, &[p])?;
    let s = g.add("head.fc", Op::Dense(Dense { out_features: CLASSES, bias: true, act: None }), &[f])?;
    g.add("output", Op::Output, &[s])?;
    Ok(g)
}

impl SkipNet {
    fn net() -> &'static Supernet {
        static NET: OnceLock<Supernet> = OnceLock::new();
        crate::spaces::cached(&NET, build).expect("the built-in supernet builds and validates")
    }
}

impl SearchSpace for SkipNet {
    fn name(&self) -> &str {
        NAME
    }

    fn description(&self) -> &str {
        "SkipNet gated ResNet-38 for CIFAR-10 with 16 feed-forward gates and a 3/5 kernel per block \
         (Wang et al., ECCV 2018)"
    }

    fn supernet(&self) -> &Supernet {
        Self::net()
    }

    fn parse_arch(&self, arch: &str) -> Result<Config> {
        parse_labels(NAME, self.supernet().graph(), arch, ',')
    }

    fn format_arch(&self, config: &Config) -> String {
        format_labels(self.supernet().graph(), config, ",")
    }
}
