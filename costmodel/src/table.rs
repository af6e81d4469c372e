//! Cost tables: a supernet's cost on a target, precomputed once so that search frameworks can
//! query concrete subnets in nanoseconds and expected costs with exact gradients in
//! microseconds ([`crate::expect`]).
//!
//! # How a table is exact
//!
//! The analytic model prices each fused kernel from that kernel alone (its op and input
//! shapes). A kernel's cost in a subnet therefore depends only on
//! - the architecture parameters that decide whether its anchor node is *live* (the parameters
//!   of the choices on its paths to the sinks), and
//! - the parameters that decide its *input shapes* (choices upstream whose candidates differ in
//!   shape: elastic width, expand ratio, resolution).
//!
//! That set is the kernel's *scope*. The table stores, for every group of kernels sharing a
//! scope (and an exit segment and a set of enclosing gates), their summed latency and energy
//! for every assignment of the scope: the cost of a subnet is a sum of table entries, and the
//! expected cost under independent categorical distributions is a sum over each group of the
//! products of the probabilities of its scope — exact, including the pairwise (and higher)
//! terms where one choice changes another's cost. Entries come from pricing real subnets
//! through the concrete path ([`crate::report::cost`]); tests check table queries against that
//! path on random subnets of every built-in space.
//!
//! Which built-in spaces have multi-parameter scopes: `ofa-mbv3` (depth × kernel × expand ×
//! resolution in every block: the expand ratio sets the depthwise conv's channels, the kernel
//! its window, elastic depth whether the block runs, resolution every shape). `nb201`,
//! `fbnet`, `ee-mbv2` and `skipnet-resnet` are additive: every scope has at most one parameter.
//!
//! Exits and gates: each kernel belongs to the *segment* of the first sink (early exits in
//! order, then the output) that depends on it in the supernet, and to the bodies of the gates
//! whose body contains it, so E[cost] = Σ_k P(reach k) · Σ_{kernels in segment k}
//! P(enclosing gates open) · E_arch[cost].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use nasc_ir::op::{ExitRule, Op};
use nasc_ir::shape::{infer_op_shape, Shape};
use nasc_ir::{Config, Graph, IrError, NodeId, Supernet};
use rayon::prelude::*;

use crate::analytic::Model;
use crate::report::cost;

/// A group of kernels with one scope, one exit segment and one set of enclosing gates.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    /// Parameter indices of the scope, ascending.
    pub scope: Vec<usize>,
    /// Mixed-radix strides of the scope's parameters into the tables (last fastest).
    pub strides: Vec<usize>,
    /// Exit segment: `k` for early exit `k`, the number of exits for the output.
    pub segment: usize,
    /// Indices of the gates whose body holds these kernels.
    pub gates: Vec<usize>,
    /// Latency (ms) per scope assignment.
    pub latency_ms: Vec<f64>,
    /// Energy (mJ) per scope assignment.
    pub energy_mj: Vec<f64>,
    /// Options per scope parameter (derived; rebuilt on load).
    #[serde(skip)]
    pub radix: Vec<usize>,
    /// Offsets of the scope parameters' options in a flat logits vector (derived).
    #[serde(skip)]
    pub weight_offsets: Vec<usize>,
}

impl Group {
    /// Flat index of the scope assignment read from a full configuration (option per param).
    #[inline]
    pub fn index(&self, config: &[usize]) -> usize {
        self.scope.iter().zip(&self.strides).map(|(&p, &s)| config[p] * s).sum()
    }
}

/// A priced probe: the scope, its assignment, and every kernel's (anchor, latency, energy).
type Probe = (Vec<usize>, usize, Vec<(String, f64, f64)>);

/// A precomputed cost table of one supernet on one target.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CostTable {
    /// Space or model name.
    pub space: String,
    /// Target name.
    pub target: String,
    /// Parameter names, in the supernet's order.
    pub params: Vec<String>,
    /// Options per parameter.
    pub options: Vec<Vec<String>>,
    /// Early exit names, in exit order.
    pub exits: Vec<String>,
    /// Their decision rules (for soft thresholds).
    pub exit_rules: Vec<ExitRule>,
    /// Gate names, in node order.
    pub gates: Vec<String>,
    /// The groups.
    pub groups: Vec<Group>,
    /// Groups merged by scope (every segment, every gate open): the fast concrete path.
    /// Not serialised; [`CostTable::from_json`] rebuilds it.
    #[serde(skip)]
    full: Vec<Group>,
    /// Offsets of each parameter's options in a flat logits vector.
    pub offsets: Vec<usize>,
}

