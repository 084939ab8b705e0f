#!/usr/bin/env bash
# Everything a CUDA machine should check, in one go (target: under 10 minutes on a 16-core H100
# host with no network): build lowbit with CUDA from this checkout using only what the machine has
# (torch, nvcc, cmake, ninja, pybind11, pytest), run the Python tests (GPU tests included: CUDA
# kernels against the CPU references), run the benchmarks, and write logs, tables and JSON.
#
#   bash benchmarks/gpu_check.sh RESULTS_DIR
set -uo pipefail
out="${1:?usage: gpu_check.sh RESULTS_DIR}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
status=0

if compgen -G ".whl/*.whl" > /dev/null; then  # peers carried from benchmarks/fetch_peer_wheels.sh
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

echo "== build (CUDA) =="
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
start=$(date +%s)
cmake -S . -B build/gpu -G Ninja -DLOWBIT_CUDA=ON -DLOWBIT_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
  > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
ninja -C build/gpu > "$out/build.log" 2>&1 || { grep -B2 -A12 -m3 "error" "$out/build.log"; tail -20 "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
export PYTHONPATH="$PWD/build/gpu/python${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import lowbit; print(lowbit.build_info())"

echo "== tests (CPU references and CUDA kernels) =="
python3 -m pytest tests/python -q -p no:cacheprovider -x --junitxml="$out/pytest.xml" 2>&1 | tail -25 | tee "$out/pytest.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

echo "== benchmarks =="
for bench in benchmarks/bench_*.py; do
  name=$(basename "$bench" .py)
  timeout 240 python3 "$bench" --device cuda --out "$out/${name#bench_}.json" 2>&1 | tee "$out/${name#bench_}.txt" || status=1
done
cat "$out"/*.md > "$out/summary.md" 2>/dev/null
exit $status
