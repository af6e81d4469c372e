#!/usr/bin/env python3
"""nasc's generated code against ONNX Runtime and tract, in one run, on the same networks and
weights: single thread, batch 1, median of timed runs after warm-up. The three runtimes take
turns for several rounds (the machine's load drifts over a run; turns expose all three to the
same drift) and each reports the median of its per-round medians, with their range. The last
column pairs nasc and ORT run by run in one process: the object `nasc compile` emits, linked
into a shared library by the system C compiler and called through ctypes, alternates with an
ONNX Runtime run (each goes first every other time), and the column gives the median of the
per-pair ratios ORT/nasc with their interquartile range — a measure the load's drift over
seconds barely touches — and, below the table, the median's distribution-free 95 % confidence
interval and a sign test of how often nasc was the faster of the pair.

Networks: MobileNetV2-1.0 at 224×224 (built with the `onnx` helper API by
tests/onnx/make_models.py, independently of nasc) and an FBNet subnet at 224×224 (exported by
`nasc export --format onnx`, the same weights nasc compiles). nasc's time is `nasc bench run`
(the driver JIT-compiled at -O3, timed in-process into preallocated buffers); its output on the
same input is checked against ONNX Runtime's first.

    python3 benches/peers.py [--nasc target/release/nasc] [--repeats 30] [--rounds 5]

Needs numpy, onnx, onnxruntime and tract (`pip install onnxruntime tract`).
"""

import argparse
import json
import math
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


def nasc_native(nasc, path, tmp, x):
    """`nasc compile`'s object for `path`, linked into a shared library and loaded with ctypes:
    returns a function running it on `x` and the output array it writes."""
    import ctypes
    import re

    # A directory and library of its own per network: the dynamic loader hands back an
    # already-loaded library for a path it has seen.
    out = tempfile.mkdtemp(prefix="native-", dir=tmp)
    run([nasc, "compile", "--target", "host", path, "--name", "net", "--emit", "obj,header", "-o", out])
    so = os.path.join(out, "libnet.so")
    run([os.environ.get("CC", "cc"), "-shared", "-o", so, os.path.join(out, "net.o")])
    header = open(os.path.join(out, "net.h")).read()
    size = lambda key: int(re.search(r"#define NET_%s (\d+)" % key, header).group(1))
    lib = ctypes.CDLL(so)
    lib.net_infer.argtypes = [ctypes.c_void_p] * 3
    lib.net_infer.restype = ctypes.c_int32
    y = np.zeros(size("OUTPUT_SIZE"), np.float32)
    # The arena 64-byte aligned, as the header asks of callers.
    arena = np.zeros(size("ARENA_BYTES") + 64, np.uint8)
    base = arena.ctypes.data
    ptrs = (x.ctypes.data, y.ctypes.data, base + (-base) % 64)

    def call():
        arena  # kept alive with the function
        return lib.net_infer(*ptrs)

    return call, y


def paired_ratios(fa, fb, warmup, repeats):
    """Times `fa` and `fb` back to back `repeats` times, alternating which goes first; returns
    the ratios time(fa) / time(fb), one per pair."""
    for _ in range(warmup):
        fa()
        fb()
    ratios = []
    for k in range(repeats):
        order = (fa, fb) if k % 2 == 0 else (fb, fa)
        t = []
        for f in order:
            t0 = time.perf_counter()
            f()
            t.append(time.perf_counter() - t0)
        ta, tb = t if k % 2 == 0 else t[::-1]
        ratios.append(ta / tb)
    return ratios


def binom_prob(ks, n):
    """P(X ∈ ks) for X ~ Binomial(n, 1/2), exact (integer sums, one division)."""
    return sum(math.comb(n, i) for i in ks) / 2**n


def binom_cdf(k, n):
    """P(X ≤ k) for X ~ Binomial(n, 1/2)."""
    return binom_prob(range(0, k + 1), n)


