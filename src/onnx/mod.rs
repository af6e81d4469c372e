//! ONNX import and export of concrete subnets, with their weights.
//!
//! **Import** (opset 11+; ops `Conv`, `BatchNormalization`, `Relu`, `Clip` (as ReLU6 or ReLU),
//! `HardSwish`, `HardSigmoid` (α = 1/6, β = ½), `Sigmoid`, `Mul`, `Add`, `Sum`, `Concat`,
//! `GlobalAveragePool`, `AveragePool`, `MaxPool`, `Gemm`, `MatMul` (+ `Add` of a constant bias),
//! `Flatten`, `Reshape` (to `[N, -1]`), `Softmax`, `Identity`, `Dropout`, `Constant`): one
//! graph input with a static shape, weights from initializers (float32, `raw_data` or
//! `float_data`). Early exits are not an ONNX concept: a *sidecar* JSON marks them,
//! `{"exits": {"NAME": {"rule": "max_softmax", "threshold": 0.9}}}` where `NAME` is an ONNX node
//! or output tensor whose values are the exit's class scores (an `Identity` so named becomes
//! the exit itself). Anything else — an unsupported op, a dynamic dimension, asymmetric
//! padding, a malformed file — is a one-line error naming the node.
//!
//! **Export** (opset 17): every op of the IR but `gate` and `choice`; fused activations become
//! their own nodes, `relu6` a `Clip`, `swish` `Sigmoid`+`Mul`, `zero` a `Mul` by 0,
//! `channel_shuffle` `Reshape`/`Transpose`/`Reshape`, `slice_channels` a `Slice`, and each exit
//! an `Identity` named after it that is also a graph output, listed in the returned sidecar —
//! so export then import gives back the same network.

pub mod proto;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use nasc_ir::op::{
    Activation, BatchNorm, ChannelShuffle, Concat, Conv2d, Dense, Exit, ExitRule, Groups, Input, Op, Pool,
};
use nasc_ir::shape::infer_op_shape;
use nasc_ir::{Graph, NodeId, Shape, Tensor, Weights};
use prost::Message;
use serde::{Deserialize, Serialize};

use proto::{attribute_type, data_type, AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};

/// An ONNX problem, naming the place.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxError(pub String);

impl fmt::Display for OnnxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "onnx: {}", self.0)
    }
}

impl std::error::Error for OnnxError {}

type Result<T> = std::result::Result<T, OnnxError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(OnnxError(msg.into()))
}

/// How an exit decides, in the sidecar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitSpec {
    /// The rule.
    pub rule: ExitRule,
    /// The threshold θ.
    pub threshold: f32,
}

/// The sidecar marking early exits of an ONNX model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    /// Node or tensor name → exit.
    pub exits: BTreeMap<String, ExitSpec>,
}

/// An imported network.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The graph.
    pub graph: Graph,
    /// Its weights, from the initializers.
    pub weights: Weights,
}

fn tensor_values(t: &TensorProto) -> Result<Vec<f32>> {
    if t.data_location == 1 {
        return err(format!("initializer `{}` uses external data, which is not supported", t.name));
    }
    let n: i64 = t.dims.iter().product();
    let v: Vec<f32> = match t.data_type {
        data_type::FLOAT if !t.raw_data.is_empty() => {
            if t.raw_data.len() % 4 != 0 {
                return err(format!("initializer `{}`: raw data of {} bytes is not float32", t.name, t.raw_data.len()));
            }
            t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        data_type::FLOAT => t.float_data.clone(),
        data_type::DOUBLE => t.double_data.iter().map(|&x| x as f32).collect(),
        data_type::INT64 if !t.raw_data.is_empty() => t
            .raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        data_type::INT64 => t.int64_data.iter().map(|&x| x as f32).collect(),
        data_type::INT32 => t.int32_data.iter().map(|&x| x as f32).collect(),
        d => return err(format!("initializer `{}` has data type {d}, expected float32 (1)", t.name)),
    };
    if v.len() as i64 != n.max(if t.dims.is_empty() { 1 } else { 0 }) && !(t.dims.is_empty() && v.len() == 1) {
        return err(format!("initializer `{}` has {} values for dims {:?}", t.name, v.len(), t.dims));
    }
    Ok(v)
}

struct Attrs<'a> {
    node: &'a str,
    attrs: &'a [AttributeProto],
}

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.attrs.iter().find(|a| a.name == name)
    }
    fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }
    fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }
    fn string(&self, name: &str) -> String {
        self.get(name).map(|a| String::from_utf8_lossy(&a.s).into_owned()).unwrap_or_default()
    }
    fn pair(&self, name: &str, default: usize) -> Result<[usize; 2]> {
        match self.ints(name) {
            None => Ok([default, default]),
            Some(v) if v.len() == 2 && v.iter().all(|&x| x >= 0) => Ok([v[0] as usize, v[1] as usize]),
            Some(v) => err(format!("node `{}`: attribute {name} {v:?} must be two non-negative values", self.node)),
        }
    }
    /// Symmetric 2-D pads `[top, left, bottom, right]` → `[ph, pw]`.
    fn pads(&self) -> Result<[usize; 2]> {
        let auto = self.string("auto_pad");
        if !(auto.is_empty() || auto == "NOTSET" || auto == "VALID") {
            return err(format!("node `{}`: auto_pad {auto} is not supported; give explicit pads", self.node));
        }
        match self.ints("pads") {
            None => Ok([0, 0]),
            Some(p) if p.len() == 4 && p[0] == p[2] && p[1] == p[3] && p.iter().all(|&x| x >= 0) => {
                Ok([p[0] as usize, p[1] as usize])
            }
            Some(p) => err(format!("node `{}`: pads {p:?} are not symmetric (top = bottom, left = right)", self.node)),
        }
    }
}

