# Checks one Promela model exhaustively with spin: generates the verifier, compiles it, runs it.
#   -DSPIN=... -DCC=... -DMODEL=file.pml -DWORK_DIR=dir [-DDEFINES="-DMUTANT ..."]
#   -DEXPECT=pass|fail   pass: no error in any state; fail: the verifier must find one (a mutant)
# Prints the verifier's statistics, so a log shows how many states each model explored.
foreach(v SPIN CC MODEL WORK_DIR EXPECT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_model.cmake: ${v} is not set")
  endif()
endforeach()
separate_arguments(defines UNIX_COMMAND "${DEFINES}")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

execute_process(COMMAND "${SPIN}" ${defines} -a "${MODEL}" WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "spin -a failed on ${MODEL}:\n${out}")
endif()
# Exhaustive: no bit-state hashing; the models are small enough for full state storage.
execute_process(COMMAND "${CC}" -O0 -w -DVECTORSZ=2048 -o pan pan.c WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "compiling the verifier for ${MODEL} failed:\n${out}")
endif()
execute_process(COMMAND ./pan -m1000000 WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(out MATCHES "errors: ([0-9]+)")
  set(errors ${CMAKE_MATCH_1})
else()
  message(FATAL_ERROR "no verdict from the verifier for ${MODEL}")
endif()
if(out MATCHES "search depth too small")
  message(FATAL_ERROR "${MODEL}: the search was cut short (depth limit): not exhaustive")
endif()
if(EXPECT STREQUAL "pass" AND NOT errors EQUAL 0)
  # Replay the counterexample so the log shows the interleaving.
  execute_process(COMMAND "${SPIN}" ${defines} -t -p -g "${MODEL}" WORKING_DIRECTORY "${WORK_DIR}"
                  OUTPUT_VARIABLE trail ERROR_VARIABLE trail)
  message(FATAL_ERROR "${MODEL}: ${errors} error(s) found; the trail:\n${trail}")
elseif(EXPECT STREQUAL "fail" AND errors EQUAL 0)
  message(FATAL_ERROR "${MODEL} ${DEFINES}: the mutant passed; the model no longer sees the bug")
endif()
message("${MODEL} ${DEFINES}: ${errors} error(s), as expected (${EXPECT})")
