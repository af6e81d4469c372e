//! Layer tables of the public per-network data (issue 7): the ncnn benchmark networks and the
//! Note10 OFA blocks convert into graphs whose MACs match the published counts; `from`/`pad`
//! describe DAGs and segments, and bad references are named; `nasc study tables` writes files
//! that `nasc calibrate --models` takes.

mod common;

use std::path::Path;

use common::{fails, ok};
use nasc::costmodel::{cost, Model};
use nasc::layers;
use nasc::study::segments_cost;

fn data() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data"))
}

fn graph_macs(segs: &[nasc::ir::Graph]) -> f64 {
    segs.iter().map(|g| nasc::ir::stats::totals(g).unwrap().0 as f64).sum()
}

#[test]
fn ncnn_networks_convert_with_their_published_macs() {
    let n = nasc::tables::ncnn(data()).unwrap();
    assert_eq!(n.models.len(), 32, "every network with complete shape hints, 24 f32 and 8 int8");
    let graphs = layers::graphs(&n.models, "ncnn").unwrap();
    let model = Model::new(nasc::targets::lookup("cortex-a72").unwrap()).unwrap();
    for (name, segs) in &graphs {
        // Conv + FC MACs as the dataset counts them (ours add pooling windows).
        let ours: f64 = segs
            .iter()
            .map(|g| {
                let shapes = g.infer_shapes().unwrap();
                g.node_ids()
                    .filter(|&id| matches!(g.node(id).op, nasc::ir::Op::Conv2d(_) | nasc::ir::Op::Dense(_)))
                    .map(|id| {
                        let ins: Vec<&Vec<usize>> = g.inputs(id).iter().map(|i| &shapes[i.index()]).collect();
                        nasc::ir::stats::op_macs(&g.node(id).op, &ins, &shapes[id.index()]) as f64
                    })
                    .sum::<f64>()
            })
            .sum();
        let published = n.macs[name];
        let skipped = n.skipped[name].1;
        let rel = (ours + skipped - published).abs() / published;
        assert!(rel < 0.01, "{name}: {ours} + {skipped} skipped vs {published} published ({rel:.4})");
        let (terms, _) = segments_cost(segs, &model).unwrap();
        assert!(terms.iter().sum::<f64>() > 0.0, "{name}");
    }
    // An `_int8` network is its f32 twin with int8 convolutions: priced faster on an A72
    // (widening multiply-accumulates, byte traffic), its int8 layers in the `int8` and
    // `int8_conv3x3` terms (VGG-16's are all 3×3 stride 1).
    let by_name: std::collections::BTreeMap<&str, &Vec<layers::Layer>> =
        n.models.iter().map(|(m, l)| (m.as_str(), l)).collect();
    for (name, ls) in &by_name {
        let int8 = ls.iter().filter(|l| l.precision == nasc::ir::Precision::Int8).count();
        match name.strip_suffix("_int8") {
            Some(twin) => {
                assert!(int8 > 0 && ls.len() == by_name[twin].len(), "{name}: {int8} int8 layers");
                let (q, _) = segments_cost(&graphs[*name], &model).unwrap();
                let (f, _) = segments_cost(&graphs[twin], &model).unwrap();
                use nasc::costmodel::analytic::term::{INT8, INT8_CONV3X3};
                assert!(q[INT8] + q[INT8_CONV3X3] > 0.0 && f[INT8] + f[INT8_CONV3X3] == 0.0, "{name}");
                let (q, f) = (q.iter().sum::<f64>(), f.iter().sum::<f64>());
                assert!(q < f, "{name}: int8 {q} ms, f32 {f} ms");
            }
            None => assert_eq!(int8, 0, "{name}"),
        }
    }
    // What cannot be expressed is reported, not silently dropped.
    assert!(n.skipped["nanodet_m"].0.contains_key("Interp"));
    assert!(n.skipped["mobilenet_v2"].0.is_empty());
    // Detection heads after a reshape become segments of their own.
    assert!(graphs["mobilenet_ssd"].len() > 1 && graphs["mobilenet_v2"].len() == 1);
    // Each board has single-core rows for most networks. ncnn runs the float layers in half
    // precision on the ARMv8.2 boards (the RK3588's, RK3566's, RK3568's and Snapdragon
    // 855+'s cores), whose models say so: float networks price faster, int8 layers stay int8.
    use nasc::ir::Precision;
    for b in nasc::tables::BOARDS {
        let ms = nasc::tables::board_measurements(data(), b, &n.models).unwrap();
        assert!(ms.len() >= 20, "{}: {}", b.key, ms.len());
        let armv82 = ["rk3588-a76", "rk3588-a55", "rk3566-a55", "sd855-a76", "rk3568-a55"];
        assert_eq!(b.fp16, armv82.contains(&b.key), "{}", b.key);
        let case = nasc::study::Case { dataset: "ncnn", metric: b.key, target: b.target, energy: None };
        let m = nasc::study::case_model(&case).unwrap();
        assert_eq!(m.floats, if b.fp16 { Precision::F16 } else { Precision::F32 }, "{}", b.key);
    }
    let mut half = model.clone();
    half.floats = Precision::F16;
    use nasc::costmodel::analytic::term::{INT8, INT8_CONV3X3};
    for name in ["mobilenet_v2", "resnet18", "vgg16", "vgg16_int8"] {
        let (h, _) = segments_cost(&graphs[name], &half).unwrap();
        let (f, _) = segments_cost(&graphs[name], &model).unwrap();
        assert_eq!(h[INT8] + h[INT8_CONV3X3], f[INT8] + f[INT8_CONV3X3], "{name}");
        let (h, f) = (h.iter().sum::<f64>(), f.iter().sum::<f64>());
        match name.ends_with("_int8") {
            false => assert!(h < 0.8 * f, "{name}: f16 {h} ms, f32 {f} ms"),
            true => assert!(h < f && h > 0.8 * f, "{name}: f16 {h} ms, f32 {f} ms"),
        }
    }
}

