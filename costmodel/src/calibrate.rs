//! Calibration: fitting the analytic model's terms to measurements, and the calibrated
//! profiles every query can use.
//!
//! Each measured network gives one row: the analytic model's latency split into its additive
//! [`term`]s (compute per op class, elementwise, activation memory, an NPU's weight reads,
//! per-kernel overhead, host work) and the measured latency. The fit finds one non-negative
//! coefficient per term so that `Σ coefficient × term` matches the measurements in
//! **relative** error (what MAPE and ±10 % count), in three steps:
//! 1. a global scale `s` (least squares from the median ratio, Huber-reweighted) — the
//!    analytic model's shape is trusted, its absolute speed is not;
//! 2. least squares of the relative residuals with a ridge pulling every coefficient towards
//!    `s` (a handful of measurements must not produce wild coefficients for terms they barely
//!    exercise) and every coefficient at least a quarter of `s` ([`FLOOR`]: no term is free),
//!    solved by cyclic coordinate descent on the normal equations (exact for this small,
//!    strictly convex problem);
//! 3. iteratively reweighted with Huber weights, so a few corrupted rows do not wreck the fit.
//!
//! Energy, when measured, is fitted after latency, in two parts: dynamic energy (MACs and
//! memory traffic) gets a coefficient, and so does the target's static power, which is paid
//! over the *calibrated* latency — on a device that idles at a few watts (a Jetson board) it
//! is most of the energy, and it is what makes energy follow latency. A fixed energy per
//! inference is a third coefficient where cross-validation finds one worth fitting.
//!
//! A *prior* ([`prior_shape`]) replaces the analytic model's shape where a runtime is known to
//! depart from it: the coefficients of profiles of related devices (the same runtime on other
//! chips), each relative to its global scale. Each term is then multiplied by its prior before
//! the fit, so the global scale and the ridge pull towards the prior's shape instead of the
//! analytic model's — what few measurements of a new device lean on (HELP's transfer from
//! other devices, with a calibrated model in place of a learnt one).
//!
//! A [`Profile`] records the device, the date, the source file and its hash, the coefficients
//! and its own cross-validated error; it applies to a [`Model`] as a [`Scaling`].

use serde::{Deserialize, Serialize};

use nasc_ir::Precision;

use crate::analytic::{term, Model, Scaling, Terms};
use crate::stats;

/// One measured network: its analytic terms (ms) and its measurements.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Analytic latency terms, ms.
    pub terms: Terms,
    /// Analytic energy, mJ (dynamic and static).
    pub energy_mj: f64,
    /// The target's static power, W (= mJ per ms): `static_w × latency` of `energy_mj` is
    /// static.
    pub static_w: f64,
    /// Measured latency, ms.
    pub latency_ms: f64,
    /// Measured energy, mJ (if measured).
    pub measured_energy_mj: Option<f64>,
}

/// Fit options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitOptions {
    /// Ridge strength towards the global scale, relative to the number of rows.
    pub ridge: f64,
    /// Huber threshold on relative residuals.
    pub huber: f64,
    /// Reweighting rounds.
    pub rounds: usize,
    /// Per-term prior shape ([`prior_shape`]); `None`: the analytic model's (all ones).
    pub prior: Option<Terms>,
    /// The smallest latency coefficient a term may take, as a share of the global scale (of
    /// the prior's coefficient for that term, with a prior): no term of the model is free.
    pub floor: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { ridge: 0.05, huber: 0.1, rounds: 6, prior: None, floor: FLOOR }
    }
}

/// A fit: per-term coefficients and two energy coefficients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Coefficient per term, in [`term::NAMES`] order.
    pub coefficients: Vec<f64>,
    /// Coefficient of dynamic energy (1 when energy was not measured).
    pub energy_scale: f64,
    /// Coefficient of the target's static power (1 when energy was not measured).
    #[serde(default = "unit")]
    pub static_power_scale: f64,
    /// The global scale the coefficients were pulled towards (0 in profiles written before it
    /// was recorded): the coefficients over it are the fit's shape ([`Fit::shape`]).
    #[serde(default)]
    pub global_scale: f64,
    /// Energy every inference costs whatever the network, mJ: 0 unless measured energy has a
    /// constant part that cross-validation finds worth a coefficient (see [`fit`]).
    #[serde(default)]
    pub energy_fixed_mj: f64,
}

fn unit() -> f64 {
    1.0
}

impl Fit {
    /// The calibrated latency of a row.
    pub fn predict(&self, terms: &Terms) -> f64 {
        terms.iter().zip(&self.coefficients).map(|(t, c)| t * c).sum()
    }

    /// The calibrated energy of a row, mJ.
    pub fn predict_energy(&self, r: &Row) -> f64 {
        let (dynamic, _) = energy_parts(r);
        self.energy_scale * dynamic
            + self.static_power_scale * r.static_w * self.predict(&r.terms)
            + self.energy_fixed_mj
    }

    /// The coefficients relative to the global scale: what the fit learnt about the shape of
    /// the analytic model on this device, apart from its absolute speed. Profiles written
    /// before the global scale was recorded use the median coefficient in its place.
    pub fn shape(&self) -> Terms {
        let scale = if self.global_scale > 0.0 {
            self.global_scale
        } else {
            let mut c = self.coefficients.clone();
            c.sort_by(f64::total_cmp);
            c[c.len() / 2]
        };
        let mut out = [1.0; term::N];
        if scale > 0.0 {
            out.iter_mut().zip(&self.coefficients).for_each(|(o, c)| *o = c / scale);
        }
        out
    }

    /// As a model scaling.
    pub fn scaling(&self) -> Scaling {
        let mut latency = [1.0; term::N];
        latency.copy_from_slice(&self.coefficients);
        Scaling {
            latency,
            energy: self.energy_scale,
            static_power: self.static_power_scale,
            fixed_energy_j: self.energy_fixed_mj * 1e-3,
        }
    }
}

/// A row's analytic energy split into its dynamic and static parts, mJ.
fn energy_parts(r: &Row) -> (f64, f64) {
    let static_mj = (r.static_w * r.terms.iter().sum::<f64>()).min(r.energy_mj);
    (r.energy_mj - static_mj, static_mj)
}

