#!/bin/bash
# gdlua.image behind gearman: every pair of JPEG, PNG, GIF and WebP
# converts to an image of the right format and size; corrupt, truncated
# and oversized input fail the job with a message and the same process
# serves the next one; thumbnails; the master refuses to convert; a
# child's memory stays flat over 300 GIF conversions; the seed's
# GDExamples::Convert through `gearman -f` as the seed shows it.
source "$(dirname "$0")/lib.sh"

SAMPLE=$REPO/examples/sample.png
F=Test::Image

# info FILE: "WIDTHxHEIGHT FORMAT BANDS" as the service decodes FILE.
info() {
    gm -f $F::info <"$1" 2>"$TMP/info.err" || echo "info failed: $(cat "$TMP/info.err")"
}

# rss PID: the process's anonymous resident memory in kB (RssAnon: the
# part of its RSS a leak grows; file-backed pages such as libvips' code
# are faulted in as code paths first run, and say nothing about leaks).
rss() {
    awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"
}

# expect_failure FUNC FILE MESSAGE: the job fails and the client gets
# MESSAGE; the process serving the image jobs is still the same.
expect_failure() {
    if gm -f "$1" <"$2" >"$TMP/fail.out" 2>"$TMP/fail.err"; then
        fail "$1 on $(basename "$2") succeeded ($(stat -c %s "$TMP/fail.out") bytes)"
    fi
    assert_contains "$1 on $(basename "$2"): client stderr" "$(cat "$TMP/fail.err")" "$3"
    assert_eq "pid serving after $1 on $(basename "$2")" "$PID" "$(gm -f $F::pid -s)"
}

# ---- the master refuses: a module converting at load time fails ----
(cd "$FIXTURES/image" && timeout 20 "$GDLUA" --check master >"$TMP/check.out" 2>"$TMP/check.err")
assert_eq "--check master: exit status" 1 "$?"
assert_contains "--check master" "$(cat "$TMP/check.err")" \
    "module Test::AtLoad not loaded: master/Test/AtLoad.lua:6: gdlua.image.convert: refused in the master process: conversions run in worker processes only"

start_gearmand
# One malloc arena: glibc gives threads arenas of their own (kept once the
# thread is gone), and how many libvips worker threads run at once
# depends on the load on the machine, so without this the memory check
# below measures the load, not leaks. (gdlua.image's own limit of 2
# arenas yields to it; with 2, the second arena's heap, some 4.6 MB,
# came after the warm-up in 2 loaded runs out of 8.)
MALLOC_ARENA_MAX=1 start_gdlua --console_port 0 "$FIXTURES/image/serve" "$REPO/examples/jobs"
wait_for "a worker for $F::to_jpeg" 10 has_workers $F::to_jpeg
PID=$(gm -f $F::pid -s) || fail "pid job failed"
[[ $PID =~ ^[0-9]+$ ]] || fail "pid job returned '$PID'"

# libvips was initialised in the master (the modules require it) but no
# thread was started there: forking stays safe.
assert_eq "threads in the master" 1 "$(awk '/^Threads:/ { print $2 }' "/proc/$GDLUA_PID/status")"

# ---- every format pair ----
assert_eq "info of sample.png" "320x240 png 4" "$(info "$SAMPLE")"
cp "$SAMPLE" "$TMP/in.png"
for to in jpeg gif webp; do
    gm -f $F::to_$to <"$SAMPLE" >"$TMP/in.$to" || fail "to_$to of sample.png failed"
done
assert_eq "JPEG magic" "ffd8ff" "$(head -c 3 "$TMP/in.jpeg" | od -An -tx1 | tr -d ' \n')"
assert_eq "GIF magic" "GIF89a" "$(head -c 6 "$TMP/in.gif")"
assert_eq "WebP magic" "WEBP" "$(head -c 12 "$TMP/in.webp" | tail -c 4)"
# Bands: JPEG has no alpha (the sample's is flattened onto white); the
# other formats keep the sample's.
for from in png jpeg gif webp; do
    for to in jpeg png gif webp; do
        gm -f $F::to_$to <"$TMP/in.$from" >"$TMP/out.$from.$to" || fail "$from -> $to failed"
        want=4
        [[ $from == jpeg || $to == jpeg ]] && want=3
        assert_eq "$from -> $to" "320x240 $to $want" "$(info "$TMP/out.$from.$to")"
    done
done

# ---- bad input: nil, message; the same process serves on ----
head -c 20000 /dev/urandom >"$TMP/random.bin"
printf 'not an image' >>"$TMP/random.bin"
expect_failure $F::to_png "$TMP/random.bin" "gdlua.image: input is not a JPEG, PNG, GIF or WebP image"
head -c $(($(stat -c %s "$SAMPLE") / 2)) "$SAMPLE" >"$TMP/half.png"
expect_failure $F::to_jpeg "$TMP/half.png" \
    "gdlua.image: cannot convert the PNG input to JPEG: vipspng: libpng read error (truncated or corrupt input?)"
head -c $(($(stat -c %s "$TMP/in.jpeg") / 2)) "$TMP/in.jpeg" >"$TMP/half.jpeg"
expect_failure $F::to_png "$TMP/half.jpeg" \
    "gdlua.image: cannot convert the JPEG input to PNG: VipsJpeg: Premature end of input file (truncated or corrupt input?)"
