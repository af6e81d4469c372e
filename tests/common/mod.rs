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

/// max |got − want| / max |want| (the largest reference value floored at 1e-6).
pub fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "sizes differ");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    got.iter().zip(want).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// [`rel_err`] of two `.npy` files.
pub fn npy_rel_err(got: &std::path::Path, want: &std::path::Path) -> f32 {
    let read = |p: &std::path::Path| nasc::io::read_npy(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).data;
    rel_err(&read(got), &read(want))
}

/// Compiles the C harness (`codegen/harness/harness.c`) against `objects` with `cc_cmd` and the
/// header in `include`; returns the executable's path.
pub fn build_harness(cc_cmd: &str, include: &std::path::Path, objects: &[&str], exe: &std::path::Path) {
    let harness = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("codegen/harness/harness.c");
    let o = Command::new(cc_cmd)
        .arg("-O2")
        .arg("-I")
        .arg(include)
        .arg(&harness)
        .args(objects)
        .args(["-lm", "-o"])
        .arg(exe)
        .output()
        .unwrap_or_else(|e| panic!("{cc_cmd}: cannot run ({e}); scripts/setup.sh installs it"));
    assert!(o.status.success(), "{cc_cmd} failed: {}", String::from_utf8_lossy(&o.stderr));
}
