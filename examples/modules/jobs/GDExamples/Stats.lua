-- A job using the user's C module examples/modules/textstats.c.
--   gdlua --cpath build/examples/modules examples/jobs examples/modules/jobs
--   printf 'two words\n' | gearman -f GDExamples::Stats::wc      -> 1 2 10
local gdlua = require "gdlua"
local textstats = require "textstats"

local Stats = gdlua.worker()

Stats:job("wc", { min_processes = 0, max_processes = 2 }, function(self, job, workload)
  local st = textstats.count(workload)
  return ("%d %d %d"):format(st.lines, st.words, st.bytes)
end)

Stats:job("crc32", { min_processes = 0, max_processes = 2 }, function(self, job, workload)
  return ("%08x"):format(textstats.crc32(workload))
end)

return Stats
