-- testlib.lua: the checks the Lua tests share. A failed check prints a
-- traceback and the test goes on; finish() prints "N passed, N failed"
-- and exits 1 if any failed.
local M = { checks = 0, failures = 0 }

function M.check(cond, what)
  M.checks = M.checks + 1
  if not cond then
    M.failures = M.failures + 1
    io.stderr:write(debug.traceback("FAIL: " .. what, 2), "\n")
  end
end

function M.check_eq(got, want, what)
  M.check(got == want, ("%s: got %s, want %s"):format(what, tostring(got), tostring(want)))
end

function M.check_match(s, pat, what)
  M.check(type(s) == "string" and s:find(pat, 1, true) ~= nil,
    ("%s: %q does not contain %q"):format(what, tostring(s), pat))
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Starts httpd.py (beside this file): its HTTP and TCP servers on free
-- loopback ports. It exits by itself when this process does; stop()
-- stops it by its pid.
function M.servers()
  local core = require "gdlua.core"
  local dir = debug.getinfo(1, "S").source:match("^@(.*)/") or "."
  local portfile = os.tmpname()
  os.remove(portfile)
  assert(os.execute(("python3 %s %s %d </dev/null >/dev/null 2>&1 &"):format(
    shell_quote(dir .. "/httpd.py"), shell_quote(portfile), core.pid())) == 0)
  local deadline, line = os.time() + 30, nil
  repeat
    local f = io.open(portfile)
    if f then
      line = f:read("*l")
      f:close()
    else
      core.sleep(0.02)
    end
  until line or os.time() > deadline
  os.remove(portfile)
  assert(line, "httpd.py did not start within 30 s")
  local http_port, tcp_port, pid = line:match("^(%d+) (%d+) (%d+)$")
  return {
    url = "http://127.0.0.1:" .. http_port,
    http_port = tonumber(http_port),
    tcp_port = tonumber(tcp_port),
    pid = tonumber(pid),
    stop = function() os.execute("kill " .. pid) end,
  }
end

function M.finish()
  print(("%d passed, %d failed"):format(M.checks - M.failures, M.failures))
  os.exit(M.failures == 0 and 0 or 1)
end

-- finish() for scripts whose state must close (lua_close runs what the
-- test checks, such as gdl_sched.c's sentinel): raises on failures
-- instead of os.exit.
function M.finish_closing()
  print(("%d passed, %d failed"):format(M.checks - M.failures, M.failures))
  if M.failures ~= 0 then error(M.failures .. " check(s) failed", 0) end
end

return M
