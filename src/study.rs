//! The few-shot calibration study on the public measurements in `data/`: calibrate a target on
//! a few randomly drawn architectures, score on all the others, repeat over several draws.
//!
//! Next to it, on the same rows: the Spearman ρ of MACs (and how far the model's is above it,
//! with a bootstrap interval over networks: [`gap_over_macs`]), and a per-layer additive
//! least-squares fit (one coefficient per (searchable layer, option) plus a constant, the
//! lookup table a NAS paper would fit) trained on *half* of the rows.
//!
//! The ncnn boards are scored a second time on the same draws with a *transfer prior*: the
//! shape of profiles fitted, on the board's own target, to every other ncnn board of the same
//! instruction set and float precision ([`transfer_sources`]) — what a new board's 20
//! measurements can lean on when the runtime has been calibrated elsewhere (HELP meta-trains on
//! other devices the same way). The board's own rows never enter its prior; the other boards ran the same networks.

use std::path::Path;

use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::costmodel::analytic::Terms;
use crate::costmodel::calibrate::{fit, fit_auto, prior_shape, FitOptions, Row, Validation};
use crate::costmodel::{cost, stats, Model};
use crate::ir::spaces;
use crate::validate::{load, Dataset};

/// One device of the study: a dataset column and the target that models it.
#[derive(Clone, Debug)]
pub struct Case {
    /// Dataset name ([`crate::validate::DATASETS`]).
    pub dataset: &'static str,
    /// Measured column.
    pub metric: &'static str,
    /// Target.
    pub target: &'static str,
    /// Measured energy column of the same rows, if the dataset has one (fitted into the
    /// profile's energy coefficients).
    pub energy: Option<&'static str>,
}

/// The devices with whole-network measurements in `data/`.
pub const CASES: &[Case] = &[
    Case { dataset: "nb201", metric: "raspi4_ms", target: "cortex-a72", energy: None },
    Case { dataset: "nb201", metric: "eyeriss_ms", target: "eyeriss", energy: None },
    Case { dataset: "nb201", metric: "fpga_ms", target: "fpga-zc706", energy: None },
    Case { dataset: "fbnet-cifar100", metric: "raspi4_latency", target: "cortex-a72", energy: None },
    Case { dataset: "fbnet-cifar100", metric: "eyeriss_latency", target: "eyeriss", energy: Some("eyeriss_energy") },
    Case { dataset: "fbnet-cifar100", metric: "fpga_latency", target: "fpga-zc706", energy: Some("fpga_energy") },
    Case { dataset: "fbnet-cifar100", metric: "edgegpu_latency", target: "jetson-tx2", energy: Some("edgegpu_energy") },
    Case { dataset: "fbnet-imagenet", metric: "raspi4_latency", target: "cortex-a72", energy: None },
    Case { dataset: "fbnet-imagenet", metric: "eyeriss_latency", target: "eyeriss", energy: Some("eyeriss_energy") },
    Case { dataset: "fbnet-imagenet", metric: "fpga_latency", target: "fpga-zc706", energy: Some("fpga_energy") },
    Case { dataset: "fbnet-imagenet", metric: "edgegpu_latency", target: "jetson-tx2", energy: Some("edgegpu_energy") },
    Case { dataset: "ofa-note10", metric: "mean_ms", target: "cortex-a76", energy: None },
    Case { dataset: "ncnn", metric: "pi4-a72", target: "cortex-a72", energy: None },
    Case { dataset: "ncnn", metric: "rk3588-a76", target: "cortex-a76", energy: None },
    Case { dataset: "ncnn", metric: "rk3588-a55", target: "cortex-a53", energy: None },
    Case { dataset: "ncnn", metric: "rk3566-a55", target: "cortex-a53", energy: None },
    Case { dataset: "ncnn", metric: "pi3-a53", target: "cortex-a53", energy: None },
    Case { dataset: "ncnn", metric: "unoq-a53", target: "cortex-a53", energy: None },
    Case { dataset: "ncnn", metric: "sd855-a76", target: "cortex-a76", energy: None },
    Case { dataset: "ncnn", metric: "rk3568-a55", target: "cortex-a53", energy: None },
    Case { dataset: "ncnn", metric: "pizero2-a53", target: "cortex-a53", energy: None },
    Case { dataset: "ncnn", metric: "rk3228h-a53", target: "cortex-a53", energy: None },
    Case { dataset: "ncnn", metric: "sg2000-c906", target: "c906", energy: None },
];

