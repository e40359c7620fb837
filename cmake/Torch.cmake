# LibTorch, with one precompiled header shared by every torch target (REUSE_FROM):
# torch headers cost ~30 s per translation unit without it, ~8 s with it.
find_package(Torch REQUIRED)

add_library(accel_torch INTERFACE)
target_link_libraries(accel_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(accel_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})

add_library(accel_torch_pch STATIC ${CMAKE_CURRENT_LIST_DIR}/torch_pch.cpp)
target_link_libraries(accel_torch_pch PUBLIC accel_torch)
target_precompile_headers(accel_torch_pch PRIVATE
  <torch/torch.h>
  <torch/script.h>
  <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
  <torch/csrc/distributed/c10d/TCPStore.hpp>
  <torch/csrc/distributed/c10d/HashStore.hpp>
  <torch/csrc/distributed/c10d/FileStore.hpp>
  <torch/csrc/distributed/c10d/PrefixStore.hpp>)

# Links a target against LibTorch and reuses the shared precompiled header.
function(accel_use_torch target)
  target_link_libraries(${target} PUBLIC accel_torch)
  target_precompile_headers(${target} REUSE_FROM accel_torch_pch)
  # A rejected header would silently triple compile times; make it a build error instead.
  target_compile_options(${target} PRIVATE -Werror=invalid-pch)
endfunction()
