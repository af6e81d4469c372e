#!/usr/bin/env python3
"""nasc's generated code against ONNX Runtime and tract, in one run, on the same networks and
weights: single thread, batch 1, median of timed runs after warm-up.

Networks: MobileNetV2-1.0 at 224×224 (built with the `onnx` helper API by
tests/onnx/make_models.py, independently of nasc) and an FBNet subnet at 224×224 (exported by
`nasc export --format onnx`, the same weights nasc compiles). nasc's time is `nasc bench run`
(the driver JIT-compiled at -O3, timed in-process into preallocated buffers); its output on the
same input is checked against ONNX Runtime's first.

    python3 benches/peers.py [--nasc target/release/nasc] [--repeats 30]

Needs numpy, onnx, onnxruntime and tract (`pip install onnxruntime tract`).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def median_ms(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ts))


def ort_session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def tract_model(path, shape):
    import tract

    m = tract.onnx().load(path)
    m.set_input_fact(0, "%s,f32" % ",".join(str(d) for d in shape))
    # into_runnable optimises the typed model for this CPU (tract's default runtime).
    return m.into_model().into_runnable()


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("error: %s failed: %s" % (" ".join(cmd), r.stderr.strip()))
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nasc", default=os.path.join(ROOT, "target", "release", "nasc"))
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--fbnet-arch", default=None, help="FBNet architecture (default: `nasc sample fbnet:imagenet --seed 1`)")
    a = ap.parse_args()
    try:
        import onnxruntime  # noqa: F401
        import tract  # noqa: F401
    except ImportError as e:
        sys.exit("error: %s (pip install onnxruntime tract)" % e)
    if not os.path.exists(a.nasc):
        sys.exit("error: %s not found; build it with `cargo build --release`" % a.nasc)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tmp = tempfile.mkdtemp(prefix="nasc-peers-")
    run([sys.executable, os.path.join(ROOT, "tests", "onnx", "make_models.py"), tmp])
    arch = a.fbnet_arch or run([a.nasc, "sample", "fbnet:imagenet", "--seed", "1", "--arch-only"]).strip()
    fb = os.path.join(tmp, "fbnet.onnx")
    run([a.nasc, "export", "--space", "fbnet:imagenet", "--arch", arch, "--seed", "1", "-o", fb])
    nets = [("MobileNetV2-1.0 224", os.path.join(tmp, "mobilenet_v2.onnx")), ("FBNet subnet 224", fb)]
    rows = []
    for name, path in nets:
        sess = ort_session(path)
        inp = sess.get_inputs()[0]
        shape = [int(d) for d in inp.shape]
        x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
        xp = os.path.join(tmp, "x.npy")
        np.save(xp, x)
        ref = sess.run(None, {inp.name: x})[0].ravel()
        # Correctness first: nasc's compiled code on the same input.
        yp = os.path.join(tmp, "y.npy")
        run([a.nasc, "run", path, "--jit", "--input", xp, "-o", yp])
        got = np.load(yp).ravel()
        err = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))
        t_ort = median_ms(lambda: sess.run(None, {inp.name: x}), a.warmup, a.repeats)
        tm = tract_model(path, shape)
        t_tract = median_ms(lambda: tm.run([x]), a.warmup, a.repeats)
        b = json.loads(
            run([a.nasc, "bench", "run", path, "--json", "--repeats", str(a.repeats), "--warmup", str(a.warmup)])
        )
        rows.append((name, b["macs"], b["median_ms"], t_ort, t_tract, err))
    print("single thread, batch 1, median of %d runs (ms); nasc output vs ORT: max relative error" % a.repeats)
    print("%-22s %8s %9s %9s %9s %10s %10s %9s" % ("network", "MMACs", "nasc", "ORT", "tract", "ORT/nasc", "tract/nasc", "rel err"))
    for name, macs, tn, to, tt, err in rows:
        print(
            "%-22s %8.1f %9.3f %9.3f %9.3f %10.2f %10.2f %9.1e"
            % (name, macs / 1e6, tn, to, tt, to / tn, tt / tn, err)
        )


if __name__ == "__main__":
    main()
