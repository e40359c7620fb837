# The chat template interpreter's sources: torch-free, like the tokenizer's. lib/models builds
# them into accel_models; fuzz/ includes this file to build them without LibTorch.
set(ACCEL_JINJA_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/src/jinja_value.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/jinja_lexer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/jinja_parser.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/jinja_interpreter.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/jinja_expressions.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/jinja_builtins.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/jinja_filters.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/jinja_strings.cpp)
