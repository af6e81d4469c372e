//! Operators and their attributes.
//!
//! Tensors are NCHW `f32`. Attributes live in the node (not as extra inputs), so a node is
//! fully described by its [`Op`] and its ordered inputs. Weights are not part of the graph:
//! they live in a [`crate::Weights`] store keyed by node name.

use serde::{Deserialize, Serialize};

/// An elementwise activation, usable as an op of its own or fused into a conv/dense.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`
    Relu,
    /// `min(max(x, 0), 6)`
    Relu6,
    /// `x · relu6(x + 3) / 6`
    Hswish,
    /// `relu6(x + 3) / 6`
    Hsigmoid,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `x · sigmoid(x)` (SiLU)
    Swish,
}

impl Activation {
    /// All activations, in a fixed order.
    pub const ALL: [Activation; 6] = [
        Activation::Relu,
        Activation::Relu6,
        Activation::Hswish,
        Activation::Hsigmoid,
        Activation::Sigmoid,
        Activation::Swish,
    ];

    /// Applies the activation to one value. This is the reference definition.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::Hswish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::Hsigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Swish => x / (1.0 + (-x).exp()),
        }
    }

    /// Work per element in simple float operations: `max` (ReLU), `max`+`min` (ReLU6),
    /// add and clamp (hard sigmoid), and a multiply more (hard swish); the logistic costs an
    /// exponential (a vectorised polynomial, ~6 operations), an add and a divide, swish a
    /// multiply more.
    pub fn elementwise_weight(self) -> u64 {
        match self {
            Activation::Relu => 1,
            Activation::Relu6 => 2,
            Activation::Hsigmoid => 3,
            Activation::Hswish => 4,
            Activation::Sigmoid => 8,
            Activation::Swish => 9,
        }
    }

    /// The op name used in JSON, e.g. `relu6`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
            Activation::Hswish => "hswish",
            Activation::Hsigmoid => "hsigmoid",
            Activation::Sigmoid => "sigmoid",
            Activation::Swish => "swish",
        }
    }
}

/// Grouping of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Groups {
    /// A fixed number of groups; input and output channels must both divide by it.
    Fixed(usize),
    /// Depthwise: as many groups as input channels, whatever the input width is.
    /// Written `"depthwise"` in JSON. With elastic width this keeps a depthwise conv valid
    /// for every width chosen upstream.
    Depthwise(DepthwiseTag),
}

/// The JSON spelling `"depthwise"` of [`Groups::Depthwise`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepthwiseTag {
    /// The only value.
    Depthwise,
}

impl Groups {
    /// Depthwise grouping.
    pub const DEPTHWISE: Groups = Groups::Depthwise(DepthwiseTag::Depthwise);

    /// The number of groups for a given number of input channels.
    pub fn resolve(self, in_channels: usize) -> usize {
        match self {
            Groups::Fixed(g) => g,
            Groups::Depthwise(_) => in_channels,
        }
    }
}

impl Default for Groups {
    fn default() -> Self {
        Groups::Fixed(1)
    }
}

fn ones() -> [usize; 2] {
    [1, 1]
}
fn groups_default() -> Groups {
    Groups::Fixed(1)
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_ones(v: &[usize; 2]) -> bool {
    *v == [1, 1]
}
fn is_zeros(v: &[usize; 2]) -> bool {
    *v == [0, 0]
}
fn is_one_group(g: &Groups) -> bool {
    *g == Groups::Fixed(1)
}
fn is_one(v: &usize) -> bool {
    *v == 1
}

/// 2-D convolution attributes. Input channels are not an attribute: they come from the input
/// shape, so the same node stays valid when an upstream choice changes the width.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2d {
    /// Output channels; `None` means "as many as the input" (only meaningful for depthwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_channels: Option<usize>,
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    #[serde(default = "ones", skip_serializing_if = "is_ones")]
    pub stride: [usize; 2],
    /// Symmetric zero padding `[ph, pw]`.
    #[serde(default, skip_serializing_if = "is_zeros")]
    pub padding: [usize; 2],
    /// Dilation `[dh, dw]`.
    #[serde(default = "ones", skip_serializing_if = "is_ones")]
    pub dilation: [usize; 2],
    /// Channel groups.
    #[serde(default = "groups_default", skip_serializing_if = "is_one_group")]
    pub groups: Groups,
    /// Whether a bias vector is added.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bias: bool,
    /// An activation fused after the conv (and its bias).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Activation>,
}

