// nn_model: the host side of a network in an xclbin. The calling thread is the only one that
// converts and moves data; compute units run chunks on their own (kernel::start on a handle
// restricted to one CU), two buffer sets each, so while a CU runs one chunk the next one is
// already queued behind it and the calling thread converts a third.
#include "fpyga/nn_model.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>

#include "fpyga/buffer.hpp"
#include "fpyga/error.hpp"
#include "fpyga/fixed.hpp"
#include "fpyga/kernel.hpp"
#include "fpyga/overlay.hpp"

namespace fpyga {

namespace {

// A chunk below this many samples costs more in hand-offs than it gains in balance.
constexpr std::size_t min_auto_chunk = 32;
constexpr std::size_t max_auto_chunk = 4096;
// Keeps one buffer set of a wide network (images) near a few MiB.
constexpr std::size_t max_chunk_bytes = 4u << 20;
// Chunks per CU the automatic size aims at: enough to overlap conversion and to even out CUs.
constexpr std::size_t chunks_per_cu = 4;

struct slot {
  buffer in, out;
  std::size_t capacity = 0;  // samples the buffers hold
  run r;
  std::size_t first = 0, count = 0;
};

struct compute_unit {
  std::size_t device_index = 0;
  kernel k;  // restricted to this CU
  slot slots[2];
};

struct device_state {
  device dev;
  overlay ol;
  kernel single;  // the one-sample kernel on its first CU (empty when the network has none)
  buffer single_in, single_out;
};

}  // namespace

struct nn_model_state {
  std::string path;
  network_info info;
  std::vector<device> devices;
  std::vector<device_state> devs;
  std::vector<compute_unit> cus;
  bool axi = false;
  fixed_format in_format, out_format;
  std::size_t n_in = 0, n_out = 0;
  std::size_t in_bytes = 0, out_bytes = 0;  // per value in the kernel's buffers
  std::size_t chunk = 0;
  mutable std::mutex mutex;

  // Converters between the caller's arrays and the kernel's buffers, per chunk of samples.
  struct io {
    std::function<void(std::size_t first, std::size_t count, void* dst)> in;
    std::function<void(const void* src, std::size_t first, std::size_t count)> out;
  };

  void ensure_capacity(compute_unit& cu, slot& s, std::size_t samples) {
    if (s.capacity >= samples) return;
    s.in = buffer();  // free the old pair before taking more bank space
    s.out = buffer();
    s.in = buffer(cu.k, 0, samples * n_in * in_bytes);
    s.out = buffer(cu.k, 1, samples * n_out * out_bytes);
    s.capacity = samples;
  }

  std::size_t plan_chunk(std::size_t n) const {
    std::size_t c = chunk;
    if (c == 0) {
      c = (n + cus.size() * chunks_per_cu - 1) / (cus.size() * chunks_per_cu);
      c = std::max(c, std::min(n, min_auto_chunk));
      c = std::min(c, max_auto_chunk);
      const std::size_t per_sample = std::max(n_in * in_bytes, n_out * out_bytes);
      c = std::min(c, std::max<std::size_t>(1, max_chunk_bytes / per_sample));
    }
    // The kernels take element counts as int.
    const std::size_t widest = std::max(n_in, n_out);
    c = std::min(c, std::max<std::size_t>(1, static_cast<std::size_t>(INT_MAX) / widest));
    return std::min(c, n);
  }

  void start(compute_unit& cu, slot& s, std::size_t first, std::size_t count, const io& conv) {
    ensure_capacity(cu, s, count);
    conv.in(first, count, s.in.data());
    s.in.sync_to_device(count * n_in * in_bytes, 0);
    s.first = first;
    s.count = count;
    if (axi)
      s.r = cu.k.start(s.in, s.out, static_cast<int>(count * n_in),
                       static_cast<int>(count * n_out));
    else
      s.r = cu.k.start(s.in, s.out, static_cast<int>(count));
  }

