//! Expected cost of a supernet under architecture, exit and gate distributions, with exact
//! gradients, for differentiable architecture search.
//!
//! Given a [`CostTable`], logits `α` (one vector per architecture parameter, flattened in
//! parameter order), a temperature `τ` and a relaxation:
//! - [`Relaxation::Softmax`]: `π = softmax(α/τ)` per parameter (DARTS, FBNet);
//! - [`Relaxation::Gumbel`]: `π = softmax((α + g)/τ)` with given Gumbel noise `g` (FBNet's and
//!   GDAS's Gumbel-softmax samples);
//! - [`Relaxation::Hard`]: the value at a sampled one-hot path (ProxylessNAS), its gradient the
//!   straight-through estimate through `softmax(α/τ)` — not a derivative of the value, which is
//!   piecewise constant in `α`;
//!
//! the expected latency is `L = Σ_groups R_seg · Π_gates q · Σ_a Π_{p ∈ scope} π_p(a_p) · T[a]`
//! (see [`crate::table`]): exact, pairwise and higher terms included. `R_k = Π_{j<k} (1 − p_j)`
//! is the probability of reaching exit segment `k` given the per-exit firing probabilities
//! `p_j` ([`ExitModel`]), and `q` the probability that a gate is open. The energy `E` likewise.
//! An [`Objective`] turns `(L, E)` into the value the search minimises; the gradient of that
//! value is returned with respect to every logit, `τ`, every exit probability (or threshold)
//! and every gate probability.

use nasc_ir::op::ExitRule;

use crate::table::CostTable;

/// How architecture probabilities come from logits.
#[derive(Clone, Debug, PartialEq)]
pub enum Relaxation {
    /// `softmax(α/τ)`.
    Softmax,
    /// `softmax((α + g)/τ)` with the given noise `g` (flat, like the logits).
    Gumbel {
        /// Gumbel noise, one value per logit.
        noise: Vec<f64>,
    },
    /// A hard path: one option index per parameter; straight-through gradient.
    Hard {
        /// Chosen option per parameter.
        choice: Vec<usize>,
    },
}

/// How likely each early exit fires once reached.
#[derive(Clone, Debug, PartialEq)]
pub enum ExitModel {
    /// No early exit fires (the full network always runs).
    Never,
    /// Given firing probabilities, one per exit, each in `[0, 1]`.
    Probabilities(Vec<f64>),
    /// Soft thresholds: exit `k` fires with probability `mean_i σ(s·(c_ki − θ_k)/T)` over
    /// confidence statistics `c_k` of a calibration set (max-softmax, `s = +1`; entropy,
    /// `s = −1`). Gradients are with respect to the thresholds.
    SoftThresholds {
        /// Per exit, the statistic of each calibration sample.
        confidences: Vec<Vec<f64>>,
        /// Per exit, the threshold θ.
        thresholds: Vec<f64>,
        /// Temperature `T > 0` of the sigmoid.
        temperature: f64,
    },
}

/// What the search minimises, from the expected latency `L` (ms) and energy `E` (mJ).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Objective {
    /// `L`.
    Latency,
    /// `E`.
    Energy,
    /// Energy-delay product of the expectations, `L · E`.
    EnergyDelay,
    /// ProxylessNAS's linear form `λ · L`.
    ProxylessLinear {
        /// λ.
        lambda: f64,
    },
    /// ProxylessNAS's multiplicative form `(ln L / ln ref)^β` (needs `L > 1` and `ref > 1`).
    ProxylessLog {
        /// Reference latency (ms).
        reference: f64,
        /// β.
        beta: f64,
    },
    /// FBNet's latency factor `α · (ln L)^β` (needs `L > 1`).
    Fbnet {
        /// α.
        alpha: f64,
        /// β.
        beta: f64,
    },
    /// A latency budget: `λ · max(0, L − budget)`.
    Hinge {
        /// Budget (ms).
        budget: f64,
        /// λ.
        lambda: f64,
    },
}

