// Configure-time probe (cmake/LowbitDistributed.cmake): the wheel's ProcessGroupGloo.hpp compiles
// with the Gloo headers found, and constructing a ProcessGroupGloo links against libtorch alone.
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

int main(int argc, char** argv) {
  if (argc > 1) {  // never run at configure time; linking is the check
    auto store = c10::make_intrusive<c10d::FileStore>(argv[1], 1);
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, 0, 1, options);
    return group->getSize() == 1 ? 0 : 1;
  }
  return 0;
}
