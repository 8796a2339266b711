-- fib_sum.lua: the seed's fan-out client. Submits fib(1) .. fib(num - 1)
-- to GDExamples::Fib::fib as one task set, runs them concurrently and
-- prints their sum, as the seed's Python client did.
--   gdlua run examples/fib_sum.lua --num 45 [--server HOST:PORT] [--function NAME]
local client = require "gdlua.client"

local function usage(msg)
  io.stderr:write("fib_sum: ", msg, "\n",
    "usage: gdlua run fib_sum.lua --num N [--server HOST:PORT[,...]] [--function NAME]\n")
  os.exit(2)
end

local opts = { ["--function"] = "GDExamples::Fib::fib" }
local i = 1
while i <= #arg do
  local k, v = arg[i], arg[i + 1]
  if k ~= "--num" and k ~= "-n" and k ~= "--server" and k ~= "--host" and k ~= "--function" then
    usage("unknown argument " .. k)
  end
  if v == nil then usage(k .. " needs a value") end
  opts[k == "-n" and "--num" or k == "--host" and "--server" or k] = v
  i = i + 2
end
local num = tonumber(opts["--num"])
if num == nil or num < 2 or num ~= math.floor(num) then usage("--num must be a whole number >= 2") end

local c = client.new{ servers = opts["--server"] }
local ts = c:taskset()
for n = 1, num - 1 do
  ts:add(opts["--function"], tostring(n))
end
local results, failed = ts:run()
if failed then
  for n, err in pairs(failed) do io.stderr:write(("fib(%d) failed: %s\n"):format(n, err)) end
  os.exit(1)
end
local sum = 0
for _, r in ipairs(results) do sum = sum + tonumber(r) end
print(("%.0f"):format(sum))
