// Structure check of an sw_emu kernel ELF before dlopen: see emu_elf.hpp. Each rule guards
// against something glibc's loader does with the field unchecked (reads through it, divides by
// it, asserts on it, or writes to the address it names).
#include "backends/emu/emu_elf.hpp"

#include <elf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fpyga/error.hpp"

namespace fpyga::backend::emu {
namespace {

#if defined(__x86_64__)
constexpr std::uint16_t host_machine = EM_X86_64;
constexpr const char* host_machine_name = "x86-64";
constexpr std::uint32_t relative_type = R_X86_64_RELATIVE;
#elif defined(__aarch64__)
constexpr std::uint16_t host_machine = EM_AARCH64;
constexpr const char* host_machine_name = "AArch64";
constexpr std::uint32_t relative_type = R_AARCH64_RELATIVE;
#else
#error "emu_elf.cpp: add this host's ELF machine"
#endif

std::string hex(std::uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), digits[v & 0xF]);
    v >>= 4;
  } while (v);
  return "0x" + s;
}

/// a + b <= limit, without wrapping.
bool fits(std::uint64_t a, std::uint64_t b, std::uint64_t limit) {
  return a <= limit && b <= limit - a;
}

bool power_of_two_or_zero(std::uint64_t v) {
  return (v & (v - 1)) == 0;
}

class elf_checker {
 public:
  elf_checker(std::span<const std::byte> elf, std::string_view source)
      : elf_(elf), source_(source) {}

  void run() {
    header();
    program_headers();
    dynamic_section();
    tables();
    relocations();
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw xclbin_error(std::string(source_) + ": BITSTREAM ELF: " + problem +
                       " (the kernel library is damaged; it was not loaded)");
  }

  template <class T>
  T read(std::uint64_t offset, const std::string& what) const {
    if (!fits(offset, sizeof(T), elf_.size()))
      fail(what + " at byte " + std::to_string(offset) + " lies past the end of the " +
           std::to_string(elf_.size()) + "-byte payload");
    T v;
    std::memcpy(&v, elf_.data() + offset, sizeof(T));
    return v;
  }

  // --- the image: PT_LOAD segments -----------------------------------------------------------

  struct segment {
    std::uint64_t vaddr, memsz, offset, filesz;
    std::uint32_t flags;
  };

  /// The segment whose memory holds [vaddr, vaddr + size), or null.
  const segment* mapped(std::uint64_t vaddr, std::uint64_t size) const {
    for (const auto& s : loads_)
      if (vaddr >= s.vaddr && fits(vaddr - s.vaddr, size, s.memsz)) return &s;
    return nullptr;
  }

  /// The file offset of [vaddr, vaddr + size) when file bytes back all of it (tables the loader
  /// reads must come from the file, not the zero-filled tail).
  std::uint64_t file_backed(std::uint64_t vaddr, std::uint64_t size,
                            const std::string& what) const {
    for (const auto& s : loads_)
      if (vaddr >= s.vaddr && fits(vaddr - s.vaddr, size, s.filesz))
        return s.offset + (vaddr - s.vaddr);
    fail(what + " at address " + hex(vaddr) + " (" + std::to_string(size) +
         " bytes) is not inside the file part of a PT_LOAD segment");
  }

  void need_mapped(std::uint64_t vaddr, std::uint64_t size, const std::string& what,
                   std::uint32_t flag = 0) const {
    const segment* s = mapped(vaddr, size);
    if (!s)
      fail(what + " at address " + hex(vaddr) + " (" + std::to_string(size) +
           " bytes) lies outside every PT_LOAD segment");
    if (flag && !(s->flags & flag))
      fail(what + " at address " + hex(vaddr) + " lies in a segment that is not " +
           (flag == PF_X ? "executable" : "writable"));
  }

  // --- checks --------------------------------------------------------------------------------

