//! The dynamic-network spaces: early-exit MobileNetV2, SkipNet, Once-for-All MobileNetV3.

use std::collections::HashMap;

use nasc_ir::stats::node_stats;
use nasc_ir::{spaces, Config, Graph, IrError, Op};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn samples(name: &str, n: u64) -> Vec<(Config, Graph)> {
    let s = spaces::lookup(name).unwrap();
    (0..n)
        .map(|seed| {
            let cfg = s.sample(&mut ChaCha8Rng::seed_from_u64(seed));
            let g = s.subnet_of(&cfg).unwrap();
            (cfg, g)
        })
        .collect()
}

fn output_shape(g: &Graph) -> Vec<usize> {
    let shapes = g.validate().unwrap();
    shapes[g.output_node().unwrap().index()].clone()
}

fn arch_err(name: &str, arch: &str) -> String {
    let e = spaces::lookup(name).unwrap().parse_arch(arch).expect_err("must be rejected");
    assert!(matches!(e, IrError::Arch { .. }), "{e}");
    e.to_string()
}

#[test]
fn families_alone_pick_their_first_variant() {
    assert_eq!(spaces::lookup("ee-mbv2").unwrap().name(), "ee-mbv2:cifar10");
    assert_eq!(spaces::lookup("skipnet-resnet").unwrap().name(), "skipnet-resnet:cifar10");
    assert_eq!(spaces::lookup("ofa-mbv3").unwrap().name(), "ofa-mbv3:w1.2");
    assert!(matches!(spaces::lookup("ofa-mbv3:w1.0"), Err(IrError::UnknownSpace(_))));
}

#[test]
fn ee_mbv2_subnets_have_three_ordered_exits() {
    for (cfg, g) in samples("ee-mbv2:cifar10", 8) {
        assert_eq!(output_shape(&g), vec![1, 10]);
        let names: Vec<&str> = g.exits().iter().map(|&e| g.node(e).name.as_str()).collect();
        assert_eq!(names, ["exit0", "exit1", "exit2"]);
        assert!(g.is_concrete());
        assert_eq!(cfg.choices.len(), 16);
    }
}

#[test]
fn ee_mbv2_blocks_follow_the_arch_string() {
    let s = spaces::lookup("ee-mbv2").unwrap();
    let arch = "k3_e3,k3_e6,k5_e3,k5_e6,k7_e6,k3_e3,k3_e6,k5_e3,k5_e6,k7_e6,k3_e3,k3_e6,k5_e3,k5_e6,k7_e6,k3_e3";
    let g = s.subnet(arch).unwrap();
    assert_eq!(g.meta["arch"], arch);
    let shapes = g.validate().unwrap();
    let dw = g.find("b5.k7_e6.dw").unwrap();
    assert!(matches!(&g.node(dw).op, Op::Conv2d(c) if c.kernel == [7, 7]));
    assert_eq!(shapes[g.find("b5.k7_e6.expand").unwrap().index()], vec![1, 192, 16, 16]);
    assert!(g.find("b5.k3_e3.dw").is_none());
    // 32-ch stage at 16×16, 64 at 8×8, 96 at 8×8, 160 and 320 at 4×4.
    assert_eq!(shapes[g.find("b9.k5_e6.add").unwrap().index()], vec![1, 64, 8, 8]);
    assert_eq!(shapes[g.find("b12.k3_e6.add").unwrap().index()], vec![1, 96, 8, 8]);
    assert_eq!(shapes[g.find("b16.k3_e3.project.bn").unwrap().index()], vec![1, 320, 4, 4]);
    assert_eq!(s.format_arch(&s.parse_arch(arch).unwrap()), arch);
}

#[test]
fn skipnet_subnets_have_sixteen_gates() {
    for (_, g) in samples("skipnet-resnet:cifar10", 8) {
        assert_eq!(output_shape(&g), vec![1, 10]);
        let gates: Vec<&str> = g.gates().iter().map(|&x| g.node(x).name.as_str()).collect();
        assert_eq!(gates.len(), 16);
        assert!(!gates.contains(&"gate6") && !gates.contains(&"gate12"));
        assert_eq!(gates[0], "gate0");
        assert_eq!(gates[15], "gate17");
        // A gate's body excludes its logit head and includes the block's convs.
        let gate = g.find("gate3").unwrap();
        let body = g.gate_body_mask(gate);
        let conv = g.node_ids().find(|&n| g.node(n).name.starts_with("b3.") && g.node(n).name.ends_with("conv1"));
        assert!(body[conv.unwrap().index()]);
        assert!(!body[g.find("gate3.fc").unwrap().index()]);
    }
}