def median_ci(xs, level=0.95):
    """A distribution-free confidence interval for the median of `xs`: the order statistics
    x(j) and x(n+1−j) (1-based) cover it with probability 1 − 2·P(Bin(n, ½) ≤ j − 1); j is the
    largest for which that is at least `level`. Needs at least 6 values at 95 %."""
    s = sorted(xs)
    n = len(s)
    j = 0
    while j + 1 <= n // 2 and 1 - 2 * binom_cdf(j, n) >= level:
        j += 1
    if j == 0:
        raise ValueError("%d values are too few for a %.0f %% interval of the median" % (n, 100 * level))
    return s[j - 1], s[n - j]


def sign_test(xs):
    """How many of `xs` exceed 1, and the one-sided sign-test p-value of that many or more if
    each were as likely below 1 as above (ties count against)."""
    n = len(xs)
    wins = sum(1 for x in xs if x > 1)
    return wins, binom_prob(range(wins, n + 1), n)


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
    ap.add_argument("--rounds", type=int, default=5, help="turns of the three runtimes per network")
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
        rel = lambda y: float(np.abs(y.ravel() - ref).max() / max(np.abs(ref).max(), 1e-12))
        err = rel(np.load(yp))
        native, ny = nasc_native(a.nasc, path, tmp, x)
        native()
        err_native = rel(ny)
        if err_native > 1e-4:
            sys.exit("error: %s: nasc's object differs from ONNX Runtime by %.1e" % (name, err_native))
        tm = tract_model(path, shape)
        nasc_cmd = [a.nasc, "bench", "run", path, "--json", "--repeats", str(a.repeats), "--warmup", str(a.warmup)]
        t_ort, t_tract, t_nasc, paired, macs = [], [], [], [], 0
        for r in range(a.rounds):
            print("peers: %s, round %d/%d" % (name, r + 1, a.rounds), file=sys.stderr)
            t_ort.append(median_ms(lambda: sess.run(None, {inp.name: x}), a.warmup, a.repeats))
            t_tract.append(median_ms(lambda: tm.run([x]), a.warmup, a.repeats))
            b = json.loads(run(nasc_cmd))
            t_nasc.append(b["median_ms"])
            macs = b["macs"]
            paired += paired_ratios(lambda: sess.run(None, {inp.name: x}), native, a.warmup, a.repeats)
        rows.append((name, macs, t_nasc, t_ort, t_tract, err, paired))
    print(
        "single thread, batch 1; median over %d rounds of the median of %d runs (ms), [min–max of the rounds]; "
        "nasc output vs ORT: max relative error" % (a.rounds, a.repeats)
    )
    print(
        "%-20s %7s %21s %21s %21s %9s %10s %8s %24s"
        % ("network", "MMACs", "nasc", "ORT", "tract", "ORT/nasc", "tract/nasc", "rel err", "ORT/nasc paired [IQR]")
    )
    span = lambda ts: "%7.3f [%5.2f–%5.2f]" % (float(np.median(ts)), min(ts), max(ts))
    for name, macs, tn, to, tt, err, paired in rows:
        mn, mo, mt = (float(np.median(t)) for t in (tn, to, tt))
        q1, q2, q3 = np.percentile(paired, [25, 50, 75])
        print(
            "%-20s %7.1f %s %s %s %9.2f %10.2f %8.1e %8.3f [%.3f–%.3f]"
            % (name, macs / 1e6, span(tn), span(to), span(tt), mo / mn, mt / mn, err, q2, q1, q3)
        )
    print("paired: %d pairs per network (%d rounds × %d)" % (len(rows[0][6]), a.rounds, a.repeats))
    for name, _, _, _, _, _, paired in rows:
        lo, hi = median_ci(paired)
        wins, p = sign_test(paired)
        print(
            "%-20s paired ORT/nasc median %.3f, 95 %% CI [%.3f–%.3f]; nasc faster in %d of %d pairs (sign test p = %.1e)"
            % (name, float(np.median(paired)), lo, hi, wins, len(paired), p)
        )


if __name__ == "__main__":
    main()