  void finish(slot& s, const io& conv) {
    run r = std::move(s.r);
    s.r = run();
    r.wait();
    s.out.sync_from_device(s.count * n_out * out_bytes, 0);
    conv.out(s.out.data(), s.first, s.count);
  }

  // One sample, synchronously on the calling thread.
  void run_one(const io& conv) {
    device_state& d = devs.front();
    if (d.single) {
      conv.in(0, 1, d.single_in.data());
      d.single_in.sync_to_device(n_in * in_bytes, 0);
      d.single.call(d.single_in, d.single_out);
      d.single_out.sync_from_device(n_out * out_bytes, 0);
      conv.out(d.single_out.data(), 0, 1);
      return;
    }
    compute_unit& cu = cus.front();
    slot& s = cu.slots[0];
    ensure_capacity(cu, s, 1);
    conv.in(0, 1, s.in.data());
    s.in.sync_to_device(n_in * in_bytes, 0);
    if (axi)
      cu.k.call(s.in, s.out, static_cast<int>(n_in), static_cast<int>(n_out));
    else
      cu.k.call(s.in, s.out, 1);
    s.out.sync_from_device(n_out * out_bytes, 0);
    conv.out(s.out.data(), 0, 1);
  }

  void run_batch(std::size_t n, const io& conv, const nn_model::progress_fn& progress) {
    if (n == 1) {
      run_one(conv);
      if (progress) progress(1);
      return;
    }
    const std::size_t chunk_n = plan_chunk(n);
    std::deque<slot*> in_flight;  // in start order
    std::size_t next = 0, done = 0;
    try {
      for (int round = 0; round < 2; ++round)
        for (auto& cu : cus) {
          if (next >= n) break;
          const std::size_t count = std::min(chunk_n, n - next);
          slot& s = cu.slots[round];
          start(cu, s, next, count, conv);
          in_flight.push_back(&s);
          next += count;
        }
      // Slots map back to their CU for the refill.
      while (!in_flight.empty()) {
        slot* s = in_flight.front();
        in_flight.pop_front();
        finish(*s, conv);
        done += s->count;
        if (next < n) {
          compute_unit* owner = nullptr;
          for (auto& cu : cus)
            if (s == &cu.slots[0] || s == &cu.slots[1]) owner = &cu;
          const std::size_t count = std::min(chunk_n, n - next);
          start(*owner, *s, next, count, conv);
          in_flight.push_back(s);
          next += count;
        }
        if (progress) progress(done);
      }
    } catch (...) {
      // Nothing may still write into the buffers (or the caller's output) once we return.
      for (slot* s : in_flight)
        if (s->r) try {
            s->r.wait();
          } catch (...) {
          }
      for (auto& cu : cus)
        for (auto& s : cu.slots) s.r = run();
      throw;
    }
  }

  void check_call(const void* x, std::size_t n, const void* y, const char* what) const {
    if (!x || !y)
      throw value_error(std::string("nn_model::") + what + " on '" + info.name +
                        "': null input or output pointer for " + std::to_string(n) + " samples");
    const std::size_t widest = std::max(n_in, n_out) * std::max<std::size_t>(8, in_bytes);
    if (n > std::numeric_limits<std::size_t>::max() / widest)
      throw value_error(std::string("nn_model::") + what + ": " + std::to_string(n) +
                        " samples overflow the size of the arrays");
  }

  // The conversions between the caller's values and the kernel's containers: `count` samples
  // from sample `first` of the caller's array.
  template <class X>
  void inputs_to_raw(const X* x, std::size_t first, std::size_t count, void* dst) const {
    if (axi) {
      auto* d = static_cast<float*>(dst);
      const X* src = x + first * n_in;
      for (std::size_t i = 0; i < count * n_in; ++i) d[i] = static_cast<float>(src[i]);
    } else {
      to_fixed(x + first * n_in, count * n_in, dst, in_bytes, in_format,
               nonfinite_policy::ap_fixed);
    }
  }

