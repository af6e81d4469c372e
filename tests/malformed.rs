//! Every parser meets malformed input with an error, never a panic: real inputs (subnets of
//! every space, the built-in target files and profiles, cost tables, the public ncnn layer
//! tables, ONNX exports, `.npy` and safetensors files) are mutated at random — bytes flipped,
//! ranges deleted and duplicated, lines swapped, numbers replaced by extreme ones — and each
//! mutant goes through the parser and what a command does next with what it returns (pricing,
//! cost-table queries, weights checks).
//!
//! The same harness as the `cargo fuzz` targets in `fuzz/`, bounded and on a fixed seed so it
//! runs in every CI build; `NASC_MUTANTS=N` raises the number of mutants per parser for a longer
//! local run.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use nasc::costmodel::calibrate::Profile;
use nasc::costmodel::expect::Query;
use nasc::costmodel::table::CostTable;
use nasc::costmodel::{cost, Model};
use nasc::ir::{spaces, Graph, Weights};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Mutants per parser (spread over its seeds).
fn mutants(default: usize) -> usize {
    std::env::var("NASC_MUTANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "-0",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "1e-320",
    "255",
    "65536",
    "2147483648",
    "4294967296",
    "9007199254740993",
    "18446744073709551616",
    "99999999999999999999999",
    "0.5",
    "",
];
const BYTES: &[u8] = b"0123456789-+.,:;\"'{}[]()|~_=eExX \n\t\\#";

/// Random edits of `seed`: one half the time (most of those still parse, and reach what runs
/// after the parser), else two to four.
fn mutate(rng: &mut ChaCha8Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let edits = if rng.gen_bool(0.5) { 1 } else { rng.gen_range(2..=4) };
    for _ in 0..edits {
        let n = b.len();
        let at = if n == 0 { 0 } else { rng.gen_range(0..n) };
        match rng.gen_range(0..7) {
            0 if n > 0 => b[at] = rng.gen(),
            1 if n > 0 => b[at] = *BYTES.choose(rng).unwrap(),
            2 if n > 0 => {
                let end = (at + rng.gen_range(1..32)).min(n);
                b.drain(at..end);
            }
            3 if n > 0 => {
                let end = (at + rng.gen_range(1..64)).min(n);
                let copy = b[at..end].to_vec();
                let to = rng.gen_range(0..=n);
                b.splice(to..to, copy);
            }
            4 => b.truncate(at),
            5 => {
                // A run of digits (the number fields) replaced by an extreme number.
                let digits: Vec<usize> = (0..n).filter(|&i| b[i].is_ascii_digit()).collect();
                if let Some(&i) = digits.choose(rng) {
                    let (mut s, mut e) = (i, i);
                    while s > 0 && (b[s - 1].is_ascii_digit() || b[s - 1] == b'.') {
                        s -= 1;
                    }
                    while e < n && (b[e].is_ascii_digit() || b[e] == b'.') {
                        e += 1;
                    }
                    b.splice(s..e, NUMBERS.choose(rng).unwrap().bytes());
                }
            }
            _ => {
                // Two lines swapped.
                let text = String::from_utf8_lossy(&b).into_owned();
                let mut lines: Vec<&str> = text.split('\n').collect();
                if lines.len() > 2 {
                    let (i, j) = (rng.gen_range(0..lines.len()), rng.gen_range(0..lines.len()));
                    lines.swap(i, j);
                    b = lines.join("\n").into_bytes();
                }
            }
        }
    }
    b
}

thread_local! {
    /// Whether this thread is sending mutants through a parser, whose panics it reports itself.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A panic hook, installed once for the whole test binary (tests run on parallel threads),
/// that keeps quiet on a thread inside [`survive`] and reports every other panic as usual.
fn quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                default(info)
            }
        }));
    });
}

