# Shows the fuzz test's one-line summary (executions, executions per second) after ctest's own
# output, where a passing test's output is otherwise hidden. Run by ctest through the
# CTestCustom.cmake that tests/CMakeLists.txt writes into the build tree:
#   before the tests: cmake -DACTION=clear -DSUMMARY_FILE=<file> -P summary.cmake
#   after the tests:  cmake -DACTION=print -DSUMMARY_FILE=<file> -P summary.cmake
# so only a summary written by this ctest run is printed.
if(NOT SUMMARY_FILE)
  return()
endif()
if(ACTION STREQUAL "clear")
  file(REMOVE "${SUMMARY_FILE}")
elseif(ACTION STREQUAL "print" AND EXISTS "${SUMMARY_FILE}")
  file(READ "${SUMMARY_FILE}" _summary)
  string(STRIP "${_summary}" _summary)
  message("${_summary}")
endif()
