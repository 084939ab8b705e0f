// safetensors reader / writer (format and checks: see safetensors.h). The header is parsed by
// lowbit's strict JSON reader (io/json.h); everything the format needs is then checked before
// any data is read.
#include <lowbit/io/safetensors.h>

#include <lowbit/io/json.h>

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; this host is not");

namespace lowbit::io {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the limit the reference implementation uses

struct DtypeEntry {
  const char* name;
  at::ScalarType dtype;
};

constexpr DtypeEntry kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat},  {"F16", at::kHalf},  {"BF16", at::kBFloat16},
    {"I64", at::kLong},   {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},
    {"U8", at::kByte},    {"BOOL", at::kBool},  {"F8_E4M3", at::kFloat8_e4m3fn}, {"F8_E5M2", at::kFloat8_e5m2},
};

std::string allowed_dtype_names() {
  std::string s;
  for (const auto& d : kDtypes) s += (s.empty() ? "" : " ") + std::string(d.name);
  return s;
}

// A non-negative JSON integer (shape entries and offsets).
uint64_t to_uint(const Json& v, const std::string& what, const std::string& source) {
  bool ok = v.kind == Json::Number && !v.text.empty() && v.text.size() <= 19 &&
            std::all_of(v.text.begin(), v.text.end(), [](char c) { return c >= '0' && c <= '9'; });
  TORCH_CHECK(ok, "safetensors: malformed header in ", source, ": ", what, " must be a non-negative integer, got '",
              v.kind == Json::Number ? v.text : std::string("a non-number"), "'");
  return std::stoull(v.text);
}


// One tensor entry of the header, validated.
struct Entry {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& name, const Json& v, const std::string& source) {
  TORCH_CHECK(v.kind == Json::Object, "safetensors: malformed header in ", source, ": entry '", name,
              "' is not an object");
  for (const auto& f : v.fields)
    TORCH_CHECK(f.first == "dtype" || f.first == "shape" || f.first == "data_offsets", "safetensors: malformed header in ",
                source, ": entry '", name, "' has unknown field '", f.first, "'");
  const Json* dtype = v.find("dtype");
  const Json* shape = v.find("shape");
  const Json* offsets = v.find("data_offsets");
  TORCH_CHECK(dtype && shape && offsets, "safetensors: malformed header in ", source, ": entry '", name,
              "' needs dtype, shape and data_offsets");
  Entry e{name, at::kFloat, {}, 0, 0};
  TORCH_CHECK(dtype->kind == Json::String, "safetensors: malformed header in ", source, ": dtype of '", name,
              "' is not a string");
  bool known = false;
  for (const auto& d : kDtypes) {
    if (dtype->text == d.name) {
      e.dtype = d.dtype;
      known = true;
    }
  }
  TORCH_CHECK(known, "safetensors: ", source, ": tensor '", name, "' has unknown dtype '", dtype->text,
              "'; supported: ", allowed_dtype_names());
  TORCH_CHECK(shape->kind == Json::Array, "safetensors: malformed header in ", source, ": shape of '", name,
              "' is not an array");
  uint64_t numel = 1;
  for (const Json& d : shape->items) {
    const uint64_t n = to_uint(d, "a shape entry of '" + name + "'", source);
    TORCH_CHECK(n <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                    (n == 0 || numel <= std::numeric_limits<uint64_t>::max() / n),
                "safetensors: ", source, ": shape of '", name, "' overflows");
    numel *= n;
    e.shape.push_back(static_cast<int64_t>(n));
  }
  TORCH_CHECK(offsets->kind == Json::Array && offsets->items.size() == 2, "safetensors: malformed header in ", source,
              ": data_offsets of '", name, "' must be [begin, end]");
  e.begin = to_uint(offsets->items[0], "data_offsets of '" + name + "'", source);
  e.end = to_uint(offsets->items[1], "data_offsets of '" + name + "'", source);
  const uint64_t item = c10::elementSize(e.dtype);
  TORCH_CHECK(numel <= std::numeric_limits<uint64_t>::max() / item, "safetensors: ", source, ": '", name,
              "' is too large");
  TORCH_CHECK(e.begin <= e.end && e.end - e.begin == numel * item, "safetensors: ", source, ": tensor '", name,
              "' of dtype ", dtype->text, " and shape ", c10::IntArrayRef(e.shape), " needs ", numel * item,
              " bytes but its data_offsets [", e.begin, ", ", e.end, "] span ",
              e.end >= e.begin ? e.end - e.begin : 0);
  return e;
}

}  // namespace

std::string safetensors_dtype_name(at::ScalarType dtype) {
  for (const auto& d : kDtypes)
    if (d.dtype == dtype) return d.name;
  TORCH_CHECK(false, "safetensors: dtype ", dtype, " cannot be saved; supported: ", allowed_dtype_names());
}

