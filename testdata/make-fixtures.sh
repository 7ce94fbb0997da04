#!/usr/bin/env bash
# Regenerates the committed test fixtures of oxiborg:
#
#   testdata/repos/<repo>/       small BorgBackup 1.x repositories made by real borg
#   testdata/keys/<repo>.key     key files of the keyfile-mode repositories
#   testdata/expected/<repo>/    borg's own output for these repositories (TZ=UTC)
#       cases.tsv                one line per expected file: FILE<TAB>ARG<TAB>ARG...
#                                (@REPO@ stands for the repository path); tests/fixtures.rs
#                                runs `oxiborg ARG...` for every line and compares with FILE
#       borg-version             the borg that made the repository and recorded the output
#
# Needs borg 1.4.5 and/or borg 1.2.x (if one is missing, the other makes every repository),
# python3 (for the pseudo-random file), coreutils, mkfifo; setfattr and root are optional
# (xattr / numeric-owner file are then left out).
#
#   OXIBORG_BORG12   borg 1.2 binary (default /usr/bin/borg)
#   OXIBORG_BORG14   borg 1.4 binary (default /opt/borg145/bin/borg)
#
# The source tree is deterministic (contents, names, modes, mtimes); the repositories are
# not (random keys, repository ids, nonces), so re-running the script changes the ids in
# the expected output together with the repositories. Passphrase: oxiborg-test.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PASSPHRASE=oxiborg-test

BORG12=${OXIBORG_BORG12:-/usr/bin/borg}
BORG14=${OXIBORG_BORG14:-/opt/borg145/bin/borg}

have() { "$1" --version >/dev/null 2>&1; }
if ! have "$BORG12"; then BORG12=""; fi
if ! have "$BORG14"; then BORG14=""; fi
if [[ -z $BORG12 && -z $BORG14 ]]; then
    echo "make-fixtures.sh: neither borg 1.2 nor borg 1.4 found (OXIBORG_BORG12/OXIBORG_BORG14)" >&2
    exit 1
fi
[[ -n $BORG12 ]] || { echo "note: borg 1.2 missing, using $BORG14 instead" >&2; BORG12=$BORG14; }
[[ -n $BORG14 ]] || { echo "note: borg 1.4 missing, using $BORG12 instead" >&2; BORG14=$BORG12; }
echo "borg 1.2: $BORG12 ($("$BORG12" --version))"
echo "borg 1.4: $BORG14 ($("$BORG14" --version))"

