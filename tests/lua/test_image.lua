-- test_image.lua: the gdlua.image module (runtime/modules/gdl_image.c):
-- conversions between every pair of formats, options, thumbnails, info,
-- limits, bad input (nil, message) and misuse (errors naming the cause).
-- Run by ctest as: gdlua run test_image.lua (not the master, so libvips
-- runs in this process, set up on first use).
local image = require "gdlua.image"
local bit = require "bit"

package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local t = require "testlib"
local check, check_eq, check_match = t.check, t.check_eq, t.check_match

local here = arg[0]:match("^(.*)/") or "."
local f = assert(io.open(here .. "/../../examples/sample.png", "rb"))
local sample = f:read("*a")
f:close()

-- "WxH format bands" of an image, or the failure message.
local function describe(data)
  local i, err = image.info(data)
  if not i then return err end
  return ("%dx%d %s %d"):format(i.width, i.height, i.format, i.bands)
end

-- ---- crafted PNGs: uncompressed (stored deflate blocks), any pixels ----

local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    c = bit.band(c, 1) == 1 and bit.bxor(bit.rshift(c, 1), 0xEDB88320) or bit.rshift(c, 1)
  end
  crc_table[i] = c
end
local function crc32(s)
  local c = 0xffffffff
  for i = 1, #s do
    c = bit.bxor(crc_table[bit.band(bit.bxor(c, s:byte(i)), 255)], bit.rshift(c, 8))
  end
  return bit.bxor(c, 0xffffffff)
end
local function be32(n)
  return string.char(bit.band(bit.rshift(n, 24), 255), bit.band(bit.rshift(n, 16), 255),
    bit.band(bit.rshift(n, 8), 255), bit.band(n, 255))