impl Objective {
    /// Value and partial derivatives `(F, ∂F/∂L, ∂F/∂E)`.
    pub fn eval(self, l: f64, e: f64) -> Result<(f64, f64, f64), String> {
        Ok(match self {
            Objective::Latency => (l, 1.0, 0.0),
            Objective::Energy => (e, 0.0, 1.0),
            Objective::EnergyDelay => (l * e, e, l),
            Objective::ProxylessLinear { lambda } => (lambda * l, lambda, 0.0),
            Objective::ProxylessLog { reference, beta } => {
                if l <= 1.0 || reference <= 1.0 {
                    return Err(format!(
                        "proxyless-log needs latency and reference above 1 ms (got {l:.4} and {reference})"
                    ));
                }
                let r = l.ln() / reference.ln();
                (r.powf(beta), beta * r.powf(beta - 1.0) / (l * reference.ln()), 0.0)
            }
            Objective::Fbnet { alpha, beta } => {
                if l <= 1.0 {
                    return Err(format!("fbnet objective needs latency above 1 ms (got {l:.4})"));
                }
                let ln = l.ln();
                (alpha * ln.powf(beta), alpha * beta * ln.powf(beta - 1.0) / l, 0.0)
            }
            Objective::Hinge { budget, lambda } => {
                if l > budget {
                    (lambda * (l - budget), lambda, 0.0)
                } else {
                    (0.0, 0.0, 0.0)
                }
            }
        })
    }

    /// Parses `latency`, `energy`, `edp`, `proxyless-linear:λ`, `proxyless-log:REF,β`,
    /// `fbnet:α,β` or `hinge:BUDGET,λ`.
    pub fn parse(s: &str) -> Result<Objective, String> {
        let (name, args) = s.split_once(':').unwrap_or((s, ""));
        let nums: Vec<f64> = if args.is_empty() {
            Vec::new()
        } else {
            args.split(',')
                .map(|a| a.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("objective `{s}`: `{args}` is not a list of numbers"))?
        };
        let want = |n: usize| -> Result<(), String> {
            if nums.len() == n {
                Ok(())
            } else {
                Err(format!("objective `{name}` takes {n} number(s) after `:`, got {}", nums.len()))
            }
        };
        Ok(match name {
            "latency" => want(0).map(|_| Objective::Latency)?,
            "energy" => want(0).map(|_| Objective::Energy)?,
            "edp" => want(0).map(|_| Objective::EnergyDelay)?,
            "proxyless-linear" => want(1).map(|_| Objective::ProxylessLinear { lambda: nums[0] })?,
            "proxyless-log" => want(2).map(|_| Objective::ProxylessLog { reference: nums[0], beta: nums[1] })?,
            "fbnet" => want(2).map(|_| Objective::Fbnet { alpha: nums[0], beta: nums[1] })?,
            "hinge" => want(2).map(|_| Objective::Hinge { budget: nums[0], lambda: nums[1] })?,
            _ => {
                return Err(format!(
                    "unknown objective `{name}` (latency, energy, edp, proxyless-linear:λ, proxyless-log:REF,β, \
                     fbnet:α,β, hinge:BUDGET,λ)"
                ))
            }
        })
    }
}

/// One expected-cost query.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// Logits, flat in parameter order (see [`CostTable::offsets`]).
    pub logits: Vec<f64>,
    /// Temperature τ > 0.
    pub tau: f64,
    /// Relaxation.
    pub relaxation: Relaxation,
    /// Early exits.
    pub exits: ExitModel,
    /// Probability that each gate is open (`None`: every gate open).
    pub gates: Option<Vec<f64>>,
    /// The objective.
    pub objective: Objective,
}

