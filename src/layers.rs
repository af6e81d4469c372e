//! Layer tables: models described layer by layer in CSV, for measurements of networks that are
//! not subnets of a built-in space (`nasc calibrate --models`, `nasc validate --models`) and for
//! the kernel sweeps `nasc measure` times.
//!
//! ```text
//! model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act
//! conv3x3_c32_h28,conv2d,32,28,28,32,3,1,1,relu
//! conv3x3_c32_h28,batchnorm,32,28,28,,,,,
//! dw5_c64_h14,conv2d,64,14,14,64,5,2,64,relu6
//! head,global_avg_pool,64,7,7,,,,,
//! head,dense,64,1,1,10,,,,
//! ```
//!
//! The rows of one model, in order, form a chain: each layer reads the previous one's output
//! (the first reads the model's input, `[1, in_c, in_h, in_w]`); `in_c,in_h,in_w` of every row
//! must match what the chain produces there, which catches a table that does not describe a
//! real network. `op` is one of `conv2d` (`out_c`, `kernel`, `stride`, `groups` — `groups =
//! in_c = out_c` for a depthwise layer — padding `(kernel − 1)/2`, an optional fused `act`),
//! `dense` (`out_c` features; the input is flattened), `batchnorm`, `avg_pool`/`max_pool`
//! (`kernel`, `stride`, padding `(kernel − 1)/2`), `global_avg_pool`, an activation (`relu`,
//! `relu6`, `hswish`, `hsigmoid`, `sigmoid`, `swish`) or `add` (the previous output added to
//! itself: the elementwise work of a residual sum). Empty cells are absent values. Errors name
//! the file and line.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::ir::op::{Activation, BatchNorm, Conv2d, Dense, Groups, Input, Pool};
use crate::ir::{Graph, NodeId, Op};

/// One row of a layer table.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The model it belongs to.
    pub model: String,
    /// The op (see the module docs).
    pub op: String,
    /// Input `[C, H, W]`.
    pub input: [usize; 3],
    /// Output channels (conv) or features (dense).
    pub out_c: Option<usize>,
    /// Kernel (conv, pools).
    pub kernel: Option<usize>,
    /// Stride (conv, pools).
    pub stride: Option<usize>,
    /// Groups (conv).
    pub groups: Option<usize>,
    /// Fused activation (conv, dense).
    pub act: Option<String>,
}

/// The header [`write()`] prints and [`read()`] expects.
pub const HEADER: &str = "model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act";

fn activation(name: &str) -> Option<Activation> {
    Activation::ALL.into_iter().find(|a| a.name() == name)
}

/// Parses a layer table; `origin` names it in errors. Models keep their first-appearance order.
pub fn parse(bytes: &[u8], origin: &str) -> Result<Vec<(String, Vec<Layer>)>> {
    let mut rdr = csv::Reader::from_reader(bytes);
    let headers = rdr.headers().with_context(|| format!("{origin}:1: no header"))?.clone();
    let col = |n: &str| headers.iter().position(|h| h.trim() == n);
    let need = ["model", "op", "in_c", "in_h", "in_w"];
    let missing: Vec<&str> = need.iter().copied().filter(|n| col(n).is_none()).collect();
    if !missing.is_empty() {
        bail!("{origin}:1: the header lacks {} (expected `{HEADER}`)", missing.join(", "));
    }
    let mut models: Vec<(String, Vec<Layer>)> = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{origin}:{line}"))?;
        let text = |n: &str| col(n).and_then(|c| rec.get(c)).map(str::trim).filter(|s| !s.is_empty());
        let num = |n: &str| -> Result<Option<usize>> {
            text(n)
                .map(|v| {
                    v.parse::<usize>()
                        .ok()
                        .filter(|&x| x > 0)
                        .with_context(|| format!("{origin}:{line}: {n} `{v}` is not a positive integer"))
                })
                .transpose()
        };
        let req = |n: &str| -> Result<usize> { num(n)?.with_context(|| format!("{origin}:{line}: {n} is missing")) };
        let model = text("model").with_context(|| format!("{origin}:{line}: model is missing"))?.to_string();
        let op = text("op").with_context(|| format!("{origin}:{line}: op is missing"))?.to_string();
        let layer = Layer {
            model: model.clone(),
            op,
            input: [req("in_c")?, req("in_h")?, req("in_w")?],
            out_c: num("out_c")?,
            kernel: num("kernel")?,
            stride: num("stride")?,
            groups: num("groups")?,
            act: text("act").map(str::to_string),
        };
        match models.iter_mut().find(|(m, _)| *m == model) {
            Some((_, v)) => v.push(layer),
            None => models.push((model, vec![layer])),
        }
    }
    if models.is_empty() {
        bail!("{origin}: no layers");
    }
    Ok(models)
}

