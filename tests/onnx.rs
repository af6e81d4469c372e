//! ONNX import and export: models built independently (the `onnx` Python package's helper API)
//! import and run to ONNX Runtime's outputs, interpreted and compiled; every built-in space's subnets round-trip through
//! export and import with the same outputs and exits; bad files get one-line errors naming the
//! node.

mod common;

use std::path::Path;
use std::process::Command;

use common::{fails, ok};
use nasc::ir::interp::{run, RunOptions};
use nasc::ir::{spaces, Tensor, Weights};
use nasc::onnx::{export, import, proto, Sidecar};
use prost::Message;
use rand::SeedableRng;

fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape, b.shape);
    let scale = b.data.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.data.iter().zip(&b.data).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn independently_built_models_match_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/onnx/make_models.py");
    let out = Command::new("python3").arg(script).arg(dir.path()).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "building the ONNX models needs python3 with numpy, onnx and onnxruntime (scripts/setup.sh installs them): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["mobilenet_v2", "resnet18_like", "fbnet_like"] {
        let p = |ext: &str| dir.path().join(format!("{name}.{ext}"));
        let m = import(&std::fs::read(p("onnx")).unwrap(), name, &Sidecar::default()).unwrap();
        let x = nasc::io::read_npy(&p("input.npy")).unwrap();
        let want = nasc::io::read_npy(&p("ort.npy")).unwrap();
        let got = run(&m.graph, &m.weights, &x, &RunOptions::default()).unwrap().output;
        let e = rel_err(&got, &want);
        eprintln!("{name}: {} nodes, max |nasc − onnxruntime| / max |onnxruntime| = {e:.2e}", m.graph.len());
        assert!(e < 1e-4, "{name}: {e}");
        // The compiled code (host JIT through `nasc run --jit`) matches ONNX Runtime too.
        let path = p("onnx");
        let jit_out = p("jit.npy");
        ok(&[
            "run",
            path.to_str().unwrap(),
            "--jit",
            "--input",
            p("input.npy").to_str().unwrap(),
            "-o",
            jit_out.to_str().unwrap(),
        ]);
        let compiled = nasc::io::read_npy(&jit_out).unwrap();
        let ec = rel_err(&compiled, &want);
        eprintln!("{name}: compiled code vs onnxruntime {ec:.2e}");
        assert!(ec < 1e-4, "{name} compiled: {ec}");
        // The CLI takes the file too, for every command.
        let v = common::json(&ok(&["cost", "-t", "cortex-a72", path.to_str().unwrap(), "--json", "--summary"]));
        assert!(v["macs"].as_u64().unwrap() > 0);
    }
}

#[test]
fn every_space_round_trips_through_onnx() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    for name in spaces::NAMES {
        let space = spaces::lookup(name).unwrap();
        let g = space.subnet_of(&space.sample(&mut rng)).unwrap();
        let w = Weights::random(&g, 7).unwrap();
        if !g.gates().is_empty() {
            let e = export(&g, &w).unwrap_err().to_string();
            assert!(e.contains("gate") && e.contains("no ONNX form"), "{e}");
            continue;
        }
        let (bytes, side) = export(&g, &w).unwrap();
        assert_eq!(side.exits.len(), g.exits().len());
        let back = import(&bytes, &g.name, &side).unwrap();
        assert_eq!(back.graph.exits().len(), g.exits().len(), "{name}: exits survive");
        let shape = g.infer_shapes().unwrap()[g.input_node().unwrap().index()].clone();
        let x = Tensor::from_fn(&shape, |i| ((i * 7919) % 200) as f32 / 100.0 - 1.0);
        for opts in [RunOptions { disable_exits: true, ..Default::default() }, RunOptions::default()] {
            let a = run(&g, &w, &x, &opts).unwrap();
            let b = run(&back.graph, &back.weights, &x, &opts).unwrap();
            assert_eq!(a.exit_index, b.exit_index, "{name}");
            let e = rel_err(&b.output, &a.output);
            assert!(e < 1e-5, "{name}: {e}");
        }
    }
}

