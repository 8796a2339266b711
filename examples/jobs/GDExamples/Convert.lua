-- The seed's image converter (Gearman::Driver's GDExamples::Convert, which
-- used Imager), as a gdlua job module on gdlua.image (libvips). Input is
-- JPEG, PNG, GIF or WebP:
--   gearman -f GDExamples::Convert::convert_to_jpeg < examples/sample.png > sample.jpg
--   gearman -f GDExamples::Convert::convert_to_gif  < examples/sample.png > sample.gif
-- No process runs until a job arrives (min_processes 0); each function
-- runs up to 5. Titles read "gdlua: worker (GDExamples::Convert::convert_to_gif)".
local gdlua = require "gdlua"
local image = require "gdlua.image"

local Convert = gdlua.worker()

function Convert:process_name(orig, job_name)
  return orig .. " (" .. job_name .. ")"
end

-- Bad input (not an image, truncated, too large) fails the job with
-- gdlua.image's message, as the seed's `or die` did; the process goes on.
local function convert(workload, format)
  local out, err = image.convert(workload, format)
  if out == nil then
    error(err, 0)
  end
  return out
end

Convert:job("convert_to_jpeg", { min_processes = 0, max_processes = 5 }, function(self, job, workload)
  return convert(workload, "jpeg")
end)

Convert:job("convert_to_gif", { min_processes = 0, max_processes = 5 }, function(self, job, workload)
  return convert(workload, "gif")
end)

return Convert
