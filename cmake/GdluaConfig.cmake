# GdluaConfig.cmake: the CMake helper for C modules that gdlua jobs require.
# gdlua installs it to <prefix>/lib/cmake/Gdlua, so a module's CMakeLists.txt
# says:
#
#   find_package(Gdlua REQUIRED)        # -DGdlua_DIR=<prefix>/lib/cmake/Gdlua if not found
#   gdlua_add_module(mymod mymod.c)     # builds mymod.so, which exports luaopen_mymod
#
# and gdlua loads it from --cpath DIR with require "mymod". The module links
# no Lua library: the lua_* symbols come from the gdlua binary that loads it;
# only LuaJIT's headers are needed (Debian: libluajit2-5.1-dev).
find_package(PkgConfig REQUIRED)
pkg_check_modules(GDLUA_LUAJIT REQUIRED luajit)

function(gdlua_add_module name)
  if(NOT ARGN)
    message(FATAL_ERROR "gdlua_add_module(${name}): no source files given")
  endif()
  add_library(${name} MODULE ${ARGN})
  target_include_directories(${name} PRIVATE ${GDLUA_LUAJIT_INCLUDE_DIRS})
  target_compile_options(${name} PRIVATE -Wall -Wextra)
  set_target_properties(${name} PROPERTIES PREFIX "" SUFFIX ".so")
endfunction()
