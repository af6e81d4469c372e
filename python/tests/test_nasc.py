"""Tests of the Python package: costs equal the CLI's, batched costs equal single ones,
gradients equal finite differences (and, through torch when installed, the autograd path)."""

import json
import os
import subprocess

import numpy as np
import pytest

import nasc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_lists_and_single_cost():
    assert "fbnet:cifar100" in nasc.spaces()
    assert "eyeriss" in nasc.targets()
    t = nasc.Target("cortex-a72")
    r = t.cost("nb201:cifar10", NB201)
    assert r["macs"] == 115270272
    assert r["latency_ms"] > 0 and r["energy_mj"] > 0


def test_batched_costs_equal_single_costs():
    t = nasc.Target("eyeriss")
    rng = np.random.default_rng(0)
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    archs = []
    for _ in range(200):
        e = rng.integers(0, 5, 6)
        archs.append(
            f"|{ops[e[0]]}~0|+|{ops[e[1]]}~0|{ops[e[2]]}~1|+|{ops[e[3]]}~0|{ops[e[4]]}~1|{ops[e[5]]}~2|"
        )
    batch = t.cost_batch("nb201:cifar10", archs)
    assert batch.shape == (200, 2)
    for a, row in zip(archs[:20], batch[:20]):
        single = t.cost("nb201:cifar10", a)
        assert abs(single["latency_ms"] - row[0]) <= 1e-9 * row[0]
        assert abs(single["energy_mj"] - row[1]) <= 1e-9 * row[1]


def test_expected_gradient_matches_finite_differences():
    table = nasc.Target("cortex-a72").table("fbnet:cifar100")
    rng = np.random.default_rng(1)
    a = rng.normal(size=table.n_logits)
    r = table.expected(a, tau=0.7, objective="edp")
    assert r["grad_logits"].shape == (table.n_logits,)
    for i in rng.choice(table.n_logits, 12, replace=False):
        h = 1e-5
        ap, am = a.copy(), a.copy()
        ap[i] += h
        am[i] -= h
        fd = (table.expected(ap, tau=0.7, objective="edp")["value"] - table.expected(am, tau=0.7, objective="edp")["value"]) / (2 * h)
        g = r["grad_logits"][i]
        assert abs(fd - g) <= 1e-6 * max(abs(g), 1e-3 * abs(r["value"]))


def test_exits_gates_and_errors():
    t = nasc.Target("eyeriss")
    ee = t.table("ee-mbv2:cifar10")
    r = ee.expected(np.zeros(ee.n_logits), exits=np.array([0.3, 0.3, 0.3]))
    assert r["grad_exits"].shape == (3,) and (r["grad_exits"] < 0).all()
    sk = t.table("skipnet-resnet:cifar10")
    r = sk.expected(np.zeros(sk.n_logits), gates=np.full(16, 0.5))
    assert (r["grad_gates"] > 0).all()
    with pytest.raises(ValueError, match="logits"):
        ee.expected(np.zeros(3))
    with pytest.raises(ValueError, match="unknown target"):
        nasc.Target("nope")
    with pytest.raises(ValueError, match="architecture string for nb201:cifar10"):
        t.cost("nb201:cifar10", "|bad~0|")
    back = nasc.Table.from_json(ee.to_json())
    assert back.cost([0] * len(back.params)) == ee.cost([0] * len(ee.params))


def test_cost_equals_the_cli():
    exes = [os.path.join(ROOT, "target", d, "nasc") for d in ("release", "debug")]
    exes = [e for e in exes if os.path.exists(e)]
    if not exes:
        pytest.skip("the nasc binary is not built (cargo build)")
    exe = exes[0]
    out = subprocess.run([exe, "cost", "-t", "cortex-a72", "--space", "nb201:cifar10", "--arch", NB201, "--json", "--summary"], check=True, capture_output=True, text=True)
    cli = json.loads(out.stdout)
    py = nasc.Target("cortex-a72").cost("nb201:cifar10", NB201)
    assert abs(cli["latency_ms"] - py["latency_ms"]) <= 1e-9 * py["latency_ms"]


def test_profiles_calibrate_a_target_as_in_the_cli():
    name = "cortex-a72/fbnet-cifar100-raspi4_latency"
    assert name in nasc.profiles()
    arch = "k3_e1,skip,k3_e3,k5_e6,skip,k3_e1_g2,k5_e3,k3_e6,k5_e1,skip,k3_e1,k5_e6,k3_e3,skip,k5_e1_g2,k3_e6,k5_e3,k3_e1,skip,k5_e6,k3_e3,k5_e1"
    raw = nasc.Target("cortex-a72")
    cal = nasc.Target("cortex-a72", profile="builtin:" + name)
    assert raw.profile is None and cal.profile == "builtin:" + name
    r, c = raw.cost("fbnet:cifar100", arch), cal.cost("fbnet:cifar100", arch)
    assert c["macs"] == r["macs"] and abs(c["latency_ms"] / r["latency_ms"] - 1) > 0.05
    # The calibrated table and batch agree with the single cost.
    batch = cal.cost_batch("fbnet:cifar100", [arch])
    assert abs(batch[0, 0] - c["latency_ms"]) <= 1e-9 * c["latency_ms"]
    # A profile of another target, a missing file or an unknown name: one-line ValueErrors.
    with pytest.raises(ValueError, match="profile for `cortex-a72`"):
        nasc.Target("eyeriss", profile="builtin:" + name)
    with pytest.raises(ValueError, match="nope.json: cannot read"):
        nasc.Target("eyeriss", profile="nope.json")
    with pytest.raises(ValueError, match="no shipped profile `builtin:nope`"):
        nasc.Target("eyeriss", profile="builtin:nope")
    exes = [os.path.join(ROOT, "target", d, "nasc") for d in ("release", "debug")]
    exes = [e for e in exes if os.path.exists(e)]
    if not exes:
        pytest.skip("the nasc binary is not built (cargo build)")
    args = ["cost", "-t", "cortex-a72", "--profile", "builtin:" + name, "--space", "fbnet:cifar100", "--arch", arch, "--json", "--summary"]
    cli = json.loads(subprocess.run([exes[0], *args], check=True, capture_output=True, text=True).stdout)
    assert abs(cli["latency_ms"] - c["latency_ms"]) <= 1e-9 * c["latency_ms"]
    assert abs(cli["energy_mj"] - c["energy_mj"]) <= 1e-9 * c["energy_mj"]


def test_torch_expected_cost_backward():
    try:
        import torch
    except Exception as e:  # not installed, or installed without its native libraries
        pytest.skip(f"torch unavailable: {e}")
    from nasc.torch import ExpectedCost

    table = nasc.Target("cortex-a72").table("fbnet:cifar100")
    alpha = torch.randn(table.n_logits, dtype=torch.float64, requires_grad=True)
    lat = ExpectedCost.apply(alpha, table, 1.0, "latency")
    lat.backward()
    r = table.expected(alpha.detach().numpy())
    assert abs(lat.item() - r["value"]) < 1e-12
    assert np.allclose(alpha.grad.numpy(), r["grad_logits"], rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a: ExpectedCost.apply(a, table, 1.0, "latency"), (alpha,), eps=1e-6, atol=1e-6)
