-- Small text jobs sharing one process type (a process group), with the
-- begin/end hooks logging each call.
--   gearman -f GDExamples::Text::reverse 'hello'   -> olleh
local gdlua = require "gdlua"

local Text = gdlua.worker()

function Text:begin(job, workload)
  gdlua.log("debug", ("begin %s %s (%d bytes)"):format(job.function_name, job.handle, #workload))
end

Text["end"] = function(self, job, workload)
  gdlua.log("debug", ("end %s %s"):format(job.function_name, job.handle))
end

Text:job("echo", { process_group = "text" }, function(self, job, workload)
  return workload
end)

Text:job("reverse", { process_group = "text" }, function(self, job, workload)
  return workload:reverse()
end)

Text:job("upper", { process_group = "text" }, function(self, job, workload)
  return workload:upper()
end)

return Text
