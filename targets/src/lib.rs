//! nasc targets: hardware descriptions as data.
//!
//! This crate owns the description of a chip — one TOML file per target — and the registry
//! that finds built-in and user-supplied targets by name or path. A CPU target carries its
//! LLVM triple, cpu name and features, cores, clock, SIMD width, FMA pipes, per-class kernel
//! efficiencies, caches and DRAM with bandwidths and energy per byte, energy per MAC and static
//! power. An NPU target carries its PE array, dataflow, on-chip buffer, clock, DRAM, supported
//! ops, per-invocation overhead, exit round trip and the host CPU that runs what it cannot.
//!
//! The file format is documented field by field on the types below ([`Target`], [`Cpu`],
//! [`Npu`], [`Memory`], [`Energy`]) and in `targets/ADDING_A_TARGET.md`; the built-ins live in
//! `targets/builtin/*.toml`, each number with its source in a comment.
//!
//! **Architecture Invariant:** `targets` is data plus validation; it depends on no other nasc
//! crate and knows nothing of graphs or cost formulas.
//!
//! ```
//! let t = nasc_targets::lookup("cortex-a72").unwrap();
//! assert_eq!(t.name, "cortex-a72");
//! assert!(t.cpu().unwrap().simd_bits >= 128);
//! ```
#![warn(missing_docs)]

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A target description could not be read or is invalid. Displayed as one line,
/// `ORIGIN[:LINE]: FIELD: message`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct TargetError {
    /// File path or `builtin:NAME`.
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted path of the field at fault (`cpu.clock_ghz`), empty for the file as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What kind of hardware a target is; selects the cost model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A CPU core (cluster) running generated or library kernels.
    Cpu,
    /// An accelerator with a PE array and a host CPU.
    Npu,
}

/// A hardware target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Registry name, e.g. `cortex-a72`.
    pub name: String,
    /// One line: the chip and the board it was measured on.
    pub description: String,
    /// `cpu` or `npu`.
    pub kind: Kind,
    /// CPU parameters (required when `kind = "cpu"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// NPU parameters (required when `kind = "npu"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npu: Option<Npu>,
    /// On-chip memory levels, nearest first (CPU caches; NPU global buffer).
    #[serde(default)]
    pub memory: Vec<Memory>,
    /// Off-chip memory.
    pub dram: Dram,
    /// Energy per MAC and static power.
    pub energy: Energy,
}

/// Kernel efficiency by op class: the fraction of the compute peak a well-written kernel
/// reaches when it is compute bound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Efficiency {
    /// Dense (groups = 1) k×k convolution, k > 1.
    pub conv: f64,
    /// 1×1 convolution (a GEMM).
    pub pointwise: f64,
    /// Depthwise convolution (no reuse across channels; usually memory bound).
    pub depthwise: f64,
    /// Grouped convolution with 1 < groups < channels.
    pub grouped: f64,
    /// Fully connected layer (batch 1: a GEMV).
    pub dense: f64,
    /// Window and global pooling.
    pub pool: f64,
}

