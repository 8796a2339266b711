/*
 * gdl_lua.c: a loader's Lua state and the job modules loaded into it.
 *
 * Creates the state (standard libraries, the embedded gdlua modules, the
 * C modules, --lib and --cpath), finds every *.lua below the script
 * directories, has lua/gdlua/init.lua load and validate each one, and
 * copies the resulting process types into gdl_pools for the master.
 * The same search, as a list, is gdlua.core.find_modules for
 * gdlua.testing (lua/gdlua/testing.lua), which loads tests' modules.
 * Uses gdl_job.c for the C half of the API.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lualib.h>

#include "gdlua.h"

lua_State *gdl_L;
gdl_pool_t *gdl_pools;
int gdl_npools;
int gdl_self_pool = -1;

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
    static int traceback_ref = LUA_NOREF; /* one function, not a new one a call */
    int base = lua_gettop(L) - nargs, rc;

    lua_rawgeti(L, LUA_REGISTRYINDEX, traceback_ref);
    if (lua_tocfunction(L, -1) != traceback) { /* first call, or another state */
        lua_pop(L, 1);
        lua_pushcfunction(L, traceback);
        lua_pushvalue(L, -1);
        traceback_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_insert(L, base);
    rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return rc;
}

/* require(module) under gdl_lua_pcall: 0 with the module on the stack,
 * or the error message. */
int gdl_lua_require(lua_State *L, const char *module)
{
    lua_getfield(L, LUA_GLOBALSINDEX, "require");
    lua_pushstring(L, module);
    return gdl_lua_pcall(L, 1, 1);
}

/* The C modules built into gdlua, preloaded into every state. */
static const luaL_Reg builtin_modules[] = {
    {"gdlua.core", luaopen_gdlua_core},
    {"gdlua.fib", luaopen_gdlua_fib},
    {"gdlua.image", luaopen_gdlua_image},
    {"gdlua.client", luaopen_gdlua_client},
    {"gdlua.http", luaopen_gdlua_http},
    {"gdlua.tcp", luaopen_gdlua_tcp},
    {NULL, NULL},
};

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
    for (const luaL_Reg *m = builtin_modules; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 2);
    prepend_path(L, "path", gdl_config.libs, gdl_config.nlibs, "/?.lua");
    prepend_path(L, "path", gdl_config.libs, gdl_config.nlibs, "/?/init.lua");
    prepend_path(L, "cpath", gdl_config.cpaths, gdl_config.ncpaths, "/?.so");
    return L;
}

/* The loader runs before anything is served: out of memory there ends
 * gdlua, with a message. */
static void out_of_memory(const char *doing)
{
    gdl_error("out of memory while %s", doing);
    abort();
}

/* The first error of the load under way, for the console's `reload`. */
static char first_error[512];

