-- gdlua.cli: "gdlua call FUNCTION [options] < WORKLOAD > RESULT" (started by
-- runtime/gdl_main.c): submits one job like "gearman -f", and exits non-zero
-- when it fails: 0 with the result on stdout, 1 with the job's error on
-- stderr, 2 for a usage error.
local client = require "gdlua.client"

local M = {}

M.USAGE = "usage: gdlua call FUNCTION [--server HOST[:PORT][,...]]... [--unique ID] [--timeout MS (default "
  .. "30000; 0: none)]"
  .. " < WORKLOAD > RESULT"

local function usage(why)
  if why then
    io.stderr:write("gdlua call: ", why, "\n")
  end
  io.stderr:write(M.USAGE, "\n")
  return 2
end

-- Parses the arguments after "call": the options table, or nil and the
-- reason (nil for --help).
function M.parse(args)
  local o, i = { servers = {} }, 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then
      return nil
    elseif a:sub(1, 1) ~= "-" then
      if o.fn then
        return nil, "one FUNCTION only (got " .. o.fn .. " and " .. a .. ")"
      end
      o.fn = a
    elseif a == "--server" or a == "--unique" or a == "--timeout" then
      local v = args[i + 1]
      if v == nil then
        return nil, a .. " needs a value"
      end
      i = i + 1
      if a == "--server" then
        o.servers[#o.servers + 1] = v
      elseif a == "--unique" then
        o.unique = v
      else
        local ms = v:match("^%d+$") and tonumber(v)
        if not ms or ms > 2147483647 then
          return nil, "--timeout must be a whole number of milliseconds, got " .. v
        end
        o.timeout = ms
      end
    else
      return nil, "unknown option " .. a
    end
    i = i + 1
  end
  if not o.fn then
    return nil, "no FUNCTION given"
  end
  return o
end

-- Runs "gdlua call" with its arguments; returns the exit status.
function M.main(args)
  local o, why = M.parse(args)
  if not o then
    if why == nil then
      io.stdout:write(M.USAGE, "\n")
      return 0
    end
    return usage(why)
  end
  local ok, c = pcall(client.new, {
    servers = #o.servers > 0 and table.concat(o.servers, ",") or nil,
    timeout = o.timeout,
  })
  if not ok then
    return usage("--server: " .. tostring(c):gsub("^gdlua%.client%.new: ", ""))
  end
  local workload = io.stdin:read("*a") or ""
  local result, err = c:call(o.fn, workload, { unique = o.unique })
  if result == nil then
    io.stderr:write(("gdlua call: %s: %s\n"):format(o.fn, tostring(err)))
    return 1
  end
  io.stdout:write(result)
  io.stdout:flush()
  return 0
end

return M