impl Conv2d {
    /// A square `k×k` conv with stride `s`, "same"-style padding `(k-1)/2·d`, no bias.
    pub fn new(out_channels: usize, k: usize, s: usize) -> Self {
        Conv2d {
            out_channels: Some(out_channels),
            kernel: [k, k],
            stride: [s, s],
            padding: [(k - 1) / 2, (k - 1) / 2],
            dilation: [1, 1],
            groups: Groups::Fixed(1),
            bias: false,
            act: None,
        }
    }

    /// A depthwise `k×k` conv with stride `s` and padding `pad`.
    pub fn depthwise(k: usize, s: usize, pad: usize) -> Self {
        Conv2d {
            out_channels: None,
            kernel: [k, k],
            stride: [s, s],
            padding: [pad, pad],
            dilation: [1, 1],
            groups: Groups::DEPTHWISE,
            bias: false,
            act: None,
        }
    }

    /// Sets the groups.
    pub fn with_groups(mut self, g: usize) -> Self {
        self.groups = Groups::Fixed(g);
        self
    }

    /// Sets the padding.
    pub fn with_padding(mut self, p: usize) -> Self {
        self.padding = [p, p];
        self
    }

    /// Enables the bias.
    pub fn with_bias(mut self) -> Self {
        self.bias = true;
        self
    }

    /// Fuses an activation.
    pub fn with_act(mut self, act: Activation) -> Self {
        self.act = Some(act);
        self
    }

    /// Output channels for a given number of input channels.
    pub fn resolve_out(&self, in_channels: usize) -> usize {
        self.out_channels.unwrap_or(in_channels)
    }
}

fn default_eps() -> f32 {
    1e-5
}
fn is_default_eps(e: &f32) -> bool {
    *e == 1e-5
}

/// Inference-mode batch normalisation over channels: `γ·(x−μ)/√(σ²+ε)+β`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNorm {
    /// ε added to the variance.
    #[serde(default = "default_eps", skip_serializing_if = "is_default_eps")]
    pub epsilon: f32,
}

impl Default for BatchNorm {
    fn default() -> Self {
        BatchNorm { epsilon: 1e-5 }
    }
}

/// Window pooling attributes (average or max).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    #[serde(default = "ones", skip_serializing_if = "is_ones")]
    pub stride: [usize; 2],
    /// Symmetric padding `[ph, pw]`.
    #[serde(default, skip_serializing_if = "is_zeros")]
    pub padding: [usize; 2],
    /// Average pooling only: whether padded positions count in the divisor
    /// (PyTorch's `count_include_pad`). Ignored by max pooling.
    #[serde(default, skip_serializing_if = "is_false")]
    pub count_include_pad: bool,
}

impl Pool {
    /// A square pool of `k`, stride `s`, padding `p`, padding excluded from averages.
    pub fn new(k: usize, s: usize, p: usize) -> Self {
        Pool { kernel: [k, k], stride: [s, s], padding: [p, p], count_include_pad: false }
    }
}

/// Fully connected layer on a `[N, F]` input: `y = x·Wᵀ + b`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dense {
    /// Output features.
    pub out_features: usize,
    /// Whether a bias vector is added.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bias: bool,
    /// An activation fused after the product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Activation>,
}

fn axis_one() -> usize {
    1
}

/// Concatenation along an axis.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concat {
    /// The axis (1 = channels).
    #[serde(default = "axis_one", skip_serializing_if = "is_one")]
    pub axis: usize,
}

/// A contiguous slice of channels `[start, end)` (the inverse of a channel concat).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceChannels {
    /// First channel kept.
    pub start: usize,
    /// One past the last channel kept.
    pub end: usize,
}

