# shellcheck shell=bash
# Sourced by scripts/demo.sh and scripts/test.sh: installs the system packages nasc needs when
# they are missing (Debian 12) and sets the environment LLVM needs. Idempotent and quiet when
# everything is present.

NASC_APT_PACKAGES=(
  llvm-19-dev libpolly-19-dev libzstd-dev zlib1g-dev
  qemu-user
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross
)

nasc_missing_packages() {
  local p
  for p in "${NASC_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

nasc_setup() {
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -f "$HOME/.cargo/env" ]; then
      # shellcheck disable=SC1091
      . "$HOME/.cargo/env"
    else
      echo "error: cargo not found; install Rust with rustup first" >&2
      return 1
    fi
  fi
  if command -v dpkg-query >/dev/null 2>&1; then
    local missing
    missing=$(nasc_missing_packages | tr '\n' ' ')
    if [ -n "${missing// /}" ]; then
      echo "setup: installing missing system packages: $missing" >&2
      local sudo=""
      if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
          echo "error: need root (or sudo) to install: $missing" >&2
          return 1
        fi
      fi
      # shellcheck disable=SC2086
      $sudo apt-get update -qq >&2 &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2 || {
        echo "error: apt-get could not install: $missing" >&2
        return 1
      }
    fi
  else
    echo "setup: not a Debian system; make sure LLVM 19, qemu-user and the aarch64/riscv64 cross gcc are installed" >&2
  fi
  # Python packages the ONNX tests use to build models independently of nasc and to run them
  # with ONNX Runtime (the reference the importer is checked against).
  if ! command -v python3 >/dev/null 2>&1; then
    echo "error: python3 not found (Debian: apt-get install python3 python3-pip)" >&2
    return 1
  fi
  if ! python3 -c "import numpy, onnx, onnxruntime, pytest" >/dev/null 2>&1; then
    echo "setup: installing python packages: numpy onnx onnxruntime pytest" >&2
    python3 -m pip install --quiet --disable-pip-version-check numpy onnx onnxruntime pytest >&2 ||
      python3 -m pip install --quiet --disable-pip-version-check --break-system-packages numpy onnx onnxruntime pytest >&2 || {
      echo "error: pip could not install numpy onnx onnxruntime pytest" >&2
      return 1
    }
  fi
  export LLVM_SYS_191_PREFIX="${LLVM_SYS_191_PREFIX:-/usr/lib/llvm-19}"
}

nasc_setup
