//! End-to-end tests of `nasc expect`: file formats, gradients as arrays of arrays, and bad
//! inputs refused with one-line errors.

mod common;
use common::{fails, json, ok};

fn okj(args: &[&str]) -> serde_json::Value {
    json(&ok(args))
}

#[test]
fn expect_prints_value_and_gradient_arrays() {
    let d = tempfile::tempdir().unwrap();
    let v = okj(&["expect", "-t", "cortex-a72", "--space", "fbnet:cifar100", "--logits", "uniform", "--json"]);
    let g = v["grad_logits"].as_array().unwrap();
    assert_eq!(g.len(), 22);
    assert!(g.iter().all(|r| r.as_array().unwrap().len() == 9));
    let p = v["probabilities"][0].as_array().unwrap();
    assert!(p.iter().all(|x| (x.as_f64().unwrap() - 1.0 / 9.0).abs() < 1e-12));
    // Uniform logits give the mean over all subnets; the gradient of a uniform softmax sums to 0.
    let row: f64 = g[3].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).sum();
    assert!(row.abs() < 1e-9);

    // Object form, naming parameters; moving mass to skip lowers the expected latency.
    let mut obj = serde_json::Map::new();
    for (i, name) in v["params"].as_array().unwrap().iter().enumerate() {
        let mut r = vec![0.0; 9];
        if i % 2 == 0 {
            r[8] = 3.0;
        }
        obj.insert(name.as_str().unwrap().to_string(), serde_json::json!(r));
    }
    let path = d.path().join("logits.json");
    std::fs::write(&path, serde_json::Value::Object(obj).to_string()).unwrap();
    let table = d.path().join("table.json");
    let w = okj(&[
        "expect",
        "-t",
        "cortex-a72",
        "--space",
        "fbnet:cifar100",
        "--logits",
        path.to_str().unwrap(),
        "--objective",
        "hinge:5,2",
        "--table-out",
        table.to_str().unwrap(),
        "--json",
    ]);
    assert!(w["latency_ms"].as_f64().unwrap() < v["latency_ms"].as_f64().unwrap());
    let lat = w["latency_ms"].as_f64().unwrap();
    assert!((w["value"].as_f64().unwrap() - 2.0 * (lat - 5.0).max(0.0)).abs() < 1e-9);
    let t = nasc::costmodel::table::CostTable::from_json(&std::fs::read_to_string(&table).unwrap()).unwrap();
    assert_eq!(t.params.len(), 22);

    // Exits and gates.
    let ex = d.path().join("exits.json");
    std::fs::write(&ex, r#"{"probabilities": [0.5, 0.5, 0.5]}"#).unwrap();
    let e = okj(&[
        "expect",
        "-t",
        "eyeriss",
        "--space",
        "ee-mbv2:cifar10",
        "--logits",
        "uniform",
        "--exits",
        ex.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(e["grad_exits"].as_array().unwrap().len(), 3);
    assert!(e["grad_exits"].as_array().unwrap().iter().all(|x| x.as_f64().unwrap() < 0.0), "exiting more is cheaper");
    let gt = d.path().join("gates.json");
    std::fs::write(&gt, serde_json::json!(vec![0.5; 16]).to_string()).unwrap();
    let s = okj(&[
        "expect",
        "-t",
        "cortex-a72",
        "--space",
        "skipnet-resnet",
        "--logits",
        "uniform",
        "--gates",
        gt.to_str().unwrap(),
        "--relax",
        "gumbel:3",
        "--json",
    ]);
    assert!(s["grad_gates"].as_array().unwrap().iter().all(|x| x.as_f64().unwrap() > 0.0));
}

#[test]
fn expect_refuses_bad_inputs() {
    let d = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let base = ["expect", "-t", "cortex-a72", "--space", "nb201:cifar10", "--logits"];
    let run = |file: &str, extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.push(file);
        a.extend_from_slice(extra);
        fails(&a)
    };
    assert!(run(&w("rows.json", "[[0,0,0,0,0]]"), &[]).contains("6 parameters"));
    assert!(run(&w("len.json", &serde_json::json!(vec![vec![0.0; 4]; 6]).to_string()), &[]).contains("has 5 options"));
    assert!(run(&w("name.json", r#"{"9<-9": [0,0,0,0,0]}"#), &[]).contains("`9<-9` is not a parameter"));
    assert!(run(&w("text.json", "not json"), &[]).contains("not JSON"));
    assert!(run(&w("num.json", r#"[["a",0,0,0,0],[0,0,0,0,0],[0,0,0,0,0],[0,0,0,0,0],[0,0,0,0,0],[0,0,0,0,0]]"#), &[])
        .contains("not a number"));
    assert!(run("uniform", &["--objective", "hinge"]).contains("2 number"));
    assert!(run("uniform", &["--relax", "gumbel:x"]).contains("not a seed"));
    assert!(run("uniform", &["--tau", "0"]).contains("τ"));
    assert!(run("uniform", &["--objective", "proxyless-log:0.5,1"]).contains("above 1 ms"));
    assert!(run(&d.path().join("absent.json").to_string_lossy(), &[]).contains("cannot read"));
}
