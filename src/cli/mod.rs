//! Subcommands of `nasc`.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod bench;
mod calibrate;
mod compile;
mod cost;
mod dot;
mod expect;
mod export;
mod measure;
mod model;
mod optimize;
mod plot;
mod run;
mod sample;
mod show;
mod spaces;
mod study;
mod targets;
mod validate;

/// nasc: hardware cost model and compiler backend for NAS of dynamic networks.
#[derive(Parser, Debug)]
#[command(name = "nasc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the built-in search spaces.
    Spaces(spaces::Options),
    /// Sample a random subnet of a search space and print it (JSON) or its architecture string.
    Sample(sample::Options),
    /// Show a model's layers, shapes, MACs and parameters.
    Show(show::Options),
    /// Run a model with the reference interpreter on a `.npy` input.
    Run(run::Options),
    /// Print a model or a whole supernet as Graphviz DOT.
    Dot(dot::Options),
    /// List the built-in hardware targets.
    Targets(targets::ListOptions),
    /// Show or check a target description.
    #[command(subcommand)]
    Target(targets::TargetCommand),
    /// Latency, energy, MACs, parameters and peak memory of a model (or many) on a target.
    Cost(cost::Options),
    /// Expected cost of a supernet under architecture logits (and exit/gate probabilities),
    /// with the gradient of the objective.
    Expect(expect::Options),
    /// Write a concrete subnet and its weights as ONNX.
    Export(export::Options),
    /// Compile a concrete subnet to native code (object, assembly, LLVM IR, C header).
    Compile(compile::Options),
    /// Rewrite a concrete model by equality saturation; extract the cheapest for a target.
    Optimize(optimize::Options),
    /// Fit a target's analytic terms to measurements; write a calibrated profile.
    Calibrate(calibrate::Options),
    /// The few-shot calibration study on the public data.
    #[command(subcommand)]
    Study(StudyCommand),
    /// Score a target's predictions against the public measurements in `data/`.
    Validate(validate::Options),
    /// Draw the predicted-vs-measured scatter plot of a rows CSV (`nasc validate --rows-out`).
    Plot(plot::Options),
    /// Measure generated code on this machine: a network, its early exits, 1×1 convolutions.
    #[command(subcommand)]
    Bench(bench::Command),
    /// Micro-benchmark nasc's generated kernels over a sweep of shapes on this machine: a
    /// measurement CSV and layer table for `nasc calibrate --target host --models`.
    Measure(measure::Options),
}

/// `nasc study …`
#[derive(Subcommand, Debug)]
enum StudyCommand {
    /// Calibrate on a few architectures per device, score on the rest, over several draws.
    Fewshot(study::Options),
    /// Write the public per-network data that is not a built-in space (the ncnn benchmark
    /// networks on each board, the Note10 OFA blocks) as layer tables and measurement CSVs.
    Tables(study::TablesOptions),
    /// Regenerate the calibrated profiles shipped for the built-in targets (`profiles/`), each
    /// fitted to all of one device's public data.
    Profiles(study::ProfilesOptions),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Spaces(o) => spaces::run(o),
        Command::Sample(o) => sample::run(o),
        Command::Show(o) => show::run(o),
        Command::Run(o) => run::run(o),
        Command::Dot(o) => dot::run(o),
        Command::Targets(o) => targets::list(o),
        Command::Target(c) => targets::target(c),
        Command::Cost(o) => cost::run(o),
        Command::Validate(o) => validate::run(o),
        Command::Plot(o) => plot::run(o),
        Command::Expect(o) => expect::run(o),
        Command::Export(o) => export::run(o),
        Command::Calibrate(o) => calibrate::run(o),
        Command::Compile(o) => compile::run(o),
        Command::Optimize(o) => optimize::run(o),
        Command::Study(StudyCommand::Fewshot(o)) => study::run(o),
        Command::Study(StudyCommand::Tables(o)) => study::tables(o),
        Command::Study(StudyCommand::Profiles(o)) => study::profiles(o),
        Command::Bench(c) => bench::run(c),
        Command::Measure(o) => measure::run(o),
    }
}

/// Prints a line of output, ignoring a closed pipe (`nasc … | head`).
pub(crate) fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Checks a `--data` directory exists before a command reads the public data from it.
pub(crate) fn data_dir(dir: &std::path::Path) -> Result<()> {
    if !dir.is_dir() {
        anyhow::bail!(
            "--data {}: no such directory; it is the repository's `data/` folder (run from the checkout, or give --data PATH)",
            dir.display()
        );
    }
    Ok(())
}
