//! The ONNX importer on arbitrary bytes. Any panic is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nasc::onnx::import(data, "fuzz", &nasc::onnx::Sidecar::default());
});
