// remove_tree: `rm -rf` for the recipes' output folders.
//
// Why not std::filesystem::remove_all: libtorch.so exports its own copy of some std::filesystem
// symbols, and in binaries that link it, remove_all can resolve into that copy and crash.
#pragma once

#include <string>

namespace lowbit::recipes {

// Deletes `path` and everything under it (symbolic links are removed, not followed); a missing
// path is fine. Errors name the path that could not be removed.
void remove_tree(const std::string& path);

}  // namespace lowbit::recipes
