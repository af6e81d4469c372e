//! The cost-table parser (`nasc expect --table-out`, the Python package's `Table.from_json`), and
//! the queries a search makes of a table. Any panic is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(t) = nasc::costmodel::table::CostTable::from_json(text) else { return };
    let zero = vec![0; t.params.len()];
    if t.check(&zero).is_ok() {
        let _ = t.cost(&zero);
        let _ = t.additive_lut();
        let _ = t.expected(&nasc::costmodel::expect::Query::softmax(vec![0.0; t.n_logits()]));
    }
});