  void header() {
    if (elf_.size() < sizeof(Elf64_Ehdr))
      fail("payload is " + std::to_string(elf_.size()) + " bytes, shorter than an ELF header");
    eh_ = read<Elf64_Ehdr>(0, "ELF header");
    if (std::memcmp(eh_.e_ident, ELFMAG, SELFMAG) != 0) fail("bad ELF magic");
    if (eh_.e_ident[EI_CLASS] != ELFCLASS64)
      fail("class " + std::to_string(eh_.e_ident[EI_CLASS]) + " is not ELFCLASS64");
    if (eh_.e_ident[EI_DATA] != ELFDATA2LSB)
      fail("byte order " + std::to_string(eh_.e_ident[EI_DATA]) + " is not little-endian");
    if (eh_.e_ident[EI_VERSION] != EV_CURRENT || eh_.e_version != EV_CURRENT)
      fail("ELF version is not EV_CURRENT");
    if (eh_.e_type != ET_DYN)
      fail("type " + std::to_string(eh_.e_type) + " is not ET_DYN (a shared object)");
    if (eh_.e_machine != host_machine)
      fail("machine " + std::to_string(eh_.e_machine) + " is not this host's (" +
           host_machine_name + ")");
    if (eh_.e_ehsize != sizeof(Elf64_Ehdr))
      fail("e_ehsize " + std::to_string(eh_.e_ehsize) + " is not " +
           std::to_string(sizeof(Elf64_Ehdr)));
    if (eh_.e_phentsize != sizeof(Elf64_Phdr))
      fail("e_phentsize " + std::to_string(eh_.e_phentsize) + " is not " +
           std::to_string(sizeof(Elf64_Phdr)));
    if (eh_.e_phnum == 0 || eh_.e_phnum == PN_XNUM)
      fail("e_phnum " + std::to_string(eh_.e_phnum) + " is not a usable program header count");
    if (!fits(eh_.e_phoff, std::uint64_t(eh_.e_phnum) * sizeof(Elf64_Phdr), elf_.size()))
      fail("the program header table (" + std::to_string(eh_.e_phnum) + " entries at byte " +
           std::to_string(eh_.e_phoff) + ") lies past the end of the " +
           std::to_string(elf_.size()) + "-byte payload");
    if (eh_.e_shnum != 0) {
      if (eh_.e_shentsize != sizeof(Elf64_Shdr))
        fail("e_shentsize " + std::to_string(eh_.e_shentsize) + " is not " +
             std::to_string(sizeof(Elf64_Shdr)));
      if (!fits(eh_.e_shoff, std::uint64_t(eh_.e_shnum) * sizeof(Elf64_Shdr), elf_.size()))
        fail("the section header table lies past the end of the payload");
    }
  }

