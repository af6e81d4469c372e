//! The analytic model: latency and energy of one fused kernel on a target.
//!
//! **CPU** — a roofline over compute and each memory level. Compute: the kernel's MACs,
//! rounded up to whole SIMD vectors along the vectorised dimension (output channels per group;
//! channels for depthwise and pooling) and, for GEMM-shaped convolutions, to whole micro-kernel
//! tiles of `gemm_rows` output positions (a depthwise one also pays `depthwise_tap_channels`
//! channels' worth per output position and tap), over `lanes × fma_units × clock × threads` times the
//! efficiency of its class. Memory: the activations the kernel reads and writes at the level
//! its working set fits in (L1, L2, …, DRAM) and its weights from DRAM (read once per
//! inference; [`WeightReads`] for a block timed on its own); a convolution strided past its
//! kernel reads only the input rows and columns under its taps. Latency =
//! max(compute, memory) + `exposed_memory` × min(compute, memory) + a per-kernel overhead.
//! Standalone elementwise work runs at `elementwise_per_cycle`. An int8 convolution or dense
//! layer multiplies `int8_speedup` times as many values per instruction and reads bytes; a
//! half-precision node (its own `Precision::F16`, or any f32 node of a model whose runtime
//! computes floats in half precision, [`Model::floats`]) has twice f32's lanes and moves half
//! its bytes.
//!
//! **NPU** — a mapping model. The array's cycles follow its dataflow (row-stationary: filter
//! rows on PE rows and output rows on PE columns, so a k×k filter uses ⌊rows/k⌋ row groups;
//! weight-stationary: input × output channels on the array; output-stationary: output channels
//! × output pixels), so utilisation falls when a layer's shape does not fill the array. DRAM
//! traffic is inputs + weights + outputs once, plus re-reads when they spill the on-chip buffer.
//! Latency = compute + DRAM (or their maximum when double-buffered) + invocation overhead.
//! Unsupported ops (or kernels larger than the array allows) run on the host CPU target, paying
//! the transfer of their inputs and outputs over the link and a round trip; an exit decision is
//! always a host round trip.
//!
//! **Energy** (both) = MACs × e_mac + Σ bytes × e_level + static power × latency.

use nasc_ir::Precision;
use nasc_targets::{Cpu, Dataflow, Kind, Npu, Target};

use crate::kernel::{Class, Kernel};

