//! `nasc expect`: expected cost of a supernet under architecture logits, with its gradients.
//!
//! File formats (JSON):
//! - `--logits`: an array of arrays, one per architecture parameter in the space's order
//!   (`nasc show --space S` lists them), each as long as that parameter's options; or an
//!   object `{"param name": [logits…], …}` naming every parameter. `--logits uniform` means
//!   all zeros.
//! - `--exits`: `{"probabilities": [p_0, …]}` (chance each exit fires once reached), or
//!   `{"thresholds": [θ_0, …], "temperature": T, "confidences": [[c…], …]}` (soft thresholds
//!   over calibration statistics).
//! - `--gates`: an array of open probabilities in gate order, or `{"gate name": q, …}`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use nasc::costmodel::expect::{ExitModel, Objective, Query, Relaxation};
use nasc::costmodel::table::CostTable;
use nasc::ir::spaces;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Options of `nasc expect`.
#[derive(Args, Debug)]
pub struct Options {
    /// Target: a built-in name or a target .toml file.
    #[arg(long, short)]
    target: String,
    /// The search space (see `nasc spaces`).
    #[arg(long)]
    space: String,
    /// Architecture logits (JSON, see `nasc expect --help` / the module docs), or `uniform`.
    #[arg(long, value_name = "FILE|uniform")]
    logits: String,
    /// Early-exit probabilities or soft thresholds (JSON).
    #[arg(long, value_name = "FILE")]
    exits: Option<PathBuf>,
    /// Gate open probabilities (JSON).
    #[arg(long, value_name = "FILE")]
    gates: Option<PathBuf>,
    /// Softmax temperature τ.
    #[arg(long, default_value_t = 1.0)]
    tau: f64,
    /// `softmax`, `gumbel:SEED` (Gumbel-softmax sample) or `hard:SEED` (a path sampled from
    /// softmax(α/τ), straight-through gradient).
    #[arg(long, default_value = "softmax")]
    relax: String,
    /// latency, energy, edp, proxyless-linear:λ, proxyless-log:REF,β, fbnet:α,β or hinge:BUDGET,λ.
    #[arg(long, default_value = "latency")]
    objective: String,
    /// Also write the cost table (JSON) here, for workers that query it themselves.
    #[arg(long, value_name = "FILE")]
    table_out: Option<PathBuf>,
    /// A calibrated profile (from `nasc calibrate`) to apply to the target: a file, or `builtin:<target>/<data>` for one shipped in `profiles/`.
    #[arg(long, value_name = "PROFILE.json")]
    profile: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))
}

fn numbers(v: &Value, what: &str) -> Result<Vec<f64>> {
    let arr = v.as_array().with_context(|| format!("{what}: expected an array of numbers"))?;
    arr.iter()
        .enumerate()
        .map(|(i, x)| x.as_f64().with_context(|| format!("{what}[{i}]: `{x}` is not a number")))
        .collect()
}

fn logits(t: &CostTable, spec: &str) -> Result<Vec<f64>> {
    if spec == "uniform" {
        return Ok(vec![0.0; t.n_logits()]);
    }
    let path = Path::new(spec);
    let v = read_json(path)?;
    let per_param: Vec<Vec<f64>> = match &v {
        Value::Array(rows) => {
            if rows.len() != t.params.len() {
                bail!("{}: {} rows of logits, the space has {} parameters", path.display(), rows.len(), t.params.len());
            }
            rows.iter()
                .enumerate()
                .map(|(i, r)| numbers(r, &format!("{}: row {i} (`{}`)", path.display(), t.params[i])))
                .collect::<Result<_>>()?
        }
        Value::Object(m) => {
            if let Some(k) = m.keys().find(|k| !t.params.contains(k)) {
                bail!("{}: `{k}` is not a parameter of {}", path.display(), t.space);
            }
            t.params
                .iter()
                .map(|p| {
                    let r = m.get(p).with_context(|| format!("{}: no logits for parameter `{p}`", path.display()))?;
                    numbers(r, &format!("{}: `{p}`", path.display()))
                })
                .collect::<Result<_>>()?
        }
        _ => bail!("{}: expected an array of arrays or an object of arrays", path.display()),
    };
    for (i, r) in per_param.iter().enumerate() {
        if r.len() != t.options[i].len() {
            bail!(
                "{}: parameter `{}` has {} options ({}), got {} logits",
                path.display(),
                t.params[i],
                t.options[i].len(),
                t.options[i].join(", "),
                r.len()
            );
        }
    }
    Ok(per_param.concat())
}

fn exits(t: &CostTable, path: &Path) -> Result<ExitModel> {
    let v = read_json(path)?;
    let p = |k: &str| format!("{}: `{k}`", path.display());
    if let Some(pr) = v.get("probabilities") {
        return Ok(ExitModel::Probabilities(numbers(pr, &p("probabilities"))?));
    }
    let (Some(th), Some(temp), Some(conf)) = (v.get("thresholds"), v.get("temperature"), v.get("confidences")) else {
        bail!(
            "{}: expected {{\"probabilities\": […]}} or {{\"thresholds\", \"temperature\", \"confidences\"}} for the {} exits",
            path.display(),
            t.exits.len()
        );
    };
    let confidences = conf
        .as_array()
        .with_context(|| p("confidences"))?
        .iter()
        .enumerate()
        .map(|(i, c)| numbers(c, &format!("{}[{i}]", p("confidences"))))
        .collect::<Result<_>>()?;
    Ok(ExitModel::SoftThresholds {
        confidences,
        thresholds: numbers(th, &p("thresholds"))?,
        temperature: temp.as_f64().with_context(|| p("temperature"))?,
    })
}

