# Configures the logitkit fuzzers (tests/fuzz) with clang in a fresh directory, builds one of them,
# runs it for a bounded time from its seed corpus, and fails on any finding.
#
#   cmake -DFUZZ_CXX=<clang++> -DFUZZ_SOURCE_DIR=<logitkit>/tests/fuzz -DWORK_DIR=<scratch dir>
#         [-DFUZZ_TARGET=fuzz_kernels|fuzz_losses] [-DFUZZ_CORPUS=corpus|corpus_losses]
#         [-DFUZZ_SECONDS=45] [-DFUZZ_ISA=avx2|avx512|native] [-DFUZZ_SKIP_KNOWN_ISSUES=OFF]
#         [-DSUMMARY_FILE=<file>]
#         [-DCMAKE_GENERATOR=...] [-DCMAKE_MAKE_PROGRAM=...] -P run_fuzz.cmake
#
# FUZZ_CORPUS names the seed directory under FUZZ_SOURCE_DIR (default: corpus for fuzz_kernels,
# corpus_losses for fuzz_losses). Prints libFuzzer's final statistics (executions, executions per
# second) and, on a finding, the report, the saved input and the command that reproduces it. The
# whole libFuzzer log is kept in <WORK_DIR>/fuzz.log. A CPU without the instruction set prints
# "SKIPPED: ..." (ctest: skipped).
cmake_minimum_required(VERSION 3.16)

