/*
 * textstats.c: an example of a user's own C module for gdlua jobs:
 * counts the lines, words and bytes of a string, and its CRC-32, in one
 * pass each. A job requires it as any Lua module:
 *
 *   local textstats = require "textstats"      -- gdlua --cpath DIR
 *   local st = textstats.count(workload)       -- { lines =, words =, bytes = }
 *   local crc = textstats.crc32(workload)      -- a number
 *
 * Built with gdlua's CMake helper (GdluaConfig.cmake: gdlua_add_module).
 */
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

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
    lua_pushnumber(L, (lua_Number)(crc ^ 0xffffffffu));
    return 1;
}

static const luaL_Reg textstats[] = {
    {"count", count},
    {"crc32", crc32},
    {NULL, NULL},
};

int luaopen_textstats(lua_State *L)
{
    lua_newtable(L);
    luaL_register(L, NULL, textstats);
    return 1;
}
