//! The reference interpreter: `f32`, NCHW, one straightforward kernel per op.
//!
//! It defines the semantics that rewrites and generated code are tested against, so it favours
//! plainness over speed. Evaluation is demand-driven from the sinks, in node order:
//!
//! - each early exit, in exit order, pulls the nodes it depends on; when its rule fires on its
//!   scores (batch row 0), execution stops and those scores are the output — the nodes only the
//!   later exits or the output need are never run;
//! - a gate pulls its logit (for [`GateDecision::Logit`]), decides, then pulls only its body
//!   (open) or only its skip input (closed): a closed gate's block does not run;
//! - the output is pulled last, when no exit fired.
//!
//! [`RunResult::executed`] records which nodes ran, the ground truth of the "cost to exit k"
//! and "gate closed" accounting of the cost model.

use std::collections::BTreeMap;

use crate::error::{IrError, Result};
use crate::graph::{Graph, NodeId};
use crate::op::{Activation, Conv2d, Dense, GateDecision, Op, Pool};
use crate::shape::Shape;
use crate::tensor::Tensor;
use crate::weights::Weights;

/// Options of a run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Per-exit threshold overrides, by exit node name.
    pub exit_thresholds: BTreeMap<String, f32>,
    /// Forced gate decisions by gate node name (`true` = open, the block runs).
    pub gates: BTreeMap<String, bool>,
    /// Never take an early exit: run to the output.
    pub disable_exits: bool,
    /// Keep every computed value in [`RunResult::values`] (otherwise values are freed as soon
    /// as their last consumer has run).
    pub keep_values: bool,
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The network's output: the scores of the exit taken, or of the output node.
    pub output: Tensor,
    /// Index of the exit taken: `0..exits` for an early exit, `exits` for the output.
    pub exit_index: usize,
    /// Name of the exit node taken, `None` for the output.
    pub exit_node: Option<String>,
    /// Decision of every gate that was reached, by name (`true` = open).
    pub gates_open: BTreeMap<String, bool>,
    /// Which nodes ran, by node index.
    pub executed: Vec<bool>,
    /// Every computed value by node index, when [`RunOptions::keep_values`] is set.
    pub values: Vec<Option<Tensor>>,
}

/// Runs a concrete graph on one input tensor.
pub fn run(graph: &Graph, weights: &Weights, input: &Tensor, opts: &RunOptions) -> Result<RunResult> {
    let shapes = graph.validate()?;
    weights.check(graph)?;
    let in_id = graph.input_node()?;
    if input.shape != shapes[in_id.index()] {
        return Err(IrError::Run(format!(
            "input has shape {:?} but node `{}` expects {:?}",
            input.shape,
            graph.node(in_id).name,
            shapes[in_id.index()]
        )));
    }
    for name in opts.exit_thresholds.keys() {
        if !graph.exits().iter().any(|&e| graph.node(e).name == *name) {
            return Err(IrError::Run(format!("threshold given for `{name}`, which is not an exit of the graph")));
        }
    }
    for name in opts.gates.keys() {
        if !graph.gates().iter().any(|&g| graph.node(g).name == *name) {
            return Err(IrError::Run(format!("decision given for `{name}`, which is not a gate of the graph")));
        }
    }
    let mut m = Machine {
        graph,
        weights,
        shapes: &shapes,
        opts,
        input,
        values: vec![None; graph.len()],
        remaining: use_counts(graph),
        executed: vec![false; graph.len()],
        gates_open: BTreeMap::new(),
    };
    let exits = graph.exits();
    for (k, &e) in exits.iter().enumerate() {
        if opts.disable_exits {
            break;
        }
        m.pull(e)?;
        let Op::Exit(ex) = &graph.node(e).op else { unreachable!("exits() returns exit nodes") };
        let name = &graph.node(e).name;
        let theta = opts.exit_thresholds.get(name).copied().unwrap_or(ex.threshold);
        let scores = m.values[e.index()].as_ref().expect("pulled");
        let row = &scores.data[..scores.shape[1]];
        if ex.rule.fires(ex.rule.statistic(row), theta) {
            let output = scores.clone();
            return Ok(m.finish(output, k, Some(name.clone())));
        }
    }
    let out = graph.output_node()?;
    m.pull(out)?;
    let output = m.values[out.index()].clone().expect("pulled");
    Ok(m.finish(output, exits.len(), None))
}

