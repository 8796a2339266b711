-- test_numbers.lua: every number a C module takes from Lua and turns
-- into an integer (or a time) refuses NaN, ±inf and out-of-range values
-- with an error naming the argument or option, instead of converting
-- them (converting NaN or an out-of-range double to an integer type is
-- undefined behaviour: run it under the -DGDLUA_SANITIZE=ON build to see
-- none happens), and a job attribute of the wrong type is said as one.
-- job:status needs a running job: test_jobapi.sh. How a number result is
-- written (gdl_format_number): tests/unit/test_util.c.
-- Run by ctest as: gdlua run test_numbers.lua
local gdlua = require "gdlua"
local core = require "gdlua.core"
local fib = require "gdlua.fib"
local client = require "gdlua.client"
local image = require "gdlua.image"

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require "testlib"
local check, check_match = t.check, t.check_match

-- The bad values, how a message that quotes them prints them, and as
-- source text.
local BAD = {
  { 0 / 0, "nan", "0 / 0" },
  { 1 / 0, "inf", "1 / 0" },
  { -1 / 0, "-inf", "-1 / 0" },
  { 1e300, "1e+300", "1e300" },
  { -1, "-1", "-1" },
}

-- raises(want, fn, ...): fn(...) raises an error containing want.
local function raises(want, fn, ...)
  local ok, err = pcall(fn, ...)
  check(not ok, "raises: " .. want)
  check_match(err, want, "error message")
end

for _, b in ipairs(BAD) do
  local v, shown = b[1], b[2]

  -- gdlua.sleep(seconds): a time, tv_sec and tv_nsec.
  raises("bad argument #1 to '?' (seconds must be from 0 to 86400)", gdlua.sleep, v)

  -- gdlua.fib: n is an int.
  raises("bad argument #1 to '?' (n must be a whole number from 0 to 1475)", fib.fib, v)
  raises("bad argument #1 to '?' (n must be a whole number from 0 to 1475)", fib.iter, v)

  -- gdlua.client.new{timeout}: an int of milliseconds.
  raises("gdlua.client.new: timeout must be from 0 (none) to 2147483647 ms, got " .. shown, client.new, { timeout = v })

  -- gdlua.image: thumbnail's width, and each numeric option (checked
  -- before the input is looked at).
  raises("bad argument #2 to '?' (width must be a whole number from 1 to 65535)", image.thumbnail, "x", v)
  for _, o in ipairs {
    { "quality", "a whole number from 1 to 100" },
    { "compression", "a whole number from 0 to 9" },
    { "effort", "a whole number from 1 to 10" },
    { "bitdepth", "a whole number from 1 to 8" },
    { "dither", "a number from 0 to 1" },
    { "max_pixels", "a whole number from 1" },
    { "max_bytes", "a whole number from 1" },
  } do
    raises(("gdlua.image.convert: option %s must be %s, got %s"):format(o[1], o[2], shown),
      image.convert, "x", "jpeg", { [o[1]] = v })
    raises(("gdlua.image.thumbnail: option %s must be %s, got %s"):format(o[1], o[2], shown),
      image.thumbnail, "x", 10, { [o[1]] = v })
  end
  raises("gdlua.image.thumbnail: option height must be a whole number from 1 to 65535, got " .. shown,
    image.thumbnail, "x", 10, { height = v })
  local bg = "gdlua.image.convert: option background must be a grey level or an {r, g, b} table of numbers from 0 to 255"
  raises(bg .. ", got " .. shown, image.convert, "x", "jpeg", { background = v })
  raises(bg .. ", got table", image.convert, "x", "jpeg", { background = { 1, v, 1 } })
end

-- Job attributes (read into ints by the loader): the same values refused
-- when the module is defined, naming the job, the attribute and the value.
local tmp = os.tmpname()
for i, b in ipairs(BAD) do
  for _, a in ipairs {
    { "min_processes", "must be a whole number from 0 to " .. core.procs_max },
    { "max_processes", "must be a whole number from 0 to " .. core.procs_max },
    { "max_idle_time", "must be a whole number of seconds from 0 to 31536000" },
  } do
    local name = ("T::Num%d%s"):format(i, a[1])
    local path = tmp .. "_" .. name:gsub("::", "_") .. ".lua"
    local f = assert(io.open(path, "w"))
    f:write(([[
local W = require("gdlua").worker()
W:job("j", { %s = %s }, function() end)
return W
]]):format(a[1], b[3]))
    f:close()
    local n, err = gdlua._load(path, name)
    os.remove(path)
    check(n == nil, name .. " refused")
    check_match(err, ('job "j": %s %s, got %s'):format(a[1], a[2], b[2]), name .. " message")
  end
end
-- A value of the wrong type is said as such, quoted as the config file
-- quotes it: "2" is not the number it looks like.
for i, a in ipairs {
  { "min_processes = \"2\"", 'job "j": min_processes: expected a number, got "2"' },
  { "timeout = true", 'job "j": timeout: expected a number, got true' },
  { "max_jobs = {}", 'job "j": max_jobs: expected a number, got a table' },
  { "process_group = 5", 'job "j": process_group: expected a string, got 5' },
  { "process_group = \"\"", 'job "j": process_group must be a non-empty string, got an empty name' },
  { "decode = 5", 'job "j": decode must be true, a method name or a function, got 5' },
} do
  local name = ("T::Type%d"):format(i)
  local path = tmp .. "_type" .. i .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(("local W = require('gdlua').worker()\nW:job('j', { %s }, function() end)\nreturn W\n"):format(a[1]))
  f:close()
  local n, err = gdlua._load(path, name)
  os.remove(path)
  check(n == nil, name .. " refused")
  check_match(err, a[2], name .. " message")
end
os.remove(tmp)

t.finish()