WORK=$(mktemp -d /tmp/oxiborg-fixtures.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

export TZ=UTC LANG=C.UTF-8 LC_ALL=C.UTF-8
export BORG_PASSPHRASE=$PASSPHRASE
export BORG_BASE_DIR=$WORK/base
export BORG_KEYS_DIR=$WORK/base/keys
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_DISPLAY_PASSPHRASE=no
export BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO
unset BORG_REPO BORG_PASSCOMMAND BORG_PASSPHRASE_FD BORG_KEY_FILE BORG_RSH BORG_EXIT_CODES || true
umask 022
mkdir -p "$BORG_KEYS_DIR"

# ---------------------------------------------------------------------------------------
# Source tree (deterministic)
# ---------------------------------------------------------------------------------------
T=$WORK/src/tree
mkdir -p "$T"

# mtimes (seconds since the epoch, UTC)
M_2001=981173106     # Sat, 2001-02-03 04:05:06
M_2010=1286705410    # Sun, 2010-10-10 10:10:10
M_2020=1592654400    # Sat, 2020-06-20 12:00:00
M_2023=1700000000    # Tue, 2023-11-14 22:13:20
M_1960=-315619200    # Fri, 1960-01-01 00:00:00 (before 1970)
M_2100=4102444800    # Fri, 2100-01-01 00:00:00 (after 2038)

mk() { # mk PATH MODE MTIME  (content from stdin)
    cat >"$1"
    chmod "$2" "$1"
    touch -d "@$3" "$1"
}

build_tree() {
    mkdir -p "$T/dir/sub/deeper" "$T/dir/empty-dir" "$T/sticky"
    printf 'hello world\n' | mk "$T/hello.txt" 644 $M_2001
    python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(20240115).randbytes(300 * 1024 + 123))' \
        | mk "$T/random.bin" 644 $M_2020
    head -c 65536 /dev/zero | mk "$T/zeros.bin" 644 $M_2020
    : | mk "$T/empty.txt" 644 $M_2020
    seq 1 4000 | mk "$T/numbers.txt" 644 $M_2010          # compressible, ~19 KB
    printf 'deep file\n' | mk "$T/dir/sub/deeper/file.txt" 600 $M_2010
    printf 'in dir\n' | mk "$T/dir/in-dir.txt" 640 $M_2023
    printf '#!/bin/sh\necho hi\n' | mk "$T/run.sh" 755 $M_2023
    printf 'setuid\n' | mk "$T/setuid-bin" 4755 $M_2023
    printf 'old\n' | mk "$T/old-1960.txt" 644 $M_1960
    printf 'future\n' | mk "$T/future-2100.txt" 644 $M_2100
    printf 'latin1 name\n' | mk "$T/$(printf 'caf\xe9-latin1.txt')" 644 $M_2010
    printf 'spaces and unicode\n' | mk "$T/with spaces ünïcödé ☃.txt" 644 $M_2010
    printf 'linked twice\n' | mk "$T/hardlink-a" 644 $M_2001
    ln "$T/hardlink-a" "$T/dir/hardlink-b"
    ln -s dir/sub/deeper/file.txt "$T/link-rel"
    ln -s /nonexistent/oxiborg/dangling "$T/link-abs-dangling"
    touch -h -d "@$M_2010" "$T/link-rel" "$T/link-abs-dangling"
    mkfifo -m 644 "$T/fifo"
    touch -d "@$M_2023" "$T/fifo"
    if setfattr -n user.test -v oxiborg-xattr "$T/hello.txt" 2>/dev/null; then
        echo "xattr: user.test set"
    else
        echo "note: setfattr not available or not supported: no xattr in the fixtures" >&2
    fi
    printf 'numeric owner\n' | mk "$T/owned-numeric" 644 $M_2023
    if [[ $(id -u) == 0 ]]; then
        chown 12345:54321 "$T/owned-numeric"
    else
        echo "note: not root: owned-numeric keeps the current owner" >&2
    fi
    chmod 1777 "$T/sticky"
    chmod 755 "$T/dir" "$T/dir/sub" "$T/dir/sub/deeper" "$T/dir/empty-dir" "$T"
    touch -d "@$M_2023" "$T/sticky" "$T/dir/empty-dir" "$T/dir/sub/deeper"
    touch -d "@$M_2020" "$T/dir/sub" "$T/dir"
    touch -d "@$M_2001" "$T"
}

# second state: one changed file, one new file; directory mtimes restored
modify_tree() {
    printf 'hello again, world\n' | mk "$T/hello.txt" 644 $M_2023
    printf 'added for the second archive\n' | mk "$T/dir/added-later.txt" 644 $M_2023
    touch -d "@$M_2020" "$T/dir"
}

# ---------------------------------------------------------------------------------------
# Repositories
# ---------------------------------------------------------------------------------------
#          name                       borg    encryption      compression          chunker params           archive 1          archive 2
REPOS=(
    "repokey-blake2-lz4         14 repokey-blake2  lz4                  10,16,12,4095   docs-2024-01-15    docs-2024-02-15"
    "keyfile-zstd               14 keyfile         zstd,3               fixed,65536     monday             tuesday_evening"
    "none-zlib                  12 none            zlib,6               default         first              second"
    "authenticated-lzma         14 authenticated   lzma,6               12,18,14,4095   first              second"
    "repokey-auto-zstd          12 repokey         auto,zstd,3          10,16,12,4095   first              second"
    "keyfile-blake2-obfuscate   12 keyfile-blake2  obfuscate,110,zstd,3 fixed,131072    first              second"
)
# archive names with spaces are tested with keyfile-zstd's second archive
ARCHIVE2_OVERRIDE_keyfile_zstd="tuesday evening ✓"
TIME1=2024-01-15T10:00:00
TIME2=2024-02-15T18:30:00

bin_for() { if [[ $1 == 12 ]]; then echo "$BORG12"; else echo "$BORG14"; fi; }

rm -rf "$HERE/repos" "$HERE/keys" "$HERE/expected"
mkdir -p "$HERE/repos" "$HERE/keys" "$HERE/expected"

