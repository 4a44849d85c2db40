# XRT (Xilinx runtime) for the xrt backend. Looked up in $XILINX_XRT, then /opt/xilinx/xrt
# (Xilinx's and AWS's installs), then Debian's libxrt-dev (/usr/include/xrt). Debian's xrt.pc is
# broken, so pkg-config is not used. Defines the imported target fpyga::xrt.
find_path(XRT_INCLUDE_DIR NAMES experimental/xrt_kernel.h
          HINTS ENV XILINX_XRT PATH_SUFFIXES include
          PATHS /opt/xilinx/xrt/include /usr/include/xrt NO_DEFAULT_PATH)
find_library(XRT_COREUTIL_LIBRARY NAMES xrt_coreutil
             HINTS ENV XILINX_XRT PATH_SUFFIXES lib
             PATHS /opt/xilinx/xrt/lib)
find_library(UUID_LIBRARY NAMES uuid)

set(_xrt_found OFF)
if(XRT_INCLUDE_DIR AND XRT_COREUTIL_LIBRARY AND UUID_LIBRARY)
  set(_xrt_found ON)
endif()
option(FPYGA_WITH_XRT "Build the XRT backend" ${_xrt_found})
if(FPYGA_WITH_XRT)
  if(NOT _xrt_found)
    message(FATAL_ERROR "FPYGA_WITH_XRT=ON but XRT was not found: install Debian's libxrt-dev and "
                        "uuid-dev, or set XILINX_XRT to an XRT install")
  endif()
  add_library(fpyga_xrt_runtime INTERFACE)
  target_include_directories(fpyga_xrt_runtime INTERFACE ${XRT_INCLUDE_DIR})
  target_link_libraries(fpyga_xrt_runtime INTERFACE ${XRT_COREUTIL_LIBRARY} ${UUID_LIBRARY})
  add_library(fpyga::xrt ALIAS fpyga_xrt_runtime)
  get_filename_component(XRT_LIBRARY_DIR ${XRT_COREUTIL_LIBRARY} DIRECTORY)
  message(STATUS "XRT: ${XRT_INCLUDE_DIR}, ${XRT_COREUTIL_LIBRARY}")
endif()
