/*
 * textstats.c: an example of a user's own C module for gdlua jobs:
 * counts the lines, words and bytes of a string, and its CRC-32, in one
 * pass each, and keeps per-process usage figures. A job requires it as
 * any Lua module:
 *
 *   local textstats = require "textstats"      -- gdlua --cpath DIR
 *   local st = textstats.count(workload)       -- { lines =, words =, bytes = }
 *   local crc = textstats.crc32(workload)      -- a number
 *   local u = textstats.usage()                -- { calls =, bytes = }
 *
 * usage() is what count() and crc32() have read in this process. gdlua
 * loads the module in the master, before fork, and a job module may use it
 * there (GDExamples/Stats.lua checks crc32 against a known value at load),
 * so every child would start with the master's figures: the module
 * registers a gdl_child_hook (gdlua_module.h, installed with gdlua as
 * <prefix>/include/gdlua/gdlua_module.h) that zeroes them in each child
 * after fork, before its first job. The hook and gdl_* symbols come from
 * the gdlua binary, as lua_* do: the module links no library.
 *
 * Built with gdlua's CMake helper (GdluaConfig.cmake: gdlua_add_module).
 */
#include <stdint.h>

#include <gdlua_module.h>
#include <lauxlib.h>
#include <lua.h>

/* What count() and crc32() have read in this process. */
static struct {
    lua_Number calls, bytes;
} usage_now;

/* Run by gdlua in each child after fork: its figures start at zero. */
static void usage_reset(void)
{
    usage_now.calls = 0;
    usage_now.bytes = 0;
}

static void usage_add(size_t len)
{
    usage_now.calls++;
    usage_now.bytes += (lua_Number)len;
}

static int usage(lua_State *L)
{
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, usage_now.calls);
    lua_setfield(L, -2, "calls");
    lua_pushnumber(L, usage_now.bytes);
    lua_setfield(L, -2, "bytes");
    return 1;
}

static int count(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_Number lines = 0, words = 0;
    int in_word = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';

        lines += c == '\n';
        words += !space && !in_word;
        in_word = !space;
    }
    usage_add(len);
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, lines);
    lua_setfield(L, -2, "lines");
    lua_pushnumber(L, words);
    lua_setfield(L, -2, "words");
    lua_pushnumber(L, (lua_Number)len);
    lua_setfield(L, -2, "bytes");
    return 1;
}

static int crc32(lua_State *L)
{
    size_t len;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    uint32_t crc = 0xffffffffu;

    for (size_t i = 0; i < len; i++) {
        crc ^= s[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
    usage_add(len);
    lua_pushnumber(L, (lua_Number)(crc ^ 0xffffffffu));
    return 1;
}

static const luaL_Reg textstats[] = {
    {"count", count},
    {"crc32", crc32},
    {"usage", usage},
    {NULL, NULL},
};

int luaopen_textstats(lua_State *L)
{
    gdl_child_hook(usage_reset);
    lua_newtable(L);
    luaL_register(L, NULL, textstats);
    return 1;
}
