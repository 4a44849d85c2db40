# The kernel toolchain: builds HLS C++ kernels into sw_emu xclbins, the way Vitis `v++ -t sw_emu`
# does, with no Vitis installed.
#
#   include(FpygaKernels)      # kernels/cmake is on CMAKE_MODULE_PATH once kernels/ is configured
#   include("${fpyga_DIR}/FpygaKernels.cmake")   # a downstream project, after find_package(fpyga)
#   fpyga_add_xclbin(NAME vadd_2cu
#                    SOURCES vadd/vadd.cpp
#                    KERNELS vadd
#                    CONNECTIVITY "nk=vadd:2" "sp=vadd_1.in1:bank0" "sp=vadd_2.in1:bank1")
#
# Each xclbin is built in three steps:
#  1. the sources are compiled with the host C++ compiler (-O3, PIC) into a shared object that
#     exports the kernels as `extern "C"` functions; `#pragma HLS` lines are ignored by the compiler,
#     exactly as in Vitis's own sw_emu. The object needs only libc and libstdc++.
#  2. python/fpyga/toolchain/kernel_meta.py parses the sources with libclang (same include paths) and derives
#     each kernel's arguments (names, C types as Vitis writes them, kinds, AXI-lite register
#     offsets as Vitis HLS assigns them) from the signature and its `#pragma HLS INTERFACE` lines,
#     applies the v++-style connectivity and writes the JSON description `fpyga xclbin pack` takes.
#  3. `fpyga xclbin pack --json <desc> --bitstream <so> -o <build>/kernels/<NAME>.xclbin`.
#
# The xclbin is installed to ${CMAKE_INSTALL_DATADIR}/fpyga/xclbin/<NAME>.xclbin.
#
# Xilinx's HLS headers (ap_int.h, ap_fixed.h, hls_stream.h, hls_math.h) are never part of this
# repository; they are looked up once, in this order:
#  - $XILINX_HLS/include (a Vitis HLS install);
#  - the copy the hls4ml package ships as package data (hls4ml/templates/vivado/ap_types), found in
#    the build's Python (Python_EXECUTABLE) without importing hls4ml;
#  - FPYGA_HLS_INCLUDE (CMake cache variable or environment variable).
# Results: FPYGA_HLS_INCLUDE_DIR, and FPYGA_NNET_UTILS_INCLUDE_DIR (hls4ml's nnet_utils templates,
# empty when hls4ml is not installed) for hls4ml-style kernels.

include_guard(GLOBAL)
include(GNUInstallDirs)

# kernel_meta.py: in fpyga's source tree (kernels/cmake) or, for a downstream project that found the
# installed package (this file is installed in <package>/lib/cmake/fpyga), in <package>/toolchain.
if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/../../python/fpyga/toolchain/kernel_meta.py")
  set(_fpyga_tools_dir "${CMAKE_CURRENT_LIST_DIR}/../../python/fpyga/toolchain")
  set(_fpyga_installed FALSE)
else()
  set(_fpyga_tools_dir "${CMAKE_CURRENT_LIST_DIR}/../../../toolchain")
  set(_fpyga_installed TRUE)
endif()
get_filename_component(FPYGA_KERNEL_TOOLS_DIR "${_fpyga_tools_dir}" ABSOLUTE)
set(FPYGA_KERNEL_TOOLS_DIR "${FPYGA_KERNEL_TOOLS_DIR}" CACHE INTERNAL "")

if(NOT Python_EXECUTABLE)
  find_package(Python COMPONENTS Interpreter REQUIRED)
endif()