#[test]
fn note10_blocks_convert_with_their_published_macs() {
    let (models, ms, macs) = nasc::tables::note10(data()).unwrap();
    assert_eq!((models.len(), ms.len()), (480, 480));
    let graphs = layers::graphs(&models, "note10").unwrap();
    for (name, segs) in &graphs {
        assert_eq!(segs.len(), 1, "{name}");
        let rel = (graph_macs(segs) - macs[name]).abs() / macs[name];
        assert!(rel < 0.01, "{name}: {} vs {}", graph_macs(segs), macs[name]);
    }
    // A block with squeeze-excite and a residual is a DAG: the product reads the depthwise
    // output and the excitation, the sum reads the projection and the block input.
    let se = graphs.keys().find(|k| k.contains("idskip:1-se:1")).unwrap();
    let g = &graphs[se][0];
    let ops: Vec<&str> = g.node_ids().map(|id| g.node(id).op.name()).collect();
    assert!(ops.contains(&"mul") && ops.contains(&"add"), "{ops:?}");
    let add = g.node_ids().find(|&id| g.node(id).op.name() == "add").unwrap();
    assert!(g.inputs(add).contains(&g.input_node().unwrap()));
}

#[test]
fn from_and_pad_describe_dags_segments_and_bad_references() {
    let table = "model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act,pad,from\n\
                 m,conv2d,8,16,16,8,3,1,1,relu,,\n\
                 m,conv2d,8,16,16,8,3,1,8,,,1\n\
                 m,add,8,16,16,,,,,,,2+0\n\
                 m,conv2d,8,16,16,4,5,2,1,,0,\n\
                 m,global_avg_pool,8,16,16,,,,,,,3\n\
                 m,conv2d,16,32,32,8,1,1,1,,,new\n";
    let models = layers::parse(table.as_bytes(), "t.csv").unwrap();
    let segs = layers::segments("m", &models[0].1, "t.csv").unwrap();
    assert_eq!(segs.len(), 2);
    let shapes = segs[0].infer_shapes().unwrap();
    // pad 0 on a 5×5 stride-2 conv: (16 − 5)/2 + 1 = 6.
    assert!(shapes.iter().any(|s| s == &vec![1, 4, 6, 6]), "{shapes:?}");
    // The model costs the sum of its segments.
    let model = Model::new(nasc::targets::lookup("cortex-a72").unwrap()).unwrap();
    let (terms, _) = segments_cost(&segs, &model).unwrap();
    let parts: f64 = segs.iter().map(|g| cost(g, &model).unwrap().terms_ms.iter().sum::<f64>()).sum();
    assert!((terms.iter().sum::<f64>() - parts).abs() < 1e-12);
    // Round trip through the writer.
    let again = layers::parse(layers::write(&models[0].1).as_bytes(), "w.csv").unwrap();
    assert_eq!(again, models);

    let bad = |row: &str| {
        let t =
            format!("model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act,pad,from\nm,relu,8,4,4,,,,,,,\n{row}\n");
        let ms = layers::parse(t.as_bytes(), "b.csv").and_then(|m| layers::segments("m", &m[0].1, "b.csv").map(|_| ()));
        format!("{:#}", ms.unwrap_err())
    };
    let e = bad("m,add,8,4,4,,,,,,,1+3");
    assert!(e.contains("layer 2") && e.contains("from 3") && e.contains("not an earlier layer"), "{e}");
    let e = bad("m,relu,8,4,4,,,,,,,x");
    assert!(e.contains("b.csv:3") && e.contains("from `x`"), "{e}");
    let e = bad("m,concat,8,4,4,,,,,,,1");
    assert!(e.contains("two or more"), "{e}");
    let e = bad("m,relu,8,4,4,,,,,,-1,");
    assert!(e.contains("b.csv:3") && e.contains("pad `-1`"), "{e}");
    let t = "model,op,in_c,in_h,in_w,from\nm,relu,8,4,4,\nm,relu,2,2,2,new\nm,add,2,2,2,1+2\n";
    let e = format!(
        "{:#}",
        layers::segments("m", &layers::parse(t.as_bytes(), "s.csv").unwrap()[0].1, "s.csv").unwrap_err()
    );
    assert!(e.contains("layer 1 is in an earlier segment"), "{e}");
}

