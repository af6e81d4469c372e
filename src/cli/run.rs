//! `nasc run`: run a model with the reference interpreter.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use nasc::ir::{interp, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::model::{ModelArgs, WeightArgs};

/// Options of `nasc run`.
#[derive(Args, Debug)]
pub struct Options {
    #[command(flatten)]
    model: ModelArgs,
    /// Input tensor (`.npy`, float32, the model's input shape).
    #[arg(long, value_name = "FILE.npy", required_unless_present = "random_input")]
    input: Option<PathBuf>,
    /// Use a random input drawn from N(0, 1)-like uniform noise with this seed instead of a file.
    #[arg(long, value_name = "SEED", conflicts_with = "input")]
    random_input: Option<u64>,
    /// Write the input used (e.g. the one `--random-input` drew) here (`.npy`).
    #[arg(long, value_name = "IN.npy")]
    save_input: Option<PathBuf>,
    #[command(flatten)]
    weights: WeightArgs,
    /// Write the output scores here (`.npy`).
    #[arg(short, long, value_name = "OUT.npy")]
    output: Option<PathBuf>,
    /// Override an exit's threshold: `EXIT=θ` (exit node name), or `θ` for every exit.
    #[arg(long = "threshold", value_name = "[EXIT=]θ")]
    thresholds: Vec<String>,
    /// Force a gate: `GATE=open` or `GATE=closed`.
    #[arg(long = "gate", value_name = "GATE=open|closed")]
    gates: Vec<String>,
    /// Run to the final output; no exit fires.
    #[arg(long)]
    no_exits: bool,
    /// Run natively: compile for this machine with LLVM (JIT) instead of interpreting.
    #[arg(long)]
    jit: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(o: Options) -> Result<()> {
    let (g, file_weights) = o.model.load_concrete_with_weights()?;
    let need = interp::memory_bytes(&g)?;
    if let Some(available) = available_memory().filter(|&a| need > a) {
        bail!(
            "model `{}` needs {:.1} GiB to run (activations and weights as f32); this machine has {:.1} GiB available",
            g.name,
            need as f64 / GIB,
            available as f64 / GIB
        );
    }
    let in_shape = g.infer_shapes()?[g.input_node()?.index()].clone();
    let input = match (&o.input, o.random_input) {
        (Some(p), _) => nasc::io::read_npy(p)?,
        (None, Some(seed)) => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            Tensor::from_fn(&in_shape, |_| rng.gen_range(-1.0..1.0))
        }
        (None, None) => bail!("give --input FILE.npy or --random-input SEED"),
    };
    if input.shape != in_shape {
        bail!("input has shape {:?} but model `{}` takes {:?}", input.shape, g.name, in_shape);
    }
    let weights = o.weights.resolve(&g, file_weights)?;
    let mut opts = interp::RunOptions { disable_exits: o.no_exits, ..Default::default() };
    let exit_names: Vec<String> = g.exits().iter().map(|&e| g.node(e).name.clone()).collect();
    for t in &o.thresholds {
        if exit_names.is_empty() {
            bail!("--threshold {t}: model `{}` has no early exits", g.name);
        }
        let (names, value): (Vec<String>, &str) = match t.split_once('=') {
            Some((n, v)) => {
                if !exit_names.iter().any(|e| e == n) {
                    bail!("--threshold {t}: `{n}` is not an exit of the model (exits: {})", exit_names.join(", "));
                }
                (vec![n.to_string()], v)
            }
            None => (exit_names.clone(), t.as_str()),
        };
        let v: f32 = value
            .parse()
            .ok()
            .filter(|v: &f32| v.is_finite())
            .with_context(|| format!("--threshold {t}: `{value}` is not a number"))?;
        for n in names {
            opts.exit_thresholds.insert(n, v);
        }
    }
    for gt in &o.gates {
        let (n, v) = gt.split_once('=').with_context(|| format!("--gate {gt}: expected GATE=open|closed"))?;
        let open = match v {
            "open" => true,
            "closed" => false,
            _ => bail!("--gate {gt}: `{v}` is neither open nor closed"),
        };
        if !g.gates().iter().any(|&x| g.node(x).name == n) {
            bail!("--gate {gt}: `{n}` is not a gate of the model");
        }
        opts.gates.insert(n.to_string(), open);
    }
    let r = if o.jit {
        if !opts.gates.is_empty() {
            bail!("--gate cannot force gates in compiled code; they follow their logits");
        }
        let jit = nasc::codegen::Jit::new(&g, &weights, nasc::codegen::Opt::O3)?;
        let exits = g.exits();
        for (k, &e) in exits.iter().enumerate() {
            let theta = if opts.disable_exits {
                f32::INFINITY
            } else {
                match (opts.exit_thresholds.get(&g.node(e).name), &g.node(e).op) {
                    (Some(&t), _) => t,
                    (None, nasc::ir::Op::Exit(x)) => x.threshold,
                    _ => continue,
                }
            };
            // An entropy rule never fires below −∞; max-softmax never reaches +∞.
            let theta = match &g.node(e).op {
                nasc::ir::Op::Exit(x) if opts.disable_exits && x.rule == nasc::ir::op::ExitRule::Entropy => {
                    f32::NEG_INFINITY
                }
                _ => theta,
            };
            jit.set_threshold(k, theta);
        }
        let (out, k) = jit.run(&input.data)?;
        let shape = g.infer_shapes()?[g.inputs(g.output_node()?)[0].index()].clone();
        interp::RunResult {
            output: Tensor::new(shape, out).context("output size")?,
            exit_index: k,
            exit_node: exits.get(k).map(|&e| g.node(e).name.clone()),
            gates_open: Default::default(),
            // Compiled code does not report which kernels ran.
            executed: Vec::new(),
            values: Vec::new(),
        }
    } else {
        interp::run(&g, &weights, &input, &opts)?
    };
    let (argmax, max) =
        r.output
            .data
            .iter()
            .copied()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |a, (i, v)| if v > a.1 { (i, v) } else { a });
    if let Some(p) = &o.save_input {
        nasc::io::write_atomic(p, &nasc::io::npy_bytes(&input))?;
    }
    if let Some(p) = &o.output {
        nasc::io::write_atomic(p, &nasc::io::npy_bytes(&r.output))?;
    }
    let n_exits = exit_names.len();
    let executed = (!o.jit).then(|| r.executed.iter().filter(|&&e| e).count());
    if o.json {
        let v = json!({
            "model": g.name,
            "exit_index": r.exit_index,
            "exit_node": r.exit_node,
            "exits": n_exits,
            "gates_open": r.gates_open,
            "nodes_executed": executed,
            "nodes": g.len(),
            "output_shape": r.output.shape,
            "argmax": argmax,
            "output": r.output.data,
        });
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = match executed {
        Some(n) => format!("model `{}`: ran {n} of {} nodes\n", g.name, g.len()),
        None => format!("model `{}`: compiled for this machine (JIT), {} nodes\n", g.name, g.len()),
    };
    out += &match &r.exit_node {
        Some(n) => format!("exit taken: {} (`{n}`) of {n_exits} early exits\n", r.exit_index),
        None => format!("exit taken: {} (final output; {n_exits} early exits did not fire)\n", r.exit_index),
    };
    if !r.gates_open.is_empty() {
        let open = r.gates_open.values().filter(|&&v| v).count();
        out += &format!("gates: {open} of {} open\n", r.gates_open.len());
    }
    out += &format!("output shape {:?}, argmax {argmax} (score {max:.4})\n", r.output.shape);
    if let Some(p) = &o.output {
        out += &format!("wrote {}\n", p.display());
    }
    super::emit(&out)
}

const GIB: f64 = (1u64 << 30) as f64;

/// Memory the kernel says a new process can use without swapping (`MemAvailable` of
/// `/proc/meminfo`), where there is such a file.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
