//! `nasc cost`: latency, energy, MACs, parameters and peak memory of a model on a target.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use nasc::costmodel::{cost, Report};
use nasc::ir::spaces;
use rayon::prelude::*;

use super::model::ModelArgs;

/// Options of `nasc cost`.
#[derive(Args, Debug)]
pub struct Options {
    #[command(flatten)]
    model: ModelArgs,
    /// Target: a built-in name (see `nasc targets`) or a path to a target .toml file.
    #[arg(long, short)]
    target: String,
    /// A file of architecture strings of `--space`, one per line (`#` comments and blank lines
    /// skipped); prices every one, in parallel.
    #[arg(long, value_name = "FILE", requires = "space", conflicts_with_all = ["arch", "model"])]
    archs: Option<PathBuf>,
    /// A calibrated profile (from `nasc calibrate`) to apply to the target: a file, or `builtin:<target>/<data>` for one shipped in `profiles/`.
    #[arg(long, value_name = "PROFILE.json")]
    profile: Option<PathBuf>,
    /// Print JSON (one object, or an array of objects with `--archs`).
    #[arg(long)]
    json: bool,
    /// Leave the per-layer list out (JSON), or print only totals (table).
    #[arg(long)]
    summary: bool,
    /// Cost the graph `nasc optimize` extracts for this target instead of the input.
    #[arg(long)]
    optimize: bool,
    #[command(flatten)]
    limits: super::optimize::LimitArgs,
}

fn fmt_report(r: &Report, model: &nasc::costmodel::Model, summary: bool) -> String {
    let mut out = format!("model `{}` on {}", r.model, r.target);
    if model.scaling.is_some() {
        let mut how = Vec::new();
        if model.floats != nasc::ir::Precision::F32 {
            how.push(format!("f32 layers computed in {} as the profile's runtime does", model.floats.name()));
        }
        if model.winograd > 0 {
            how.push(format!("3×3 convolutions as Winograd F({},3)", model.winograd));
        }
        out += &if how.is_empty() { " (calibrated)".to_string() } else { format!(" (calibrated; {})", how.join(", ")) };
    }
    if let Some(a) = &r.arch {
        out += &format!(" (arch {a})");
    }
    out.push('\n');
    if !summary {
        out += &format!(
            "{:<34} {:<28} {:<18} {:>12} {:>11} {:>11}  where\n",
            "layer", "ops", "shape", "MACs", "lat ms", "energy mJ"
        );
        for l in &r.layers {
            out += &format!(
                "{:<34} {:<28} {:<18} {:>12} {:>11.4} {:>11.5}  {}\n",
                l.name,
                l.ops,
                format!("{:?}", l.shape),
                l.macs,
                l.latency_ms,
                l.energy_mj,
                match (l.on_host, l.class) {
                    (true, _) => "host",
                    // The profile's fixed energy per inference, booked on the input.
                    (false, nasc::costmodel::kernel::Class::Free) if l.energy_mj > 0.0 => "fixed energy per inference",
                    _ => "",
                }
            );
        }
    }
    out += &format!(
        "total: latency {:.4} ms, energy {:.5} mJ, {} MACs ({:.2} M), {} params, peak activations {} bytes ({:.1} KiB)\n",
        r.latency_ms,
        r.energy_mj,
        r.macs,
        r.macs as f64 / 1e6,
        r.params,
        r.peak_memory_bytes,
        r.peak_memory_bytes as f64 / 1024.0
    );
    for e in &r.exits {
        out += &format!(
            "to exit {} `{}`: {:.4} ms, {:.5} mJ, {:.2} M MACs\n",
            e.index,
            e.name,
            e.latency_ms,
            e.energy_mj,
            e.macs as f64 / 1e6
        );
    }
    for g in &r.gates {
        out += &format!(
            "gate `{}`: {:.4} ms with its block, {:.4} ms without ({:.2} M MACs)\n",
            g.name,
            g.latency_with_ms,
            g.latency_without_ms,
            g.block_macs as f64 / 1e6
        );
    }
    out
}

