# What `cmake --install` and `cpack -G DEB` ship: the launcher and example jobs, the static
# libraries with their headers, and a CMake package (find_package(accel CONFIG)) that finds the
# same LibTorch the libraries were built against. A pkg-config file covers the torch-free part.
include(CMakePackageConfigHelpers)

set(ACCEL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/accel)
install(EXPORT accelTargets NAMESPACE accel:: DESTINATION ${ACCEL_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/accelConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/accelConfig.cmake INSTALL_DESTINATION ${ACCEL_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/accelConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/accelConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/accelConfigVersion.cmake
        DESTINATION ${ACCEL_CMAKE_DIR})

# pkg-config files for the torch-free libraries. Every library is static, so each file lists
# what linking it needs in Libs/Requires (not the .private fields, which need --static).
# The prefix is relative to the .pc file, so the same file works under any prefix.
file(RELATIVE_PATH ACCEL_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
function(accel_pkg_config pc_component pc_description pc_requires pc_libs)
  configure_file(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/accel.pc.in
                 ${CMAKE_CURRENT_BINARY_DIR}/accel-${pc_component}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/accel-${pc_component}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()
accel_pkg_config(core "accel-launch's core: errors, text and file helpers, the launcher/worker environment contract, the hardware probe"
                 "" -l${CMAKE_DL_LIBS})
accel_pkg_config(launch "accel-launch's launcher: argument resolution, worker spawning and supervision"
                 "accel-core" -pthread)
accel_pkg_config(config "accel-launch's config files (YAML/JSON), their schema and commands"
                 "accel-launch yaml-cpp" "")
accel_pkg_config(batch "accel-launch's offline batch files: requests, output lines, results journal, progress"
                 "accel-core" "")

# The GPT-2 vocabulary that GPT2Tokenizer::bundled() reads beside installed programs.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/data/gpt2/ DESTINATION ${ACCEL_GPT2_INSTALL_DIR})

# A parent project that adds us with add_subdirectory() packages itself.
if(NOT PROJECT_IS_TOP_LEVEL)
  return()
endif()
set(CPACK_PACKAGE_NAME accel-launch)
set(CPACK_PACKAGE_VENDOR "accel-launch")
set(CPACK_PACKAGE_CONTACT "accel-launch maintainers <accel-launch@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Launcher and LibTorch runtime for distributed inference")
set(CPACK_PACKAGE_INSTALL_DIRECTORY accel-launch)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
# Runtime dependencies come from the binaries' own shared-library needs (dpkg-shlibdeps); the
# static libraries need yaml-cpp's to link (the launcher itself has it linked in).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libyaml-cpp-dev")
set(CPACK_GENERATOR DEB)
include(CPack)
