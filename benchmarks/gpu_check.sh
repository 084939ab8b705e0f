#!/usr/bin/env bash
# Everything a lent CUDA machine should check, sized for one run of at most ~9 minutes (a session
# has 15 device-minutes, the machine's start included, and room must stay for one rerun):
#
#   tier 1 (~5 min)  build: link the Python extension against a carried liblowbit built here with
#                    CUDA (benchmarks/gpu_prebuild.sh) if it matches these sources and loads, else a
#                    full CUDA build; the build time is printed. Then every GPU test (pytest -m cuda:
#                    tests marked `cuda`, or skipped for want of a GPU; no -x, failures listed with
#                    -rfE), then compute-sanitizer memcheck over benchmarks/gpu_smoke.py (one small
#                    call of every kernel path).
#   tier 2 (~4 min)  every benchmarks/bench_*.py that takes --quick and --device, run with
#                    `--quick --device cuda`, each capped at its fair share of what is left (rows
#                    measured before a cap still count: benchmarks/runner.py writes them as they land).
#
# Results: at most 8 files in RESULTS_DIR (the device tool brings back no more), summary.md first
# (printed at the end too): summary.md, build.log, tests.log, junit.xml, sanitizer.log,
# benchmarks.log, benchmarks.md, benchmarks.json. Exit status 1 if anything failed (build, a test,
# the smoke or memcheck, a benchmark's error, too many files); benchmarks cut at their cap are
# listed, not failures.
#
#   bash benchmarks/gpu_check.sh RESULTS_DIR                 # on the GPU machine: both tiers
#   bash benchmarks/gpu_check.sh --tier 1 RESULTS_DIR        # a rerun of tier 1 only (or --tier 2)
#   bash benchmarks/gpu_check.sh --dry-run RESULTS_DIR       # on a CPU machine: the plumbing (below)
#   bash benchmarks/gpu_check.sh --print-source-hash         # what a carried prebuilt library must match
#
# --dry-run (CI runs it): no build (the lowbit that python3 imports, e.g. the one scripts/setup.sh
# installed, or PYTHONPATH's), GPU tests collected but not run, gpu_smoke.py on the CPU without
# compute-sanitizer (whose presence is reported), every benchmark with --quick --device cpu, and
# the same results files, checked to be at most 8.
# Options: --budget SECONDS (whole run, default 540), --tier1-end SECONDS (default 330),
# --bench-cap SECONDS (per benchmark, default 120), --pytest-args "ARGS" (extra, e.g. "-k scaled_mm"),
# --device cpu (the GPU path's own logic on a CPU machine: builds, runs the skipped GPU tests,
# the smoke and the benchmarks on the CPU; for testing this script).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

dry_run=0 tier=all budget=540 tier1_end=330 bench_cap=120 pytest_extra="" out="" dev=cuda
while (($#)); do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --tier) tier="$2"; shift ;;
    --budget) budget="$2"; shift ;;
    --tier1-end) tier1_end="$2"; shift ;;
    --bench-cap) bench_cap="$2"; shift ;;
    --pytest-args) pytest_extra="$2"; shift ;;
    --device) dev="$2"; shift ;;
    --print-source-hash) print_hash=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    -*) echo "gpu_check.sh: unknown option $1" >&2; exit 2 ;;
    *) out="$1" ;;
  esac
  shift
done

# The sources liblowbit is built from (not the Python bindings, which are built on the GPU machine).
source_hash() {
  find csrc float8 qat optim sparse inference distributed cmake -type f \
      \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.in' -o -name '*.cmake' \) \
      2>/dev/null | LC_ALL=C sort | xargs sha256sum | cat - CMakeLists.txt lowbit.h | sha256sum | cut -c1-16
}
if [ "${print_hash:-0}" = 1 ]; then source_hash; exit 0; fi
[ -n "$out" ] || { echo "usage: gpu_check.sh [--dry-run] [--tier 1|2|all] RESULTS_DIR" >&2; exit 2; }
case "$tier" in 1|2|all) ;; *) echo "gpu_check.sh: --tier is 1, 2 or all" >&2; exit 2 ;; esac

mkdir -p "$out"
out=$(cd "$out" && pwd)
for f in summary.md build.log tests.log junit.xml sanitizer.log benchmarks.log benchmarks.md benchmarks.json; do
  rm -f "$out/$f"  # an earlier run's; anything else in the folder is counted and reported
