-- Run by test_testing.lua as "gdlua test --busted busted/pass": busted's
-- describe/it/assert on gdlua's LuaJIT, with gdlua.testing.
local t = require "gdlua.testing"

describe("T::Calls", function()
  t.load("jobs/T/Calls.lua")

  it("runs on gdlua's LuaJIT", function()
    assert.is_table(jit)
    assert.are.equal("function", type(require("gdlua").worker))
  end)

  it("sums squares through an eager task set", function()
    local result, job = t.call("T::Calls::sum_squares", "4")
    assert.are.equal("30", result)
    assert.are.same({ { 1, 4 }, { 2, 4 }, { 3, 4 }, { 4, 4 } }, job.statuses)
  end)

  it("records what a job sends", function()
    local _, job = t.call("T::Calls::progress", "")
    assert.are.same({ "careful" }, job.warnings)
  end)
end)
