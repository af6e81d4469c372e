//! Layer tables and the host closed loop: `nasc measure` times generated kernels, `nasc
//! calibrate --models` fits the host model to them, `nasc validate --models` scores it, and
//! `nasc bench predict` compiles and times random subnets against the prediction.

mod common;

use common::{fails, json, ok};

const TABLE: &str = "model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act
block,conv2d,16,32,32,64,1,1,1,relu6
block,conv2d,64,32,32,64,3,2,64,relu6
block,conv2d,64,16,16,24,1,1,1,
head,global_avg_pool,24,16,16,,,,,
head,dense,24,1,1,10,,,,
pool,avg_pool,8,8,8,,3,1,,
pool,add,8,8,8,,,,,
";

#[test]
fn layer_tables_describe_models_and_bad_rows_are_named() {
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).to_str().unwrap().to_string();
    std::fs::write(p("l.csv"), TABLE).unwrap();
    std::fs::write(p("m.csv"), "model,latency_ms\nblock,0.5\nhead,0.01\npool,0.02\n").unwrap();
    // `nasc validate` of the three kernels, with more flags.
    let (m, l) = (p("m.csv"), p("l.csv"));
    let validate = |more: &[&str]| {
        ok(&[&["validate", "-t", "cortex-a72", "--measurements", m.as_str(), "--models", l.as_str()], more].concat())
    };
    let v = validate(&["--json", "--plot", &p("scatter.svg")]);
    assert_eq!(json(&v)["rows"], 3);
    let svg = std::fs::read_to_string(p("scatter.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<circle").count() == 3 && svg.contains("Spearman"), "{svg}");
    // The same plot as PNG: a 720×640 RGB image with the points drawn in blue over white.
    validate(&["--plot", &p("s.png")]);
    let png = image::open(p("s.png")).unwrap().to_rgb8();
    assert_eq!(png.dimensions(), (720, 640));
    let blue = png.pixels().filter(|px| px[2] > 200 && px[0] < 200 && px[1] < 200).count();
    assert!(blue > 20, "{blue} blue pixels");
    // `nasc plot` draws the same scatter from the rows `--rows-out` writes, pricing nothing.
    validate(&["--rows-out", &p("rows.csv")]);
    let out = ok(&["plot", &p("rows.csv"), "-o", &p("again.svg"), "--title", "three kernels"]);
    assert!(out.starts_with("3 rows, Spearman ") && out.contains("wrote"), "{out}");
    let again = std::fs::read_to_string(p("again.svg")).unwrap();
    assert!(again.matches("<circle").count() == 3 && again.contains("three kernels: 3 rows, Spearman"), "{again}");
    // Its columns can be any two; a missing one or a bad value is named, and nothing is written.
    std::fs::write(p("r2.csv"), "net,measured_mj,predicted_mj\na,1.5,1.4\nb,2,2.4\n").unwrap();
    ok(&["plot", &p("r2.csv"), "-o", &p("r2.png"), "--measured", "measured_mj", "--predicted", "predicted_mj"]);
    assert_eq!(image::open(p("r2.png")).unwrap().to_rgb8().dimensions(), (720, 640));
    let e = fails(&["plot", &p("r2.csv"), "-o", &p("r3.svg")]);
    assert!(e.contains("r2.csv: no column `measured_ms` (columns: net, measured_mj, predicted_mj)"), "{e}");
    std::fs::write(p("r4.csv"), "arch,measured_ms,predicted_ms\na,1,2\nb,-1,2\n").unwrap();
    let e = fails(&["plot", &p("r4.csv"), "-o", &p("r4.svg")]);
    assert!(e.contains("r4.csv:3: measured_ms `-1` is not a positive number"), "{e}");
    assert!(!std::path::Path::new(&p("r3.svg")).exists() && !std::path::Path::new(&p("r4.svg")).exists());
    // Any other extension is refused before the work, and nothing is written.
    let e =
        fails(&["validate", "-t", "cortex-a72", "--dataset", "nb201", "--metric", "fpga_ms", "--plot", &p("x.jpg")]);
    assert!(e.contains("x.jpg: the plot's format comes from its extension"), "{e}");
    assert!(!std::path::Path::new(&p("x.jpg")).exists());
    // A bad table fails validation with its error.
    let bad = |table: String| {
        std::fs::write(p("bad.csv"), table).unwrap();
        fails(&["validate", "-t", "cortex-a72", "--measurements", &p("m.csv"), "--models", &p("bad.csv")])
    };
    // A layer whose input does not match what the chain produces there.
    let e = bad(TABLE.replace("block,conv2d,64,16,16,24", "block,conv2d,64,8,8,24"));
    assert!(e.contains("model `block`, layer 3") && e.contains("[64, 8, 8]") && e.contains("[64, 16, 16]"), "{e}");
    let e = bad(TABLE.replace("pool,add", "pool,conv3d"));
    assert!(e.contains("unknown op `conv3d`"), "{e}");
    let e = bad(TABLE.replace("block,conv2d,16,32,32,64,1", "block,conv2d,16,32,32,-4,1"));
    assert!(e.contains("bad.csv:2: out_c `-4` is not a positive integer"), "{e}");
    // `dtype`: int8 convolutions price at the target's int8 throughput; a bad value, or int8 on
    // a layer that is not a conv or dense, is named.
    let int8 = TABLE
        .replace(
            "model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act",
            "model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act,pad,from,dtype",
        )
        .replace("block,conv2d,16,32,32,64,1,1,1,relu6", "block,conv2d,16,32,32,64,1,1,1,relu6,,,int8")
        .replace("block,conv2d,64,16,16,24,1,1,1,", "block,conv2d,64,16,16,24,1,1,1,,,,int8");
    std::fs::write(p("q.csv"), &int8).unwrap();
    let pred = |table: &str| {
        ok(&[
            "validate",
            "-t",
            "cortex-a72",
            "--measurements",
            &p("m.csv"),
            "--models",
            &p(table),
            "--rows-out",
            &p("rows.csv"),
        ]);
        let rows = std::fs::read_to_string(p("rows.csv")).unwrap();
        assert!(rows.starts_with("arch,measured_ms,predicted_ms,error_pct\nblock,0.5,"), "{rows}");
        rows.lines().nth(1).unwrap().split(',').nth(2).unwrap().parse::<f64>().unwrap()
    };
    // `f16` on any layer: the runtime computes and stores it in half precision.
    let half = int8.replace(",int8", ",f16").replace("64,3,2,64,relu6", "64,3,2,64,relu6,,,f16");
    std::fs::write(p("h.csv"), half).unwrap();
    let (f32_ms, int8_ms, f16_ms) = (pred("l.csv"), pred("q.csv"), pred("h.csv"));
    assert!(int8_ms < 0.8 * f32_ms, "int8 block {int8_ms} ms, f32 {f32_ms} ms");
    assert!(f16_ms < 0.8 * f32_ms, "f16 block {f16_ms} ms, f32 {f32_ms} ms");
    let e = bad(int8.replace("relu6,,,int8", "relu6,,,fp8"));
    assert!(e.contains("bad.csv:2: dtype `fp8` is not f32, f16 or int8"), "{e}");
    let e = bad(int8.replace("pool,add,8,8,8,,,,,", "pool,add,8,8,8,,,,,,,,int8"));
    assert!(e.contains("model `pool`, layer 2: dtype int8 applies to conv2d and dense layers, not add"), "{e}");
    let e = bad(TABLE.replace("pool,add,8,8,8,,,,,", "pool,add,8,8,8,,,,,,"));
    assert!(e.contains("bad.csv:8: 11 fields, the header names 10"), "{e}");
    // A measurement of a model the table does not have.
    std::fs::write(p("m2.csv"), "model,latency_ms\nblock,0.5\nnope,1.0\n").unwrap();
    let e = fails(&[
        "calibrate",
        "-t",
        "host",
        "--measurements",
        &p("m2.csv"),
        "--models",
        &p("l.csv"),
        "-o",
        &p("x.json"),
    ]);
    assert!(e.contains("m2.csv:3: model `nope` is not in the layer table"), "{e}");
    assert!(!std::path::Path::new(&p("x.json")).exists(), "nothing written on failure");
    // --space and --models together are refused.
    let o = common::nasc(&[
        "calibrate",
        "-t",
        "host",
        "--measurements",
        &p("m.csv"),
        "--models",
        &p("l.csv"),
        "--space",
        "nb201:cifar10",
        "-o",
        &p("x.json"),
    ]);
    assert!(!o.status.success());
}

