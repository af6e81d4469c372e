//! Python bindings of nasc (PyO3): the `nasc._nasc` extension behind the `nasc` package.
//!
//! `Target` (calibrated by a profile when given one) prices subnets (an architecture string
//! of a built-in space, a graph JSON file or an ONNX file) and batches of architecture strings
//! (a NumPy array, computed in parallel without the GIL); `Target.table(space)` builds a
//! `Table`, whose `expected` returns the expected cost under architecture logits with its
//! exact gradients as NumPy arrays (one copy per array per call). Errors are `ValueError`s
//! with nasc's one-line messages.
//!
//! **Architecture Invariant:** no LLVM here — the bindings use the facade without its
//! `codegen` feature, so the wheel needs nothing but NumPy.
#![warn(missing_docs)]
// PyO3's macros expand to code clippy's `useless_conversion` flags on `PyResult` returns.
#![allow(clippy::useless_conversion)]

use nasc::costmodel::expect::{ExitModel, Objective, Query, Relaxation};
use nasc::costmodel::table::CostTable;
use nasc::costmodel::{cost, Model};
use nasc::ir::spaces;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::prelude::*;

fn err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A hardware target: a built-in name (`cortex-a72`, `eyeriss`, …) or a target TOML file.
#[pyclass(frozen, module = "nasc")]
struct Target {
    model: Model,
    /// The profile applied, as given (a file or `builtin:<name>`).
    profile: Option<String>,
}

fn report_dict<'py>(py: Python<'py>, r: &nasc::costmodel::Report) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("target", &r.target)?;
    d.set_item("latency_ms", r.latency_ms)?;
    d.set_item("energy_mj", r.energy_mj)?;
    d.set_item("macs", r.macs)?;
    d.set_item("params", r.params)?;
    d.set_item("peak_memory_bytes", r.peak_memory_bytes)?;
    d.set_item("exits_latency_ms", r.exits.iter().map(|e| e.latency_ms).collect::<Vec<_>>())?;
    Ok(d)
}

#[pymethods]
impl Target {
    /// `Target("cortex-a72")` or `Target(path="my-chip.toml")`, calibrated with
    /// `profile="my-chip.profile.json"` (what `nasc calibrate` writes) or
    /// `profile="builtin:cortex-a72/fbnet-imagenet-raspi4_latency"` (one of `nasc.profiles()`).
    #[new]
    #[pyo3(signature = (name=None, *, path=None, profile=None))]
    fn new(name: Option<&str>, path: Option<&str>, profile: Option<&str>) -> PyResult<Self> {
        let t = match (name, path) {
            (Some(n), None) => nasc::targets::lookup(n).map_err(err)?,
            (None, Some(p)) => nasc::targets::Target::load(std::path::Path::new(p)).map_err(err)?,
            _ => return Err(PyValueError::new_err("give a target name or path=…, not both")),
        };
        let mut model = Model::new(t).map_err(err)?;
        if let Some(p) = profile {
            nasc::profiles::apply(&mut model, std::path::Path::new(p)).map_err(|e| err(format!("{e:#}")))?;
        }
        Ok(Target { model, profile: profile.map(str::to_string) })
    }

    /// The target's name.
    #[getter]
    fn name(&self) -> String {
        self.model.target.name.clone()
    }

    /// The calibrated profile applied, as given, or `None`.
    #[getter]
    fn profile(&self) -> Option<String> {
        self.profile.clone()
    }

