//! Properties of the analytic model on every built-in target: cost grows with channels,
//! spatial size and kernel size; latency and energy are finite and positive for every op and
//! for subnets of every built-in space.

use nasc_costmodel::{cost, Model, Report};
use nasc_ir::op::{
    Activation, BatchNorm, ChannelShuffle, Concat, Conv2d, Dense, Exit, ExitRule, Gate, GateDecision, Input, Pool,
    SliceChannels,
};
use nasc_ir::{spaces, Graph, NodeId, Op};
use proptest::prelude::*;
use rand::SeedableRng;

fn models() -> Vec<Model> {
    nasc_targets::names().into_iter().map(|n| Model::new(nasc_targets::lookup(n).unwrap()).unwrap()).collect()
}

/// input [1, cin, h, h] → conv k×k (same padding) → BN → ReLU → output.
fn conv_net(cin: usize, cout: usize, h: usize, k: usize, depthwise: bool) -> Graph {
    let mut g = Graph::new("conv");
    let x = g.add("x", Op::Input(Input { shape: vec![1, cin, h, h] }), &[]).unwrap();
    let c = if depthwise { Conv2d::depthwise(k, 1, (k - 1) / 2) } else { Conv2d::new(cout, k, 1) };
    let c = g.add("conv", Op::Conv2d(c), &[x]).unwrap();
    let b = g.add("bn", Op::BatchNorm(BatchNorm::default()), &[c]).unwrap();
    let r = g.add("relu", Op::Relu, &[b]).unwrap();
    g.add("y", Op::Output, &[r]).unwrap();
    g
}

/// A built-in target's model with one field changed.
fn tweaked(name: &str, change: impl FnOnce(&mut nasc_targets::Target)) -> Model {
    let mut t = nasc_targets::lookup(name).unwrap();
    change(&mut t);
    Model::new(t).unwrap()
}

fn price(g: &Graph, m: &Model) -> Report {
    cost(g, m).unwrap()
}

