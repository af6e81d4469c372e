//! Ranking quality of the uncalibrated analytic model on the public measurements in `data/`
//! (issue 3): Spearman ρ of predicted against measured latency or energy, next to the ρ of
//! plain MACs on the same rows. Floors are set a little under what the model measured when
//! they were written (see the closing note of issue 3 and ARCHITECTURE.md), so a change
//! that degrades the model's ranking fails here.

use std::path::Path;

use nasc::costmodel::Model;
use nasc::validate::{load, score};

fn data() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data"))
}

/// Scores `target` on `dataset`/`metric`; checks ρ ≥ `floor` and, when `must_beat_macs`,
/// ρ > the MACs baseline. Returns (ρ, ρ_MACs).
fn check(target: &str, dataset: &str, metric: &str, floor: f64, must_beat_macs: bool) -> (f64, f64) {
    let model = Model::new(nasc::targets::lookup(target).unwrap()).unwrap();
    let d = load(data(), dataset, metric).unwrap();
    let (s, pred) = score(&d, &model, metric.contains("energy")).unwrap();
    assert!(pred.iter().all(|p| p.is_finite() && *p > 0.0), "{target} {dataset}: non-positive prediction");
    eprintln!(
        "{dataset} {metric} on {target}: {} rows, ρ {:.4} (MACs {:.4}), τ {:.4}",
        s.rows, s.spearman, s.spearman_macs, s.kendall
    );
    assert!(s.spearman >= floor, "{target} on {dataset} {metric}: ρ {:.4} under the floor {floor}", s.spearman);
    if must_beat_macs {
        assert!(
            s.spearman > s.spearman_macs,
            "{target} on {dataset} {metric}: ρ {:.4} does not beat MACs' {:.4}",
            s.spearman,
            s.spearman_macs
        );
    }
    (s.spearman, s.spearman_macs)
}

#[test]
fn cortex_a72_ranks_raspberry_pi_4_better_than_macs() {
    check("cortex-a72", "nb201", "raspi4_ms", 0.905, true);
    check("cortex-a72", "fbnet-cifar100", "raspi4_latency", 0.935, true);
    check("cortex-a72", "fbnet-imagenet", "raspi4_latency", 0.975, true);
}

#[test]
fn eyeriss_latency_ranks_better_than_macs() {
    // NAS-Bench-201 is where MACs rank poorly (ρ ≈ 0.60): pooling costs a dense conv there.
    let (rho, macs) = check("eyeriss", "nb201", "eyeriss_ms", 0.985, true);
    assert!(rho - macs > 0.3, "the memory-hierarchy model must clearly beat MACs on NB201");
    check("eyeriss", "fbnet-cifar100", "eyeriss_latency", 0.975, true);
    check("eyeriss", "fbnet-imagenet", "eyeriss_latency", 0.982, true);
}

#[test]
fn eyeriss_energy_ranks_better_than_macs_and_is_not_latency() {
    check("eyeriss", "fbnet-cifar100", "eyeriss_energy", 0.953, true);
    check("eyeriss", "fbnet-imagenet", "eyeriss_energy", 0.944, true);
    // Energy is not a multiple of latency on an accelerator: the two predicted rankings differ.
    let model = Model::new(nasc::targets::lookup("eyeriss").unwrap()).unwrap();
    let d = load(data(), "fbnet-cifar100", "eyeriss_energy").unwrap();
    let (_, energy) = score(&d, &model, true).unwrap();
    let (_, latency) = score(&d, &model, false).unwrap();
    let rho = nasc::costmodel::stats::spearman(&energy, &latency);
    eprintln!("predicted energy vs predicted latency: ρ {rho:.4}");
    assert!(rho < 0.999, "predicted energy ranks exactly like latency (ρ {rho:.4})");
    let ratio: Vec<f64> = energy.iter().zip(&latency).map(|(e, l)| e / l).collect();
    let (lo, hi) = ratio.iter().fold((f64::MAX, f64::MIN), |(a, b), &r| (a.min(r), b.max(r)));
    eprintln!("predicted energy/latency: {lo:.4}..{hi:.4} mJ/ms");
    // Measured (HW-NAS-Bench) energy/latency spans 0.68..0.90 on these rows (×1.31); the
    // analytic model spans less (×1.08 when this was written) but is not a multiple.
    assert!(hi / lo > 1.05, "energy/latency is nearly constant ({lo:.4}..{hi:.4})");
}

/// The FPGA columns (HLS estimates of a layer-pipelined design): the `layer_pipeline` target
/// beats MACs on all three — on NAS-Bench-201 because a 3×3 convolution costs ~2.5 1×1s there
/// (a kernel row's taps unrolled, every output element streamed), not 9, and pooling runs on
/// the slow window lanes; on FBNet because a depthwise hides in its block's pipeline.
#[test]
fn fpga_target_ranks_better_than_macs() {
    check("fpga-zc706", "nb201", "fpga_ms", 0.995, true);
    // Over the ConvBlocks the FBNet columns count (`validate::Scope`): 0.9993 and 0.9988
    // (0.998 each over whole networks).
    check("fpga-zc706", "fbnet-cifar100", "fpga_latency", 0.999, true);
    check("fpga-zc706", "fbnet-imagenet", "fpga_latency", 0.998, true);
}