/// The cases whose full-data fits make a case's transfer prior: for an ncnn board, every other
/// ncnn board whose target has the same instruction set (the architecture of its triple) and
/// that computes floats in the same precision ([`crate::tables::Board::fp16`]): ncnn's ARM and
/// RISC-V kernels are different code, and so are its fp16 and fp32 kernels. Empty for every
/// other case.
pub fn transfer_sources(case: &Case) -> Result<Vec<&'static Case>> {
    if case.dataset != "ncnn" {
        return Ok(Vec::new());
    }
    // The architecture of the target's triple, and the precision the board computes floats in.
    let kernels = |c: &Case| -> Result<(String, crate::ir::Precision)> {
        let m = case_model(c)?;
        let isa = m.target.cpu().map_or("", |c| c.triple.split('-').next().unwrap_or(""));
        Ok((isa.to_string(), m.floats))
    };
    let own = kernels(case)?;
    let mut out = Vec::new();
    for c in CASES.iter().filter(|c| c.dataset == "ncnn" && c.metric != case.metric) {
        if kernels(c)? == own {
            out.push(c);
        }
    }
    Ok(out)
}

/// A case's transfer prior: the [`prior_shape`] of its `sources` ([`transfer_sources`]), each
/// fitted to all its rows *on the case's target* — every shape then departs from the same analytic model,
/// which the shapes of the profiles shipped for the other boards' own targets do not (on the
/// RK3588 A76, pooled ρ 0.938 with those, 0.971 with these). `None` without sources.
pub fn transfer_prior(data: &Path, case: &Case, sources: &[&Case]) -> Result<Option<Terms>> {
    let fits = sources
        .par_iter()
        .map(|c| {
            let seen = Case { target: case.target, ..(*c).clone() };
            fit_auto(&case_rows(data, &seen)?, FitOptions::default()).map(|(f, _)| f).map_err(anyhow::Error::msg)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(prior_shape(&fits.iter().collect::<Vec<_>>()))
}

/// The Winograd output tile ncnn's rows are priced with ([`Model::winograd`]): ncnn runs dense
/// 3×3 stride-1 float convolutions as F(2,3), F(4,3) or F(6,3) by shape, and one tile stands
/// for all three. Over 20 draws of the few-shot study (20 networks to fit), F(2,3) raised the
/// pooled ρ of 10 of the 11 boards and tied the 11th, against pricing them as any other
/// convolution (RK3588 A76 0.955 → 0.974, Pi 3 0.968 → 0.977, SG2000 0.897 → 0.904); F(4,3)
/// raised 9, and F(2,3) was ahead of it on 6 boards, behind on 3.
pub const NCNN_WINOGRAD: u32 = 2;

/// The model a case's rows are priced with: its target, with the float precision of its
/// runtime (half precision on the ncnn boards that compute floats so,
/// [`crate::tables::Board::fp16`]) and, for ncnn, its Winograd convolutions
/// ([`NCNN_WINOGRAD`]).
pub fn case_model(case: &Case) -> Result<Model> {
    let mut model = Model::new(crate::targets::lookup(case.target)?)?;
    if case.dataset == "ncnn" {
        model.winograd = NCNN_WINOGRAD;
        if crate::tables::board(case.metric).is_some_and(|b| b.fp16) {
            model.floats = crate::ir::Precision::F16;
        }
    }
    Ok(model)
}

/// The analytic terms and measurements of every row of a case on its target (what a shipped
/// profile is fitted to).
pub fn case_rows(data: &Path, case: &Case) -> Result<Vec<Row>> {
    Ok(prepare(data, case, &case_model(case)?)?.rows)
}

/// The data file a case reads, relative to the data directory.
pub fn case_source(case: &Case) -> &'static str {
    match case.dataset {
        "ofa-note10" => "ofa_note10_lut_layers.jsonl",
        "ncnn" => "ncnn_results.csv",
        d => crate::validate::dataset_file(d).map_or("", |(file, _, _)| file),
    }
}

/// The measured device of a case, in words.
pub fn case_device(case: &Case) -> String {
    match (case.dataset, case.metric) {
        ("ncnn", key) => crate::tables::board(key)
            .map_or_else(|| key.to_string(), |b| format!("{}, one thread (ncnn benchmark)", b.section)),
        ("ofa-note10", _) => "Samsung Galaxy Note10 CPU (Once-for-All per-block latency table)".into(),
        (_, m) if m.starts_with("raspi4") => "Raspberry Pi 4 Model B, Cortex-A72 (HW-NAS-Bench, measured)".into(),
        (_, m) if m.starts_with("eyeriss") => "Eyeriss (HW-NAS-Bench, simulator estimates)".into(),
        (_, m) if m.starts_with("fpga") => "ZC706 FPGA accelerator (HW-NAS-Bench, Vivado HLS estimates)".into(),
        (_, m) if m.starts_with("edgegpu") => "Jetson TX2 GPU, TensorRT (HW-NAS-Bench, measured)".into(),
        (_, m) => m.to_string(),
    }
}

/// What a case scores: calibration rows, MACs, and the additive baseline's features.
struct Prepared {
    rows: Vec<Row>,
    macs: Vec<f64>,
    feats: Vec<Vec<f64>>,
    width: usize,
}

/// The rows of a case on a model: a dataset of a built-in space, the Note10 block table
/// (`ofa-note10`) or an ncnn board (`ncnn`, metric = the board's key in
/// [`crate::tables::BOARDS`]).
fn prepare(data: &Path, case: &Case, model: &Model) -> Result<Prepared> {
    let from_tables = |models: &crate::tables::Models,
                       ms: &[Measurement],
                       macs: &std::collections::BTreeMap<String, f64>|
     -> Result<Prepared> {
        let graphs = crate::layers::graphs(models, case.dataset)?;
        let per: Vec<(Row, f64, Vec<f64>)> = ms
            .par_iter()
            .map(|m| {
                let segs = &graphs[&m.arch];
                let (terms, energy_mj) = segments_cost(segs, model)?;
                let row = Row {
                    terms,
                    energy_mj,
                    static_w: model.target.energy.static_w,
                    latency_ms: m.latency_ms,
                    measured_energy_mj: None,
                };
                Ok((row, macs[&m.arch], layer_features(segs)?))
            })
            .collect::<Result<_>>()?;
        let width = per.first().map_or(0, |p| p.2.len());
        let (rows, rest): (Vec<Row>, Vec<(f64, Vec<f64>)>) = per.into_iter().map(|(r, m, f)| (r, (m, f))).unzip();
        let (macs, feats) = rest.into_iter().unzip();
        Ok(Prepared { rows, macs, feats, width })
    };
    match case.dataset {
        "ofa-note10" => {
            let (models, ms, macs) = crate::tables::note10(data)?;
            from_tables(&models, &ms, &macs)
        }
        "ncnn" => {
            let board =
                crate::tables::board(case.metric).with_context(|| format!("unknown ncnn board `{}`", case.metric))?;
            let n = crate::tables::ncnn(data)?;
            let ms = crate::tables::board_measurements(data, board, &n.models)?;
            from_tables(&n.models, &ms, &n.macs)
        }
        _ => {
            let d = load(data, case.dataset, case.metric)?;
            let mut rows = rows(&d, model).with_context(|| format!("{} {}", case.dataset, case.metric))?;
            if let Some(col) = case.energy {
                let e = load(data, case.dataset, col)?;
                if e.archs != d.archs {
                    anyhow::bail!("{} {col}: not the rows of {}", case.dataset, case.metric);
                }
                rows.iter_mut().zip(&e.measured).for_each(|(r, &m)| r.measured_energy_mj = Some(m));
            }
            let (feats, width) = one_hot(&d)?;
            Ok(Prepared { rows, macs: d.macs, feats, width })
        }
    }
}

/// Per-layer features of a network for the additive baseline: MACs (millions) of dense
/// k×k, pointwise, depthwise, grouped convolutions and FC layers, elements (millions) read by
/// pooling and produced by elementwise layers, the number of layers, and a constant.
fn layer_features(segs: &[crate::ir::Graph]) -> Result<Vec<f64>> {
    use crate::costmodel::kernel::{fuse, Class};
    let mut f = vec![0.0; 9];
    for g in segs {
        let shapes = g.infer_shapes()?;
        for k in fuse(g, &shapes).0 {
            let slot = match k.class {
                Class::Conv => 0,
                Class::Pointwise => 1,
                Class::Depthwise => 2,
                Class::Grouped => 3,
                Class::Dense => 4,
                Class::Pool | Class::GlobalPool => 5,
                Class::Elementwise => 6,
                _ => continue,
            };
            f[slot] += match slot {
                5 => k.in_elems,
                6 => k.out_elems,
                _ => k.macs,
            } as f64
                * 1e-6;
            f[7] += 1.0;
        }
    }
    f[8] = 1.0;
    Ok(f)
}

/// The result of one case.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaseResult {
    /// Dataset.
    pub dataset: String,
    /// Measured column.
    pub metric: String,
    /// Target.
    pub target: String,
    /// The precision the case's runtime computes float layers in ([`case_model`]).
    pub floats: crate::ir::Precision,
    /// What of each network its rows are priced over: what the measured column counts.
    pub scope: crate::validate::Scope,
    /// Rows in the dataset.
    pub rows: usize,
    /// Architectures used to calibrate, per draw (at most the rows less 4).
    pub train: usize,
    /// Per draw: scores on the rows not used for calibration.
    pub draws: Vec<Validation>,
    /// The held-out predictions of every draw scored together (what to read where a draw
    /// scores only a few rows, as on the ncnn boards).
    pub pooled: Validation,
    /// Spearman ρ of MACs on the same pooled held-out rows.
    pub pooled_spearman_macs: f64,
    /// How far the pooled ρ is above MACs' ρ, with its uncertainty ([`gap_over_macs`]).
    pub pooled_gap_over_macs: Gap,
    /// The uncalibrated model on all rows.
    pub uncalibrated: Validation,
    /// Spearman ρ of MACs on all rows.
    pub spearman_macs: f64,
    /// The per-layer additive least-squares fit trained on half the rows, scored on the other.
    pub additive_half: Validation,
    /// Per draw, where the case measured energy: the calibrated energy on the held-out rows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub energy_draws: Vec<Validation>,
    /// The baseline on the same draws: the model's energy under one fitted scale (what
    /// calibration did before static power had a coefficient of its own).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub energy_one_scale_draws: Vec<Validation>,
    /// Spearman ρ of MACs against measured energy on all rows (NaN without energy).
    pub energy_spearman_macs: f64,
    /// The same draws calibrated with the transfer prior, where the case has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<Transfer>,
}

