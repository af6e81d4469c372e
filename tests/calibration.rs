//! Few-shot calibration on the public data (issue 7): with 20 architectures drawn on a fixed
//! seed, the calibrated model scored on all the other rows stays above floors set from what it
//! measured when this was written (`nasc study fewshot` prints the full study), and the CLI
//! calibrates, validates and applies profiles.

mod common;

use std::path::Path;

use common::{fails, ok};
use nasc::study::{run_case, Case};

fn data() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data"))
}

/// (case, Spearman floor, ±10 % floor), scored as the mean over 2 draws.
const FLOORS: &[(Case, f64, f64)] = &[
    (Case { dataset: "nb201", metric: "raspi4_ms", target: "cortex-a72", energy: None }, 0.905, 0.35),
    (Case { dataset: "nb201", metric: "eyeriss_ms", target: "eyeriss", energy: None }, 0.99, 0.95),
    (Case { dataset: "nb201", metric: "fpga_ms", target: "fpga-zc706", energy: None }, 0.99, 0.95),
    // 0.946 and 93.9 % over 5 draws before the A72's exposed memory time (`exposed_memory`);
    // 0.979 and 99.8 % (worst draw 0.973, 99.6 %) after. Priced as sums of blocks each timed on
    // its own, weights cached in the L2 when they fit and streamed from DRAM when not
    // (`Scope::IsolatedBlocks`): 0.985 and 99.9 % (worst 0.980, 99.7 %); 0.984 and 99.9 % on
    // these 2 draws.
    (Case { dataset: "fbnet-cifar100", metric: "raspi4_latency", target: "cortex-a72", energy: None }, 0.98, 0.995),
    (Case { dataset: "fbnet-cifar100", metric: "eyeriss_latency", target: "eyeriss", energy: None }, 0.99, 0.99),
    // Priced over the ConvBlocks the FPGA column counts (`validate::Scope`): 0.999 and 100 %
    // over 5 draws (0.995 and 98.5 % on CIFAR-100, 97.8 % on ImageNet, over whole networks).
    (Case { dataset: "fbnet-cifar100", metric: "fpga_latency", target: "fpga-zc706", energy: None }, 0.998, 0.99),
    (Case { dataset: "fbnet-imagenet", metric: "fpga_latency", target: "fpga-zc706", energy: None }, 0.998, 0.99),
    // 0.985 and 99.5 % over 5 draws when a stride-2 1×1 convolution read its whole input;
    // 0.987 and 99.8 % (worst draw 0.984, 99.7 %) reading the quarter under its taps; 0.987
    // and 99.9 % (worst 0.985, 99.8 %) priced as isolated blocks; 0.986 and 99.9 % on these 2.
    (Case { dataset: "fbnet-imagenet", metric: "raspi4_latency", target: "cortex-a72", energy: None }, 0.98, 0.995),
    (Case { dataset: "fbnet-imagenet", metric: "eyeriss_latency", target: "eyeriss", energy: None }, 0.99, 0.99),
    // 0.997 and 96.2 % on these 2 draws when set: the 95 % goal for table data (92.9 % before
    // the A76's per-tap depthwise overhead; 92.1 % before its pooling and DRAM figures were fitted
    // to this table's global pools and classifier; 89.8 % over 5 draws before its elementwise
    // throughput was lowered).
    (Case { dataset: "ofa-note10", metric: "mean_ms", target: "cortex-a76", energy: None }, 0.995, 0.95),
    // 0.632 on these 2 draws since the fit's floor on every coefficient (0.670 → 0.629 over 5).
    // Priced as sums of isolated blocks, each paying its engine's round trip
    // (`Scope::IsolatedBlocks`): 0.599 and 83.0 % on these 2 draws, a low pair; over 20 draws
    // ρ 0.619 → 0.647 (worst 0.349 → 0.472), ±10 % 83.8 → 86.5 %; ImageNet 0.840 → 0.845,
    // 96.2 → 97.4 %. With a kernel launch per channel shuffle: 0.742 and 90.8 % on these 2
    // (ImageNet 0.833 and 97.0 %); over 20 draws 0.728 (worst 0.680), 90.9 %; ImageNet 0.851,
    // 97.8 %. With compute and DRAM traffic adding up (`double_buffered = false`): 0.881 and
    // 98.4 % on these 2 (ImageNet 0.965 and 100 %); over 20 draws 0.869 (worst 0.831), 98.1 %;
    // ImageNet 0.960 (worst 0.944), 100 %. With depthwise layers at 0.3 of the array's rate
    // (`depthwise_efficiency`) and 2-group convolutions priced as dense (`grouped_as_dense`):
    // 0.886 and 98.8 % on these 2 (ImageNet 0.968 and 100 %); over 20 draws 0.876, 98.5 %;
    // ImageNet 0.963, 100 %.
    (Case { dataset: "fbnet-cifar100", metric: "edgegpu_latency", target: "jetson-tx2", energy: None }, 0.87, 0.975),
    (Case { dataset: "fbnet-imagenet", metric: "edgegpu_latency", target: "jetson-tx2", energy: None }, 0.96, 0.99),
];

