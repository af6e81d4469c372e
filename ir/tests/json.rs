//! The JSON form: exact round trips for every built-in space's subnets and supernets, and
//! one-line errors naming the place for every kind of bad input.

use nasc_ir::op::{Conv2d, Input};
use nasc_ir::{spaces, Graph, IrError, Op};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn err(text: &str) -> String {
    let e = Graph::from_json(text).and_then(|g| g.validate().map(|_| g)).expect_err("must be rejected");
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "error must be one line: {msg}");
    msg
}

const GOOD: &str = r#"{
  "format": "nasc-graph",
  "version": 1,
  "name": "tiny",
  "nodes": [
    {"name": "x", "op": "input", "attrs": {"shape": [1, 3, 8, 8]}},
    {"name": "c", "op": "conv2d", "inputs": ["x"], "attrs": {"out_channels": 4, "kernel": [3, 3], "padding": [1, 1]}},
    {"name": "r", "op": "relu", "inputs": ["c"]},
    {"name": "y", "op": "output", "inputs": ["r"]}
  ]
}"#;

#[test]
fn good_graph_parses_and_prints_canonically() {
    let g = Graph::from_json(GOOD).unwrap();
    let shapes = g.validate().unwrap();
    assert_eq!(shapes[g.find("c").unwrap().index()], vec![1, 4, 8, 8]);
    let printed = g.to_json();
    assert_eq!(Graph::from_json(&printed).unwrap().to_json(), printed);
    assert_eq!(Graph::from_json(&printed).unwrap(), g);
}

