//! Expected costs and their gradients: every gradient against central finite differences,
//! every expectation against Monte Carlo sampling of concrete subnets priced through the
//! concrete path (not the table), and the additive lookup-table approximation shown off on the
//! space with pairwise terms.

use std::sync::OnceLock;

use nasc_costmodel::expect::{ExitModel, Objective, Query, Relaxation};
use nasc_costmodel::report::run_cost;
use nasc_costmodel::table::CostTable;
use nasc_costmodel::Model;
use nasc_ir::{spaces, Config};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Tables of every built-in space on a CPU and an NPU target, built once.
fn tables() -> &'static Vec<(String, &'static str, CostTable, Model)> {
    static T: OnceLock<Vec<(String, &'static str, CostTable, Model)>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = Vec::new();
        for target in ["cortex-a72", "eyeriss"] {
            let model = Model::new(nasc_targets::lookup(target).unwrap()).unwrap();
            for name in spaces::NAMES {
                let space = spaces::lookup(name).unwrap();
                let t = CostTable::build(name, space.supernet(), &model).unwrap();
                v.push((name.to_string(), target, t, model.clone()));
            }
        }
        v
    })
}

fn random_logits(t: &CostTable, rng: &mut impl Rng) -> Vec<f64> {
    (0..t.n_logits()).map(|_| rng.gen_range(-2.0..2.0)).collect()
}

/// Every objective; the logarithmic ones are defined for latencies above 1 ms, so they are
/// checked where the expected latency is comfortably above it.
fn objectives(l0: f64) -> Vec<Objective> {
    let mut v = vec![
        Objective::Latency,
        Objective::Energy,
        Objective::EnergyDelay,
        Objective::ProxylessLinear { lambda: 0.3 },
        Objective::Hinge { budget: l0 * 0.7, lambda: 2.0 },
    ];
    if l0 > 2.0 {
        v.push(Objective::ProxylessLog { reference: (l0 * 0.8).max(1.5), beta: 0.6 });
        v.push(Objective::Fbnet { alpha: 0.2, beta: 0.6 });
    }
    v
}

/// Relative error of a gradient component against a central difference, with a floor of
/// 1e-3 × |value| on the denominator (components far below the value's scale are compared
/// absolutely at that scale).
fn check_fd(name: &str, what: &str, f: &dyn Fn(f64) -> f64, x: f64, g: f64, value: f64) {
    let h = 1e-5 * x.abs().max(1.0);
    let fd = (f(x + h) - f(x - h)) / (2.0 * h);
    let err = (fd - g).abs() / g.abs().max(fd.abs()).max(1e-3 * value.abs()).max(1e-300);
    assert!(err < 1e-6, "{name}: ∂/∂{what}: analytic {g:e}, finite difference {fd:e}, relative error {err:e}");
}

