-- Run by test_testing.lua: one spec passes, one fails at line 13.
local t = require "gdlua.testing"
t.load("jobs/T/Calls.lua")

describe("T::Calls::square", function()
  it("squares", function()
    local result = t.call("T::Calls::square", "3")
    assert.are.equal("9", result)
  end)

  it("is expected wrong", function()
    local result = t.call("T::Calls::square", "3")
    assert.are.equal("10", result)
  end)
end)