/// ncnn boards (26–32 networks, f32 and int8; 6–12 held out per draw): (board, target, pooled Spearman floor
/// over 5 draws, pooled MAPE ceiling %), from what they measured when this was written. (Pricing
/// weights that no cache holds once from DRAM, not twice, raised every board's uncalibrated ρ
/// and took the Pi 3's pooled MAPE from 12.6 to 14.8 % and the SG2000's from 36.6 to 40.3 %;
/// the int8 3×3 term of its own took ρ (MAPE %) to: Pi 4 0.973 (20.6), RK3588 A76 0.967
/// (32.9, from 30.3), RK3588 A55 0.933 (30.7), RK3566 0.942 (28.6), Pi 3 0.983 (10.7), UNO Q
/// 0.979 (18.8), SG2000 0.923 (43.5, from 0.937 and 40.3): the ceilings moved with them.
/// Pricing the float layers in half precision on the three ARMv8.2 boards, as their ncnn runs
/// them, took the A76 to 0.962 (32.3), the RK3588 A55 to 0.938 (30.5) and the RK3566 to 0.961
/// (27.4). Pricing 3×3 convolutions as Winograd only when their channels fill whole vectors
/// took the A76 to 0.949 (30.3), the RK3588 A55 to 0.948 (30.6), the RK3566 to 0.963 (22.3)
/// and the Snapdragon 855+ to 0.970 (17.4); at 20 draws the A76 moved 0.945 → 0.944.
/// Reading a cached kernel's weights only from DRAM, not from the cache level too, moved
/// the Snapdragon 855+ to 0.972 (15.9) and the rest by at most 0.002. Lowering the A76's
/// elementwise throughput from 4 to 1 per cycle took the Snapdragon 855+ to 0.969 (16.3) and
/// the RK3588 A76 to 0.948 (29.0); fitting its pooling and DRAM figures to the Note10 table,
/// to 0.971 (16.4) and 0.947 (27.4). Keeping every coefficient at a quarter of the global
/// scale or more (`calibrate::FLOOR`): Pi 4 0.971 (21.1), RK3588 A76 0.957 (26.8), RK3588
/// A55 0.949 (30.5), RK3566 0.968 (21.0), Pi 3 0.979 (9.9), UNO Q 0.977 (14.5), Snapdragon
/// 855+ 0.970 (16.2), RK3568 0.972 (22.7), Pi Zero 2 0.980 (8.9), RK3228H 0.962 (11.4),
/// SG2000 0.918 (32.9). The A76's per-tap depthwise overhead: RK3588 A76 0.959 (26.1),
/// Snapdragon 855+ 0.973 (16.6). The A72's exposed memory time: Pi 4 0.974 (20.2). ncnn's
/// 3×3 convolutions priced as Winograd F(2,3) (`study::NCNN_WINOGRAD`): Pi 4 0.978 (16.1),
/// RK3588 A76 0.978 (18.6), RK3588 A55 0.944 (26.3), RK3566 0.967 (22.0), Pi 3 0.982 (8.7),
/// UNO Q 0.978 (15.2), Snapdragon 855+ 0.974 (14.5), RK3568 0.973 (23.2), Pi Zero 2 0.977
/// (8.6), RK3228H 0.960 (11.5), SG2000 0.911 (29.0); over 20 draws every board but one rose
/// and that one tied.)
const BOARD_FLOORS: &[(&str, &str, f64, f64)] = &[
    ("pi4-a72", "cortex-a72", 0.96, 18.0),
    ("rk3588-a76", "cortex-a76", 0.97, 21.0),
    ("rk3588-a55", "cortex-a53", 0.94, 33.0),
    ("rk3566-a55", "cortex-a53", 0.955, 25.0),
    ("pi3-a53", "cortex-a53", 0.97, 12.5),
    ("unoq-a53", "cortex-a53", 0.965, 21.0),
    // Added with their measured values: 0.954 (21.9 MAPE), 0.973 (24.9), 0.971 (9.6), 0.963 (11.6).
    ("sd855-a76", "cortex-a76", 0.96, 20.0),
    ("rk3568-a55", "cortex-a53", 0.96, 27.5),
    ("pizero2-a53", "cortex-a53", 0.96, 11.5),
    ("rk3228h-a53", "cortex-a53", 0.95, 13.5),
    ("sg2000-c906", "c906", 0.905, 33.0),
];

/// The same draws with the transfer prior from the other ARM boards that compute floats in
/// the same precision (fitted on the board's target): pooled held-out ρ floor and MAPE ceiling.
/// Measured when set, with four sources each (ρ, MAPE %): Pi 4 0.984, 14.4; RK3588 A76 0.979,
/// 14.6; RK3588 A55 0.977, 13.7; RK3566 0.973, 16.2; Pi 3 0.989, 9.3; UNO Q 0.990, 12.1;
/// Snapdragon 855+ 0.953, 15.9; RK3568 0.971, 18.8; Pi Zero 2 0.981, 8.4; RK3228H 0.975, 10.7.
/// (With two sources, before the last four boards were added: 0.986, 15.3; 0.979, 15.2;
/// 0.955, 17.1; 0.975, 16.1; 0.990, 8.0; 0.995, 11.0. Before the half-precision pricing,
/// with every other ARM board as a source: 0.977, 16.5; 0.953, 22.2; 0.955, 21.6; 0.967,
/// 20.4; 0.992, 7.5; 0.979, 16.8.) Pricing 3×3 convolutions as Winograd only when their
/// channels fill whole vectors: 0.988, 11.6; 0.978, 14.1; 0.975, 15.2; 0.977, 16.8; 0.989,
/// 7.9; 0.990, 9.0; 0.972, 13.5; 0.981, 16.8; 0.982, 7.4; 0.969, 10.4 (weights read only
/// from DRAM: the Snapdragon 855+ 0.971, 13.1; the rest within 0.001; the A76's elementwise
/// throughput lowered: the RK3588 A76 0.978, 13.9, the Snapdragon 855+ 0.966, 13.8).
const TRANSFER_FLOORS: &[(&str, f64, f64)] = &[
    ("pi4-a72", 0.975, 17.0),
    ("rk3588-a76", 0.97, 17.0),
    ("rk3588-a55", 0.965, 16.0),
    ("rk3566-a55", 0.965, 18.5),
    ("pi3-a53", 0.98, 10.5),
    ("unoq-a53", 0.98, 14.0),
    ("sd855-a76", 0.96, 16.0),
    ("rk3568-a55", 0.97, 19.0),
    ("pizero2-a53", 0.97, 10.0),
    ("rk3228h-a53", 0.965, 12.5),
];

