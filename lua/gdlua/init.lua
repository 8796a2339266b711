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

-- Job attributes, in the order of README's table: { name, kind }. The
-- lookup and the list in the unknown-attribute message derive from it.
local ATTRIBUTES = {
  { "min_processes", "count" },
  { "max_processes", "count" },
  { "max_idle_time", "seconds" },
  { "timeout", "duration" },
  { "max_attempts", "number" },
  { "max_jobs", "number" },
  { "max_memory", "number" },
  { "retries", "number" },
  { "retry_backoff", "duration" },
  { "rate_limit", "rate" },
  { "concurrency", "concurrency" },
  { "process_group", "name" },
  { "decode", "method" },
  { "encode", "method" },
}
local ATTRIBUTE_KIND, ATTRIBUTE_NAMES = {}, {}
for i, a in ipairs(ATTRIBUTES) do
  ATTRIBUTE_KIND[a[1]] = a[2]
  ATTRIBUTE_NAMES[i] = a[1]
end
local KNOWN_ATTRIBUTES = table.concat(ATTRIBUTE_NAMES, ", ")
M._attributes = ATTRIBUTES

-- A value as a message quotes it, as the config file's messages do:
-- 10, "ten" (escaped, cut at 64 bytes), true, nil, a table.
local function shown(v)
  local t = type(v)
  if t == "string" then
    local s = v:sub(1, 64):gsub('[%c"\\]', function(c)
      return c == '"' and '\\"' or c == "\\" and "\\\\" or ("\\x%02x"):format(c:byte())
    end)
    return '"' .. s .. '"'
  elseif t == "number" or t == "boolean" or t == "nil" then
    return tostring(v)
  end
  return "a " .. t
end

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
    error("gdlua.worker: give a name when not loading a job module (to load one from a test or a script,"
      .. " use require(\"gdlua.testing\").load(PATH), or gdlua test: see README, \"Testing your jobs\")", 2)
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
  if name == "" then
    error("job: name must be a non-empty string, got an empty name", 2)
  elseif type(name) ~= "string" then
    error("job: name must be a non-empty string, got " .. shown(name), 2)
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

