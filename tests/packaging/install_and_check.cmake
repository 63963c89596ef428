# install_and_check.cmake —
#   cmake -DBUILD_DIR=... -DPREFIX=... [-DCONFIG=...] [-DCOMPONENTS=io,cpu] -P install_and_check.cmake
#
# Installs the precis build tree BUILD_DIR into an empty PREFIX and checks that the package files
# and the headers are where precisConfig.cmake and consumers expect them.
foreach(_var BUILD_DIR PREFIX)
  if(NOT ${_var})
    message(FATAL_ERROR "install_and_check.cmake: -D${_var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${PREFIX})
set(_config_args "")
if(CONFIG)
  set(_config_args --config ${CONFIG})
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX} ${_config_args}
                RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "cmake --install ${BUILD_DIR} failed (${_rc})")
endif()

set(_expected
    include/precis/precis.hpp
    include/precis/core/tensor.hpp
    include/precis/numeric/bfloat16.hpp
    share/cmake/precis/precisConfig.cmake
    share/cmake/precis/precisConfigVersion.cmake
    share/cmake/precis/precisTargets.cmake
    share/cmake/precis/precisXsimdFix.cmake
    share/doc/precis/LICENSE
    share/doc/precis/README.md)
# Each component the build has must come with its own targets file (COMPONENTS is ','-separated
# because a ';' list does not survive add_test's command line).
string(REPLACE "," ";" _components "${COMPONENTS}")
foreach(_comp IN LISTS _components)
  string(SUBSTRING ${_comp} 0 1 _first)
  string(SUBSTRING ${_comp} 1 -1 _rest)
  string(TOUPPER ${_first} _first)
  list(APPEND _expected share/cmake/precis/precis${_first}${_rest}Targets.cmake)
endforeach()
set(_missing "")
foreach(_f IN LISTS _expected)
  if(NOT EXISTS ${PREFIX}/${_f})
    list(APPEND _missing ${_f})
  endif()
endforeach()
if(_missing)
  message(FATAL_ERROR "installed tree ${PREFIX} lacks: ${_missing}")
endif()

# Nothing of the build tree may leak into the installed package files.
file(GLOB _cmake_files ${PREFIX}/share/cmake/precis/*.cmake)
foreach(_f IN LISTS _cmake_files)
  file(READ ${_f} _text)
  string(FIND "${_text}" "${BUILD_DIR}" _at)
  if(NOT _at EQUAL -1)
    message(FATAL_ERROR "${_f} refers to the build tree ${BUILD_DIR}")
  endif()
endforeach()
message(STATUS "precis installed into ${PREFIX}: ${_expected}")
