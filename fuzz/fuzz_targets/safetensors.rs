//! The safetensors weights reader (`nasc run --weights`, `nasc compile --weights`). Any panic
//! is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nasc::io::parse_weights(data, "fuzz.safetensors");
});
