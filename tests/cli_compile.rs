//! `nasc compile`: deterministic artifacts, a static library a C program links against, the
//! same weights as `nasc run` through a safetensors file, and clear errors.

mod common;

use std::path::Path;
use std::process::Command;

use common::{build_harness, fails, json, npy_rel_err, ok};

const SPACE: &str = "ee-mbv2:cifar10";

fn arch() -> String {
    ok(&["sample", SPACE, "--seed", "4", "--arch-only"]).trim().to_string()
}

#[test]
fn same_inputs_give_byte_identical_artifacts() {
    let arch = arch();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for d in &dirs {
        ok(&[
            "compile",
            "--target",
            "cortex-a72",
            "--space",
            SPACE,
            "--arch",
            &arch,
            "--seed",
            "3",
            "--emit",
            "obj,asm,llvm-ir,header,staticlib",
            "-o",
            d.path().to_str().unwrap(),
        ]);
    }
    for f in ["model.o", "model.s", "model.ll", "model.h", "libmodel.a"] {
        let a = std::fs::read(dirs[0].path().join(f)).unwrap();
        let b = std::fs::read(dirs[1].path().join(f)).unwrap();
        assert!(!a.is_empty(), "{f} is empty");
        assert!(a == b, "{f} differs between two identical compilations");
    }
    // No temporary files are left behind.
    let names: Vec<String> =
        std::fs::read_dir(dirs[0].path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
}

#[test]
fn static_library_with_safetensors_weights_matches_the_interpreter() {
    let arch = arch();
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).to_str().unwrap().to_string();
    ok(&[
        "export",
        "--space",
        SPACE,
        "--arch",
        &arch,
        "--seed",
        "11",
        "--format",
        "safetensors",
        "-o",
        &p("w.safetensors"),
    ]);
    // The interpreter with the file's weights equals the interpreter with the seed's.
    let by_file = json(&ok(&[
        "run",
        "--space",
        SPACE,
        "--arch",
        &arch,
        "--weights",
        &p("w.safetensors"),
        "--random-input",
        "5",
        "--save-input",
        &p("in.npy"),
        "-o",
        &p("ref.npy"),
        "--json",
    ]));
    let by_seed =
        json(&ok(&["run", "--space", SPACE, "--arch", &arch, "--seed", "11", "--input", &p("in.npy"), "--json"]));
    assert_eq!(by_file["output"], by_seed["output"]);
    ok(&[
        "compile",
        "--target",
        "host",
        "--space",
        SPACE,
        "--arch",
        &arch,
        "--weights",
        &p("w.safetensors"),
        "--emit",
        "staticlib,header",
        "--opt",
        "1",
        "-o",
        d.path().to_str().unwrap(),
    ]);
    let dir = d.path().to_str().unwrap();
    build_harness("cc", d.path(), &["-L", dir, "-lmodel"], Path::new(&p("run")));
    let o = Command::new(p("run")).arg(p("in.npy")).arg(p("out.npy")).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let exit: u64 = String::from_utf8(o.stdout).unwrap().trim().parse().unwrap();
    assert_eq!(exit, by_file["exit_index"].as_u64().unwrap());
    let err = npy_rel_err(Path::new(&p("out.npy")), Path::new(&p("ref.npy")));
    assert!(err < 1e-4, "relative error {err:e}");
}

