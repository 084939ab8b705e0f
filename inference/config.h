// quantize_'s configs and their string shorthands. They are the quantized-weight core's
// (csrc/quant/config.h: one format per file, one table), re-exported here under the names the
// inference API has always had; the Python classes are the same objects, bound through lowbit._C.
#pragma once

#include <lowbit/quant/config.h>

namespace lowbit::inference {

using quant::QuantizeConfig;
using quant::QuantParam;
using quant::QuantParams;

using quant::Float8DynamicActivationFloat8WeightConfig;
using quant::Float8WeightOnlyConfig;
using quant::FPXWeightOnlyConfig;
using quant::Int4WeightOnlyConfig;
using quant::Int8DynamicActivationInt4WeightConfig;
using quant::Int8DynamicActivationInt8WeightConfig;
using quant::Int8WeightOnlyConfig;
using quant::UIntXWeightOnlyConfig;
using quant::SemiSparseWeightConfig;

using quant::make_quantize_config;
using quant::parse_quantize_config;
using quant::quantize_shorthands;
using quant::unsupported_reason;
using quant::weight_dtype_from_name;
using quant::weight_dtype_name;

}  // namespace lowbit::inference
