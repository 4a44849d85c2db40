// The structure check emu runs on an sw_emu BITSTREAM before handing it to the dynamic loader.
// ld.so trusts the file it maps: a header, program header, dynamic entry, hash table, version
// record or relocation that points outside the file or the mapped image makes it read or write
// wild addresses (SIGSEGV, SIGILL) instead of failing. Everything the loader follows is checked
// here against the payload's bytes and the image the PT_LOAD segments describe.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace fpyga::backend::emu {

/// Throws xclbin_error naming `source` ("'<file>': BITSTREAM ELF: ...") when `elf` is not a
/// well-formed shared object for this host: 64-bit, this byte order and machine, ET_DYN; headers,
/// segments, the dynamic section, its tables, version records and relocations inside the payload
/// and the image. Passing does not make the code correct, only safe for the loader to map.
void check_kernel_elf(std::span<const std::byte> elf, std::string_view source);

}  // namespace fpyga::backend::emu
