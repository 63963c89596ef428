# precisXsimdFix.cmake — included after find_package(xsimd), by precis' own build and by the
# installed precisConfig.cmake.
#
# Debian 12's libxsimd-dev 8.1 exports the target `xsimd` with INTERFACE_LINK_LIBRARIES "xtl" but
# ships no `xtl` target and no find_dependency for it, so everything that links `xsimd` gets
# `-lxtl` on its link line and fails with "cannot find -lxtl". xtl is header-only and optional
# for xsimd (complex-number support), so when no `xtl` target exists the dangling name is
# dropped. A project that does provide an `xtl` target keeps the link.
if(TARGET xsimd AND NOT TARGET xtl)
  get_target_property(_precis_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
  if(_precis_xsimd_links AND "xtl" IN_LIST _precis_xsimd_links)
    list(REMOVE_ITEM _precis_xsimd_links xtl)
    set_property(TARGET xsimd PROPERTY INTERFACE_LINK_LIBRARIES "${_precis_xsimd_links}")
  endif()
  unset(_precis_xsimd_links)
endif()
