// emu's stream glue: the part of fpyga compiled into a kernel's sw_emu shared object when its
// kernels take hls::stream arguments (kernels/cmake/FpygaKernels.cmake, stream mode).
//
// Kernels are compiled against Xilinx's own hls_stream.h with HLS_STREAM_THREAD_SAFE: a read of
// an empty stream waits on the stream's condition variable, a write never blocks. emu makes those
// streams the bounded FIFOs of the design (emu_stream.cpp) without touching the header:
//  - the element type is known only in the kernel's translation unit, so each source is compiled
//    through a wrapper that includes it and then FPYGA_EMU_STREAM_KERNEL(k) for every kernel of
//    the xclbin; for the kernels that source declares, that registers one table of type-erased
//    operations per hls::stream argument (create the FIFO object, reach its mutex, condition
//    variable and element count, which hls::stream keeps protected);
//  - the shared object is linked with --wrap for the three calls hls::stream makes out of line
//    (condition_variable::wait and notify_one, pthread_mutex_unlock), so emu sees each blocking
//    read, each write and each release of a stream's lock (emu_stream_glue.cpp).
// This header is also read by emu itself (the C structures), so it must stay valid C++17 and
// C++14 and include nothing but the standard library and hls_stream.h (kernel side only).
#ifndef FPYGA_EMU_STREAM_GLUE_H
#define FPYGA_EMU_STREAM_GLUE_H

#include <cstddef>

/// Changes whenever the structures below change: emu refuses a kernel .so of another version.
#define FPYGA_EMU_STREAM_ABI 1

extern "C" {

/// What emu can do with one hls::stream argument's FIFO object, whatever its element type.
struct fpyga_emu_stream_ops {
  unsigned abi;
  std::size_t element_size;           ///< sizeof(T)
  const char* element_type;           ///< typeid(T).name(), for messages
  void* (*create)(const char* name);  ///< a new hls::stream<T>
  void (*destroy)(void* stream);      ///< empties and deletes it
  void* (*mutex)(void* stream);       ///< its std::mutex
  void* (*cond)(void* stream);        ///< its std::condition_variable
  std::size_t (*size)(void* stream);  ///< its element count; the caller holds its mutex
  void (*clear)(void* stream);        ///< drops its elements (takes its mutex)
};

/// emu's side, installed at load (fpyga_emu_stream_attach). `wait` may throw a C++ exception
/// (a run cancelled by a deadlock or an unload): hls::stream::read unwinds through it.
struct fpyga_emu_stream_host {
  unsigned abi;
  void (*wait)(void* cond, void* unique_lock);  ///< condition_variable::wait(unique_lock<mutex>&)
  void (*notify_one)(void* cond);               ///< condition_variable::notify_one()
  int (*unlock)(void* mutex);                   ///< pthread_mutex_unlock
};

/// Exported by the glue: installs emu's functions (null: plain hls::stream behaviour again).
typedef void (*fpyga_emu_stream_attach_fn)(const struct fpyga_emu_stream_host*);
/// Exported by the glue as fpyga_emu_stream_arg_ops: the operations of argument `arg` (position) of
/// kernel `kernel`, or null when that argument is not an hls::stream or the kernel is not in the
/// .so.
typedef const struct fpyga_emu_stream_ops* (*fpyga_emu_stream_ops_fn)(const char* kernel,
                                                                      unsigned arg);
/// Used by the wrappers: records a kernel's table of stream operations (one per argument).
void fpyga_emu_stream_register(const char* kernel, const struct fpyga_emu_stream_ops* const* ops,
                               unsigned count);
}

#ifndef FPYGA_EMU_STREAM_HOST_SIDE
#include <hls_stream.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <typeinfo>

#ifndef HLS_STREAM_THREAD_SAFE
#error \
    "fpyga's emu stream glue needs hls::stream built with HLS_STREAM_THREAD_SAFE (the toolchain defines it)"
#endif

namespace fpyga_emu_glue {

/// Reaches hls::stream's protected members through a derived class (the header's own design:
/// they are protected, not private).
template <class T>
struct reach : hls::stream<T> {
  static std::mutex& mutex(hls::stream<T>& s) { return s.*(&reach::_mutex); }
  static std::condition_variable& cond(hls::stream<T>& s) { return s.*(&reach::_condition_var); }
  static std::deque<T>& data(hls::stream<T>& s) { return s.*(&reach::_data); }
};

template <class T>
struct ops_for {
  static hls::stream<T>& of(void* s) { return *static_cast<hls::stream<T>*>(s); }
  static void* create(const char* name) { return new hls::stream<T>(std::string(name)); }
  static void clear(void* s) {
    std::lock_guard<std::mutex> hold(reach<T>::mutex(of(s)));
    reach<T>::data(of(s)).clear();
  }
  static void destroy(void* s) {
    clear(s);  // hls::stream's destructor would print a warning for leftover elements
    delete &of(s);
  }
  static void* mutex(void* s) { return &reach<T>::mutex(of(s)); }
  static void* cond(void* s) { return &reach<T>::cond(of(s)); }
  static std::size_t size(void* s) { return reach<T>::data(of(s)).size(); }
  static const fpyga_emu_stream_ops* get() {
    static const fpyga_emu_stream_ops ops = {FPYGA_EMU_STREAM_ABI,
                                             sizeof(T),
                                             typeid(T).name(),
                                             &create,
                                             &destroy,
                                             &mutex,
                                             &cond,
                                             &size,
                                             &clear};
    return &ops;
  }
};

/// The operations of one argument type: an hls::stream<T>& gets them, anything else null.
template <class A>
struct arg_ops {
  static const fpyga_emu_stream_ops* get() { return nullptr; }
};
template <class T>
struct arg_ops<hls::stream<T>&> {
  static const fpyga_emu_stream_ops* get() { return ops_for<T>::get(); }
};

template <class... A>
struct signature {};
struct absent {};

template <class... A>
bool record(const char* kernel, signature<A...>) {
  static const fpyga_emu_stream_ops* const table[sizeof...(A) + 1] = {arg_ops<A>::get()...,
                                                                      nullptr};
  fpyga_emu_stream_register(kernel, table, sizeof...(A));
  return true;
}
inline bool record(const char*, absent) {
  return false;
}

}  // namespace fpyga_emu_glue

/// Registers kernel `k`'s stream arguments if this translation unit declares `k`; does nothing
/// otherwise (the wrapper of every source names every kernel of the xclbin). The detection:
/// a stand-in `k` returning `absent` joins the overload set, and only a real `void k(...)`
/// matches the preferred template overload of pick_k.
#define FPYGA_EMU_STREAM_KERNEL(k)                                                                 \
  namespace fpyga_emu_detect_##k {                                                                 \
    struct tag {};                                                                                 \
    fpyga_emu_glue::absent k(tag);                                                                 \
  }                                                                                                \
  using namespace fpyga_emu_detect_##k;                                                            \
  template <class... A>                                                                            \
  fpyga_emu_glue::signature<A...> fpyga_emu_pick_##k(void (*)(A...), int);                         \
  fpyga_emu_glue::absent fpyga_emu_pick_##k(fpyga_emu_glue::absent (*)(fpyga_emu_detect_##k::tag), \
                                            long);                                                 \
  static const bool fpyga_emu_recorded_##k =                                                       \
      fpyga_emu_glue::record(#k, decltype(fpyga_emu_pick_##k(&k, 0)){});

#endif  // FPYGA_EMU_STREAM_HOST_SIDE
#endif  // FPYGA_EMU_STREAM_GLUE_H
