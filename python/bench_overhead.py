#!/usr/bin/env python3
"""Overhead of nasc from Python against a pure-NumPy lookup table doing the same work.

- batched cost of 100,000 FBNet architecture strings (comma-separated block names): nasc's
  `Table.cost_batch` (parse + price in Rust, in parallel) vs Python string parsing + a NumPy
  LUT gather-sum;
- one expected latency with its full gradient for the FBNet supernet: nasc's
  `Table.expected` vs softmax + LUT expectation + gradient in NumPy.

Run after `pip install ./python`: python3 python/bench_overhead.py
"""
import time

import numpy as np

import nasc


def best(f, repeat=5):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main():
    table = nasc.Target("cortex-a72").table("fbnet:cifar100")
    opts = table.options
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 9, size=(100_000, 22))
    archs = [",".join(opts[p][i] for p, i in enumerate(row)) for row in idx]

    # The NumPy LUT a Python framework would keep: per layer, per option (exact for fbnet,
    # an additive space), plus the constant part.
    zero = [0] * 22
    base = table.cost(zero)[0]
    lut = np.zeros((22, 9))
    for p in range(22):
        for o in range(9):
            c = list(zero)
            c[p] = o
            lut[p, o] = table.cost(c)[0] - base
    index = [{name: i for i, name in enumerate(o)} for o in opts]
    rows = np.arange(22)

    def numpy_batch():
        cfg = np.array([[index[p][name] for p, name in enumerate(a.split(","))] for a in archs])
        return base + lut[rows, cfg].sum(axis=1)

    def nasc_batch():
        return table.cost_batch(archs)

    ours = nasc_batch()[:, 0]
    theirs = numpy_batch()
    assert np.allclose(ours, theirs, rtol=1e-9), "the LUT and the table disagree"
    tn, tb = best(nasc_batch), best(numpy_batch)
    print(f"batched cost, 100,000 fbnet arch strings: nasc {tn * 1e3:.1f} ms, numpy LUT {tb * 1e3:.1f} ms ({tb / tn:.1f}x)")

    alpha = rng.normal(size=table.n_logits)

    def nasc_expected():
        r = table.expected(alpha)
        return r["value"], r["grad_logits"]

    def numpy_expected():
        a = alpha.reshape(22, 9)
        z = np.exp(a - a.max(axis=1, keepdims=True))
        p = z / z.sum(axis=1, keepdims=True)
        value = base + (p * lut).sum()
        grad = p * (lut - (p * lut).sum(axis=1, keepdims=True))
        return value, grad

    v1, g1 = nasc_expected()
    v2, g2 = numpy_expected()
    assert abs(v1 - v2) <= 1e-9 * abs(v1) and np.allclose(g1, g2.ravel(), rtol=1e-9, atol=1e-12)
    n = 20000
    tn = best(lambda: [nasc_expected() for _ in range(n)], 3) / n
    tb = best(lambda: [numpy_expected() for _ in range(n)], 3) / n
    print(f"expected latency + gradient (fbnet 22x9), one call from Python: nasc {tn * 1e6:.2f} µs, numpy {tb * 1e6:.2f} µs ({tb / tn:.1f}x)")


if __name__ == "__main__":
    main()
