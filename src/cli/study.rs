//! `nasc study fewshot`: the few-shot calibration study on the public data in `data/`.

use std::path::PathBuf;

use anyhow::{Context, Result};
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
    /// Only the devices whose dataset, metric (board) or target contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `nasc study tables`.
#[derive(Args, Debug)]
pub struct TablesOptions {
    /// Directory holding the data files.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Output directory (created): `ncnn.layers.csv`, `ncnn-<board>.csv` per board,
    /// `ofa-note10.layers.csv`, `ofa-note10.csv`.
    #[arg(short, long)]
    out: PathBuf,
}

/// Options of `nasc study profiles`.
#[derive(Args, Debug)]
pub struct ProfilesOptions {
    /// Directory holding the data files.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Output directory: `<target>/<dataset>-<metric>.json` per device.
    #[arg(short, long, default_value = "profiles")]
    out: PathBuf,
    /// Only the devices whose dataset, metric (board) or target contains this text.
    #[arg(long)]
    only: Option<String>,
}

fn selected(only: &Option<String>, c: &nasc::study::Case) -> bool {
    only.as_ref().is_none_or(|o| [c.dataset, c.metric, c.target].iter().any(|t| t.contains(o.as_str())))
}

/// `nasc study profiles`: regenerates the calibrated profiles shipped for the built-in targets,
/// each fitted to every row of one device's public data (every case of the study).
pub fn profiles(o: ProfilesOptions) -> Result<()> {
    super::data_dir(&o.data)?;
    let mut report = String::new();
    for c in CASES.iter().filter(|c| selected(&o.only, c)) {
        let name = format!("{}/{}-{}.json", c.target, c.dataset, c.metric);
        eprintln!("fitting {name} …");
        let model = nasc::study::case_model(c)?;
        let rows = nasc::study::case_rows(&o.data, c)?;
        let source = o.data.join(nasc::study::case_source(c));
        let bytes = std::fs::read(&source).with_context(|| format!("{}: cannot read", source.display()))?;
        let (profile, _) = nasc::costmodel::calibrate::Profile::fit(
            &rows,
            &model,
            nasc::study::case_device(c),
            format!(
                "data/{} ({} {}, {} rows{})",
                nasc::study::case_source(c),
                c.dataset,
                c.metric,
                rows.len(),
                nasc::validate::Scope::of(c.dataset, c.metric).tag(", ", "")
            ),
            &bytes,
            &[],
        )
        .map_err(anyhow::Error::msg)?;
        let path = o.out.join(&name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        }
        nasc::io::write_atomic(&path, format!("{}\n", serde_json::to_string_pretty(&profile)?).as_bytes())?;
        let v = &profile.validation;
        report += &format!(
            "{name:<48} {:>6} rows  cross-validated ρ {:.3}  MAPE {:>5.1} %  ±10 % {:>5.1} %\n",
            rows.len(),
            v.spearman,
            v.mape,
            100.0 * v.within_10
        );
    }
    if report.is_empty() {
        anyhow::bail!("no device matches --only {:?}", o.only.as_deref().unwrap_or(""));
    }
    super::emit(&report)
}

/// `nasc study tables`: the converted layer tables and measurements, for `nasc calibrate
/// --models` and `nasc validate --models`.
pub fn tables(o: TablesOptions) -> Result<()> {
    use nasc::tables;
    let csv = |ms: &[nasc::study::Measurement]| nasc::study::write_measurements("model", ms);
    let flat = |models: &tables::Models| {
        let all: Vec<nasc::layers::Layer> = models.iter().flat_map(|(_, ls)| ls.iter().cloned()).collect();
        nasc::layers::write(&all)
    };
    super::data_dir(&o.data)?;
    let n = tables::ncnn(&o.data)?;
    let (note, note_ms, _) = tables::note10(&o.data)?;
    let mut files = vec![("ncnn.layers.csv".to_string(), flat(&n.models))];
    let half: Vec<&str> = tables::BOARDS.iter().filter(|b| b.fp16).map(|b| b.key).collect();
    for b in tables::BOARDS {
        files.push((format!("ncnn-{}.csv", b.key), csv(&tables::board_measurements(&o.data, b, &n.models)?)));
    }
    files.push(("ofa-note10.layers.csv".into(), flat(&note)));
    files.push(("ofa-note10.csv".into(), csv(&note_ms)));
    std::fs::create_dir_all(&o.out).with_context(|| format!("{}: cannot create", o.out.display()))?;
    for (name, text) in &files {
        nasc::io::write_atomic(&o.out.join(name), text.as_bytes())?;
    }
    let mut report = format!("{} ncnn networks converted; left out per network (layers, MACs):\n", n.models.len());
    for (m, (kinds, macs)) in &n.skipped {
        if !kinds.is_empty() {
            let k: Vec<String> = kinds.iter().map(|(t, c)| format!("{t}×{c}")).collect();
            report += &format!("  {m:<20} {} ({:.1} M MACs)\n", k.join(" "), macs / 1e6);
        }
    }
    report += &format!(
        "boards whose ncnn computes floats in half precision (calibrate with --floats f16): {}\n\
         every board runs 3×3 convolutions as Winograd transforms (calibrate with --winograd {})\n",
        half.join(" "),
        nasc::study::NCNN_WINOGRAD
    );
    report += &format!("{} Note10 blocks; wrote {} files to {}\n", note.len(), files.len(), o.out.display());
    super::emit(&report)
}

