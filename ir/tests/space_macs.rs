//! The built-in NAS-Bench-201 and FBNet spaces against the public HW-NAS-Bench tables: every
//! architecture's MACs and parameters equal the published ones (parameters under the tables'
//! BatchNorm conventions, described below).
//!
//! Parameter convention of `nb201_cifar10.csv`: its `params` column counts every conv and the
//! classifier (weights and bias) but not the BatchNorm γ/β of the ReLU-conv-BN ops, the stem
//! or the reduction blocks; it does count 128 more, which is exactly the γ/β of the final
//! 64-channel BatchNorm (`lastact`). This holds for all 15,625 rows (the difference to our
//! count is the BatchNorm parameters minus 128 in every row). We count every BatchNorm's γ/β
//! (see `nasc_ir::stats`), so the test compares the CSV with our total minus the BatchNorm
//! parameters plus 2·64 rather than changing the counting.

use std::time::Instant;

use nasc_ir::spaces::{self, SearchSpace};
use nasc_ir::{stats, Config, IrError, Op};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

#[derive(Deserialize)]
struct Nb201Row {
    arch_idx: usize,
    arch_str: String,
    macs: u64,
    params: u64,
}

#[derive(Deserialize)]
struct FbnetRow {
    arch_id: usize,
    dataset: String,
    op_idx_list: String,
    ops: String,
    macs: u64,
    params: u64,
}

