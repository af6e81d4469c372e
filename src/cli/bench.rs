//! `nasc bench`: measurements of the generated code on this machine (single thread, batch 1).
//!
//! - `run`: one network, JIT-compiled at -O3: median latency and GFLOP/s.
//! - `exits`: an early-exit network timed with each exit forced to fire and with none, against
//!   the cost model's predicted ratios.
//! - `pointwise`: 1×1 convolutions of MobileNet shapes, GFLOP/s against the core's FMA peak.
//! - `optimize`: the rewriter over a space's architectures, predicted gains.
//! - `predict`: the host closed loop, random subnets timed against the model; each subnet is
//!   timed in `--rounds` rounds a compilation apart and counts its fastest round's median.
//!
//! Every timing: warm-up runs, then `--repeats` timed runs into preallocated buffers; the
//! median is reported with the 10th and 90th percentiles.

use std::collections::VecDeque;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use nasc::codegen::{Jit, Opt};
use nasc::ir::op::{Conv2d, ExitRule};
use nasc::ir::{Graph, Op, Weights};
use serde_json::json;

use super::model::{ModelArgs, WeightArgs};

/// `nasc bench` subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Time one network compiled for this machine.
    Run(RunOptions),
    /// Time an early-exit network with each exit firing, against the predicted ratios.
    Exits(ExitOptions),
    /// GFLOP/s of generated 1×1 convolutions against this core's FMA peak.
    Pointwise(PointwiseOptions),
    /// Rewrite every architecture of a space (or a sample) and report the predicted gains.
    Optimize(OptimizeOptions),
    /// The host closed loop: random subnets of a space compiled and timed on this machine,
    /// against the `host` model's predictions (with a profile from `nasc measure` →
    /// `nasc calibrate`).
    Predict(PredictOptions),
}

/// Options of `nasc bench predict`.
#[derive(Args, Debug)]
pub struct PredictOptions {
    /// The search space.
    #[arg(long)]
    space: String,
    /// Random subnets to compile and time.
    #[arg(long, default_value_t = 200)]
    count: usize,
    /// Seed of the sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Target whose model predicts (default: this machine's `host`).
    #[arg(long, default_value = "host")]
    target: String,
    /// A calibrated profile for the target: a file, or `builtin:<target>/<data>` for one shipped in `profiles/`.
    #[arg(long)]
    profile: Option<std::path::PathBuf>,
    /// Also write the measurements (`arch,latency_ms`) here.
    #[arg(long, value_name = "M.csv")]
    measurements_out: Option<std::path::PathBuf>,
    /// Also write every subnet's measurement and prediction here
    /// (`arch,measured_ms,predicted_ms,error_pct`, what `nasc plot` draws).
    #[arg(long, value_name = "ROWS.csv")]
    rows_out: Option<std::path::PathBuf>,
    /// Also draw the predicted-vs-measured scatter plot here: SVG or PNG, after the extension.
    #[arg(long, value_name = "FILE.svg|png")]
    plot: Option<std::path::PathBuf>,
    /// Timing rounds per subnet, each after the next subnet's compilation (seconds apart); a
    /// subnet's latency is its fastest round's median, so a slow spell of a shared machine
    /// during one round does not count.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[command(flatten)]
    timing: Timing,
}