pub fn run(o: Options) -> Result<()> {
    if o.train < 2 {
        anyhow::bail!("--train {}: a calibration needs at least 2 architectures", o.train);
    }
    if o.draws == 0 {
        anyhow::bail!("--draws 0: give at least one draw");
    }
    if let Some(r) = o.ridge.filter(|r| !(r.is_finite() && *r >= 0.0)) {
        anyhow::bail!("--ridge {r}: must be a non-negative number");
    }
    super::data_dir(&o.data)?;
    let mut results = Vec::new();
    for c in CASES.iter().filter(|c| selected(&o.only, c)) {
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
    if results.is_empty() {
        anyhow::bail!("no device matches --only {:?}", o.only.as_deref().unwrap_or(""));
    }
    if o.json {
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&results)?));
    }
    let mut out = format!(
        "{} architectures per device to calibrate (fewer where a device has under {} rows: `fit`), {} draws (mean [min, max] over draws, scored on all other rows; `pooled`: all draws' held-out rows together)\n",
        o.train,
        o.train + 4,
        o.draws
    );
    out += &format!(
        "{:<16} {:<16} {:<14} {:>6} {:>4} | {:>22} {:>22} {:>20} {:>20} | {:>15} {:>24} | {:>7} {:>7} | {:>8} {:>7}\n",
        "dataset",
        "metric",
        "target",
        "rows",
        "fit",
        "Spearman",
        "Kendall",
        "MAPE %",
        "±10 % share",
        "pooled ρ (MACs)",
        "− MACs [95 % interval]",
        "ρ MACs",
        "ρ raw",
        "add. ±10",
        "add. ρ"
    );
    // A pooled ρ less MACs', with its bootstrap interval.
    let gap = |g: &nasc::study::Gap| format!("{:+.3} [{:+.3},{:+.3}]", g.diff, g.lo, g.hi);
    // Mean [min,max] over draws, to `p` decimals.
    let f = |(m, lo, hi): (f64, f64, f64), p: usize| format!("{m:.prec$} [{lo:.prec$},{hi:.prec$}]", prec = p);
    for r in &results {
        out += &format!(
            "{:<16} {:<16} {:<14} {:>6} {:>4} | {:>22} {:>22} {:>20} {:>20} | {:>15} {:>24} | {:>7.3} {:>7.3} | {:>8.3} {:>7.3}\n",
            r.dataset,
            r.metric,
            r.target_label(),
            r.rows,
            r.train,
            f(r.spread(|v| v.spearman), 3),
            f(r.spread(|v| v.kendall), 3),
            f(r.spread(|v| v.mape), 1),
            f(r.spread(|v| v.within_10), 3),
            format!("{:.3} ({:.3})", r.pooled.spearman, r.pooled_spearman_macs),
            gap(&r.pooled_gap_over_macs),
            r.spearman_macs,
            r.uncalibrated.spearman,
            r.additive_half.within_10,
            r.additive_half.spearman
        );
    }
    for scope in [nasc::validate::Scope::ConvBlocks, nasc::validate::Scope::IsolatedBlocks] {
        let scoped: Vec<String> =
            results.iter().filter(|r| r.scope == scope).map(|r| format!("{} {}", r.dataset, r.metric)).collect();
        if !scoped.is_empty() {
            out += &format!("{}: {}\n", scope.note(), scoped.join(", "));
        }
    }
    let transfer: Vec<_> = results.iter().filter_map(|r| Some((r, r.transfer.as_ref()?))).collect();
    if !transfer.is_empty() {
        out += &format!(
            "\nthe same draws with a transfer prior (the shape of profiles fitted on this target to the other boards of the same instruction set and float precision):\n{:<16} {:<16} {:<14} | {:>22} {:>22} {:>20} {:>20} | {:>15} {:>24} | prior from\n",
            "dataset", "metric", "target", "Spearman", "Kendall", "MAPE %", "±10 % share", "pooled ρ (MACs)", "− MACs [95 % interval]"
        );
        for (r, t) in transfer {
            out += &format!(
                "{:<16} {:<16} {:<14} | {:>22} {:>22} {:>20} {:>20} | {:>15} {:>24} | {}\n",
                r.dataset,
                r.metric,
                r.target_label(),
                f(t.spread(|v| v.spearman), 3),
                f(t.spread(|v| v.kendall), 3),
                f(t.spread(|v| v.mape), 1),
                f(t.spread(|v| v.within_10), 3),
                format!("{:.3} ({:.3})", t.pooled.spearman, r.pooled_spearman_macs),
                gap(&t.pooled_gap_over_macs),
                t.sources.join(" ")
            );
        }
    }
    let energy: Vec<_> = results.iter().filter(|r| !r.energy_draws.is_empty()).collect();
    if !energy.is_empty() {
        out += &format!(
            "\nenergy, calibrated on the same draws (dynamic energy and static power; `one scale`: the model's energy under one fitted scale):\n{:<16} {:<16} {:<14} | {:>22} {:>20} {:>20} | {:>7} | {:>22} {:>20} {:>20}\n",
            "dataset", "latency metric", "target", "Spearman", "MAPE %", "±10 % share", "ρ MACs", "one scale: Spearman", "MAPE %", "±10 % share"
        );
        for r in energy {
            out += &format!(
                "{:<16} {:<16} {:<14} | {:>22} {:>20} {:>20} | {:>7.3} | {:>22} {:>20} {:>20}\n",
                r.dataset,
                r.metric,
                r.target_label(),
                f(r.energy_spread(|v| v.spearman), 3),
                f(r.energy_spread(|v| v.mape), 1),
                f(r.energy_spread(|v| v.within_10), 3),
                r.energy_spearman_macs,
                f(r.energy_one_scale_spread(|v| v.spearman), 3),
                f(r.energy_one_scale_spread(|v| v.mape), 1),
                f(r.energy_one_scale_spread(|v| v.within_10), 3),
            );
        }
    }
    super::emit(&out)
}
