#!/usr/bin/env bash
# Regenerates the committed borg 2.0.0b25 fixtures (see README.md next to this script):
#
#   testdata/borg2/repos/<repo>/      three tiny repositories made by real borg 2.0.0b25
#   testdata/borg2/keys/<file>        the key file of the keyfile-mode repository (borg's name)
#   testdata/borg2/expected/<repo>/   borg's own output for them (TZ=UTC)
#       cases.tsv                     one line per expected file: FILE<TAB>ARG<TAB>ARG...
#                                     (@REPO@ stands for the repository path), as in
#                                     testdata/expected/ for the borg 1.x fixtures
#       borg-version                  the borg that made the repository and recorded the output
#
# Uses the functions of tests/borg2/make_repos.sh (tree, repo-create, create), so it needs what
# that script needs: borg 2.0.0b25 (OXIBORG_BORG2, default /opt/borg2/bin/borg) and python3.
# Passphrase: oxiborg-test. Repository ids, keys and archive ids are random, so re-running the
# script changes the repositories and their expected output together.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../../tests/borg2/make_repos.sh
source "$ROOT/tests/borg2/make_repos.sh"

WORK=$(mktemp -d /tmp/oxiborg-borg2-fixtures.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
b2_setup "$WORK" "$WORK/keys"
echo "borg 2: $B2_BORG ($("$B2_BORG" --version))"

#      repository                        encryption          id hash  key location  compression
REPOS=(
    "chacha20-poly1305-blake3-repokey    chacha20-poly1305   blake3   repokey       lz4"
    "aes256-ocb-sha256-keyfile           aes256-ocb          sha256   keyfile       zstd,3"
    "authenticated-blake3-repokey        authenticated-blake3 blake3  repokey       auto,zlib,6"
)
ARCHIVES=(first second)
TIME_first=2024-01-15T10:00:00
TIME_second=2024-02-15T18:30:00

rm -rf "$HERE/repos" "$HERE/keys" "$HERE/expected"
mkdir -p "$HERE/repos" "$HERE/keys" "$HERE/expected" "$WORK/src" "$WORK/repos"

# The repositories are made in $WORK/repos and named relative to $WORK/src (the directory
# `borg create` runs in), so that the archives' command lines do not name this checkout.
b2_tiny_tree "$WORK/src/tree"
for spec in "${REPOS[@]}"; do
    read -r name enc hash loc comp <<<"$spec"
    echo "== $name: -e $enc -i $hash --key-location $loc, -C $comp"
    (cd "$WORK/src" && b2_new_repo "../repos/$name" "$enc" "$hash" "$loc")
    b2_create "../repos/$name" first "$TIME_first" "$WORK/src" tree -- -C "$comp"
done
# the second archive: one changed and one new file (directory mtimes kept)
printf 'hello again, world\n' >"$WORK/src/tree/hello.txt"
printf 'added for the second archive\n' >"$WORK/src/tree/dir/added-later.txt"
touch -d @1700000000.5 "$WORK/src/tree/hello.txt" "$WORK/src/tree/dir/added-later.txt"
touch -d @1600000000.987654321 "$WORK/src/tree" "$WORK/src/tree/dir"
for spec in "${REPOS[@]}"; do
    read -r name enc hash loc comp <<<"$spec"
    b2_create "../repos/$name" second "$TIME_second" "$WORK/src" tree -- -C "$comp"
done
mv "$WORK/repos"/* "$HERE/repos/"
cp "$B2_KEYS"/* "$HERE/keys/"

# ---------------------------------------------------------------------------------------
# Expected output
# ---------------------------------------------------------------------------------------
ARCHIVE_FORMAT='{archive}{TAB}{id}{TAB}{time}{TAB}{tags}{NL}'
ITEM_FORMAT='{mode} {uid} {gid} {user:>8} {size:>8} {isomtime} {path}{extra}{NL}'
export BORG_KEYS_DIR=$HERE/keys   # the committed key file, like the tests use it

record() { # record OUTFILE ARG...   (@REPO@ in ARG is the repository path)
    local out=$1
    shift
    local args=() a
    for a in "$@"; do args+=("${a//@REPO@/$repo}"); done
    if ! "$B2_BORG" "${args[@]}" >"$exp/$out" 2>"$WORK/stderr"; then
        echo "borg ${args[*]} failed:" >&2
        cat "$WORK/stderr" >&2
        exit 1
    fi
    local line=$out
    for a in "$@"; do line+=$'\t'$a; done
    printf '%s\n' "$line" >>"$exp/cases.tsv"
}

for spec in "${REPOS[@]}"; do
    read -r name _ <<<"$spec"
    repo=$HERE/repos/$name
    exp=$HERE/expected/$name
    mkdir -p "$exp"
    "$B2_BORG" --version >"$exp/borg-version"
    : >"$exp/cases.tsv"
    record repo-list.txt -r @REPO@ repo-list
    record repo-list.short.txt -r @REPO@ repo-list --short
    record repo-list.json -r @REPO@ repo-list --json
    record repo-list.format.txt -r @REPO@ repo-list --format "$ARCHIVE_FORMAT"
    record repo-info.json -r @REPO@ repo-info --json
    for a in "${ARCHIVES[@]}"; do
        record "$a.list.txt" -r @REPO@ list "$a"
        record "$a.short.txt" -r @REPO@ list --short "$a"
        record "$a.jsonl" -r @REPO@ list --json-lines "$a"
        record "$a.format.txt" -r @REPO@ list --format "$ITEM_FORMAT" "$a"
        record "$a.paths.txt" -r @REPO@ list "$a" tree/dir tree/sym
        record "info-$a.json" -r @REPO@ info --json "$a"
    done
done

# borg's reads leave nothing behind but empty directories; make sure nothing else is there
find "$HERE/repos" \( -path '*/locks/*' -o -path '*/cache/*' \) -type f -print -delete
echo
du -sh --apparent-size "$HERE/repos" "$HERE/expected" "$HERE/keys" "$HERE"
