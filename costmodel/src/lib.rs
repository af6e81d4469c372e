//! nasc cost model: what a concrete graph costs on a target.
//!
//! This crate owns the analytic latency/energy model ([`analytic`]: roofline over compute and
//! each memory level with SIMD quantisation and op-class efficiency on CPUs; a dataflow mapping
//! model with buffer spills, host fallback and exit round trips on NPUs), the fusion of a graph
//! into the kernels it prices ([`kernel`]), and whole-network reports with the cost to each
//! early exit and with and without each gated block ([`report`]). Calibrated profiles and the
//! exact expected-cost tables for search are filled by later issues.
//!
//! **Architecture Invariant:** `costmodel` depends on `ir` and `targets` only; it never depends
//! on `codegen` or LLVM.
//!
//! ```
//! use nasc_costmodel::{cost, Model};
//! let space = nasc_ir::spaces::lookup("nb201:cifar10").unwrap();
//! let net = space.subnet("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|").unwrap();
//! let model = Model::new(nasc_targets::lookup("cortex-a72").unwrap()).unwrap();
//! let r = cost(&net, &model).unwrap();
//! assert_eq!(r.macs, 115_270_272);
//! assert!(r.latency_ms > 0.0 && r.energy_mj > 0.0);
//! ```
#![warn(missing_docs)]

pub mod analytic;
pub mod calibrate;
pub mod expect;
pub mod kernel;
pub mod opcost;
pub mod report;
pub mod stats;
pub mod table;

pub use analytic::{Cost, Model};
pub use report::{cost, Report};
