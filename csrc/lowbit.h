// lowbit: low-bit dtypes for PyTorch training and inference, C++ API umbrella header.
// Link lowbit::lowbit (find_package(lowbit CONFIG REQUIRED)) and include this file.
#pragma once

#include <lowbit/build_config.h>
#include <lowbit/ops/build_info.h>
#include <lowbit/ops/affine.h>
#include <lowbit/ops/bit_packing.h>
#include <lowbit/ops/float8_cast.h>
#include <lowbit/ops/fpx.h>
#include <lowbit/ops/float8_linear.h>
#include <lowbit/ops/scaled_mm.h>
#include <lowbit/nn/convert.h>
#include <lowbit/nn/linear.h>
#include <lowbit/float8/config.h>
#include <lowbit/float8/convert.h>
#include <lowbit/float8/float8_linear_method.h>
#include <lowbit/ops/quantized_linear.h>
#include <lowbit/ops/fake_quantize.h>
#include <lowbit/inference/config.h>
#include <lowbit/inference/quantized_weight.h>
#include <lowbit/inference/quantized_linear_method.h>
#include <lowbit/inference/quantize.h>
#include <lowbit/inference/serialization.h>
#include <lowbit/inference/autoquant.h>
#include <lowbit/qat/qat.h>
#include <lowbit/ops/adamw_lowbit.h>
#include <lowbit/io/safetensors.h>
#include <lowbit/optim/adamw_lowbit.h>
#include <lowbit/optim/state_file.h>
