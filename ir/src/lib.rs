//! The nasc graph IR.
//!
//! This crate owns the representation of networks and supernets: the [`Op`]s with their
//! attributes, the [`Graph`] on petgraph with the dynamic-inference constructs (`choice`,
//! `exit`, `gate`), shape inference and validation ([`Graph::validate`]), the JSON form
//! ([`Graph::to_json`], [`Graph::from_json`]), DOT export, selection of concrete subnets
//! ([`Supernet::select`]), MAC/parameter counts ([`stats`]), weights ([`Weights`]), the
//! reference interpreter ([`interp`]) that defines the semantics every rewrite and generated
//! kernel is tested against, and the built-in search spaces ([`spaces`]).
//!
//! **Architecture Invariant:** `ir` does no IO (text in, text out) and knows nothing of
//! targets, cost models or LLVM; it depends on no other nasc crate.
//!
//! ```
//! use nasc_ir::{Graph, Op, op::Conv2d};
//! let mut g = Graph::new("tiny");
//! let x = g.add("x", Op::Input(nasc_ir::op::Input { shape: vec![1, 3, 8, 8] }), &[]).unwrap();
//! let c = g.add("c", Op::Conv2d(Conv2d::new(4, 3, 1)), &[x]).unwrap();
//! g.add("y", Op::Output, &[c]).unwrap();
//! let shapes = g.validate().unwrap();
//! assert_eq!(shapes[c.index()], vec![1, 4, 8, 8]);
//! assert_eq!(Graph::from_json(&g.to_json()).unwrap(), g);
//! ```
#![warn(missing_docs)]

pub mod dot;
pub mod error;
pub mod graph;
pub mod interp;
pub mod json;
pub mod op;
pub mod rewrite;
pub mod select;
pub mod shape;
pub mod spaces;
pub mod stats;
pub mod tensor;
pub mod weights;

pub use error::{IrError, Result};
pub use graph::{ArchParam, Device, Graph, Node, NodeId, Precision};
pub use op::Op;
pub use select::{Config, Supernet};
pub use shape::Shape;
pub use tensor::Tensor;
pub use weights::Weights;