#[test]
fn few_shot_calibration_on_ncnn_boards_stays_above_floors() {
    for &(board, target, rho_floor, mape_ceiling) in BOARD_FLOORS {
        let case = Case { dataset: "ncnn", metric: board, target, energy: None };
        let r = run_case(data(), &case, 20, 5, 1, None).unwrap();
        eprintln!(
            "ncnn {board} on {target}: {} rows, fit on {} → pooled held-out ρ {:.4} (MACs on the same rows {:.4}), MAPE {:.1} %, ±10 % {:.1} %",
            r.rows,
            r.train,
            r.pooled.spearman,
            r.pooled_spearman_macs,
            r.pooled.mape,
            100.0 * r.pooled.within_10
        );
        let g = r.pooled_gap_over_macs;
        eprintln!("  pooled ρ − MACs' ρ {:+.4}, 95 % interval [{:+.4}, {:+.4}]", g.diff, g.lo, g.hi);
        assert!(r.rows >= 25, "{board}: {} networks", r.rows);
        // 6–12 networks a draw do not separate the model from MACs on every board (the
        // RK3588 A55: −0.001, [−0.056, +0.042]), but no board may fall clearly under MACs.
        assert!(g.lo <= g.diff && g.diff <= g.hi && g.hi > 0.0, "{board}: {g:?}");
        assert!((g.diff - (r.pooled.spearman - r.pooled_spearman_macs)).abs() < 1e-12, "{board}: {g:?}");
        assert!(r.pooled.spearman >= rho_floor, "{board}: pooled ρ {} under {rho_floor}", r.pooled.spearman);
        assert!(r.pooled.mape <= mape_ceiling, "{board}: pooled MAPE {} over {mape_ceiling}", r.pooled.mape);
        // The prior from the other boards of its instruction set and float precision; the
        // RISC-V board has none.
        let Some(&(_, t_rho, t_mape)) = TRANSFER_FLOORS.iter().find(|f| f.0 == board) else {
            assert!(r.transfer.is_none(), "{board}: a transfer prior from {:?}", r.transfer.map(|t| t.sources));
            continue;
        };
        let t = r.transfer.as_ref().expect("an ARM board has a transfer prior");
        eprintln!(
            "  with the prior from {}: pooled ρ {:.4}, MAPE {:.1} %, ±10 % {:.1} %",
            t.sources.join(" "),
            t.pooled.spearman,
            t.pooled.mape,
            100.0 * t.pooled.within_10
        );
        assert!(t.pooled_gap_over_macs.hi > 0.0, "{board} with the prior: {:?}", t.pooled_gap_over_macs);
        assert!(!t.sources.iter().any(|s| s == board || s == "sg2000-c906"), "{board}: {:?}", t.sources);
        let fp16 = |key: &str| nasc::tables::BOARDS.iter().find(|b| b.key == key).unwrap().fp16;
        assert!(t.sources.len() == 4 && t.sources.iter().all(|s| fp16(s) == fp16(board)), "{board}: {:?}", t.sources);
        assert!(t.pooled.spearman >= t_rho, "{board} with the prior: pooled ρ {} under {t_rho}", t.pooled.spearman);
        assert!(t.pooled.mape <= t_mape, "{board} with the prior: pooled MAPE {} over {t_mape}", t.pooled.mape);
        // What the prior is for: every ARM board's MAPE falls (9.6 → 8.4 % to 32.3 → 14.6 %).
        assert!(
            t.pooled.mape < r.pooled.mape,
            "{board}: MAPE {} with the prior, {} without",
            t.pooled.mape,
            r.pooled.mape
        );
    }
}

/// The goal, ρ above MACs' on every device, judged over 20 draws (120–240 held-out
/// rows a board, each network counted as often as it was held out): at 5 draws the RK3588
/// A55's pooled ρ ties MACs' (−0.001), at 20 it is above by +0.013 and every board is (the
/// smallest margins when set: RK3588 A55 +0.013, RK3566 +0.021, Snapdragon 855+ +0.022).
#[test]
fn over_20_draws_every_ncnn_board_ranks_above_macs() {
    for &(board, target, _, _) in BOARD_FLOORS {
        let case = Case { dataset: "ncnn", metric: board, target, energy: None };
        let r = run_case(data(), &case, 20, 20, 1, None).unwrap();
        let gap = r.pooled_gap_over_macs.diff;
        eprintln!(
            "ncnn {board}, 20 draws: pooled ρ {:.4}, MACs {:.4} ({gap:+.4})",
            r.pooled.spearman, r.pooled_spearman_macs
        );
        assert_eq!(r.draws.len(), 20, "{board}");
        assert!(gap > 0.005, "{board}: pooled ρ {:.4}, MACs' {:.4}", r.pooled.spearman, r.pooled_spearman_macs);
    }
}

