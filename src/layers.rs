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
//! By default the rows of one model form a chain: each layer reads the previous one's output (the
//! first reads the model's input, `[1, in_c, in_h, in_w]`); `in_c,in_h,in_w` of every row must
//! match what the layers before produce there, which catches a table that does not describe a
//! real network. Two optional columns describe the rest:
//!
//! - `from`: where the layer reads from — empty (the previous row), `input` (the input of the
//!   model, or of the segment),
//!   layer numbers within the model counted from 1 and joined by `+` (`3+7`: an `add`, `mul` or
//!   `concat` of layers 3 and 7; the first must have shape `in_c,in_h,in_w`; `0` is the input:
//!   `5+0` is a residual sum of layer 5 and the input), or `new`: a tensor
//!   of shape `in_c,in_h,in_w` made by something the table does not describe (an upsample, a
//!   detection head, a reshape). `new` starts a new *segment*, priced on its own; a model costs
//!   the sum of its segments, and a layer may only read layers of its own segment.
//! - `pad`: a convolution's or pool's symmetric padding (default `(kernel − 1)/2`).
//! - `dtype`: `f32` (the default); `int8` for a `conv2d` or `dense` layer of a quantized
//!   network, priced at the target's int8 throughput; `f16` for any layer a runtime computes and
//!   stores in half precision (ncnn on ARMv8.2 cores), priced at twice f32's vector lanes and
//!   half its bytes ([`nasc_ir::Precision`]).
//!
//! `op` is one of `conv2d` (`out_c`, `kernel`, `stride`, `groups` — `groups = in_c = out_c` for
//! a depthwise layer — an optional fused `act`), `dense` (`out_c` features; the input is
//! flattened), `batchnorm`, `avg_pool`/`max_pool` (`kernel`, `stride`), `global_avg_pool`, an
//! activation (`relu`, `relu6`, `hswish`, `hsigmoid`, `sigmoid`, `swish`), `add` (of the layers
//! in `from`, or of the previous output with itself: the elementwise work of a residual sum),
//! `mul` (the first input scaled per channel by the second, `[C, 1, 1]`: squeeze-excite),
//! `concat` (channels), `slice` (the first `out_c` channels), `channel_shuffle` (`groups`),
//! `flatten` or `softmax`. Empty cells, and cells missing at the end of a row, are absent values. Errors name the file and line, or the
//! model and layer.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::ir::op::{Activation, BatchNorm, ChannelShuffle, Concat, Conv2d, Dense, Groups, Input, Pool, SliceChannels};
use crate::ir::{Graph, NodeId, Op, Precision};

/// Where a layer reads from (the `from` column).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Source {
    /// The previous row (an empty cell).
    #[default]
    Prev,
    /// The model's input.
    Input,
    /// A tensor the table does not describe: starts a new segment.
    New,
    /// Earlier layers of the model, numbered from 1 (0: the segment's input).
    Rows(Vec<usize>),
}

impl Source {
    fn parse(text: &str) -> Option<Source> {
        match text {
            "" | "prev" => Some(Source::Prev),
            "input" => Some(Source::Input),
            "new" => Some(Source::New),
            _ => text.split('+').map(|t| t.trim().parse::<usize>().ok()).collect::<Option<Vec<_>>>().map(Source::Rows),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Prev => Ok(()),
            Source::Input => f.write_str("input"),
            Source::New => f.write_str("new"),
            Source::Rows(rs) => {
                let t: Vec<String> = rs.iter().map(usize::to_string).collect();
                f.write_str(&t.join("+"))
            }
        }
    }
}

/// One row of a layer table.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The model it belongs to.
    pub model: String,
    /// The op (see the module docs).
    pub op: String,
    /// Input `[C, H, W]` (of the first input).
    pub input: [usize; 3],
    /// Output channels (conv, slice) or features (dense).
    pub out_c: Option<usize>,
    /// Kernel (conv, pools).
    pub kernel: Option<usize>,
    /// Stride (conv, pools).
    pub stride: Option<usize>,
    /// Groups (conv, channel shuffle).
    pub groups: Option<usize>,
    /// Fused activation (conv, dense).
    pub act: Option<String>,
    /// Symmetric padding (conv, pools); `None` is `(kernel − 1)/2`.
    pub pad: Option<usize>,
    /// Where it reads from.
    pub from: Source,
    /// Arithmetic of the layer (the `dtype` column).
    pub precision: Precision,
}

impl Layer {
    /// A layer of `model` reading the previous row, with no attributes set.
    pub fn new(model: &str, op: &str, input: [usize; 3]) -> Layer {
        Layer {
            model: model.into(),
            op: op.into(),
            input,
            out_c: None,
            kernel: None,
            stride: None,
            groups: None,
            act: None,
            pad: None,
            from: Source::Prev,
            precision: Precision::F32,
        }
    }
}

