# run_fuzzer.cmake: ctest driver for one libFuzzer target.
#   cmake -DFUZZER=bin -DSEEDS=dir -DWORK=dir -P run_fuzzer.cmake
# Copies the seed corpus afresh to WORK/corpus (the source tree is never
# written), runs the fuzzer for 20 s there, and keeps crash inputs in
# WORK/artifacts. Prints FUZZ-SKIPPED (a ctest skip) if FUZZER was not built.
if(NOT EXISTS "${FUZZER}")
  message("${FUZZER} was not built (no clang or libFuzzer runtime): FUZZ-SKIPPED")
  return()
endif()
file(REMOVE_RECURSE "${WORK}/corpus")
file(MAKE_DIRECTORY "${WORK}/corpus" "${WORK}/artifacts")
file(GLOB seeds "${SEEDS}/*")
file(COPY ${seeds} DESTINATION "${WORK}/corpus")
execute_process(COMMAND "${FUZZER}" -max_total_time=20 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/ "${WORK}/corpus"
  WORKING_DIRECTORY "${WORK}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); crash input in ${WORK}/artifacts")
endif()
