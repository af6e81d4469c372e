//! End-to-end tests of `nasc targets`, `nasc target show|check` and `nasc cost`: a new target
//! is one file, bad target files get one-line errors naming the field, and cost reports carry
//! what search frameworks read.

mod common;
use common::{fails, json, ok};

use std::path::{Path, PathBuf};

/// A made-up RISC-V vector core, written from scratch as a user would.
const MY_CORE: &str = r#"
name = "my-core"
description = "A made-up 1 GHz RVV core for the tests"
kind = "cpu"

[cpu]
triple = "riscv64-unknown-linux-gnu"
cpu = "generic-rv64"
features = "+m,+a,+f,+d,+c,+v"
cores = 2
clock_ghz = 1.0
simd_bits = 128
fma_units = 1
kernel_overhead_us = 2.0
elementwise_per_cycle = 1.0

[cpu.efficiency]
conv = 0.4
pointwise = 0.5
depthwise = 0.2
grouped = 0.3
dense = 0.3
pool = 0.2

[[memory]]
name = "L1d"
size_kib = 32
bandwidth_gbs = 16.0
pj_per_byte = 1.0

[dram]
bandwidth_gbs = 2.0
pj_per_byte = 80.0

[energy]
mac_pj = 10.0
static_w = 0.2
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const NB201_ARCH: &str =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";

#[test]
fn a_new_target_is_one_file() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "my-core.toml", MY_CORE);
    let path = p.to_str().unwrap();
    assert!(ok(&["target", "check", path]).starts_with("ok: my-core (cpu)"));
    let v = json(&ok(&["target", "show", path, "--json"]));
    assert_eq!(v["cpu"]["simd_bits"], 128);
    let r = json(&ok(&["cost", "--target", path, "--space", "nb201:cifar10", "--arch", NB201_ARCH, "--json"]));
    assert_eq!(r["target"], "my-core");
    assert_eq!(r["macs"], 115_270_272u64);
    let lat = r["latency_ms"].as_f64().unwrap();
    // A faster clock on the same file is faster: the file is really what is priced.
    let fast = write(d.path(), "fast.toml", &MY_CORE.replace("clock_ghz = 1.0", "clock_ghz = 2.0"));
    let r2 = json(&ok(&[
        "cost",
        "--target",
        fast.to_str().unwrap(),
        "--space",
        "nb201:cifar10",
        "--arch",
        NB201_ARCH,
        "--json",
    ]));
    assert!(r2["latency_ms"].as_f64().unwrap() < lat);
}

#[test]
fn target_check_rejects_bad_files_naming_the_field() {
    let d = tempfile::tempdir().unwrap();
    let cases: &[(&str, String, &[&str])] = &[
        ("missing.toml", MY_CORE.replace("clock_ghz = 1.0\n", ""), &["clock_ghz", "missing"]),
        ("type.toml", MY_CORE.replace("clock_ghz = 1.0", "clock_ghz = \"fast\""), &["cpu.clock_ghz", ":11:"]),
        (
            "zero-bw.toml",
            MY_CORE.replace("bandwidth_gbs = 2.0", "bandwidth_gbs = 0"),
            &["dram.bandwidth_gbs", "positive"],
        ),
        ("neg-energy.toml", MY_CORE.replace("mac_pj = 10.0", "mac_pj = -1.0"), &["energy.mac_pj", "positive"]),
        ("eff.toml", MY_CORE.replace("conv = 0.4", "conv = 1.5"), &["cpu.efficiency.conv", "(0, 1]"]),
        ("unknown.toml", MY_CORE.replace("cores = 2", "cores = 2\nturbo = true"), &["turbo"]),
        ("kind.toml", MY_CORE.replace("kind = \"cpu\"", "kind = \"gpu\""), &["kind"]),
        ("syntax.toml", MY_CORE.replace("[cpu]", "[cpu"), &["syntax.toml"]),
    ];
    for (file, text, wants) in cases {
        let p = write(d.path(), file, text);
        let err = fails(&["target", "check", p.to_str().unwrap()]);
        for w in *wants {
            assert!(err.contains(w), "{file}: `{w}` missing from: {err}");
        }
        // The same file is refused where it would be used.
        fails(&["cost", "--target", p.to_str().unwrap(), "--space", "nb201:cifar10", "--arch", NB201_ARCH]);
    }
    let err = fails(&["target", "check", d.path().join("absent.toml").to_str().unwrap()]);
    assert!(err.contains("absent.toml") && err.contains("cannot read"), "{err}");
    let err = fails(&["target", "show", "no-such-chip"]);
    assert!(err.contains("unknown target") && err.contains("cortex-a72"), "{err}");
}