mkdir -p "$WORK/repos"
build_tree
for spec in "${REPOS[@]}"; do
    read -r name ver enc comp chunker a1 a2 <<<"$spec"
    borg=$(bin_for "$ver")
    repo=../repos/$name
    echo "== $name: $("$borg" --version), -e $enc, -C $comp, chunker $chunker"
    (cd "$WORK/src" && "$borg" init -e "$enc" "$repo" >/dev/null 2>&1)
    cp=(); [[ $chunker == default ]] || cp=(--chunker-params "$chunker")
    (cd "$WORK/src" && "$borg" create -C "$comp" "${cp[@]}" --timestamp "$TIME1" "$repo::$a1" tree)
done
modify_tree
for spec in "${REPOS[@]}"; do
    read -r name ver enc comp chunker a1 a2 <<<"$spec"
    var=ARCHIVE2_OVERRIDE_${name//-/_}; a2=${!var:-$a2}
    borg=$(bin_for "$ver")
    repo=../repos/$name
    cp=(); [[ $chunker == default ]] || cp=(--chunker-params "$chunker")
    (cd "$WORK/src" && "$borg" create -C "$comp" "${cp[@]}" --timestamp "$TIME2" "$repo::$a2" tree)
done

# The repositories were made in $WORK/repos, with relative paths, so that the archives'
# command lines do not name this checkout; move them into place.
mv "$WORK/repos"/* "$HERE/repos/"

# key files: borg names them after the location; store them as <repo>.key
for f in "$BORG_KEYS_DIR"/*; do
    [[ -f $f ]] || continue
    read -r _ hexid < "$f"
    for spec in "${REPOS[@]}"; do
        read -r name _ <<<"$spec"
        if grep -q "^id = $hexid\$" "$HERE/repos/$name/config"; then
            cp "$f" "$HERE/keys/$name.key"
        fi
    done
done

# ---------------------------------------------------------------------------------------
# Expected output
# ---------------------------------------------------------------------------------------
ARCHIVE_FORMAT='{archive}{TAB}{id}{TAB}{time}{NL}'
ITEM_FORMAT='{mode} {uid} {gid} {user:>8} {size:>8} {isomtime} {path}{extra}{NL}'

record() { # record OUTFILE ARG...   (@REPO@ in ARG is the repository path)
    local out=$1; shift
    local args=() a
    for a in "$@"; do args+=("${a//@REPO@/$repo}"); done
    # BORG_KEYS_DIR points at the committed keys, like the tests do
    if ! BORG_KEYS_DIR=$HERE/keys "$borg" "${args[@]}" >"$exp/$out" 2>"$WORK/stderr"; then
        echo "borg ${args[*]} failed:" >&2; cat "$WORK/stderr" >&2; exit 1
    fi
    local line=$out a2
    for a2 in "$@"; do line+=$'\t'$a2; done
    printf '%s\n' "$line" >>"$exp/cases.tsv"
}

for spec in "${REPOS[@]}"; do
    read -r name ver enc comp chunker a1 a2 <<<"$spec"
    var=ARCHIVE2_OVERRIDE_${name//-/_}; a2=${!var:-$a2}
    borg=$(bin_for "$ver")
    repo=$HERE/repos/$name
    exp=$HERE/expected/$name
    mkdir -p "$exp"
    "$borg" --version >"$exp/borg-version"
    : >"$exp/cases.tsv"
    record list.txt list @REPO@
    record list.short.txt list --short @REPO@
    record list.json list --json @REPO@
    record list.format.txt list --format "$ARCHIVE_FORMAT" @REPO@
    record info.json info --json @REPO@
    for a in "$a1" "$a2"; do
        record "$a.list.txt" list "@REPO@::$a"
        record "$a.short.txt" list --short "@REPO@::$a"
        record "$a.jsonl" list --json-lines "@REPO@::$a"
        record "$a.format.txt" list --format "$ITEM_FORMAT" "@REPO@::$a"
        record "$a.paths.txt" list "@REPO@::$a" tree/dir tree/link-rel
        record "info-$a.json" info --json "@REPO@::$a"
    done
done

# borg's reads leave nothing behind, but make sure no lock or cache debris is committed
find "$HERE/repos" -name 'lock.*' -prune -exec rm -rf {} +
echo
du -sh "$HERE/repos" "$HERE/expected" "$HERE/keys"
du -sh "$HERE"
