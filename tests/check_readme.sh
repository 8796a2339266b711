#!/bin/bash
# check_readme.sh GDLUA README: the option list in the README is exactly
# what "gdlua --help" prints (the option table is the one source).
set -euo pipefail
want=$("$1" --help)
got=$(awk '/^usage: gdlua/ {on = 1} on && /^```/ {exit} on {print}' "$2")
if [ "$want" != "$got" ]; then
    echo "README's option block differs from gdlua --help:"
    diff <(echo "$got") <(echo "$want") || true
    exit 1
fi
echo "1 passed, 0 failed"
