# tools/weft-gdb.py against a core file: crash tests/gdb_target with a core dump, then list and
# backtrace its green threads. Skipped when the kernel writes cores elsewhere
# (core_pattern piping to a collector).
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
file(READ /proc/sys/kernel/core_pattern pattern)
if(pattern MATCHES "^\\|")
  message("weft-gdb core test skipped: core_pattern pipes cores to a collector")
  return()
endif()
execute_process(COMMAND sh -c "ulimit -c unlimited && exec '${TARGET}'" WORKING_DIRECTORY ${WORK_DIR})
file(GLOB cores ${WORK_DIR}/core*)
if(NOT cores)
  message("weft-gdb core test skipped: no core file was written")
  return()
endif()
list(GET cores 0 core)
execute_process(COMMAND ${GDB} -nx -batch -x ${HELPER} -ex "weft threads" -ex "weft bt 2" ${TARGET} ${core}
                OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(REMOVE_RECURSE ${WORK_DIR})
if(NOT out MATCHES "green thread 2 \"waiter-under-gdb\" \\[chan receive\\].*deep_wait_for_gdb")
  message(FATAL_ERROR "weft-gdb.py on a core file printed:\n${out}\n${err}")
endif()
