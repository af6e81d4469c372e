//! The reference interpreter against hand-computed values and independent formulations of the
//! same operator, and its dynamic semantics: which exit fires, what a gate skips, what runs.

use std::collections::BTreeMap;

use nasc_ir::interp::{run, RunOptions};
use nasc_ir::op::{
    Activation, ChannelShuffle, Concat, Conv2d, Dense, Exit, ExitRule, Gate, GateDecision, Input, Pool, SliceChannels,
};
use nasc_ir::{Graph, IrError, NodeId, Op, Tensor, Weights};
use proptest::prelude::*;

fn input(g: &mut Graph, shape: &[usize]) -> NodeId {
    g.add("x", Op::Input(Input { shape: shape.to_vec() }), &[]).unwrap()
}

fn t(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::new(shape.to_vec(), data.to_vec()).unwrap()
}

fn run_plain(g: &Graph, w: &Weights, x: &Tensor) -> Tensor {
    run(g, w, x, &RunOptions::default()).unwrap().output
}

fn single_op(op: Op, shape: &[usize]) -> Graph {
    let mut g = Graph::new("single");
    let x = input(&mut g, shape);
    let y = g.add("op", op, &[x]).unwrap();
    g.add("out", Op::Output, &[y]).unwrap();
    g
}

fn with_weights(node: &str, tensors: &[(&str, Tensor)]) -> Weights {
    let mut w = Weights::default();
    w.tensors.insert(node.into(), tensors.iter().map(|(n, t)| (n.to_string(), t.clone())).collect());
    w
}