/// Non-negative least squares `min ‖A x − b‖² + Σ λ_i (x_i − p_i)²`, `x ≥ 0`, by cyclic
/// coordinate descent on the normal equations (`A` row-major, `n` columns).
pub fn nnls_ridge(a: &[f64], b: &[f64], n: usize, lambda: &[f64], prior: &[f64]) -> Vec<f64> {
    bounded_ridge(a, b, n, lambda, prior, &vec![0.0; n])
}

/// [`nnls_ridge`] with each `x_i` bounded below by `lower_i ≥ 0` instead of by 0.
pub fn bounded_ridge(a: &[f64], b: &[f64], n: usize, lambda: &[f64], prior: &[f64], lower: &[f64]) -> Vec<f64> {
    let m = b.len();
    assert_eq!(a.len(), m * n, "A has m × n entries");
    // Q = AᵀA + diag(λ), q = Aᵀb + λ·p.
    let mut q_mat = vec![0.0; n * n];
    let mut q = vec![0.0; n];
    for r in 0..m {
        let row = &a[r * n..(r + 1) * n];
        for i in 0..n {
            q[i] += row[i] * b[r];
            for j in 0..n {
                q_mat[i * n + j] += row[i] * row[j];
            }
        }
    }
    for i in 0..n {
        q_mat[i * n + i] += lambda[i];
        q[i] += lambda[i] * prior[i];
    }
    let mut x: Vec<f64> = prior.iter().zip(lower).map(|(p, l)| p.max(*l)).collect();
    for _ in 0..2000 {
        let mut change = 0.0f64;
        for i in 0..n {
            if q_mat[i * n + i] <= 0.0 {
                continue;
            }
            let grad: f64 = (0..n).map(|j| q_mat[i * n + j] * x[j]).sum::<f64>() - q[i];
            let new = (x[i] - grad / q_mat[i * n + i]).max(lower[i]);
            change = change.max((new - x[i]).abs() / x[i].abs().max(1e-12));
            x[i] = new;
        }
        if change < 1e-12 {
            break;
        }
    }
    x
}

/// The smallest share of the global scale a prior keeps a term at: a term the related
/// devices drove to 0 can still be fitted on this one.
pub const PRIOR_FLOOR: f64 = 0.02;

/// The prior shape of a set of fits of related devices ([`FitOptions::prior`]): per term, the
/// geometric mean of their [`Fit::shape`]s, at least [`PRIOR_FLOOR`]. `None` without fits.
pub fn prior_shape(fits: &[&Fit]) -> Option<Terms> {
    if fits.is_empty() {
        return None;
    }
    let shapes: Vec<Terms> = fits.iter().map(|f| f.shape()).collect();
    let mut out = [1.0; term::N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (shapes.iter().map(|s| s[i].max(PRIOR_FLOOR).ln()).sum::<f64>() / shapes.len() as f64).exp();
    }
    Some(out)
}

/// Fits coefficients to rows (see the module docs).
pub fn fit(rows: &[Row], opts: FitOptions) -> Result<Fit, String> {
    if rows.is_empty() {
        return Err("no measurements to fit".into());
    }
    if let Some(r) = rows.iter().find(|r| !(r.latency_ms.is_finite() && r.latency_ms > 0.0)) {
        return Err(format!("measured latency {} is not a positive number", r.latency_ms));
    }
    let (coefficients, global_scale) = match opts.prior {
        // The latency fit on terms scaled by the prior, its coefficients scaled back.
        Some(p) => {
            let p = p.map(|v| v.max(PRIOR_FLOOR));
            let scaled: Vec<Row> = rows
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.terms.iter_mut().zip(&p).for_each(|(t, c)| *t *= c);
                    r
                })
                .collect();
            let (c, s) = fit_latency(&scaled, opts)?;
            (c.iter().zip(&p).map(|(c, p)| c * p).collect(), s)
        }
        None => fit_latency(rows, opts)?,
    };
    let [energy_scale, static_power_scale, energy_fixed_mj] = fit_energy(rows, opts);
    Ok(Fit { coefficients, energy_scale, static_power_scale, global_scale, energy_fixed_mj })
}

/// The latency coefficients of rows and the global scale they were pulled towards.
fn fit_latency(rows: &[Row], opts: FitOptions) -> Result<(Vec<f64>, f64), String> {
    let pred = |r: &Row| r.terms.iter().sum::<f64>();
    // 1. Global scale in relative error, robustly: from the median of y/p, Huber-reweighted
    //    least squares s = Σ w(p/y) / Σ w(p/y)² (a few rows the runtime folded away or timed
    //    wrongly must not set the scale every coefficient is pulled towards).
    let u: Vec<f64> = rows.iter().map(|r| pred(r) / r.latency_ms).collect();
    let s = robust_scale(&u, opts).ok_or("the model predicts zero latency for every measurement")?;
    // 2–3. Ridge NNLS on relative residuals, reweighted (Huber).
    let n = term::N;
    let mut weights = vec![1.0; rows.len()];
    let mut coef = vec![s; n];
    for _ in 0..opts.rounds.max(1) {
        let mut a = Vec::with_capacity(rows.len() * n);
        let mut b = Vec::with_capacity(rows.len());
        for (r, w) in rows.iter().zip(&weights) {
            let sw: f64 = f64::sqrt(*w);
            a.extend(r.terms.iter().map(|t| sw * t / r.latency_ms));
            b.push(sw);
        }
        // The ridge, scaled by how much each term matters in the data: a term that carries
        // little of the measured time stays near the global scale.
        let scale: Vec<f64> = (0..n)
            .map(|i| rows.iter().map(|r| (r.terms[i] / r.latency_ms).powi(2)).sum::<f64>() / rows.len() as f64)
            .collect();
        let lambda: Vec<f64> = scale.iter().map(|v| opts.ridge * rows.len() as f64 * v.max(1e-12)).collect();
        coef = bounded_ridge(&a, &b, n, &lambda, &vec![s; n], &vec![opts.floor * s; n]);
        weights = rows
            .iter()
            .map(|r| {
                let e =
                    ((r.terms.iter().zip(&coef).map(|(t, c)| t * c).sum::<f64>() - r.latency_ms) / r.latency_ms).abs();
                huber(e, opts)
            })
            .collect();
    }
    Ok((coef, s))
}

