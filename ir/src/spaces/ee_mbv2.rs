//! `ee-mbv2:cifar10`: a MobileNetV2 backbone for CIFAR-10 with three early exits
//! (BranchyNet / Shallow-Deep Networks style).
//!
//! Stem 3×3 conv 3→32 stride 1 + BN + ReLU6; a fixed first block (`b0`, MobileNetV2's `t = 1`
//! block: depthwise 3×3 + BN + ReLU6 → 1×1 project to 16 + BN); then 16 searchable inverted
//! residual blocks `b1`..`b16` following MobileNetV2's stage plan (c, n, s) = (24, 2, 1),
//! (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1) — the CIFAR adaptation keeps
//! the stem and the 24-channel stage at stride 1. Each searchable block is a parameter with
//! options `k3_e3, k3_e6, k5_e3, k5_e6, k7_e6` (depthwise kernel, expand ratio): 1×1 expand +
//! BN + ReLU6 → depthwise k×k stride s pad (k−1)/2 + BN + ReLU6 → 1×1 project + BN → residual
//! add when stride 1 and C_in = C_out.
//!
//! Exits `exit0`, `exit1`, `exit2` follow the last block of the 32-, 64- and 96-channel stages
//! (`b5`, `b9`, `b12`): 1×1 conv → 128 + BN + ReLU6, global average pool, flatten, dense → 10,
//! then an exit (max softmax ≥ 0.9). Final head: 1×1 conv 320→1280 + BN + ReLU6, global average
//! pool, flatten, dense → 10, output.
//!
//! Architecture string: the 16 option labels of `b1`..`b16`, comma-separated, e.g.
//! `k3_e6,k5_e3,…`.

use std::sync::OnceLock;

use crate::error::Result;
use crate::graph::{Graph, NodeId};
use crate::op::{BatchNorm, Conv2d, Dense, Exit, ExitRule, Input, Op};
use crate::select::{Config, Supernet};
use crate::spaces::{format_labels, parse_labels, SearchSpace};

/// Full name of the space.
pub const NAME: &str = "ee-mbv2:cifar10";

/// Option labels of every searchable block: (label, kernel, expand ratio).
pub const OPTIONS: [(&str, usize, usize); 5] =
    [("k3_e3", 3, 3), ("k3_e6", 3, 6), ("k5_e3", 5, 3), ("k5_e6", 5, 6), ("k7_e6", 7, 6)];

/// Stages of searchable blocks: (output channels, blocks, stride of the first block).
pub const STAGES: [(usize, usize, usize); 6] =
    [(24, 2, 1), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1)];

/// The blocks after which an exit is attached (last block of the 32-, 64- and 96-channel
/// stages).
pub const EXIT_AFTER: [usize; 3] = [5, 9, 12];

/// Number of classes.
pub const CLASSES: usize = 10;

/// The early-exit MobileNetV2 space.
#[derive(Debug, Clone, Copy, Default)]
pub struct EeMbv2;

fn conv_bn(g: &mut Graph, name: &str, conv: Conv2d, x: NodeId, relu6: bool) -> Result<NodeId> {
    let c = g.add(name.to_string(), Op::Conv2d(conv), &[x])?;
    let b = g.add(format!("{name}.bn"), Op::BatchNorm(BatchNorm::default()), &[c])?;
    if relu6 {
        g.add(format!("{name}.relu6"), Op::Relu6, &[b])
    } else {
        Ok(b)
    }
}

fn classifier(g: &mut Graph, prefix: &str, x: NodeId) -> Result<NodeId> {
    let p = g.add(format!("{prefix}.gap"), Op::GlobalAvgPool, &[x])?;
    let f = g.add(format!("{prefix}.flatten"), Op::Flatten, &[p])?;
    g.add(format!("{prefix}.fc"), Op::Dense(Dense { out_features: CLASSES, bias: true, act: None }), &[f])
}

/// Builds the supernet graph (unvalidated).
pub fn build() -> Result<Graph> {
    let mut g = Graph::new("ee-mbv2-cifar10");
    let x = g.add("input", Op::Input(Input { shape: vec![1, 3, 32, 32] }), &[])?;
    let mut x = conv_bn(&mut g, "stem", Conv2d::new(32, 3, 1), x, true)?;
    // Fixed first block (t = 1): depthwise 3×3 → project to 16.
    let dw = conv_bn(&mut g, "b0.dw", Conv2d::depthwise(3, 1, 1), x, true)?;
    x = conv_bn(&mut g, "b0.project", Conv2d::new(16, 1, 1), dw, false)?;
    let mut cin = 16;
    let mut block = 0;
    for &(cout, n, s) in &STAGES {
        for i in 0..n {
            block += 1;
            let stride = if i == 0 { s } else { 1 };
            let param = format!("b{block}");
            let labels: Vec<&str> = OPTIONS.iter().map(|o| o.0).collect();
            g.add_param(param.clone(), &labels)?;
            let mut cands = Vec::with_capacity(OPTIONS.len());
            for &(label, k, e) in &OPTIONS {
                let p = format!("{param}.{label}");
                let h = conv_bn(&mut g, &format!("{p}.expand"), Conv2d::new(cin * e, 1, 1), x, true)?;
                let h = conv_bn(&mut g, &format!("{p}.dw"), Conv2d::depthwise(k, stride, (k - 1) / 2), h, true)?;
                let h = conv_bn(&mut g, &format!("{p}.project"), Conv2d::new(cout, 1, 1), h, false)?;
                let out = if stride == 1 && cin == cout { g.add(format!("{p}.add"), Op::Add, &[x, h])? } else { h };
                cands.push(out);
            }
            x = g.add(param.clone(), Op::Choice(crate::op::Choice { param }), &cands)?;
            cin = cout;
            if let Some(e) = EXIT_AFTER.iter().position(|&b| b == block) {
                let p = format!("exit{e}.head");
                let h = conv_bn(&mut g, &format!("{p}.conv"), Conv2d::new(128, 1, 1), x, true)?;
                let scores = classifier(&mut g, &p, h)?;
                g.add(format!("exit{e}"), Op::Exit(Exit { rule: ExitRule::MaxSoftmax, threshold: 0.9 }), &[scores])?;
            }
        }
    }
    let h = conv_bn(&mut g, "head.conv", Conv2d::new(1280, 1, 1), x, true)?;
    let scores = classifier(&mut g, "head", h)?;
    g.add("output", Op::Output, &[scores])?;
    Ok(g)
}

impl EeMbv2 {
    fn net() -> &'static Supernet {
        static NET: OnceLock<Supernet> = OnceLock::new();
        crate::spaces::cached(&NET, build).expect("the built-in supernet builds and validates")
    }
}

impl SearchSpace for EeMbv2 {
    fn name(&self) -> &str {
        NAME
    }

    fn description(&self) -> &str {
        "MobileNetV2 for CIFAR-10 with 16 searchable blocks (kernel 3/5/7, expand 3/6) and three early exits \
         (BranchyNet, Teerapittayanon et al. 2016; SDN, Kaya et al. 2019)"
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
