-- fanout.lua: submits --count GDExamples::Fanout::fetch jobs for --url as
-- one task set and checks that every answer is a 200 (demo.sh times it).
--   gdlua run examples/fanout.lua --url http://127.0.0.1:8080/delay?ms=100 --count 500 [--server HOST:PORT]
local client = require "gdlua.client"

local function usage(msg)
  io.stderr:write("fanout: ", msg, "\n",
    "usage: gdlua run fanout.lua --url URL [--count N] [--server HOST:PORT[,...]]\n")
  os.exit(2)
end

local opts = { ["--count"] = "100" }
local i = 1
while i <= #arg do
  local k, v = arg[i], arg[i + 1]
  if k ~= "--url" and k ~= "--count" and k ~= "--server" then usage("unknown argument " .. k) end
  if v == nil then usage(k .. " needs a value") end
  opts[k] = v
  i = i + 2
end
local count = tonumber(opts["--count"])
if opts["--url"] == nil then usage("--url is required") end
if count == nil or count < 1 or count ~= math.floor(count) then usage("--count must be a whole number >= 1") end

local c = client.new{ servers = opts["--server"], timeout = 60000 }
local ts = c:taskset()
for _ = 1, count do
  ts:add("GDExamples::Fanout::fetch", opts["--url"])
end
local results, failed = ts:run()
if failed then
  for n, err in pairs(failed) do io.stderr:write(("fetch %d failed: %s\n"):format(n, err)) end
  os.exit(1)
end
for n, r in ipairs(results) do
  if not r:match("^200 ") then
    io.stderr:write(("fetch %d: %s\n"):format(n, r))
    os.exit(1)
  end
end
print(("%d fetches, every one 200"):format(count))
