//! `ofa-mbv3:w1.2`: the Once-for-All MobileNetV3-Large space (Cai et al., ICLR 2020) at width
//! multiplier 1.2, ImageNet (1000 classes).
//!
//! First conv 3×3 3→24 stride 2 + BN + hswish; a fixed first block (depthwise 3×3 + BN + ReLU
//! → 1×1 project 24→24 + BN → residual add); five stages of up to four elastic blocks:
//!
//! | stage | channels | stride | activation | SE |
//! |---|---|---|---|---|
//! | 1 | 32 | 2 | ReLU | no |
//! | 2 | 48 | 2 | ReLU | yes |
//! | 3 | 96 | 2 | hswish | no |
//! | 4 | 136 | 1 | hswish | yes |
//! | 5 | 192 | 2 | hswish | yes |
//!
//! A block (C_in → C): 1×1 expand to `mid = make_divisible(C_in·e, 8)` + BN + act → depthwise
//! k×k (stride of the stage on its first block, padding (k−1)/2) + BN + act → squeeze-excite
//! where the stage has it (global average pool → 1×1 conv mid→`make_divisible(mid/4, 8)` with
//! bias + ReLU → 1×1 conv back to mid with bias + hsigmoid → product with the features) → 1×1
//! project to C + BN → residual add when stride 1 and C_in = C. Head: 1×1 conv 192→1152 + BN +
//! hswish, global average pool, 1×1 conv 1152→1536 + hswish, flatten, dense → 1000 (bias).
//! These shapes agree with the OFA Note10 latency table (`data/ofa_note10_lut*.{csv,jsonl}`).
//!
//! Parameters: `s{S}.b{B}.k` (options `k3, k5, k7`) and `s{S}.b{B}.e` (`e3, e4, e6`) for
//! S in 1..=5, B in 1..=4; `s{S}.depth` (`d2, d3, d4`): blocks 3 and 4 of a stage are each
//! followed by a choice on the stage's depth parameter between the block's output and its
//! input (so a skipped block leaves no node in the subnet, not even an identity); and
//! `resolution` (`r128, r144, …, r224`): the supernet has one input node per resolution
//! (`input.r128`, …) behind a choice `input`, and selection keeps only the chosen one, so every
//! subnet has a single input.
//!
//! Architecture string: `ks=3,5,7,…;e=3,4,6,…;d=2,3,4,4,3;r=224` — 20 kernel sizes and 20
//! expand ratios (stage-major, block-minor; blocks that the depth skips are still listed), 5
//! depths, the resolution.

use std::sync::OnceLock;

use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId};
use crate::op::{BatchNorm, Choice, Conv2d, Dense, Input, Op};
use crate::select::{Config, Supernet};
use crate::spaces::SearchSpace;

/// Full name of the space.
pub const NAME: &str = "ofa-mbv3:w1.2";

/// Kernel sizes.
pub const KERNELS: [usize; 3] = [3, 5, 7];
/// Expand ratios.
pub const EXPANDS: [usize; 3] = [3, 4, 6];
/// Stage depths.
pub const DEPTHS: [usize; 3] = [2, 3, 4];
/// Input resolutions.
pub const RESOLUTIONS: [usize; 7] = [128, 144, 160, 176, 192, 208, 224];
/// Stages: (channels, stride, hswish (else ReLU), squeeze-excite).
pub const STAGES: [(usize, usize, bool, bool); 5] =
    [(32, 2, false, false), (48, 2, false, true), (96, 2, true, false), (136, 1, true, true), (192, 2, true, true)];
/// Maximum blocks per stage.
pub const MAX_DEPTH: usize = 4;
/// Number of classes.
pub const CLASSES: usize = 1000;

/// The OFA MobileNetV3 space.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfaMbv3;

/// OFA's `make_divisible`: `v` rounded to the nearest multiple of `d` (at least `d`), not
/// going below 90 % of `v`.
pub fn make_divisible(v: f64, d: usize) -> usize {
    let df = d as f64;
    let mut n = (((v + df / 2.0) / df).floor() as usize * d).max(d);
    if (n as f64) < 0.9 * v {
        n += d;
    }
    n
}

