//! The calibrated-profile parser (`--profile P.json`), applied to its target and used to price
//! a subnet. Any panic is a bug.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(p) = nasc::costmodel::calibrate::Profile::from_json(text) else { return };
    let Ok(target) = nasc::targets::lookup(&p.target) else { return };
    let mut model = nasc::costmodel::Model::new(target).unwrap();
    if p.apply(&mut model).is_ok() {
        let space = nasc::ir::spaces::lookup("nb201:cifar10").unwrap();
        let g = space
            .subnet("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
            .unwrap();
        let _ = nasc::costmodel::cost(&g, &model);
    }
});
