//! `nasc spaces`: the built-in search spaces.

use anyhow::Result;
use clap::Args;
use nasc::ir::spaces;
use serde_json::json;

/// Options of `nasc spaces`.
#[derive(Args, Debug)]
pub struct Options {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(o: Options) -> Result<()> {
    let mut rows = Vec::new();
    for name in spaces::NAMES {
        let s = spaces::lookup(name)?;
        let params = s.supernet().params();
        let log10: f64 = params.iter().map(|p| (p.options.len() as f64).log10()).sum();
        rows.push((name.to_string(), s.description().to_string(), params.len(), log10));
    }
    if o.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(n, d, p, l)| json!({"name": n, "description": d, "params": p, "log10_subnets": l}))
            .collect();
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!("{:<24} {:>6} {:>9}  {}\n", "space", "params", "subnets", "description");
    for (n, d, p, l) in rows {
        out += &format!("{n:<24} {p:>6} {:>9}  {d}\n", format!("1e{l:.1}"));
    }
    super::emit(&out)
}
