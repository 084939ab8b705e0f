#include <lowbit/qat/config.h>

#include <c10/util/Exception.h>

#include <sstream>

#include <lowbit/core/fake_quantize.h>

namespace lowbit::qat {
namespace {

bool valid_qdtype(const std::string& d) {
  for (int b = 1; b <= 8; ++b) {
    if (d == "int" + std::to_string(b) || d == "uint" + std::to_string(b)) return true;
  }
  return false;
}

const char* py_bool(bool b) { return b ? "True" : "False"; }

}  // namespace

void FakeQuantizeConfig::validate() const {
  TORCH_CHECK(valid_qdtype(dtype), "FakeQuantizeConfig: dtype '", dtype, "' is not supported; allowed: int1..int8, "
              "uint1..uint8 (strings or torch dtypes)");
  TORCH_CHECK(granularity == "per_token" || granularity == "per_channel" || granularity == "per_group",
              "FakeQuantizeConfig: granularity must be 'per_token', 'per_channel' or 'per_group', got '", granularity,
              "'");
  TORCH_CHECK(granularity != "per_group" || group_size >= 1, "FakeQuantizeConfig: granularity 'per_group' needs "
              "group_size >= 1, got ", group_size);
  TORCH_CHECK(dynamic, "FakeQuantizeConfig: only dynamic=True is supported (qparams from each forward's tensor)");
  TORCH_CHECK(zero_point_domain == "int" || (zero_point_domain == "float" && !symmetric),
              "FakeQuantizeConfig: zero_point_domain must be 'int', or 'float' with symmetric=False; got '",
              zero_point_domain, "' with symmetric=", py_bool(symmetric));
}

core::FakeQuantSpec FakeQuantizeConfig::spec() const {
  return {dtype, granularity == "per_group" ? group_size : 0, symmetric, zero_point_domain};
}

at::Tensor FakeQuantizeConfig::fake_quantize(const at::Tensor& x) const {
  std::vector<int64_t> block(x.dim(), 1);
  block.back() = granularity == "per_group" ? group_size : x.size(-1);
  return core::fake_quantize_affine(x, block, dtype, symmetric ? "symmetric" : "asymmetric", zero_point_domain);
}

std::string FakeQuantizeConfig::to_string() const {
  std::ostringstream out;
  out << "FakeQuantizeConfig(dtype='" << dtype << "', granularity='" << granularity << "'";
  if (granularity == "per_group") out << ", group_size=" << group_size;
  out << ", symmetric=" << py_bool(symmetric) << ", zero_point_domain='" << zero_point_domain << "')";
  return out.str();
}

void QATConfig::validate() const {
  if (activation) activation->validate();
  weight.validate();
  if (convert_to.defined()) convert_to.validate();
}

std::string QATConfig::method_name() const {
  return "fake_quant_" + (convert_to.defined() ? convert_to.name() : std::string("custom"));
}

std::string QATConfig::to_string() const {
  return "QATConfig(activation=" + (activation ? activation->to_string() : std::string("None")) +
         ", weight=" + weight.to_string() +
         ", convert_to=" + (convert_to.defined() ? convert_to.to_string() : std::string("None")) + ")";
}

QATConfig Int8DynActInt4WeightQATConfig(int64_t group_size) {
  QATConfig c;
  c.convert_to = inference::Int8DynamicActivationInt4WeightConfig(group_size);  // validates group_size
  c.activation = FakeQuantizeConfig{"int8", "per_token", 0, false, true, "int"};
  c.weight = FakeQuantizeConfig{"int4", "per_group", group_size, true, true, "int"};
  c.validate();
  return c;
}

QATConfig Int4WeightOnlyQATConfig(int64_t group_size) {
  QATConfig c;
  c.convert_to = inference::Int4WeightOnlyConfig(group_size);  // validates group_size (tinygemm's tiles)
  c.weight = FakeQuantizeConfig{"uint4", "per_group", group_size, false, true, "float"};
  c.validate();
  return c;
}

}  // namespace lowbit::qat