/// Latency and energy of one subnet.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Pair {
    /// Milliseconds.
    pub latency_ms: f64,
    /// Millijoules.
    pub energy_mj: f64,
}

/// Shapes of every node of a supernet under a configuration, keeping unselected candidates:
/// `None` where a node's inputs do not fit in this configuration.
fn supernet_shapes(g: &Graph, choice: &dyn Fn(&str) -> usize) -> Vec<Option<Shape>> {
    let mut shapes: Vec<Option<Shape>> = Vec::with_capacity(g.len());
    for id in g.node_ids() {
        let node = g.node(id);
        let ins = g.inputs(id);
        let s = match &node.op {
            Op::Choice(c) => shapes[ins[choice(&c.param)].index()].clone(),
            op => {
                let in_shapes: Option<Vec<&Shape>> = ins.iter().map(|i| shapes[i.index()].as_ref()).collect();
                in_shapes.and_then(|v| infer_op_shape(op, &v).ok())
            }
        };
        shapes.push(s);
    }
    shapes
}

/// A boolean function of some architecture parameters, as a truth table over their options
/// (mixed radix, last variable fastest), kept minimal: it depends on every variable it lists.
#[derive(Clone, Debug, PartialEq)]
struct BoolFn {
    vars: Vec<usize>,
    table: Vec<bool>,
}

impl BoolFn {
    fn constant(v: bool) -> BoolFn {
        BoolFn { vars: Vec::new(), table: vec![v] }
    }

    /// `param ∈ ports`.
    fn var_in(param: usize, ports: &[usize], radices: &[usize]) -> BoolFn {
        BoolFn { vars: vec![param], table: (0..radices[param]).map(|o| ports.contains(&o)).collect() }
            .minimised(radices)
    }

    fn eval(&self, assign: &dyn Fn(usize) -> usize, radices: &[usize]) -> bool {
        let mut i = 0;
        for &v in &self.vars {
            i = i * radices[v] + assign(v);
        }
        self.table[i]
    }

    fn combine(&self, other: &BoolFn, radices: &[usize], op: impl Fn(bool, bool) -> bool) -> BoolFn {
        let vars: Vec<usize> =
            self.vars.iter().chain(&other.vars).copied().collect::<BTreeSet<_>>().into_iter().collect();
        let total: usize = vars.iter().map(|&v| radices[v]).product();
        let mut table = Vec::with_capacity(total);
        let mut digits = vec![0usize; vars.len()];
        for _ in 0..total {
            let assign = |v: usize| digits[vars.iter().position(|&x| x == v).expect("var of the union")];
            table.push(op(self.eval(&assign, radices), other.eval(&assign, radices)));
            for d in (0..vars.len()).rev() {
                digits[d] += 1;
                if digits[d] < radices[vars[d]] {
                    break;
                }
                digits[d] = 0;
            }
        }
        BoolFn { vars, table }.minimised(radices)
    }

    fn and(&self, other: &BoolFn, radices: &[usize]) -> BoolFn {
        self.combine(other, radices, |a, b| a && b)
    }

    fn or(&self, other: &BoolFn, radices: &[usize]) -> BoolFn {
        self.combine(other, radices, |a, b| a || b)
    }

    /// Drops the variables the table does not depend on.
    fn minimised(mut self, radices: &[usize]) -> BoolFn {
        let radix = |v: usize| radices[v];
        let mut k = 0;
        while k < self.vars.len() {
            let r = radix(self.vars[k]);
            let inner: usize = self.vars[k + 1..].iter().map(|&v| radix(v)).product();
            let outer = self.table.len() / (r * inner);
            let independent = (0..outer).all(|o| {
                (0..inner).all(|i| (1..r).all(|d| self.table[(o * r + d) * inner + i] == self.table[o * r * inner + i]))
            });
            if independent {
                self.table = (0..outer)
                    .flat_map(|o| (0..inner).map(move |i| (o, i)))
                    .map(|(o, i)| self.table[o * r * inner + i])
                    .collect();
                self.vars.remove(k);
            } else {
                k += 1;
            }
        }
        self
    }
}

