# Runs a program and compares its stdout with a file, byte for byte.
#
#   cmake -DEXE=<program> -DEXPECTED=<file> [-DACTUAL=<file>] -P compare_output.cmake
#
# On a mismatch it prints the first differing lines (and a unified diff when `diff` is available
# and ACTUAL is given) and fails; ACTUAL, when given, receives the program's output.
cmake_minimum_required(VERSION 3.16)

foreach(var EXE EXPECTED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "compare_output.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(COMMAND "${EXE}"
                OUTPUT_VARIABLE actual
                ERROR_VARIABLE stderr_text
                RESULT_VARIABLE rc)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "compare_output.cmake: ${EXE} failed (exit status: ${rc})\n"
                      "stderr:\n${stderr_text}")
endif()

file(READ "${EXPECTED}" expected)
if(DEFINED ACTUAL)
  file(WRITE "${ACTUAL}" "${actual}")
endif()

if(actual STREQUAL expected)
  message(STATUS "output of ${EXE} matches ${EXPECTED}")
  return()
endif()

# Turn both texts into lists of lines. List elements may not contain ';', and unbalanced square
# brackets would make CMake merge list elements, so those characters are swapped for
# placeholders first and restored when printed.
function(_split_lines text out_var)
  string(REGEX REPLACE "\n$" "" text "${text}")  # a final newline ends the last line
  string(REPLACE "\r" "<CR>" text "${text}")
  string(REPLACE ";" "<SEMICOLON>" text "${text}")
  string(REPLACE "[" "<LBRACKET>" text "${text}")
  string(REPLACE "]" "<RBRACKET>" text "${text}")
  string(REPLACE "\n" ";" text "${text}")
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()
function(_restore line out_var)
  string(REPLACE "<SEMICOLON>" ";" line "${line}")
  string(REPLACE "<LBRACKET>" "[" line "${line}")
  string(REPLACE "<RBRACKET>" "]" line "${line}")
  set(${out_var} "${line}" PARENT_SCOPE)
endfunction()

_split_lines("${expected}" expected_lines)
_split_lines("${actual}" actual_lines)
list(LENGTH expected_lines n_expected)
list(LENGTH actual_lines n_actual)
set(n ${n_expected})
if(n_actual GREATER n)
  set(n ${n_actual})
endif()

set(report "")
set(shown 0)
set(max_shown 20)
math(EXPR last "${n} - 1")
foreach(i RANGE 0 ${last})
  set(e "<missing line>")
  set(a "<missing line>")
  if(i LESS n_expected)
    list(GET expected_lines ${i} e)
    _restore("${e}" e)
  endif()
  if(i LESS n_actual)
    list(GET actual_lines ${i} a)
    _restore("${a}" a)
  endif()
  if(NOT e STREQUAL a)
    math(EXPR lineno "${i} + 1")
    string(APPEND report "line ${lineno}:\n  - expected: ${e}\n  + actual:   ${a}\n")
    math(EXPR shown "${shown} + 1")
    if(shown EQUAL max_shown)
      string(APPEND report "(more differences not shown)\n")
      break()
    endif()
  endif()
endforeach()
if(shown EQUAL 0)
  # Same lines but different bytes: one text ends with a newline and the other does not.
  string(APPEND report "the texts differ only in the newline at the end of the last line\n")
endif()

set(diff_text "")
find_program(DIFF_PROGRAM diff)
if(DIFF_PROGRAM AND DEFINED ACTUAL)
  execute_process(COMMAND "${DIFF_PROGRAM}" -u "${EXPECTED}" "${ACTUAL}"
                  OUTPUT_VARIABLE diff_text)
  set(diff_text "\ndiff -u expected actual:\n${diff_text}")
endif()

set(saved "")
if(DEFINED ACTUAL)
  set(saved "; the actual output is in ${ACTUAL}")
endif()
# message(NOTICE) prints the text as it is; FATAL_ERROR would re-wrap and double-space it.
message(NOTICE "${report}${diff_text}")
message(FATAL_ERROR "output of ${EXE} differs from ${EXPECTED}${saved}; "
                    "the differing lines are listed above")
