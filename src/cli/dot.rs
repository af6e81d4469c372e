//! `nasc dot`: Graphviz DOT of a model or a whole supernet.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use nasc::ir::dot;

use super::model::ModelArgs;

/// Options of `nasc dot`.
#[derive(Args, Debug)]
pub struct Options {
    #[command(flatten)]
    model: ModelArgs,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(o: Options) -> Result<()> {
    let g = o.model.load(true)?;
    let shapes = if g.is_concrete() { Some(g.validate()?) } else { None };
    let text = dot::to_dot(&g, shapes.as_deref());
    match o.output {
        Some(p) => nasc::io::write_atomic(&p, text.as_bytes()),
        None => super::emit(&text),
    }
}