head -c $(($(stat -c %s "$TMP/in.gif") / 2)) "$TMP/in.gif" >"$TMP/half.gif"
expect_failure $F::to_png "$TMP/half.gif" "gdlua.image: cannot read the GIF header (truncated or corrupt input)"
# A decompression bomb: a JPEG whose frame header claims 20000x20000
# (0x4e20), refused from the header before any pixel is decoded.
cp "$TMP/in.jpeg" "$TMP/huge.jpeg"
sof=$(LC_ALL=C grep -obUaP '\xff\xc0' "$TMP/huge.jpeg" | head -1 | cut -d: -f1)
[[ -n $sof ]] || fail "no SOF0 marker in the JPEG"
printf '\x4e\x20\x4e\x20' | dd of="$TMP/huge.jpeg" bs=1 seek=$((sof + 5)) conv=notrunc status=none
expect_failure $F::to_png "$TMP/huge.jpeg" "gdlua.image: image is 20000x20000 = 400 MP, over max_pixels 50 MP"
expect_failure $F::to_jpeg_small "$SAMPLE" "gdlua.image: image is 320x240 = 76800 pixels, over max_pixels 1000 pixels"
assert_eq "failed jobs counted in the log" 6 "$(log_count "$F::to_")"

# ---- thumbnails keep the aspect and the input's format ----
gm -f $F::thumb100 <"$SAMPLE" >"$TMP/thumb.png" || fail "thumb100 of PNG failed"
assert_eq "thumbnail of the PNG" "100x75 png 4" "$(info "$TMP/thumb.png")"
gm -f $F::thumb100 <"$TMP/in.jpeg" >"$TMP/thumb.jpeg" || fail "thumb100 of JPEG failed"
assert_eq "thumbnail of the JPEG" "100x75 jpeg 3" "$(info "$TMP/thumb.jpeg")"

# ---- memory: flat over 300 GIF conversions of a 640x480 image ----
# The input: the sample thumbnailed up, by a `gdlua run` script (a
# process of its own, which sets libvips up on first use).
"$GDLUA" run /dev/stdin "$SAMPLE" "$TMP/big.png" <<'EOF' || fail "could not make the 640x480 image"
local image = require "gdlua.image"
local f = assert(io.open(arg[1], "rb"))
local out = assert(image.thumbnail(f:read("*a"), 640))
f:close()
f = assert(io.open(arg[2], "wb"))
f:write(out)
f:close()
EOF
assert_eq "the 640x480 input" "640x480 png 4" "$(info "$TMP/big.png")"
# A first batch warms up: how many libvips worker threads (and so stacks
# and arenas) a process grows depends on the load on the machine while it
# converts, not on how many conversions it has done.
pid=$(gm -f $F::gif30 <"$TMP/big.png") || fail "gif30 failed"
assert_eq "gif30 ran in the image process" "$PID" "$pid"
if [[ ${GDLUA_SANITIZED:-} == 1 ]]; then
    # ASan keeps freed memory in its quarantine (up to 256 MB), so RssAnon
    # says nothing about leaks there; and 300 conversions take half a
    # minute or more.
    echo "SKIP the memory check in a sanitizer build (GDLUA_SANITIZED=1): ASan's quarantine hides growth"
else
    gm -f $F::gif30 <"$TMP/big.png" >/dev/null || fail "gif30 batch 1 failed"
    rss30=$(rss "$PID")
    for ((i = 2; i <= 10; i++)); do
        gm -f $F::gif30 <"$TMP/big.png" >/dev/null || fail "gif30 batch $i failed"
    done
    rss300=$(rss "$PID")
    echo "RssAnon of $PID: ${rss30} kB after 30 GIF conversions, ${rss300} kB after 300 (both after 30 to warm up)"
    ((rss300 * 100 <= rss30 * 120)) || fail "RSS grew from ${rss30} kB to ${rss300} kB (over 20%)"
fi

# ---- the seed's example, as the seed runs it ----
gm -f GDExamples::Convert::convert_to_jpeg <"$SAMPLE" >"$TMP/sample.jpg" || fail "convert_to_jpeg failed"
assert_eq "convert_to_jpeg output" "320x240 jpeg 3" "$(info "$TMP/sample.jpg")"
gm -f GDExamples::Convert::convert_to_gif <"$SAMPLE" >"$TMP/sample.gif" || fail "convert_to_gif failed"
assert_eq "convert_to_gif output" "320x240 gif 4" "$(info "$TMP/sample.gif")"
jpid=$(worker_pids_for GDExamples::Convert::convert_to_jpeg | head -1)
[[ -n $jpid ]] || fail "no process for convert_to_jpeg"
assert_eq "title of the convert_to_jpeg process" "gdlua: worker (GDExamples::Convert::convert_to_jpeg)" \
    "$(tr '\0' ' ' <"/proc/$jpid/cmdline" | sed 's/ *$//')"
if gm -f GDExamples::Convert::convert_to_gif <"$TMP/random.bin" >/dev/null 2>"$TMP/cv.err"; then
    fail "convert_to_gif of random bytes succeeded"
fi
assert_contains "convert_to_gif of random bytes" "$(cat "$TMP/cv.err")" \
    "gdlua.image: input is not a JPEG, PNG, GIF or WebP image"

pass
