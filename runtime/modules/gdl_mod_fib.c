/*
 * gdl_fib.c: the "gdlua.fib" C module: the seed's Fibonacci numbers
 * (fib(0) = fib(1) = 1), recursively as the seed's C++ worker computes
 * them, and iteratively.
 *
 * Results are Lua numbers: exact up to fib(77); gdlua prints integers
 * without an exponent, so a job can return them as they are.
 */
#include <lauxlib.h>

#include "gdlua.h"

#define FIB_MAX 1475 /* the largest n whose fib is a finite double */

static double fib_rec(int n)
{
    return n < 2 ? 1 : fib_rec(n - 2) + fib_rec(n - 1);
}

static int check_n(lua_State *L)
{
    lua_Number x = luaL_checknumber(L, 1);

    luaL_argcheck(L, x >= 0 && x <= FIB_MAX && x == (int)x, 1, "n must be a whole number from 0 to 1475");
    return (int)x;
}

/* fib.fib(n): the seed's exponential recursion, kept for comparison. */
static int l_fib(lua_State *L)
{
    lua_pushnumber(L, fib_rec(check_n(L)));
    return 1;
}

/* fib.iter(n): the same numbers in linear time. */
static int l_iter(lua_State *L)
{
    int n = check_n(L);
    double a = 1, b = 1;

    for (int i = 2; i <= n; i++) {
        double t = a + b;
        a = b;
        b = t;
    }
    lua_pushnumber(L, b);
    return 1;
}

static const luaL_Reg fib_api[] = {
    {"fib", l_fib},
    {"iter", l_iter},
    {NULL, NULL},
};

int luaopen_gdlua_fib(lua_State *L)
{
    lua_newtable(L);
    luaL_register(L, NULL, fib_api);
    return 1;
}
