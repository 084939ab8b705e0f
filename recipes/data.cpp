// Fortunes, bytes, split and batches. See data.h.
#include <lowbit/recipes/data.h>

#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/randint.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/tensor.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace lowbit::recipes {

std::vector<int64_t> encode_bytes(const std::string& text) {
  std::vector<int64_t> out(text.size());
  std::transform(text.begin(), text.end(), out.begin(), [](char c) { return static_cast<uint8_t>(c); });
  return out;
}

std::string decode_bytes(const std::vector<int64_t>& tokens) {
  std::string out;
  out.reserve(tokens.size());
  for (int64_t t : tokens) {
    TORCH_CHECK(t >= 0 && t < kByteVocabSize, "decode_bytes: token ", t, " is not a byte (0..255)");
    out.push_back(static_cast<char>(static_cast<uint8_t>(t)));
  }
  return out;
}

std::vector<std::string> load_fortunes(const std::string& dir) {
  namespace fs = std::filesystem;
  TORCH_CHECK(fs::is_directory(dir), "load_fortunes: no folder ", dir,
              " (install Debian's fortunes package: apt-get install fortunes)");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_symlink() || !entry.is_regular_file() || ext == ".dat" || ext == ".u8") continue;
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> fortunes;
  for (const auto& name : names) {
    std::ifstream in(fs::path(dir) / name, std::ios::binary);
    std::string line, current;
    while (std::getline(in, line)) {
      if (line == "%") {
        if (!current.empty()) fortunes.push_back(current);
        current.clear();
      } else {
        current += line + "\n";
      }
    }
    if (!current.empty()) fortunes.push_back(current);
  }
  TORCH_CHECK(!fortunes.empty(), "load_fortunes: no fortunes in ", dir);
  return fortunes;
}

TextSplit split_fortunes(const std::vector<std::string>& fortunes, int64_t val_every) {
  TORCH_CHECK(val_every >= 2, "split_fortunes: val_every must be >= 2, got ", val_every);
  std::vector<int64_t> train, val;
  for (std::size_t i = 0; i < fortunes.size(); ++i) {
    auto& dst = (static_cast<int64_t>(i) % val_every == val_every - 1) ? val : train;
    for (unsigned char c : fortunes[i]) dst.push_back(c);
    dst.push_back(kDocumentSeparator);
  }
  return {at::tensor(train, at::kLong), at::tensor(val, at::kLong)};
}

std::pair<at::Tensor, at::Tensor> train_batch(const at::Tensor& tokens, int64_t batch_size, int64_t seq_len,
                                              int64_t seed, int64_t step) {
  const int64_t n = tokens.numel();
  TORCH_CHECK(n > seq_len + 1, "train_batch: ", n, " tokens are too few for seq_len ", seq_len);
  at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed + step));
  const at::Tensor starts = at::randint(n - seq_len - 1, {batch_size}, gen, at::kLong);
  std::vector<at::Tensor> windows;
  const int64_t* s = starts.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch_size; ++b) windows.push_back(tokens.slice(0, s[b], s[b] + seq_len + 1));
  const at::Tensor w = at::stack(windows);
  return {w.slice(1, 0, seq_len).contiguous(), w.slice(1, 1, seq_len + 1).contiguous()};
}

std::vector<std::pair<at::Tensor, at::Tensor>> val_batches(const at::Tensor& tokens, int64_t batch_size,
                                                           int64_t seq_len, int64_t max_batches) {
  std::vector<std::pair<at::Tensor, at::Tensor>> out;
  const int64_t n_windows = (tokens.numel() - 1) / seq_len;
  for (int64_t b = 0; b < max_batches && (b + 1) * batch_size <= n_windows; ++b) {
    std::vector<at::Tensor> windows;
    for (int64_t i = 0; i < batch_size; ++i) {
      const int64_t start = (b * batch_size + i) * seq_len;
      windows.push_back(tokens.slice(0, start, start + seq_len + 1));
    }
    const at::Tensor w = at::stack(windows);
    out.emplace_back(w.slice(1, 0, seq_len).contiguous(), w.slice(1, 1, seq_len + 1).contiguous());
  }
  TORCH_CHECK(!out.empty(), "val_batches: the validation split is too short for one batch of ", batch_size, " x ",
              seq_len);
  return out;
}

}  // namespace lowbit::recipes
