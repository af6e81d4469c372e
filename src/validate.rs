//! Validation of a target's predictions against the public measurements in `data/`.
//!
//! Datasets (see `data/README.md` for their provenance):
//! - `nb201`: every NAS-Bench-201 cell on CIFAR-10 (`data/nb201_cifar10.csv`), degenerate cells
//!   (no live path from input to output) skipped; metrics `raspi4_ms`, `eyeriss_ms`, `fpga_ms`.
//! - `fbnet-cifar100`, `fbnet-imagenet`: 5,000 sampled FBNet architectures each
//!   (`data/fbnet_archs.csv`); metrics `raspi4_latency`, `eyeriss_latency`, `eyeriss_energy`,
//!   `fpga_latency`, `fpga_energy`, `edgegpu_latency`, `edgegpu_energy`.
//!
//! Every row is priced by the analytic model on the subnet of its architecture string — the
//! whole network, or the part the column measured ([`Scope`]) — and scored by Spearman ρ,
//! Kendall τ, MAPE and the share within ±10 %, next to the Spearman ρ of plain MACs on the
//! same rows (the baseline a cost model has to beat).

use std::path::Path;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use crate::costmodel::analytic::{Terms, WeightReads};
use crate::costmodel::report::LayerCost;
use crate::costmodel::{cost, stats, Model};
use crate::ir::spaces;
use crate::ir::Precision;

/// A measured dataset: architecture strings of one space and one measured metric per row.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Dataset name (`nb201`, `fbnet-cifar100`, …).
    pub name: String,
    /// The space the architecture strings belong to.
    pub space: String,
    /// The measured column.
    pub metric: String,
    /// Architecture strings.
    pub archs: Vec<String>,
    /// Measured values (ms or mJ).
    pub measured: Vec<f64>,
    /// MACs as published.
    pub macs: Vec<f64>,
    /// What of each network the measured column covers.
    pub scope: Scope,
}

/// What of each network a measured column covers, and so what a prediction must price.
/// `nasc calibrate` and `nasc validate` take it as `--scope` for a measurement CSV of an FBNet
/// space (`network`, `conv-blocks`, `isolated-blocks`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The whole network.
    #[default]
    Network,
    /// An FBNet subnet's searchable ConvBlocks only ([`spaces::fbnet::in_convblock`]):
    /// HW-NAS-Bench's FPGA latency and energy are 0 for its stem, `skip` blocks, head, pooling
    /// and classifier (`data/README.md`), so a row is the sum of the ConvBlocks' estimates.
    ConvBlocks,
    /// The sum of an FBNet subnet's blocks ([`spaces::fbnet::block_of`]) each run on its own:
    /// HW-NAS-Bench times every block (stem, searchable blocks, head, pooling, classifier) on
    /// its own and sums the times, on the Raspberry Pi 4 and on the Jetson TX2 (a TensorRT
    /// engine a block). On the TX2 every block with work pays one launch-and-synchronise round
    /// trip of the runtime (the target's `round_trip_us`, in the `host` term). On a CPU a block
    /// timed over and over keeps its weights in the last cache level when they fit there
    /// ([`WeightReads::Cached`]) and reads them from DRAM on every run when they do not
    /// ([`WeightReads::Streamed`], in the `weights` term).
    IsolatedBlocks,
}

impl Scope {
    /// What pricing a row over this scope leaves out, for reports: empty for the whole network.
    pub fn note(self) -> &'static str {
        match self {
            Scope::Network => "",
            Scope::ConvBlocks => "priced over their ConvBlocks, all the column counts",
            Scope::IsolatedBlocks => "priced as the sum of their blocks, each run on its own",
        }
    }

    /// [`Scope::note`] between `before` and `after` for a report line, or nothing for the whole
    /// network.
    pub fn tag(self, before: &str, after: &str) -> String {
        match self.note() {
            "" => String::new(),
            note => format!("{before}{note}{after}"),
        }
    }

    /// Checks that networks of `space` can be priced over this scope: the block scopes read
    /// FBNet's block names, so they need an `fbnet:` space.
    pub fn check_space(self, space: &str) -> Result<()> {
        if self != Scope::Network && !space.starts_with("fbnet") {
            let name = clap::ValueEnum::to_possible_value(&self).expect("no scope is skipped");
            bail!(
                "--scope {} prices FBNet blocks; space `{space}` is not an fbnet space (use --scope network)",
                name.get_name()
            );
        }
        Ok(())
    }

    /// The scope of a dataset's measured column.
    pub fn of(dataset: &str, metric: &str) -> Scope {
        match (dataset.starts_with("fbnet"), metric) {
            (true, m) if m.starts_with("fpga") => Scope::ConvBlocks,
            (true, m) if m.starts_with("edgegpu") || m.starts_with("raspi4") => Scope::IsolatedBlocks,
            _ => Scope::Network,
        }
    }
}