fn strip(mut r: Report, summary: bool) -> Report {
    if summary {
        r.layers.clear();
    }
    r
}

pub fn run(o: Options) -> Result<()> {
    let model = nasc::profiles::target_model(&o.target, o.profile.as_deref())?;
    if let Some(file) = &o.archs {
        let space_name = o.model.space.as_deref().expect("clap: --archs requires --space");
        let space = spaces::lookup(space_name)?;
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .collect();
        if lines.is_empty() {
            bail!("{}: no architecture strings", file.display());
        }
        let start = Instant::now();
        let reports: Vec<Report> = lines
            .par_iter()
            .map(|&(n, arch)| {
                let g = space.subnet(arch).with_context(|| format!("{}:{n}", file.display()))?;
                let g = if o.optimize {
                    nasc::optimize::optimize(&g, None, &model, &o.limits.limits())
                        .with_context(|| format!("{}:{n}", file.display()))?
                        .graph
                } else {
                    g
                };
                let r = cost(&g, &model).with_context(|| format!("{}:{n}", file.display()))?;
                Ok(strip(r, o.summary))
            })
            .collect::<Result<_>>()?;
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "priced {} architectures of {space_name} on {} in {secs:.2} s ({:.1} µs each)",
            reports.len(),
            model.target.name,
            secs * 1e6 / reports.len() as f64
        );
        if o.json {
            return super::emit(&format!("{}\n", serde_json::to_string(&reports)?));
        }
        let mut out = format!(
            "{:>12} {:>12} {:>12} {:>10} {:>12}  arch\n",
            "latency_ms", "energy_mj", "MACs", "params", "peak_bytes"
        );
        for r in &reports {
            out += &format!(
                "{:>12.4} {:>12.5} {:>12} {:>10} {:>12}  {}\n",
                r.latency_ms,
                r.energy_mj,
                r.macs,
                r.params,
                r.peak_memory_bytes,
                r.arch.as_deref().unwrap_or("")
            );
        }
        return super::emit(&out);
    }
    let optimized = |g: nasc::ir::Graph| -> Result<nasc::ir::Graph> {
        Ok(if o.optimize { nasc::optimize::optimize(&g, None, &model, &o.limits.limits())?.graph } else { g })
    };
    if let Some(segs) = o.model.table_segments()?.filter(|s| s.len() > 1) {
        // A layer-table model in several segments (`from = new`): each priced on its own, summed.
        let segs = segs.into_iter().map(optimized).collect::<Result<Vec<_>>>()?;
        let reports: Vec<Report> =
            nasc::study::segment_reports(&segs, &model)?.into_iter().map(|r| strip(r, o.summary && o.json)).collect();
        let (latency_ms, energy_mj) = reports.iter().fold((0.0, 0.0), |a, r| (a.0 + r.latency_ms, a.1 + r.energy_mj));
        let (macs, params) =
            reports.iter().fold((0u64, 0u64), |a, r| (a.0.saturating_add(r.macs), a.1.saturating_add(r.params)));
        if o.json {
            let total = serde_json::json!({
                "model": o.model.model_name, "target": model.target.name, "latency_ms": latency_ms,
                "energy_mj": energy_mj, "macs": macs, "params": params, "segments": reports,
            });
            return super::emit(&format!("{}\n", serde_json::to_string_pretty(&total)?));
        }
        let mut out = String::new();
        for (i, r) in reports.iter().enumerate() {
            out += &format!("segment {} of {}: ", i + 1, reports.len());
            out += &fmt_report(r, &model, o.summary);
        }
        out += &format!(
            "model total over {} segments: latency {latency_ms:.4} ms, energy {energy_mj:.5} mJ, {macs} MACs ({:.2} M), {params} params\n",
            reports.len(),
            macs as f64 / 1e6
        );
        return super::emit(&out);
    }
    let g = optimized(o.model.load_concrete()?)?;
    let r = strip(cost(&g, &model)?, o.summary && o.json);
    if o.json {
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&r)?));
    }
    super::emit(&fmt_report(&r, &model, o.summary))
}