/// The energy coefficients `[dynamic, static power, fixed mJ]` for rows with measured energy:
/// relative least squares like the latency fit — a robust global scale first, then
/// non-negative least squares with a ridge towards it, Huber-reweighted. The ridge is chosen
/// from [`RIDGE_GRID`] by k-fold cross-validated MAPE (its strongest end is one scale for
/// both parts), so 20 measurements do not buy a split they cannot support; so is whether a
/// fixed energy per inference gets a coefficient (pulled towards 0 by the same ridge), for
/// measurements with a constant part no per-kernel energy accounts for (HW-NAS-Bench's
/// Eyeriss energy carries the latency of the layers every architecture shares,
/// `data/README.md`). `[1, 1, 0]` without energy measurements.
fn fit_energy(rows: &[Row], opts: FitOptions) -> [f64; 3] {
    // Per measured row: dynamic energy, static energy over the *measured* latency (a fit to
    // these rows' calibrated latencies would see them fitted too well, and credit static power
    // with what the latency fit learnt), measured energy.
    let e: Vec<[f64; 3]> = rows
        .iter()
        .filter_map(|r| {
            let m = r.measured_energy_mj.filter(|m| m.is_finite() && *m > 0.0)?;
            Some([energy_parts(r).0, r.static_w * r.latency_ms, m])
        })
        .collect();
    if e.iter().all(|[d, st, _]| d + st <= 0.0) {
        return [1.0, 1.0, 0.0];
    }
    let folds = e.len().min(5);
    let mut best = (f64::INFINITY, opts.ridge, false);
    if folds >= 2 {
        // No ridge at all is a candidate: a device whose energy is all static power (an FPGA
        // board at constant power) needs the dynamic one at 0, far from the global scale any
        // ridge pulls towards.
        for fixed in [false, true] {
            for &ridge in &RIDGE_GRID {
                let mut err = 0.0;
                for f in 0..folds {
                    let train: Vec<[f64; 3]> =
                        e.iter().enumerate().filter(|(i, _)| i % folds != f).map(|(_, r)| *r).collect();
                    let [a, b, c] = energy_nnls(&train, ridge, fixed, opts);
                    err += e
                        .iter()
                        .skip(f)
                        .step_by(folds)
                        .map(|[d, st, m]| ((a * d + b * st + c) - m).abs() / m)
                        .sum::<f64>();
                }
                if err < best.0 {
                    best = (err, ridge, fixed);
                }
            }
        }
    }
    energy_nnls(&e, best.1, best.2, opts)
}

/// `[dynamic, static, fixed]` coefficients of `[dynamic mJ, static mJ, measured mJ]` rows at
/// one ridge (the fixed energy 0 unless `fixed`).
fn energy_nnls(e: &[[f64; 3]], ridge: f64, fixed: bool, opts: FitOptions) -> [f64; 3] {
    let u: Vec<f64> = e.iter().map(|[d, st, m]| (d + st) / m).collect();
    let Some(g) = robust_scale(&u, opts) else {
        return [1.0, 1.0, 0.0];
    };
    let n = if fixed { 3 } else { 2 };
    let row = |[d, st, m]: &[f64; 3]| [d / m, st / m, 1.0 / m];
    let mut w: Vec<f64> = vec![1.0; e.len()];
    let mut x = vec![g, g, 0.0];
    for _ in 0..opts.rounds.max(1) {
        let a: Vec<f64> =
            e.iter().zip(&w).flat_map(|(r, w)| row(r).into_iter().take(n).map(move |v| w.sqrt() * v)).collect();
        let b: Vec<f64> = w.iter().map(|w| w.sqrt()).collect();
        let scale = |j: usize| a.iter().skip(j).step_by(n).map(|v| v * v).sum::<f64>() / e.len() as f64;
        let lambda: Vec<f64> = (0..n).map(|j| ridge * e.len() as f64 * scale(j).max(1e-12)).collect();
        let mut sol = nnls_ridge(&a, &b, n, &lambda, &[g, g, 0.0][..n]);
        sol.resize(3, 0.0);
        x = sol;
        w = e.iter().map(|[d, st, m]| huber(((x[0] * d + x[1] * st + x[2]) - m).abs() / m, opts)).collect();
    }
    [x[0], x[1], x[2]]
}

/// The Huber weight of a relative residual `e`.
fn huber(e: f64, opts: FitOptions) -> f64 {
    if e <= opts.huber {
        1.0
    } else {
        opts.huber / e
    }
}

/// The robust global scale `s` of predictions over measurements `u = p / y`: from the median
/// of `y / p`, Huber-reweighted least squares `s = Σ w u / Σ w u²` (a few rows the runtime
/// folded away or timed wrongly must not set it). `None` when nothing is predicted above 0.
fn robust_scale(u: &[f64], opts: FitOptions) -> Option<f64> {
    let mut ratios: Vec<f64> = u.iter().filter(|&&v| v > 0.0).map(|v| 1.0 / v).collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let mut s = ratios[ratios.len() / 2];
    for _ in 0..opts.rounds.max(1) {
        let (num, den) = u.iter().fold((0.0, 0.0), |(a, b), &v| {
            let w = huber((s * v - 1.0).abs(), opts);
            (a + w * v, b + w * v * v)
        });
        s = num / den;
    }
    Some(s)
}

/// The default [`FitOptions::floor`]. NNLS drives a term to 0 when the calibration rows barely
/// exercise it and noise favours less of it, and then rows that are mostly that term come out
/// nearly free: the squeeze-excite pools carry 1 % of the Note10 blocks' time, and three of five
/// draws of 20 blocks put the pool term at 0, 0 and 0.39 of the global scale, which priced the
/// five global pools (86 % pooling) at a fraction of their time.
pub const FLOOR: f64 = 0.25;

