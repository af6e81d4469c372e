//! Calibrated profiles shipped for the built-in targets, one per device with public data in
//! `data/`, each fitted to all of that device's rows (`profiles/<target>/<dataset>-<metric>.json`;
//! `profiles/README.md` gives their provenance and scores). `nasc study profiles` regenerates
//! them; every `--profile` option takes `builtin:<name>` for one of them, e.g.
//! `--profile builtin:cortex-a72/fbnet-imagenet-raspi4_latency`.

/// The shipped profiles: name and JSON text.
pub const BUILTIN: &[(&str, &str)] = &[
    ("c906/ncnn-sg2000-c906", include_str!("../profiles/c906/ncnn-sg2000-c906.json")),
    ("cortex-a53/ncnn-pi3-a53", include_str!("../profiles/cortex-a53/ncnn-pi3-a53.json")),
    ("cortex-a53/ncnn-pizero2-a53", include_str!("../profiles/cortex-a53/ncnn-pizero2-a53.json")),
    ("cortex-a53/ncnn-rk3228h-a53", include_str!("../profiles/cortex-a53/ncnn-rk3228h-a53.json")),
    ("cortex-a53/ncnn-rk3566-a55", include_str!("../profiles/cortex-a53/ncnn-rk3566-a55.json")),
    ("cortex-a53/ncnn-rk3568-a55", include_str!("../profiles/cortex-a53/ncnn-rk3568-a55.json")),
    ("cortex-a53/ncnn-rk3588-a55", include_str!("../profiles/cortex-a53/ncnn-rk3588-a55.json")),
    ("cortex-a53/ncnn-unoq-a53", include_str!("../profiles/cortex-a53/ncnn-unoq-a53.json")),
    (
        "cortex-a72/fbnet-cifar100-raspi4_latency",
        include_str!("../profiles/cortex-a72/fbnet-cifar100-raspi4_latency.json"),
    ),
    (
        "cortex-a72/fbnet-imagenet-raspi4_latency",
        include_str!("../profiles/cortex-a72/fbnet-imagenet-raspi4_latency.json"),
    ),
    ("cortex-a72/nb201-raspi4_ms", include_str!("../profiles/cortex-a72/nb201-raspi4_ms.json")),
    ("cortex-a72/ncnn-pi4-a72", include_str!("../profiles/cortex-a72/ncnn-pi4-a72.json")),
    ("cortex-a76/ncnn-rk3588-a76", include_str!("../profiles/cortex-a76/ncnn-rk3588-a76.json")),
    ("cortex-a76/ncnn-sd855-a76", include_str!("../profiles/cortex-a76/ncnn-sd855-a76.json")),
    ("cortex-a76/ofa-note10-mean_ms", include_str!("../profiles/cortex-a76/ofa-note10-mean_ms.json")),
    ("eyeriss/fbnet-cifar100-eyeriss_latency", include_str!("../profiles/eyeriss/fbnet-cifar100-eyeriss_latency.json")),
    ("eyeriss/fbnet-imagenet-eyeriss_latency", include_str!("../profiles/eyeriss/fbnet-imagenet-eyeriss_latency.json")),
    ("eyeriss/nb201-eyeriss_ms", include_str!("../profiles/eyeriss/nb201-eyeriss_ms.json")),
    ("fpga-zc706/fbnet-cifar100-fpga_latency", include_str!("../profiles/fpga-zc706/fbnet-cifar100-fpga_latency.json")),
    ("fpga-zc706/fbnet-imagenet-fpga_latency", include_str!("../profiles/fpga-zc706/fbnet-imagenet-fpga_latency.json")),
    ("fpga-zc706/nb201-fpga_ms", include_str!("../profiles/fpga-zc706/nb201-fpga_ms.json")),
    (
        "jetson-tx2/fbnet-cifar100-edgegpu_latency",
        include_str!("../profiles/jetson-tx2/fbnet-cifar100-edgegpu_latency.json"),
    ),
    (
        "jetson-tx2/fbnet-imagenet-edgegpu_latency",
        include_str!("../profiles/jetson-tx2/fbnet-imagenet-edgegpu_latency.json"),
    ),
];

/// The JSON of a shipped profile by name (with or without the `builtin:` prefix).
pub fn builtin(name: &str) -> Option<&'static str> {
    let name = name.strip_prefix("builtin:").unwrap_or(name);
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// Reads a profile: a file, or `builtin:<name>` for one shipped with nasc ([`BUILTIN`]).
/// Errors name the file, or list the shipped names.
pub fn read(p: &std::path::Path) -> anyhow::Result<crate::costmodel::calibrate::Profile> {
    use anyhow::Context;
    let text = match p.to_str().filter(|s| s.starts_with("builtin:")) {
        Some(name) => builtin(name).map(str::to_string).with_context(|| {
            let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            format!("no shipped profile `{name}` (known: {})", known.join(", "))
        })?,
        None => std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))?,
    };
    crate::costmodel::calibrate::Profile::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}

/// The model of `target` (a built-in name or a target TOML file), calibrated by `profile` (a
/// file or `builtin:<name>`) when one is given.
pub fn target_model(target: &str, profile: Option<&std::path::Path>) -> anyhow::Result<crate::costmodel::Model> {
    let mut m = crate::costmodel::Model::new(crate::targets::lookup(target)?)?;
    if let Some(p) = profile {
        apply(&mut m, p)?;
    }
    Ok(m)
}

/// Calibrates `model` by the profile at `p` (a file or `builtin:<name>`); a profile of another
/// target is an error naming it.
pub fn apply(model: &mut crate::costmodel::Model, p: &std::path::Path) -> anyhow::Result<()> {
    read(p)?.apply(model).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}