fn bn_act(g: &mut Graph, name: &str, x: NodeId, hswish: bool) -> Result<NodeId> {
    let b = g.add(format!("{name}.bn"), Op::BatchNorm(BatchNorm::default()), &[x])?;
    if hswish {
        g.add(format!("{name}.hswish"), Op::Hswish, &[b])
    } else {
        g.add(format!("{name}.relu"), Op::Relu, &[b])
    }
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn choice(g: &mut Graph, name: String, param: &str, cands: &[NodeId]) -> Result<NodeId> {
    g.add(name, Op::Choice(Choice { param: param.to_string() }), cands)
}

/// Adds one elastic block; returns its output.
fn block(
    g: &mut Graph,
    p: &str,
    x: NodeId,
    cin: usize,
    stage: (usize, usize, bool, bool),
    stride: usize,
) -> Result<NodeId> {
    let (cout, _, hs, se) = stage;
    let (kp, ep) = (format!("{p}.k"), format!("{p}.e"));
    let mids: Vec<usize> = EXPANDS.iter().map(|&e| make_divisible((cin * e) as f64, 8)).collect();
    let cands = EXPANDS
        .iter()
        .zip(&mids)
        .map(|(e, &m)| g.add(format!("{p}.expand.e{e}"), Op::Conv2d(Conv2d::new(m, 1, 1)), &[x]))
        .collect::<Result<Vec<_>>>()?;
    let h = choice(g, format!("{p}.expand"), &ep, &cands)?;
    let h = bn_act(g, &format!("{p}.expand"), h, hs)?;
    let cands = KERNELS
        .iter()
        .map(|&k| g.add(format!("{p}.dw.k{k}"), Op::Conv2d(Conv2d::depthwise(k, stride, (k - 1) / 2)), &[h]))
        .collect::<Result<Vec<_>>>()?;
    let h = choice(g, format!("{p}.dw"), &kp, &cands)?;
    let mut h = bn_act(g, &format!("{p}.dw"), h, hs)?;
    if se {
        let s = g.add(format!("{p}.se.gap"), Op::GlobalAvgPool, &[h])?;
        let cands = EXPANDS
            .iter()
            .zip(&mids)
            .map(|(e, &m)| {
                let r = make_divisible(m as f64 / 4.0, 8);
                g.add(format!("{p}.se.reduce.e{e}"), Op::Conv2d(Conv2d::new(r, 1, 1).with_bias()), &[s])
            })
            .collect::<Result<Vec<_>>>()?;
        let s = choice(g, format!("{p}.se.reduce"), &ep, &cands)?;
        let s = g.add(format!("{p}.se.relu"), Op::Relu, &[s])?;
        let cands = EXPANDS
            .iter()
            .zip(&mids)
            .map(|(e, &m)| g.add(format!("{p}.se.expand.e{e}"), Op::Conv2d(Conv2d::new(m, 1, 1).with_bias()), &[s]))
            .collect::<Result<Vec<_>>>()?;
        let s = choice(g, format!("{p}.se.expand"), &ep, &cands)?;
        let s = g.add(format!("{p}.se.hsigmoid"), Op::Hsigmoid, &[s])?;
        h = g.add(format!("{p}.se.mul"), Op::Mul, &[h, s])?;
    }
    let h = g.add(format!("{p}.project"), Op::Conv2d(Conv2d::new(cout, 1, 1)), &[h])?;
    let h = g.add(format!("{p}.project.bn"), Op::BatchNorm(BatchNorm::default()), &[h])?;
    if stride == 1 && cin == cout {
        g.add(format!("{p}.add"), Op::Add, &[x, h])
    } else {
        Ok(h)
    }
}

/// Builds the supernet graph (unvalidated).
pub fn build() -> Result<Graph> {
    let mut g = Graph::new("ofa-mbv3-w1.2");
    let labels = |prefix: &str, v: &[usize]| v.iter().map(|x| format!("{prefix}{x}")).collect::<Vec<_>>();
    let res = labels("r", &RESOLUTIONS);
    g.add_param("resolution", &as_strs(&res))?;
    let mut inputs = Vec::new();
    for &r in &RESOLUTIONS {
        inputs.push(g.add(format!("input.r{r}"), Op::Input(Input { shape: vec![1, 3, r, r] }), &[])?);
    }
    let x = choice(&mut g, "input".into(), "resolution", &inputs)?;
    let x = g.add("first_conv", Op::Conv2d(Conv2d::new(24, 3, 2)), &[x])?;
    let x = bn_act(&mut g, "first_conv", x, true)?;
    let h = g.add("first_block.dw", Op::Conv2d(Conv2d::depthwise(3, 1, 1)), &[x])?;
    let h = bn_act(&mut g, "first_block.dw", h, false)?;
    let h = g.add("first_block.project", Op::Conv2d(Conv2d::new(24, 1, 1)), &[h])?;
    let h = g.add("first_block.project.bn", Op::BatchNorm(BatchNorm::default()), &[h])?;
    let mut x = g.add("first_block.add", Op::Add, &[x, h])?;
    let mut cin = 24;
    let (ks, es, ds) = (labels("k", &KERNELS), labels("e", &EXPANDS), labels("d", &DEPTHS));
    for (si, &stage) in STAGES.iter().enumerate() {
        let (c, stride, _, _) = stage;
        let s = si + 1;
        let dp = format!("s{s}.depth");
        g.add_param(dp.clone(), &as_strs(&ds))?;
        for b in 1..=MAX_DEPTH {
            let p = format!("s{s}.b{b}");
            g.add_param(format!("{p}.k"), &as_strs(&ks))?;
            g.add_param(format!("{p}.e"), &as_strs(&es))?;
            let st = if b == 1 { stride } else { 1 };
            let out = block(&mut g, &p, x, cin, stage, st)?;
            x = match b {
                3 => choice(&mut g, format!("{p}.depth"), &dp, &[x, out, out])?,
                4 => choice(&mut g, format!("{p}.depth"), &dp, &[x, x, out])?,
                _ => out,
            };
            cin = c;
        }
    }
    let h = g.add("final_expand", Op::Conv2d(Conv2d::new(1152, 1, 1)), &[x])?;
    let h = bn_act(&mut g, "final_expand", h, true)?;
    let h = g.add("gap", Op::GlobalAvgPool, &[h])?;
    let h = g.add("feature_mix", Op::Conv2d(Conv2d::new(1536, 1, 1)), &[h])?;
    let h = g.add("feature_mix.hswish", Op::Hswish, &[h])?;
    let h = g.add("flatten", Op::Flatten, &[h])?;
    let h = g.add("classifier", Op::Dense(Dense { out_features: CLASSES, bias: true, act: None }), &[h])?;
    g.add("output", Op::Output, &[h])?;
    Ok(g)
}

impl OfaMbv3 {
    fn net() -> &'static Supernet {
        static NET: OnceLock<Supernet> = OnceLock::new();
        crate::spaces::cached(&NET, build).expect("the built-in supernet builds and validates")
    }
}

