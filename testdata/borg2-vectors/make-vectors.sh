#!/usr/bin/env bash
# Makes the borg 2.0.0b25 test vectors in this directory with a real borg 2.0.0b25
# (BORG2=/path/to/borg, default /opt/borg2/bin/borg): one tiny repository per crypto suite and
# a few variants (see README.md), each holding one archive `a1` of src/. The repositories are
# copied here whole (every non-empty-directory file; borgstore recreates empty directories)
# with their key files and passphrases. Run from anywhere; it replaces the vectors.
set -euo pipefail
BORG=${BORG2:-/opt/borg2/bin/borg}
HERE=$(cd "$(dirname "$0")" && pwd)
"$BORG" --version | grep -qx 'borg 2.0.0b25' || { echo "need borg 2.0.0b25 at $BORG" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export BORG_BASE_DIR=$W/base BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=YES
mkdir -p "$W/src"
printf 'hello borg 2\n' >"$W/src/hello.txt"
python3 - "$W/src" <<'PY'
import random, sys
r = random.Random(2025)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
open(sys.argv[1] + "/lorem.txt", "w").write(" ".join(r.choice(words) for _ in range(900)) + "\n")
open(sys.argv[1] + "/random.bin", "wb").write(bytes(r.randrange(256) for _ in range(1500)))
PY
mk() { # name encryption id-hash|- key-location passphrase [compression]
    local name=$1 enc=$2 ih=$3 loc=$4 pass=$5 comp=${6:-lz4}
    export BORG_KEYS_DIR=$W/$name/keyfiles BORG_PASSPHRASE=$pass
    mkdir -p "$BORG_KEYS_DIR"
    local iarg=()
    [[ $ih != - ]] && iarg=(-i "$ih")
    "$BORG" -r "$W/$name/repo" repo-create -e "$enc" "${iarg[@]}" --key-location "$loc" >/dev/null 2>&1
    (cd "$W/src" && "$BORG" -r "$W/$name/repo" create -C "$comp" a1 .)
    printf '%s\n' "$pass" >"$W/$name/passphrase"
}
mk aes256-ocb-sha256-repokey aes256-ocb sha256 repokey x
mk chacha20-poly1305-sha256-keyfile chacha20-poly1305 sha256 keyfile x
mk aes256-ocb-blake3-keyfile aes256-ocb blake3 keyfile 'pässwörd 🔑'
mk chacha20-poly1305-blake3-repokey chacha20-poly1305 blake3 repokey x
mk authenticated-sha256-repokey authenticated-sha256 - repokey x
mk authenticated-blake3-keyfile authenticated-blake3 - keyfile x
mk auto-zstd aes256-ocb blake3 repokey x auto,zstd
mk obfuscate-lz4 chacha20-poly1305 sha256 repokey x obfuscate,110,lz4
mk multikey chacha20-poly1305 blake3 repokey first
BORG_PASSPHRASE=first BORG_NEW_PASSPHRASE=second BORG_KEYS_DIR=$W/multikey/keyfiles \
    "$BORG" -r "$W/multikey/repo" key add --label second
printf 'first\nsecond\n' >"$W/multikey/passphrase"
find "$HERE" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
cp -r "$W/src" "$HERE/src"
for d in "$W"/*/repo; do
    name=$(basename "$(dirname "$d")")
    (cd "$W/$name" && find repo keyfiles -type f | while read -r f; do
        mkdir -p "$HERE/$name/$(dirname "$f")"
        cp "$f" "$HERE/$name/$f"
    done)
    cp "$W/$name/passphrase" "$HERE/$name/passphrase"
done
du -sh "$HERE"
