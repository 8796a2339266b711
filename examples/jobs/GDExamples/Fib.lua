-- The seed's fib worker, as a gdlua job module.
--   echo 30 | gearman -f GDExamples::Fib::fib      -> 1346269
-- fib runs the recursion in C (gdlua.fib); fib_lua runs it in LuaJIT.
local gdlua = require "gdlua"
local fib = require "gdlua.fib"

local Fib = gdlua.worker()   -- functions are named "GDExamples::Fib::<job>"

local function number(workload)
  local n = tonumber(workload)
  if n == nil or n < 0 or n > 90 or n ~= math.floor(n) then
    error(("workload must be a whole number from 0 to 90, got %q"):format(workload), 0)
  end
  return n
end

Fib:job("fib", { min_processes = 1, max_processes = 4 }, function(self, job, workload)
  return fib.fib(number(workload))
end)

local function fib_lua(n)
  if n < 2 then return 1 end
  return fib_lua(n - 2) + fib_lua(n - 1)
end

Fib:job("fib_lua", { min_processes = 1, max_processes = 4 }, function(self, job, workload)
  return fib_lua(number(workload))
end)

return Fib