    /// Cost of one subnet of a built-in space: a dict with `latency_ms`, `energy_mj`, `macs`,
    /// `params`, `peak_memory_bytes` and `exits_latency_ms`.
    fn cost<'py>(&self, py: Python<'py>, space: &str, arch: &str) -> PyResult<Bound<'py, PyDict>> {
        let g = spaces::lookup(space).map_err(err)?.subnet(arch).map_err(err)?;
        report_dict(py, &cost(&g, &self.model).map_err(err)?)
    }

    /// Cost of a model file: nasc graph JSON or ONNX (with an optional exits sidecar).
    #[pyo3(signature = (path, exits=None))]
    fn cost_model<'py>(&self, py: Python<'py>, path: &str, exits: Option<&str>) -> PyResult<Bound<'py, PyDict>> {
        let (g, _) = nasc::io::read_model(std::path::Path::new(path), exits.map(std::path::Path::new))
            .map_err(|e| err(format!("{e:#}")))?;
        report_dict(py, &cost(&g, &self.model).map_err(err)?)
    }

    /// Latency (ms) and energy (mJ) of many architecture strings of a space, as an `(n, 2)`
    /// array, computed in parallel from the space's cost table.
    fn cost_batch<'py>(&self, py: Python<'py>, space: &str, archs: Vec<String>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let s = spaces::lookup(space).map_err(err)?;
        let table = CostTable::build(space, s.supernet(), &self.model).map_err(err)?;
        let flat = py.allow_threads(|| batch(&table, s.as_ref(), &archs))?;
        let n = archs.len();
        PyArray1::from_vec(py, flat).reshape([n, 2])
    }

    /// The cost table of a space on this target, for expected costs and fast queries.
    fn table(&self, space: &str) -> PyResult<Table> {
        let s = spaces::lookup(space).map_err(err)?;
        Ok(Table { table: CostTable::build(space, s.supernet(), &self.model).map_err(err)?, space: space.to_string() })
    }
}

/// Parses and prices architecture strings in parallel: latency, energy per row, flattened.
fn batch(table: &CostTable, space: &dyn spaces::SearchSpace, archs: &[String]) -> PyResult<Vec<f64>> {
    let rows: Vec<[f64; 2]> = archs
        .par_iter()
        .enumerate()
        .map(|(i, a)| {
            let cfg = space.parse_arch(a).map_err(|e| err(format!("arch {i}: {e}")))?;
            let v: Vec<usize> = table.params.iter().map(|p| cfg.choices[p]).collect();
            let c = table.cost(&v);
            Ok([c.latency_ms, c.energy_mj])
        })
        .collect::<PyResult<_>>()?;
    Ok(rows.into_iter().flatten().collect())
}

/// A supernet's cost table on a target.
#[pyclass(frozen, module = "nasc")]
struct Table {
    table: CostTable,
    space: String,
}

#[pymethods]
impl Table {
    /// Architecture parameter names, in logits order.
    #[getter]
    fn params(&self) -> Vec<String> {
        self.table.params.clone()
    }

    /// Option labels per parameter.
    #[getter]
    fn options(&self) -> Vec<Vec<String>> {
        self.table.options.clone()
    }

    /// Early exit names.
    #[getter]
    fn exits(&self) -> Vec<String> {
        self.table.exits.clone()
    }

    /// Gate names.
    #[getter]
    fn gates(&self) -> Vec<String> {
        self.table.gates.clone()
    }

    /// Length of the flat logits vector.
    #[getter]
    fn n_logits(&self) -> usize {
        self.table.n_logits()
    }

    /// The option indices of an architecture string.
    fn config(&self, arch: &str) -> PyResult<Vec<usize>> {
        let cfg = spaces::lookup(&self.space).map_err(err)?.parse_arch(arch).map_err(err)?;
        Ok(self.table.params.iter().map(|p| cfg.choices[p]).collect())
    }