#[test]
fn study_tables_feed_calibrate_and_validate() {
    let dir = std::env::temp_dir().join(format!("nasc-tables-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let out = ok(&["study", "tables", "--data", data().to_str().unwrap(), "-o", d]);
    assert!(out.contains("32 ncnn networks") && out.contains("480 Note10 blocks"), "{out}");
    assert!(
        out.contains("(calibrate with --floats f16): rk3588-a76 rk3588-a55 rk3566-a55 sd855-a76 rk3568-a55")
            && out.contains("as Winograd transforms (calibrate with --winograd 2)"),
        "{out}"
    );
    let layers_csv = dir.join("ncnn.layers.csv");
    let pi4 = dir.join("ncnn-pi4-a72.csv");
    let profile = dir.join("pi4.json");
    let calibrate = |extra: &[&str], out: &Path| {
        let args: Vec<String> = ["calibrate", "-t", "cortex-a72", "--measurements", pi4.to_str().unwrap()]
            .into_iter()
            .chain(["--models", layers_csv.to_str().unwrap(), "-o", out.to_str().unwrap()])
            .chain(extra.iter().copied())
            .map(str::to_string)
            .collect();
        args
    };
    ok(&strs(&calibrate(&[], &profile)));
    let v = common::json(&ok(&[
        "validate",
        "-t",
        "cortex-a72",
        "--profile",
        profile.to_str().unwrap(),
        "--measurements",
        pi4.to_str().unwrap(),
        "--models",
        layers_csv.to_str().unwrap(),
        "--json",
    ]));
    let rho = v["spearman"].as_f64().or_else(|| v[0]["spearman"].as_f64()).unwrap();
    assert!(rho > 0.9, "{v}");
    // A board whose ncnn computes floats in half precision, and its 3×3 convolutions as
    // Winograd transforms: the profile records both, and validating with it prices the layers
    // so — as the shipped profile does.
    let a76 = dir.join("ncnn-rk3588-a76.csv");
    let half = dir.join("a76.json");
    let (m, l) = (a76.to_str().unwrap(), layers_csv.to_str().unwrap());
    let h = half.to_str().unwrap();
    let args = ["calibrate", "-t", "cortex-a76", "--measurements", m, "--models", l, "--floats", "f16"];
    ok(&[&args[..], &["--winograd", "2", "-o", h]].concat());
    let written = std::fs::read_to_string(&half).unwrap();
    assert!(written.contains(r#""floats": "f16""#) && written.contains(r#""winograd": 2"#), "{written}");
    let score = |profile: &str| {
        let args = ["validate", "-t", "cortex-a76", "--profile", profile, "--measurements", m, "--models", l, "--json"];
        let v = common::json(&ok(&args));
        v["mape"].as_f64().or_else(|| v[0]["mape"].as_f64()).unwrap()
    };
    let (mine, shipped) = (score(h), score("builtin:cortex-a76/ncnn-rk3588-a76"));
    assert!(mine < 25.0 && (mine - shipped).abs() < 0.5, "MAPE {mine} with the fitted profile, {shipped} shipped");
    let o =
        common::nasc(&["calibrate", "-t", "cortex-a76", "--measurements", m, "--models", l, "--floats", "f8", "-o", h]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(2) && e.contains("invalid value 'f8' for '--floats"), "{e}");
    // A prior from shipped profiles of related boards is recorded in the profile; a prior
    // that cannot be read stops the fit before anything is written.
    let with_prior = dir.join("pi4-prior.json");
    let missing = dir.join("never.json");
    let prior_a53 = ["--prior", "builtin:cortex-a53/ncnn-pi3-a53", "--prior"];
    let args = calibrate(&[&prior_a53[..], &["builtin:cortex-a76/ncnn-rk3588-a76"]].concat(), &with_prior);
    let out = ok(&strs(&args));
    assert!(out.contains("prior from 2 profiles"), "{out}");
    let p = common::json(&std::fs::read_to_string(&with_prior).unwrap());
    let sources = p["prior"].as_array().unwrap();
    assert!(sources.len() == 2 && sources[0].as_str().unwrap().contains("Raspberry Pi 3"), "{p}");
    assert!(p["fit"]["global_scale"].as_f64().unwrap() > 0.0, "{p}");
    let e = fails(&strs(&calibrate(&[&prior_a53[..], &["/nonexistent/prior.json"]].concat(), &missing)));
    assert!(e.contains("/nonexistent/prior.json"), "{e}");
    assert!(!missing.exists());
    let e = fails(&["study", "tables", "--data", "/nonexistent", "-o", d]);
    assert!(e.contains("--data /nonexistent: no such directory"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Borrows owned arguments for `ok` and `fails`.
fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