#[test]
fn few_shot_calibration_stays_above_floors() {
    for (case, rho_floor, within_floor) in FLOORS {
        let r = run_case(data(), case, 20, 2, 1, None).unwrap();
        let (rho, _, _) = r.spread(|v| v.spearman);
        let (w10, _, _) = r.spread(|v| v.within_10);
        let (mape, _, _) = r.spread(|v| v.mape);
        eprintln!(
            "{} {} on {}: calibrated on 20 → ρ {rho:.4} (uncalibrated {:.4}, MACs {:.4}), MAPE {mape:.1} %, ±10 % {:.1} % (additive LSQ on half: {:.1} %)",
            case.dataset,
            case.metric,
            case.target,
            r.uncalibrated.spearman,
            r.spearman_macs,
            100.0 * w10,
            100.0 * r.additive_half.within_10
        );
        assert!(rho >= *rho_floor, "{} {}: ρ {rho} under {rho_floor}", case.dataset, case.metric);
        // Thousands of rows (the Note10's 480 blocks) separate the model from MACs: the whole
        // 95 % interval of the pooled difference is above 0 (NAS-Bench-201 on the Pi 4, the
        // closest, +0.010 [+0.009, +0.011]).
        let g = r.pooled_gap_over_macs;
        assert!(g.lo > 0.0, "{} {}: pooled ρ − MACs' {g:?}", case.dataset, case.metric);
        assert!(w10 >= *within_floor, "{} {}: ±10 % {w10} under {within_floor}", case.dataset, case.metric);
        assert!(
            mape < 100.0 * (1.0 - r.uncalibrated.within_10).max(0.05) + r.uncalibrated.mape,
            "calibration must not worsen MAPE"
        );
    }
}

#[test]
fn calibrate_validate_and_apply_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let d = nasc::validate::load(data(), "nb201", "eyeriss_ms").unwrap();
    let csv = |rows: std::ops::Range<usize>| -> String {
        let mut s = String::from("arch,latency_ms\n");
        for i in rows {
            s += &format!("{},{}\n", d.archs[i * 7], d.measured[i * 7]);
        }
        s
    };
    let train = dir.path().join("train.csv");
    let test = dir.path().join("test.csv");
    std::fs::write(&train, csv(0..20)).unwrap();
    std::fs::write(&test, csv(20..520)).unwrap();
    let prof = dir.path().join("eyeriss.profile.json");
    let msg = ok(&[
        "calibrate",
        "-t",
        "eyeriss",
        "--measurements",
        train.to_str().unwrap(),
        "--space",
        "nb201:cifar10",
        "-o",
        prof.to_str().unwrap(),
    ]);
    assert!(msg.contains("20 measurements"), "{msg}");
    let p = nasc::costmodel::calibrate::Profile::from_json(&std::fs::read_to_string(&prof).unwrap()).unwrap();
    assert_eq!(p.target, "eyeriss");
    assert_eq!(p.source_hash, nasc::costmodel::calibrate::fnv1a_hex(&std::fs::read(&train).unwrap()));
    let score = |extra: &[&str]| -> serde_json::Value {
        let mut a = vec![
            "validate",
            "-t",
            "eyeriss",
            "--measurements",
            test.to_str().unwrap(),
            "--space",
            "nb201:cifar10",
            "--json",
        ];
        a.extend_from_slice(extra);
        common::json(&ok(&a))
    };
    let raw = score(&[]);
    let cal = score(&["--profile", prof.to_str().unwrap()]);
    eprintln!(
        "held-out 500 cells: ±10 % {} → {}, MAPE {} → {}",
        raw["within_10"], cal["within_10"], raw["mape"], cal["mape"]
    );
    assert!(cal["within_10"].as_f64().unwrap() > 0.9 && raw["within_10"].as_f64().unwrap() < 0.5);
    // The profile changes `nasc cost` too, and only for its own target.
    let arch = &d.archs[0];
    let c = common::json(&ok(&[
        "cost",
        "-t",
        "eyeriss",
        "--profile",
        prof.to_str().unwrap(),
        "--space",
        "nb201:cifar10",
        "--arch",
        arch,
        "--json",
        "--summary",
    ]));
    assert!((c["latency_ms"].as_f64().unwrap() / d.measured[0] - 1.0).abs() < 0.1);
    let e = fails(&[
        "cost",
        "-t",
        "cortex-a72",
        "--profile",
        prof.to_str().unwrap(),
        "--space",
        "nb201:cifar10",
        "--arch",
        arch,
    ]);
    assert!(e.contains("profile for `eyeriss`"), "{e}");
    // Bad measurement files: one line naming the place, no profile written.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "arch,latency_ms\n|x~0|,1\n").unwrap();
    let out = dir.path().join("none.json");
    let (b, o) = (bad.to_str().unwrap(), out.to_str().unwrap());
    let calibrate_bad =
        || fails(&["calibrate", "-t", "eyeriss", "--measurements", b, "--space", "nb201:cifar10", "-o", o]);
    let e = calibrate_bad();
    assert!(e.contains("bad.csv:2"), "{e}");
    std::fs::write(&bad, format!("arch,latency_ms\n{},-3\n", d.archs[0])).unwrap();
    let e = calibrate_bad();
    assert!(e.contains("bad.csv:2") && e.contains("positive"), "{e}");
    assert!(!out.exists());
    // One row: nothing to cross-validate, said as such; validating on it gives no ranking.
    std::fs::write(&bad, format!("arch,latency_ms\n{},3\n", d.archs[0])).unwrap();
    let e = calibrate_bad();
    assert!(e.contains("bad.csv: 1 measurement") && e.contains("at least 2"), "{e}");
    assert!(!out.exists());
    let text = ok(&["validate", "-t", "eyeriss", "--measurements", b, "--space", "nb201:cifar10"]);
    assert!(text.contains("1 rows, Spearman n/a, Kendall n/a, MAPE"), "{text}");
    let j =
        common::json(&ok(&["validate", "-t", "eyeriss", "--measurements", b, "--space", "nb201:cifar10", "--json"]));
    assert!(j["spearman"].is_null() && j["mape"].as_f64().unwrap() > 0.0, "{j}");
    std::fs::write(&bad, "{\"format\": \"nope\"}").unwrap();
    let e = fails(&[
        "cost",
        "-t",
        "eyeriss",
        "--profile",
        bad.to_str().unwrap(),
        "--space",
        "nb201:cifar10",
        "--arch",
        arch,
    ]);
    assert!(e.contains("profile"), "{e}");
}

