#!/usr/bin/env bash
# Runs every test of lowbit against the build that scripts/setup.sh made: GoogleTest through
# ctest, the C++ example built against the INSTALLED package (find_package(lowbit)), pytest,
# the CPU benchmark suite's smoke run (benchmarks/suite.py --cpu --quick) and the dry run of
# benchmarks/gpu_check.sh (which runs every benchmark's smoke run on the CPU).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

echo "== GoogleTest (ctest) =="
ctest --test-dir build/wheel --output-on-failure -j2

echo "== C++ example against the installed package =="
prefix=$(cd /tmp && python3 -c 'import lowbit; print(lowbit.cmake_prefix_path)')
# CUDAToolkit disabled: lowbitConfig.cmake must configure on a machine without the toolkit (and for a
# CPU-only build), since the CUDA libraries are liblowbit's private dependencies.
cmake -S examples/cpp_linear -B build/example -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=TRUE --no-warn-unused-cli >/dev/null
cmake --build build/example
./build/example/cpp_linear_example

echo "== pytest =="
python3 -m pytest tests/python -q -p no:cacheprovider

echo "== CPU benchmark suite, smoke run =="
python3 benchmarks/suite.py --cpu --quick --out build/cpu_suite_smoke

echo "== GPU check, dry run: every benchmark's CPU smoke run (--quick --device cpu), GPU tests collected, =="
echo "== the kernel smoke script on the CPU, the results folder (<= 8 files) =="
rm -rf build/gpu_check_dry
LOWBIT_DRY_RUN_INSTALLED=1 bash benchmarks/gpu_check.sh --dry-run build/gpu_check_dry
