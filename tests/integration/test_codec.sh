#!/bin/bash
# encode/decode attributes: decode transforms the workload before the job
# (job.workload keeps the raw bytes), encode transforms the result; as
# functions, as method names and as true (the worker's own decode/encode
# methods, Gearman::Driver's bare Decode/Encode). Attributes are merged
# (default_attributes, the job's, override_attributes) before they are
# checked, so an invalid value that an override replaces loads.
source "$(dirname "$0")/lib.sh"

start_gearmand
start_gdlua "$FIXTURES/codec"
for f in Test::Codec::fn Test::Codec::named Test::Codec::table Test::Codec::raw_table Test::Codec::bare \
    Test::CodecLayers::over; do
    wait_for "a worker for $f" 10 has_workers "$f"
done

out=$(gm -f Test::Codec::fn abcDef) || fail "Test::Codec::fn failed"
assert_eq "decode/encode as functions" "GOT:FEDCBA:RAW=ABCDEF" "$out"

out=$(gm -f Test::Codec::named 'hello world') || fail "Test::Codec::named failed"
assert_eq "decode/encode as method names" "GOT:DLROW OLLEH" "$out"

out=$(gm -f Test::Codec::table xyz) || fail "Test::Codec::table failed"
assert_eq "encode of a table result" "x,y,z" "$out"

out=$(gm -f Test::Codec::bare c,a,b) || fail "Test::Codec::bare failed"
assert_eq "decode = true / encode = true (W:decode, W:encode)" "a+b+c+raw=c,a,b" "$out"

out=$(gm -f Test::CodecLayers::over abc) || fail "Test::CodecLayers::over failed"
assert_eq "override_attributes' encode/decode = true over the job's invalid ones" "OVER:CBA" "$out"

if gm -f Test::Codec::raw_table xyz >"$TMP/raw.out" 2>"$TMP/raw.err"; then
    fail "a table result without encode succeeded: '$(cat "$TMP/raw.out")'"
fi
assert_contains "table result without encode" "$(cat "$TMP/raw.err")" "job returned a table"

# encode naming a missing method, or decode = true without a decode
# method, is a load error naming file:line, job and attribute.
check=$(timeout 20 "$GDLUA" --check "$FIXTURES/codec_bad" 2>&1)
rc=$?
assert_eq "--check exit status with a missing encode method" 1 "$rc"
assert_contains "--check output" "$check" "module Test::BadCodec not loaded"
assert_contains "--check output" "$check" 'job "broken": encode names method no_such_method, which the worker does not define'
assert_contains "--check output" "$check" "module Test::BadBare not loaded"
assert_contains "--check output" "$check" \
    "Test/BadBare.lua:7: job \"bare\": decode = true means the worker's method decode, which the worker does not define"

check=$(timeout 20 "$GDLUA" --check "$FIXTURES/codec" 2>&1) || fail "--check of the codec fixtures failed: $check"
assert_contains "--check lists the override case" "$check" \
    "Test::CodecLayers::layers min=1 max=1 functions=Test::CodecLayers::over "

pass