# --- HLS headers --------------------------------------------------------------------------------
function(_fpyga_find_hls_headers)
  set(hls_dir "")
  set(how "")
  set(hls4ml_templates "")
  # hls4ml's package directory, located without importing it (importing pulls in its whole stack).
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
            "import importlib.util, os; s = importlib.util.find_spec('hls4ml'); print(os.path.dirname(s.origin) if s and s.origin else '')"
    OUTPUT_VARIABLE hls4ml_dir OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc ERROR_QUIET)
  if(rc EQUAL 0 AND hls4ml_dir AND EXISTS "${hls4ml_dir}/templates/vivado")
    set(hls4ml_templates "${hls4ml_dir}/templates/vivado")
  endif()

  if(DEFINED ENV{XILINX_HLS} AND EXISTS "$ENV{XILINX_HLS}/include/ap_int.h")
    set(hls_dir "$ENV{XILINX_HLS}/include")
    set(how "XILINX_HLS")
  elseif(hls4ml_templates AND EXISTS "${hls4ml_templates}/ap_types/ap_int.h")
    set(hls_dir "${hls4ml_templates}/ap_types")
    set(how "hls4ml package")
  else()
    set(user_dir "${FPYGA_HLS_INCLUDE}")
    if(NOT user_dir AND DEFINED ENV{FPYGA_HLS_INCLUDE})
      set(user_dir "$ENV{FPYGA_HLS_INCLUDE}")
    endif()
    if(user_dir AND EXISTS "${user_dir}/ap_int.h")
      set(hls_dir "${user_dir}")
      set(how "FPYGA_HLS_INCLUDE")
    elseif(user_dir)
      message(FATAL_ERROR "FPYGA_HLS_INCLUDE='${user_dir}' has no ap_int.h; it must name a directory "
                          "holding Xilinx's HLS headers (ap_int.h, ap_fixed.h, hls_stream.h).")
    endif()
  endif()

  if(NOT hls_dir)
    set(pin "")
    if(EXISTS "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../../requirements.txt")
      file(STRINGS "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../../requirements.txt" pin REGEX "^hls4ml==")
    endif()
    if(NOT pin)
      set(pin "hls4ml")
    endif()
    message(FATAL_ERROR
      "The kernel toolchain needs Xilinx's HLS headers (ap_int.h, ap_fixed.h, hls_stream.h) and found "
      "none. Either install the pinned hls4ml package, which ships them, into the build's Python:\n"
      "  ${Python_EXECUTABLE} -m pip install '${pin}'\n"
      "or set XILINX_HLS to a Vitis HLS install, or point FPYGA_HLS_INCLUDE (-DFPYGA_HLS_INCLUDE=... "
      "or the environment) at a directory holding them, or configure with -DFPYGA_BUILD_KERNELS=OFF.")
  endif()
  message(STATUS "fpyga kernels: HLS headers from ${how}: ${hls_dir}")
  set(FPYGA_HLS_INCLUDE_DIR "${hls_dir}" CACHE INTERNAL "Xilinx HLS headers used by kernels")

  set(nnet_dir "")
  if(hls4ml_templates AND EXISTS "${hls4ml_templates}/nnet_utils/nnet_dense.h")
    # Kernels include "nnet_utils/nnet_dense.h", as hls4ml's generated projects do.
    set(nnet_dir "${hls4ml_templates}")
    message(STATUS "fpyga kernels: hls4ml nnet_utils from ${nnet_dir}/nnet_utils")
  else()
    message(STATUS "fpyga kernels: hls4ml nnet_utils not found (hls4ml-style kernels are skipped)")
  endif()
  set(FPYGA_NNET_UTILS_INCLUDE_DIR "${nnet_dir}" CACHE INTERNAL "Directory holding hls4ml's nnet_utils/")
endfunction()

# Looked up at every configure (one Python start-up), so a newly set XILINX_HLS or a newly
# installed hls4ml is picked up without clearing the cache.
_fpyga_find_hls_headers()

