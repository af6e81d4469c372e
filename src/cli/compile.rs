//! `nasc compile`: a concrete subnet to native artifacts for a CPU target.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use nasc::codegen::{emit, Emit, Machine, Opt};

use super::model::{ModelArgs, WeightArgs};

/// Options of `nasc compile`.
#[derive(Args, Debug)]
pub struct Options {
    #[command(flatten)]
    model: ModelArgs,
    /// Target: a CPU target (built-in or .toml); for an NPU target, its host CPU.
    #[arg(long, short)]
    target: String,
    /// What to write: any of obj, asm, llvm-ir, header, staticlib (comma-separated).
    #[arg(long, default_value = "obj,header", value_delimiter = ',')]
    emit: Vec<String>,
    /// C name of the network (`NAME_infer`, `NAME.h`).
    #[arg(long, default_value = "model")]
    name: String,
    #[command(flatten)]
    weights: WeightArgs,
    /// Optimisation: 1 (quick) or 3.
    #[arg(long, default_value_t = 3)]
    opt: u8,
    /// Leave the weights out of the code: write them to NAME.weights, which the program loads
    /// and passes to NAME_set_weights (smaller objects, weights replaceable without a rebuild).
    #[arg(long)]
    weights_external: bool,
    /// Output directory.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
}

pub fn run(o: Options) -> Result<()> {
    let (g, w) = o.model.load_concrete_with_weights()?;
    let weights = o.weights.resolve(&g, w)?;
    let mut target = nasc::targets::lookup(&o.target)?;
    if let Some(n) = target.npu() {
        target = nasc::targets::lookup(&n.host)?;
    }
    let cpu = target.cpu().context("target has no cpu description")?;
    let machine = Machine { triple: cpu.triple.clone(), cpu: cpu.cpu.clone(), features: cpu.features.clone() };
    let what: Vec<Emit> = o
        .emit
        .iter()
        .map(|e| match e.trim() {
            "obj" => Ok(Emit::Object),
            "asm" => Ok(Emit::Assembly),
            "llvm-ir" => Ok(Emit::LlvmIr),
            "header" => Ok(Emit::Header),
            "staticlib" => Ok(Emit::StaticLib),
            other => bail!("--emit {other}: expected obj, asm, llvm-ir, header or staticlib"),
        })
        .collect::<Result<_>>()?;
    let opt = match o.opt {
        1 => Opt::O1,
        3 => Opt::O3,
        n => bail!("--opt {n}: expected 1 or 3"),
    };
    std::fs::create_dir_all(&o.output).with_context(|| format!("{}: cannot create", o.output.display()))?;
    let t0 = std::time::Instant::now();
    let r = emit(&g, &weights, &o.name, &machine, &what, &o.output, opt, o.weights_external)?;
    let mut out = format!(
        "compiled `{}` for {} ({}) in {:.2} s (lower {:.2} s, optimise {:.2} s, codegen+write {:.2} s); arena {} bytes\n",
        g.name,
        target.name,
        machine.triple,
        t0.elapsed().as_secs_f64(),
        r.lower_s,
        r.optimise_s,
        r.write_s,
        r.plan.bytes()
    );
    for f in r.files {
        out += &format!("wrote {}\n", f.display());
    }
    super::emit(&out)
}
