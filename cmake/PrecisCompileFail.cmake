# cmake/PrecisCompileFail.cmake — must-not-compile tests driven by CTest (style-anchors §5.2–5.5).
#
#   precis_add_compile_fail(<name> <source> [FLAGS <compile options>...] [LIBS <targets>...])
#
# The source holds one illegal line under `#ifdef PRECIS_SHOULD_FAIL` and its legal twin (the
# explicit cast or named conversion) in the `#else`, plus a comment
#
#   // expect-error: <regex>
#
# naming the diagnostic the illegal line must produce — normally the concept whose failure *is*
# the reason, in a form both g++ and clang++ print (see docs/dtype-safety.md §6).
#
# The source is built twice, as EXCLUDE_FROM_ALL object libraries (compile only, no link):
#   <name>.ok   must build: proves the file is otherwise valid, so the ko build cannot fail for
#               an unrelated reason (a typo, a missing include);
#   <name>.ko   built with -DPRECIS_SHOULD_FAIL; the test passes only if the build output matches
#               the regex (PASS_REGULAR_EXPRESSION), i.e. it failed *for the intended reason*.
# Both run `cmake --build <build dir> --target <name>.<kind>`, share RESOURCE_LOCK
# precis_compile_fail (concurrent builds of one tree race, and a race would make a ko "fail"
# vacuously — Eigen's failtest note) and carry the label `compile_fail`. LC_ALL=C keeps the
# compilers' quotes ASCII, so regexes can write '...'.
#
# Compile options: PRECIS_WARNINGS (the tests' -Werror set) when defined, then FLAGS.
# LIBS: targets the sources need beyond precis::precis (precis::cpu for a backend's header).

function(precis_add_compile_fail name src)
  cmake_parse_arguments(ARG "" "" "FLAGS;LIBS" ${ARGN})
  get_filename_component(_src "${src}" ABSOLUTE)
  file(READ "${_src}" _text)
  string(REGEX MATCH "// expect-error: ([^\n]+)" _match "${_text}")
  if(NOT _match)
    message(FATAL_ERROR "precis_add_compile_fail(${name}): ${_src} has no '// expect-error: <regex>' line")
  endif()
  string(STRIP "${CMAKE_MATCH_1}" _regex)
  if(NOT _text MATCHES "#ifdef PRECIS_SHOULD_FAIL")
    message(FATAL_ERROR "precis_add_compile_fail(${name}): ${_src} has no '#ifdef PRECIS_SHOULD_FAIL' block")
  endif()
  # Re-read the regex when the source changes.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_src}")

  foreach(_kind ok ko)
    set(_target ${name}.${_kind})
    add_library(${_target} OBJECT EXCLUDE_FROM_ALL "${_src}")
    set_target_properties(${_target} PROPERTIES EXCLUDE_FROM_DEFAULT_BUILD TRUE)
    target_link_libraries(${_target} PRIVATE precis::precis ${ARG_LIBS})
    target_compile_options(${_target} PRIVATE ${PRECIS_WARNINGS} ${ARG_FLAGS})
    add_test(NAME compile_fail.${name}.${_kind}
             COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target ${_target} --config $<CONFIG>)
    set_tests_properties(compile_fail.${name}.${_kind} PROPERTIES
      RESOURCE_LOCK precis_compile_fail
      LABELS compile_fail
      ENVIRONMENT "LC_ALL=C")
  endforeach()
  target_compile_definitions(${name}.ko PRIVATE PRECIS_SHOULD_FAIL)
  set_tests_properties(compile_fail.${name}.ko PROPERTIES PASS_REGULAR_EXPRESSION "${_regex}")
endfunction()
