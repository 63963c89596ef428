# cmake/PrecisModelRegistry.cmake — precis_link_model_registry(<target> [NATIVE] [OPT1]): links a
# program of precis' own build that calls models::load_model to a static library holding the
# model registry (src/model_registry.cpp, see include/precis/runtime/load_model.hpp), so that the
# registry — every model × policy × weight format — is compiled once per flag set instead of once
# per program. The library is built with the flags the program says it has:
#   NATIVE  -march=native (the tools, test_generate_model); without it, the toolchain's default ISA
#   OPT1    -O1 after the build type's flags (the model unit tests, precis_model_test)
# The flags must match: the CPU kernels are header-only and pick their bodies from the
# translation unit's ISA, so a native program with a portable registry would break the ODR.
# Sanitizer builds (PRECIS_SANITIZE) compile the library with the sanitizers, like the tests.
# A program that only includes load_model.hpp (no call) needs none of this.
function(precis_link_model_registry target)
  cmake_parse_arguments(ARG "NATIVE;OPT1" "" "" ${ARGN})
  set(lib precis_model_registry)
  if(ARG_NATIVE)
    string(APPEND lib _native)
  else()
    string(APPEND lib _portable)
  endif()
  if(ARG_OPT1)
    string(APPEND lib _o1)
  endif()
  if(NOT TARGET ${lib})
    add_library(${lib} STATIC ${PROJECT_SOURCE_DIR}/src/model_registry.cpp)
    target_link_libraries(${lib} PUBLIC precis::precis precis::io precis::cpu)
    target_compile_definitions(${lib} PUBLIC PRECIS_MODELS_COMPILED_SEPARATELY)
    if(TARGET precis_cuda)  # every model also on backends::Cuda (runtime/load_model.hpp)
      target_link_libraries(${lib} PUBLIC precis::cuda)
      target_compile_definitions(${lib} PUBLIC PRECIS_WITH_CUDA)
    endif()
    target_compile_options(${lib} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion -Werror)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      target_compile_options(${lib} PRIVATE -Wno-restrict)  # GCC bug 105329, see tests/CMakeLists.txt
    endif()
    if(ARG_NATIVE)
      target_compile_options(${lib} PRIVATE -march=native)
      if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
        target_compile_options(${lib} PRIVATE -Wno-maybe-uninitialized -Wno-uninitialized)  # GCC bug 105593
      endif()
    endif()
    if(ARG_OPT1)
      target_compile_options(${lib} PRIVATE -O1)
    endif()
    # ASan + UBSan flags in PRECIS_SANITIZE builds (tests/CMakeLists.txt), nothing otherwise.
    target_link_libraries(${lib} PRIVATE $<TARGET_NAME_IF_EXISTS:precis_sanitizers>)
  endif()
  target_link_libraries(${target} PRIVATE ${lib})
endfunction()
