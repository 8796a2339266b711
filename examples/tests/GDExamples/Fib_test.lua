-- Tests of jobs/GDExamples/Fib.lua (gdlua.fib in C, and the Lua recursion).
local t = require "gdlua.testing"

t.load("jobs/GDExamples/Fib.lua")

t.test("fib in C, as the seed counts: fib(0) = fib(1) = 1", function()
  t.eq(t.call("GDExamples::Fib::fib", "0"), "1")
  t.eq(t.call("GDExamples::Fib::fib", "1"), "1")
  t.eq(t.call("GDExamples::Fib::fib", "30"), "1346269")
end)

t.test("fib_lua gives the same numbers", function()
  for n = 0, 20 do
    t.eq(t.call("GDExamples::Fib::fib_lua", tostring(n)), t.call("GDExamples::Fib::fib", tostring(n)), "fib " .. n)
  end
end)

t.test("a workload that is no whole number from 0 to 90 fails the job", function()
  for _, bad in ipairs({ "x", "-1", "91", "2.5", "" }) do
    local msg = t.fails("GDExamples::Fib::fib", bad)
    t.eq(msg, ("workload must be a whole number from 0 to 90, got %q"):format(bad))
  end
end)
