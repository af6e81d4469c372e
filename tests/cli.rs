//! End-to-end tests of the `nasc` binary: every subcommand on real inputs, and bad inputs
//! giving a one-line error naming the place with a non-zero exit and no output file.

mod common;
use common::{fails, json, ok};

use std::path::{Path, PathBuf};

use nasc::ir::Tensor;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

const NB201_ARCH: &str =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";

#[test]
fn spaces_lists_every_builtin_space() {
    let v = json(&ok(&["spaces", "--json"]));
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    for want in [
        "nb201:cifar10",
        "nb201:cifar100",
        "nb201:imagenet16-120",
        "fbnet:cifar100",
        "fbnet:imagenet",
        "ee-mbv2:cifar10",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("ofa-mbv3")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("skipnet-resnet")), "{names:?}");
    let table = ok(&["spaces"]);
    assert!(table.contains("nb201:cifar10") && table.contains("1e4.2"), "{table}");
}

#[test]
fn sample_is_deterministic_and_valid() {
    let a = ok(&["sample", "fbnet:cifar100", "--seed", "5"]);
    let b = ok(&["sample", "fbnet:cifar100", "--seed", "5"]);
    let c = ok(&["sample", "fbnet:cifar100", "--seed", "6"]);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let g = nasc::ir::Graph::from_json(&a).unwrap();
    g.validate().unwrap();
    assert_eq!(g.meta["space"], "fbnet:cifar100");
    let archs = ok(&["sample", "nb201:cifar10", "--count", "4", "--arch-only", "--seed", "1"]);
    assert_eq!(archs.lines().count(), 4);
    for arch in archs.lines() {
        assert!(arch.starts_with('|') && arch.ends_with('|'), "{arch}");
    }
}

#[test]
fn show_reports_published_macs() {
    let v = json(&ok(&["show", "--space", "nb201:cifar10", "--arch", NB201_ARCH, "--json"]));
    // Row 1 of data/nb201_cifar10.csv.
    assert_eq!(v["macs"], 115270272u64);
    assert_eq!(v["output_shape"], serde_json::json!([1, 10]));
    assert!(v["layers"].as_array().unwrap().len() > 50);
    let table = ok(&["show", "--space", "nb201:cifar10", "--arch", NB201_ARCH]);
    assert!(table.contains("115270272"), "{table}");
    let supernet = ok(&["show", "--space", "fbnet:cifar100"]);
    assert!(supernet.contains("22 architecture parameters"), "{supernet}");
}

#[test]
fn show_reads_the_file_that_sample_wrote() {
    let d = tmp();
    let p = d.path().join("net.json");
    ok(&["sample", "nb201:cifar100", "--seed", "2", "-o", p.to_str().unwrap()]);
    let v = json(&ok(&["show", p.to_str().unwrap(), "--json"]));
    assert_eq!(v["output_shape"], serde_json::json!([1, 100]));
    assert!(v["macs"].as_u64().unwrap() > 0);
}

