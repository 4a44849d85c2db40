# XRT (Xilinx runtime) for the xrt backend. Looked up in $XILINX_XRT, then /opt/xilinx/xrt
# (Xilinx's and AWS's installs), then Debian's libxrt-dev (/usr/include/xrt, libraries in the
# multiarch directory). Debian's xrt.pc is broken (prefix /usr//usr), so pkg-config is not used.
# Defines the imported target fpyga::xrt (headers, libxrt_coreutil, libuuid), which only the XRT
# backend's plugin (libfpyga_backend_xrt.so) links, never libfpyga.
#
# Run time needs no XILINX_XRT: the backend sets it up for Debian's layout itself (see
# cpp/src/backends/xrt/xrt_environment.cpp and docs/hardware.md).
find_path(XRT_INCLUDE_DIR NAMES xrt/xrt_kernel.h experimental/xrt_xclbin.h
          HINTS ENV XILINX_XRT PATH_SUFFIXES include
          PATHS /opt/xilinx/xrt/include /usr/include/xrt NO_DEFAULT_PATH)
find_library(XRT_COREUTIL_LIBRARY NAMES xrt_coreutil
             HINTS ENV XILINX_XRT PATH_SUFFIXES lib
             PATHS /opt/xilinx/xrt/lib)
find_library(UUID_LIBRARY NAMES uuid)

set(_xrt_found OFF)
if(XRT_INCLUDE_DIR AND XRT_COREUTIL_LIBRARY AND UUID_LIBRARY
   AND EXISTS "${XRT_INCLUDE_DIR}/experimental/xrt_xclbin.h"
   AND EXISTS "${XRT_INCLUDE_DIR}/experimental/xrt_system.h")
  set(_xrt_found ON)
endif()
option(FPYGA_WITH_XRT "Build the XRT backend" ${_xrt_found})
if(FPYGA_WITH_XRT)
  if(NOT _xrt_found)
    message(FATAL_ERROR "FPYGA_WITH_XRT=ON but XRT was not found: install Debian's libxrt-dev and "
                        "uuid-dev, or set XILINX_XRT to an XRT install (2.13 or later)")
  endif()
  add_library(fpyga_xrt_runtime INTERFACE)
  target_include_directories(fpyga_xrt_runtime INTERFACE ${XRT_INCLUDE_DIR})
  target_link_libraries(fpyga_xrt_runtime INTERFACE ${XRT_COREUTIL_LIBRARY} ${UUID_LIBRARY})
  add_library(fpyga::xrt ALIAS fpyga_xrt_runtime)
  get_filename_component(XRT_LIBRARY_DIR ${XRT_COREUTIL_LIBRARY} DIRECTORY)
  message(STATUS "XRT: ${XRT_INCLUDE_DIR}, ${XRT_COREUTIL_LIBRARY}")
endif()
