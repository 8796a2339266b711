-- gdlua.conf.lua: an example config file for gdlua --config FILE (the
-- systemd unit reads /etc/gdlua/gdlua.conf.lua). It is Lua, run in a
-- fresh state with only the base, string, table and math libraries, and
-- returns one table. Its keys are gdlua's long option names (gdlua --help,
-- man gdlua), typed: numbers, strings, true/false, and a string or a list
-- of strings for those that repeat. An option given on the command line
-- wins over the file. An unknown key, a wrong type or a value out of
-- bounds stops gdlua with a message naming the file, key and value.
-- Check a file with: gdlua --config FILE --check
return {
  -- The script directories: every *.lua below each is a job module.
  dirs = { "/usr/share/gdlua/examples/jobs" },

  -- Job servers: a list, or one string "host[:port],...".
  server = { "127.0.0.1:4730" },

  -- Extra module directories: lib = { "/srv/lua" }, cpath = { "/srv/lib" },
  -- and namespaces = { "GDExamples" } to load only those modules.
  -- lib = {},
  -- cpath = {},
  -- namespaces = {},

  -- The log: the journal (standard error) unless logfile is set; SIGUSR1
  -- reopens it (dist/gdlua.logrotate).
  loglevel = "info",
  -- logfile = "/var/log/gdlua/gdlua.log",
  -- logformat = "text",     -- or "json": one JSON object a line
  -- loglayout = "%d %p %m%n", -- Gearman::Driver's --loglayout (Log::Log4perl), text lines only; %d{HH:mm:ss.SSS} too

  -- A deploy that breaks a module: by default the other modules are
  -- served; strict refuses to start instead (a reload fails as a whole
  -- either way, and --check exits 1).
  -- strict = false,

  -- Scaling (the defaults).
  -- interval = 1,            -- seconds between queue polls; 0: only when woken
  -- max_idle_time = 10,      -- an extra process idle this long is stopped
  -- max_spawn_rate = 50,     -- process starts a second, all jobs together
  -- no_wakeups = false,      -- true with gearmand -w N

  -- Limits every job gets unless it sets its own (0: none).
  -- timeout = 0,             -- seconds a job may run (fractions allowed)
  -- client_timeout = 30,     -- a job's gdlua.client call waits this long unanswered (0: the job's timeout)
  -- max_jobs = 0,            -- a process is replaced after this many jobs
  -- max_memory = 0,          -- ... or once its RSS passes this many MiB
  -- max_attempts = 3,        -- a job that killed this many processes is failed unrun

  -- Stopping.
  -- shutdown_timeout = 30,   -- on SIGTERM, seconds before SIGKILL
  -- stop_timeout = 30,       -- a process asked to stop gets SIGKILL after this

  -- The management console (gdlua-console); 0: none.
  console_port = 47300,
  console_bind = "127.0.0.1",
  -- console_token = "/etc/gdlua/console.token",
  -- console_insecure = false,

  -- HTTP: /metrics (dist/prometheus.yml scrapes it), /status.json and
  -- the dashboard at /; the same address rule as the console's.
  -- http_bind = "127.0.0.1:9464",
  -- http_token = "/etc/gdlua/http.token",
  -- http_insecure = false,

  -- Outside systemd (whose unit sets none of these):
  -- daemonize = false,
  -- pidfile = "/run/gdlua/gdlua.pid",
  -- user = "gdlua",
  -- group = "gdlua",
  -- check = false,

  -- Per-job overrides, by the job's name as the console's status shows
  -- it; they win over the module's own attributes. The keys:
  -- min_processes, max_processes, max_idle_time, timeout, max_attempts,
  -- max_jobs, max_memory. A job that is not loaded is a warning (an
  -- error for --check).
  jobs = {
    ["GDExamples::Fib::fib"] = { max_processes = 2 },
    -- ["GDExamples::Convert::convert_to_jpeg"] = { max_processes = 8, timeout = 30 },
  },
}
