# Configures, builds and runs one logitkit consumer project in a fresh directory.
#
#   cmake -DMODE=fetchcontent|find_package
#         -DCONSUMER_SOURCE_DIR=<consumer project> -DWORK_DIR=<scratch dir under the build tree>
#         -DLOGITKIT_SOURCE_DIR=<logitkit sources> -DLOGITKIT_BINARY_DIR=<logitkit build tree>
#         [-DCMAKE_CXX_COMPILER=...] [-DCMAKE_GENERATOR=...] [-DCMAKE_MAKE_PROGRAM=...] [-DCONFIG=...]
#         -P run_consumer.cmake
#
# find_package mode first installs the logitkit build tree into <WORK_DIR>/prefix and points the
# consumer's CMAKE_PREFIX_PATH there.
cmake_minimum_required(VERSION 3.16)

foreach(_var MODE CONSUMER_SOURCE_DIR WORK_DIR LOGITKIT_SOURCE_DIR LOGITKIT_BINARY_DIR)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: ${_var} is not set")
  endif()
endforeach()
if(NOT MODE STREQUAL "fetchcontent" AND NOT MODE STREQUAL "find_package")
  message(FATAL_ERROR "run_consumer.cmake: MODE must be fetchcontent or find_package, not '${MODE}'")
endif()
if(NOT CONFIG)
  set(CONFIG Release)
endif()

function(run_step what)
  string(REPLACE ";" " " _shown "${ARGN}")
  message(STATUS "[${MODE}] ${what}: ${_shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] ${what} failed (${_rc})")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(_configure_args
  -S "${CONSUMER_SOURCE_DIR}"
  -B "${WORK_DIR}/build"
  "-DCMAKE_BUILD_TYPE=${CONFIG}"
  "-DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON")
if(CMAKE_GENERATOR)
  list(APPEND _configure_args -G "${CMAKE_GENERATOR}")
endif()
if(CMAKE_CXX_COMPILER)
  list(APPEND _configure_args "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}")
endif()
if(CMAKE_MAKE_PROGRAM)
  list(APPEND _configure_args "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}")
endif()

if(MODE STREQUAL "find_package")
  set(_prefix "${WORK_DIR}/prefix")
  run_step("install logitkit" "${CMAKE_COMMAND}" --install "${LOGITKIT_BINARY_DIR}"
           --prefix "${_prefix}" --config "${CONFIG}")
  list(APPEND _configure_args "-DCMAKE_PREFIX_PATH=${_prefix}")
else()
  list(APPEND _configure_args "-DLOGITKIT_SOURCE_DIR=${LOGITKIT_SOURCE_DIR}")
endif()

run_step("configure" "${CMAKE_COMMAND}" ${_configure_args})

if(MODE STREQUAL "find_package")
  # The package must come from the fresh install, not from the source or build tree.
  file(STRINGS "${WORK_DIR}/build/CMakeCache.txt" _dir_line REGEX "^logitkit_DIR:")
  string(REGEX REPLACE "^logitkit_DIR:[A-Z]+=" "" _found_dir "${_dir_line}")
  get_filename_component(_real_prefix "${_prefix}" REALPATH)
  get_filename_component(_real_found "${_found_dir}" REALPATH)
  string(FIND "${_real_found}/" "${_real_prefix}/" _pos)
  if(NOT _pos EQUAL 0)
    message(FATAL_ERROR "[${MODE}] logitkit was found in '${_found_dir}', not under '${_prefix}'")
  endif()
endif()

run_step("build" "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" --config "${CONFIG}")

set(_exe "")
foreach(_candidate consumer consumer.exe ${CONFIG}/consumer ${CONFIG}/consumer.exe)
  if(NOT _exe AND EXISTS "${WORK_DIR}/build/${_candidate}" AND NOT IS_DIRECTORY "${WORK_DIR}/build/${_candidate}")
    set(_exe "${WORK_DIR}/build/${_candidate}")
  endif()
endforeach()
if(NOT _exe)
  message(FATAL_ERROR "[${MODE}] the consumer executable was not found under ${WORK_DIR}/build")
endif()
run_step("run" "${_exe}")
message(STATUS "[${MODE}] consumer built and ran successfully")
