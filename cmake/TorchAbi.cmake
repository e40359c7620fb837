# The libstdc++ ABI (_GLIBCXX_USE_CXX11_ABI) that a LibTorch was built with must be the one all
# of our code uses: std::string and std::list change layout between the two, and a mismatch
# links (or fails to) in confusing ways. Pure functions, so tests can run them with cmake -P.

# accel_torch_cxx11_abi(<TORCH_CXX_FLAGS> <out>): 0 or 1 from TorchConfig's flags; 1 when they
# do not say (LibTorch only states it on Linux, where the old ABI is possible).
function(accel_torch_cxx11_abi flags out)
  if(flags MATCHES "-D_GLIBCXX_USE_CXX11_ABI=([01])")
    set(${out} ${CMAKE_MATCH_1} PARENT_SCOPE)
  else()
    set(${out} 1 PARENT_SCOPE)
  endif()
endfunction()

# accel_check_cxx11_abi(<torch abi> <toolchain abi> <expected or empty> <where>): fails the
# configure step, naming the LibTorch and the way out, unless the three agree.
function(accel_check_cxx11_abi torch_abi toolchain_abi expected where)
  if(NOT expected STREQUAL "" AND NOT expected STREQUAL torch_abi)
    message(FATAL_ERROR
      "The LibTorch in ${where} says _GLIBCXX_USE_CXX11_ABI=${torch_abi} in TorchConfig.cmake, but its Python "
      "torch reports ${expected} (torch._C._GLIBCXX_USE_CXX11_ABI): the CMake files belong to another "
      "torch. Point Torch_DIR (or TORCH=pip's PYTHON) at one installation.")
  endif()
  if(NOT torch_abi STREQUAL toolchain_abi)
    message(FATAL_ERROR
      "The LibTorch in ${where} was built with the pre-C++11 libstdc++ ABI (_GLIBCXX_USE_CXX11_ABI=${torch_abi}), "
      "but this compiler and the system libraries accel links (yaml-cpp, ICU) use _GLIBCXX_USE_CXX11_ABI=${toolchain_abi}. "
      "Use a LibTorch built with the C++11 ABI: pip torch 2.7 or newer, the 'cxx11 ABI' LibTorch archive, or "
      "Debian's libtorch-dev (TORCH=debian).")
  endif()
endfunction()
