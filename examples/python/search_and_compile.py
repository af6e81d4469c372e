#!/usr/bin/env python3
"""Tutorial: a differentiable architecture search with nasc's latency term, then the chosen
early-exit subnet compiled for a Cortex-A53 (aarch64) with its exits in the binary.

The search space is `ee-mbv2:cifar10` (16 searchable MobileNetV2 blocks, options k3_e3 … k7_e6,
three early exits). The proxy network trained here mirrors it at 1/8 width on 8×8 synthetic
images so the whole search runs on a CPU in about a minute: every block holds its five
candidates and, as in GDAS/ProxylessNAS, each step runs one of them drawn from softmax(α_block)
with a straight-through weight that carries the gradient to α. The loss is

    loss = cross_entropy + λ · E[latency on cortex-a53](α)

where the expectation is nasc's exact one over the real 32×32 network (pairwise terms
included, the exits weighted by their firing probabilities), and its gradient with respect to
α comes from `nasc.torch.ExpectedCost` in one line. After the search the argmax architecture
is priced, compiled for aarch64 by `nasc compile` (object + header; thresholds baked in, the
driver returns the exit taken) and — when Debian's cross gcc and qemu-user are installed, as
`scripts/setup.sh` does — linked with the C harness and run.

    pip install ./python torch        # nasc's Python package and PyTorch (CPU is enough)
    cargo build --release             # the nasc CLI, for the compile step
    python3 examples/python/search_and_compile.py [--lam 0.05] [--steps 150]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("error: this tutorial needs PyTorch (pip install torch)")

import nasc
from nasc.torch import ExpectedCost

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPACE = "ee-mbv2:cifar10"
TARGET = "cortex-a53"
# (label, kernel, expand) as in the space; stages (channels, blocks, stride) at 1/8 width.
OPTIONS = [("k3_e3", 3, 3), ("k3_e6", 3, 6), ("k5_e3", 5, 3), ("k5_e6", 5, 6), ("k7_e6", 7, 6)]
STAGES = [(24, 2, 1), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1)]
# Probability that each exit fires when reached (e.g. measured on a validation set).
EXIT_P = np.array([0.3, 0.3, 0.3])


class Candidate(nn.Module):
    def __init__(self, cin, cout, k, e, stride):
        super().__init__()
        mid = cin * e
        self.expand = nn.Conv2d(cin, mid, 1, bias=False)
        self.dw = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self.project = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.bn(self.project(F.relu6(self.dw(F.relu6(self.expand(x))))))
        return x + y if self.residual else y


class MixedBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.ops = nn.ModuleList(Candidate(cin, cout, k, e, stride) for _, k, e in OPTIONS)

    def forward(self, x, weights):
        # GDAS / ProxylessNAS path sampling: run one candidate drawn from softmax(α), scaled by
        # w_i / stop_gradient(w_i) — 1 in value, ∂/∂α of w_i in gradient — so a step costs one
        # candidate per block instead of all five.
        i = int(torch.multinomial(weights.detach(), 1))
        return self.ops[i](x) * (weights[i] / weights[i].detach())


class ProxySupernet(nn.Module):
    def __init__(self, classes=10, div=8):
        super().__init__()
        c = 16 // div * 2
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU6())
        blocks = []
        for cout, n, s in STAGES:
            for i in range(n):
                blocks.append(MixedBlock(c, max(cout // div, 2), s if i == 0 else 1))
                c = max(cout // div, 2)
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c, classes)
        self.alpha = nn.Parameter(torch.zeros(len(blocks), len(OPTIONS)))

    def forward(self, x, tau=1.0):
        w = F.softmax(self.alpha / tau, dim=-1)
        x = self.stem(x)
        for b, wb in zip(self.blocks, w):
            x = b(x, wb)
        return self.head(x.mean(dim=(2, 3)))


def synthetic_data(n, seed=0):
    """8×8 images labelled by a fixed random convolutional teacher (a learnable task)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    teacher = torch.randn(10, 3, 3, 3, generator=g)
    feats = F.conv2d(x, teacher, padding=1).relu().mean(dim=(2, 3))
    return x, feats.argmax(dim=1)


def find_nasc():
    for p in [os.environ.get("NASC"), os.path.join(ROOT, "target", "release", "nasc"), shutil.which("nasc")]:
        if p and os.path.exists(p):
            return p
    sys.exit("error: the nasc CLI was not found; run `cargo build --release` or set NASC=/path/to/nasc")