/// The additive terms a kernel's latency is made of, which calibration scales
/// ([`crate::calibrate`]). Where the model takes a maximum (the roofline, a double-buffered
/// NPU), the kernel's time is attributed to the term that bounds it.
pub mod term {
    /// Compute of dense k×k convolutions.
    pub const CONV: usize = 0;
    /// Compute of 1×1 convolutions.
    pub const POINTWISE: usize = 1;
    /// Compute of depthwise convolutions.
    pub const DEPTHWISE: usize = 2;
    /// Compute of grouped convolutions.
    pub const GROUPED: usize = 3;
    /// Compute of fully connected layers.
    pub const DENSE: usize = 4;
    /// Pooling.
    pub const POOL: usize = 5;
    /// Elementwise work (standalone ops, fused epilogues, exit statistics).
    pub const ELEMENTWISE: usize = 6;
    /// Memory-bound time moving activations (caches, DRAM).
    pub const MEMORY: usize = 7;
    /// Fixed per-kernel overhead (dispatch, invocation).
    pub const OVERHEAD: usize = 8;
    /// Work on an NPU's host: fallback kernels, transfers, round trips.
    pub const HOST: usize = 9;
    /// Compute of int8 convolutions and dense layers on a CPU (every class but [`INT8_CONV3X3`]).
    pub const INT8: usize = 10;
    /// Compute of dense 3×3 stride-1 convolutions on a CPU, which CPU runtimes (ncnn, XNNPACK,
    /// ORT) run as Winograd transforms at a different speed than other k×k convolutions, when
    /// their input and output channels fill whole vectors (ncnn's packed layouts). Others (a
    /// 3-channel image: direct kernels; the 126-channel heads of SqueezeNet-SSD, 512 channels
    /// in: ncnn's pack-8-to-1 variant) stay in [`CONV`], at the generic k×k rate: counted
    /// here, those heads came out 35–54 % under their measured time on every ARMv8.2 ncnn
    /// board, and moving them raised the 5-fold cross-validated ρ of 9 of the 11 ncnn
    /// profiles (RK3566 0.966 → 0.972, Snapdragon 855+ 0.977 → 0.982, UNO Q 0.989 → 0.993).
    pub const CONV3X3: usize = 11;
    /// Memory-bound time reading weights from DRAM on an NPU: early layers move activations,
    /// late ones weights, and the two rarely stream at the same effective bandwidth (Eyeriss
    /// FBNet-ImageNet: fitted on all rows, cross-validated ρ 0.979 with one memory term, 0.987
    /// with two). A CPU counts its weight reads in [`MEMORY`]: split there too, the 20-network
    /// fits of the ncnn boards lost more than they gained. Only a block timed on its own whose
    /// weights outgrow the last cache level, read from DRAM on every run, has its CPU weight
    /// reads here ([`super::WeightReads::Streamed`]).
    pub const WEIGHTS: usize = 12;
    /// Compute of int8 dense 3×3 stride-1 convolutions on a CPU. ncnn runs them in kernels of
    /// their own (direct `conv3x3s1` int8, Winograd F(4,3) int8) that multiply in 16-bit lanes,
    /// and the other int8 convolutions through an im2col int8 GEMM, and the two differ from
    /// board to board: int8 VGG-16 runs 0.81× its f32 time on a Pi 4 (A72), 1.8× on the
    /// RK3588's A55 and 2.8× on its A76. One int8 term for both gave the six ARM ncnn boards a
    /// pooled few-shot ρ of 0.945 on average (20 networks each, 5 draws); this term 0.963 (Pi 3
    /// 0.970 → 0.983, UNO Q 0.958 → 0.979, RK3588 A76 0.940 → 0.967).
    pub const INT8_CONV3X3: usize = 13;
    /// Number of terms.
    pub const N: usize = 14;
    /// Their names, in index order.
    pub const NAMES: [&str; N] = [
        "conv",
        "pointwise",
        "depthwise",
        "grouped",
        "dense",
        "pool",
        "elementwise",
        "memory",
        "overhead",
        "host",
        "int8",
        "conv3x3",
        "weights",
        "int8_conv3x3",
    ];
}

/// Latency terms in seconds, indexed by [`term`].
pub type Terms = [f64; term::N];

/// A calibrated profile's scaling of the analytic model: one coefficient per latency term and
/// two for energy, its dynamic part and its static power.
#[derive(Clone, Debug, PartialEq)]
pub struct Scaling {
    /// Per-term latency coefficients.
    pub latency: Terms,
    /// Coefficient of dynamic energy (MACs, memory traffic).
    pub energy: f64,
    /// Coefficient of the target's static power, which is paid over the calibrated latency.
    pub static_power: f64,
    /// Energy every inference costs whatever the network, J (booked on its first kernel).
    pub fixed_energy_j: f64,
}

/// A target ready for pricing: the target and, for an NPU, its resolved host.
#[derive(Clone, Debug)]
pub struct Model {
    /// The target.
    pub target: Target,
    /// The host CPU of an NPU target.
    pub host: Option<Box<Model>>,
    /// Calibration, when a profile is applied ([`crate::calibrate::Profile::apply`]).
    pub scaling: Option<Scaling>,
    /// The precision the runtime computes f32 nodes in on a CPU target: [`Precision::F16`] for
    /// a runtime that runs float networks in half precision (ncnn on ARMv8.2 cores), else
    /// `F32`. A profile records the one its measurements were priced with and sets it.
    pub floats: Precision,
    /// The output tile `m` of the Winograd transform F(m×m, 3×3) the runtime runs dense 3×3
    /// stride-1 float convolutions with on a CPU target ([`term::CONV3X3`] kernels), or 0 for a
    /// runtime that runs them as any other k×k convolution. A tile of m×m outputs multiplies
    /// (m + 2)² values per input and output channel pair instead of 9m², and transforms its
    /// input and output tiles (elementwise work: about 3 and 2 operations per element of an
    /// (m + 2)² tile, per channel). ncnn does (its `conv3x3s1_winograd63`/`43`/`23` kernels);
    /// HW-NAS-Bench's Raspberry Pi 4 runtime does not. A profile records it and sets it.
    pub winograd: u32,
    /// Where a CPU kernel's weights come from ([`WeightReads`]).
    pub weights: WeightReads,
}

