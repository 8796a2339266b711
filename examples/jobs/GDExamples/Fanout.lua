-- Concurrent jobs: each fetches one URL with gdlua.http, and one process
-- holds up to 200 of them at once, each waiting for its answer without
-- holding the others (see docs/CONCURRENCY.md). Fan out by submitting
-- many jobs at once, e.g. as one task set (examples/fanout.lua).
--   gearman -f GDExamples::Fanout::fetch 'http://127.0.0.1:8080/'  -> 200 1234
local gdlua = require "gdlua"
local http = require "gdlua.http"

local Fanout = gdlua.worker()

Fanout:job("fetch", { concurrency = 200, min_processes = 1, max_processes = 2, timeout = 10 },
  function(self, job, url)
    local status, body = http.get(url, { timeout = 5 })
    if status == nil then
      error("GET " .. url .. ": " .. body, 0)
    end
    return status .. " " .. #body
  end)

return Fanout
