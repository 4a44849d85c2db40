// libFuzzer target: emu's load up to the point where the kernel library would be handed to the
// dynamic loader: the reader, the bank checks and the BITSTREAM ELF's structure check. Anything
// but a result or xclbin_error is a finding; so is an accepted ELF whose tables are not where the
// check said (each accepted file is walked again here through <elf.h>'s structures).
// Seeds: the project's sw_emu xclbins (their payloads are real kernel libraries).
#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "backends/emu/emu_elf.hpp"
#include "fpyga/error.hpp"
#include "fpyga/xclbin.hpp"
#include "xclbin_format.hpp"

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fpyga fuzz finding: %s\n", what);
  std::abort();
}

// What the loader reads first, re-read without the checker's helpers: must lie in the payload.
void recheck(std::span<const std::byte> elf) {
  Elf64_Ehdr eh;
  if (elf.size() < sizeof eh) finding("accepted an ELF shorter than its header");
  std::memcpy(&eh, elf.data(), sizeof eh);
  if (eh.e_phoff > elf.size() ||
      std::uint64_t(eh.e_phnum) * sizeof(Elf64_Phdr) > elf.size() - eh.e_phoff)
    finding("accepted program headers past the payload");
  bool dynamic = false;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, elf.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_offset > elf.size() || ph.p_filesz > elf.size() - ph.p_offset)
      finding("accepted a segment past the payload");
    dynamic = dynamic || ph.p_type == PT_DYNAMIC;
  }
  if (!dynamic) finding("accepted an ELF without PT_DYNAMIC");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  fpyga::xclbin x;
  try {
    x = fpyga::xclbin::parse(bytes, "fuzz.xclbin");
    fpyga::format::check_memory_ranges(x.memories, "fuzz.xclbin");  // emu's load does this first
  } catch (const fpyga::xclbin_error&) {
    return 0;
  }
  if (!x.bitstream_is_elf()) return 0;  // emu refuses it by name, before any ELF check
  try {
    fpyga::backend::emu::check_kernel_elf(x.bitstream, "'fuzz.xclbin'");
  } catch (const fpyga::xclbin_error&) {
    return 0;
  }
  recheck(x.bitstream);
  return 0;
}
