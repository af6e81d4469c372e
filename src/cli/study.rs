//! `nasc study fewshot`: the few-shot calibration study on the public data in `data/`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use nasc::costmodel::calibrate::FitOptions;
use nasc::study::{run_case, CASES};

/// Options of `nasc study`.
#[derive(Args, Debug)]
pub struct Options {
    /// Architectures drawn to calibrate each device.
    #[arg(long, default_value_t = 20)]
    train: usize,
    /// Random draws per device.
    #[arg(long, default_value_t = 5)]
    draws: usize,
    /// Seed of the first draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory holding the data files.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Ridge strength pulling every term's coefficient towards the global scale (default:
    /// chosen per fit by cross-validation on the calibration rows).
    #[arg(long)]
    ridge: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(o: Options) -> Result<()> {
    let mut results = Vec::new();
    for c in CASES {
        eprintln!("calibrating {} on {} {} …", c.target, c.dataset, c.metric);
        results.push(run_case(
            &o.data,
            c,
            o.train,
            o.draws,
            o.seed,
            o.ridge.map(|ridge| FitOptions { ridge, ..Default::default() }),
        )?);
    }
    if o.json {
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&results)?));
    }
    let mut out = format!(
        "{} architectures per device to calibrate, {} draws (mean [min, max] over draws, scored on all other rows)\n",
        o.train, o.draws
    );
    out += &format!(
        "{:<16} {:<16} {:<11} {:>6} | {:>22} {:>22} {:>20} {:>20} | {:>7} {:>7} | {:>8} {:>7}\n",
        "dataset",
        "metric",
        "target",
        "rows",
        "Spearman",
        "Kendall",
        "MAPE %",
        "±10 % share",
        "ρ MACs",
        "ρ raw",
        "add. ±10",
        "add. ρ"
    );
    for r in &results {
        let f = |(m, lo, hi): (f64, f64, f64), p: usize| format!("{m:.prec$} [{lo:.prec$},{hi:.prec$}]", prec = p);
        out += &format!(
            "{:<16} {:<16} {:<11} {:>6} | {:>22} {:>22} {:>20} {:>20} | {:>7.3} {:>7.3} | {:>8.3} {:>7.3}\n",
            r.dataset,
            r.metric,
            r.target,
            r.rows,
            f(r.spread(|v| v.spearman), 3),
            f(r.spread(|v| v.kendall), 3),
            f(r.spread(|v| v.mape), 1),
            f(r.spread(|v| v.within_10), 3),
            r.spearman_macs,
            r.uncalibrated.spearman,
            r.additive_half.within_10,
            r.additive_half.spearman
        );
    }
    super::emit(&out)
}
