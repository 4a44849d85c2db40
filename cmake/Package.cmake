# The installed CMake package: find_package(fpyga) / target_link_libraries(app fpyga::fpyga).
include(CMakePackageConfigHelpers)
set(FPYGA_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/fpyga)
install(EXPORT fpygaTargets NAMESPACE fpyga:: DESTINATION ${FPYGA_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/fpygaConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/fpygaConfig.cmake
                              INSTALL_DESTINATION ${FPYGA_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/fpygaConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/fpygaConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/fpygaConfigVersion.cmake
        DESTINATION ${FPYGA_CMAKE_DIR})

# fpyga.pc for pkg-config users (`pkg-config --cflags --libs fpyga`). Its prefix is taken relative
# to the .pc file itself, so the same file is right in an install prefix and inside a wheel.
if(IS_ABSOLUTE "${FPYGA_INSTALL_LIBDIR}")
  set(FPYGA_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(FPYGA_PC_LIBDIR "${FPYGA_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _fpyga_pc_up "/fpyga_prefix/${FPYGA_INSTALL_LIBDIR}/pkgconfig" "/fpyga_prefix")
  string(REGEX REPLACE "/$" "" _fpyga_pc_up "${_fpyga_pc_up}")
  set(FPYGA_PC_PREFIX "\${pcfiledir}/${_fpyga_pc_up}")
  set(FPYGA_PC_LIBDIR "\${prefix}/${FPYGA_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(FPYGA_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(FPYGA_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/fpyga.pc.in ${CMAKE_CURRENT_BINARY_DIR}/fpyga.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/fpyga.pc DESTINATION ${FPYGA_INSTALL_LIBDIR}/pkgconfig)