fn reader(file: &str) -> csv::Reader<std::fs::File> {
    let path = format!("{}/../data/{file}", env!("CARGO_MANIFEST_DIR"));
    csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn nb201_macs_and_params_match_every_cell() {
    let space = spaces::lookup("nb201:cifar10").unwrap();
    let start = Instant::now();
    let mut n = 0;
    for row in reader("nb201_cifar10.csv").deserialize::<Nb201Row>() {
        let row = row.unwrap();
        let g = space.subnet(&row.arch_str).unwrap();
        let ns = stats::node_stats(&g).unwrap();
        let macs: u64 = ns.iter().map(|s| s.macs).sum();
        let params: u64 = ns.iter().map(|s| s.params).sum();
        let bn_params: u64 =
            g.node_ids().filter(|&id| matches!(g.node(id).op, Op::BatchNorm(_))).map(|id| ns[id.index()].params).sum();
        assert_eq!((macs, params), stats::totals(&g).unwrap());
        assert_eq!(macs, row.macs, "macs of arch {} `{}`", row.arch_idx, row.arch_str);
        assert_eq!(params - bn_params + 2 * 64, row.params, "params of arch {} `{}`", row.arch_idx, row.arch_str);
        assert_eq!(g.meta["arch"], row.arch_str);
        n += 1;
    }
    assert_eq!(n, 15_625);
    eprintln!("nb201: {n} cells in {:?}", start.elapsed());
}

#[test]
fn fbnet_macs_match_every_arch() {
    let cifar = spaces::lookup("fbnet:cifar100").unwrap();
    let imagenet = spaces::lookup("fbnet:imagenet").unwrap();
    let start = Instant::now();
    let mut n = 0;
    for row in reader("fbnet_archs.csv").deserialize::<FbnetRow>() {
        let row = row.unwrap();
        let space = match row.dataset.as_str() {
            "cifar100" => &cifar,
            "ImageNet" => &imagenet,
            other => panic!("unexpected dataset `{other}`"),
        };
        let by_idx = space.parse_arch(&row.op_idx_list).unwrap();
        let by_name = space.parse_arch(&row.ops).unwrap();
        assert_eq!(by_idx, by_name, "arch {}", row.arch_id);
        assert_eq!(space.format_arch(&by_idx), row.ops.replace('|', ","));
        let g = space.subnet_of(&by_idx).unwrap();
        let (macs, _) = stats::totals(&g).unwrap();
        assert_eq!(macs, row.macs, "macs of {} arch {} `{}`", row.dataset, row.arch_id, row.ops);
        n += 1;
    }
    assert_eq!(n, 10_000);
    eprintln!("fbnet: {n} archs in {:?}", start.elapsed());
}

#[test]
fn arch_strings_round_trip() {
    for name in ["nb201:cifar10", "nb201:cifar100", "nb201:imagenet16-120", "fbnet:cifar100", "fbnet:imagenet"] {
        let space = spaces::lookup(name).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..50 {
            let cfg = space.sample(&mut rng);
            let text = space.format_arch(&cfg);
            assert_eq!(space.parse_arch(&text).unwrap(), cfg, "{name}: {text}");
        }
    }
}

#[test]
fn family_names_pick_the_first_variant() {
    assert_eq!(spaces::lookup("nb201").unwrap().name(), "nb201:cifar10");
    assert_eq!(spaces::lookup("fbnet").unwrap().name(), "fbnet:cifar100");
    assert!(matches!(spaces::lookup("nb201:cifar11"), Err(IrError::UnknownSpace(_))));
}

#[test]
fn nb201_known_arch_parses() {
    let space = spaces::lookup("nb201").unwrap();
    let s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
    let cfg = space.parse_arch(s).unwrap();
    let expected = Config::from_pairs([("1<-0", 3), ("2<-0", 3), ("2<-1", 4), ("3<-0", 1), ("3<-1", 3), ("3<-2", 1)]);
    assert_eq!(cfg, expected);
    assert_eq!(space.format_arch(&cfg), s);
}

fn arch_error(space: &dyn SearchSpace, arch: &str) -> String {
    match space.parse_arch(arch) {
        Err(e @ IrError::Arch { .. }) => e.to_string(),
        other => panic!("`{arch}` should not parse: {other:?}"),
    }
}

#[test]
fn bad_arch_strings_name_the_position() {
    let nb = spaces::lookup("nb201").unwrap();
    let msg = arch_error(&*nb, "|nor_conv_3x3~0|+|nor_conv_3x3~0|conv_7x7~1|+|none~0|none~1|none~2|");
    assert!(msg.contains("entry 3") && msg.contains("`2<-1`") && msg.contains("conv_7x7"), "{msg}");
    let msg = arch_error(&*nb, "|none~0|+|none~0|none~2|+|none~0|none~1|none~2|");
    assert!(msg.contains("entry 3") && msg.contains("none~2"), "{msg}");
    let msg = arch_error(&*nb, "|none~0|+|none~0|none~1|");
    assert!(msg.contains("3 `+`-separated"), "{msg}");
    let msg = arch_error(&*nb, "|none~0|+|none~0|+|none~0|none~1|none~2|");
    assert!(msg.contains("node group 2"), "{msg}");
    let msg = arch_error(&*nb, "none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
    assert!(msg.contains("node group 1"), "{msg}");

    let fb = spaces::lookup("fbnet").unwrap();
    let mut names = vec!["k3_e1"; 22];
    names[4] = "k7_e1";
    let msg = arch_error(&*fb, &names.join(","));
    assert!(msg.contains("entry 5") && msg.contains("k7_e1"), "{msg}");
    let msg = arch_error(&*fb, &["0"; 21].join("-"));
    assert!(msg.contains("22"), "{msg}");
    let mut idx = vec!["0"; 22];
    idx[21] = "9";
    let msg = arch_error(&*fb, &idx.join("-"));
    assert!(msg.contains("entry 22") && msg.contains("`9`"), "{msg}");
}

#[test]
fn fbnet_params_match_without_batchnorm() {
    // HW-NAS-Bench's FBNet table (`fbnet_lut_layers.jsonl`) counts conv and linear weights
    // and biases but no BatchNorm γ/β.
    for row in reader("fbnet_archs.csv").deserialize::<FbnetRow>() {
        let row = row.unwrap();
        let space =
            spaces::lookup(if row.dataset == "cifar100" { "fbnet:cifar100" } else { "fbnet:imagenet" }).unwrap();
        let g = space.subnet(&row.op_idx_list).unwrap();
        let ns = stats::node_stats(&g).unwrap();
        let params: u64 =
            g.node_ids().filter(|&id| !matches!(g.node(id).op, Op::BatchNorm(_))).map(|id| ns[id.index()].params).sum();
        assert_eq!(params, row.params, "params of {} arch {}", row.dataset, row.arch_id);
    }
}

#[test]
fn output_shapes_follow_the_variant() {
    for (name, classes) in [
        ("nb201:cifar10", 10),
        ("nb201:cifar100", 100),
        ("nb201:imagenet16-120", 120),
        ("fbnet:cifar100", 100),
        ("fbnet:imagenet", 1000),
    ] {
        let space = spaces::lookup(name).unwrap();
        let cfg = space.sample(&mut ChaCha8Rng::seed_from_u64(1));
        let g = space.subnet_of(&cfg).unwrap();
        let shapes = g.validate().unwrap();
        let out = g.output_node().unwrap();
        assert_eq!(shapes[out.index()], vec![1, classes], "{name}");
        assert_eq!(g.meta["space"], name);
    }
}

#[test]
fn fbnet_convblock_nodes_are_the_searchable_blocks_but_skip() {
    // Every block kind, a `skip` that is a 1×1 convolution (layer 1: 16 → 24 channels) and one
    // that is the identity (layer 2).
    let space = spaces::lookup("fbnet:cifar100").unwrap();
    let arch = "k3_e1,skip,skip,k3_e1_g2,k3_e3,k3_e6,k5_e1,k5_e1_g2,k5_e3,k5_e6,k3_e1,k3_e1,\
                k3_e1,k3_e1,k3_e1,k3_e1,k3_e1,k3_e1,k3_e1,k3_e1,k3_e1,k3_e1";
    let g = space.subnet(arch).unwrap();
    let (mut inside, mut outside) = (0, Vec::new());
    for id in g.node_ids() {
        let name = &g.node(id).name;
        let block = name.strip_prefix("layer").and_then(|r| r.split_once('.')).map(|(_, rest)| rest);
        let expected = block.is_some_and(|rest| !rest.starts_with("skip."));
        assert_eq!(spaces::fbnet::in_convblock(name), expected, "{name}");
        match expected {
            true => inside += 1,
            false => outside.push(name.as_str()),
        }
    }
    assert!(inside > 21 * 7, "{inside} ConvBlock nodes");
    for name in ["stem.conv", "layer1.skip.conv", "layer2.skip.identity", "head.conv", "gap", "classifier"] {
        assert!(outside.contains(&name), "{name} missing from {outside:?}");
    }
    for name in ["layer3", "layers.k3_e1.conv1.conv", "layer3.k7_e1.conv1.conv", "layer3x.k3_e1.conv1.conv"] {
        assert!(!spaces::fbnet::in_convblock(name), "{name}");
    }
}
