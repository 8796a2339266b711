-- test_sched.lua: gdl_sched.c's tasks (run by sched_driver): waits that
-- suspend one coroutine only, the order they resume in, results and
-- errors with tracebacks, yields across pcall, cancelling, fd waits, and
-- the tasks a closing state still holds.
package.path = (arg[0]:match("^(.*)/managed/") or "..") .. "/?.lua;" .. package.path
local t = require "testlib"
local check, check_eq, check_match = t.check, t.check_eq, t.check_match
local gdlua = require "gdlua"

-- Sleeps suspend their own task alone: the shortest ends first, though
-- spawned last. (Blocking sleeps would end in spawn order.)
local order, tasks = {}, {}
for i = 1, 5 do
  tasks[i] = sched.spawn(function()
    gdlua.sleep((6 - i) * 0.02)
    order[#order + 1] = i
    return i, "two", nil
  end)
end
check_eq(sched.busy(), 5, "five tasks wait")
check_eq(#order, 0, "no sleep has ended inside spawn")
check_eq(tasks[1]:status(), "running", "a sleeping task is running")
check(sched.loop(), "the loop ends once every task has")
check_eq(table.concat(order, " "), "5 4 3 2 1", "sleeps end shortest first")
check_eq(sched.busy(), 0, "no task left")
local a, b, c = tasks[2]:result()
check_eq(tasks[2]:status(), "ok", "status after the end")
check(a == 2 and b == "two" and c == nil and select("#", tasks[2]:result()) == 3, "results, nil included")

-- A task that never waits ends inside spawn.
local quick = sched.spawn(function(x, y) return x + y end, 2, 3)
check_eq(quick:status(), "ok", "a task that does not wait ends at once")
check_eq(quick:result(), 5, "its arguments reach it")

-- Errors: the message with the coroutine's traceback; error objects
-- through tostring (their __tostring).
local boom_line = debug.getinfo(1, "l").currentline + 1
local function boom() error("boom") end
local failing = sched.spawn(function()
  gdlua.sleep(0)
  boom()
end)
local obj = sched.spawn(function()
  gdlua.sleep(0)
  error(setmetatable({}, { __tostring = function() return "custom error object" end }))
end)
local tbl = sched.spawn(function()
  error({})
end)
check(sched.loop(), "loop after errors")
check_eq(failing:status(), "error", "an error ends the task")
check_match(failing:result(), "boom", "the message")
check_match(failing:result(), "stack traceback:", "a traceback")
check_match(failing:result(), "test_sched.lua:" .. boom_line .. ": in function 'boom'",
  "the traceback names the function and line")
check_match(obj:result(), "custom error object", "__tostring of an error object")
check_match(tbl:result(), "table: ", "a table error without __tostring is named")

-- Yields across pcall and xpcall (LuaJIT 2.1 allows them).
local p = sched.spawn(function()
  local ok, err = pcall(function()
    gdlua.sleep(0.01)
    error("inner", 0)
  end)
  local ok2, err2 = xpcall(function()
    gdlua.sleep(0.01)
    error("again", 0)
  end, function(m) gdlua.sleep(0); return "handled " .. m end)
  return ok, err, ok2, err2
end)
check(sched.loop(), "loop after pcall")
local ok, err, ok2, err2 = p:result()
check_eq(p:status(), "ok", "pcall across a yield")
check(ok == false and err == "inner", "pcall caught the error after a yield: " .. tostring(err))
check(ok2 == false and err2 == "handled again", "xpcall's handler ran: " .. tostring(err2))

-- coroutine.yield() in a task: the others run first, in turn.
local log = {}
for _, name in ipairs { "a", "b" } do
  sched.spawn(function()
    for i = 1, 3 do
      log[#log + 1] = name .. i
      coroutine.yield()
    end
  end)
end
check(sched.loop(), "loop after yields")
check_eq(table.concat(log, " "), "a1 b1 a2 b2 a3 b3", "bare yields take turns")

-- Cancelling: the task ends at once, its wait is removed (the loop has
-- nothing left: it returns without waiting 60 s) and it never runs again.
local resumed = false
local long = sched.spawn(function()
  gdlua.sleep(60)
  resumed = true
end)
check(sched.cancel(long), "cancel a sleeping task")
check_eq(long:status(), "cancelled", "status after cancel")
check_eq(sched.busy(), 0, "a cancelled task is not busy")
check(sched.loop(), "the loop returns at once")
check(not resumed, "a cancelled task is never resumed")
check(not sched.cancel(long), "cancelling an ended task is refused")

-- From another task; a running task (itself, or the one that spawned
-- the running one) cannot be cancelled.
local victim_resumed = false
local victim = sched.spawn(function()
  gdlua.sleep(60)
  victim_resumed = true
end)
local killer = sched.spawn(function()
  gdlua.sleep(0.01)
  return sched.cancel(victim)
end)
local me
me = sched.spawn(function()
  gdlua.sleep(0)
  return sched.cancel(me)
end)
check(sched.loop(), "loop after cancels")
check_eq(killer:result(), true, "one task cancels another")
check_eq(victim:status(), "cancelled", "the other is cancelled")
check(not victim_resumed, "and never resumed")
check_eq(me:result(), false, "a task cannot cancel itself")

local outer
outer = sched.spawn(function()
  gdlua.sleep(0)
  local inner = sched.spawn(function() return sched.cancel(outer) end)
  return inner:result()
end)
check(sched.loop(), "loop after nested cancel")
check_eq(outer:status(), "ok", "a task spawned by a task runs inside it, and the spawning one goes on")
check_eq(outer:result(), false, "cancelling the task that spawned the running one is refused")

-- Fd waits: ready, or past their timeout; in a task, and blocking.
local r, w = sched.pipe()
local reader = sched.spawn(function() return sched.wait_fd(r, "r", 30) end)
local writer = sched.spawn(function()
  gdlua.sleep(0.01)
  return sched.write(w, "x")
end)
check(sched.loop(), "loop after fd waits")
check_eq(reader:result(), true, "a readable fd wakes its task")
check_eq(writer:result(), 1, "the writer wrote")
local r2, w2 = sched.pipe()
local expired = sched.spawn(function() return sched.wait_fd(r2, "r", 0.05) end)
check(sched.loop(), "loop after a timeout")
local v, e = expired:result()
check(v == nil and e == "timeout", "a wait past its timeout: " .. tostring(e))
check_eq(select(2, sched.wait_fd(r2, "r", 0.02)), "timeout", "a blocking fd wait times out")
check_eq(sched.wait_fd(w2, "w", 1), true, "a blocking fd wait sees a writable fd")
for _, fd in ipairs { r, w, r2, w2 } do sched.close(fd) end

-- Left running when the state closes: the sentinel cancels it (and the
-- sanitizer pass sees no leak).
sched.spawn(function() gdlua.sleep(60) end)
check_eq(sched.busy(), 1, "a task left for lua_close")
t.finish_closing()
