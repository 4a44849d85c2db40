# OpenCL through the Khronos ICD loader (Debian: ocl-icd-opencl-dev, opencl-headers,
# opencl-clhpp-headers) for the opencl backend.
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
