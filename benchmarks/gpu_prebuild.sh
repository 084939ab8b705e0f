#!/usr/bin/env bash
# Builds liblowbit with its CUDA kernels HERE (nvcc 13 and the same torch 2.11 wheel as the GPU
# machine; minutes that would otherwise come out of the device budget) and leaves it, stripped,
# with a manifest in .gpu_prebuilt/ (git-ignored). Carry it with the device run:
#
#   bash benchmarks/gpu_prebuild.sh                      # here, after the last source edit
#   device run: carry [".gpu_prebuilt"], command "bash benchmarks/gpu_check.sh $OUT"
#
# gpu_check.sh then compiles only the Python extension (Python there may differ from here) against
# it, if the manifest's source hash equals that of the sources it was sent and the library loads
# and runs a CUDA kernel; otherwise it says why and does the full CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
start=$(date +%s)
# The README's CUDA build folder and flags, so this and a developer's compile check share objects.
cmake -S . -B build/cuda -G Ninja -DLOWBIT_CUDA=ON -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_RECIPES=OFF \
      -DLOWBIT_PREBUILT_LIBRARY= > /dev/null
ninja -C build/cuda -j"${JOBS:-2}" lowbit
mkdir -p .gpu_prebuilt
cp build/cuda/liblowbit.so .gpu_prebuilt/liblowbit.so
strip --strip-unneeded .gpu_prebuilt/liblowbit.so
{
  echo "source_hash=$(bash benchmarks/gpu_check.sh --print-source-hash)"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo '+dirty')"
  echo "torch=$(python3 -c 'import torch; print(torch.__version__)')"
  echo "nvcc=$(nvcc --version 2>/dev/null | grep -oE 'release [0-9.]+' || /usr/local/cuda/bin/nvcc --version | grep -oE 'release [0-9.]+')"
  echo "archs=$(grep -E '^LOWBIT_CUDA_ARCHS' build/cuda/CMakeCache.txt | cut -d= -f2)"
  echo "built=$(date -u +%Y-%m-%dT%H:%MZ) in $(( $(date +%s) - start )) s"
} > .gpu_prebuilt/manifest.txt
cat .gpu_prebuilt/manifest.txt
ls -la .gpu_prebuilt