#[test]
fn shipped_profiles_are_current_and_usable() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Every file under profiles/ is compiled in, and the other way round.
    let mut files = Vec::new();
    for t in std::fs::read_dir(root.join("profiles")).unwrap() {
        let t = t.unwrap().path();
        if t.is_dir() {
            for f in std::fs::read_dir(&t).unwrap() {
                let f = f.unwrap().path();
                let name = format!(
                    "{}/{}",
                    t.file_name().unwrap().to_str().unwrap(),
                    f.file_stem().unwrap().to_str().unwrap()
                );
                files.push(name);
            }
        }
    }
    files.sort();
    let mut builtin: Vec<String> = nasc::profiles::BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    builtin.sort();
    assert_eq!(files, builtin, "src/profiles.rs lists profiles/");
    for (name, text) in nasc::profiles::BUILTIN {
        let p = nasc::costmodel::calibrate::Profile::from_json(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(name.starts_with(&format!("{}/", p.target)), "{name} is for {}", p.target);
        let mut m = nasc::costmodel::Model::new(nasc::targets::lookup(&p.target).unwrap()).unwrap();
        p.apply(&mut m).unwrap();
    }
    // Regenerating one gives the shipped coefficients (and float precision): a cost-model
    // change that is not followed by `nasc study profiles` fails here.
    let dir = std::env::temp_dir().join(format!("nasc-profiles-{}", std::process::id()));
    for (board, name, floats) in [
        ("pi4-a72", "cortex-a72/ncnn-pi4-a72", nasc::ir::Precision::F32),
        ("rk3588-a76", "cortex-a76/ncnn-rk3588-a76", nasc::ir::Precision::F16),
    ] {
        ok(&["study", "profiles", "--data", data().to_str().unwrap(), "--only", board, "-o", dir.to_str().unwrap()]);
        let fresh = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        let fresh = nasc::costmodel::calibrate::Profile::from_json(&fresh).unwrap();
        let shipped = nasc::costmodel::calibrate::Profile::from_json(nasc::profiles::builtin(name).unwrap()).unwrap();
        for (a, b) in fresh.fit.coefficients.iter().zip(&shipped.fit.coefficients) {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "regenerate profiles/ (nasc study profiles): {a} vs {b}");
        }
        assert_eq!(fresh.source_hash, shipped.source_hash);
        assert_eq!((fresh.floats, shipped.floats), (floats, floats), "{name}");
        assert_eq!((fresh.winograd, shipped.winograd), (2, 2), "{name}: ncnn's Winograd convolutions");
    }
    std::fs::remove_dir_all(&dir).ok();
    // Query commands take them by name.
    let out = ok(&[
        "cost",
        "-t",
        "cortex-a72",
        "--profile",
        "builtin:cortex-a72/fbnet-cifar100-raspi4_latency",
        "--space",
        "fbnet:cifar100",
        "--arch",
        "0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0",
    ]);
    assert!(out.contains("on cortex-a72 (calibrated)") && out.contains("ms"), "{out}");
    // A profile of a board whose ncnn computes floats in half precision, and runs 3×3
    // convolutions as Winograd transforms, says it prices so.
    let half = [
        "cost",
        "-t",
        "cortex-a76",
        "--profile",
        "builtin:cortex-a76/ncnn-rk3588-a76",
        "--space",
        "fbnet:cifar100",
        "--arch",
        "0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0-0",
    ];
    let out = ok(&half);
    assert!(
        out.contains(
            "(calibrated; f32 layers computed in f16 as the profile's runtime does, 3×3 convolutions as Winograd F(2,3))"
        ),
        "{out}"
    );
    let e =
        fails(&["cost", "-t", "cortex-a72", "--profile", "builtin:nope", "--space", "nb201:cifar10", "--arch", "x"]);
    assert!(e.contains("no shipped profile `builtin:nope`") && e.contains("cortex-a72/nb201-raspi4_ms"), "{e}");
}

