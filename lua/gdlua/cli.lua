-- gdlua.cli: the Lua half of "gdlua call" (runtime/gdl_main.c), which
-- submits one job like "gearman -f" and exits non-zero when it fails.
local client = require "gdlua.client"

local M = {}

-- Returns the exit status: 0 with the result on stdout, or 1 with the
-- error on stderr.
function M.call(fn, workload, unique, timeout)
  local c = client.new{ timeout = timeout }
  local result, err = c:call(fn, workload, { unique = unique })
  if result == nil then
    io.stderr:write(("gdlua call: %s: %s\n"):format(fn, tostring(err)))
    return 1
  end
  io.stdout:write(result)
  io.stdout:flush()
  return 0
end

return M