done
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
export PYTHONUNBUFFERED=1
steps="$work/steps.tsv"  # one line per step: name <TAB> status <TAB> seconds <TAB> detail
: > "$steps"
SECONDS=0
step() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$steps"; echo "[gpu_check ${SECONDS}s] $1: $2 ($3 s) $4"; }
left() { echo $((budget - SECONDS)); }
clamp() { local v=$1 lo=$2 hi=$3; ((v < lo)) && v=$lo; ((v > hi)) && v=$hi; echo "$v"; }
has_py() { python3 -c "import $1" >/dev/null 2>&1; }

if ((dry_run)); then
  dev=cpu
  device="dry run on $(uname -n) (no GPU used)"
elif [ "$dev" = cuda ]; then
  device=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)
else
  device="$dev on $(uname -n) (--device $dev: this script's GPU path, run on the CPU)"
fi
echo "[gpu_check] $device; budget ${budget}s, tier $tier, results in $out"

if compgen -G ".whl/*.whl" > /dev/null; then  # peers carried from benchmarks/fetch_peer_wheels.sh
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

# ---- build -------------------------------------------------------------------------------------
# Imports lowbit from PYTHONPATH and runs one kernel on the device (on CUDA: lowbit's own kernel).
check_import() {
  python3 -c "import lowbit, torch
dev = '$dev'
assert dev != 'cuda' or lowbit.build_info()['cuda'], 'this lowbit was built without CUDA kernels'
lowbit.core.cast_to_float8(torch.randn(4, 8, device=dev))
torch.cuda.synchronize() if dev == 'cuda' else None
print('lowbit', lowbit.__file__, lowbit.build_info())"
}

full_build() {
  cmake -S . -B build/gpu -G Ninja -DLOWBIT_CUDA=ON -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_RECIPES=OFF \
        -DLOWBIT_PREBUILT_LIBRARY= -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$(command -v python3)" >> "$out/build.log" 2>&1 &&
    timeout $(( budget - 60 > 120 ? budget - 60 : 120 )) ninja -C build/gpu -j"$(nproc)" >> "$out/build.log" 2>&1
}

: > "$out/build.log"
build_ok=1
if ((dry_run)); then
  mode="skipped (dry run)"
  [ -d "$ROOT/build/cpu/python/lowbit" ] && [ -z "${LOWBIT_DRY_RUN_INSTALLED:-}" ] \
    && export PYTHONPATH="$ROOT/build/cpu/python${PYTHONPATH:+:$PYTHONPATH}" && mode="skipped (dry run): build/cpu"
  hash=$(source_hash)
  if [ -f .gpu_prebuilt/manifest.txt ]; then
    grep -q "^source_hash=$hash$" .gpu_prebuilt/manifest.txt && pre="matches these sources" || pre="stale (sources changed)"
  else
    pre="none (benchmarks/gpu_prebuild.sh makes one)"
  fi
  if check_import >> "$out/build.log" 2>&1; then
    step build ok 0 "$mode; source hash $hash; carried prebuilt: $pre"
  else
    step build FAILED 0 "$mode: python3 cannot import lowbit (see build.log)"; build_ok=0
  fi
else
  t0=$SECONDS
  hash=$(source_hash)
  mode=""
  if [ -f .gpu_prebuilt/liblowbit.so ] && grep -q "^source_hash=$hash$" .gpu_prebuilt/manifest.txt 2>/dev/null; then
    echo "== prebuilt liblowbit (source hash $hash): building the Python extension only ==" >> "$out/build.log"
    if cmake -S . -B build/gpu -G Ninja -DLOWBIT_CUDA=OFF -DLOWBIT_BUILD_TESTS=OFF -DLOWBIT_BUILD_RECIPES=OFF \
         -DLOWBIT_PREBUILT_LIBRARY="$ROOT/.gpu_prebuilt/liblowbit.so" -DCMAKE_BUILD_TYPE=Release \
         -DPython_EXECUTABLE="$(command -v python3)" >> "$out/build.log" 2>&1 &&
       ninja -C build/gpu -j"$(nproc)" >> "$out/build.log" 2>&1 &&
       PYTHONPATH="$ROOT/build/gpu/python${PYTHONPATH:+:$PYTHONPATH}" check_import >> "$out/build.log" 2>&1; then
      mode="prebuilt liblowbit + extension"
    else
      echo "== the prebuilt library did not build or load (above); full build ==" >> "$out/build.log"
      rm -rf build/gpu
    fi
  elif [ -f .gpu_prebuilt/liblowbit.so ]; then
    echo "== carried prebuilt is stale (its manifest: $(grep source_hash .gpu_prebuilt/manifest.txt), sources: $hash); full build ==" >> "$out/build.log"
  fi
  if [ -z "$mode" ]; then
    if full_build && PYTHONPATH="$ROOT/build/gpu/python${PYTHONPATH:+:$PYTHONPATH}" check_import >> "$out/build.log" 2>&1; then
      mode="full CUDA build (-j$(nproc))"
    else
      build_ok=0
    fi
  fi
  export PYTHONPATH="$ROOT/build/gpu/python${PYTHONPATH:+:$PYTHONPATH}"
  if ((build_ok)); then
    step build ok $((SECONDS - t0)) "$mode"
  else
    step build FAILED $((SECONDS - t0)) "$(grep -m3 -E 'error|Error' "$out/build.log" | tr '\t' ' ' | cut -c1-300 | paste -sd' ')"
  fi