/// `nasc validate --dataset … --rows-out` writes every public row's prediction, in the unit of
/// the column, and the rows give back the scores it prints.
#[test]
fn validate_writes_the_rows_of_a_public_column() {
    let dir = tempfile::tempdir().unwrap();
    for (metric, unit) in [("eyeriss_latency", "ms"), ("eyeriss_energy", "mj")] {
        let out = dir.path().join(format!("{metric}.csv"));
        let args = ["validate", "-t", "eyeriss", "--dataset", "fbnet-cifar100", "--metric", metric, "--json"];
        let j =
            common::json(&ok(
                &[&args[..], &["--data", data().to_str().unwrap(), "--rows-out", out.to_str().unwrap()]].concat()
            ));
        let text = std::fs::read_to_string(&out).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), format!("arch,measured_{unit},predicted_{unit},error_pct"));
        let errors: Vec<f64> = lines.map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
        assert_eq!(errors.len() as u64, j["rows"].as_u64().unwrap());
        let mape = errors.iter().map(|e| e.abs()).sum::<f64>() / errors.len() as f64;
        assert!((mape - j["mape"].as_f64().unwrap()).abs() < 0.01, "{metric}: rows give MAPE {mape}, printed {j}");
    }
}

/// A measurement CSV of an FBNet space is priced over what its rows measured (`--scope`): the
/// same networks and numbers as the public column through `--dataset` are scored the same, a
/// whole-network pricing of them is not, and a calibration over the right scope fits better.
#[test]
fn measurement_csvs_are_priced_over_the_scope_they_measured() {
    let dir = tempfile::tempdir().unwrap();
    for (target, metric, scope) in [
        ("jetson-tx2", "edgegpu_latency", "isolated-blocks"),
        ("cortex-a72", "raspi4_latency", "isolated-blocks"),
        ("fpga-zc706", "fpga_latency", "conv-blocks"),
    ] {
        let d = nasc::validate::load(data(), "fbnet-cifar100", metric).unwrap();
        let csv = |rows: std::ops::Range<usize>| -> String {
            let mut s = String::from("arch,latency_ms\n");
            for i in rows {
                s += &format!("\"{}\",{}\n", d.archs[i], d.measured[i]);
            }
            s
        };
        let (all, train) = (dir.path().join("all.csv"), dir.path().join("train.csv"));
        std::fs::write(&all, csv(0..d.archs.len())).unwrap();
        std::fs::write(&train, csv(0..20)).unwrap();
        let (all, train) = (all.to_str().unwrap(), train.to_str().unwrap());
        let validate = |scope: &str, extra: &[&str]| -> serde_json::Value {
            let args = ["validate", "-t", target, "--measurements", all, "--space", "fbnet:cifar100", "--json"];
            common::json(&ok(&[&args[..], &["--scope", scope], extra].concat()))
        };
        let column =
            common::json(&ok(&["validate", "-t", target, "--dataset", "fbnet-cifar100", "--metric", metric, "--json"]));
        let scoped = validate(scope, &[]);
        let whole = validate("network", &[]);
        assert_eq!(scoped["scope"], column["scope"], "{scoped} against {column}");
        assert_eq!(scoped["rows"], column["rows"]);
        // Equal but for the order of floating-point sums (a near-tie may swap ranks).
        for k in ["spearman", "kendall", "mape", "within_10"] {
            let (a, b) = (scoped[k].as_f64().unwrap(), column[k].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-6 * b.abs(), "{metric} {k}: {scoped} against {column}");
        }
        assert!(whole["mape"] != scoped["mape"], "{metric}: the whole network priced the same as {scope}");
        // Calibrated on the first 20 rows and scored on all of them, the scope's profile is
        // closer than the whole network's.
        let fit = |scope: &str| -> serde_json::Value {
            let prof = dir.path().join(format!("{scope}.json"));
            let prof = prof.to_str().unwrap();
            let args = ["calibrate", "-t", target, "--measurements", train, "--space", "fbnet:cifar100", "-o", prof];
            let msg = ok(&[&args[..], &["--scope", scope]].concat());
            assert!(msg.contains("20 measurements"), "{msg}");
            validate(scope, &["--profile", prof])
        };
        let (right, wrong) = (fit(scope), fit("network"));
        eprintln!("{metric}: calibrated over {scope} {right}, over the whole network {wrong}");
        assert!(right["mape"].as_f64().unwrap() < wrong["mape"].as_f64().unwrap(), "{right} against {wrong}");
    }
    // The block scopes read FBNet's block names, and a layer table's models are priced whole.
    let m = dir.path().join("m.csv");
    std::fs::write(&m, "arch,latency_ms\n|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|,1\n").unwrap();
    let m = m.to_str().unwrap();
    let e = fails(&[
        "validate",
        "-t",
        "eyeriss",
        "--measurements",
        m,
        "--space",
        "nb201:cifar10",
        "--scope",
        "conv-blocks",
    ]);
    assert!(e.contains("--scope conv-blocks prices FBNet blocks; space `nb201:cifar10` is not an fbnet space"), "{e}");
    let l = dir.path().join("l.csv");
    std::fs::write(&l, "model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act\nnet,conv2d,3,8,8,8,3,1,1,relu\n")
        .unwrap();
    std::fs::write(dir.path().join("n.csv"), "model,latency_ms\nnet,1\n").unwrap();
    let (n, o) = (dir.path().join("n.csv"), dir.path().join("none.json"));
    let args = ["calibrate", "-t", "eyeriss", "--measurements", n.to_str().unwrap(), "--models", l.to_str().unwrap()];
    let e = fails(&[&args[..], &["--scope", "isolated-blocks", "-o", o.to_str().unwrap()]].concat());
    assert!(e.contains("--scope applies to the architectures of a space"), "{e}");
    assert!(!o.exists(), "nothing written on failure");
}