/// A CPU target's core parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// LLVM target triple, e.g. `aarch64-unknown-linux-gnu`.
    pub triple: String,
    /// LLVM cpu name, e.g. `cortex-a72`.
    pub cpu: String,
    /// LLVM feature string, e.g. `+neon`.
    #[serde(default)]
    pub features: String,
    /// Cores of the cluster.
    pub cores: u32,
    /// Threads a kernel is modelled with (1 = single-threaded, the usual NAS measurement).
    #[serde(default = "one")]
    pub threads: u32,
    /// Core clock in GHz.
    pub clock_ghz: f64,
    /// SIMD register width in bits (64 for a scalar-only core: one f64 or two f32 lanes are
    /// *not* assumed; use 32 for scalar f32).
    pub simd_bits: u32,
    /// Vector FMA instructions issued per cycle.
    pub fma_units: u32,
    /// Kernel efficiencies by op class.
    pub efficiency: Efficiency,
    /// Fixed cost per kernel invocation in µs (dispatch, loop set-up, tail handling).
    pub kernel_overhead_us: f64,
    /// Elementwise throughput in elements per cycle for standalone (unfused) elementwise ops.
    pub elementwise_per_cycle: f64,
    /// Throughput of int8 multiply-accumulates relative to f32 FMAs, per vector instruction: 2
    /// for widening multiply-accumulates on 16-bit lanes (NEON `SMLAL`, AVX2 `VPMADDWD`), 4
    /// with an 8-bit dot product (`SDOT`, AVX-VNNI). Prices int8 layers of quantized networks;
    /// dense 3×3 stride-1 int8 convolutions take at most 2 (runtimes run them in kernels of
    /// their own that multiply in 16-bit lanes).
    #[serde(default = "two")]
    pub int8_speedup: f64,
    /// Output positions a convolution's GEMM micro-kernel computes per tile (its rows): a 1×1
    /// or dense k×k convolution over `P` positions costs ⌈P / gemm_rows⌉ tiles, so small planes
    /// waste the tail of their last tile (7×7 = 49 positions in tiles of 8 cost 56). 1 (the
    /// default) prices positions exactly.
    #[serde(default = "one")]
    pub gemm_rows: u32,
    /// Channels' worth of work a depthwise convolution also pays per output position and
    /// filter tap: the runtime's loop and addressing overhead per tap, amortised over the
    /// channels the tap covers, so narrow depthwise layers run below the class's efficiency
    /// (a 24-channel 3×3 at 16 costs (24 + 16) / 24 of its MACs). 0 (the default): none.
    #[serde(default)]
    pub depthwise_tap_channels: f64,
    /// Fraction of the shorter of a kernel's compute and memory times that its longer one does
    /// not hide: latency = max(compute, memory) + this × min(compute, memory) + overhead. 0 (the
    /// default) is the roofline, memory fully overlapped with compute; 1 is serial, a core that
    /// stalls on every load it waits for.
    #[serde(default)]
    pub exposed_memory: f64,
}

fn two() -> f64 {
    2.0
}

fn unit() -> f64 {
    1.0
}

fn one() -> u32 {
    1
}

/// Dataflow of an NPU's PE array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataflow {
    /// Eyeriss: filter rows stay in PEs, one output row per PE column.
    RowStationary,
    /// Systolic weight-stationary (TPU, Edge TPU): input channels × output channels.
    WeightStationary,
    /// Output-stationary: each PE owns output pixels.
    OutputStationary,
    /// A layer-pipelined HLS engine (DNNBuilder-style FPGA designs): a dense layer streams its
    /// output one element per cycle and computes `array[0]` MACs per cycle per kernel row (a
    /// row's taps unrolled, so a k×k convolution takes k passes of a 1×1's work); window ops
    /// (pooling, an unfused depthwise) run on `array[1]` lanes; elementwise work rides the
    /// stream for free.
    LayerPipeline,
    /// A GPU's SIMT cores (`array = [SMs, cores per SM]`): one thread per output element, in
    /// waves of as many threads as cores, each thread doing its output's MACs; a layer with
    /// fewer outputs than cores leaves the rest idle. Elementwise work runs on all cores; a
    /// channel shuffle (a transpose no kernel's epilogue absorbs) pays a launch of its own.
    Simt,
}

