#!/usr/bin/env python3
"""The NumPy lookup-table baseline for `cargo bench -p nasc-costmodel --bench query`.

Reads a nasc cost table (JSON) of an additive space such as fbnet, turns it into the per-layer
latency LUT a Python search framework keeps (one row per searchable layer, one column per
option, plus a constant), and times, the way such a framework calls it:
- the latency of one concrete subnet: `lut[rows, choice].sum()`;
- the expected latency under softmax(alpha) and its gradient with respect to alpha.
"""
import json
import sys
import time

import numpy as np


def main(path):
    t = json.load(open(path))
    n_params = len(t["params"])
    width = max(len(o) for o in t["options"])
    lut = np.zeros((n_params, width))
    const = 0.0
    for g in t["groups"]:
        if len(g["scope"]) == 0:
            const += g["latency_ms"][0]
        elif len(g["scope"]) == 1:
            p = g["scope"][0]
            lut[p, : len(g["latency_ms"])] += g["latency_ms"]
        else:
            sys.exit("numpy baseline: only additive tables (every scope of one parameter)")
    rng = np.random.default_rng(1)
    rows = np.arange(n_params)
    configs = rng.integers(0, width, size=(1024, n_params))

    n = 200_000
    t0 = time.perf_counter()
    acc = 0.0
    for i in range(n):
        acc += const + lut[rows, configs[i & 1023]].sum()
    concrete = (time.perf_counter() - t0) / n

    alpha = rng.normal(size=(n_params, width))
    m = 50_000
    t0 = time.perf_counter()
    for _ in range(m):
        z = np.exp(alpha - alpha.max(axis=1, keepdims=True))
        p = z / z.sum(axis=1, keepdims=True)
        value = const + (p * lut).sum()
        d = lut
        grad = p * (d - (p * d).sum(axis=1, keepdims=True))
    expected = (time.perf_counter() - t0) / m
    print(f"numpy LUT baseline (python {sys.version.split()[0]}, numpy {np.__version__}):")
    print(f"  concrete subnet latency: {concrete * 1e6:.3f} µs/query ({1 / concrete / 1e6:.3f} M queries/s)")
    print(f"  expected latency + gradient (softmax, {n_params}x{width}): {expected * 1e6:.3f} µs/query")
    _ = (acc, value, grad)


if __name__ == "__main__":
    main(sys.argv[1])
