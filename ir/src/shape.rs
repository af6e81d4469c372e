//! Shape inference, one rule per op. Errors are plain messages; the caller names the node.

use crate::op::{GateDecision, Op, Pool};

/// A tensor shape, batch first (`[N, C, H, W]` or `[N, F]`).
pub type Shape = Vec<usize>;

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The most elements nasc handles in one tensor, activations and weights alike: 2³¹, 8 GiB as
/// f32. Shape inference rejects larger ones, so that sizes, MACs (at most 2⁶² per node) and
/// the arena's byte offsets never overflow, and the interpreter never asks for memory no
/// machine has.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// Number of elements of a shape, or an error past [`MAX_ELEMENTS`]; `what` names the tensor.
pub fn checked_numel(shape: &[usize], what: &str) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| format!("{what} {shape:?} has more than 2^31 elements, more than nasc handles in one tensor"))
}

fn rank4(s: &Shape, what: &str) -> Result<(), String> {
    if s.len() != 4 {
        return Err(format!("{what} must be rank 4 (N, C, H, W), got shape {s:?}"));
    }
    Ok(())
}

fn positive(v: [usize; 2], what: &str) -> Result<(), String> {
    if v[0] == 0 || v[1] == 0 {
        return Err(format!("{what} must be positive, got {v:?}"));
    }
    Ok(())
}

/// Output extent of a sliding window.
pub fn window_out(len: usize, k: usize, s: usize, p: usize, d: usize) -> Result<usize, String> {
    let too_large = || format!("window (kernel {k}, dilation {d}, padding {p}) is too large");
    let span = d.checked_mul(k.saturating_sub(1)).and_then(|v| v.checked_add(1)).ok_or_else(too_large)?;
    let padded = p.checked_mul(2).and_then(|v| v.checked_add(len)).ok_or_else(too_large)?;
    if padded < span {
        return Err(format!("window of extent {span} does not fit input extent {len} with padding {p}"));
    }
    Ok((padded - span) / s + 1)
}

fn pool_shape(p: &Pool, s: &Shape) -> Result<Shape, String> {
    rank4(s, "input")?;
    positive(p.kernel, "kernel")?;
    positive(p.stride, "stride")?;
    for a in 0..2 {
        if 2 * p.padding[a] > p.kernel[a] {
            return Err(format!("padding {:?} exceeds half the kernel {:?}", p.padding, p.kernel));
        }
    }
    checked_numel(&p.kernel, "window")?;
    let h = window_out(s[2], p.kernel[0], p.stride[0], p.padding[0], 1)?;
    let w = window_out(s[3], p.kernel[1], p.stride[1], p.padding[1], 1)?;
    Ok(vec![s[0], s[1], h, w])
}

/// Output shape of `op` given its input shapes (already arity-checked), within
/// [`MAX_ELEMENTS`] (its weights too).
pub fn infer_op_shape(op: &Op, ins: &[&Shape]) -> Result<Shape, String> {
    let out = op_shape(op, ins)?;
    checked_numel(&out, "shape")?;
    Ok(out)
}