/// An NPU target's array parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Npu {
    /// PE array `[rows, cols]`.
    pub array: [u32; 2],
    /// Dataflow of the array.
    pub dataflow: Dataflow,
    /// Array clock in GHz.
    pub clock_ghz: f64,
    /// MACs per PE per cycle.
    pub macs_per_pe: u32,
    /// Bytes per activation/weight element (1 for int8, 2 for 16-bit fixed point).
    pub bytes_per_element: u32,
    /// Bytes of register file per PE.
    pub pe_scratch_bytes: u32,
    /// Energy per byte moved between the array's register files and its ALUs, pJ.
    pub register_pj_per_byte: f64,
    /// Ops the array runs (IR op names); anything else runs on the host.
    pub supported_ops: Vec<String>,
    /// Largest kernel the array supports natively.
    pub max_kernel: u32,
    /// Run window pooling as a dense convolution on the array (what simple accelerators and
    /// their simulators do) instead of on a separate vector unit.
    #[serde(default)]
    pub pool_as_conv: bool,
    /// Run grouped convolutions (1 < groups < channels) as dense ones with zero-filled weights,
    /// as arrays without group support do (depthwise layers keep their own mapping).
    #[serde(default)]
    pub grouped_as_dense: bool,
    /// The share of the array's MAC rate a depthwise layer reaches, next to the other layers'
    /// (0 < x ≤ 1; default 1): a runtime whose depthwise kernels are poorly tuned (cuDNN's and
    /// TensorRT's on a GPU) runs them slower than its mapping says.
    #[serde(default = "unit")]
    pub depthwise_efficiency: f64,
    /// Depthwise layers run on a line-buffered unit beside the array, fused with the
    /// neighbouring pointwise layers (fused-layer designs): their data never leaves the chip
    /// and their compute overlaps the array's, so they cost only their invocation.
    #[serde(default)]
    pub depthwise_fused: bool,
    /// Activations stay in the on-chip buffer between layers when a layer's inputs, weights
    /// and outputs fit it together (layer-pipelined designs); otherwise every layer reads its
    /// inputs from and writes its outputs to DRAM (layer-by-layer accelerators).
    #[serde(default)]
    pub activations_on_chip: bool,
    /// Fixed cost per invocation of the array (one per kernel), µs.
    pub invocation_overhead_us: f64,
    /// Host CPU target (registry name) that runs unsupported ops and exit decisions.
    pub host: String,
    /// Bandwidth of the host ↔ NPU link, GB/s.
    pub link_gbs: f64,
    /// Fixed latency of one host round trip (exit decision, fallback hand-off), µs.
    pub round_trip_us: f64,
    /// Whether DRAM transfers overlap compute (double-buffered tiles): latency is then the
    /// maximum of the two, else their sum.
    #[serde(default)]
    pub double_buffered: bool,
}

/// An on-chip memory level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Name, e.g. `L1d`, `L2`, `glb`.
    pub name: String,
    /// Capacity in KiB.
    pub size_kib: f64,
    /// Sustained bandwidth to the core or array, GB/s.
    pub bandwidth_gbs: f64,
    /// Energy per byte read or written, pJ.
    pub pj_per_byte: f64,
}

/// Off-chip memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dram {
    /// Sustained bandwidth, GB/s.
    pub bandwidth_gbs: f64,
    /// Energy per byte, pJ.
    pub pj_per_byte: f64,
}

/// Energy parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Energy {
    /// Energy per multiply-accumulate, pJ.
    pub mac_pj: f64,
    /// Static (leakage + always-on) power while the network runs, W.
    pub static_w: f64,
}

