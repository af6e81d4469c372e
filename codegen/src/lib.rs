//! nasc codegen: native code for a concrete graph.
//!
//! This crate owns lowering a concrete (extracted) graph to LLVM IR through inkwell, the
//! `<name>_infer` driver with early-exit and gate branches, object/static-library/header
//! emission for x86_64, aarch64 and riscv64, and the host JIT. It is filled by the codegen
//! issue; for now it only fixes its place in the workspace.
//!
//! **Architecture Invariant:** only `codegen` will depend on inkwell/LLVM, and it consumes
//! concrete graphs from `ir`; nothing in `ir`, `targets` or `costmodel` depends on it.
#![warn(missing_docs)]
