-- A job using the user's C module examples/modules/textstats.c.
--   gdlua --cpath build/examples/modules examples/jobs examples/modules/jobs
--   printf 'two words\n' | gearman -f GDExamples::Stats::wc      -> 1 2 10
--   gearman -f GDExamples::Stats::usage < /dev/null              -> calls and bytes this process read
-- The three functions share one process (started on demand), so usage
-- counts the wc and crc32 jobs it served.
local gdlua = require "gdlua"
local textstats = require "textstats"

-- Checked once at load, in the master: the CRC-32 check value. The child
-- hook of textstats keeps this out of the workers' usage figures.
assert(textstats.crc32("123456789") == 0xcbf43926, "textstats.crc32 is broken")

local Stats = gdlua.worker()

Stats:job("wc", { process_group = "text", min_processes = 0, max_processes = 1 }, function(self, job, workload)
  local st = textstats.count(workload)
  return ("%d %d %d"):format(st.lines, st.words, st.bytes)
end)

Stats:job("crc32", { process_group = "text" }, function(self, job, workload)
  return ("%08x"):format(textstats.crc32(workload))
end)

Stats:job("usage", { process_group = "text" }, function(self, job, workload)
  local u = textstats.usage()
  return ("%d %d"):format(u.calls, u.bytes)
end)

return Stats