/// Options of `nasc bench optimize`.
#[derive(Args, Debug)]
pub struct OptimizeOptions {
    /// The search space.
    #[arg(long)]
    space: String,
    /// Target whose cost model prices the extraction and the result.
    #[arg(long, short)]
    target: String,
    /// A calibrated profile for the target: a file, or `builtin:<target>/<data>` for one shipped in `profiles/`.
    #[arg(long)]
    profile: Option<std::path::PathBuf>,
    /// Random architectures to rewrite; without it, every architecture of a space with at
    /// most 100,000 of them.
    #[arg(long)]
    count: Option<usize>,
    /// Seed of the sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    limits: super::optimize::LimitArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Repeats and output shared by the benchmarks.
#[derive(Args, Debug, Clone)]
pub struct Timing {
    /// Untimed runs first.
    #[arg(long, default_value_t = 5)]
    pub(super) warmup: usize,
    /// Timed runs.
    #[arg(long, default_value_t = 30)]
    pub(super) repeats: usize,
    /// Print JSON.
    #[arg(long)]
    pub(super) json: bool,
}

/// Options of `nasc bench run`.
#[derive(Args, Debug)]
pub struct RunOptions {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    weights: WeightArgs,
    /// Run to the final output (no exit fires).
    #[arg(long)]
    no_exits: bool,
    #[command(flatten)]
    timing: Timing,
}

/// Options of `nasc bench exits`.
#[derive(Args, Debug)]
pub struct ExitOptions {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    weights: WeightArgs,
    /// Target whose cost model predicts the ratios (default: this machine's `host`).
    #[arg(long, default_value = "host")]
    target: String,
    /// A calibrated profile for the target: a file, or `builtin:<target>/<data>` for one shipped in `profiles/`.
    #[arg(long)]
    profile: Option<std::path::PathBuf>,
    #[command(flatten)]
    timing: Timing,
}

/// Options of `nasc bench pointwise`.
#[derive(Args, Debug)]
pub struct PointwiseOptions {
    /// The core's clock in GHz for the peak (default: the `host` target's clock).
    #[arg(long)]
    clock_ghz: Option<f64>,
    #[command(flatten)]
    timing: Timing,
}

/// Median, 10th and 90th percentile, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stats {
    pub(super) median: f64,
    p10: f64,
    p90: f64,
}

impl Timing {
    /// Checks the options before any work starts (and any progress bar is drawn).
    fn check(&self) -> Result<()> {
        if self.repeats == 0 {
            bail!("--repeats must be at least 1");
        }
        Ok(())
    }
}

fn time(t: &Timing, mut f: impl FnMut() -> Result<()>) -> Result<Stats> {
    t.check()?;
    for _ in 0..t.warmup {
        f()?;
    }
    let mut v = Vec::with_capacity(t.repeats);
    for _ in 0..t.repeats {
        let t0 = Instant::now();
        f()?;
        v.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(f64::total_cmp);
    Ok(Stats { median: quantile(&v, 0.5), p10: quantile(&v, 0.1), p90: quantile(&v, 0.9) })
}

/// The `p` quantile of sorted values (the nearest rank); NaN when there are none.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p).round() as usize],
    }
}

/// Round medians of networks timed in rounds ([`time_in_rounds`]).
pub(super) struct Rounds(Vec<Vec<f64>>);

impl Rounds {
    /// Each network's fastest round.
    pub(super) fn fastest(&self) -> Vec<f64> {
        self.0.iter().map(|r| r.iter().copied().fold(f64::INFINITY, f64::min)).collect()
    }

    /// The run-to-run spread: each network's slowest round over its fastest, at the median, the
    /// 90th percentile and the maximum over networks.
    pub(super) fn spread(&self) -> [f64; 3] {
        let mut s: Vec<f64> =
            self.0.iter().zip(self.fastest()).map(|(r, m)| r.iter().copied().fold(0.0, f64::max) / m).collect();
        s.sort_by(f64::total_cmp);
        [0.5, 0.9, 1.0].map(|p| quantile(&s, p))
    }
}

/// Times `count` networks in `rounds` rounds each: the median of each round, per network.
/// `compile(i)` builds network `i`; the networks still owed rounds stay compiled (at most
/// `rounds` at a time) and each gets one more round after every new compilation, so a
/// network's rounds are a compilation apart and a slow spell of a shared machine rarely covers
/// all of them.
pub(super) fn time_in_rounds(
    count: usize,
    rounds: usize,
    timing: &Timing,
    mut compile: impl FnMut(usize) -> Result<Bench>,
) -> Result<Rounds> {
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    timing.check()?;
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(count);
    let mut live: VecDeque<(usize, Bench)> = VecDeque::new();
    let round = |live: &mut VecDeque<(usize, Bench)>, out: &mut Vec<Vec<f64>>| -> Result<()> {
        for (i, b) in live.iter_mut() {
            out[*i].push(b.time(timing)?.0.median);
        }
        live.retain(|(i, _)| out[*i].len() < rounds);
        Ok(())
    };
    for i in 0..count {
        live.push_back((i, compile(i)?));
        out.push(Vec::new());
        round(&mut live, &mut out)?;
    }
    while !live.is_empty() {
        round(&mut live, &mut out)?;
    }
    Ok(Rounds(out))
}

