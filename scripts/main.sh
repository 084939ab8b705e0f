#!/usr/bin/env bash
# The main job, at tiny scale on a CPU (about ten minutes on 2 cores; run scripts/setup.sh first):
#   1. the core from both faces (the C++ example against the installed package, the Python ops);
#   2. pretrain a tiny Llama (0.87M parameters) on fortunes in C++ (lowbit-train, 300 steps): float8
#      training (emulated on a CPU) with AdamW8bit, warm-up + cosine, checkpoints, validation perplexity;
#   3. fine-tune it in Python (QAT when lowbit.qat is built in, else plain), quantize_ it to eleven
#      formats and autoquant, and print the table (perplexity and its change, weight SQNR, decode
#      tokens/s, weight GB/s, memory = model + run peak, size), saved with table.png and
#      loss_curves.png under outputs/finetune_tiny.
# Overrides go to each stage through PRETRAIN_ARGS / FINETUNE_ARGS, e.g. on a GPU:
#   PRETRAIN_ARGS="train.device=cuda float8.emulate=false" FINETUNE_ARGS="train.device=cuda" bash scripts/main.sh
# Each recipe's --help lists every key it accepts.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"

echo "== 1. the core from both faces =="
prefix=$(cd /tmp && python3 -c 'import lowbit; print(lowbit.cmake_prefix_path)')
cmake -S examples/cpp_linear -B build/example -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build/example >/dev/null
./build/example/cpp_linear_example
python3 examples/core_demo.py

echo "== 2. pretrain in C++: lowbit-train (float8 + AdamW8bit) =="
bin=$(cd /tmp && python3 -c 'import lowbit_recipes; print(lowbit_recipes.bin_dir())')
"$bin/lowbit-train" --config recipes/configs/pretrain_tiny.yaml ${PRETRAIN_ARGS:-}

mode=plain
if python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("lowbit.qat") is None)' 2>/dev/null; then
  mode=qat
fi
echo "== 3. fine-tune ($mode) in Python, quantize_, compare =="
python3 -m lowbit_recipes.finetune_then_quantize --config recipes/configs/finetune_quantize_tiny.yaml \
  finetune.checkpoint=outputs/pretrain_tiny/checkpoint finetune.mode=$mode ${FINETUNE_ARGS:-}
echo "== main job done in $SECONDS s: outputs/pretrain_tiny (checkpoint, metrics), outputs/finetune_tiny (results.md, results.json, table.png, loss_curves.png) =="
