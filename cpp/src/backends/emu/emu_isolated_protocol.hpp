// The messages between emu (the host process) and fpyga-emu-host, the helper process that runs
// one compute unit's kernel in isolated mode (FPYGA_EMU_ISOLATE=1). Both ends are built from the
// same tree, so the layout is plain structs over a SOCK_SEQPACKET socket (one message per send).
//
//   host -> helper  setup: the kernel's name and argument passing, the banks (their memfds and
//                   addresses) and the kernel .so (its memfd), fds by SCM_RIGHTS
//   helper -> host  ready, or failed with a message
//   host -> helper  run: one 8-byte word per argument (a pointer's address, a scalar's bits),
//                   the guard pages to protect for this run, the ap_* copies passed by reference
//   helper -> host  done; or crashed (signal, address) or exited (status), after which it is gone
#pragma once

#include <cstdint>

namespace fpyga::backend::emu::isolated {

/// The helper's end of the socket, as the helper process sees it.
constexpr int socket_fd = 3;

enum class op : std::uint32_t { setup = 1, ready, failed, run, done, crashed, exited };

/// How an argument is typed for libffi on both ends.
enum class arg_type : std::uint8_t { pointer, f32, f64, s8, u8, s16, u16, s32, u32, s64, u64 };

struct setup_header {
  op what = op::setup;
  std::uint32_t args = 0;
  std::uint32_t banks = 0;  ///< the first `banks` fds are the banks', the last the .so's
  char kernel[256] = {};
  char compute_unit[128] = {};
};
struct setup_arg {
  arg_type type = arg_type::pointer;
  std::uint8_t by_ref = 0;  ///< passed as the address of a copy of `storage` bytes
  std::uint32_t storage = 0;
};
struct setup_bank {
  std::uint64_t address = 0;  ///< where the whole mapping starts (guard pages included)
  std::uint64_t bytes = 0;
  std::uint64_t open_offset = 0;  ///< the accessible part: [address + open_offset, + open_bytes)
  std::uint64_t open_bytes = 0;
};

struct run_header {
  op what = op::run;
  std::uint32_t args = 0;
  std::uint32_t guards = 0;        ///< guard pages to make inaccessible for this run
  std::uint32_t by_ref_bytes = 0;  ///< the copies, after the guards, in argument order
};
// Followed by: std::uint64_t word[args], std::uint64_t guard[guards] (page addresses), bytes.

struct reply {
  op what = op::done;
  std::int32_t signal = 0;    ///< crashed: the signal; exited: the status
  std::int32_t code = 0;      ///< crashed: si_code
  std::int32_t write = 0;     ///< crashed with SIGSEGV: the access was a write
  std::uint64_t address = 0;  ///< crashed: si_addr
  char message[512] = {};     ///< failed: why
};

}  // namespace fpyga::backend::emu::isolated
