//! Layer tables of the public per-network and per-block measurements in `data/` that are not
//! subnets of a built-in space: the ncnn benchmark networks (`ncnn_model_layers.csv`,
//! `ncnn_results.csv`) and the Once-for-All Note10 block table (`ofa_note10_lut_layers.jsonl`).
//! Both become [`crate::layers`] models with their measurements, ready for calibration and for
//! the few-shot study (`nasc study fewshot`, `nasc study tables` writes them out).
//!
//! **ncnn.** The `.param` files list layers with shape hints but the dataset keeps no blob
//! names, so the wiring is rebuilt from shapes: a layer reads the most recent tensor of its
//! input shape (a `Split` only re-exposes its input). Convolutions (grouped and depthwise, with
//! their fused activation; padding from the shapes), inner products, pooling, global pooling
//! and mean reductions, activations, batch norm, residual sums, squeeze-excite products,
//! channel concats, slices and crops, channel shuffles, flatten and softmax are kept (a
//! convolution or inner product with an `int8_scale_term` as an int8 layer); what the
//! layer vocabulary cannot express (upsampling, deconvolution, permute/reshape, priors and
//! detection outputs, LRN) is left out, and a layer reading such a tensor starts a new segment
//! (`from = new`). [`Ncnn::skipped`] lists what was left out, per model, with its MACs. The
//! networks whose shape hints are complete are converted, the `_int8` variants included.
//!
//! **Note10.** Each block of the table (at resolutions 160–224) is one model: MobileNetV3
//! blocks with their squeeze-excite branch and residual, BatchNorm folded into the
//! convolutions as TFLite does.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::ir::Precision;
use crate::layers::{Layer, Source};
use crate::study::Measurement;

/// Models as layer tables, in order.
pub type Models = Vec<(String, Vec<Layer>)>;

/// A board's single-core CPU rows in `ncnn_results.csv`.
#[derive(Clone, Debug)]
pub struct Board {
    /// Short name used in the study.
    pub key: &'static str,
    /// The `device_section` it is read from.
    pub section: &'static str,
    /// `powersave` values accepted, in order of preference (0 any core, 1 little, 2 big).
    pub powersave: &'static [u32],
    /// The built-in target that models its core.
    pub target: &'static str,
    /// Whether ncnn computes the float networks in half precision on this core: benchncnn
    /// sets `use_fp16_arithmetic` (and fp16 storage), which ncnn follows on cores with ARMv8.2
    /// FP16 arithmetic (`asimdhp`: the A55 and A76, not the A53 or A72). Such a board's float
    /// layers are priced in half precision (its model's `floats`, [`crate::study::case_model`];
    /// `nasc calibrate --floats f16`). The data shows it: int8 VGG-16 runs 1.6–2.8× its float
    /// time on the ARMv8.2 boards, 0.8× on the others.
    pub fp16: bool,
}