/// A JIT-compiled network with its buffers and a deterministic input.
pub(super) struct Bench {
    jit: Jit,
    input: Vec<f32>,
    output: Vec<f32>,
    arena: Vec<f32>,
}

impl Bench {
    fn new(g: &Graph, w: &Weights) -> Result<Bench> {
        eprintln!("bench: compiling `{}` ({} nodes) at -O3 …", g.name, g.len());
        Bench::quiet(g, w)
    }

    pub(super) fn quiet(g: &Graph, w: &Weights) -> Result<Bench> {
        let jit = Jit::new(g, w, Opt::O3)?;
        let input: Vec<f32> = (0..jit.input_len()).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
        let output = vec![0.0; jit.output_len()];
        let arena = vec![0.0; jit.arena().elements];
        Ok(Bench { jit, input, output, arena })
    }

    pub(super) fn time(&mut self, t: &Timing) -> Result<(Stats, usize)> {
        let mut exit = 0;
        let s = time(t, || {
            exit = self.jit.run_into(&self.input, &mut self.output, &mut self.arena)?;
            Ok(())
        })?;
        Ok((s, exit))
    }

    /// Thresholds so that exit `fire` fires and none before it does (`None`: none fires).
    fn force(&self, g: &Graph, fire: Option<usize>) {
        for (k, &e) in g.exits().iter().enumerate() {
            let rule = match &g.node(e).op {
                Op::Exit(x) => x.rule,
                _ => continue,
            };
            let fires = Some(k) == fire;
            // Max-softmax fires when ≥ θ (always at θ = 0, never at +∞); entropy when ≤ θ.
            let theta = match (rule, fires) {
                (ExitRule::MaxSoftmax, true) => 0.0,
                (ExitRule::MaxSoftmax, false) => f32::INFINITY,
                (ExitRule::Entropy, true) => f32::INFINITY,
                (ExitRule::Entropy, false) => f32::NEG_INFINITY,
            };
            self.jit.set_threshold(k, theta);
        }
    }
}

pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Run(o) => bench_run(o),
        Command::Exits(o) => bench_exits(o),
        Command::Pointwise(o) => bench_pointwise(o),
        Command::Optimize(o) => bench_optimize(o),
        Command::Predict(o) => bench_predict(o),
    }
}

