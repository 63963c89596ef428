# Runs one libFuzzer executable for a bounded time over a copy of its seed corpus (the committed
# corpus is never written to). Invoked by the fuzz.* ctests:
#   cmake -DFUZZER=<exe> -DSEEDS=<dir> -DDICT=<file> -DWORK=<dir> -DSECONDS=<n> -P run_fuzzer.cmake
foreach(var FUZZER SEEDS WORK SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/corpus" "${WORK}/artifacts")
file(GLOB seeds "${SEEDS}/*")
file(COPY ${seeds} DESTINATION "${WORK}/corpus")

if(NOT DEFINED MAX_LEN)
  set(MAX_LEN 8192)
endif()
set(args -max_total_time=${SECONDS} -max_len=${MAX_LEN} -print_final_stats=1 "-artifact_prefix=${WORK}/artifacts/")
if(DEFINED DICT AND EXISTS "${DICT}")
  list(APPEND args "-dict=${DICT}")
endif()
execute_process(COMMAND "${FUZZER}" ${args} "${WORK}/corpus" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB found "${WORK}/artifacts/*")
  message(FATAL_ERROR "fuzzer ${FUZZER} failed (exit ${rc}); reproducer(s): ${found}")
endif()