fn assert_le(a: &Report, b: &Report, what: &str) {
    // Allow for float rounding only.
    assert!(
        a.latency_ms <= b.latency_ms * (1.0 + 1e-9),
        "{} latency: {what}: {} > {}",
        a.target,
        a.latency_ms,
        b.latency_ms
    );
    assert!(
        a.energy_mj <= b.energy_mj * (1.0 + 1e-9),
        "{} energy: {what}: {} > {}",
        a.target,
        a.energy_mj,
        b.energy_mj
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn monotone_in_channels(cin in 1usize..96, cout in 1usize..96, dc in 1usize..64, h in 1usize..40, k in prop::sample::select(vec![1usize, 3, 5, 7])) {
        for m in models() {
            let base = price(&conv_net(cin, cout, h, k, false), &m);
            assert_le(&base, &price(&conv_net(cin, cout + dc, h, k, false), &m), "more output channels");
            assert_le(&base, &price(&conv_net(cin + dc, cout, h, k, false), &m), "more input channels");
            let dw = price(&conv_net(cin, cin, h, k, true), &m);
            assert_le(&dw, &price(&conv_net(cin + dc, cin + dc, h, k, true), &m), "more depthwise channels");
        }
    }

    #[test]
    fn monotone_in_spatial_size(c in 1usize..64, h in 1usize..48, dh in 1usize..32, k in prop::sample::select(vec![1usize, 3, 5, 7])) {
        for m in models() {
            for dw in [false, true] {
                let base = price(&conv_net(c, c, h, k, dw), &m);
                assert_le(&base, &price(&conv_net(c, c, h + dh, k, dw), &m), "larger feature map");
            }
        }
    }

    #[test]
    fn monotone_in_kernel_size(c in 1usize..64, h in 1usize..40, k in prop::sample::select(vec![1usize, 3, 5]), dk in prop::sample::select(vec![2usize, 4, 6])) {
        for m in models() {
            for dw in [false, true] {
                let base = price(&conv_net(c, c, h, k, dw), &m);
                assert_le(&base, &price(&conv_net(c, c, h, k + dk, dw), &m), "larger kernel");
            }
        }
    }
}

fn check_positive(r: &Report, what: &str) {
    assert!(r.latency_ms.is_finite() && r.latency_ms > 0.0, "{what} on {}: latency {}", r.target, r.latency_ms);
    assert!(r.energy_mj.is_finite() && r.energy_mj > 0.0, "{what} on {}: energy {}", r.target, r.energy_mj);
    for l in &r.layers {
        assert!(
            l.latency_ms.is_finite() && l.latency_ms > 0.0 && l.energy_mj.is_finite() && l.energy_mj > 0.0,
            "{what} on {}: layer `{}` ({}) costs {} ms, {} mJ",
            r.target,
            l.name,
            l.ops,
            l.latency_ms,
            l.energy_mj
        );
    }
}

/// One graph per op: input [1, 8, 6, 6] → op → (whatever makes it valid) → output.
fn single_op_graphs() -> Vec<(String, Graph)> {
    let x4 = || Op::Input(Input { shape: vec![1, 8, 6, 6] });
    let mut out = Vec::new();
    let mut one = |name: &str, build: &dyn Fn(&mut Graph, NodeId) -> NodeId| {
        let mut g = Graph::new(name);
        let x = g.add("x", x4(), &[]).unwrap();
        let y = build(&mut g, x);
        g.add("out", Op::Output, &[y]).unwrap();
        g.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name.to_string(), g));
    };
    one("conv2d", &|g, x| g.add("op", Op::Conv2d(Conv2d::new(8, 3, 1).with_act(Activation::Relu6)), &[x]).unwrap());
    one("grouped", &|g, x| g.add("op", Op::Conv2d(Conv2d::new(8, 1, 1).with_groups(2)), &[x]).unwrap());
    one("depthwise", &|g, x| g.add("op", Op::Conv2d(Conv2d::depthwise(5, 2, 2)), &[x]).unwrap());
    one("batchnorm", &|g, x| g.add("op", Op::BatchNorm(BatchNorm::default()), &[x]).unwrap());
    for act in Activation::ALL {
        one(act.name(), &|g, x| g.add("op", Op::from_activation(act), &[x]).unwrap());
    }
    one("add", &|g, x| g.add("op", Op::Add, &[x, x]).unwrap());
    one("mul", &|g, x| {
        let p = g.add("gap", Op::GlobalAvgPool, &[x]).unwrap();
        g.add("op", Op::Mul, &[x, p]).unwrap()
    });
    one("concat", &|g, x| g.add("op", Op::Concat(Concat { axis: 1 }), &[x, x]).unwrap());
    one("slice_channels", &|g, x| g.add("op", Op::SliceChannels(SliceChannels { start: 2, end: 6 }), &[x]).unwrap());
    one("avg_pool", &|g, x| g.add("op", Op::AvgPool(Pool::new(3, 1, 1)), &[x]).unwrap());
    one("max_pool", &|g, x| g.add("op", Op::MaxPool(Pool::new(2, 2, 0)), &[x]).unwrap());
    one("global_avg_pool", &|g, x| g.add("op", Op::GlobalAvgPool, &[x]).unwrap());
    one("zero", &|g, x| g.add("op", Op::Zero, &[x]).unwrap());
    one("channel_shuffle", &|g, x| g.add("op", Op::ChannelShuffle(ChannelShuffle { groups: 2 }), &[x]).unwrap());
    fn head(g: &mut Graph, x: NodeId, tag: &str) -> NodeId {
        let p = g.add(format!("{tag}.gap"), Op::GlobalAvgPool, &[x]).unwrap();
        let f = g.add(format!("{tag}.flat"), Op::Flatten, &[p]).unwrap();
        g.add(format!("{tag}.fc"), Op::Dense(Dense { out_features: 10, bias: true, act: None }), &[f]).unwrap()
    }
    one("dense+softmax", &|g, x| {
        let d = head(g, x, "h");
        g.add("op", Op::Softmax, &[d]).unwrap()
    });
    one("exit", &|g, x| {
        let d = head(g, x, "e");
        g.add("op", Op::Exit(Exit { rule: ExitRule::Entropy, threshold: 0.5 }), &[d]).unwrap();
        let c = g.add("c", Op::Conv2d(Conv2d::new(8, 3, 1)), &[x]).unwrap();
        head(g, c, "f")
    });
    one("gate", &|g, x| {
        let c = g.add("body", Op::Conv2d(Conv2d::new(8, 3, 1)), &[x]).unwrap();
        let p = g.add("gp", Op::GlobalAvgPool, &[x]).unwrap();
        let f = g.add("gf", Op::Flatten, &[p]).unwrap();
        let l = g.add("gl", Op::Dense(Dense { out_features: 1, bias: true, act: None }), &[f]).unwrap();
        g.add("op", Op::Gate(Gate { decision: GateDecision::Logit }), &[x, c, l]).unwrap()
    });
    out
}