fi
echo "[gpu_check] build: $(tail -1 "$steps" | cut -f2-3 | tr '\t' ' ') s"

# ---- tier 1: GPU tests, then memcheck over the smoke script ----------------------------------------
if ((build_ok)) && [ "$tier" != 2 ]; then
  t0=$SECONDS
  if ((dry_run)); then
    python3 -m pytest tests/python -m cuda --collect-only -q -p no:cacheprovider $pytest_extra > "$out/tests.log" 2>&1
    rc=$?
    collected=$(grep -oE '^[0-9]+(/[0-9]+)? tests? (collected|selected)' "$out/tests.log" | tail -1)
    [ -n "$collected" ] || collected=$(grep -cE '::' "$out/tests.log")
    printf '<testsuites/>\n' > "$out/junit.xml"
    if [ "$rc" = 0 ] && grep -q 'test_float8_cuda.py::' "$out/tests.log"; then
      step tests ok $((SECONDS - t0)) "collected only (dry run): ${collected:-?} (GPU tests / all)"
    else
      step tests FAILED $((SECONDS - t0)) "collection failed or found no GPU tests (rc $rc; see tests.log)"
    fi
  else
    cap=$(clamp $((tier1_end - SECONDS - 75)) 90 $(( $(left) - 30 )))
    par=() threads=${OMP_NUM_THREADS:-}
    if has_py xdist; then par=(-n "$(clamp $(( $(nproc) / 2 )) 1 8)"); threads=2; fi  # CPU references share the cores
    tmo=()
    if has_py pytest_timeout; then tmo=(--timeout 240); fi
    echo "[gpu_check] pytest -m cuda ${par[*]} ${tmo[*]} (cap ${cap}s)"
    OMP_NUM_THREADS=${threads:-$(nproc)} timeout -s INT -k 30 "$cap" \
      python3 -m pytest tests/python -m cuda -rfE -q -p no:cacheprovider "${par[@]}" \
        "${tmo[@]}" --junitxml="$out/junit.xml" $pytest_extra > "$out/tests.log" 2>&1
    rc=$?
    summary=$(grep -E '[0-9]+ (passed|failed|skipped|errors?|deselected)|no tests ran' "$out/tests.log" | tail -1 | tr -d '=' | sed 's/^ *//;s/ *$//')
    case $rc in
      0) step tests ok $((SECONDS - t0)) "$summary" ;;
      124|130) step tests FAILED $((SECONDS - t0)) "stopped at the ${cap}s cap: $summary" ;;
      *) step tests FAILED $((SECONDS - t0)) "${summary:-pytest exited $rc}" ;;
    esac
  fi

  t0=$SECONDS
  if ((dry_run)); then
    sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
    python3 benchmarks/gpu_smoke.py --device "$dev" > "$out/sanitizer.log" 2>&1
    rc=$?
    line=$(grep -E '^# gpu_smoke:' "$out/sanitizer.log" | tail -1 | sed 's/^# //')
    [ "$rc" = 0 ] && st=ok || st=FAILED
    step smoke "$st" $((SECONDS - t0)) "${line:-no summary}; on the CPU, without compute-sanitizer (${sanitizer:-not installed here})"
  else
    cap=$(clamp $((tier1_end - SECONDS)) 45 150)
    sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
    [ "$dev" = cuda ] || sanitizer=""
    if [ -n "$sanitizer" ]; then
      PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout -k 10 "$cap" "$sanitizer" --tool memcheck --error-exitcode 3 \
          --print-limit 20 python3 benchmarks/gpu_smoke.py --device cuda > "$out/sanitizer.log" 2>&1
      rc=$?
      errors=$(grep -E 'ERROR SUMMARY' "$out/sanitizer.log" | tail -1 | sed 's/=* *//')
      line=$(grep -E '^# gpu_smoke:' "$out/sanitizer.log" | tail -1 | sed 's/^# //')
      if grep -qiE 'device not supported|unable to|not supported on this' "$out/sanitizer.log" && [ -z "$errors" ]; then
        step memcheck REFUSED $((SECONDS - t0)) "compute-sanitizer refused this machine: $(grep -m1 -iE 'not supported|unable' "$out/sanitizer.log" | cut -c1-200)"
        python3 benchmarks/gpu_smoke.py --device "$dev" >> "$out/sanitizer.log" 2>&1 && st=ok || st=FAILED
        step smoke "$st" 0 "without memcheck: $(grep -E '^# gpu_smoke:' "$out/sanitizer.log" | tail -1 | sed 's/^# //')"
      else
        case $rc in
          0) step memcheck ok $((SECONDS - t0)) "${errors:-no ERROR SUMMARY line}; ${line}" ;;
          124) step memcheck FAILED $((SECONDS - t0)) "stopped at the ${cap}s cap; ${line:-smoke unfinished}" ;;
          3) step memcheck FAILED $((SECONDS - t0)) "${errors}; ${line}" ;;
          *) step memcheck FAILED $((SECONDS - t0)) "exit $rc; ${errors}; ${line:-smoke did not finish}" ;;
        esac
      fi
    else
      python3 benchmarks/gpu_smoke.py --device "$dev" > "$out/sanitizer.log" 2>&1 && st=ok || st=FAILED
      step smoke "$st" $((SECONDS - t0)) "compute-sanitizer not found or not for $dev: smoke without memcheck; $(grep -E '^# gpu_smoke:' "$out/sanitizer.log" | tail -1 | sed 's/^# //')"
    fi
  fi
