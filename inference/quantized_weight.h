// QuantizedWeight and its functions, from the quantized-weight core (csrc/quant), re-exported
// under the inference API's names.
#pragma once

#include <lowbit/inference/config.h>
#include <lowbit/quant/quantized_weight.h>

namespace lowbit::inference {

using quant::convert_quantized_weight;
using quant::dequantize_weight;
using quant::quantize_weight;
using quant::quantized_linear;
using quant::quantized_weight_from_parts;
using quant::QuantizedWeight;

}  // namespace lowbit::inference
