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
}

impl ModelArgs {
    /// The named graph; a supernet when `--space` is given without `--arch` and
    /// `allow_supernet` holds.
    pub fn load(&self, allow_supernet: bool) -> Result<Graph> {
        match (&self.model, &self.space, &self.arch) {
            (Some(path), _, _) => nasc::io::read_graph(path),
            (None, Some(space), Some(arch)) => {
                let s = spaces::lookup(space)?;
                Ok(s.subnet(arch)?)
            }
            (None, Some(space), None) if allow_supernet => Ok(spaces::lookup(space)?.supernet().graph().clone()),
            (None, Some(_), None) => bail!("--space needs --arch (an architecture string of the space)"),
            (None, None, _) => bail!("name a model: MODEL.json, or --space S --arch A"),
        }
    }

    /// The named graph, which must be concrete and valid.
    pub fn load_concrete(&self) -> Result<Graph> {
        let g = self.load(false)?;
        if !g.is_concrete() {
            bail!("model `{}` is a supernet (it has choices); select a subnet with --space S --arch A", g.name);
        }
        g.validate().with_context(|| format!("model `{}`", g.name))?;
        Ok(g)
    }
}
