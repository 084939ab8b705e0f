// A one-line progress display for training loops: step, loss, learning rate, tokens/s and memory.
// On a terminal the line is redrawn in place; otherwise one line is printed per update.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lowbit::recipes {

// Resident and peak resident memory of this process in bytes (from /proc/self/status; 0 if unknown),
// read after glibc returns its free heap pages to the OS (malloc_trim), so rss tracks live memory.
struct ProcessMemory {
  int64_t rss = 0;
  int64_t peak_rss = 0;
};
ProcessMemory process_memory();

class Progress {
 public:
  Progress(int64_t total_steps, bool quiet);
  // Counts tokens processed since the last update (for tokens/s).
  void add_tokens(int64_t n) { tokens_ += n; }
  // Redraws: "step 120/300 [=====>    ] loss 2.345 | lr 9.0e-04 | 12.3k tok/s | mem 512 MiB (peak 600)".
  void update(int64_t step, double loss, double lr);
  // Prints a message on its own line (the progress line is redrawn by the next update).
  void message(const std::string& text);
  void finish();

 private:
  int64_t total_;
  bool quiet_;
  bool tty_;
  bool line_open_ = false;
  int64_t tokens_ = 0;
  std::chrono::steady_clock::time_point since_;
};

}  // namespace lowbit::recipes
