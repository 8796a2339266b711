/*
 * gdl_lua.c: the master's Lua state and the job modules loaded into it.
 *
 * Creates the state (standard libraries, the embedded gdlua modules, the
 * C modules, --lib and --cpath), finds every *.lua below the script
 * directories, has lua/gdlua/init.lua load and validate each one, and
 * copies the resulting process types into gdl_jobs for the master.
 * Uses gdl_job.c for the C half of the API.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lualib.h>

#include "gdlua.h"

lua_State *gdl_L;
gdl_job_t *gdl_jobs;
int gdl_njobs;

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);

    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Every call from C into Lua goes through here: an error never unwinds
 * through libevent or libgearman frames, and its message carries a
 * traceback. On error the message is left on the stack. */
int gdl_lua_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs, rc;

    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return rc;
}

static int load_embedded(lua_State *L)
{
    const gdl_embedded_t *e = lua_touserdata(L, lua_upvalueindex(1));

    if (luaL_loadbuffer(L, e->source, e->len, e->chunkname) != 0)
        return lua_error(L);
    lua_pushstring(L, e->module);
    lua_call(L, 1, 1);
    return 1;
}

static void prepend_path(lua_State *L, const char *field, const char **dirs, int n, const char *pattern)
{
    lua_getfield(L, LUA_GLOBALSINDEX, "package");
    for (int i = n - 1; i >= 0; i--) {
        lua_getfield(L, -1, field);
        lua_pushfstring(L, "%s%s;%s", dirs[i], pattern, lua_tostring(L, -1));
        lua_setfield(L, -3, field);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

lua_State *gdl_lua_new(void)
{
    lua_State *L = luaL_newstate();

    if (L == NULL)
        return NULL;
    luaL_openlibs(L);
    lua_getfield(L, LUA_GLOBALSINDEX, "package");
    lua_getfield(L, -1, "preload");
    for (const gdl_embedded_t *e = gdl_embedded; e->module; e++) {
        lua_pushlightuserdata(L, (void *)e);
        lua_pushcclosure(L, load_embedded, 1);
        lua_setfield(L, -2, e->module);
    }
    lua_pushcfunction(L, gdl_inject_api);
    lua_setfield(L, -2, "gdlua.core");
    lua_pushcfunction(L, luaopen_gdlua_fib);
    lua_setfield(L, -2, "gdlua.fib");
    lua_pushcfunction(L, luaopen_gdlua_image);
    lua_setfield(L, -2, "gdlua.image");
    lua_pushcfunction(L, luaopen_gdlua_client);
    lua_setfield(L, -2, "gdlua.client");
    lua_pop(L, 2);
    prepend_path(L, "path", gdl_config.libs, gdl_config.nlibs, "/?.lua");
    prepend_path(L, "path", gdl_config.libs, gdl_config.nlibs, "/?/init.lua");
    prepend_path(L, "cpath", gdl_config.cpaths, gdl_config.ncpaths, "/?.so");
    return L;
}

typedef struct {
    char **v;
    int n, cap;
} strvec_t;

static void strvec_push(strvec_t *sv, char *s)
{
    if (sv->n == sv->cap) {
        sv->cap = sv->cap ? sv->cap * 2 : 16;
        sv->v = realloc(sv->v, sizeof(char *) * sv->cap);
        if (sv->v == NULL)
            abort();
    }
    sv->v[sv->n++] = s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects every *.lua below dir (hidden entries skipped). */
static int find_modules(const char *dir, strvec_t *out)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d == NULL) {
        gdl_error("cannot read script directory %s: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char *path;
        struct stat st;

        if (de->d_name[0] == '.')
            continue;
        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
            abort();
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            find_modules(path, out);
            free(path);
        } else if (len > 4 && strcmp(de->d_name + len - 4, ".lua") == 0 && S_ISREG(st.st_mode)) {
            strvec_push(out, path);
        } else {
            free(path);
        }
    }
    closedir(d);
    return 0;
}

/* "jobs/GDExamples/Fib.lua" below "jobs" -> "GDExamples::Fib". */
static char *module_name(const char *root, const char *path)
{
    const char *rel = path + strlen(root);
    char *name, *w;

    while (*rel == '/')
        rel++;
    name = malloc(strlen(rel) * 2 + 1);
    if (name == NULL)
        abort();
    for (w = name; *rel; rel++) {
        if (*rel == '/') {
            *w++ = ':';
            *w++ = ':';
        } else {
            *w++ = *rel;
        }
    }
    w[-4] = '\0'; /* drop ".lua" */
    return name;
}

static bool namespace_selected(const char *module)
{
    if (gdl_config.nnamespaces == 0)
        return true;
    for (int i = 0; i < gdl_config.nnamespaces; i++) {
        const char *ns = gdl_config.namespaces[i];
        size_t n = strlen(ns);
        if (strncmp(module, ns, n) == 0 && (module[n] == '\0' || strncmp(module + n, "::", 2) == 0))
            return true;
    }
    return false;
}

static char *table_string(lua_State *L, int idx, const char *key)
{
    char *s;

    lua_getfield(L, idx, key);
    s = strdup(luaL_optstring(L, -1, ""));
    lua_pop(L, 1);
    return s;
}

static int table_int(lua_State *L, int idx, const char *key)
{
    int v;

    lua_getfield(L, idx, key);
    v = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return v;
}

typedef struct {
    const char *name;
    int job;
} func_index_t;

static func_index_t *func_index;
static int nfunc_index;

static int cmp_func(const void *a, const void *b)
{
    return strcmp(((const func_index_t *)a)->name, ((const func_index_t *)b)->name);
}

static void index_functions(void)
{
    int n = 0;

    for (int k = 0; k < gdl_njobs; k++)
        n += gdl_jobs[k].nfunctions;
    func_index = calloc(n ? n : 1, sizeof(func_index_t));
    if (func_index == NULL)
        abort();
    for (int k = 0; k < gdl_njobs; k++)
        for (int f = 0; f < gdl_jobs[k].nfunctions; f++)
            func_index[nfunc_index++] = (func_index_t){gdl_jobs[k].functions[f], k};
    qsort(func_index, nfunc_index, sizeof(func_index_t), cmp_func);
}

/* The job serving a gearman function, or -1. */
int gdl_job_of_function(const char *name)
{
    func_index_t key = {name, 0}, *hit;

    hit = bsearch(&key, func_index, nfunc_index, sizeof(func_index_t), cmp_func);
    return hit ? hit->job : -1;
}

/* Copies gdlua._jobs (validated by init.lua) into gdl_jobs. */
static void read_jobs(lua_State *L)
{
    int n, t;

    lua_getfield(L, -1, "_jobs");
    t = lua_gettop(L);
    n = (int)lua_objlen(L, t);
    gdl_jobs = calloc(n ? n : 1, sizeof(gdl_job_t));
    if (gdl_jobs == NULL)
        abort();
    for (int i = 0; i < n; i++) {
        gdl_job_t *j = &gdl_jobs[i];

        lua_rawgeti(L, t, i + 1);
        j->name = table_string(L, -1, "name");
        j->title = table_string(L, -1, "title");
        j->min_processes = table_int(L, -1, "min_processes");
        j->max_processes = table_int(L, -1, "max_processes");
        lua_getfield(L, -1, "max_idle_time");
        j->max_idle_time = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : -1;
        lua_pop(L, 1);
        lua_getfield(L, -1, "functions");
        j->nfunctions = (int)lua_objlen(L, -1);
        j->functions = calloc(j->nfunctions, sizeof(char *));
        for (int k = 0; k < j->nfunctions; k++) {
            lua_rawgeti(L, -1, k + 1);
            j->functions[k] = strdup(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
    }
    gdl_njobs = n;
    lua_pop(L, 1);
    index_functions();
}

/* Loads every module below the script directories. Returns the number
 * of modules that failed; gdl_njobs says how many jobs loaded. */
int gdl_lua_load_jobs(void)
{
    lua_State *L = gdl_L;
    int failed = 0, loaded = 0;

    lua_getfield(L, LUA_GLOBALSINDEX, "require");
    lua_pushstring(L, "gdlua");
    if (gdl_lua_pcall(L, 1, 1) != 0) {
        gdl_error("cannot load the gdlua module: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 1;
    }
    for (int d = 0; d < gdl_config.ndirs; d++) {
        const char *root = gdl_config.dirs[d];
        strvec_t files = {0};

        if (find_modules(root, &files) < 0) {
            failed++;
            continue;
        }
        if (files.n)
            qsort(files.v, files.n, sizeof(char *), cmp_str);
        for (int i = 0; i < files.n; i++) {
            char *module = module_name(root, files.v[i]);

            if (namespace_selected(module)) {
                int top = lua_gettop(L);

                lua_getfield(L, -1, "_load");
                lua_pushstring(L, files.v[i]);
                lua_pushstring(L, module);
                if (gdl_lua_pcall(L, 2, 2) != 0) {
                    gdl_error("module %s not loaded: %s", module, lua_tostring(L, -1));
                    failed++;
                } else if (lua_isnil(L, -2)) {
                    gdl_error("module %s not loaded: %s", module, lua_tostring(L, -1));
                    failed++;
                } else if (lua_tointeger(L, -2) == 0) {
                    gdl_warn("module %s (%s) defines no job", module, files.v[i]);
                } else {
                    gdl_info("module %s: %d function(s) from %s", module, (int)lua_tointeger(L, -2), files.v[i]);
                    loaded++;
                }
                lua_settop(L, top);
            }
            free(module);
            free(files.v[i]);
        }
        free(files.v);
    }
    read_jobs(L);
    lua_pop(L, 1);
    return failed;
}

void gdl_lua_print_jobs(void)
{
    for (int i = 0; i < gdl_njobs; i++) {
        gdl_job_t *j = &gdl_jobs[i];

        printf("%s min=%d max=%d", j->name, j->min_processes, j->max_processes);
        if (j->max_idle_time >= 0)
            printf(" max_idle_time=%d", j->max_idle_time);
        printf(" functions=");
        for (int k = 0; k < j->nfunctions; k++)
            printf("%s%s", k ? "," : "", j->functions[k]);
        printf(" title=\"%s\"\n", j->title);
    }
}
