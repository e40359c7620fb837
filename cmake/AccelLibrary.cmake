# accel_add_library(<component> <sources...>): the static library accel_<component>, its alias
# accel::<component>, and its public headers under lib/<component>/include.
function(accel_add_library component)
  add_library(accel_${component} STATIC ${ARGN})
  add_library(accel::${component} ALIAS accel_${component})
  target_include_directories(accel_${component} PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
endfunction()
