//! `nasc targets` and `nasc target show|check`: the hardware descriptions.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use nasc::targets::{self, Kind, Target};
use serde_json::json;

/// Options of `nasc targets`.
#[derive(Args, Debug)]
pub struct ListOptions {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn summary(t: &Target) -> String {
    match (t.cpu(), t.npu()) {
        (Some(c), _) => format!(
            "{} × {} @ {} GHz, {}-bit SIMD × {} FMA, {}",
            c.cores, c.cpu, c.clock_ghz, c.simd_bits, c.fma_units, c.triple
        ),
        (_, Some(n)) => format!(
            "{}×{} PEs {:?} @ {} GHz, {} B/elem, host {}",
            n.array[0], n.array[1], n.dataflow, n.clock_ghz, n.bytes_per_element, n.host
        ),
        _ => String::new(),
    }
}

pub fn list(o: ListOptions) -> Result<()> {
    let all: Vec<Target> = targets::names().into_iter().map(targets::lookup).collect::<Result<_, _>>()?;
    if o.json {
        let v: Vec<_> = all
            .iter()
            .map(|t| json!({"name": t.name, "kind": t.kind, "description": t.description, "summary": summary(t)}))
            .collect();
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!("{:<14} {:<5} {}\n", "target", "kind", "description");
    for t in &all {
        let kind = if t.kind == Kind::Cpu { "cpu" } else { "npu" };
        out += &format!("{:<14} {kind:<5} {}\n{:<20} {}\n", t.name, t.description, "", summary(t));
    }
    super::emit(&out)
}

/// `nasc target …`
#[derive(Subcommand, Debug)]
pub enum TargetCommand {
    /// Print a target's full description (built-in name or path to a .toml file).
    Show {
        /// Target name or file.
        target: String,
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
    /// Validate a target file; prints `ok` or a one-line error naming the field.
    Check {
        /// The .toml file.
        file: PathBuf,
    },
}

pub fn target(c: TargetCommand) -> Result<()> {
    match c {
        TargetCommand::Show { target, json } => {
            let t = targets::lookup(&target)?;
            if json {
                return super::emit(&format!("{}\n", serde_json::to_string_pretty(&t)?));
            }
            super::emit(&format!("# {}\n{}", summary(&t), t.to_toml()))
        }
        TargetCommand::Check { file } => {
            let t = Target::load(&file)?;
            // Resolve the host too: an NPU file naming a missing host is not usable.
            let path = file.to_string_lossy().into_owned();
            let path = if path.contains('/') { path } else { format!("./{path}") };
            targets::lookup(&path)?;
            super::emit(&format!(
                "ok: {} ({}) — {}\n",
                t.name,
                if t.kind == Kind::Cpu { "cpu" } else { "npu" },
                summary(&t)
            ))
        }
    }
}
