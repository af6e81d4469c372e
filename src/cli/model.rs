//! How commands name a model: a JSON file, or a built-in space with an architecture string.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use nasc::ir::{spaces, Graph};

/// A model: `MODEL.json`, or `--space S --arch A`.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A graph file in nasc's JSON form.
    #[arg(value_name = "MODEL", conflicts_with = "space")]
    pub model: Option<PathBuf>,
    /// A built-in search space (see `nasc spaces`).
    #[arg(long, value_name = "SPACE")]
    pub space: Option<String>,
    /// An architecture string of that space.
    #[arg(long, value_name = "ARCH", requires = "space")]
    pub arch: Option<String>,
    /// For an `.onnx` MODEL: a sidecar JSON marking its early exits.
    #[arg(long, value_name = "SIDECAR.json", requires = "model")]
    pub exits: Option<PathBuf>,
    /// Or a layer table (`model,op,in_c,in_h,in_w,…`, one row per layer, as `nasc calibrate
    /// --models` reads) holding the model named by `--model-name`.
    #[arg(long, value_name = "L.csv", conflicts_with_all = ["model", "space"], requires = "model_name")]
    pub models: Option<PathBuf>,
    /// The model of `--models` (a value of its `model` column).
    #[arg(long, value_name = "NAME", requires = "models")]
    pub model_name: Option<String>,
}

impl ModelArgs {
    /// The named graph; a supernet when `--space` is given without `--arch` and
    /// `allow_supernet` holds.
    pub fn load(&self, allow_supernet: bool) -> Result<Graph> {
        Ok(self.load_with_weights(allow_supernet)?.0)
    }

    /// The named graph and, for an ONNX model, its weights.
    pub fn load_with_weights(&self, allow_supernet: bool) -> Result<(Graph, Option<nasc::ir::Weights>)> {
        if let (Some(mut segs), Some((path, name))) = (self.table_segments()?, self.table()) {
            if segs.len() > 1 {
                bail!(
                    "{}: model `{name}` has {} segments (`from = new`): `nasc cost` prices them, other commands need one graph",
                    path.display(),
                    segs.len()
                );
            }
            return Ok((segs.remove(0), None));
        }
        let g = match (&self.model, &self.space, &self.arch) {
            (Some(path), _, _) => return nasc::io::read_model(path, self.exits.as_deref()),
            (None, Some(space), Some(arch)) => spaces::lookup(space)?.subnet(arch)?,
            (None, Some(space), None) if allow_supernet => spaces::lookup(space)?.supernet().graph().clone(),
            (None, Some(_), None) => bail!("--space needs --arch (an architecture string of the space)"),
            (None, None, _) => {
                bail!("name a model: MODEL.json or MODEL.onnx, --space S --arch A, or --models L.csv --model-name NAME")
            }
        };
        Ok((g, None))
    }

    /// With `--models`: the graphs of the named model's segments (one unless its table starts
    /// new segments with `from = new`); `None` for the other ways of naming a model.
    pub fn table_segments(&self) -> Result<Option<Vec<Graph>>> {
        let Some((path, name)) = self.table() else { return Ok(None) };
        let models = nasc::layers::read(path)?;
        let Some((_, layers)) = models.iter().find(|(m, _)| m == name) else {
            let names: Vec<&str> = models.iter().map(|(m, _)| m.as_str()).collect();
            let shown = names.iter().take(12).copied().collect::<Vec<_>>().join(", ");
            let more = if names.len() > 12 { format!(", … ({} in all)", names.len()) } else { String::new() };
            bail!("{}: no model `{name}` (models: {shown}{more})", path.display());
        };
        Ok(Some(nasc::layers::segments(name, layers, &path.display().to_string())?))
    }

    /// `--models` and `--model-name`, when given (clap requires them together).
    fn table(&self) -> Option<(&std::path::Path, &str)> {
        Some((self.models.as_deref()?, self.model_name.as_deref()?))
    }

    /// The named graph, which must be concrete and valid.
    pub fn load_concrete(&self) -> Result<Graph> {
        Ok(self.load_concrete_with_weights()?.0)
    }

    /// The named graph, concrete and valid, and, for an ONNX model, its weights.
    pub fn load_concrete_with_weights(&self) -> Result<(Graph, Option<nasc::ir::Weights>)> {
        let (g, w) = self.load_with_weights(false)?;
        if !g.is_concrete() {
            bail!("model `{}` is a supernet (it has choices); select a subnet with --space S --arch A", g.name);
        }
        g.validate().with_context(|| format!("model `{}`", g.name))?;
        Ok((g, w))
    }
}

/// Where a concrete model's weights come from: a safetensors file, the model file itself
/// (ONNX carries its weights), or generated from a seed.
#[derive(Args, Debug, Clone)]
pub struct WeightArgs {
    /// Weights from a safetensors file (F32 tensors named `NODE.TENSOR`, as `nasc export
    /// --format safetensors` writes); overrides an ONNX model's own.
    #[arg(long, value_name = "FILE.safetensors")]
    pub weights: Option<std::path::PathBuf>,
    /// Seed of the generated weights when neither `--weights` nor the model gives them (the
    /// same seed gives the same network in every command).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl WeightArgs {
    /// The weights for `g`, checked against its shapes.
    pub fn resolve(&self, g: &nasc::ir::Graph, from_model: Option<nasc::ir::Weights>) -> Result<nasc::ir::Weights> {
        let w = match (&self.weights, from_model) {
            (Some(p), _) => {
                let w = nasc::io::read_weights(p)?;
                w.check(g).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                w
            }
            (None, Some(w)) => w,
            (None, None) => nasc::ir::Weights::random(g, self.seed)?,
        };
        Ok(w)
    }
}