fn bench_run(o: RunOptions) -> Result<()> {
    let (g, w) = o.model.load_concrete_with_weights()?;
    let w = o.weights.resolve(&g, w)?;
    let macs = nasc::ir::stats::totals(&g)?.0;
    let mut b = Bench::new(&g, &w)?;
    if o.no_exits {
        b.force(&g, None);
    }
    let (s, exit) = b.time(&o.timing)?;
    let gflops = 2.0 * macs as f64 / (s.median * 1e-3) / 1e9;
    if o.timing.json {
        let v = json!({
            "model": g.name, "median_ms": s.median, "p10_ms": s.p10, "p90_ms": s.p90,
            "macs": macs, "gflops": gflops, "exit": exit, "arena_bytes": b.jit.arena().bytes(),
            "repeats": o.timing.repeats,
        });
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    super::emit(&format!(
        "`{}`: median {:.3} ms (p10 {:.3}, p90 {:.3}) over {} runs; {:.1} MMACs, {:.2} GFLOP/s; exit {exit}; arena {} bytes\n",
        g.name,
        s.median,
        s.p10,
        s.p90,
        o.timing.repeats,
        macs as f64 / 1e6,
        gflops,
        b.jit.arena().bytes()
    ))
}

fn bench_exits(o: ExitOptions) -> Result<()> {
    let (g, w) = o.model.load_concrete_with_weights()?;
    if g.exits().is_empty() {
        bail!("model `{}` has no early exits", g.name);
    }
    let w = o.weights.resolve(&g, w)?;
    let model = nasc::profiles::target_model(&o.target, o.profile.as_deref())?;
    let report = nasc::costmodel::report::cost(&g, &model)?;
    let full_pred = nasc::costmodel::report::run_cost(&g, &model, None, None)?.0;
    let mut b = Bench::new(&g, &w)?;
    b.force(&g, None);
    let (full, k_full) = b.time(&o.timing)?;
    if k_full != g.exits().len() {
        bail!("with every exit disabled the network still took exit {k_full}");
    }
    let mut rows = Vec::new();
    for (k, e) in report.exits.iter().enumerate() {
        b.force(&g, Some(k));
        let (s, taken) = b.time(&o.timing)?;
        if taken != k {
            bail!("exit {k} was forced but exit {taken} was taken");
        }
        rows.push((e.name.clone(), s, e.latency_ms / full_pred));
    }
    if o.timing.json {
        let exits: Vec<_> = rows
            .iter()
            .map(|(n, s, p)| {
                json!({"exit": n, "median_ms": s.median, "p10_ms": s.p10, "p90_ms": s.p90,
                        "measured_ratio": s.median / full.median, "predicted_ratio": p})
            })
            .collect();
        let v = json!({"model": g.name, "target": o.target, "full_median_ms": full.median,
                       "full_predicted_ms": full_pred, "exits": exits});
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!(
        "`{}` on this machine, predicted by `{}`; {} runs each\n{:<12} {:>10} {:>10} {:>10} {:>10}\n",
        g.name, o.target, o.timing.repeats, "exit", "median ms", "p90 ms", "measured", "predicted"
    );
    for (n, s, p) in &rows {
        out += &format!("{n:<12} {:>10.3} {:>10.3} {:>10.3} {:>10.3}\n", s.median, s.p90, s.median / full.median, p);
    }
    out += &format!("{:<12} {:>10.3} {:>10.3} {:>10.3} {:>10.3}\n", "none (full)", full.median, full.p90, 1.0, 1.0);
    super::emit(&out)
}

fn bench_pointwise(o: PointwiseOptions) -> Result<()> {
    let host = nasc::targets::lookup("host")?;
    let cpu = host.cpu().context("host target has no cpu")?;
    let clock = o.clock_ghz.unwrap_or(cpu.clock_ghz);
    // f32 lanes × FMA units × 2 flops per FMA × clock.
    let peak = (cpu.simd_bits / 32) as f64 * cpu.fma_units as f64 * 2.0 * clock;
    // 1×1 convolutions of MobileNetV2-1.0 at 224 (expand and project layers). Each time is the
    // whole driver's: the kernel, then the copy of its output (1.8 MB at most here) to the
    // caller's buffer.
    let shapes = [
        (56, 24, 144),
        (56, 144, 24),
        (28, 32, 192),
        (14, 64, 384),
        (14, 384, 64),
        (14, 96, 576),
        (7, 160, 960),
        (7, 960, 160),
        (7, 960, 320),
    ];
    let mut rows = Vec::new();
    for &(hw, cin, cout) in &shapes {
        let mut g = Graph::new(format!("pw{hw}x{hw}_{cin}_{cout}"));
        let x = g.add("x", Op::Input(nasc::ir::op::Input { shape: vec![1, cin, hw, hw] }), &[])?;
        let y = g.add("conv", Op::Conv2d(Conv2d::new(cout, 1, 1)), &[x])?;
        g.add("out", Op::Output, &[y])?;
        let w = Weights::random(&g, 1)?;
        let mut b = Bench::new(&g, &w)?;
        let (s, _) = b.time(&o.timing)?;
        let macs = (hw * hw * cin * cout) as f64;
        rows.push((hw, cin, cout, s, 2.0 * macs / (s.median * 1e-3) / 1e9));
    }
    if o.timing.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(hw, ci, co, s, gf)| json!({"hw": hw, "cin": ci, "cout": co, "median_ms": s.median, "gflops": gf, "peak_gflops": peak}))
            .collect();
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!(
        "1×1 convolutions, single thread; peak {peak:.1} GFLOP/s ({} f32 lanes × {} FMA × 2 × {clock} GHz)\n{:<18} {:>10} {:>10} {:>8}\n",
        cpu.simd_bits / 32,
        cpu.fma_units,
        "shape (hw,cin,cout)",
        "median ms",
        "GFLOP/s",
        "of peak"
    );
    for (hw, ci, co, s, gf) in &rows {
        out +=
            &format!("{:<18} {:>10.4} {:>10.2} {:>7.1}%\n", format!("{hw},{ci},{co}"), s.median, gf, 100.0 * gf / peak);
    }
    super::emit(&out)
}

/// Every configuration of a space (the product of its parameters' options), when there are at
/// most `max`.
fn all_configs(space: &dyn nasc::ir::spaces::SearchSpace, max: usize) -> Option<Vec<nasc::ir::Config>> {
    let params = space.supernet().params();
    let total = params.iter().try_fold(1usize, |n, p| n.checked_mul(p.options.len()))?;
    if total > max {
        return None;
    }
    Some(
        (0..total)
            .map(|mut i| nasc::ir::Config {
                choices: params
                    .iter()
                    .map(|p| {
                        let k = i % p.options.len();
                        i /= p.options.len();
                        (p.name.clone(), k)
                    })
                    .collect(),
            })
            .collect(),
    )
}

fn bench_optimize(o: OptimizeOptions) -> Result<()> {
    use rayon::prelude::*;
    let space = nasc::ir::spaces::lookup(&o.space)?;
    let model = nasc::profiles::target_model(&o.target, o.profile.as_deref())?;
    let configs = match (o.count, all_configs(space.as_ref(), 100_000)) {
        (None, Some(all)) => all,
        (None, None) => bail!("{} has more than 100,000 architectures; give --count", o.space),
        (Some(n), _) => {
            use rand::SeedableRng;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed);
            (0..n).map(|_| space.sample(&mut rng)).collect()
        }
    };
    let limits = o.limits.limits();
    let n = configs.len();
    eprintln!("bench: rewriting {n} architectures of {} for {} …", o.space, model.target.name);
    let t0 = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let rows: Vec<(String, f64, f64, bool, bool, bool)> = configs
        .par_iter()
        .map(|c| {
            let g = space.subnet_of(c)?;
            let r = nasc::optimize::optimize(&g, None, &model, &limits)?;
            // No convolution or pooling of a cell's body survives when the cell's output does not
            // depend on its input (what may stay: a batch norm of zero, a per-channel constant).
            let cell_left = r.graph.node_ids().any(|id| {
                let n = r.graph.node(id);
                n.name.starts_with("cell") && !matches!(n.op, Op::BatchNorm(_) | Op::Zero)
            });
            let limited = r.report.rewrite.stop_reason != "saturated";
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if k % 2000 == 0 {
                eprintln!("bench: {k}/{n}");
            }
            Ok((
                space.format_arch(c),
                r.report.latency_before_ms,
                r.report.latency_after_ms,
                r.report.kept_input,
                cell_left,
                limited,
            ))
        })
        .collect::<Result<_>>()?;
    let secs = t0.elapsed().as_secs_f64();
    let mut gains: Vec<f64> = rows.iter().map(|r| 100.0 * (1.0 - r.2 / r.1)).collect();
    gains.sort_by(f64::total_cmp);
    let worse = rows.iter().filter(|r| r.2 > r.1).count();
    let kept = rows.iter().filter(|r| r.3).count();
    let median = gains[gains.len() / 2];
    let best = gains[gains.len() - 1];
    // NAS-Bench-201 cells whose output is all zeros (no path of non-`none` edges from the
    // cell's input to its output): every cell node must be gone.
    let degenerate: Vec<&(String, f64, f64, bool, bool, bool)> =
        rows.iter().filter(|r| o.space.starts_with("nb201") && nb201_degenerate(&r.0)).collect();
    let degenerate_with_cells = degenerate.iter().filter(|r| r.4).count();
    for r in degenerate.iter().filter(|r| r.4).take(3) {
        eprintln!("bench: e.g. a degenerate cell with a convolution left: {}", r.0);
    }
    let limited = rows.iter().filter(|r| r.5).count();
    if o.json {
        let v = json!({"space": o.space, "target": model.target.name, "architectures": n, "seconds": secs,
            "predicted_worse": worse, "kept_input": kept, "stopped_by_a_limit": limited, "median_gain_percent": median, "best_gain_percent": best,
            "degenerate": degenerate.len(), "degenerate_with_cell_nodes_left": degenerate_with_cells});
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!(
        "{} on {}: {n} architectures rewritten in {secs:.1} s\npredicted latency after ≤ before: {} of {n} (worse: {worse}); input kept (extraction not predicted faster): {kept}\nsaturation stopped by a limit: {limited}\nimprovement: median {median:.2} %, best {best:.2} %\n",
        o.space,
        model.target.name,
        n - worse
    );
    if o.space.starts_with("nb201") {
        out += &format!(
            "degenerate cells (output unreachable through non-none edges): {}; with a cell convolution, pooling or sum left after rewriting: {degenerate_with_cells}\n",
            degenerate.len()
        );
    }
    super::emit(&out)
}

/// Whether a NAS-Bench-201 cell's output node is unreachable from its input through edges
/// other than `none`.
fn nb201_degenerate(arch: &str) -> bool {
    // |op~0|+|op~0|op~1|+|op~0|op~1|op~2|: node j's incoming edges from nodes 0..j.
    let nodes: Vec<Vec<&str>> = arch.trim_matches('|').split("|+|").map(|n| n.split('|').collect()).collect();
    let mut reach = [true, false, false, false];
    for (j, edges) in nodes.iter().enumerate() {
        for e in edges {
            let (op, from) = e.split_once('~').unwrap_or(("none", "0"));
            let from: usize = from.parse().unwrap_or(0);
            if op != "none" && reach[from] {
                reach[j + 1] = true;
            }
        }
    }
    !reach[3]
}

fn bench_predict(o: PredictOptions) -> Result<()> {
    use nasc::costmodel::calibrate::Validation;
    use rand::SeedableRng;
    if o.count == 0 {
        bail!("--count must be at least 1");
    }
    if let Some(p) = &o.plot {
        nasc::validate::plot_is_png(p)?;
    }
    let model = nasc::profiles::target_model(&o.target, o.profile.as_deref())?;
    let space = nasc::ir::spaces::lookup(&o.space)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed);
    let (mut pred, mut archs) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let rounds = time_in_rounds(o.count, o.rounds, &o.timing, |i| {
        let config = space.sample(&mut rng);
        let arch = space.format_arch(&config);
        let g = space.subnet_of(&config)?;
        let w = Weights::random(&g, o.seed)?;
        eprint!("\r[{}/{}] {:.0} s", i + 1, o.count, started.elapsed().as_secs_f64());
        pred.push(nasc::costmodel::cost(&g, &model)?.latency_ms);
        archs.push(arch);
        Bench::quiet(&g, &w)
    })?;
    eprintln!();
    let meas = rounds.fastest();
    let [spread_median, spread_p90, spread_max] = rounds.spread();
    if let Some(p) = &o.measurements_out {
        let ms: Vec<nasc::study::Measurement> = archs
            .iter()
            .zip(&meas)
            .map(|(a, &m)| nasc::study::Measurement { arch: a.clone(), latency_ms: m, energy_mj: None })
            .collect();
        nasc::io::write_atomic(p, nasc::study::write_measurements("arch", &ms).as_bytes())?;
    }
    if let Some(p) = &o.rows_out {
        nasc::io::write_atomic(p, &nasc::validate::rows_csv(archs.iter().map(String::as_str), &meas, &pred, "ms")?)?;
    }
    if let Some(p) = &o.plot {
        nasc::validate::plot(p, &pred, &meas, &format!("{} on this machine vs {}", o.space, model.target.name))?;
    }
    let v = Validation::of(&pred, &meas);
    if o.timing.json {
        return super::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({"space": o.space, "target": model.target.name, "validation": v,
                "rounds": o.rounds, "round_spread": {"median": spread_median, "p90": spread_p90, "max": spread_max}}))?
        ));
    }
    let (lo, hi) = meas.iter().fold((f64::MAX, f64::MIN), |(a, b), &m| (a.min(m), b.max(m)));
    super::emit(&format!(
        "{} subnets of {} compiled and timed here ({lo:.3}–{hi:.3} ms, fastest of {} rounds; slowest round over fastest: median {spread_median:.3}, p90 {spread_p90:.3}, max {spread_max:.3}) against {}{}: Spearman {:.4}, Kendall {:.4}, MAPE {:.1} %, within ±10 % {:.1} %, within ±20 % {:.1} %\n",
        v.rows,
        o.space,
        o.rounds,
        model.target.name,
        if o.profile.is_some() { " (calibrated)" } else { "" },
        v.spearman,
        v.kendall,
        v.mape,
        100.0 * v.within_10,
        100.0 * v.within_20
    ))
}