/// Runs `parse` on `count` mutants of the seeds: a panic fails with the mutant that caused it
/// (and where it was saved); an error must say something (the CLI prints it on one line,
/// `main.rs`). Returns how many mutants
/// parsed and how many were rejected.
fn survive(what: &str, seeds: &[Vec<u8>], count: usize, parse: impl Fn(&[u8]) -> Result<(), String>) -> (usize, usize) {
    assert!(!seeds.is_empty(), "{what}: no seeds");
    let mut rng = ChaCha8Rng::seed_from_u64(0x6e61_7363 ^ what.len() as u64);
    let (mut ok, mut rejected) = (0, 0);
    // The seeds themselves parse.
    for (i, s) in seeds.iter().enumerate() {
        if let Err(e) = parse(s) {
            panic!("{what}: seed {i} does not parse: {e}");
        }
    }
    quiet_hook();
    QUIET.with(|q| q.set(true));
    let mut failure = None;
    for i in 0..count {
        let m = mutate(&mut rng, &seeds[i % seeds.len()]);
        match catch_unwind(AssertUnwindSafe(|| parse(&m))) {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => {
                if e.trim().is_empty() {
                    failure = Some((m, "empty error".to_string()));
                    break;
                }
                rejected += 1;
            }
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failure = Some((m, format!("panicked: {msg}")));
                break;
            }
        }
    }
    QUIET.with(|q| q.set(false));
    if let Some((m, why)) = failure {
        let path = std::env::temp_dir().join(format!("nasc-malformed-{}.bin", what.replace(' ', "-")));
        std::fs::write(&path, &m).unwrap();
        let shown = String::from_utf8_lossy(&m);
        let shown: String = shown.chars().take(600).collect();
        eprintln!("{what}: {why}\nmutant saved to {}:\n{shown}", path.display());
        // Again with the panic hook back, so the panic shows where it happened.
        let _ = parse(&m);
        panic!("{what}: {why}");
    }
    eprintln!("{what}: {count} mutants, {ok} parsed, {rejected} rejected with an error");
    (ok, rejected)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn err(e: impl std::fmt::Display) -> String {
    format!("{e:#}")
}

fn model(target: &str) -> Model {
    Model::new(nasc::targets::lookup(target).unwrap()).unwrap()
}

/// Subnets of every space, a few each.
fn subnets() -> Vec<Graph> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    spaces::NAMES
        .iter()
        .flat_map(|name| {
            let s = spaces::lookup(name).unwrap();
            (0..2).map(|_| s.subnet_of(&s.sample(&mut rng)).unwrap()).collect::<Vec<_>>()
        })
        .collect()
}

/// Prices a parsed graph on a CPU and an NPU target, as `nasc cost` would.
fn price(g: &Graph) -> Result<(), String> {
    g.validate().map_err(err)?;
    nasc::ir::stats::totals(g).map_err(err)?;
    for t in ["cortex-a72", "eyeriss"] {
        cost(g, &model(t)).map_err(err)?;
    }
    Ok(())
}

#[test]
fn graph_json() {
    let seeds: Vec<Vec<u8>> = subnets().iter().map(|g| g.to_json().into_bytes()).collect();
    let (ok, rejected) = survive("graph JSON", &seeds, mutants(600), |b| {
        let g = Graph::from_json(&text(b)).map_err(err)?;
        if g.is_concrete() {
            price(&g)
        } else {
            g.validate_structure().map_err(err)
        }
    });
    assert!(ok > 0 && rejected > 0, "the mutants exercise both paths: {ok} parsed, {rejected} rejected");
}

#[test]
fn architecture_strings() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for name in spaces::NAMES {
        let s = spaces::lookup(name).unwrap();
        let seeds: Vec<Vec<u8>> = (0..4).map(|_| s.format_arch(&s.sample(&mut rng)).into_bytes()).collect();
        survive(&format!("{name} architecture"), &seeds, mutants(300), |b| {
            let g = s.subnet(&text(b)).map_err(err)?;
            g.validate().map(|_| ()).map_err(err)
        });
    }
}

#[test]
fn target_toml() {
    let graph = subnets().swap_remove(0);
    let seeds: Vec<Vec<u8>> = nasc::targets::BUILTINS.iter().map(|(_, text)| text.as_bytes().to_vec()).collect();
    survive("target TOML", &seeds, mutants(800), |b| {
        let t = nasc::targets::Target::from_toml(&text(b), "t.toml").map_err(err)?;
        let m = Model::new(t).map_err(err)?;
        cost(&graph, &m).map(|_| ()).map_err(err)
    });
}

