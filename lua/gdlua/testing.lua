-- gdlua.testing: job modules tested in process, without gearmand.
--
--   local t = require "gdlua.testing"
--   local jobs = t.load("jobs/GDExamples/Text.lua")   -- as "gdlua jobs" loads it
--   local result, job = t.call("GDExamples::Text::upper", "abc")
--   -- result: the bytes a client receives; job.statuses, job.data,
--   -- job.warnings: what the job sent; job.calls: the jobs it called
--
-- Loading goes through gdlua._load, the loader's own path (names from the
-- path, attribute checks, prefixes), and the module search through
-- gdlua.core.find_modules, the loader's C search. A call goes through
-- gdlua._dispatch as a worker's does (decode, begin, the job, end,
-- encode), with a job object that records what the job sends instead of
-- sending it, and the result turned into bytes as a worker turns it.
--
-- Calls to gdlua.client are eager while this module is loaded (Celery's
-- task_always_eager, Sidekiq::Testing.inline!): package.loaded
-- ["gdlua.client"] is a stand-in whose clients run each call, background
-- job and task set of a loaded function at once, in process; a function no
-- loaded module defines raises. t.eager(false) sends them to gearmand.
--
-- "gdlua test [PATH...]" (runtime/gdl_main.c calls M.main) runs the tests
-- of every *_test.lua and test_*.lua file below each PATH, each file with
-- a fresh gdlua (no module loaded) and globals of its own; t.test
-- registers a test, the checks (t.eq, t.ok, ...) raise with the test
-- file's line. "gdlua test --busted ..." runs Debian's busted instead.
local core = require "gdlua.core"
local real_client = require "gdlua.client"

local M = {}

local PATTERNS = { "_test%.lua$", "^test_.*%.lua$" }
local USAGE = "usage: gdlua test [--lib DIR]... [--cpath DIR]... [DIR|FILE]...\n"
  .. "       gdlua test [--lib DIR]... [--cpath DIR]... --busted [BUSTED OPTION]... [ROOT]..."

local eager = true
local loading = false -- inside M.load: client calls are refused, as in the master
local running = {}    -- the records of the jobs being run, innermost last
local serial = 0      -- numbers the handles and unique ids of fake jobs

-- ---- loading ----

-- What each gdlua instance has loaded, by path: the runner starts each
-- test file on a fresh instance (package.loaded.gdlua = nil), so a cache
-- keyed by instance forgets with it.
local caches = setmetatable({}, { __mode = "k" })

local function gdlua_now()
  return require "gdlua"
end

-- gearman function name -> its pool, for every function loaded so far.
local function loaded_functions(g)
  local by = {}
  for _, p in ipairs(g._pools) do
    for _, f in ipairs(p.functions) do by[f] = p end
  end
  return by
end

local function clean_path(p)
  p = p:gsub("/+", "/"):gsub("^%./", "")
  while p:find("/%./") do p = p:gsub("/%./", "/", 1) end
  return p
end

-- "GDExamples/Text.lua" -> "GDExamples::Text", as gdl_lua.c names it.
local function module_name(rel)
  return (rel:gsub("^/+", ""):gsub("%.lua$", ""):gsub("/", "::"))
end