/// A case's draws calibrated with its transfer prior ([`transfer_prior`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Transfer {
    /// The boards the prior comes from.
    pub sources: Vec<String>,
    /// The prior shape, per term.
    pub prior: Vec<f64>,
    /// Per draw: scores on the rows not used for calibration.
    pub draws: Vec<Validation>,
    /// All draws' held-out predictions scored together.
    pub pooled: Validation,
    /// How far its pooled ρ is above MACs' ρ on the same rows ([`gap_over_macs`]).
    pub pooled_gap_over_macs: Gap,
}

/// The difference between two rank correlations with the same measurements, with a 95 %
/// bootstrap interval.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Gap {
    /// The difference on the rows themselves.
    pub diff: f64,
    /// 2.5th percentile of the bootstrap differences.
    pub lo: f64,
    /// 97.5th percentile.
    pub hi: f64,
}

/// Resamples in [`gap_over_macs`].
pub const BOOTSTRAP_RESAMPLES: usize = 400;

/// Spearman ρ of `pred` minus that of `macs` against `truth`, with a 95 % paired cluster
/// bootstrap interval: each resample draws the distinct networks (`network[i]` of row i) with
/// replacement and keeps every row of each, so a network scored in several draws counts as one
/// unit, and both correlations see the same resampled rows. Where a board scores 12 networks a
/// draw, a pooled ρ a thousandth under MACs' is a tie, and this says how wide the tie is.
pub fn gap_over_macs(pred: &[f64], macs: &[f64], truth: &[f64], network: &[usize], seed: u64) -> Gap {
    // Spearman is Pearson of ranks: the measurements are ranked once for both correlations.
    let rho_gap = |rows: &[usize]| {
        let ranked = |v: &[f64]| stats::ranks(&rows.iter().map(|&i| v[i]).collect::<Vec<f64>>());
        let t = ranked(truth);
        stats::pearson(&ranked(pred), &t) - stats::pearson(&ranked(macs), &t)
    };
    let all: Vec<usize> = (0..truth.len()).collect();
    let mut by_network = std::collections::BTreeMap::<usize, Vec<usize>>::new();
    for (i, &n) in network.iter().enumerate() {
        by_network.entry(n).or_default().push(i);
    }
    let rows_of: Vec<Vec<usize>> = by_network.into_values().collect();
    let mut diffs: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .into_par_iter()
        .map(|b| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_add(b as u64));
            let rows: Vec<usize> =
                (0..rows_of.len()).flat_map(|_| rows_of[rng.gen_range(0..rows_of.len())].iter().copied()).collect();
            rho_gap(&rows)
        })
        .filter(|d: &f64| d.is_finite())
        .collect();
    diffs.sort_by(f64::total_cmp);
    let at = |q: f64| diffs.get(((diffs.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    Gap { diff: rho_gap(&all), lo: at(0.025), hi: at(0.975) }
}

impl CaseResult {
    /// The target, with the float precision when it is not f32 (`cortex-a76 f16`).
    pub fn target_label(&self) -> String {
        match self.floats.is_f32() {
            true => self.target.clone(),
            false => format!("{} {}", self.target, self.floats.name()),
        }
    }

    /// Mean, minimum and maximum of a score over the draws.
    pub fn spread(&self, f: impl Fn(&Validation) -> f64) -> (f64, f64, f64) {
        spread(&self.draws, f)
    }

    /// The same over the energy draws.
    pub fn energy_spread(&self, f: impl Fn(&Validation) -> f64) -> (f64, f64, f64) {
        spread(&self.energy_draws, f)
    }

    /// The same over the one-scale energy baseline's draws.
    pub fn energy_one_scale_spread(&self, f: impl Fn(&Validation) -> f64) -> (f64, f64, f64) {
        spread(&self.energy_one_scale_draws, f)
    }
}

impl Transfer {
    /// Mean, minimum and maximum of a score over the draws.
    pub fn spread(&self, f: impl Fn(&Validation) -> f64) -> (f64, f64, f64) {
        spread(&self.draws, f)
    }
}

/// Mean, minimum and maximum of a score over draws.
fn spread(draws: &[Validation], f: impl Fn(&Validation) -> f64) -> (f64, f64, f64) {
    let v: Vec<f64> = draws.iter().map(f).collect();
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    (mean, v.iter().copied().fold(f64::MAX, f64::min), v.iter().copied().fold(f64::MIN, f64::max))
}

/// Analytic terms of every row of a dataset on a model.
pub fn rows(d: &Dataset, model: &Model) -> Result<Vec<Row>> {
    let space = spaces::lookup(&d.space)?;
    d.archs
        .par_iter()
        .zip(&d.measured)
        .map(|(a, &m)| {
            let (_, energy_mj, terms) = crate::validate::price(&space.subnet(a)?, model, d.scope)?;
            Ok(Row {
                terms,
                energy_mj,
                static_w: model.target.energy.static_w,
                latency_ms: m,
                measured_energy_mj: None,
            })
        })
        .collect()
}

/// One-hot (parameter, option) features of each architecture, plus a constant.
fn one_hot(d: &Dataset) -> Result<(Vec<Vec<f64>>, usize)> {
    let space = spaces::lookup(&d.space)?;
    let params = space.supernet().params().to_vec();
    let width: usize = params.iter().map(|p| p.options.len()).sum::<usize>() + 1;
    let feats = d
        .archs
        .iter()
        .map(|a| {
            let cfg = space.parse_arch(a)?;
            let mut f = vec![0.0; width];
            let mut off = 0;
            for p in &params {
                f[off + cfg.choices[&p.name]] = 1.0;
                off += p.options.len();
            }
            f[width - 1] = 1.0;
            Ok(f)
        })
        .collect::<Result<_>>()?;
    Ok((feats, width))
}

/// Least squares with a tiny ridge (the one-hot design is rank deficient), by the normal
/// equations and Cholesky.
fn least_squares(x: &[Vec<f64>], y: &[f64], n: usize) -> Vec<f64> {
    let mut a = vec![0.0; n * n];
    let mut b = vec![0.0; n];
    for (row, &t) in x.iter().zip(y) {
        for i in 0..n {
            if row[i] == 0.0 {
                continue;
            }
            b[i] += row[i] * t;
            for j in 0..n {
                a[i * n + j] += row[i] * row[j];
            }
        }
    }
    for i in 0..n {
        a[i * n + i] += 1e-8 * (1.0 + a[i * n + i]);
    }
    // Cholesky: A = L Lᵀ.
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                l[i * n + i] = (a[i * n + i] - s).max(1e-300).sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    let mut z = vec![0.0; n];
    for i in 0..n {
        z[i] = (b[i] - (0..i).map(|k| l[i * n + k] * z[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut w = vec![0.0; n];
    for i in (0..n).rev() {
        w[i] = (z[i] - (i + 1..n).map(|k| l[k * n + i] * w[k]).sum::<f64>()) / l[i * n + i];
    }
    w
}

/// Runs one case: `draws` draws of `train` architectures from a seed.
pub fn run_case(
    data: &Path,
    case: &Case,
    train: usize,
    draws: usize,
    seed: u64,
    opts: Option<FitOptions>,
) -> Result<CaseResult> {
    let model = case_model(case)?;
    let Prepared { rows, macs, feats, width } = prepare(data, case, &model)?;
    let sources = transfer_sources(case)?;
    let prior = transfer_prior(data, case, &sources)?;
    let mut transfer_draws = Vec::new();
    let mut transfer_pred = Vec::new();
    let n = rows.len();
    let truth: Vec<f64> = rows.iter().map(|r| r.latency_ms).collect();
    let analytic: Vec<f64> = rows.iter().map(|r| r.terms.iter().sum()).collect();
    // Small sets keep at least 4 rows to score (ncnn boards have 26–32 networks).
    let train = train.min(n.saturating_sub(4)).max(1);
    let mut out = Vec::new();
    let (mut energy_draws, mut energy_one_scale_draws) = (Vec::new(), Vec::new());
    let (mut pooled_pred, mut pooled_truth, mut pooled_macs) = (Vec::new(), Vec::new(), Vec::new());
    let mut pooled_network = Vec::new();
    for k in 0..draws {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_add(k as u64));
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(&mut rng);
        let (tr, te) = idx.split_at(train.min(n - 1));
        let tr_rows: Vec<Row> = tr.iter().map(|&i| rows[i].clone()).collect();
        // Calibrates on the draw, from the analytic model's shape or a prior's.
        let calibrate = |shape: Option<Terms>| {
            match opts {
                Some(o) => fit(&tr_rows, FitOptions { prior: shape, ..o }),
                None => fit_auto(&tr_rows, FitOptions { prior: shape, ..Default::default() }).map(|(f, _)| f),
            }
            .map_err(anyhow::Error::msg)
        };
        let f = calibrate(None)?;
        let pred: Vec<f64> = te.iter().map(|&i| f.predict(&rows[i].terms)).collect();
        let t: Vec<f64> = te.iter().map(|&i| truth[i]).collect();
        out.push(Validation::of(&pred, &t));
        if prior.is_some() {
            let f = calibrate(prior)?;
            let p: Vec<f64> = te.iter().map(|&i| f.predict(&rows[i].terms)).collect();
            transfer_draws.push(Validation::of(&p, &t));
            transfer_pred.extend(p);
        }
        if let Some(e) = te.iter().map(|&i| rows[i].measured_energy_mj).collect::<Option<Vec<f64>>>() {
            let pe: Vec<f64> = te.iter().map(|&i| f.predict_energy(&rows[i])).collect();
            energy_draws.push(Validation::of(&pe, &e));
            // One scale s minimising Σ (s·p/m − 1)² over the calibration rows.
            let (num, den) = tr_rows.iter().fold((0.0, 0.0), |(a, b), r| {
                let u = r.energy_mj / r.measured_energy_mj.unwrap_or(f64::NAN);
                (a + u, b + u * u)
            });
            let one: Vec<f64> = te.iter().map(|&i| num / den * rows[i].energy_mj).collect();
            energy_one_scale_draws.push(Validation::of(&one, &e));
        }
        pooled_pred.extend_from_slice(&pred);
        pooled_truth.extend_from_slice(&t);
        pooled_macs.extend(te.iter().map(|&i| macs[i]));
        pooled_network.extend_from_slice(te);
    }
    let gap = |pred: &[f64]| gap_over_macs(pred, &pooled_macs, &pooled_truth, &pooled_network, seed);
    // Additive per-layer least squares on half the rows.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rng);
    let (half_a, half_b) = idx.split_at(n / 2);
    let xa: Vec<Vec<f64>> = half_a.iter().map(|&i| feats[i].clone()).collect();
    let ya: Vec<f64> = half_a.iter().map(|&i| truth[i]).collect();
    let w = least_squares(&xa, &ya, width);
    let pb: Vec<f64> = half_b.iter().map(|&i| feats[i].iter().zip(&w).map(|(a, b)| a * b).sum()).collect();
    let tb: Vec<f64> = half_b.iter().map(|&i| truth[i]).collect();
    Ok(CaseResult {
        dataset: case.dataset.into(),
        metric: case.metric.into(),
        target: case.target.into(),
        floats: model.floats,
        scope: crate::validate::Scope::of(case.dataset, case.metric),
        rows: n,
        train,
        draws: out,
        pooled: Validation::of(&pooled_pred, &pooled_truth),
        pooled_spearman_macs: stats::spearman(&pooled_macs, &pooled_truth),
        pooled_gap_over_macs: gap(&pooled_pred),
        uncalibrated: Validation::of(&analytic, &truth),
        spearman_macs: stats::spearman(&macs, &truth),
        additive_half: Validation::of(&pb, &tb),
        energy_draws,
        energy_one_scale_draws,
        energy_spearman_macs: match rows.iter().map(|r| r.measured_energy_mj).collect::<Option<Vec<f64>>>() {
            Some(e) => stats::spearman(&macs, &e),
            None => f64::NAN,
        },
        transfer: prior.map(|p| Transfer {
            sources: sources.iter().map(|c| c.metric.to_string()).collect(),
            prior: p.to_vec(),
            pooled: Validation::of(&transfer_pred, &pooled_truth),
            pooled_gap_over_macs: gap(&transfer_pred),
            draws: transfer_draws,
        }),
    })
}

/// One measurement: an architecture string and what was measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Architecture string of the space, or model name of a layer table.
    pub arch: String,
    /// Latency, ms.
    pub latency_ms: f64,
    /// Energy, mJ, if measured.
    pub energy_mj: Option<f64>,
}

/// Reads a measurement CSV: a header with `arch` and `latency_ms` columns (and optionally
/// `energy_mj`), one measured network per row. Errors name the file and line.
pub fn read_measurements(path: &Path) -> Result<Vec<Measurement>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse_measurements(&bytes, &path.display().to_string())
}

/// Parses measurement CSV bytes; `origin` names them in errors.
pub fn parse_measurements(bytes: &[u8], origin: &str) -> Result<Vec<Measurement>> {
    let mut rdr = csv::Reader::from_reader(bytes);
    let headers = rdr.headers().with_context(|| format!("{origin}:1: no header"))?.clone();
    let col = |n: &str| headers.iter().position(|h| h.trim() == n);
    let (Some(arch), Some(lat)) = (col("arch").or_else(|| col("model")), col("latency_ms")) else {
        anyhow::bail!(
            "{origin}:1: the header needs `arch` (or `model`) and `latency_ms` columns (and optionally `energy_mj`)"
        );
    };
    let energy = col("energy_mj");
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.with_context(|| format!("{origin}:{line}"))?;
        let num = |c: usize, what: &str| -> Result<f64> {
            let v = rec.get(c).unwrap_or("").trim();
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .with_context(|| format!("{origin}:{line}: {what} `{v}` is not a positive number"))
        };
        out.push(Measurement {
            arch: rec.get(arch).unwrap_or("").trim().to_string(),
            latency_ms: num(lat, "latency_ms")?,
            energy_mj: energy.map(|c| num(c, "energy_mj")).transpose()?,
        });
    }
    if out.is_empty() {
        anyhow::bail!("{origin}: no measurements");
    }
    Ok(out)
}

/// The reports of a layer-table model's segments, each priced on its own as parts of one
/// inference: a profile's fixed energy per inference is paid by the first segment only.
pub fn segment_reports(segs: &[crate::ir::Graph], model: &Model) -> Result<Vec<crate::costmodel::Report>> {
    let rest = model.without_fixed_energy();
    segs.iter().enumerate().map(|(i, g)| Ok(cost(g, if i == 0 { model } else { &rest })?)).collect()
}

/// The analytic terms (ms) and energy (mJ) of a layer-table model: the sums over its segments
/// ([`segment_reports`]).
pub fn segments_cost(segs: &[crate::ir::Graph], model: &Model) -> Result<(crate::costmodel::analytic::Terms, f64)> {
    let mut terms = crate::costmodel::analytic::Terms::default();
    let mut energy = 0.0;
    for r in segment_reports(segs, model)? {
        for (t, x) in terms.iter_mut().zip(&r.terms_ms) {
            *t += x;
        }
        energy += r.energy_mj;
    }
    Ok((terms, energy))
}

/// A measurement CSV: `key,latency_ms` (`key` is `arch` or `model`), latencies to 6 decimals,
/// what [`parse_measurements`] reads back.
pub fn write_measurements(key: &str, ms: &[Measurement]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let rows = std::iter::once([key.to_string(), "latency_ms".into()])
        .chain(ms.iter().map(|m| [m.arch.clone(), format!("{:.6}", m.latency_ms)]));
    for r in rows {
        w.write_record(&r).expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8 fields")
}

/// Where the networks of a measurement CSV come from.
#[derive(Clone, Debug)]
pub enum Networks {
    /// Architecture strings of a built-in space.
    Space(String),
    /// Models of a layer table ([`crate::layers`]).
    Models(std::path::PathBuf),
}

/// The calibration rows of measurements on a model (errors name the CSV line).
/// Architecture strings of a space are priced over `scope` ([`crate::validate::price`]); a
/// layer table's models are priced whole, and any other scope is an error.
pub fn measurement_rows(
    path: &Path,
    nets: &Networks,
    scope: crate::validate::Scope,
    model: &Model,
    ms: &[Measurement],
) -> Result<Vec<Row>> {
    let (space, graphs) = match nets {
        Networks::Space(s) => {
            scope.check_space(s)?;
            (Some(spaces::lookup(s)?), None)
        }
        Networks::Models(_) if scope != crate::validate::Scope::Network => {
            anyhow::bail!("--scope applies to the architectures of a space (--space), not to a layer table's models")
        }
        Networks::Models(table) => {
            let origin = table.display().to_string();
            (None, Some(crate::layers::graphs(&crate::layers::read(table)?, &origin)?))
        }
    };
    ms.par_iter()
        .enumerate()
        .map(|(i, m)| {
            let at = || format!("{}:{}", path.display(), i + 2);
            let (terms, energy_mj) = match (&space, &graphs) {
                (Some(s), _) => {
                    let (_, energy_mj, terms) =
                        crate::validate::price(&s.subnet(&m.arch).with_context(at)?, model, scope)?;
                    (terms, energy_mj)
                }
                (None, Some(gs)) => {
                    let segs = gs
                        .get(&m.arch)
                        .with_context(|| format!("{}: model `{}` is not in the layer table", at(), m.arch))?;
                    segments_cost(segs, model)?
                }
                (None, None) => unreachable!("a space or a layer table"),
            };
            Ok(Row {
                terms,
                energy_mj,
                static_w: model.target.energy.static_w,
                latency_ms: m.latency_ms,
                measured_energy_mj: m.energy_mj,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 60 rows of 20 networks seen in 3 draws each: measured time, a predictor that ranks
    /// them exactly, and one that swaps neighbours.
    fn rows() -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<usize>) {
        let network: Vec<usize> = (0..60).map(|i| i % 20).collect();
        let truth: Vec<f64> = network.iter().map(|&n| 1.0 + n as f64).collect();
        let swapped: Vec<f64> = network.iter().map(|&n| 1.0 + (n ^ 1) as f64).collect();
        (truth.clone(), swapped, truth, network)
    }

    #[test]
    fn gap_over_macs_is_the_difference_with_an_interval_around_it() {
        let (exact, swapped, truth, network) = rows();
        let g = gap_over_macs(&exact, &swapped, &truth, &network, 7);
        let want = 1.0 - stats::spearman(&swapped, &truth);
        assert!((g.diff - want).abs() < 1e-12 && want > 0.0, "{g:?}, want {want}");
        assert!(g.lo > 0.0 && g.lo <= g.diff && g.diff <= g.hi, "{g:?}");
        // The same predictor on both sides: no gap, and every resample agrees.
        let g = gap_over_macs(&swapped, &swapped, &truth, &network, 7);
        assert_eq!((g.diff, g.lo, g.hi), (0.0, 0.0, 0.0));
        // Reversed: the interval flips sign. The seed fixes it.
        let r = gap_over_macs(&swapped, &exact, &truth, &network, 7);
        assert!(r.hi < 0.0 && (r.diff + want).abs() < 1e-12, "{r:?}");
        let again = gap_over_macs(&swapped, &exact, &truth, &network, 7);
        assert_eq!((r.lo, r.hi), (again.lo, again.hi));
    }

    #[test]
    fn gap_over_macs_resamples_networks_not_rows() {
        // A noisy predictor of 20 networks, each scored in 3 draws. Counted as 60 independent
        // rows the interval would be about √3 narrower than the 20 networks support.
        let (_, _, truth, network) = rows();
        let noisy: Vec<f64> = network.iter().map(|&n| 1.0 + n as f64 + [3.0, -2.5, 0.5, -4.0][n % 4]).collect();
        let macs: Vec<f64> = network.iter().map(|&n| 1.0 + n as f64 + [-1.0, 4.0, -3.5, 2.0][n % 4]).collect();
        let width = |g: Gap| g.hi - g.lo;
        let clustered = width(gap_over_macs(&noisy, &macs, &truth, &network, 3));
        let as_rows = width(gap_over_macs(&noisy, &macs, &truth, &(0..60).collect::<Vec<_>>(), 3));
        assert!(clustered > 1.3 * as_rows, "clustered {clustered}, rows {as_rows}");
    }
}
