# LibTorch, with one precompiled header shared by the sources of torch targets that include
# torch (REUSE_FROM): torch headers cost ~30 s per translation unit without it, ~8 s with it.
# Any LibTorch works: Debian's (the default), the one inside a pip torch
# (scripts/build.sh TORCH=pip), or an archive (Torch_DIR / CMAKE_PREFIX_PATH).
find_package(Torch REQUIRED)

# find_package() makes directory-scoped imported targets; a parent project that adds us with
# add_subdirectory() links accel::runtime from its own directory and must see `torch` there.
get_directory_property(accel_torch_imported IMPORTED_TARGETS)
foreach(imported IN LISTS accel_torch_imported)
  get_target_property(already_global ${imported} IMPORTED_GLOBAL)
  if(NOT already_global)
    set_target_properties(${imported} PROPERTIES IMPORTED_GLOBAL TRUE)
  endif()
endforeach()

# The C++ ABI torch was built with must be ours (cmake/TorchAbi.cmake). scripts/build.sh passes
# ACCEL_EXPECTED_CXX11_ABI, what the pip torch itself reports, as a cross-check.
include(${CMAKE_CURRENT_LIST_DIR}/TorchAbi.cmake)
include(CheckCXXSourceCompiles)
check_cxx_source_compiles("#include <string>
#if !_GLIBCXX_USE_CXX11_ABI
#error pre-C++11 ABI
#endif
int main() { return 0; }" ACCEL_TOOLCHAIN_CXX11_ABI)
accel_torch_cxx11_abi("${TORCH_CXX_FLAGS}" ACCEL_TORCH_CXX11_ABI)
set(ACCEL_EXPECTED_CXX11_ABI "" CACHE STRING "The C++11 ABI flag (0/1) the chosen torch reports; empty: not checked")
if(ACCEL_TOOLCHAIN_CXX11_ABI)
  set(accel_toolchain_abi 1)
else()
  set(accel_toolchain_abi 0)
endif()
accel_check_cxx11_abi("${ACCEL_TORCH_CXX11_ABI}" ${accel_toolchain_abi} "${ACCEL_EXPECTED_CXX11_ABI}" "${Torch_DIR}")
message(STATUS "accel: LibTorch ${Torch_VERSION} from ${Torch_DIR} (_GLIBCXX_USE_CXX11_ABI=${ACCEL_TORCH_CXX11_ABI})")

add_library(accel_torch INTERFACE)
set_target_properties(accel_torch PROPERTIES EXPORT_NAME torch)
target_link_libraries(accel_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(accel_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
install(TARGETS accel_torch EXPORT accelTargets)

# Two precompiled headers. Most code needs tensors, modules and c10d, whose headers a source loads
# from the header in ~5 s; all of <torch/torch.h> (optimizers, data loaders, every nn layer) costs
# ~11 s per source even precompiled, so only the targets that use that much take the whole API.
set(accel_torch_core_headers
  <torch/types.h>
  <torch/utils.h>
  <torch/nn/module.h>
  <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
  <torch/csrc/distributed/c10d/TCPStore.hpp>
  <torch/csrc/distributed/c10d/HashStore.hpp>
  <torch/csrc/distributed/c10d/FileStore.hpp>
  <torch/csrc/distributed/c10d/PrefixStore.hpp>)
add_library(accel_torch_pch STATIC ${CMAKE_CURRENT_LIST_DIR}/torch_pch.cpp)
target_link_libraries(accel_torch_pch PUBLIC accel_torch)
target_precompile_headers(accel_torch_pch PRIVATE ${accel_torch_core_headers})
add_library(accel_torch_whole_pch STATIC ${CMAKE_CURRENT_LIST_DIR}/torch_pch.cpp)
target_link_libraries(accel_torch_whole_pch PUBLIC accel_torch)
target_precompile_headers(accel_torch_whole_pch PRIVATE <torch/torch.h> <torch/script.h> ${accel_torch_core_headers})

# The project's header directories, where accel_includes_torch() follows quoted and <accel/...>
# includes.
file(GLOB ACCEL_HEADER_DIRS LIST_DIRECTORIES true ${PROJECT_SOURCE_DIR}/lib/*/include)

# Sets `result` to whether `file` includes a LibTorch header (torch/, ATen/, c10/, caffe2/),
# directly or through the project's own headers. Memoized per file for the whole configure run.
function(accel_includes_torch file result)
  string(MAKE_C_IDENTIFIER "${file}" key)
  get_property(known GLOBAL PROPERTY ACCEL_INCLUDES_TORCH_${key} SET)
  if(known)
    get_property(value GLOBAL PROPERTY ACCEL_INCLUDES_TORCH_${key})
    set(${result} ${value} PARENT_SCOPE)
    return()
  endif()
  set_property(GLOBAL PROPERTY ACCEL_INCLUDES_TORCH_${key} FALSE)  # an include cycle ends here
  get_filename_component(own_dir "${file}" DIRECTORY)
  file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
  set(value FALSE)
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[<\"]([^>\"]+)[>\"].*" "\\1" header "${line}")
    if(header MATCHES "^(torch|ATen|c10|caffe2)/")
      set(value TRUE)
      break()
    endif()
    foreach(dir IN LISTS own_dir ACCEL_HEADER_DIRS)
      if(EXISTS "${dir}/${header}" AND NOT IS_DIRECTORY "${dir}/${header}")
        accel_includes_torch("${dir}/${header}" nested)
        set(value ${nested})
        break()
      endif()
    endforeach()
    if(value)
      break()
    endif()
  endforeach()
  set_property(GLOBAL PROPERTY ACCEL_INCLUDES_TORCH_${key} ${value})
  set(${result} ${value} PARENT_SCOPE)
endfunction()

# accel_use_torch(<target> [WHOLE_API]): links a target against LibTorch. Its sources that
# include torch reuse a shared precompiled header (WHOLE_API: the one with all of
# <torch/torch.h>); the others skip it, since loading it costs seconds even where nothing uses
# it. Call after the target has all its sources; the choice is made at configure time (a source that
# starts or stops including torch compiles correctly either way, and fast again after cmake reruns).
function(accel_use_torch target)
  cmake_parse_arguments(USE "WHOLE_API" "" "" ${ARGN})
  target_link_libraries(${target} PUBLIC accel_torch)
  # A unity target parses torch's headers once anyway: a precompiled header would only put its
  # own build (~40 s) before it.
  get_target_property(unity ${target} UNITY_BUILD)
  if(unity)
    return()
  endif()
  if(USE_WHOLE_API)
    target_precompile_headers(${target} REUSE_FROM accel_torch_whole_pch)
  else()
    target_precompile_headers(${target} REUSE_FROM accel_torch_pch)
  endif()
  # A rejected header would silently triple compile times; make it a build error instead.
  target_compile_options(${target} PRIVATE -Werror=invalid-pch)
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  foreach(source IN LISTS sources)
    get_filename_component(path "${source}" ABSOLUTE BASE_DIR "${source_dir}")
    if(NOT path MATCHES "\\.(cpp|cc|cxx)$")
      continue()
    endif()
    accel_includes_torch("${path}" uses_torch)
    if(NOT uses_torch)
      set_source_files_properties("${source}" TARGET_DIRECTORY ${target} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    endif()
  endforeach()
endfunction()