def main():
    ap = argparse.ArgumentParser(description="differentiable search with nasc's latency term, then compile")
    ap.add_argument("--lam", type=float, default=0.02, help="weight of E[latency] (per ms) in the loss")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--out", default=None, help="directory for the compiled artifacts")
    a = ap.parse_args()
    torch.manual_seed(0)
    # One thread: the proxy is tiny, and OpenMP threads spinning against other work on a small
    # machine cost far more than they give.
    torch.set_num_threads(1)
    t0 = time.time()

    table = nasc.Target(TARGET).table(SPACE)  # built once; every query below reads it
    assert table.n_logits == 16 * len(OPTIONS)
    model = ProxySupernet()
    x, y = synthetic_data(2048)
    opt_w = torch.optim.Adam([p for n, p in model.named_parameters() if n != "alpha"], lr=3e-3)
    opt_a = torch.optim.Adam([model.alpha], lr=5e-2)
    exits = EXIT_P

    def expected_latency():
        # One line in the loss: nasc's expectation, differentiable with respect to alpha.
        return ExpectedCost.apply(model.alpha.reshape(-1), table, 1.0, "latency")

    start = table.expected(np.zeros(table.n_logits), exits=exits)["latency_ms"]
    print(f"{SPACE} on {TARGET}: E[latency] under uniform α = {start:.2f} ms (exits fire w.p. {[float(p) for p in exits]})")
    for step in range(a.steps):
        idx = torch.randint(0, len(x), (128,))
        logits = model(x[idx])
        ce = F.cross_entropy(logits, y[idx])
        # The exit-aware expectation is used for reporting; the loss uses the table through
        # ExpectedCost (no exits: the worst case each sample can reach).
        lat = expected_latency()
        loss = ce + a.lam * lat
        opt_w.zero_grad()
        opt_a.zero_grad()
        loss.backward()
        opt_w.step()
        opt_a.step()
        if step % 25 == 0 or step == a.steps - 1:
            acc = (logits.argmax(1) == y[idx]).float().mean().item()
            e = table.expected(model.alpha.detach().double().reshape(-1).numpy(), exits=exits)["latency_ms"]
            print(f"step {step:4d}  ce {ce.item():.3f}  acc {acc:.2f}  E[lat] {lat.item():7.2f} ms  (with exits {e:6.2f} ms)")

    choice = model.alpha.detach().argmax(dim=1).tolist()
    arch = ",".join(OPTIONS[i][0] for i in choice)
    lat_chosen, energy = table.cost(table.config(arch))
    largest = ",".join(["k7_e6"] * 16)
    lat_largest, _ = table.cost(table.config(largest))
    print(f"search took {time.time() - t0:.1f} s")
    print(f"chosen architecture: {arch}")
    print(f"its latency on {TARGET}: {lat_chosen:.2f} ms without exits firing ({energy:.2f} mJ); all-k7_e6: {lat_largest:.2f} ms")

    # Compile the chosen subnet, exits and all, for aarch64.
    nasc_cli = find_nasc()
    out = a.out or tempfile.mkdtemp(prefix="nasc-tutorial-")
    r = subprocess.run(
        [nasc_cli, "compile", "--target", TARGET, "--space", SPACE, "--arch", arch, "--emit", "obj,header,staticlib", "-o", out],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        sys.exit(r.stderr.strip())
    print(r.stdout.strip())
    gcc, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    if not (gcc and qemu):
        print("(aarch64-linux-gnu-gcc / qemu-aarch64 not installed: skipping the run; scripts/setup.sh installs them)")
        return
    exe = os.path.join(out, "run")
    subprocess.run(
        [gcc, "-O2", "-static", "-I", out, os.path.join(ROOT, "codegen", "harness", "harness.c"), os.path.join(out, "model.o"), "-lm", "-o", exe],
        check=True,
    )
    inp = os.path.join(out, "input.npy")
    np.save(inp, np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32))
    taken = subprocess.run([qemu, exe, inp, os.path.join(out, "output.npy")], capture_output=True, text=True, check=True)
    scores = np.load(os.path.join(out, "output.npy"))
    print(f"ran the aarch64 binary under qemu: exit {taken.stdout.strip()} taken (3 = final classifier), class {int(scores.argmax())}")


if __name__ == "__main__":
    main()
