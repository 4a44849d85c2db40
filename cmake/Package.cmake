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
