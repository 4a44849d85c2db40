# fpyga serve (cpp/serve): gRPC and protobuf from Debian (libgrpc++-dev, libprotobuf-dev,
# protobuf-compiler-grpc) and cpp-httplib (libcpp-httplib-dev). FPYGA_WITH_SERVE defaults to ON
# when all of them are found; asked for ON explicitly, a missing one is an error.
set(_fpyga_serve_default OFF)
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(FPYGA_GRPCPP QUIET IMPORTED_TARGET grpc++)
  pkg_check_modules(FPYGA_PROTOBUF QUIET IMPORTED_TARGET protobuf)
  pkg_check_modules(FPYGA_HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
endif()
find_program(FPYGA_PROTOC protoc)
find_program(FPYGA_GRPC_CPP_PLUGIN grpc_cpp_plugin)
if(FPYGA_GRPCPP_FOUND AND FPYGA_PROTOBUF_FOUND AND FPYGA_HTTPLIB_FOUND AND FPYGA_PROTOC
   AND FPYGA_GRPC_CPP_PLUGIN)
  set(_fpyga_serve_default ON)
endif()
option(FPYGA_WITH_SERVE "Build fpyga serve (KServe v2 / Triton protocol server)"
       ${_fpyga_serve_default})
if(FPYGA_WITH_SERVE AND NOT _fpyga_serve_default)
  message(FATAL_ERROR "FPYGA_WITH_SERVE needs grpc++, protobuf and cpp-httplib (pkg-config) and "
                      "protoc with grpc_cpp_plugin: apt-get install libgrpc++-dev libprotobuf-dev "
                      "protobuf-compiler-grpc libcpp-httplib-dev")
endif()