#[test]
fn conv_matches_hand_computed_values() {
    // 1×1×3×3 input, 2×2 kernel of ones, stride 1, no padding: sums of 2×2 windows.
    let mut c = Conv2d::new(1, 2, 1);
    c.padding = [0, 0];
    let g = single_op(Op::Conv2d(c.clone().with_bias()), &[1, 1, 3, 3]);
    let w = with_weights("op", &[("weight", t(&[1, 1, 2, 2], &[1.0; 4])), ("bias", t(&[1], &[0.5]))]);
    let x = t(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    assert_eq!(run_plain(&g, &w, &x).data, vec![12.5, 16.5, 24.5, 28.5]);
    // Padding 1, stride 2, bias −5, ReLU. Window (oy, ox) starts at (2·oy − 1, 2·ox − 1); only
    // its bottom row is weighted (−1, 2): (0,0) → 2·1 = 2, (0,1) → −2 + 2·3 = 4,
    // (1,0) → 2·7 = 14, (1,1) → −8 + 2·9 = 10; minus 5, clamped at 0.
    let mut c2 = c.with_bias().with_act(Activation::Relu);
    c2.padding = [1, 1];
    c2.stride = [2, 2];
    let g = single_op(Op::Conv2d(c2), &[1, 1, 3, 3]);
    let w = with_weights("op", &[("weight", t(&[1, 1, 2, 2], &[0.0, 0.0, -1.0, 2.0])), ("bias", t(&[1], &[-5.0]))]);
    assert_eq!(run_plain(&g, &w, &x).data, vec![0.0, 0.0, 9.0, 5.0]);
}

#[test]
fn pools_follow_pytorch() {
    let x = t(&[1, 1, 2, 2], &[1., 2., 3., 4.]);
    let p = Pool::new(3, 1, 1);
    let avg = run_plain(&single_op(Op::AvgPool(p.clone()), &[1, 1, 2, 2]), &Weights::default(), &x);
    // Every 3×3 window covers the whole 2×2 input: mean 2.5 when padding is excluded.
    assert_eq!(avg.data, vec![2.5; 4]);
    let incl = Pool { count_include_pad: true, ..p.clone() };
    let avg = run_plain(&single_op(Op::AvgPool(incl), &[1, 1, 2, 2]), &Weights::default(), &x);
    assert_eq!(avg.data, vec![10.0 / 9.0; 4]);
    let neg = t(&[1, 1, 2, 2], &[-1., -2., -3., -4.]);
    let max = run_plain(&single_op(Op::MaxPool(p), &[1, 1, 2, 2]), &Weights::default(), &neg);
    assert_eq!(max.data, vec![-1.0; 4], "padding never wins a max");
    let gap = run_plain(&single_op(Op::GlobalAvgPool, &[1, 1, 2, 2]), &Weights::default(), &x);
    assert_eq!((gap.shape.clone(), gap.data), (vec![1, 1, 1, 1], vec![2.5]));
}

#[test]
fn dense_batchnorm_softmax_and_shuffle() {
    let g = single_op(Op::Dense(Dense { out_features: 2, bias: true, act: None }), &[1, 3]);
    let w = with_weights("op", &[("weight", t(&[2, 3], &[1., 0., -1., 2., 2., 2.])), ("bias", t(&[2], &[0.5, -1.0]))]);
    assert_eq!(run_plain(&g, &w, &t(&[1, 3], &[1., 2., 3.])).data, vec![-1.5, 11.0]);

    let g = single_op(Op::BatchNorm(Default::default()), &[1, 2, 1, 1]);
    let w = with_weights(
        "op",
        &[
            ("gamma", t(&[2], &[2.0, 1.0])),
            ("beta", t(&[2], &[1.0, 0.0])),
            ("mean", t(&[2], &[1.0, -1.0])),
            ("var", t(&[2], &[4.0 - 1e-5, 1.0 - 1e-5])),
        ],
    );
    let y = run_plain(&g, &w, &t(&[1, 2, 1, 1], &[5.0, 1.0]));
    assert!((y.data[0] - 5.0).abs() < 1e-5 && (y.data[1] - 2.0).abs() < 1e-5, "{y:?}");

    let y = run_plain(&single_op(Op::Softmax, &[1, 3]), &Weights::default(), &t(&[1, 3], &[0., 0., 0.]));
    assert!(y.data.iter().all(|&p| (p - 1.0 / 3.0).abs() < 1e-6));

    let x = Tensor::from_fn(&[1, 6, 1, 1], |i| i as f32);
    let y =
        run_plain(&single_op(Op::ChannelShuffle(ChannelShuffle { groups: 2 }), &[1, 6, 1, 1]), &Weights::default(), &x);
    assert_eq!(y.data, vec![0., 3., 1., 4., 2., 5.]);
}

#[test]
fn bad_input_shape_names_the_input_node() {
    let g = single_op(Op::Relu, &[1, 2, 2, 2]);
    let e = run(&g, &Weights::default(), &Tensor::zeros(&[1, 2, 2, 3]), &RunOptions::default()).unwrap_err();
    assert!(matches!(&e, IrError::Run(m) if m.contains("`x`")), "{e}");
    let g = single_op(Op::Conv2d(Conv2d::new(2, 1, 1)), &[1, 2, 2, 2]);
    let e = run(&g, &Weights::default(), &Tensor::zeros(&[1, 2, 2, 2]), &RunOptions::default()).unwrap_err();
    assert!(matches!(&e, IrError::Weights { node, .. } if node == "op"), "{e}");
}

/// A chain with two early exits. Exit heads are GAP → flatten → dense(classes).
fn two_exit_net() -> Graph {
    let mut g = Graph::new("ee");
    let x = input(&mut g, &[1, 2, 4, 4]);
    let mut h = x;
    for k in 0..3 {
        h = g.add(format!("conv{k}"), Op::Conv2d(Conv2d::new(2, 3, 1).with_act(Activation::Relu)), &[h]).unwrap();
        let p = g.add(format!("gap{k}"), Op::GlobalAvgPool, &[h]).unwrap();
        let f = g.add(format!("flat{k}"), Op::Flatten, &[p]).unwrap();
        let d = g.add(format!("fc{k}"), Op::Dense(Dense { out_features: 5, bias: true, act: None }), &[f]).unwrap();
        if k < 2 {
            g.add(format!("exit{k}"), Op::Exit(Exit { rule: ExitRule::MaxSoftmax, threshold: 0.9 }), &[d]).unwrap();
        } else {
            g.add("out", Op::Output, &[d]).unwrap();
        }
    }
    g
}

#[test]
fn exits_fire_in_order_and_stop_execution() {
    let g = two_exit_net();
    let w = Weights::random(&g, 1).unwrap();
    let x = Tensor::from_fn(&[1, 2, 4, 4], |i| (i as f32 * 0.37).sin());
    let full = run(&g, &w, &x, &RunOptions { disable_exits: true, ..Default::default() }).unwrap();
    assert_eq!((full.exit_index, full.exit_node.as_deref()), (2, None));
    for id in g.node_ids() {
        let name = &g.node(id).name;
        let head = ["gap0", "flat0", "fc0", "exit0", "gap1", "flat1", "fc1", "exit1"].contains(&name.as_str());
        assert_eq!(full.executed[id.index()], !head, "{name}: exits disabled, so only their heads are skipped");
    }

    let all_zero = RunOptions {
        exit_thresholds: BTreeMap::from([("exit0".into(), 0.0), ("exit1".into(), 0.0)]),
        keep_values: true,
        ..Default::default()
    };
    let r = run(&g, &w, &x, &all_zero).unwrap();
    assert_eq!((r.exit_index, r.exit_node.as_deref()), (0, Some("exit0")));
    for name in ["conv1", "conv2", "fc1", "out", "exit1"] {
        assert!(!r.executed[g.find(name).unwrap().index()], "{name} must not run after exit0 fired");
    }
    assert_eq!(r.output, r.values[g.find("fc0").unwrap().index()].clone().unwrap());

    let only_second = RunOptions {
        exit_thresholds: BTreeMap::from([("exit0".into(), 1.01), ("exit1".into(), 0.0)]),
        ..Default::default()
    };
    let r = run(&g, &w, &x, &only_second).unwrap();
    assert_eq!(r.exit_index, 1);
    assert!(!r.executed[g.find("conv2").unwrap().index()]);

    // The threshold is compared with the actual max-softmax of the head's scores.
    let p0 = ExitRule::MaxSoftmax.statistic(&run(&g, &w, &x, &all_zero).unwrap().output.data);
    let just_above = RunOptions {
        exit_thresholds: BTreeMap::from([("exit0".into(), p0 + 1e-4), ("exit1".into(), 1.01)]),
        ..Default::default()
    };
    assert_eq!(run(&g, &w, &x, &just_above).unwrap().exit_index, 2);
    let at = RunOptions {
        exit_thresholds: BTreeMap::from([("exit0".into(), p0), ("exit1".into(), 1.01)]),
        ..Default::default()
    };
    assert_eq!(run(&g, &w, &x, &at).unwrap().exit_index, 0);

    let bad = RunOptions { exit_thresholds: BTreeMap::from([("conv0".into(), 0.5)]), ..Default::default() };
    assert!(run(&g, &w, &x, &bad).unwrap_err().to_string().contains("`conv0`"));
}

#[test]
fn entropy_rule() {
    assert!(ExitRule::Entropy.statistic(&[0.0; 4]) - 4f32.ln() < 1e-6);
    assert!(ExitRule::Entropy.statistic(&[100.0, 0.0, 0.0]) < 1e-6);
    assert!(ExitRule::Entropy.fires(0.1, 0.2) && !ExitRule::Entropy.fires(0.3, 0.2));
}

/// A residual block `relu(conv(x)) + x` behind a logit gate.
fn gated_net() -> Graph {
    let mut g = Graph::new("gated");
    let x = input(&mut g, &[1, 2, 3, 3]);
    let c = g.add("body.conv", Op::Conv2d(Conv2d::new(2, 3, 1).with_act(Activation::Relu)), &[x]).unwrap();
    let a = g.add("body.add", Op::Add, &[c, x]).unwrap();
    let p = g.add("gate.gap", Op::GlobalAvgPool, &[x]).unwrap();
    let f = g.add("gate.flat", Op::Flatten, &[p]).unwrap();
    let l = g.add("gate.fc", Op::Dense(Dense { out_features: 1, bias: true, act: None }), &[f]).unwrap();
    let gt = g.add("gate", Op::Gate(Gate { decision: GateDecision::Logit }), &[x, a, l]).unwrap();
    g.add("out", Op::Output, &[gt]).unwrap();
    g
}

#[test]
fn gates_skip_their_block() {
    let g = gated_net();
    let mut w = Weights::random(&g, 3).unwrap();
    let x = Tensor::from_fn(&[1, 2, 3, 3], |i| i as f32 / 9.0 - 0.5);
    for (bias, open) in [(100.0f32, true), (-100.0, false)] {
        w.tensors.get_mut("gate.fc").unwrap().get_mut("bias").unwrap().data[0] = bias;
        let r = run(&g, &w, &x, &RunOptions { keep_values: true, ..Default::default() }).unwrap();
        assert_eq!(r.gates_open["gate"], open);
        assert_eq!(r.executed[g.find("body.conv").unwrap().index()], open);
        let expect = if open { r.values[g.find("body.add").unwrap().index()].clone().unwrap() } else { x.clone() };
        assert_eq!(r.output, expect);
    }
    // Forcing overrides the logit.
    let forced = RunOptions { gates: BTreeMap::from([("gate".into(), true)]), ..Default::default() };
    let r = run(&g, &w, &x, &forced).unwrap();
    assert!(r.gates_open["gate"] && r.executed[g.find("body.conv").unwrap().index()]);
    assert!(!r.executed[g.find("gate.fc").unwrap().index()], "a forced gate needs no logit");
}

fn conv_graph(c: Conv2d, shape: &[usize]) -> Graph {
    single_op(Op::Conv2d(c), shape)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A grouped conv equals slicing the input per group, convolving each slice with its
    /// weights, and concatenating: two formulations of one operator.
    #[test]
    fn grouped_conv_is_concat_of_slices(
        groups in 1usize..4, cin_g in 1usize..3, cout_g in 1usize..3, k in 1usize..4, s in 1usize..3,
        hw in 3usize..7, seed in any::<u64>(),
    ) {
        let (cin, cout) = (groups * cin_g, groups * cout_g);
        let c = Conv2d::new(cout, k, s).with_groups(groups).with_bias();
        let g = conv_graph(c.clone(), &[1, cin, hw, hw]);
        let w = Weights::random(&g, seed).unwrap();
        let x = Tensor::from_fn(&[1, cin, hw, hw], |i| ((i as u64 ^ seed) % 17) as f32 / 8.0 - 1.0);
        let y = run_plain(&g, &w, &x);

        let mut h = Graph::new("split");
        let xi = input(&mut h, &[1, cin, hw, hw]);
        let mut parts = Vec::new();
        let mut wh = Weights::default();
        let full_w = &w.tensors["op"]["weight"];
        let full_b = &w.tensors["op"]["bias"];
        let per = cin_g * k * k;
        for gi in 0..groups {
            let sl = h.add(format!("s{gi}"), Op::SliceChannels(SliceChannels { start: gi * cin_g, end: (gi + 1) * cin_g }), &[xi]).unwrap();
            let cv = h.add(format!("c{gi}"), Op::Conv2d(Conv2d::new(cout_g, k, s).with_bias()), &[sl]).unwrap();
            let wt = t(&[cout_g, cin_g, k, k], &full_w.data[gi * cout_g * per..(gi + 1) * cout_g * per]);
            let bt = t(&[cout_g], &full_b.data[gi * cout_g..(gi + 1) * cout_g]);
            wh.tensors.insert(format!("c{gi}"), [("weight".to_string(), wt), ("bias".to_string(), bt)].into());
            parts.push(cv);
        }
        let cat = h.add("cat", Op::Concat(Concat { axis: 1 }), &parts).unwrap();
        h.add("out", Op::Output, &[cat]).unwrap();
        let z = run_plain(&h, &wh, &x);
        prop_assert!(y.max_rel_diff(&z).unwrap() < 1e-5);
    }

    /// A depthwise 3×3 conv whose weights are all 1/9 is an average pool counting padding.
    #[test]
    fn depthwise_box_filter_is_avg_pool(c in 1usize..4, hw in 2usize..7, s in 1usize..3) {
        let g = conv_graph(Conv2d::depthwise(3, s, 1), &[1, c, hw, hw]);
        let w = with_weights("op", &[("weight", Tensor::from_fn(&[c, 1, 3, 3], |_| 1.0 / 9.0))]);
        let x = Tensor::from_fn(&[1, c, hw, hw], |i| (i % 7) as f32 - 3.0);
        let y = run_plain(&g, &w, &x);
        let p = Pool { count_include_pad: true, ..Pool::new(3, s, 1) };
        let z = run_plain(&single_op(Op::AvgPool(p), &[1, c, hw, hw]), &Weights::default(), &x);
        prop_assert!(y.max_rel_diff(&z).unwrap() < 1e-5);
    }

    /// Shuffling by `g` then by `C/g` restores the channel order.
    #[test]
    fn shuffle_inverts(g in 1usize..4, per in 1usize..4) {
        let c = g * per;
        let mut net = Graph::new("shuf");
        let x = input(&mut net, &[1, c, 2, 2]);
        let a = net.add("a", Op::ChannelShuffle(ChannelShuffle { groups: g }), &[x]).unwrap();
        let b = net.add("b", Op::ChannelShuffle(ChannelShuffle { groups: per }), &[a]).unwrap();
        net.add("out", Op::Output, &[b]).unwrap();
        let xt = Tensor::from_fn(&[1, c, 2, 2], |i| i as f32);
        prop_assert_eq!(run_plain(&net, &Weights::default(), &xt), xt);
    }
}

/// Naive convolution written from the definition, one output element at a time:
/// `y[n,o,i,j] = b[o] + Σ_{c∈group(o), p, q} w[o, c−g·Cin/G, p, q] · x[n, c, i·s−pad+p·d, j·s−pad+q·d]`.
fn naive_conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>, c: &Conv2d) -> Tensor {
    let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2] as i64, x.shape[3] as i64);
    let g = c.groups.resolve(cin);
    let cout = w.shape[0];
    let (kh, kw) = (c.kernel[0] as i64, c.kernel[1] as i64);
    let oh = (h + 2 * c.padding[0] as i64 - c.dilation[0] as i64 * (kh - 1) - 1) / c.stride[0] as i64 + 1;
    let ow = (wd + 2 * c.padding[1] as i64 - c.dilation[1] as i64 * (kw - 1) - 1) / c.stride[1] as i64 + 1;
    let mut y = Tensor::zeros(&[n, cout, oh as usize, ow as usize]);
    let mut k = 0;
    for b_ in 0..n {
        for o in 0..cout {
            let grp = o / (cout / g);
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = b.map_or(0.0f64, |t| t.data[o] as f64);
                    for cc in 0..cin / g {
                        let ch = grp * (cin / g) + cc;
                        for p in 0..kh {
                            for q in 0..kw {
                                let yy = i * c.stride[0] as i64 - c.padding[0] as i64 + p * c.dilation[0] as i64;
                                let xx = j * c.stride[1] as i64 - c.padding[1] as i64 + q * c.dilation[1] as i64;
                                if yy >= 0 && yy < h && xx >= 0 && xx < wd {
                                    let xv = x.data
                                        [((b_ * cin + ch) * h as usize + yy as usize) * wd as usize + xx as usize];
                                    let wv = w.data
                                        [((o * (cin / g) + cc) * kh as usize + p as usize) * kw as usize + q as usize];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                    }
                    y.data[k] = acc as f32;
                    k += 1;
                }
            }
        }
    }
    y
}

