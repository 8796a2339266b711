#!/bin/bash
# corpus.sh: installs the image benchmark's corpus (corpus.tsv) into a
# cache directory, the way every other dependency is installed: from
# Debian's packages, with apt-get. Each package is downloaded (`apt-get
# download`: the .deb alone, not what it depends on, so python3-skimage
# brings its images without the scientific Python stack), unpacked into
# a temporary directory (`dpkg -x`, nothing installed) and the files the
# table names are copied out as DIR/NAME.png; a "width N" row is scaled
# with libvips (gdlua.image.thumbnail, through GDLUA run) and saved as
# PNG. Images already in DIR are kept, so a second run downloads nothing.
#
#   bash tests/bench/corpus.sh GDLUA DIR
#
# Exits 1 if an image could not be made (no network, a package gone).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if (($# != 2)); then
    echo "usage: $0 GDLUA DIR" >&2
    exit 2
fi
GDLUA=$1
DIR=$2
mkdir -p "$DIR"

# The rows whose image is missing: name, package, path, how.
missing=$(awk -F'\t' -v dir="$DIR" '!/^#/ && NF >= 5 {
    if (system("test -s \"" dir "/" $1 ".png\"") != 0) print $1 "\t" $3 "\t" $4 "\t" $5 }' "$HERE/corpus.tsv")
if [[ -z $missing ]]; then
    echo "corpus.sh: every image of corpus.tsv is in $DIR" >&2
    exit 0
fi
TMP=$(mktemp -d /tmp/gdlua-corpus-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# apt-get download fetches as its _apt user when it can write there.
if [[ $(id -u) == 0 ]] && id _apt >/dev/null 2>&1; then
    chown _apt "$TMP"
fi
status=0
for pkg in $(cut -f2 <<<"$missing" | sort -u); do
    echo "corpus.sh: apt-get download $pkg" >&2
    if ! (cd "$TMP" && apt-get download -qq "$pkg" >&2) && ! (apt-get update -qq >&2 && cd "$TMP" && apt-get download -qq "$pkg" >&2); then
        echo "corpus.sh: cannot download $pkg" >&2
        status=1
        continue
    fi
    dpkg -x "$TMP/${pkg}"_*.deb "$TMP/$pkg"
done
while IFS=$'\t' read -r name pkg path how; do
    src=$TMP/$pkg/$path
    if [[ ! -f $src ]]; then
        echo "corpus.sh: $pkg has no $path: $name not made" >&2
        status=1
        continue
    fi
    case $how in
    copy) cp "$src" "$DIR/$name.png.tmp" ;;
    "width "*)
        cat >"$TMP/scale.lua" <<'LUA'
local image = require "gdlua.image"
local src, dst, width = arg[1], arg[2], tonumber(arg[3])
local f = assert(io.open(src, "rb"))
local data = f:read("*a")
f:close()
local png = assert(image.thumbnail(data, width, { format = "png", strip = true, max_pixels = 1e8, max_bytes = 1e8 }))
f = assert(io.open(dst, "wb"))
f:write(png)
f:close()
LUA
        "$GDLUA" run "$TMP/scale.lua" "$src" "$DIR/$name.png.tmp" "${how#width }"
        ;;
    *)
        echo "corpus.sh: $name: unknown way to make it: $how" >&2
        status=1
        continue
        ;;
    esac
    mv "$DIR/$name.png.tmp" "$DIR/$name.png"
    echo "corpus.sh: $name.png from $pkg ($how)" >&2
done <<<"$missing"
exit $status