/// Imports an ONNX model (bytes) named `name`, with the exits of `sidecar`.
pub fn import(bytes: &[u8], name: &str, sidecar: &Sidecar) -> Result<Imported> {
    let model = ModelProto::decode(bytes).map_err(|e| OnnxError(format!("not an ONNX model: {e}")))?;
    let Some(gp) = model.graph else { return err("the model has no graph") };
    Importer::new(name, sidecar)?.run(&gp)
}

struct Importer<'a> {
    graph: Graph,
    weights: Weights,
    shapes: Vec<Shape>,
    consts: HashMap<String, (Vec<i64>, Vec<f32>)>,
    tensors: HashMap<String, NodeId>,
    names: HashSet<String>,
    sidecar: &'a Sidecar,
    used_exits: HashSet<String>,
    /// 5-D intermediates of a channel shuffle (`Reshape` → `Transpose` → `Reshape`): tensor →
    /// (source node, groups, transposed yet).
    pending: HashMap<String, (NodeId, usize, bool)>,
}

impl<'a> Importer<'a> {
    fn new(name: &str, sidecar: &'a Sidecar) -> Result<Self> {
        Ok(Importer {
            graph: Graph::new(name),
            weights: Weights::default(),
            shapes: Vec::new(),
            consts: HashMap::new(),
            tensors: HashMap::new(),
            names: HashSet::new(),
            sidecar,
            used_exits: HashSet::new(),
            pending: HashMap::new(),
        })
    }

    fn unique(&mut self, base: &str) -> String {
        let mut n = if base.is_empty() { "node".to_string() } else { base.to_string() };
        let mut k = 1;
        while self.names.contains(&n) {
            n = format!("{base}_{k}");
            k += 1;
        }
        self.names.insert(n.clone());
        n
    }

    fn add(&mut self, name: &str, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        let ins: Vec<&Shape> = inputs.iter().map(|i| &self.shapes[i.index()]).collect();
        let shape = infer_op_shape(&op, &ins).map_err(|m| OnnxError(format!("node `{name}` ({}): {m}", op.name())))?;
        let id = self.graph.add(name, op, inputs).map_err(|e| OnnxError(e.to_string()))?;
        self.shapes.push(shape);
        Ok(id)
    }

    fn set_weights(&mut self, node: &str, tensors: Vec<(&str, Vec<usize>, Vec<f32>)>) -> Result<()> {
        let mut m = BTreeMap::new();
        for (n, shape, data) in tensors {
            let t = Tensor::new(shape.clone(), data)
                .ok_or_else(|| OnnxError(format!("node `{node}`: tensor `{n}` does not fit shape {shape:?}")))?;
            m.insert(n.to_string(), t);
        }
        self.weights.tensors.insert(node.to_string(), m);
        Ok(())
    }

    fn input(&self, node: &str, name: &str) -> Result<NodeId> {
        self.tensors.get(name).copied().ok_or_else(|| {
            if self.pending.contains_key(name) {
                OnnxError(format!("node `{node}`: input `{name}` is the 5-D middle of a channel shuffle; only Reshape → Transpose(0,2,1,3,4) → Reshape is supported"))
            } else if self.consts.contains_key(name) {
                OnnxError(format!("node `{node}`: input `{name}` is a constant where a computed tensor is expected"))
            } else {
                OnnxError(format!("node `{node}`: input `{name}` is not produced by an earlier node (not topologically sorted?)"))
            }
        })
    }

    fn constant(&self, node: &str, name: &str) -> Result<&(Vec<i64>, Vec<f32>)> {
        self.consts
            .get(name)
            .ok_or_else(|| OnnxError(format!("node `{node}`: `{name}` must be an initializer (a constant)")))
    }