else
  [ "$tier" != 2 ] && step tests SKIPPED 0 "no build"
  printf '<testsuites/>\n' > "$out/junit.xml"
  : > "$out/tests.log"
  : > "$out/sanitizer.log"
fi

# ---- tier 2: benchmarks ------------------------------------------------------------------------
: > "$out/benchmarks.log"
mkdir -p "$work/bench"
if ((build_ok)) && [ "$tier" != 1 ]; then
  benches=()
  for b in benchmarks/bench_*.py; do
    if grep -q -- '--quick' "$b" && grep -q -- '--device' "$b"; then
      benches+=("$b")
    else
      step "bench $(basename "$b" .py)" SKIPPED 0 "takes no --quick / --device"
    fi
  done
  n=${#benches[@]}
  for b in "${benches[@]}"; do
    name=$(basename "$b" .py)
    reserve=20  # for the report
    cap=$(( ($(left) - reserve) / n ))
    ((dry_run)) && cap=$bench_cap || cap=$(clamp "$cap" 0 "$bench_cap")
    n=$((n - 1))
    if ((cap < 15)); then
      step "bench $name" SKIPPED 0 "no time left in the budget"
      continue
    fi
    t0=$SECONDS
    echo "===== $name: --quick --device $dev (cap ${cap}s) =====" >> "$out/benchmarks.log"
    LOWBIT_BENCH_DIR="$work/bench/$name" timeout -s INT -k 10 "$cap" \
        python3 "$b" --quick --device "$dev" >> "$out/benchmarks.log" 2>&1
    rc=$?
    rows=$(cat "$work/bench/$name"/*.json 2>/dev/null | grep -c '"case"')
    case $rc in
      0) step "bench $name" ok $((SECONDS - t0)) "$rows rows" ;;
      124|130) step "bench $name" CAPPED $((SECONDS - t0)) "stopped at its ${cap}s cap; $rows rows measured before" ;;
      *) step "bench $name" FAILED $((SECONDS - t0)) "exit $rc; $rows rows; $(grep -E 'Error|error' "$out/benchmarks.log" | tail -1 | cut -c1-200)" ;;
    esac
  done
fi

# ---- report ------------------------------------------------------------------------------------
python3 benchmarks/gpu_check_report.py --work "$work" --out "$out" --device "$device" \
    --elapsed "$SECONDS" --budget "$budget" $( ((dry_run)) && echo --dry-run )
rc=$?
rm -rf "$work"
echo
cat "$out/summary.md"
exit $rc
