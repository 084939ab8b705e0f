# Defines the imported target `lowbit::torch` (LibTorch headers and libraries) from the
# PyTorch wheel that Python imports. Used by lowbit's own build and by its installed
# package config, so a C++ consumer links the same LibTorch that lowbit was built against.
#
# Why not find_package(Torch): TorchConfig of a CUDA wheel demands a CUDA toolkit even for a
# CPU-only build, and is slow to configure. LibTorch is just headers, a few shared libraries
# and one ABI define, all of which the wheel reports.
#
# Inputs (optional): TORCH_PACKAGE_DIR (the `torch` package folder), Python_EXECUTABLE.
# Outputs: lowbit::torch, lowbit::torch_cuda (when the wheel has CUDA), LOWBIT_TORCH_VERSION,
#          LOWBIT_TORCH_CUDA_VERSION (empty for a CPU wheel), TORCH_PACKAGE_DIR.
include_guard(GLOBAL)

if(NOT TORCH_PACKAGE_DIR OR NOT LOWBIT_TORCH_VERSION)
  if(NOT Python_EXECUTABLE)
    find_program(Python_EXECUTABLE NAMES python3 python REQUIRED)
  endif()
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
      "import os, torch; print(os.path.dirname(torch.__file__)); print(torch.__version__); print(torch.version.cuda or ''); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))"
    OUTPUT_VARIABLE _lowbit_torch_info
    RESULT_VARIABLE _lowbit_torch_rc
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _lowbit_torch_rc EQUAL 0)
    message(FATAL_ERROR "lowbit: `${Python_EXECUTABLE} -c 'import torch'` failed. "
                        "Install torch (pip install torch) or set TORCH_PACKAGE_DIR.")
  endif()
  string(REPLACE "\n" ";" _lowbit_torch_info "${_lowbit_torch_info}")
  list(GET _lowbit_torch_info 0 _dir)
  list(GET _lowbit_torch_info 1 _ver)
  list(GET _lowbit_torch_info 2 _cuda)
  list(GET _lowbit_torch_info 3 _abi)
  set(TORCH_PACKAGE_DIR "${_dir}" CACHE PATH "The torch Python package folder (holds include/ and lib/)")
  set(LOWBIT_TORCH_VERSION "${_ver}" CACHE STRING "torch version lowbit builds against")
  set(LOWBIT_TORCH_CUDA_VERSION "${_cuda}" CACHE STRING "CUDA version of the torch wheel ('' for CPU)")
  set(LOWBIT_TORCH_CXX11_ABI "${_abi}" CACHE STRING "_GLIBCXX_USE_CXX11_ABI of the torch wheel")
endif()

if(NOT TARGET lowbit::torch)
  set(_lib "${TORCH_PACKAGE_DIR}/lib")
  find_library(LOWBIT_C10_LIB c10 PATHS "${_lib}" NO_DEFAULT_PATH REQUIRED)
  find_library(LOWBIT_TORCH_CPU_LIB torch_cpu PATHS "${_lib}" NO_DEFAULT_PATH REQUIRED)
  find_library(LOWBIT_TORCH_LIB torch PATHS "${_lib}" NO_DEFAULT_PATH REQUIRED)
  add_library(lowbit::torch INTERFACE IMPORTED)
  set_target_properties(lowbit::torch PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES
      "${TORCH_PACKAGE_DIR}/include;${TORCH_PACKAGE_DIR}/include/torch/csrc/api/include"
    INTERFACE_LINK_LIBRARIES "${LOWBIT_TORCH_LIB};${LOWBIT_TORCH_CPU_LIB};${LOWBIT_C10_LIB}"
    INTERFACE_COMPILE_DEFINITIONS "_GLIBCXX_USE_CXX11_ABI=${LOWBIT_TORCH_CXX11_ABI}")
  if(LOWBIT_TORCH_CUDA_VERSION)
    find_library(LOWBIT_C10_CUDA_LIB c10_cuda PATHS "${_lib}" NO_DEFAULT_PATH)
    find_library(LOWBIT_TORCH_CUDA_LIB torch_cuda PATHS "${_lib}" NO_DEFAULT_PATH)
    if(LOWBIT_C10_CUDA_LIB AND LOWBIT_TORCH_CUDA_LIB)
      add_library(lowbit::torch_cuda INTERFACE IMPORTED)
      # --no-as-needed: torch_cuda registers the CUDA kernels at load time, so a C++ program
      # must load it even where it calls none of its symbols directly.
      set_target_properties(lowbit::torch_cuda PROPERTIES
        INTERFACE_LINK_LIBRARIES
          "-Wl,--no-as-needed;${LOWBIT_TORCH_CUDA_LIB};${LOWBIT_C10_CUDA_LIB};-Wl,--as-needed")
    endif()
  endif()
endif()