fn model_with(node: proto::NodeProto, dims: Vec<proto::Dimension>) -> Vec<u8> {
    let vi = |n: &str, dims: Vec<proto::Dimension>| proto::ValueInfoProto {
        name: n.into(),
        r#type: Some(proto::TypeProto {
            tensor_type: Some(proto::TypeProtoTensor {
                elem_type: 1,
                shape: Some(proto::TensorShapeProto { dim: dims }),
            }),
        }),
    };
    let d = |v: i64| proto::Dimension { dim_value: Some(v), dim_param: None };
    proto::ModelProto {
        ir_version: 8,
        graph: Some(proto::GraphProto {
            node: vec![node],
            name: "g".into(),
            initializer: vec![],
            input: vec![vi("x", dims)],
            output: vec![vi("y", vec![d(1), d(4), d(8), d(8)])],
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn bad_models_are_refused_naming_the_node() {
    let d = |v: i64| proto::Dimension { dim_value: Some(v), dim_param: None };
    let shape = || vec![d(1), d(4), d(8), d(8)];
    let node = |op: &str, attrs: Vec<proto::AttributeProto>| proto::NodeProto {
        input: vec!["x".into()],
        output: vec!["y".into()],
        name: "the_node".into(),
        op_type: op.into(),
        attribute: attrs,
        domain: String::new(),
    };
    let e = import(&model_with(node("LSTM", vec![]), shape()), "m", &Sidecar::default()).unwrap_err();
    assert!(e.to_string().contains("node `the_node` (LSTM): unsupported op"), "{e}");
    let pads = proto::AttributeProto { name: "pads".into(), ints: vec![0, 0, 1, 1], r#type: 7, ..Default::default() };
    let k = proto::AttributeProto { name: "kernel_shape".into(), ints: vec![2, 2], r#type: 7, ..Default::default() };
    let e = import(&model_with(node("MaxPool", vec![k, pads]), shape()), "m", &Sidecar::default()).unwrap_err();
    assert!(e.to_string().contains("the_node") && e.to_string().contains("not symmetric"), "{e}");
    let dynamic = vec![proto::Dimension { dim_value: None, dim_param: Some("batch".into()) }, d(4), d(8), d(8)];
    let e = import(&model_with(node("Relu", vec![]), dynamic), "m", &Sidecar::default()).unwrap_err();
    assert!(e.to_string().contains("dynamic (`batch`)"), "{e}");
    let e = import(b"\x08\x96\x01garbage", "m", &Sidecar::default()).unwrap_err();
    assert!(e.to_string().contains("not an ONNX model"), "{e}");
    let mut side = Sidecar::default();
    side.exits
        .insert("nowhere".into(), nasc::onnx::ExitSpec { rule: nasc::ir::op::ExitRule::MaxSoftmax, threshold: 0.5 });
    let e = import(&model_with(node("Relu", vec![]), shape()), "m", &side).unwrap_err();
    assert!(e.to_string().contains("sidecar exit `nowhere`"), "{e}");

    // Through the CLI: a one-line error and no output file.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, model_with(node("LSTM", vec![]), shape())).unwrap();
    let out = dir.path().join("y.npy");
    let err = fails(&["run", bad.to_str().unwrap(), "--random-input", "1", "-o", out.to_str().unwrap()]);
    assert!(err.contains("bad.onnx") && err.contains("LSTM"), "{err}");
    assert!(!Path::new(&out).exists());
}

#[test]
fn export_command_writes_model_and_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let arch = ok(&["sample", "ee-mbv2:cifar10", "--seed", "2", "--arch-only"]);
    let out = dir.path().join("ee.onnx");
    let msg = ok(&["export", "--space", "ee-mbv2:cifar10", "--arch", arch.trim(), "-o", out.to_str().unwrap()]);
    assert!(msg.contains("3 exits"), "{msg}");
    let side = dir.path().join("ee.exits.json");
    assert!(side.exists());
    // Running the file with its sidecar at threshold 0 stops at the first exit, as the subnet does.
    let v = common::json(&ok(&[
        "run",
        out.to_str().unwrap(),
        "--exits",
        side.to_str().unwrap(),
        "--random-input",
        "1",
        "--threshold",
        "0",
        "--json",
    ]));
    assert_eq!(v["exit_index"], 0);
    let err = fails(&[
        "export",
        "--space",
        "skipnet-resnet:cifar10",
        "--arch",
        &vec!["k3"; 18].join(","),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("gate"), "{err}");
}
