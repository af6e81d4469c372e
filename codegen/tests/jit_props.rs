//! Property test: random graphs — every op, random shapes, kernels, strides, padding,
//! dilation, groups, fused and unfused batch norms and activations, early exits with either
//! rule, logit gates — JIT-compiled match the reference interpreter (relative 1e-4) and take
//! the same exit, with exits allowed to fire and with every exit disabled.

use nasc_codegen::{Jit, Opt};
use nasc_ir::interp::{run, RunOptions};
use nasc_ir::op::{
    Activation, BatchNorm, ChannelShuffle, Concat, Conv2d, Dense, Exit, ExitRule, Gate, GateDecision, Groups, Input,
    Pool, SliceChannels,
};
use nasc_ir::{Graph, NodeId, Op, Tensor, Weights};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ACTS: [Activation; 6] = [
    Activation::Relu,
    Activation::Relu6,
    Activation::Hswish,
    Activation::Hsigmoid,
    Activation::Sigmoid,
    Activation::Swish,
];

struct Builder {
    g: Graph,
    rng: ChaCha8Rng,
    n: usize,
}

impl Builder {
    fn add(&mut self, op: Op, ins: &[NodeId]) -> NodeId {
        self.n += 1;
        let name = format!("n{}_{}", self.n, op.name());
        self.g.add(name, op, ins).unwrap()
    }

    fn shape(&self, id: NodeId) -> Vec<usize> {
        self.g.infer_shapes().unwrap()[id.index()].clone()
    }

    fn act(&mut self) -> Activation {
        ACTS[self.rng.gen_range(0..ACTS.len())]
    }

    /// A random convolution of `x` (valid output size), sometimes followed by a batch norm
    /// and an activation as separate nodes (which codegen fuses).
    fn conv(&mut self, x: NodeId, same: bool) -> NodeId {
        let s = self.shape(x);
        let (cin, h, w) = (s[1], s[2], s[3]);
        loop {
            let k = [1, 1, 2, 3, 3, 5][self.rng.gen_range(0..6)];
            let stride = if same { 1 } else { self.rng.gen_range(1..=2) };
            let dil = if k > 1 && self.rng.gen_bool(0.2) { 2 } else { 1 };
            let span = dil * (k - 1);
            let pad = if same { span / 2 } else { self.rng.gen_range(0..=span / 2 + usize::from(span % 2 == 1)) };
            if same && span % 2 == 1 {
                continue;
            }
            if h + 2 * pad <= span || w + 2 * pad <= span {
                continue;
            }
            let divisors: Vec<usize> = (1..=cin).filter(|d| cin % d == 0).collect();
            let groups = divisors[self.rng.gen_range(0..divisors.len())];
            let cout = if same { cin } else { groups * [1, 2, 4, 4][self.rng.gen_range(0..4)] };
            let mut c = Conv2d::new(cout, k, stride);
            c.padding = [pad, pad];
            c.dilation = [dil, dil];
            c.groups = Groups::Fixed(groups);
            c.bias = self.rng.gen_bool(0.5);
            let separate = self.rng.gen_bool(0.5);
            if !separate && self.rng.gen_bool(0.5) {
                c.act = Some(self.act());
            }
            let mut y = self.add(Op::Conv2d(c), &[x]);
            if separate {
                if self.rng.gen_bool(0.7) {
                    y = self.add(Op::BatchNorm(BatchNorm::default()), &[y]);
                }
                if self.rng.gen_bool(0.7) {
                    let a = self.act();
                    y = self.add(Op::from_activation(a), &[y]);
                }
            }
            return y;
        }
    }

