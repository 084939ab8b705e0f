// Real text for the recipes: Debian's fortunes as bytes, a byte-level tokenizer, a deterministic
// train / validation split and batches that depend only on (seed, step), so that a resumed run
// draws exactly the batches an uninterrupted one would. python/lowbit/recipes/data.py does the same.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::recipes {

// Byte-level tokenizer: token = byte (vocabulary 256). Fortunes are joined with byte 0, which
// plain text never contains, as the document separator. Bytes need no training, cover every
// input, and keep the two faces trivially identical (a BPE would add a trained artifact).
constexpr int64_t kByteVocabSize = 256;
constexpr uint8_t kDocumentSeparator = 0;
std::vector<int64_t> encode_bytes(const std::string& text);
std::string decode_bytes(const std::vector<int64_t>& tokens);

// The fortunes of `dir`: every plain file (not the .dat indexes, not the .u8 links), in name
// order, split into fortunes at the "%" lines. Errors if the folder holds none.
std::vector<std::string> load_fortunes(const std::string& dir = "/usr/share/games/fortunes");

// Train / validation token streams (int64, 1-D): fortune i goes to validation when
// i % val_every == val_every - 1, else to training; each fortune is followed by the separator.
struct TextSplit {
  at::Tensor train;
  at::Tensor val;
};
TextSplit split_fortunes(const std::vector<std::string>& fortunes, int64_t val_every = 10);

// Training batch for `step`: `batch_size` windows of seq_len + 1 tokens at offsets drawn from a
// generator seeded with seed + step. Returns (inputs, targets), each (batch_size, seq_len).
std::pair<at::Tensor, at::Tensor> train_batch(const at::Tensor& tokens, int64_t batch_size, int64_t seq_len,
                                              int64_t seed, int64_t step);

// Validation batches: consecutive non-overlapping windows from the start of `tokens`, at most
// `max_batches` batches of `batch_size`. Deterministic, identical in both faces.
std::vector<std::pair<at::Tensor, at::Tensor>> val_batches(const at::Tensor& tokens, int64_t batch_size,
                                                           int64_t seq_len, int64_t max_batches);

}  // namespace lowbit::recipes
