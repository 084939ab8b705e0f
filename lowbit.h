// lowbit: low-bit dtypes for PyTorch training and inference — the C++ face's umbrella header.
// Link lowbit::lowbit (find_package(lowbit CONFIG REQUIRED)) and #include <lowbit/lowbit.h>.
// It sits at the top of the tree, beside the feature folders it includes, not in the core.
#pragma once

#include <lowbit/build_config.h>
#include <lowbit/build_info.h>

// The core: ops as C++ functions (lowbit::core), the swappable linear, file I/O.
#include <lowbit/core/adamw_lowbit.h>
#include <lowbit/core/affine.h>
#include <lowbit/core/bit_packing.h>
#include <lowbit/core/fake_quantize.h>
#include <lowbit/core/float8_cast.h>
#include <lowbit/core/float8_linear.h>
#include <lowbit/core/float8_scale.h>
#include <lowbit/core/fpx.h>
#include <lowbit/core/kernel_path.h>
#include <lowbit/core/prune_2_4.h>
#include <lowbit/core/scaled_mm.h>
#include <lowbit/core/semi_sparse_linear.h>
#include <lowbit/core/sparse_2_4.h>
#include <lowbit/io/safetensors.h>
#include <lowbit/nn/convert.h>
#include <lowbit/nn/linear.h>

// The features.
#include <lowbit/float8/config.h>
#include <lowbit/float8/convert.h>
#include <lowbit/float8/float8_linear_method.h>
#include <lowbit/inference/autoquant.h>
#include <lowbit/inference/config.h>
#include <lowbit/inference/quantize.h>
#include <lowbit/inference/quantized_linear_method.h>
#include <lowbit/inference/quantized_weight.h>
#include <lowbit/inference/serialization.h>
#include <lowbit/optim/adamw_lowbit.h>
#include <lowbit/optim/state_file.h>
#include <lowbit/qat/qat.h>
#include <lowbit/sparse/config.h>
#include <lowbit/sparse/convert.h>
#include <lowbit/sparse/semi_sparse_linear_method.h>
#include <lowbit/sparse/sparsify.h>
#include <lowbit/sparse/speed_table.h>

// Distributed (c10d process groups, fully_shard): when built with LOWBIT_DISTRIBUTED.
#if LOWBIT_WITH_DISTRIBUTED
#include <lowbit/distributed/fully_shard.h>
#include <lowbit/distributed/process_group.h>
#endif