#[test]
fn measurement_csv() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let ncnn = nasc::tables::ncnn(&data).unwrap();
    let seeds: Vec<Vec<u8>> = ["pi4-a72", "rk3588-a76", "sg2000-c906"]
        .iter()
        .map(|key| {
            let board = nasc::tables::board(key).unwrap();
            let ms = nasc::tables::board_measurements(&data, board, &ncnn.models).unwrap();
            nasc::study::write_measurements("model", &ms).into_bytes()
        })
        .collect();
    survive("measurement CSV", &seeds, mutants(800), |b| {
        nasc::study::parse_measurements(b, "m.csv").map(|_| ()).map_err(err)
    });
}

#[test]
fn layer_table_csv() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let ncnn = nasc::tables::ncnn(&data).unwrap();
    // Networks with every kind of row: DAGs through `from`, slices and concats, int8 layers,
    // squeeze-excitation, detection heads.
    let seeds: Vec<Vec<u8>> = ["nanodet_m", "efficientnetv2_b0", "squeezenet_ssd_int8", "shufflenet_v2", "resnet18"]
        .iter()
        .map(|name| {
            let (_, layers) = ncnn.models.iter().find(|(m, _)| m == name).unwrap();
            nasc::layers::write(layers).into_bytes()
        })
        .collect();
    let mut f16 = model("cortex-a76");
    f16.floats = nasc::ir::Precision::F16;
    survive("layer table CSV", &seeds, mutants(600), |b| {
        let models = nasc::layers::parse(b, "l.csv").map_err(err)?;
        for segs in nasc::layers::graphs(&models, "l.csv").map_err(err)?.values() {
            nasc::study::segments_cost(segs, &f16).map_err(err)?;
        }
        Ok(())
    });
}

#[test]
fn profile_json() {
    let graph = subnets().swap_remove(0);
    let seeds: Vec<Vec<u8>> = nasc::profiles::BUILTIN.iter().map(|(_, text)| text.as_bytes().to_vec()).collect();
    survive("profile JSON", &seeds, mutants(800), |b| {
        let p = Profile::from_json(&text(b))?;
        let mut m = Model::new(nasc::targets::lookup(&p.target).map_err(err)?).map_err(err)?;
        p.apply(&mut m)?;
        cost(&graph, &m).map(|_| ()).map_err(err)
    });
}

#[test]
fn cost_table_json() {
    let m = model("cortex-a53");
    let seeds: Vec<Vec<u8>> = ["nb201:cifar10", "ee-mbv2:cifar10", "skipnet-resnet:cifar10"]
        .iter()
        .map(|name| {
            let s = spaces::lookup(name).unwrap();
            CostTable::build(name, s.supernet(), &m).unwrap().to_json().into_bytes()
        })
        .collect();
    survive("cost table JSON", &seeds, mutants(600), |b| {
        let t = CostTable::from_json(&text(b))?;
        // What `nasc expect` and the Python package do with a table: the all-first-options
        // subnet, the additive approximation and the expected cost under uniform logits.
        let zero = vec![0; t.params.len()];
        t.check(&zero)?;
        t.cost(&zero);
        t.additive_lut();
        t.expected(&Query::softmax(vec![0.0; t.n_logits()])).map(|_| ())
    });
}

