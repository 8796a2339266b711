-- Run by test_testing.lua: each test but the first fails, each at a line
-- test_testing.lua names.
local t = require "gdlua.testing"
t.load("jobs/T/Calls.lua")

t.test("passes", function()
  t.eq(t.call("T::Calls::square", "3"), "9")
end)

t.test("a wrong expectation", function()
  t.eq(t.call("T::Calls::square", "3"), "10")
end)

t.test("a job that fails", function()
  t.call("T::Calls::fail", "line 15")
end)

local function helper(v)
  t.eq(v, { 1, 2 }, "helper")
end

t.test("a check in a helper", function()
  helper({ 1, 3 })
end)

t.test("a runtime error", function()
  local x = nil
  return x.field
end)

t.test("an unloaded function", function()
  t.call("T::Nope::x", "")
end)
