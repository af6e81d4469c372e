//! Host JIT against the reference interpreter: random subnets of every built-in space, with
//! exits firing or not, gates forced open and closed by their logits.

use nasc_codegen::{Jit, Opt};
use nasc_ir::interp::{run, RunOptions};
use nasc_ir::{spaces, Tensor, Weights};
use rand::SeedableRng;

fn rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn jit_matches_the_interpreter_on_every_space() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for name in spaces::NAMES {
        let space = spaces::lookup(name).unwrap();
        for round in 0..1 {
            let g = space.subnet_of(&space.sample(&mut rng)).unwrap();
            let w = Weights::random(&g, round).unwrap();
            let shape = g.infer_shapes().unwrap()[g.input_node().unwrap().index()].clone();
            let x = Tensor::from_fn(&shape, |i| ((i * 7919 + round as usize) % 200) as f32 / 100.0 - 1.0);
            let t0 = std::time::Instant::now();
            let jit = Jit::new(&g, &w, Opt::O1).unwrap();
            let compile = t0.elapsed();
            let n_exits = g.exits().len();
            // No exit fires (θ above any max-softmax), then the first fires (θ = 0).
            for theta in [1.01f32, 0.0] {
                for k in 0..n_exits {
                    jit.set_threshold(k, theta);
                }
                let mut opts = RunOptions::default();
                for &e in &g.exits() {
                    opts.exit_thresholds.insert(g.node(e).name.clone(), theta);
                }
                let want = run(&g, &w, &x, &opts).unwrap();
                let (got, k) = jit.run(&x.data).unwrap();
                assert_eq!(k, want.exit_index, "{name}: exit taken");
                let e = rel(&got, &want.output.data);
                eprintln!(
                    "{name} (θ {theta}): exit {k}, rel. error {e:.2e}, compiled in {:.2} s, arena {} KiB",
                    compile.as_secs_f64(),
                    jit.arena().bytes() / 1024
                );
                assert!(e < 1e-4, "{name}: {e}");
            }
        }
    }
}

/// A bottleneck's projection: the residual sum is added in the 1×1 convolution's registers
/// (the sum shares the convolution's arena slot), and the result matches the interpreter —
/// also when the sum's other input is computed after the convolution (not fused) or the plane
/// is smaller than a register tile (not fused).
#[test]
fn residual_sums_fuse_into_1x1_convolutions() {
    use nasc_ir::op::{BatchNorm, Conv2d, Input};
    use nasc_ir::{Graph, Op};
    for (hw, later) in [(8usize, false), (7, false), (8, true), (3, false)] {
        let mut g = Graph::new("res");
        let x = g.add("x", Op::Input(Input { shape: vec![1, 12, hw, hw] }), &[]).unwrap();
        let a = g.add("a", Op::Conv2d(Conv2d::new(20, 3, 1)), &[x]).unwrap();
        let ra = g.add("ra", Op::Relu6, &[a]).unwrap();
        let mut pw = Conv2d::new(20, 1, 1);
        pw.bias = true;
        let b = g.add("b", Op::Conv2d(pw), &[ra]).unwrap();
        let bn = g.add("bn", Op::BatchNorm(BatchNorm::default()), &[b]).unwrap();
        let other = if later { g.add("late", Op::Relu, &[ra]).unwrap() } else { ra };
        let s = g.add("sum", Op::Add, &[bn, other]).unwrap();
        g.add("y", Op::Output, &[s]).unwrap();
        let w = Weights::random(&g, 3).unwrap();
        let xt = Tensor::from_fn(&[1, 12, hw, hw], |i| ((i * 31) % 17) as f32 / 8.0 - 1.0);
        let want = run(&g, &w, &xt, &RunOptions::default()).unwrap();
        let (got, _) = Jit::new(&g, &w, Opt::O1).unwrap().run(&xt.data).unwrap();
        let e = rel(&got, &want.output.data);
        assert!(e < 1e-5, "{hw}×{hw}, later {later}: {e}");
        let ctx = inkwell::context::Context::create();
        let module = ctx.create_module("res");
        let plan = nasc_codegen::lower(&ctx, &module, &g, &w, "res").unwrap();
        let fused = plan.offsets[s.index()] == plan.offsets[b.index()];
        assert_eq!(fused, hw * hw >= 16 && !later, "{hw}×{hw}, later {later}: {:?}", plan.offsets);
    }
}

