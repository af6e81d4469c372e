//! Built-in targets load and validate, every number in them carries a source comment, custom
//! targets load by path, and `from_toml` errors name the field at fault on one line.

use nasc_targets::{lookup, names, Kind, Target, BUILTINS};

const ORDER: &[&str] = &[
    "cortex-a53",
    "cortex-a72",
    "cortex-a76",
    "sifive-u74",
    "c906",
    "spacemit-x60",
    "host",
    "edgetpu",
    "ethos-u55",
    "cortex-m55",
    "eyeriss",
    "fpga-zc706",
    "jetson-tx2",
];

#[test]
fn builtins_are_listed_in_order() {
    assert_eq!(names(), ORDER);
}

#[test]
fn every_builtin_loads_and_validates() {
    for name in names() {
        let t = lookup(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.name, name, "file name and `name` field agree");
        assert!(t.validate().is_ok(), "{name}");
        match t.kind {
            Kind::Cpu => assert!(t.cpu().is_some() && t.npu().is_none(), "{name}"),
            Kind::Npu => {
                let n = t.npu().expect("npu table");
                let host = lookup(&n.host).unwrap();
                assert_eq!(host.kind, Kind::Cpu, "{name}: host {} is a cpu", n.host);
            }
        }
        // Round trip through the serialiser.
        let again = Target::from_toml(&t.to_toml(), name).unwrap();
        assert_eq!(again, t, "{name} round-trips");
    }
}

/// `key = 1.5`, `key = [12, 14]`, `key = -3`: a value made only of numbers.
fn is_number_value(v: &str) -> bool {
    let v = v.trim();
    let scalar = |s: &str| {
        let s = s.trim().replace('_', "");
        !s.is_empty() && s.parse::<f64>().is_ok()
    };
    if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        !inner.trim().is_empty() && inner.split(',').all(scalar)
    } else {
        scalar(v)
    }
}

#[test]
fn every_number_in_every_builtin_has_a_source_comment() {
    let mut missing = Vec::new();
    let mut numbers = 0;
    for (name, text) in BUILTINS {
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.starts_with('#') || l.starts_with('[') {
                continue;
            }
            let Some((key, rest)) = l.split_once('=') else { continue };
            let (value, comment) = match rest.split_once('#') {
                Some((v, c)) => (v, Some(c)),
                None => (rest, None),
            };
            if key.trim().is_empty() || !is_number_value(value) {
                continue;
            }
            numbers += 1;
            if comment.is_none_or(|c| c.trim().is_empty()) {
                missing.push(format!("{name}:{}: {l}", i + 1));
            }
        }
    }
    assert!(numbers > 100, "the check found the numbers ({numbers})");
    assert!(missing.is_empty(), "numbers without a source comment:\n{}", missing.join("\n"));
}

#[test]
fn number_detection() {
    assert!(is_number_value(" 1.5 "));
    assert!(is_number_value("[12, 14]"));
    assert!(is_number_value("-1"));
    assert!(is_number_value("32768"));
    assert!(!is_number_value("\"fast\""));
    assert!(!is_number_value("true"));
    assert!(!is_number_value("[\"conv2d\"]"));
}

fn a72_text() -> &'static str {
    BUILTINS.iter().find(|(n, _)| *n == "cortex-a72").unwrap().1
}

#[test]
fn custom_target_loads_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my-board.toml");
    let text = a72_text()
        .replace("name = \"cortex-a72\"", "name = \"my-board\"")
        .replace("clock_ghz = 1.5", "clock_ghz = 1.8");
    std::fs::write(&path, text).unwrap();
    let t = lookup(path.to_str().unwrap()).unwrap();
    assert_eq!(t.name, "my-board");
    assert_eq!(t.cpu().unwrap().clock_ghz, 1.8);

    // An npu file by path whose host is a built-in.
    let npu = dir.path().join("my-npu.toml");
    let eyeriss = BUILTINS.iter().find(|(n, _)| *n == "eyeriss").unwrap().1;
    std::fs::write(&npu, eyeriss.replace("name = \"eyeriss\"", "name = \"my-npu\"")).unwrap();
    assert_eq!(lookup(npu.to_str().unwrap()).unwrap().name, "my-npu");

    // A missing file is an error naming the path.
    let gone = dir.path().join("absent.toml");
    let e = lookup(gone.to_str().unwrap()).unwrap_err();
    assert!(e.to_string().contains("absent.toml"), "{e}");
}