#[test]
fn npy_and_safetensors() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let tensors: Vec<Vec<u8>> = [vec![1, 3, 8, 8], vec![10], vec![2, 5]]
        .into_iter()
        .map(|shape: Vec<usize>| {
            let n = shape.iter().product();
            let data = (0..n).map(|_| rng.next_u32() as f32 / u32::MAX as f32).collect();
            nasc::io::npy_bytes(&nasc::ir::Tensor::new(shape, data).unwrap())
        })
        .collect();
    survive("npy", &tensors, mutants(600), |b| nasc::io::parse_npy(b, "x.npy").map(|_| ()).map_err(err));
    // Weights of small networks from layer tables (a subnet's run to megabytes).
    let tables = [
        "model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act,pad,from\n\
         m,conv2d,3,8,8,8,3,1,1,relu,,\n\
         m,conv2d,8,8,8,8,3,1,8,,,\n\
         m,add,8,8,8,,,,,,,2+1\n\
         m,global_avg_pool,8,8,8,,,,,,,\n\
         m,dense,8,1,1,10,,,,,,\n",
        "model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act,pad,from\n\
         m,conv2d,4,6,6,6,1,1,1,relu,,\n\
         m,batchnorm,6,6,6,,,,,,,\n\
         m,max_pool,6,6,6,,2,2,,,0,\n",
    ];
    let small: Vec<Graph> = tables
        .iter()
        .map(|t| nasc::layers::graph("m", &nasc::layers::parse(t.as_bytes(), "t.csv").unwrap()[0].1, "t.csv").unwrap())
        .collect();
    let weights: Vec<(Vec<u8>, &Graph)> =
        small.iter().map(|g| (nasc::io::weights_to_safetensors(&Weights::random(g, 1).unwrap()).unwrap(), g)).collect();
    let seeds: Vec<Vec<u8>> = weights.iter().map(|(b, _)| b.clone()).collect();
    survive("safetensors", &seeds, mutants(600), |b| {
        let w = nasc::io::parse_weights(b, "w.safetensors").map_err(err)?;
        // Checked against every seed's graph: a mutant names some other graph's tensors.
        for (_, g) in &weights {
            let _ = w.check(g);
        }
        Ok(())
    });
}

#[test]
fn onnx_and_exits_sidecar() {
    // Subnets of the cell space, the early-exit space (exits travel in the sidecar) and FBNet
    // (gates have no ONNX form).
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let graphs: Vec<Graph> = ["nb201:cifar10", "ee-mbv2:cifar10", "fbnet:cifar100"]
        .iter()
        .map(|name| {
            let s = spaces::lookup(name).unwrap();
            s.subnet_of(&s.sample(&mut rng)).unwrap()
        })
        .collect();
    let exports: Vec<(Vec<u8>, nasc::onnx::Sidecar)> =
        graphs.iter().map(|g| nasc::onnx::export(g, &Weights::random(g, 2).unwrap()).unwrap()).collect();
    for (i, (bytes, sidecar)) in exports.iter().enumerate() {
        survive(&format!("ONNX {i}"), std::slice::from_ref(bytes), mutants(400) / exports.len(), |b| {
            let m = nasc::onnx::import(b, "m", sidecar).map_err(err)?;
            price(&m.graph)
        });
    }
    // Sidecars of the models with exits, mutated, against their model.
    let with_exits: Vec<&(Vec<u8>, nasc::onnx::Sidecar)> =
        exports.iter().filter(|(_, s)| !s.exits.is_empty()).collect();
    assert!(!with_exits.is_empty(), "a seed model has exits");
    let (model, sidecar) = with_exits[0];
    let seeds = vec![serde_json::to_vec_pretty(sidecar).unwrap()];
    survive("exits sidecar", &seeds, mutants(400), |b| {
        let s: nasc::onnx::Sidecar = serde_json::from_slice(b).map_err(err)?;
        let m = nasc::onnx::import(model, "m", &s).map_err(err)?;
        price(&m.graph)
    });
}

/// Cases the fuzz targets found, and shapes too large to handle, each with the error a user sees.
mod found {
    use super::common::fails;

