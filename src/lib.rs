//! nasc: the hardware cost model and compiler backend for neural architecture search of
//! dynamic networks.
//!
//! This facade re-exports the workspace crates and holds the file formats that need IO
//! (`.npy` tensors). The `nasc` binary (`src/main.rs`, one module per subcommand in
//! `src/cli/`) is built on it.
#![warn(missing_docs)]

#[cfg(feature = "codegen")]
pub use nasc_codegen as codegen;
pub use nasc_costmodel as costmodel;
pub use nasc_ir as ir;
pub use nasc_targets as targets;
pub mod io;
pub mod layers;
pub mod onnx;
pub mod optimize;
pub mod profiles;
pub mod study;
pub mod tables;
pub mod validate;