/// Ridge strengths [`fit_auto`] chooses from, none at all first (plain non-negative least
/// squares, [`nnls_ridge`] starting from the global scale): a simulator's or a lookup table's
/// sums are close to exact in the model's terms, and there any pull towards the global scale
/// only blurs the ranking (Eyeriss FBNet-ImageNet, 20 architectures: ρ 0.974 with 0.003 as the
/// weakest ridge, 0.996 with these).
pub const RIDGE_GRID: [f64; 10] = [0.0, 0.0003, 0.001, 0.003, 0.01, 0.05, 0.3, 2.0, 20.0, 1e4];

/// Fits with the ridge strength that minimises the k-fold cross-validated MAPE on the rows
/// themselves (k = 5, or one row per fold below 10 rows): few rows or noisy measurements keep
/// the coefficients near the global scale, many clean rows let each term move. `base` gives
/// every other option (the prior). Returns the fit and the chosen ridge.
pub fn fit_auto(rows: &[Row], base: FitOptions) -> Result<(Fit, f64), String> {
    let folds = if rows.len() >= 10 { 5 } else { rows.len() };
    let mut best = (f64::INFINITY, base.ridge);
    if folds >= 2 {
        for &ridge in &RIDGE_GRID {
            let opts = FitOptions { ridge, ..base };
            let pred = cross_validate(rows, folds, opts)?;
            let truth: Vec<f64> = rows.iter().map(|r| r.latency_ms).collect();
            let m = stats::mape(&pred, &truth);
            if m < best.0 {
                best = (m, ridge);
            }
        }
    }
    Ok((fit(rows, FitOptions { ridge: best.1, ..base })?, best.1))
}

/// Scores of predictions against measurements. A score that is not a number (the rank
/// correlation of measurements that all tie) is written as JSON `null` and read back as NaN.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Rows scored.
    pub rows: usize,
    /// Spearman ρ.
    #[serde(deserialize_with = "nan_if_null")]
    pub spearman: f64,
    /// Kendall τ-b.
    #[serde(deserialize_with = "nan_if_null")]
    pub kendall: f64,
    /// Mean absolute percentage error, %.
    #[serde(deserialize_with = "nan_if_null")]
    pub mape: f64,
    /// Share within ±10 %.
    #[serde(deserialize_with = "nan_if_null")]
    pub within_10: f64,
    /// Share within ±20 %.
    #[serde(deserialize_with = "nan_if_null")]
    pub within_20: f64,
}

/// A number, or NaN for `null` (what serde_json writes for NaN).
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Validation {
    /// Scores `pred` against `truth`.
    pub fn of(pred: &[f64], truth: &[f64]) -> Validation {
        Validation {
            rows: pred.len(),
            spearman: stats::spearman(pred, truth),
            kendall: stats::kendall(pred, truth),
            mape: stats::mape(pred, truth),
            within_10: stats::within(pred, truth, 0.10),
            within_20: stats::within(pred, truth, 0.20),
        }
    }
}

/// A calibrated profile: the file `nasc calibrate` writes and `--profile` reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Always `nasc-profile`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// The target the terms come from.
    pub target: String,
    /// The measured device, free text.
    pub device: String,
    /// Creation date, `YYYY-MM-DD` (UTC).
    pub created: String,
    /// The measurement file.
    pub source: String,
    /// FNV-1a 64 of the measurement file's bytes, hex.
    pub source_hash: String,
    /// Term names, in coefficient order.
    pub terms: Vec<String>,
    /// The fit.
    pub fit: Fit,
    /// Cross-validated error on the fitted data (k-fold when there are enough rows).
    pub validation: Validation,
    /// The same for energy, when every row measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_validation: Option<Validation>,
    /// The profiles whose shape was the prior ([`prior_shape`]), as `device (source, hash)`;
    /// empty when the fit started from the analytic model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prior: Vec<String>,
    /// The precision the measured runtime computes float layers in, as the rows were priced
    /// ([`Model::floats`]); applying the profile prices them the same way. Omitted for f32.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub floats: Precision,
    /// The Winograd output tile the measured runtime runs 3×3 stride-1 float convolutions
    /// with, as the rows were priced ([`Model::winograd`]); applying the profile prices them
    /// the same way. Omitted for 0 (none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub winograd: u32,
}

fn is_zero(m: &u32) -> bool {
    *m == 0
}

impl Profile {
    /// Fits a profile to rows priced by `model` ([`fit_auto`]), with the shape of `prior`
    /// profiles as the prior when there are any, and scores it by k-fold cross-validation on
    /// the same rows (k = 5, fewer below 5 rows); `source_bytes` are hashed into it. Returns
    /// it with the chosen ridge.
    pub fn fit(
        rows: &[Row],
        model: &Model,
        device: String,
        source: String,
        source_bytes: &[u8],
        prior: &[&Profile],
    ) -> Result<(Profile, f64), String> {
        if rows.len() < 2 {
            return Err(format!(
                "{} measurement{}: a profile needs at least 2, to record its cross-validated error",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            ));
        }
        let fits: Vec<&Fit> = prior.iter().map(|p| &p.fit).collect();
        let base = FitOptions { prior: prior_shape(&fits), ..Default::default() };
        let (fit, ridge) = fit_auto(rows, base)?;
        let opts = FitOptions { ridge, ..base };
        let folds = rows.len().clamp(2, 5);
        let cv = cross_validate(rows, folds, opts)?;
        let truth: Vec<f64> = rows.iter().map(|r| r.latency_ms).collect();
        let measured_energy: Option<Vec<f64>> = rows.iter().map(|r| r.measured_energy_mj).collect();
        let energy_validation = match measured_energy {
            Some(m) => Some(Validation::of(&cross_validate_energy(rows, folds, opts)?, &m)),
            None => None,
        };
        let profile = Profile {
            format: "nasc-profile".into(),
            version: 1,
            target: model.target.name.clone(),
            device,
            created: today(),
            source,
            source_hash: fnv1a_hex(source_bytes),
            terms: term::NAMES.iter().map(|s| s.to_string()).collect(),
            fit,
            validation: Validation::of(&cv, &truth),
            energy_validation,
            prior: prior.iter().map(|p| format!("{} ({}, {})", p.device, p.source, p.source_hash)).collect(),
            floats: model.floats,
            winograd: model.winograd,
        };
        Ok((profile, ridge))
    }

