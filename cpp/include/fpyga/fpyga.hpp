// fpyga: a host runtime for FPGA accelerator cards. Include this for the whole C++ API.
#pragma once

#include "fpyga/buffer.hpp"
#include "fpyga/device.hpp"
#include "fpyga/device_info.hpp"
#include "fpyga/error.hpp"
#include "fpyga/kernel.hpp"
#include "fpyga/memory.hpp"
#include "fpyga/network.hpp"
#include "fpyga/nn_model.hpp"
#include "fpyga/overlay.hpp"
#include "fpyga/stream.hpp"
#include "fpyga/warning.hpp"
#include "fpyga/xclbin.hpp"