    fn run(mut self, gp: &GraphProto) -> Result<Imported> {
        for t in &gp.initializer {
            self.consts.insert(t.name.clone(), (t.dims.clone(), tensor_values(t)?));
        }
        let inputs: Vec<_> = gp.input.iter().filter(|i| !self.consts.contains_key(&i.name)).collect();
        if inputs.len() != 1 {
            return err(format!("the graph has {} non-constant inputs, nasc takes exactly one", inputs.len()));
        }
        let inp = inputs[0];
        let tt = inp.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
        let Some(tt) = tt else { return err(format!("input `{}` is not a tensor", inp.name)) };
        if tt.elem_type != data_type::FLOAT {
            return err(format!("input `{}` has element type {}, expected float32", inp.name, tt.elem_type));
        }
        let dims = tt.shape.as_ref().map(|s| s.dim.clone()).unwrap_or_default();
        let mut shape = Vec::new();
        for (k, d) in dims.iter().enumerate() {
            match (d.dim_value, &d.dim_param) {
                (Some(v), _) if v > 0 => shape.push(v as usize),
                (_, Some(p)) if !p.is_empty() => {
                    return err(format!(
                        "input `{}`: dimension {k} is dynamic (`{p}`); nasc needs static shapes",
                        inp.name
                    ))
                }
                _ => return err(format!("input `{}`: dimension {k} has no positive size", inp.name)),
            }
        }
        let n = self.unique(&inp.name);
        let id = self.add(&n, Op::Input(Input { shape }), &[])?;
        self.tensors.insert(inp.name.clone(), id);
        for (k, node) in gp.node.iter().enumerate() {
            self.node(k, node)?;
        }
        let exit_tensors: HashSet<&String> = self.sidecar.exits.keys().collect();
        let outs: Vec<_> = gp.output.iter().filter(|o| !exit_tensors.contains(&o.name)).collect();
        if outs.len() != 1 {
            return err(format!(
                "the graph has {} outputs that are not exits; nasc takes one (mark the others as exits in the sidecar)",
                outs.len()
            ));
        }
        for name in self.sidecar.exits.keys() {
            if !self.used_exits.contains(name) {
                if let Some(&t) = self.tensors.get(name) {
                    self.mark_exit(name, t)?;
                } else {
                    return err(format!("sidecar exit `{name}` is neither a node nor a tensor of the model"));
                }
            }
        }
        let src = self.input("output", &outs[0].name)?;
        let n = self.unique("output");
        self.add(&n, Op::Output, &[src])?;
        self.graph.validate().map_err(|e| OnnxError(e.to_string()))?;
        self.weights.check(&self.graph).map_err(|e| OnnxError(e.to_string()))?;
        Ok(Imported { graph: self.graph, weights: self.weights })
    }

    fn mark_exit(&mut self, name: &str, scores: NodeId) -> Result<()> {
        let spec = &self.sidecar.exits[name];
        let exit_name = self.unique(&format!("{name}.exit"));
        self.add(&exit_name, Op::Exit(Exit { rule: spec.rule, threshold: spec.threshold }), &[scores])?;
        self.used_exits.insert(name.to_string());
        Ok(())
    }