/// The register-blocked depthwise kernel (rows of a vector or more, blocks moved back at the
/// end of a band and of a row; rows narrower than a vector, in blocks of up to eight rows for
/// windows of 5×5 and more; two outputs per input channel)
/// and the 1×1 kernel's plane remainders (joining the last panel block, or alone when the
/// panel is full) against the interpreter, over the shapes where their edge cases fall.
#[test]
fn depthwise_rows_and_pointwise_remainders_match_the_interpreter() {
    use nasc_ir::op::{Activation, Conv2d, Groups, Input};
    use nasc_ir::{Graph, Op};
    let check = |label: String, cin: usize, h: usize, w: usize, c: Conv2d| {
        let mut g = Graph::new("k");
        let x = g.add("x", Op::Input(Input { shape: vec![1, cin, h, w] }), &[]).unwrap();
        let y = g.add("c", Op::Conv2d(c), &[x]).unwrap();
        g.add("y", Op::Output, &[y]).unwrap();
        let wt = Weights::random(&g, 7).unwrap();
        let xt = Tensor::from_fn(&[1, cin, h, w], |i| ((i * 37) % 23) as f32 / 11.0 - 1.0);
        let want = run(&g, &wt, &xt, &RunOptions::default()).unwrap();
        let (got, _) = Jit::new(&g, &wt, Opt::O1).unwrap().run(&xt.data).unwrap();
        let e = rel(&got, &want.output.data);
        assert!(e < 1e-5, "{label}: {e}");
    };
    let mut n = 0;
    for (h, w) in [(1, 8), (2, 9), (3, 14), (5, 17), (9, 31), (6, 40), (4, 64), (7, 7), (4, 5), (3, 1), (11, 6)] {
        for (k, stride, dil) in [(3, 1, 1), (5, 1, 1), (3, 2, 1), (5, 2, 1), (3, 1, 2), (7, 1, 1)] {
            let span = dil * (k - 1);
            let pad = span / 2;
            if h + 2 * pad <= span || w + 2 * pad <= span {
                continue;
            }
            let ow = (w + 2 * pad - span - 1) / stride + 1;
            let oh = (h + 2 * pad - span - 1) / stride + 1;
            // Every other shape with two output channels per input channel.
            let mut c = Conv2d::new(3 * (1 + n % 2), k, stride);
            c.padding = [pad, pad];
            c.dilation = [dil, dil];
            c.groups = Groups::Fixed(3);
            c.bias = n % 2 == 0;
            c.act = (n % 3 == 0).then_some(Activation::Relu6);
            check(format!("depthwise {h}×{w} (out {oh}×{ow}) k{k} s{stride} d{dil}"), 3, h, w, c);
            n += 1;
        }
    }
    assert!(n >= 30, "only {n} depthwise shapes");
    // 1×1: 7×7 and 5×5 planes (the rest joins the panel), and a panel too full for it.
    for (cin, cout, h, w) in [(40, 20, 7, 7), (24, 13, 5, 5), (12, 8, 14, 14), (1024, 8, 5, 8)] {
        let mut c = Conv2d::new(cout, 1, 1);
        c.bias = true;
        check(format!("1×1 {cin}→{cout} on {h}×{w}"), cin, h, w, c);
    }
}

