-- Run by test_testing.lua: the second naming convention, a fresh gdlua
-- (Calls.lua loads again) and globals of its own.
local t = require "gdlua.testing"
t.load("jobs")

t.test("each file has its own globals", function()
  t.eq(LEAKED_GLOBAL, nil)
end)

t.test("decode, begin, the job, end, encode", function()
  t.eq(t.call("H::wrap", "x"), "<x>!")
  t.eq(t.call("H::order", ""), "decode,begin <x>,job,end,encode")
end)
