// Calls a lowbit:: op through the dispatcher, so the C++ API takes the same path (device
// kernel, autograd, tracing) as torch.ops.lowbit.<name> from Python.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>

namespace lowbit::ops {

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

}  // namespace lowbit::ops
