# cmake -P tests/build/torch_abi_test.cmake: the ABI detection of cmake/TorchAbi.cmake.
include(${CMAKE_CURRENT_LIST_DIR}/../../cmake/TorchAbi.cmake)

function(expect_abi flags wanted)
  accel_torch_cxx11_abi("${flags}" got)
  if(NOT got STREQUAL wanted)
    message(FATAL_ERROR "TORCH_CXX_FLAGS '${flags}': detected ABI ${got}, expected ${wanted}")
  endif()
endfunction()

expect_abi("-D_GLIBCXX_USE_CXX11_ABI=1" 1)
expect_abi("-D_GLIBCXX_USE_CXX11_ABI=0" 0)
expect_abi("-fabi-version=11 -D_GLIBCXX_USE_CXX11_ABI=0" 0)
expect_abi("" 1)
# Agreeing values pass (a mismatch ends the configure step; see the ctest entries that run
# this file's mismatch mode).
accel_check_cxx11_abi(1 1 "" "/opt/libtorch")
accel_check_cxx11_abi(1 1 1 "/opt/libtorch")
if(MISMATCH STREQUAL "toolchain")
  accel_check_cxx11_abi(0 1 "" "/opt/libtorch-pre-cxx11")
elseif(MISMATCH STREQUAL "python")
  accel_check_cxx11_abi(1 1 0 "/opt/libtorch")
endif()