/// The boards of the study: single-threaded ncnn on Cortex-A72, A76, A55, A53 and RISC-V C906
/// cores, every board of `ncnn_results.csv` with at least 25 converted networks whose core a
/// built-in target models and whose rows say which core ran (the Snapdragon 855+'s big cores
/// are Kryo 485 Gold, A76 derivatives; the RK3588S rows, `powersave` 0 on a big.LITTLE chip,
/// do not say). The A55 uses the `cortex-a53` target (same in-order dual-issue NEON pipeline).
pub const BOARDS: &[Board] = &[
    Board {
        key: "pi4-a72",
        section: "Raspberry Pi 4 Model B Broadcom BCM2711B0, Cortex-A72 (ARMv8) (1.8GHz x 4)",
        powersave: &[2, 0],
        target: "cortex-a72",
        fp16: false,
    },
    Board {
        key: "rk3588-a76",
        section: "Rockchip RK3588 (Cortex-A76 2.4GHz x 4 + Cortex-A55 1.8GHz x 4)",
        powersave: &[2],
        target: "cortex-a76",
        fp16: true,
    },
    Board {
        key: "rk3588-a55",
        section: "Rockchip RK3588 (Cortex-A76 2.4GHz x 4 + Cortex-A55 1.8GHz x 4)",
        powersave: &[1],
        target: "cortex-a53",
        fp16: true,
    },
    Board {
        key: "rk3566-a55",
        section: "Station-M2/ROC-RK3566-PC, Rockchip RK3566 (Cortex-A55 1.8GHz x 4 + Mali-G52) StationOS (Android)",
        powersave: &[2, 0],
        target: "cortex-a53",
        fp16: true,
    },
    Board {
        key: "pi3-a53",
        section: "Raspberry Pi 3 Model B+ Broadcom BCM2837B0, Cortex-A53 (ARMv8) (1.4GHz x 4)",
        powersave: &[2, 0],
        target: "cortex-a53",
        fp16: false,
    },
    Board {
        key: "unoq-a53",
        section: "Arduino UNO Q - QRB2210 (ARM Cortex-A53 @ 2.0GHz x 4)",
        powersave: &[2, 0],
        target: "cortex-a53",
        fp16: false,
    },
    Board {
        key: "sd855-a76",
        section: "Qualcomm SM8150-AC Snapdragon 855+ (Kyro485 2.96 GHz + 2.42 GHz x 3 + 1.80 GHz x 4 + Adreno 640)",
        powersave: &[2],
        target: "cortex-a76",
        fp16: true,
    },
    Board {
        key: "rk3568-a55",
        section: "Station P2, Rockchip RK3568 (Cortex-A55 2.0GHz x 4)",
        powersave: &[2, 0],
        target: "cortex-a53",
        fp16: true,
    },
    Board {
        key: "pizero2-a53",
        section: "Raspberry Pi Zero 2 W Broadcom BCM2710A1, Cortex-A53 (ARMv8) (1.0GHz x 4)",
        powersave: &[2, 0],
        target: "cortex-a53",
        fp16: false,
    },
    Board {
        key: "rk3228h-a53",
        section: "EAIDK 310, Rockchip RK3228H (Cortex-A53 1.3GHz x 4) fedora-28 aarch64",
        powersave: &[2, 0],
        target: "cortex-a53",
        fp16: false,
    },
    Board {
        key: "sg2000-c906",
        section: "CVITEK SG2000 (C906, 1 GHz x 1 + 700MHz x 1)",
        powersave: &[2, 0],
        target: "c906",
        fp16: false,
    },
];

/// The board of [`BOARDS`] with this key.
pub fn board(key: &str) -> Option<&'static Board> {
    BOARDS.iter().find(|b| b.key == key)
}

/// The converted ncnn networks.
#[derive(Clone, Debug, Default)]
pub struct Ncnn {
    /// Layer tables of the converted networks.
    pub models: Models,
    /// MACs of each converted network's convolutions (the dataset's `macs` column) and inner
    /// products (input elements × outputs), converted or not.
    pub macs: BTreeMap<String, f64>,
    /// Per network, the layers left out (`type` × count) and their MACs.
    pub skipped: BTreeMap<String, (BTreeMap<String, usize>, f64)>,
}

/// `[w, h, c]` (or `[w]`, `[w, h]`) as `[c, h, w]`.
fn chw(whc: &[i64]) -> Option<[usize; 3]> {
    let u = |x: i64| usize::try_from(x).ok().filter(|&v| v > 0);
    Some(match *whc {
        [w] => [u(w)?, 1, 1],
        [w, h] => [1, u(h)?, u(w)?],
        [w, h, c] => [u(c)?, u(h)?, u(w)?],
        _ => return None,
    })
}

fn shapes(text: &str) -> Vec<Option<[usize; 3]>> {
    serde_json::from_str::<Vec<Option<Vec<i64>>>>(text)
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.and_then(|v| chw(&v)))
        .collect()
}

/// ncnn `key=value` parameters.
fn params(raw: &str) -> BTreeMap<i64, String> {
    raw.split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.parse().ok()?, v.to_string()))
        })
        .collect()
}

/// Symmetric padding making a `k`-window with stride `s` map `n` to `out` (floor division).
fn padding(n: usize, out: usize, k: usize, s: usize) -> Option<usize> {
    (0..=k).find(|&p| n + 2 * p >= k && (n + 2 * p - k) / s + 1 == out)
}