foreach(_var FUZZ_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run_fuzz.cmake: ${_var} is not set")
  endif()
endforeach()
if(NOT FUZZ_SECONDS)
  set(FUZZ_SECONDS 45)
endif()
if(NOT FUZZ_TARGET)
  set(FUZZ_TARGET fuzz_kernels)
endif()
if(NOT FUZZ_CORPUS)
  if(FUZZ_TARGET STREQUAL "fuzz_losses")
    set(FUZZ_CORPUS corpus_losses)
  else()
    set(FUZZ_CORPUS corpus)
  endif()
endif()
set(_seed_dir "${FUZZ_SOURCE_DIR}/${FUZZ_CORPUS}")
if(NOT IS_DIRECTORY "${_seed_dir}")
  message(FATAL_ERROR "logitkit fuzz: FAILED: the seed corpus ${_seed_dir} does not exist")
endif()
if(NOT FUZZ_ISA)
  set(FUZZ_ISA avx2)
endif()
if(NOT DEFINED FUZZ_SKIP_KNOWN_ISSUES)
  set(FUZZ_SKIP_KNOWN_ISSUES OFF)
endif()

if(NOT FUZZ_CXX OR NOT EXISTS "${FUZZ_CXX}")
  message(FATAL_ERROR "logitkit fuzz: FAILED: clang++ was not found (FUZZ_CXX='${FUZZ_CXX}'). The fuzzer needs "
                      "clang with libFuzzer: on Debian/Ubuntu run scripts/deps.sh, which installs the packages "
                      "clang and libclang-rt-14-dev, then configure again (or set LOGITKIT_FUZZ_CXX).")
endif()

function(run_step what)
  string(REPLACE ";" " " _shown "${ARGN}")
  message(STATUS "[fuzz] ${what}: ${_shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  if(NOT _rc EQUAL 0)
    message("${_out}")
    message(FATAL_ERROR "logitkit fuzz: FAILED: ${what} failed (${_rc})")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/corpus" "${WORK_DIR}/artifacts")

set(_configure_args
  -S "${FUZZ_SOURCE_DIR}" -B "${WORK_DIR}/build"
  "-DCMAKE_CXX_COMPILER=${FUZZ_CXX}"
  "-DLOGITKIT_FUZZ_ISA=${FUZZ_ISA}"
  "-DLOGITKIT_FUZZ_SKIP_KNOWN_ISSUES=${FUZZ_SKIP_KNOWN_ISSUES}")
if(CMAKE_GENERATOR)
  list(APPEND _configure_args -G "${CMAKE_GENERATOR}")
endif()
if(CMAKE_MAKE_PROGRAM)
  list(APPEND _configure_args "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}")
endif()

string(TIMESTAMP _t0 "%s")
run_step("configure" "${CMAKE_COMMAND}" ${_configure_args})
run_step("build" "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" --target "${FUZZ_TARGET}")
string(TIMESTAMP _t1 "%s")
math(EXPR _build_s "${_t1} - ${_t0}")
message(STATUS "[fuzz] configured and built in ${_build_s} s")

set(_exe "${WORK_DIR}/build/${FUZZ_TARGET}")
set(_log "${WORK_DIR}/fuzz.log")
set(_args
  "-max_total_time=${FUZZ_SECONDS}"
  -max_len=4096 -len_control=0
  -timeout=30 -rss_limit_mb=2048
  -print_final_stats=1
  "-artifact_prefix=${WORK_DIR}/artifacts/"
  "${WORK_DIR}/corpus" "${_seed_dir}")
string(REPLACE ";" " " _shown "${_exe};${_args}")
message(STATUS "[fuzz] run: ${_shown}")
set(_env "${CMAKE_COMMAND}" -E env "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
         "ASAN_OPTIONS=detect_leaks=1:halt_on_error=1")
execute_process(COMMAND ${_env} "${_exe}" ${_args} RESULT_VARIABLE _rc OUTPUT_FILE "${_log}" ERROR_FILE "${_log}")
file(READ "${_log}" _out)

if(_out MATCHES "SKIPPED: this CPU lacks[^\n]*")
  message("${CMAKE_MATCH_0}")
  return()
endif()

# libFuzzer's final statistics.
set(_runs "?")
set(_rate "?")
set(_secs "?")
set(_new "?")
if(_out MATCHES "stat::number_of_executed_units: ([0-9]+)")
  set(_runs "${CMAKE_MATCH_1}")
endif()
if(_out MATCHES "stat::average_exec_per_sec: +([0-9]+)")
  set(_rate "${CMAKE_MATCH_1}")
endif()
if(_out MATCHES "stat::new_units_added: +([0-9]+)")
  set(_new "${CMAKE_MATCH_1}")
endif()
if(_out MATCHES "Done [0-9]+ runs in ([0-9]+) second")
  set(_secs "${CMAKE_MATCH_1}")
endif()
set(_path "?")
if(_out MATCHES "logitkit fuzz: SIMD path ([^ \n]+)")
  set(_path "${CMAKE_MATCH_1}")
endif()
file(GLOB _seeds "${_seed_dir}/*")
list(LENGTH _seeds _nseeds)
set(_summary "logitkit fuzz: ${FUZZ_TARGET}: ${_runs} executions in ${_secs} s (${_rate} exec/s), SIMD path ${_path} vs scalar, ${_nseeds} seed inputs, ${_new} new corpus inputs; log: ${_log}")

if(SUMMARY_FILE)
  file(WRITE "${SUMMARY_FILE}" "${_summary}\n")
endif()

if(NOT _rc EQUAL 0 OR _out MATCHES "ERROR: libFuzzer|ERROR: AddressSanitizer|runtime error:|logitkit fuzz: FAILED")
  # Show the report: from the first line of the finding to the end, at most ~16 KB.
  string(FIND "${_out}" "logitkit fuzz: FAILED" _pos)
  if(_pos LESS 0)
    string(REGEX MATCH "[^\n]*(==[0-9]+==ERROR|runtime error:)" _m "${_out}")
    if(_m)
      string(FIND "${_out}" "${_m}" _pos)
    endif()
  endif()
  if(_pos LESS 0)
    string(LENGTH "${_out}" _len)
    math(EXPR _pos "${_len} - 16000")
    if(_pos LESS 0)
      set(_pos 0)
    endif()
  endif()
  string(SUBSTRING "${_out}" ${_pos} 16000 _report)
  message("${_report}")
  file(GLOB _artifacts "${WORK_DIR}/artifacts/*")
  foreach(_a IN LISTS _artifacts)
    # Replay it once more, showing the decoded case.
    execute_process(COMMAND ${_env} LOGITKIT_FUZZ_VERBOSE=1 "${_exe}" "${_a}" OUTPUT_VARIABLE _replay
                    ERROR_VARIABLE _replay)
    string(REGEX MATCH "logitkit fuzz: case [^\n]*(\n  [^\n]*)*" _decoded "${_replay}")
    message("logitkit fuzz: saved input ${_a}\n${_decoded}\n  reproduce: LOGITKIT_FUZZ_VERBOSE=1 ${_exe} ${_a}")
  endforeach()
  message("${_summary}")
  if(SUMMARY_FILE)
    file(WRITE "${SUMMARY_FILE}" "${_summary} -- FAILED, see the test's output\n")
  endif()
  message(FATAL_ERROR "logitkit fuzz: FAILED: the fuzzer found a problem (exit code ${_rc}); see the report above")
endif()

message("${_summary}")
