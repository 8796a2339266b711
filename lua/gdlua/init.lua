-- gdlua: the Lua half of the job API.
--
-- A job module calls gdlua.worker() and defines jobs on the worker it
-- returns. The master loads every module with M._load (one call per file,
-- from gdl_lua.c), which validates the jobs and records them in M._pools
-- (pools: process types, read by C) and in `functions` (what a child dispatches).
-- Children call M._dispatch once per gearman job.

local core = require "gdlua.core"

local M = {
  version = core.version,
  pid = core.pid,
  sleep = core.sleep,
  log = core.log,
}

local Worker = {}
Worker.__index = Worker

-- Job attributes: name -> kind. The order is the order of the docs.
local ATTRIBUTES = {
  min_processes = "count",
  max_processes = "count",
  max_idle_time = "seconds",
  process_group = "name",
  encode = "method",
  decode = "method",
}
local ATTRIBUTE_LIST = "min_processes, max_processes, max_idle_time, process_group, encode, decode"
local DEFAULTS = { min_processes = 1, max_processes = 1 }

local loading          -- the module being loaded: { module, path, workers }
local functions = {}   -- gearman function name -> what runs it
local pools = {}       -- pools (process types), in load order
local pools_by_name = {}
M._pools = pools

-- Creates a worker: the object a module defines its jobs on. Its name is
-- the module's (GDExamples/Fib.lua -> "GDExamples::Fib"), the default
-- prefix of its function names.
function M.worker(name)
  if name ~= nil and type(name) ~= "string" then
    error("gdlua.worker: name must be a string, got " .. type(name), 2)
  end
  name = name or (loading and loading.module)
  if name == nil then
    error("gdlua.worker: give a name when not loading a job module", 2)
  end
  local w = setmetatable({ _name = name, _jobs = {} }, Worker)
  if loading then
    loading.workers[#loading.workers + 1] = w
  end
  return w
end

-- Defines a job: worker:job(name, [attributes], function(self, job, workload)).
function Worker:job(name, attrs, fn)
  if getmetatable(self) ~= Worker then
    error("job: call it as worker:job(name, attributes, function)", 2)
  end
  if fn == nil and type(attrs) == "function" then
    attrs, fn = nil, attrs
  end
  if type(name) ~= "string" or name == "" then
    error("job: name must be a non-empty string, got " .. tostring(name), 2)
  end
  if attrs ~= nil and type(attrs) ~= "table" then
    error(("job %q: attributes must be a table, got %s"):format(name, type(attrs)), 2)
  end
  if type(fn) ~= "function" then
    error(("job %q: the job function is missing (got %s)"):format(name, type(fn)), 2)
  end
  for _, j in ipairs(self._jobs) do
    if j.name == name then
      error(("job %q is defined twice (first at %s)"):format(name, j.where), 2)
    end
  end
  local info = debug.getinfo(2, "Sl")
  self._jobs[#self._jobs + 1] = {
    name = name, attrs = attrs or {}, fn = fn,
    where = info.short_src .. ":" .. (info.currentline or 0),
  }
  return self
end

-- A hook given either as a value or as a method returning it
-- (Gearman::Driver's overridable methods).
local function hook_value(w, key, want)
  local v = rawget(w, key)
  if type(v) == "function" then
    v = v(w)
  end
  if v ~= nil and type(v) ~= want then
    error(("%s: %s must be a %s or a method returning one, got %s")
      :format(w._name, key, want, type(v)), 0)
  end
  return v
end

local function check_attribute(where, job, k, v, w)
  local kind = ATTRIBUTES[k]
  local function fail(msg, ...)
    error(("%s: job %q: " .. msg):format(where, job, ...), 0)
  end
  if kind == nil then
    fail("unknown attribute %s = %s (known: %s)", tostring(k), tostring(v), ATTRIBUTE_LIST)
  elseif kind == "count" then
    if type(v) ~= "number" or v < 0 or v ~= math.floor(v) or v > core.procs_max then
      fail("%s must be a whole number from 0 to %d, got %s", k, core.procs_max, tostring(v))
    end
  elseif kind == "seconds" then
    if type(v) ~= "number" or v < 0 or v ~= math.floor(v) or v > 31536000 then
      fail("%s must be a whole number of seconds from 0 to 31536000, got %s", k, tostring(v))
    end
  elseif kind == "name" then
    if type(v) ~= "string" or v == "" then
      fail("%s must be a non-empty string, got %s", k, tostring(v))
    end
  elseif kind == "method" then
    if type(v) == "string" then
      if type(w[v]) ~= "function" then
        fail("%s names method %s, which the worker does not define", k, v)
      end
      return w[v]
    elseif type(v) ~= "function" then
      fail("%s must be a function or a method name, got %s", k, type(v))
    end
  end
  return v
end

-- Turns a loaded worker into process types and dispatch entries. Raises
-- on the first invalid definition; adds nothing until all are valid.
local function finalize(w, new_pools, new_functions)
  local prefix = hook_value(w, "prefix", "string")
  if prefix == nil then
    prefix = w._name .. "::"
  end
  local defaults = hook_value(w, "default_attributes", "table") or {}
  local overrides = hook_value(w, "override_attributes", "table") or {}
  local process_name = rawget(w, "process_name")
  if process_name ~= nil and type(process_name) ~= "function" then
    error(("%s: process_name must be a method, got %s"):format(w._name, type(process_name)), 0)
  end
  local finish = rawget(w, "end") or rawget(w, "finish")

  for _, j in ipairs(w._jobs) do
    local a = {}
    for _, layer in ipairs({ DEFAULTS, defaults, j.attrs, overrides }) do
      for k, v in pairs(layer) do
        a[k] = check_attribute(j.where, j.name, k, v, w)
      end
    end
    if a.max_processes < a.min_processes then
      error(("%s: job %q: max_processes must be >= min_processes (got %d < %d)")
        :format(j.where, j.name, a.max_processes, a.min_processes), 0)
    end
    local fname = prefix .. j.name
    local other = functions[fname] or new_functions[fname]
    if other then
      error(("%s: job %q: function %s is already defined at %s")
        :format(j.where, j.name, fname, other.where), 0)
    end
    new_functions[fname] = {
      worker = w, fn = j.fn, where = j.where,
      decode = a.decode, encode = a.encode,
      begin = rawget(w, "begin"), finish = finish,
    }
    local pname = a.process_group and prefix .. a.process_group or fname
    local pt = new_pools[pname] or pools_by_name[pname]
    if pt == nil then
      local orig = "gdlua: worker"
      local title = orig .. " " .. pname
      if process_name then
        title = tostring(process_name(w, orig, pname))
      end
      pt = { name = pname, title = title, functions = {}, min_processes = 0, max_processes = 0 }
      new_pools[pname] = pt
      new_pools[#new_pools + 1] = pt
    end
    pt.functions[#pt.functions + 1] = fname
    -- A group runs as many processes as its most demanding member asks.
    pt.min_processes = math.max(pt.min_processes, a.min_processes)
    pt.max_processes = math.max(pt.max_processes, a.max_processes)
    if a.max_idle_time then
      pt.max_idle_time = math.max(pt.max_idle_time or 0, a.max_idle_time)
    end
  end
end

local function load_error(e)
  -- Not a tail call: LuaJIT would drop the frame that raised the error.
  local tb = debug.traceback(tostring(e), 2)
  return tb
end

-- Loads one job module. Returns the number of functions it defines, or
-- nil and a message that names the file and line.
function M._load(path, module)
  local chunk, err = loadfile(path)
  if chunk == nil then
    return nil, err
  end
  loading = { module = module, path = path, workers = {} }
  local ok, res = xpcall(chunk, load_error, module, path)
  local workers = loading.workers
  loading = nil
  if not ok then
    return nil, res
  end
  if getmetatable(res) == Worker then
    local seen = false
    for _, w in ipairs(workers) do seen = seen or w == res end
    if not seen then workers[#workers + 1] = res end
  end
  local new_pools, new_functions = {}, {}
  local fok, ferr = pcall(function()
    for _, w in ipairs(workers) do finalize(w, new_pools, new_functions) end
  end)
  if not fok then
    return nil, tostring(ferr)
  end
  local n = 0
  for fname, f in pairs(new_functions) do
    functions[fname] = f
    n = n + 1
  end
  for _, pt in ipairs(new_pools) do
    if not pools_by_name[pt.name] then
      pools_by_name[pt.name] = pt
      pools[#pools + 1] = pt
    end
  end
  return n
end

local function job_error(e)
  return { msg = tostring(e), trace = debug.traceback(tostring(e), 2) }
end

-- Runs one gearman job: decode, begin, the job, encode, then end (always).
-- Returns true, result or false, message, traceback.
function M._dispatch(job)
  local f = functions[job.function_name]
  if f == nil then
    return false, "no such function: " .. tostring(job.function_name), ""
  end
  local w, workload, ok, res = f.worker, job.workload, true, nil
  if f.decode then
    ok, res = xpcall(f.decode, job_error, w, workload)
    if ok then workload = res end
  end
  if ok and f.begin then
    ok, res = xpcall(f.begin, job_error, w, job, workload)
  end
  if ok then
    ok, res = xpcall(f.fn, job_error, w, job, workload)
  end
  if ok and f.encode then
    ok, res = xpcall(f.encode, job_error, w, res)
  end
  if f.finish then
    local fok, fres = xpcall(f.finish, job_error, w, job, workload)
    if ok and not fok then
      ok, res = fok, fres
    end
  end
  if not ok then
    return false, res.msg, res.trace
  end
  return true, res
end

return M
