-- Tests of jobs/GDExamples/Convert.lua (gdlua.image, on libvips), on
-- examples/sample.png.
local t = require "gdlua.testing"

local jobs = t.load("jobs/GDExamples/Convert.lua")
local f = assert(io.open("sample.png", "rb"))
local png = f:read("*a")
f:close()

t.test("both functions start on demand, up to 5 processes", function()
  t.eq(jobs["GDExamples::Convert::convert_to_jpeg"].min_processes, 0)
  t.eq(jobs["GDExamples::Convert::convert_to_gif"].max_processes, 5)
  t.eq(jobs["GDExamples::Convert::convert_to_gif"].title, "gdlua: worker (GDExamples::Convert::convert_to_gif)")
end)

t.test("PNG to JPEG", function()
  local jpeg = t.call("GDExamples::Convert::convert_to_jpeg", png)
  t.eq(jpeg:sub(1, 3), "\255\216\255", "JPEG's start of image")
end)

t.test("PNG to GIF, and the GIF back to JPEG", function()
  local gif = t.call("GDExamples::Convert::convert_to_gif", png)
  t.match(gif, "^GIF8[79]a")
  t.eq(t.call("GDExamples::Convert::convert_to_jpeg", gif):sub(1, 2), "\255\216")
end)

t.test("what is no image fails the job with gdlua.image's message", function()
  local msg = t.fails("GDExamples::Convert::convert_to_jpeg", "not an image")
  t.ok(#msg > 0, "a message")
  t.eq(select(2, require("gdlua.image").convert("not an image", "jpeg")), msg)
end)