    /// A layer table in a temporary directory (kept alive by the first value) and its path.
    fn table_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path.to_str().unwrap().to_string())
    }

    #[test]
    fn npy_header_with_nested_brackets_is_rejected_at_once() {
        // npyz's header parser backtracks exponentially on nested brackets: this 300-byte
        // header, from the `npy` fuzz target, took longer than its 5 s timeout.
        let mut header = b"{'descr': '<f4', ".to_vec();
        header.extend([b'{'; 120]);
        header.extend(b"'fortran_order': False, 'shape': (1, 3, 8, 8), }\n");
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(&header);
        let t = std::time::Instant::now();
        let e = format!("{:#}", nasc::io::parse_npy(&bytes, "x.npy").unwrap_err());
        assert!(e.contains("x.npy") && e.contains("nests brackets"), "{e}");
        assert!(t.elapsed().as_secs_f64() < 0.5, "{:?}", t.elapsed());
    }

    #[test]
    fn tensors_past_two_to_the_31_elements_are_an_error_naming_the_node() {
        // The input alone: 3 × 40000 × 40000 = 4.8e9 elements.
        let (_dir, t) =
            table_file("model,op,in_c,in_h,in_w,out_c,kernel,stride,groups\nm,conv2d,3,40000,40000,8,3,1,1\n");
        let t = t.as_str();
        for cmd in ["show", "run"] {
            let mut args = vec![cmd, "--models", t, "--model-name", "m"];
            if cmd == "run" {
                args.extend(["--random-input", "1"]);
            }
            let e = fails(&args);
            assert!(e.contains("[1, 3, 40000, 40000]") && e.contains("2^31"), "{cmd}: {e}");
        }
        let e = fails(&["cost", "-t", "cortex-a72", "--models", t, "--model-name", "m"]);
        assert!(e.contains("2^31"), "{e}");
        // A kernel whose window overflows is an error too, not a wrap-around.
        let (_dir2, t) = table_file(
            "model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,pad\nm,conv2d,3,8,8,8,1,1,1,9223372036854775807\n",
        );
        let e = fails(&["show", "--models", &t, "--model-name", "m"]);
        assert!(e.contains("too large") || e.contains("2^31"), "{e}");
    }

    #[test]
    fn a_cost_table_whose_offsets_do_not_match_its_options_is_refused() {
        // The first bug the mutants found: `expected` sliced the logits by the file's offsets.
        let m = super::model("cortex-a53");
        let t =
            super::CostTable::build("nb201:cifar10", super::spaces::lookup("nb201:cifar10").unwrap().supernet(), &m)
                .unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        v["offsets"][5] = serde_json::json!(26);
        let e = super::CostTable::from_json(&v.to_string()).unwrap_err();
        assert!(e.contains("cost table: offsets") && e.contains("do not match the options"), "{e}");
        let mut v: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        let g = t.groups.iter().position(|g| !g.scope.is_empty()).unwrap();
        v["groups"][g]["strides"][0] = serde_json::json!(7);
        let e = super::CostTable::from_json(&v.to_string()).unwrap_err();
        assert!(e.contains(&format!("group {g}: strides")), "{e}");
    }

    #[test]
    fn maximal_layers_sum_their_macs_without_overflow() {
        // Five convolutions at the limit (weights and outputs of 46340² elements, each of
        // 4.6e18 MACs) read the input and are added: 2.3e19 MACs, more than u64 holds. Costs
        // and counts saturate rather than overflow (a panic in a debug build).
        let mut text = String::from("model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,pad,from\n");
        for _ in 0..5 {
            text.push_str("m,conv2d,1,46339,46339,1,46340,1,1,23170,0\n");
        }
        text.push_str("m,add,1,46340,46340,,,,,,1+2+3+4+5\n");
        let (_dir, t) = table_file(&text);
        let t = t.as_str();
        let shown = super::common::ok(&["show", "--models", t, "--model-name", "m"]);
        assert!(shown.contains(&format!("{} MACs", u64::MAX)), "{shown}");
        let v = super::common::json(&super::common::ok(&[
            "cost",
            "-t",
            "cortex-a72",
            "--models",
            t,
            "--model-name",
            "m",
            "--json",
        ]));
        assert_eq!(v["macs"].as_u64(), Some(u64::MAX), "{v}");
        assert!(v["latency_ms"].as_f64().unwrap() > 1e9, "{v}");
    }

    #[test]
    fn a_model_needing_more_memory_than_the_machine_has_is_refused_before_running() {
        if !std::path::Path::new("/proc/meminfo").exists() {
            return;
        }
        // Forty activations of 2.1e9 elements (8 GiB each) all live until the last add: 340 GiB.
        let mut text = String::from("model,op,in_c,in_h,in_w,from\nm,relu,1,46000,46000,\n");
        for _ in 1..40 {
            text.push_str("m,sigmoid,1,46000,46000,0\n");
        }
        text.push_str("m,add,1,46000,46000,");
        text.push_str(&(1..=40).map(|i| i.to_string()).collect::<Vec<_>>().join("+"));
        text.push('\n');
        let (_dir, t) = table_file(&text);
        let e = fails(&["run", "--models", &t, "--model-name", "m", "--random-input", "1"]);
        assert!(e.contains("needs") && e.contains("GiB available"), "{e}");
    }
}

