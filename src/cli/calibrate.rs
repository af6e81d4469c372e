//! `nasc calibrate`: fit a target's analytic terms to measurements and write a profile.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::builder::TypedValueParser;
use clap::Args;
use nasc::costmodel::calibrate::Profile;
use nasc::costmodel::Model;
use nasc::ir::Precision;

/// Options of `nasc calibrate`.
#[derive(Args, Debug)]
pub struct Options {
    /// Target whose terms are fitted (built-in name or .toml file).
    #[arg(long, short)]
    target: String,
    /// Measurement CSV: header with `arch` (or `model`), `latency_ms` and optionally `energy_mj`.
    #[arg(long, value_name = "M.csv")]
    measurements: PathBuf,
    /// The space the architecture strings belong to.
    #[arg(long, required_unless_present = "models", conflicts_with = "models")]
    space: Option<String>,
    /// Or a layer table (`model,op,in_c,in_h,in_w,out_c,kernel,stride,groups,act`) describing
    /// the measured models, whose names the CSV's `model` (or `arch`) column gives.
    #[arg(long, value_name = "L.csv")]
    models: Option<PathBuf>,
    /// What of each network a row measured, for an FBNet space: `network` (the whole network,
    /// one engine), `conv-blocks` (only the searchable ConvBlocks, as HW-NAS-Bench's FPGA
    /// columns) or `isolated-blocks` (the sum of every block run on its own, as HW-NAS-Bench's
    /// Raspberry Pi 4 and Jetson TX2 columns: on the TX2 each block pays the runtime's
    /// launch-and-synchronise round trip; on a CPU a block whose weights fit the last cache
    /// level keeps them there, and one whose weights outgrow it streams them from DRAM).
    #[arg(long, value_enum, default_value = "network")]
    scope: nasc::validate::Scope,
    /// Free-text name of the measured device (default: the target's description).
    #[arg(long)]
    device: Option<String>,
    /// A profile of a related device — the same runtime on another chip — whose shape (its
    /// coefficients over its global scale) replaces the analytic model's as the prior the
    /// fit starts from and is pulled towards; a file or `builtin:<name>`. Repeat it to use the
    /// geometric mean of several. Fitted with the same `--target`, its shape departs from the
    /// same model (calibrate the related device's measurements with this target first); helps
    /// most with few measurements (see README, "Transfer").
    #[arg(long, value_name = "PROFILE.json")]
    prior: Vec<PathBuf>,
    /// The precision the measured runtime computes float layers in: `f16` for one that runs
    /// float networks in half precision (ncnn on ARMv8.2 cores: Cortex-A55, A76, …). The
    /// profile records it, and every command that applies the profile prices float layers so.
    #[arg(long, value_parser = ["f32", "f16"], default_value = "f32")]
    floats: String,
    /// The output tile m of the Winograd transform F(m×m, 3×3) the measured runtime runs dense
    /// 3×3 stride-1 float convolutions with: 2, 4 or 6 (ncnn's kernels), or 0 for a runtime
    /// that runs them as any other convolution. The profile records it, and every command that
    /// applies the profile prices those convolutions so.
    #[arg(long, default_value_t = 0, value_parser = clap::builder::PossibleValuesParser::new(["0", "2", "4", "6"])
        .map(|s| s.parse::<u32>().expect("a listed value")))]
    winograd: u32,
    /// The profile to write.
    #[arg(short, long, value_name = "PROFILE.json")]
    output: PathBuf,
}

pub fn run(o: Options) -> Result<()> {
    let target = nasc::targets::lookup(&o.target)?;
    let device = o.device.clone().unwrap_or_else(|| target.description.clone());
    let mut model = Model::new(target)?;
    if o.floats == "f16" {
        model.floats = Precision::F16;
    }
    model.winograd = o.winograd;
    let bytes = std::fs::read(&o.measurements).with_context(|| format!("{}: cannot read", o.measurements.display()))?;
    let ms = nasc::study::parse_measurements(&bytes, &o.measurements.display().to_string())?;
    let nets = match (&o.space, &o.models) {
        (Some(s), _) => nasc::study::Networks::Space(s.clone()),
        (None, Some(m)) => nasc::study::Networks::Models(m.clone()),
        (None, None) => anyhow::bail!("give --space or --models"),
    };
    let priors = o.prior.iter().map(|p| nasc::profiles::read(p)).collect::<Result<Vec<_>>>()?;
    for (p, path) in priors.iter().zip(&o.prior) {
        if p.floats != model.floats {
            eprintln!(
                "note: prior {} was fitted on a runtime computing floats in {}, this one in {}: its shape carries that difference",
                path.display(),
                p.floats.name(),
                model.floats.name()
            );
        }
        if p.winograd != model.winograd {
            eprintln!(
                "note: prior {} was fitted on a runtime with Winograd tile {}, this one {} (--winograd): its shape carries that difference",
                path.display(),
                p.winograd,
                model.winograd
            );
        }
        if p.target != model.target.name {
            eprintln!(
                "note: prior {} was fitted on target `{}`: its shape departs from that model, not `{}`'s (calibrate its measurements with -t {} for an exact transfer)",
                path.display(),
                p.target,
                model.target.name,
                model.target.name
            );
        }
    }
    let rows = nasc::study::measurement_rows(&o.measurements, &nets, o.scope, &model, &ms)?;
    let (profile, ridge) = Profile::fit(
        &rows,
        &model,
        device,
        format!("{}{}", o.measurements.display(), o.scope.tag(" (", ")")),
        &bytes,
        &priors.iter().collect::<Vec<_>>(),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", o.measurements.display()))?;
    let folds = rows.len().clamp(2, 5);
    nasc::io::write_atomic(&o.output, serde_json::to_string_pretty(&profile)?.as_bytes())?;
    let v = &profile.validation;
    let energy = match &profile.energy_validation {
        Some(e) => format!(
            "energy: dynamic ×{:.3}, static power ×{:.3}{}; {folds}-fold cross-validated: Spearman {:.4}, MAPE {:.1} %, within ±10 % {:.1} %\n",
            profile.fit.energy_scale,
            profile.fit.static_power_scale,
            match profile.fit.energy_fixed_mj {
                0.0 => String::new(),
                c => format!(", {c:.4} mJ per inference"),
            },
            e.spearman,
            e.mape,
            100.0 * e.within_10
        ),
        None => String::new(),
    };
    super::emit(&format!(
        "fitted {} terms on {} measurements (ridge {ridge}{}); {folds}-fold cross-validated: Spearman {:.4}, MAPE {:.1} %, within ±10 % {:.1} %\n{energy}wrote {}\n",
        profile.terms.len(),
        rows.len(),
        match priors.len() {
            0 => String::new(),
            n => format!(", prior from {n} profile{}", if n == 1 { "" } else { "s" }),
        },
        v.spearman,
        v.mape,
        100.0 * v.within_10,
        o.output.display()
    ))
}