/// The header [`write()`] prints; [`read()`] needs its first five columns, the rest are optional.
pub const HEADER: &str = "model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act,pad,from,dtype";

fn activation(name: &str) -> Option<Activation> {
    Activation::ALL.into_iter().find(|a| a.name() == name)
}

/// Parses a layer table; `origin` names it in errors. Models keep their first-appearance order.
pub fn parse(bytes: &[u8], origin: &str) -> Result<Vec<(String, Vec<Layer>)>> {
    // Rows may stop before the optional trailing columns.
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
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
        if rec.len() > headers.len() {
            bail!("{origin}:{line}: {} fields, the header names {}", rec.len(), headers.len());
        }
        let text = |n: &str| col(n).and_then(|c| rec.get(c)).map(str::trim).filter(|s| !s.is_empty());
        let int = |n: &str, min: usize| -> Result<Option<usize>> {
            text(n)
                .map(|v| {
                    v.parse::<usize>().ok().filter(|&x| x >= min).with_context(|| {
                        let what = if min > 0 { "a positive integer" } else { "a non-negative integer" };
                        format!("{origin}:{line}: {n} `{v}` is not {what}")
                    })
                })
                .transpose()
        };
        let num = |n: &str| int(n, 1);
        let req = |n: &str| -> Result<usize> { num(n)?.with_context(|| format!("{origin}:{line}: {n} is missing")) };
        let model = text("model").with_context(|| format!("{origin}:{line}: model is missing"))?.to_string();
        let op = text("op").with_context(|| format!("{origin}:{line}: op is missing"))?.to_string();
        let from = text("from").unwrap_or("");
        let precision = match text("dtype") {
            None | Some("f32") => Precision::F32,
            Some("int8") => Precision::Int8,
            Some("f16") => Precision::F16,
            Some(d) => bail!("{origin}:{line}: dtype `{d}` is not f32, f16 or int8"),
        };
        let layer = Layer {
            model: model.clone(),
            op,
            input: [req("in_c")?, req("in_h")?, req("in_w")?],
            out_c: num("out_c")?,
            kernel: num("kernel")?,
            stride: num("stride")?,
            groups: num("groups")?,
            act: text("act").map(str::to_string),
            pad: int("pad", 0)?,
            from: Source::parse(from).with_context(|| {
                format!("{origin}:{line}: from `{from}` is not `input`, `new` or layer numbers joined by `+`")
            })?,
            precision,
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
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            l.model,
            l.op,
            l.input[0],
            l.input[1],
            l.input[2],
            o(l.out_c),
            o(l.kernel),
            o(l.stride),
            o(l.groups),
            l.act.as_deref().unwrap_or(""),
            o(l.pad),
            l.from,
            if l.precision.is_f32() { "" } else { l.precision.name() }
        );
    }
    s
}

/// The graph of a one-segment model (see [`segments`]).
pub fn graph(name: &str, layers: &[Layer], origin: &str) -> Result<Graph> {
    let mut segs = segments(name, layers, origin)?;
    if segs.len() != 1 {
        bail!("{origin}: model `{name}` has {} segments (`from = new`), one graph was expected", segs.len());
    }
    Ok(segs.remove(0))
}