impl Target {
    /// Parses and validates a target from TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Target, TargetError> {
        let de = toml::Deserializer::new(text);
        let t: Target = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let message = inner.message().trim().to_string();
            TargetError {
                origin: origin.into(),
                line,
                field: if field == "." { String::new() } else { field },
                message,
            }
        })?;
        t.validate().map_err(|(field, message)| TargetError {
            origin: origin.into(),
            line: line_of(text, &field),
            field,
            message,
        })?;
        Ok(t)
    }

    /// Reads and validates a target file.
    pub fn load(path: &Path) -> Result<Target, TargetError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TargetError {
            origin: origin.clone(),
            line: None,
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Target::from_toml(&text, &origin)
    }

    /// The CPU parameters, for a CPU target.
    pub fn cpu(&self) -> Option<&Cpu> {
        self.cpu.as_ref()
    }

    /// The NPU parameters, for an NPU target.
    pub fn npu(&self) -> Option<&Npu> {
        self.npu.as_ref()
    }

    /// The file as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a target always serialises")
    }

    /// Checks every value for physical sense. Returns `(field, message)` on the first fault.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((f.to_string(), m));
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return err("name", format!("`{}` must be non-empty ASCII letters, digits, `-`, `_` or `.`", self.name));
        }
        let pos = |f: &str, v: f64| -> Result<(), (String, String)> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err((f.to_string(), format!("must be positive, got {v}")))
            }
        };
        let nonneg = |f: &str, v: f64| -> Result<(), (String, String)> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err((f.to_string(), format!("must be zero or positive, got {v}")))
            }
        };
        let frac = |f: &str, v: f64| -> Result<(), (String, String)> {
            if v.is_finite() && v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err((f.to_string(), format!("is a fraction of peak and must be in (0, 1], got {v}")))
            }
        };
        match (self.kind, &self.cpu, &self.npu) {
            (Kind::Cpu, None, _) => return err("cpu", "kind = \"cpu\" needs a [cpu] table".into()),
            (Kind::Npu, _, None) => return err("npu", "kind = \"npu\" needs an [npu] table".into()),
            (Kind::Cpu, Some(_), Some(_)) => return err("npu", "a cpu target has no [npu] table".into()),
            (Kind::Npu, Some(_), Some(_)) => return err("cpu", "an npu target has no [cpu] table".into()),
            _ => {}
        }
        if let Some(c) = &self.cpu {
            if c.triple.split('-').count() < 3 {
                return err("cpu.triple", format!("`{}` is not an LLVM triple (arch-vendor-os[-env])", c.triple));
            }
            if c.cores == 0 {
                return err("cpu.cores", "must be at least 1".into());
            }
            if c.threads == 0 || c.threads > c.cores {
                return err("cpu.threads", format!("must be between 1 and cores ({}), got {}", c.cores, c.threads));
            }
            pos("cpu.clock_ghz", c.clock_ghz)?;
            if c.simd_bits < 32 || !c.simd_bits.is_power_of_two() {
                return err("cpu.simd_bits", format!("must be a power of two ≥ 32, got {}", c.simd_bits));
            }
            if c.fma_units == 0 {
                return err("cpu.fma_units", "must be at least 1".into());
            }
            let e = &c.efficiency;
            for (f, v) in [
                ("conv", e.conv),
                ("pointwise", e.pointwise),
                ("depthwise", e.depthwise),
                ("grouped", e.grouped),
                ("dense", e.dense),
                ("pool", e.pool),
            ] {
                frac(&format!("cpu.efficiency.{f}"), v)?;
            }
            nonneg("cpu.kernel_overhead_us", c.kernel_overhead_us)?;
            pos("cpu.elementwise_per_cycle", c.elementwise_per_cycle)?;
            pos("cpu.int8_speedup", c.int8_speedup)?;
            if c.gemm_rows == 0 {
                return err("cpu.gemm_rows", "must be at least 1".into());
            }
            nonneg("cpu.depthwise_tap_channels", c.depthwise_tap_channels)?;
            if !(0.0..=1.0).contains(&c.exposed_memory) {
                return err("cpu.exposed_memory", format!("must be between 0 and 1, got {}", c.exposed_memory));
            }
        }
        if let Some(n) = &self.npu {
            if n.array[0] == 0 || n.array[1] == 0 {
                return err("npu.array", format!("both dimensions must be at least 1, got {:?}", n.array));
            }
            pos("npu.clock_ghz", n.clock_ghz)?;
            if n.macs_per_pe == 0 {
                return err("npu.macs_per_pe", "must be at least 1".into());
            }
            if !(1..=4).contains(&n.bytes_per_element) {
                return err("npu.bytes_per_element", format!("must be 1, 2, 3 or 4, got {}", n.bytes_per_element));
            }
            if n.max_kernel == 0 {
                return err("npu.max_kernel", "must be at least 1".into());
            }
            if !(n.depthwise_efficiency > 0.0 && n.depthwise_efficiency <= 1.0) {
                return err(
                    "npu.depthwise_efficiency",
                    format!("must be above 0 and at most 1, got {}", n.depthwise_efficiency),
                );
            }
            nonneg("npu.register_pj_per_byte", n.register_pj_per_byte)?;
            nonneg("npu.invocation_overhead_us", n.invocation_overhead_us)?;
            pos("npu.link_gbs", n.link_gbs)?;
            nonneg("npu.round_trip_us", n.round_trip_us)?;
            if n.host.is_empty() {
                return err("npu.host", "must name the host CPU target".into());
            }
            if self.memory.is_empty() {
                return err("memory", "an npu needs its on-chip buffer as a [[memory]] entry".into());
            }
        }
        for (i, m) in self.memory.iter().enumerate() {
            pos(&format!("memory[{i}].size_kib"), m.size_kib)?;
            pos(&format!("memory[{i}].bandwidth_gbs"), m.bandwidth_gbs)?;
            nonneg(&format!("memory[{i}].pj_per_byte"), m.pj_per_byte)?;
            if i > 0 && m.size_kib < self.memory[i - 1].size_kib {
                return err(&format!("memory[{i}].size_kib"), "levels are listed nearest (smallest) first".into());
            }
        }
        pos("dram.bandwidth_gbs", self.dram.bandwidth_gbs)?;
        nonneg("dram.pj_per_byte", self.dram.pj_per_byte)?;
        pos("energy.mac_pj", self.energy.mac_pj)?;
        nonneg("energy.static_w", self.energy.static_w)?;
        Ok(())
    }
}