#[test]
fn unknown_builtin_lists_the_builtins() {
    let e = lookup("no-such-chip").unwrap_err().to_string();
    assert!(e.contains("cortex-a72") && e.contains("fpga-zc706"), "{e}");
}

fn err(text: &str) -> String {
    let e = Target::from_toml(text, "t.toml").expect_err("must be rejected");
    let s = e.to_string();
    assert!(!s.contains('\n'), "Display is one line: {s:?}");
    assert!(s.starts_with("t.toml"), "Display starts with the origin: {s}");
    s
}

fn without_line(text: &str, key: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with(key)).collect::<Vec<_>>().join("\n")
}

#[test]
fn missing_field_is_named() {
    let s = err(&without_line(a72_text(), "clock_ghz"));
    assert!(s.contains("clock_ghz"), "{s}");
}

#[test]
fn wrong_type_names_field_and_line() {
    let text = a72_text().replace("clock_ghz = 1.5", "clock_ghz = \"fast\"");
    let line = text.lines().position(|l| l.starts_with("clock_ghz")).unwrap() + 1;
    let e = Target::from_toml(&text, "t.toml").unwrap_err();
    assert!(e.field.contains("cpu.clock_ghz"), "{e:?}");
    assert_eq!(e.line, Some(line), "{e:?}");
    let s = err(&text);
    assert!(s.contains("cpu.clock_ghz"), "{s}");
    assert!(s.contains(&format!(":{line}:")), "{s}");
}

#[test]
fn zero_bandwidth_is_rejected() {
    let text = a72_text().replace("bandwidth_gbs = 4.0 ", "bandwidth_gbs = 0 ");
    assert_ne!(text, a72_text());
    let s = err(&text);
    assert!(s.contains("dram.bandwidth_gbs"), "{s}");
}

#[test]
fn negative_energy_is_rejected() {
    let text = a72_text().replace("mac_pj = 20.0", "mac_pj = -1");
    assert_ne!(text, a72_text());
    let s = err(&text);
    assert!(s.contains("energy.mac_pj"), "{s}");
}

#[test]
fn unknown_field_is_rejected() {
    let text = a72_text().replace("cores = 4", "cores = 4\nturbo_ghz = 2.0");
    let s = err(&text);
    assert!(s.contains("turbo_ghz"), "{s}");
}

#[test]
fn gemm_rows_defaults_to_one_and_zero_is_rejected() {
    assert_eq!(Target::from_toml(a72_text(), "t.toml").unwrap().cpu().unwrap().gemm_rows, 1);
    let s = err(&a72_text().replace("cores = 4", "cores = 4\ngemm_rows = 0"));
    assert!(s.contains("cpu.gemm_rows") && s.contains("at least 1"), "{s}");
}

#[test]
fn every_error_display_is_one_line() {
    for bad in [
        String::new(),
        "name = ".to_string(),
        a72_text().replace("kind = \"cpu\"", "kind = \"gpu\""),
        a72_text().replace("simd_bits = 128", "simd_bits = 96"),
        a72_text().replace("conv = 0.45", "conv = 1.5"),
    ] {
        err(&bad);
    }
}

#[test]
fn depthwise_efficiency_defaults_to_one_and_must_be_a_share() {
    let eyeriss = BUILTINS.iter().find(|(n, _)| *n == "eyeriss").unwrap().1;
    assert_eq!(Target::from_toml(eyeriss, "t.toml").unwrap().npu().unwrap().depthwise_efficiency, 1.0);
    assert_eq!(lookup("jetson-tx2").unwrap().npu().unwrap().depthwise_efficiency, 0.3);
    for bad in ["0", "1.5", "-0.2"] {
        let s = err(&eyeriss.replace("[npu]", &format!("[npu]\ndepthwise_efficiency = {bad}")));
        assert!(s.contains("npu.depthwise_efficiency") && s.contains("above 0 and at most 1"), "{s}");
    }
}
