//! Built-in search spaces: their supernets and their architecture strings.
//!
//! A space is a [`SearchSpace`]: a supernet plus the parsing and printing of its architecture
//! strings. To add one: write a module here implementing [`SearchSpace`], add its variants to
//! [`NAMES`] and [`lookup`], and add it to the space conformance tests (`ir/tests/spaces.rs`).

use rand::Rng;

pub mod fbnet;
pub mod nb201;

use crate::error::{IrError, Result};
use crate::graph::Graph;
use crate::select::{Config, Supernet};

// Dynamic-network spaces (early exits, gates, elastic depth/resolution).
pub mod ee_mbv2;
pub mod ofa_mbv3;
pub mod skipnet;

/// A search space: a supernet with named architecture strings.
pub trait SearchSpace: Send + Sync {
    /// Full name with variant, e.g. `nb201:cifar10`.
    fn name(&self) -> &str;
    /// One-line description with its source.
    fn description(&self) -> &str;
    /// The supernet.
    fn supernet(&self) -> &Supernet;
    /// Parses an architecture string to a configuration.
    fn parse_arch(&self, arch: &str) -> Result<Config>;
    /// Prints a configuration as an architecture string (the inverse of `parse_arch`).
    fn format_arch(&self, config: &Config) -> String;

    /// A configuration drawn uniformly at random.
    fn sample(&self, rng: &mut dyn rand::RngCore) -> Config {
        Config {
            choices: self
                .supernet()
                .params()
                .iter()
                .map(|p| (p.name.clone(), rng.gen_range(0..p.options.len())))
                .collect(),
        }
    }

    /// The concrete subnet of an architecture string, with `meta.space` and `meta.arch` set.
    fn subnet(&self, arch: &str) -> Result<Graph> {
        let cfg = self.parse_arch(arch)?;
        self.subnet_of(&cfg)
    }

    /// The concrete subnet of a configuration, with `meta.space` and `meta.arch` set.
    fn subnet_of(&self, config: &Config) -> Result<Graph> {
        let mut g = self.supernet().select(config)?;
        g.meta.insert("space".into(), self.name().to_string());
        g.meta.insert("arch".into(), self.format_arch(config));
        Ok(g)
    }
}

/// A supernet built and validated once per process, in `cell`.
pub(crate) fn cached(
    cell: &'static std::sync::OnceLock<Supernet>,
    build: impl FnOnce() -> Result<Graph>,
) -> Result<&'static Supernet> {
    if let Some(s) = cell.get() {
        return Ok(s);
    }
    let built = Supernet::new(build()?)?;
    Ok(cell.get_or_init(|| built))
}

/// Every built-in space name, variants included.
pub const NAMES: &[&str] = &[
    "nb201:cifar10",
    "nb201:cifar100",
    "nb201:imagenet16-120",
    "fbnet:cifar100",
    "fbnet:imagenet",
    // Dynamic-network spaces.
    ee_mbv2::NAME,
    skipnet::NAME,
    ofa_mbv3::NAME,
];

/// Looks a built-in space up by name (`family:variant`; the family alone picks its first
/// variant).
pub fn lookup(name: &str) -> Result<Box<dyn SearchSpace>> {
    if let Some(s) = lookup_dynamic(name) {
        return Ok(s);
    }
    let full = match name {
        "nb201" => "nb201:cifar10",
        "fbnet" => "fbnet:cifar100",
        _ => name,
    };
    if let Some(v) = nb201::Variant::from_name(full) {
        return Ok(Box::new(nb201::Nb201::new(v)?));
    }
    if let Some(v) = fbnet::Variant::from_name(full) {
        return Ok(Box::new(fbnet::FbNet::new(v)?));
    }
    Err(IrError::UnknownSpace(name.to_string()))
}

/// The dynamic-network spaces (early exits, gates, elastic depth and resolution).
fn lookup_dynamic(name: &str) -> Option<Box<dyn SearchSpace>> {
    Some(match name {
        "ee-mbv2" | ee_mbv2::NAME => Box::new(ee_mbv2::EeMbv2),
        "skipnet-resnet" | skipnet::NAME => Box::new(skipnet::SkipNet),
        "ofa-mbv3" | ofa_mbv3::NAME => Box::new(ofa_mbv3::OfaMbv3),
        _ => return None,
    })
}

/// Parses the generic architecture string form: option labels, one per parameter in
/// declaration order, separated by `sep`; a label may also be given as its option index.
/// Errors name the 1-based position.
pub fn parse_labels(space: &str, graph: &Graph, arch: &str, sep: char) -> Result<Config> {
    let parts: Vec<&str> = arch.split(sep).map(str::trim).collect();
    let params = &graph.params;
    if parts.len() != params.len() {
        return Err(IrError::Arch {
            space: space.into(),
            message: format!("expected {} `{sep}`-separated entries, got {}", params.len(), parts.len()),
        });
    }
    let mut cfg = Config::default();
    for (pos, (part, p)) in parts.iter().zip(params).enumerate() {
        let idx = p
            .options
            .iter()
            .position(|o| o == part)
            .or_else(|| part.parse::<usize>().ok().filter(|&i| i < p.options.len()));
        let idx = idx.ok_or_else(|| IrError::Arch {
            space: space.into(),
            message: format!(
                "entry {} (`{}`) is `{part}`, expected one of {} or an index below {}",
                pos + 1,
                p.name,
                p.options.join(", "),
                p.options.len()
            ),
        })?;
        cfg.choices.insert(p.name.clone(), idx);
    }
    Ok(cfg)
}

/// Prints the generic form parsed by [`parse_labels`].
pub fn format_labels(graph: &Graph, config: &Config, sep: &str) -> String {
    graph
        .params
        .iter()
        .map(|p| config.choices.get(&p.name).map_or("?", |&i| p.options[i].as_str()))
        .collect::<Vec<_>>()
        .join(sep)
}