/// What decides a node's cost: its scope (parameter indices), exit segment and enclosing gates.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Parameter indices, ascending.
    pub scope: Vec<usize>,
    /// Exit segment (the number of exits for the output).
    pub segment: usize,
    /// Enclosing gates.
    pub gates: Vec<usize>,
}

/// The scope, segment and gates of every non-choice node of a supernet, by node name.
pub fn analyse(supernet: &Supernet) -> Result<BTreeMap<String, Key>, IrError> {
    let g = supernet.graph();
    let params = supernet.params();
    let pidx: HashMap<&str, usize> = params.iter().enumerate().map(|(i, p)| (p.name.as_str(), i)).collect();
    let choice_param = |id: NodeId| -> Option<usize> {
        match &g.node(id).op {
            Op::Choice(c) => Some(pidx[c.param.as_str()]),
            _ => None,
        }
    };

    // Shape scope: the parameters that, moved alone from the all-zero configuration, change
    // the shape of a node or of one of its inputs (unselected candidates whose shapes do
    // not fit are ignored: liveness covers them).
    let base = |p: usize, o: usize| move |name: &str| if params[p].name == name { o } else { 0 };
    let n = g.len();
    let mut shape_scope: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for (p, param) in params.iter().enumerate() {
        let per_option: Vec<Vec<Option<Shape>>> =
            (0..param.options.len()).map(|o| supernet_shapes(g, &base(p, o))).collect();
        for id in g.node_ids() {
            let sig = |s: &[Option<Shape>]| -> Option<Vec<Shape>> {
                std::iter::once(id).chain(g.inputs(id).iter().copied()).map(|x| s[x.index()].clone()).collect()
            };
            let seen: BTreeSet<Vec<Shape>> = per_option.iter().filter_map(|s| sig(s)).collect();
            if seen.len() > 1 {
                shape_scope[id.index()].insert(p);
            }
        }
    }
    // Liveness scope, exactly: a node's liveness as a boolean function of the parameters
    // (true at the sinks; a non-choice consumer passes its own liveness on, a choice passes
    // it on only through the selected port), minimised to the parameters it really depends
    // on. The functions stay small because every intermediate one is minimised.
    let consumers: Vec<Vec<NodeId>> = g.node_ids().map(|id| g.consumers(id)).collect();
    let radices: Vec<usize> = params.iter().map(|p| p.options.len()).collect();
    let mut live: Vec<BoolFn> = vec![BoolFn::constant(false); n];
    for id in g.node_ids().rev() {
        let mut f = BoolFn::constant(g.node(id).op.is_sink());
        for &m in &consumers[id.index()] {
            let through = match choice_param(m) {
                Some(p) => {
                    let ports: Vec<usize> =
                        g.inputs(m).iter().enumerate().filter(|(_, &c)| c == id).map(|(i, _)| i).collect();
                    let sel = BoolFn::var_in(p, &ports, &radices);
                    live[m.index()].and(&sel, &radices)
                }
                None => live[m.index()].clone(),
            };
            f = f.or(&through, &radices);
        }
        live[id.index()] = f;
    }
    let live_scope: Vec<BTreeSet<usize>> = live.iter().map(|f| f.vars.iter().copied().collect()).collect();
    // Segments and gates.
    let exits = g.exits();
    let out = g.output_node()?;
    let sinks: Vec<NodeId> = exits.iter().copied().chain(std::iter::once(out)).collect();
    let sink_masks: Vec<Vec<bool>> = sinks.iter().map(|&s| g.ancestors_mask(&[s])).collect();
    let gate_ids = g.gates();
    let gate_masks: Vec<Vec<bool>> = gate_ids.iter().map(|&gt| g.gate_body_mask(gt)).collect();

    // Factors: every non-choice node, keyed by (scope, segment, gates).
    let mut factor_key: BTreeMap<String, Key> = BTreeMap::new();
    for id in g.node_ids() {
        if matches!(g.node(id).op, Op::Choice(_)) {
            continue;
        }
        let mut scope: BTreeSet<usize> = &shape_scope[id.index()] | &live_scope[id.index()];
        // A conv or dense kernel fuses its single consumer chain (BatchNorm, activation):
        // take that consumer's scope too.
        let cons = &consumers[id.index()];
        if matches!(g.node(id).op, Op::Conv2d(_) | Op::Dense(_) | Op::BatchNorm(_)) && cons.len() == 1 {
            let m = cons[0];
            if matches!(g.node(m).op, Op::BatchNorm(_)) || g.node(m).op.as_activation().is_some() {
                scope.extend(shape_scope[m.index()].iter().copied());
                scope.extend(live_scope[m.index()].iter().copied());
            }
        }
        let segment = sink_masks.iter().position(|m| m[id.index()]).unwrap_or(sinks.len() - 1);
        let gates: Vec<usize> = (0..gate_ids.len()).filter(|&k| gate_masks[k][id.index()]).collect();
        factor_key.insert(g.node(id).name.clone(), Key { scope: scope.into_iter().collect(), segment, gates });
    }

    Ok(factor_key)
}