fn op_shape(op: &Op, ins: &[&Shape]) -> Result<Shape, String> {
    let first = || ins[0].clone();
    match op {
        Op::Input(i) => {
            if !(i.shape.len() == 2 || i.shape.len() == 4) || i.shape.contains(&0) {
                return Err(format!("input shape must be rank 2 or 4 with positive dims, got {:?}", i.shape));
            }
            Ok(i.shape.clone())
        }
        Op::Output | Op::Identity | Op::Zero => Ok(first()),
        Op::Relu | Op::Relu6 | Op::Hswish | Op::Hsigmoid | Op::Sigmoid | Op::Swish => Ok(first()),
        Op::BatchNorm(_) => {
            if ins[0].len() < 2 {
                return Err(format!("input must have a channel axis, got shape {:?}", ins[0]));
            }
            Ok(first())
        }
        Op::Conv2d(c) => {
            let s = ins[0];
            rank4(s, "input")?;
            positive(c.kernel, "kernel")?;
            positive(c.stride, "stride")?;
            positive(c.dilation, "dilation")?;
            let cin = s[1];
            let g = c.groups.resolve(cin);
            let cout = c.resolve_out(cin);
            if g == 0 || cout == 0 {
                return Err("groups and out_channels must be positive".into());
            }
            if cin % g != 0 {
                return Err(format!("input channels {cin} are not divisible by groups {g}"));
            }
            if cout % g != 0 {
                return Err(format!("output channels {cout} are not divisible by groups {g}"));
            }
            checked_numel(&[cout, cin / g, c.kernel[0], c.kernel[1]], "weight shape")?;
            let h = window_out(s[2], c.kernel[0], c.stride[0], c.padding[0], c.dilation[0])?;
            let w = window_out(s[3], c.kernel[1], c.stride[1], c.padding[1], c.dilation[1])?;
            Ok(vec![s[0], cout, h, w])
        }
        Op::Add => {
            for s in &ins[1..] {
                if *s != ins[0] {
                    return Err(format!("operands differ in shape: {:?} vs {:?}", ins[0], s));
                }
            }
            Ok(first())
        }
        Op::Mul => {
            let (a, b) = (ins[0], ins[1]);
            let per_channel = a.len() == 4 && b.len() == 4 && b[0] == a[0] && b[1] == a[1] && b[2] == 1 && b[3] == 1;
            if a != b && !per_channel {
                return Err(format!("second operand {b:?} must equal {a:?} or be [N, C, 1, 1] for it"));
            }
            Ok(first())
        }
        Op::Concat(c) => {
            let r = ins[0].len();
            if c.axis == 0 || c.axis >= r {
                return Err(format!("axis {} out of range 1..{r}", c.axis));
            }
            let mut out = ins[0].clone();
            for s in &ins[1..] {
                if s.len() != r || (0..r).any(|d| d != c.axis && s[d] != ins[0][d]) {
                    return Err(format!("operands {:?} and {:?} differ outside axis {}", ins[0], s, c.axis));
                }
                out[c.axis] = out[c.axis].checked_add(s[c.axis]).ok_or("concatenated extent overflows")?;
            }
            Ok(out)
        }
        Op::SliceChannels(sl) => {
            let s = ins[0];
            if s.len() < 2 || sl.start >= sl.end || sl.end > s[1] {
                return Err(format!("channel slice {}..{} out of range for shape {s:?}", sl.start, sl.end));
            }
            let mut out = s.clone();
            out[1] = sl.end - sl.start;
            Ok(out)
        }
        Op::AvgPool(p) | Op::MaxPool(p) => pool_shape(p, ins[0]),
        Op::GlobalAvgPool => {
            rank4(ins[0], "input")?;
            Ok(vec![ins[0][0], ins[0][1], 1, 1])
        }
        Op::Dense(d) => {
            if ins[0].len() != 2 {
                return Err(format!("input must be rank 2 (N, F), got {:?}; flatten first", ins[0]));
            }
            if d.out_features == 0 {
                return Err("out_features must be positive".into());
            }
            checked_numel(&[d.out_features, ins[0][1]], "weight shape")?;
            Ok(vec![ins[0][0], d.out_features])
        }
        Op::Flatten => {
            if ins[0].len() < 2 {
                return Err(format!("input must have rank ≥ 2, got {:?}", ins[0]));
            }
            Ok(vec![ins[0][0], checked_numel(&ins[0][1..], "flattened shape")?])
        }
        Op::Softmax => {
            if ins[0].len() != 2 {
                return Err(format!("input must be rank 2 (N, K), got {:?}", ins[0]));
            }
            Ok(first())
        }
        Op::ChannelShuffle(cs) => {
            rank4(ins[0], "input")?;
            if cs.groups == 0 || ins[0][1] % cs.groups != 0 {
                return Err(format!("channels {} not divisible by groups {}", ins[0][1], cs.groups));
            }
            Ok(first())
        }
        Op::Exit(e) => {
            if ins[0].len() != 2 {
                return Err(format!("exit scores must be rank 2 (N, classes), got {:?}", ins[0]));
            }
            if !e.threshold.is_finite() {
                return Err("threshold must be finite".into());
            }
            Ok(first())
        }
        Op::Gate(g) => {
            if ins[0] != ins[1] {
                return Err(format!("skip input {:?} and body input {:?} differ in shape", ins[0], ins[1]));
            }
            match g.decision {
                GateDecision::Logit => {
                    if numel(ins[2]) != 1 {
                        return Err(format!("gate logit must be a single value, got shape {:?}", ins[2]));
                    }
                }
                GateDecision::External { probability } => {
                    if !(0.0..=1.0).contains(&probability) {
                        return Err(format!("probability {probability} is outside [0, 1]"));
                    }
                }
            }
            Ok(first())
        }
        Op::Choice(_) => Err("choice has no shape of its own; select a configuration".into()),
    }
}
