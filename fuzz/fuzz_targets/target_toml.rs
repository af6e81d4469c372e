//! The target TOML parser and validation. Any panic is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = nasc::targets::Target::from_toml(text, "fuzz") {
        let _ = t.to_toml();
    }
});
