-- Tests of jobs/GDExamples/Fanout.lua, run in process without gearmand:
--   cd examples && gdlua test tests/GDExamples/Fanout_test.lua
-- A job that calls a backend is tested against a real one: this file
-- starts Python's http.server on a free loopback port (the kernel picks
-- it) for the duration of the tests. In a test, gdlua.http blocks (the
-- job runs alone, not as one of the pool's concurrent jobs), so the job
-- sees the same answers it would in its pool.
local t = require "gdlua.testing"

local jobs = t.load("jobs/GDExamples/Fanout.lua")

t.test("fetch holds up to 200 jobs per process", function()
  t.eq(jobs[1], "GDExamples::Fanout::fetch")
  t.eq(jobs["GDExamples::Fanout::fetch"].concurrency, 200)
  t.eq(jobs["GDExamples::Fanout::fetch"].timeout, 10)
end)

t.test("a URL no HTTP client can fetch fails the job with the reason", function()
  local msg = t.fails("GDExamples::Fanout::fetch", "nope://127.0.0.1/")
  t.match(msg, "^GET nope://127%.0%.0%.1/: ", "the message names the URL")
end)

-- The backend: "python3 -m http.server 0" on loopback, serving this
-- directory; its first line of output names the port it took.
local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local server = io.popen(("exec sh -c 'echo $$; exec python3 -u -m http.server --bind 127.0.0.1 "
  .. "--directory %q 0 2>&1'"):format(dir))
local pid = server and tonumber(server:read("*l"))
local port = pid and (server:read("*l") or ""):match("port (%d+)")

if port then
  local f = assert(io.open(dir .. "/Fanout_test.lua", "rb"))
  local size = #f:read("*a")
  f:close()

  t.test("fetch answers the status and the body's length", function()
    t.eq(t.call("GDExamples::Fanout::fetch", ("http://127.0.0.1:%s/Fanout_test.lua"):format(port)),
      "200 " .. size)
  end)

  t.test("a 404 is an answer, not a failure", function()
    t.match(t.call("GDExamples::Fanout::fetch", ("http://127.0.0.1:%s/no-such-file"):format(port)),
      "^404 %d+$")
  end)
else
  io.stderr:write("Fanout_test.lua: python3's http.server did not start; the fetch tests are not run\n")
end

t.test("stop the backend", function()
  if pid then
    os.execute("kill " .. pid)
    server:close()
  end
end)