#[test]
fn every_op_costs_something_finite_on_every_target() {
    let graphs = single_op_graphs();
    for m in models() {
        for (name, g) in &graphs {
            check_positive(&price(g, &m), name);
        }
    }
}

#[test]
fn every_space_subnet_costs_something_finite_on_every_target() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let models = models();
    for name in spaces::NAMES {
        let space = spaces::lookup(name).unwrap();
        for _ in 0..2 {
            let cfg = space.sample(&mut rng);
            let g = space.subnet_of(&cfg).unwrap();
            for m in &models {
                let r = price(&g, m);
                check_positive(&r, name);
                // Exit and gate accounting: reaching an earlier exit never costs more.
                for w in r.exits.windows(2) {
                    assert!(w[0].latency_ms <= w[1].latency_ms, "{name} on {}: exits out of order", r.target);
                }
                for gate in &r.gates {
                    assert!(
                        gate.latency_without_ms < gate.latency_with_ms,
                        "{name} on {}: gate {}",
                        r.target,
                        gate.name
                    );
                }
            }
        }
    }
}

#[test]
fn int8_and_winograd_shaped_convolutions_have_terms_of_their_own_on_cpus() {
    use nasc_costmodel::analytic::term;
    for m in models().into_iter().filter(|m| m.target.cpu().is_some()) {
        // A k×k convolution net priced in f32 and with its convolution in int8; the term that
        // must carry its time in each, and the one of `conv`/`conv3x3` that must carry none
        // (in int8 neither does, nor the other int8 term).
        let check = |k: usize, f32_in: usize, f32_not: usize, int8_in: usize, int8_not: usize| {
            let g = conv_net(64, 64, 28, k, false);
            let f = price(&g, &m);
            let mut q = g.clone();
            let c = q.find("conv").unwrap();
            q.node_mut(c).precision = nasc_ir::Precision::Int8;
            let q = price(&q, &m);
            let (name, ft, qt) = (&m.target.name, f.terms_ms, q.terms_ms);
            assert!(
                ft[f32_in] > 0.0 && ft[f32_not] + ft[term::INT8] + ft[term::INT8_CONV3X3] == 0.0,
                "{name} {k}×{k}: {ft:?}"
            );
            assert!(qt[int8_in] > 0.0 && qt[int8_not] + qt[f32_in] == 0.0, "{name} {k}×{k} int8: {qt:?}");
            (f.latency_ms, q.latency_ms)
        };
        // A 3×3 stride-1 convolution (what runtimes run as Winograd) in `conv3x3`, its int8
        // twin in `int8_conv3x3` (kernels of their own), and cheaper: more products per
        // instruction outweigh requantizing.
        let (f, q) = check(3, term::CONV3X3, term::CONV, term::INT8_CONV3X3, term::INT8);
        assert!(q < f, "{}: int8 {q} ms, f32 {f} ms", m.target.name);
        // Other k×k convolutions stay in `conv`, their int8 twins in `int8`.
        check(5, term::CONV, term::CONV3X3, term::INT8, term::INT8_CONV3X3);
    }
}