/// Where a CPU kernel reads its weights from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightReads {
    /// Once from DRAM, counted with the activations in [`term::MEMORY`]: a batch-1 inference
    /// of a whole network, whose other layers evict them between inferences.
    #[default]
    Dram,
    /// From the cache level that holds the kernel's working set: a block timed on its own,
    /// over and over, whose weights stay cached between runs.
    Cached,
    /// From DRAM, in [`term::WEIGHTS`]: a block timed on its own whose weights outgrow the
    /// last cache level and are read from DRAM on every run.
    Streamed,
}

/// Cost of one kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Cost {
    /// Seconds.
    pub latency_s: f64,
    /// Joules.
    pub energy_j: f64,
    /// Whether an NPU target ran it on its host.
    pub on_host: bool,
    /// The latency split into [`term`]s (they sum to `latency_s`).
    #[serde(skip)]
    pub terms: Terms,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        let mut terms = self.terms;
        terms.iter_mut().zip(&o.terms).for_each(|(a, b)| *a += b);
        Cost {
            latency_s: self.latency_s + o.latency_s,
            energy_j: self.energy_j + o.energy_j,
            on_host: self.on_host,
            terms,
        }
    }
}

impl Cost {
    fn with_term(latency_s: f64, energy_j: f64, t: usize) -> Cost {
        let mut terms = [0.0; term::N];
        terms[t] = latency_s;
        Cost { latency_s, energy_j, on_host: false, terms }
    }

    /// Moves the whole latency into one term (work done elsewhere, e.g. on the host).
    fn all_in(mut self, t: usize) -> Cost {
        self.terms = [0.0; term::N];
        self.terms[t] = self.latency_s;
        self
    }
}

pub(crate) fn compute_term(class: Class) -> usize {
    match class {
        Class::Conv => term::CONV,
        Class::Pointwise => term::POINTWISE,
        Class::Depthwise => term::DEPTHWISE,
        Class::Grouped => term::GROUPED,
        Class::Dense => term::DENSE,
        Class::Pool | Class::GlobalPool => term::POOL,
        Class::Elementwise | Class::ExitDecision | Class::Free => term::ELEMENTWISE,
    }
}

impl Model {
    /// Resolves a target (an NPU's host through the registry).
    pub fn new(target: Target) -> Result<Model, nasc_targets::TargetError> {
        let host = match target.npu() {
            Some(n) => Some(Box::new(Model::new(nasc_targets::lookup(&n.host)?)?)),
            None => None,
        };
        Ok(Model { target, host, scaling: None, floats: Precision::F32, winograd: 0, weights: WeightReads::Dram })
    }

    /// The same model without a profile's fixed energy per inference: how to price the parts of
    /// one inference after the first (the segments of a layer-table model), which must not pay
    /// it again.
    pub fn without_fixed_energy(&self) -> Model {
        let mut m = self.clone();
        if let Some(s) = &mut m.scaling {
            s.fixed_energy_j = 0.0;
        }
        m
    }

    /// Bytes per element of activations and weights on this target.
    pub fn bytes_per_element(&self) -> f64 {
        self.target.npu().map_or(4.0, |n| n.bytes_per_element as f64)
    }

    /// Latency and energy of a kernel (calibrated when a profile is applied).
    pub fn kernel(&self, k: &Kernel) -> Cost {
        let c = match self.target.kind {
            Kind::Cpu => self.cpu_kernel(self.target.cpu().expect("validated cpu target"), k),
            Kind::Npu => self.npu_kernel(self.target.npu().expect("validated npu target"), k),
        };
        self.calibrated(c)
    }

    /// Applies the calibration, if any: latency = Σ coefficient × term.
    fn calibrated(&self, mut c: Cost) -> Cost {
        if let Some(s) = &self.scaling {
            // Static energy is static power × time: it follows the calibrated latency.
            let static_j = self.static_energy(c.latency_s).min(c.energy_j);
            c.terms.iter_mut().zip(&s.latency).for_each(|(t, k)| *t *= k);
            c.latency_s = c.terms.iter().sum();
            c.energy_j = s.energy * (c.energy_j - static_j) + s.static_power * self.static_energy(c.latency_s);
        }
        c
    }

    /// A logit gate's decision: control flow, free on a CPU; a host round trip on an NPU.
    pub fn gate_decision(&self) -> Cost {
        self.round_trip()
    }

