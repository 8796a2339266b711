-- Tests of jobs/GDExamples/Text.lua, run in process without gearmand:
--   cd examples && gdlua test tests
local t = require "gdlua.testing"

local jobs = t.load("jobs/GDExamples/Text.lua")

t.test("the module defines its three functions in one process group", function()
  t.eq({ jobs[1], jobs[2], jobs[3], jobs[4] },
    { "GDExamples::Text::echo", "GDExamples::Text::reverse", "GDExamples::Text::upper" })
  t.eq(jobs["GDExamples::Text::upper"].pool, "GDExamples::Text::text")
end)

t.test("upper", function()
  local result, job = t.call("GDExamples::Text::upper", "abc")
  t.eq(result, "ABC")
  t.eq(job.function_name, "GDExamples::Text::upper")
  t.eq(job.warnings, {})
end)

t.test("reverse and echo", function()
  t.eq(t.call("GDExamples::Text::reverse", "hello"), "olleh")
  t.eq(t.call("GDExamples::Text::echo", "as it is"), "as it is")
  t.eq(t.call("GDExamples::Text::echo", ""), "", "an empty workload")
end)

t.test("bytes go through unchanged", function()
  local bytes = "\0\1\255 two\nlines"
  t.eq(t.call("GDExamples::Text::echo", bytes), bytes)
  t.eq(t.call("GDExamples::Text::reverse", bytes), bytes:reverse())
end)
