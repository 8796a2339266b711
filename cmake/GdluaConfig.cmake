# GdluaConfig.cmake: the CMake package for C modules that gdlua jobs
# require. gdlua installs it to <prefix>/lib/cmake/Gdlua (beside
# GdluaConfigVersion.cmake), and the module header to
# <prefix>/include/gdlua/gdlua_module.h; a module's CMakeLists.txt says:
#
#   find_package(Gdlua 0.1 REQUIRED)    # -DGdlua_DIR=<prefix>/lib/cmake/Gdlua if not found
#   gdlua_add_module(mymod mymod.c)     # builds mymod.so, which exports luaopen_mymod
#
# and gdlua loads it from --cpath DIR with require "mymod". The module links
# no library: the lua_* symbols and gdlua_module.h's come from the gdlua
# binary that loads it; only the headers are needed (LuaJIT's: Debian
# libluajit2-5.1-dev).
find_package(PkgConfig REQUIRED)
pkg_check_modules(GDLUA_LUAJIT REQUIRED luajit)

# Inside gdlua's source tree this file is cmake/, beside runtime/ (the
# tree is checked first, so a tree below an installed prefix still uses its
# own header). Installed, gdlua's build has written the path from
# <libdir>/cmake/Gdlua to <includedir>/gdlua below (libdir may be
# lib/<multiarch>). Version requests (find_package(Gdlua 0.1)) need the
# installed package: the source tree has no GdluaConfigVersion.cmake.
set(_gdlua_include_from_here "@GDLUA_INCLUDE_FROM_CMAKE_DIR@")
if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/../runtime/gdlua_module.h")
  get_filename_component(GDLUA_INCLUDE_DIRS "${CMAKE_CURRENT_LIST_DIR}/../runtime" ABSOLUTE)
else()
  get_filename_component(GDLUA_INCLUDE_DIRS "${_gdlua_include_from_here}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_LIST_DIR}")
  if(NOT EXISTS "${GDLUA_INCLUDE_DIRS}/gdlua_module.h")
    message(FATAL_ERROR "Gdlua: no gdlua_module.h in ${GDLUA_INCLUDE_DIRS} (from ${CMAKE_CURRENT_LIST_FILE})")
  endif()
endif()
unset(_gdlua_include_from_here)

function(gdlua_add_module name)
  if(NOT ARGN)
    message(FATAL_ERROR "gdlua_add_module(${name}): no source files given")
  endif()
  add_library(${name} MODULE ${ARGN})
  target_include_directories(${name} PRIVATE ${GDLUA_INCLUDE_DIRS} ${GDLUA_LUAJIT_INCLUDE_DIRS})
  target_compile_options(${name} PRIVATE -Wall -Wextra)
  set_target_properties(${name} PROPERTIES PREFIX "" SUFFIX ".so")
endfunction()
