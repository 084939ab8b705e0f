#!/usr/bin/env bash
# Downloads the peer libraries the benchmarks compare against (torchao; wheels only, no deps) into
# .whl/ (git-ignored) for a GPU machine without network: carry .whl with the run, and
# benchmarks/gpu_check.sh installs whatever it finds there into /tmp/site before benchmarking.
#   bash benchmarks/fetch_peer_wheels.sh        # here, where pip can reach PyPI
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
# The GPU machine runs CPython 3.12 on x86-64; torchao 0.18 is built against torch 2.11 (checked:
# its quantize_ runs with this project's torch on CPU).
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "torchao==0.18.0"
ls -la .whl