#[test]
fn winograd_needs_channels_that_fill_whole_vectors() {
    use nasc_costmodel::analytic::term;
    for m in models().into_iter().filter(|m| m.target.cpu().is_some()) {
        let name = &m.target.name;
        let lanes = m.target.cpu().unwrap().simd_bits as usize / 32;
        let terms = |cin: usize, cout: usize, half: bool| {
            let mut g = conv_net(cin, cout, 28, 3, false);
            if half {
                let c = g.find("conv").unwrap();
                g.node_mut(c).precision = nasc_ir::Precision::F16;
            }
            price(&g, &m).terms_ms
        };
        // Where a vector holds more than one f32, a channel count that leaves part of one
        // (an image's 3 channels in, an odd count out) takes the generic k×k path.
        for (cin, cout) in [(3, 16 * lanes), (16 * lanes, 16 * lanes + 1), (16 * lanes, 16 * lanes)] {
            let t = terms(cin, cout, false);
            let packed = cin % lanes == 0 && cout % lanes == 0;
            let (is, not) = if packed { (term::CONV3X3, term::CONV) } else { (term::CONV, term::CONV3X3) };
            assert!(t[is] > 0.0 && t[not] == 0.0, "{name} {cin}→{cout}: {t:?}");
        }
        // Half precision packs twice as many: whole f32 vectors but half an f16 one.
        let (f, h) = (terms(16 * lanes, 17 * lanes, false), terms(16 * lanes, 17 * lanes, true));
        assert!(f[term::CONV3X3] > 0.0 && f[term::CONV] == 0.0, "{name} f32: {f:?}");
        assert!(h[term::CONV] > 0.0 && h[term::CONV3X3] == 0.0, "{name} f16: {h:?}");
    }
}

#[test]
fn a_winograd_runtime_multiplies_fewer_values_and_transforms_its_tiles() {
    use nasc_costmodel::analytic::term;
    for plain in models().into_iter().filter(|m| m.target.cpu().is_some()) {
        let name = plain.target.name.clone();
        let cpu = plain.target.cpu().unwrap();
        let clock = cpu.clock_ghz * 1e9 * cpu.threads as f64;
        // 64 → 64 channels on a 28×28 map; F(2,3) multiplies 16 values per 2×2 tile and
        // channel pair instead of 36, and F(4,3) 36 per 4×4 tile instead of 144.
        let g = conv_net(64, 64, 28, 3, false);
        let base = price(&g, &plain).terms_ms;
        for (m, ratio) in [(2u32, 16.0 / 36.0), (4, 36.0 / 144.0)] {
            let mut model = plain.clone();
            model.winograd = m;
            let t = price(&g, &model).terms_ms;
            let r = t[term::CONV3X3] / base[term::CONV3X3];
            assert!((r - ratio).abs() < 1e-9, "{name} F({m},3): conv3x3 {r} of the direct time");
            // The transforms are elementwise work: 28/m tiles a side, (m + 2)² elements each,
            // 3 operations per input channel's and 2 per output channel's.
            let tiles = (28.0 / m as f64).ceil().powi(2);
            let ops = tiles * ((m + 2) * (m + 2)) as f64 * (3.0 * 64.0 + 2.0 * 64.0);
            let extra = (t[term::ELEMENTWISE] - base[term::ELEMENTWISE]) * 1e-3;
            let want = ops / (cpu.elementwise_per_cycle * clock);
            assert!((extra / want - 1.0).abs() < 1e-6, "{name} F({m},3): transforms {extra} s, want {want} s");
            assert!(price(&g, &model).latency_ms < price(&g, &plain).latency_ms, "{name} F({m},3)");
            // A stride-2 or 5×5 convolution, and an int8 3×3 one, are not transformed.
            let mut strided = g.clone();
            let c = strided.find("conv").unwrap();
            strided.node_mut(c).op = Op::Conv2d(Conv2d::new(64, 3, 2));
            for other in [conv_net(64, 64, 28, 5, false), strided] {
                assert_eq!(price(&other, &model).terms_ms, price(&other, &plain).terms_ms, "{name}");
            }
            let mut q = g.clone();
            let c = q.find("conv").unwrap();
            q.node_mut(c).precision = nasc_ir::Precision::Int8;
            assert_eq!(price(&q, &model).terms_ms, price(&q, &plain).terms_ms, "{name} int8");
        }
    }
}

