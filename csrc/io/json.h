// A strict JSON reader and the small writing helpers lowbit's file formats share: safetensors
// headers, save_quantized's per-weight metadata and autoquant plans. The reader accepts exactly
// JSON (objects, arrays, strings, numbers, literals) with a nesting limit and rejects duplicate
// keys; numbers keep their literal text so integers are read without a round trip through double.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lowbit::io {

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  std::string text;                                  // String: the value; Number / Bool / Null: the literal
  std::vector<Json> items;                           // Array
  std::vector<std::pair<std::string, Json>> fields;  // Object, in file order

  // The value of `key` in an object, or nullptr.
  const Json* find(const std::string& key) const;
};

// Parses one JSON document. Errors are c10::Errors reading "<context>: <what> (at byte N)".
Json parse_json(const std::string& text, const std::string& context);

// Typed reads for formats built on JSON; each error names `what` after `context`.
const Json& json_field(const Json& object, const std::string& key, const std::string& context);
std::string json_string(const Json& v, const std::string& what, const std::string& context);
int64_t json_int(const Json& v, const std::string& what, const std::string& context);  // an integer literal
double json_number(const Json& v, const std::string& what, const std::string& context);
// Fails if `object` has a key outside `allowed` (typos in hand-edited files are errors, not ignored).
void json_check_keys(const Json& object, const std::vector<std::string>& allowed, const std::string& context);

// Appends `s` as a quoted JSON string (escapes ", \ and control characters).
void append_json_string(std::string& out, const std::string& s);
// `s` as a quoted JSON string.
std::string json_quote(const std::string& s);
// A double as a JSON number that reads back to the same value (non-finite values are errors).
std::string json_number_text(double v);

}  // namespace lowbit::io