/// Bytes [`run`] holds at most: the graph's activations as f32, each freed after its last
/// reader, at their peak in node order, plus its weights. For checking a model against the
/// memory a machine has before running it.
pub fn memory_bytes(graph: &Graph) -> Result<u64> {
    let stats = crate::stats::node_stats(graph)?;
    let bytes = |id: NodeId| 4 * crate::shape::numel(&stats[id.index()].shape) as u64;
    let mut remaining = use_counts(graph);
    let (mut live, mut peak) = (0u64, 0u64);
    for id in graph.node_ids() {
        live += bytes(id);
        peak = peak.max(live);
        for &i in graph.inputs(id) {
            remaining[i.index()] -= 1;
            if remaining[i.index()] == 0 {
                live -= bytes(i);
            }
        }
    }
    let params = stats.iter().map(|n| n.params).fold(0, u64::saturating_add);
    Ok(peak.saturating_add(params.saturating_mul(4)))
}

/// Number of input edges reading each node (a node read twice by one consumer counts twice).
fn use_counts(graph: &Graph) -> Vec<usize> {
    let mut n = vec![0; graph.len()];
    for id in graph.node_ids() {
        for &i in graph.inputs(id) {
            n[i.index()] += 1;
        }
    }
    n
}

struct Machine<'a> {
    graph: &'a Graph,
    weights: &'a Weights,
    shapes: &'a [Shape],
    opts: &'a RunOptions,
    input: &'a Tensor,
    values: Vec<Option<Tensor>>,
    remaining: Vec<usize>,
    executed: Vec<bool>,
    gates_open: BTreeMap<String, bool>,
}

impl Machine<'_> {
    fn finish(self, output: Tensor, exit_index: usize, exit_node: Option<String>) -> RunResult {
        let values = if self.opts.keep_values { self.values } else { Vec::new() };
        RunResult { output, exit_index, exit_node, gates_open: self.gates_open, executed: self.executed, values }
    }

    /// Computes `id` and whatever it needs, unless it already ran.
    fn pull(&mut self, id: NodeId) -> Result<()> {
        if self.executed[id.index()] {
            return Ok(());
        }
        let graph = self.graph;
        let node = graph.node(id);
        let ins = graph.inputs(id);
        let needed: Vec<NodeId> = match &node.op {
            Op::Gate(g) => {
                let open = match (self.opts.gates.get(&node.name), &g.decision) {
                    (Some(&forced), _) => forced,
                    (None, GateDecision::Logit) => {
                        self.pull(ins[2])?;
                        self.values[ins[2].index()].as_ref().expect("pulled").data[0] > 0.0
                    }
                    (None, GateDecision::External { probability }) => *probability >= 0.5,
                };
                self.gates_open.insert(node.name.clone(), open);
                vec![if open { ins[1] } else { ins[0] }]
            }
            _ => ins.to_vec(),
        };
        for &i in &needed {
            self.pull(i)?;
        }
        let value = {
            let args: Vec<&Tensor> = needed.iter().map(|i| self.values[i.index()].as_ref().expect("pulled")).collect();
            self.eval(id, &args)?
        };
        self.values[id.index()] = Some(value);
        self.executed[id.index()] = true;
        if !self.opts.keep_values {
            for &i in ins {
                self.remaining[i.index()] = self.remaining[i.index()].saturating_sub(1);
                if self.remaining[i.index()] == 0 {
                    self.values[i.index()] = None;
                }
            }
        }
        Ok(())
    }

    fn eval(&self, id: NodeId, args: &[&Tensor]) -> Result<Tensor> {
        let node = self.graph.node(id);
        let out_shape = &self.shapes[id.index()];
        let w = |name: &str| self.weights.get(&node.name, name);
        Ok(match &node.op {
            Op::Input(_) => self.input.clone(),
            Op::Output | Op::Identity | Op::Exit(_) | Op::Gate(_) => args[0].clone(),
            Op::Conv2d(c) => {
                let bias = if c.bias { Some(w("bias")?) } else { None };
                conv2d(c, args[0], w("weight")?, bias, out_shape)
            }
            Op::BatchNorm(b) => batchnorm(args[0], w("gamma")?, w("beta")?, w("mean")?, w("var")?, b.epsilon),
            Op::Relu | Op::Relu6 | Op::Hswish | Op::Hsigmoid | Op::Sigmoid | Op::Swish => {
                let act = node.op.as_activation().expect("activation op");
                map(args[0], |x| act.apply(x))
            }
            Op::Add => {
                let mut out = args[0].clone();
                for a in &args[1..] {
                    out.data.iter_mut().zip(&a.data).for_each(|(o, x)| *o += x);
                }
                out
            }
            Op::Mul => mul(args[0], args[1]),
            Op::Concat(c) => concat(args, c.axis, out_shape),
            Op::SliceChannels(s) => slice_channels(args[0], s.start, s.end),
            Op::AvgPool(p) => pool(args[0], p, out_shape, false),
            Op::MaxPool(p) => pool(args[0], p, out_shape, true),
            Op::GlobalAvgPool => global_avg_pool(args[0]),
            Op::Dense(d) => {
                let bias = if d.bias { Some(w("bias")?) } else { None };
                dense(d, args[0], w("weight")?, bias)
            }
            Op::Flatten => Tensor { shape: out_shape.clone(), data: args[0].data.clone() },
            Op::Softmax => softmax(args[0]),
            Op::Zero => Tensor::zeros(out_shape),
            Op::ChannelShuffle(cs) => channel_shuffle(args[0], cs.groups),
            Op::Choice(_) => {
                return Err(IrError::node(&node.name, "choice", "cannot run a supernet; select a configuration first"))
            }
        })
    }
}