    fn node(&mut self, k: usize, node: &NodeProto) -> Result<()> {
        let base = if node.name.is_empty() { format!("{}_{k}", node.op_type) } else { node.name.clone() };
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return err(format!("node `{base}` ({}): domain `{}` is not supported", node.op_type, node.domain));
        }
        let a = Attrs { node: &base, attrs: &node.attribute };
        let ins = &node.input;
        let arg = |i: usize| -> Result<&String> {
            ins.get(i)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| OnnxError(format!("node `{base}` ({}): missing input {i}", node.op_type)))
        };
        let Some(out) = node.output.first() else {
            return err(format!("node `{base}` ({}): has no output", node.op_type));
        };
        if node.op_type == "Constant" {
            let Some(t) = node.attribute.iter().find(|x| x.name == "value").and_then(|x| x.t.as_ref()) else {
                return err(format!("node `{base}` (Constant): only the `value` tensor form is supported"));
            };
            self.consts.insert(out.clone(), (t.dims.clone(), tensor_values(t)?));
            return Ok(());
        }
        // An Identity named as a sidecar exit becomes the exit node itself.
        let is_exit = self.sidecar.exits.contains_key(&base) || self.sidecar.exits.contains_key(out);
        if node.op_type == "Identity" && self.sidecar.exits.contains_key(&base) {
            let x = self.input(&base, arg(0)?)?;
            let spec = &self.sidecar.exits[&base];
            let name = self.unique(&base);
            let id = self.add(&name, Op::Exit(Exit { rule: spec.rule, threshold: spec.threshold }), &[x])?;
            self.used_exits.insert(base.clone());
            // Consumers of the exit's tensor read the scores it passes on.
            self.tensors.insert(out.clone(), x);
            let _ = id;
            return Ok(());
        }
        let name = self.unique(&base);
        let unary = |s: &mut Self, op: Op| -> Result<NodeId> {
            let x = s.input(&name, arg(0)?)?;
            s.add(&name, op, &[x])
        };
        let id = match node.op_type.as_str() {
            "Conv" => {
                let x = self.input(&name, arg(0)?)?;
                let (wd, w) = self.constant(&name, arg(1)?)?.clone();
                if wd.len() != 4 {
                    return err(format!("node `{name}` (Conv): weight of rank {} (only 2-D convolutions)", wd.len()));
                }
                let groups = a.int("group", 1).max(1) as usize;
                let kernel = a.pair("kernel_shape", 0)?;
                let kernel = if kernel == [0, 0] { [wd[2] as usize, wd[3] as usize] } else { kernel };
                let bias =
                    ins.get(2).filter(|s| !s.is_empty()).map(|b| self.constant(&name, b).cloned()).transpose()?;
                let c = Conv2d {
                    out_channels: Some(wd[0] as usize),
                    kernel,
                    stride: a.pair("strides", 1)?,
                    padding: a.pads()?,
                    dilation: a.pair("dilations", 1)?,
                    groups: Groups::Fixed(groups),
                    bias: bias.is_some(),
                    act: None,
                };
                let id = self.add(&name, Op::Conv2d(c), &[x])?;
                let mut t = vec![("weight", wd.iter().map(|&d| d as usize).collect(), w)];
                if let Some((_, b)) = bias {
                    t.push(("bias", vec![wd[0] as usize], b));
                }
                self.set_weights(&name, t)?;
                id
            }
            "BatchNormalization" => {
                let x = self.input(&name, arg(0)?)?;
                let c = self.shapes[x.index()].get(1).copied().unwrap_or(0);
                let mut t = Vec::new();
                for (i, n) in ["gamma", "beta", "mean", "var"].iter().enumerate() {
                    let (_, v) = self.constant(&name, arg(i + 1)?)?.clone();
                    t.push((*n, vec![c], v));
                }
                let id = self.add(&name, Op::BatchNorm(BatchNorm { epsilon: a.float("epsilon", 1e-5) }), &[x])?;
                self.set_weights(&name, t)?;
                id
            }
            "Relu" => unary(self, Op::Relu)?,
            "Sigmoid" => unary(self, Op::Sigmoid)?,
            "HardSwish" => unary(self, Op::Hswish)?,
            "HardSigmoid" => {
                let (al, be) = (a.float("alpha", 0.2), a.float("beta", 0.5));
                if (al - 1.0 / 6.0).abs() > 1e-6 || (be - 0.5).abs() > 1e-6 {
                    return err(format!(
                        "node `{name}` (HardSigmoid): alpha {al}, beta {be}; only 1/6 and 0.5 (hsigmoid)"
                    ));
                }
                unary(self, Op::Hsigmoid)?
            }
            "Clip" => {
                let bound = |s: &Self, i: usize, attr: &str, default: f32| -> Result<f32> {
                    match ins.get(i).filter(|x| !x.is_empty()) {
                        Some(t) => Ok(s.constant(&name, t)?.1.first().copied().unwrap_or(default)),
                        None => Ok(a.float(attr, default)),
                    }
                };
                let (lo, hi) = (bound(self, 1, "min", f32::NEG_INFINITY)?, bound(self, 2, "max", f32::INFINITY)?);
                let op = match (lo, hi) {
                    (l, h) if l == 0.0 && h == 6.0 => Op::Relu6,
                    (l, h) if l == 0.0 && h.is_infinite() => Op::Relu,
                    _ => return err(format!("node `{name}` (Clip): bounds [{lo}, {hi}]; only [0, 6] and [0, ∞)")),
                };
                unary(self, op)?
            }
            "Add" | "Sum" => {
                let consts: Vec<&String> = ins.iter().filter(|i| self.consts.contains_key(*i)).collect();
                if node.op_type == "Add" && consts.len() == 1 {
                    // A constant bias after MatMul: fold it into the dense layer.
                    let other = ins.iter().find(|i| !self.consts.contains_key(*i)).cloned().unwrap_or_default();
                    let x = self.input(&name, &other)?;
                    let (_, b) = self.constant(&name, consts[0])?.clone();
                    let prev = self.graph.node(x).name.clone();
                    match &mut self.graph.node_mut(x).op {
                        Op::Dense(d) if !d.bias && b.len() == d.out_features => {
                            d.bias = true;
                            let n = d.out_features;
                            self.weights
                                .tensors
                                .get_mut(&prev)
                                .map(|m| m.insert("bias".into(), Tensor::new(vec![n], b).expect("sized")));
                            self.tensors.insert(out.clone(), x);
                            self.names.remove(&name);
                            if is_exit {
                                self.mark_exit(if self.sidecar.exits.contains_key(&base) { &base } else { out }, x)?;
                            }
                            return Ok(());
                        }
                        _ => {
                            return err(format!(
                                "node `{name}` (Add): adding a constant is only supported as a MatMul bias"
                            ))
                        }
                    }
                }
                let xs: Vec<NodeId> = ins.iter().map(|i| self.input(&name, i)).collect::<Result<_>>()?;
                self.add(&name, Op::Add, &xs)?
            }
            "Mul" => {
                let c = [arg(0)?, arg(1)?].into_iter().position(|t| self.consts.contains_key(t));
                if let Some(ci) = c {
                    // Multiplying by a constant zero: NAS-Bench-201's `none` edge.
                    let (_, v) = self.constant(&name, arg(ci)?)?.clone();
                    if v.iter().any(|&z| z != 0.0) {
                        return err(format!(
                            "node `{name}` (Mul): multiplying by a constant is only supported for zero"
                        ));
                    }
                    let x = self.input(&name, arg(1 - ci)?)?;
                    self.add(&name, Op::Zero, &[x])?
                } else {
                    let (x, y) = (self.input(&name, arg(0)?)?, self.input(&name, arg(1)?)?);
                    let (sx, sy) = (&self.shapes[x.index()], &self.shapes[y.index()]);
                    // The IR broadcasts the second operand; put the smaller one second.
                    let swap = sx.len() == 4 && sx[2] * sx[3] == 1 && sy.len() == 4 && sy[2] * sy[3] > 1;
                    let args = if swap { [y, x] } else { [x, y] };
                    self.add(&name, Op::Mul, &args)?
                }
            }
            "Concat" => {
                let xs: Vec<NodeId> = ins.iter().map(|i| self.input(&name, i)).collect::<Result<_>>()?;
                let rank = self.shapes[xs[0].index()].len() as i64;
                let axis = a.int("axis", 1);
                let axis = if axis < 0 { axis + rank } else { axis };
                self.add(&name, Op::Concat(Concat { axis: axis.max(0) as usize }), &xs)?
            }
            "GlobalAveragePool" => unary(self, Op::GlobalAvgPool)?,
            "AveragePool" | "MaxPool" => {
                if a.int("ceil_mode", 0) != 0 {
                    return err(format!("node `{name}` ({}): ceil_mode 1 is not supported", node.op_type));
                }
                if a.ints("dilations").is_some_and(|d| d.iter().any(|&x| x != 1)) {
                    return err(format!("node `{name}` ({}): dilated pooling is not supported", node.op_type));
                }
                if node.output.len() > 1 {
                    return err(format!("node `{name}` (MaxPool): the indices output is not supported"));
                }
                let p = Pool {
                    kernel: a.pair("kernel_shape", 1)?,
                    stride: a.pair("strides", 1)?,
                    padding: a.pads()?,
                    count_include_pad: a.int("count_include_pad", 0) != 0,
                };
                unary(self, if node.op_type == "MaxPool" { Op::MaxPool(p) } else { Op::AvgPool(p) })?
            }
            "Gemm" | "MatMul" => {
                let x = self.input(&name, arg(0)?)?;
                let (wd, w) = self.constant(&name, arg(1)?)?.clone();
                let gemm = node.op_type == "Gemm";
                if gemm && (a.int("transA", 0) != 0 || a.float("alpha", 1.0) != 1.0 || a.float("beta", 1.0) != 1.0) {
                    return err(format!("node `{name}` (Gemm): only transA = 0, alpha = beta = 1"));
                }
                if wd.len() != 2 {
                    return err(format!("node `{name}` ({}): weight of rank {}, expected 2", node.op_type, wd.len()));
                }
                let trans_b = gemm && a.int("transB", 0) != 0;
                let (out_f, in_f) =
                    if trans_b { (wd[0] as usize, wd[1] as usize) } else { (wd[1] as usize, wd[0] as usize) };
                let weight =
                    if trans_b { w } else { (0..out_f * in_f).map(|i| w[(i % in_f) * out_f + i / in_f]).collect() };
                let bias = if gemm {
                    ins.get(2).filter(|s| !s.is_empty()).map(|b| self.constant(&name, b).cloned()).transpose()?
                } else {
                    None
                };
                if let Some((_, b)) = &bias {
                    if b.len() != out_f {
                        return err(format!(
                            "node `{name}` (Gemm): bias of {} values, expected {out_f} (no broadcasting)",
                            b.len()
                        ));
                    }
                }
                let id =
                    self.add(&name, Op::Dense(Dense { out_features: out_f, bias: bias.is_some(), act: None }), &[x])?;
                let mut t = vec![("weight", vec![out_f, in_f], weight)];
                if let Some((_, b)) = bias {
                    t.push(("bias", vec![out_f], b));
                }
                self.set_weights(&name, t)?;
                id
            }
            "Flatten" => {
                if a.int("axis", 1) != 1 {
                    return err(format!("node `{name}` (Flatten): only axis 1"));
                }
                unary(self, Op::Flatten)?
            }
            "Reshape" => {
                let src = arg(0)?.clone();
                let (_, target) = self.constant(&name, arg(1)?)?.clone();
                if let Some(&(x, g, true)) = self.pending.get(&src) {
                    // The end of a channel shuffle: back to the 4-D shape.
                    if target.iter().map(|&v| v as i64).eq(self.shapes[x.index()].iter().map(|&d| d as i64)) {
                        self.add(&name, Op::ChannelShuffle(ChannelShuffle { groups: g }), &[x])?
                    } else {
                        return err(format!(
                            "node `{name}` (Reshape): a channel shuffle must end in the input's shape"
                        ));
                    }
                } else {
                    let x = self.input(&name, &src)?;
                    let s = self.shapes[x.index()].clone();
                    let flat = target.len() == 2
                        && (target[0] == s[0] as f32 || target[0] == 0.0)
                        && (target[1] == -1.0 || target[1] as usize == s[1..].iter().product::<usize>());
                    let split = s.len() == 4
                        && target.len() == 5
                        && target[1] > 0.0
                        && target[0] as usize == s[0]
                        && (target[1] * target[2]) as usize == s[1]
                        && target[3] as usize == s[2]
                        && target[4] as usize == s[3];
                    if flat {
                        self.add(&name, Op::Flatten, &[x])?
                    } else if split {
                        self.pending.insert(node.output[0].clone(), (x, target[1] as usize, false));
                        self.names.remove(&name);
                        return Ok(());
                    } else if target.iter().map(|&v| v as usize).eq(s.iter().copied()) {
                        self.add(&name, Op::Identity, &[x])?
                    } else {
                        return err(format!(
                            "node `{name}` (Reshape): to {target:?} from {s:?}; only flattening to [N, -1] and channel shuffles"
                        ));
                    }
                }
            }
            "Transpose" => {
                let src = arg(0)?.clone();
                match (self.pending.get(&src).copied(), a.ints("perm")) {
                    (Some((x, g, false)), Some(p)) if p == [0, 2, 1, 3, 4] => {
                        self.pending.insert(node.output[0].clone(), (x, g, true));
                        self.names.remove(&name);
                        return Ok(());
                    }
                    _ => {
                        return err(format!(
                            "node `{name}` (Transpose): only the middle of a channel shuffle is supported"
                        ))
                    }
                }
            }
            "Softmax" => {
                let x = self.input(&name, arg(0)?)?;
                let rank = self.shapes[x.index()].len() as i64;
                let axis = a.int("axis", -1);
                if rank != 2 || !(axis == 1 || axis == -1) {
                    return err(format!("node `{name}` (Softmax): only over axis 1 of a rank-2 tensor"));
                }
                self.add(&name, Op::Softmax, &[x])?
            }
            "Identity" | "Dropout" => unary(self, Op::Identity)?,
            op => return err(format!("node `{name}` ({op}): unsupported op")),
        };
        self.tensors.insert(out.clone(), id);
        if is_exit {
            let key = if self.sidecar.exits.contains_key(&base) { base.clone() } else { out.clone() };
            self.mark_exit(&key, id)?;
        }
        Ok(())
    }
}

