-- Fixture for test_testing.lua: decode, begin, end and encode run in
-- Gearman::Driver's order around the job.
local gdlua = require "gdlua"

local Hooks = gdlua.worker()
Hooks.prefix = "H::"
local order = {}

function Hooks:decode(workload) order[#order + 1] = "decode"; return "<" .. workload .. ">" end
function Hooks:encode(result) order[#order + 1] = "encode"; return result .. "!" end
-- H::order reads the order, unrecorded.
function Hooks:begin(job, workload)
  if job.function_name == "H::wrap" then order[#order + 1] = "begin " .. workload end
end
Hooks["end"] = function(self, job, workload)
  if job.function_name == "H::wrap" then order[#order + 1] = "end" end
end

Hooks:job("wrap", { decode = true, encode = true, min_processes = 0, max_processes = 3 }, function(self, job, workload)
  order[#order + 1] = "job"
  return workload
end)

Hooks:job("order", function()
  local o = table.concat(order, ",")
  order = {}
  return o
end)

return Hooks
