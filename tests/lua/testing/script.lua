-- Run by test_testing.lua as "gdlua run script.lua": gdlua.testing outside
-- gdlua test; t.test runs each test at once.
local t = require "gdlua.testing"
t.load("jobs/T/Calls.lua")
t.test("passes", function() t.eq(t.call("T::Calls::square", "4"), "16") end)
t.test("fails", function() t.eq(t.call("T::Calls::square", "4"), "15") end)
os.exit(t.done())
