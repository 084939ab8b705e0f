// remove_tree with POSIX nftw. See remove_tree.h.
#include <lowbit/recipes/remove_tree.h>

#include <ftw.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace lowbit::recipes {
namespace {
thread_local std::string failed_entry;  // nftw's callback is C: report failures through here, not by throwing

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  if (std::remove(path) != 0) {
    failed_entry = std::string(path) + ": " + std::strerror(errno);
    return -1;  // stops the walk
  }
  return 0;
}
}  // namespace

void remove_tree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;  // nothing there
  // Depth first (children before their folder), without following links.
  failed_entry.clear();
  if (nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
    throw std::runtime_error("remove_tree: cannot remove " + (failed_entry.empty() ? path : failed_entry));
  }
}

}  // namespace lowbit::recipes
