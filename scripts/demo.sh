#!/usr/bin/env bash
# The main demo: sample a subnet of a built-in search space, show its layers, shapes, MACs and
# parameters, run it — including an early-exit network that stops at its first exit — and price
# it on hardware targets: per layer, to each exit, with and without each gated block; rewrite it
# for a target, compile it for aarch64 with its exits and run it under qemu; time its exits.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

cargo build --release --locked --quiet
nasc=target/release/nasc
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step $nasc spaces
step $nasc sample nb201:cifar10 --seed 7 -o "$out/subnet.json"
step $nasc show "$out/subnet.json"
step $nasc run "$out/subnet.json" --random-input 1 -o "$out/scores.npy"
arch=$($nasc sample ee-mbv2:cifar10 --seed 3 --arch-only)
printf '\n\033[1m$ %s\033[0m\n' "$nasc show --space ee-mbv2:cifar10 --arch $arch"
$nasc show --space ee-mbv2:cifar10 --arch "$arch" | grep -E '^(total|exit)'
step $nasc run --space ee-mbv2:cifar10 --arch "$arch" --random-input 1 --threshold 0.0
step $nasc run --space ee-mbv2:cifar10 --arch "$arch" --random-input 1 --no-exits

step $nasc targets
step $nasc cost -t cortex-a72 "$out/subnet.json"
step $nasc cost -t eyeriss --space ee-mbv2:cifar10 --arch "$arch" --summary
garch=$($nasc sample skipnet-resnet:cifar10 --seed 3 --arch-only)
step $nasc cost -t edgetpu --space skipnet-resnet:cifar10 --arch "$garch" --summary
$nasc sample nb201:cifar10 --count 2000 --arch-only --seed 1 > "$out/archs.txt"
step $nasc cost -t cortex-a72 --space nb201:cifar10 --archs "$out/archs.txt" --summary --json > "$out/costs.json"
echo "$(grep -o "\"latency_ms\"" "$out/costs.json" | wc -l) subnet costs written as JSON"

# Rewrite it for a target (equality saturation, DAG extraction by the target's cost model).
step $nasc optimize -t eyeriss --space ee-mbv2:cifar10 --arch "$arch" -o "$out/opt.json"

# Compile the early-exit subnet for a Cortex-A72 (aarch64) with its exits in the binary, link it
# with the C harness and run it under qemu: the interpreter's output, the same exit.
step $nasc compile --target cortex-a72 --space ee-mbv2:cifar10 --arch "$arch" --emit obj,header -o "$out/a72"
aarch64-linux-gnu-gcc -O2 -static -I "$out/a72" codegen/harness/harness.c "$out/a72/model.o" -lm -o "$out/a72/run"
step $nasc run --space ee-mbv2:cifar10 --arch "$arch" --random-input 1 --save-input "$out/in.npy" -o "$out/ref.npy"
printf '\n\033[1m$ %s\033[0m\n' "qemu-aarch64 $out/a72/run in.npy out.npy   # prints the exit taken"
qemu-aarch64 "$out/a72/run" "$out/in.npy" "$out/out.npy"
python3 -c "import numpy as np, sys; a, b = np.load(sys.argv[1]).ravel(), np.load(sys.argv[2]).ravel(); print(f'aarch64 vs interpreter: max relative difference {abs(a - b).max() / abs(b).max():.1e}')" "$out/out.npy" "$out/ref.npy"
step $nasc bench exits --space ee-mbv2:cifar10 --arch "$arch" --repeats 20