    /// One random trunk step from `x`.
    fn step(&mut self, x: NodeId) -> NodeId {
        let s = self.shape(x);
        match self.rng.gen_range(0..10) {
            0..=2 => self.conv(x, false),
            3 => {
                let k = self.rng.gen_range(1..=3).min(s[2]).min(s[3]);
                let stride = self.rng.gen_range(1..=2);
                let p = self.rng.gen_range(0..=k / 2);
                let mut pool = Pool::new(k, stride, p);
                pool.count_include_pad = self.rng.gen_bool(0.5);
                let op = if self.rng.gen_bool(0.5) { Op::AvgPool(pool) } else { Op::MaxPool(pool) };
                self.add(op, &[x])
            }
            4 => {
                // Residual: x + conv_same(x), sometimes a third term.
                let y = self.conv(x, true);
                if self.rng.gen_bool(0.3) {
                    let z = self.conv(x, true);
                    self.add(Op::Add, &[x, y, z])
                } else {
                    self.add(Op::Add, &[x, y])
                }
            }
            5 => {
                // Squeeze-excite: x · hsigmoid(conv1×1(gap(x))).
                let p = self.add(Op::GlobalAvgPool, &[x]);
                let mut c = Conv2d::new(s[1], 1, 1).with_bias();
                c.act = Some(Activation::Hsigmoid);
                let sc = self.add(Op::Conv2d(c), &[p]);
                self.add(Op::Mul, &[x, sc])
            }
            6 => {
                // Concat with a branch, then a slice or a shuffle.
                let y = self.conv(x, true);
                let cat = self.add(Op::Concat(Concat { axis: 1 }), &[x, y]);
                let c = 2 * s[1];
                if self.rng.gen_bool(0.5) {
                    let start = self.rng.gen_range(0..c);
                    let end = self.rng.gen_range(start + 1..=c);
                    self.add(Op::SliceChannels(SliceChannels { start, end }), &[cat])
                } else {
                    self.add(Op::ChannelShuffle(ChannelShuffle { groups: 2 }), &[cat])
                }
            }
            7 => {
                let a = self.act();
                self.add(Op::from_activation(a), &[x])
            }
            8 => {
                // Elementwise product of two branches of the same shape.
                let y = self.conv(x, true);
                self.add(Op::Mul, &[x, y])
            }
            _ => {
                // A gated residual block; its logit from the block's input.
                let body = self.conv(x, true);
                let p = self.add(Op::GlobalAvgPool, &[x]);
                let f = self.add(Op::Flatten, &[p]);
                let l = self.add(Op::Dense(Dense { out_features: 1, bias: true, act: None }), &[f]);
                self.add(Op::Gate(Gate { decision: GateDecision::Logit }), &[x, body, l])
            }
        }
    }

    fn head(&mut self, x: NodeId, classes: usize) -> NodeId {
        let p = self.add(Op::GlobalAvgPool, &[x]);
        let f = self.add(Op::Flatten, &[p]);
        let act = if self.rng.gen_bool(0.2) { Some(self.act()) } else { None };
        let bias = self.rng.gen_bool(0.7);
        self.add(Op::Dense(Dense { out_features: classes, bias, act }), &[f])
    }
}

fn random_graph(seed: u64) -> Graph {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c = [1, 2, 3, 4, 6, 8][rng.gen_range(0..6)];
    let (h, w) = (rng.gen_range(1..=12), rng.gen_range(1..=12));
    let mut b = Builder { g: Graph::new(format!("random{seed}")), rng, n: 0 };
    let mut x = b.add(Op::Input(Input { shape: vec![1, c, h, w] }), &[]);
    let classes = b.rng.gen_range(2..=6);
    let steps = b.rng.gen_range(1..=5);
    for _ in 0..steps {
        x = b.step(x);
        if b.rng.gen_bool(0.3) {
            let d = b.head(x, classes);
            let rule = if b.rng.gen_bool(0.5) { ExitRule::MaxSoftmax } else { ExitRule::Entropy };
            let threshold = match rule {
                ExitRule::MaxSoftmax => b.rng.gen_range(0.2..0.9),
                ExitRule::Entropy => b.rng.gen_range(0.1..(classes as f32).ln()),
            };
            b.add(Op::Exit(Exit { rule, threshold }), &[d]);
        }
    }
    let mut y = b.head(x, classes);
    if b.rng.gen_bool(0.3) {
        y = b.add(Op::Softmax, &[y]);
    }
    b.add(Op::Output, &[y]);
    b.g
}

fn rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_match_the_interpreter(seed in any::<u64>(), wseed in 0u64..1000) {
        let g = random_graph(seed);
        g.validate().unwrap();
        let w = Weights::random(&g, wseed).unwrap();
        let shape = g.infer_shapes().unwrap()[g.input_node().unwrap().index()].clone();
        let x = Tensor::from_fn(&shape, |i| (((i as u64 * 7919 + wseed) % 200) as f32) / 100.0 - 1.0);
        let jit = Jit::new(&g, &w, Opt::O1).unwrap();
        // With the graph's thresholds, then with every exit disabled.
        for disabled in [false, true] {
            if disabled {
                for (k, &e) in g.exits().iter().enumerate() {
                    let Op::Exit(ex) = &g.node(e).op else { unreachable!() };
                    jit.set_threshold(k, if ex.rule == ExitRule::MaxSoftmax { f32::INFINITY } else { f32::NEG_INFINITY });
                }
            }
            let want = run(&g, &w, &x, &RunOptions { disable_exits: disabled, ..Default::default() }).unwrap();
            let (got, k) = jit.run(&x.data).unwrap();
            prop_assert_eq!(k, want.exit_index, "exit taken (disabled: {})", disabled);
            let n = want.output.data.len();
            let e = rel(&got[..n], &want.output.data);
            prop_assert!(e < 1e-4, "{}: relative error {:e} (exits disabled: {})", g.name, e, disabled);
        }
    }
}
