// Emu's check of the BITSTREAM ELF before dlopen (issue 18 item 8): damaged headers, segments,
// dynamic entries, hash tables and relocations are refused with an error naming the file, where
// glibc's loader crashed (SIGSEGV, SIGFPE, SIGILL) or aborted on them; the project's real kernels
// pass, and the device stays usable.
#include <elf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "backends/emu/emu_elf.hpp"
#include "fpyga/fpyga.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using testing::HasSubstr;

namespace {

using bytes = std::vector<std::byte>;

template <class T>
T& at(bytes& b, std::uint64_t off) {
  if (off + sizeof(T) > b.size()) throw std::out_of_range("test: offset past the ELF");
  return *reinterpret_cast<T*>(b.data() + off);  // the vector's data is suitably aligned
}

Elf64_Ehdr& header(bytes& b) {
  return at<Elf64_Ehdr>(b, 0);
}

Elf64_Phdr& phdr(bytes& b, std::uint32_t type) {
  auto& eh = header(b);
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    auto& ph = at<Elf64_Phdr>(b, eh.e_phoff + i * sizeof(Elf64_Phdr));
    if (ph.p_type == type) return ph;
  }
  throw std::runtime_error("test: no program header of type " + std::to_string(type));
}

/// File offset of a virtual address (inside some PT_LOAD's file part).
std::uint64_t file_offset(bytes& b, std::uint64_t vaddr) {
  auto& eh = header(b);
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    auto& ph = at<Elf64_Phdr>(b, eh.e_phoff + i * sizeof(Elf64_Phdr));
    if (ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz)
      return ph.p_offset + (vaddr - ph.p_vaddr);
  }
  throw std::runtime_error("test: address not in the file");
}

Elf64_Dyn& dyn(bytes& b, std::int64_t tag) {
  auto& d = phdr(b, PT_DYNAMIC);
  for (std::uint64_t off = d.p_offset; off < d.p_offset + d.p_filesz; off += sizeof(Elf64_Dyn)) {
    auto& e = at<Elf64_Dyn>(b, off);
    if (e.d_tag == tag) return e;
  }
  throw std::runtime_error("test: no dynamic entry " + std::to_string(tag));
}

std::string check_error(const bytes& elf) {
  try {
    fpyga::backend::emu::check_kernel_elf(elf, "'k.xclbin'");
  } catch (const fpyga::xclbin_error& e) {
    return e.what();
  }
  return "";
}