/// The exporter's growing ONNX graph.
struct Exporter<'a> {
    g: &'a Graph,
    w: &'a Weights,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
}

fn f32_tensor(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type::FLOAT,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn i64_tensor(name: &str, data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: data_type::INT64,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.iter().map(|&x| x as i64).collect(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), i: v, r#type: attribute_type::INT, ..Default::default() }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: name.into(), f: v, r#type: attribute_type::FLOAT, ..Default::default() }
}

impl Exporter<'_> {
    fn push(&mut self, op: &str, name: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: name.to_string(),
            op_type: op.to_string(),
            attribute: attrs,
            domain: String::new(),
        });
    }

    fn weight(&self, node: &str, t: &str) -> Result<&Tensor> {
        self.w.get(node, t).map_err(|e| OnnxError(e.to_string()))
    }

    fn activation(&mut self, act: Activation, input: &str, out: &str) {
        match act {
            Activation::Relu => self.push("Relu", out, &[input], out, vec![]),
            Activation::Relu6 => {
                let (lo, hi) = (format!("{out}.min"), format!("{out}.max"));
                self.inits.push(f32_tensor(&lo, &[], &[0.0]));
                self.inits.push(f32_tensor(&hi, &[], &[6.0]));
                self.push("Clip", out, &[input, &lo, &hi], out, vec![]);
            }
            Activation::Hswish => self.push("HardSwish", out, &[input], out, vec![]),
            Activation::Hsigmoid => {
                self.push("HardSigmoid", out, &[input], out, vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)])
            }
            Activation::Sigmoid => self.push("Sigmoid", out, &[input], out, vec![]),
            Activation::Swish => {
                let s = format!("{out}.sigmoid");
                self.push("Sigmoid", &s, &[input], &s, vec![]);
                self.push("Mul", out, &[input, &s], out, vec![]);
            }
        }
    }

    /// Emits a node's op producing tensor `name` (the node's name).
    fn op(&mut self, id: NodeId, shapes: &[Shape]) -> Result<()> {
        let node = self.g.node(id);
        let name = node.name.as_str();
        let ins: Vec<String> = self.g.inputs(id).iter().map(|&i| self.g.node(i).name.clone()).collect();
        let in0 = ins.first().map(String::as_str).unwrap_or("");
        let pre = format!("{name}.pre");
        match &node.op {
            Op::Input(_) | Op::Output => {}
            Op::Conv2d(c) => {
                let w = self.weight(name, "weight")?.clone();
                let wn = format!("{name}.weight");
                self.inits.push(f32_tensor(&wn, &w.shape, &w.data));
                let mut inputs = vec![in0.to_string(), wn];
                if c.bias {
                    let b = self.weight(name, "bias")?.clone();
                    let bn = format!("{name}.bias");
                    self.inits.push(f32_tensor(&bn, &b.shape, &b.data));
                    inputs.push(bn);
                }
                let out = if c.act.is_some() { pre.as_str() } else { name };
                let g = c.groups.resolve(shapes[self.g.inputs(id)[0].index()][1]);
                let attrs = vec![
                    ints("kernel_shape", &c.kernel),
                    ints("strides", &c.stride),
                    ints("pads", &[c.padding[0], c.padding[1], c.padding[0], c.padding[1]]),
                    ints("dilations", &c.dilation),
                    int("group", g as i64),
                ];
                let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                self.push("Conv", out, &refs, out, attrs);
                if let Some(act) = c.act {
                    self.activation(act, &pre, name);
                }
            }
            Op::BatchNorm(b) => {
                let mut inputs = vec![in0.to_string()];
                for t in ["gamma", "beta", "mean", "var"] {
                    let v = self.weight(name, t)?.clone();
                    let n = format!("{name}.{t}");
                    self.inits.push(f32_tensor(&n, &v.shape, &v.data));
                    inputs.push(n);
                }
                let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                self.push("BatchNormalization", name, &refs, name, vec![float("epsilon", b.epsilon)]);
            }
            op @ (Op::Relu | Op::Relu6 | Op::Hswish | Op::Hsigmoid | Op::Sigmoid | Op::Swish) => {
                self.activation(op.as_activation().expect("an activation"), in0, name);
            }
            Op::Add => {
                let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
                self.push(if ins.len() == 2 { "Add" } else { "Sum" }, name, &refs, name, vec![]);
            }
            Op::Mul => self.push("Mul", name, &[&ins[0], &ins[1]], name, vec![]),
            Op::Concat(c) => {
                let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
                self.push("Concat", name, &refs, name, vec![int("axis", c.axis as i64)]);
            }
            Op::SliceChannels(s) => {
                let (st, en, ax) = (format!("{name}.starts"), format!("{name}.ends"), format!("{name}.axes"));
                self.inits.push(i64_tensor(&st, &[s.start as i64]));
                self.inits.push(i64_tensor(&en, &[s.end as i64]));
                self.inits.push(i64_tensor(&ax, &[1]));
                self.push("Slice", name, &[in0, &st, &en, &ax], name, vec![]);
            }
            Op::AvgPool(p) | Op::MaxPool(p) => {
                let mut attrs = vec![
                    ints("kernel_shape", &p.kernel),
                    ints("strides", &p.stride),
                    ints("pads", &[p.padding[0], p.padding[1], p.padding[0], p.padding[1]]),
                ];
                let op = if matches!(node.op, Op::MaxPool(_)) {
                    "MaxPool"
                } else {
                    attrs.push(int("count_include_pad", i64::from(p.count_include_pad)));
                    "AveragePool"
                };
                self.push(op, name, &[in0], name, attrs);
            }
            Op::GlobalAvgPool => self.push("GlobalAveragePool", name, &[in0], name, vec![]),
            Op::Dense(d) => {
                let w = self.weight(name, "weight")?.clone();
                let wn = format!("{name}.weight");
                self.inits.push(f32_tensor(&wn, &w.shape, &w.data));
                let mut inputs = vec![in0.to_string(), wn];
                if d.bias {
                    let b = self.weight(name, "bias")?.clone();
                    let bn = format!("{name}.bias");
                    self.inits.push(f32_tensor(&bn, &b.shape, &b.data));
                    inputs.push(bn);
                }
                let out = if d.act.is_some() { pre.as_str() } else { name };
                let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                self.push("Gemm", out, &refs, out, vec![int("transB", 1)]);
                if let Some(act) = d.act {
                    self.activation(act, &pre, name);
                }
            }
            Op::Flatten => self.push("Flatten", name, &[in0], name, vec![int("axis", 1)]),
            Op::Softmax => self.push("Softmax", name, &[in0], name, vec![int("axis", 1)]),
            Op::Identity | Op::Exit(_) => self.push("Identity", name, &[in0], name, vec![]),
            Op::Zero => {
                let z = format!("{name}.zero");
                self.inits.push(f32_tensor(&z, &[], &[0.0]));
                self.push("Mul", name, &[in0, &z], name, vec![]);
            }
            Op::ChannelShuffle(ChannelShuffle { groups }) => {
                let s = &shapes[self.g.inputs(id)[0].index()];
                let (a, b) = (format!("{name}.shape5"), format!("{name}.shape4"));
                self.inits.push(i64_tensor(
                    &a,
                    &[s[0] as i64, *groups as i64, (s[1] / groups) as i64, s[2] as i64, s[3] as i64],
                ));
                self.inits.push(i64_tensor(&b, &s.iter().map(|&d| d as i64).collect::<Vec<_>>()));
                let (r, t) = (format!("{name}.grouped"), format!("{name}.transposed"));
                self.push("Reshape", &r, &[in0, &a], &r, vec![]);
                self.push("Transpose", &t, &[&r], &t, vec![ints("perm", &[0, 2, 1, 3, 4])]);
                self.push("Reshape", name, &[&t, &b], name, vec![]);
            }
            Op::Gate(_) => return err(format!("node `{name}` (gate): gates have no ONNX form")),
            Op::Choice(_) => return err(format!("node `{name}` (choice): export a concrete subnet, not a supernet")),
        }
        Ok(())
    }
}

