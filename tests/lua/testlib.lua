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

function M.finish()
  print(("%d passed, %d failed"):format(M.checks - M.failures, M.failures))
  os.exit(M.failures == 0 and 0 or 1)
end

return M