/// A network's predicted latency (ms), energy (mJ) and latency terms (ms) over what `scope`
/// covers of it.
pub fn price(graph: &crate::ir::Graph, model: &Model, scope: Scope) -> Result<(f64, f64, Terms)> {
    let sum = |layers: &mut dyn Iterator<Item = &LayerCost>| {
        let mut out = (0.0, 0.0, Terms::default());
        for l in layers {
            out.0 += l.latency_ms;
            out.1 += l.energy_mj;
            out.2.iter_mut().zip(&l.terms_ms).for_each(|(a, b)| *a += b);
        }
        out
    };
    Ok(match scope {
        Scope::Network => {
            let r = cost(graph, model)?;
            (r.latency_ms, r.energy_mj, r.terms_ms)
        }
        Scope::ConvBlocks => {
            let r = cost(graph, model)?;
            sum(&mut r.layers.iter().filter(|l| spaces::fbnet::in_convblock(&l.name)))
        }
        Scope::IsolatedBlocks => {
            let blocks = |layers: &[LayerCost]| {
                layers.iter().map(|l| spaces::fbnet::block_of(&l.name)).collect::<std::collections::BTreeSet<_>>().len()
            };
            let (latency, energy, mut terms, n) = match cpu_blocks_run_alone(graph, model)? {
                Some(layers) => {
                    let (latency, energy, terms) = sum(&mut layers.iter());
                    (latency, energy, terms, blocks(&layers))
                }
                None => {
                    let r = cost(graph, model)?;
                    (r.latency_ms, r.energy_mj, r.terms_ms, blocks(&r.layers))
                }
            };
            let trip = model.round_trip();
            let n = n as f64;
            terms.iter_mut().zip(&trip.terms).for_each(|(a, b)| *a += n * b * 1e3);
            (latency + n * trip.latency_s * 1e3, energy + n * trip.energy_j * 1e3, terms)
        }
    })
}

/// On a CPU target, the layers of an FBNet subnet priced as HW-NAS-Bench times them, each block
/// on its own over and over ([`Scope::IsolatedBlocks`]): a block whose weights fit the last
/// cache level keeps them there between runs, and one whose weights outgrow it streams them
/// from DRAM on every run. HW-NAS-Bench's Pi 4 CIFAR-100 blocks of 3× expansion on 4×4 inputs
/// take 1.1 ms with 184 channels out (843 kB of weights, under the 1 MiB L2) and 3.8 ms with
/// 352 (1.2 MB). `None` on other targets, which price the network as it is.
fn cpu_blocks_run_alone(graph: &crate::ir::Graph, model: &Model) -> Result<Option<Vec<LayerCost>>> {
    let Some(llc) = model.target.cpu().and(model.target.memory.last()) else {
        return Ok(None);
    };
    let priced = |weights: WeightReads| {
        let mut m = model.clone();
        m.weights = weights;
        cost(graph, &m).map(|r| r.layers)
    };
    let (cached, streamed) = (priced(WeightReads::Cached)?, priced(WeightReads::Streamed)?);
    let bytes = if model.floats == Precision::F16 { 2.0 } else { 4.0 };
    let mut weights = std::collections::BTreeMap::<&str, f64>::new();
    for l in &cached {
        *weights.entry(spaces::fbnet::block_of(&l.name)).or_default() += bytes * l.params as f64;
    }
    let fits = |l: &LayerCost| weights[spaces::fbnet::block_of(&l.name)] <= llc.size_kib * 1024.0;
    Ok(Some(cached.iter().zip(streamed).map(|(c, s)| if fits(c) { c.clone() } else { s }).collect()))
}

/// The dataset names [`load`] knows.
pub const DATASETS: &[&str] = &["nb201", "fbnet-cifar100", "fbnet-imagenet"];

