#!/bin/bash
# fresh-root.sh: the README's two commands, as a new user runs them, in a
# fresh Debian bookworm root: debootstrap into a scratch directory, a
# clone of this checkout's HEAD at /root/gdlua (mode 700, as root), then
# `bash examples/demo.sh` and `bash tests/run.sh` in a chroot with
# /proc, /sys and /dev bound, under `env -i` (no locale, no terminal, only
# HOME and PATH), and a policy-rc.d that keeps package scripts from
# starting services. Whatever the suite needs and a new machine lacks
# (a package, a locale, a font, a DBus socket, a world-readable
# checkout) fails here. Not run in CI: it takes the suite's time twice
# plus the root's download.
#
#   sudo bash tests/fresh-root.sh [DIR]
#
# DIR is the scratch directory (default: a new one under /var/tmp),
# removed at the end unless GDLUA_KEEP_ROOT=1 (a DIR that holds a root
# already is reused: the clone is made anew, the packages the first run
# installed stay). GDLUA_DEBOOTSTRAP_ARGS adds debootstrap arguments
# (e.g. --variant=minbase), GDLUA_MIRROR names the mirror (default the
# first deb.debian.org-style URI of this machine's sources), GDLUA_FRESH_CMD
# replaces the commands run in the root. The log of each step goes to
# stdout; exits with the commands' status.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $(id -u) == 0 ]] || {
    echo "fresh-root.sh: needs root (debootstrap, chroot, mount)" >&2
    exit 2
}

mirror=${GDLUA_MIRROR:-}
if [[ -z $mirror ]]; then
    mirror=$(grep -hoE '^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]*/debian/?([[:space:]]|$)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE 'https?://[^[:space:]]*' | head -n 1) || true
    mirror=${mirror:-http://deb.debian.org/debian}
fi
mirror=${mirror%/}
security=${mirror%/debian}/debian-security

if ! command -v debootstrap >/dev/null; then
    echo "==== installing debootstrap" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
fi

if [[ -n ${1:-} ]]; then
    DIR=$(mkdir -p "$1" && cd "$1" && pwd)
else
    DIR=$(mktemp -d /var/tmp/gdlua-fresh-root.XXXXXX)
fi
[[ $DIR != / ]] || exit 2

# Mounts are undone before anything is removed, and the removal stays on
# the root's own file system: a bound /dev or /sys is never recursed into.
mounted() {
    awk -v d="$DIR/" 'index($2 "/", d) == 1 { print $2 }' /proc/self/mounts
}
cleanup() {
    local rc=$? m
    trap - EXIT
    for m in proc sys dev; do
        if mountpoint -q "$DIR/$m"; then
            umount -R "$DIR/$m" 2>/dev/null || umount -R -l "$DIR/$m" || true
        fi
    done
    if [[ -n $(mounted) ]]; then
        echo "fresh-root.sh: still mounted, $DIR kept: $(mounted | paste -sd' ')" >&2
    elif [[ ${GDLUA_KEEP_ROOT:-0} == 1 ]]; then
        echo "fresh-root.sh: kept $DIR" >&2
    else
        rm -rf --one-file-system "$DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$SECONDS
if [[ ! -x $DIR/usr/bin/apt-get ]]; then
    echo "==== debootstrap bookworm $DIR $mirror ${GDLUA_DEBOOTSTRAP_ARGS:-}" >&2
    # shellcheck disable=SC2086 # a list of arguments
    debootstrap ${GDLUA_DEBOOTSTRAP_ARGS:-} bookworm "$DIR" "$mirror" >"$DIR.debootstrap.log" 2>&1 || {
        tail -n 30 "$DIR.debootstrap.log" >&2
        exit 1
    }
    rm -f "$DIR.debootstrap.log"
fi
# The updates and security suites, as on an installed machine.
cat >"$DIR/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
cp /etc/resolv.conf "$DIR/etc/resolv.conf" 2>/dev/null || true
# Package scripts must not start services (gearmand, prometheus) in the
# root: the suite starts what it needs itself.
printf '#!/bin/sh\nexit 101\n' >"$DIR/usr/sbin/policy-rc.d"
chmod 755 "$DIR/usr/sbin/policy-rc.d"

for m in proc sys dev; do
    mountpoint -q "$DIR/$m" && continue
    case $m in
    proc) mount -t proc proc "$DIR/proc" ;;
    sys) mount --rbind /sys "$DIR/sys" && mount --make-rslave "$DIR/sys" ;;
    dev) mount --rbind /dev "$DIR/dev" && mount --make-rslave "$DIR/dev" ;;
    esac
done

# The checkout as a clone of HEAD (what CI tests), owned by root, under a
# /root only root may enter.
head=$(git -C "$ROOT" rev-parse HEAD)
[[ -z $(git -C "$ROOT" status --porcelain --untracked-files=no) ]] ||
    echo "fresh-root.sh: the work tree has uncommitted changes; the root gets HEAD ($head) only" >&2
rm -rf --one-file-system "$DIR/root/gdlua"
git clone -q --no-hardlinks --no-checkout "$ROOT" "$DIR/root/gdlua"
git -C "$DIR/root/gdlua" checkout -q --detach "$head"
chown -R root:root "$DIR/root"
chmod 700 "$DIR/root"
echo "==== root ready in $((SECONDS - t0)) s: $DIR, /root/gdlua at $head" >&2

cmd=${GDLUA_FRESH_CMD:-"bash examples/demo.sh && bash tests/run.sh"}
echo "==== chroot $DIR: cd /root/gdlua && $cmd" >&2
rc=0
chroot "$DIR" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /root/gdlua && $cmd" </dev/null || rc=$?
echo "==== fresh-root.sh: exit status $rc after $((SECONDS - t0)) s" >&2
exit "$rc"
