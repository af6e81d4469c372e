#!/usr/bin/env bash
# All checks, the same as CI: formatting, warnings-as-errors build with clippy, every test,
# and the docs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy -D warnings" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test" >&2
cargo test --workspace --locked
echo "== python package (maturin build, pytest)" >&2
python3 -m pip install --quiet --disable-pip-version-check ./python >&2 ||
  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages ./python >&2
(cd python && python3 -m pytest -q tests)
echo "== benchmark statistics (pytest)" >&2
python3 -m pytest -q -p no:cacheprovider benches/test_peers.py
echo "== cargo doc" >&2
# nasc-python is left out: rustdoc 1.95 hits an internal error on the numpy crate's links there.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --exclude nasc-python --no-deps --locked --quiet
echo "== all checks passed" >&2
