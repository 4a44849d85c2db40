# OpenCL through the Khronos ICD loader (Debian: ocl-icd-opencl-dev, opencl-headers,
# opencl-clhpp-headers) for the opencl backend. Any platform registered with the loader works at
# run time (PoCL from pocl-opencl-icd, Xilinx's libxilinxopencl, GPUs); none is needed to build.
# The backend targets OpenCL 1.2 (CL_HPP_TARGET_OPENCL_VERSION=120, set in its CMakeLists). Only
# its plugin (libfpyga_backend_opencl.so) links the ICD loader, never libfpyga.
find_package(OpenCL QUIET)
find_path(OPENCL_HPP_INCLUDE_DIR NAMES CL/opencl.hpp)
set(_ocl_found OFF)
if(OpenCL_FOUND AND OPENCL_HPP_INCLUDE_DIR)
  set(_ocl_found ON)
endif()
option(FPYGA_WITH_OPENCL "Build the OpenCL backend" ${_ocl_found})
if(FPYGA_WITH_OPENCL AND NOT _ocl_found)
  message(FATAL_ERROR "FPYGA_WITH_OPENCL=ON but OpenCL was not found: install Debian's "
                      "ocl-icd-opencl-dev opencl-headers opencl-clhpp-headers")
endif()
if(FPYGA_WITH_OPENCL)
  message(STATUS "OpenCL: ${OpenCL_LIBRARIES} (C++ bindings in ${OPENCL_HPP_INCLUDE_DIR})")
endif()