/// HW-NAS-Bench's FBNet FPGA rows are sums of its ConvBlocks' estimates (its table has 0 for
/// the stem, `skip` blocks, head, pooling and classifier), and are priced over the same layers:
/// uncalibrated, every CIFAR-100 row is then within ±10 % (MAPE 1.0 %), where the whole
/// network was 19 % over (±10 % on 0.4 % of the rows). The other columns count everything.
#[test]
fn fpga_fbnet_rows_are_priced_over_their_convblocks() {
    use nasc::validate::Scope;
    let model = Model::new(nasc::targets::lookup("fpga-zc706").unwrap()).unwrap();
    let d = load(data(), "fbnet-cifar100", "fpga_latency").unwrap();
    assert_eq!(d.scope, Scope::ConvBlocks);
    let (s, _) = score(&d, &model, false).unwrap();
    eprintln!("fpga fbnet-cifar100 uncalibrated: MAPE {:.2} %, ±10 % {:.4}", s.mape, s.within_10);
    assert!(s.within_10 >= 0.99 && s.mape < 2.0, "MAPE {} %, ±10 % {}", s.mape, s.within_10);
    for (dataset, metric) in
        [("fbnet-cifar100", "eyeriss_latency"), ("fbnet-imagenet", "eyeriss_energy"), ("nb201", "fpga_ms")]
    {
        assert_eq!(load(data(), dataset, metric).unwrap().scope, Scope::Network, "{dataset} {metric}");
    }
}

/// FPGA energy is 7 W × latency in the data; the ranking of energy holds too.
#[test]
fn fpga_energy_ranks_better_than_macs() {
    // 0.9998 over the ConvBlocks (0.985 over whole networks).
    check("fpga-zc706", "fbnet-cifar100", "fpga_energy", 0.999, true);
}

/// The Jetson TX2 GPU (measured, TensorRT): MACs do not rank it at all on CIFAR-100 (ρ −0.01:
/// per-block engine floors dominate), the SIMT model with launch overheads does better.
/// Uncalibrated ρ 0.488 and 0.795 (0.306 and 0.714 before each block paid its own engine's
/// round trip, [`Scope::IsolatedBlocks`](nasc::validate::Scope); 0.465 and 0.778 before a
/// channel shuffle paid a kernel launch; 0.564 and 0.806 before compute and DRAM traffic
/// added up instead of overlapping, which costs the raw model — its depthwise compute is
/// some 25 times too fast — but lets calibration see that compute: few-shot ρ 0.733 → 0.864
/// and 0.847 → 0.962, `tests/calibration.rs`). With depthwise layers at 0.3 of the array's
/// rate and 2-group convolutions priced as dense: 0.485 and 0.833.
#[test]
fn jetson_tx2_ranks_better_than_macs() {
    check("jetson-tx2", "fbnet-cifar100", "edgegpu_latency", 0.46, true);
    check("jetson-tx2", "fbnet-imagenet", "edgegpu_latency", 0.81, true);
}

/// On a GPU a channel shuffle is a kernel launch of its own (TensorRT runs it as a shuffle
/// layer; no convolution epilogue absorbs a transpose), while an addition rides its producer;
/// an NPU applies both on the fly, launching nothing. Uncalibrated TX2 ρ with the launch:
/// CIFAR-100 0.465 → 0.564, ImageNet 0.778 → 0.806.
#[test]
fn a_gpu_launches_a_kernel_for_a_channel_shuffle_and_an_npu_does_not() {
    use nasc::costmodel::analytic::term;
    let g = nasc::ir::spaces::lookup("fbnet:cifar100").unwrap().subnet(&["k3_e1_g2"; 22].join(",")).unwrap();
    for (target, launches) in [("jetson-tx2", true), ("eyeriss", false)] {
        let model = Model::new(nasc::targets::lookup(target).unwrap()).unwrap();
        let overhead_ms = model.target.npu().unwrap().invocation_overhead_us * 1e-3;
        let r = nasc::costmodel::cost(&g, &model).unwrap();
        let shuffles: Vec<_> = r.layers.iter().filter(|l| l.ops == "channel_shuffle").collect();
        assert_eq!(shuffles.len(), 22, "{target}");
        for l in shuffles {
            let want = if launches { overhead_ms } else { 0.0 };
            assert!((l.terms_ms[term::OVERHEAD] - want).abs() < 1e-12, "{target} {}: {:?}", l.name, l.terms_ms);
            assert!(l.latency_ms >= want, "{target} {}", l.name);
        }
        for l in r.layers.iter().filter(|l| l.ops == "add") {
            assert_eq!(l.terms_ms[term::OVERHEAD], 0.0, "{target} {}", l.name);
        }
    }
}

