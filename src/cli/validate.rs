//! `nasc validate`: score a target's uncalibrated predictions against public measurements.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use nasc::costmodel::Model;
use nasc::validate::{load, score};

/// Options of `nasc validate`.
#[derive(Args, Debug)]
pub struct Options {
    /// Target (built-in name or .toml path).
    #[arg(long, short)]
    target: String,
    /// Dataset: nb201, fbnet-cifar100 or fbnet-imagenet.
    #[arg(long)]
    dataset: String,
    /// Measured column, e.g. raspi4_ms (nb201) or eyeriss_energy (fbnet-*). Energy columns are
    /// compared with predicted energy, the others with predicted latency.
    #[arg(long)]
    metric: String,
    /// Directory holding the data files.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(o: Options) -> Result<()> {
    let model = Model::new(nasc::targets::lookup(&o.target)?)?;
    let d = load(&o.data, &o.dataset, &o.metric)?;
    let (s, _) = score(&d, &model, o.metric.contains("energy"))?;
    if o.json {
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&s)?));
    }
    super::emit(&format!(
        "{} {} on {}: {} rows, Spearman {:.4} (MACs {:.4}), Kendall {:.4}, MAPE {:.1} %, within ±10 % {:.1} %\n",
        s.dataset,
        s.metric,
        s.target,
        s.rows,
        s.spearman,
        s.spearman_macs,
        s.kendall,
        s.mape,
        100.0 * s.within_10
    ))
}