impl Query {
    /// Softmax relaxation at τ = 1, no exits firing, every gate open, latency objective.
    pub fn softmax(logits: Vec<f64>) -> Query {
        Query {
            logits,
            tau: 1.0,
            relaxation: Relaxation::Softmax,
            exits: ExitModel::Never,
            gates: None,
            objective: Objective::Latency,
        }
    }
}

/// The result of a query.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Expected {
    /// The objective's value.
    pub value: f64,
    /// Expected latency, ms.
    pub latency_ms: f64,
    /// Expected energy, mJ.
    pub energy_mj: f64,
    /// ∂value/∂logit, flat like the logits.
    pub grad_logits: Vec<f64>,
    /// ∂value/∂τ.
    pub grad_tau: f64,
    /// ∂value/∂p_k (exit probabilities) or ∂value/∂θ_k (soft thresholds); empty for
    /// [`ExitModel::Never`].
    pub grad_exits: Vec<f64>,
    /// ∂value/∂q_g per gate (empty when no gate probabilities were given).
    pub grad_gates: Vec<f64>,
    /// The architecture probabilities used, flat.
    pub probabilities: Vec<f64>,
    /// Reused buffers (scaled logits, one-hot weights, per-group sums, contraction levels).
    #[serde(skip)]
    scratch: Scratch,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Scratch {
    /// `x/τ` per logit.
    z: Vec<f64>,
    /// The weights the value is taken at (probabilities, or one-hot for hard paths).
    w: Vec<f64>,
    /// Per group: (coefficient, S_lat, S_en).
    sums: Vec<(f64, f64, f64)>,
    /// Contraction levels and adjoints.
    levels: Vec<f64>,
    adjoint: Vec<f64>,
    combined: Vec<f64>,
}

