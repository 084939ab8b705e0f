#!/usr/bin/env bash
# The main job, at mini scale on a CPU (about seven minutes on 2 cores: 381 s measured; run scripts/setup.sh first):
#   1. the core from both faces (the C++ example against the installed package, the Python ops);
#   2. pretrain a mini Llama (7.08M parameters: 4 layers, dim 384, SwiGLU 1152, byte tokens) on
#      fortunes in C++ (lowbit-train, pretrain_mini: 650 steps of 8 x 128 bytes): float8 training
#      (emulated on a CPU) with AdamW8bit, warm-up + cosine, checkpoints, validation perplexity
#      (8.65-8.68 after 650 steps);
#   3. fine-tune it in Python (QAT when lowbit.qat is built in, else plain), quantize_ it to eleven
#      formats and autoquant, and print the table (perplexity and its change, weight SQNR, decode
#      tokens/s, weight GB/s, memory = model + run peak, size), saved with table.png and
#      loss_curves.png under outputs/finetune_mini.
# The model is sized so that reading weights is most of a decoded token (27 MiB of float32 linears,
# ~60% of a float32 step): what makes the formats' tokens/s differ; pretrain_tiny / finetune_quantize_tiny (0.87M
# parameters) are the quick variant: CONFIG=tiny bash scripts/main.sh (about 1.5 minutes).
# Overrides go to each stage through PRETRAIN_ARGS / FINETUNE_ARGS, e.g. on a GPU:
#   PRETRAIN_ARGS="train.device=cuda float8.emulate=false" FINETUNE_ARGS="train.device=cuda" bash scripts/main.sh
# Each recipe's --help lists every key it accepts.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
size="${CONFIG:-mini}"
case "$size" in mini|tiny) ;; *) echo "main.sh: CONFIG=$size; allowed: mini (the default), tiny" >&2; exit 2 ;; esac
times=""
stage_done() { times="$times${times:+, }$1 $((SECONDS - stage_start)) s"; stage_start=$SECONDS; }
stage_start=$SECONDS

echo "== 1. the core from both faces =="
prefix=$(cd /tmp && python3 -c 'import lowbit; print(lowbit.cmake_prefix_path)')
cmake -S examples/cpp_linear -B build/example -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build/example >/dev/null
./build/example/cpp_linear_example
python3 examples/core_demo.py
stage_done "core"

echo "== 2. pretrain in C++: lowbit-train (float8 + AdamW8bit) =="
bin=$(cd /tmp && python3 -c 'import lowbit_recipes; print(lowbit_recipes.bin_dir())')
"$bin/lowbit-train" --config "recipes/configs/pretrain_$size.yaml" ${PRETRAIN_ARGS:-}
stage_done "pretrain"

mode=plain
if python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("lowbit.qat") is None)' 2>/dev/null; then
  mode=qat
fi
echo "== 3. fine-tune ($mode) in Python, quantize_, compare =="
python3 -m lowbit_recipes.finetune_then_quantize --config "recipes/configs/finetune_quantize_$size.yaml" \
  "finetune.checkpoint=outputs/pretrain_$size/checkpoint" finetune.mode=$mode ${FINETUNE_ARGS:-}
stage_done "fine-tune + table"
echo "== main job done in $SECONDS s ($times; $OMP_NUM_THREADS threads): outputs/pretrain_$size (checkpoint, metrics), outputs/finetune_$size (results.md, results.json, table.png, loss_curves.png) =="
