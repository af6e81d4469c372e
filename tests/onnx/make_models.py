#!/usr/bin/env python3
"""Builds ONNX models independently of nasc (with the `onnx` package's helper API and NumPy
random weights), runs them with ONNX Runtime on a random input, and writes, per model,
`NAME.onnx`, `NAME.input.npy` and `NAME.ort.npy` into OUTDIR. `tests/onnx.rs` imports the
models into nasc and checks that nasc's interpreter gives ONNX Runtime's outputs.

Models: MobileNetV2-1.0 (224×224), a ResNet-18-like net (112×112) and an FBNet-like subnet
with grouped 1×1 convolutions and channel shuffles (32×32).

Usage: make_models.py OUTDIR
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, p):
        self.n += 1
        return f"{p}{self.n}"

    def const(self, arr, p="w"):
        n = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def node(self, op, inputs, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k, s=1, g=1, bias=False):
        fan = cin // g * k * k
        w = (self.rng.uniform(-1, 1, (cout, cin // g, k, k)) * np.sqrt(3.0 / fan)).astype(np.float32)
        ins = [x, self.const(w)]
        if bias:
            ins.append(self.const(self.rng.uniform(-0.1, 0.1, cout).astype(np.float32), "b"))
        p = (k - 1) // 2
        return self.node("Conv", ins, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p], group=g)

    def bn(self, x, c):
        r = self.rng
        ps = [r.uniform(0.5, 1.5, c), r.uniform(-0.1, 0.1, c), r.uniform(-0.1, 0.1, c), r.uniform(0.5, 1.5, c)]
        return self.node("BatchNormalization", [x] + [self.const(p.astype(np.float32), "bn") for p in ps], epsilon=1e-5)

    def relu6(self, x):
        return self.node("Clip", [x, self.const(np.float32(0.0), "lo"), self.const(np.float32(6.0), "hi")])

    def gemm(self, x, fin, fout):
        w = (self.rng.uniform(-1, 1, (fout, fin)) * np.sqrt(3.0 / fin)).astype(np.float32)
        b = self.rng.uniform(-0.1, 0.1, fout).astype(np.float32)
        return self.node("Gemm", [x, self.const(w), self.const(b, "b")], transB=1)

    def finish(self, name, out, shape, nout, path):
        g = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, nout])],
            self.inits,
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_models.py")
        m.ir_version = 8
        onnx.checker.check_model(m)
        onnx.save(m, path)


def mobilenet_v2(b):
    x = b.relu6(b.bn(b.conv("input", 3, 32, 3, 2), 32))
    cin = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            mid = cin * t
            h = x
            if t != 1:
                h = b.relu6(b.bn(b.conv(h, cin, mid, 1), mid))
            h = b.relu6(b.bn(b.conv(h, mid, mid, 3, stride, g=mid), mid))
            h = b.bn(b.conv(h, mid, c, 1), c)
            x = b.node("Add", [x, h]) if stride == 1 and cin == c else h
            cin = c
    x = b.relu6(b.bn(b.conv(x, cin, 1280, 1), 1280))
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Flatten", [x], axis=1)
    return b.gemm(x, 1280, 1000), 1000


def resnet18(b):
    x = b.node("Relu", [b.bn(b.conv("input", 3, 64, 7, 2), 64)])
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for c, s in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for i in range(2):
            stride = s if i == 0 else 1
            h = b.node("Relu", [b.bn(b.conv(x, cin, c, 3, stride), c)])
            h = b.bn(b.conv(h, c, c, 3), c)
            sc = x if (stride == 1 and cin == c) else b.bn(b.conv(x, cin, c, 1, stride), c)
            x = b.node("Relu", [b.node("Add", [h, sc])])
            cin = c
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Reshape", [x, b.const(np.array([1, -1], dtype=np.int64), "shape")])
    return b.gemm(x, 512, 100), 100


def shuffle(b, x, c, g, hw):
    x = b.node("Reshape", [x, b.const(np.array([1, g, c // g, hw, hw], dtype=np.int64), "shape")])
    x = b.node("Transpose", [x], perm=[0, 2, 1, 3, 4])
    return b.node("Reshape", [x, b.const(np.array([1, c, hw, hw], dtype=np.int64), "shape")])


def fbnet_like(b):
    x = b.node("Relu", [b.bn(b.conv("input", 3, 16, 3, 1), 16)])
    cin, hw = 16, 32
    # (k, e, g, cout, stride): FBNet ConvBlocks as in HW-NAS-Bench, one of each kind.
    for k, e, g, cout, s in [(3, 1, 2, 16, 1), (5, 6, 1, 24, 1), (3, 3, 1, 24, 1), (5, 1, 2, 32, 2), (3, 6, 1, 32, 1)]:
        mid = cin * e
        h = b.node("Relu", [b.bn(b.conv(x, cin, mid, 1, g=g), mid)])
        if g > 1:
            h = shuffle(b, h, mid, g, hw)
        h = b.node("Relu", [b.bn(b.conv(h, mid, mid, k, s, g=mid), mid)])
        hw //= s
        h = b.bn(b.conv(h, mid, cout, 1, g=g), cout)
        x = b.node("Add", [x, h]) if (s == 1 and cin == cout) else h
        cin = cout
    x = b.node("Relu", [b.bn(b.conv(x, cin, 256, 1), 256)])
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Flatten", [x], axis=1)
    return b.gemm(x, 256, 100), 100


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    for name, fn, shape, seed in [
        ("mobilenet_v2", mobilenet_v2, [1, 3, 224, 224], 1),
        ("resnet18_like", resnet18, [1, 3, 112, 112], 2),
        ("fbnet_like", fbnet_like, [1, 3, 32, 32], 3),
    ]:
        b = Builder(seed)
        out, n = fn(b)
        path = os.path.join(outdir, f"{name}.onnx")
        b.finish(name, out, shape, n, path)
        x = np.random.default_rng(seed + 100).uniform(-1, 1, shape).astype(np.float32)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        y = sess.run(None, {"input": x})[0]
        np.save(os.path.join(outdir, f"{name}.input.npy"), x)
        np.save(os.path.join(outdir, f"{name}.ort.npy"), y)
        print(f"{name}: {len(b.nodes)} nodes, output {y.shape}")


if __name__ == "__main__":
    main(sys.argv[1])
