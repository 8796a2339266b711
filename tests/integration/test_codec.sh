#!/bin/bash
# encode/decode attributes: decode transforms the workload before the job
# (job.workload keeps the raw bytes), encode transforms the result; both
# as functions and as method names.
source "$(dirname "$0")/lib.sh"

start_gearmand
start_gdlua "$FIXTURES/codec"
for f in Test::Codec::fn Test::Codec::named Test::Codec::table Test::Codec::raw_table; do
    wait_for "a worker for $f" 10 has_workers "$f"
done

out=$(gm -f Test::Codec::fn abcDef) || fail "Test::Codec::fn failed"
assert_eq "decode/encode as functions" "GOT:FEDCBA:RAW=ABCDEF" "$out"

out=$(gm -f Test::Codec::named 'hello world') || fail "Test::Codec::named failed"
assert_eq "decode/encode as method names" "GOT:DLROW OLLEH" "$out"

out=$(gm -f Test::Codec::table xyz) || fail "Test::Codec::table failed"
assert_eq "encode of a table result" "x,y,z" "$out"

if gm -f Test::Codec::raw_table xyz >"$TMP/raw.out" 2>"$TMP/raw.err"; then
    fail "a table result without encode succeeded: '$(cat "$TMP/raw.out")'"
fi
assert_contains "table result without encode" "$(cat "$TMP/raw.err")" "job returned a table"

# encode naming a missing method is a load error.
check=$(timeout 20 "$GDLUA" --check "$FIXTURES/codec_bad" 2>&1)
rc=$?
assert_eq "--check exit status with a missing encode method" 1 "$rc"
assert_contains "--check output" "$check" "module Test::BadCodec not loaded"
assert_contains "--check output" "$check" 'job "broken": encode names method no_such_method, which the worker does not define'

pass
