//! `nasc measure`: micro-benchmarks of nasc's own generated kernels on this machine over a
//! sweep of shapes, written as a measurement CSV (`model,latency_ms`) and the layer table
//! describing the measured kernels — what `nasc calibrate --target host --models` fits. Each
//! kernel is timed in rounds a kernel's compilation apart and counts its fastest round.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use nasc::ir::Weights;
use nasc::layers::{self, Layer};

/// Options of `nasc measure`.
#[derive(Args, Debug)]
pub struct Options {
    /// The target measured: only `host`, this machine, can run the generated code.
    #[arg(long, short, default_value = "host")]
    target: String,
    /// The measurement CSV to write (`model,latency_ms`).
    #[arg(short, long, value_name = "M.csv")]
    output: PathBuf,
    /// The layer table of the measured kernels to write.
    #[arg(long, value_name = "L.csv")]
    layers: PathBuf,
    /// A small sweep (a few shapes per op) for a quick check.
    #[arg(long)]
    quick: bool,
    /// Untimed runs before timing each kernel.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed runs per kernel and round.
    #[arg(long, default_value_t = 15)]
    repeats: usize,
    /// Timing rounds per kernel, each after the next kernel's compilation; the fastest round's
    /// median is written.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seed of the kernels' weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The kernels of the sweep: (channels, spatial size) pairs of CIFAR- and ImageNet-sized
/// mobile networks, down to the 4×4 planes that end a CIFAR network, × the ops those networks
/// use.
pub fn sweep(quick: bool) -> Vec<(String, Vec<Layer>)> {
    let sizes: &[(usize, usize)] = if quick {
        &[(16, 32), (64, 8), (96, 14)]
    } else {
        &[(16, 32), (32, 16), (64, 8), (184, 4), (16, 112), (24, 56), (48, 28), (96, 14), (192, 7)]
    };
    let mut out = Vec::new();
    for &(c, h) in sizes {
        let layer = |op: &str, out_c: Option<usize>, k: Option<usize>, s: Option<usize>, g: Option<usize>| Layer {
            out_c,
            kernel: k,
            stride: s,
            groups: g,
            ..Layer::new("", op, [c, h, h])
        };
        let conv = |out_c: usize, k: usize, s: usize, g: usize, act: &str| {
            let mut l = layer("conv2d", Some(out_c), Some(k), Some(s), Some(g));
            l.act = Some(act.into());
            l
        };
        let mut kernels: Vec<(String, Vec<Layer>)> = vec![
            (format!("pw_c{c}_h{h}"), vec![conv(c, 1, 1, 1, "relu")]),
            (format!("pw_expand4_c{c}_h{h}"), vec![conv(4 * c, 1, 1, 1, "relu6")]),
            (format!("conv3_c{c}_h{h}"), vec![conv(c, 3, 1, 1, "relu")]),
            (format!("dw3_c{c}_h{h}"), vec![conv(c, 3, 1, c, "relu")]),
            (format!("dw5_c{c}_h{h}"), vec![conv(c, 5, 1, c, "relu")]),
            (format!("avgpool3_c{c}_h{h}"), vec![layer("avg_pool", None, Some(3), Some(1), None)]),
            (format!("add_c{c}_h{h}"), vec![layer("add", None, None, None, None)]),
        ];
        if !quick {
            kernels.extend([
                (format!("conv3_s2_c{c}_h{h}"), vec![conv(2 * c, 3, 2, 1, "relu")]),
                (format!("dw7_c{c}_h{h}"), vec![conv(c, 7, 1, c, "relu")]),
                (format!("dw3_s2_c{c}_h{h}"), vec![conv(c, 3, 2, c, "relu")]),
                (format!("gpw2_c{c}_h{h}"), vec![conv(c, 1, 1, 2, "relu")]),
                (format!("maxpool3_c{c}_h{h}"), vec![layer("max_pool", None, Some(3), Some(1), None)]),
                (format!("relu_c{c}_h{h}"), vec![layer("relu", None, None, None, None)]),
                (format!("bn_c{c}_h{h}"), vec![layer("batchnorm", None, None, None, None)]),
                (
                    format!("head_c{c}_h{h}"),
                    vec![layer("global_avg_pool", None, None, None, None), {
                        let mut d = layer("dense", Some(100), None, None, None);
                        d.input = [c, 1, 1];
                        d
                    }],
                ),
            ]);
        }
        for (name, mut ls) in kernels {
            for l in &mut ls {
                l.model = name.clone();
            }
            out.push((name, ls));
        }
    }
    out
}

fn bar(done: usize, total: usize, what: &str, started: Instant) {
    let width = 30;
    let filled = done * width / total.max(1);
    let eta = if done > 0 { started.elapsed().as_secs_f64() / done as f64 * (total - done) as f64 } else { 0.0 };
    eprint!("\r[{}{}] {done}/{total} {what:<24} eta {eta:>4.0} s", "#".repeat(filled), "-".repeat(width - filled));
    let _ = std::io::stderr().flush();
}

pub fn run(o: Options) -> Result<()> {
    if o.target != "host" {
        bail!(
            "--target {}: only `host` can be measured here (nasc runs its generated code on this machine); measure \
             another device with its own tools and give the CSV to `nasc calibrate`",
            o.target
        );
    }
    let timing = super::bench::Timing { warmup: o.warmup, repeats: o.repeats, json: false };
    let kernels = sweep(o.quick);
    let origin = "the sweep";
    let started = Instant::now();
    let rounds = super::bench::time_in_rounds(kernels.len(), o.rounds, &timing, |i| {
        let (name, ls) = &kernels[i];
        bar(i, kernels.len(), name, started);
        let g = layers::graph(name, ls, origin)?;
        let w = Weights::random(&g, o.seed)?;
        super::bench::Bench::quiet(&g, &w)
    })?;
    bar(kernels.len(), kernels.len(), "done", started);
    eprintln!();
    let ms: Vec<nasc::study::Measurement> = kernels
        .iter()
        .zip(rounds.fastest())
        .map(|((name, _), t)| nasc::study::Measurement { arch: name.clone(), latency_ms: t, energy_mj: None })
        .collect();
    let table: Vec<Layer> = kernels.iter().flat_map(|(_, ls)| ls.iter().cloned()).collect();
    let [spread_median, spread_p90, spread_max] = rounds.spread();
    nasc::io::write_atomic(&o.layers, layers::write(&table).as_bytes())?;
    nasc::io::write_atomic(&o.output, nasc::study::write_measurements("model", &ms).as_bytes())?;
    super::emit(&format!(
        "measured {} kernels in {:.1} s (fastest of {} rounds of {} runs' median; slowest round over fastest: median {spread_median:.3}, p90 {spread_p90:.3}, max {spread_max:.3})\nwrote {}\nwrote {}\n",
        kernels.len(),
        started.elapsed().as_secs_f64(),
        o.rounds,
        o.repeats,
        o.output.display(),
        o.layers.display()
    ))
}