-- "jobs/GDExamples/Text.lua" -> "jobs", "GDExamples/Text.lua": the first
-- directory of a relative path (after any "." and "..") is taken as the
-- script directory gdlua would be given.
local function split_root(path)
  if path:sub(1, 1) == "/" then
    return nil
  end
  local parts = {}
  for part in path:gmatch("[^/]+") do parts[#parts + 1] = part end
  local i = 1
  while parts[i] == ".." do i = i + 1 end
  if i >= #parts then
    return nil
  end
  return table.concat(parts, "/", 1, i), table.concat(parts, "/", i + 1)
end

-- t.load(DIR) loads every module below DIR, as "gdlua DIR" does;
-- t.load(DIR, FILE) the module FILE (a path below DIR), named as
-- "gdlua DIR" names it; t.load("jobs/My/Text.lua") is t.load("jobs",
-- "My/Text.lua"). A module that fails to load raises its error (file and
-- line). Loading a path again returns what it loaded. Returns the
-- functions defined, sorted (jobs[i]), and what each got (jobs[name]:
-- module, path, pool, min_processes, max_processes, timeout, concurrency,
-- rate_limit ...).
function M.load(path, file)
  if type(path) ~= "string" or path == "" then
    error("gdlua.testing.load: give a job module's path or a script directory, got " .. tostring(path), 2)
  end
  if file ~= nil and type(file) ~= "string" then
    error("gdlua.testing.load: FILE must be a path below " .. path .. ", got " .. type(file), 2)
  end
  local root, rel = path, file
  if rel == nil and path:find("%.lua$") then
    root, rel = split_root(clean_path(path))
    if root == nil then
      error(("gdlua.testing.load: %s: cannot tell the script directory its name comes from; "
        .. "give it: t.load(DIR, FILE), FILE a path below DIR"):format(path), 2)
    end
  end
  root = root:gsub("(.)/+$", "%1")
  local list
  if rel then
    rel = clean_path(rel)
    list = { { path = root .. "/" .. rel, module = module_name(rel) } }
  else
    local found, err = core.find_modules(root)
    if err then
      error("gdlua.testing.load: " .. err, 2)
    end
    list = found
  end
  local g = gdlua_now()
  local cache = caches[g] or {}
  caches[g] = cache
  local names = {}
  for _, m in ipairs(list) do
    local entry = cache[m.path]
    if entry == nil then
      local before = loaded_functions(g)
      loading = true
      local ok, n, err = pcall(g._load, m.path, m.module)
      loading = false
      if not ok or n == nil then
        error(("module %s not loaded: %s"):format(m.module, tostring(ok and err or n)), 2)
      end
      entry = { module = m.module, path = m.path, functions = {} }
      for f in pairs(loaded_functions(g)) do
        if not before[f] then entry.functions[#entry.functions + 1] = f end
      end
      if n == 0 then
        io.stderr:write(("gdlua.testing: module %s (%s) defines no job\n"):format(m.module, m.path))
      end
      cache[m.path] = entry
    end
    for _, f in ipairs(entry.functions) do names[#names + 1] = { f, entry } end
  end
  local jobs, pools = {}, loaded_functions(g)
  table.sort(names, function(a, b) return a[1] < b[1] end)
  for i, n in ipairs(names) do
    local p = pools[n[1]]
    jobs[i] = n[1]
    jobs[n[1]] = {
      module = n[2].module, path = n[2].path, pool = p.name, title = p.title,
      min_processes = p.min_processes, max_processes = p.max_processes, max_idle_time = p.max_idle_time,
      timeout = p.timeout, max_attempts = p.max_attempts, max_jobs = p.max_jobs, max_memory = p.max_memory,
      concurrency = p.concurrency or 1, rate_limit = p.rate_limit,
    }
  end
  return jobs
end

local function not_loaded(fn, g)
  local names = {}
  for f in pairs(loaded_functions(g)) do names[#names + 1] = f end
  table.sort(names)
  local shown = #names == 0 and "none" or table.concat(names, ", ", 1, math.min(#names, 10))
    .. (#names > 10 and (", and %d more"):format(#names - 10) or "")
  return ("gdlua.testing: no loaded job module defines %s (loaded: %s); load its module with "
    .. "t.load(PATH) first, or call t.eager(false) to send calls to gearmand"):format(fn, shown)
end

-- ---- the job object ----

-- A job's stand-in for gdl_mod_job.c's job object: the same fields and
-- methods, the same checks, true from each method; what the job sends is
-- recorded in its record (and passed to the calling client's on_status,
-- on_data and on_warning). Like the real one it is a userdata, valid only
-- during its call.
local job_state = setmetatable({}, { __mode = "k" })
local job_proto = newproxy(true)
local JOB_FIELDS = { workload = true, handle = true, unique = true, function_name = true }
local job_methods = {}

local function live_job(self, name)
  local s = job_state[self]
  if s == nil then
    error(("calling '%s' on bad self (gdlua.job expected, got %s)"):format(name, type(self)), 3)
  end
  if s.done then
    error("job object used after its job finished", 3)
  end
  return s
end

-- A hook the calling client gave; an error in it fails that client's task
-- (as gdl_mod_client.c's call_hook does) but not the job.
local function call_hook(s, name, ...)
  local hook = s.hooks[name]
  if type(hook) == "function" then
    local ok, err = pcall(hook, ...)
    if not ok then
      s.hooks.error = tostring(err)
    end
  end
end

local function check_bytes(v, name)
  if type(v) == "number" then
    return tostring(v)
  end
  if type(v) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(name, v == nil and "no value" or type(v)), 3)
  end
  return v
end

function job_methods.status(self, numerator, denominator)
  local s = live_job(self, "status")
  local n, d = tonumber(numerator), tonumber(denominator)
  for i = 1, 2 do
    if (i == 1 and n or d) == nil then
      local v = i == 1 and numerator or denominator
      error(("bad argument #%d to 'status' (number expected, got %s)")
        :format(i, v == nil and "no value" or type(v)), 2)
    end
  end
  if not (n >= 0 and n <= 4294967295 and d >= 0 and d <= 4294967295) then
    error(("status: numerator and denominator must be from 0 to 2^32-1, got %.14g and %.14g"):format(n, d), 2)
  end
  -- What the client receives: gearman sends whole numbers.
  n, d = math.floor(n), math.floor(d)
  s.rec.statuses[#s.rec.statuses + 1] = { n, d }
  call_hook(s, "on_status", n, d)
  return true
end

function job_methods.data(self, chunk)
  local s = live_job(self, "data")
  chunk = check_bytes(chunk, "data")
  s.rec.data[#s.rec.data + 1] = chunk
  call_hook(s, "on_data", chunk)
  return true
end

function job_methods.warning(self, message)
  local s = live_job(self, "warning")
  message = check_bytes(message, "warning")
  s.rec.warnings[#s.rec.warnings + 1] = message
  call_hook(s, "on_warning", message)
  return true
end

do
  local mt = getmetatable(job_proto)
  mt.__index = function(self, k)
    local s = live_job(self, tostring(k))
    if JOB_FIELDS[k] then
      return s.rec[k]
    end
    return job_methods[k]
  end
  mt.__tostring = function(self)
    local s = job_state[self]
    return s.done and "gdlua.job (finished)" or "gdlua.job (" .. s.rec.handle .. ")"
  end
end

-- The job's result as bytes, as gdl_child.c's result_bytes turns it.
local function result_bytes(v)
  local ty = type(v)
  if ty == "string" then
    return v
  elseif ty == "number" then
    return core.format_number(v)
  elseif ty == "nil" then
    return ""
  elseif ty == "boolean" then
    return v and "true" or "false"
  end
  return nil, ("job returned a %s; return a string, a number or nil (or use an encode attribute)"):format(ty)
end

-- Runs one job of a loaded function in process, as a worker does; returns
-- its record: function_name, handle, unique, workload, statuses, data,
-- warnings, calls, and result (the bytes) or error (the message its
-- client gets) and traceback.
local function run(fn, workload, unique, hooks)
  local g = gdlua_now()
  serial = serial + 1
  local rec = {
    function_name = fn, workload = workload,
    handle = ("H:gdlua-test:%d"):format(serial),
    unique = unique or ("%08x-0000-4000-8000-%012x"):format(core.pid(), serial),
    statuses = {}, data = {}, warnings = {}, calls = {},
  }
  local job = newproxy(job_proto)
  job_state[job] = { rec = rec, hooks = hooks or {} }
  running[#running + 1] = rec
  local pok, ok, res, trace = pcall(g._dispatch, job, fn, workload)
  running[#running] = nil
  job_state[job].done = true
  if not pok then
    ok, res, trace = false, tostring(ok), debug.traceback(tostring(ok))
  end
  if ok then
    local bytes, why = result_bytes(res)
    if bytes then
      rec.result = bytes
    else
      ok, res, trace = false, why, why
    end
  end
  if not ok then
    rec.error = (res == nil or res == "") and "job failed" or res
    rec.traceback = trace
  end
  return rec
end

local function check_workload(workload, what)
  if workload == nil then
    return ""
  end
  if type(workload) == "number" then
    return tostring(workload)
  end
  if type(workload) ~= "string" then
    error(("%s: the workload must be a string, got %s"):format(what, type(workload)), 3)
  end
  return workload
end

local function call_checked(what, fn, workload, opts)
  if type(fn) ~= "string" then
    error(("%s: the function name must be a string, got %s"):format(what, type(fn)), 3)
  end
  workload = check_workload(workload, what)
  if opts ~= nil and type(opts) ~= "table" then
    error(("%s: options must be a table, got %s"):format(what, type(opts)), 3)
  end
  local unique = opts and opts.unique
  if unique ~= nil and type(unique) ~= "string" then
    error(("%s: unique must be a string, got %s"):format(what, type(unique)), 3)
  end
  local g = gdlua_now()
  if not loaded_functions(g)[fn] then
    error(not_loaded(fn, g), 3)
  end
  return run(fn, workload, unique)
end

-- t.call(FUNCTION, WORKLOAD [, {unique = ...}]) -> result, job: runs the
-- job in process; raises if it fails (t.fails expects that).
function M.call(fn, workload, opts)
  local rec = call_checked("gdlua.testing.call", fn, workload, opts)
  if rec.error then
    error(("%s failed: %s"):format(fn, rec.error), 2)
  end
  return rec.result, rec
end

-- t.fails(FUNCTION, WORKLOAD [, opts]) -> message, job: the job must fail;
-- message is what its client receives.
function M.fails(fn, workload, opts)
  local rec = call_checked("gdlua.testing.fails", fn, workload, opts)
  if not rec.error then
    local r = rec.result
    error(("%s did not fail: it returned %s"):format(fn, #r > 60 and ("%d bytes"):format(#r) or ("%q"):format(r)), 2)
  end
  return rec.error, rec
end

-- ---- the eager client ----

local function refuse_while_loading()
  if loading then
    -- What the master says (gdl_mod_client.c): a module must not call at load time.
    error("gdlua.client: calls run in worker processes and scripts, not while the master loads modules "
      .. "(a connection made before fork would be shared by every child)", 3)
  end
end

-- The checks of gdl_mod_client.c's check_task_args; returns fn and workload
-- as strings.
local function check_task(name, fn, workload, opts)
  for i = 1, 2 do
    local v = i == 1 and fn or workload
    if type(v) ~= "string" and type(v) ~= "number" then
      error(("bad argument #%d to '%s' (string expected, got %s)")
        :format(i, name, v == nil and "no value" or type(v)), 3)
    end
  end
  if opts ~= nil then
    if type(opts) ~= "table" then
      error(("bad argument #3 to '%s' (table expected, got %s)"):format(name, type(opts)), 3)
    end
    if opts.unique ~= nil and type(opts.unique) ~= "string" then
      error("gdlua.client: unique must be a string, got " .. type(opts.unique), 3)
    end
    local p = opts.priority
    if p ~= nil and not (type(p) == "string" and (p == "normal" or p == "high" or p == "low")) then
      error(("gdlua.client: priority must be \"normal\", \"high\" or \"low\", got %s")
        :format(type(p) == "string" and p or type(p)), 3)
    end
  end
  return tostring(fn), tostring(workload)
end

-- One eagerly run call: the job's record, noted in the calling job's
-- calls; returns the result, or false and the message a real client gets
-- (a failed job's message comes as its last warning, and on_warning sees
-- it; an error in a hook fails the task).
local function eager_call(kind, fn, workload, opts)
  local g = gdlua_now()
  if not loaded_functions(g)[fn] then
    error(not_loaded(fn, g), 3)
  end
  local caller = running[#running]
  local hooks = {}
  if kind ~= "background" and opts then
    hooks.on_status, hooks.on_data, hooks.on_warning = opts.on_status, opts.on_data, opts.on_warning
  end
  local entry = { kind = kind, fn = fn, workload = workload }
  if caller then
    caller.calls[#caller.calls + 1] = entry
  end
  local rec = run(fn, workload, opts and opts.unique, hooks)
  entry.job = rec
  if rec.error then
    call_hook({ hooks = hooks }, "on_warning", rec.error)
  end
  entry.result, entry.error = rec.result, hooks.error or rec.error
  if entry.error then
    return false, entry.error, rec
  end
  return rec.result, nil, rec
end

local Client = {}
Client.__index = Client
local TaskSet = {}
TaskSet.__index = TaskSet

local function check_client(c, name)
  if getmetatable(c) ~= Client then
    error(("calling '%s' on bad self (gdlua.client expected, got %s)"):format(name, type(c)), 3)
  end
  if c.closed then
    error("gdlua.client: client is closed", 3)
  end
  return c
end

function Client:call(fn, workload, opts)
  check_client(self, "call")
  if not eager then
    return self.real:call(fn, workload, opts)
  end
  fn, workload = check_task("call", fn, workload, opts)
  refuse_while_loading()
  local result, err = eager_call("call", fn, workload, opts)
  if result then
    return result
  end
  return nil, err
end

function Client:background(fn, workload, opts)
  check_client(self, "background")
  if not eager then
    return self.real:background(fn, workload, opts)
  end
  fn, workload = check_task("background", fn, workload, opts)
  refuse_while_loading()
  local _, _, rec = eager_call("background", fn, workload, opts)
  return rec.handle
end

-- Eager jobs are done before the call returns: gearmand knows a job no
-- longer once it is done.
function Client:status(handle)
  check_client(self, "status")
  if not eager then
    return self.real:status(handle)
  end
  if type(handle) ~= "string" and type(handle) ~= "number" then
    error(("bad argument #1 to 'status' (string expected, got %s)"):format(type(handle)), 2)
  end
  refuse_while_loading()
  return { known = false, running = false, numerator = 0, denominator = 0 }
end

function Client:taskset()
  check_client(self, "taskset")
  return setmetatable({ client = self, tasks = {} }, TaskSet)
end

function Client:close()
  if getmetatable(self) ~= Client then
    error("calling 'close' on bad self (gdlua.client expected, got " .. type(self) .. ")", 2)
  end
  self.closed = true
  self.real:close()
end

function TaskSet:add(fn, workload, opts)
  if getmetatable(self) ~= TaskSet then
    error("bad argument #1 to 'add' (table expected, got " .. type(self) .. ")", 2)
  end
  check_task("add", fn, workload, opts)
  local task = {}
  for k, v in pairs(opts or {}) do task[k] = v end
  task.fn, task.workload = fn, workload
  self.tasks[#self.tasks + 1] = task
  return self
end

-- The tasks one after another: a schedule the concurrent set could have
-- run; the results in submission order.
function TaskSet:run()
  if getmetatable(self) ~= TaskSet then
    error("bad argument #1 to 'run' (table expected, got " .. type(self) .. ")", 2)
  end
  local c = check_client(self.client, "run")
  if not eager then
    local ts = c.real:taskset()
    for _, task in ipairs(self.tasks) do ts:add(task.fn, task.workload, task) end
    return ts:run()
  end
  refuse_while_loading()
  local results, failed = {}, nil
  for i, task in ipairs(self.tasks) do
    local result, err = eager_call("taskset", tostring(task.fn), tostring(task.workload), task)
    results[i] = result
    if not result then
      failed = failed or {}
      failed[i] = err
    end
  end
  return results, failed
end

-- The stand-in for gdlua.client: client.new checks its options as the real
-- one does (and makes the real client that t.eager(false) uses).
local eager_client = setmetatable({
  new = function(opts)
    return setmetatable({ real = real_client.new(opts) }, Client)
  end,
}, { __index = real_client })
package.loaded["gdlua.client"] = eager_client

-- t.eager(on): whether gdlua.client calls run in process (the default) or
-- go to gearmand; returns the setting before.
function M.eager(on)
  local was = eager
  if on ~= nil then
    eager = on and true or false
  end
  return was
end

-- ---- checks ----

-- The test file being run (gdlua test): a failed check names its line.
local running_file

-- Where a check failed: the innermost frame in the test file being run,
-- else the innermost outside this module.
local THIS_FILE = debug.getinfo(1, "S").source

local function where()
  local fallback
  for level = 3, 60 do
    local info = debug.getinfo(level, "Sl")
    if info == nil then
      break
    end
    local file = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
    if info.currentline > 0 and info.source ~= THIS_FILE then
      if running_file and file == running_file then
        return file .. ":" .. info.currentline .. ": "
      end
      fallback = fallback or (file .. ":" .. info.currentline .. ": ")
    end
  end
  return fallback or ""
end

local failed_check -- the message of the check that failed last

local function check_failed(msg, what)
  failed_check = where() .. (what and what .. ": " or "") .. msg
  error(failed_check, 0)
end

-- A value as a check's message shows it: strings quoted (long ones cut),
-- tables with their keys sorted.
local function show(v, depth)
  local ty = type(v)
  if ty == "string" then
    if #v > 200 then
      return ("%q... (%d bytes)"):format(v:sub(1, 80), #v)
    end
    return ("%q"):format(v):gsub("\\\n", "\\n")
  elseif ty ~= "table" then
    return tostring(v)
  end
  depth = depth or 0
  if depth > 3 then
    return "{...}"
  end
  local keys, parts, n = {}, {}, #v
  for k in pairs(v) do
    if not (type(k) == "number" and k >= 1 and k <= n and k == math.floor(k)) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i = 1, n do parts[#parts + 1] = show(v[i], depth + 1) end
  for _, k in ipairs(keys) do
    local key = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. show(k, depth + 1) .. "]"
    parts[#parts + 1] = key .. " = " .. show(v[k], depth + 1)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end
M.show = show

local function deep_equal(a, b, seen)
  if a == b then
    return true
  end
  if type(a) ~= "table" or type(b) ~= "table" then
    return false
  end
  seen = seen or {}
  if seen[a] == b then
    return true
  end
  seen[a] = b
  for k, v in pairs(a) do
    if not deep_equal(v, b[k], seen) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- t.eq(got, want [, what]): equal values, tables compared key by key.
function M.eq(got, want, what)
  if not deep_equal(got, want) then
    check_failed(("got %s, want %s"):format(show(got), show(want)), what)
  end
  return got
end

-- t.ok(value [, what]): a true value (not nil or false).
function M.ok(v, what)
  if not v then
    check_failed(("got %s, want a true value"):format(show(v)), what)
  end
  return v
end

-- t.match(s, pattern [, what]): s matches the Lua pattern.
function M.match(s, pattern, what)
  if type(s) ~= "string" or not s:find(pattern) then
    check_failed(("%s does not match %s"):format(show(s), show(pattern)), what)
  end
  return s
end

-- t.contains(s, text [, what]): s holds text, as it is (no pattern).
function M.contains(s, text, what)
  if type(s) ~= "string" or not s:find(text, 1, true) then
    check_failed(("%s does not contain %s"):format(show(s), show(text)), what)
  end
  return s
end

-- t.raises(fn [, text]) -> the error: fn must raise, with text in its
-- message if given.
function M.raises(fn, text)
  local ok, err = pcall(fn)
  if ok then
    check_failed("did not raise")
  end
  if text and not tostring(err):find(text, 1, true) then
    check_failed(("raised %s, which does not contain %s"):format(show(tostring(err)), show(text)))
  end
  return err
end

-- ---- tests ----

local registering -- the tests of the file being loaded (gdlua test)
local counts = { passed = 0, failed = 0 }

-- Frames of this module are left out of a failure's traceback,
-- and so are C functions: what is left are the test's and the code's
-- under test.
local function user_traceback(level)
  local lines = {}
  for line in debug.traceback("", level + 1):gmatch("[^\n]+") do
    line = line:match("^%s+(.*)$")
    if line and line:sub(1, #THIS_FILE - 1) ~= THIS_FILE:sub(2) and not line:find("^%[C%]:") then
      lines[#lines + 1] = "  " .. line
    end
  end
  return lines
end

local function on_error(e)
  if e == failed_check then
    return { msg = e }
  end
  return { msg = type(e) == "string" and e or show(e), trace = user_traceback(2) }
end

local function report(ok, name, where_defined, failure)
  if ok then
    counts.passed = counts.passed + 1
    print(("ok   %s%s"):format(where_defined, name))
  else
    counts.failed = counts.failed + 1
    print(("FAIL %s%s"):format(where_defined, name))
    for line in tostring(failure.msg):gmatch("[^\n]+") do print("     " .. line) end
    if failure.trace and #failure.trace > 1 then
      print("     stack traceback:")
      for _, line in ipairs(failure.trace) do print("     " .. line) end
    end
  end
  io.stdout:flush()
end

local function run_test(test)
  failed_check = nil
  local ok, failure = xpcall(test.fn, on_error)
  report(ok, test.name, test.where, failure)
end

-- t.test(name, function() ... end): a test. Under gdlua test it runs once
-- its file has loaded; elsewhere (gdlua run) at once; either way it prints
-- ok or FAIL with the file and line it was defined at.
function M.test(name, fn)
  if type(name) ~= "string" or type(fn) ~= "function" then
    error("gdlua.testing.test: call it as t.test(NAME, function() ... end)", 2)
  end
  local info = debug.getinfo(2, "Sl")
  local file = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
  local test = { name = name, fn = fn, where = file .. ":" .. info.currentline .. ": " }
  if registering then
    registering[#registering + 1] = test
  else
    run_test(test)
  end
end

-- t.done() -> 0 or 1: prints "N passed, N failed" for the tests run so
-- far; a script outside gdlua test ends with os.exit(t.done()).
function M.done()
  print(("%d passed, %d failed"):format(counts.passed, counts.failed))
  return counts.failed == 0 and 0 or 1
end

local function is_test_file(path)
  local base = path:match("[^/]*$")
  for _, p in ipairs(PATTERNS) do
    if base:find(p) then return true end
  end
  return false
end

-- Runs one test file: a fresh gdlua (no job module loaded), eager calls,
-- globals of its own; its top level registers the tests, then they run.
local function run_file(path)
  package.loaded.gdlua = nil
  eager = true
  local chunk, err = loadfile(path)
  if chunk == nil then
    report(false, "(loading the file)", path .. ": ", { msg = err })
    return
  end
  setfenv(chunk, setmetatable({}, { __index = _G }))
  registering, running_file = {}, path
  failed_check = nil
  local ok, failure = xpcall(chunk, on_error, path)
  local tests = registering
  registering = nil
  if not ok then
    report(false, "(the file's top level)", path .. ": ", failure)
  elseif #tests == 0 then
    report(false, "(no test)", path .. ": ",
      { msg = "the file defines no test: t.test(NAME, function() ... end)" })
  end
  for _, test in ipairs(ok and tests or {}) do run_test(test) end
  running_file = nil
end

-- Runs busted's own runner on this LuaJIT with the gdlua modules. Called
-- from a chunk that is no file, busted ends the process itself with
-- os.exit(status, true); called from a file (/usr/bin/busted) it raises
-- a nil error to fail on Lua 5.1, which gdlua would print.
local function run_busted(args)
  local ok, runner = pcall(require, "busted.runner")
  if not ok then
    io.stderr:write("gdlua test: --busted runs Debian's busted (apt-get install lua-busted), which is not found: ",
      tostring(runner):match("^[^\n]*"), "\n")
    return 2
  end
  _G.arg = { [0] = "busted" }
  for i, a in ipairs(args) do _G.arg[i] = a end
  local start = assert(loadstring("local runner = ...; runner({ standalone = false }); return 0", "=busted"))
  return start(runner)
end

-- gdlua test [--lib DIR]... [--cpath DIR]... [--busted ARG...] [PATH...]:
-- returns the exit status: 0 when every test passed, 1 when one failed or
-- none was found, 2 for a usage error.
function M.main(args)
  local paths = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then
      print(USAGE)
      return 0
    elseif a == "--lib" or a == "--cpath" then
      local dir = args[i + 1]
      if dir == nil then
        io.stderr:write("gdlua test: ", a, " needs a directory\n", USAGE, "\n")
        return 2
      end
      dir = dir:gsub("(.)/+$", "%1")
      if a == "--lib" then
        package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
      else
        package.cpath = dir .. "/?.so;" .. package.cpath
      end
      i = i + 1
    elseif a == "--busted" then
      return run_busted({ unpack(args, i + 1) })
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      io.stderr:write("gdlua test: unknown option ", a, "\n", USAGE, "\n")
      return 2
    else
      paths[#paths + 1] = a
    end
    i = i + 1
  end
  if #paths == 0 then
    paths[1] = "."
  end
  local files, errors = {}, 0
  for _, p in ipairs(paths) do
    if p:find("%.lua$") then
      files[#files + 1] = p
    else
      local found, err = core.find_modules((p:gsub("(.)/+$", "%1")))
      if err then
        errors = errors + 1
      end
      local n = #files
      for _, m in ipairs(found) do
        if is_test_file(m.path) then files[#files + 1] = m.path end
      end
      if #files == n and not err then
        io.stderr:write(("gdlua test: no test file (*_test.lua, test_*.lua) below %s\n"):format(p))
        errors = errors + 1
      end
    end
  end
  for _, f in ipairs(files) do run_file(f) end
  print(("%d passed, %d failed"):format(counts.passed, counts.failed))
  return (counts.failed > 0 or errors > 0) and 1 or 0
end

return M
