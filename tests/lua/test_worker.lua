-- test_worker.lua: the worker API of lua/gdlua/init.lua: definitions,
-- attribute validation and its messages, prefixes, groups, and the
-- dispatch order of decode, begin, job, encode and end.
-- Run by ctest as: gdlua run test_worker.lua
local gdlua = require "gdlua"

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require "testlib"
local check, check_eq, check_match = t.check, t.check_eq, t.check_match

local tmp = os.tmpname()
local function module(src, name)
  local path = tmp .. "_" .. name:gsub("::", "_") .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  local n, err = gdlua._load(path, name)
  os.remove(path)
  return n, err, path
end

local function find_job(name)
  for _, j in ipairs(gdlua._pools) do
    if j.name == name then return j end
  end
end

-- outside a module, a worker needs a name
check(not pcall(gdlua.worker), "worker() without a module or name raises")
local w = gdlua.worker("Loose")
check_eq(w._name, "Loose", "named worker")
check(not pcall(w.job, w, "", function() end), "empty job name raises")
check(not pcall(w.job, w, "x", 5, function() end), "non-table attributes raise")
check(not pcall(w.job, w, "x", {}), "missing function raises")

-- a module: default prefix, default attributes, job numbers
local n, err = module([[
local gdlua = require "gdlua"
local W = gdlua.worker()
W:job("a", function(self, job, workload) return workload end)
W:job("b", { min_processes = 0, max_processes = 3 }, function() return 1 end)
return W
]], "T::Basic")
check_eq(n, 2, "T::Basic functions " .. tostring(err))
local a = find_job("T::Basic::a")
check(a ~= nil, "T::Basic::a is a job")
check_eq(a and a.min_processes, 1, "default min_processes")
check_eq(a and a.max_processes, 1, "default max_processes")
check_eq(a and a.title, "gdlua: worker T::Basic::a", "default title")
local b = find_job("T::Basic::b")
check_eq(b and b.max_processes, 3, "b max")
check_eq(b and b.min_processes, 0, "b min")

-- the same function twice is refused
n, err = module([[
local W = require("gdlua").worker("T::Basic")
W:job("a", function() end)
return W
]], "T::Again")
check_eq(n, nil, "duplicate function refused")
check_match(err, "function T::Basic::a is already defined at", "duplicate message")

-- invalid attributes name module file:line, job, attribute and value
local bad = {
  { "{ min_processes = 1, max_processes = 0 }", "max_processes must be >= min_processes (got 0 < 1)" },
  { "{ colour = 'red' }", "unknown attribute colour = red" },
  { "{ min_processes = -1 }", "min_processes must be a whole number from 0 to 1024, got -1" },
  { "{ max_processes = 'many' }", "max_processes must be a whole number from 0 to 1024, got many" },
  { "{ min_processes = 1.5 }", "min_processes must be a whole number from 0 to 1024, got 1.5" },
  { "{ process_group = 3 }", "process_group must be a non-empty string, got 3" },
  { "{ encode = 'nosuch' }", "encode names method nosuch, which the worker does not define" },
  { "{ decode = 42 }", "decode must be a function or a method name, got number" },
}
for i, case in ipairs(bad) do
  local name = "T::Bad" .. i
  n, err = module(([[
local W = require("gdlua").worker()

W:job("j", %s, function() end)
return W
]]):format(case[1]), name)
  check_eq(n, nil, name .. " refused")
  check_match(err, ':3: job "j": ' .. case[2], name .. " message")
  check_eq(find_job(name .. "::j"), nil, name .. " left no job behind")
end

-- load errors carry file and line
n, err = module("local x = = 1\n", "T::Syntax")
check_eq(n, nil, "syntax error refused")
check_match(err, ":1:", "syntax error names the line")
n, err = module("\nerror('boom')\n", "T::Runtime")
check_eq(n, nil, "runtime error refused")
check_match(err, ":2: boom", "runtime error names the line")

-- prefix, default/override attributes, process_name, groups
n, err = module([[
local W = require("gdlua").worker()
W.prefix = ""
W.default_attributes = { max_processes = 4 }
function W:override_attributes() return { min_processes = 2 } end
function W:process_name(orig, job_name) return orig .. " (" .. job_name .. ")" end
W:job("bare1", { process_group = "grp", min_processes = 0 }, function() return gdlua.pid() end)
W:job("bare2", { process_group = "grp" }, function() return gdlua.pid() end)
W:job("solo", function() end)
return W
]], "T::Prefix")
check_eq(n, 3, "T::Prefix functions " .. tostring(err))
local g = find_job("grp")
check(g ~= nil, "group job named by bare prefix")
check_eq(g and #g.functions, 2, "group has both functions")
check_eq(g and g.functions[1], "bare1", "group member 1")
check_eq(g and g.min_processes, 2, "override wins over the job's attribute")
check_eq(g and g.max_processes, 4, "default applies")
check_eq(g and g.title, "gdlua: worker (grp)", "process_name hook")
check(find_job("solo") ~= nil, "bare solo function")

-- dispatch: decode, begin, job, encode, end; end runs after a failure too
local order = {}
n, err = module([[
local W = require("gdlua").worker()
local order = ...
function W:dec(s) return s:reverse() end
W:job("ok", { decode = "dec", encode = function(self, r) return r:upper() end },
  function(self, job, workload) table.insert(ORDER, "job " .. workload) return workload .. "!" end)
W:job("fails", function(self, job, workload) table.insert(ORDER, "job") error("bad input") end)
W:job("table", function() return {} end)
W:job("num", function() return 2^40 end)
function W:begin(job, workload) table.insert(ORDER, "begin " .. workload) end
W["end"] = function(self, job, workload) table.insert(ORDER, "end " .. workload) end
return W
]], "T::Hooks")
check_eq(n, 4, "T::Hooks functions " .. tostring(err))
ORDER = order
local ok, res = gdlua._dispatch({ function_name = "T::Hooks::ok", workload = "cba" })
check_eq(ok, true, "ok job succeeds")
check_eq(res, "ABC!", "decode then encode")
check_eq(table.concat(order, ","), "begin abc,job abc,end abc", "hook order")

for i = #order, 1, -1 do order[i] = nil end
local msg, trace
ok, msg, trace = gdlua._dispatch({ function_name = "T::Hooks::fails", workload = "w" })
check_eq(ok, false, "failing job fails")
check_match(msg, ":6: bad input", "failure message with line")
check_match(trace, "stack traceback", "failure carries a traceback")
check_eq(table.concat(order, ","), "begin w,job,end w", "end runs after a failure")

ok, res = gdlua._dispatch({ function_name = "T::Hooks::num", workload = "" })
check_eq(res, 2 ^ 40, "numbers are returned as numbers (C formats them)")
ok, msg = gdlua._dispatch({ function_name = "T::Nope", workload = "" })
check_eq(ok, false, "unknown function fails")

t.finish()