/// ncnn layer types that map to one op of the layer vocabulary with no attributes.
fn one_to_one(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "ReLU" => "relu", // leaky ReLU prices as ReLU
        "Clip" => "relu6",
        "Sigmoid" => "sigmoid",
        "HardSigmoid" => "hsigmoid",
        "HardSwish" => "hswish",
        "Swish" | "Mish" => "swish", // mish ≈ swish
        "BatchNorm" | "Scale" => "batchnorm",
        "Flatten" => "flatten",
        "Softmax" => "softmax",
        _ => return None,
    })
}

fn act_name(code: &str) -> Option<&'static str> {
    match code {
        "1" | "2" => Some("relu"), // leaky ReLU prices as ReLU
        "3" => Some("relu6"),
        "4" => Some("sigmoid"),
        "5" => Some("swish"), // mish ≈ swish
        "6" => Some("hswish"),
        _ => None,
    }
}

/// Converts the ncnn benchmark networks of `ncnn_model_layers.csv` (see the module docs).
pub fn ncnn(data: &Path) -> Result<Ncnn> {
    let summary_path = data.join("ncnn_model_summary.csv");
    let mut complete: std::collections::BTreeSet<String> = Default::default();
    let mut rdr =
        csv::Reader::from_path(&summary_path).with_context(|| format!("{}: cannot read", summary_path.display()))?;
    for (i, rec) in rdr.deserialize::<BTreeMap<String, String>>().enumerate() {
        let r = rec.with_context(|| format!("{}:{}", summary_path.display(), i + 2))?;
        let get = |k: &str| r.get(k).map(String::as_str).unwrap_or("");
        if get("shape_hints_complete") == "True" {
            complete.insert(get("model").to_string());
        }
    }
    let path = data.join("ncnn_model_layers.csv");
    let mut rdr = csv::Reader::from_path(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut by_model: Vec<(String, Vec<BTreeMap<String, String>>)> = Vec::new();
    for (i, rec) in rdr.deserialize::<BTreeMap<String, String>>().enumerate() {
        let r = rec.with_context(|| format!("{}:{}", path.display(), i + 2))?;
        let m = r.get("model").cloned().unwrap_or_default();
        if !complete.contains(&m) {
            continue;
        }
        match by_model.iter_mut().find(|(n, _)| *n == m) {
            Some((_, v)) => v.push(r),
            None => by_model.push((m, vec![r])),
        }
    }
    let mut out = Ncnn::default();
    for (model, rows) in by_model {
        let (layers, skipped) =
            convert_ncnn(&model, &rows).with_context(|| format!("{}: model `{model}`", path.display()))?;
        let macs = rows
            .iter()
            .map(|r| {
                let get = |k: &str| r.get(k).map(String::as_str).unwrap_or("");
                match get("type") {
                    "InnerProduct" => {
                        let ins = shapes(get("in_shapes_whc"));
                        let n: usize = ins.first().copied().flatten().map_or(0, |s| s.iter().product());
                        (n * get("num_output").parse::<usize>().unwrap_or(0)) as f64
                    }
                    _ => get("macs").parse::<f64>().unwrap_or(0.0),
                }
            })
            .sum();
        out.macs.insert(model.clone(), macs);
        out.skipped.insert(model.clone(), skipped);
        out.models.push((model, layers));
    }
    Ok(out)
}

type Skipped = (BTreeMap<String, usize>, f64);

fn convert_ncnn(model: &str, rows: &[BTreeMap<String, String>]) -> Result<(Vec<Layer>, Skipped)> {
    let mut layers: Vec<Layer> = Vec::new();
    // Tensors of the current segment: shape and the row (1-based; 0 = the segment's input).
    let mut live: Vec<([usize; 3], usize)> = Vec::new();
    let mut skipped: Skipped = (BTreeMap::new(), 0.0);
    let mut pending_input: Option<[usize; 3]> = None;
    for r in rows {
        let get = |k: &str| r.get(k).map(String::as_str).unwrap_or("");
        let ty = get("type");
        let ins = shapes(get("in_shapes_whc"));
        let outs = shapes(get("out_shapes_whc"));
        let p = params(get("params_raw"));
        let pnum = |k: i64, d: usize| p.get(&k).and_then(|v| v.parse::<usize>().ok()).unwrap_or(d);
        let find = |live: &[([usize; 3], usize)], s: [usize; 3]| live.iter().rev().find(|(t, _)| *t == s).map(|x| x.1);
        let skip = |skipped: &mut Skipped| {
            *skipped.0.entry(ty.to_string()).or_default() += 1;
            skipped.1 += get("macs").parse::<f64>().unwrap_or(0.0);
        };
        if ty == "Input" {
            pending_input = outs.first().copied().flatten();
            continue;
        }
        if matches!(ty, "Split" | "Dropout") {
            continue;
        }
        let (Some(Some(input)), Some(Some(output))) = (ins.first(), outs.first()) else {
            skip(&mut skipped);
            continue;
        };
        let (input, output) = (*input, *output);
        let mut l = Layer::new(model, "", input);
        let fused_act = p.get(&9).and_then(|c| act_name(c)).map(str::to_string);
        // `int8_scale_term` (param 8) set: a quantized layer.
        let precision = if get("int8").parse::<u32>().is_ok_and(|v| v > 0) { Precision::Int8 } else { Precision::F32 };
        let mut srcs: Vec<Option<usize>> = vec![];
        let single = if let Some(op) = one_to_one(ty) {
            l.op = op.into();
            true
        } else {
            match ty {
                "Convolution" | "ConvolutionDepthWise" => {
                    let k = pnum(1, 1);
                    let s = pnum(3, 1);
                    let Some(pad) = padding(input[1], output[1], k, s) else {
                        skip(&mut skipped);
                        continue;
                    };
                    l.op = "conv2d".into();
                    l.out_c = Some(output[0]);
                    l.kernel = Some(k);
                    l.stride = Some(s);
                    l.pad = Some(pad);
                    l.groups = Some(if ty == "Convolution" { 1 } else { pnum(7, 1) });
                    l.act = fused_act;
                    l.precision = precision;
                    true
                }
                "InnerProduct" => {
                    l.op = "dense".into();
                    l.out_c = Some(output[0] * output[1] * output[2]);
                    l.act = fused_act;
                    l.precision = precision;
                    true
                }
                "Pooling" => {
                    if pnum(4, 0) == 1 || (output[1] == 1 && output[2] == 1 && input[1] > 1) {
                        l.op = "global_avg_pool".into();
                    } else {
                        let k = pnum(1, 1);
                        let s = pnum(2, 1);
                        let Some(pad) = padding(input[1], output[1], k, s) else {
                            skip(&mut skipped);
                            continue;
                        };
                        l.op = if pnum(0, 0) == 0 { "max_pool" } else { "avg_pool" }.into();
                        l.kernel = Some(k);
                        l.stride = Some(s);
                        l.pad = Some(pad);
                    }
                    true
                }
                "Reduction" if output[1] == 1 && output[2] == 1 && output[0] == input[0] => {
                    l.op = "global_avg_pool".into();
                    true
                }
                "ShuffleChannel" => {
                    l.op = "channel_shuffle".into();
                    l.groups = Some(pnum(0, 1));
                    true
                }
                "Crop" | "Slice" if outs.iter().all(|o| o.is_some_and(|o| o[1..] == input[1..])) => {
                    l.op = "slice".into();
                    true
                }
                "Eltwise" | "BinaryOp" | "Concat" if ins.len() >= 2 => {
                    let all: Option<Vec<[usize; 3]>> = ins.iter().copied().collect();
                    let Some(all) = all else {
                        skip(&mut skipped);
                        continue;
                    };
                    l.op = match ty {
                        "Concat" if pnum(0, 0) == 0 && all.iter().all(|s| s[1..] == all[0][1..]) => "concat",
                        "Eltwise" | "BinaryOp" if all.iter().all(|s| *s == all[0]) => "add",
                        "BinaryOp" if all.len() == 2 && all[1] == [all[0][0], 1, 1] => "mul",
                        _ => {
                            skip(&mut skipped);
                            continue;
                        }
                    }
                    .into();
                    srcs = all.iter().map(|&s| find(&live, s)).collect();
                    false
                }
                _ => {
                    skip(&mut skipped);
                    continue;
                }
            }
        };
        if layers.is_empty() && live.is_empty() {
            // The first layer opens the first segment on the network input.
            live.push((pending_input.unwrap_or(input), 0));
        }
        if single {
            srcs = vec![find(&live, input)];
        }
        if srcs.iter().any(Option::is_none) {
            if !single {
                // A join with an input from outside the segment: left out; its output is
                // reachable only through a new segment.
                skip(&mut skipped);
                continue;
            }
            live.clear();
            live.push((input, 0));
            l.from = Source::New;
        } else {
            let rs: Vec<usize> = srcs.into_iter().flatten().collect();
            l.from = if rs.len() == 1 && rs[0] == layers.len() && !layers.is_empty() {
                Source::Prev
            } else if rs.len() == 1 && rs[0] == 0 {
                Source::Input
            } else {
                Source::Rows(rs)
            };
        }
        if l.op == "slice" {
            // One slice per output, all reading the same tensor.
            let again = match &l.from {
                Source::Prev => Source::Rows(vec![layers.len()]),
                Source::New | Source::Input => Source::Rows(vec![0]),
                Source::Rows(rs) => Source::Rows(rs.clone()),
            };
            for (j, o) in outs.iter().flatten().enumerate() {
                let mut s = l.clone();
                s.out_c = Some(o[0]);
                if j > 0 {
                    s.from = again.clone();
                }
                layers.push(s);
                live.push((*o, layers.len()));
            }
            continue;
        }
        if layers.is_empty() && l.from == Source::Input {
            l.from = Source::Prev;
        }
        // Dense, flatten and softmax leave a flat `[N, K]` tensor.
        let flat = matches!(l.op.as_str(), "dense" | "flatten" | "softmax");
        layers.push(l);
        live.push((if flat { [output.iter().product(), 1, 1] } else { output }, layers.len()));
    }
    if layers.is_empty() {
        bail!("no layer could be converted");
    }
    // A squeeze-excite branch scales by a `[C, 1, 1]` map: its inner products (on a pooled
    // `[C, 1, 1]` input) are 1×1 convolutions, as the built-in spaces write them.
    for i in 0..layers.len() {
        let Source::Rows(rs) = &layers[i].from else { continue };
        if layers[i].op != "mul" || rs.len() != 2 {
            continue;
        }
        let mut r = rs[1];
        while r > 0 {
            let l = &mut layers[r - 1];
            match l.op.as_str() {
                "dense" if l.input[1] == 1 && l.input[2] == 1 => {
                    l.op = "conv2d".into();
                    (l.kernel, l.stride, l.pad, l.groups) = (Some(1), Some(1), Some(0), Some(1));
                }
                "relu" | "relu6" | "sigmoid" | "hsigmoid" | "swish" | "hswish" => {}
                _ => break,
            }
            r = match &l.from {
                Source::Prev => r - 1,
                Source::Rows(v) if v.len() == 1 => v[0],
                _ => break,
            };
        }
    }
    Ok((layers, skipped))
}

/// Single-core latency of every converted network measured on a board: `model,latency_ms`
/// rows (the last matching run of the section, powersave in the board's order of preference).
pub fn board_measurements(data: &Path, board: &Board, models: &Models) -> Result<Vec<Measurement>> {
    let path = data.join("ncnn_results.csv");
    let mut rdr = csv::Reader::from_path(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut best: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (i, rec) in rdr.deserialize::<BTreeMap<String, String>>().enumerate() {
        let r = rec.with_context(|| format!("{}:{}", path.display(), i + 2))?;
        let get = |k: &str| r.get(k).map(String::as_str).unwrap_or("");
        if get("device_section") != board.section || get("num_threads") != "1" || get("is_gpu_run") != "False" {
            continue;
        }
        let ps: u32 = get("powersave").parse().unwrap_or(0);
        let Some(rank) = board.powersave.iter().position(|&p| p == ps) else { continue };
        let Ok(ms) = get("avg_ms").parse::<f64>() else { continue };
        if !(ms.is_finite() && ms > 0.0) {
            continue;
        }
        let e = best.entry(get("model").to_string()).or_insert((rank, ms));
        if rank <= e.0 {
            *e = (rank, ms);
        }
    }
    let out: Vec<Measurement> = models
        .iter()
        .filter_map(|(m, _)| {
            best.get(m).map(|&(_, ms)| Measurement { arch: m.clone(), latency_ms: ms, energy_mj: None })
        })
        .collect();
    if out.is_empty() {
        bail!("{}: no single-thread CPU rows for `{}`", path.display(), board.section);
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
struct LutBlock {
    resolution: usize,
    lut_key: String,
    mean_ms: f64,
    layers: Vec<LutLayer>,
}

#[derive(serde::Deserialize)]
struct LutLayer {
    name: String,
    op: String,
    #[serde(rename = "H_in")]
    h_in: Option<usize>,
    #[serde(rename = "W_in")]
    w_in: Option<usize>,
    #[serde(rename = "C_in")]
    c_in: usize,
    #[serde(rename = "C_out")]
    c_out: usize,
    kernel: Option<usize>,
    stride: Option<usize>,
    pad: Option<usize>,
    groups: Option<usize>,
    macs: f64,
    #[serde(default)]
    post: Vec<String>,
}

/// The Note10 blocks of `ofa_note10_lut_layers.jsonl`: layer tables (one model per block and
/// resolution, named `r<res>:<lut_key>`), their measured mean latency and published MACs.
pub fn note10(data: &Path) -> Result<(Models, Vec<Measurement>, BTreeMap<String, f64>)> {
    let path = data.join("ofa_note10_lut_layers.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let (mut models, mut ms, mut macs) = (Vec::new(), Vec::new(), BTreeMap::new());
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{}:{}", path.display(), i + 1);
        let b: LutBlock = serde_json::from_str(line).with_context(at)?;
        let name = format!("r{}:{}", b.resolution, b.lut_key);
        let mut layers: Vec<Layer> = Vec::new();
        let row = |layers: &[Layer], suffix: &str| {
            b.layers.iter().take(layers.len()).position(|l| l.name.ends_with(suffix)).map(|k| k + 1)
        };
        for x in &b.layers {
            let input = [x.c_in, x.h_in.unwrap_or(1), x.w_in.unwrap_or(1)];
            let mut l = Layer::new(&name, "", input);
            let act = x.post.iter().find(|p| *p != "bn").cloned();
            match x.op.as_str() {
                "conv2d" | "dwconv2d" => {
                    l.op = "conv2d".into();
                    l.out_c = Some(x.c_out);
                    l.kernel = x.kernel;
                    l.stride = x.stride;
                    l.pad = x.pad;
                    l.groups = x.groups;
                    l.act = act;
                }
                "fc" => {
                    l.op = "dense".into();
                    l.out_c = Some(x.c_out);
                    l.act = act;
                }
                "avgpool_global" => l.op = "global_avg_pool".into(),
                "mul_broadcast" => {
                    l.op = "mul".into();
                    let dw = row(&layers, ".dw").with_context(|| format!("{}: se_mul without a depthwise", at()))?;
                    l.from = Source::Rows(vec![dw, layers.len()]);
                }
                "add" => {
                    l.op = "add".into();
                    l.from = Source::Rows(vec![layers.len(), 0]);
                }
                other => bail!("{}: unknown layer op `{other}`", at()),
            }
            if x.name.ends_with(".se_pool") {
                let dw = row(&layers, ".dw").with_context(|| format!("{}: se_pool without a depthwise", at()))?;
                l.from = Source::Rows(vec![dw]);
            }
            layers.push(l);
        }
        macs.insert(name.clone(), b.layers.iter().map(|l| l.macs).sum());
        ms.push(Measurement { arch: name.clone(), latency_ms: b.mean_ms, energy_mj: None });
        models.push((name, layers));
    }
    Ok((models, ms, macs))
}
