# accel_add_library(<component> <sources...>): the static library accel_<component>, its alias
# accel::<component> (the same name an installed package gives it), its public headers under
# lib/<component>/include, and their install rules.
function(accel_add_library component)
  add_library(accel_${component} STATIC ${ARGN})
  add_library(accel::${component} ALIAS accel_${component})
  set_target_properties(accel_${component} PROPERTIES EXPORT_NAME ${component})
  target_include_directories(accel_${component} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  # The public headers use designated initializers: consumers need C++20 too.
  target_compile_features(accel_${component} PUBLIC cxx_std_20)
  install(TARGETS accel_${component} EXPORT accelTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()