fn gates(t: &CostTable, path: &Path) -> Result<Vec<f64>> {
    let v = read_json(path)?;
    match &v {
        Value::Object(m) => {
            if let Some(k) = m.keys().find(|k| !t.gates.contains(k)) {
                bail!("{}: `{k}` is not a gate of {}", path.display(), t.space);
            }
            t.gates
                .iter()
                .map(|g| {
                    m.get(g)
                        .and_then(Value::as_f64)
                        .with_context(|| format!("{}: no probability for gate `{g}`", path.display()))
                })
                .collect()
        }
        _ => numbers(&v, &path.display().to_string()),
    }
}

fn relaxation(t: &CostTable, spec: &str, logits: &[f64], tau: f64) -> Result<Relaxation> {
    let (kind, seed_text) = spec.split_once(':').unwrap_or((spec, ""));
    let seed =
        || -> Result<u64> { seed_text.parse().with_context(|| format!("--relax {spec}: `{seed_text}` is not a seed")) };
    Ok(match kind {
        "softmax" if seed_text.is_empty() => Relaxation::Softmax,
        "gumbel" => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed()?);
            Relaxation::Gumbel {
                noise: (0..t.n_logits()).map(|_| -(-(rng.gen_range(1e-12f64..1.0)).ln()).ln()).collect(),
            }
        }
        "hard" => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed()?);
            let choice = t
                .offsets
                .iter()
                .zip(&t.options)
                .map(|(&o0, opts)| {
                    let z: Vec<f64> = logits[o0..o0 + opts.len()].iter().map(|a| a / tau).collect();
                    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let w: Vec<f64> = z.iter().map(|x| (x - m).exp()).collect();
                    let u = rng.gen::<f64>() * w.iter().sum::<f64>();
                    let mut acc = 0.0;
                    w.iter()
                        .position(|x| {
                            acc += x;
                            u < acc
                        })
                        .unwrap_or(opts.len() - 1)
                })
                .collect();
            Relaxation::Hard { choice }
        }
        _ => bail!("--relax {spec}: expected softmax, gumbel:SEED or hard:SEED"),
    })
}

fn per_param(t: &CostTable, flat: &[f64]) -> Vec<Vec<f64>> {
    t.offsets.iter().zip(&t.options).map(|(&o, opts)| flat[o..o + opts.len()].to_vec()).collect()
}

pub fn run(o: Options) -> Result<()> {
    let model = nasc::profiles::target_model(&o.target, o.profile.as_deref())?;
    let space = spaces::lookup(&o.space)?;
    let objective = Objective::parse(&o.objective).map_err(anyhow::Error::msg)?;
    let table = CostTable::build(&o.space, space.supernet(), &model)?;
    let logits = logits(&table, &o.logits)?;
    let q = Query {
        relaxation: relaxation(&table, &o.relax, &logits, o.tau)?,
        logits,
        tau: o.tau,
        exits: match &o.exits {
            Some(p) => exits(&table, p)?,
            None => ExitModel::Never,
        },
        gates: o.gates.as_deref().map(|p| gates(&table, p)).transpose()?,
        objective,
    };
    let r = table.expected(&q).map_err(|e| anyhow::anyhow!("{}: {e}", o.space))?;
    if let Some(p) = &o.table_out {
        nasc::io::write_atomic(p, table.to_json().as_bytes())?;
    }
    if o.json {
        let v = json!({
            "space": o.space,
            "target": model.target.name,
            "objective": o.objective,
            "value": r.value,
            "latency_ms": r.latency_ms,
            "energy_mj": r.energy_mj,
            "params": table.params,
            "probabilities": per_param(&table, &r.probabilities),
            "grad_logits": per_param(&table, &r.grad_logits),
            "grad_tau": r.grad_tau,
            "exits": table.exits,
            "grad_exits": r.grad_exits,
            "gates": table.gates,
            "grad_gates": r.grad_gates,
            "max_scope": table.max_scope(),
        });
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!(
        "{} on {}: {} = {:.6} (E[latency] {:.4} ms, E[energy] {:.5} mJ); ∂/∂τ = {:.4e}\n",
        o.space, model.target.name, o.objective, r.value, r.latency_ms, r.energy_mj, r.grad_tau
    );
    out += &format!("{:<16} {:<12} {:>8} {:>14}\n", "param", "option", "prob", "∂value/∂logit");
    for (p, name) in table.params.iter().enumerate() {
        for (i, opt) in table.options[p].iter().enumerate() {
            let k = table.offsets[p] + i;
            out += &format!(
                "{:<16} {:<12} {:>8.4} {:>14.6e}\n",
                if i == 0 { name.as_str() } else { "" },
                opt,
                r.probabilities[k],
                r.grad_logits[k]
            );
        }
    }
    for (j, name) in table.exits.iter().enumerate() {
        if let Some(g) = r.grad_exits.get(j) {
            out += &format!("exit `{name}`: ∂value/∂(probability or threshold) = {g:.6e}\n");
        }
    }
    for (j, name) in table.gates.iter().enumerate() {
        if let Some(g) = r.grad_gates.get(j) {
            out += &format!("gate `{name}`: ∂value/∂P(open) = {g:.6e}\n");
        }
    }
    super::emit(&out)
}
