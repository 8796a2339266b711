-- Fixture for test_testing.lua: jobs that call other jobs through
-- gdlua.client (eager under gdlua.testing), and report progress.
local gdlua = require "gdlua"
local client = require "gdlua.client"

local c = client.new() -- made at load time: it connects on its first call

local Calls = gdlua.worker()

Calls:job("square", function(self, job, workload)
  local n = tonumber(workload)
  return n * n
end)

-- Sums the squares of 1..N, as one task set; reports each result.
Calls:job("sum_squares", function(self, job, workload)
  local n = tonumber(workload)
  local ts = c:taskset()
  for i = 1, n do ts:add("T::Calls::square", tostring(i)) end
  local results, failed = ts:run()
  if failed then
    error("a square failed", 0)
  end
  local sum = 0
  for i, r in ipairs(results) do
    job:status(i, n)
    sum = sum + tonumber(r)
  end
  return sum
end)

Calls:job("progress", function(self, job, workload)
  local out = {}
  out[#out + 1] = tostring(job:status(1, 3))
  out[#out + 1] = tostring(job:data("part one"))
  out[#out + 1] = tostring(job:warning("careful"))
  job:status(2.9, 3)
  job:data(42)
  return table.concat(out, ",")
end)

Calls:job("fail", function(self, job, workload)
  job:warning("about to fail")
  error("failed on " .. workload, 0)
end)

-- Calls fn (the workload's first word) with the rest; returns its result,
-- or "ERR " and the message.
Calls:job("relay", function(self, job, workload)
  local fn, rest = workload:match("^(%S+) ?(.*)$")
  local seen = {}
  local result, err = c:call(fn, rest, {
    on_status = function(n, d) seen[#seen + 1] = ("status %d/%d"):format(n, d) end,
    on_data = function(d) seen[#seen + 1] = "data " .. d end,
    on_warning = function(w) seen[#seen + 1] = "warning " .. w end,
  })
  seen[#seen + 1] = result and "result " .. result or "ERR " .. err
  return table.concat(seen, "; ")
end)

Calls:job("later", function(self, job, workload)
  return c:background("T::Calls::square", workload)
end)

local kept
Calls:job("keep", function(self, job, workload)
  kept = job
  return tostring(job)
end)
Calls:job("kept", function(self, job, workload)
  return kept.handle
end)

Calls:job("bad_status", function(self, job, workload) job:status(-1, 3) end)
Calls:job("bad_data", function(self, job, workload) job:data({}) end)
Calls:job("table", function() return {} end)
Calls:job("nothing", function() end)
Calls:job("yes", function() return true end)
Calls:job("pi", function() return 0.1 end)
Calls:job("fields", function(self, job, workload)
  return table.concat({ type(job), job.function_name, job.handle, job.unique, job.workload }, "|")
end)

return Calls