#[test]
fn energy_calibrates_to_dynamic_energy_and_static_power() {
    // 20 FBNet CIFAR-100 architectures (every 250th) calibrate latency and energy; energy is
    // scored on the other 4,980. Floors from what this measured when written (Jetson TX2:
    // ρ 0.663, MAPE 5.1 %, ±10 % 88.5 %; 0.855, 3.4 %, 98.7 % since its compute and DRAM
    // traffic add up; FPGA: ρ 0.995, MAPE 2.7 %, ±10 % 99.0 % priced over
    // whole networks, 0.999, 0.6 %, 100 % over the ConvBlocks its column counts). With one
    // energy scale, as before static power had a coefficient of its own, 20 random rows gave
    // the TX2 ρ 0.26, MAPE 11.5 %. The FPGA's energy is exactly 7 W × latency and the raw
    // model's latency within 1 % of it, so one scale sizes it as well (MAPE 0.3 %): the two
    // energy coefficients have to beat one scale on the TX2, and match latency on the FPGA.
    // Eyeriss's energy column is 63 % a constant (latencies of the layers every architecture
    // shares, `data/README.md`): the fit must take a fixed energy per inference for it (ρ
    // 0.957, MAPE 2.0 %, ±10 % 100 %; 0.919, 3.2 %, 99.0 % without) and beat one scale.
    use nasc::costmodel::calibrate::{fit_auto, Validation};
    for (metric, target, energy, rho, mape, within) in [
        ("edgegpu_latency", "jetson-tx2", "edgegpu_energy", 0.83, 4.0, 0.97),
        ("fpga_latency", "fpga-zc706", "fpga_energy", 0.998, 1.5, 0.99),
        ("eyeriss_latency", "eyeriss", "eyeriss_energy", 0.95, 2.8, 0.99),
    ] {
        let case = Case { dataset: "fbnet-cifar100", metric, target, energy: Some(energy) };
        let rows = nasc::study::case_rows(data(), &case).unwrap();
        let (train, test): (Vec<_>, Vec<_>) = rows.into_iter().enumerate().partition(|(i, _)| i % 250 == 0);
        let train: Vec<_> = train.into_iter().map(|(_, r)| r).collect();
        assert_eq!(train.len(), 20);
        let (fit, _) = fit_auto(&train, Default::default()).unwrap();
        let pred: Vec<f64> = test.iter().map(|(_, r)| fit.predict_energy(r)).collect();
        let truth: Vec<f64> = test.iter().map(|(_, r)| r.measured_energy_mj.unwrap()).collect();
        let v = Validation::of(&pred, &truth);
        eprintln!("{target} energy: {v:?} ({fit:?})");
        assert!(v.spearman >= rho && v.mape <= mape && v.within_10 >= within, "{target}: {v:?}");
        assert_eq!(fit.energy_fixed_mj > 0.0, target == "eyeriss", "{target}: {fit:?}");
        // The study scores energy on its draws, next to one scale on the same draws.
        let r = run_case(data(), &case, 20, 1, 1, None).unwrap();
        let (two, one) = (&r.energy_draws[0], &r.energy_one_scale_draws[0]);
        match target {
            "jetson-tx2" | "eyeriss" => {
                assert!(two.mape < one.mape, "{target}: {} % against one scale's {} %", two.mape, one.mape)
            }
            _ => {
                assert!((two.mape - r.draws[0].mape).abs() < 0.05, "{target}: energy {two:?}, latency {:?}", r.draws[0])
            }
        }
    }
}