impl CostTable {
    /// Builds the table of a supernet on a target. Prices one subnet per assignment of every
    /// distinct scope, in parallel.
    pub fn build(name: &str, supernet: &Supernet, model: &Model) -> Result<CostTable, IrError> {
        let g = supernet.graph();
        let params = supernet.params();
        let factor_key = analyse(supernet)?;
        let exits = g.exits();
        let gate_ids = g.gates();
        let scopes: BTreeSet<Vec<usize>> = factor_key.values().map(|k| k.scope.clone()).collect();
        let radix = |scope: &[usize]| -> (Vec<usize>, usize) {
            let mut strides = vec![0; scope.len()];
            let mut total = 1;
            for (i, &p) in scope.iter().enumerate().rev() {
                strides[i] = total;
                total *= params[p].options.len();
            }
            (strides, total)
        };
        // One probe per assignment of every scope.
        let mut probes: Vec<(Vec<usize>, usize)> = Vec::new();
        for s in &scopes {
            let (_, total) = radix(s);
            for a in 0..total {
                probes.push((s.clone(), a));
            }
        }
        let priced: Vec<Probe> = probes
            .par_iter()
            .map(|(scope, a)| {
                let (strides, _) = radix(scope);
                let mut cfg = Config::default();
                for p in params {
                    cfg.choices.insert(p.name.clone(), 0);
                }
                for (i, &p) in scope.iter().enumerate() {
                    cfg.choices.insert(params[p].name.clone(), (a / strides[i]) % params[p].options.len());
                }
                let sub = supernet.select(&cfg)?;
                let r = cost(&sub, model)?;
                let costs = r.layers.into_iter().map(|l| (l.name, l.latency_ms, l.energy_mj)).collect();
                Ok((scope.clone(), *a, costs))
            })
            .collect::<Result<_, IrError>>()?;
        let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
        for (scope, a, costs) in priced {
            for (name, lat, en) in costs {
                let Some(key) = factor_key.get(&name) else { continue };
                if key.scope != scope {
                    continue;
                }
                let (strides, total) = radix(&scope);
                let grp = groups.entry(key.clone()).or_insert_with(|| Group {
                    radix: Vec::new(),
                    weight_offsets: Vec::new(),
                    scope: scope.clone(),
                    strides,
                    segment: key.segment,
                    gates: key.gates.clone(),
                    latency_ms: vec![0.0; total],
                    energy_mj: vec![0.0; total],
                });
                grp.latency_ms[a] += lat;
                grp.energy_mj[a] += en;
            }
        }
        let groups: Vec<Group> = groups.into_values().collect();
        let mut offsets = Vec::with_capacity(params.len());
        let mut off = 0;
        for p in params {
            offsets.push(off);
            off += p.options.len();
        }
        let mut t = CostTable {
            space: name.to_string(),
            target: model.target.name.clone(),
            params: params.iter().map(|p| p.name.clone()).collect(),
            options: params.iter().map(|p| p.options.clone()).collect(),
            exits: exits.iter().map(|&e| g.node(e).name.clone()).collect(),
            exit_rules: exits
                .iter()
                .map(|&e| match &g.node(e).op {
                    Op::Exit(x) => x.rule,
                    _ => unreachable!("exits() returns exit nodes"),
                })
                .collect(),
            gates: gate_ids.iter().map(|&e| g.node(e).name.clone()).collect(),
            groups,
            full: Vec::new(),
            offsets,
        };
        t.rebuild_full();
        Ok(t)
    }

