// Progress display. See progress.h.
#include <lowbit/recipes/progress.h>

#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

namespace lowbit::recipes {

ProcessMemory process_memory() {
#if defined(__GLIBC__)
  // Free heap pages go back to the OS first, so rss is what the process holds rather than what
  // glibc keeps cached: without it pretrain_tiny's rss grew ~0.5 MiB per step while live memory
  // stayed flat (fragmentation, not a leak; MALLOC_MMAP_THRESHOLD_=256K kept it flat at half speed).
  malloc_trim(0);
#endif
  ProcessMemory m;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    long long kib = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %lld kB", &kib) == 1) m.rss = kib * 1024;
    if (std::sscanf(line.c_str(), "VmHWM: %lld kB", &kib) == 1) m.peak_rss = kib * 1024;
  }
  return m;
}

Progress::Progress(int64_t total_steps, bool quiet)
    : total_(total_steps), quiet_(quiet), tty_(isatty(fileno(stdout)) != 0), since_(std::chrono::steady_clock::now()) {}

void Progress::update(int64_t step, double loss, double lr) {
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - since_).count();
  const double tok_s = seconds > 0 ? static_cast<double>(tokens_) / seconds : 0.0;
  tokens_ = 0;
  since_ = now;
  if (quiet_) return;
  const int width = 20;
  const int filled = total_ > 0 ? static_cast<int>(width * step / total_) : width;
  const ProcessMemory mem = process_memory();
  char buf[256];
  std::snprintf(buf, sizeof(buf), "step %lld/%lld [%s%s] loss %.4f | lr %.2e | %.1fk tok/s | mem %lld MiB (peak %lld)",
                static_cast<long long>(step), static_cast<long long>(total_), std::string(filled, '=').c_str(),
                std::string(width - filled, ' ').c_str(), loss, lr, tok_s / 1000.0,
                static_cast<long long>(mem.rss >> 20), static_cast<long long>(mem.peak_rss >> 20));
  if (tty_) {
    std::cout << "\r\033[K" << buf << std::flush;
    line_open_ = true;
  } else {
    std::cout << buf << "\n" << std::flush;
  }
}

void Progress::message(const std::string& text) {
  if (quiet_) return;
  if (line_open_) std::cout << "\n";
  line_open_ = false;
  std::cout << text << "\n" << std::flush;
}

void Progress::finish() {
  if (!quiet_ && line_open_) std::cout << "\n" << std::flush;
  line_open_ = false;
}

}  // namespace lowbit::recipes
