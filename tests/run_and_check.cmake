# ctest helper: runs COMMAND (a ;-list), then checks its exit status and, when given, that stdout
# and stderr match the regular expressions STDOUT_MATCHES and STDERR_MATCHES.
execute_process(COMMAND ${COMMAND}
  RESULT_VARIABLE exit_code OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 240)
message("exit: ${exit_code}\n--- stdout\n${out}--- stderr\n${err}---")
if(NOT "${exit_code}" STREQUAL "${EXPECTED_EXIT_CODE}")
  message(FATAL_ERROR "expected exit status ${EXPECTED_EXIT_CODE}, got ${exit_code}")
endif()
if(STDOUT_MATCHES AND NOT out MATCHES "${STDOUT_MATCHES}")
  message(FATAL_ERROR "stdout does not match: ${STDOUT_MATCHES}")
endif()
if(STDERR_MATCHES AND NOT err MATCHES "${STDERR_MATCHES}")
  message(FATAL_ERROR "stderr does not match: ${STDERR_MATCHES}")
endif()