std::string serialize_safetensors(const std::map<std::string, at::Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> data;
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      append_json_string(header, k);
      header += ':';
      append_json_string(header, v);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    TORCH_CHECK(!name.empty() && name != "__metadata__", "safetensors: invalid tensor name '", name, "'");
    TORCH_CHECK(tensor.defined(), "safetensors: tensor '", name, "' is undefined");
    TORCH_CHECK(tensor.layout() == at::kStrided, "safetensors: tensor '", name, "' is not dense (layout ",
                tensor.layout(), ")");
    const std::string dtype = safetensors_dtype_name(tensor.scalar_type());
    at::Tensor t = tensor.cpu().contiguous();
    const uint64_t bytes = t.numel() * t.element_size();
    if (header.size() > 1) header += ',';
    append_json_string(header, name);
    header += ":{\"dtype\":\"" + dtype + "\",\"shape\":[";
    for (int64_t d = 0; d < t.dim(); ++d) header += (d ? "," : "") + std::to_string(t.size(d));
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
    data.push_back(std::move(t));
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  std::string out(8, '\0');
  const uint64_t n = header.size();
  memcpy(out.data(), &n, 8);
  out += header;
  out.reserve(out.size() + offset);
  for (const at::Tensor& t : data) out.append(static_cast<const char*>(t.const_data_ptr()), t.numel() * t.element_size());
  return out;
}

SafetensorsContents deserialize_safetensors(const std::string& bytes, const std::string& source) {
  TORCH_CHECK(bytes.size() >= 8, "safetensors: ", source, " is truncated (", bytes.size(),
              " bytes; the header length alone takes 8)");
  uint64_t n = 0;
  memcpy(&n, bytes.data(), 8);
  TORCH_CHECK(n <= kMaxHeaderBytes, "safetensors: ", source, ": header length ", n, " exceeds the ",
              kMaxHeaderBytes, "-byte limit (not a safetensors file?)");
  TORCH_CHECK(n <= bytes.size() - 8, "safetensors: ", source, " is truncated: the header needs ", n,
              " bytes but only ", bytes.size() - 8, " follow the length");
  const std::string header = bytes.substr(8, n);
  TORCH_CHECK(!header.empty() && header[0] == '{', "safetensors: malformed header in ", source,
              ": it must be a JSON object starting with '{'");
  const Json root = parse_json(header, "safetensors: malformed header in " + source);
  TORCH_CHECK(root.kind == Json::Object, "safetensors: malformed header in ", source, ": not a JSON object");
  const uint64_t buffer_size = bytes.size() - 8 - n;
  const char* buffer = bytes.data() + 8 + n;

  SafetensorsContents out;
  std::vector<Entry> entries;
  for (const auto& [name, value] : root.fields) {
    if (name == "__metadata__") {
      TORCH_CHECK(value.kind == Json::Object, "safetensors: malformed header in ", source,
                  ": __metadata__ must be an object of strings");
      for (const auto& [k, v] : value.fields) {
        TORCH_CHECK(v.kind == Json::String, "safetensors: malformed header in ", source, ": __metadata__ value '", k,
                    "' is not a string");
        out.metadata[k] = v.text;
      }
      continue;
    }
    entries.push_back(parse_entry(name, value, source));
  }
  // The tensors must tile the buffer exactly: sorted by offset, each begins where the last ended.
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  for (const Entry* e : order) {
    TORCH_CHECK(e->begin >= expected, "safetensors: ", source, ": tensor '", e->name, "' (bytes [", e->begin, ", ",
                e->end, ")) overlaps the previous tensor, which ends at ", expected);
    TORCH_CHECK(e->begin == expected, "safetensors: ", source, ": gap in the data buffer before tensor '", e->name,
                "' (bytes ", expected, " to ", e->begin, " belong to no tensor)");
    expected = e->end;
  }
  TORCH_CHECK(expected <= buffer_size, "safetensors: ", source, " is truncated: its tensors need ", expected,
              " data bytes but the file has ", buffer_size);
  TORCH_CHECK(expected == buffer_size, "safetensors: ", source, ": ", buffer_size - expected,
              " bytes after the last tensor belong to no tensor");
  for (const Entry& e : entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
    if (e.end > e.begin) memcpy(t.data_ptr(), buffer + e.begin, e.end - e.begin);
    out.tensors[e.name] = std::move(t);
  }
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string bytes = serialize_safetensors(tensors, metadata);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  TORCH_CHECK(f, "safetensors: cannot open '", path, "' for writing");
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  TORCH_CHECK(f, "safetensors: writing '", path, "' failed");
}

SafetensorsContents load_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  TORCH_CHECK(f, "safetensors: cannot open '", path, "' for reading");
  std::ostringstream ss;
  ss << f.rdbuf();
  TORCH_CHECK(!f.bad(), "safetensors: reading '", path, "' failed");
  return deserialize_safetensors(ss.str(), "'" + path + "'");
}

}  // namespace lowbit::io