/// `nasc expect`'s own files (logits, exit models, gate probabilities), mutated and run through
/// the binary: it succeeds, or fails with exit code 1 and a one-line error.
#[test]
fn expect_files_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let m = model("cortex-a53");
    let table = |name: &str| CostTable::build(name, spaces::lookup(name).unwrap().supernet(), &m).unwrap();
    let (ee, gated) = (table("ee-mbv2:cifar10"), table("skipnet-resnet:cifar10"));
    let logits = |t: &CostTable| -> Vec<Vec<f64>> {
        t.options.iter().map(|o| (0..o.len()).map(|i| i as f64 * 0.5 - 1.0).collect()).collect()
    };
    let as_object = |t: &CostTable| {
        serde_json::Value::Object(
            t.params.iter().cloned().zip(logits(t).into_iter().map(|l| serde_json::json!(l))).collect(),
        )
    };
    let k = ee.exits.len();
    let exits_probabilities = serde_json::json!({ "probabilities": vec![0.3; k] });
    let exits_soft = serde_json::json!({
        "thresholds": vec![0.6; k], "temperature": 0.1, "confidences": vec![vec![0.2, 0.7, 0.9]; k]
    });
    let gates_list = serde_json::json!(vec![0.5; gated.gates.len()]);
    let gates_object =
        serde_json::Value::Object(gated.gates.iter().map(|g| (g.clone(), serde_json::json!(0.25))).collect());
    // (space, flag, seeds): each seed goes in the flag's file; the others stay valid.
    let cases = [
        ("ee-mbv2:cifar10", "--logits", vec![serde_json::json!(logits(&ee)), as_object(&ee)]),
        ("ee-mbv2:cifar10", "--exits", vec![exits_probabilities, exits_soft]),
        ("skipnet-resnet:cifar10", "--gates", vec![gates_list, gates_object]),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let count = mutants(90);
    for (space, flag, seeds) in cases {
        let seeds: Vec<Vec<u8>> = seeds.iter().map(|v| serde_json::to_vec(v).unwrap()).collect();
        let file = dir.path().join("in.json");
        let (mut ok, mut rejected) = (0, 0);
        for i in 0..count {
            let bytes = if i < seeds.len() { seeds[i].clone() } else { mutate(&mut rng, &seeds[i % seeds.len()]) };
            std::fs::write(&file, &bytes).unwrap();
            let f = file.to_str().unwrap();
            let mut args = vec!["expect", "-t", "cortex-a53", "--space", space, "--json", flag, f];
            if flag != "--logits" {
                args.extend(["--logits", "uniform"]);
            }
            let out = common::nasc(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => ok += 1,
                Some(1)
                    if err.starts_with("error: ") && err.trim_end().lines().count() == 1 && out.stdout.is_empty() =>
                {
                    rejected += 1
                }
                code => panic!(
                    "nasc expect {flag} on a mutant: exit {code:?}, stderr {err}\nthe file:\n{}",
                    String::from_utf8_lossy(&bytes)
                ),
            }
            assert!(i >= seeds.len() || out.status.success(), "{flag}: seed {i} fails: {err}");
        }
        eprintln!("nasc expect {flag}: {count} files, {ok} accepted, {rejected} rejected with a one-line error");
        assert!(ok > 0 && rejected > 0, "{flag}: the mutants exercise both paths ({ok} accepted, {rejected} rejected)");
    }
}