    /// One round trip between an NPU and its host (a launch, a synchronisation and a host
    /// decision); free on a CPU.
    pub fn round_trip(&self) -> Cost {
        match self.target.npu() {
            Some(n) => {
                let t = n.round_trip_us * 1e-6;
                let mut c = Cost::with_term(t, self.static_energy(t), term::HOST);
                c.on_host = true;
                self.calibrated(c)
            }
            None => Cost::default(),
        }
    }

    fn static_energy(&self, latency_s: f64) -> f64 {
        self.target.energy.static_w * latency_s
    }

    /// Static power in W, calibrated: what a second more or less of latency costs in energy.
    pub(crate) fn static_power(&self) -> f64 {
        self.target.energy.static_w * self.scaling.as_ref().map_or(1.0, |s| s.static_power)
    }

    fn cpu_kernel(&self, c: &Cpu, k: &Kernel) -> Cost {
        if k.class == Class::Free {
            return Cost::default();
        }
        let t = &self.target;
        // Half precision packs twice f32's lanes in a vector (and streams half its bytes).
        let precision = if k.precision == Precision::F32 { self.floats } else { k.precision };
        let half = precision == Precision::F16;
        let lanes_per_vector = (c.simd_bits / if half { 16 } else { 32 }).max(1) as usize;
        let lanes = lanes_per_vector as f64;
        let clock = c.clock_ghz * 1e9;
        let threads = c.threads as f64;
        let eff = match k.class {
            Class::Conv => c.efficiency.conv,
            Class::Pointwise => c.efficiency.pointwise,
            Class::Depthwise => c.efficiency.depthwise,
            Class::Grouped => c.efficiency.grouped,
            Class::Dense => c.efficiency.dense,
            Class::Pool | Class::GlobalPool => c.efficiency.pool,
            Class::Elementwise | Class::ExitDecision | Class::Free => 1.0,
        };
        // SIMD quantisation along the vectorised dimension.
        let quantised_macs = match k.geometry {
            Some(g) => {
                let vec_dim = match k.class {
                    Class::Depthwise | Class::Pool | Class::GlobalPool => g.cout,
                    _ => g.cout / g.groups.max(1),
                } as f64;
                let along_channels = (vec_dim / lanes).ceil() * lanes / vec_dim.max(1.0);
                // GEMM-shaped kernels also compute their positions in tiles of `gemm_rows`.
                let rows = c.gemm_rows as f64;
                let along_positions = match k.class {
                    Class::Conv | Class::Pointwise | Class::Grouped => {
                        let p = (g.output_hw[0] * g.output_hw[1]).max(1) as f64;
                        (p / rows).ceil() * rows / p
                    }
                    _ => 1.0,
                };
                // A depthwise kernel also pays per output position and tap for a few channels
                // (its MACs over its channels are its positions × taps).
                let per_tap = match k.class {
                    Class::Depthwise => c.depthwise_tap_channels / vec_dim.max(1.0),
                    _ => 0.0,
                };
                k.macs as f64 * (along_channels * along_positions + per_tap)
            }
            None => k.macs as f64,
        };
        // An int8 layer multiplies `int8_speedup` times as many values per vector instruction,
        // quantizes its input and dequantizes its output (an elementwise pass each), reads
        // bytes and writes f32. A half-precision one reads and writes 2-byte values, and its
        // elementwise work moves twice the values per cycle.
        // A dense 3×3 stride-1 convolution: Winograd in f32, its own kernels in int8 (which
        // multiply in 16-bit lanes, twice f32's, whatever dot product the core has), when its
        // channels fill whole vectors ([`term::CONV3X3`]): runtimes pack channels a vector's
        // lanes at a time, and their tuned Winograd kernels take packed input and output.
        let packed = |channels: usize| channels % lanes_per_vector == 0;
        let conv3x3 = matches!(k.geometry, Some(g) if k.class == Class::Conv && g.kernel == [3, 3]
            && g.stride == [1, 1] && packed(g.cin) && packed(g.cout));
        let int8 = precision == Precision::Int8;
        let (rate, requant, in_bytes, out_bytes) = match precision {
            Precision::Int8 => {
                let rate = if conv3x3 { c.int8_speedup.min(2.0) } else { c.int8_speedup };
                (rate, (k.in_elems + k.out_elems) as f64, 1.0, 4.0)
            }
            Precision::F16 => (1.0, 0.0, 2.0, 2.0),
            Precision::F32 => (1.0, 0.0, 4.0, 4.0),
        };
        // A Winograd runtime multiplies (m + 2)² values per m×m output tile and channel pair
        // instead of 9m², and transforms every tile of its input and output ([`Model::winograd`]).
        let (multiplies, transforms) = match (conv3x3 && !int8, self.winograd, k.geometry) {
            (true, m @ 1.., Some(g)) => {
                let (m, t) = (m as f64, (m + 2) as f64 * (m + 2) as f64);
                let tiles = (g.output_hw[0] as f64 / m).ceil() * (g.output_hw[1] as f64 / m).ceil();
                (t / (9.0 * m * m), tiles * t * (3.0 * g.cin as f64 + 2.0 * g.cout as f64))
            }
            _ => (1.0, 0.0),
        };
        let gemm = quantised_macs * multiplies / (lanes * rate * c.fma_units as f64 * clock * threads * eff);
        let per_cycle = c.elementwise_per_cycle * if half { 2.0 } else { 1.0 };
        let elementwise = (k.elementwise_ops as f64 + requant + transforms) / (per_cycle * clock * threads);
        let compute = gemm + elementwise;
        // A convolution whose stride outruns its kernel never reads the rows and columns between
        // its taps: a stride-2 1×1 shortcut reads a quarter of its input. Priced as reading it
        // all, the 112×112 one of an FBNet ImageNet subnet on the Pi 4 came out 4× its measured
        // 0.45 ms (HW-NAS-Bench's per-block table), and cheap subnets, which skip more blocks
        // with it, over their measured time.
        let read = match k.geometry {
            Some(g) if matches!(k.class, Class::Conv | Class::Pointwise | Class::Grouped | Class::Depthwise) => {
                (0..2).map(|d| (g.kernel[d] as f64 / g.stride[d].max(1) as f64).min(1.0)).product::<f64>()
            }
            _ => 1.0,
        };
        let bytes = in_bytes * (k.in_elems as f64 * read + k.weight_elems as f64) + out_bytes * k.out_elems as f64;
        let working_set = bytes;
        // The level serving the kernel: the nearest one its working set fits in.
        let level = t.memory.iter().position(|m| working_set <= m.size_kib * 1024.0);
        let (level_bw, level_pj) = match level {
            Some(l) => (t.memory[l].bandwidth_gbs * 1e9, t.memory[l].pj_per_byte),
            None => (t.dram.bandwidth_gbs * 1e9, t.dram.pj_per_byte),
        };
        // A batch-1 inference reads every weight once, from DRAM (between inferences the
        // activations of the whole network and everything else on the core evict them). Kept
        // local to the kernel on purpose: a kernel's cost depends only on the kernel, which is
        // what makes the expected-cost tables exact. A working set no cache holds already
        // streams everything, weights included, from DRAM. Each byte comes from one place, so
        // a kernel whose working set outgrows a cache level never gets cheaper. A block timed on
        // its own keeps its weights cached, or streams them ([`WeightReads`]).
        let dram_bytes = match (level, self.weights) {
            (Some(_), WeightReads::Dram) | (_, WeightReads::Streamed) => in_bytes * k.weight_elems as f64,
            _ => 0.0,
        };
        let level_bytes = bytes - dram_bytes;
        let weight_time = dram_bytes / (t.dram.bandwidth_gbs * 1e9);
        let memory = level_bytes / level_bw + weight_time;
        let overhead = c.kernel_overhead_us * 1e-6;
        // The longer of compute and memory bounds the kernel; `exposed_memory` of the shorter
        // one is not hidden behind it. Each term keeps the share of the latency it makes up.
        let exposed = c.exposed_memory;
        let (compute_share, memory_share) = if compute >= memory { (1.0, exposed) } else { (exposed, 1.0) };
        let latency = compute * compute_share + memory * memory_share + overhead;
        let mut terms = [0.0; term::N];
        let compute_index = match (int8, conv3x3) {
            (true, true) => term::INT8_CONV3X3,
            (true, false) => term::INT8,
            (false, true) => term::CONV3X3,
            (false, false) => compute_term(k.class),
        };
        terms[compute_index] += gemm * compute_share;
        terms[term::ELEMENTWISE] += elementwise * compute_share;
        // Streamed weights are booked in their own term, everything else read in `memory`.
        let streamed = if self.weights == WeightReads::Streamed { weight_time } else { 0.0 };
        terms[term::MEMORY] += (memory - streamed) * memory_share;
        terms[term::WEIGHTS] += streamed * memory_share;
        terms[term::OVERHEAD] += overhead;
        let l1_pj = t.memory.first().map_or(0.0, |m| m.pj_per_byte);
        let energy = (k.macs as f64 * t.energy.mac_pj
            + k.elementwise_ops as f64 * t.energy.mac_pj * 0.5
            + bytes * l1_pj
            + if level == Some(0) { 0.0 } else { level_bytes * level_pj }
            + dram_bytes * t.dram.pj_per_byte)
            * 1e-12
            + self.static_energy(latency);
        Cost { latency_s: latency, energy_j: energy, on_host: false, terms }
    }

