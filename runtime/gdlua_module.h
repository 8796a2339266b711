/*
 * gdlua_module.h: what a C module for gdlua jobs may use beside the Lua
 * C API. Installed with gdlua (<prefix>/include/gdlua/gdlua_module.h);
 * the symbols are exported by the gdlua binary that loads the module,
 * so a module links no library of gdlua's (nor LuaJIT).
 *
 * A module is loaded in the master, before fork, and then runs in every
 * child. Work that must not cross a fork (threads, connections, caches
 * of a library that starts threads) is refused while gdl_is_master is
 * true, or set up per child in a gdl_child_hook.
 */
#ifndef GDLUA_MODULE_H
#define GDLUA_MODULE_H

#include <stdbool.h>

/* Raised whenever a declaration below changes incompatibly. */
#define GDLUA_MODULE_ABI 1

/* True in the master while it loads modules and supervises; false in a
 * worker process and in "gdlua run" scripts. */
extern bool gdl_is_master;

/* Registers fn to run in every child right after fork, before its first
 * job (per-process set-up, e.g. allocator limits). At most 16 functions;
 * registering the same one twice registers it once. */
void gdl_child_hook(void (*fn)(void));

/* A line in gdlua's log, at one of these levels. */
enum { GDL_LOG_ERROR, GDL_LOG_WARN, GDL_LOG_INFO, GDL_LOG_DEBUG };
void gdl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
