// libfpyga_backend_opencl.so's entry point (see backends/plugin.hpp): the OpenCL backend, loaded
// by libfpyga when the OpenCL ICD loader (libOpenCL.so.1) can be loaded.
#include "backends/plugin.hpp"

namespace fpyga::backend {
backend_entry opencl_backend();
}  // namespace fpyga::backend

FPYGA_BACKEND_PLUGIN(fpyga::backend::opencl_backend)
