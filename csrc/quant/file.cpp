#include <lowbit/quant/file.h>

#include <sys/stat.h>

#include <c10/util/StringUtil.h>

#include <cstdio>
#include <set>

#include <lowbit/io/json.h>
#include <lowbit/io/safetensors.h>
#include <lowbit/quant/format.h>

namespace lowbit::quant {
namespace {

constexpr const char* kVersionKey = "lowbit.format_version";
constexpr const char* kVersion = "2";
const std::string kMetaPrefix = "lowbit.quantized.";

struct Entry {
  std::string format;
  int64_t out_features = 0, in_features = 0;
  std::string dtype;
  std::vector<std::string> parts;  // part names (version 1: "part0", "part1", ...)
};

std::string describe(const QuantizedWeight& w) {
  std::string parts;
  for (const auto& name : w.part_names()) parts += (parts.empty() ? "" : ", ") + io::json_quote(name);
  return "{\"format\": " + io::json_quote(w.config.name()) + ", \"shape\": [" + std::to_string(w.out_features) + ", " +
         std::to_string(w.in_features) + "], \"dtype\": \"" + weight_dtype_name(w.dtype) + "\", \"parts\": [" + parts +
         "]}";
}

// Reads one weight's description (exactly the keys `describe` writes, in any order).
Entry parse_entry(const io::Json& v, const std::string& where, bool version1) {
  Entry e;
  e.format = io::json_string(io::json_field(v, "format", where), "format", where);
  e.dtype = io::json_string(io::json_field(v, "dtype", where), "dtype", where);
  const io::Json& shape = io::json_field(v, "shape", where);
  TORCH_CHECK(shape.kind == io::Json::Array && shape.items.size() == 2, where,
              ": shape must be [out_features, in_features]");
  e.out_features = io::json_int(shape.items[0], "out_features", where);
  e.in_features = io::json_int(shape.items[1], "in_features", where);
  TORCH_CHECK(e.out_features > 0 && e.in_features > 0, where, ": shape must be positive");
  const io::Json& parts = io::json_field(v, "parts", where);
  if (version1) {
    const int64_t n = io::json_int(parts, "parts", where);
    TORCH_CHECK(n > 0 && n <= 8, where, ": parts must be 1..8, got ", n);
    for (int64_t i = 0; i < n; ++i) e.parts.push_back("part" + std::to_string(i));
  } else {
    TORCH_CHECK(parts.kind == io::Json::Array && !parts.items.empty() && parts.items.size() <= 8, where,
                ": parts must be a list of 1..8 part names");
    for (const auto& p : parts.items) e.parts.push_back(io::json_string(p, "part name", where));
  }
  return e;
}

// The weight an entry describes, checked against its format; `parts` in entry order. Version 1
// named parts by position, so only later versions check the names.
QuantizedWeight make_weight(const Entry& e, std::vector<at::Tensor> parts, const std::string& where,
                            bool check_names) {
  try {
    const QuantizeConfig config = parse_quantize_config(e.format);
    const auto expected = config.format().part_names();
    TORCH_CHECK(!check_names || e.parts == expected, "parts are named [", c10::Join(", ", e.parts), "], the format ",
                e.format, " has [", c10::Join(", ", expected), "]");
    return quantized_weight_from_parts(config, std::move(parts), e.out_features, e.in_features,
                                       weight_dtype_from_name(e.dtype, where));
  } catch (const c10::Error& err) {
    TORCH_CHECK(false, where, ": ", err.what_without_backtrace());
  }
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

void write_quantized_file(const std::string& path, const QuantizedFile& file) {
  TORCH_CHECK(!is_directory(path), "save_quantized: '", path, "' is a directory; give a file path such as '", path,
              "/model.safetensors'");
  std::map<std::string, at::Tensor> tensors = file.tensors;
  std::map<std::string, std::string> metadata{{kVersionKey, kVersion}};
  for (const auto& [key, w] : file.weights) {
    TORCH_CHECK(!tensors.count(key), "save_quantized: '", key, "' is both a plain and a quantized tensor");
    const auto names = w.part_names();
    for (size_t i = 0; i < w.parts.size(); ++i) {
      const std::string part_key = key + "." + names.at(i);
      TORCH_CHECK(!tensors.count(part_key), "save_quantized: '", part_key, "' names a plain tensor and a part of the "
                  "quantized weight '", key, "'");
      tensors[part_key] = w.parts[i];
    }
    metadata[kMetaPrefix + key] = describe(w);
  }
  const std::string tmp = path + ".tmp";
  try {
    io::save_safetensors(tmp, tensors, metadata);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  TORCH_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "save_quantized: could not rename '", tmp, "' to '", path,
              "'");
}

QuantizedFile read_quantized_file(const std::string& path) {
  const std::string where = "load_quantized: " + path;
  io::SafetensorsContents contents;
  try {
    contents = io::load_safetensors(path);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, where, ": not a readable safetensors file (", e.what_without_backtrace(), ")");
  }
  auto version = contents.metadata.find(kVersionKey);
  TORCH_CHECK(version != contents.metadata.end() && (version->second == kVersion || version->second == "1"), where,
              ": ", kVersionKey, " is missing or not \"", kVersion, "\" or \"1\" (not a save_quantized file?)");
  const bool version1 = version->second == "1";
  QuantizedFile file;
  std::set<std::string> used;
  for (const auto& [key, text] : contents.metadata) {
    if (key.rfind(kMetaPrefix, 0) != 0) continue;
    const std::string name = key.substr(kMetaPrefix.size());
    const std::string ctx = where + ": '" + name + "'";
    const io::Json v = io::parse_json(text, ctx + ": malformed metadata");
    io::json_check_keys(v, {"format", "shape", "dtype", "parts"}, ctx);
    const Entry e = parse_entry(v, ctx, version1);
    std::vector<at::Tensor> parts;
    for (const auto& part : e.parts) {
      auto it = contents.tensors.find(name + "." + part);
      TORCH_CHECK(it != contents.tensors.end(), ctx, " is missing its part '", part, "'");
      parts.push_back(it->second);
      used.insert(it->first);
    }
    file.weights.emplace(name, make_weight(e, std::move(parts), ctx, !version1));
  }
  for (auto& [name, t] : contents.tensors) {
    if (!used.count(name)) file.tensors.emplace(name, t);
  }
  return file;
}

std::pair<std::vector<at::Tensor>, std::string> to_manifest(const QuantizedFile& file) {
  std::vector<at::Tensor> tensors;
  std::string quantized, plain;
  for (const auto& [name, w] : file.weights) {
    std::string d = describe(w);
    d.insert(1, "\"name\": " + io::json_quote(name) + ", ");
    quantized += (quantized.empty() ? "" : ", ") + d;
    tensors.insert(tensors.end(), w.parts.begin(), w.parts.end());
  }
  for (const auto& [name, t] : file.tensors) {
    plain += (plain.empty() ? "" : ", ") + io::json_quote(name);
    tensors.push_back(t);
  }
  return {tensors, "{\"quantized\": [" + quantized + "], \"plain\": [" + plain + "]}"};
}

QuantizedFile from_manifest(const std::vector<at::Tensor>& tensors, const std::string& manifest,
                            const std::string& where) {
  const io::Json v = io::parse_json(manifest, where + ": malformed manifest");
  io::json_check_keys(v, {"quantized", "plain"}, where);
  const io::Json& quantized = io::json_field(v, "quantized", where);
  const io::Json& plain = io::json_field(v, "plain", where);
  TORCH_CHECK(quantized.kind == io::Json::Array && plain.kind == io::Json::Array, where,
              ": manifest 'quantized' and 'plain' must be lists");
  QuantizedFile file;
  size_t next = 0;
  auto take = [&](const std::string& what) -> const at::Tensor& {
    TORCH_CHECK(next < tensors.size(), where, ": the manifest names more tensors than were given (at ", what, ")");
    return tensors[next++];
  };
  for (const io::Json& q : quantized.items) {
    io::json_check_keys(q, {"name", "format", "shape", "dtype", "parts"}, where);
    const std::string name = io::json_string(io::json_field(q, "name", where), "name", where);
    const std::string ctx = where + ": '" + name + "'";
    const Entry e = parse_entry(q, ctx, /*version1=*/false);
    std::vector<at::Tensor> parts;
    for (const auto& part : e.parts) parts.push_back(take(name + "." + part));
    TORCH_CHECK(file.weights.emplace(name, make_weight(e, std::move(parts), ctx, true)).second, ctx, " appears twice");
  }
  for (const io::Json& p : plain.items) {
    const std::string name = io::json_string(p, "plain tensor name", where);
    TORCH_CHECK(file.tensors.emplace(name, take(name)).second, where, ": '", name, "' appears twice");
  }
  TORCH_CHECK(next == tensors.size(), where, ": ", tensors.size() - next, " tensors more than the manifest names");
  return file;
}

}  // namespace lowbit::quant
