# PrecisInstall.cmake — install, export and package-config rules for precis.
#
# Layout of an installation (header-only, so everything is architecture independent):
#   include/precis/...                          the headers
#   share/cmake/precis/precisConfig.cmake        find_package(precis [COMPONENTS io cpu cuda])
#   share/cmake/precis/precisConfigVersion.cmake SameMajorVersion, ARCH_INDEPENDENT
#   share/cmake/precis/precisTargets.cmake       precis::precis
#   share/cmake/precis/precis<Comp>Targets.cmake precis::io, precis::text, precis::cpu, precis::cuda (one file each,
#                                                loaded only when the component's dependencies are found)
#   share/doc/precis/{LICENSE,README.md}
#
# The build tree gets the same config files (export(EXPORT ...)), so a consumer can point
# `precis_DIR` at a precis build directory without installing it.
if(NOT PRECIS_INSTALL)
  return()
endif()

set(PRECIS_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/precis"
    CACHE STRING "Where precis' CMake package files are installed (relative to the prefix)")
mark_as_advanced(PRECIS_INSTALL_CMAKEDIR)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(TARGETS precis EXPORT precisTargets)
install(EXPORT precisTargets NAMESPACE precis:: FILE precisTargets.cmake DESTINATION ${PRECIS_INSTALL_CMAKEDIR})
export(EXPORT precisTargets NAMESPACE precis:: FILE ${PROJECT_BINARY_DIR}/precisTargets.cmake)

# One export set per component: precis::cpu must not exist in a consumer that did not find
# oneTBB, or its dangling TBB::tbb reference would fail that consumer's generate step.
set(PRECIS_EXPORTED_COMPONENTS "")
foreach(_comp io text cpu cuda)
  if(TARGET precis_${_comp})
    string(SUBSTRING ${_comp} 0 1 _first)
    string(SUBSTRING ${_comp} 1 -1 _rest)
    string(TOUPPER ${_first} _first)
    set(_set precis${_first}${_rest}Targets)
    set(_targets precis_${_comp})
    if(_comp STREQUAL "cuda")
      list(APPEND _targets precis_cuda_kernels)  # the compiled kernels precis::cuda links
    endif()
    install(TARGETS ${_targets} EXPORT ${_set})
    install(EXPORT ${_set} NAMESPACE precis:: FILE ${_set}.cmake DESTINATION ${PRECIS_INSTALL_CMAKEDIR})
    export(EXPORT ${_set} NAMESPACE precis:: FILE ${PROJECT_BINARY_DIR}/${_set}.cmake)
    list(APPEND PRECIS_EXPORTED_COMPONENTS ${_comp})
  endif()
endforeach()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/precisConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/precisConfig.cmake
                              INSTALL_DESTINATION ${PRECIS_INSTALL_CMAKEDIR}
                              NO_SET_AND_CHECK_MACRO)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/precisConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION}
                                 COMPATIBILITY SameMajorVersion
                                 ARCH_INDEPENDENT)
configure_file(${PROJECT_SOURCE_DIR}/cmake/precisXsimdFix.cmake ${PROJECT_BINARY_DIR}/precisXsimdFix.cmake COPYONLY)

install(FILES ${PROJECT_BINARY_DIR}/precisConfig.cmake
              ${PROJECT_BINARY_DIR}/precisConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/precisXsimdFix.cmake
        DESTINATION ${PRECIS_INSTALL_CMAKEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