/// A dataset's file in the data directory, its space, and the value of the file's `dataset`
/// column it keeps (for files holding several).
pub fn dataset_file(dataset: &str) -> Result<(&'static str, &'static str, Option<&'static str>)> {
    Ok(match dataset {
        "nb201" => ("nb201_cifar10.csv", "nb201:cifar10", None),
        "fbnet-cifar100" => ("fbnet_archs.csv", "fbnet:cifar100", Some("cifar100")),
        "fbnet-imagenet" => ("fbnet_archs.csv", "fbnet:imagenet", Some("ImageNet")),
        _ => bail!("unknown dataset `{dataset}` (known: {})", DATASETS.join(", ")),
    })
}

/// Loads the rows of `dataset` with their `metric` column from the data directory.
pub fn load(data_dir: &Path, dataset: &str, metric: &str) -> Result<Dataset> {
    let (file, space, filter) = dataset_file(dataset)?;
    let path = data_dir.join(file);
    let mut rdr = csv::Reader::from_path(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = rdr.headers().with_context(|| format!("{}: no header", path.display()))?.clone();
    let col = |name: &str| -> Result<usize> {
        headers.iter().position(|h| h == name).with_context(|| {
            format!(
                "{}: no column `{name}` (columns: {})",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (arch_col, macs_col, metric_col) =
        (col(if filter.is_some() { "op_idx_list" } else { "arch_str" })?, col("macs")?, col(metric)?);
    let degenerate_col = if filter.is_none() { Some(col("degenerate")?) } else { None };
    let dataset_col = if filter.is_some() { Some(col("dataset")?) } else { None };
    let mut d = Dataset {
        name: dataset.into(),
        space: space.into(),
        metric: metric.into(),
        archs: Vec::new(),
        measured: Vec::new(),
        macs: Vec::new(),
        scope: Scope::of(dataset, metric),
    };
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{}:{}", path.display(), i + 2))?;
        if let (Some(c), Some(want)) = (dataset_col, filter) {
            if &rec[c] != want {
                continue;
            }
        }
        if let Some(c) = degenerate_col {
            if &rec[c] == "1" {
                continue;
            }
        }
        let num = |c: usize| -> Result<f64> {
            rec[c]
                .parse::<f64>()
                .with_context(|| format!("{}:{}: `{}` is not a number", path.display(), i + 2, &rec[c]))
        };
        d.archs.push(rec[arch_col].to_string());
        d.measured.push(num(metric_col)?);
        d.macs.push(num(macs_col)?);
    }
    if d.archs.is_empty() {
        bail!("{}: no rows for {dataset}", path.display());
    }
    Ok(d)
}

/// Scores of one target on one dataset.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Score {
    /// Dataset name.
    pub dataset: String,
    /// Measured column.
    pub metric: String,
    /// Target name.
    pub target: String,
    /// Rows scored.
    pub rows: usize,
    /// Spearman ρ of the prediction.
    pub spearman: f64,
    /// Kendall τ-b of the prediction.
    pub kendall: f64,
    /// Spearman ρ of MACs on the same rows.
    pub spearman_macs: f64,
    /// MAPE of the uncalibrated prediction, %.
    pub mape: f64,
    /// Share within ±10 %.
    pub within_10: f64,
    /// What of each network was priced: what the column measured.
    pub scope: Scope,
}

/// Prices every row of `d` on `model` with `pick` choosing latency or energy of the report
/// (ms or mJ), and scores the prediction.
pub fn score(d: &Dataset, model: &Model, energy: bool) -> Result<(Score, Vec<f64>)> {
    let space = spaces::lookup(&d.space)?;
    let pred: Vec<f64> = d
        .archs
        .par_iter()
        .map(|a| {
            let (latency_ms, energy_mj, _) = price(&space.subnet(a)?, model, d.scope)?;
            Ok(if energy { energy_mj } else { latency_ms })
        })
        .collect::<Result<_>>()?;
    let s = Score {
        dataset: d.name.clone(),
        metric: d.metric.clone(),
        target: model.target.name.clone(),
        rows: d.archs.len(),
        spearman: stats::spearman(&pred, &d.measured),
        kendall: stats::kendall(&pred, &d.measured),
        spearman_macs: stats::spearman(&d.macs, &d.measured),
        mape: stats::mape(&pred, &d.measured),
        within_10: stats::within(&pred, &d.measured, 0.10),
        scope: d.scope,
    };
    Ok((s, pred))
}

/// Pixel size of [`plot`]'s image.
const PLOT_SIZE: (u32, u32) = (720, 640);

/// A predicted-against-measured scatter plot (log-log), with the y = x line and the ±10 %
/// band, titled with the scores; written atomically to `path` as SVG or PNG, after its
/// extension (`.svg`, `.png`). Text is set in DejaVu Sans, embedded in the binary, so the
/// plot looks the same on a machine without fonts.
pub fn plot(path: &Path, pred: &[f64], truth: &[f64], title: &str) -> Result<()> {
    use plotters::prelude::*;
    let png = plot_is_png(path)?;
    let pts: Vec<(f64, f64)> =
        truth.iter().zip(pred).filter(|(t, p)| **t > 0.0 && **p > 0.0).map(|(t, p)| (*t, *p)).collect();
    if pts.is_empty() {
        anyhow::bail!("{}: nothing to plot (no positive predictions and measurements)", path.display());
    }
    register_font();
    let v = crate::costmodel::calibrate::Validation::of(pred, truth);
    let caption = format!(
        "{title}: {} rows, Spearman {:.3}, MAPE {:.1} %, ±10 % {:.1} %",
        v.rows,
        v.spearman,
        v.mape,
        100.0 * v.within_10
    );
    let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: plotting failed: {e}", path.display());
    let bytes = if png {
        let (w, h) = PLOT_SIZE;
        let mut rgb = vec![0u8; 3 * w as usize * h as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, PLOT_SIZE).into_drawing_area();
            scatter(&root, &pts, &caption).map_err(|e| failed(&e))?;
        }
        let mut out = Vec::new();
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(&rgb, w, h, image::ColorType::Rgb8)
            .map_err(|e| failed(&e))?;
        out
    } else {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
            scatter(&root, &pts, &caption).map_err(|e| failed(&e))?;
        }
        svg.into_bytes()
    };
    crate::io::write_atomic(path, &bytes)
}

/// Rows of predictions against measurements as CSV, `arch,measured_<unit>,predicted_<unit>,
/// error_pct` (what `nasc validate --rows-out` and `nasc bench predict --rows-out` write, and
/// `nasc plot` draws; `unit` is `ms` for latency, `mj` for energy).
pub fn rows_csv<'a>(
    archs: impl IntoIterator<Item = &'a str>,
    measured: &[f64],
    predicted: &[f64],
    unit: &str,
) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["arch", &format!("measured_{unit}"), &format!("predicted_{unit}"), "error_pct"])?;
    for ((a, t), p) in archs.into_iter().zip(measured).zip(predicted) {
        w.write_record([a, &t.to_string(), &format!("{p:.6}"), &format!("{:.2}", 100.0 * (p - t) / t)])?;
    }
    Ok(w.into_inner()?)
}