    /// Latency (ms) and energy (mJ) of many architecture strings as an `(n, 2)` array,
    /// parsed and priced in parallel without the GIL.
    fn cost_batch<'py>(&self, py: Python<'py>, archs: Vec<String>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let s = spaces::lookup(&self.space).map_err(err)?;
        let flat = py.allow_threads(|| batch(&self.table, s.as_ref(), &archs))?;
        PyArray1::from_vec(py, flat).reshape([archs.len(), 2])
    }

    /// `(latency_ms, energy_mj)` of a configuration (one option index per parameter).
    fn cost(&self, config: Vec<usize>) -> PyResult<(f64, f64)> {
        self.table.check(&config).map_err(err)?;
        let c = self.table.cost(&config);
        Ok((c.latency_ms, c.energy_mj))
    }

    /// Expected cost under `softmax(logits/tau)` (flat logits, parameter-major), optionally
    /// with Gumbel `noise` or a hard `choice` (straight-through), exit `probabilities` or soft
    /// `thresholds` (with `confidences` and `temperature`), gate open probabilities `gates`,
    /// and an objective (`latency`, `energy`, `edp`, `proxyless-linear:λ`,
    /// `proxyless-log:REF,β`, `fbnet:α,β`, `hinge:BUDGET,λ`). Returns a dict with `value`,
    /// `latency_ms`, `energy_mj`, `grad_logits`, `grad_tau`, `grad_exits`, `grad_gates` and
    /// `probabilities` (NumPy arrays).
    #[pyo3(signature = (logits, tau=1.0, objective="latency", noise=None, choice=None, exits=None, thresholds=None, confidences=None, temperature=0.1, gates=None))]
    #[allow(clippy::too_many_arguments)]
    fn expected<'py>(
        &self,
        py: Python<'py>,
        logits: PyReadonlyArray1<'py, f64>,
        tau: f64,
        objective: &str,
        noise: Option<PyReadonlyArray1<'py, f64>>,
        choice: Option<Vec<usize>>,
        exits: Option<PyReadonlyArray1<'py, f64>>,
        thresholds: Option<PyReadonlyArray1<'py, f64>>,
        confidences: Option<Vec<Vec<f64>>>,
        temperature: f64,
        gates: Option<PyReadonlyArray1<'py, f64>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let relaxation = match (noise, choice) {
            (Some(_), Some(_)) => return Err(PyValueError::new_err("give noise or choice, not both")),
            (Some(n), None) => Relaxation::Gumbel { noise: n.as_slice()?.to_vec() },
            (None, Some(c)) => Relaxation::Hard { choice: c },
            (None, None) => Relaxation::Softmax,
        };
        let exits = match (exits, thresholds) {
            (Some(_), Some(_)) => return Err(PyValueError::new_err("give exit probabilities or thresholds, not both")),
            (Some(p), None) => ExitModel::Probabilities(p.as_slice()?.to_vec()),
            (None, Some(t)) => ExitModel::SoftThresholds {
                thresholds: t.as_slice()?.to_vec(),
                confidences: confidences.ok_or_else(|| PyValueError::new_err("thresholds need confidences"))?,
                temperature,
            },
            (None, None) => ExitModel::Never,
        };
        let q = Query {
            logits: logits.as_slice()?.to_vec(),
            tau,
            relaxation,
            exits,
            gates: gates.map(|g| g.as_slice().map(<[f64]>::to_vec)).transpose()?,
            objective: Objective::parse(objective).map_err(err)?,
        };
        let r = py.allow_threads(|| self.table.expected(&q)).map_err(err)?;
        let d = PyDict::new(py);
        d.set_item("value", r.value)?;
        d.set_item("latency_ms", r.latency_ms)?;
        d.set_item("energy_mj", r.energy_mj)?;
        d.set_item("grad_logits", PyArray1::from_vec(py, r.grad_logits))?;
        d.set_item("grad_tau", r.grad_tau)?;
        d.set_item("grad_exits", PyArray1::from_vec(py, r.grad_exits))?;
        d.set_item("grad_gates", PyArray1::from_vec(py, r.grad_gates))?;
        d.set_item("probabilities", PyArray1::from_vec(py, r.probabilities))?;
        Ok(d)
    }

    /// The table as JSON (share it with workers; load with `Table.from_json`).
    fn to_json(&self) -> String {
        self.table.to_json()
    }

    /// A table from `to_json` text.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Table> {
        let table = CostTable::from_json(text).map_err(err)?;
        let space = table.space.clone();
        Ok(Table { table, space })
    }
}

/// Names of the built-in search spaces.
#[pyfunction]
fn spaces_list() -> Vec<&'static str> {
    spaces::NAMES.to_vec()
}

/// Names of the built-in targets.
#[pyfunction]
fn targets_list() -> Vec<&'static str> {
    nasc::targets::names()
}

/// Names of the calibrated profiles shipped with nasc, for `Target(…, profile="builtin:<name>")`.
#[pyfunction]
fn profiles_list() -> Vec<&'static str> {
    nasc::profiles::BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// The extension module.
#[pymodule]
fn _nasc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Target>()?;
    m.add_class::<Table>()?;
    m.add_function(wrap_pyfunction!(profiles_list, m)?)?;
    m.add_function(wrap_pyfunction!(spaces_list, m)?)?;
    m.add_function(wrap_pyfunction!(targets_list, m)?)?;
    Ok(())
}