#[test]
fn skipnet_kernels_follow_the_arch_string() {
    let s = spaces::lookup("skipnet-resnet").unwrap();
    let arch = ["k3", "k5"].repeat(9).join(",");
    let g = s.subnet(&arch).unwrap();
    g.validate().unwrap();
    assert!(g.find("b1.k5.conv2").is_some() && g.find("b1.k3.conv2").is_none());
    assert!(g.find("b6.k3.shortcut").is_some());
    assert_eq!(s.format_arch(&s.parse_arch(&arch).unwrap()), arch);
}

const OFA_MAX: &str =
    "ks=7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7;e=6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6;d=4,4,4,4,4;r=224";

fn ofa_arch(k: usize, e: usize, d: [usize; 5], r: usize) -> String {
    let ks = vec![k.to_string(); 20].join(",");
    let es = vec![e.to_string(); 20].join(",");
    let ds = d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    format!("ks={ks};e={es};d={ds};r={r}")
}

#[test]
fn ofa_subnets_validate_at_every_resolution() {
    let s = spaces::lookup("ofa-mbv3").unwrap();
    for r in (128..=224).step_by(16) {
        let g = s.subnet(&ofa_arch(5, 4, [2, 3, 4, 3, 2], r)).unwrap();
        assert_eq!(output_shape(&g), vec![1, 1000]);
        let shapes = g.validate().unwrap();
        assert_eq!(shapes[g.input_node().unwrap().index()], vec![1, 3, r, r]);
        assert_eq!(g.node(g.input_node().unwrap()).name, format!("input.r{r}"));
    }
    for (_, g) in samples("ofa-mbv3:w1.2", 6) {
        assert_eq!(output_shape(&g), vec![1, 1000]);
    }
}

#[test]
fn ofa_depth_changes_the_node_count() {
    let s = spaces::lookup("ofa-mbv3").unwrap();
    let counts: Vec<usize> = [2, 3, 4].iter().map(|&d| s.subnet(&ofa_arch(3, 3, [d; 5], 224)).unwrap().len()).collect();
    assert!(counts[0] < counts[1] && counts[1] < counts[2], "{counts:?}");
    let g = s.subnet(&ofa_arch(3, 3, [2, 4, 3, 4, 2], 224)).unwrap();
    assert!(g.find("s1.b3.project").is_none() && g.find("s1.b2.project").is_some());
    assert!(g.find("s2.b4.project").is_some());
    assert!(g.find("s3.b3.project").is_some() && g.find("s3.b4.project").is_none());
    assert!(g.nodes_where(|op| matches!(op, Op::Choice(_) | Op::Identity)).is_empty());
}

#[test]
fn ofa_arch_strings_round_trip() {
    let s = spaces::lookup("ofa-mbv3").unwrap();
    for arch in [OFA_MAX.to_string(), ofa_arch(3, 3, [2, 2, 2, 2, 2], 128), ofa_arch(5, 4, [2, 3, 4, 3, 2], 176)] {
        let cfg = s.parse_arch(&arch).unwrap();
        assert_eq!(s.format_arch(&cfg), arch);
        assert_eq!(s.subnet(&arch).unwrap().meta["arch"], arch);
    }
    for seed in 0..20 {
        let cfg = s.sample(&mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(s.parse_arch(&s.format_arch(&cfg)).unwrap(), cfg);
    }
}

#[test]
fn bad_arch_strings_name_the_position() {
    let m = arch_err("ee-mbv2", "k3_e3,k3_e6");
    assert!(m.contains("expected 16"), "{m}");
    let bad = ["k3_e3"; 16].iter().enumerate().map(|(i, s)| if i == 4 { "k9_e1" } else { s }).collect::<Vec<_>>();
    let m = arch_err("ee-mbv2", &bad.join(","));
    assert!(m.contains("entry 5") && m.contains("`b5`") && m.contains("k9_e1"), "{m}");
    let m = arch_err("skipnet-resnet", &["k3"; 17].join(","));
    assert!(m.contains("expected 18"), "{m}");
    let m = arch_err("skipnet-resnet", &format!("{},k4", ["k3"; 17].join(",")));
    assert!(m.contains("entry 18") && m.contains("`k4`"), "{m}");
    let m = arch_err("ofa-mbv3", &OFA_MAX.replacen("7,7,7,7,7", "7,7,7,7,9", 1));
    assert!(m.contains("`ks` entry 5 is `9`"), "{m}");
    let m = arch_err("ofa-mbv3", &OFA_MAX.replace("e=6,6,6,", "e=6,6,2,"));
    assert!(m.contains("`e` entry 3 is `2`"), "{m}");
    let m = arch_err("ofa-mbv3", &OFA_MAX.replace("d=4,4,4,4,4", "d=4,4,4,4"));
    assert!(m.contains("`d` has 4 values, expected 5"), "{m}");
    let m = arch_err("ofa-mbv3", &OFA_MAX.replace("r=224", "r=200"));
    assert!(m.contains("`r` entry 1 is `200`"), "{m}");
    let m = arch_err("ofa-mbv3", &OFA_MAX.replace("r=224", "res=224"));
    assert!(m.contains("part 4") && m.contains("`r=`"), "{m}");
    let m = arch_err("ofa-mbv3", "ks=3");
    assert!(m.contains("expected 4"), "{m}");
}

/// LUT MACs per key at one resolution: the sum of the layers' MACs, the squeeze-excite product
/// excepted (the table counts it, nasc counts elementwise products as zero).
fn lut_macs(resolution: usize) -> HashMap<String, u64> {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/ofa_note10_lut_layers.jsonl"));
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["resolution"].as_u64() != Some(resolution as u64) {
            continue;
        }
        let macs = v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["op"] != "mul_broadcast")
            .map(|l| l["macs"].as_u64().unwrap())
            .sum();
        out.insert(v["lut_key"].as_str().unwrap().to_string(), macs);
    }
    out
}