fn arch_err(message: String) -> IrError {
    IrError::Arch { space: NAME.into(), message }
}

/// Parses one `key=v,v,…` part: the values, each one of `allowed`, `n` of them.
fn parse_list(part: &str, pos: usize, key: &str, n: usize, allowed: &[usize]) -> Result<Vec<usize>> {
    let (k, vals) = part.split_once('=').ok_or_else(|| {
        arch_err(format!("part {pos} is `{part}`, expected `{key}=` followed by {n} comma-separated values"))
    })?;
    if k.trim() != key {
        return Err(arch_err(format!("part {pos} starts with `{}`, expected `{key}=`", k.trim())));
    }
    let vals: Vec<&str> = vals.split(',').map(str::trim).collect();
    if vals.len() != n {
        return Err(arch_err(format!("`{key}` has {} values, expected {n}", vals.len())));
    }
    let list = allowed.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
    vals.iter()
        .enumerate()
        .map(|(i, v)| {
            v.parse::<usize>()
                .ok()
                .and_then(|x| allowed.iter().position(|&a| a == x))
                .ok_or_else(|| arch_err(format!("`{key}` entry {} is `{v}`, expected one of {list}", i + 1)))
        })
        .collect()
}

impl SearchSpace for OfaMbv3 {
    fn name(&self) -> &str {
        NAME
    }

    fn description(&self) -> &str {
        "Once-for-All MobileNetV3-Large, width 1.2, ImageNet: elastic kernel 3/5/7, expand 3/4/6, depth 2-4 per \
         stage, resolution 128-224 (Cai et al., ICLR 2020)"
    }

    fn supernet(&self) -> &Supernet {
        Self::net()
    }

    fn parse_arch(&self, arch: &str) -> Result<Config> {
        let parts: Vec<&str> = arch.split(';').map(str::trim).collect();
        if parts.len() != 4 {
            return Err(arch_err(format!("expected 4 `;`-separated parts `ks=…;e=…;d=…;r=…`, got {}", parts.len())));
        }
        let nb = STAGES.len() * MAX_DEPTH;
        let ks = parse_list(parts[0], 1, "ks", nb, &KERNELS)?;
        let es = parse_list(parts[1], 2, "e", nb, &EXPANDS)?;
        let ds = parse_list(parts[2], 3, "d", STAGES.len(), &DEPTHS)?;
        let r = parse_list(parts[3], 4, "r", 1, &RESOLUTIONS)?;
        let mut cfg = Config::default();
        cfg.choices.insert("resolution".into(), r[0]);
        for s in 0..STAGES.len() {
            cfg.choices.insert(format!("s{}.depth", s + 1), ds[s]);
            for b in 0..MAX_DEPTH {
                let i = s * MAX_DEPTH + b;
                cfg.choices.insert(format!("s{}.b{}.k", s + 1, b + 1), ks[i]);
                cfg.choices.insert(format!("s{}.b{}.e", s + 1, b + 1), es[i]);
            }
        }
        Ok(cfg)
    }

    fn format_arch(&self, config: &Config) -> String {
        let get = |name: &str, values: &[usize]| {
            config.choices.get(name).and_then(|&i| values.get(i)).map_or("?".to_string(), |v| v.to_string())
        };
        let blocks = |suffix: &str, values: &[usize]| {
            (1..=STAGES.len())
                .flat_map(|s| (1..=MAX_DEPTH).map(move |b| (s, b)))
                .map(|(s, b)| get(&format!("s{s}.b{b}.{suffix}"), values))
                .collect::<Vec<_>>()
                .join(",")
        };
        let ds = (1..=STAGES.len()).map(|s| get(&format!("s{s}.depth"), &DEPTHS)).collect::<Vec<_>>().join(",");
        format!("ks={};e={};d={ds};r={}", blocks("k", &KERNELS), blocks("e", &EXPANDS), get("resolution", &RESOLUTIONS))
    }
}