#[test]
fn half_precision_doubles_the_lanes_and_halves_the_bytes_on_cpus() {
    use nasc_costmodel::analytic::term;
    let mut memory_bound = 0;
    for m in models().into_iter().filter(|m| m.target.cpu().is_some()) {
        let name = &m.target.name;
        // Every node in f16, as ncnn runs a float network on an ARMv8.2 core.
        let half = |g: &Graph| {
            let mut h = g.clone();
            for id in h.node_ids().collect::<Vec<_>>() {
                h.node_mut(id).precision = nasc_ir::Precision::F16;
            }
            h
        };
        // A compute-bound 3×3 convolution (64 channels: whole vectors in both precisions)
        // takes half the multiply time, in the same term, and nothing goes to the int8 terms.
        let g = conv_net(64, 64, 28, 3, false);
        let (f, h) = (price(&g, &m), price(&half(&g), &m));
        let (ft, ht) = (f.terms_ms, h.terms_ms);
        assert!(ft[term::CONV3X3] > 0.0, "{name}: {ft:?}");
        let ratio = ht[term::CONV3X3] / ft[term::CONV3X3];
        assert!((ratio - 0.5).abs() < 1e-9, "{name}: f16 {ht:?}, f32 {ft:?}");
        assert!(ht[term::INT8] + ht[term::INT8_CONV3X3] == 0.0, "{name}: {ht:?}");
        assert!(h.latency_ms < f.latency_ms, "{name}: f16 {} ms, f32 {} ms", h.latency_ms, f.latency_ms);
        // A layer streaming a 3 MiB tensor, memory-bound where the core keeps up with its
        // memory, streams in at most half the time.
        let mut g = Graph::new("add");
        let x = g.add("x", Op::Input(Input { shape: vec![1, 256, 56, 56] }), &[]).unwrap();
        let r = g.add("relu", Op::Relu, &[x]).unwrap();
        g.add("y", Op::Output, &[r]).unwrap();
        let (f, h) = (price(&g, &m).terms_ms, price(&half(&g), &m).terms_ms);
        if f[term::MEMORY] > 0.0 {
            memory_bound += 1;
            assert!(h[term::MEMORY] <= 0.5 * f[term::MEMORY] * (1.0 + 1e-9), "{name}: f16 {h:?}, f32 {f:?}");
        }
    }
    assert!(memory_bound >= 3, "the streaming layer is memory-bound on {memory_bound} CPU targets");
}

#[test]
fn gemm_convolutions_are_priced_in_whole_tiles_of_gemm_rows_positions() {
    use nasc_costmodel::analytic::term;
    let a76 = nasc_targets::lookup("cortex-a76").unwrap();
    assert_eq!(a76.cpu().unwrap().gemm_rows, 8);
    let mut exact = a76.clone();
    exact.cpu.as_mut().unwrap().gemm_rows = 1;
    let (tiled, exact) = (Model::new(a76).unwrap(), Model::new(exact).unwrap());
    // A compute-bound 1×1 convolution: 49 positions cost 56 in tiles of 8, 64 cost 64.
    for (h, ratio) in [(7, 56.0 / 49.0), (8, 1.0)] {
        let g = conv_net(256, 256, h, 1, false);
        let (t, e) = (price(&g, &tiled).terms_ms[term::POINTWISE], price(&g, &exact).terms_ms[term::POINTWISE]);
        assert!(e > 0.0 && (t / e - ratio).abs() < 1e-9, "{h}×{h}: {t} ms against {e} ms");
    }
    // Depthwise convolutions are not GEMMs.
    let g = conv_net(256, 256, 7, 3, true);
    assert_eq!(price(&g, &tiled).latency_ms, price(&g, &exact).latency_ms);
}

