//! The `.npy` reader (`nasc run --input`). Any panic is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nasc::io::parse_npy(data, "fuzz.npy");
});
