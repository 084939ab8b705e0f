// The Gloo backend: torch's ProcessGroupGloo (compiled into libtorch_cpu) built from C++.
//
// The torch wheel ships c10d's headers but not Gloo's; ProcessGroupGloo.hpp needs them only for
// declarations: the class holds Gloo objects through pointers, and lowbit calls nothing of Gloo
// itself (no libgloo is linked, so a call into Gloo would fail to link rather than mix two Gloos).
// CMake (cmake/LowbitDistributed.cmake) checks that the headers it found compile with the wheel's
// ProcessGroupGloo.hpp and that a program constructing it links against libtorch_cpu alone.
#include <lowbit/build_config.h>

#include "backends.h"

#if LOWBIT_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#include <c10/util/Exception.h>

#include <cstdlib>

namespace lowbit::distributed::detail {

#if LOWBIT_WITH_GLOO

bool gloo_available() { return true; }

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout, const std::string& master_addr) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname != nullptr && *ifname != '\0') {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else if (master_addr == "localhost" || master_addr.rfind("127.", 0) == 0 || master_addr == "::1") {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

#else

bool gloo_available() { return false; }

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>&, int, int,
                                                    std::chrono::milliseconds, const std::string&) {
  TORCH_CHECK(false, "lowbit::distributed: this build of lowbit has no Gloo backend (CPU tensors); rebuild with "
              "-DLOWBIT_GLOO=ON and Gloo's headers installed (Debian/Ubuntu: apt-get install libgloo-dev), or use "
              "backend \"nccl\" with CUDA tensors");
}

#endif

}  // namespace lowbit::distributed::detail