fn naive_pool(x: &Tensor, p: &Pool, is_max: bool) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2] as i64, x.shape[3] as i64);
    let oh = (h + 2 * p.padding[0] as i64 - p.kernel[0] as i64) / p.stride[0] as i64 + 1;
    let ow = (w + 2 * p.padding[1] as i64 - p.kernel[1] as i64) / p.stride[1] as i64 + 1;
    let mut out = Vec::new();
    for plane in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                let mut vals = Vec::new();
                for a in 0..p.kernel[0] as i64 {
                    for b in 0..p.kernel[1] as i64 {
                        let (yy, xx) = (
                            i * p.stride[0] as i64 - p.padding[0] as i64 + a,
                            j * p.stride[1] as i64 - p.padding[1] as i64 + b,
                        );
                        if (0..h).contains(&yy) && (0..w).contains(&xx) {
                            vals.push(x.data[plane * (h * w) as usize + (yy * w + xx) as usize]);
                        }
                    }
                }
                out.push(if is_max {
                    vals.iter().copied().fold(f32::NEG_INFINITY, f32::max)
                } else {
                    let div = if p.count_include_pad { p.kernel[0] * p.kernel[1] } else { vals.len() };
                    vals.iter().sum::<f32>() / div as f32
                });
            }
        }
    }
    Tensor::new(vec![n, c, oh as usize, ow as usize], out).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Conv with random groups, stride, padding, dilation, kernel and bias against the naive
    /// definition above.
    #[test]
    fn conv_matches_naive_definition(
        groups in 1usize..4, cin_g in 1usize..4, cout_g in 1usize..4, kh in 1usize..4, kw in 1usize..4,
        sh in 1usize..3, sw in 1usize..3, dh in 1usize..3, dw in 1usize..3, ph in 0usize..3, pw in 0usize..3,
        h in 1usize..9, w in 1usize..9, bias in any::<bool>(), seed in any::<u64>(),
    ) {
        let (cin, cout) = (groups * cin_g, groups * cout_g);
        prop_assume!(h + 2 * ph > dh * (kh - 1) && w + 2 * pw > dw * (kw - 1));
        let c = Conv2d {
            out_channels: Some(cout), kernel: [kh, kw], stride: [sh, sw], padding: [ph, pw], dilation: [dh, dw],
            groups: nasc_ir::op::Groups::Fixed(groups), bias, act: None,
        };
        let g = conv_graph(c.clone(), &[2, cin, h, w]);
        let weights = Weights::random(&g, seed).unwrap();
        let x = Tensor::from_fn(&[2, cin, h, w], |i| (((i as u64).wrapping_mul(2654435761) ^ seed) % 201) as f32 / 100.0 - 1.0);
        let y = run_plain(&g, &weights, &x);
        let z = naive_conv(&x, &weights.tensors["op"]["weight"], weights.tensors["op"].get("bias"), &c);
        prop_assert_eq!(&y.shape, &z.shape);
        prop_assert!(y.max_rel_diff(&z).unwrap() < 1e-4, "max rel diff {}", y.max_rel_diff(&z).unwrap());
    }

    /// Average (both divisor conventions) and max pooling against the naive definition.
    #[test]
    fn pools_match_naive_definition(
        k in 1usize..4, s in 1usize..3, pad in 0usize..2, h in 1usize..9, w in 1usize..9, c in 1usize..4,
        incl in any::<bool>(), seed in any::<u64>(),
    ) {
        prop_assume!(2 * pad <= k && h + 2 * pad >= k && w + 2 * pad >= k);
        let p = Pool { kernel: [k, k], stride: [s, s], padding: [pad, pad], count_include_pad: incl };
        let x = Tensor::from_fn(&[1, c, h, w], |i| ((((i as u64) * 7919) ^ seed) % 97) as f32 - 48.0);
        for is_max in [false, true] {
            let op = if is_max { Op::MaxPool(p.clone()) } else { Op::AvgPool(p.clone()) };
            let y = run_plain(&single_op(op, &[1, c, h, w]), &Weights::default(), &x);
            let z = naive_pool(&x, &p, is_max);
            prop_assert!(y.max_rel_diff(&z).unwrap() < 1e-5);
        }
    }

    /// Dense against `y_o = b_o + Σ_i x_i · W[o, i]`, batch of several rows, with activation.
    #[test]
    fn dense_matches_naive_definition(n in 1usize..4, f in 1usize..20, o in 1usize..12, seed in any::<u64>()) {
        let d = Dense { out_features: o, bias: true, act: Some(Activation::Hswish) };
        let g = single_op(Op::Dense(d), &[n, f]);
        let w = Weights::random(&g, seed).unwrap();
        let x = Tensor::from_fn(&[n, f], |i| ((i as u64 ^ seed) % 13) as f32 / 6.0 - 1.0);
        let y = run_plain(&g, &w, &x);
        let (wt, bt) = (&w.tensors["op"]["weight"], &w.tensors["op"]["bias"]);
        for r in 0..n {
            for oo in 0..o {
                let mut acc = bt.data[oo] as f64;
                for i in 0..f {
                    acc += x.data[r * f + i] as f64 * wt.data[oo * f + i] as f64;
                }
                let want = Activation::Hswish.apply(acc as f32);
                prop_assert!((y.data[r * o + oo] - want).abs() <= 1e-5 * want.abs().max(1.0));
            }
        }
    }
}
