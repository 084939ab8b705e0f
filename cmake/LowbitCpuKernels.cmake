# The vectorized CPU kernels (csrc/cpu/vec/*.cpp), compiled once per instruction set, the way
# ATen builds its CPU_CAPABILITY kernels: each build defines CPU_CAPABILITY=<ISA> and
# CPU_CAPABILITY_<ISA>, so at::vec::Vectorized<T> is 16 floats wide under AVX512, 8 under AVX2,
# and plain C++ arrays under DEFAULT, and the sources land in namespace lowbit::cpu::vec::<ISA>.
# csrc/cpu/vec_dispatch.cpp picks one at run time from at::get_cpu_capability() (so
# ATEN_CPU_CAPABILITY=default|avx2|avx512 selects it as it does ATen's) or LOWBIT_CPU_KERNELS.
#
# -ffp-contract=off: with FMA available the compiler would fuse a * b + c into one rounding; the
# CPU reference and the CUDA kernels (core::mul_rn) round twice, and the vectorized kernels must
# equal them bit for bit.
#
# The DEFAULT objects are linked before the AVX2 and AVX512 ones, so an inline function of the
# c10 / ATen headers that all three builds emit keeps the copy compiled for the baseline CPU
# (the linker keeps the first definition it meets); ctest cpu_vec_objects_share_no_isa_code
# (cmake/check_vec_objects.py) fails if an AVX2 / AVX512 copy could still reach baseline code.
include_guard(GLOBAL)

function(lowbit_add_cpu_vec_kernels target)
  file(GLOB sources CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/csrc/cpu/vec/*.cpp")
  set(isas DEFAULT)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    list(APPEND isas AVX2 AVX512)
  endif()
  set(flags_DEFAULT "")
  set(flags_AVX2 -mavx2 -mfma -mf16c)
  set(flags_AVX512 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c)
  foreach(isa IN LISTS isas)
    set(lib ${target}_cpu_${isa})
    add_library(${lib} OBJECT ${sources})
    target_compile_definitions(${lib} PRIVATE CPU_CAPABILITY=${isa} CPU_CAPABILITY_${isa})
    target_compile_options(${lib} PRIVATE ${flags_${isa}} -ffp-contract=off -Wall -Wextra -Wno-unused-parameter
                                   -Wno-maybe-uninitialized)  # GCC 12 false positives in its AVX-512 headers
    target_include_directories(${lib} PRIVATE "${LOWBIT_HEADER_ROOT}" "${LOWBIT_INTERNAL_HEADER_ROOT}")
    # lowbit::torch: headers and the ABI define only; OpenMP: at::parallel_for runs in parallel (CMakeLists.txt)
    target_link_libraries(${lib} PRIVATE lowbit::torch OpenMP::OpenMP_CXX)
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:${lib}>)
    target_compile_definitions(${target} PRIVATE LOWBIT_CPU_HAVE_${isa}=1)
  endforeach()
endfunction()