    /// Whether the array runs this kernel.
    fn npu_supports(n: &Npu, k: &Kernel) -> bool {
        if k.class == Class::ExitDecision {
            return false;
        }
        let ops_ok = k.ops.split('+').all(|op| n.supported_ops.iter().any(|s| s == op));
        let kernel_ok = match (k.class, k.geometry) {
            (Class::GlobalPool, _) => true,
            (_, Some(g)) => g.kernel[0].max(g.kernel[1]) as u32 <= n.max_kernel,
            _ => true,
        };
        ops_ok && kernel_ok
    }

    /// Array cycles of a conv-like kernel under the target's dataflow.
    fn array_cycles(n: &Npu, k: &Kernel) -> f64 {
        let [rows, cols] = n.array.map(|v| v as f64);
        let Some(g) = k.geometry else {
            return 0.0;
        };
        let (mut cin, mut cout, mut groups) = (g.cin as f64, g.cout as f64, g.groups as f64);
        if n.pool_as_conv && matches!(k.class, Class::Pool) {
            // Pooling mapped as a dense convolution C → C with the window as its kernel.
            groups = 1.0;
            cin = g.cin as f64;
            cout = g.cout as f64;
        }
        if n.grouped_as_dense && k.class == Class::Grouped {
            groups = 1.0;
        }
        let (kh, kw) = (g.kernel[0] as f64, g.kernel[1] as f64);
        let (e, f) = (g.output_hw[0] as f64, g.output_hw[1] as f64);
        let pairs = cin / groups * cout; // (input, output) channel pairs over all groups
        let macs_per_pe = n.macs_per_pe as f64;
        let cycles = match n.dataflow {
            Dataflow::RowStationary => {
                let strip = e.min(cols);
                let sets = ((rows / kh).floor().max(1.0)) * ((cols / strip).floor().max(1.0));
                let units = pairs * (e / cols).ceil();
                let passes = (kh / rows).ceil();
                (units / sets).ceil() * f * kw * passes
            }
            Dataflow::WeightStationary => {
                let kdim = cin / groups * kh * kw;
                let mdim = cout / groups;
                groups * (kdim / rows).ceil() * (mdim / cols).ceil() * (e * f + rows + cols)
            }
            Dataflow::OutputStationary => {
                let kdim = cin / groups * kh * kw;
                let mdim = cout / groups;
                groups * (mdim / cols).ceil() * (e * f / rows).ceil() * kdim
            }
            Dataflow::LayerPipeline => {
                // kh passes of (cin/g)·cout MACs per output pixel at `rows` per cycle, plus
                // the output stream, one element per cycle.
                e * f * (kh * pairs / rows + cout)
            }
            Dataflow::Simt => {
                let outputs = cout * e * f;
                (outputs / (rows * cols)).ceil() * kh * kw * cin / groups
            }
        };
        let efficiency = if k.class == Class::Depthwise { n.depthwise_efficiency } else { 1.0 };
        cycles / (macs_per_pe * efficiency) + k.elementwise_ops as f64 / (rows * cols)
    }

