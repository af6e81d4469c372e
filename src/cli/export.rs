//! `nasc export`: a concrete subnet with its weights as ONNX (plus a sidecar of its exits), or
//! its weights alone as safetensors.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::model::{ModelArgs, WeightArgs};

/// Options of `nasc export`.
#[derive(Args, Debug)]
pub struct Options {
    #[command(flatten)]
    model: ModelArgs,
    /// Output format: `onnx` (graph and weights) or `safetensors` (the weights alone, for
    /// `--weights` of run/compile).
    #[arg(long, default_value = "onnx")]
    format: String,
    #[command(flatten)]
    weights: WeightArgs,
    /// The file to write.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Where to write the exits sidecar (default: OUT.exits.json, written only when the model
    /// has exits).
    #[arg(long, value_name = "FILE.json")]
    exits_out: Option<PathBuf>,
}

pub fn run(o: Options) -> Result<()> {
    if o.format != "onnx" && o.format != "safetensors" {
        bail!("--format {}: expected onnx or safetensors", o.format);
    }
    let (g, w) = o.model.load_concrete_with_weights()?;
    let weights = o.weights.resolve(&g, w)?;
    if o.format == "safetensors" {
        let bytes = nasc::io::weights_to_safetensors(&weights)?;
        nasc::io::write_atomic(&o.output, &bytes)?;
        let n: usize = weights.tensors.values().map(|t| t.len()).sum();
        return super::emit(&format!("wrote {} ({} bytes, {n} tensors)\n", o.output.display(), bytes.len()));
    }
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
