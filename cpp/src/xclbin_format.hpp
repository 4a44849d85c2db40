// Byte layout of the xclbin container (XRT's `struct axlf`, read from xclbin.h for the facts),
// shared by the reader and the writer. Offsets are from the start of the file or the section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "fpyga/xclbin.hpp"

namespace fpyga::format {

inline constexpr char magic[8] = {'x', 'c', 'l', 'b', 'i', 'n', '2', '\0'};

// struct axlf
inline constexpr std::size_t signature_length = 8;  // i32, -1: unsigned
inline constexpr std::size_t reserved = 12;         // 28 bytes of 0xff
inline constexpr std::size_t key_block = 40;        // 256 bytes of 0xff when unsigned
inline constexpr std::size_t unique_id = 296;       // u64
// struct axlf_header, inline at 304
inline constexpr std::size_t length = 304;          // u64, the whole file
inline constexpr std::size_t timestamp = 312;       // u64
inline constexpr std::size_t feature_rom_ts = 320;  // u64
inline constexpr std::size_t version_patch = 328;   // u16
inline constexpr std::size_t version_major = 330;   // u8
inline constexpr std::size_t version_minor = 331;   // u8
inline constexpr std::size_t mode = 332;            // u16
inline constexpr std::size_t action_mask = 334;     // u16
inline constexpr std::size_t interface_uuid = 336;  // 16 bytes (rom_uuid)
inline constexpr std::size_t platform_vbnv = 352;   // char[64]
inline constexpr std::size_t platform_vbnv_size = 64;
inline constexpr std::size_t uuid = 416;          // 16 bytes
inline constexpr std::size_t debug_bin = 432;     // char[16]
inline constexpr std::size_t num_sections = 448;  // u32 + 4 padding
inline constexpr std::size_t section_table = 456;

// struct axlf_section_header
inline constexpr std::size_t section_header_size = 40;
inline constexpr std::size_t sh_kind = 0;  // u32
inline constexpr std::size_t sh_name = 4;  // char[16]
inline constexpr std::size_t sh_name_size = 16;
inline constexpr std::size_t sh_offset = 24;  // u64
inline constexpr std::size_t sh_size = 32;    // u64

// MEM_TOPOLOGY: i32 count, entries from 8.
inline constexpr std::size_t mem_entries = 8;
inline constexpr std::size_t mem_entry_size = 40;
inline constexpr std::size_t mem_type = 0, mem_used = 1, mem_size_kb = 8, mem_base = 16,
                             mem_tag = 24;
inline constexpr std::size_t mem_tag_size = 16;

// CONNECTIVITY: i32 count, entries from 4.
inline constexpr std::size_t conn_entries = 4;
inline constexpr std::size_t conn_entry_size = 12;

// IP_LAYOUT: i32 count, entries from 8.
inline constexpr std::size_t ip_entries = 8;
inline constexpr std::size_t ip_entry_size = 80;
inline constexpr std::size_t ip_type = 0, ip_properties = 4, ip_base = 8, ip_name = 16;
inline constexpr std::size_t ip_name_size = 64;

// CLOCK_FREQ_TOPOLOGY: i16 count, entries from 2.
inline constexpr std::size_t clock_entries = 2;
inline constexpr std::size_t clock_entry_size = 136;
inline constexpr std::size_t clock_freq = 0, clock_type = 2, clock_name = 8;
inline constexpr std::size_t clock_name_size = 128;

// Section payloads start on 8-byte boundaries.
inline constexpr std::size_t alignment = 8;

/// Stream entries of MEM_TOPOLOGY keep a route id and a flow id where banks keep a size and a
/// base address.
inline bool is_stream_memory(memory_type t) {
  return t == memory_type::streaming || t == memory_type::streaming_connection;
}

/// The position where `s` stops being well-formed UTF-8 (overlong forms, surrogates and code
/// points past U+10FFFF included), or npos.
std::size_t utf8_error(std::string_view s);

/// Throws xclbin_error naming `source` and the bank when a bank (not a stream entry) of
/// `memories` runs past the end of the 64-bit address space: emu checks what it is handed too.
void check_memory_ranges(const std::vector<memory_info>& memories, std::string_view source);

/// True when [base, base + size) lies inside the 64-bit address space (a bank may end exactly at
/// its top). The reader, the writer and emu refuse banks that wrap around.
inline bool memory_range_fits(std::uint64_t base, std::uint64_t size) {
  return size == 0 || base <= std::numeric_limits<std::uint64_t>::max() - (size - 1);
}

}  // namespace fpyga::format