static void load_failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Logs a load error; the first is kept. */
static void load_failed(const char *fmt, ...)
{
    char msg[sizeof(first_error)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gdl_error("%s", msg);
    if (first_error[0] == '\0')
        memcpy(first_error, msg, sizeof(first_error));
}

typedef struct {
    char **v;
    int n, cap;
} strvec_t;

static void strvec_push(strvec_t *sv, char *s)
{
    if (sv->n == sv->cap) {
        int cap = sv->cap ? sv->cap * 2 : 16;
        char **v = realloc(sv->v, sizeof(char *) * cap);

        if (v == NULL)
            out_of_memory("listing the script directories");
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->n++] = s;
}

static void strvec_free(strvec_t *sv)
{
    for (int i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    *sv = (strvec_t){0};
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *copy_string(const char *str, const char *doing)
{
    char *copy = strdup(str);

    if (copy == NULL)
        out_of_memory(doing);
    return copy;
}

/* What the search below the script directories has found: the module
 * files, the directories and files seen (by device and inode, with the
 * path each was first found by), and the symlinks still to follow. */
typedef struct {
    dev_t dev;
    ino_t ino;
    char *path;
} seen_t;

typedef struct {
    strvec_t files;
    strvec_t links;
    seen_t *seen;
    int nseen, capseen;
} search_t;

/* The path the directory or file st was first found by; NULL the first
 * time, and then it is recorded as found by path. */
static const char *seen_before(search_t *s, const struct stat *st, const char *path)
{
    for (int i = 0; i < s->nseen; i++)
        if (s->seen[i].dev == st->st_dev && s->seen[i].ino == st->st_ino)
            return s->seen[i].path;
    if (s->nseen == s->capseen) {
        int cap = s->capseen ? s->capseen * 2 : 16;
        seen_t *v = realloc(s->seen, sizeof(seen_t) * cap);

        if (v == NULL)
            out_of_memory("listing the script directories");
        s->seen = v;
        s->capseen = cap;
    }
    s->seen[s->nseen++] = (seen_t){st->st_dev, st->st_ino, copy_string(path, "listing the script directories")};
    return NULL;
}

static void search_free(search_t *s)
{
    strvec_free(&s->files);
    strvec_free(&s->links);
    for (int i = 0; i < s->nseen; i++)
        free(s->seen[i].path);
    free(s->seen);
    *s = (search_t){0};
}

static int search_dir(search_t *s, const char *dir);

/* path, a directory or a file (st: what it is, links followed): a
 * directory is searched, a *.lua file is a module; either only the first
 * time it is found. Returns the number of paths that could not be read. */
static int search_path(search_t *s, const char *path, const struct stat *st)
{
    size_t len = strlen(path);
    const char *first;

    if (S_ISDIR(st->st_mode)) {
        if ((first = seen_before(s, st, path)) != NULL) {
            gdl_warn("skipping %s: the same directory as %s (a symlink loop or a second link)", path, first);
            return 0;
        }
        return search_dir(s, path);
    }
    if (!S_ISREG(st->st_mode) || len <= 4 || strcmp(path + len - 4, ".lua") != 0)
        return 0;
    if ((first = seen_before(s, st, path)) != NULL) {
        gdl_warn("skipping %s: the same file as %s", path, first);
        return 0;
    }
    strvec_push(&s->files, copy_string(path, "listing the script directories"));
    return 0;
}

/* Searches the entries of dir (hidden ones skipped) in name order; its
 * symlinks are put off until the real tree is searched, so a directory
 * or file found both ways takes the name of its real path. */
static int search_dir(search_t *s, const char *dir)
{
    strvec_t names = {0};
    DIR *d = opendir(dir);
    struct dirent *de;
    int errors = 0;

    if (d == NULL) {
        load_failed("cannot read script directory %s: %s", dir, strerror(errno));
        return 1;
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        char *path;

        if (de->d_name[0] == '.')
            continue;
        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
            out_of_memory("listing the script directories");
        strvec_push(&names, path);
    }
    if (errno != 0) {
        load_failed("cannot read script directory %s: %s", dir, strerror(errno));
        errors++;
    }
    closedir(d);
    if (names.n)
        qsort(names.v, names.n, sizeof(char *), cmp_str);
    for (int i = 0; i < names.n; i++) {
        struct stat st;

        if (lstat(names.v[i], &st) < 0) {
            load_failed("cannot read %s: %s", names.v[i], strerror(errno));
            errors++;
        } else if (S_ISLNK(st.st_mode)) {
            strvec_push(&s->links, names.v[i]);
            names.v[i] = NULL;
        } else {
            errors += search_path(s, names.v[i], &st);
        }
    }
    strvec_free(&names);
    return errors;
}

/* Collects every *.lua below root into s->files, each directory and file
 * once; symlinks are followed, loops and second links skipped. Returns
 * the number of paths that could not be read (a dangling symlink, an
 * unreadable directory), each logged with its path and cause. */
static int find_modules(search_t *s, const char *root)
{
    struct stat st;
    int errors;

    if (stat(root, &st) < 0) {
        load_failed("cannot read script directory %s: %s", root, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        load_failed("cannot read script directory %s: %s", root, strerror(ENOTDIR));
        return 1;
    }
    errors = search_path(s, root, &st);
    /* Links found while following links are appended: followed in turn. */
    for (int i = 0; i < s->links.n; i++) {
        const char *link = s->links.v[i];

        if (stat(link, &st) < 0) {
            int err = errno;

            load_failed("cannot read %s: %s%s", link, strerror(err), err == ENOENT ? " (a dangling symlink?)" : "");
            errors++;
        } else {
            errors += search_path(s, link, &st);
        }
    }
    strvec_free(&s->links);
    return errors;
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
        out_of_memory("naming a module");
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
    s = strdup(luaL_checkstring(L, -1));
    if (s == NULL)
        luaL_error(L, "out of memory");
    lua_pop(L, 1);
    return s;
}

static int table_int(lua_State *L, int idx, const char *key, int absent)
{
    lua_Number v;

    lua_getfield(L, idx, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return absent;
    }
    v = luaL_checknumber(L, -1);
    lua_pop(L, 1);
    if (!(v >= 0 && v <= INT32_MAX))
        luaL_error(L, "%s out of range", key);
    return (int)v;
}

typedef struct {
    const char *name;
    int pool;
} func_index_t;

static func_index_t *func_index;
static int nfunc_index;

static int cmp_func(const void *a, const void *b)
{
    return strcmp(((const func_index_t *)a)->name, ((const func_index_t *)b)->name);
}

/* Indexes the functions of gdl_pools[0..gdl_npools) for
 * gdl_pool_of_function; again whenever the pools change. */
void gdl_pools_index(void)
{
    int n = 0;

    for (int k = 0; k < gdl_npools; k++)
        n += gdl_pools[k].nfunctions;
    free(func_index);
    nfunc_index = 0;
    func_index = calloc(n ? n : 1, sizeof(func_index_t));
    if (func_index == NULL)
        out_of_memory("indexing the functions");
    for (int k = 0; k < gdl_npools; k++)
        for (int f = 0; f < gdl_pools[k].nfunctions; f++)
            func_index[nfunc_index++] = (func_index_t){gdl_pools[k].functions[f], k};
    qsort(func_index, nfunc_index, sizeof(func_index_t), cmp_func);
}

/* The pool serving a gearman function, or -1. */
int gdl_pool_of_function(const char *name)
{
    func_index_t key = {name, 0}, *hit;

    hit = bsearch(&key, func_index, nfunc_index, sizeof(func_index_t), cmp_func);
    return hit ? hit->pool : -1;
}

/* Copies gdlua._pools (validated by init.lua, at the top of the stack)
 * into gdl_pools; run under gdl_lua_pcall, so a malformed entry raises
 * instead of panicking. Entries are counted only once complete. */
static int read_pools(lua_State *L)
{
    int n, t = 1;

    n = (int)lua_objlen(L, t);
    gdl_pools = calloc(n ? n : 1, sizeof(gdl_pool_t));
    if (gdl_pools == NULL)
        return luaL_error(L, "out of memory");
    for (int i = 0; i < n; i++) {
        gdl_pool_t *p = &gdl_pools[i];

        lua_rawgeti(L, t, i + 1);
        luaL_checktype(L, -1, LUA_TTABLE);
        p->name = table_string(L, -1, "name");
        p->title = table_string(L, -1, "title");
        p->min_processes = table_int(L, -1, "min_processes", 0);
        p->max_processes = table_int(L, -1, "max_processes", 0);
        p->max_idle_time = table_int(L, -1, "max_idle_time", -1);
        lua_getfield(L, -1, "timeout");
        p->timeout_ms = lua_isnil(L, -1) ? -1 : (int)(luaL_checknumber(L, -1) * 1000 + 0.5);
        lua_pop(L, 1);
        p->max_attempts = table_int(L, -1, "max_attempts", -1);
        p->max_jobs = table_int(L, -1, "max_jobs", -1);
        p->max_memory = table_int(L, -1, "max_memory", -1);
        p->concurrency = table_int(L, -1, "concurrency", 1);
        lua_getfield(L, -1, "rate_limit");
        p->rate_limit = lua_isnil(L, -1) ? 0 : luaL_checknumber(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, -1, "functions");
        luaL_checktype(L, -1, LUA_TTABLE);
        p->nfunctions = (int)lua_objlen(L, -1);
        p->functions = calloc(p->nfunctions ? p->nfunctions : 1, sizeof(char *));
        if (p->functions == NULL)
            return luaL_error(L, "out of memory");
        for (int k = 0; k < p->nfunctions; k++) {
            lua_rawgeti(L, -1, k + 1);
            if ((p->functions[k] = strdup(luaL_checkstring(L, -1))) == NULL)
                return luaL_error(L, "out of memory");
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
        gdl_npools = i + 1;
    }
    gdl_pools_index();
    return 0;
}

/* Overrides of the last load that named no loaded job. */
static int unknown_overrides;

int gdl_lua_unknown_overrides(void)
{
    return unknown_overrides;
}

/* The config file's per-job overrides (gdl_config.jobs), applied to the
 * pools just read, whichever path loads them. An override naming no
 * loaded job is a warning (an error for --check, which then fails: a
 * deploy's typo or a job gone); one that leaves max_processes below
 * min_processes is an error, and that job keeps its own attributes. A
 * min_processes above the job's max_processes raises max_processes too.
 * Returns the number of errors. */
static int apply_overrides(void)
{
    int errors = 0;

    unknown_overrides = 0;

    for (int j = 0; j < gdl_config.njobs; j++) {
        const gdl_pool_t *o = &gdl_config.jobs[j];
        gdl_pool_t *p = NULL, merged;

        for (int k = 0; k < gdl_npools && p == NULL; k++)
            if (strcmp(gdl_pools[k].name, o->name) == 0)
                p = &gdl_pools[k];
        if (p == NULL) {
            gdl_log(gdl_config.check ? GDL_LOG_ERROR : GDL_LOG_WARN,
                    "%s: jobs[\"%s\"]: no such job is loaded; its overrides are ignored", gdl_config.config, o->name);
            unknown_overrides++;
            continue;
        }
        merged = *p;
        gdl_options_override(&merged, o);
        if (o->max_processes == GDL_UNSET && merged.max_processes < merged.min_processes)
            merged.max_processes = merged.min_processes;
        if (merged.max_processes < merged.min_processes) {
            gdl_error("%s: jobs[\"%s\"]: max_processes must be >= min_processes (got %d < %d); the job keeps its "
                      "own attributes",
                      gdl_config.config, o->name, merged.max_processes, merged.min_processes);
            errors++;
            continue;
        }
        *p = merged;
    }
    return errors;
}

/* Loads every module below the script directories (a directory or file
 * found in more than one of them loads once). Returns the number of
 * modules that failed and paths that could not be read, the first
 * error's message in err (each is logged); gdl_npools says how many jobs
 * loaded. */
int gdl_lua_load_pools(char *err, size_t errlen)
{
    lua_State *L = gdl_L;
    search_t search = {0};
    int failed = 0, loaded = 0;

    first_error[0] = '\0';

    if (gdl_lua_require(L, "gdlua") != 0) {
        load_failed("cannot load the gdlua module: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        snprintf(err, errlen, "%s", first_error);
        return 1;
    }
    for (int d = 0; d < gdl_config.ndirs; d++) {
        const char *root = gdl_config.dirs[d];
        strvec_t *files = &search.files;

        failed += find_modules(&search, root);
        if (files->n)
            qsort(files->v, files->n, sizeof(char *), cmp_str);
        for (int i = 0; i < files->n; i++) {
            char *module = module_name(root, files->v[i]);

            if (namespace_selected(module)) {
                int top = lua_gettop(L);

                lua_getfield(L, -1, "_load");
                lua_pushstring(L, files->v[i]);
                lua_pushstring(L, module);
                if (gdl_lua_pcall(L, 2, 2) != 0) {
                    load_failed("module %s not loaded: %s", module, lua_tostring(L, -1));
                    failed++;
                } else if (lua_isnil(L, -2)) {
                    load_failed("module %s not loaded: %s", module, lua_tostring(L, -1));
                    failed++;
                } else if (lua_tointeger(L, -2) == 0) {
                    gdl_warn("module %s (%s) defines no job", module, files->v[i]);
                } else {
                    gdl_info("module %s: %d function(s) from %s", module, (int)lua_tointeger(L, -2), files->v[i]);
                    loaded++;
                }
                lua_settop(L, top);
            }
            free(module);
        }
        strvec_free(files);
    }
    search_free(&search);
    lua_pushcfunction(L, read_pools);
    lua_getfield(L, -2, "_pools");
    if (gdl_lua_pcall(L, 1, 0) != 0) {
        load_failed("cannot read the loaded pools: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        failed++;
    } else {
        failed += apply_overrides();
    }
    lua_pop(L, 1);
    snprintf(err, errlen, "%s", first_error);
    return failed;
}

/* gdlua.core.find_modules(DIR): the modules below DIR as gdlua finds and
 * names them, in the order it loads them: { {path = ..., module = ...},
 * ... }, and the first error (each is logged) if part of DIR could not
 * be read, else nil. gdlua.testing loads them through gdlua._load as
 * gdl_lua_load_pools does. */
int gdl_lua_find_modules(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    char outer_error[sizeof(first_error)];
    search_t search = {0};
    int errors;

    /* Called from Lua, maybe by a module while a load is under way:
     * that load's first error stays its own. */
    memcpy(outer_error, first_error, sizeof(first_error));
    first_error[0] = '\0';
    errors = find_modules(&search, root);
    if (search.files.n)
        qsort(search.files.v, search.files.n, sizeof(char *), cmp_str);
    lua_createtable(L, search.files.n, 0);
    for (int i = 0; i < search.files.n; i++) {
        char *module = module_name(root, search.files.v[i]);

        lua_createtable(L, 0, 2);
        lua_pushstring(L, search.files.v[i]);
        lua_setfield(L, -2, "path");
        lua_pushstring(L, module);
        free(module);
        lua_setfield(L, -2, "module");
        lua_rawseti(L, -2, i + 1);
    }
    search_free(&search);
    if (errors)
        lua_pushstring(L, first_error);
    else
        lua_pushnil(L);
    memcpy(first_error, outer_error, sizeof(first_error));
    return 2;
}

void gdl_lua_print_pools(void)
{
    for (int i = 0; i < gdl_npools; i++) {
        gdl_pool_t *p = &gdl_pools[i];

        printf("%s min=%d max=%d", p->name, p->min_processes, p->max_processes);
        if (p->max_idle_time >= 0)
            printf(" max_idle_time=%d", p->max_idle_time);
        if (p->timeout_ms >= 0) {
            char seconds[32];

            gdl_format_number(p->timeout_ms / 1000.0, seconds, sizeof(seconds));
            printf(" timeout=%s", seconds);
        }
        if (p->max_attempts >= 0)
            printf(" max_attempts=%d", p->max_attempts);
        if (p->max_jobs >= 0)
            printf(" max_jobs=%d", p->max_jobs);
        if (p->max_memory >= 0)
            printf(" max_memory=%d", p->max_memory);
        if (p->rate_limit > 0)
            printf(" rate_limit=%g/s", p->rate_limit);
        if (p->concurrency > 1)
            printf(" concurrency=%d", p->concurrency);
        printf(" functions=");
        for (int k = 0; k < p->nfunctions; k++)
            printf("%s%s", k ? "," : "", p->functions[k]);
        printf(" title=\"%s\"\n", p->title);
    }
}
