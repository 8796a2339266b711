-- image_info.lua: prints an image file's format and size with gdlua.image.
--   gdlua run examples/image_info.lua FILE...
local image = require "gdlua.image"

if #arg == 0 then
  io.stderr:write("usage: gdlua run image_info.lua FILE...\n")
  os.exit(2)
end
local status = 0
for _, path in ipairs(arg) do
  local f, err = io.open(path, "rb")
  local info
  if f then
    info, err = image.info(f:read("*a"))
    f:close()
  end
  if info then
    print(("%s: %s %dx%d, %d band(s)"):format(path, info.format, info.width, info.height, info.bands))
  else
    io.stderr:write(path, ": ", tostring(err), "\n")
    status = 1
  end
end
os.exit(status)