/// The line defining `field` (its last key), searched after its table header when the field
/// is nested. Best effort: `None` when not found.
fn line_of(text: &str, field: &str) -> Option<usize> {
    let leaf = field.rsplit('.').next()?.split('[').next()?;
    let table = field.rsplit_once('.').map(|(t, _)| t.split('[').next().unwrap_or(t));
    let mut in_table = table.is_none();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            let name = l.trim_matches(|c| c == '[' || c == ']').trim();
            in_table = table.is_none_or(|t| t == name);
            continue;
        }
        if in_table && l.split('=').next().map(str::trim) == Some(leaf) {
            return Some(i + 1);
        }
    }
    None
}

/// The built-in target files, by name.
pub const BUILTINS: &[(&str, &str)] = &[
    ("cortex-a53", include_str!("../builtin/cortex-a53.toml")),
    ("cortex-a72", include_str!("../builtin/cortex-a72.toml")),
    ("cortex-a76", include_str!("../builtin/cortex-a76.toml")),
    ("sifive-u74", include_str!("../builtin/sifive-u74.toml")),
    ("c906", include_str!("../builtin/c906.toml")),
    ("spacemit-x60", include_str!("../builtin/spacemit-x60.toml")),
    ("host", include_str!("../builtin/host.toml")),
    ("edgetpu", include_str!("../builtin/edgetpu.toml")),
    ("ethos-u55", include_str!("../builtin/ethos-u55.toml")),
    ("cortex-m55", include_str!("../builtin/cortex-m55.toml")),
    ("eyeriss", include_str!("../builtin/eyeriss.toml")),
    ("fpga-zc706", include_str!("../builtin/fpga-zc706.toml")),
    ("jetson-tx2", include_str!("../builtin/jetson-tx2.toml")),
];

/// Names of the built-in targets.
pub fn names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(n, _)| *n).collect()
}

/// A built-in target by name, or a target file when `name` is a path (contains `/` or ends in
/// `.toml`). NPU targets' hosts must resolve too.
pub fn lookup(name: &str) -> Result<Target, TargetError> {
    let t = if name.contains('/') || name.ends_with(".toml") {
        Target::load(Path::new(name))?
    } else {
        let (_, text) = BUILTINS.iter().find(|(n, _)| *n == name).ok_or_else(|| TargetError {
            origin: name.into(),
            line: None,
            field: String::new(),
            message: format!("unknown target (built-ins: {}; or give a path to a .toml file)", names().join(", ")),
        })?;
        Target::from_toml(text, &format!("builtin:{name}"))?
    };
    if let Some(n) = &t.npu {
        if n.host == t.name {
            return Err(TargetError {
                origin: t.name.clone(),
                line: None,
                field: "npu.host".into(),
                message: "an npu cannot be its own host".into(),
            });
        }
        let host = lookup(&n.host).map_err(|e| TargetError {
            origin: t.name.clone(),
            line: None,
            field: "npu.host".into(),
            message: format!("host `{}` does not resolve: {e}", n.host),
        })?;
        if host.kind != Kind::Cpu {
            return Err(TargetError {
                origin: t.name.clone(),
                line: None,
                field: "npu.host".into(),
                message: format!("host `{}` is not a cpu target", n.host),
            });
        }
    }
    Ok(t)
}