#[test]
fn exposed_memory_adds_its_share_of_the_shorter_of_compute_and_memory() {
    use nasc_costmodel::analytic::term;
    let with = |exposed: f64| tweaked("cortex-a72", |t| t.cpu.as_mut().unwrap().exposed_memory = exposed);
    let (roofline, quarter, serial) = (with(0.0), with(0.25), with(1.0));
    // A compute-bound 3×3 convolution (28×28) and a memory-bound 1×1 one (56×56, 256 → 4).
    for (g, compute_term, memory_bound) in [
        (conv_net(64, 64, 28, 3, false), term::CONV3X3, false),
        (conv_net(256, 4, 56, 1, false), term::POINTWISE, true),
    ] {
        let (r0, r1, rs) = (price(&g, &roofline), price(&g, &quarter), price(&g, &serial));
        // The roofline gives the whole kernel to the side that bounds it.
        assert_eq!(r0.terms_ms[term::MEMORY] > 0.0, memory_bound, "{:?}", r0.terms_ms);
        assert_eq!(r0.terms_ms[compute_term] > 0.0, !memory_bound, "{:?}", r0.terms_ms);
        // Compute is the kernel's multiply-accumulates and its fused elementwise work.
        let c = rs.terms_ms[compute_term] + rs.terms_ms[term::ELEMENTWISE];
        let (m, overhead) = (rs.terms_ms[term::MEMORY], rs.terms_ms[term::OVERHEAD]);
        assert!(c > 0.0 && m > 0.0 && (c + m + overhead - rs.latency_ms).abs() < 1e-9, "{:?}", rs.terms_ms);
        assert!(
            (r0.latency_ms - (c.max(m) + overhead)).abs() < 1e-9 * rs.latency_ms,
            "{} against {c}, {m}",
            r0.latency_ms
        );
        let want = c.max(m) + 0.25 * c.min(m) + overhead;
        assert!((r1.latency_ms - want).abs() < 1e-9 * want, "{} ms against {want} ms", r1.latency_ms);
        // The terms still add up to the latency, each with its share.
        let sum: f64 = r1.terms_ms.iter().sum();
        assert!((sum - r1.latency_ms).abs() < 1e-9 * want, "{:?} against {} ms", r1.terms_ms, r1.latency_ms);
        assert!(r0.latency_ms < r1.latency_ms && r1.latency_ms < rs.latency_ms);
    }
    let mut bad = nasc_targets::lookup("cortex-a72").unwrap();
    bad.cpu.as_mut().unwrap().exposed_memory = 1.5;
    let (field, why) = bad.validate().unwrap_err();
    assert!(field == "cpu.exposed_memory" && why.contains("between 0 and 1"), "{field}: {why}");
}

/// Where a CPU kernel reads its weights from ([`WeightReads`]): a cached kernel reads them at the
/// level that holds its working set, which is cheaper than DRAM when memory shows in its
/// latency; a streamed one costs what the whole-network default costs, with the DRAM weight
/// time in a term of its own; a working set no cache holds streams everything from DRAM
/// whatever the mode.
#[test]
fn weight_reads_move_weight_time_between_cache_dram_and_its_own_term() {
    use nasc_costmodel::analytic::{term, WeightReads};
    let with = |weights: WeightReads| {
        let mut m = Model::new(nasc_targets::lookup("cortex-a72").unwrap()).unwrap();
        m.weights = weights;
        m
    };
    let (dram, cached, streamed) = (with(WeightReads::Dram), with(WeightReads::Cached), with(WeightReads::Streamed));
    // In the 1 MiB L2: 552 → 352 at 4×4 (777 kB of weights, compute-bound: a quarter of its
    // memory time shows) and 448 → 448 at 1×1 (803 kB, memory-bound). Then 256 → 4 at 56×56,
    // 3.2 MB of activations, which no cache holds.
    for (g, in_cache) in [
        (conv_net(552, 352, 4, 1, false), true),
        (conv_net(448, 448, 1, 1, false), true),
        (conv_net(256, 4, 56, 1, false), false),
    ] {
        let (d, c, s) = (price(&g, &dram), price(&g, &cached), price(&g, &streamed));
        if in_cache {
            assert!(c.latency_ms < d.latency_ms, "cached {} ms, from DRAM {} ms", c.latency_ms, d.latency_ms);
        } else {
            assert_eq!((c.latency_ms, c.terms_ms), (d.latency_ms, d.terms_ms));
        }
        assert_eq!((d.terms_ms[term::WEIGHTS], c.terms_ms[term::WEIGHTS]), (0.0, 0.0));
        assert!((s.latency_ms - d.latency_ms).abs() < 1e-12 * d.latency_ms);
        assert!(s.terms_ms[term::WEIGHTS] > 0.0, "{:?}", s.terms_ms);
        let moved = s.terms_ms[term::MEMORY] + s.terms_ms[term::WEIGHTS] - d.terms_ms[term::MEMORY];
        assert!(moved.abs() < 1e-12 * d.latency_ms, "{:?} against {:?}", s.terms_ms, d.terms_ms);
        let sum: f64 = s.terms_ms.iter().sum();
        assert!((sum - s.latency_ms).abs() < 1e-12 * s.latency_ms);
    }
}