    /// Parses a profile, checking it fits this build's terms. A profile written before a term
    /// of [`ADDED_TERMS`] existed gives it the coefficient of the term that priced its kernels
    /// then.
    pub fn from_json(text: &str) -> Result<Profile, String> {
        let mut p: Profile = serde_json::from_str(text).map_err(|e| format!("profile: {e}"))?;
        if p.format != "nasc-profile" || p.version != 1 {
            return Err(format!("profile: format `{}` version {}, expected nasc-profile 1", p.format, p.version));
        }
        if p.fit.coefficients.len() != p.terms.len() {
            return Err(format!("profile: {} coefficients for {} terms", p.fit.coefficients.len(), p.terms.len()));
        }
        for &name in &term::NAMES[p.terms.len().min(term::N)..] {
            let from = ADDED_TERMS.iter().find(|(added, _)| *added == name).map(|(_, from)| *from);
            let Some(c) = from.and_then(|f| p.terms.iter().position(|t| t == f)).map(|i| p.fit.coefficients[i]) else {
                break;
            };
            p.terms.push(name.into());
            p.fit.coefficients.push(c);
        }
        if p.terms.iter().map(String::as_str).ne(term::NAMES.iter().copied()) {
            let unknown: Vec<&str> = p.terms.iter().map(String::as_str).filter(|t| !term::NAMES.contains(t)).collect();
            let missing: Vec<&str> = term::NAMES.iter().copied().filter(|n| !p.terms.iter().any(|t| t == n)).collect();
            return Err(format!(
                "profile: its terms are not this build's (unknown {unknown:?}, missing {missing:?}); refit it with `nasc calibrate`"
            ));
        }
        if p.fit
            .coefficients
            .iter()
            .chain([&p.fit.energy_scale, &p.fit.static_power_scale])
            .any(|c| !(c.is_finite() && *c >= 0.0))
        {
            return Err("profile: coefficients must be finite and non-negative".into());
        }
        Ok(p)
    }

    /// Applies the profile to a model of its target.
    pub fn apply(&self, model: &mut Model) -> Result<(), String> {
        if model.target.name != self.target {
            return Err(format!("profile for `{}` applied to target `{}`", self.target, model.target.name));
        }
        model.scaling = Some(self.fit.scaling());
        model.floats = self.floats;
        model.winograd = self.winograd;
        Ok(())
    }
}

/// Terms added to [`term::NAMES`] after profiles were first written, each with the term that
/// priced its kernels before: a profile without it takes that term's coefficient.
pub const ADDED_TERMS: [(&str, &str); 1] = [("int8_conv3x3", "int8")];