/// Contracts a table over its scope with per-variable weights, last variable fastest:
/// returns `Σ_a Π_j w_j(a_j) · t[a]`. With `grad`, also adds `∂/∂w_j(o)` times `scale` into
/// `grad[offset_j + o]` (reverse mode over the partial sums: about three passes over the table
/// instead of one product per variable per entry).
fn contract(
    t: &[f64],
    radix: &[usize],
    w: &[f64],
    woff: &[usize],
    levels: &mut Vec<f64>,
    adjoint: &mut Vec<f64>,
    grad: Option<(&mut [f64], f64)>,
) -> f64 {
    const MAX: usize = 16;
    let s = radix.len();
    assert!(s <= MAX, "scopes are at most {MAX} parameters");
    // sizes[j] = Π_{i<j} radix[i]: the number of prefixes before variable j.
    let mut sizes = [1usize; MAX + 1];
    for j in 0..s {
        sizes[j + 1] = sizes[j] * radix[j];
    }
    // Level j holds S_j (size sizes[j]); stored back to back, level s is `t` itself.
    let mut starts = [0usize; MAX + 1];
    for j in 1..s {
        starts[j] = starts[j - 1] + sizes[j - 1];
    }
    let total_levels = if s == 0 { 0 } else { starts[s - 1] + sizes[s - 1] };
    levels.clear();
    levels.resize(total_levels, 0.0);
    for j in (0..s).rev() {
        let (r, wj) = (radix[j], &w[woff[j]..woff[j] + radix[j]]);
        for u in 0..sizes[j] {
            let below = if j + 1 == s {
                &t[u * r..u * r + r]
            } else {
                &levels[starts[j + 1] + u * r..starts[j + 1] + u * r + r]
            };
            let acc: f64 = wj.iter().zip(below).map(|(a, b)| a * b).sum();
            levels[starts[j] + u] = acc;
        }
    }
    let value = if s == 0 { t[0] } else { levels[0] };
    if let Some((grad, scale)) = grad {
        adjoint.clear();
        adjoint.resize(sizes[s].max(1), 0.0);
        // Adjoints of level j live in adjoint[..sizes[j]]; walk down, expanding in place from
        // the back so a prefix is read before it is overwritten.
        adjoint[0] = scale;
        for j in 0..s {
            let (r, wj) = (radix[j], &w[woff[j]..woff[j] + radix[j]]);
            for u in (0..sizes[j]).rev() {
                let a = adjoint[u];
                for o in (0..r).rev() {
                    let below = if j + 1 == s { t[u * r + o] } else { levels[starts[j + 1] + u * r + o] };
                    grad[woff[j] + o] += a * below;
                    if j + 1 < s {
                        adjoint[u * r + o] = a * wj[o];
                    }
                }
            }
        }
    }
    value
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl CostTable {
    /// Checks a query against the table; errors name what is wrong.
    pub fn check_query(&self, q: &Query) -> Result<(), String> {
        let n = self.n_logits();
        if q.logits.len() != n {
            return Err(format!("expected {n} logits ({} parameters), got {}", self.params.len(), q.logits.len()));
        }
        if let Some(i) = q.logits.iter().position(|v| !v.is_finite()) {
            return Err(format!("logit {i} is not finite"));
        }
        if !(q.tau.is_finite() && q.tau > 0.0) {
            return Err(format!("temperature τ must be positive, got {}", q.tau));
        }
        match &q.relaxation {
            Relaxation::Softmax => {}
            Relaxation::Gumbel { noise } => {
                if noise.len() != n || noise.iter().any(|v| !v.is_finite()) {
                    return Err(format!("gumbel noise needs {n} finite values, got {}", noise.len()));
                }
            }
            Relaxation::Hard { choice } => self.check(choice)?,
        }
        let k = self.exits.len();
        match &q.exits {
            ExitModel::Never => {}
            ExitModel::Probabilities(p) => {
                if p.len() != k {
                    return Err(format!("expected {k} exit probabilities, got {}", p.len()));
                }
                if let Some(v) = p.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                    return Err(format!("exit probability {v} is outside [0, 1]"));
                }
            }
            ExitModel::SoftThresholds { confidences, thresholds, temperature } => {
                if confidences.len() != k || thresholds.len() != k {
                    return Err(format!(
                        "soft thresholds need {k} thresholds and {k} confidence lists, got {} and {}",
                        thresholds.len(),
                        confidences.len()
                    ));
                }
                if confidences.iter().any(|c| c.is_empty() || c.iter().any(|v| !v.is_finite())) {
                    return Err("every exit needs a non-empty list of finite confidences".into());
                }
                if !(temperature.is_finite() && *temperature > 0.0) || thresholds.iter().any(|t| !t.is_finite()) {
                    return Err("soft-threshold temperature must be positive and thresholds finite".into());
                }
            }
        }
        if let Some(g) = &q.gates {
            if g.len() != self.gates.len() {
                return Err(format!("expected {} gate probabilities, got {}", self.gates.len(), g.len()));
            }
            if let Some(v) = g.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                return Err(format!("gate probability {v} is outside [0, 1]"));
            }
        }
        Ok(())
    }

    /// The expected cost and its gradients. Checks the query first.
    pub fn expected(&self, q: &Query) -> Result<Expected, String> {
        self.check_query(q)?;
        let mut out = Expected::default();
        self.expected_into(q, &mut out)?;
        Ok(out)
    }

    /// [`CostTable::expected`] into a reused result (no allocation after the first call);
    /// the query must have passed [`CostTable::check_query`].
    pub fn expected_into(&self, q: &Query, out: &mut Expected) -> Result<(), String> {
        let n = self.n_logits();
        let sc = &mut out.scratch;
        sc.z.clear();
        match &q.relaxation {
            Relaxation::Gumbel { noise } => sc.z.extend(q.logits.iter().zip(noise).map(|(a, g)| (a + g) / q.tau)),
            _ => sc.z.extend(q.logits.iter().map(|a| a / q.tau)),
        }
        out.probabilities.resize(n, 0.0);
        for (o0, opts) in self.offsets.iter().zip(&self.options) {
            let (z, p) = (&sc.z[*o0..o0 + opts.len()], &mut out.probabilities[*o0..o0 + opts.len()]);
            let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for (pi, zi) in p.iter_mut().zip(z) {
                *pi = (zi - m).exp();
                sum += *pi;
            }
            let inv = 1.0 / sum;
            p.iter_mut().for_each(|pi| *pi *= inv);
        }
        // The weights the value is taken at: the relaxed probabilities, or a one-hot path.
        sc.w.clear();
        match &q.relaxation {
            Relaxation::Hard { choice } => {
                sc.w.resize(n, 0.0);
                for (p, &c) in choice.iter().enumerate() {
                    sc.w[self.offsets[p] + c] = 1.0;
                }
            }
            _ => sc.w.extend_from_slice(&out.probabilities),
        }
        // Exit reach probabilities R_k and their derivatives.
        let k = self.exits.len();
        let (p_exit, dp_dtheta): (Vec<f64>, Vec<f64>) = match &q.exits {
            ExitModel::Never => (Vec::new(), Vec::new()),
            ExitModel::Probabilities(p) => (p.clone(), vec![1.0; k]),
            ExitModel::SoftThresholds { confidences, thresholds, temperature } => (0..k)
                .map(|j| {
                    let s = if self.exit_rules[j] == ExitRule::Entropy { -1.0 } else { 1.0 };
                    let n = confidences[j].len() as f64;
                    let (mut p, mut d) = (0.0, 0.0);
                    for &c in &confidences[j] {
                        let sg = sigmoid(s * (c - thresholds[j]) / temperature);
                        p += sg;
                        d += sg * (1.0 - sg) * (-s / temperature);
                    }
                    (p / n, d / n)
                })
                .unzip(),
        };
        let reach = |seg: usize, skip: Option<usize>| -> f64 {
            (0..seg.min(p_exit.len())).filter(|&j| Some(j) != skip).map(|j| 1.0 - p_exit[j]).product()
        };
        let gate_p = |g: usize| q.gates.as_ref().map_or(1.0, |v| v[g]);
        // Pass 1: expectations per group.
        let (mut l, mut e) = (0.0, 0.0);
        sc.sums.clear();
        for g in &self.groups {
            let coef = reach(g.segment, None) * g.gates.iter().map(|&x| gate_p(x)).product::<f64>();
            let (sl, se) = match g.scope.len() {
                0 => (g.latency_ms[0], g.energy_mj[0]),
                1 => {
                    let w = &sc.w[self.offsets[g.scope[0]]..];
                    let sl = g.latency_ms.iter().zip(w).map(|(t, w)| t * w).sum::<f64>();
                    let se = g.energy_mj.iter().zip(w).map(|(t, w)| t * w).sum::<f64>();
                    (sl, se)
                }
                _ => {
                    let (r, wo) = (&g.radix, &g.weight_offsets);
                    let sl = contract(&g.latency_ms, r, &sc.w, wo, &mut sc.levels, &mut sc.adjoint, None);
                    let se = contract(&g.energy_mj, r, &sc.w, wo, &mut sc.levels, &mut sc.adjoint, None);
                    (sl, se)
                }
            };
            l += coef * sl;
            e += coef * se;
            sc.sums.push((coef, sl, se));
        }
        let (value, fl, fe) = q.objective.eval(l, e)?;
        out.value = value;
        out.latency_ms = l;
        out.energy_mj = e;
        // Pass 2: ∂value/∂w (into grad_logits, converted below).
        out.grad_logits.clear();
        out.grad_logits.resize(n, 0.0);
        for (g, &(coef, _, _)) in self.groups.iter().zip(&sc.sums) {
            if coef == 0.0 || g.scope.is_empty() {
                continue;
            }
            if g.scope.len() == 1 {
                let o0 = self.offsets[g.scope[0]];
                for (o, (tl, te)) in g.latency_ms.iter().zip(&g.energy_mj).enumerate() {
                    out.grad_logits[o0 + o] += coef * (fl * tl + fe * te);
                }
            } else {
                sc.combined.clear();
                sc.combined.extend(g.latency_ms.iter().zip(&g.energy_mj).map(|(tl, te)| fl * tl + fe * te));
                let (r, wo) = (&g.radix, &g.weight_offsets);
                let grad = Some((&mut out.grad_logits[..], coef));
                contract(&sc.combined, r, &sc.w, wo, &mut sc.levels, &mut sc.adjoint, grad);
            }
        }
        // Chain through softmax(x/τ) (straight-through for hard paths): ∂/∂x_i = π_i (d_i − π·d)/τ,
        // ∂/∂τ = −Σ_i d_i π_i (z_i − π·z)/τ with z = x/τ.
        out.grad_tau = 0.0;
        for (o0, opts) in self.offsets.iter().zip(&self.options) {
            let r = *o0..o0 + opts.len();
            let (pi, z, d) = (&out.probabilities[r.clone()], &sc.z[r.clone()], &mut out.grad_logits[r]);
            let pd: f64 = pi.iter().zip(d.iter()).map(|(a, b)| a * b).sum();
            let pz: f64 = pi.iter().zip(z).map(|(a, b)| a * b).sum();
            for i in 0..d.len() {
                out.grad_tau -= d[i] * pi[i] * (z[i] - pz) / q.tau;
                d[i] = pi[i] * (d[i] - pd) / q.tau;
            }
        }
        // Exits: ∂value/∂p_j = Σ_groups (∂R_seg/∂p_j) · gates · (fl·S_lat + fe·S_en).
        out.grad_exits.clear();
        if !matches!(q.exits, ExitModel::Never) {
            for j in 0..k {
                let mut gsum = 0.0;
                for (g, &(_, sl, se)) in self.groups.iter().zip(&sc.sums) {
                    if g.segment > j {
                        let gates: f64 = g.gates.iter().map(|&x| gate_p(x)).product();
                        gsum -= reach(g.segment, Some(j)) * gates * (fl * sl + fe * se);
                    }
                }
                out.grad_exits.push(gsum * dp_dtheta[j]);
            }
        }
        out.grad_gates.clear();
        if q.gates.is_some() {
            for x in 0..self.gates.len() {
                let mut gsum = 0.0;
                for (g, &(_, sl, se)) in self.groups.iter().zip(&sc.sums) {
                    if g.gates.contains(&x) {
                        let others: f64 = g.gates.iter().filter(|&&y| y != x).map(|&y| gate_p(y)).product();
                        gsum += reach(g.segment, None) * others * (fl * sl + fe * se);
                    }
                }
                out.grad_gates.push(gsum);
            }
        }
        Ok(())
    }

    /// The additive lookup-table approximation of the expected cost under the same
    /// probabilities (softmax of `logits/τ`): what FBNet/ProxylessNAS-style LUTs compute.
    pub fn expected_additive(&self, logits: &[f64], tau: f64) -> (f64, f64) {
        let (base, deltas) = self.additive_lut();
        let (mut l, mut e) = (base.latency_ms, base.energy_mj);
        for (p, opts) in self.options.iter().enumerate() {
            let o0 = self.offsets[p];
            let m = (0..opts.len()).map(|i| logits[o0 + i] / tau).fold(f64::NEG_INFINITY, f64::max);
            let ex: Vec<f64> = (0..opts.len()).map(|i| (logits[o0 + i] / tau - m).exp()).collect();
            let z: f64 = ex.iter().sum();
            for (o, w) in ex.iter().enumerate() {
                l += w / z * deltas[p][o].latency_ms;
                e += w / z * deltas[p][o].energy_mj;
            }
        }
        (l, e)
    }
}