    fn npu_kernel(&self, n: &Npu, k: &Kernel) -> Cost {
        if k.class == Class::Free {
            return Cost::default();
        }
        let t = &self.target;
        let host = self.host.as_ref().expect("an npu model has a host");
        if !Self::npu_supports(n, k) {
            // Host fallback: the host's own cost, the transfer both ways, one round trip.
            let mut c = host.kernel(k);
            let moved = host.bytes_per_element() * (k.in_elems + k.out_elems) as f64;
            let transfer = moved / (n.link_gbs * 1e9) + n.round_trip_us * 1e-6;
            c.latency_s += transfer;
            c.energy_j += moved * t.dram.pj_per_byte * 1e-12 + self.static_energy(transfer);
            c.on_host = true;
            return c.all_in(term::HOST);
        }
        let pool_on_vector_unit = matches!(k.class, Class::Pool | Class::GlobalPool) && !n.pool_as_conv;
        if n.dataflow == Dataflow::LayerPipeline && (k.geometry.is_none() || pool_on_vector_unit) {
            // Elementwise work rides the producer's output stream: it only adds its stage's
            // fill, one output row. A window op runs on the window engine's lanes and streams
            // its output.
            let ops = if pool_on_vector_unit { k.macs as f64 } else { k.elementwise_ops as f64 };
            let hz = n.clock_ghz * 1e9;
            let mut terms = [0.0; term::N];
            if pool_on_vector_unit {
                terms[term::POOL] = (k.macs as f64 / n.array[1] as f64 + k.out_elems as f64) / hz;
                terms[term::OVERHEAD] = n.invocation_overhead_us * 1e-6;
            } else {
                let row = match k.out_shape.as_slice() {
                    [_, c, _, w] => c * w,
                    s => s.iter().skip(1).product(),
                };
                terms[term::ELEMENTWISE] = row as f64 / hz;
            }
            let latency = terms.iter().sum();
            let energy = ops * (t.energy.mac_pj + 2.0 * n.bytes_per_element as f64 * n.register_pj_per_byte) * 1e-12
                + self.static_energy(latency);
            return Cost { latency_s: latency, energy_j: energy, on_host: false, terms };
        }
        if k.geometry.is_none() || pool_on_vector_unit {
            // Activations, BatchNorm, additions, shuffles and the like are applied on the fly to
            // data streaming between layers (the producer's output stage or the consumer's input
            // stage): one element per array column per cycle, no DRAM round trip of their own.
            // Without `pool_as_conv`, pooling runs there too, one window element per lane.
            let ops = if pool_on_vector_unit { k.macs as f64 } else { k.elementwise_ops as f64 };
            // A GPU runs them as threads on all its cores.
            let lanes = if n.dataflow == Dataflow::Simt { n.array[0] * n.array[1] } else { n.array[1] };
            let latency = ops / (lanes as f64 * n.clock_ghz * 1e9);
            let energy = ops * (t.energy.mac_pj + 2.0 * n.bytes_per_element as f64 * n.register_pj_per_byte) * 1e-12
                + self.static_energy(latency);
            let mut c = Cost::with_term(latency, energy, term::ELEMENTWISE);
            if n.dataflow == Dataflow::Simt && k.ops.split('+').any(|op| op == "channel_shuffle") {
                // A GPU runtime fuses additions and activations into the producing kernel's
                // epilogue, but a channel shuffle is a transpose no epilogue absorbs: TensorRT
                // runs it as a shuffle layer, a kernel launch of its own.
                let launch = n.invocation_overhead_us * 1e-6;
                c.latency_s += launch;
                c.energy_j += self.static_energy(launch);
                c.terms[term::OVERHEAD] += launch;
            }
            return c;
        }
        if n.depthwise_fused && k.class == Class::Depthwise {
            // Fused between its pointwise neighbours: its compute hides behind theirs; a layer
            // pipeline still streams its output, one element per cycle.
            let stream =
                if n.dataflow == Dataflow::LayerPipeline { k.out_elems as f64 / (n.clock_ghz * 1e9) } else { 0.0 };
            let latency = stream + n.invocation_overhead_us.max(0.01) * 1e-6;
            let energy =
                k.macs as f64 * (t.energy.mac_pj + 4.0 * n.bytes_per_element as f64 * n.register_pj_per_byte) * 1e-12
                    + self.static_energy(latency);
            return Cost::with_term(latency, energy, term::OVERHEAD);
        }
        let be = n.bytes_per_element as f64;
        let (i, w, o) = (be * k.in_elems as f64, be * k.weight_elems as f64, be * k.out_elems as f64);
        let buffer = t.memory.first().map_or(0.0, |m| m.size_kib * 1024.0);
        // On designs that keep activations on chip, a layer whose inputs, weights and outputs
        // fit the buffer together only fetches its weights from DRAM. Otherwise everything
        // streams through DRAM, and the larger of inputs and weights is tiled through half the
        // buffer while the smaller is re-read once per tile.
        let resident = n.activations_on_chip && i + w + o <= buffer;
        let mut dram = if resident { w } else { i + w + o };
        // Of which weights.
        let mut dram_w = w;
        if i + w + o > buffer && buffer > 0.0 {
            let half = buffer / 2.0;
            let reread_in = i * ((w / half).ceil() - 1.0).max(0.0);
            let reread_w = w * ((i / half).ceil() - 1.0).max(0.0);
            dram += reread_in.min(reread_w);
            if reread_w < reread_in {
                dram_w += reread_w;
            }
        }
        let cycles = Self::array_cycles(n, k);
        let compute = cycles / (n.clock_ghz * 1e9);
        let dram_time = dram / (t.dram.bandwidth_gbs * 1e9);
        let overhead = n.invocation_overhead_us * 1e-6;
        let latency = if n.double_buffered { compute.max(dram_time) } else { compute + dram_time } + overhead;
        let mut terms = [0.0; term::N];
        match (n.double_buffered, compute >= dram_time) {
            (true, true) => terms[compute_term(k.class)] = compute,
            (true, false) => terms[term::MEMORY] = dram_time,
            (false, _) => {
                terms[compute_term(k.class)] = compute;
                terms[term::MEMORY] = dram_time;
            }
        }
        if dram > 0.0 {
            let weights = terms[term::MEMORY] * dram_w / dram;
            terms[term::MEMORY] -= weights;
            terms[term::WEIGHTS] += weights;
        }
        terms[term::OVERHEAD] = overhead;
        // Every MAC reads an input, a weight and a partial sum from registers and writes the sum.
        let mac_equiv = match (k.class, k.geometry) {
            (Class::Pool, Some(g)) if n.pool_as_conv => k.macs as f64 * g.cin as f64,
            (Class::Grouped, Some(g)) if n.grouped_as_dense => k.macs as f64 * g.groups as f64,
            _ => k.macs as f64,
        };
        let register = mac_equiv * 4.0 * be * n.register_pj_per_byte;
        let glb_pj = t.memory.first().map_or(0.0, |m| m.pj_per_byte);
        let energy = (mac_equiv * t.energy.mac_pj + register + 2.0 * dram * glb_pj + dram * t.dram.pj_per_byte) * 1e-12
            + self.static_energy(latency);
        Cost { latency_s: latency, energy_j: energy, on_host: false, terms }
    }

