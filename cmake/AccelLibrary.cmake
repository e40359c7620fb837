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

# Where the shipped GPT-2 vocabulary (data/gpt2) is installed, and the compile definitions that
# let `target`'s tokenizer find it: beside an installed program, else in this source tree. On the
# target, not the source: a source with definitions of its own would leave the unity build.
set(ACCEL_GPT2_INSTALL_DIR ${CMAKE_INSTALL_DATADIR}/accel/gpt2)
function(accel_locate_gpt2_data target)
  file(RELATIVE_PATH from_bindir /${CMAKE_INSTALL_BINDIR} /${ACCEL_GPT2_INSTALL_DIR})
  target_compile_definitions(${target} PRIVATE
    "ACCEL_GPT2_DATA_DIR=\"${PROJECT_SOURCE_DIR}/data/gpt2\"" "ACCEL_GPT2_DATA_FROM_BINDIR=\"${from_bindir}\"")
endfunction()
