// lowbit: low-bit dtypes for PyTorch training and inference, C++ API umbrella header.
// Link lowbit::lowbit (find_package(lowbit CONFIG REQUIRED)) and include this file.
#pragma once

#include <lowbit/build_config.h>
#include <lowbit/ops/build_info.h>
#include <lowbit/ops/affine.h>
#include <lowbit/ops/bit_packing.h>
#include <lowbit/ops/float8_cast.h>
#include <lowbit/ops/fpx.h>
#include <lowbit/nn/linear.h>