  template <class Y>
  void outputs_from_raw(const void* src, std::size_t first, std::size_t count, Y* y) const {
    if (axi) {
      const auto* s = static_cast<const float*>(src);
      Y* dst = y + first * n_out;
      for (std::size_t i = 0; i < count * n_out; ++i) dst[i] = static_cast<Y>(s[i]);
    } else {
      from_fixed(src, out_bytes, count * n_out, y + first * n_out, out_format);
    }
  }

  template <class X, class Y>
  void predict(const X* x, std::size_t n, Y* y, const nn_model::progress_fn& progress) {
    if (n == 0) return;
    check_call(x, n, y, "predict");
    std::lock_guard lock(mutex);
    io conv;
    conv.in = [&](std::size_t first, std::size_t count, void* dst) {
      inputs_to_raw(x, first, count, dst);
    };
    conv.out = [&](const void* src, std::size_t first, std::size_t count) {
      outputs_from_raw(src, first, count, y);
    };
    run_batch(n, conv, progress);
  }

  void predict_raw(const void* x, std::size_t n, void* y, const nn_model::progress_fn& progress) {
    if (n == 0) return;
    check_call(x, n, y, "predict_raw");
    std::lock_guard lock(mutex);
    io conv;
    conv.in = [&](std::size_t first, std::size_t count, void* dst) {
      const std::size_t row = n_in * in_bytes;
      std::memcpy(dst, static_cast<const char*>(x) + first * row, count * row);
    };
    conv.out = [&](const void* src, std::size_t first, std::size_t count) {
      const std::size_t row = n_out * out_bytes;
      std::memcpy(static_cast<char*>(y) + first * row, src, count * row);
    };
    run_batch(n, conv, progress);
  }
};

namespace {

// The one ap_fixed type every tensor of a list shares (the kernel takes one array of them).
fixed_format common_type(const std::vector<tensor_info>& ts, const std::string& path,
                         const char* what) {
  for (const auto& t : ts)
    if (!(t.type == ts.front().type))
      throw value_error("nn_model: network of '" + path + "' has " + what + " of different types (" +
                        ts.front().name + " is " + ts.front().type.to_string() + ", " + t.name +
                        " is " + t.type.to_string() +
                        "); fpyga's kernel interface passes one array of one type");
  return ts.front().type;
}

}  // namespace

nn_model::nn_model(const std::string& xclbin_path, std::vector<device> devices,
                   const std::string& exact) {
  if (!exact.empty() && exact != "csim")
    throw value_error("nn_model: exact='" + exact + "' is not \"csim\" (or empty)");
  auto st = std::make_shared<nn_model_state>();
  st->path = xclbin_path;
  if (devices.empty()) devices.push_back(device::open());
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (!devices[i]) throw value_error("nn_model: device " + std::to_string(i) + " is empty");
    for (std::size_t j = 0; j < i; ++j)
      if (devices[j] == devices[i] || devices[j].spec() == devices[i].spec())
        throw value_error("nn_model: device '" + devices[i].spec() +
                          "' is given twice (one overlay per device)");
  }
  st->devices = devices;

