//! The layer-table CSV parser (`--models L.csv`), and what a command does with its models:
//! build each one's graph segments and price them. Any panic is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(models) = nasc::layers::parse(data, "fuzz.csv") else { return };
    let Ok(graphs) = nasc::layers::graphs(&models, "fuzz.csv") else { return };
    let model = nasc::costmodel::Model::new(nasc::targets::lookup("cortex-a53").unwrap()).unwrap();
    for segs in graphs.values() {
        let _ = nasc::study::segments_cost(segs, &model);
    }
});
