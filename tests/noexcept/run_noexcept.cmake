# Runs every case of the -fno-exceptions program (main.cpp) and checks its outcome:
#   cases with a checking handler: exit code 0 and "PASSED [<case>]" (the handler saw the
#     expected kind and message, and no output had been written);
#   "default": no handler installed, so logitkit prints "logitkit: out_of_range: <message>" to
#     stderr and aborts;
#   "returns": the installed handler returns, so logitkit prints a note and aborts.
#
#   cmake -DEXE=<logitkit_noexcept> -P run_noexcept.cmake
cmake_minimum_required(VERSION 3.16)
if(NOT EXE OR NOT EXISTS "${EXE}")
  message(FATAL_ERROR "run_noexcept.cmake: EXE='${EXE}' does not exist")
endif()

set(_failures 0)
set(_axis_message "logitkit::softmax: axis = 2 is out of range for a tensor of rank 2; expected -2 <= axis < 2")

foreach(_case axis shape temperature overlap logsumexp backward null view pool valid)
  execute_process(COMMAND "${EXE}" ${_case} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  string(STRIP "${_out}${_err}" _all)
  if(_rc STREQUAL "0" AND _out MATCHES "PASSED \\[${_case}\\]")
    message("ok    ${_case}: ${_all}")
  else()
    message("FAIL  ${_case} (exit ${_rc}): ${_all}")
    math(EXPR _failures "${_failures} + 1")
  endif()
endforeach()

# The default handler: message on stderr, then std::abort() (the result is not 0; on POSIX
# CMake reports the signal, e.g. "Subprocess aborted").
execute_process(COMMAND "${EXE}" default RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
string(STRIP "${_err}" _err)
if(NOT _rc STREQUAL "0" AND _err STREQUAL "logitkit: out_of_range: ${_axis_message}")
  message("ok    default: aborted (${_rc}) after printing: ${_err}")
else()
  message("FAIL  default: expected an abort after \"logitkit: out_of_range: ${_axis_message}\" on stderr; "
          "got exit ${_rc}, stdout \"${_out}\", stderr \"${_err}\"")
  math(EXPR _failures "${_failures} + 1")
endif()

# A handler that returns: logitkit must still stop.
execute_process(COMMAND "${EXE}" returns RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
string(STRIP "${_err}" _err)
if(NOT _rc STREQUAL "0" AND _out MATCHES "returning handler called: kind=out_of_range"
   AND _err MATCHES "the error handler returned" AND NOT _out MATCHES "FAILED")
  message("ok    returns: aborted (${_rc}) after the handler returned: ${_err}")
else()
  message("FAIL  returns: expected an abort after the handler returned; got exit ${_rc}, stdout \"${_out}\", "
          "stderr \"${_err}\"")
  math(EXPR _failures "${_failures} + 1")
endif()

if(_failures GREATER 0)
  message(FATAL_ERROR "logitkit -fno-exceptions error handler: ${_failures} case(s) failed")
endif()
message("logitkit -fno-exceptions error handler: all cases passed")
