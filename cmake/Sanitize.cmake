# ACCEL_SANITIZE: build everything with the named sanitizers (gcc or clang), e.g.
#   cmake -S . -B build-asan -DACCEL_SANITIZE=address,undefined
# Any report fails the run: UBSan is made fatal instead of printing and going on.
# ACCEL_FUZZ: the libFuzzer targets in fuzz/ (clang only); implies address,undefined.
set(ACCEL_SANITIZE "" CACHE STRING "Sanitizers, comma-separated: address, undefined")
option(ACCEL_FUZZ "Build the libFuzzer targets in fuzz/ (needs clang)" OFF)

if(ACCEL_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "ACCEL_FUZZ needs clang for libFuzzer, but the compiler is ${CMAKE_CXX_COMPILER_ID}; "
                        "configure a fresh build directory with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  if(NOT ACCEL_SANITIZE)
    set(ACCEL_SANITIZE "address,undefined")
  endif()
  # Coverage instrumentation for every library; only the fuzz targets link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

if(ACCEL_SANITIZE)
  string(REPLACE "," ";" accel_sanitizers "${ACCEL_SANITIZE}")
  foreach(sanitizer IN LISTS accel_sanitizers)
    if(NOT sanitizer MATCHES "^(address|undefined)$")
      message(FATAL_ERROR "ACCEL_SANITIZE=${ACCEL_SANITIZE}: unknown sanitizer '${sanitizer}'; "
                          "accepted: address, undefined, or both comma-separated")
    endif()
  endforeach()
  add_compile_options(-fsanitize=${ACCEL_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${ACCEL_SANITIZE})
endif()
