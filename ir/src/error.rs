//! Errors of the IR. Every variant names the place: a node, a JSON position, an architecture
//! string position, a parameter.

use thiserror::Error;

/// An error from building, validating, parsing, selecting or running a graph.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum IrError {
    /// A node's inputs or attributes do not fit (shape mismatch, bad arity, …).
    #[error("node `{node}` ({op}): {message}")]
    Node {
        /// Node name.
        node: String,
        /// Op name.
        op: String,
        /// What is wrong.
        message: String,
    },
    /// A reference to a node that does not exist.
    #[error("node `{node}`: input `{input}` is not a node of the graph")]
    UnknownInput {
        /// The referring node.
        node: String,
        /// The missing name.
        input: String,
    },
    /// Two nodes with one name.
    #[error("node `{0}`: name used twice")]
    DuplicateName(String),
    /// The graph has a cycle through this node.
    #[error("node `{0}`: graph has a cycle through this node")]
    Cycle(String),
    /// The graph as a whole is malformed (no input, no output, …).
    #[error("graph: {0}")]
    Graph(String),
    /// The JSON text does not parse or does not describe a graph.
    #[error("json: {0}")]
    Json(String),
    /// An architecture parameter or configuration problem.
    #[error("param `{param}`: {message}")]
    Param {
        /// Parameter name.
        param: String,
        /// What is wrong.
        message: String,
    },
    /// An architecture string that does not parse for its space.
    #[error("architecture string for {space}: {message}")]
    Arch {
        /// The space.
        space: String,
        /// What is wrong, with the position.
        message: String,
    },
    /// An unknown search space.
    #[error("unknown search space `{0}` (see `nasc spaces`)")]
    UnknownSpace(String),
    /// Weights missing or of the wrong shape for a node.
    #[error("weights for node `{node}`: {message}")]
    Weights {
        /// Node name.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// A run-time input problem (input tensor shape, …).
    #[error("run: {0}")]
    Run(String),
}

impl IrError {
    pub(crate) fn node(node: &str, op: &str, message: impl Into<String>) -> Self {
        IrError::Node { node: node.to_string(), op: op.to_string(), message: message.into() }
    }
}

/// Result alias of the IR.
pub type Result<T, E = IrError> = std::result::Result<T, E>;
