#!/usr/bin/env bash
# A Godot 4 runtime for the addon's tests, on a Debian whose own libc is too old for Godot 4.
#
#   scripts/godot4.sh                 build the runtime once if needed, print the Godot version
#   scripts/godot4.sh --check         print the version if the runtime is built; exit 1 if not
#   scripts/godot4.sh ARGS...         run Godot with ARGS (e.g. --headless --path DIR -s SCRIPT)
#
# The runtime is Debian sid's `godot` package in a root filesystem made by mmdebstrap, kept in
# ${SCOREWRIGHT_GODOT_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/scorewright/godot-sid} (outside
# the repository, built once, reused). Godot runs through that root's own dynamic loader and
# libraries, so it sees the host's files and network as they are (no chroot). The build needs
# root (or sudo), apt and about 650 MB; it uses the Debian mirror already configured in
# /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources. Set GODOT=/path/to/godot to
# use a Godot 4 you already have instead.
set -euo pipefail

HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
ROOT="${SCOREWRIGHT_GODOT_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/scorewright/godot-sid}"
LOADER="$ROOT/usr/lib64/ld-linux-x86-64.so.2"
LIBS="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu/pulseaudio"
BINARY="$ROOT/usr/bin/godot"

say() { echo "godot4.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

built() { [ -f "$ROOT/.scorewright-complete" ] && [ -x "$LOADER" ] && [ -e "$BINARY" ]; }

godot() {
    if [ -n "${GODOT:-}" ]; then
        exec_or_run "$GODOT" "$@"
    else
        exec_or_run "$LOADER" --library-path "$LIBS" "$(readlink -f "$BINARY")" "$@"
    fi
}

exec_or_run() { if [ "${_RUN:-exec}" = exec ]; then exec "$@"; else "$@"; fi; }

# The Debian mirror apt already uses: the first URI serving this release's own suite (not its
# -security or -updates suites, and not a third-party repository).
debian_mirror() {
    local codename uri
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [ -n "$codename" ] || die "cannot read VERSION_CODENAME from /etc/os-release"
    uri="$(awk -v c="$codename" '
        $1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i ~ /:\/\//) {
                          if ($(i + 1) == c) { print $i; exit } break } }' \
        /etc/apt/sources.list 2>/dev/null || true)"
    if [ -z "$uri" ]; then
        local f
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -e "$f" ] || continue
            uri="$(awk -v c="$codename" '
                function flush() { if (ok && u != "") { print u; found = 1; exit } u = ""; ok = 0 }
                /^[ \t]*$/ { flush(); next }
                /^URIs:/ { u = $2 }
                /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == c) ok = 1 }
                END { if (!found) flush() }' "$f")"
            [ -n "$uri" ] && break
        done
    fi
    [ -n "$uri" ] || die "no Debian mirror for '$codename' in /etc/apt/sources.list or" \
        "/etc/apt/sources.list.d/*.sources; add one (e.g. 'deb http://deb.debian.org/debian $codename main')"
    echo "$uri"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "building the Godot runtime needs root (or sudo) for apt and mmdebstrap --mode=root"
    fi
}

ensure_mmdebstrap() {
    command -v mmdebstrap >/dev/null && return
    command -v apt-get >/dev/null || die "mmdebstrap is missing and there is no apt-get to install it"
    say "installing mmdebstrap (apt)"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null 2>&1; then
        as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null \
            || die "could not install mmdebstrap with apt-get"
    fi
}

# rm -rf that never follows a mount out of the tree (an interrupted mmdebstrap may leave its
# /proc or /dev mounts behind)
remove() { as_root rm -rf --one-file-system "$@"; }

build() {
    ensure_mmdebstrap
    local mirror tmp log stale
    mirror="$(debian_mirror)"
    mkdir -p "$(dirname "$ROOT")"
    exec 9>"$ROOT.lock"
    flock 9   # one build at a time; a second caller waits, then finds the root built
    if built; then return; fi
    for stale in "$ROOT".partial.*; do   # left by interrupted builds
        [ -e "$stale" ] && remove "$stale"
    done
    tmp="$ROOT.partial.$$"
    log="$ROOT.build.log"
    trap 'remove "$tmp"' EXIT
    trap 'exit 130' INT TERM
    say "building Debian sid with Godot 4 into $ROOT (once; ~650 MB, about a minute)"
    say "mirror: $mirror (from apt's sources); log: $log"
    # progress: mmdebstrap's step lines (I: ...) go to the terminal, everything to the log
    if ! as_root mmdebstrap --variant=apt --mode=root --verbose \
            --aptopt='Acquire::Check-Valid-Until "false"' \
            --include=godot sid "$tmp" "$mirror" 2>&1 | tee "$log" \
            | { grep --line-buffered -E '^I: (running|downloading|extracting|installing|cleaning|success)' >&2 || true; }; then
        tail -n 20 "$log" >&2
        die "mmdebstrap failed (full log: $log); check that $mirror serves the 'sid' suite"
    fi
    [ -e "$tmp/usr/bin/godot" ] || die "the sid root has no /usr/bin/godot (log: $log)"
    as_root touch "$tmp/.scorewright-complete"
    [ -e "$ROOT" ] && remove "$ROOT"
    as_root mv "$tmp" "$ROOT"
    trap - EXIT INT TERM
    say "built"
}

version() { _RUN=run godot --version 2>/dev/null | tail -n 1; }

case "${1:-}" in
    --check)
        if [ -n "${GODOT:-}" ] || built; then
            v="$(version)" || die "Godot does not start: run it by hand to see why"
            echo "Godot $v"
        else
            say "no Godot 4 runtime at $ROOT; build it with scripts/godot4.sh"
            exit 1
        fi
        ;;
    "")
        if [ -z "${GODOT:-}" ] && ! built; then build; fi
        v="$(version)" || die "Godot does not start: run '$0 --version' to see why"
        [ -n "$v" ] || die "Godot printed no version: run '$0 --version' to see why"
        echo "Godot $v"
        ;;
    *)
        if [ -z "${GODOT:-}" ] && ! built; then build; fi
        godot "$@"
        ;;
esac