/// Stride-1 dense convolutions (register-tiled over the padded planes' width, or, with too many
/// input channels for that, accumulated at that width or a row at a time), and window pooling
/// (banded like a depthwise convolution; windows of over 50 taps through a plane-wide bordered
/// scratch or, on a plane too large for it, with bounds tests), against the interpreter:
/// batch 2, groups, dilation, asymmetric planes, both average divisors.
#[test]
fn narrow_convolutions_and_window_pools_match_the_interpreter() {
    use nasc_ir::op::{Activation, Conv2d, Groups, Input, Pool};
    use nasc_ir::{Graph, Op};
    let check = |label: String, cin: usize, h: usize, w: usize, op: Op| {
        let mut g = Graph::new("k");
        let x = g.add("x", Op::Input(Input { shape: vec![2, cin, h, w] }), &[]).unwrap();
        let y = g.add("op", op, &[x]).unwrap();
        g.add("y", Op::Output, &[y]).unwrap();
        let wt = Weights::random(&g, 11).unwrap();
        let xt = Tensor::from_fn(&[2, cin, h, w], |i| ((i * 29) % 31) as f32 / 13.0 - 1.0);
        let want = run(&g, &wt, &xt, &RunOptions::default()).unwrap();
        let (got, _) = Jit::new(&g, &wt, Opt::O1).unwrap().run(&xt.data).unwrap();
        let e = rel(&got, &want.output.data);
        assert!(e < 1e-5, "{label}: {e}");
    };
    let mut n = 0;
    for (h, w) in [(7, 7), (8, 8), (14, 14), (5, 11), (9, 15), (16, 16), (3, 20)] {
        // Stride 1, and strides 2, 3 and 2×1 through phase planes.
        for (k, dil, groups, stride) in [
            (3, 1, 1, [1, 1]),
            (5, 1, 1, [1, 1]),
            (3, 2, 1, [1, 1]),
            (3, 1, 2, [1, 1]),
            (3, 1, 1, [2, 2]),
            (5, 1, 1, [2, 2]),
            (3, 2, 1, [2, 2]),
            (3, 1, 2, [2, 2]),
            (3, 1, 1, [3, 3]),
            (3, 1, 1, [2, 1]),
        ] {
            let span = dil * (k - 1);
            let pad = span / 2;
            if h + 2 * pad <= span || w + 2 * pad <= span {
                continue;
            }
            let mut c = Conv2d::new(10 * groups, k, 1);
            c.stride = stride;
            c.padding = [pad, pad];
            c.dilation = [dil, dil];
            c.groups = Groups::Fixed(groups);
            c.bias = n % 2 == 0;
            c.act = (n % 3 == 0).then_some(Activation::Relu);
            check(format!("conv {h}×{w} k{k} d{dil} g{groups} s{stride:?}"), 12, h, w, Op::Conv2d(c));
            n += 1;
        }
        // Windows of up to 49 taps banded like a depthwise convolution; 8×8 through the
        // plane-wide bordered scratch.
        for (k, stride, pad) in [(3, 1, 1), (3, 2, 1), (2, 2, 0), (3, 2, 0), (5, 2, 2), (7, 1, 3), (8, 1, 4)] {
            if h + 2 * pad < k || w + 2 * pad < k {
                continue;
            }
            for include_pad in [false, true] {
                let mut p = Pool::new(k, stride, pad);
                p.count_include_pad = include_pad;
                check(format!("avg pool {h}×{w} k{k} s{stride} p{pad} {include_pad}"), 3, h, w, Op::AvgPool(p));
            }
            check(format!("max pool {h}×{w} k{k} s{stride} p{pad}"), 3, h, w, Op::MaxPool(Pool::new(k, stride, pad)));
        }
    }
    assert!(n >= 60, "only {n} convolutions");
    // A plane of several bands (3×3), and one too large for the 8×8 window's stack scratch:
    // every tap tested against its bounds.
    for k in [3, 8] {
        for include_pad in [false, true] {
            let mut p = Pool::new(k, 2, 1);
            p.count_include_pad = include_pad;
            check(format!("avg pool 300×300 k{k} {include_pad}"), 1, 300, 300, Op::AvgPool(p));
        }
        check(format!("max pool 300×300 k{k}"), 1, 300, 300, Op::MaxPool(Pool::new(k, 2, 1)));
    }
    // Planes too large for one band of the register-tiled kernel: bands of rows, the last
    // overlapping the one before (24 channels); too many input channels for even two rows of
    // it: narrow rows accumulated at the scratch's width (4096), wide rows one at a time (256).
    for (cin, h, w) in [(24, 61, 48), (4096, 7, 7), (256, 70, 70)] {
        for stride in [1, 2] {
            let mut c = Conv2d::new(4, 3, stride);
            c.padding = [1, 1];
            c.bias = true;
            check(format!("conv {cin} channels {h}×{w} s{stride}"), cin, h, w, Op::Conv2d(c));
        }
    }
}
