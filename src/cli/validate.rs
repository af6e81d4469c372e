//! `nasc validate`: score a target's uncalibrated predictions against public measurements.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use nasc::costmodel::calibrate::Validation;
use nasc::validate::{load, score};

/// Options of `nasc validate`.
#[derive(Args, Debug)]
pub struct Options {
    /// Target (built-in name or .toml path).
    #[arg(long, short)]
    target: String,
    /// Dataset of `data/`: nb201, fbnet-cifar100 or fbnet-imagenet (with --metric).
    #[arg(long, requires = "metric", conflicts_with = "measurements")]
    dataset: Option<String>,
    /// Measured column, e.g. raspi4_ms (nb201) or eyeriss_energy (fbnet-*). Energy columns are
    /// compared with predicted energy, the others with predicted latency.
    #[arg(long, requires = "dataset")]
    metric: Option<String>,
    /// Or a measurement CSV (`arch,latency_ms[,energy_mj]`) of a space (with --space) or of
    /// the models of a layer table (with --models); energy is scored too when every row has it.
    #[arg(long, value_name = "M.csv")]
    measurements: Option<PathBuf>,
    /// The space of the measurement CSV's architecture strings.
    #[arg(long, conflicts_with = "models")]
    space: Option<String>,
    /// What of each network a row measured, for an FBNet space: `network` (the whole network,
    /// one engine), `conv-blocks` (only the searchable ConvBlocks, as HW-NAS-Bench's FPGA
    /// columns) or `isolated-blocks` (the sum of every block run on its own, as HW-NAS-Bench's
    /// Raspberry Pi 4 and Jetson TX2 columns: on the TX2 each block pays the runtime's
    /// launch-and-synchronise round trip; on a CPU a block whose weights fit the last cache
    /// level keeps them there, and one whose weights outgrow it streams them from DRAM).
    #[arg(long, value_enum, default_value = "network")]
    scope: nasc::validate::Scope,
    /// The layer table describing the measurement CSV's models.
    #[arg(long, value_name = "L.csv")]
    models: Option<PathBuf>,
    /// A calibrated profile to apply to the target: a file, or `builtin:<target>/<data>` for one shipped in `profiles/`.
    #[arg(long, value_name = "PROFILE.json")]
    profile: Option<PathBuf>,
    /// Also draw the predicted-vs-measured scatter plot here: SVG or PNG, after the extension.
    #[arg(long, value_name = "FILE.svg|png")]
    plot: Option<PathBuf>,
    /// Also write every row's prediction here (`arch,measured_ms,predicted_ms,error_pct`;
    /// `measured_mj,predicted_mj` for an energy column of --dataset).
    #[arg(long, value_name = "ROWS.csv")]
    rows_out: Option<PathBuf>,
    /// Directory holding the data files.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(o: Options) -> Result<()> {
    if let Some(p) = &o.plot {
        nasc::validate::plot_is_png(p)?;
    }
    let model = nasc::profiles::target_model(&o.target, o.profile.as_deref())?;
    if let Some(path) = &o.measurements {
        let nets = match (&o.space, &o.models) {
            (Some(s), _) => nasc::study::Networks::Space(s.clone()),
            (None, Some(m)) => nasc::study::Networks::Models(m.clone()),
            (None, None) => anyhow::bail!("--measurements needs --space or --models"),
        };
        let ms = nasc::study::read_measurements(path)?;
        let rows = nasc::study::measurement_rows(path, &nets, o.scope, &model, &ms)?;
        let pred: Vec<f64> = rows.iter().map(|r| r.terms.iter().sum()).collect();
        let truth: Vec<f64> = rows.iter().map(|r| r.latency_ms).collect();
        let v = Validation::of(&pred, &truth);
        if let Some(plot) = &o.plot {
            nasc::validate::plot(plot, &pred, &truth, &format!("{} on {}", path.display(), model.target.name))?;
        }
        if let Some(out) = &o.rows_out {
            let archs = ms.iter().map(|m| m.arch.as_str());
            nasc::io::write_atomic(out, &nasc::validate::rows_csv(archs, &truth, &pred, "ms")?)?;
        }
        // Energy too, when every row measured it.
        let energy = rows.iter().map(|r| r.measured_energy_mj).collect::<Option<Vec<f64>>>().map(|m| {
            let p: Vec<f64> = rows.iter().map(|r| r.energy_mj).collect();
            Validation::of(&p, &m)
        });
        if o.json {
            let mut j = serde_json::to_value(&v)?;
            j["scope"] = serde_json::to_value(o.scope)?;
            if let Some(e) = &energy {
                j["energy"] = serde_json::to_value(e)?;
            }
            return super::emit(&format!("{}\n", serde_json::to_string_pretty(&j)?));
        }
        // A ranking needs two rows: one gives no Spearman or Kendall (null in JSON).
        let rank = |r: f64| if r.is_finite() { format!("{r:.4}") } else { "n/a".into() };
        let scope = o.scope.tag(" (", ")");
        let line = |what: &str, v: &Validation| {
            format!(
                "{} on {}{what}{scope}: {} rows, Spearman {}, Kendall {}, MAPE {:.1} %, within ±10 % {:.1} %, within ±20 % {:.1} %\n",
                path.display(),
                model.target.name,
                v.rows,
                rank(v.spearman),
                rank(v.kendall),
                v.mape,
                100.0 * v.within_10,
                100.0 * v.within_20
            )
        };
        let mut out = line("", &v);
        if let Some(e) = &energy {
            out += &line(", energy", e);
        }
        return super::emit(&out);
    }
    let (Some(dataset), Some(metric)) = (&o.dataset, &o.metric) else {
        anyhow::bail!("give --dataset and --metric, or --measurements with --space or --models");
    };
    super::data_dir(&o.data)?;
    let d = load(&o.data, dataset, metric)?;
    let energy = metric.contains("energy");
    let (s, pred) = score(&d, &model, energy)?;
    if let Some(plot) = &o.plot {
        nasc::validate::plot(plot, &pred, &d.measured, &format!("{dataset} {metric} on {}", model.target.name))?;
    }
    if let Some(out) = &o.rows_out {
        let unit = if energy { "mj" } else { "ms" };
        let rows = nasc::validate::rows_csv(d.archs.iter().map(String::as_str), &d.measured, &pred, unit)?;
        nasc::io::write_atomic(out, &rows)?;
    }
    if o.json {
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&s)?));
    }
    let scope = s.scope.tag(" (", ")");
    super::emit(&format!(
        "{} {} on {}{scope}: {} rows, Spearman {:.4} (MACs {:.4}), Kendall {:.4}, MAPE {:.1} %, within ±10 % {:.1} %\n",
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