/// HW-NAS-Bench times every FBNet block on the TX2 as a TensorRT engine of its own, and its
/// rows are sums of those runs: priced so, every block with work (the stem, each searchable
/// block but an identity `skip`, the head, the pooling and the classifier) adds one round trip
/// of the runtime to the whole network's price, in the `host` term, and nothing else moves.
#[test]
fn jetson_tx2_fbnet_rows_are_sums_of_isolated_blocks() {
    use nasc::costmodel::analytic::term;
    use nasc::validate::{price, Scope};
    let model = Model::new(nasc::targets::lookup("jetson-tx2").unwrap()).unwrap();
    let d = load(data(), "fbnet-cifar100", "edgegpu_latency").unwrap();
    assert_eq!(d.scope, Scope::IsolatedBlocks);
    assert_eq!(load(data(), "fbnet-imagenet", "edgegpu_energy").unwrap().scope, Scope::IsolatedBlocks);
    let trip_ms = model.target.npu().unwrap().round_trip_us * 1e-3;
    let space = nasc::ir::spaces::lookup("fbnet:cifar100").unwrap();
    // Block 0 keeps 16 channels at stride 1 (an identity skip); block 1 widens to 24 (a 1×1
    // convolution skip).
    for (arch, blocks) in [(["k3_e1"; 22].join(","), 26), (["skip"; 22].join(","), 4 + 6)] {
        let g = space.subnet(&arch).unwrap();
        let (whole, _, whole_terms) = price(&g, &model, Scope::Network).unwrap();
        let (isolated, _, terms) = price(&g, &model, Scope::IsolatedBlocks).unwrap();
        let extra = isolated - whole;
        assert!((extra - blocks as f64 * trip_ms).abs() < 1e-9, "{arch}: {extra} ms for {blocks} blocks");
        for t in 0..term::N {
            let want = whole_terms[t] + if t == term::HOST { blocks as f64 * trip_ms } else { 0.0 };
            assert!((terms[t] - want).abs() < 1e-9, "{arch}: term {}", term::NAMES[t]);
        }
    }
}

/// HW-NAS-Bench's Pi 4 FBNet rows are sums of blocks timed on their own too, over and over: a
/// block whose weights fit the A72's 1 MiB L2 reads them from there, one whose weights outgrow
/// it from DRAM on every run, in the `weights` term. A 3×-expansion block moves from cached
/// (layer 18: 184 channels out, 843 kB) to streamed (layer 21: 352 out, 1.2 MB).
#[test]
fn raspberry_pi_4_fbnet_blocks_keep_weights_that_fit_the_l2() {
    use nasc::costmodel::analytic::term;
    use nasc::validate::{price, Scope};
    let model = Model::new(nasc::targets::lookup("cortex-a72").unwrap()).unwrap();
    for (dataset, metric) in [("fbnet-cifar100", "raspi4_latency"), ("fbnet-imagenet", "raspi4_latency")] {
        assert_eq!(load(data(), dataset, metric).unwrap().scope, Scope::IsolatedBlocks, "{dataset}");
    }
    let space = nasc::ir::spaces::lookup("fbnet:cifar100").unwrap();
    let with_e3_at = |layer: usize| {
        let mut ops = ["k3_e1"; 22];
        ops[layer] = "k3_e3";
        space.subnet(&ops.join(",")).unwrap()
    };
    let (at18, at21) = (with_e3_at(18), with_e3_at(21));
    let all_e1 = space.subnet(&["k3_e1"; 22].join(",")).unwrap();
    let (_, _, terms_e1) = price(&all_e1, &model, Scope::IsolatedBlocks).unwrap();
    let (whole18, _, whole18_terms) = price(&at18, &model, Scope::Network).unwrap();
    let (alone18, _, terms18) = price(&at18, &model, Scope::IsolatedBlocks).unwrap();
    let (_, _, terms21) = price(&at21, &model, Scope::IsolatedBlocks).unwrap();
    // Whole networks read every weight from DRAM, in `memory`; cached blocks are cheaper.
    assert_eq!(whole18_terms[term::WEIGHTS], 0.0);
    assert!(alone18 < whole18, "{alone18} ms alone against {whole18} ms");
    // The head's 1×1 convolution (352 → 1504, 2.1 MB) streams in both; the block at layer 21
    // adds its own weights, and the one at layer 18 nothing.
    let (w18, w21) = (terms18[term::WEIGHTS], terms21[term::WEIGHTS]);
    assert!(w18 > 0.0 && w21 > w18, "weights term {w18} ms with e3 at 18, {w21} ms at 21");
    assert!((w18 - terms_e1[term::WEIGHTS]).abs() < 1e-12, "{w18} ms against {} ms", terms_e1[term::WEIGHTS]);
}
