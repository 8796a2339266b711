-- Tests of modules/jobs/GDExamples/Stats.lua, on the user's C module
-- textstats (built into build/examples/modules):
--   cd examples && gdlua test --cpath ../build/examples/modules tests
-- Its script directory is modules/jobs, so the module is loaded below it.
local t = require "gdlua.testing"

t.load("modules/jobs", "GDExamples/Stats.lua")

t.test("wc counts lines, words and bytes", function()
  t.eq(t.call("GDExamples::Stats::wc", "two words\n"), "1 2 10")
  t.eq(t.call("GDExamples::Stats::wc", ""), "0 0 0")
end)

t.test("crc32 is the standard CRC-32", function()
  t.eq(t.call("GDExamples::Stats::crc32", "123456789"), "cbf43926")
end)

t.test("usage counts what this process has read", function()
  local calls, bytes = t.call("GDExamples::Stats::usage", ""):match("^(%d+) (%d+)$")
  t.ok(calls, "usage is two numbers")
  t.call("GDExamples::Stats::wc", "12345")
  t.eq(t.call("GDExamples::Stats::usage", ""), ("%d %d"):format(calls + 1, bytes + 5))
end)