/// Reads a layer table file.
pub fn read(path: &Path) -> Result<Vec<(String, Vec<Layer>)>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse(&bytes, &path.display().to_string())
}

/// Prints layers as a table (with the header).
pub fn write(layers: &[Layer]) -> String {
    let o = |v: Option<usize>| v.map(|x| x.to_string()).unwrap_or_default();
    let mut s = format!("{HEADER}\n");
    for l in layers {
        s += &format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            l.model,
            l.op,
            l.input[0],
            l.input[1],
            l.input[2],
            o(l.out_c),
            o(l.kernel),
            o(l.stride),
            o(l.groups),
            l.act.as_deref().unwrap_or("")
        );
    }
    s
}

/// The graph of one model's layers (a chain from its input to an output); `origin` names the
/// table in errors, with the model.
pub fn graph(name: &str, layers: &[Layer], origin: &str) -> Result<Graph> {
    let at = |k: usize| format!("{origin}: model `{name}`, layer {}", k + 1);
    let first = layers.first().with_context(|| format!("{origin}: model `{name}` has no layers"))?;
    let mut g = Graph::new(name);
    let [c, h, w] = first.input;
    let mut prev: NodeId = g.add("input", Op::Input(Input { shape: vec![1, c, h, w] }), &[])?;
    for (k, l) in layers.iter().enumerate() {
        let shapes = g.infer_shapes().with_context(|| at(k))?;
        let have = &shapes[prev.index()];
        let have_chw = match have.as_slice() {
            [_, c, h, w] => [*c, *h, *w],
            [_, c] => [*c, 1, 1],
            _ => bail!("{}: unexpected shape {have:?}", at(k)),
        };
        if have_chw != l.input {
            bail!("{}: in_c,in_h,in_w say {:?}, the layers before produce {:?}", at(k), l.input, have_chw);
        }
        let act = match l.act.as_deref() {
            None => None,
            Some(a) => Some(activation(a).with_context(|| format!("{}: unknown activation `{a}`", at(k)))?),
        };
        let need = |v: Option<usize>, what: &str| v.with_context(|| format!("{}: {} needs {what}", at(k), l.op));
        let op = match l.op.as_str() {
            "conv2d" => {
                let kk = need(l.kernel, "kernel")?;
                let mut cv = Conv2d::new(need(l.out_c, "out_c")?, kk, l.stride.unwrap_or(1));
                cv.groups = Groups::Fixed(l.groups.unwrap_or(1));
                cv.bias = true;
                cv.act = act;
                Op::Conv2d(cv)
            }
            "dense" => {
                if have.len() == 4 {
                    prev = g.add(format!("l{k}.flatten"), Op::Flatten, &[prev])?;
                }
                Op::Dense(Dense { out_features: need(l.out_c, "out_c")?, bias: true, act })
            }
            "batchnorm" => Op::BatchNorm(BatchNorm::default()),
            "avg_pool" | "max_pool" => {
                let kk = need(l.kernel, "kernel")?;
                let p = Pool::new(kk, l.stride.unwrap_or(1), (kk - 1) / 2);
                if l.op == "avg_pool" {
                    Op::AvgPool(p)
                } else {
                    Op::MaxPool(p)
                }
            }
            "global_avg_pool" => Op::GlobalAvgPool,
            "add" => Op::Add,
            other => match activation(other) {
                Some(a) => Op::from_activation(a),
                None => bail!("{}: unknown op `{other}`", at(k)),
            },
        };
        let inputs: Vec<NodeId> = if matches!(op, Op::Add) { vec![prev, prev] } else { vec![prev] };
        prev = g.add(format!("l{k}.{}", l.op), op, &inputs).with_context(|| at(k))?;
    }
    g.add("output", Op::Output, &[prev])?;
    g.validate().with_context(|| format!("{origin}: model `{name}`"))?;
    Ok(g)
}

/// Every model of a table as a graph, by name.
pub fn graphs(models: &[(String, Vec<Layer>)], origin: &str) -> Result<BTreeMap<String, Graph>> {
    models.iter().map(|(n, ls)| Ok((n.clone(), graph(n, ls, origin)?))).collect()
}
