// A neural network in an xclbin (one that carries a network description, fpyga/network.hpp),
// loaded on one or more devices and fed from host arrays: float in, float out, bit-exact with
// hls4ml's C simulation, the batch spread over every compute unit of every device.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fpyga/device.hpp"
#include "fpyga/network.hpp"

namespace fpyga {

struct nn_model_state;

/// A handle to a network loaded from an xclbin. Copies share the loaded network.
///
/// The xclbin is loaded on each device (one overlay per device, replacing what was loaded
/// there). Each compute unit of the batch kernel gets two buffer sets, allocated at the first
/// predict in the banks its arguments connect to, reused by later calls and only reallocated
/// when a call needs larger chunks. A predict splits the samples into chunks over every compute
/// unit; while the compute units run, the calling thread converts the next chunks' inputs and the
/// finished chunks' outputs, so conversion overlaps the kernels. A single sample goes through
/// the one-sample kernel (when the network has one) synchronously on the calling thread.
///
/// Thread safety: one predict at a time per nn_model (and its copies); concurrent calls are
/// serialised by a mutex. Use one nn_model per device to run devices from several threads.
class nn_model {
 public:
  /// Called on the calling thread between chunks with the number of samples finished so far.
  /// An exception it throws ends the predict (after the runs in flight finish) and propagates.
  using progress_fn = std::function<void(std::size_t samples_done)>;

  nn_model() = default;
  /// Loads `xclbin_path` on each of `devices` (none: the default device, device::open()).
  /// @throws value_error when the xclbin has no network description (naming the file), names a
  ///         device twice, or has a network the host interface cannot feed (several input or
  ///         output types); xclbin_error for a malformed file or description; error when a device
  ///         cannot load it.
  /// `exact` "csim" runs batches through the network's C-simulation kernel (kernels.batch_csim,
  /// beside fpyga.hls4ml's fast path) instead of its batch kernel; "" the batch kernel.
  explicit nn_model(const std::string& xclbin_path, std::vector<device> devices = {},
                    const std::string& exact = "");

  const network_info& info() const;
  /// Values per sample in and out (over all input / output tensors, in order).
  std::size_t n_inputs() const;
  std::size_t n_outputs() const;
  /// Compute units of the batch kernel over every device.
  std::size_t compute_units() const;
  const std::vector<device>& devices() const;
  const std::string& path() const;

  /// Runs `n` samples: `x` holds n * n_inputs() values (sample-major), `y` receives
  /// n * n_outputs(). Inputs convert to the network's ap_fixed type exactly as ap_fixed's
  /// float/double constructor does (NaN and infinities included, nonfinite_policy::ap_fixed),
  /// outputs as from_fixed. For hls4ml_axi networks the values pass as float32 and the kernel
  /// converts. Blocks until every sample is done; n == 0 returns at once.
  /// @throws value_error for null pointers with n > 0 or a size that overflows; error when a
  ///         kernel run fails (the model stays usable).
  void predict(const float* x, std::size_t n, float* y, const progress_fn& progress = {}) const;
  void predict(const double* x, std::size_t n, float* y, const progress_fn& progress = {}) const;
  void predict(const double* x, std::size_t n, double* y, const progress_fn& progress = {}) const;
  void predict(const float* x, std::size_t n, double* y, const progress_fn& progress = {}) const;

  /// Like predict, on the kernel's own containers: fpyga_batch networks take and give raw
  /// ap_fixed bits, raw_input_bytes() / raw_output_bytes() per value (little-endian, as to_fixed
  /// writes them); hls4ml_axi networks take and give float32 values.
  void predict_raw(const void* x_raw, std::size_t n, void* y_raw,
                   const progress_fn& progress = {}) const;
  std::size_t raw_input_bytes() const;
  std::size_t raw_output_bytes() const;

  /// The conversions predict does around the kernels, alone: `n` samples of values to the
  /// kernel's containers (n * n_inputs() * raw_input_bytes() bytes) and the containers back to
  /// values. predict(x, n, y) gives the same bits as inputs_to_raw, predict_raw, outputs_from_raw
  /// in turn. They need no device and take no lock, so a caller with several threads (a server)
  /// can convert its requests in parallel while the compute units run another's.
  /// @throws value_error for null pointers with n > 0 or a size that overflows.
  void inputs_to_raw(const float* x, std::size_t n, void* x_raw) const;
  void outputs_from_raw(const void* y_raw, std::size_t n, float* y) const;

  /// Samples per chunk: 0 (the default) picks them from n and the number of compute units.
  void set_chunk_samples(std::size_t samples);
  std::size_t chunk_samples() const;

  explicit operator bool() const { return static_cast<bool>(st_); }

 private:
  std::shared_ptr<nn_model_state> st_;
};

}  // namespace fpyga