/// `depthwise_efficiency` slows a depthwise layer's array compute, and nothing else.
#[test]
fn npu_depthwise_efficiency_scales_depthwise_compute_only() {
    use nasc_costmodel::analytic::term;
    let with = |eff: f64| tweaked("jetson-tx2", |t| t.npu.as_mut().unwrap().depthwise_efficiency = eff);
    let (full, third) = (with(1.0), with(1.0 / 3.0));
    let (dw, pw) = (conv_net(96, 96, 28, 3, true), conv_net(96, 96, 28, 1, false));
    let (a, b) = (price(&dw, &full).terms_ms[term::DEPTHWISE], price(&dw, &third).terms_ms[term::DEPTHWISE]);
    assert!(a > 0.0, "{a}");
    // Compute is the MACs' cycles (scaled) and the fused elementwise work (not).
    assert!(b > 2.5 * a && b < 3.0 * a, "{b} ms against {a} ms");
    assert_eq!(price(&dw, &full).terms_ms[term::MEMORY], price(&dw, &third).terms_ms[term::MEMORY]);
    assert_eq!(price(&pw, &full).latency_ms, price(&pw, &third).latency_ms);
}

#[test]
fn layer_pipeline_expansions_run_at_their_depthwise_output_rate() {
    // On the FPGA's layer pipeline an expansion hands its output to the depthwise through the
    // line buffer, through a grouped block's channel shuffle too, and ahead of a stride-2
    // depthwise does a quarter of its pixels' work: block 1 of FBNet-ImageNet (112² → 56²,
    // 16 channels) expands more cheaply than block 2 (56², 24 channels), though it has
    // 3.2 M MACs against 1.8 M.
    let m = Model::new(nasc_targets::lookup("fpga-zc706").unwrap()).unwrap();
    let space = spaces::lookup("fbnet:imagenet").unwrap();
    for block in ["k3_e1", "k3_e1_g2", "k5_e6"] {
        let g = space.subnet(&vec![block; 22].join(",")).unwrap();
        let r = price(&g, &m);
        let expand = |i: usize| {
            let l = r.layers.iter().find(|l| l.name == format!("layer{i}.{block}.conv1.conv")).unwrap();
            (l.latency_ms, l.macs)
        };
        let ((t1, m1), (t2, m2)) = (expand(1), expand(2));
        assert!(m1 > m2, "{block}: {m1} against {m2} MACs");
        assert!(t1 < t2, "{block}: block 1 expands in {t1} ms, block 2 in {t2} ms");
    }
}

#[test]
fn static_energy_is_static_power_over_the_network_latency() {
    // Energy calibrated to static power alone (a board at constant power, as HW-NAS-Bench's
    // FPGA energy is: 7 W × latency) is static power × the *network's* latency, also where the
    // layer pipeline overlaps an expansion with its depthwise, and with every latency term
    // scaled differently.
    use nasc_costmodel::analytic::{term, Scaling};
    let mut m = Model::new(nasc_targets::lookup("fpga-zc706").unwrap()).unwrap();
    let static_w = m.target.energy.static_w;
    let mut latency = [1.0; term::N];
    latency.iter_mut().enumerate().for_each(|(i, c)| *c = 0.5 + 0.1 * i as f64);
    m.scaling = Some(Scaling { latency, energy: 0.0, static_power: 23.0, fixed_energy_j: 0.0 });
    let space = spaces::lookup("fbnet:imagenet").unwrap();
    for block in ["k3_e1", "k3_e1_g2", "k5_e6", "k3_e3"] {
        let r = price(&space.subnet(&vec![block; 22].join(",")).unwrap(), &m);
        let want = 23.0 * static_w * r.latency_ms;
        assert!((r.energy_mj - want).abs() < 1e-9 * want, "{block}: {} mJ against {want} mJ", r.energy_mj);
    }
}