fn map(x: &Tensor, f: impl Fn(f32) -> f32) -> Tensor {
    Tensor { shape: x.shape.clone(), data: x.data.iter().map(|&v| f(v)).collect() }
}

fn apply_act(data: &mut [f32], act: Option<Activation>) {
    if let Some(a) = act {
        data.iter_mut().for_each(|v| *v = a.apply(*v));
    }
}

/// Direct convolution with groups, stride, padding and dilation, then bias and activation.
pub fn conv2d(c: &Conv2d, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, out_shape: &Shape) -> Tensor {
    let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2] as isize, x.shape[3] as isize);
    let (cout, oh, ow) = (out_shape[1], out_shape[2], out_shape[3]);
    let g = c.groups.resolve(cin);
    let (cin_g, cout_g) = (cin / g, cout / g);
    let [kh, kw] = c.kernel;
    let [sh, sw] = c.stride.map(|v| v as isize);
    let [ph, pw] = c.padding.map(|v| v as isize);
    let [dh, dw] = c.dilation.map(|v| v as isize);
    let mut out = Tensor::zeros(out_shape);
    for b in 0..n {
        for oc in 0..cout {
            let grp = oc / cout_g;
            let o_base = (b * cout + oc) * oh * ow;
            let plane = &mut out.data[o_base..o_base + oh * ow];
            if let Some(bias) = bias {
                plane.iter_mut().for_each(|v| *v = bias.data[oc]);
            }
            for icg in 0..cin_g {
                let ic = grp * cin_g + icg;
                let i_base = (b * cin + ic) * (h * wd) as usize;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = weight.data[((oc * cin_g + icg) * kh + ky) * kw + kx];
                        for oy in 0..oh {
                            let iy = oy as isize * sh + ky as isize * dh - ph;
                            if iy < 0 || iy >= h {
                                continue;
                            }
                            let row = i_base + (iy * wd) as usize;
                            let orow = &mut plane[oy * ow..(oy + 1) * ow];
                            for (ox, o) in orow.iter_mut().enumerate() {
                                let ix = ox as isize * sw + kx as isize * dw - pw;
                                if ix >= 0 && ix < wd {
                                    *o += wv * x.data[row + ix as usize];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    apply_act(&mut out.data, c.act);
    out
}

/// Inference batch normalisation over axis 1 of a rank-2 or rank-4 tensor.
pub fn batchnorm(x: &Tensor, gamma: &Tensor, beta: &Tensor, mean: &Tensor, var: &Tensor, eps: f32) -> Tensor {
    let c = x.shape[1];
    let inner: usize = x.shape[2..].iter().product();
    let mut out = x.clone();
    for (i, v) in out.data.iter_mut().enumerate() {
        let ch = (i / inner) % c;
        *v = gamma.data[ch] * (*v - mean.data[ch]) / (var.data[ch] + eps).sqrt() + beta.data[ch];
    }
    out
}

/// Elementwise product, the second operand broadcast over H and W when it is `[N, C, 1, 1]`.
fn mul(a: &Tensor, b: &Tensor) -> Tensor {
    if a.shape == b.shape {
        return Tensor { shape: a.shape.clone(), data: a.data.iter().zip(&b.data).map(|(x, y)| x * y).collect() };
    }
    let inner = a.shape[2] * a.shape[3];
    Tensor { shape: a.shape.clone(), data: a.data.iter().enumerate().map(|(i, x)| x * b.data[i / inner]).collect() }
}

fn concat(args: &[&Tensor], axis: usize, out_shape: &Shape) -> Tensor {
    let outer: usize = out_shape[..axis].iter().product();
    let mut data = Vec::with_capacity(out_shape.iter().product());
    for o in 0..outer {
        for a in args {
            let chunk: usize = a.shape[axis..].iter().product();
            data.extend_from_slice(&a.data[o * chunk..(o + 1) * chunk]);
        }
    }
    Tensor { shape: out_shape.clone(), data }
}

fn slice_channels(x: &Tensor, start: usize, end: usize) -> Tensor {
    let c = x.shape[1];
    let inner: usize = x.shape[2..].iter().product();
    let mut shape = x.shape.clone();
    shape[1] = end - start;
    let mut data = Vec::with_capacity(x.shape[0] * (end - start) * inner);
    for b in 0..x.shape[0] {
        data.extend_from_slice(&x.data[(b * c + start) * inner..(b * c + end) * inner]);
    }
    Tensor { shape, data }
}

/// Window pooling: max (padding never wins) or average (divisor per `count_include_pad`).
fn pool(x: &Tensor, p: &Pool, out_shape: &Shape, is_max: bool) -> Tensor {
    let (h, w) = (x.shape[2] as isize, x.shape[3] as isize);
    let (oh, ow) = (out_shape[2], out_shape[3]);
    let mut out = Tensor::zeros(out_shape);
    for nc in 0..x.shape[0] * x.shape[1] {
        let base = nc * (h * w) as usize;
        for oy in 0..oh {
            for ox in 0..ow {
                let y0 = (oy * p.stride[0]) as isize - p.padding[0] as isize;
                let x0 = (ox * p.stride[1]) as isize - p.padding[1] as isize;
                let (mut acc, mut count) = (if is_max { f32::NEG_INFINITY } else { 0.0 }, 0usize);
                for iy in y0..y0 + p.kernel[0] as isize {
                    for ix in x0..x0 + p.kernel[1] as isize {
                        if iy < 0 || iy >= h || ix < 0 || ix >= w {
                            continue;
                        }
                        let v = x.data[base + (iy * w + ix) as usize];
                        acc = if is_max { acc.max(v) } else { acc + v };
                        count += 1;
                    }
                }
                let divisor = if p.count_include_pad { p.kernel[0] * p.kernel[1] } else { count.max(1) };
                out.data[(nc * oh + oy) * ow + ox] = if is_max { acc } else { acc / divisor as f32 };
            }
        }
    }
    out
}

fn global_avg_pool(x: &Tensor) -> Tensor {
    let inner = x.shape[2] * x.shape[3];
    let data = x.data.chunks(inner).map(|c| c.iter().sum::<f32>() / inner as f32).collect();
    Tensor { shape: vec![x.shape[0], x.shape[1], 1, 1], data }
}

/// `y = x·Wᵀ + b`, then the activation.
pub fn dense(d: &Dense, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    let (n, f) = (x.shape[0], x.shape[1]);
    let mut out = Tensor::zeros(&[n, d.out_features]);
    for b in 0..n {
        let row = &x.data[b * f..(b + 1) * f];
        for o in 0..d.out_features {
            let wr = &weight.data[o * f..(o + 1) * f];
            let dot: f32 = row.iter().zip(wr).map(|(a, b)| a * b).sum();
            out.data[b * d.out_features + o] = dot + bias.map_or(0.0, |t| t.data[o]);
        }
    }
    apply_act(&mut out.data, d.act);
    out
}

fn softmax(x: &Tensor) -> Tensor {
    let k = x.shape[1];
    let mut out = x.clone();
    for row in out.data.chunks_mut(k) {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        row.iter_mut().for_each(|v| *v = (*v - m).exp());
        let s: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    out
}

/// ShuffleNet's shuffle: view channels as `[g, C/g]`, transpose to `[C/g, g]`.
fn channel_shuffle(x: &Tensor, g: usize) -> Tensor {
    let (n, c) = (x.shape[0], x.shape[1]);
    let inner = x.shape[2] * x.shape[3];
    let per = c / g;
    let mut out = x.clone();
    for b in 0..n {
        for i in 0..g {
            for j in 0..per {
                let src = (b * c + i * per + j) * inner;
                let dst = (b * c + j * g + i) * inner;
                out.data[dst..dst + inner].copy_from_slice(&x.data[src..src + inner]);
            }
        }
    }
    out
}