    /// Whether the target itself runs this kernel (always on a CPU; an NPU's supported ops and
    /// kernel sizes). What it does not run falls back to its host.
    pub fn runs_on_target(&self, k: &Kernel) -> bool {
        match self.target.npu() {
            Some(n) => k.class == Class::Free || Self::npu_supports(n, k),
            None => true,
        }
    }

    /// A kernel placed on an NPU's host CPU: the host's own cost (`None` on a CPU target, which
    /// runs everything itself). Transfers are priced separately ([`Model::transfer`]).
    pub fn host_kernel(&self, k: &Kernel) -> Option<Cost> {
        let host = self.host.as_ref()?;
        let mut c = host.kernel(k);
        c.on_host = true;
        Some(self.calibrated(c.all_in(term::HOST)))
    }

    /// Moving `elems` activations over an NPU's link (`to_host`: including the hand-off to the
    /// host, one round trip); zero on a CPU target.
    pub fn transfer(&self, elems: u64, to_host: bool) -> Cost {
        let (Some(n), Some(host)) = (self.target.npu(), self.host.as_ref()) else { return Cost::default() };
        let moved = host.bytes_per_element() * elems as f64;
        let t = moved / (n.link_gbs * 1e9) + if to_host { n.round_trip_us * 1e-6 } else { 0.0 };
        let mut c =
            Cost::with_term(t, moved * self.target.dram.pj_per_byte * 1e-12 + self.static_energy(t), term::HOST);
        c.on_host = true;
        self.calibrated(c)
    }

    /// Cost of an exit decision (the scores go to the decision maker and the answer back).
    pub fn exit_decision(&self, k: &Kernel) -> Cost {
        match self.target.npu() {
            Some(n) => {
                let host = self.host.as_ref().expect("an npu model has a host");
                let mut c = host.kernel(k);
                let moved = host.bytes_per_element() * k.in_elems as f64;
                let t = moved / (n.link_gbs * 1e9) + n.round_trip_us * 1e-6;
                c.latency_s += t;
                c.energy_j += moved * self.target.dram.pj_per_byte * 1e-12 + self.static_energy(t);
                c.on_host = true;
                self.calibrated(c.all_in(term::HOST))
            }
            None => self.kernel(k),
        }
    }
}