#[test]
fn bad_inputs_fail_with_one_line_errors() {
    let arch = arch();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("out");
    let dir_s = dir.to_str().unwrap();
    let base = ["compile", "--target", "cortex-a72", "--space", SPACE, "--arch", arch.as_str(), "-o", dir_s];
    let err = fails(&[&base[..], &["--emit", "obj,exe"]].concat());
    assert!(err.contains("--emit exe"), "{err}");
    let err = fails(&[&base[..], &["--opt", "2"]].concat());
    assert!(err.contains("--opt 2"), "{err}");
    let err = fails(&[&base[..], &["--name", "my-net"]].concat());
    assert!(err.contains("my-net"), "{err}");
    let missing = d.path().join("none.safetensors");
    let err = fails(&[&base[..], &["--weights", missing.to_str().unwrap()]].concat());
    assert!(err.contains("none.safetensors"), "{err}");
    // Weights of another subnet: a shape mismatch names the node.
    let other = ok(&["sample", SPACE, "--seed", "99", "--arch-only"]).trim().to_string();
    assert_ne!(other, arch);
    let w = d.path().join("other.safetensors");
    ok(&["export", "--space", SPACE, "--arch", &other, "--format", "safetensors", "-o", w.to_str().unwrap()]);
    let err = fails(&[&base[..], &["--weights", w.to_str().unwrap()]].concat());
    assert!(err.contains("other.safetensors") && err.contains('`'), "{err}");
    // Not a safetensors file.
    let junk = d.path().join("junk.safetensors");
    std::fs::write(&junk, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}").unwrap();
    let err = fails(&[&base[..], &["--weights", junk.to_str().unwrap()]].concat());
    assert!(err.contains("junk.safetensors"), "{err}");
    let err = fails(&["compile", "--target", "nonesuch", "--space", SPACE, "--arch", &arch, "-o", dir_s]);
    assert!(err.contains("nonesuch"), "{err}");
    // An int8 layer (a cost annotation) is not compiled: the generated kernels are f32.
    let g = ok(&["sample", SPACE, "--seed", "3"]);
    let q = g.replacen(r#""op": "conv2d","#, r#""op": "conv2d", "precision": "int8","#, 1);
    assert_ne!(q, g);
    let qf = d.path().join("q.json");
    std::fs::write(&qf, q).unwrap();
    let err = fails(&["compile", "--target", "host", qf.to_str().unwrap(), "-o", dir_s]);
    assert!(err.contains("int8 layers are priced by the cost model but not compiled"), "{err}");
    // Nothing was written by the failed commands.
    assert!(!dir.exists() || std::fs::read_dir(&dir).unwrap().next().is_none());
}

#[test]
fn npu_targets_compile_for_their_host_cpu() {
    let d = tempfile::tempdir().unwrap();
    let arch = arch();
    let out = ok(&[
        "compile",
        "--target",
        "edgetpu",
        "--space",
        SPACE,
        "--arch",
        &arch,
        "--emit",
        "header",
        "--opt",
        "1",
        "-o",
        d.path().to_str().unwrap(),
    ]);
    assert!(out.contains("aarch64"), "{out}");
    let h = std::fs::read_to_string(d.path().join("model.h")).unwrap();
    assert!(h.contains("model_infer") && h.contains("MODEL_ARENA_BYTES"), "{h}");
    // Kernel scratch on the stack is declared, and bounded: the 1×1 panel and the banded
    // convolutions' scratch are capped (128 KiB, 64 KiB), and CIFAR planes are small.
    let stack: usize = h
        .lines()
        .find_map(|l| l.strip_prefix("#define MODEL_STACK_BYTES "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no MODEL_STACK_BYTES in {h}"));
    assert!(stack > 0 && stack <= 128 * 1024, "MODEL_STACK_BYTES {stack}");
}

#[test]
fn external_weights_keep_the_object_small_and_the_outputs_equal() {
    let arch = arch();
    let d = tempfile::tempdir().unwrap();
    let p = |f: &str| d.path().join(f).to_str().unwrap().to_string();
    let compile = |dir: &str, external: bool| {
        let mut args = vec![
            "compile",
            "--target",
            "host",
            "--space",
            SPACE,
            "--arch",
            &arch,
            "--seed",
            "8",
            "--emit",
            "obj,header",
            "--opt",
            "1",
            "-o",
            dir,
        ];
        if external {
            args.push("--weights-external");
        }
        ok(&args);
    };
    compile(&p("ext"), true);
    compile(&p("int"), false);
    let obj_ext = std::fs::metadata(p("ext/model.o")).unwrap().len();
    let obj_int = std::fs::metadata(p("int/model.o")).unwrap().len();
    let blob = std::fs::metadata(p("ext/model.weights")).unwrap().len();
    let h = std::fs::read_to_string(p("ext/model.h")).unwrap();
    assert!(h.contains(&format!("#define MODEL_WEIGHTS_BYTES {blob}")), "{h}");
    // The weights left the object (they are most of it).
    assert!(obj_ext + blob / 2 < obj_int, "object {obj_ext} bytes with external weights, {obj_int} without");
    let r = json(&ok(&[
        "run",
        "--space",
        SPACE,
        "--arch",
        &arch,
        "--seed",
        "8",
        "--random-input",
        "3",
        "--save-input",
        &p("in.npy"),
        "-o",
        &p("ref.npy"),
        "--json",
    ]));
    build_harness("cc", Path::new(&p("ext")), &[&p("ext/model.o")], Path::new(&p("run")));
    let o = Command::new(p("run")).args([p("in.npy"), p("out.npy"), p("ext/model.weights")]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let exit: u64 = String::from_utf8(o.stdout).unwrap().trim().parse().unwrap();
    assert_eq!(exit, r["exit_index"].as_u64().unwrap());
    let err = npy_rel_err(Path::new(&p("out.npy")), Path::new(&p("ref.npy")));
    assert!(err < 1e-4, "relative error {err:e}");
    // The wrong file is refused.
    let o = Command::new(p("run")).args([p("in.npy"), p("out.npy"), p("ext/model.h")]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}