  void program_headers() {
    std::vector<Elf64_Phdr> others;
    for (unsigned i = 0; i < eh_.e_phnum; ++i) {
      const auto ph = read<Elf64_Phdr>(eh_.e_phoff + i * sizeof(Elf64_Phdr),
                                       "program header " + std::to_string(i));
      const std::string what = "program header " + std::to_string(i);
      if (ph.p_type == PT_NULL) continue;
      if (!fits(ph.p_offset, ph.p_filesz, elf_.size()))
        fail(what + ": its " + std::to_string(ph.p_filesz) + " bytes at offset " +
             std::to_string(ph.p_offset) + " lie past the end of the " +
             std::to_string(elf_.size()) + "-byte payload");
      if (!fits(ph.p_vaddr, ph.p_memsz, ~std::uint64_t{0}))
        fail(what + ": its memory range wraps around the address space");
      if (ph.p_type == PT_LOAD) {
        if (ph.p_filesz > ph.p_memsz) fail(what + ": PT_LOAD p_filesz exceeds p_memsz");
        if (!power_of_two_or_zero(ph.p_align) ||
            (ph.p_align > 1 && (ph.p_vaddr - ph.p_offset) % ph.p_align != 0))
          fail(what + ": PT_LOAD alignment " + std::to_string(ph.p_align) +
               " does not fit its offset and address");
        if (!loads_.empty() && ph.p_vaddr < loads_.back().vaddr + loads_.back().memsz)
          fail(what + ": PT_LOAD segments are not in ascending, non-overlapping address order");
        loads_.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset, ph.p_filesz, ph.p_flags});
      } else {
        if (ph.p_type == PT_DYNAMIC) {
          if (dynamic_) fail(what + ": a second PT_DYNAMIC");
          dynamic_ = ph;
        }
        if (ph.p_type == PT_INTERP) fail(what + ": PT_INTERP (an executable, not a library)");
        if (ph.p_type == PT_TLS && !power_of_two_or_zero(ph.p_align))
          fail(what + ": PT_TLS alignment " + std::to_string(ph.p_align) +
               " is not a power of two");
        if (ph.p_type == PT_TLS && ph.p_filesz > ph.p_memsz)
          fail(what + ": PT_TLS p_filesz exceeds p_memsz");
        others.push_back(ph);
      }
    }
    if (loads_.empty()) fail("no PT_LOAD segment");
    if (!dynamic_) fail("no PT_DYNAMIC segment (not a shared object)");
    // The loader reads these through the mapped image.
    for (const auto& ph : others) {
      const std::string what = "segment of type " + hex(ph.p_type);
      if (ph.p_type == PT_DYNAMIC || ph.p_type == PT_NOTE || ph.p_type == PT_GNU_PROPERTY ||
          ph.p_type == PT_GNU_EH_FRAME || (ph.p_type == PT_TLS && ph.p_filesz)) {
        // The loader reads them at their address, this check at their offset: the same bytes.
        if (file_backed(ph.p_vaddr, ph.p_filesz, what) != ph.p_offset)
          fail(what + " at address " + hex(ph.p_vaddr) + " does not map to its file offset " +
               std::to_string(ph.p_offset));
      } else if (ph.p_type == PT_GNU_RELRO && ph.p_memsz)
        need_mapped(ph.p_vaddr, ph.p_memsz, what);
      if (ph.p_type == PT_NOTE || ph.p_type == PT_GNU_PROPERTY) notes(ph);
    }
  }

  void notes(const Elf64_Phdr& ph) {
    const std::uint64_t align = ph.p_align == 8 ? 8 : 4;
    std::uint64_t at = 0;
    while (at + sizeof(Elf64_Nhdr) <= ph.p_filesz) {
      const auto n = read<Elf64_Nhdr>(ph.p_offset + at, "note header");
      const std::uint64_t name = (std::uint64_t(n.n_namesz) + align - 1) / align * align;
      const std::uint64_t desc = (std::uint64_t(n.n_descsz) + align - 1) / align * align;
      const std::uint64_t next = at + sizeof(Elf64_Nhdr) + name + desc;
      if (next > ph.p_filesz)
        fail("a note at byte " + std::to_string(ph.p_offset + at) + " runs past its segment");
      at = next;
    }
  }

  void dynamic_section() {
    const std::uint64_t n = dynamic_->p_filesz / sizeof(Elf64_Dyn);
    bool terminated = false;
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto d = read<Elf64_Dyn>(dynamic_->p_offset + i * sizeof(Elf64_Dyn), "dynamic entry");
      if (d.d_tag == DT_NULL) {
        terminated = true;
        break;
      }
      const auto tag = static_cast<std::uint64_t>(d.d_tag);
      if (tag == DT_NEEDED || tag == DT_SONAME || tag == DT_RPATH || tag == DT_RUNPATH ||
          tag == DT_AUXILIARY || tag == DT_FILTER)
        strings_.push_back(d.d_un.d_val);
      else
        dyn_[tag] = d.d_un.d_val;
    }
    if (!terminated) fail("the dynamic section has no DT_NULL terminator");
  }

  std::optional<std::uint64_t> dyn(std::uint64_t tag) const {
    if (auto it = dyn_.find(tag); it != dyn_.end()) return it->second;
    return std::nullopt;
  }

  std::uint64_t required(std::uint64_t tag, const char* name) const {
    const auto v = dyn(tag);
    if (!v) fail(std::string("the dynamic section has no ") + name);
    return *v;
  }

  void string_offset(std::uint64_t off, const std::string& what) const {
    if (off >= strsz_)
      fail(what + " names string " + std::to_string(off) + ", past the " + std::to_string(strsz_) +
           "-byte DT_STRTAB");
  }

  void tables() {
    // Entry sizes glibc asserts on (an assert would abort the host).
    if (auto v = dyn(DT_SYMENT); v && *v != sizeof(Elf64_Sym))
      fail("DT_SYMENT " + std::to_string(*v) + " is not " + std::to_string(sizeof(Elf64_Sym)));
    if (auto v = dyn(DT_RELAENT); v && *v != sizeof(Elf64_Rela))
      fail("DT_RELAENT " + std::to_string(*v) + " is not " + std::to_string(sizeof(Elf64_Rela)));
    if (auto v = dyn(DT_PLTREL); v && *v != DT_RELA)
      fail("DT_PLTREL " + std::to_string(*v) + " is not DT_RELA");
    if (dyn(DT_REL) || dyn(DT_RELSZ)) fail("DT_REL relocations, which this machine does not use");

    // Strings: NUL-terminated at the end, so every offset below names a terminated string.
    const std::uint64_t strtab = required(DT_STRTAB, "DT_STRTAB");
    strsz_ = required(DT_STRSZ, "DT_STRSZ");
    if (strsz_ == 0) fail("DT_STRSZ is 0");
    strtab_off_ = file_backed(strtab, strsz_, "DT_STRTAB");
    if (read<char>(strtab_off_ + strsz_ - 1, "DT_STRTAB") != '\0')
      fail("DT_STRTAB does not end with a NUL");
    for (std::uint64_t s : strings_) string_offset(s, "a DT_NEEDED/DT_SONAME/DT_RUNPATH entry");

    // The symbol count, from the hash table the loader searches.
    const std::uint64_t symtab = required(DT_SYMTAB, "DT_SYMTAB");
    nsyms_ = 0;
    if (auto g = dyn(DT_GNU_HASH)) nsyms_ = std::max(nsyms_, gnu_hash(*g));
    if (auto h = dyn(DT_HASH)) nsyms_ = std::max(nsyms_, sysv_hash(*h));
    if (!dyn(DT_GNU_HASH) && !dyn(DT_HASH)) fail("no DT_HASH or DT_GNU_HASH");
    symtab_off_ = file_backed(symtab, nsyms_ * sizeof(Elf64_Sym), "DT_SYMTAB");
    for (std::uint64_t i = 0; i < nsyms_; ++i) {
      const auto s = read<Elf64_Sym>(symtab_off_ + i * sizeof(Elf64_Sym), "symbol");
      const std::string what = "symbol " + std::to_string(i);
      string_offset(s.st_name, what);
      if (s.st_shndx == SHN_UNDEF || s.st_shndx == SHN_ABS || ELF64_ST_TYPE(s.st_info) == STT_TLS)
        continue;
      if (ELF64_ST_TYPE(s.st_info) == STT_FUNC || ELF64_ST_TYPE(s.st_info) == STT_GNU_IFUNC)
        need_mapped(s.st_value, 1, what + " ('" + str(s.st_name) + "')", PF_X);
      else if (s.st_value || s.st_size)
        need_mapped(s.st_value, std::max<std::uint64_t>(s.st_size, 1),
                    what + " ('" + str(s.st_name) + "')");
    }
    if (auto v = dyn(DT_VERNEED)) verneed(*v, required(DT_VERNEEDNUM, "DT_VERNEEDNUM"));
    if (auto v = dyn(DT_VERDEF)) verdef(*v, required(DT_VERDEFNUM, "DT_VERDEFNUM"));
    if (auto v = dyn(DT_VERSYM)) {
      const std::uint64_t off = file_backed(*v, nsyms_ * sizeof(Elf64_Half), "DT_VERSYM");
      for (std::uint64_t i = 0; i < nsyms_; ++i) {
        const unsigned ndx = read<Elf64_Half>(off + 2 * i, "DT_VERSYM entry") & 0x7fff;
        if (ndx > max_version_)
          fail("symbol " + std::to_string(i) + " has version index " + std::to_string(ndx) +
               ", no version record defines it");
      }
    }

    if (auto v = dyn(DT_INIT)) need_mapped(*v, 1, "DT_INIT", PF_X);
    if (auto v = dyn(DT_FINI)) need_mapped(*v, 1, "DT_FINI", PF_X);
    if (dyn(DT_PREINIT_ARRAY)) fail("DT_PREINIT_ARRAY in a shared object");
    array(DT_INIT_ARRAY, DT_INIT_ARRAYSZ, "DT_INIT_ARRAY");
    array(DT_FINI_ARRAY, DT_FINI_ARRAYSZ, "DT_FINI_ARRAY");
    if (auto v = dyn(DT_PLTGOT)) need_mapped(*v, 8, "DT_PLTGOT", PF_W);
  }

  std::string str(std::uint64_t off) const {
    return std::string(reinterpret_cast<const char*>(elf_.data() + strtab_off_ + off));
  }

  void array(std::uint64_t tag, std::uint64_t size_tag, const char* name) {
    const auto addr = dyn(tag);
    const auto size = dyn(size_tag);
    if (!addr && !size) return;
    if (!addr || !size) fail(std::string(name) + " and its size must come together");
    if (*size % 8)
      fail(std::string(name) + " size " + std::to_string(*size) + " is not whole pointers");
    need_mapped(*addr, *size, name, PF_W);
    arrays_.push_back({*addr, *size});
  }

  /// Returns the number of symbols GNU_HASH covers; checks every chain ends inside the table.
  std::uint64_t gnu_hash(std::uint64_t vaddr) {
    const std::uint64_t off = file_backed(vaddr, 16, "DT_GNU_HASH");
    const auto nbuckets = read<std::uint32_t>(off, "DT_GNU_HASH");
    const auto symoffset = read<std::uint32_t>(off + 4, "DT_GNU_HASH");
    const auto bloom = read<std::uint32_t>(off + 8, "DT_GNU_HASH");
    const auto shift = read<std::uint32_t>(off + 12, "DT_GNU_HASH");
    if (nbuckets == 0) fail("DT_GNU_HASH has no buckets");
    if (bloom == 0 || !power_of_two_or_zero(bloom))
      fail("DT_GNU_HASH bloom filter size " + std::to_string(bloom) + " is not a power of two");
    if (shift >= 64) fail("DT_GNU_HASH bloom shift " + std::to_string(shift) + " is not below 64");
    const std::uint64_t buckets = off + 16 + std::uint64_t(bloom) * 8;
    file_backed(vaddr, 16 + std::uint64_t(bloom) * 8 + std::uint64_t(nbuckets) * 4, "DT_GNU_HASH");
    // The chains run to the end of the file part of the hash table's segment at most.
    const segment* seg = mapped(vaddr, 1);
    const std::uint64_t table_end = seg->offset + seg->filesz;
    const std::uint64_t chains = buckets + std::uint64_t(nbuckets) * 4;
    std::uint64_t count = symoffset;
    for (std::uint32_t b = 0; b < nbuckets; ++b) {
      std::uint64_t i = read<std::uint32_t>(buckets + 4 * b, "DT_GNU_HASH bucket");
      if (i == 0) continue;
      if (i < symoffset)
        fail("DT_GNU_HASH bucket " + std::to_string(b) + " names symbol " + std::to_string(i) +
             ", below the first hashed symbol " + std::to_string(symoffset));
      for (;; ++i) {
        const std::uint64_t at = chains + (i - symoffset) * 4;
        if (at + 4 > table_end) fail("a DT_GNU_HASH chain runs past its segment");
        if (read<std::uint32_t>(at, "DT_GNU_HASH chain") & 1) break;
      }
      count = std::max(count, i + 1);
    }
    return count;
  }

  /// Returns nchain (the symbol count); checks buckets and chains stay inside and never loop.
  std::uint64_t sysv_hash(std::uint64_t vaddr) {
    const std::uint64_t off = file_backed(vaddr, 8, "DT_HASH");
    const auto nbucket = read<std::uint32_t>(off, "DT_HASH");
    const auto nchain = read<std::uint32_t>(off + 4, "DT_HASH");
    if (nbucket == 0) fail("DT_HASH has no buckets");
    file_backed(vaddr, 8 + (std::uint64_t(nbucket) + nchain) * 4, "DT_HASH");
    std::vector<bool> seen(nchain);
    for (std::uint64_t b = 0; b < nbucket; ++b) {
      std::uint64_t i = read<std::uint32_t>(off + 8 + 4 * b, "DT_HASH bucket");
      while (i != STN_UNDEF) {
        if (i >= nchain || seen[i]) fail("DT_HASH chain is out of range or loops");
        seen[i] = true;
        i = read<std::uint32_t>(off + 8 + 4 * (nbucket + i), "DT_HASH chain");
      }
    }
    return nchain;
  }

  void verneed(std::uint64_t vaddr, std::uint64_t count) {
    const segment* seg = mapped(vaddr, 1);
    if (!seg) fail("DT_VERNEED lies outside every PT_LOAD segment");
    std::uint64_t at = file_backed(vaddr, sizeof(Elf64_Verneed), "DT_VERNEED");
    const std::uint64_t end = seg->offset + seg->filesz;
    for (std::uint64_t n = 0; n < count; ++n) {
      if (!fits(at, sizeof(Elf64_Verneed), end)) fail("DT_VERNEED runs past its segment");
      const auto v = read<Elf64_Verneed>(at, "DT_VERNEED entry");
      if (v.vn_version != 1) fail("DT_VERNEED entry version " + std::to_string(v.vn_version));
      string_offset(v.vn_file, "a DT_VERNEED entry");
      std::uint64_t aux = at + v.vn_aux;
      for (unsigned k = 0; k < v.vn_cnt; ++k) {
        if (!fits(aux, sizeof(Elf64_Vernaux), end)) fail("DT_VERNEED aux runs past its segment");
        const auto a = read<Elf64_Vernaux>(aux, "DT_VERNEED aux entry");
        string_offset(a.vna_name, "a DT_VERNEED aux entry");
        max_version_ = std::max<unsigned>(max_version_, a.vna_other & 0x7fff);
        aux += a.vna_next;
        if (a.vna_next == 0 && k + 1 < v.vn_cnt) fail("DT_VERNEED aux chain ends early");
      }
      if (v.vn_next == 0 && n + 1 < count) fail("DT_VERNEED chain ends early");
      at += v.vn_next;
    }
  }

  void verdef(std::uint64_t vaddr, std::uint64_t count) {
    const segment* seg = mapped(vaddr, 1);
    if (!seg) fail("DT_VERDEF lies outside every PT_LOAD segment");
    std::uint64_t at = file_backed(vaddr, sizeof(Elf64_Verdef), "DT_VERDEF");
    const std::uint64_t end = seg->offset + seg->filesz;
    for (std::uint64_t n = 0; n < count; ++n) {
      if (!fits(at, sizeof(Elf64_Verdef), end)) fail("DT_VERDEF runs past its segment");
      const auto v = read<Elf64_Verdef>(at, "DT_VERDEF entry");
      if (v.vd_version != 1) fail("DT_VERDEF entry version " + std::to_string(v.vd_version));
      max_version_ = std::max<unsigned>(max_version_, v.vd_ndx & 0x7fff);
      std::uint64_t aux = at + v.vd_aux;
      for (unsigned k = 0; k < v.vd_cnt; ++k) {
        if (!fits(aux, sizeof(Elf64_Verdaux), end)) fail("DT_VERDEF aux runs past its segment");
        const auto a = read<Elf64_Verdaux>(aux, "DT_VERDEF aux entry");
        string_offset(a.vda_name, "a DT_VERDEF aux entry");
        aux += a.vda_next;
        if (a.vda_next == 0 && k + 1 < v.vd_cnt) fail("DT_VERDEF aux chain ends early");
      }
      if (v.vd_next == 0 && n + 1 < count) fail("DT_VERDEF chain ends early");
      at += v.vd_next;
    }
  }

  void relocations() {
    const bool textrel = dyn(DT_TEXTREL) || (dyn(DT_FLAGS).value_or(0) & DF_TEXTREL);
    rela_table(dyn(DT_RELA), dyn(DT_RELASZ), "DT_RELA", textrel);
    rela_table(dyn(DT_JMPREL), dyn(DT_PLTRELSZ), "DT_JMPREL", textrel);
    // glibc asserts that the first DT_RELACOUNT relocations are relative ones.
    if (const auto count = dyn(DT_RELACOUNT); count && *count) {
      if (*count > dyn(DT_RELASZ).value_or(0) / sizeof(Elf64_Rela))
        fail("DT_RELACOUNT " + std::to_string(*count) + " exceeds the DT_RELA entries");
      const std::uint64_t off = file_backed(*dyn(DT_RELA), 1, "DT_RELA");
      for (std::uint64_t i = 0; i < *count; ++i)
        if (ELF64_R_TYPE(read<Elf64_Rela>(off + i * sizeof(Elf64_Rela), "DT_RELA").r_info) !=
            relative_type)
          fail("DT_RELA entry " + std::to_string(i) +
               " is not a relative relocation, but "
               "DT_RELACOUNT says the first " +
               std::to_string(*count) + " are");
    }
    // In a shared object every init/fini function pointer is relocated; a slot nothing relocates
    // would be called at its link-time address.
    for (const auto& [addr, size] : arrays_)
      for (std::uint64_t slot = addr; slot < addr + size; slot += 8)
        if (!relocated_.count(slot))
          fail("init/fini array slot at address " + hex(slot) + " has no relocation");
  }

  void rela_table(std::optional<std::uint64_t> addr, std::optional<std::uint64_t> size,
                  const char* name, bool textrel) {
    if (!addr && !size) return;
    if (!addr || !size) fail(std::string(name) + " and its size must come together");
    if (*size % sizeof(Elf64_Rela))
      fail(std::string(name) + " size " + std::to_string(*size) + " is not whole entries");
    const std::uint64_t off = file_backed(*addr, *size, name);
    for (std::uint64_t i = 0; i < *size / sizeof(Elf64_Rela); ++i) {
      const auto r = read<Elf64_Rela>(off + i * sizeof(Elf64_Rela), name);
      const std::string what = std::string(name) + " entry " + std::to_string(i);
      const auto type = ELF64_R_TYPE(r.r_info);
      const auto sym = ELF64_R_SYM(r.r_info);
      relocated_.insert(r.r_offset);
      if (sym >= nsyms_)
        fail(what + " names symbol " + std::to_string(sym) + ", the table has " +
             std::to_string(nsyms_));
#if defined(__x86_64__)
      if (type == R_X86_64_NONE) continue;
      // The loader writes the relocated word at r_offset.
      need_mapped(r.r_offset, 8, what + " target", textrel ? 0 : PF_W);
      // A pointer the loader calls at once (an IFUNC resolver) or at load (init/fini arrays).
      const bool called_now = type == R_X86_64_IRELATIVE;
      const bool in_array = std::any_of(arrays_.begin(), arrays_.end(), [&](const auto& a) {
        return r.r_offset >= a.first && r.r_offset - a.first < a.second;
      });
      if ((called_now || (in_array && type == R_X86_64_RELATIVE)) &&
          !mapped(static_cast<std::uint64_t>(r.r_addend), 1))
        fail(what + " points a function at " + hex(static_cast<std::uint64_t>(r.r_addend)) +
             ", outside the image");
      if (called_now || (in_array && type == R_X86_64_RELATIVE))
        need_mapped(static_cast<std::uint64_t>(r.r_addend), 1, what + " function", PF_X);
#else
      if (type == 0) continue;
      need_mapped(r.r_offset, 8, what + " target", textrel ? 0 : PF_W);
#endif
    }
  }

  std::span<const std::byte> elf_;
  std::string_view source_;
  Elf64_Ehdr eh_{};
  std::vector<segment> loads_;
  std::optional<Elf64_Phdr> dynamic_;
  std::map<std::uint64_t, std::uint64_t> dyn_;
  std::vector<std::uint64_t> strings_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> arrays_;
  std::set<std::uint64_t> relocated_;  ///< addresses some relocation writes
  std::uint64_t strsz_ = 0, strtab_off_ = 0, symtab_off_ = 0, nsyms_ = 0;
  unsigned max_version_ = 1;  // 0 local, 1 global need no record
};

}  // namespace

void check_kernel_elf(std::span<const std::byte> elf, std::string_view source) {
  elf_checker(elf, source).run();
}

}  // namespace fpyga::backend::emu
