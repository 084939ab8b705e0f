// The strict JSON reader and writing helpers (see json.h).
#include <lowbit/io/json.h>

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lowbit::io {
namespace {

class JsonParser {
 public:
  JsonParser(const std::string& s, const std::string& context) : s_(s), context_(context) {}

  Json parse_document() {
    Json v = parse_value(0);
    skip_space();
    check(pos_ == s_.size(), "unexpected characters after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    TORCH_CHECK(false, context_, ": ", what, " (at byte ", pos_, ")");
  }
  void check(bool ok, const char* what) const {
    if (!ok) fail(what);
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  char peek() {
    skip_space();
    check(pos_ < s_.size(), "unexpected end of the JSON text");
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
  const std::string& context_;
  size_t pos_ = 0;
};

}  // namespace

const Json* Json::find(const std::string& key) const {
  for (const auto& f : fields)
    if (f.first == key) return &f.second;
  return nullptr;
}

Json parse_json(const std::string& text, const std::string& context) { return JsonParser(text, context).parse_document(); }

const Json& json_field(const Json& object, const std::string& key, const std::string& context) {
  TORCH_CHECK(object.kind == Json::Object, context, ": expected a JSON object");
  const Json* v = object.find(key);
  TORCH_CHECK(v != nullptr, context, ": missing key '", key, "'");
  return *v;
}

std::string json_string(const Json& v, const std::string& what, const std::string& context) {
  TORCH_CHECK(v.kind == Json::String, context, ": ", what, " must be a string");
  return v.text;
}

int64_t json_int(const Json& v, const std::string& what, const std::string& context) {
  const std::string& t = v.text;
  const size_t digits_from = !t.empty() && t[0] == '-' ? 1 : 0;
  const bool ok = v.kind == Json::Number && t.size() > digits_from && t.size() - digits_from <= 18 &&
                  std::all_of(t.begin() + digits_from, t.end(), [](char c) { return c >= '0' && c <= '9'; });
  TORCH_CHECK(ok, context, ": ", what, " must be an integer of at most 18 digits, got ",
              v.kind == Json::Number ? "'" + t + "'" : std::string("a non-number"));
  return std::stoll(t);
}

double json_number(const Json& v, const std::string& what, const std::string& context) {
  TORCH_CHECK(v.kind == Json::Number, context, ": ", what, " must be a number");
  char* end = nullptr;
  const double d = std::strtod(v.text.c_str(), &end);
  TORCH_CHECK(end == v.text.c_str() + v.text.size() && std::isfinite(d), context, ": ", what, " is not a finite number: '",
              v.text, "'");
  return d;
}

void json_check_keys(const Json& object, const std::vector<std::string>& allowed, const std::string& context) {
  TORCH_CHECK(object.kind == Json::Object, context, ": expected a JSON object");
  for (const auto& f : object.fields) {
    if (std::find(allowed.begin(), allowed.end(), f.first) != allowed.end()) continue;
    std::string names;
    for (const auto& a : allowed) names += (names.empty() ? "" : ", ") + a;
    TORCH_CHECK(false, context, ": unknown key '", f.first, "'; allowed: ", names);
  }
}

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

std::string json_quote(const std::string& s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string json_number_text(double v) {
  TORCH_CHECK(std::isfinite(v), "JSON cannot hold the non-finite number ", v);
  // The shortest of 15..17 significant digits that reads back exactly.
  char buf[32];
  for (int digits = 15; digits <= 17; ++digits) {
    snprintf(buf, sizeof(buf), "%.*g", digits, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace lowbit::io
