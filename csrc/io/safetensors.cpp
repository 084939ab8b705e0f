// safetensors reader / writer (format and checks: see safetensors.h). The header is parsed by a
// small JSON reader that accepts exactly JSON (objects, arrays, strings, numbers, literals)
// with a depth limit; everything the format needs is then checked before any data is read.
#include <lowbit/io/safetensors.h>

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

// ---- JSON ----------------------------------------------------------------------------------

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  std::string text;                                  // String: the value; Number: the literal
  std::vector<Json> items;                           // Array
  std::vector<std::pair<std::string, Json>> fields;  // Object, in file order
};

class JsonParser {
 public:
  JsonParser(const std::string& s, const std::string& source) : s_(s), source_(source) {}

  Json parse_document() {
    Json v = parse_value(0);
    skip_space();
    check(pos_ == s_.size(), "unexpected characters after the JSON header");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    TORCH_CHECK(false, "safetensors: malformed header in ", source_, ": ", what, " (at byte ", pos_, " of the header)");
  }
  void check(bool ok, const char* what) const {
    if (!ok) fail(what);
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  char peek() {
    skip_space();
    check(pos_ < s_.size(), "unexpected end of the header");
    return s_[pos_];
  }
  void expect(char c) {
    check(peek() == c, (std::string("expected '") + c + "'").c_str());
    ++pos_;
  }

  Json parse_value(int depth) {
    check(depth < 64, "nesting too deep");
    const char c = peek();
    Json v;
    if (c == '{') {
      v.kind = Json::Object;
      ++pos_;
      if (peek() == '}') {
        ++pos_;
        return v;
      }
      while (true) {
        check(peek() == '"', "expected a string key");
        std::string key = parse_string();
        for (const auto& f : v.fields) check(f.first != key, ("duplicate key '" + key + "'").c_str());
        expect(':');
        v.fields.emplace_back(std::move(key), parse_value(depth + 1));
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.kind = Json::Array;
      ++pos_;
      if (peek() == ']') {
        ++pos_;
        return v;
      }
      while (true) {
        v.items.push_back(parse_value(depth + 1));
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.kind = Json::String;
      v.text = parse_string();
      return v;
    }
    for (const char* lit : {"true", "false", "null"}) {
      if (s_.compare(pos_, strlen(lit), lit) == 0) {
        pos_ += strlen(lit);
        v.kind = lit[0] == 'n' ? Json::Null : Json::Bool;
        v.text = lit;
        return v;
      }
    }
    check(c == '-' || (c >= '0' && c <= '9'), "expected a JSON value");
    const size_t start = pos_;
    while (pos_ < s_.size() && strchr("+-0123456789.eE", s_[pos_]) != nullptr) ++pos_;
    v.kind = Json::Number;
    v.text = s_.substr(start, pos_ - start);
    return v;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  uint32_t parse_hex4() {
    check(pos_ + 4 <= s_.size(), "truncated \\u escape");
    uint32_t cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[pos_++];
      cp <<= 4;
      if (h >= '0' && h <= '9') cp |= h - '0';
      else if (h >= 'a' && h <= 'f') cp |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') cp |= h - 'A' + 10;
      else fail("bad \\u escape");
    }
    return cp;
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    while (true) {
      check(pos_ < s_.size(), "unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      check(static_cast<unsigned char>(c) >= 0x20, "control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      check(pos_ < s_.size(), "unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = parse_hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
            check(s_.compare(pos_, 2, "\\u") == 0, "unpaired surrogate");
            pos_ += 2;
            const uint32_t lo = parse_hex4();
            check(lo >= 0xDC00 && lo < 0xE000, "bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  const std::string& s_;
  const std::string& source_;
  size_t pos_ = 0;
};

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (u < 0x20) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", u);
      out += buf;
    } else out += c;
  }
  out += '"';
}

// A non-negative JSON integer (shape entries and offsets).
uint64_t to_uint(const Json& v, const std::string& what, const std::string& source) {
  bool ok = v.kind == Json::Number && !v.text.empty() && v.text.size() <= 19 &&
            std::all_of(v.text.begin(), v.text.end(), [](char c) { return c >= '0' && c <= '9'; });
  TORCH_CHECK(ok, "safetensors: malformed header in ", source, ": ", what, " must be a non-negative integer, got '",
              v.kind == Json::Number ? v.text : std::string("a non-number"), "'");
  return std::stoull(v.text);
}

const Json* field(const Json& obj, const char* key) {
  for (const auto& f : obj.fields)
    if (f.first == key) return &f.second;
  return nullptr;
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
  const Json* dtype = field(v, "dtype");
  const Json* shape = field(v, "shape");
  const Json* offsets = field(v, "data_offsets");
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
  const Json root = JsonParser(header, source).parse_document();
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
