//! nasc targets: hardware descriptions as data.
//!
//! This crate owns the description of a chip — one TOML file per target (CPU cores: ISA,
//! SIMD width, caches, bandwidths, energy per MAC and per byte, static power; NPUs: array
//! shape, dataflow, buffers, supported ops, host CPU) — and the registry that finds built-in
//! and user-supplied targets by name. It is filled by the targets/cost-model issue; for now it
//! only fixes the crate's place in the workspace.
//!
//! **Architecture Invariant:** `targets` is data plus traits; it depends on no other nasc crate.
#![warn(missing_docs)]
