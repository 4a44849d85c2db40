# FPYGA_SANITIZE: sanitizers on everything this project builds (the library, tools, tests, the
# Python extension, benchmarks; the kernels' .so too with FPYGA_SANITIZE_KERNELS).
#   OFF              none (the default)
#   ON or address    AddressSanitizer + UndefinedBehaviorSanitizer, with float-cast-overflow (not
#                    part of -fsanitize=undefined) and no recovery: the first report ends the
#                    process, so a test that triggers one fails.
#   thread           ThreadSanitizer (reports make the process exit non-zero at its end).
# FPYGA_SANITIZE_FLAGS holds the compile flags, for code built outside add_compile_options.
#
# FPYGA_SANITIZE_KERNELS: the kernel toolchain (kernels/cmake/FpygaKernels.cmake) builds the
# kernels' sw_emu .so with the same sanitizer. Such a .so needs the sanitizer runtime in the host
# process (an instrumented host, or a Python started with the runtime in LD_PRELOAD), which is why
# kernels are built without one by default, as Vitis builds them.
option(FPYGA_SANITIZE_KERNELS "Build the kernels' sw_emu .so with FPYGA_SANITIZE's sanitizer too" OFF)

set(FPYGA_SANITIZE_FLAGS "")
string(TOLOWER "${FPYGA_SANITIZE}" _fpyga_sanitize)
if(_fpyga_sanitize STREQUAL "thread")
  set(FPYGA_SANITIZE_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
elseif(_fpyga_sanitize MATCHES "^(address|on|1|yes|true|y)$")
  set(FPYGA_SANITIZE_FLAGS -fsanitize=address,undefined,float-cast-overflow
                           -fno-sanitize-recover=all -fno-omit-frame-pointer)
elseif(_fpyga_sanitize AND NOT _fpyga_sanitize MATCHES "^(0|off|no|false|n)$")
  message(FATAL_ERROR "FPYGA_SANITIZE='${FPYGA_SANITIZE}': expected OFF, ON, address or thread")
endif()
unset(_fpyga_sanitize)

if(FPYGA_SANITIZE_FLAGS)
  add_compile_options(${FPYGA_SANITIZE_FLAGS})
  # The -fsanitize= flags only: the linker pulls in the matching runtime.
  set(FPYGA_SANITIZE_LINK_FLAGS ${FPYGA_SANITIZE_FLAGS})
  list(FILTER FPYGA_SANITIZE_LINK_FLAGS INCLUDE REGEX "^-fsanitize=")
  add_link_options(${FPYGA_SANITIZE_LINK_FLAGS})
  message(STATUS "fpyga: sanitizers ${FPYGA_SANITIZE_FLAGS}"
                 " (kernels: ${FPYGA_SANITIZE_KERNELS})")
elseif(FPYGA_SANITIZE_KERNELS)
  message(FATAL_ERROR "FPYGA_SANITIZE_KERNELS=ON needs FPYGA_SANITIZE (address or thread)")
endif()
