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

# Installed: <prefix>/lib/cmake/Gdlua -> <prefix>/include/gdlua. Inside
# gdlua's own source tree (cmake/): runtime/.
get_filename_component(_gdlua_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(EXISTS "${_gdlua_prefix}/include/gdlua/gdlua_module.h")
  set(GDLUA_INCLUDE_DIRS "${_gdlua_prefix}/include/gdlua")
else()
  set(GDLUA_INCLUDE_DIRS "${CMAKE_CURRENT_LIST_DIR}/../runtime")
endif()
unset(_gdlua_prefix)

function(gdlua_add_module name)
  if(NOT ARGN)
    message(FATAL_ERROR "gdlua_add_module(${name}): no source files given")
  endif()
  add_library(${name} MODULE ${ARGN})
  target_include_directories(${name} PRIVATE ${GDLUA_INCLUDE_DIRS} ${GDLUA_LUAJIT_INCLUDE_DIRS})
  target_compile_options(${name} PRIVATE -Wall -Wextra)
  set_target_properties(${name} PROPERTIES PREFIX "" SUFFIX ".so")
endfunction()
