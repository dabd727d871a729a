# Checks of the generated single header single_include/logitkit/logitkit.hpp.
#
#   MODE=up_to_date: regenerates it from include/ with tools/amalgamate.py into a temporary file
#                    and compares it with the committed one.
#   MODE=consumer:   configures, builds and runs tests/single_include/main.cpp with only
#                    single_include/ on the include path.
#
#   cmake -DMODE=... -DLOGITKIT_SOURCE_DIR=<sources> -DWORK_DIR=<scratch> [-DPYTHON=<python3>]
#         [-DCMAKE_CXX_COMPILER=...] [-DCMAKE_GENERATOR=...] [-DCMAKE_MAKE_PROGRAM=...]
#         [-DCONFIG=...] -P run_single_include.cmake
cmake_minimum_required(VERSION 3.16)

foreach(_var MODE LOGITKIT_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run_single_include.cmake: ${_var} is not set")
  endif()
endforeach()
set(_committed "${LOGITKIT_SOURCE_DIR}/single_include/logitkit/logitkit.hpp")
if(NOT EXISTS "${_committed}")
  message(FATAL_ERROR "FAILED: ${_committed} does not exist; generate it with: python3 tools/amalgamate.py")
endif()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

if(MODE STREQUAL "up_to_date")
  if(NOT PYTHON OR NOT EXISTS "${PYTHON}")
    message(FATAL_ERROR "FAILED: python3 was not found (PYTHON='${PYTHON}'); it is needed to regenerate the "
                        "single header and compare it (install python3 and configure again)")
  endif()
  set(_fresh "${WORK_DIR}/logitkit.hpp")
  execute_process(
    COMMAND "${PYTHON}" "${LOGITKIT_SOURCE_DIR}/tools/amalgamate.py" --output "${_fresh}"
    RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "FAILED: tools/amalgamate.py failed (${_rc}):\n${_out}${_err}")
  endif()
  if(_err)
    message("${_err}")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${_fresh}" "${_committed}" RESULT_VARIABLE _same)
  if(NOT _same EQUAL 0)
    # Show what changed.
    execute_process(COMMAND "${PYTHON}" "${LOGITKIT_SOURCE_DIR}/tools/amalgamate.py" --check OUTPUT_VARIABLE _o
                    ERROR_VARIABLE _e)
    message("${_o}${_e}")
    message(FATAL_ERROR "FAILED: single_include/logitkit/logitkit.hpp is out of date with include/; "
                        "regenerate it with: python3 tools/amalgamate.py")
  endif()
  message("single_include/logitkit/logitkit.hpp is up to date with include/")
elseif(MODE STREQUAL "consumer")
  if(NOT CONFIG)
    set(CONFIG Release)
  endif()
  set(_args -S "${LOGITKIT_SOURCE_DIR}/tests/single_include" -B "${WORK_DIR}/build"
            "-DCMAKE_BUILD_TYPE=${CONFIG}" "-DLOGITKIT_SINGLE_INCLUDE_DIR=${LOGITKIT_SOURCE_DIR}/single_include")
  if(CMAKE_GENERATOR)
    list(APPEND _args -G "${CMAKE_GENERATOR}")
  endif()
  if(CMAKE_CXX_COMPILER)
    list(APPEND _args "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}")
  endif()
  if(CMAKE_MAKE_PROGRAM)
    list(APPEND _args "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}")
  endif()
  foreach(_step configure build)
    if(_step STREQUAL "configure")
      set(_cmd "${CMAKE_COMMAND}" ${_args})
    else()
      set(_cmd "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" --config "${CONFIG}")
    endif()
    execute_process(COMMAND ${_cmd} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
    if(NOT _rc EQUAL 0)
      message("${_out}")
      message(FATAL_ERROR "FAILED: ${_step} of the single-header consumer failed (${_rc})")
    endif()
  endforeach()
  set(_exe "")
  foreach(_c consumer consumer.exe ${CONFIG}/consumer ${CONFIG}/consumer.exe)
    if(NOT _exe AND EXISTS "${WORK_DIR}/build/${_c}" AND NOT IS_DIRECTORY "${WORK_DIR}/build/${_c}")
      set(_exe "${WORK_DIR}/build/${_c}")
    endif()
  endforeach()
  if(NOT _exe)
    message(FATAL_ERROR "FAILED: the single-header consumer was not built")
  endif()
  execute_process(COMMAND "${_exe}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  message("${_out}")
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "FAILED: the single-header consumer failed (${_rc})")
  endif()
else()
  message(FATAL_ERROR "run_single_include.cmake: MODE must be up_to_date or consumer, not '${MODE}'")
endif()
