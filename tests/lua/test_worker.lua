-- test_worker.lua: the worker API of lua/gdlua/init.lua: definitions,
-- attribute merging, validation and its messages, prefixes, groups, and
-- the dispatch order of decode, begin, job, end and encode (Gearman::Driver's).
-- Run by ctest as: gdlua run test_worker.lua (from tests/lua)
local gdlua = require "gdlua"
local core = require "gdlua.core"

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

-- names that would break gearmand's admin protocol or the console are
-- refused, the bad character named and shown escaped
for _, case in ipairs({
  { '"a\\tb"', nil, 'job "a\\9b": function name "T::Names::a\\9b" has a tab at byte 12' },
  { '"a\\nb"', nil, 'job "a\\10b": function name "T::Names::a\\10b" has a newline at byte 12' },
  { '"a\\rb"', nil, 'has a carriage return at byte 12' },
  { '"a b"', nil, 'function name "T::Names::a b" has a space at byte 12' },
  { '"a\\1b"', nil, 'has a control character \\1 at byte 12' },
  { '"ok"', '"g x"', 'job "ok": process group name "T::Names::g x" has a space at byte 12' },
}) do
  n, err = module(([[
local W = require("gdlua").worker()
W:job(%s, { process_group = %s }, function() end)
return W
]]):format(case[1], case[2] or "nil"), "T::Names")
  check_eq(n, nil, "bad name refused: " .. case[1])
  check(err and err:find(case[3], 1, true) ~= nil, "bad name message: " .. tostring(err))
  check(err and not err:find("\n", 1, true), "bad name message on one line: " .. tostring(err))
end

-- os.exit at load time is an error of that module, not the master's end
local real_exit = os.exit
n, err = module([[
os.exit(0)
]], "T::Exits")
check_eq(n, nil, "os.exit at load refused")
check_match(err, "T_Exits.lua:1: os.exit(0) called while loading the module", "os.exit message")
check(os.exit == real_exit, "os.exit restored after the load")

-- invalid attributes name module file:line, job, attribute and value
local max = core.procs_max
local bad = {
  { "{ min_processes = 1, max_processes = 0 }", "max_processes must be >= min_processes (got 0 < 1)" },
  { "{ colour = 'red' }", "unknown attribute colour = \"red\"" },
  { "{ min_processes = -1 }", "min_processes must be a whole number from 0 to " .. max .. ", got -1" },
  { "{ max_processes = 'many' }", 'max_processes: expected a number, got "many"' },
  { "{ min_processes = 1.5 }", "min_processes must be a whole number from 0 to " .. max .. ", got 1.5" },
  { "{ max_processes = " .. (max + 1) .. " }", "max_processes must be a whole number from 0 to " .. max },
  { "{ process_group = 3 }", "process_group: expected a string, got 3" },
  { "{ encode = 'nosuch' }", "encode names method nosuch, which the worker does not define" },
  { "{ decode = 42 }", "decode must be true, a method name or a function, got 42" },
  -- a bare Encode/Decode means the worker's encode/decode method
  { "{ encode = true }", "encode = true means the worker's method encode, which the worker does not define" },
  { "{ decode = true }", "decode = true means the worker's method decode, which the worker does not define" },
  { "{ decode = false }", "decode must be true, a method name or a function, got false" },
  { "{ concurrency = 0 }", "concurrency must be a whole number from 1 to " .. core.concurrency_max
    .. " (jobs a process holds at once), got 0" },
  { "{ concurrency = 2.5 }", "concurrency must be a whole number from 1 to 10000 (jobs a process holds at once), got 2.5" },
  { "{ concurrency = 10001 }", "concurrency must be a whole number from 1 to 10000 (jobs a process holds at once), got 10001" },
  { "{ concurrency = '8' }", 'concurrency: expected a number, got "8"' },
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

-- the attributes are one ordered list: the lookup, the "known:" list of
-- the unknown-attribute message and README's table all follow it
local attrs = gdlua._attributes
check(type(attrs) == "table" and #attrs > 0, "gdlua._attributes is the ordered attribute list")
local names = {}
for i, a in ipairs(attrs or {}) do names[i] = a[1] end
local known = table.concat(names, ", ")
n, err = module([[
local W = require("gdlua").worker()
W:job("j", { colour = "red" }, function() end)
return W
]], "T::Known")
check_match(err, "(known: " .. known .. ")", "unknown-attribute message lists the attributes in order")
local documented, in_table = {}, false
for line in io.lines("../../README.md") do
  if line == "### Job attributes" then
    in_table = true
  elseif in_table and line:match("^#") then
    break
  elseif in_table then
    local a = line:match("^| `([%w_]+)` |")
    if a then documented[#documented + 1] = a end
  end
end
check_eq(table.concat(documented, ", "), known, "README's attribute table")

-- encode = true / decode = true: the worker's own encode/decode methods
-- (Gearman::Driver's bare Encode and Decode)
n, err = module([[
local W = require("gdlua").worker()
function W:decode(s) local t = {} for x in s:gmatch("[^,]+") do t[#t + 1] = x end return t end
function W:encode(t) return table.concat(t, "+") end
W:job("bare", { decode = true, encode = true }, function(self, job, t) table.sort(t) return t end)
return W
]], "T::BareCodec")
check_eq(n, 1, "T::BareCodec functions " .. tostring(err))
local ok, res = gdlua._dispatch({ function_name = "T::BareCodec::bare", workload = "c,a,b" }, "T::BareCodec::bare", "c,a,b")
check_eq(ok, true, "bare codec job succeeds " .. tostring(res))
check_eq(res, "a+b+c", "decode = true and encode = true call W:decode and W:encode")

-- attributes are merged first (defaults, default_attributes, the job's
-- own, override_attributes) and validated after: a value that a later
-- layer replaces is never checked
n, err = module([[
local W = require("gdlua").worker()
function W:decode(s) return s:reverse() end
function W:upper(r) return r:upper() end
W.default_attributes = { max_processes = "lots", decode = true }
function W:override_attributes() return { encode = "upper" } end
W:job("j", { encode = "invalid", max_processes = 2 }, function(self, job, w) return "j:" .. w end)
return W
]], "T::Layers")
check_eq(n, 1, "an invalid value replaced by a later layer loads: " .. tostring(err))
check_eq(find_job("T::Layers::j") and find_job("T::Layers::j").max_processes, 2, "the job's own max_processes")
ok, res = gdlua._dispatch({ function_name = "T::Layers::j", workload = "abc" }, "T::Layers::j", "abc")
check_eq(res, "J:CBA", "default decode = true and override encode apply")

-- an invalid value from a layer names the job's file:line and the layer
local layered = {
  { "W.override_attributes = { min_processes = -1 }",
    'job "j": min_processes must be a whole number from 0 to ' .. max .. ", got -1 (from override_attributes)" },
  { "function W:default_attributes() return { colour = 'red' } end",
    'job "j": unknown attribute colour = "red" (from default_attributes; known: ' .. known .. ")" },
  { "W.default_attributes = { encode = true }",
    [[job "j": encode = true means the worker's method encode, which the worker does not define (from default_attributes)]] },
}
for i, case in ipairs(layered) do
  local name = "T::Layered" .. i
  n, err = module(([[
local W = require("gdlua").worker()
%s
W:job("j", function() end)
return W
]]):format(case[1]), name)
  check_eq(n, nil, name .. " refused")
  check_match(err, ":3: " .. case[2], name .. " message")
end

-- max_processes defaults to 1, or to min_processes when that is larger
-- (Gearman::Driver runs min_processes processes then); given, it must be
-- >= min_processes
n, err = module([[
local W = require("gdlua").worker()
W:job("three", { min_processes = 3 }, function() end)
W:job("zero", { min_processes = 0 }, function() end)
return W
]], "T::MinOnly")
check_eq(n, 2, "min_processes alone loads: " .. tostring(err))
check_eq(find_job("T::MinOnly::three") and find_job("T::MinOnly::three").max_processes, 3, "max follows a larger min")
check_eq(find_job("T::MinOnly::zero") and find_job("T::MinOnly::zero").max_processes, 1, "max stays 1 above min 0")
n, err = module([[
local W = require("gdlua").worker()
W.default_attributes = { max_processes = 2 }
W:job("j", { min_processes = 3 }, function() end)
return W
]], "T::MinOverMax")
check_match(err, ':3: job "j": max_processes must be >= min_processes (got 2 < 3)', "a given max below min is refused")

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

-- a group's min/max come from the members that set them (Gearman::Driver:
-- set them once per group); a member that sets nothing adds no default
n, err = module([[
local W = require("gdlua").worker()
W:job("a", { process_group = "g", min_processes = 0, max_processes = 2 }, function() end)
W:job("b", { process_group = "g" }, function() end)
W:job("c", { process_group = "h" }, function() end)
W:job("d", { process_group = "h", min_processes = 4 }, function() end)
return W
]], "T::Grp")
check_eq(n, 4, "T::Grp functions " .. tostring(err))
g = find_job("T::Grp::g")
check_eq(g and g.min_processes, 0, "group min from the member that sets it")
check_eq(g and g.max_processes, 2, "group max from the member that sets it")
local h = find_job("T::Grp::h")
check_eq(h and h.min_processes, 4, "group min set by a later member")
check_eq(h and h.max_processes, 4, "group max follows its min")
n, err = module([[
local W = require("gdlua").worker()
W:job("a", { process_group = "g", max_processes = 2 }, function() end)
W:job("b", { process_group = "g", min_processes = 5 }, function() end)
return W
]], "T::GrpClash")
check_eq(n, nil, "a group whose members' min exceeds their max is refused")
check_match(err, ':3: job "b": max_processes must be >= min_processes (got 2 < 5) in process group T::GrpClash::g',
  "group clash message")

-- a module that fails adds nothing to a group another module made
n, err = module([[
local W = require("gdlua").worker()
W.prefix = "shared."
W:job("x", { process_group = "pg" }, function() end)
return W
]], "T::Share1")
check_eq(n, 1, "T::Share1 functions " .. tostring(err))
n, err = module([[
local W = require("gdlua").worker()
W.prefix = "shared."
W:job("y", { process_group = "pg", max_processes = 3 }, function() end)
W:job("z", { colour = "red" }, function() end)
return W
]], "T::Share2")
check_eq(n, nil, "T::Share2 refused")
local pg = find_job("shared.pg")
check_eq(pg and #pg.functions, 1, "the group keeps only its first module's function")
check_eq(pg and pg.max_processes, 1, "the group keeps its max_processes")

-- process_name returning nothing keeps the default title (Gearman::Driver
-- keeps $0 when it returns false); a value that is no string is an error
n, err = module([[
local W = require("gdlua").worker()
function W:process_name(orig, job_name) if job_name:find("custom") then return "t " .. job_name end end
W:job("plain", function() end)
W:job("custom", function() end)
return W
]], "T::Title")
check_eq(n, 2, "T::Title functions " .. tostring(err))
check_eq(find_job("T::Title::plain") and find_job("T::Title::plain").title, "gdlua: worker T::Title::plain",
  "process_name returning nil keeps the default title")
check_eq(find_job("T::Title::custom") and find_job("T::Title::custom").title, "t T::Title::custom",
  "process_name's title")
n, err = module([[
local W = require("gdlua").worker()
function W:process_name() return {} end

W:job("j", function() end)
return W
]], "T::BadTitle")
check_eq(n, nil, "process_name returning a table is refused")
check_match(err, ':4: job "j": process_name must return a string, or nil for the default title (got table)',
  "process_name message")

-- dispatch: decode, begin, job, end, encode (Gearman::Driver's order); end
-- runs after the job, also when it failed, but not when decode or begin
-- failed (the job did not run); encode runs only after a success
local order = {}
n, err = module([[
local W = require("gdlua").worker()
local order = ...
function W:dec(s) table.insert(ORDER, "decode " .. s) if s == "nodecode" then error("decode refused") end return s:reverse() end
W:job("ok", { decode = "dec", encode = function(self, r) table.insert(ORDER, "encode") return r:upper() end },
  function(self, job, workload) table.insert(ORDER, "job " .. workload) return workload .. "!" end)
W:job("fails", { encode = function(self, r) table.insert(ORDER, "encode") return r end },
  function(self, job, workload) table.insert(ORDER, "job") error("bad input") end)
W:job("table", function() return {} end)
W:job("num", function() return 2^40 end)
function W:begin(job, workload) table.insert(ORDER, "begin " .. workload) if workload == "nigeb" then error("begin refused") end end
W["end"] = function(self, job, workload)
  table.insert(ORDER, "end " .. workload)
  if workload == "dne" then error("end refused") end
end
return W
]], "T::Hooks")
check_eq(n, 4, "T::Hooks functions " .. tostring(err))
ORDER = order
local function run(fname, workload)
  for i = #order, 1, -1 do order[i] = nil end
  local rok, rres, rtrace = gdlua._dispatch({ function_name = fname, workload = workload }, fname, workload)
  return rok, rres, rtrace, table.concat(order, ",")
end
local seen, msg, trace
ok, res, _, seen = run("T::Hooks::ok", "cba")
check_eq(ok, true, "ok job succeeds")
check_eq(res, "ABC!", "decode then encode")
check_eq(seen, "decode cba,begin abc,job abc,end abc,encode", "hook order")

ok, msg, trace, seen = run("T::Hooks::fails", "w")
check_eq(ok, false, "failing job fails")
check_match(msg, ":7: bad input", "failure message with line")
check_match(trace, "stack traceback", "failure carries a traceback")
check_eq(seen, "begin w,job,end w", "end runs after a failure, encode does not")

ok, msg, _, seen = run("T::Hooks::ok", "begin")
check_eq(ok, false, "a failing begin fails the job")
check_match(msg, "begin refused", "begin's message")
check_eq(seen, "decode begin,begin nigeb", "no job and no end after a failing begin")

ok, msg, _, seen = run("T::Hooks::ok", "nodecode")
check_eq(ok, false, "a failing decode fails the job")
check_match(msg, "decode refused", "decode's message")
check_eq(seen, "decode nodecode", "no begin, job or end after a failing decode")

ok, msg, _, seen = run("T::Hooks::ok", "end")
check_eq(ok, false, "a failing end fails the job")
check_match(msg, "end refused", "end's message")
check_eq(seen, "decode end,begin dne,job dne,end dne", "no encode after a failing end")

ok, res = gdlua._dispatch({ function_name = "T::Hooks::num", workload = "" }, "T::Hooks::num", "")
check_eq(res, 2 ^ 40, "numbers are returned as numbers (C formats them)")
ok, msg = gdlua._dispatch({ function_name = "T::Nope", workload = "" }, "T::Nope", "")
check_eq(ok, false, "unknown function fails")

t.finish()
