// lowbit::io safetensors reader / writer: exact round trips of every dtype, and a clear error
// for every malformed file. tests/python/test_safetensors.py cross-checks the bytes against the
// `safetensors` package through SafetensorsCrossFace below.
#include <gtest/gtest.h>

#include <ATen/TensorOperators.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <lowbit/io/safetensors.h>

namespace {

using lowbit::io::deserialize_safetensors;
using lowbit::io::serialize_safetensors;

const at::ScalarType kAllDtypes[] = {at::kDouble, at::kFloat, at::kHalf, at::kBFloat16, at::kLong, at::kInt,
                                     at::kShort, at::kChar, at::kByte, at::kBool, at::kFloat8_e4m3fn,
                                     at::kFloat8_e5m2};

// The values test_safetensors.py writes for each dtype: shape (3, 4), t = 0 .. 11.
at::Tensor expected_values(at::ScalarType dtype) {
  const at::Tensor t = at::arange(12, at::kDouble).reshape({3, 4});
  if (dtype == at::kBool) return (t.remainder(3) == 0);
  if (dtype == at::kByte) return (t * 20).to(dtype);
  if (at::isIntegralType(dtype, false)) return (t - 5).to(dtype);
  return ((t - 7) * 0.25).to(dtype);
}

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() &&
         std::memcmp(a.contiguous().const_data_ptr(), b.contiguous().const_data_ptr(), a.nbytes()) == 0;
}

// A file with the given header and `data_bytes` zero bytes of data.
std::string file_with_header(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_bytes, '\0');
}

void expect_error(const std::string& bytes, const std::string& fragment) {
  try {
    deserialize_safetensors(bytes, "test");
    ADD_FAILURE() << "no error; expected one containing '" << fragment << "'";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find(fragment), std::string::npos) << e.what_without_backtrace();
  }
}

}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  std::map<std::string, at::Tensor> tensors;
  for (at::ScalarType d : kAllDtypes) tensors[lowbit::io::safetensors_dtype_name(d)] = expected_values(d);
  tensors["empty"] = at::arange(0, at::kFloat).reshape({0, 3});
  tensors["scalar"] = at::arange(1, at::kFloat).reshape({});
  tensors["strided"] = at::arange(12, at::kFloat).reshape({3, 4}).t();  // saved contiguous
  const std::map<std::string, std::string> metadata{{"quote\"back\\slash", "ünïcødé €\n\t"}, {"n", "1"}};
  const auto back = deserialize_safetensors(serialize_safetensors(tensors, metadata));
  EXPECT_EQ(back.metadata, metadata);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) EXPECT_TRUE(same_bytes(back.tensors.at(name), t)) << name;
}

TEST(Safetensors, HeaderIsAlignedJson) {
  const std::string bytes = serialize_safetensors({{"a", at::arange(3, at::kFloat)}}, {});
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.substr(8, n).rfind("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", 0), 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 12);
}

TEST(Safetensors, MalformedFilesAreClearErrors) {
  const std::string good = serialize_safetensors({{"a", at::arange(4, at::kFloat)}, {"b", at::arange(2, at::kInt)}});
  expect_error(good.substr(0, 5), "truncated");
  expect_error(good.substr(0, 20), "truncated");
  expect_error(good.substr(0, good.size() - 1), "truncated");
  expect_error(good + "x", "belong to no tensor");
  expect_error(file_with_header("{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
               "unknown dtype 'F33'");
  expect_error(file_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4), "needs 8 bytes");
  expect_error(file_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                                8),
               "overlaps");
  expect_error(file_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "gap");
  expect_error(file_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4), "malformed");
  expect_error(file_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4),
               "non-negative integer");
  expect_error(file_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "needs dtype, shape and data_offsets");
  expect_error(file_with_header("{\"__metadata__\":{\"k\":1}}", 0), "not a string");
  expect_error(file_with_header("{\"a\":1,\"a\":2}", 0), "duplicate key");
  expect_error(file_with_header("[1]", 0), "JSON object");
  std::string huge(8, '\0');
  const uint64_t n = uint64_t(1) << 40;
  std::memcpy(huge.data(), &n, 8);
  expect_error(huge, "exceeds");
  EXPECT_THROW(lowbit::io::load_safetensors("/nonexistent/x.safetensors"), c10::Error);
}

TEST(Safetensors, WritesAndReadsFiles) {
  const std::string path = ::testing::TempDir() + "/lowbit_st_roundtrip.safetensors";
  const at::Tensor t = expected_values(at::kBFloat16);
  lowbit::io::save_safetensors(path, {{"t", t}}, {{"k", "v"}});
  const auto back = lowbit::io::load_safetensors(path);
  EXPECT_TRUE(same_bytes(back.tensors.at("t"), t));
  EXPECT_EQ(back.metadata.at("k"), "v");
  std::remove(path.c_str());
}

// Run by tests/python/test_safetensors.py with LOWBIT_SAFETENSORS_DIR set: reads the file the
// `safetensors` package wrote, checks every value, and writes the same tensors back for Python.
TEST(SafetensorsCrossFace, ReadsPythonFileWritesCppFile) {
  const char* dir = std::getenv("LOWBIT_SAFETENSORS_DIR");
  if (dir == nullptr) GTEST_SKIP() << "driven by tests/python/test_safetensors.py";
  const auto py = lowbit::io::load_safetensors(std::string(dir) + "/python.safetensors");
  std::map<std::string, at::Tensor> out;
  for (at::ScalarType d : kAllDtypes) {
    const std::string name = lowbit::io::safetensors_dtype_name(d);
    ASSERT_TRUE(py.tensors.count(name)) << name;
    EXPECT_TRUE(same_bytes(py.tensors.at(name), expected_values(d))) << name;
    out[name] = expected_values(d);
  }
  EXPECT_EQ(py.metadata.at("note"), "quote \" backslash \\ ünï €");
  lowbit::io::save_safetensors(std::string(dir) + "/cpp.safetensors", out, py.metadata);
}