#[test]
fn run_reads_and_writes_npy() {
    let d = tmp();
    let model = d.path().join("net.json");
    ok(&["sample", "nb201:cifar10", "--seed", "3", "-o", model.to_str().unwrap()]);
    let x = Tensor::from_fn(&[1, 3, 32, 32], |i| ((i * 37 % 101) as f32 / 50.0) - 1.0);
    let input = write(d.path(), "x.npy", &nasc::io::npy_bytes(&x));
    let out = d.path().join("y.npy");
    let v = json(&ok(&[
        "run",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]));
    let y = nasc::io::read_npy(&out).unwrap();
    assert_eq!(y.shape, vec![1, 10]);
    assert!(y.data.iter().all(|v| v.is_finite()));
    let printed: Vec<f32> = v["output"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    assert_eq!(printed, y.data);
    // Same input, same seed: same output.
    let again = json(&ok(&["run", model.to_str().unwrap(), "--input", input.to_str().unwrap(), "--json"]));
    assert_eq!(again["output"], v["output"]);
}

#[test]
fn early_exit_fires_earlier_as_the_threshold_drops() {
    let arch = ok(&["sample", "ee-mbv2:cifar10", "--seed", "4", "--arch-only"]);
    let arch = arch.trim();
    let exit_at = |extra: &[&str]| -> u64 {
        let mut args = vec!["run", "--space", "ee-mbv2:cifar10", "--arch", arch, "--random-input", "9", "--json"];
        args.extend_from_slice(extra);
        json(&ok(&args))["exit_index"].as_u64().unwrap()
    };
    assert_eq!(exit_at(&["--no-exits"]), 3);
    assert_eq!(exit_at(&["--threshold", "1.01"]), 3, "max-softmax never reaches 1.01");
    assert_eq!(exit_at(&["--threshold", "0"]), 0);
    let mut last = 3;
    for t in [1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.15, 0.12, 0.1, 0.0] {
        let k = exit_at(&["--threshold", &t.to_string()]);
        assert!(k <= last, "θ={t}: exit {k} after exit {last} at a higher θ");
        last = k;
    }
    // Lowering only the last exit's threshold makes the network stop there.
    assert_eq!(exit_at(&["--threshold", "1.01", "--threshold", "exit2=0"]), 2);
    assert_eq!(exit_at(&["--threshold", "1.01", "--threshold", "exit1=0"]), 1);
    let text = ok(&["run", "--space", "ee-mbv2:cifar10", "--arch", arch, "--random-input", "9", "--threshold", "0"]);
    assert!(text.contains("exit taken: 0 (`exit0`)"), "{text}");
}

#[test]
fn gated_network_runs_with_forced_gates() {
    let arch = ok(&["sample", "skipnet-resnet:cifar10", "--seed", "1", "--arch-only"]);
    let v = json(&ok(&[
        "run",
        "--space",
        "skipnet-resnet:cifar10",
        "--arch",
        arch.trim(),
        "--random-input",
        "2",
        "--json",
    ]));
    let gates = v["gates_open"].as_object().unwrap();
    assert!(!gates.is_empty());
    let name = gates.keys().next().unwrap().clone();
    let forced = json(&ok(&[
        "run",
        "--space",
        "skipnet-resnet:cifar10",
        "--arch",
        arch.trim(),
        "--random-input",
        "2",
        "--gate",
        &format!("{name}=closed"),
        "--json",
    ]));
    assert_eq!(forced["gates_open"][&name], false);
}

#[test]
fn dot_prints_graphviz() {
    let text = ok(&["dot", "--space", "nb201:cifar10", "--arch", NB201_ARCH]);
    assert!(text.starts_with("digraph") && text.trim_end().ends_with('}'));
    let supernet = ok(&["dot", "--space", "nb201:cifar10"]);
    assert!(supernet.contains("shape=diamond"), "choices drawn as diamonds");
}

#[test]
fn malformed_model_file_names_file_and_line() {
    let d = tmp();
    let p = write(d.path(), "bad.json", b"{\n \"format\": \"nasc-graph\",\n \"nodes\": [,]\n}");
    let e = fails(&["show", p.to_str().unwrap()]);
    assert!(e.contains("bad.json") && e.contains("line 3"), "{e}");
}

#[test]
fn unknown_op_and_shape_mismatch_are_one_line_errors() {
    let d = tmp();
    let text = ok(&["sample", "nb201:cifar10", "--seed", "1"]);
    let p = write(d.path(), "op.json", text.replacen("\"op\": \"relu\"", "\"op\": \"gelu\"", 1).as_bytes());
    let e = fails(&["show", p.to_str().unwrap()]);
    assert!(e.contains("unknown op `gelu`"), "{e}");
    let mut g = nasc::ir::Graph::from_json(&text).unwrap();
    let input = g.input_node().unwrap();
    g.node_mut(input).op = nasc::ir::Op::Input(nasc::ir::op::Input { shape: vec![1, 3, 2, 2] });
    let p = write(d.path(), "shape.json", g.to_json().as_bytes());
    let e = fails(&["show", p.to_str().unwrap()]);
    assert!(e.contains("node `") && e.contains("does not fit"), "{e}");
}

#[test]
fn bad_architecture_strings_are_one_line_errors() {
    let e = fails(&["show", "--space", "nb201:cifar10", "--arch", "|nor_conv_3x3~0|+|bogus~0|avg_pool_3x3~1|"]);
    assert!(e.contains("nb201:cifar10"), "{e}");
    let e = fails(&["show", "--space", "fbnet:cifar100", "--arch", "k3_e1,k3_e1"]);
    assert!(e.contains("fbnet:cifar100"), "{e}");
    let e = fails(&["show", "--space", "nosuch", "--arch", "x"]);
    assert!(e.contains("unknown search space `nosuch`"), "{e}");
}

#[test]
fn bad_run_inputs_leave_no_output() {
    let d = tmp();
    let model = d.path().join("net.json");
    ok(&["sample", "nb201:cifar10", "--seed", "3", "-o", model.to_str().unwrap()]);
    let x = Tensor::zeros(&[1, 3, 16, 16]);
    let input = write(d.path(), "x.npy", &nasc::io::npy_bytes(&x));
    let out = d.path().join("y.npy");
    let e = fails(&["run", model.to_str().unwrap(), "--input", input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(e.contains("[1, 3, 16, 16]") && e.contains("[1, 3, 32, 32]"), "{e}");
    assert!(!out.exists());
    let junk = write(d.path(), "junk.npy", b"not numpy");
    let e = fails(&["run", model.to_str().unwrap(), "--input", junk.to_str().unwrap()]);
    assert!(e.contains("junk.npy"), "{e}");
    let e = fails(&["run", model.to_str().unwrap(), "--input", d.path().join("missing.npy").to_str().unwrap()]);
    assert!(e.contains("missing.npy"), "{e}");
    let e = fails(&["run", model.to_str().unwrap(), "--random-input", "1", "--threshold", "exit9=0.5"]);
    assert!(e.contains("exit9") && e.contains("has no early exits"), "{e}");
    let e = fails(&["run", model.to_str().unwrap(), "--random-input", "1", "--threshold", "0.5"]);
    assert!(e.contains("--threshold 0.5: model `nb201:cifar10` has no early exits"), "{e}");
    let e = fails(&["sample", "nb201:cifar10", "-o", d.path().join("no/such/dir/x.json").to_str().unwrap()]);
    assert!(e.contains("x.json"), "{e}");
    let leftovers: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 3, "only the model and the two inputs remain: {leftovers:?}");
}
