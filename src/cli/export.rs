//! `nasc export`: a concrete subnet with its weights as ONNX (plus a sidecar of its exits).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use nasc::ir::Weights;

use super::model::ModelArgs;

/// Options of `nasc export`.
#[derive(Args, Debug)]
pub struct Options {
    #[command(flatten)]
    model: ModelArgs,
    /// Output format (only `onnx`).
    #[arg(long, default_value = "onnx")]
    format: String,
    /// Seed of the generated weights (the same seed `nasc run --seed` uses).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The ONNX file to write.
    #[arg(short, long, value_name = "OUT.onnx")]
    output: PathBuf,
    /// Where to write the exits sidecar (default: OUT.exits.json, written only when the model
    /// has exits).
    #[arg(long, value_name = "FILE.json")]
    exits_out: Option<PathBuf>,
}

pub fn run(o: Options) -> Result<()> {
    if o.format != "onnx" {
        bail!("--format {}: only onnx is supported", o.format);
    }
    let (g, w) = o.model.load_concrete_with_weights()?;
    let weights = match w {
        Some(w) => w,
        None => Weights::random(&g, o.seed)?,
    };
    let (bytes, sidecar) = nasc::onnx::export(&g, &weights)?;
    nasc::io::write_atomic(&o.output, &bytes)?;
    let mut msg = format!("wrote {} ({} bytes, {} nodes)\n", o.output.display(), bytes.len(), g.len());
    if !sidecar.exits.is_empty() {
        let side = o.exits_out.clone().unwrap_or_else(|| o.output.with_extension("exits.json"));
        nasc::io::write_atomic(&side, serde_json::to_string_pretty(&sidecar)?.as_bytes())?;
        msg += &format!("wrote {} ({} exits)\n", side.display(), sidecar.exits.len());
    }
    super::emit(&msg)
}
