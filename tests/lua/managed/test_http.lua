-- test_http.lua: gdlua.http in tasks (run by sched_driver) against
-- httpd.py: requests in flight at once, a timeout that ends one request
-- alone, a cancelled request whose connection goes, waits refused where
-- a task cannot yield, and a request left for lua_close.
package.path = (arg[0]:match("^(.*)/managed/") or "..") .. "/?.lua;" .. package.path
local t = require "testlib"
local check, check_eq, check_match = t.check, t.check_eq, t.check_match
local http = require "gdlua.http"
local gdlua = require "gdlua"

local srv = t.servers()
local url = srv.url

-- The server's count of requests in flight, this one included (a
-- blocking request from the main thread: tasks go on meanwhile).
local function inflight()
  local status, body = http.get(url .. "/stats")
  assert(status == 200, "stats: " .. tostring(body))
  return tonumber(body:match("inflight (%d+)"))
end

local function wait_inflight(want, what)
  local deadline = os.time() + 30
  local n = inflight()
  while n ~= want and os.time() <= deadline do
    gdlua.sleep(0.02)
    n = inflight()
  end
  check_eq(n, want, what)
end

-- 100 requests in flight at once: the server answers none until all 100
-- wait together (requests one after another would each get a 504 after
-- 30 s).
local N, tasks = 100, {}
for i = 1, N do
  tasks[i] = sched.spawn(function() return http.get(url .. "/barrier?n=" .. N .. "&key=hundred") end)
end
check_eq(sched.busy(), N, "every request is in flight after spawn")
check(sched.loop(), "the loop ends with the requests")
local together = 0
for i = 1, N do
  local status, body = tasks[i]:result()
  if tasks[i]:status() == "ok" and status == 200 and body == "together " .. N then
    together = together + 1
  end
end
check_eq(together, N, "requests that were in flight with all the others")

-- A timeout ends its own request; the others are answered.
local hung = sched.spawn(function() return http.get(url .. "/hang", { timeout = 0.2 }) end)
local fine = {}
for i = 1, 5 do
  fine[i] = sched.spawn(function() return http.get(url .. "/delay?ms=20") end)
end
check(sched.loop(), "loop after a timeout")
local v, err = hung:result()
check(v == nil, "a request past its timeout fails")
check_match(err, "timed out", "with libcurl's message")
for i = 1, 5 do
  check_eq((fine[i]:result()), 200, "a request beside the timed-out one " .. i)
end
wait_inflight(1, "the timed-out request's connection is closed")

-- Cancelled in flight: the request's connection is closed (the server
-- sees the client go) and the task never gets an answer.
local answered = false
local victim = sched.spawn(function()
  http.get(url .. "/hang")
  answered = true
end)
wait_inflight(2, "the hanging request reached the server")
check(sched.cancel(victim), "cancel a request in flight")
check_eq(victim:status(), "cancelled", "its status")
wait_inflight(1, "the cancelled request's connection is closed")
check(sched.loop(), "nothing is left to wait for")
check(not answered, "the cancelled task never resumed")

-- Where a task cannot yield, a request raises (before anything is sent).
local wrapped = sched.spawn(function()
  return coroutine.wrap(function() return http.get(url .. "/hello") end)()
end)
local sorted = sched.spawn(function()
  table.sort({ 2, 1 }, function(a, b)
    http.get(url .. "/hello")
    return a < b
  end)
end)
check(sched.loop(), "loop after refusals")
check_eq(wrapped:status(), "error", "a request in a coroutine of the task's own")
check_match(wrapped:result(), "gdlua.http.get: cannot wait here: it runs in a coroutine of its own", "its message")
check_eq(sorted:status(), "error", "a request across a C call")
check_match(sorted:result(), "gdlua.http.get: cannot wait here: it is called across a C call", "its message")
wait_inflight(1, "refused requests left no connection behind")

-- Blocking and yielding requests share the process's connections: a
-- task's request and the main thread's both complete.
local task = sched.spawn(function() return http.get(url .. "/delay?ms=50") end)
check_eq((http.get(url .. "/hello")), 200, "a blocking request while a task's is in flight")
check(sched.loop(), "loop after a mixed pair")
check_eq((task:result()), 200, "the task's request")

-- Left in flight when the state closes: cancelled by the sentinel, its
-- handle freed (the sanitizer pass checks for leaks).
sched.spawn(function() return http.get(url .. "/hang") end)
wait_inflight(2, "a request left for lua_close reached the server")
srv.stop()
t.finish_closing()
