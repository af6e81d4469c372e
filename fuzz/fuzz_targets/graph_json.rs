//! The graph JSON parser, and everything a parsed graph goes through: validation, shapes,
//! statistics, the cost model. Any panic is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(g) = nasc::ir::Graph::from_json(text) else { return };
    if g.is_concrete() && g.validate().is_ok() {
        let _ = nasc::ir::stats::totals(&g);
        let model = nasc::costmodel::Model::new(nasc::targets::lookup("cortex-a72").unwrap()).unwrap();
        let _ = nasc::costmodel::cost(&g, &model);
    } else {
        let _ = g.validate_structure();
    }
});