# clang's own builtin headers (stddef.h, ...) for libclang: the PyPI libclang ships none. The
# Debian clang package's resource directory is preferred; the C++ compiler's is the fallback.
if(NOT DEFINED CACHE{FPYGA_KERNEL_META_SYSTEM_ARGS})
  set(meta_args "")
  find_program(FPYGA_CLANG_FOR_RESOURCE_DIR NAMES clang-14 clang)
  if(FPYGA_CLANG_FOR_RESOURCE_DIR)
    execute_process(COMMAND "${FPYGA_CLANG_FOR_RESOURCE_DIR}" -print-resource-dir
                    OUTPUT_VARIABLE res OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc ERROR_QUIET)
    if(rc EQUAL 0 AND EXISTS "${res}/include/stddef.h")
      set(meta_args "--resource-dir=${res}")
    endif()
  endif()
  if(NOT meta_args)
    execute_process(COMMAND "${CMAKE_CXX_COMPILER}" -print-file-name=include
                    OUTPUT_VARIABLE res OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc ERROR_QUIET)
    if(rc EQUAL 0 AND EXISTS "${res}/stddef.h")
      set(meta_args "--builtin-include=${res}")
    endif()
  endif()
  set(FPYGA_KERNEL_META_SYSTEM_ARGS "${meta_args}" CACHE INTERNAL "libclang builtin headers")
endif()

# Umbrella target: `cmake --build <dir> --target fpyga_kernels` builds every xclbin.
if(NOT TARGET fpyga_kernels)
  add_custom_target(fpyga_kernels ALL)
endif()

# The CLI that packs xclbins: fpyga's own target (cpp/tools) in its build, else the installed
# package's executable (<package>/bin/fpyga, two levels above lib/cmake/fpyga), as fpyga::cli.
if(_fpyga_installed AND NOT TARGET fpyga_cli AND NOT TARGET fpyga::cli
   AND EXISTS "${CMAKE_CURRENT_LIST_DIR}/../../../bin/fpyga")
  get_filename_component(_fpyga_cli "${CMAKE_CURRENT_LIST_DIR}/../../../bin/fpyga" ABSOLUTE)
  add_executable(fpyga::cli IMPORTED GLOBAL)
  set_target_properties(fpyga::cli PROPERTIES IMPORTED_LOCATION "${_fpyga_cli}")
endif()
if(TARGET fpyga::cli AND NOT TARGET fpyga_cli)
  set(FPYGA_PACK_TARGET "fpyga::cli" CACHE STRING "CMake target of the fpyga CLI used to pack xclbins")
else()
  set(FPYGA_PACK_TARGET "fpyga_cli" CACHE STRING "CMake target of the fpyga CLI used to pack xclbins")
endif()

# --- emu's stream glue -------------------------------------------------------------------------
# Kernels taking hls::stream arguments run on emu as concurrent compute units joined by bounded
# FIFOs (cpp/src/backends/emu/emu_stream.hpp). Their .so is built against Xilinx's own
# hls_stream.h with HLS_STREAM_THREAD_SAFE, each C++ source through a generated wrapper that
# includes it and registers its kernels' stream element types (emu_stream_glue.h), plus the glue
# itself, linked with --wrap for the calls hls::stream makes out of line. Only xclbins whose
# sources mention hls::stream are built so (decided at configure time).
set(FPYGA_EMU_STREAM_WRAPS
    "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE"  # condition_variable::wait
    "_ZNSt18condition_variable10notify_oneEv"                     # condition_variable::notify_one
    "pthread_mutex_unlock")

function(_fpyga_stream_glue out_sources target_name work_dir sources kernels)
  set(result "")
  set(i 0)
  foreach(src IN LISTS sources)
    if(src MATCHES "\\.(cpp|cc|cxx|C)$")
      get_filename_component(base "${src}" NAME_WE)
      set(text "// Generated by fpyga_add_xclbin(${target_name}): ${src} with emu's stream glue.\n")
      string(APPEND text "#include \"${src}\"\n#include \"emu_stream_glue.h\"\n")
      foreach(k IN LISTS kernels)
        string(APPEND text "FPYGA_EMU_STREAM_KERNEL(${k})\n")
      endforeach()
      set(wrapper "${work_dir}/emu_glue/${i}_${base}.cpp")
      file(CONFIGURE OUTPUT "${wrapper}" CONTENT "${text}" @ONLY)
      list(APPEND result "${wrapper}")
    else()
      list(APPEND result "${src}")
    endif()
    math(EXPR i "${i} + 1")
  endforeach()
  list(APPEND result "${FPYGA_KERNEL_TOOLS_DIR}/emu_stream_glue.cpp")
  set(${out_sources} "${result}" PARENT_SCOPE)
