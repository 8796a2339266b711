-- test_http_api.lua: gdlua.http's calls (run by sched_driver) against
-- httpd.py: get, post and request with methods, headers and bodies, in
-- tasks and blocking; a 4xx as a response; redirects; and the failures
-- that come as nil, err: a timeout and a refused connection.
package.path = (arg[0]:match("^(.*)/managed/") or "..") .. "/?.lua;" .. package.path
local t = require "testlib"
local check, check_eq, check_match = t.check, t.check_eq, t.check_match
local http = require "gdlua.http"
local gdlua = require "gdlua"

local srv = t.servers()
local url = srv.url

-- Blocking, from the main thread.
local status, body, headers = http.get(url .. "/hello")
check_eq(status, 200, "get: status")
check_eq(body, "hello", "get: body")
check_eq(headers["content-length"], "5", "get: headers by lowercase name")

-- In tasks: each call yields; all three at once.
local got = sched.spawn(function() return http.get(url .. "/delay?ms=30") end)
local posted = sched.spawn(function()
  return http.post(url .. "/echo", "a body\0with a NUL", { headers = { ["X-Test"] = "yes" } })
end)
local put = sched.spawn(function()
  return http.request { method = "PUT", url = url .. "/echo", body = "put body", timeout = 5,
                       headers = { ["Content-Type"] = "text/plain" } }
end)
check_eq(sched.busy(), 3, "three requests in flight")
check(sched.loop(), "loop")
check_eq(got:status(), "ok", "get task")
local s1, b1 = got:result()
check_eq(s1, 200, "task get: status")
check_eq(b1, "slept 30", "task get: body")
local s2, b2, h2 = posted:result()
check_eq(s2, 200, "post: status")
check_eq(b2, "a body\0with a NUL", "post: the body reached the server whole")
check_eq(h2["x-method"], "POST", "post: method")
check_eq(h2["x-echo-x-test"], "yes", "post: request header")
local s3, b3, h3 = put:result()
check_eq(s3, 200, "request: status")
check_eq(b3, "put body", "request: body")
check_eq(h3["x-method"], "PUT", "request: method")
check_eq(h3["x-echo-content-type"], "text/plain", "request: header")

-- A 404 is a response; repeated headers joined; redirects when asked.
local s4, b4 = http.get(url .. "/status/404")
check_eq(s4, 404, "404 status")
check_eq(b4, "status 404", "404 body")
local _, _, h5 = http.get(url .. "/headers")
check_eq(h5["set-cookie"], "a=1, b=2", "repeated headers")
check_eq((http.get(url .. "/redirect/2")), 302, "no redirects followed by default")
local s6, b6 = http.get(url .. "/redirect/2", { redirects = 5 })
check_eq(s6, 200, "redirects followed")
check_eq(b6, "landed", "redirected body")

-- A timeout: nil, err, in a task and blocking.
local hung = sched.spawn(function() return http.get(url .. "/hang", { timeout = 0.2 }) end)
check(sched.loop(), "loop after a timeout")
local v, err = hung:result()
check(v == nil, "a task's request past its timeout gives nil")
check_match(err, "timed out", "and libcurl's message")
v, err = http.request { url = url .. "/hang", timeout = 0.2 }
check(v == nil, "a blocking request past its timeout gives nil")
check_match(err, "timed out", "its message")

-- Bad arguments raise.
check(not pcall(http.get, url, { nosuch = 1 }), "an unknown option raises")
check(not pcall(http.request, { method = "GET" }), "a request without url raises")

-- Connection refused: the server stopped, its port closed. Polled with a
-- deadline: the kill is asynchronous, and a kept-alive connection the
-- server's end reset fails first as "Recv failure".
srv.stop()
local deadline = os.time() + 30
repeat
  v, err = http.get(url .. "/hello", { timeout = 5 })
  local refused = v == nil and tostring(err):find("Couldn't connect", 1, true)
  if not refused then gdlua.sleep(0.02) end
until refused or os.time() > deadline
check(v == nil, "a request to a closed port gives nil")
check_match(err, "Couldn't connect", "its message")
local refused = sched.spawn(function() return http.get(url .. "/hello") end)
check(sched.loop(), "loop after a refusal")
local rv, rerr = refused:result()
check(rv == nil, "a task's request to a closed port gives nil")
check_match(rerr, "Couldn't connect", "its message")
t.finish_closing()