#[test]
fn measure_calibrate_and_predict_on_the_host() {
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).to_str().unwrap().to_string();
    let out =
        ok(&["measure", "--quick", "--warmup", "1", "--repeats", "3", "-o", &p("m.csv"), "--layers", &p("l.csv")]);
    assert!(out.contains("measured 21 kernels"), "{out}");
    let m = std::fs::read_to_string(p("m.csv")).unwrap();
    assert_eq!(m.lines().count(), 22, "{m}");
    for line in m.lines().skip(1) {
        let ms: f64 = line.split(',').nth(1).unwrap().parse().unwrap();
        assert!(ms > 0.0 && ms < 1000.0, "{line}");
    }
    let cal =
        ok(&["calibrate", "-t", "host", "--measurements", &p("m.csv"), "--models", &p("l.csv"), "-o", &p("host.json")]);
    assert!(cal.contains("21 measurements"), "{cal}");
    let raw = json(&ok(&["validate", "-t", "host", "--measurements", &p("m.csv"), "--models", &p("l.csv"), "--json"]));
    let fitted = json(&ok(&[
        "validate",
        "-t",
        "host",
        "--profile",
        &p("host.json"),
        "--measurements",
        &p("m.csv"),
        "--models",
        &p("l.csv"),
        "--json",
    ]));
    eprintln!("kernels on this machine: uncalibrated {raw}, calibrated {fitted}");
    // The fit minimises relative error on these very rows.
    assert!(fitted["mape"].as_f64().unwrap() < raw["mape"].as_f64().unwrap(), "{raw} vs {fitted}");
    // The closed loop on two compiled subnets: runs, writes what it measured.
    let pred = ok(&[
        "bench",
        "predict",
        "--space",
        "nb201:cifar10",
        "--count",
        "2",
        "--warmup",
        "1",
        "--repeats",
        "3",
        "--rounds",
        "2",
        "--profile",
        &p("host.json"),
        "--measurements-out",
        &p("pred.csv"),
        "--rows-out",
        &p("pred.rows.csv"),
        "--plot",
        &p("pred.svg"),
    ]);
    // The rows and the plot of the same two subnets: what `nasc plot` draws again.
    let rows = std::fs::read_to_string(p("pred.rows.csv")).unwrap();
    assert!(rows.starts_with("arch,measured_ms,predicted_ms,error_pct\n") && rows.lines().count() == 3, "{rows}");
    let svg = std::fs::read_to_string(p("pred.svg")).unwrap();
    assert!(svg.matches("<circle").count() == 2 && svg.contains("nb201:cifar10 on this machine vs host"), "{svg}");
    assert!(ok(&["plot", &p("pred.rows.csv"), "-o", &p("again.png")]).starts_with("2 rows"));
    assert!(pred.contains("2 subnets of nb201:cifar10 compiled and timed here"), "{pred}");
    assert!(pred.contains("fastest of 2 rounds; slowest round over fastest: median "), "{pred}");
    let e = fails(&["bench", "predict", "--space", "nb201:cifar10", "--rounds", "0"]);
    assert!(e.contains("--rounds must be at least 1"), "{e}");
    assert_eq!(std::fs::read_to_string(p("pred.csv")).unwrap().lines().count(), 3);
    // Bad options stop it before any work: the error is the only thing on stderr (no
    // progress bar before it), nothing is written.
    let e = fails(&["measure", "--quick", "--repeats", "0", "-o", &p("n.csv"), "--layers", &p("n2.csv")]);
    assert!(e.contains("--repeats must be at least 1") && !std::path::Path::new(&p("n.csv")).exists(), "{e}");
    let e = fails(&["measure", "-t", "cortex-a72", "-o", &p("n.csv"), "--layers", &p("n2.csv")]);
    assert!(e.contains("only `host` can be measured"), "{e}");
}