class emu_elf : public testing::Test {
 protected:
  void SetUp() override {
    // mlp's library has every table the damages below touch (PLT relocations, version needs).
    const auto p = fpyga::test::built_xclbin_dir() / "mlp.xclbin";
    if (!fs::exists(p)) {
      if (fpyga::test::under_ci()) FAIL() << "test input missing under CI: " << p;
      GTEST_SKIP() << "test input not found: " << p;
    }
    x = fpyga::xclbin::read(p.string());
    elf = x.bitstream;
    dir = fs::temp_directory_path() / ("fpyga_test_emu_elf_" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  /// Writes the xclbin with `damaged` as its BITSTREAM; returns the path.
  std::string with_bitstream(const bytes& damaged, const std::string& name) {
    auto y = x;
    y.bitstream = damaged;
    const auto p = (dir / name).string();
    y.write(p);
    return p;
  }
  fpyga::xclbin x;
  bytes elf;
  fs::path dir;
};

struct damage {
  const char* name;
  std::function<void(bytes&)> apply;
  const char* expected;
};

const std::vector<damage>& damages() {
  static const std::vector<damage> all = {
      {"phoff", [](bytes& b) { header(b).e_phoff = 1u << 30; }, "program header table"},
      {"machine", [](bytes& b) { header(b).e_machine = EM_AARCH64; }, "is not this host's"},
      {"type", [](bytes& b) { header(b).e_type = ET_EXEC; }, "is not ET_DYN"},
      {"class", [](bytes& b) { header(b).e_ident[EI_CLASS] = ELFCLASS32; }, "ELFCLASS64"},
      {"dynamic_offset", [](bytes& b) { phdr(b, PT_DYNAMIC).p_offset = 1u << 30; },
       "lie past the end"},
      {"strtab", [](bytes& b) { dyn(b, DT_STRTAB).d_un.d_ptr = 0x7fff0000; },
       "DT_STRTAB at address 0x7fff0000"},
      {"strsz", [](bytes& b) { dyn(b, DT_STRSZ).d_un.d_val = 1u << 28; }, "DT_STRTAB"},
      {"relaent", [](bytes& b) { dyn(b, DT_RELAENT).d_un.d_val = 16; }, "DT_RELAENT 16"},
      {"gnu_hash_buckets",
       [](bytes& b) { at<std::uint32_t>(b, file_offset(b, dyn(b, DT_GNU_HASH).d_un.d_ptr)) = 0; },
       "DT_GNU_HASH has no buckets"},
      {"rela_target",
       [](bytes& b) {
         at<Elf64_Rela>(b, file_offset(b, dyn(b, DT_RELA).d_un.d_ptr)).r_offset = 0x40000000;
       },
       "DT_RELA entry 0 target at address 0x40000000"},
      {"init_array",
       [](bytes& b) {
         // The RELATIVE relocation that fills the first init_array slot: its function moves out of
         // the code.
         const auto init = dyn(b, DT_INIT_ARRAY).d_un.d_ptr;
         const auto rela = file_offset(b, dyn(b, DT_RELA).d_un.d_ptr);
         const auto n = dyn(b, DT_RELASZ).d_un.d_val / sizeof(Elf64_Rela);
         for (std::uint64_t i = 0; i < n; ++i) {
           auto& r = at<Elf64_Rela>(b, rela + i * sizeof(Elf64_Rela));
           if (r.r_offset == init) {
             r.r_addend = 0x10;  // inside the ELF header's read-only page
             return;
           }
         }
         throw std::runtime_error("test: no relocation fills init_array[0]");
       },
       "function at address 0x10 lies in a segment that is not executable"},
      {"symbol_index",
       [](bytes& b) {
         auto& r = at<Elf64_Rela>(b, file_offset(b, dyn(b, DT_JMPREL).d_un.d_ptr));
         r.r_info = ELF64_R_INFO(100000, ELF64_R_TYPE(r.r_info));
       },
       "names symbol 100000"},
      {"dynamic_address", [](bytes& b) { phdr(b, PT_DYNAMIC).p_vaddr += 0x10; },
       "does not map to its file offset"},
      {"relacount",
       [](bytes& b) {
         auto& r = at<Elf64_Rela>(b, file_offset(b, dyn(b, DT_RELA).d_un.d_ptr));
         r.r_info = ELF64_R_INFO(0, R_X86_64_64);  // glibc asserted: the first are relative
       },
       "is not a relative relocation, but DT_RELACOUNT says"},
      {"init_array_slot",
       [](bytes& b) {
         // The relocation that fills init_array[0] moves to another word: the slot would be
         // called at its link-time address.
         const auto init = dyn(b, DT_INIT_ARRAY).d_un.d_ptr;
         const auto rela = file_offset(b, dyn(b, DT_RELA).d_un.d_ptr);
         const auto n = dyn(b, DT_RELASZ).d_un.d_val / sizeof(Elf64_Rela);
         for (std::uint64_t i = 0; i < n; ++i) {
           auto& r = at<Elf64_Rela>(b, rela + i * sizeof(Elf64_Rela));
           if (r.r_offset == init) {
             r.r_offset = init + 0x2f;
             return;
           }
         }
         throw std::runtime_error("test: no relocation fills init_array[0]");
       },
       "has no relocation"},
      {"verneed",
       [](bytes& b) {
         at<Elf64_Verneed>(b, file_offset(b, dyn(b, DT_VERNEED).d_un.d_ptr)).vn_aux = 1u << 30;
       },
       "DT_VERNEED aux runs past its segment"},
  };
  return all;
}

}  // namespace

TEST_F(emu_elf, the_projects_kernels_pass) {
  for (const auto& e : fs::directory_iterator(fpyga::test::built_xclbin_dir())) {
    if (e.path().extension() != ".xclbin") continue;
    const auto y = fpyga::xclbin::read(e.path().string());
    if (!y.bitstream_is_elf()) continue;
    EXPECT_EQ(check_error(y.bitstream), "") << e.path();
  }
}

TEST_F(emu_elf, each_damage_is_refused_with_what_is_wrong) {
  for (const auto& d : damages()) {
    bytes b = elf;
    d.apply(b);
    const auto e = check_error(b);
    EXPECT_THAT(e, HasSubstr("'k.xclbin': BITSTREAM ELF: ")) << d.name;
    EXPECT_THAT(e, HasSubstr(d.expected)) << d.name;
  }
  EXPECT_THAT(check_error(bytes(elf.begin(), elf.begin() + 40)), HasSubstr("shorter than an ELF"));
}

// Through the overlay: each damaged file is an xclbin_error naming it, nothing was loaded, and the
// device then loads and runs the real kernel. (Without the check, damages like these end the
// process inside dlopen: SIGSEGV, or ld.so's "Inconsistency detected" exit.)
TEST_F(emu_elf, emu_refuses_them_and_stays_usable) {
  auto dev = fpyga::device::open("emu");
  for (const auto& d : damages()) {
    bytes b = elf;
    d.apply(b);
    const auto path = with_bitstream(b, std::string("damaged_") + d.name + ".xclbin");
    try {
      fpyga::overlay ol(dev, path);
      ADD_FAILURE() << d.name << ": loaded";
    } catch (const fpyga::xclbin_error& e) {
      EXPECT_THAT(e.what(), HasSubstr(path)) << d.name;
      EXPECT_THAT(e.what(), HasSubstr("BITSTREAM ELF")) << d.name;
    }
  }
  fpyga::overlay good(dev, with_bitstream(elf, "good.xclbin"));
  EXPECT_EQ(good.kernel("mlp").name(), "mlp");
  FPYGA_REQUIRE_FILE(vadd, fpyga::test::built_xclbin_dir() / "vadd.xclbin");
  fpyga::overlay ol(dev, vadd.string());
  auto k = ol.kernel("vadd");
  fpyga::buffer in1(k, 0, 64), in2(k, 1, 64), out(k, 2, 64);
  for (unsigned i = 0; i < 16; ++i) {
    in1.as<unsigned>()[i] = i;
    in2.as<unsigned>()[i] = 100 * i;
  }
  in1.sync_to_device();
  in2.sync_to_device();
  k.call(in1, in2, out, 16);
  out.sync_from_device();
  for (unsigned i = 0; i < 16; ++i) EXPECT_EQ(out.as<unsigned>()[i], 101 * i);
}