/// Whether [`plot`] writes `path` as PNG (`.png`) rather than SVG (`.svg`); an error for any
/// other extension, so a command can refuse before its work rather than after.
pub fn plot_is_png(path: &Path) -> Result<bool> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => Ok(false),
        Some("png") => Ok(true),
        _ => bail!("{}: the plot's format comes from its extension: name it `….svg` or `….png`", path.display()),
    }
}

/// Registers the embedded DejaVu Sans as plotters' `sans-serif` (once).
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font shipped by the `dejavu` crate.
        let _ =
            plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Draws the scatter plot of `(measured, predicted)` points on `root`.
fn scatter<DB: plotters::prelude::DrawingBackend>(
    root: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    pts: &[(f64, f64)],
    caption: &str,
) -> std::result::Result<(), plotters::prelude::DrawingAreaErrorKind<DB::ErrorType>> {
    use plotters::prelude::*;
    let (lo, hi) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), (t, p)| (a.min(t.min(*p)), b.max(t.max(*p))));
    let (lo, hi) = (lo / 1.2, hi * 1.2);
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((lo..hi).log_scale(), (lo..hi).log_scale())?;
    // Log axes: label 1, 2 and 5 of each decade, leave the other grid lines bare.
    let label = |v: &f64| {
        let decade = 10f64.powf(v.log10().floor());
        let m = (v / decade * 1000.0).round() / 1000.0;
        if [1.0, 2.0, 5.0].contains(&m) {
            format!("{}", (v * 1e6).round() / 1e6)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("measured (ms or mJ)")
        .y_desc("predicted")
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .draw()?;
    for (f, style) in [(1.0, BLACK.stroke_width(1)), (1.1, RED.stroke_width(1)), (0.9, RED.stroke_width(1))] {
        chart.draw_series(LineSeries::new([(lo, lo * f), (hi, hi * f)], style))?;
    }
    chart.draw_series(pts.iter().map(|&(t, p)| Circle::new((t, p), 2, BLUE.mix(0.4).filled())))?;
    root.present()
}
