#!/usr/bin/env bash
# Runs every test of lowbit against the build that scripts/setup.sh made: GoogleTest through
# ctest, the C++ example built against the INSTALLED package (find_package(lowbit)), pytest,
# and the benchmarks' smoke run. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

echo "== GoogleTest (ctest) =="
ctest --test-dir build/wheel --output-on-failure -j2

echo "== C++ example against the installed package =="
prefix=$(cd /tmp && python3 -c 'import lowbit; print(lowbit.cmake_prefix_path)')
cmake -S examples/cpp_linear -B build/example -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build/example
./build/example/cpp_linear_example

echo "== pytest =="
python3 -m pytest tests/python -q -p no:cacheprovider

echo "== benchmarks (smoke run on CPU) =="
python3 benchmarks/bench_float8_cast.py --device cpu --quick --out build/bench_smoke/float8_cast.json
python3 benchmarks/bench_float8_linear.py --device cpu --quick --out build/bench_smoke/float8_linear.json
python3 benchmarks/bench_quantize.py --device cpu --quick --out build/bench_smoke/quantize.json
python3 benchmarks/bench_sparse.py --device cpu --quick --out build/bench_smoke/sparse.json