fn exit_models(t: &CostTable, rng: &mut impl Rng) -> Vec<ExitModel> {
    let k = t.exits.len();
    if k == 0 {
        return vec![ExitModel::Never];
    }
    vec![
        ExitModel::Probabilities((0..k).map(|_| rng.gen_range(0.05..0.95)).collect()),
        ExitModel::SoftThresholds {
            confidences: (0..k).map(|_| (0..20).map(|_| rng.gen_range(0.1..1.0)).collect()).collect(),
            thresholds: (0..k).map(|_| rng.gen_range(0.3..0.9)).collect(),
            temperature: rng.gen_range(0.05..0.3),
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Every component of every gradient, on every space, target, relaxation, exit model and
    /// objective, against central finite differences.
    #[test]
    fn gradients_match_finite_differences(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for (name, target, t, _) in tables() {
            let tag = format!("{name} on {target}");
            let logits = random_logits(t, &mut rng);
            let tau = rng.gen_range(0.5..2.0);
            let gumbel: Vec<f64> = (0..t.n_logits()).map(|_| -(-(rng.gen_range(1e-9f64..1.0)).ln()).ln()).collect();
            let gates = (!t.gates.is_empty()).then(|| (0..t.gates.len()).map(|_| rng.gen_range(0.1..0.9)).collect::<Vec<f64>>());
            let l0 = t.expected(&Query::softmax(logits.clone())).unwrap().latency_ms;
            for relaxation in [Relaxation::Softmax, Relaxation::Gumbel { noise: gumbel.clone() }] {
                for exits in exit_models(t, &mut rng) {
                    let base = Query { logits: logits.clone(), tau, relaxation: relaxation.clone(), exits: exits.clone(), gates: gates.clone(), objective: Objective::Latency };
                    let lx = t.expected(&base).unwrap().latency_ms.min(l0);
                    for objective in objectives(lx) {
                        let q = Query { logits: logits.clone(), tau, relaxation: relaxation.clone(), exits: exits.clone(), gates: gates.clone(), objective };
                        let r = t.expected(&q).unwrap();
                        let val = |q: &Query| t.expected(q).unwrap().value;
                        // A sample of logits (all of them on small spaces), τ, exits, gates.
                        let step = (t.n_logits() / 24).max(1);
                        for i in (rng.gen_range(0..step)..t.n_logits()).step_by(step) {
                            let f = |x: f64| { let mut q2 = q.clone(); q2.logits[i] = x; val(&q2) };
                            check_fd(&tag, &format!("logit {i} ({objective:?})"), &f, q.logits[i], r.grad_logits[i], r.value);
                        }
                        let f = |x: f64| { let mut q2 = q.clone(); q2.tau = x; val(&q2) };
                        check_fd(&tag, "τ", &f, q.tau, r.grad_tau, r.value);
                        for j in 0..t.exits.len() {
                            let f = |x: f64| {
                                let mut q2 = q.clone();
                                match &mut q2.exits {
                                    ExitModel::Probabilities(p) => p[j] = x,
                                    ExitModel::SoftThresholds { thresholds, .. } => thresholds[j] = x,
                                    ExitModel::Never => {}
                                }
                                val(&q2)
                            };
                            let x = match &q.exits { ExitModel::Probabilities(p) => p[j], ExitModel::SoftThresholds { thresholds, .. } => thresholds[j], ExitModel::Never => 0.0 };
                            check_fd(&tag, &format!("exit {j}"), &f, x, r.grad_exits[j], r.value);
                        }
                        if let Some(gp) = &gates {
                            for x in 0..gp.len() {
                                let f = |v: f64| { let mut q2 = q.clone(); q2.gates.as_mut().unwrap()[x] = v; val(&q2) };
                                check_fd(&tag, &format!("gate {x}"), &f, gp[x], r.grad_gates[x], r.value);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Draws an option index from the probabilities of one parameter.
fn draw(probs: &[f64], rng: &mut impl Rng) -> usize {
    let u: f64 = rng.gen();
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probs.len() - 1
}

/// Monte Carlo estimate of the expected latency by sampling concrete subnets (architecture,
/// exit, gates) and pricing each through the concrete path. Returns (mean, standard error).
fn monte_carlo(name: &str, t: &CostTable, model: &Model, q: &Query, probs: &[f64], n: usize, seed: u64) -> (f64, f64) {
    let space = spaces::lookup(name).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut xs = Vec::with_capacity(n);
    for _ in 0..n {
        let mut cfg = Config::default();
        for (p, pname) in t.params.iter().enumerate() {
            let o0 = t.offsets[p];
            cfg.choices.insert(pname.clone(), draw(&probs[o0..o0 + t.options[p].len()], &mut rng));
        }
        let exit = match &q.exits {
            ExitModel::Probabilities(p) => p.iter().position(|&pk| rng.gen::<f64>() < pk),
            _ => None,
        };
        let gates: Option<Vec<bool>> = q.gates.as_ref().map(|g| g.iter().map(|&pg| rng.gen::<f64>() < pg).collect());
        let sub = space.supernet().select(&cfg).unwrap();
        xs.push(run_cost(&sub, model, exit, gates.as_deref()).unwrap().0);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, (var / n as f64).sqrt())
}

#[test]
fn expectations_match_monte_carlo_on_every_space() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (name, target, t, model) in tables() {
        let logits: Vec<f64> = random_logits(t, &mut rng).iter().map(|x| x * 1.5).collect();
        let exits = if t.exits.is_empty() {
            ExitModel::Never
        } else {
            ExitModel::Probabilities((0..t.exits.len()).map(|_| rng.gen_range(0.1..0.6)).collect())
        };
        let gates = (!t.gates.is_empty()).then(|| (0..t.gates.len()).map(|_| rng.gen_range(0.2..0.9)).collect());
        let q = Query { exits, gates, ..Query::softmax(logits) };
        let r = t.expected(&q).unwrap();
        let n = if name.starts_with("ofa") { 300 } else { 400 };
        let (mean, se) = monte_carlo(name, t, model, &q, &r.probabilities, n, 17);
        let z = (r.latency_ms - mean) / se;
        eprintln!(
            "{name} on {target}: E[lat] {:.5} ms, Monte Carlo {mean:.5} ± {se:.5} ({n} subnets), z = {z:.2}",
            r.latency_ms
        );
        assert!(z.abs() < 3.0, "{name} on {target}: expectation {} vs Monte Carlo {mean} ± {se}", r.latency_ms);
    }
}

#[test]
fn additive_lookup_tables_are_off_where_choices_interact() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (name, target, t, model) in tables() {
        let logits: Vec<f64> = random_logits(t, &mut rng).iter().map(|x| x * 1.5).collect();
        let r = t.expected(&Query::softmax(logits.clone())).unwrap();
        let (add, _) = t.expected_additive(&logits, 1.0);
        let rel = (add - r.latency_ms) / r.latency_ms;
        if t.max_scope() <= 1 {
            assert!(rel.abs() < 1e-9, "{name}: additive space, LUT must be exact ({rel:e})");
            continue;
        }
        let (mean, se) = monte_carlo(name, t, model, &Query::softmax(logits), &r.probabilities, 300, 23);
        eprintln!(
            "{name} on {target}: exact E[lat] {:.4} ms, additive LUT {add:.4} ms ({:+.1} %), Monte Carlo {mean:.4} ± {se:.4}",
            r.latency_ms,
            100.0 * rel
        );
        assert!((add - mean).abs() > 3.0 * se, "{name}: the additive approximation should be measurably off");
        assert!((r.latency_ms - mean).abs() < 3.0 * se);
    }
}

#[test]
fn hard_paths_price_the_concrete_subnet() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (name, _, t, model) in tables() {
        let space = spaces::lookup(name).unwrap();
        let cfg = space.sample(&mut rng);
        let choice: Vec<usize> = t.params.iter().map(|p| cfg.choices[p]).collect();
        let q = Query {
            relaxation: Relaxation::Hard { choice: choice.clone() },
            ..Query::softmax(random_logits(t, &mut rng))
        };
        let r = t.expected(&q).unwrap();
        let (lat, _) = run_cost(&space.subnet_of(&cfg).unwrap(), model, None, None).unwrap();
        assert!((r.latency_ms - lat).abs() <= 1e-9 * lat, "{name}: {} vs {lat}", r.latency_ms);
        assert!(r.grad_logits.iter().any(|g| *g != 0.0), "straight-through gradient is not zero");
    }
}

#[test]
fn bad_queries_are_refused_with_a_reason() {
    let (_, _, t, _) = &tables()[0];
    let ok = Query::softmax(vec![0.0; t.n_logits()]);
    assert!(t.expected(&ok).is_ok());
    let cases: Vec<(Query, &str)> = vec![
        (Query::softmax(vec![0.0; 3]), "logits"),
        (Query { tau: 0.0, ..ok.clone() }, "τ"),
        (Query { logits: vec![f64::NAN; t.n_logits()], ..ok.clone() }, "not finite"),
        (Query { exits: ExitModel::Probabilities(vec![0.5]), ..ok.clone() }, "exit probabilities"),
        (Query { gates: Some(vec![0.5]), ..ok.clone() }, "gate probabilities"),
        (Query { relaxation: Relaxation::Hard { choice: vec![99; t.params.len()] }, ..ok.clone() }, "out of range"),
    ];
    for (q, want) in cases {
        let e = t.expected(&q).unwrap_err();
        assert!(e.contains(want), "{e}");
    }
    assert!(Objective::parse("hinge:3").unwrap_err().contains("2 number"));
    assert!(Objective::parse("nope").unwrap_err().contains("unknown objective"));
    assert_eq!(Objective::parse("fbnet:0.2,0.6").unwrap(), Objective::Fbnet { alpha: 0.2, beta: 0.6 });
}