    /// Recomputes the merged fast-path groups (after deserialising).
    pub fn rebuild_full(&mut self) {
        for g in &mut self.groups {
            g.radix = g.scope.iter().map(|&p| self.options[p].len()).collect();
            g.weight_offsets = g.scope.iter().map(|&p| self.offsets[p]).collect();
        }
        let mut by_scope: BTreeMap<Vec<usize>, Group> = BTreeMap::new();
        for g in &self.groups {
            let e = by_scope.entry(g.scope.clone()).or_insert_with(|| Group {
                segment: 0,
                gates: Vec::new(),
                latency_ms: vec![0.0; g.latency_ms.len()],
                energy_mj: vec![0.0; g.energy_mj.len()],
                ..g.clone()
            });
            for (a, b) in e.latency_ms.iter_mut().zip(&g.latency_ms) {
                *a += b;
            }
            for (a, b) in e.energy_mj.iter_mut().zip(&g.energy_mj) {
                *a += b;
            }
        }
        self.full = by_scope.into_values().collect();
    }

    /// The table as JSON (a plain file search workers can share).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a table always serialises")
    }

    /// A table from [`CostTable::to_json`] text.
    pub fn from_json(text: &str) -> Result<CostTable, String> {
        let mut t: CostTable = serde_json::from_str(text).map_err(|e| format!("cost table: {e}"))?;
        t.check_structure().map_err(|e| format!("cost table: {e}"))?;
        t.rebuild_full();
        Ok(t)
    }

    /// Checks what [`CostTable::build`] guarantees and every query relies on, for a table read
    /// from a file: one non-empty option list per parameter, the logit offsets they imply, one
    /// rule per exit, and groups whose scopes, strides and table lengths fit the parameters,
    /// with finite non-negative costs.
    fn check_structure(&self) -> Result<(), String> {
        let n = self.params.len();
        if self.options.len() != n {
            return Err(format!("{} option lists for {n} parameters", self.options.len()));
        }
        if let Some(p) = self.options.iter().position(Vec::is_empty) {
            return Err(format!("parameter `{}` has no options", self.params[p]));
        }
        let offsets: Vec<usize> =
            self.options.iter().scan(0, |o, opts| Some(std::mem::replace(o, *o + opts.len()))).collect();
        if self.offsets != offsets {
            return Err(format!("offsets {:?} do not match the options (expected {offsets:?})", self.offsets));
        }
        if self.exit_rules.len() != self.exits.len() {
            return Err(format!("{} exit rules for {} exits", self.exit_rules.len(), self.exits.len()));
        }
        for (i, g) in self.groups.iter().enumerate() {
            let fits = || -> Result<(), String> {
                if g.scope.windows(2).any(|w| w[0] >= w[1]) || g.scope.last().is_some_and(|&p| p >= n) {
                    return Err(format!("scope {:?} is not ascending parameter indices below {n}", g.scope));
                }
                // Mixed radix, last parameter fastest.
                let mut strides = vec![0; g.scope.len()];
                let mut len = 1usize;
                for (k, &p) in g.scope.iter().enumerate().rev() {
                    strides[k] = len;
                    len = len.checked_mul(self.options[p].len()).ok_or("its table would overflow")?;
                }
                if g.strides != strides {
                    return Err(format!("strides {:?} do not match its scope (expected {strides:?})", g.strides));
                }
                if g.latency_ms.len() != len || g.energy_mj.len() != len {
                    return Err(format!(
                        "{} latencies and {} energies for {len} scope assignments",
                        g.latency_ms.len(),
                        g.energy_mj.len()
                    ));
                }
                if g.segment > self.exits.len() {
                    return Err(format!("segment {} but the table has {} exits", g.segment, self.exits.len()));
                }
                if let Some(k) = g.gates.iter().find(|&&k| k >= self.gates.len()) {
                    return Err(format!("gate {k} but the table has {} gates", self.gates.len()));
                }
                if g.latency_ms.iter().chain(&g.energy_mj).any(|v| !(v.is_finite() && *v >= 0.0)) {
                    return Err("costs must be finite and non-negative".into());
                }
                Ok(())
            };
            fits().map_err(|e| format!("group {i}: {e}"))?;
        }
        Ok(())
    }

    /// Total number of options over all parameters (the length of a flat logits vector).
    pub fn n_logits(&self) -> usize {
        self.options.iter().map(Vec::len).sum()
    }

    /// Checks a configuration (one option index per parameter).
    pub fn check(&self, config: &[usize]) -> Result<(), String> {
        if config.len() != self.params.len() {
            return Err(format!("expected {} option indices, got {}", self.params.len(), config.len()));
        }
        for (i, (&c, o)) in config.iter().zip(&self.options).enumerate() {
            if c >= o.len() {
                return Err(format!("param `{}`: option {c} out of range (it has {})", self.params[i], o.len()));
            }
        }
        Ok(())
    }

    /// Cost of the subnet running to its output (no exit fires, every gate open). The
    /// configuration must be valid ([`CostTable::check`]); indices are not checked here.
    #[inline]
    pub fn cost(&self, config: &[usize]) -> Pair {
        let mut p = Pair::default();
        for g in &self.full {
            let i = g.index(config);
            p.latency_ms += g.latency_ms[i];
            p.energy_mj += g.energy_mj[i];
        }
        p
    }

    /// Latency only, the hottest query of a search loop.
    #[inline]
    pub fn latency(&self, config: &[usize]) -> f64 {
        self.full.iter().map(|g| g.latency_ms[g.index(config)]).sum()
    }

    /// Cost of a subnet given where it exits (`exit` = early exit index, or `None` for the
    /// output) and which gates are open (`None` = all).
    pub fn cost_dynamic(&self, config: &[usize], exit: Option<usize>, gates_open: Option<&[bool]>) -> Pair {
        let last = exit.unwrap_or(self.exits.len());
        let mut p = Pair::default();
        for g in &self.groups {
            if g.segment > last {
                continue;
            }
            if let Some(open) = gates_open {
                if g.gates.iter().any(|&k| !open[k]) {
                    continue;
                }
            }
            let i = g.index(config);
            p.latency_ms += g.latency_ms[i];
            p.energy_mj += g.energy_mj[i];
        }
        p
    }

    /// Costs of many subnets, in parallel.
    pub fn cost_batch(&self, configs: &[Vec<usize>]) -> Vec<Pair> {
        configs.par_iter().map(|c| self.cost(c)).collect()
    }

    /// The additive lookup-table approximation (FBNet/ProxylessNAS LUTs): the cost of the
    /// all-zero configuration plus, per parameter, the change from moving that parameter alone.
    /// Exact on additive spaces; on spaces with pairwise terms it is what a LUT would predict.
    pub fn additive_lut(&self) -> (Pair, Vec<Vec<Pair>>) {
        let zero = vec![0; self.params.len()];
        let base = self.cost(&zero);
        let deltas = self
            .options
            .iter()
            .enumerate()
            .map(|(p, opts)| {
                (0..opts.len())
                    .map(|o| {
                        let mut c = zero.clone();
                        c[p] = o;
                        let x = self.cost(&c);
                        Pair { latency_ms: x.latency_ms - base.latency_ms, energy_mj: x.energy_mj - base.energy_mj }
                    })
                    .collect()
            })
            .collect();
        (base, deltas)
    }

    /// Largest number of parameters in one scope (1 = additive space).
    pub fn max_scope(&self) -> usize {
        self.groups.iter().map(|g| g.scope.len()).max().unwrap_or(0)
    }
}
