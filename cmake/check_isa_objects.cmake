# ctest check (cpu_kernels_share_no_code): an object built for one instruction set
# (csrc/cpu/*_avx2.cpp, *_avx512.cpp) must define no weak or vague-linkage symbol. Such a symbol
# (an inline function or template member the compiler did not inline) is merged with the other
# objects' copies at link time, and the linker may keep the AVX-512 one for code that runs on any
# CPU. Run as: cmake -DNM=<nm> -DOBJECTS=<list> -P check_isa_objects.cmake
set(bad "")
foreach(obj IN LISTS OBJECTS)
  if(NOT obj MATCHES "_avx(2|512)\\.cpp\\.o(bj)?$")
    continue()
  endif()
  execute_process(COMMAND "${NM}" -C "${obj}" OUTPUT_VARIABLE symbols RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${obj}")
  endif()
  string(REPLACE "\n" ";" lines "${symbols}")
  foreach(line IN LISTS lines)
    if(line MATCHES " [WVu] " AND NOT line MATCHES "__gxx_personality_v0|typeinfo|vtable")
      list(APPEND bad "${obj}: ${line}")
    endif()
  endforeach()
endforeach()
if(bad)
  list(JOIN bad "\n  " text)
  message(FATAL_ERROR "weak symbols in per-instruction-set objects (inline them or keep them out of those files):\n  ${text}")
endif()
message(STATUS "per-instruction-set objects define no weak symbols")