-- Checks one merged attribute; returns its value (a method resolved to
-- its function). `layer` names the hook it came from (nil: the job's own).
-- A value of the wrong type is said as such (`expected a number, got
-- "2"`), one out of bounds with its bounds.
local function check_attribute(j, k, v, layer, w)
  local kind = ATTRIBUTE_KIND[k]
  local function fail(msg, ...)
    msg = ("%s: job %q: " .. msg):format(j.where, j.name, ...)
    if kind == nil then
      msg = msg .. (" (%sknown: %s)"):format(layer and "from " .. layer .. "; " or "", KNOWN_ATTRIBUTES)
    elseif layer then
      msg = msg .. " (from " .. layer .. ")"
    end
    error(msg, 0)
  end
  local want = (kind == "name" and "string") or (kind ~= "method" and kind ~= "rate" and kind ~= nil and "number")
  if want and type(v) ~= want then
    fail("%s: expected a %s, got %s", k, want, shown(v))
  end
  if kind == nil then
    fail("unknown attribute %s = %s", tostring(k), shown(v))
  elseif kind == "count" then
    if v < 0 or v ~= math.floor(v) or v > core.procs_max then
      fail("%s must be a whole number from 0 to %d, got %s", k, core.procs_max, shown(v))
    end
  elseif kind == "concurrency" then
    if v < 1 or v ~= math.floor(v) or v > core.concurrency_max then
      fail("%s must be a whole number from 1 to %d (jobs a process holds at once), got %s", k,
        core.concurrency_max, shown(v))
    end
  elseif kind == "number" then
    if v < 0 or v ~= math.floor(v) or v > 1000000000 then
      fail("%s must be a whole number from 0 to 1000000000, got %s", k, shown(v))
    end
  elseif kind == "seconds" then
    if v < 0 or v ~= math.floor(v) or v > 31536000 then
      fail("%s must be a whole number of seconds from 0 to 31536000, got %s", k, shown(v))
    end
  elseif kind == "duration" then
    if not (v >= 0 and v <= 86400) then
      fail("%s must be a number of seconds from 0 to 86400, got %s", k, shown(v))
    end
  elseif kind == "rate" then
    -- "100/s", "30/m", "1000/h": jobs started per second, minute or hour.
    local n, unit
    if type(v) == "string" then
      n, unit = v:match("^%s*(%d+%.?%d*)%s*/%s*([smh])%s*$")
    end
    n = tonumber(n)
    if n == nil or n <= 0 or n > 1000000 then
      fail("%s must be a string such as \"100/s\", \"30/m\" or \"1000/h\" (from 0 to 1000000 a unit), got %s",
        k, type(v) == "string" and ("%q"):format(v) or tostring(v))
    end
    return n / ({ s = 1, m = 60, h = 3600 })[unit]
  elseif kind == "name" then
    if v == "" then
      fail("%s must be a non-empty string, got an empty name", k)
    end
  elseif kind == "method" then
    if v == true then
      -- Gearman::Driver's bare Encode / Decode: the method named encode / decode.
      if type(w[k]) ~= "function" then
        fail("%s = true means the worker's method %s, which the worker does not define", k, k)
      end
      return w[k]
    elseif type(v) == "string" then
      if type(w[v]) ~= "function" then
        fail("%s names method %s, which the worker does not define", k, v)
      end
      return w[v]
    elseif type(v) ~= "function" then
      fail("%s must be true, a method name or a function, got %s", k, shown(v))
    end
  end
  return v
end

-- A job's attributes: the layers merged first (default_attributes, the
-- job's own, override_attributes: a later one wins), then each value
-- checked, unknown names first, then in ATTRIBUTES order. Returns the
-- values and the set of names some layer gave (the rest take defaults).
local function job_attributes(j, w, defaults, overrides)
  local merged, from = {}, {}
  for _, layer in ipairs({ { defaults, "default_attributes" }, { j.attrs }, { overrides, "override_attributes" } }) do
    for k, v in pairs(layer[1]) do
      merged[k], from[k] = v, layer[2] or false
    end
  end
  local unknown = {}
  for k in pairs(merged) do
    if ATTRIBUTE_KIND[k] == nil then unknown[#unknown + 1] = k end
  end
  table.sort(unknown, function(x, y) return tostring(x) < tostring(y) end)
  for _, k in ipairs(unknown) do
    check_attribute(j, k, merged[k], from[k] or nil, w)
  end
  local a, given = {}, {}
  for _, name in ipairs(ATTRIBUTE_NAMES) do
    if merged[name] ~= nil then
      a[name] = check_attribute(j, name, merged[name], from[name] or nil, w)
      given[name] = true
    end
  end
  -- Gearman::Driver's defaults: 1 and 1. With only min_processes given it
  -- runs that many processes: max_processes follows a larger min.
  a.min_processes = a.min_processes or 1
  a.max_processes = a.max_processes or math.max(1, a.min_processes)
  return a, given
end

-- A pool being built by the module that is loading: a new one, or a copy
-- of one an earlier module made (so that a module that fails changes none).
local function stage_pool(pname, new_pools, w, process_name, j)
  local pt = new_pools[pname]
  if pt then return pt end
  local old = pools_by_name[pname]
  if old then
    pt = {}
    for k, v in pairs(old) do pt[k] = v end
    pt.functions = { unpack(old.functions) }
  else
    local orig = "gdlua: worker"
    local title = orig .. " " .. pname
    if process_name then
      -- Gearman::Driver keeps the original title when process_name returns false.
      local t = process_name(w, orig, pname)
      if type(t) == "number" then t = tostring(t) end
      if t ~= nil and t ~= false and type(t) ~= "string" then
        error(("%s: job %q: process_name must return a string, or nil for the default title (got %s)")
          :format(j.where, j.name, type(t)), 0)
      end
      if t and t ~= "" then title = t end
    end
    pt = { name = pname, title = title, functions = {}, min_processes = 1, max_processes = 1 }
  end
  new_pools[pname] = pt
  new_pools[#new_pools + 1] = pt
  return pt
end

local CHAR_NAMES = { [9] = "tab", [10] = "newline", [13] = "carriage return", [32] = "space" }

-- gearmand's admin protocol is tab- and line-separated and the console's
-- space-separated: a name with such a character would break both.
local function check_name(j, what, name)
  local at = name:find("[%c ]")
  if at then
    local b = name:byte(at)
    local function shown(s)
      return (s:gsub("%c", function(c) return ("\\%d"):format(c:byte()) end))
    end
    error(("%s: job \"%s\": %s name \"%s\" has a %s at byte %d; names may not contain spaces or control characters")
      :format(j.where, shown(j.name), what, shown(name), CHAR_NAMES[b] or ("control character \\" .. b), at), 0)
  end
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
    local a, given = job_attributes(j, w, defaults, overrides)
    if a.max_processes < a.min_processes then
      error(("%s: job %q: max_processes must be >= min_processes (got %d < %d)")
        :format(j.where, j.name, a.max_processes, a.min_processes), 0)
    end
    local fname = prefix .. j.name
    check_name(j, "function", fname)
    local other = functions[fname] or new_functions[fname]
    if other then
      error(("%s: job %q: function %s is already defined at %s")
        :format(j.where, j.name, fname, other.where), 0)
    end
    new_functions[fname] = {
      worker = w, fn = j.fn, where = j.where,
      decode = a.decode, encode = a.encode,
      begin = rawget(w, "begin"), finish = finish,
      retries = a.retries or 0, retry_backoff = a.retry_backoff or 1,
      timeout = a.timeout,
    }
    local pname = a.process_group and prefix .. a.process_group or fname
    check_name(j, "process group", pname)
    local pt = stage_pool(pname, new_pools, w, process_name, j)
    pt.functions[#pt.functions + 1] = fname
    -- A group's min and max come from the members that give them (the
    -- most demanding one when several do); the defaults fill in the rest.
    if given.min_processes then
      pt.min_given = math.max(pt.min_given or 0, a.min_processes)
    end
    if given.max_processes then
      pt.max_given = math.max(pt.max_given or 0, a.max_processes)
    end
    pt.min_processes = pt.min_given or 1
    pt.max_processes = pt.max_given or math.max(1, pt.min_processes)
    if pt.max_processes < pt.min_processes then
      error(("%s: job %q: max_processes must be >= min_processes (got %d < %d) in process group %s")
        :format(j.where, j.name, pt.max_processes, pt.min_processes, pname), 0)
    end
    if a.max_idle_time then
      pt.max_idle_time = math.max(pt.max_idle_time or 0, a.max_idle_time)
    end
    -- A group's rate limit is the strictest its members give: it guards
    -- what they call.
    if a.rate_limit then
      pt.rate_limit = math.min(pt.rate_limit or math.huge, a.rate_limit)
    end
    -- A group holds as many jobs at once as its most cautious member
    -- allows: a member whose code blocks would hold the others.
    if a.concurrency then
      pt.concurrency = math.min(pt.concurrency or math.huge, a.concurrency)
    end
    -- A group's jobs share its processes, so the longest timeout holds,
    -- and the most lenient limits.
    for _, k in ipairs({ "timeout", "max_attempts", "max_jobs", "max_memory" }) do
      if a[k] then
        pt[k] = math.max(pt[k] or 0, a[k])
      end
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
  -- os.exit at load time would end the master, silently: refuse it.
  local exit = os.exit
  os.exit = function(code)
    error(("os.exit(%s) called while loading the module; a module must not end the master")
      :format(tostring(code)), 2)
  end
  local ok, res = xpcall(chunk, load_error, module, path)
  os.exit = exit
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
    local old = pools_by_name[pt.name]
    if old then
      -- Update in place: the table stays the one listed in M._pools.
      for k in pairs(old) do old[k] = nil end
      for k, v in pairs(pt) do old[k] = v end
    else
      pools_by_name[pt.name] = pt
      pools[#pools + 1] = pt
    end
  end
  return n
end

-- What a job's error() gave, as a message: error(nil), error({}) and
-- the like are said in words.
local function error_message(e)
  local t = type(e)
  if t == "string" or t == "number" then
    return tostring(e)
  end
  local mt = getmetatable(e)
  if t == "table" and type(mt) == "table" and mt.__tostring then
    return tostring(e)
  end
  return ("the job raised an error with a %s value, not a message (error(%s)); raise a string"):format(t, t)
end

-- A retry request: what error(gdlua.retry(...)) raises.
local Retry = {}
Retry.__index = Retry
Retry.__tostring = function(r) return r.why end

-- How many reruns a job that asks for them without a max, and without a
-- retries attribute, gets (Celery's max_retries default).
local RETRY_MAX_DEFAULT = 3

-- gdlua.retry("why") or gdlua.retry{"why", delay = S, max = N}: an error
-- value asking for the job to be run again in this process, after S
-- seconds (default: the job's retry_backoff, doubling), at most N reruns
-- (default: the job's retries, or 3 when it has none).
function M.retry(arg)
  local why, delay, max
  if type(arg) == "table" and getmetatable(arg) == nil then
    why, delay, max = arg[1] or arg.why, arg.delay, arg.max
  else
    why = arg
  end
  if why == nil then
    why = "the job asked for a retry"
  elseif type(why) ~= "string" and type(why) ~= "number" then
    error("gdlua.retry: the reason must be a string, got " .. type(why), 2)
  end
  if delay ~= nil and (type(delay) ~= "number" or not (delay >= 0 and delay <= 86400)) then
    error("gdlua.retry: delay must be a number of seconds from 0 to 86400, got " .. tostring(delay), 2)
  end
  if max ~= nil and (type(max) ~= "number" or max < 0 or max ~= math.floor(max) or max > 1000000000) then
    error("gdlua.retry: max must be a whole number from 0 to 1000000000, got " .. tostring(max), 2)
  end
  return setmetatable({ why = tostring(why), delay = delay, max = max }, Retry)
end

local function job_error(e)
  local msg = error_message(e)
  return { msg = msg, trace = debug.traceback(msg, 2), retry = getmetatable(e) == Retry and e or nil }
end

-- Runs one gearman job in Gearman::Driver's order: decode, begin, the
-- job, end, encode. end runs after the job, also when the job failed; not
-- when decode or begin failed (the job did not run). encode runs only
-- after a success. Returns true, result or false, message, traceback,
-- and true as a fourth value when the process should be replaced (it ran
-- out of memory: LuaJIT then calls no error handler, and what the job
-- grabbed may stay in the process). The C caller passes the function name
-- and the workload too: two field reads through the job's metatable less,
-- and which run of the job this is (1 the first). A failure the job may
-- be run again for adds, as fifth and sixth values, the seconds to wait
-- and whether they are exact (gdlua.retry's delay) or the base of the
-- doubling back-off (retry_backoff); the C caller waits and runs it again.
-- A function's own timeout attribute (nil: none given). A concurrent
-- process times each job by its own function's (its group's longest holds
-- for one job at a time).
function M._timeout_of(function_name)
  local f = functions[function_name]
  return f and f.timeout
end

function M._dispatch(job, function_name, workload, run)
  local f = functions[function_name]
  if f == nil then
    return false, "no such function: " .. tostring(function_name), ""
  end
  local w, ok, res = f.worker, true, nil
  local decoded = true -- a workload that cannot be decoded fails every run alike: not retried
  if f.decode then
    ok, res = xpcall(f.decode, job_error, w, workload)
    if ok then workload = res else decoded = false end
  end
  if ok and f.begin then
    ok, res = xpcall(f.begin, job_error, w, job, workload)
  end
  if ok then
    ok, res = xpcall(f.fn, job_error, w, job, workload)
    if f.finish then
      local fok, fres = xpcall(f.finish, job_error, w, job, workload)
      if ok and not fok then
        ok, res = fok, fres
      end
    end
  end
  if ok and f.encode then
    ok, res = xpcall(f.encode, job_error, w, res)
  end
  if not ok and type(res) ~= "table" then
    collectgarbage()
    local msg = tostring(res) .. "; the process will be replaced"
    return false, msg, msg, true
  end
  if not ok then
    run = run or 1
    local r, msg = res.retry, res.msg
    -- A plain error is retried only when the job has retries; a request
    -- (gdlua.retry) up to its own max, or the job's retries, or 3.
    local max = f.retries
    if r then
      max = r.max or (f.retries > 0 and f.retries or RETRY_MAX_DEFAULT)
    end
    if decoded and run <= max then
      if r and r.delay then
        return false, msg, res.trace, false, r.delay, true
      end
      return false, msg, res.trace, false, f.retry_backoff, false
    end
    if run > 1 then
      msg = ("%s (run %d times: %d %s)"):format(msg, run, run - 1, run == 2 and "retry" or "retries")
    end
    return false, msg, res.trace
  end
  return true, res
end

return M