#[test]
fn npu_weight_traffic_has_a_term_of_its_own() {
    use nasc_costmodel::analytic::term;
    // Eyeriss moves a late 1×1 layer's 2.8 M weights and an early layer's activations through
    // DRAM: the first mostly in `weights`, the second in `memory`; the terms still add up to
    // the latency. A CPU keeps its weight reads in `memory` (but for a block timed on its own
    // whose weights it streams, `WeightReads::Streamed`).
    let eyeriss = Model::new(nasc_targets::lookup("eyeriss").unwrap()).unwrap();
    let late = price(&conv_net(352, 1984, 7, 1, false), &eyeriss);
    let early = price(&conv_net(16, 16, 112, 1, false), &eyeriss);
    assert!(late.terms_ms[term::WEIGHTS] > late.terms_ms[term::MEMORY], "{:?}", late.terms_ms);
    assert!(early.terms_ms[term::MEMORY] > early.terms_ms[term::WEIGHTS], "{:?}", early.terms_ms);
    for r in [&late, &early] {
        let sum: f64 = r.terms_ms.iter().sum();
        assert!((sum - r.latency_ms).abs() < 1e-9 * r.latency_ms.max(1.0), "{sum} against {}", r.latency_ms);
    }
    let a72 = Model::new(nasc_targets::lookup("cortex-a72").unwrap()).unwrap();
    assert_eq!(price(&conv_net(352, 1984, 7, 1, false), &a72).terms_ms[term::WEIGHTS], 0.0);
}

#[test]
fn weights_no_cache_holds_are_read_from_dram_once() {
    // A 2048 → 4096 dense layer (32 MiB of weights, past every cache) streams its weights
    // from DRAM once, not once as its working set and again as its weight reads (which priced
    // Note10's last two layers 1.56× their measured time).
    let mut g = Graph::new("gemv");
    let x = g.add("x", Op::Input(Input { shape: vec![1, 2048] }), &[]).unwrap();
    let d = g.add("fc", Op::Dense(Dense { out_features: 4096, bias: false, act: None }), &[x]).unwrap();
    g.add("y", Op::Output, &[d]).unwrap();
    let bytes = 4.0 * (2048.0 + 2048.0 * 4096.0 + 4096.0);
    let mut memory_bound = 0;
    for m in models().into_iter().filter(|m| m.target.cpu().is_some()) {
        let r = price(&g, &m);
        let stream_ms = bytes / (m.target.dram.bandwidth_gbs * 1e9) * 1e3;
        let memory_ms = r.terms_ms[nasc_costmodel::analytic::term::MEMORY];
        assert!(r.latency_ms >= stream_ms, "{}: {} ms for a {stream_ms} ms stream", m.target.name, r.latency_ms);
        assert!(memory_ms <= 1.001 * stream_ms, "{}: {memory_ms} ms moving a {stream_ms} ms stream", m.target.name);
        memory_bound += usize::from(memory_ms > 0.0);
    }
    assert!(memory_bound >= 3, "{memory_bound} CPU targets memory-bound on a GEMV");
}

#[test]
fn a_convolution_strided_past_its_kernel_reads_only_the_input_under_its_taps() {
    use nasc_costmodel::analytic::term;
    // A 1×1 convolution on a 112×112×16 input (784 KiB in f32), as FBNet's stride-2 skip, and
    // the same output computed at stride 1 from the quarter of the input it reads: on every CPU
    // target the two move the same bytes, where the stride-2 one used to move the whole input.
    let shortcut = |h: usize, stride: usize| {
        let mut g = Graph::new("shortcut");
        let x = g.add("x", Op::Input(Input { shape: vec![1, 16, h, h] }), &[]).unwrap();
        let c = g.add("conv", Op::Conv2d(Conv2d::new(24, 1, stride)), &[x]).unwrap();
        g.add("y", Op::Output, &[c]).unwrap();
        g
    };
    for m in models().into_iter().filter(|m| m.target.cpu().is_some()) {
        // Serial compute and memory, so the bytes moved show in the memory term on every core.
        let mut t = m.target.clone();
        t.cpu.as_mut().unwrap().exposed_memory = 1.0;
        let m = Model::new(t).unwrap();
        let (strided, dense) = (price(&shortcut(112, 2), &m), price(&shortcut(56, 1), &m));
        let name = &m.target.name;
        assert_eq!(strided.macs, dense.macs);
        let (s, d) = (strided.terms_ms[term::MEMORY], dense.terms_ms[term::MEMORY]);
        assert!(d > 0.0 && (s - d).abs() < 1e-9 * d, "{name}: {s} ms moving memory against {d} ms");
        assert!((strided.latency_ms - dense.latency_ms).abs() < 1e-9 * dense.latency_ms, "{name}");
    }
}
