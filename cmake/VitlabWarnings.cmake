# Our own warnings, as an interface target: linked by our targets only, so third-party headers
# (pulled in as system headers through imported targets) stay quiet.
add_library(vitlab_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(vitlab_warnings INTERFACE
    -Wall -Wextra -Wshadow=local -Wnon-virtual-dtor -Woverloaded-virtual
    -Winvalid-pch)
endif()
