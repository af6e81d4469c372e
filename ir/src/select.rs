//! Supernets and the selection of concrete subnets.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{IrError, Result};
use crate::graph::{ArchParam, Graph, NodeId};
use crate::op::Op;

/// A configuration: one option index per architecture parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Config {
    /// param name → option index
    pub choices: BTreeMap<String, usize>,
}

impl Config {
    /// A configuration from `(param, index)` pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, usize)>) -> Self {
        Config { choices: pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
    }
}

/// A validated graph with architecture parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Supernet {
    graph: Graph,
}

impl Supernet {
    /// Wraps a supernet graph after checking it: structure, every parameter used by a choice,
    /// and, for each option index `i`, the subnet taking option `min(i, last)` of every
    /// parameter selects and validates — so every candidate is shape-checked at least once.
    pub fn new(graph: Graph) -> Result<Self> {
        graph.validate_structure()?;
        for p in &graph.params {
            let used = graph.node_ids().any(|id| matches!(&graph.node(id).op, Op::Choice(c) if c.param == p.name));
            if !used {
                return Err(IrError::Param { param: p.name.clone(), message: "is not used by any choice".into() });
            }
        }
        let max_opts = graph.params.iter().map(|p| p.options.len()).max().unwrap_or(1);
        for i in 0..max_opts {
            let cfg =
                Config { choices: graph.params.iter().map(|p| (p.name.clone(), i.min(p.options.len() - 1))).collect() };
            graph.select(&cfg)?.validate()?;
        }
        Ok(Supernet { graph })
    }

    /// The supernet graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The architecture parameters.
    pub fn params(&self) -> &[ArchParam] {
        &self.graph.params
    }

    /// Selects a concrete subnet.
    pub fn select(&self, config: &Config) -> Result<Graph> {
        self.graph.select(config)
    }

    /// A configuration drawn uniformly, independently per parameter.
    pub fn sample(&self, rng: &mut impl Rng) -> Config {
        Config {
            choices: self.graph.params.iter().map(|p| (p.name.clone(), rng.gen_range(0..p.options.len()))).collect(),
        }
    }
}

impl Graph {
    /// Checks a configuration against the declared parameters: every parameter has a value,
    /// in range, and no unknown parameter is named.
    pub fn check_config(&self, config: &Config) -> Result<()> {
        for p in &self.params {
            match config.choices.get(&p.name) {
                None => {
                    return Err(IrError::Param {
                        param: p.name.clone(),
                        message: "has no value in the configuration".into(),
                    })
                }
                Some(&i) if i >= p.options.len() => {
                    return Err(IrError::Param {
                        param: p.name.clone(),
                        message: format!("option {i} out of range (it has {})", p.options.len()),
                    })
                }
                _ => {}
            }
        }
        if let Some(k) = config.choices.keys().find(|k| self.param(k).is_none()) {
            return Err(IrError::Param { param: k.clone(), message: "is not a parameter of this graph".into() });
        }
        Ok(())
    }

    /// The concrete subnet for a configuration: every choice replaced by its chosen candidate,
    /// then only the nodes the sinks depend on kept, in their original order and names.
    pub fn select(&self, config: &Config) -> Result<Graph> {
        self.check_config(config)?;
        let resolve = |mut id: NodeId| -> NodeId {
            while let Op::Choice(c) = &self.node(id).op {
                id = self.inputs(id)[config.choices[&c.param]];
            }
            id
        };
        let mut live = vec![false; self.len()];
        for id in self.node_ids().rev() {
            let op = &self.node(id).op;
            if op.is_sink() {
                live[id.index()] = true;
            }
            if live[id.index()] && !matches!(op, Op::Choice(_)) {
                for &i in self.inputs(id) {
                    live[resolve(i).index()] = true;
                }
            }
        }
        let mut out = Graph::new(self.name.clone());
        out.meta = self.meta.clone();
        let mut map: Vec<Option<NodeId>> = vec![None; self.len()];
        for id in self.node_ids() {
            if !live[id.index()] {
                continue;
            }
            let n = self.node(id);
            let ins: Vec<NodeId> =
                self.inputs(id).iter().map(|&i| map[resolve(i).index()].expect("inputs come first")).collect();
            map[id.index()] = Some(out.add(n.name.clone(), n.op.clone(), &ins)?);
        }
        Ok(out)
    }
}
