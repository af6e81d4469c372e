//! The measurement CSV parser. Any panic is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nasc::study::parse_measurements(data, "fuzz.csv");
});