  for (std::size_t di = 0; di < devices.size(); ++di) {
    device_state d;
    d.dev = devices[di];
    d.ol = overlay(d.dev, xclbin_path);
    if (di == 0) {
      auto net = network_info::of(d.ol.xclbin());
      if (!net)
        throw value_error("nn_model: xclbin '" + xclbin_path +
                          "' has no network description (a USER_METADATA section '" +
                          std::string(network_info::section_name) +
                          "'); build it with fpyga.hls4ml.build() or pack it with a \"network\" "
                          "object (docs/xclbin.md)");
      st->info = std::move(*net);
      st->axi = st->info.interface == network_interface::hls4ml_axi;
      st->in_format = common_type(st->info.inputs, xclbin_path, "inputs");
      st->out_format = common_type(st->info.outputs, xclbin_path, "outputs");
      st->n_in = st->info.n_inputs();
      st->n_out = st->info.n_outputs();
      st->in_bytes = st->axi ? sizeof(float) : st->in_format.storage_bytes();
      st->out_bytes = st->axi ? sizeof(float) : st->out_format.storage_bytes();
    }
    if (exact == "csim" && st->info.batch_csim_kernel.empty())
      throw value_error("nn_model: xclbin '" + xclbin_path +
                        "' has no C-simulation kernel (kernels.batch_csim): its batch kernel is "
                        "hls4ml's C simulation already");
    const std::string& kname = exact == "csim" ? st->info.batch_csim_kernel : st->info.run_kernel();
    const kernel all = d.ol.kernel(kname);
    const auto names = all.compute_units();
    if (names.empty())
      throw value_error("nn_model: kernel '" + kname + "' of '" + xclbin_path +
                        "' has no compute units on " + d.dev.spec());
    for (const auto& cu_name : names) {
      compute_unit cu;
      cu.device_index = di;
      cu.k = d.ol.kernel(kname + ":" + cu_name);
      st->cus.push_back(std::move(cu));
    }
    if (di == 0 && !st->axi && !st->info.single_kernel.empty()) {
      const kernel single = d.ol.kernel(st->info.single_kernel);
      const auto single_cus = single.compute_units();
      if (!single_cus.empty()) {
        d.single = d.ol.kernel(st->info.single_kernel + ":" + single_cus.front());
        d.single_in = buffer(d.single, 0, st->n_in * st->in_bytes);
        d.single_out = buffer(d.single, 1, st->n_out * st->out_bytes);
      }
    }
    st->devs.push_back(std::move(d));
  }
  st_ = std::move(st);
}

namespace {
nn_model_state& state_of(const std::shared_ptr<nn_model_state>& st) {
  if (!st) throw error("nn_model: empty handle (default-constructed)");
  return *st;
}
}  // namespace

const network_info& nn_model::info() const {
  return state_of(st_).info;
}
std::size_t nn_model::n_inputs() const {
  return state_of(st_).n_in;
}
std::size_t nn_model::n_outputs() const {
  return state_of(st_).n_out;
}
std::size_t nn_model::compute_units() const {
  return state_of(st_).cus.size();
}
const std::vector<device>& nn_model::devices() const {
  return state_of(st_).devices;
}
const std::string& nn_model::path() const {
  return state_of(st_).path;
}
std::size_t nn_model::raw_input_bytes() const {
  return state_of(st_).in_bytes;
}
std::size_t nn_model::raw_output_bytes() const {
  return state_of(st_).out_bytes;
}

void nn_model::predict(const float* x, std::size_t n, float* y, const progress_fn& p) const {
  state_of(st_).predict(x, n, y, p);
}
void nn_model::predict(const double* x, std::size_t n, float* y, const progress_fn& p) const {
  state_of(st_).predict(x, n, y, p);
}
void nn_model::predict(const double* x, std::size_t n, double* y, const progress_fn& p) const {
  state_of(st_).predict(x, n, y, p);
}
void nn_model::predict(const float* x, std::size_t n, double* y, const progress_fn& p) const {
  state_of(st_).predict(x, n, y, p);
}
void nn_model::predict_raw(const void* x, std::size_t n, void* y, const progress_fn& p) const {
  state_of(st_).predict_raw(x, n, y, p);
}

void nn_model::inputs_to_raw(const float* x, std::size_t n, void* x_raw) const {
  auto& st = state_of(st_);
  if (n == 0) return;
  st.check_call(x, n, x_raw, "inputs_to_raw");
  st.inputs_to_raw(x, 0, n, x_raw);
}
void nn_model::outputs_from_raw(const void* y_raw, std::size_t n, float* y) const {
  auto& st = state_of(st_);
  if (n == 0) return;
  st.check_call(y_raw, n, y, "outputs_from_raw");
  st.outputs_from_raw(y_raw, 0, n, y);
}

void nn_model::set_chunk_samples(std::size_t samples) {
  auto& st = state_of(st_);
  std::lock_guard lock(st.mutex);
  st.chunk = samples;
}
std::size_t nn_model::chunk_samples() const {
  auto& st = state_of(st_);
  std::lock_guard lock(st.mutex);
  return st.chunk;
}

}  // namespace fpyga