fn value_info(name: &str, shape: &[usize]) -> proto::ValueInfoProto {
    proto::ValueInfoProto {
        name: name.into(),
        r#type: Some(proto::TypeProto {
            tensor_type: Some(proto::TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(proto::TensorShapeProto {
                    dim: shape
                        .iter()
                        .map(|&d| proto::Dimension { dim_value: Some(d as i64), dim_param: None })
                        .collect(),
                }),
            }),
        }),
    }
}

/// Exports a concrete graph with its weights: the ONNX bytes and the sidecar of its exits.
pub fn export(graph: &Graph, weights: &Weights) -> Result<(Vec<u8>, Sidecar)> {
    let shapes = graph.validate().map_err(|e| OnnxError(e.to_string()))?;
    weights.check(graph).map_err(|e| OnnxError(e.to_string()))?;
    let mut ex = Exporter { g: graph, w: weights, nodes: Vec::new(), inits: Vec::new() };
    let mut sidecar = Sidecar::default();
    let mut outputs = Vec::new();
    for id in graph.node_ids() {
        ex.op(id, &shapes)?;
        if let Op::Exit(e) = &graph.node(id).op {
            let n = graph.node(id).name.clone();
            outputs.push(value_info(&n, &shapes[id.index()]));
            sidecar.exits.insert(n, ExitSpec { rule: e.rule, threshold: e.threshold });
        }
    }
    let inp = graph.input_node().map_err(|e| OnnxError(e.to_string()))?;
    let out = graph.output_node().map_err(|e| OnnxError(e.to_string()))?;
    let out_src = graph.inputs(out)[0];
    outputs.insert(0, value_info(&graph.node(out_src).name, &shapes[out_src.index()]));
    let model = ModelProto {
        ir_version: 8,
        producer_name: "nasc".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            node: ex.nodes,
            name: graph.name.clone(),
            initializer: ex.inits,
            input: vec![value_info(&graph.node(inp).name, &shapes[inp.index()])],
            output: outputs,
        }),
        opset_import: vec![proto::OperatorSetIdProto { domain: String::new(), version: 17 }],
    };
    Ok((model.encode_to_vec(), sidecar))
}