/// The graphs of one model's segments, each from its input to an output reading the segment's
/// last layer; `origin` names the table in errors, with the model and layer.
pub fn segments(name: &str, layers: &[Layer], origin: &str) -> Result<Vec<Graph>> {
    let at = |k: usize| format!("{origin}: model `{name}`, layer {}", k + 1);
    if layers.is_empty() {
        bail!("{origin}: model `{name}` has no layers");
    }
    let mut done: Vec<Graph> = Vec::new();
    // The segment being built, its input and last node, and its shapes so far.
    let mut cur: Option<(Graph, NodeId, NodeId, Vec<Vec<usize>>)> = None;
    // Per row: its segment and node.
    let mut made: Vec<(usize, NodeId)> = Vec::new();
    for (k, l) in layers.iter().enumerate() {
        if cur.is_none() || l.from == Source::New {
            if let Some((mut g, _, last, _)) = cur.take() {
                g.add("output", Op::Output, &[last])?;
                g.validate().with_context(|| format!("{origin}: model `{name}`"))?;
                done.push(g);
            }
            let title = if done.is_empty() { name.to_string() } else { format!("{name}#{}", done.len() + 1) };
            let mut g = Graph::new(&title);
            let [c, h, w] = l.input;
            let input = g.add("input", Op::Input(Input { shape: vec![1, c, h, w] }), &[])?;
            let shapes = g.infer_shapes()?;
            cur = Some((g, input, input, shapes));
        }
        let seg = done.len();
        let (g, input, last, shapes) = cur.as_mut().expect("a segment is open");
        let mut srcs: Vec<NodeId> = match &l.from {
            Source::Prev | Source::New => vec![*last],
            Source::Input => vec![*input],
            Source::Rows(rs) => rs
                .iter()
                .map(|&r| match made.get(r.wrapping_sub(1)) {
                    _ if r == 0 => Ok(*input),
                    Some(&(s, id)) if r <= k && s == seg => Ok(id),
                    Some(_) if r <= k => bail!("{}: from {r}: layer {r} is in an earlier segment", at(k)),
                    _ => bail!("{}: from {r}: not an earlier layer of the model", at(k)),
                })
                .collect::<Result<_>>()?,
        };
        let have = &shapes[srcs[0].index()];
        let have_chw = match have.as_slice() {
            [_, c, h, w] => [*c, *h, *w],
            [_, c] => [*c, 1, 1],
            _ => bail!("{}: unexpected shape {have:?}", at(k)),
        };
        if have_chw != l.input {
            bail!("{}: in_c,in_h,in_w say {:?}, the layer it reads produces {:?}", at(k), l.input, have_chw);
        }
        let act = match l.act.as_deref() {
            None => None,
            Some(a) => Some(activation(a).with_context(|| format!("{}: unknown activation `{a}`", at(k)))?),
        };
        let need = |v: Option<usize>, what: &str| v.with_context(|| format!("{}: {} needs {what}", at(k), l.op));
        let two = |srcs: &[NodeId]| {
            if srcs.len() < 2 {
                bail!("{}: {} needs two or more layers in `from`", at(k), l.op)
            }
            Ok(())
        };
        let op = match l.op.as_str() {
            "conv2d" => {
                let kk = need(l.kernel, "kernel")?;
                let mut cv = Conv2d::new(need(l.out_c, "out_c")?, kk, l.stride.unwrap_or(1));
                let p = l.pad.unwrap_or((kk - 1) / 2);
                cv.padding = [p, p];
                cv.groups = Groups::Fixed(l.groups.unwrap_or(1));
                cv.bias = true;
                cv.act = act;
                Op::Conv2d(cv)
            }
            "dense" => {
                if have.len() == 4 {
                    srcs[0] = g.add(format!("l{k}.flatten"), Op::Flatten, &[srcs[0]])?;
                }
                Op::Dense(Dense { out_features: need(l.out_c, "out_c")?, bias: true, act })
            }
            "batchnorm" => Op::BatchNorm(BatchNorm::default()),
            "avg_pool" | "max_pool" => {
                let kk = need(l.kernel, "kernel")?;
                let p = Pool::new(kk, l.stride.unwrap_or(1), l.pad.unwrap_or((kk - 1) / 2));
                if l.op == "avg_pool" {
                    Op::AvgPool(p)
                } else {
                    Op::MaxPool(p)
                }
            }
            "global_avg_pool" => Op::GlobalAvgPool,
            "add" => {
                if srcs.len() == 1 {
                    srcs.push(srcs[0]);
                }
                Op::Add
            }
            "mul" => {
                two(&srcs)?;
                Op::Mul
            }
            "concat" => {
                two(&srcs)?;
                Op::Concat(Concat { axis: 1 })
            }
            "slice" => Op::SliceChannels(SliceChannels { start: 0, end: need(l.out_c, "out_c")? }),
            "channel_shuffle" => Op::ChannelShuffle(ChannelShuffle { groups: need(l.groups, "groups")? }),
            "flatten" => Op::Flatten,
            "softmax" => {
                if have.len() == 4 {
                    srcs[0] = g.add(format!("l{k}.flatten"), Op::Flatten, &[srcs[0]])?;
                }
                Op::Softmax
            }
            other => match activation(other) {
                Some(a) => Op::from_activation(a),
                None => bail!("{}: unknown op `{other}`", at(k)),
            },
        };
        if l.precision == Precision::Int8 && !matches!(op, Op::Conv2d(_) | Op::Dense(_)) {
            bail!("{}: dtype int8 applies to conv2d and dense layers, not {}", at(k), l.op);
        }
        let id = g.add(format!("l{k}.{}", l.op), op, &srcs).with_context(|| at(k))?;
        g.node_mut(id).precision = l.precision;
        *shapes = g.infer_shapes().with_context(|| at(k))?;
        made.push((seg, id));
        *last = id;
    }
    let (mut g, _, last, _) = cur.expect("a segment is open");
    g.add("output", Op::Output, &[last])?;
    g.validate().with_context(|| format!("{origin}: model `{name}`"))?;
    done.push(g);
    Ok(done)
}

/// Every model of a table as its segments' graphs, by name.
pub fn graphs(models: &[(String, Vec<Layer>)], origin: &str) -> Result<BTreeMap<String, Vec<Graph>>> {
    models.iter().map(|(n, ls)| Ok((n.clone(), segments(n, ls, origin)?))).collect()
}
