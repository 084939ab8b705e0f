# lowbit::distributed (distributed/): c10d process groups from C++ and fully_shard.
#
#   LOWBIT_DISTRIBUTED  AUTO|ON|OFF  the lowbit::distributed API (c10d headers ship with the wheel)
#   LOWBIT_GLOO         AUTO|ON|OFF  Gloo backend for CPU tensors
#   LOWBIT_NCCL         AUTO|ON|OFF  NCCL backend for CUDA tensors (CUDA builds only)
# AUTO turns a part on when what it needs is found and says so; ON fails the configure with the
# reason when it is not; OFF leaves it out. The configure log prints which way each went.
#
# Gloo: the wheel compiles Gloo into libtorch_cpu and exports ProcessGroupGloo, but ships no Gloo
# headers, which ProcessGroupGloo.hpp includes. lowbit takes them from the system (Debian/Ubuntu
# libgloo-dev; scripts/setup.sh installs it) and checks, by compiling and linking a probe that
# constructs a ProcessGroupGloo against libtorch_cpu alone, that (1) the wheel's header compiles
# with them and (2) nothing of Gloo itself is referenced (ProcessGroupGloo holds Gloo objects only
# through pointers, so the header's Gloo version cannot change any layout lowbit relies on).
# NCCL: ProcessGroupNCCL.hpp needs nccl.h, shipped by the nvidia-nccl pip package torch uses.
include_guard(GLOBAL)

foreach(opt LOWBIT_DISTRIBUTED LOWBIT_GLOO LOWBIT_NCCL)
  set(${opt} "AUTO" CACHE STRING "AUTO, ON or OFF (see cmake/LowbitDistributed.cmake)")
  set_property(CACHE ${opt} PROPERTY STRINGS AUTO ON OFF)
  if(NOT ${opt} MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "${opt}=${${opt}}: allowed values are AUTO, ON, OFF")
  endif()
endforeach()

set(LOWBIT_WITH_DISTRIBUTED OFF)
set(LOWBIT_WITH_GLOO OFF)
set(LOWBIT_WITH_NCCL OFF)
set(LOWBIT_DISTRIBUTED_TEXT "OFF")

set(_c10d "${TORCH_PACKAGE_DIR}/include/torch/csrc/distributed/c10d")
if(LOWBIT_DISTRIBUTED STREQUAL "OFF")
  set(LOWBIT_DISTRIBUTED_TEXT "OFF (LOWBIT_DISTRIBUTED=OFF)")
elseif(NOT EXISTS "${_c10d}/ProcessGroup.hpp" OR NOT EXISTS "${_c10d}/TCPStore.hpp")
  if(LOWBIT_DISTRIBUTED STREQUAL "ON")
    message(FATAL_ERROR "LOWBIT_DISTRIBUTED=ON: the torch wheel at ${TORCH_PACKAGE_DIR} has no c10d headers")
  endif()
  set(LOWBIT_DISTRIBUTED_TEXT "OFF (the torch wheel has no c10d headers)")
else()
  set(LOWBIT_WITH_DISTRIBUTED ON)
endif()

