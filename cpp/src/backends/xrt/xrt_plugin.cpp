// libfpyga_backend_xrt.so's entry point (see backends/plugin.hpp): the XRT backend, loaded by
// libfpyga when libxrt_coreutil can be loaded.
#include "backends/plugin.hpp"

namespace fpyga::backend {
backend_entry xrt_backend();
}  // namespace fpyga::backend

FPYGA_BACKEND_PLUGIN(fpyga::backend::xrt_backend)
