//! Helpers shared by the end-to-end tests: run the `nasc` binary and check its output.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `nasc` with these arguments.
pub fn nasc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nasc")).args(args).output().expect("nasc runs")
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = nasc(args);
    assert!(o.status.success(), "nasc {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Runs a command that must fail with exit 1, print nothing on stdout and a one-line error
/// on stderr; returns the error.
pub fn fails(args: &[&str]) -> String {
    let o = nasc(args);
    assert_eq!(o.status.code(), Some(1), "nasc {args:?} must fail with exit 1");
    assert!(o.stdout.is_empty(), "no output on failure: {}", String::from_utf8_lossy(&o.stdout));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Parses JSON output.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("valid JSON")
}
