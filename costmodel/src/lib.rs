//! nasc cost model: what a concrete graph costs on a target.
//!
//! This crate owns the analytic latency/energy model (roofline over compute and each memory
//! level, SIMD/array quantisation, NPU mapping), calibrated profiles fitted from measurements,
//! and the precomputed cost tables with exact expected costs and gradients used by search
//! frameworks. It is filled by the cost-model issues; for now it only fixes its place in the
//! workspace.
//!
//! **Architecture Invariant:** `costmodel` depends on `ir` and `targets` only; it never depends
//! on `codegen` or LLVM.
#![warn(missing_docs)]
