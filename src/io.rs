//! File IO for the CLI and library users: `.npy` tensors, safetensors weights, graph files and
//! atomic writes.
//!
//! Every reader names the file in its errors; every writer writes a temporary file next to
//! the destination and renames it into place, so a failed command leaves no half-written
//! output.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nasc_ir::{Graph, Tensor, Weights};
use npyz::WriterBuilder;

/// Reads a `.npy` array of `float32` (or `float64`, converted) in C order.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let bytes = fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse_npy(&bytes, &path.display().to_string())
}

/// Parses `.npy` bytes (what [`read_npy`] reads); `origin` names them in errors.
pub fn parse_npy(bytes: &[u8], origin: &str) -> Result<Tensor> {
    check_npy_header(bytes).with_context(|| format!("{origin}: not a .npy file of float32 or float64"))?;
    let npy = npyz::NpyFile::new(bytes).with_context(|| format!("{origin}: not a .npy file"))?;
    if npy.order() != npyz::Order::C {
        bail!("{origin}: Fortran-order arrays are not supported; save with C order");
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let descr = npy.dtype().descr();
    let data: Vec<f32> = match descr.as_str() {
        "'<f4'" => npy.into_vec::<f32>().with_context(|| format!("{origin}: truncated data"))?,
        "'<f8'" => npy
            .into_vec::<f64>()
            .with_context(|| format!("{origin}: truncated data"))?
            .into_iter()
            .map(|x| x as f32)
            .collect(),
        other => bail!("{origin}: dtype {other} is not supported (expected float32 or float64)"),
    };
    Tensor::new(shape.clone(), data).with_context(|| format!("{origin}: data does not match shape {shape:?}"))
}

/// A plain array's `.npy` header is one dict (`descr`, `fortran_order`, `shape`) holding one
/// tuple: at most one of each bracket. Checked before npyz parses the header, whose parser
/// backtracks exponentially on nested brackets (a 300-byte header took seconds).
fn check_npy_header(bytes: &[u8]) -> Result<()> {
    let header = match bytes.get(..6) {
        Some(b"\x93NUMPY") => match bytes.get(6) {
            Some(1) => bytes.get(8..10).map(|l| (10, u16::from_le_bytes([l[0], l[1]]) as usize)),
            _ => bytes.get(8..12).map(|l| (12, u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)),
        },
        _ => None,
    };
    let Some((start, len)) = header else { return Ok(()) };
    let text = &bytes[start.min(bytes.len())..start.saturating_add(len).min(bytes.len())];
    for pair in [b"{}", b"()", b"[]"] {
        let n = |c: u8| text.iter().filter(|&&b| b == c).count();
        if n(pair[0]) > 1 || n(pair[1]) > 1 {
            bail!("its header nests brackets");
        }
    }
    Ok(())
}

/// Encodes a tensor as `.npy` (`<f4`, C order).
pub fn npy_bytes(t: &Tensor) -> Vec<u8> {
    let mut out = Vec::new();
    let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut out)
        .begin_nd()
        .expect("writing to memory cannot fail");
    w.extend(t.data.iter().copied()).expect("writing to memory cannot fail");
    w.finish().expect("writing to memory cannot fail");
    out
}

/// Writes bytes to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().with_context(|| format!("{}: not a file path", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write", path.display()));
    }
    Ok(())
}

/// Reads a graph from its JSON file.
pub fn read_graph(path: &Path) -> Result<Graph> {
    let text = fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Graph::from_json(&text).with_context(|| format!("{}", path.display()))
}

/// Reads a model: a graph JSON file, or an `.onnx` file (with its weights, and the early exits
/// of an optional sidecar JSON, see [`crate::onnx`]).
pub fn read_model(path: &Path, exits: Option<&Path>) -> Result<(Graph, Option<nasc_ir::Weights>)> {
    let is_onnx = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if !is_onnx {
        if let Some(e) = exits {
            anyhow::bail!(
                "{}: an exits sidecar applies to .onnx models only; graph JSON carries its exits",
                e.display()
            );
        }
        return Ok((read_graph(path)?, None));
    }
    let sidecar = match exits {
        Some(e) => {
            let text = fs::read_to_string(e).with_context(|| format!("{}: cannot read", e.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{}: not an exits sidecar", e.display()))?
        }
        None => crate::onnx::Sidecar::default(),
    };
    let bytes = fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let name = path.file_stem().map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
    let m = crate::onnx::import(&bytes, &name, &sidecar).with_context(|| format!("{}", path.display()))?;
    Ok((m.graph, Some(m.weights)))
}

/// Encodes weights as safetensors: one `F32` tensor per weight, named `NODE.TENSOR` (node
/// names may contain dots; tensor names — `weight`, `bias`, `gamma`, `beta`, `mean`, `var` —
/// do not), in name order so the bytes are deterministic.
pub fn weights_to_safetensors(w: &Weights) -> Result<Vec<u8>> {
    let mut bytes: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (node, ts) in &w.tensors {
        for (name, t) in ts {
            let data: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            bytes.push((format!("{node}.{name}"), t.shape.clone(), data));
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, d)| Ok((n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)?)))
        .collect::<std::result::Result<_, safetensors::SafeTensorError>>()
        .context("encoding safetensors")?;
    let meta = std::collections::HashMap::from([("format".to_string(), "nasc".to_string())]);
    safetensors::serialize(views, &Some(meta)).context("encoding safetensors")
}

/// Reads weights from a safetensors file (`F32` tensors named `NODE.TENSOR`, as
/// [`weights_to_safetensors`] writes and `safetensors.numpy.save_file` can produce).
pub fn read_weights(path: &Path) -> Result<Weights> {
    let bytes = fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse_weights(&bytes, &path.display().to_string())
}

/// Parses safetensors bytes (what [`read_weights`] reads); `origin` names them in errors.
pub fn parse_weights(bytes: &[u8], origin: &str) -> Result<Weights> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow::anyhow!("{origin}: not a safetensors file: {e}"))?;
    let mut w = Weights::default();
    let mut names = st.names();
    names.sort();
    for name in names {
        let t = st.tensor(name).map_err(|e| anyhow::anyhow!("{origin}: tensor `{name}`: {e}"))?;
        if t.dtype() != safetensors::Dtype::F32 {
            bail!("{origin}: tensor `{name}` is {:?}; nasc weights are F32", t.dtype());
        }
        let Some((node, tensor)) = name.rsplit_once('.') else {
            bail!("{origin}: tensor `{name}`: expected a name NODE.TENSOR (e.g. `stem.weight`)");
        };
        let data: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let tensor_value = Tensor::new(t.shape().to_vec(), data)
            .with_context(|| format!("{origin}: tensor `{name}`: data does not match its shape"))?;
        w.tensors.entry(node.to_string()).or_default().insert(tensor.to_string(), tensor_value);
    }
    Ok(w)
}
