#!/usr/bin/env bash
# The main job (grows with the recipes): today, a demo of the core from both faces —
# the C++ example built against the installed package, and the Python core ops.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(cd /tmp && python3 -c 'import lowbit; print(lowbit.cmake_prefix_path)')
cmake -S examples/cpp_linear -B build/example -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build/example >/dev/null
./build/example/cpp_linear_example
python3 examples/core_demo.py
