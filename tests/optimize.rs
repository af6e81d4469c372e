//! `nasc optimize` end to end: random subnets of every built-in space rewritten for a CPU and
//! an accelerator compute what they computed (the interpreter, with the derived weights), are
//! never predicted slower, and degenerate NAS-Bench-201 cells lose their bodies; the CLI writes
//! the graph, weights and report, `nasc cost --optimize` prices the result, and bad input gets
//! one-line errors.

mod common;

use common::{fails, json, ok, rel_err};
use nasc::costmodel::opcost::OpCost;
use nasc::costmodel::Model;
use nasc::ir::interp::{run, RunOptions};
use nasc::ir::rewrite::rules::{self, Rule};
use nasc::ir::rewrite::{optimize_with, Limits};
use nasc::ir::{spaces, Device, Op, Tensor, Weights};
use rand::SeedableRng;

#[test]
fn random_subnets_of_every_space_keep_their_outputs_and_get_no_slower() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for target in ["cortex-a72", "eyeriss"] {
        let model = Model::new(nasc::targets::lookup(target).unwrap()).unwrap();
        for name in spaces::NAMES {
            let space = spaces::lookup(name).unwrap();
            let g = space.subnet_of(&space.sample(&mut rng)).unwrap();
            let w = Weights::random(&g, 3).unwrap();
            let r = nasc::optimize::optimize(&g, Some(&w), &model, &Limits::default()).unwrap();
            let rep = &r.report;
            assert!(rep.latency_after_ms <= rep.latency_before_ms * (1.0 + 1e-9), "{name} on {target}: {rep:?}");
            let shape = g.infer_shapes().unwrap()[g.input_node().unwrap().index()].clone();
            let x = Tensor::from_fn(&shape, |i| ((i * 7919 % 200) as f32) / 100.0 - 1.0);
            let opts = RunOptions { disable_exits: true, ..Default::default() };
            let a = run(&g, &w, &x, &opts).unwrap();
            let b = run(&r.graph, r.weights.as_ref().unwrap(), &x, &opts).unwrap();
            let e = rel_err(&b.output.data, &a.output.data);
            // OFA-MbV3 with random weights is ill-conditioned in f32 (see tests/cross.rs):
            // folding a norm into a convolution changes rounding enough to show.
            let tol = if name.starts_with("ofa") { 5e-3 } else { 1e-4 };
            eprintln!(
                "{name} on {target}: {:.4} → {:.4} ms, {} → {} nodes, error {e:.1e}",
                rep.latency_before_ms,
                rep.latency_after_ms,
                rep.rewrite.graph_nodes_before,
                rep.rewrite.graph_nodes_after
            );
            assert!(e < tol, "{name} on {target}: relative error {e:e}");
            // Exits keep their names and order.
            let names = |g: &nasc::ir::Graph| g.exits().iter().map(|&e| g.node(e).name.clone()).collect::<Vec<_>>();
            assert_eq!(names(&g), names(&r.graph), "{name}: exits");
        }
    }
}

#[test]
fn placement_gathers_host_work_on_an_npu() {
    // OFA-MbV3 on Eyeriss: the array runs no `mul`, `hswish` or `hsigmoid`, so every
    // squeeze-excite and h-swish starts on the host with its own round trip. Placement moves
    // neighbours over so that host work shares transfers.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let space = spaces::lookup("ofa-mbv3").unwrap();
    let model = Model::new(nasc::targets::lookup("eyeriss").unwrap()).unwrap();
    let all: Vec<Rule> = rules::families().into_iter().flat_map(|(_, r)| r.iter().copied()).collect();
    let unplaced: Vec<Rule> =
        rules::families().into_iter().filter(|(f, _)| *f != "placement").flat_map(|(_, r)| r.iter().copied()).collect();
    for _ in 0..3 {
        let g = space.subnet_of(&space.sample(&mut rng)).unwrap();
        let w = Weights::random(&g, 3).unwrap();
        let price = |rules: &[Rule]| {
            let (out, out_w, rep) =
                optimize_with(&g, Some(&w), Box::new(OpCost::new(model.clone())), &Limits::default(), rules).unwrap();
            (nasc::costmodel::cost(&out, &model).unwrap().latency_ms, out, out_w.unwrap(), rep)
        };
        let before = nasc::costmodel::cost(&g, &model).unwrap().latency_ms;
        let (without, ..) = price(&unplaced);
        let (with, out, out_w, rep) = price(&all);
        let on_host = out.node_ids().filter(|&i| out.node(i).device == Device::Host).count();
        eprintln!(
            "ofa on eyeriss: {before:.3} ms → {without:.3} without placement, {with:.3} with ({on_host} nodes on the host, place-on-host ×{}, cancel-transfers ×{})",
            rep.rules_fired["place-on-host"], rep.rules_fired["cancel-transfers"]
        );
        assert!(on_host > 0);
        assert!(with < without * 0.97, "placement gains under 3 %: {with} vs {without}");
        let shape = g.infer_shapes().unwrap()[g.input_node().unwrap().index()].clone();
        let x = Tensor::from_fn(&shape, |i| ((i * 7919 % 200) as f32) / 100.0 - 1.0);
        let a = run(&g, &w, &x, &RunOptions::default()).unwrap();
        let b = run(&out, &out_w, &x, &RunOptions::default()).unwrap();
        assert!(rel_err(&b.output.data, &a.output.data) < 5e-3);
    }
}