/// ShuffleNet channel shuffle with `groups` groups (FBNet's grouped blocks).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelShuffle {
    /// Number of groups.
    pub groups: usize,
}

/// The graph input, with its full shape (batch included).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Shape, e.g. `[1, 3, 32, 32]`.
    pub shape: Vec<usize>,
}

/// The decision rule of an early exit, evaluated on the class scores of the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitRule {
    /// Exit when the largest softmax probability is at least θ.
    MaxSoftmax,
    /// Exit when the softmax entropy (nats) is at most θ.
    Entropy,
}

impl ExitRule {
    /// Confidence statistic of a row of logits under this rule: the max softmax probability,
    /// or the entropy in nats.
    pub fn statistic(self, logits: &[f32]) -> f32 {
        let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = logits.iter().map(|&x| (x - m).exp()).collect();
        let sum: f32 = exps.iter().sum();
        match self {
            ExitRule::MaxSoftmax => 1.0 / sum,
            ExitRule::Entropy => {
                let log_sum = sum.ln();
                -exps
                    .iter()
                    .map(|&e| {
                        let p = e / sum;
                        if p > 0.0 {
                            p * ((e.ln()) - log_sum)
                        } else {
                            0.0
                        }
                    })
                    .sum::<f32>()
            }
        }
    }

    /// Whether a statistic value fires the exit at threshold θ.
    pub fn fires(self, statistic: f32, threshold: f32) -> bool {
        match self {
            ExitRule::MaxSoftmax => statistic >= threshold,
            ExitRule::Entropy => statistic <= threshold,
        }
    }
}

/// An early exit: its single input is the class scores `[1, classes]` of its head. When the
/// rule fires, execution stops and those scores are the network's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exit {
    /// The decision rule.
    pub rule: ExitRule,
    /// The threshold θ.
    pub threshold: f32,
}

/// How a gate decides whether its block runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum GateDecision {
    /// A third input gives a logit (one value); the block runs when it is `> 0`
    /// (SkipNet's hard gate: sigmoid ≥ 0.5).
    Logit,
    /// Decided outside the network (BlockDrop's policy); `probability` is the chance the
    /// block runs, used by the cost model; the interpreter runs the block when it is ≥ 0.5
    /// unless a run option says otherwise.
    External {
        /// Probability that the block runs.
        probability: f32,
    },
}

/// A gate: inputs `[skip, body]` (plus `[logit]` for [`GateDecision::Logit`]). When the gate
/// is open the output is `body`, else `skip`; the nodes that only feed `body` run only when
/// the gate is open. `skip` and `body` must have the same shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// How the gate decides.
    pub decision: GateDecision,
}

/// A choice: its inputs are the candidates, one per option of the named architecture
/// parameter. Several choice nodes may share a parameter (they then switch together, as
/// OFA's elastic depth needs). Candidates may differ in shape (elastic width).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// Name of the architecture parameter, declared in the graph's `params`.
    pub param: String,
}

/// An operator with its attributes. The JSON form is `{"op": "<name>", "attrs": {…}}`,
/// `attrs` absent for ops without attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "attrs", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Graph input (no inputs).
    Input(Input),
    /// Graph output (one input). Its exit index is the number of exits.
    Output,
    /// 2-D convolution.
    Conv2d(Conv2d),
    /// Batch normalisation (inference).
    #[serde(rename = "batchnorm")]
    BatchNorm(BatchNorm),
    /// `max(x, 0)`
    Relu,
    /// `min(max(x, 0), 6)`
    Relu6,
    /// hard swish
    Hswish,
    /// hard sigmoid
    Hsigmoid,
    /// logistic sigmoid
    Sigmoid,
    /// `x · sigmoid(x)`
    Swish,
    /// Elementwise sum of two or more inputs of equal shape.
    Add,
    /// Elementwise product of two inputs, the second broadcast over H, W (squeeze-excite).
    Mul,
    /// Concatenation.
    Concat(Concat),
    /// Channel slice.
    SliceChannels(SliceChannels),
    /// Average pooling.
    AvgPool(Pool),
    /// Max pooling.
    MaxPool(Pool),
    /// Global average pooling to `[N, C, 1, 1]`.
    GlobalAvgPool,
    /// Fully connected layer.
    Dense(Dense),
    /// Flatten `[N, …]` to `[N, ∏…]`.
    Flatten,
    /// Softmax over axis 1 of a `[N, K]` tensor.
    Softmax,
    /// Identity.
    Identity,
    /// Zeros of the input's shape (NAS-Bench-201's `none`).
    Zero,
    /// Channel shuffle.
    ChannelShuffle(ChannelShuffle),
    /// Early exit.
    Exit(Exit),
    /// Gated block.
    Gate(Gate),
    /// Architecture choice.
    Choice(Choice),
}