#[test]
fn placement_round_trips_and_bad_devices_are_rejected() {
    let placed = GOOD.replace(r#""op": "relu", "inputs": ["c"]"#, r#""op": "relu", "inputs": ["c"], "device": "host""#);
    let g = Graph::from_json(&placed).unwrap();
    assert_eq!(g.node(g.find("r").unwrap()).device, nasc_ir::Device::Host);
    assert_eq!(g.node(g.find("c").unwrap()).device, nasc_ir::Device::Target);
    assert_eq!(Graph::from_json(&g.to_json()).unwrap(), g);
    assert!(g.to_json().contains(r#""device": "host""#) && !g.to_json().contains(r#""device": "target""#));
    let msg = err(&placed.replace(r#""device": "host""#, r#""device": "gpu""#));
    assert!(msg.contains("unknown variant `gpu`") && msg.contains("line"), "{msg}");
}

#[test]
fn precision_round_trips_and_only_convs_and_dense_take_int8_while_any_node_takes_f16() {
    let conv = r#""op": "conv2d", "inputs": ["x"],"#;
    let q = GOOD.replace(conv, r#""op": "conv2d", "inputs": ["x"], "precision": "int8","#);
    let g = Graph::from_json(&q).unwrap();
    assert_eq!(g.node(g.find("c").unwrap()).precision, nasc_ir::Precision::Int8);
    assert_eq!(g.node(g.find("r").unwrap()).precision, nasc_ir::Precision::F32);
    assert_eq!(Graph::from_json(&g.to_json()).unwrap(), g);
    assert!(g.to_json().contains(r#""precision": "int8""#) && !g.to_json().contains(r#""precision": "f32""#));
    let msg =
        err(&GOOD.replace(r#""op": "relu", "inputs": ["c"]"#, r#""op": "relu", "inputs": ["c"], "precision": "int8""#));
    assert!(msg.contains("node `r`: precision `int8` applies to conv2d and dense nodes, not relu"), "{msg}");
    // Half precision is a runtime's choice for every node, not only convolutions.
    let h = GOOD.replace(r#""op": "relu", "inputs": ["c"]"#, r#""op": "relu", "inputs": ["c"], "precision": "f16""#);
    let h = Graph::from_json(&h).unwrap();
    assert_eq!(h.node(h.find("r").unwrap()).precision, nasc_ir::Precision::F16);
    assert_eq!(Graph::from_json(&h.to_json()).unwrap(), h);
    let msg = err(&q.replace("int8", "int4"));
    assert!(msg.contains("unknown variant `int4`"), "{msg}");
    // The rewriter assumes f32 arithmetic and says so.
    let e = nasc_ir::rewrite::optimize(&g, None, Box::new(nasc_ir::rewrite::NoCost), &Default::default());
    assert!(e.is_err_and(|e| e.to_string().contains("int8 layers are priced, not rewritten")));
}

#[test]
fn malformed_json_names_line_and_column() {
    let msg =
        err("{\n  \"format\": \"nasc-graph\",\n  \"version\": 1,\n  \"name\": \"x\",\n  \"nodes\": [ {\"name\": }\n]}");
    assert!(msg.starts_with("json: "), "{msg}");
    assert!(msg.contains("line 5"), "{msg}");
}

#[test]
fn unknown_op_names_the_node() {
    let msg = err(&GOOD.replace("\"op\": \"relu\"", "\"op\": \"conv3d\""));
    assert_eq!(msg, "json: node `r`: unknown op `conv3d`");
}

#[test]
fn unknown_attribute_names_the_node_and_field() {
    let msg = err(&GOOD.replace("\"padding\"", "\"paddin\""));
    assert!(msg.contains("node `c` (conv2d)") && msg.contains("paddin"), "{msg}");
}

#[test]
fn wrong_attribute_type_names_the_node() {
    let msg = err(&GOOD.replace("\"out_channels\": 4", "\"out_channels\": \"four\""));
    assert!(msg.contains("node `c` (conv2d)"), "{msg}");
}

#[test]
fn undefined_input_names_both_nodes() {
    let msg = err(&GOOD.replace("\"inputs\": [\"c\"]", "\"inputs\": [\"q\"]"));
    assert!(msg.contains("node `r`") && msg.contains("`q`"), "{msg}");
}

#[test]
fn forward_reference_is_rejected() {
    let msg = err(&GOOD.replace("\"inputs\": [\"x\"]", "\"inputs\": [\"r\"]"));
    assert!(msg.contains("node `c`") && msg.contains("topological"), "{msg}");
}

#[test]
fn shape_mismatch_names_the_node() {
    let text = GOOD.replace(
        "{\"name\": \"y\", \"op\": \"output\", \"inputs\": [\"r\"]}",
        "{\"name\": \"s\", \"op\": \"add\", \"inputs\": [\"r\", \"x\"]},\n{\"name\": \"y\", \"op\": \"output\", \"inputs\": [\"s\"]}",
    );
    let msg = err(&text);
    assert!(msg.starts_with("node `s` (add): operands differ in shape"), "{msg}");
}

#[test]
fn conv_groups_mismatch_names_the_node() {
    let msg = err(&GOOD.replace("\"padding\": [1, 1]", "\"padding\": [1, 1], \"groups\": 2"));
    assert!(msg.starts_with("node `c` (conv2d): input channels 3 are not divisible by groups 2"), "{msg}");
}

#[test]
fn window_too_large_names_the_node() {
    let msg = err(&GOOD.replace("\"kernel\": [3, 3], \"padding\": [1, 1]", "\"kernel\": [11, 11]"));
    assert!(msg.contains("node `c` (conv2d)") && msg.contains("does not fit"), "{msg}");
}

#[test]
fn wrong_arity_names_the_node() {
    let msg = err(&GOOD.replace("\"inputs\": [\"c\"]", "\"inputs\": [\"c\", \"x\"]"));
    assert!(msg.contains("node `r` (relu): takes 1 input(s), got 2"), "{msg}");
}

#[test]
fn duplicate_name_is_rejected() {
    let msg = err(&GOOD.replace("\"name\": \"r\"", "\"name\": \"c\""));
    assert_eq!(msg, "node `c`: name used twice");
}

#[test]
fn wrong_format_and_version_are_rejected() {
    assert!(err(&GOOD.replace("nasc-graph", "onnx")).contains("`format`"));
    assert!(err(&GOOD.replace("\"version\": 1", "\"version\": 9")).contains("`version` is 9"));
}

#[test]
fn choice_with_undeclared_param_names_the_node() {
    let mut g = Graph::new("s");
    let x = g.add("x", Op::Input(Input { shape: vec![1, 3, 8, 8] }), &[]).unwrap();
    let a = g.add("a", Op::Conv2d(Conv2d::new(4, 3, 1)), &[x]).unwrap();
    let b = g.add("b", Op::Conv2d(Conv2d::new(4, 1, 1)), &[x]).unwrap();
    let c = g.add("c", Op::Choice(nasc_ir::op::Choice { param: "p".into() }), &[a, b]).unwrap();
    g.add("y", Op::Output, &[c]).unwrap();
    let msg = Graph::from_json(&g.to_json()).unwrap_err().to_string();
    assert_eq!(msg, "node `c` (choice): param `p` is not declared in `params`");
    g.add_param("p", &["k3", "k1"]).unwrap();
    let back = Graph::from_json(&g.to_json()).unwrap();
    assert_eq!(back, g);
    let sub = back.select(&nasc_ir::Config::from_pairs([("p", 1)])).unwrap();
    assert!(sub.find("a").is_none() && sub.find("b").is_some());
    let bad = back.select(&nasc_ir::Config::from_pairs([("p", 2)])).unwrap_err();
    assert!(matches!(bad, IrError::Param { .. }), "{bad}");
}

#[test]
fn every_space_is_registered() {
    for name in spaces::NAMES {
        let s = spaces::lookup(name).unwrap();
        assert_eq!(s.name(), *name);
    }
    assert!(matches!(spaces::lookup("nope"), Err(IrError::UnknownSpace(_))));
}

#[test]
fn supernets_round_trip_exactly() {
    for name in spaces::NAMES {
        let g = spaces::lookup(name).unwrap().supernet().graph().clone();
        let text = g.to_json();
        let back = Graph::from_json(&text).unwrap();
        assert_eq!(back, g, "{name}");
        assert_eq!(back.to_json(), text, "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn subnets_round_trip_exactly(seed in any::<u64>(), space_idx in 0usize..64) {
        prop_assume!(!spaces::NAMES.is_empty());
        let name = spaces::NAMES[space_idx % spaces::NAMES.len()];
        let space = spaces::lookup(name).unwrap();
        let cfg = space.sample(&mut ChaCha8Rng::seed_from_u64(seed));
        let g = space.subnet_of(&cfg).unwrap();
        let text = g.to_json();
        let back = Graph::from_json(&text).unwrap();
        prop_assert_eq!(&back, &g);
        prop_assert_eq!(back.to_json(), text);
        prop_assert_eq!(space.parse_arch(&space.format_arch(&cfg)).unwrap(), cfg);
    }
}
