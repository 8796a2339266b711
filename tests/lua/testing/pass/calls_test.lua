-- Run by test_testing.lua as "gdlua test pass": every test passes.
local t = require "gdlua.testing"
t.load("jobs/T/Calls.lua")

LEAKED_GLOBAL = "from calls_test.lua"

t.test("a task set of squares, run in process", function()
  local result, job = t.call("T::Calls::sum_squares", "3")
  t.eq(result, "14")
  t.eq(job.statuses, { { 1, 3 }, { 2, 3 }, { 3, 3 } })
  t.eq(#job.calls, 3)
  t.eq(job.calls[2].fn, "T::Calls::square")
  t.eq(job.calls[2].result, "4")
end)

t.test("status, data and warning are recorded", function()
  local result, job = t.call("T::Calls::progress", "")
  t.eq(result, "true,true,true")
  t.eq(job.data, { "part one", "42" })
  t.eq(job.warnings, { "careful" })
end)

t.test("an expected failure", function()
  t.eq(t.fails("T::Calls::fail", "purpose"), "failed on purpose")
end)
