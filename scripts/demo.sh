#!/usr/bin/env bash
# The main demo: sample a subnet of a built-in search space, show its layers, shapes, MACs and
# parameters, and run it — including an early-exit network that stops at its first exit.
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
step $nasc show --space ee-mbv2:cifar10 --arch "$arch" --json | grep -E '"(macs|params|macs_to_exit|name)"' | head -n 12
step $nasc run --space ee-mbv2:cifar10 --arch "$arch" --random-input 1 --threshold 0.0
step $nasc run --space ee-mbv2:cifar10 --arch "$arch" --random-input 1 --no-exits