#[test]
fn calibrate_and_validate_measured_energy_from_the_cli() {
    // `energy_mj` in the measurement CSV: `nasc calibrate` fits and reports the two energy
    // coefficients, the profile carries them, and `nasc validate` scores energy too.
    let dir = tempfile::tempdir().unwrap();
    let lat = nasc::validate::load(data(), "fbnet-cifar100", "edgegpu_latency").unwrap();
    let en = nasc::validate::load(data(), "fbnet-cifar100", "edgegpu_energy").unwrap();
    assert_eq!(lat.archs, en.archs);
    let csv = |rows: std::ops::Range<usize>| -> String {
        let mut s = String::from("arch,latency_ms,energy_mj\n");
        for i in rows.map(|i| i * 17) {
            s += &format!("\"{}\",{},{}\n", lat.archs[i], lat.measured[i], en.measured[i]);
        }
        s
    };
    let (train, test, prof) = (dir.path().join("t.csv"), dir.path().join("s.csv"), dir.path().join("p.json"));
    std::fs::write(&train, csv(0..20)).unwrap();
    std::fs::write(&test, csv(20..220)).unwrap();
    let (train, test, prof) = (train.to_str().unwrap(), test.to_str().unwrap(), prof.to_str().unwrap());
    let msg = ok(&["calibrate", "-t", "jetson-tx2", "--measurements", train, "--space", "fbnet:cifar100", "-o", prof]);
    assert!(msg.contains("energy: dynamic ×") && msg.contains("static power ×"), "{msg}");
    let p = nasc::costmodel::calibrate::Profile::from_json(&std::fs::read_to_string(prof).unwrap()).unwrap();
    assert!(p.energy_validation.is_some() && p.fit.static_power_scale > 1.0, "{:?}", p.fit);
    let score = |extra: &[&str]| {
        let mut a = vec!["validate", "-t", "jetson-tx2", "--measurements", test, "--space", "fbnet:cifar100", "--json"];
        a.extend_from_slice(extra);
        common::json(&ok(&a))["energy"].clone()
    };
    let (raw, cal) = (score(&[]), score(&["--profile", prof]));
    eprintln!(
        "TX2 energy on 200 held-out rows: MAPE {} → {}, ρ {} → {}",
        raw["mape"], cal["mape"], raw["spearman"], cal["spearman"]
    );
    assert_eq!(cal["rows"], 200);
    assert!(raw["mape"].as_f64().unwrap() > 50.0 && cal["mape"].as_f64().unwrap() < 8.0, "{raw} {cal}");
    let text = ok(&["validate", "-t", "jetson-tx2", "--measurements", test, "--space", "fbnet:cifar100"]);
    assert!(text.contains("on jetson-tx2, energy: 200 rows"), "{text}");
}

#[test]
fn study_fewshot_from_the_cli() {
    // One board, two draws: the table names the target with the precision its ncnn computes
    // floats in, and the transfer prior's four same-precision sources; JSON carries both.
    let d = data().to_str().unwrap();
    let args = ["study", "fewshot", "--data", d, "--only", "sd855", "--draws", "2"];
    let out = ok(&args);
    let row = out.lines().find(|l| l.starts_with("ncnn ") && l.contains("sd855-a76")).expect("a row");
    assert!(row.contains("cortex-a76 f16") && row.contains("32   20"), "{out}");
    assert!(out.contains("rk3588-a76 rk3588-a55 rk3566-a55 rk3568-a55"), "{out}");
    let v = common::json(&ok(&[&args[..], &["--json"]].concat()));
    assert_eq!(v[0]["floats"], "f16", "{v}");
    assert_eq!(v[0]["draws"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v[0]["transfer"]["sources"].as_array().unwrap().len(), 4, "{v}");
    assert_eq!(v[0]["scope"], "network", "{v}");
    // The pooled ρ's distance from MACs' and its bootstrap interval, in the table and the JSON.
    let gap = |g: &serde_json::Value| ["diff", "lo", "hi"].map(|k| g[k].as_f64().unwrap());
    for g in [&v[0]["pooled_gap_over_macs"], &v[0]["transfer"]["pooled_gap_over_macs"]] {
        let [diff, lo, hi] = gap(g);
        assert!(lo <= diff && diff <= hi && hi - lo > 0.0, "{v}");
    }
    let [diff, lo, hi] = gap(&v[0]["pooled_gap_over_macs"]);
    let want = v[0]["pooled"]["spearman"].as_f64().unwrap() - v[0]["pooled_spearman_macs"].as_f64().unwrap();
    assert!((diff - want).abs() < 1e-12, "{v}");
    assert!(row.contains(&format!("{diff:+.3} [{lo:+.3},{hi:+.3}]")), "{out}");
    assert!(!out.contains("priced over their ConvBlocks"), "{out}");
    // HW-NAS-Bench's FBNet FPGA column counts only the ConvBlocks, and the table says so.
    let out = ok(&["study", "fewshot", "--data", d, "--only", "fbnet-cifar100", "--draws", "1"]);
    assert!(
        out.contains("priced over their ConvBlocks, all the column counts: fbnet-cifar100 fpga_latency\n"),
        "{out}"
    );
    let e = fails(&["study", "fewshot", "--data", d, "--only", "no-such-board"]);
    assert!(e.contains("no device matches --only \"no-such-board\""), "{e}");
    for (flag, value, says) in [
        ("--train", "1", "at least 2 architectures"),
        ("--draws", "0", "at least one draw"),
        ("--ridge", "NaN", "non-negative"),
        ("--ridge=-1", "", "non-negative"),
    ] {
        let mut args = vec!["study", "fewshot", "--data", d, "--only", "sd855", flag];
        if !value.is_empty() {
            args.push(value);
        }
        let e = fails(&args);
        assert!(e.contains(says), "{flag} {value}: {e}");
    }
    // Run away from the checkout, the data directory is missing, and the error says what it is.
    let e = fails(&["study", "fewshot", "--data", "/no/such/dir"]);
    assert!(e.contains("--data /no/such/dir: no such directory; it is the repository's `data/` folder"), "{e}");
    let e = fails(&[
        "validate",
        "-t",
        "cortex-a72",
        "--dataset",
        "nb201",
        "--metric",
        "raspi4_ms",
        "--data",
        "/no/such/dir",
    ]);
    assert!(e.contains("no such directory"), "{e}");
}