if(LOWBIT_WITH_DISTRIBUTED AND NOT LOWBIT_GLOO STREQUAL "OFF")
  find_path(LOWBIT_GLOO_INCLUDE_DIR gloo/config.h gloo/rendezvous/store.h gloo/transport/device.h
            DOC "Folder holding Gloo's headers (gloo/config.h)")
  set(_why "")
  if(NOT LOWBIT_GLOO_INCLUDE_DIR)
    set(_why "Gloo's headers not found (apt-get install libgloo-dev, or set LOWBIT_GLOO_INCLUDE_DIR)")
  elseif(NOT EXISTS "${_c10d}/ProcessGroupGloo.hpp")
    set(_why "the torch wheel has no ProcessGroupGloo.hpp")
  else()
    if(NOT DEFINED LOWBIT_GLOO_PROBE_OK OR NOT LOWBIT_GLOO_PROBE_DIR STREQUAL LOWBIT_GLOO_INCLUDE_DIR)
      message(STATUS "lowbit: checking Gloo headers at ${LOWBIT_GLOO_INCLUDE_DIR} against the wheel's ProcessGroupGloo")
      get_target_property(_torch_inc lowbit::torch INTERFACE_INCLUDE_DIRECTORIES)
      get_target_property(_torch_libs lowbit::torch INTERFACE_LINK_LIBRARIES)
      try_compile(_probe_ok "${CMAKE_BINARY_DIR}/gloo_probe"
        SOURCES "${CMAKE_CURRENT_LIST_DIR}/gloo_probe.cpp"
        CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${_torch_inc};${LOWBIT_GLOO_INCLUDE_DIR}"
        COMPILE_DEFINITIONS -DUSE_C10D_GLOO -D_GLIBCXX_USE_CXX11_ABI=${LOWBIT_TORCH_CXX11_ABI}
        LINK_LIBRARIES ${_torch_libs}
        CXX_STANDARD 17
        OUTPUT_VARIABLE _probe_log)
      set(LOWBIT_GLOO_PROBE_OK ${_probe_ok} CACHE INTERNAL "")
      set(LOWBIT_GLOO_PROBE_DIR "${LOWBIT_GLOO_INCLUDE_DIR}" CACHE INTERNAL "")
      if(NOT _probe_ok)
        file(WRITE "${CMAKE_BINARY_DIR}/gloo_probe.log" "${_probe_log}")
      endif()
    endif()
    if(NOT LOWBIT_GLOO_PROBE_OK)
      set(_why "the Gloo headers at ${LOWBIT_GLOO_INCLUDE_DIR} do not compile or link with the wheel's ProcessGroupGloo (log: ${CMAKE_BINARY_DIR}/gloo_probe.log)")
    endif()
  endif()
  if(_why STREQUAL "")
    set(LOWBIT_WITH_GLOO ON)
    set(_gloo_version "")
    file(STRINGS "${LOWBIT_GLOO_INCLUDE_DIR}/gloo/config.h" _v REGEX "define GLOO_VERSION_(MAJOR|MINOR|PATCH) ")
    string(REGEX REPLACE "[^0-9;]" "" _v "${_v}")
    string(REPLACE ";" "." _gloo_version "${_v}")
    set(LOWBIT_GLOO_TEXT "ON (headers: ${LOWBIT_GLOO_INCLUDE_DIR}, gloo ${_gloo_version}; probe against libtorch_cpu's ProcessGroupGloo passed)")
  elseif(LOWBIT_GLOO STREQUAL "ON")
    message(FATAL_ERROR "LOWBIT_GLOO=ON: ${_why}")
  else()
    set(LOWBIT_GLOO_TEXT "OFF (${_why})")
  endif()
else()
  set(LOWBIT_GLOO_TEXT "OFF")
endif()

if(LOWBIT_WITH_DISTRIBUTED AND NOT LOWBIT_NCCL STREQUAL "OFF")
  set(_why "")
  if(NOT LOWBIT_WITH_CUDA)
    set(_why "not a CUDA build")
  else()
    get_filename_component(_site "${TORCH_PACKAGE_DIR}" DIRECTORY)
    find_path(LOWBIT_NCCL_INCLUDE_DIR nccl.h HINTS "${_site}/nvidia/nccl/include" "${_site}/nvidia/nccl_cu13/include"
              DOC "Folder holding nccl.h")
    if(NOT LOWBIT_NCCL_INCLUDE_DIR)
      set(_why "nccl.h not found (pip install nvidia-nccl-cu13, or set LOWBIT_NCCL_INCLUDE_DIR)")
    elseif(NOT TARGET lowbit::torch_cuda)
      set(_why "the torch wheel has no libtorch_cuda")
    endif()
  endif()
  if(_why STREQUAL "")
    set(LOWBIT_WITH_NCCL ON)
    set(LOWBIT_NCCL_TEXT "ON (nccl.h: ${LOWBIT_NCCL_INCLUDE_DIR})")
  elseif(LOWBIT_NCCL STREQUAL "ON")
    message(FATAL_ERROR "LOWBIT_NCCL=ON: ${_why}")
  else()
    set(LOWBIT_NCCL_TEXT "OFF (${_why})")
  endif()
else()
  set(LOWBIT_NCCL_TEXT "OFF")
endif()

if(LOWBIT_WITH_DISTRIBUTED)
  set(LOWBIT_DISTRIBUTED_TEXT "ON; Gloo ${LOWBIT_GLOO_TEXT}; NCCL ${LOWBIT_NCCL_TEXT}")
endif()
message(STATUS "lowbit distributed: ${LOWBIT_DISTRIBUTED_TEXT}")

# Per-source settings: only the backend files see Gloo's / NCCL's headers.
function(lowbit_configure_distributed target)
  if(NOT LOWBIT_WITH_DISTRIBUTED)
    return()
  endif()
  if(LOWBIT_WITH_GLOO)
    set_source_files_properties("${PROJECT_SOURCE_DIR}/distributed/gloo_backend.cpp" TARGET_DIRECTORY ${target}
      PROPERTIES COMPILE_DEFINITIONS USE_C10D_GLOO INCLUDE_DIRECTORIES "${LOWBIT_GLOO_INCLUDE_DIR}")
  endif()
  if(LOWBIT_WITH_NCCL)
    set_source_files_properties("${PROJECT_SOURCE_DIR}/distributed/nccl_backend.cpp" TARGET_DIRECTORY ${target}
      PROPERTIES COMPILE_DEFINITIONS USE_C10D_NCCL INCLUDE_DIRECTORIES "${LOWBIT_NCCL_INCLUDE_DIR}")
  endif()
endfunction()