/// 64-bit FNV-1a of bytes, as 16 hex digits.
pub fn fnv1a_hex(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    format!("{h:016x}")
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let days =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// k-fold cross-validated predictions (each row predicted by a fit without its fold).
pub fn cross_validate(rows: &[Row], folds: usize, opts: FitOptions) -> Result<Vec<f64>, String> {
    cross_predict(rows, folds, opts, |f, r| f.predict(&r.terms))
}

/// k-fold cross-validated energy predictions, mJ.
pub fn cross_validate_energy(rows: &[Row], folds: usize, opts: FitOptions) -> Result<Vec<f64>, String> {
    cross_predict(rows, folds, opts, Fit::predict_energy)
}

fn cross_predict(
    rows: &[Row],
    folds: usize,
    opts: FitOptions,
    predict: impl Fn(&Fit, &Row) -> f64,
) -> Result<Vec<f64>, String> {
    let k = folds.clamp(2, rows.len().max(2));
    let mut pred = vec![0.0; rows.len()];
    for f in 0..k {
        let train: Vec<Row> = rows.iter().enumerate().filter(|(i, _)| i % k != f).map(|(_, r)| r.clone()).collect();
        let fit = fit(&train, opts)?;
        for (i, r) in rows.iter().enumerate() {
            if i % k == f {
                pred[i] = predict(&fit, r);
            }
        }
    }
    Ok(pred)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nnls_matches_known_solutions() {
        // Unconstrained optimum inside the feasible set: plain least squares.
        let a = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let x = nnls_ridge(&a, &[1.0, 2.0, 3.0], 2, &[0.0, 0.0], &[0.0, 0.0]);
        assert!((x[0] - 1.0).abs() < 1e-9 && (x[1] - 2.0).abs() < 1e-9, "{x:?}");
        // Optimum with a negative coordinate: f = (x0 − 1)² + (x0 + x1 + 1)² grows with x1
        // everywhere on x ≥ 0, so x1 = 0; then (x0 − 1)² + (x0 + 1)² is least at x0 = 0.
        let a = [1.0, 0.0, 1.0, 1.0];
        let x = nnls_ridge(&a, &[1.0, -1.0], 2, &[0.0, 0.0], &[0.0, 0.0]);
        assert!(x[0].abs() < 1e-9 && x[1].abs() < 1e-9, "{x:?}");
        // A column the rows never exercise keeps its prior; of two equal columns one carries b.
        let x = nnls_ridge(&[1.0, 0.0, 2.0, 0.0], &[3.0, 6.0], 2, &[0.0, 0.0], &[0.7, 0.7]);
        assert!((x[0] - 3.0).abs() < 1e-9 && x[1] == 0.7, "{x:?}");
        let x = nnls_ridge(&[1.0, 1.0, 2.0, 2.0], &[3.0, 6.0], 2, &[0.0, 0.0], &[0.0, 0.0]);
        assert!((x[0] + x[1] - 3.0).abs() < 1e-9 && x.iter().all(|v| *v >= 0.0), "{x:?}");
        // A strong ridge pins the solution to the prior.
        let x = nnls_ridge(&[1.0], &[10.0], 1, &[1e9], &[3.0]);
        assert!((x[0] - 3.0).abs() < 1e-6);
    }

    #[test]
    fn nnls_meets_the_optimality_conditions() {
        // Karush–Kuhn–Tucker on 300 random problems: x ≥ l (l = 0, or random lower bounds for
        // every other problem), no descent direction left (the gradient of
        // ½‖Ax − b‖² + ½Σλ(x − p)² vanishes where x > l and is ≥ 0 where x = l).
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for case in 0..300 {
            let n = 1 + case % 7;
            let m = n + case % 5;
            let a: Vec<f64> = (0..m * n).map(|_| uniform() * 4.0 - 1.0).collect();
            let b: Vec<f64> = (0..m).map(|_| uniform() * 4.0 - 2.0).collect();
            let lambda: Vec<f64> = (0..n).map(|i| if case % 3 == 0 { 0.0 } else { uniform() * (i as f64) }).collect();
            let prior: Vec<f64> = (0..n).map(|_| uniform()).collect();
            let (x, lower) = if case % 2 == 0 {
                (nnls_ridge(&a, &b, n, &lambda, &prior), vec![0.0; n])
            } else {
                let lower: Vec<f64> = (0..n).map(|_| uniform() * 0.5).collect();
                (bounded_ridge(&a, &b, n, &lambda, &prior, &lower), lower)
            };
            for i in 0..n {
                let r: f64 =
                    (0..m).map(|k| a[k * n + i] * ((0..n).map(|j| a[k * n + j] * x[j]).sum::<f64>() - b[k])).sum();
                let g = r + lambda[i] * (x[i] - prior[i]);
                assert!(x[i] >= lower[i], "case {case}: {x:?} below {lower:?}");
                let free = x[i] > lower[i];
                assert!(if free { g.abs() < 1e-8 } else { g > -1e-8 }, "case {case}, x{i}: gradient {g}, {x:?}");
            }
        }
    }

    fn rows_from(coef: &[f64], n: usize) -> Vec<Row> {
        (0..n)
            .map(|i| {
                let mut terms = [0.0; term::N];
                for (j, t) in terms.iter_mut().enumerate() {
                    // Shifts of one ramp modulo a prime above the term count: independent columns.
                    *t = ((i * 7 + j * 3) % 17) as f64 + 1.0;
                }
                let y: f64 = terms.iter().zip(coef).map(|(t, c)| t * c).sum();
                Row { terms, energy_mj: 1.0, static_w: 0.0, latency_ms: y, measured_energy_mj: Some(2.0) }
            })
            .collect()
    }

    #[test]
    fn fit_recovers_coefficients_and_shrugs_off_outliers() {
        let truth: [f64; term::N] = [2.0, 0.5, 1.0, 3.0, 1.5, 0.8, 1.2, 2.5, 0.7, 1.1, 0.9, 1.8, 1.3, 0.6];
        let rows = rows_from(&truth, 200);
        let f = fit(&rows, FitOptions { ridge: 1e-9, ..Default::default() }).unwrap();
        for (c, t) in f.coefficients.iter().zip(&truth) {
            assert!((c - t).abs() < 1e-3, "{:?}", f.coefficients);
        }
        assert!((f.energy_scale - 2.0).abs() < 1e-12);
        // Corrupt 5 % of the rows by ×5: the robust fit stays within a few percent.
        let mut bad = rows.clone();
        for r in bad.iter_mut().step_by(20) {
            r.latency_ms *= 5.0;
        }
        let f = fit(&bad, FitOptions { ridge: 1e-9, ..Default::default() }).unwrap();
        let pred: Vec<f64> = rows.iter().map(|r| f.predict(&r.terms)).collect();
        let truth_y: Vec<f64> = rows.iter().map(|r| r.latency_ms).collect();
        assert!(stats::mape(&pred, &truth_y) < 3.0, "MAPE {}", stats::mape(&pred, &truth_y));
        assert!(fit(&[], FitOptions::default()).is_err());
    }

    /// Row `i` of a device exactly `Σ coefficient × term`, its terms pseudo-random (a
    /// multiplicative hash): any 16 rows span all 14 columns.
    fn exact_row(i: u64, coefficients: &[f64; term::N]) -> Row {
        let terms: [f64; term::N] = std::array::from_fn(|j| {
            let h = (i * term::N as u64 + j as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            1.0 + (h % 1000) as f64 / 100.0
        });
        let y = terms.iter().zip(coefficients).map(|(t, c)| t * c).sum();
        Row { terms, energy_mj: 1.0, static_w: 0.0, latency_ms: y, measured_energy_mj: None }
    }

    #[test]
    fn twenty_rows_exact_in_the_terms_calibrate_closely() {
        // A simulator's sums: every row exactly the same combination of the terms, far from one
        // scale. Cross-validation must be free to (almost) drop the ridge: with 14 terms it picks none
        // and misses 200 other rows by 0.04 % on average (13 terms: 0.0003, 0.07 %; with 0.003 as the
        // weakest choice, 0.29 %).
        let truth: [f64; term::N] = [2.0, 0.5, 1.0, 3.0, 1.5, 0.8, 1.2, 2.5, 0.7, 1.1, 0.9, 1.8, 1.3, 0.6];
        let row = |i| exact_row(i, &truth);
        let (f, ridge) = fit_auto(&(0..20).map(row).collect::<Vec<_>>(), FitOptions::default()).unwrap();
        let held_out: Vec<Row> = (20..220).map(row).collect();
        let pred: Vec<f64> = held_out.iter().map(|r| f.predict(&r.terms)).collect();
        let truth_y: Vec<f64> = held_out.iter().map(|r| r.latency_ms).collect();
        let mape = stats::mape(&pred, &truth_y);
        assert!(mape < 0.15, "ridge {ridge}: held-out MAPE {mape} %");
    }

    #[test]
    fn a_term_the_rows_barely_exercise_keeps_at_least_the_floor() {
        // Twenty rows that are 99 % one term and 1 % another, with ±3 % noise: least squares
        // alone is free to price the small term at 0, and a row made of it alone then comes
        // out free. The floor keeps it at a quarter of the global scale or more.
        let rows: Vec<Row> = (0..20)
            .map(|i| {
                let mut terms = [0.0; term::N];
                terms[term::POINTWISE] = 0.99 * (1.0 + i as f64 / 10.0);
                terms[term::POOL] = 0.01 * (1.0 + ((i * 7) % 20) as f64 / 10.0);
                let noise = 1.0 + 0.03 * if (i * 13) % 3 == 0 { 1.0 } else { -0.5 };
                let y = 2.0 * (terms[term::POINTWISE] + terms[term::POOL]) * noise;
                Row { terms, energy_mj: 1.0, static_w: 0.0, latency_ms: y, measured_energy_mj: None }
            })
            .collect();
        let bare = fit(&rows, FitOptions { ridge: 0.0, floor: 0.0, ..Default::default() }).unwrap();
        let floored = fit(&rows, FitOptions { ridge: 0.0, ..Default::default() }).unwrap();
        let pool = |f: &Fit| f.coefficients[term::POOL] / f.global_scale;
        assert!(pool(&bare) < FLOOR, "without the floor the pool term was {:.3} of the scale", pool(&bare));
        assert!(pool(&floored) >= FLOOR - 1e-9, "{:?}", floored.coefficients);
        // The rows themselves stay fitted: the floor costs them little.
        let mape = |f: &Fit| {
            let p: Vec<f64> = rows.iter().map(|r| f.predict(&r.terms)).collect();
            stats::mape(&p, &rows.iter().map(|r| r.latency_ms).collect::<Vec<_>>())
        };
        assert!(mape(&floored) < mape(&bare) + 1.0, "{} against {}", mape(&floored), mape(&bare));
    }

    #[test]
    fn a_prior_of_the_right_shape_is_what_few_rows_lean_on() {
        // A device 4× slower than the model whose runtime departs from it term by term, as the
        // ncnn boards do (Winograd convolutions 3× faster, pooling 7× slower, …), measured on 6
        // networks: fewer rows than terms. A related device's profile (its own global scale
        // 0.5) carries the shape; with it as the prior, 6 rows give the held-out rows to
        // 1e-6, without it the fit misses them by percents.
        let shape: [f64; term::N] = [0.4, 0.8, 1.0, 0.7, 0.5, 7.0, 1.5, 0.7, 3.0, 1.0, 2.0, 0.3, 1.0, 1.6];
        let row = |i| exact_row(i, &shape.map(|c| 4.0 * c));
        let related = Fit {
            coefficients: shape.iter().map(|c| 0.5 * c).collect(),
            energy_scale: 1.0,
            static_power_scale: 1.0,
            global_scale: 0.5,
            energy_fixed_mj: 0.0,
        };
        assert!(related.shape().iter().zip(&shape).all(|(a, b)| (a - b).abs() < 1e-12));
        let train: Vec<Row> = (0..6).map(row).collect();
        let held_out: Vec<Row> = (6..206).map(row).collect();
        let truth: Vec<f64> = held_out.iter().map(|r| r.latency_ms).collect();
        let mape = |f: &Fit| stats::mape(&held_out.iter().map(|r| f.predict(&r.terms)).collect::<Vec<_>>(), &truth);
        let prior = prior_shape(&[&related]);
        let (with, _) = fit_auto(&train, FitOptions { prior, ..Default::default() }).unwrap();
        let (without, _) = fit_auto(&train, FitOptions::default()).unwrap();
        assert!(mape(&with) < 1e-4, "with the prior: {} %", mape(&with));
        assert!(mape(&without) > 1.0, "without: {} %", mape(&without));
        // The fit records the scale it pulled towards: its shape is the prior's again.
        assert!((with.global_scale - 4.0).abs() < 1e-6, "{with:?}");
        assert!(with.shape().iter().zip(&shape).all(|(a, b)| (a - b).abs() < 1e-6), "{with:?}");
    }

    #[test]
    fn prior_shapes_average_geometrically_with_a_floor() {
        let fit = |c: Vec<f64>, global_scale| Fit {
            coefficients: c,
            energy_scale: 1.0,
            static_power_scale: 1.0,
            global_scale,
            energy_fixed_mj: 0.0,
        };
        let mut a = vec![2.0; term::N];
        a[0] = 8.0;
        a[1] = 0.0;
        let b = vec![1.0; term::N];
        let p = prior_shape(&[&fit(a, 2.0), &fit(b, 0.5)]).unwrap();
        // Term 0: √(4 · 2); term 1: √(0.02 · 2) (0 floored); the rest √(1 · 2).
        assert!((p[0] - 8f64.sqrt()).abs() < 1e-12 && (p[1] - 0.04f64.sqrt()).abs() < 1e-12, "{p:?}");
        assert!(p[2..].iter().all(|v| (v - 2f64.sqrt()).abs() < 1e-12), "{p:?}");
        assert_eq!(prior_shape(&[]), None);
        // A profile written before the global scale was recorded: the median coefficient.
        let mut c = vec![3.0; term::N];
        c[4] = 30.0;
        let old: Fit = serde_json::from_str(&format!(r#"{{"coefficients":{c:?},"energy_scale":1.0}}"#)).unwrap();
        assert_eq!(old.global_scale, 0.0);
        assert!((old.shape()[4] - 10.0).abs() < 1e-12 && (old.shape()[0] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn energy_splits_into_dynamic_energy_and_static_power() {
        // A device with 3× the model's dynamic energy and 4× its static power, over latencies
        // 1.5× the model's: both come back, and predicted energy follows calibrated latency.
        let mut rows = rows_from(&[1.5; term::N], 40);
        for (i, r) in rows.iter_mut().enumerate() {
            let raw_ms: f64 = r.terms.iter().sum();
            let dynamic = 2.0 + (i % 7) as f64;
            r.static_w = 0.1;
            r.energy_mj = dynamic + 0.1 * raw_ms;
            r.measured_energy_mj = Some(3.0 * dynamic + 4.0 * 0.1 * r.latency_ms);
        }
        let f = fit(&rows, FitOptions { ridge: 1e-9, ..Default::default() }).unwrap();
        assert!((f.energy_scale - 3.0).abs() < 1e-6 && (f.static_power_scale - 4.0).abs() < 1e-6, "{f:?}");
        for r in &rows {
            let m = r.measured_energy_mj.unwrap();
            assert!((f.predict_energy(r) - m).abs() < 1e-6 * m);
        }
        // Energy that is all static power (dynamic 0) needs no ridge pulling the dynamic part up.
        for r in rows.iter_mut() {
            r.measured_energy_mj = Some(5.0 * 0.1 * r.latency_ms);
        }
        let f = fit(&rows, FitOptions::default()).unwrap();
        assert!(f.energy_scale < 1e-6 && (f.static_power_scale - 5.0).abs() < 1e-6, "{f:?}");
        assert!(f.energy_fixed_mj < 1e-6, "no constant part, no fixed energy: {f:?}");
        // A constant part no kernel accounts for (HW-NAS-Bench's Eyeriss energy carries 2.67
        // mJ of latencies in every row) gets a coefficient of its own, chosen by
        // cross-validation; the other two come back as they were.
        for (i, r) in rows.iter_mut().enumerate() {
            let dynamic = 2.0 + (i % 7) as f64;
            r.measured_energy_mj = Some(3.0 * dynamic + 4.0 * 0.1 * r.latency_ms + 6.0);
        }
        let f = fit(&rows, FitOptions::default()).unwrap();
        assert!((f.energy_fixed_mj - 6.0).abs() < 0.01, "{f:?}");
        assert!((f.energy_scale - 3.0).abs() < 1e-3 && (f.static_power_scale - 4.0).abs() < 1e-3, "{f:?}");
    }

    #[test]
    fn a_few_folded_rows_do_not_set_the_global_scale() {
        // 20 rows of a device 2.4× slower than the model, 2 of which the runtime folded away
        // (3.5× faster than they should be). With a strong ridge every coefficient follows
        // the global scale, so the scale itself must ignore them (least squares on all rows
        // would put it at 1.41, −41 %).
        let rows = rows_from(&[2.4; term::N], 20);
        let mut bad = rows.clone();
        for r in bad.iter_mut().take(2) {
            r.latency_ms /= 3.5;
        }
        let f = fit(&bad, FitOptions { ridge: 20.0, ..Default::default() }).unwrap();
        let pred: Vec<f64> = rows[2..].iter().map(|r| f.predict(&r.terms)).collect();
        let truth: Vec<f64> = rows[2..].iter().map(|r| r.latency_ms).collect();
        assert!(stats::mape(&pred, &truth) < 5.0, "MAPE {} ({:?})", stats::mape(&pred, &truth), f.coefficients);
    }

    #[test]
    fn dates_and_hashes() {
        assert_eq!(fnv1a_hex(b""), "cbf29ce484222325");
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
    }

    #[test]
    fn profiles_written_before_a_term_was_added_load_with_its_parent_coefficient() {
        let rows = rows_from(&[1.5; term::N], 40);
        let a53 = Model::new(nasc_targets::lookup("cortex-a53").unwrap()).unwrap();
        let (p, _) = Profile::fit(&rows, &a53, "d".into(), "s".into(), b"x", &[]).unwrap();
        let mut v: serde_json::Value = serde_json::to_value(&p).unwrap();
        // As written before `int8_conv3x3`: 13 terms, `int8` at 2.5.
        let int8 = term::NAMES.iter().position(|n| *n == "int8").unwrap();
        v["terms"].as_array_mut().unwrap().pop();
        v["fit"]["coefficients"].as_array_mut().unwrap().pop();
        v["fit"]["coefficients"][int8] = 2.5.into();
        // (Its energy Spearman is NaN, all measured energies tying: written as null, read as NaN.)
        assert!(v["energy_validation"]["spearman"].is_null());
        let old = Profile::from_json(&v.to_string()).unwrap();
        assert!(old.energy_validation.as_ref().unwrap().spearman.is_nan());
        assert_eq!(old.terms.len(), term::N);
        assert_eq!(old.fit.coefficients[term::INT8_CONV3X3], 2.5);
        assert_eq!(
            &old.fit.coefficients[..term::N - 1],
            &v["fit"]["coefficients"].as_array().unwrap().iter().map(|c| c.as_f64().unwrap()).collect::<Vec<_>>()[..]
        );
        // A term this build does not know, or mismatched counts, are errors naming them.
        let mut w = v.clone();
        w["terms"][0] = "tensor_cores".into();
        let e = Profile::from_json(&w.to_string()).unwrap_err();
        assert!(e.contains("unknown [\"tensor_cores\"], missing [\"conv\"]") && e.contains("refit it"), "{e}");
        v["fit"]["coefficients"].as_array_mut().unwrap().pop();
        let e = Profile::from_json(&v.to_string()).unwrap_err();
        assert_eq!(e, "profile: 12 coefficients for 13 terms");
    }

    #[test]
    fn a_profile_records_the_runtime_its_rows_were_priced_for_and_applies_it() {
        let rows = rows_from(&[1.5; term::N], 40);
        let mut half = Model::new(nasc_targets::lookup("cortex-a76").unwrap()).unwrap();
        half.floats = Precision::F16;
        half.winograd = 2;
        let (p, _) = Profile::fit(&rows, &half, "d".into(), "s".into(), b"x", &[]).unwrap();
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains(r#""floats":"f16""#) && text.contains(r#""winograd":2"#), "{text}");
        let mut m = Model::new(nasc_targets::lookup("cortex-a76").unwrap()).unwrap();
        Profile::from_json(&text).unwrap().apply(&mut m).unwrap();
        assert_eq!((m.floats, m.winograd), (Precision::F16, 2));
        // An f32 profile without Winograd (every profile written before the fields) says
        // nothing of either and sets both back.
        let (q, _) =
            Profile::fit(&rows, &Model::new(m.target.clone()).unwrap(), "d".into(), "s".into(), b"x", &[]).unwrap();
        let text = serde_json::to_string(&q).unwrap();
        assert!(!text.contains("floats") && !text.contains("winograd"), "{text}");
        Profile::from_json(&text).unwrap().apply(&mut m).unwrap();
        assert_eq!((m.floats, m.winograd), (Precision::F32, 0));
    }
}
