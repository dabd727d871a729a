# Runs the ThreadSanitizer thread-safety test. Older ThreadSanitizer runtimes (GCC 12's among them)
# abort with "FATAL: ThreadSanitizer: unexpected memory mapping" on kernels with more mmap
# randomisation bits (vm.mmap_rnd_bits = 32, as on some CI hosts); the test is then run again
# with address randomisation off (setarch -R), and if that is not allowed either it fails with
# the fix to apply to the host.
#
#   cmake -DEXE=<logitkit_threads_tsan> [-DTHREADS=8] [-DROUNDS=3] -P run_tsan.cmake
cmake_minimum_required(VERSION 3.16)
if(NOT EXE OR NOT EXISTS "${EXE}")
  message(FATAL_ERROR "run_tsan.cmake: EXE='${EXE}' does not exist")
endif()
if(NOT THREADS)
  set(THREADS 8)
endif()
if(NOT ROUNDS)
  set(ROUNDS 3)
endif()
set(ARGS ${THREADS} ${ROUNDS})
set(_env "${CMAKE_COMMAND}" -E env "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:exitcode=66")

execute_process(COMMAND ${_env} "${EXE}" ${ARGS} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
if(_out MATCHES "unexpected memory mapping")
  message("${_out}")
  find_program(_setarch setarch)
  if(_setarch)
    execute_process(COMMAND uname -m OUTPUT_VARIABLE _machine OUTPUT_STRIP_TRAILING_WHITESPACE)
    message("ThreadSanitizer cannot map its shadow memory with this kernel's address randomisation; "
            "running again under: setarch ${_machine} -R")
    execute_process(COMMAND ${_env} "${_setarch}" "${_machine}" -R "${EXE}" ${ARGS}
                    RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  endif()
  if(_out MATCHES "unexpected memory mapping" OR NOT _setarch)
    message("${_out}")
    message(FATAL_ERROR "FAILED: this ThreadSanitizer runtime does not work with the kernel's mmap randomisation "
                        "and address randomisation cannot be turned off here; on the host run "
                        "'sysctl vm.mmap_rnd_bits=28' (or configure with -DLOGITKIT_TEST_TSAN=OFF)")
  endif()
endif()
message("${_out}")
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "FAILED: the thread-safety test exited with ${_rc}")
endif()
