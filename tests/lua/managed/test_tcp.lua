-- test_tcp.lua: gdlua.tcp (run by sched_driver) against httpd.py's line
-- server: connect, send and receive in tasks and blocking, the receive
-- patterns, connections at once, timeouts of receive and connect, and a
-- refused connect, each as nil, err.
package.path = (arg[0]:match("^(.*)/managed/") or "..") .. "/?.lua;" .. package.path
local t = require "testlib"
local check, check_eq, check_match = t.check, t.check_eq, t.check_match
local tcp = require "gdlua.tcp"
local gdlua = require "gdlua"

local srv = t.servers()
local port = srv.tcp_port

-- Blocking, from the main thread.
local s, err = tcp.connect("127.0.0.1", port, 5)
check(s, "connect: " .. tostring(err))
check_eq(s:send("echo hello\n"), 11, "send: the index of the last byte sent")
check_eq(s:receive("*l"), "hello", "receive a line")
check_eq(s:send("bytes 100\n"), 10, "send bytes")
check_eq(s:receive(100), ("0123456789abcdef"):rep(7):sub(1, 100), "receive n bytes")
s:send("close\n")
check_eq(s:receive("*a"), "bye\n", "receive all until the peer closes")
local r, e = s:receive("*l")
check(r == nil, "receive after the peer closed")
check_eq(e, "closed", "its error")
s:close()

-- A partial line: nil, "closed", the part.
s = assert(tcp.connect("127.0.0.1", port, 5))
s:send("partial\n")
local r2, e2, part = s:receive("*l")
check(r2 == nil and e2 == "closed", "a line cut by the peer")
check_eq(part, "abc", "its partial")
s:close()

-- In tasks: 20 connections wait together at the server's barrier (one
-- after another, each would get "only 1 of 20").
local N, tasks = 20, {}
for i = 1, N do
  tasks[i] = sched.spawn(function()
    local c = assert(tcp.connect("127.0.0.1", port, 5))
    c:send("barrier " .. N .. " twenty\n")
    local line, why = c:receive("*l")
    c:close()
    return line, why
  end)
end
check_eq(sched.busy(), N, "the connections are in flight")
check(sched.loop(), "loop")
local together = 0
for i = 1, N do
  if tasks[i]:status() == "ok" and tasks[i]:result() == "together " .. N then together = together + 1 end
end
check_eq(together, N, "connections in flight at once")

-- Receive timeouts: in a task (the others go on) and blocking.
local hung = sched.spawn(function()
  local c = assert(tcp.connect("127.0.0.1", port, 5))
  c:settimeout(0.2)
  c:send("hang\n")
  return c:receive("*l")
end)
local fine = sched.spawn(function()
  local c = assert(tcp.connect("127.0.0.1", port, 5))
  c:send("echo beside\n")
  return c:receive("*l")
end)
check(sched.loop(), "loop after a timeout")
local hv, herr = hung:result()
check(hv == nil, "a receive past its timeout gives nil")
check_eq(herr, "timeout", "its error")
check_eq(fine:result(), "beside", "the task beside it")
s = assert(tcp.connect("127.0.0.1", port, 0.2))
s:send("hang\n")
local bv, berr = s:receive(10)
check(bv == nil and berr == "timeout", "a blocking receive past connect's timeout")
s:close()

-- A connect timeout: a listener that never accepts, backlog 0; the
-- connects past the first ones hang.
s = assert(tcp.connect("127.0.0.1", port, 5))
s:send("backlog\n")
local bport = tonumber(s:receive("*l"))
s:close()
local held, timed = {}, nil
for _ = 1, 8 do
  local c, cerr = tcp.connect("127.0.0.1", bport, 0.3)
  if not c then
    timed = cerr
    break
  end
  held[#held + 1] = c
end
check_eq(timed, "timeout", "a connect past its timeout")
for _, c in ipairs(held) do c:close() end

-- Refused: the server stopped; polled with a deadline (the kill is
-- asynchronous).
srv.stop()
local deadline, c, cerr = os.time() + 30, nil, nil
repeat
  c, cerr = tcp.connect("127.0.0.1", port, 5)
  if c then
    c:close()
    gdlua.sleep(0.02)
  end
until c == nil or os.time() > deadline
check(c == nil, "a connect to a closed port gives nil")
check_match(cerr, "Connection refused", "its message")
t.finish_closing()
