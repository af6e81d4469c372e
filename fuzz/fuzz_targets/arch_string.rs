//! Architecture-string parsers of every built-in space. Any panic is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for name in nasc::ir::spaces::NAMES {
        let space = nasc::ir::spaces::lookup(name).unwrap();
        if let Ok(cfg) = space.parse_arch(text) {
            // A parsed string must print back to something that parses to the same choice.
            let again = space.parse_arch(&space.format_arch(&cfg)).unwrap();
            assert_eq!(again, cfg);
        }
    }
});