#[test]
fn degenerate_cells_lose_their_bodies() {
    // Node 3 of the cell reads only `none` edges; node 1 and node 2 compute something only
    // those edges read.
    let arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|none~1|none~2|";
    let space = spaces::lookup("nb201:cifar10").unwrap();
    let g = space.subnet(arch).unwrap();
    let w = Weights::random(&g, 5).unwrap();
    let model = Model::new(nasc::targets::lookup("cortex-a72").unwrap()).unwrap();
    let r = nasc::optimize::optimize(&g, Some(&w), &model, &Limits::default()).unwrap();
    let left: Vec<&str> = r
        .graph
        .node_ids()
        .map(|id| r.graph.node(id))
        .filter(|n| n.name.starts_with("cell") && !matches!(n.op, Op::Zero))
        .map(|n| n.name.as_str())
        .collect();
    assert!(left.is_empty(), "cell nodes left: {left:?}");
    let cell_ms: f64 = nasc::costmodel::cost(&r.graph, &model)
        .unwrap()
        .layers
        .iter()
        .filter(|l| l.name.starts_with("cell"))
        .map(|l| l.latency_ms)
        .sum();
    assert_eq!(cell_ms, 0.0);
    assert!(r.report.latency_after_ms < 0.1 * r.report.latency_before_ms, "{:?}", r.report);
    let shape = g.infer_shapes().unwrap()[g.input_node().unwrap().index()].clone();
    let x = Tensor::from_fn(&shape, |i| (i as f32 * 0.37).sin());
    let a = run(&g, &w, &x, &RunOptions::default()).unwrap();
    let b = run(&r.graph, r.weights.as_ref().unwrap(), &x, &RunOptions::default()).unwrap();
    assert!(rel_err(&b.output.data, &a.output.data) < 1e-5);
}

#[test]
fn a_whole_supernet_saturates_within_its_limits() {
    let g = spaces::lookup("fbnet:cifar100").unwrap().supernet().graph().clone();
    let model = Model::new(nasc::targets::lookup("cortex-a72").unwrap()).unwrap();
    let limits = Limits::default();
    let (out, _, r) =
        nasc::ir::rewrite::optimize(&g, None, Box::new(nasc::costmodel::opcost::OpCost::new(model)), &limits).unwrap();
    assert!(r.egraph_nodes <= limits.nodes + 2_000, "{r:?}");
    assert!(r.iterations <= limits.iterations);
    assert!(r.cost_after < r.cost_before, "{r:?}");
    // Still a supernet: every choice survives with all its candidates.
    let choices = |g: &nasc::ir::Graph| g.nodes_where(|op| matches!(op, Op::Choice(_))).len();
    assert_eq!(choices(&out), choices(&g));
    assert_eq!(out.params, g.params);
}