#[test]
fn targets_lists_every_builtin() {
    let v = json(&ok(&["targets", "--json"]));
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for want in [
        "cortex-a53",
        "cortex-a72",
        "cortex-a76",
        "sifive-u74",
        "c906",
        "spacemit-x60",
        "edgetpu",
        "ethos-u55",
        "eyeriss",
        "host",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let toml = ok(&["target", "show", "eyeriss"]);
    assert!(toml.contains("row_stationary"), "{toml}");
}

#[test]
fn cost_reports_layers_exits_and_gates() {
    let v = json(&ok(&["cost", "-t", "cortex-a72", "--space", "nb201:cifar10", "--arch", NB201_ARCH, "--json"]));
    for key in ["target", "latency_ms", "energy_mj", "macs", "params", "peak_memory_bytes", "layers"] {
        assert!(v.get(key).is_some(), "{key} missing");
    }
    let layers = v["layers"].as_array().unwrap();
    let sum: f64 = layers.iter().map(|l| l["latency_ms"].as_f64().unwrap()).sum();
    assert!((sum - v["latency_ms"].as_f64().unwrap()).abs() < 1e-9 * sum.max(1.0), "layers sum to the total");
    assert!(layers.iter().any(|l| l["ops"] == "conv2d+batchnorm"), "conv + BN fuse into one kernel");
    // 32×32×16 f32 feature maps: the peak holds at least an input and an output of a cell.
    assert!(v["peak_memory_bytes"].as_u64().unwrap() >= 2 * 16 * 32 * 32 * 4);

    let arch = ok(&["sample", "ee-mbv2:cifar10", "--seed", "3", "--arch-only"]);
    let v = json(&ok(&["cost", "-t", "eyeriss", "--space", "ee-mbv2:cifar10", "--arch", arch.trim(), "--json"]));
    let exits = v["exits"].as_array().unwrap();
    assert_eq!(exits.len(), 4, "three early exits and the output");
    let lat: Vec<f64> = exits.iter().map(|e| e["latency_ms"].as_f64().unwrap()).collect();
    assert!(lat.windows(2).all(|w| w[0] < w[1]), "{lat:?}");
    assert!((lat[3] - v["latency_ms"].as_f64().unwrap()).abs() < 1e-9, "the output's cost is the full run");

    let arch = ok(&["sample", "skipnet-resnet:cifar10", "--seed", "3", "--arch-only"]);
    let v =
        json(&ok(&["cost", "-t", "cortex-a72", "--space", "skipnet-resnet:cifar10", "--arch", arch.trim(), "--json"]));
    let gates = v["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 16);
    for g in gates {
        assert!(g["latency_without_ms"].as_f64().unwrap() < g["latency_with_ms"].as_f64().unwrap());
        assert!(g["block_macs"].as_u64().unwrap() > 0);
    }
    let table = ok(&["cost", "-t", "cortex-a72", "--space", "skipnet-resnet:cifar10", "--arch", arch.trim()]);
    assert!(table.contains("gate `gate1`") && table.contains("total: latency"), "{table}");

    // The shipped Eyeriss FBNet profile has a fixed energy per inference: one row says so, and
    // the layers still sum to the total.
    let arch = ["k3_e1"; 22].join(",");
    let profile = "builtin:eyeriss/fbnet-cifar100-eyeriss_latency";
    let args = ["cost", "-t", "eyeriss", "--profile", profile, "--space", "fbnet:cifar100", "--arch", &arch];
    let text = ok(&args);
    let fixed: Vec<&str> = text.lines().filter(|l| l.ends_with("fixed energy per inference")).collect();
    assert_eq!(fixed.len(), 1, "{text}");
    assert!(fixed[0].starts_with("input "), "{text}");
    let v = json(&ok(&[&args[..], &["--json"]].concat()));
    let sum: f64 = v["layers"].as_array().unwrap().iter().map(|l| l["energy_mj"].as_f64().unwrap()).sum();
    assert!((sum - v["energy_mj"].as_f64().unwrap()).abs() < 1e-9 * sum, "{v}");
}

#[test]
fn cost_archs_prices_a_file_and_names_bad_lines() {
    let d = tempfile::tempdir().unwrap();
    let good = "# three cells\n|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|\n\n|none~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|none~1|none~2|\n|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|\n";
    let p = write(d.path(), "archs.txt", good);
    let v = json(&ok(&["cost", "-t", "eyeriss", "--space", "nb201:cifar10", "--archs", p.to_str().unwrap(), "--json"]));
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[0]["macs"], 115_270_272u64);
    assert!(arr.iter().all(|r| r["latency_ms"].as_f64().unwrap() > 0.0 && r["layers"].is_array()));
    let table = ok(&["cost", "-t", "eyeriss", "--space", "nb201:cifar10", "--archs", p.to_str().unwrap()]);
    assert_eq!(table.lines().count(), 4, "{table}");

    let bad = write(d.path(), "bad.txt", &good.replace("|none~0|+", "|nope~0|+"));
    let err = fails(&["cost", "-t", "eyeriss", "--space", "nb201:cifar10", "--archs", bad.to_str().unwrap()]);
    assert!(err.contains("bad.txt:4") && err.contains("nope"), "{err}");
    let empty = write(d.path(), "empty.txt", "# nothing\n");
    let err = fails(&["cost", "-t", "eyeriss", "--space", "nb201:cifar10", "--archs", empty.to_str().unwrap()]);
    assert!(err.contains("no architecture strings"), "{err}");
}

/// Two networks as one layer table: `a` (a 3×3 convolution with its ReLU, a depthwise) and `b`
/// (a 1×1 convolution, global pooling, a classifier); `ab` is `a` then `b` on a tensor the
/// table does not describe (`from = new`), so it has two segments.
const TABLE: &str = "model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act,pad,from
a,conv2d,3,32,32,16,3,1,1,relu,,
a,conv2d,16,32,32,16,3,2,16,relu,,
b,conv2d,16,8,8,32,1,1,1,,,
b,global_avg_pool,32,8,8,,,,,,,
b,dense,32,1,1,10,,,,,,
ab,conv2d,3,32,32,16,3,1,1,relu,,
ab,conv2d,16,32,32,16,3,2,16,relu,,
ab,conv2d,16,8,8,32,1,1,1,,,new
ab,global_avg_pool,32,8,8,,,,,,,
ab,dense,32,1,1,10,,,,,,
";

#[test]
fn cost_prices_a_layer_table_model_segment_by_segment() {
    let dir = tempfile::tempdir().unwrap();
    let t = write(dir.path(), "layers.csv", TABLE);
    let t = t.to_str().unwrap();
    let latency = |name: &str| -> f64 {
        let v = json(&ok(&["cost", "-t", "cortex-a72", "--models", t, "--model-name", name, "--json"]));
        v["latency_ms"].as_f64().unwrap()
    };
    let (a, b, ab) = (latency("a"), latency("b"), latency("ab"));
    assert!(a > 0.0 && b > 0.0, "{a} {b}");
    assert!((ab - (a + b)).abs() < 1e-9 * ab, "segments sum: {ab} against {a} + {b}");
    let v = json(&ok(&["cost", "-t", "cortex-a72", "--models", t, "--model-name", "ab", "--json", "--summary"]));
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 2);
    assert_eq!(v["macs"].as_u64().unwrap(), segs.iter().map(|s| s["macs"].as_u64().unwrap()).sum::<u64>());
    assert!(segs.iter().all(|s| s.get("layers").is_some_and(|l| l.as_array().unwrap().is_empty())), "{v}");
    let text = ok(&["cost", "-t", "cortex-a72", "--models", t, "--model-name", "ab"]);
    assert!(text.contains("segment 2 of 2") && text.contains("model total over 2 segments"), "{text}");
    // A calibrated profile applies as to any model; other commands take a one-segment model.
    let profile = "builtin:cortex-a72/ncnn-pi4-a72";
    let cal = ok(&["cost", "-t", "cortex-a72", "--profile", profile, "--models", t, "--model-name", "b"]);
    assert!(cal.contains("(calibrated; 3×3 convolutions as Winograd F(2,3))") && cal.contains("dense"), "{cal}");
    assert!(ok(&["show", "--models", t, "--model-name", "a"]).contains("conv2d"));

    // A profile's fixed energy per inference is paid once by a model of several segments.
    let eyeriss = |name: &str| {
        let profile = "builtin:eyeriss/fbnet-cifar100-eyeriss_latency";
        json(&ok(&["cost", "-t", "eyeriss", "--profile", profile, "--models", t, "--model-name", name, "--json"]))
    };
    let (a, b, ab) = (eyeriss("a"), eyeriss("b"), eyeriss("ab"));
    let fixed = a["layers"][0]["energy_mj"].as_f64().unwrap();
    assert!(a["layers"][0]["name"] == "input" && fixed > 1.0, "{a}");
    let energy = |v: &serde_json::Value| v["energy_mj"].as_f64().unwrap();
    assert!((energy(&ab) - (energy(&a) + energy(&b) - fixed)).abs() < 1e-9 * energy(&ab), "{ab}");
    let e = fails(&["cost", "-t", "cortex-a72", "--models", t, "--model-name", "c"]);
    assert!(e.contains("layers.csv: no model `c` (models: a, b, ab)"), "{e}");
    let e = fails(&["show", "--models", t, "--model-name", "ab"]);
    assert!(e.contains("model `ab` has 2 segments"), "{e}");
    let bad = write(dir.path(), "bad.csv", "model,op,in_c,in_h,in_w\nx,conv2d,3,8,8\n");
    let e = fails(&["cost", "-t", "cortex-a72", "--models", bad.to_str().unwrap(), "--model-name", "x"]);
    assert!(e.contains("bad.csv"), "{e}");
}