endfunction()

# --- fpyga_add_xclbin --------------------------------------------------------------------------
# fpyga_add_xclbin(NAME <name>
#                  SOURCES <file>...                HLS C++ sources (relative to the caller's dir)
#                  KERNELS <kernel>...              extern "C" top functions to expose
#                  [CONNECTIVITY <line>...]         v++ [connectivity] lines: "nk=vadd:2",
#                                                   "nk=vadd:2:cu_a.cu_b", "sp=vadd_1.in1:bank1"
#                  [CONFIG <file>]                  a v++ --config file; its [connectivity]
#                                                   section is applied before CONNECTIVITY
#                  [MEMORIES <tag:type:size>...]    default: bank0..bank3, ddr4, 16G each (AWS F1)
#                  [INCLUDES <dir>...]              extra include directories (generated headers)
#                  [DEFINES <NAME[=value]>...]
#                  [DEPENDS <file-or-target>...]    e.g. a target generating a header
#                  [PLATFORM <vbnv>]                default: the AWS F1 shell
#                  [NNET_UTILS]                     add hls4ml's nnet_utils include directory
#                  [NETWORK <file>]                 the network the kernels run (JSON, schema
#                                                   fpyga.network/1), packed as its USER_METADATA
#                  [NO_INSTALL])
# Creates target <name>_xclbin (part of ALL and of fpyga_kernels) producing
# ${CMAKE_BINARY_DIR}/kernels/<name>.xclbin, and the module target <name>_kernel (the sw_emu .so,
# ${CMAKE_BINARY_DIR}/kernels/<name>/<name>.so). Sets <name>_XCLBIN in the caller's scope to the
# xclbin path. Unless NO_INSTALL, installs it to ${CMAKE_INSTALL_DATADIR}/fpyga/xclbin/.
# Unspecified CUs are named <kernel>_1..N; global arguments without an sp= line go to the first
# memory. Memories referenced by connectivity are marked used.
function(fpyga_add_xclbin)
  cmake_parse_arguments(PARSE_ARGV 0 arg "NNET_UTILS;NO_INSTALL" "NAME;PLATFORM;CONFIG;NETWORK"
                        "SOURCES;KERNELS;CONNECTIVITY;MEMORIES;INCLUDES;DEFINES;DEPENDS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "fpyga_add_xclbin: unexpected arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_NAME)
    message(FATAL_ERROR "fpyga_add_xclbin: NAME is required")
  endif()
  if(NOT arg_NAME MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
    message(FATAL_ERROR "fpyga_add_xclbin(${arg_NAME}): NAME must be a C identifier")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "fpyga_add_xclbin(${arg_NAME}): SOURCES is required")
  endif()
  if(NOT arg_KERNELS)
    message(FATAL_ERROR "fpyga_add_xclbin(${arg_NAME}): KERNELS is required (the extern \"C\" top functions)")
  endif()
  set(can_pack TRUE)
  if(NOT TARGET ${FPYGA_PACK_TARGET})
    # Without the CLI the .so and the description are still built (and checked), but no xclbin.
    message(WARNING "fpyga_add_xclbin(${arg_NAME}): the fpyga CLI target '${FPYGA_PACK_TARGET}' is "
                    "not defined (FPYGA_BUILD_TOOLS=OFF?), so ${arg_NAME}.xclbin is not packed")
    set(can_pack FALSE)
  endif()

  set(name ${arg_NAME})
  set(out_dir "${CMAKE_BINARY_DIR}/kernels")
  set(work_dir "${out_dir}/${name}")
  set(xclbin "${out_dir}/${name}.xclbin")
  set(desc "${work_dir}/${name}.json")

  set(sources "")
  foreach(src IN LISTS arg_SOURCES)
    get_filename_component(src "${src}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND sources "${src}")
  endforeach()
  set(includes "")
  foreach(dir IN LISTS arg_INCLUDES)
    get_filename_component(dir "${dir}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND includes "${dir}")
  endforeach()
  # After the HLS headers: fpyga's own ap_axi_sdata.h for HLS headers that ship none (hls4ml's).
  set(system_includes "${FPYGA_HLS_INCLUDE_DIR}" "${FPYGA_KERNEL_TOOLS_DIR}/include")
  if(arg_NNET_UTILS)
    if(NOT FPYGA_NNET_UTILS_INCLUDE_DIR)
      message(FATAL_ERROR "fpyga_add_xclbin(${name}): NNET_UTILS needs hls4ml's nnet_utils templates; "
                          "install the pinned hls4ml into ${Python_EXECUTABLE}")
    endif()
    list(APPEND system_includes "${FPYGA_NNET_UTILS_INCLUDE_DIR}")
  endif()

  # 1. The sw_emu shared object. A MODULE library: dlopen-ed, never linked against.
  set(so_target ${name}_kernel)
  set(so_sources "${sources}")
  set(stream_glue FALSE)
  foreach(src IN LISTS sources)
    file(STRINGS "${src}" uses_streams REGEX "hls::stream")
    if(uses_streams)
      set(stream_glue TRUE)
    endif()
  endforeach()
  if(stream_glue)
    _fpyga_stream_glue(so_sources ${name} "${work_dir}" "${sources}" "${arg_KERNELS}")
  endif()
  add_library(${so_target} MODULE ${so_sources})
  set_target_properties(${so_target} PROPERTIES
    PREFIX "" OUTPUT_NAME "${name}" SUFFIX ".so"
    LIBRARY_OUTPUT_DIRECTORY "${work_dir}"
    # Xilinx's headers and hls4ml's templates are written for C++14; Vitis compiles them so too.
    CXX_STANDARD 14 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF
    POSITION_INDEPENDENT_CODE ON
    # The kernel .so is built like Vitis's sw_emu one whatever the host build uses: no sanitizer
    # runtime (FPYGA_SANITIZE adds it directory-wide), so it loads into any host process...
    COMPILE_OPTIONS "-O3" LINK_OPTIONS "-Wl,--no-undefined")
  if(FPYGA_SANITIZE_KERNELS AND FPYGA_SANITIZE_FLAGS)
    # ...unless the sanitizer build asks for instrumented kernels (cmake/Sanitize.cmake), so that
    # a kernel's accesses to its buffers are checked too. Its runtime must be in the host.
    set(san_link ${FPYGA_SANITIZE_FLAGS})
    list(FILTER san_link INCLUDE REGEX "^-fsanitize=")
    set(san_compile "")
    # Except UBSan's shift-base check: Xilinx's ap_private.h (the ap_int/ap_fixed headers, not
    # ours to change) sign-extends by shifting negative values left, undefined before C++20
    # (kernels are C++14) and two's complement on every compiler. Every ap_fixed constructor
    # reports it, so no kernel using those headers could run with the check on.
    if(FPYGA_SANITIZE_FLAGS MATCHES "undefined")
      list(APPEND san_compile -fno-sanitize=shift-base)
    endif()
    set_property(TARGET ${so_target} APPEND PROPERTY COMPILE_OPTIONS ${FPYGA_SANITIZE_FLAGS} ${san_compile})
    set_property(TARGET ${so_target} APPEND PROPERTY LINK_OPTIONS ${san_link})
  endif()
  target_include_directories(${so_target} PRIVATE ${includes})
  if(stream_glue)
    target_compile_definitions(${so_target} PRIVATE HLS_STREAM_THREAD_SAFE)
    target_include_directories(${so_target} PRIVATE "${FPYGA_KERNEL_TOOLS_DIR}")
    foreach(sym IN LISTS FPYGA_EMU_STREAM_WRAPS)
      target_link_options(${so_target} PRIVATE "-Wl,--wrap=${sym}")
    endforeach()
  endif()
  target_include_directories(${so_target} SYSTEM PRIVATE ${system_includes})
  target_compile_definitions(${so_target} PRIVATE ${arg_DEFINES})
  set(file_depends "")
  foreach(dep IN LISTS arg_DEPENDS)
    if(TARGET ${dep})
      add_dependencies(${so_target} ${dep})
    else()
      get_filename_component(dep "${dep}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
      list(APPEND file_depends "${dep}")
    endif()
  endforeach()
  if(file_depends)
    # Generated headers: compiled sources wait for them.
    set_property(SOURCE ${sources} TARGET_DIRECTORY ${so_target} APPEND PROPERTY OBJECT_DEPENDS ${file_depends})
  endif()

  # 2. The JSON description, from the sources' signatures and pragmas.
  set(meta_cmd "${Python_EXECUTABLE}" "${FPYGA_KERNEL_TOOLS_DIR}/kernel_meta.py"
      --output "${desc}" --depfile "${desc}.d" --std=c++14 ${FPYGA_KERNEL_META_SYSTEM_ARGS})
  foreach(k IN LISTS arg_KERNELS)
    list(APPEND meta_cmd --kernel "${k}")
  endforeach()
  set(config_depends "")
  if(arg_CONFIG)
    get_filename_component(cfg "${arg_CONFIG}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND meta_cmd --config "${cfg}")
    list(APPEND config_depends "${cfg}")
  endif()
  foreach(line IN LISTS arg_CONNECTIVITY)
    list(APPEND meta_cmd --connectivity "${line}")
  endforeach()
  foreach(mem IN LISTS arg_MEMORIES)
    list(APPEND meta_cmd --memory "${mem}")
  endforeach()
  foreach(dir IN LISTS includes system_includes)
    list(APPEND meta_cmd -I "${dir}")
  endforeach()
  foreach(def IN LISTS arg_DEFINES)
    list(APPEND meta_cmd -D "${def}")
  endforeach()
  if(arg_PLATFORM)
    list(APPEND meta_cmd --platform "${arg_PLATFORM}")
  endif()
  if(arg_NETWORK)
    get_filename_component(network "${arg_NETWORK}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND meta_cmd --network "${network}")
    list(APPEND config_depends "${network}")
  endif()
  add_custom_command(
    OUTPUT "${desc}"
    COMMAND ${meta_cmd} ${sources}
    DEPENDS ${sources} "${FPYGA_KERNEL_TOOLS_DIR}/kernel_meta.py" ${file_depends} ${config_depends}
    DEPFILE "${desc}.d"
    COMMENT "Extracting kernel metadata for ${name}.xclbin"
    VERBATIM)

  # 3. Pack.
  if(NOT can_pack)
    add_custom_target(${name}_xclbin ALL DEPENDS "${desc}" ${so_target})
    add_dependencies(fpyga_kernels ${name}_xclbin)
    return()
  endif()
  add_custom_command(
    OUTPUT "${xclbin}"
    COMMAND $<TARGET_FILE:${FPYGA_PACK_TARGET}> xclbin pack --json "${desc}"
            --bitstream $<TARGET_FILE:${so_target}> -o "${xclbin}"
    DEPENDS "${desc}" ${so_target} ${FPYGA_PACK_TARGET}
    COMMENT "Packing ${name}.xclbin"
    VERBATIM)
  add_custom_target(${name}_xclbin ALL DEPENDS "${xclbin}")
  if(arg_DEPENDS)
    foreach(dep IN LISTS arg_DEPENDS)
      if(TARGET ${dep})
        add_dependencies(${name}_xclbin ${dep})
      endif()
    endforeach()
  endif()
  add_dependencies(fpyga_kernels ${name}_xclbin)

  if(NOT arg_NO_INSTALL)
    install(FILES "${xclbin}" DESTINATION "${CMAKE_INSTALL_DATADIR}/fpyga/xclbin")
  endif()
  set(${name}_XCLBIN "${xclbin}" PARENT_SCOPE)
endfunction()
