-- test_testing.lua: gdlua.testing (lua/gdlua/testing.lua): loading job
-- modules as gdlua does, calls with the recording job object, the eager
-- client, and "gdlua test" on the fixtures in testing/ (its output, file
-- and line of each failure, exit status).
-- Run by ctest as: gdlua run test_testing.lua (from tests/lua)
local t = require "gdlua.testing"
local core = require "gdlua.core"

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local tl = require "testlib"
local check, check_eq, check_match = tl.check, tl.check_eq, tl.check_match

local function raises(fn, ...)
  local ok, err = pcall(fn, ...)
  return not ok and tostring(err) or nil
end

-- ---- loading ----

local err = raises(require("gdlua").worker)
check_match(err, 'give a name when not loading a job module (to load one from a test or a script, use '
  .. 'require("gdlua.testing").load(PATH), or gdlua test', "worker() outside a module points to gdlua.testing")

local jobs = t.load("testing/jobs", "T/Calls.lua")
check_eq(jobs[1], "T::Calls::bad_data", "functions sorted, named from the path below the script directory")
check_eq(#jobs, 15, "Calls.lua's functions")
check_eq(jobs["T::Calls::square"] and jobs["T::Calls::square"].module, "T::Calls", "module name")
check_eq(jobs["T::Calls::square"] and jobs["T::Calls::square"].path, "testing/jobs/T/Calls.lua", "module path")
check_eq(#t.load("testing/jobs/", "T/Calls.lua"), 15, "loading a module again returns what it loaded")

local all = t.load("testing/jobs")
check_eq(#all, 17, "a directory: every module below it")
local wrap = all["H::wrap"] or {}
check_eq(wrap.module, "T::Hooks", "the prefix hook names the functions, the path the module")
check_eq(wrap.min_processes, 0, "attributes: min_processes")
check_eq(wrap.max_processes, 3, "attributes: max_processes")
check_eq(wrap.pool, "H::wrap", "attributes: the pool")
check_eq(all["T::Calls::square"].max_processes, 1, "attributes: the defaults")

err = raises(t.load, "testing/badjobs", "T/Typo.lua")
check_match(err, 'module T::Typo not loaded: testing/badjobs/T/Typo.lua:2: job "x": unknown attribute '
  .. 'max_procesess = 2', "an attribute typo fails the load with the module's file and line")
err = raises(t.load, "testing/badjobs", "T/LoadCall.lua")
check_match(err, "module T::LoadCall not loaded: ", "a call at load time fails the load")
check_match(err, "gdlua.client: calls run in worker processes and scripts, not while the master loads modules",
  "with the master's message")
check_match(raises(t.load, "/abs/jobs/My/Text.lua"), "cannot tell the script directory its name comes from",
  "an absolute path needs its script directory")
check_match(raises(t.load, "testing/no_such_dir"), "cannot read script directory testing/no_such_dir",
  "a missing directory")
check_match(raises(t.load, "testing/jobs", "T/Nope.lua"), "module T::Nope not loaded: cannot open", "a missing file")

-- ---- calls and the job object ----

local result, job = t.call("T::Calls::fields", "w", { unique = "u-1" })
check_match(result, "userdata|T::Calls::fields|H:gdlua-test:", "the job object: type, function_name, handle")
check_match(result, "|u-1|w", "the job object: unique, workload")
check_eq(job.unique, "u-1", "the record: unique")
check_match(t.call("T::Calls::fields", "w"), "-0000-4000-8000-", "a unique id when none is given")

result, job = t.call("T::Calls::progress", "")
check_eq(result, "true,true,true", "status, data and warning return true")
check_eq(#job.statuses, 2, "statuses recorded")
check_eq(job.statuses[2] and job.statuses[2][1], 2, "a status as the client gets it: whole numbers")
check_eq(job.data[1], "part one", "data recorded")
check_eq(job.data[2], "42", "data: a number as a string")
check_eq(job.warnings[1], "careful", "warnings recorded")
check_eq(#job.warnings, 1, "one warning")

check_eq(t.call("T::Calls::square", "100000000"), "10000000000000000", "a number result with all its digits")
check_eq(t.call("T::Calls::pi", ""), core.format_number(0.1), "a fraction as a worker sends it")
check_eq(t.call("T::Calls::nothing", ""), "", "nil: an empty result")
check_eq(t.call("T::Calls::yes", ""), "true", "a boolean")
check_eq(t.fails("T::Calls::table", ""),
  "job returned a table; return a string, a number or nil (or use an encode attribute)", "a table fails the job")

local msg
msg, job = t.fails("T::Calls::fail", "x")
check_eq(msg, "failed on x", "t.fails: the message")
check_eq(job.warnings[1], "about to fail", "a failed job's warnings")
check_match(raises(t.call, "T::Calls::fail", "x"), "T::Calls::fail failed: failed on x", "t.call raises on failure")
check_match(raises(t.fails, "T::Calls::square", "2"), 'T::Calls::square did not fail: it returned "4"',
  "t.fails raises on success")
check_match(raises(t.call, "T::Nope::x", ""), "no loaded job module defines T::Nope::x (loaded: ", "an unloaded function")

check_match(t.call("T::Calls::keep", ""), "gdlua.job (H:gdlua-test:", "tostring of a job")
check_match(t.fails("T::Calls::kept", ""), "testing/jobs/T/Calls.lua:71: job object used after its job finished",
  "a job kept past its call, with the line that used it")
check_match(t.fails("T::Calls::bad_status", ""),
  "status: numerator and denominator must be from 0 to 2^32-1, got -1 and 3", "status checks its range")
check_match(t.fails("T::Calls::bad_data", ""), "bad argument #1 to 'data' (string expected, got table)",
  "data checks its argument")

check_eq(t.call("H::wrap", "x"), "<x>!", "decode and encode")
check_eq(t.call("H::order", ""), "decode,begin <x>,job,end,encode", "the hooks' order")

-- ---- the eager client ----

result, job = t.call("T::Calls::sum_squares", "3")
check_eq(result, "14", "a task set run in process")
check_eq(#job.calls, 3, "the calls a job made")
check_eq(job.calls[3] and job.calls[3].kind, "taskset", "a call's kind")
check_eq(job.calls[3] and job.calls[3].workload, "3", "a call's workload")
check_eq(job.calls[3] and job.calls[3].result, "9", "a call's result")
check_eq(job.calls[3] and job.calls[3].job.function_name, "T::Calls::square", "a call's job")

check_eq(t.call("T::Calls::relay", "T::Calls::progress x"),
  "status 1/3; data part one; warning careful; status 2/3; data 42; result true,true,true",
  "client:call's hooks see what the called job sends, as it sends it")
check_eq(t.call("T::Calls::relay", "T::Calls::fail y"),
  "warning about to fail; warning failed on y; ERR failed on y",
  "a called job's failure: its message as the last warning, then nil and the message")
check_match(t.fails("T::Calls::relay", "T::Nope::x"),
  "testing/jobs/T/Calls.lua:52: gdlua.testing: no loaded job module defines T::Nope::x",
  "a job calling an unloaded function fails with the reason and the line of the call")

result, job = t.call("T::Calls::later", "7")
check(result:find("^H:gdlua%-test:%d+$") ~= nil, "background returns a handle, got " .. result)
check_eq(job.calls[1] and job.calls[1].kind, "background", "a background call")
check_eq(job.calls[1] and job.calls[1].result, "49", "a background job has run")

local client = require "gdlua.client"
local c = client.new()
check_eq(c:call("T::Calls::square", "5"), "25", "a client in the test itself")
check_eq(c:call("T::Calls::square", 6), "36", "a number workload, as the real client takes it")
local st = c:status("H:gdlua-test:1")
check_eq(st.known, false, "status: an eager job is done")
local results, failed = c:taskset():add("T::Calls::square", "2"):add("T::Calls::fail", "z"):run()
check_eq(results[1], "4", "task set: a result")
check_eq(results[2], false, "task set: a failure")
check_eq(failed and failed[2], "failed on z", "task set: the failure's message")
check_match(raises(c.call, c, "T::Calls::square", "2", { priority = "urgent" }),
  'gdlua.client: priority must be "normal", "high" or "low", got urgent', "priority checked")
check_match(raises(c.call, c, "T::Calls::square", "2", { unique = 5 }), "gdlua.client: unique must be a string, got number",
  "unique checked")
check_match(raises(c.call, c, "T::Calls::square"), "bad argument #2 to 'call' (string expected, got no value)",
  "the workload checked")
check_match(raises(client.new, { servers = 5 }), "servers must be", "client.new checks its options as the real one")
c:close()
check_match(raises(c.call, c, "T::Calls::square", "2"), "gdlua.client: client is closed", "a closed client")

-- eager off: calls go to gearmand, here a closed port
check_eq(t.eager(false), true, "eager by default")
c = client.new { servers = "127.0.0.1:1", timeout = 5000 }
result, err = c:call("T::Calls::square", "2")
check_eq(result, nil, "eager off: the call went to the server, which is not there")
check_eq(t.eager(true), false, "t.eager returns the setting before")

-- ---- gdlua test ----

local f = assert(io.popen("readlink /proc/" .. core.pid() .. "/exe"))
local gdlua_bin = f:read("*l")
f:close()
local out_file = os.tmpname()

-- Runs gdlua CMD ARGS in testing/; returns its exit status and output.
local function gdlua_cmd(cmd, args)
  local rc = os.execute(("cd testing && %q %s %s > %q 2>&1"):format(gdlua_bin, cmd, args, out_file))
  if type(rc) == "number" and rc > 255 then
    rc = rc / 256
  end
  local fh = assert(io.open(out_file))
  local out = fh:read("*a")
  fh:close()
  return rc, out
end

local function gdlua_test(args)
  return gdlua_cmd("test", args)
end

local rc, out = gdlua_test("pass")
check_eq(rc, 0, "gdlua test pass: exit status (output: " .. out .. ")")
check_match(out, "ok   pass/calls_test.lua:7: a task set of squares, run in process\n", "a passing test, with its line")
check_match(out, "ok   pass/sub/test_hooks.lua:6: each file has its own globals\n", "test_*.lua, in a subdirectory")
check_match(out, "\n5 passed, 0 failed\n", "the summary")
check(not out:find("helper.lua", 1, true), "a file that is no test file is not run")

rc, out = gdlua_test("fail")
check_eq(rc, 1, "gdlua test fail: exit status")
for _, want in ipairs({
  "ok   fail/wrong_test.lua:6: passes\n",
  'FAIL fail/wrong_test.lua:10: a wrong expectation\n     fail/wrong_test.lua:11: got "9", want "10"\n',
  "FAIL fail/wrong_test.lua:14: a job that fails\n     fail/wrong_test.lua:15: T::Calls::fail failed: failed on line 15\n",
  "FAIL fail/wrong_test.lua:22: a check in a helper\n     fail/wrong_test.lua:19: helper: got {1, 3}, want {1, 2}\n",
  "FAIL fail/wrong_test.lua:26: a runtime error\n     fail/wrong_test.lua:28: attempt to index local 'x' (a nil value)\n",
  "FAIL fail/wrong_test.lua:31: an unloaded function\n     fail/wrong_test.lua:32: gdlua.testing: no loaded job module defines T::Nope::x",
  "FAIL fail/syntax_test.lua: (loading the file)\n     fail/syntax_test.lua:3: ",
  "FAIL fail/empty_test.lua: (no test)\n",
  "FAIL fail/top_test.lua: (the file's top level)\n     fail/top_test.lua:2: module T::Typo not loaded: badjobs/T/Typo.lua:2: ",
  "\n1 passed, 8 failed\n",
}) do
  check_match(out, want, "gdlua test fail")
end
check(not out:find("never runs", 1, true), "a file whose top level failed runs no test")

rc, out = gdlua_test("fail/wrong_test.lua pass/calls_test.lua")
check_eq(rc, 1, "files given by name")
check_match(out, "\n4 passed, 5 failed\n", "files given by name: the summary")

rc, out = gdlua_test("no_such_dir")
check_eq(rc, 1, "a missing directory fails")
check_match(out, "cannot read script directory no_such_dir", "a missing directory: the reason")
rc, out = gdlua_test("badjobs")
check_eq(rc, 1, "no test file fails")
check_match(out, "gdlua test: no test file (*_test.lua, test_*.lua) below badjobs", "no test file: the reason")
rc, out = gdlua_test("--bogus")
check_eq(rc, 2, "an unknown option")
check_match(out, "gdlua test: unknown option --bogus\nusage: gdlua test", "an unknown option: the usage")
rc, out = gdlua_test("--help")
check_eq(rc, 0, "--help")
check_match(out, "usage: gdlua test [--lib DIR]... [--cpath DIR]... [DIR|FILE]...", "--help: the usage")
rc, out = gdlua_test("--lib")
check_eq(rc, 2, "--lib without a directory")

rc, out = gdlua_cmd("run", "script.lua")
check_eq(rc, 1, "gdlua run: a failed t.test fails the script")
check_match(out, "ok   script.lua:5: passes\nFAIL script.lua:6: fails\n     script.lua:6: got \"16\", want \"15\"\n"
  .. "1 passed, 1 failed\n", "gdlua run: each test's line, its failure's, and the summary")

os.remove(out_file)
tl.finish()
