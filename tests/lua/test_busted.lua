-- test_busted.lua: "gdlua test --busted" runs Debian's busted (lua-busted)
-- on gdlua's LuaJIT, gdlua.testing usable in its specs; a failing spec
-- fails the run with its file and line. Skipped (exit 77) without busted.
-- Run by ctest as: gdlua run test_busted.lua (from tests/lua)
local core = require "gdlua.core"

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local tl = require "testlib"
local check_eq, check_match = tl.check_eq, tl.check_match

if not package.searchpath("busted.runner", package.path) then
  print("busted (Debian's lua-busted) is not installed: skipped")
  os.exit(77)
end

local f = assert(io.popen("readlink /proc/" .. core.pid() .. "/exe"))
local gdlua_bin = f:read("*l")
f:close()
local out_file = os.tmpname()

local function busted(args)
  local rc = os.execute(("cd testing && %q test --busted %s > %q 2>&1"):format(gdlua_bin, args, out_file))
  if type(rc) == "number" and rc > 255 then
    rc = rc / 256
  end
  local fh = assert(io.open(out_file))
  local out = fh:read("*a")
  fh:close()
  return rc, out
end

local rc, out = busted("-o plainTerminal busted/pass")
check_eq(rc, 0, "passing specs: exit status (output: " .. out .. ")")
check_match(out, "3 successes / 0 failures / 0 errors / 0 pending", "passing specs: busted's summary")

rc, out = busted("-o plainTerminal busted/fail")
check_eq(rc, 1, "a failing spec: exit status")
check_match(out, "1 success / 1 failure / 0 errors / 0 pending", "a failing spec: busted's summary")
check_match(out, "busted/fail/wrong_spec.lua:13: Expected objects to be equal.", "a failing spec: its file and line")
check_eq(out:find("error object", 1, true), nil, "no stray error object when busted sets the exit status")

os.remove(out_file)
tl.finish()