#[test]
fn optimize_command_writes_graph_weights_and_report() {
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).to_str().unwrap().to_string();
    let arch = ok(&["sample", "ee-mbv2:cifar10", "--seed", "2", "--arch-only"]).trim().to_string();
    let out = ok(&[
        "optimize",
        "-t",
        "cortex-a72",
        "--space",
        "ee-mbv2:cifar10",
        "--arch",
        &arch,
        "--seed",
        "4",
        "-o",
        &p("opt.json"),
        "--weights-out",
        &p("opt.safetensors"),
        "--report",
        &p("report.json"),
    ]);
    assert!(out.contains("predicted") && out.contains("rules fired"), "{out}");
    let rep = json(&std::fs::read_to_string(p("report.json")).unwrap());
    for key in ["stop_reason", "egraph_nodes", "egraph_classes", "rules_fired", "cost_before", "cost_after"] {
        assert!(rep.get(key).is_some(), "report lacks {key}: {rep}");
    }
    assert!(rep["rules_fired"]["fold-batchnorm-into-conv"].as_u64().unwrap() > 0);
    assert!(rep.get("ilp").is_none(), "no ILP unless asked: {rep}");
    // With --ilp-ms the ILP runs (started from the greedy selection) and never loses to it.
    let with_ilp = ok(&[
        "optimize",
        "-t",
        "cortex-a72",
        "--space",
        "ee-mbv2:cifar10",
        "--arch",
        &arch,
        "-o",
        &p("ilp.json"),
        "--report",
        &p("ilp-report.json"),
        "--ilp-ms",
        "300",
    ]);
    assert!(with_ilp.contains("extraction: greedy DAG"), "{with_ilp}");
    let ilp = json(&std::fs::read_to_string(p("ilp-report.json")).unwrap());
    assert!(["optimal", "time-limit", "no-solution"].contains(&ilp["ilp"].as_str().unwrap()), "{ilp}");
    assert!(ilp["cost_after"].as_f64().unwrap() <= ilp["cost_greedy"].as_f64().unwrap() + 1e-9, "{ilp}");
    // The optimised model with its weights runs to the original's outputs.
    let a = json(&ok(&[
        "run",
        "--space",
        "ee-mbv2:cifar10",
        "--arch",
        &arch,
        "--seed",
        "4",
        "--random-input",
        "1",
        "--json",
    ]));
    let b = json(&ok(&["run", &p("opt.json"), "--weights", &p("opt.safetensors"), "--random-input", "1", "--json"]));
    assert_eq!(a["exit_index"], b["exit_index"]);
    let va: Vec<f32> = a["output"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let vb: Vec<f32> = b["output"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert!(rel_err(&vb, &va) < 1e-4);
    // nasc cost --optimize prices the rewritten graph.
    let plain =
        json(&ok(&["cost", "-t", "cortex-a72", "--space", "ee-mbv2:cifar10", "--arch", &arch, "--json", "--summary"]));
    let opt = json(&ok(&[
        "cost",
        "-t",
        "cortex-a72",
        "--space",
        "ee-mbv2:cifar10",
        "--arch",
        &arch,
        "--json",
        "--summary",
        "--optimize",
    ]));
    assert!(opt["latency_ms"].as_f64().unwrap() < plain["latency_ms"].as_f64().unwrap());
    assert_eq!(opt["macs"], plain["macs"]);
}

#[test]
fn optimize_errors_are_one_line() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o.json");
    let o = out.to_str().unwrap();
    let err = fails(&["optimize", "-t", "cortex-a72", "--space", "nb201:cifar10", "-o", o]);
    assert!(err.contains("--arch"), "{err}");
    let err = fails(&["optimize", "-t", "nonesuch", "--space", "nb201:cifar10", "--arch", "bad", "-o", o]);
    assert!(err.contains("nonesuch") || err.contains("bad"), "{err}");
    let arch = ok(&["sample", "nb201:cifar10", "--arch-only"]).trim().to_string();
    let err = fails(&[
        "optimize",
        "-t",
        "cortex-a72",
        "--space",
        "nb201:cifar10",
        "--arch",
        &arch,
        "-o",
        "/nonexistent/dir/o.json",
    ]);
    assert!(err.contains("/nonexistent/dir/o.json"), "{err}");
    assert!(!out.exists());
}

#[test]
fn bench_optimize_prices_with_a_profile_when_given_one() {
    let run = |extra: &[&str]| {
        let mut args =
            vec!["bench", "optimize", "--space", "fbnet:cifar100", "-t", "cortex-a72", "--count", "2", "--json"];
        args.extend_from_slice(extra);
        json(&ok(&args))
    };
    let raw = run(&[]);
    let calibrated = run(&["--profile", "builtin:cortex-a72/fbnet-cifar100-raspi4_latency"]);
    assert_eq!(raw["architectures"], 2);
    assert_eq!(calibrated["architectures"], 2);
    // The Pi 4 profile scales the terms the rewrites save differently from the raw model.
    assert_ne!(raw["median_gain_percent"], calibrated["median_gain_percent"], "{raw} {calibrated}");
    let e = fails(&[
        "bench",
        "optimize",
        "--space",
        "fbnet:cifar100",
        "-t",
        "cortex-a72",
        "--count",
        "2",
        "--profile",
        "builtin:eyeriss/nb201-eyeriss_ms",
    ]);
    assert!(e.contains("profile for `eyeriss` applied to target `cortex-a72`"), "{e}");
}
