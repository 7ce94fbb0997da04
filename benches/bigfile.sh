#!/usr/bin/env bash
# benches/bigfile.sh: peak memory and time of restoring one big file (default 5 GB), borg 1.4.5
# vs oxiborg. Checks issue 6's "peak memory <= 256 MiB, also for a 5 GB single file".
#
# Usage: benches/bigfile.sh [--size-gb N] [--workdir DIR] [--borg PATH] [--oxiborg PATH] [--keep]
#
# Makes WORKDIR/src/big.bin (N GB: pseudo-random, AES-CTR keystream from openssl, so that lz4
# cannot shrink it), a repokey-blake2 + lz4 repository with borg (passphrase "oxiborg-bench"),
# then times, with GNU time's max RSS: `oxiborg extract`, `oxiborg extract --dry-run`,
# `oxiborg extract --stdout > /dev/null` and `borg extract`, and checks the restored file's
# size and SHA-256. Everything is deleted at the end unless --keep (needs ~3 x N GB of disk).
set -euo pipefail
SIZE_GB=5
WORKDIR=/tmp/oxiborg-bigfile
BORG=${BORG14:-/opt/borg145/bin/borg}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OXIBORG=$ROOT/target/release/oxiborg
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --size-gb) SIZE_GB=$2; shift 2 ;;
        --workdir) WORKDIR=$2; shift 2 ;;
        --borg) BORG=$2; shift 2 ;;
        --oxiborg) OXIBORG=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "bigfile.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $SIZE_GB =~ ^[1-9][0-9]*$ ]] || { echo "bigfile.sh: --size-gb must be a positive integer" >&2; exit 2; }
for t in "$BORG" "$OXIBORG" /usr/bin/time; do [ -x "$t" ] || { echo "bigfile.sh: $t missing" >&2; exit 2; }; done
command -v openssl >/dev/null || { echo "bigfile.sh: openssl missing" >&2; exit 2; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
export BORG_PASSPHRASE=oxiborg-bench BORG_BASE_DIR=$WORKDIR/borg-base
mkdir -p "$WORKDIR/src"
[ $KEEP = 1 ] || trap 'rm -rf "$WORKDIR"' EXIT
SRC=$WORKDIR/src/big.bin
if [ ! -f "$SRC" ] || [ "$(stat -c %s "$SRC")" != $((SIZE_GB * 1000000000)) ]; then
    log "making $SRC ($SIZE_GB GB)"
    # (openssl ends with SIGPIPE when head has enough: not an error)
    { openssl enc -aes-128-ctr -nosalt -pass pass:oxiborg -in /dev/zero 2>/dev/null || true; } |
        head -c $((SIZE_GB * 1000000000)) >"$SRC"
    [ "$(stat -c %s "$SRC")" = $((SIZE_GB * 1000000000)) ] || { echo "bigfile.sh: could not make $SRC" >&2; exit 1; }
fi
WANT=$(sha256sum <"$SRC" | cut -d' ' -f1)
REPO=$WORKDIR/repo
if [ ! -d "$REPO" ]; then
    log "borg init + create (repokey-blake2, lz4)"
    "$BORG" init -e repokey-blake2 "$REPO"
    (cd "$WORKDIR/src" && "$BORG" create --compression lz4 "$REPO::big" big.bin)
fi
sync
printf '| what | seconds | peak RSS MiB |\n|---|---:|---:|\n'
run() { # label, command...
    local label=$1; shift
    local out=$WORKDIR/out-$RANDOM tf=$WORKDIR/time.txt t0 t1
    mkdir -p "$out"
    t0=$(date +%s%N)
    (cd "$out" && /usr/bin/time -f '%M' -o "$tf" "$@" >"$WORKDIR/stdout.bin")
    t1=$(date +%s%N)
    if [ -f "$out/big.bin" ]; then
        [ "$(sha256sum <"$out/big.bin" | cut -d' ' -f1)" = "$WANT" ] || { echo "bigfile.sh: $label restored a different file" >&2; exit 1; }
    fi
    awk -v l="$label" -v a="$t0" -v b="$t1" -v k="$(tail -n1 "$tf")" \
        'BEGIN { printf "| %s | %.1f | %.0f |\n", l, (b - a) / 1e9, k / 1024 }'
    rm -rf "$out" "$WORKDIR/stdout.bin"
    sync
}
run "oxiborg extract" "$OXIBORG" extract "$REPO::big"
run "oxiborg extract --dry-run" "$OXIBORG" extract --dry-run "$REPO::big"
run "oxiborg extract --stdout > file" "$OXIBORG" extract --stdout "$REPO::big"
run "borg $("$BORG" --version | cut -d' ' -f2) extract" "$BORG" extract "$REPO::big"