end
local function chunk(kind, data)
  return be32(#data) .. kind .. data .. be32(crc32(kind .. data))
end

-- png(w, h, colour_type, depth, sample_bytes): every pixel the same
-- (sample_bytes, already in PNG byte order).
local function png(w, h, colour_type, depth, pixel)
  local row = "\0" .. pixel:rep(w)
  local raw = row:rep(h)
  local a, b = 1, 0
  for i = 1, #raw do
    a = (a + raw:byte(i)) % 65521
    b = (b + a) % 65521
  end
  assert(#raw < 65536)
  local len = #raw
  local deflate = "\x78\x01\x01" .. string.char(len % 256, math.floor(len / 256),
    255 - len % 256, 255 - math.floor(len / 256)) .. raw .. be32(b * 65536 + a)
  return "\x89PNG\r\n\x1a\n"
    .. chunk("IHDR", be32(w) .. be32(h) .. string.char(depth, colour_type, 0, 0, 0))
    .. chunk("IDAT", deflate) .. chunk("IEND", "")
end

-- The first pixel of an image, read back from its PNG at compression 0
-- (stored deflate blocks, rows filtered with "none").
local function le16(s, at) return s:byte(at) + 256 * s:byte(at + 1) end
local function colour(data)
  local p = assert(image.convert(data, "png", { compression = 0 }))
  local at, idat = 9, {}
  while at < #p do
    local len = ((p:byte(at) * 256 + p:byte(at + 1)) * 256 + p:byte(at + 2)) * 256 + p:byte(at + 3)
    if p:sub(at + 4, at + 7) == "IDAT" then idat[#idat + 1] = p:sub(at + 8, at + 7 + len) end
    at = at + 12 + len
  end
  local z = table.concat(idat)
  assert(z:byte(3) <= 1 and le16(z, 4) == 65535 - le16(z, 6), "stored deflate block")
  assert(z:byte(8) == 0, "row filter none")
  return { z:byte(9, 11) }
end
local function check_colour(data, want, what)
  local got = colour(data)
  local close = true
  for i = 1, 3 do
    close = close and math.abs(got[i] - want[i]) <= 3
  end
  check(close, ("%s: colour %s,%s,%s, want about %d,%d,%d"):format(what, tostring(got[1]), tostring(got[2]),
    tostring(got[3]), want[1], want[2], want[3]))
end

-- ---- info ----

local i = image.info(sample)
check_eq(i.width, 320, "info width")
check_eq(i.height, 240, "info height")
check_eq(i.format, "png", "info format")
check_eq(i.bands, 4, "info bands")
check(type(image.vips_version) == "string" and image.vips_version:match("^%d+%.%d+") ~= nil, "vips_version")

-- ---- every pair of formats ----

local inputs = { png = sample }
for _, to in ipairs { "jpeg", "gif", "webp" } do
  inputs[to] = assert(image.convert(sample, to))
end
check_eq(inputs.jpeg:sub(1, 3), "\255\216\255", "JPEG magic")
check_eq(inputs.gif:sub(1, 6), "GIF89a", "GIF magic")
check_eq(inputs.webp:sub(9, 12), "WEBP", "WebP magic")
for _, from in ipairs { "png", "jpeg", "gif", "webp" } do
  for _, to in ipairs { "jpeg", "png", "gif", "webp" } do
    local out, err = image.convert(inputs[from], to)
    check(out ~= nil, ("%s -> %s: %s"):format(from, to, tostring(err)))
    -- JPEG has no alpha: the sample's is flattened (and stays gone).
    local bands = (from == "jpeg" or to == "jpeg") and 3 or 4
    check_eq(out and describe(out), ("320x240 %s %d"):format(to, bands), from .. " -> " .. to)
  end
end
check_eq(describe(assert(image.convert(sample, "jpg"))), "320x240 jpeg 3", "jpg is jpeg")
check_eq(select("#", image.convert(sample, "png")), 1, "success returns one value")

-- ---- options ----

local q30, q95 = image.convert(sample, "jpeg", { quality = 30 }), image.convert(sample, "jpeg", { quality = 95 })
check(#q30 < #q95, ("quality 30 (%d bytes) is smaller than 95 (%d)"):format(#q30, #q95))
local w30, w95 = image.convert(sample, "webp", { quality = 30 }), image.convert(sample, "webp", { quality = 95 })
check(#w30 < #w95, ("WebP quality 30 (%d bytes) is smaller than 95 (%d)"):format(#w30, #w95))
check_match(inputs.jpeg, "Exif", "metadata kept by default")
local stripped = image.convert(sample, "jpeg", { strip = true })
check(not stripped:find("Exif", 1, true), "strip drops the metadata")
local g1 = image.convert(sample, "gif", { effort = 1, dither = 0 })
check_eq(g1, inputs.gif, "GIF defaults are effort 1 without dithering")
check_eq(image.convert(sample, "gif", { bitdepth = 8 }), inputs.gif, "GIF defaults to 8 bits (256 colours)")
local g4 = image.convert(sample, "gif", { bitdepth = 4 })
check(#g4 < #g1 and describe(g4) == "320x240 gif 4", ("bitdepth 4 (%d bytes) is smaller than 8 (%d)"):format(#g4, #g1))
check_eq(g4:byte(11) % 8, 3, "bitdepth 4: a palette of 16 entries")
local g7 = image.convert(sample, "gif", { effort = 7, dither = 1 })
check(g7 ~= g1 and describe(g7) == "320x240 gif 4", "effort 7 with dithering is another valid GIF")

-- Alpha onto the background for JPEG: white by default, else as asked,
-- also for grey, 16-bit and fully transparent images.
local clear = png(8, 8, 6, 8, "\0\0\0\0")                        -- RGBA, transparent
check_colour(image.convert(clear, "jpeg"), { 255, 255, 255 }, "default background")
check_colour(image.convert(clear, "jpeg", { background = { 255, 0, 0 } }), { 255, 0, 0 }, "red background")
check_colour(image.convert(clear, "jpeg", { background = 0 }), { 0, 0, 0 }, "grey level 0")
local grey_clear = png(8, 8, 4, 8, "\128\0")                     -- grey + alpha
check_eq(describe(image.convert(grey_clear, "jpeg")), "8x8 jpeg 1", "grey stays grey on a grey background")
local on_blue = image.convert(grey_clear, "jpeg", { background = { 0, 0, 255 } })
check_eq(describe(on_blue), "8x8 jpeg 3", "grey on a coloured background becomes RGB")
check_colour(on_blue, { 0, 0, 255 }, "grey on blue")
local deep = png(8, 8, 6, 16, "\0\0\0\0\0\0\0\0")                -- 16-bit RGBA, transparent
check_colour(image.convert(deep, "jpeg", { background = { 0, 255, 0 } }), { 0, 255, 0 }, "16-bit on green")
local half = png(8, 8, 6, 8, "\0\0\0\128")                       -- black at half alpha
check_colour(image.convert(half, "jpeg"), { 127, 127, 127 }, "half alpha blends")
check_colour(png(8, 8, 2, 8, "\10\200\30"), { 10, 200, 30 }, "the colour helper reads an opaque PNG")
check_colour(png(8, 8, 6, 8, "\10\200\30\255"), { 10, 200, 30 }, "an opaque RGBA PNG (the helper reads RGB)")
local z0, z9 = image.convert(sample, "png", { compression = 0 }), image.convert(sample, "png", { compression = 9 })
check(#z0 > 320 * 240 * 4 and #z9 < #z0, ("PNG compression 0 (%d bytes), 9 (%d)"):format(#z0, #z9))

-- PNGs libvips reads into 8-bit pixels are decoded by gdl_png.c, the
-- rest by libvips: the same file with a damaged ancillary chunk (a bad
-- CRC, which libpng passes over with a warning and gdl_png.c refuses)
-- goes to libvips, and every output but an undithered GIF (gdl_gif.c's
-- remap) must be the same bytes either way. A chunk gdl_png.c passes
-- over (text, bKGD) leaves them the same too.
local function with_chunk(data, kind, body)
  return data:sub(1, 33) .. chunk(kind, body) .. data:sub(34) -- after IHDR
end
local function via_libvips(data)
  return data:sub(1, 33) .. be32(2) .. "gdLv\0\0" .. be32(12345) .. data:sub(34)
end
check_eq(describe(via_libvips(sample)), "320x240 png 4", "libvips reads a PNG with a damaged ancillary chunk")
for _, input in ipairs { sample, with_chunk(sample, "bKGD", "\0\1\0\2\0\3"), with_chunk(sample, "tEXt", "Comment\0x") } do
  for _, to in ipairs { "jpeg", "png", "webp" } do
    check(image.convert(via_libvips(input), to, { strip = true }) == image.convert(input, to, { strip = true }),
      "a PNG decoded by gdlua and by libvips converts to the same " .. to)
  end
end
-- Opaque PNGs to JPEG skip libvips altogether (gdl_jpeg.c): the same
-- bytes as libvips's jpegsave, Exif included, at every quality.
local opaque_photo = assert(image.convert(assert(image.convert(sample, "jpeg")), "png", { strip = true }))
check_eq(describe(opaque_photo), "320x240 png 3", "an RGB PNG of the sample (IHDR, pHYs, IDAT, IEND)")
local opaque = {
  ["RGB with pHYs"] = opaque_photo,
  ["RGB, 72 dpi without pHYs"] = png(8, 8, 2, 8, "\10\200\30"),
  ["grey"] = png(9, 5, 0, 8, "\100"),
  ["RGBA"] = sample,
  ["RGB, pHYs of 4e9 pixels per unknown unit"] = with_chunk(png(8, 8, 2, 8, "\10\200\30"), "pHYs",
    "\255\255\255\255\255\255\255\255\0"),
  -- libpng keeps the first pHYs before the data, ignores a second or late one
  ["RGB, two pHYs"] = with_chunk(with_chunk(png(8, 8, 2, 8, "\10\200\30"), "pHYs", be32(11811) .. be32(11811) .. "\1"),
    "pHYs", be32(23622) .. be32(23622) .. "\1"),
  ["RGB, pHYs after the data"] = (function(d)
    return d:sub(1, #d - 12) .. chunk("pHYs", be32(11811) .. be32(11811) .. "\1") .. d:sub(#d - 11)
  end)(png(8, 8, 2, 8, "\10\200\30")),
}
for what, data in pairs(opaque) do
  local forced = via_libvips(data)
  for _, o in ipairs { {}, { quality = 90 }, { quality = 30, strip = true }, { quality = 100 } } do
    check(image.convert(forced, "jpeg", o) == image.convert(data, "jpeg", o),
      ("%s to JPEG at quality %d%s: libvips's bytes"):format(what, o.quality or 75, o.strip and ", stripped" or ""))
  end
end

-- Opaque PNGs to GIF, undithered, are remapped by gdl_gif.c (the exact
-- nearest palette colour): other bytes than libvips's, as close to the
-- original; dithered or with alpha, libvips's own bytes.
local function pixels(data) -- every RGB byte, via a PNG of stored blocks
  local p = assert(image.convert(data, "png", { compression = 0 }))
  local at, idat = 9, {}
  local width, bands = nil, ({ [0] = 1, [2] = 3, [4] = 2, [6] = 4 })[p:byte(26)]
  while at < #p do
    local len = ((p:byte(at) * 256 + p:byte(at + 1)) * 256 + p:byte(at + 2)) * 256 + p:byte(at + 3)
    if p:sub(at + 4, at + 7) == "IHDR" then width = p:byte(at + 10) * 256 + p:byte(at + 11) end
    if p:sub(at + 4, at + 7) == "IDAT" then idat[#idat + 1] = p:sub(at + 8, at + 7 + len) end
    at = at + 12 + len
  end
  local z, raw, pos = table.concat(idat), {}, 3
  while pos < #z - 4 do
    local n = le16(z, pos + 1)
    raw[#raw + 1] = z:sub(pos + 5, pos + 4 + n)
    pos = pos + 5 + n
  end
  raw = table.concat(raw)
  local out, stride = {}, width * bands + 1
  for row = 0, #raw / stride - 1 do
    for x = 0, width - 1 do
      for k = 1, 3 do out[#out + 1] = raw:byte(row * stride + 2 + x * bands + k - 1) end
    end
  end
  return out
end
local function mean_error(a, b)
  local sum = 0
  for i = 1, #a do sum = sum + math.abs(a[i] - b[i]) end
  return sum / #a
end
local forced_photo = via_libvips(opaque_photo)
local ours, theirs = image.convert(opaque_photo, "gif"), image.convert(forced_photo, "gif")
check(ours ~= theirs and describe(ours) == "320x240 gif 3",
  "an opaque PNG's GIF is gdlua's remap (a plain GIF: read back with 3 bands)")
local original = pixels(opaque_photo)
local e_ours, e_theirs = mean_error(pixels(ours), original), mean_error(pixels(theirs), original)
check(e_ours <= e_theirs * 1.05 + 0.01, ("the remap is as close as libvips's: mean error %.3f against %.3f levels")
  :format(e_ours, e_theirs))
check(e_ours < 3, ("mean error %.3f levels"):format(e_ours))
check(image.convert(opaque_photo, "gif", { dither = 0.5 }) == image.convert(forced_photo, "gif", { dither = 0.5 }),
  "dithered GIF: libvips's bytes")
check(image.convert(sample, "gif", { dither = 1 }) == image.convert(via_libvips(sample), "gif", { dither = 1 }),
  "dithered GIF of an RGBA PNG: libvips's bytes")
local g4 = image.convert(opaque_photo, "gif", { bitdepth = 4, effort = 10 })
check(bit.band(g4:byte(11), 0x80) ~= 0 and bit.band(g4:byte(11), 7) <= 3, "bitdepth 4: at most 16 colours")
check(#g4 < #ours, "bitdepth 4 makes a smaller GIF")
check_eq(describe(image.convert(png(9, 5, 0, 8, "\100"), "gif")), "9x5 gif 3", "a grey PNG to GIF")

-- ---- thumbnails ----

local function thumb(width, opts)
  local out, err = image.thumbnail(sample, width, opts)
  return out and describe(out) or err
end
check_eq(thumb(100), "100x75 png 4", "thumbnail keeps the aspect and the format")
check_eq(thumb(100, { height = 50 }), "67x50 png 4", "thumbnail fits in width x height")
check_eq(thumb(100, { height = 100, crop = true }), "100x100 png 4", "crop fills width x height")
check_eq(thumb(60, { crop = "attention" }), "60x60 png 4", "crop without height: a square")
check_eq(thumb(100, { format = "jpeg" }), "100x75 jpeg 3", "thumbnail as JPEG is flattened")
check_eq(thumb(100, { format = "webp", quality = 50 }), "100x75 webp 4", "thumbnail as WebP")
check_eq(describe(image.thumbnail(inputs.gif, 32)), "32x24 gif 4", "thumbnail of a GIF")
check_eq(describe(image.thumbnail(inputs.jpeg, 640)), "640x480 jpeg 3", "thumbnail scales up")

-- ---- bad input: nil, message ----

local function fails(want, ...)
  local n = select("#", ...)
  local out, err = ...
  check_eq(n, 2, "a failure returns two values (" .. want .. ")")
  check_eq(out, nil, "a failure returns nil (" .. want .. ")")
  check_eq(err, want, "failure message")
end
math.randomseed(7)
local noise = {}
for n = 1, 4096 do noise[n] = string.char(math.random(0, 255)) end
noise = table.concat(noise)
local not_image = "gdlua.image: input is not a JPEG, PNG, GIF or WebP image"
fails(not_image, image.convert(noise, "png"))
fails(not_image, image.thumbnail(noise, 10))
fails(not_image, image.info(noise))
fails(not_image, image.info("BM" .. noise))
fails("gdlua.image: input is empty, not a JPEG, PNG, GIF or WebP image", image.convert("", "png"))

local function truncated(data) return data:sub(1, math.floor(#data / 2)) end
fails("gdlua.image: cannot convert the PNG input to JPEG: vipspng: libpng read error (truncated or corrupt input?)",
  image.convert(truncated(sample), "jpeg"))
fails("gdlua.image: cannot convert the JPEG input to PNG: VipsJpeg: Premature end of input file"
  .. " (truncated or corrupt input?)", image.convert(truncated(inputs.jpeg), "png"))
fails("gdlua.image: cannot read the GIF header (truncated or corrupt input): gifload_buffer: Unexpected end of GIF"
  .. " source data", image.convert(truncated(inputs.gif), "png"))
fails("gdlua.image: cannot read the WebP header (truncated or corrupt input): webp: unable to parse image",
  image.convert(truncated(inputs.webp), "png"))
fails("gdlua.image: cannot read the PNG header (truncated or corrupt input)", image.info(sample:sub(1, 20)))
fails("gdlua.image: cannot make a PNG thumbnail of the PNG input: vipspng: libpng read error"
  .. " (truncated or corrupt input?)", image.thumbnail(truncated(sample), 50))
fails("gdlua.image: cannot make a JPEG thumbnail of the JPEG input: VipsJpeg: Premature end of input file"
  .. " (truncated or corrupt input?)", image.thumbnail(truncated(inputs.jpeg), 50))

-- Decompression bombs: headers claiming 20000x20000, refused before any
-- pixel is decoded (decoding would take seconds and 1.2 GB).
local function be16(n) return string.char(math.floor(n / 256), n % 256) end
local sof = inputs.jpeg:find("\255\192", 1, true)
local huge_jpeg = inputs.jpeg:sub(1, sof + 4) .. be16(20000) .. be16(20000) .. inputs.jpeg:sub(sof + 9)
local ihdr = "IHDR" .. be32(20000) .. be32(20000) .. sample:sub(25, 29)
local huge_png = sample:sub(1, 12) .. ihdr .. be32(crc32(ihdr)) .. sample:sub(34)
local bomb = "gdlua.image: image is 20000x20000 = 400 MP, over max_pixels 50 MP"
local t0 = os.clock()
fails(bomb, image.convert(huge_jpeg, "png"))
fails(bomb, image.convert(huge_png, "jpeg"))
fails(bomb, image.thumbnail(huge_jpeg, 100))
check(os.clock() - t0 < 1, "bombs are refused from the header")
check_eq(describe(huge_png), "20000x20000 png 4", "info reads the header, with no limit")
fails("gdlua.image: image is 20000x20000 = 400 MP, over max_pixels 300 MP",
  image.convert(huge_png, "jpeg", { max_pixels = 3e8 }))
fails("gdlua.image: image is 320x240 = 76800 pixels, over max_pixels 1000 pixels",
  image.convert(sample, "jpeg", { max_pixels = 1000 }))
fails("gdlua.image: input is 54604 bytes, over max_bytes 1000 bytes",
  image.convert(sample, "gif", { max_bytes = 1000 }))
fails("gdlua.image: input is 54604 bytes, over max_bytes 1000 bytes",
  image.thumbnail(sample, 10, { max_bytes = 1000 }))
fails("gdlua.image: thumbnail would be 5000x3750 = 18.75 MP, over max_pixels 1 MP",
  image.thumbnail(sample, 5000, { max_pixels = 1e6 }))
check_eq(#sample, 54604, "sample.png size (the messages above quote it)")

-- ---- misuse raises, naming the argument or option ----

local function raises(want, fn, ...)
  local ok, err = pcall(fn, ...)
  check(not ok, "raises: " .. want)
  check_match(err, want, "error message")
end
raises("bad argument #1 to '?' (string (image bytes) expected, got number)", image.convert, 5, "png")
raises("bad argument #1 to '?' (string (image bytes) expected, got no value)", image.info)
raises("bad argument #2 to '?' (unknown format \"bmp\" (use jpeg, png, gif or webp))", image.convert, sample, "bmp")
raises("bad argument #2 to '?' (string expected, got no value)", image.convert, sample)
raises("bad argument #3 to '?' (table expected, got string)", image.convert, sample, "png", "fast")
raises("bad argument #2 to '?' (width must be a whole number from 1 to 65535)", image.thumbnail, sample, 0)
raises("bad argument #2 to '?' (width must be a whole number from 1 to 65535)", image.thumbnail, sample, 10.5)
raises("gdlua.image.convert: unknown option qualty (known: quality, compression, effort, dither,"
  .. " bitdepth, background, strip, max_pixels, max_bytes)", image.convert, sample, "jpeg", { qualty = 80 })
raises("gdlua.image.convert: unknown option height", image.convert, sample, "jpeg", { height = 80 })
raises("gdlua.image.convert: option names must be strings, got a number", image.convert, sample, "jpeg", { 80 })
raises("gdlua.image.convert: option quality must be a whole number from 1 to 100, got 0",
  image.convert, sample, "jpeg", { quality = 0 })
raises("gdlua.image.convert: option quality must be a whole number from 1 to 100, got \"high\"",
  image.convert, sample, "jpeg", { quality = "high" })
raises("gdlua.image.convert: option effort must be a whole number from 1 to 10, got 11",
  image.convert, sample, "gif", { effort = 11 })
raises("gdlua.image.convert: option dither must be a number from 0 to 1, got 1.5",
  image.convert, sample, "gif", { dither = 1.5 })
raises("gdlua.image.convert: option bitdepth must be a whole number from 1 to 8, got 9",
  image.convert, sample, "gif", { bitdepth = 9 })
raises("gdlua.image.convert: option strip must be a boolean, got 1", image.convert, sample, "png", { strip = 1 })
raises("gdlua.image.convert: option background must be a grey level or an {r, g, b} table of numbers from 0 to 255,"
  .. " got table", image.convert, sample, "jpeg", { background = { 1, 2 } })
raises("gdlua.image.convert: option background must be", image.convert, sample, "jpeg", { background = 256 })
raises("gdlua.image.convert: option max_pixels must be a whole number from 1, got -5",
  image.convert, sample, "jpeg", { max_pixels = -5 })
raises("gdlua.image.thumbnail: option format must be jpeg, png, gif or webp, got \"tiff\"",
  image.thumbnail, sample, 10, { format = "tiff" })
raises("gdlua.image.thumbnail: option crop must be a boolean, or centre, entropy or attention, got \"middle\"",
  image.thumbnail, sample, 10, { crop = "middle" })
raises("gdlua.image.thumbnail: option height must be a whole number from 1 to 65535, got 0",
  image.thumbnail, sample, 10, { height = 0 })

-- Named in a real call (not through pcall's '?').
local ok, err = pcall(function()
  local out = image.convert(sample, "bmp") -- not a tail call, which would hide the name
  return out
end)
check(not ok and err:find("bad argument #2 to 'convert'", 1, true) ~= nil, "misuse names the function: " .. tostring(err))

-- ---- many calls, good and bad: nothing accumulates ----

for n = 1, 200 do
  assert(image.convert(inputs.gif, n % 2 == 0 and "png" or "jpeg"))
  assert(not image.convert(truncated(sample), "png"))
  assert(not image.info(noise))
end
check_eq(describe(image.convert(inputs.webp, "gif")), "320x240 gif 4", "still converting after 600 calls")

t.finish()