impl Op {
    /// The op's JSON name, e.g. `conv2d`.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input(_) => "input",
            Op::Output => "output",
            Op::Conv2d(_) => "conv2d",
            Op::BatchNorm(_) => "batchnorm",
            Op::Relu => "relu",
            Op::Relu6 => "relu6",
            Op::Hswish => "hswish",
            Op::Hsigmoid => "hsigmoid",
            Op::Sigmoid => "sigmoid",
            Op::Swish => "swish",
            Op::Add => "add",
            Op::Mul => "mul",
            Op::Concat(_) => "concat",
            Op::SliceChannels(_) => "slice_channels",
            Op::AvgPool(_) => "avg_pool",
            Op::MaxPool(_) => "max_pool",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Dense(_) => "dense",
            Op::Flatten => "flatten",
            Op::Softmax => "softmax",
            Op::Identity => "identity",
            Op::Zero => "zero",
            Op::ChannelShuffle(_) => "channel_shuffle",
            Op::Exit(_) => "exit",
            Op::Gate(_) => "gate",
            Op::Choice(_) => "choice",
        }
    }

    /// The activation this op is, if it is a standalone activation.
    pub fn as_activation(&self) -> Option<Activation> {
        Some(match self {
            Op::Relu => Activation::Relu,
            Op::Relu6 => Activation::Relu6,
            Op::Hswish => Activation::Hswish,
            Op::Hsigmoid => Activation::Hsigmoid,
            Op::Sigmoid => Activation::Sigmoid,
            Op::Swish => Activation::Swish,
            _ => return None,
        })
    }

    /// Elementwise work per output element, in simple float operations (1 for an op that is
    /// not an activation): what cost models charge for the op, standalone or fused.
    pub fn elementwise_weight(&self) -> u64 {
        self.as_activation().map_or(1, Activation::elementwise_weight)
    }

    /// The standalone op of an activation.
    pub fn from_activation(act: Activation) -> Op {
        match act {
            Activation::Relu => Op::Relu,
            Activation::Relu6 => Op::Relu6,
            Activation::Hswish => Op::Hswish,
            Activation::Hsigmoid => Op::Hsigmoid,
            Activation::Sigmoid => Op::Sigmoid,
            Activation::Swish => Op::Swish,
        }
    }

    /// Allowed number of inputs, as an inclusive range.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Op::Input(_) => (0, 0),
            Op::Add => (2, usize::MAX),
            Op::Mul => (2, 2),
            Op::Concat(_) => (1, usize::MAX),
            Op::Choice(_) => (1, usize::MAX),
            Op::Gate(g) => match g.decision {
                GateDecision::Logit => (3, 3),
                GateDecision::External { .. } => (2, 2),
            },
            _ => (1, 1),
        }
    }

    /// Whether the op carries weights in a [`crate::Weights`] store.
    pub fn has_weights(&self) -> bool {
        matches!(self, Op::Conv2d(_) | Op::BatchNorm(_) | Op::Dense(_))
    }

    /// Whether the op is a sink (output or exit).
    pub fn is_sink(&self) -> bool {
        matches!(self, Op::Output | Op::Exit(_))
    }
}
