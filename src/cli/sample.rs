//! `nasc sample SPACE --seed N`: a random subnet.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use nasc::ir::spaces;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Options of `nasc sample`.
#[derive(Args, Debug)]
pub struct Options {
    /// The search space (see `nasc spaces`).
    space: String,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How many subnets (with `--arch-only`, one architecture string per line).
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Print architecture strings instead of subnet JSON.
    #[arg(long)]
    arch_only: bool,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(o: Options) -> Result<()> {
    let space = spaces::lookup(&o.space)?;
    if o.count != 1 && !o.arch_only {
        anyhow::bail!("--count above 1 needs --arch-only (one subnet JSON per file)");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let mut text = String::new();
    for _ in 0..o.count {
        let cfg = space.sample(&mut rng);
        if o.arch_only {
            text += &space.format_arch(&cfg);
            text.push('\n');
        } else {
            text += &space.subnet_of(&cfg)?.to_json();
        }
    }
    match o.output {
        Some(p) => nasc::io::write_atomic(&p, text.as_bytes()),
        None => super::emit(&text),
    }
}