#[test]
fn ofa_blocks_match_the_note10_lut() {
    let s = spaces::lookup("ofa-mbv3").unwrap();
    let mut checked = 0;
    for (i, r) in [160usize, 176, 192, 208, 224].into_iter().enumerate() {
        let lut = lut_macs(r);
        let archs = [ofa_arch([3, 5, 7][i % 3], [3, 4, 6][i % 3], [4, 3, 2, 4, 3], r), ofa_arch(7, 6, [4; 5], r)];
        for arch in archs {
            let cfg = s.parse_arch(&arch).unwrap();
            let g = s.subnet_of(&cfg).unwrap();
            let stats = node_stats(&g).unwrap();
            let sum = |pred: &dyn Fn(&str) -> bool| -> u64 {
                g.node_ids().filter(|&n| pred(&g.node(n).name)).map(|n| stats[n.index()].macs).sum()
            };
            let shape = |name: &str| stats[g.find(name).unwrap().index()].shape.clone();
            let mut expect = |key: String, macs: u64| {
                let want = *lut.get(&key).unwrap_or_else(|| panic!("no LUT row `{key}` at {r}"));
                assert_eq!(macs, want, "{key}");
                checked += 1;
            };
            let h1 = r / 2;
            expect(format!("Conv-input:{r}x{r}x3-output:{h1}x{h1}x24"), sum(&|n| n == "first_conv"));
            expect(
                format!("expanded_conv-input:{h1}x{h1}x24-output:{h1}x{h1}x24-expand:24-kernel:3-stride:1-idskip:1-se:0-hs:0"),
                sum(&|n| n.starts_with("first_block.")),
            );
            let mut hw = h1;
            let mut cin = 24;
            let ds = [4, 3, 2, 4, 3];
            for (si, &(c, stride, hs, se)) in nasc_ir::spaces::ofa_mbv3::STAGES.iter().enumerate() {
                let depth = if arch.contains("d=4,4,4,4,4") { 4 } else { ds[si] };
                for b in 1..=depth {
                    let p = format!("s{}.b{}", si + 1, b);
                    let k = [3, 5, 7][cfg.choices[&format!("{p}.k")]];
                    let e = [3, 4, 6][cfg.choices[&format!("{p}.e")]];
                    let st = if b == 1 { stride } else { 1 };
                    let ho = (hw - 1) / st + 1;
                    let out = shape(&format!("{p}.project.bn"));
                    assert_eq!(out, vec![1, c, ho, ho], "{p} at {r}");
                    let idskip = u8::from(st == 1 && cin == c);
                    let key = format!(
                        "expanded_conv-input:{hw}x{hw}x{cin}-output:{ho}x{ho}x{c}-expand:{}-kernel:{k}-stride:{st}-idskip:{idskip}-se:{}-hs:{}",
                        cin * e,
                        u8::from(se),
                        u8::from(hs)
                    );
                    let prefix = format!("{p}.");
                    expect(key, sum(&|n| n.starts_with(&prefix)));
                    hw = ho;
                    cin = c;
                }
            }
            expect(format!("Conv_1-input:{hw}x{hw}x192-output:{hw}x{hw}x1152"), sum(&|n| n == "final_expand"));
            expect(format!("AvgPool2D-input:{hw}x{hw}x1152-output:1x1x1152"), sum(&|n| n == "gap"));
            expect("Conv_2-input:1x1x1152-output:1x1x1536".into(), sum(&|n| n == "feature_mix"));
            expect("Logits-input:1x1x1536-output:1000".into(), sum(&|n| n == "classifier"));
        }
    }
    assert!(checked > 100, "{checked}");
}
