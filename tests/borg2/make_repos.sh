#!/usr/bin/env bash
# Makes borg 2.0.0b25 ("repository version 5") test repositories with real borg.
#
#   tests/borg2/make_repos.sh OUTDIR
#
# OUTDIR must be empty or missing, or hold the output of an earlier run (it has the marker
# file .oxiborg-borg2-repos; it is then cleared). Under OUTDIR:
#
#   <repo>/          one repository per directory (list below)
#   keys/            the key files of the keyfile-mode repositories (point BORG_KEYS_DIR here)
#   repos.tsv        one line per repository, tab-separated:
#                      REPO  ENCRYPTION  ID_HASH  KEY_LOCATION  PASSPHRASES  ARCHIVE...
#                    PASSPHRASES is comma-separated (every one unlocks the repository);
#                    ARCHIVE... are the live archive names in `borg repo-list` order
#                    (archive time; names may repeat). ENCRYPTION "borg1-repokey" marks
#                    the borg 1.x source of `transferred`.
#
# Passphrase of every repository: oxiborg-test (multikey also: oxiborg-test-second).
#
# Repositories:
#   <enc>-<hash>-<loc>        the 12 suites: {aes256-ocb, chacha20-poly1305}-{sha256, blake3}-
#   authenticated-<hash>-<loc>  {repokey, keyfile} and authenticated-{sha256,blake3}-{repokey,keyfile};
#                             one archive "first" of the full tree (tree/, see b2_full_tree)
#   compression               one archive per compression spec, named after the spec (lz4,
#                             zstd,3, ..., obfuscate,3,none), each of its own small tree
#   samename-deleted          archives "same" x3 + "other"; the 2nd "same" deleted (soft: .del),
#                             "other" renamed to "renamed ✓" (its old pointer becomes .del);
#                             no compact: archives/ holds 2 .del pointers
#   samename                  the same, then `borg compact` (default threshold 10 %: the
#                             deleted archive's chunks that share a pack with live data stay)
#   samename-compact0         the same, then `borg compact --threshold 0` (they are gone)
#   multikey                  two repokey blobs (`key add --label second`, passphrase
#                             oxiborg-test-second); archive "by-admin" made with the first
#                             passphrase, "by-second" with the second one, with --tag, --comment
#                             and --digests blake3,sha256
#   transferred               `borg transfer --from-borg1` of transferred-source-borg1 (made by
#                             borg 1.4, repokey = HMAC-SHA256, archive "borg1-archive")
#   transferred-source-borg1  that borg 1.x repository (kept for comparison)
#   repo-compress             one lz4 archive (repository default -C lz4), then
#                             `repo-compress -C lzma,6`
#   index-invalid             copy of chacha20-poly1305-blake3-repokey with cache/chunkindex-invalid
#                             created and its largest index/ fragment removed (a reader must walk
#                             the packs)
#   big-items                 one archive of ~4000 small files: the item stream spans several
#                             item-stream (S) chunks
#
# Environment:
#   OXIBORG_BORG2    borg 2.0.0b25 (default /opt/borg2/bin/borg); required
#   OXIBORG_BORG14   borg 1.4 for transferred-source-borg1 (default /opt/borg145/bin/borg);
#                    if it does not run, transferred* are left out (with a note)
#
# Needs python3 (the trees), coreutils; as root also device nodes, a 0000-mode file and
# numeric owners; setfacl for POSIX ACLs (left out with a note when it fails). Archive times are
# fixed with --timestamp; keys, repository and archive ids are random.
#
# The file can also be sourced (testdata/borg2/make-fixtures.sh does): it then only defines the
# b2_* functions.

B2_PASSPHRASE=oxiborg-test
B2_PASSPHRASE2=oxiborg-test-second
B2_MARKER=.oxiborg-borg2-repos

b2_die() { echo "make_repos.sh: $*" >&2; exit 1; }
b2_note() { echo "note: $*" >&2; }

# b2_setup WORKDIR KEYSDIR: the environment of every borg run below (exported).
b2_setup() {
    local work=$1 keys=$2
    B2_BORG=${OXIBORG_BORG2:-/opt/borg2/bin/borg}
    B2_BORG14=${OXIBORG_BORG14:-/opt/borg145/bin/borg}
    local v
    v=$("$B2_BORG" --version 2>/dev/null) || b2_die "borg 2 not found at $B2_BORG (set OXIBORG_BORG2)"
    [[ $v == "borg 2.0.0b25" ]] || b2_die "$B2_BORG is '$v', need borg 2.0.0b25"
    if ! "$B2_BORG14" --version >/dev/null 2>&1; then
        b2_note "borg 1.4 not found at $B2_BORG14 (OXIBORG_BORG14): no transferred repositories"
        B2_BORG14=""
    fi
    B2_WORK=$work
    B2_KEYS=$keys
    mkdir -p "$B2_WORK/base" "$B2_KEYS"
    while read -r var; do unset "$var"; done < <(env | sed -n 's/^\(\(BORG\|XDG\)_[A-Za-z0-9_]*\)=.*/\1/p')
    export TZ=UTC LANG=C.UTF-8 LC_ALL=C.UTF-8
    export HOME=$B2_WORK/base BORG_BASE_DIR=$B2_WORK/base BORG_KEYS_DIR=$B2_KEYS
    export BORG_PASSPHRASE=$B2_PASSPHRASE BORG_OTHER_PASSPHRASE=$B2_PASSPHRASE
    export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
    export BORG_DISPLAY_PASSPHRASE=no
    umask 022
}

# b2 ARGS...: runs borg 2 quietly; on failure prints its output and exits.
b2() {
    local out
    if ! out=$("$B2_BORG" "$@" 2>&1); then
        printf 'make_repos.sh: borg %s failed:\n%s\n' "$*" "$out" >&2
        exit 1
    fi
}

# b2_out ARGS...: runs borg 2 and prints its stdout (stderr shown only on failure).
b2_out() {
    local err=$B2_WORK/stderr
    if ! "$B2_BORG" "$@" 2>"$err"; then
        printf 'make_repos.sh: borg %s failed:\n' "$*" >&2
        cat "$err" >&2
        exit 1
    fi
}

# b2_new_repo REPO ENCRYPTION ID_HASH KEY_LOCATION [repo-create args...]
# ID_HASH is ignored for the authenticated-* modes (they name their hash).
b2_new_repo() {
    local repo=$1 enc=$2 hash=$3 loc=$4
    shift 4
    local ih=(-i "$hash")
    [[ $enc == authenticated-* ]] && ih=()
    b2 -r "$repo" repo-create -e "$enc" "${ih[@]}" --key-location "$loc" "$@"
}

# b2_create REPO NAME TIMESTAMP DIR PATH... [-- create args...]: `borg create` run in DIR, so
# that the archived paths are relative (PATH... as given).
b2_create() {
    local repo=$1 name=$2 ts=$3 dir=$4
    shift 4
    local paths=() extra=()
    while [[ $# -gt 0 && $1 != -- ]]; do paths+=("$1"); shift; done
    [[ ${1:-} == -- ]] && shift
    extra=("$@")
    (cd "$dir" && b2 -r "$repo" create --timestamp "$ts" "${extra[@]}" "$name" "${paths[@]}")
}

# b2_record REPO ENCRYPTION ID_HASH KEY_LOCATION PASSPHRASES ARCHIVE...: one line of repos.tsv
b2_record() {
    local IFS=$'\t'
    printf '%s\n' "$*" >>"$B2_OUT/repos.tsv"
}

# ---------------------------------------------------------------------------------------
# Source trees (python3: non-UTF-8 names, binary xattrs, nanosecond mtimes)
# ---------------------------------------------------------------------------------------

# b2_py KIND ROOT [ARGS...]: builds a tree at ROOT (must not exist).
#   full ROOT BIGSIZE   the full tree (see below); BIGSIZE = size of the two big files
#   tiny ROOT           a few files for the committed fixtures
#   comp ROOT SEED SIZE a small tree with content unique to SEED (compression archives)
#   many ROOT N         N small files in N/100 directories
b2_py() {
    python3 - "$@" <<'PY'
import os, random, stat, sys

kind, root = sys.argv[1], sys.argv[2].encode()
args = sys.argv[3:]
is_root = os.geteuid() == 0
S = 1_000_000_000
T_DEFAULT = 1_700_000_000 * S + 123_456_789        # 2023-11-14 22:13:20.123456789
T_DIR = 1_600_000_000 * S + 987_654_321            # 2020-09-13 12:26:40.987654321
mtimes = {}                                        # path -> ns (set at the very end)


def p(*parts):
    return os.path.join(root, *[x.encode() if isinstance(x, str) else x for x in parts])


def mkdir(*parts):
    os.makedirs(p(*parts), exist_ok=True)


def write(rel, data, mode=0o644, mtime=None):
    path = p(*rel) if isinstance(rel, tuple) else p(rel)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    if mtime is not None:
        mtimes[path] = mtime
    return path


def text(seed, size):
    # lines of a few fixed sentences in random order, numbered: compresses well (lz4 ~ 1:5)
    rng = random.Random(seed)
    sentences = [
        "The quick brown fox jumps over the lazy dog.",
        "Deduplicating archiver with compression and authenticated encryption.",
        "A chunk is stored once, however many archives reference it.",
        "Packs hold many repository objects; the index says where each one is.",
    ]
    out, n, i = [], 0, 0
    while n < size:
        line = "%08d %s %d\n" % (i, rng.choice(sentences), rng.randrange(1000))
        out.append(line)
        n += len(line)
        i += 1
    return "".join(out).encode()[:size]


def randbytes(seed, size):
    return random.Random(seed).randbytes(size)


def xattr(path, name, value):
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
        return True
    except OSError as e:
        print("note: no xattr %r on %r: %s" % (name, path, e), file=sys.stderr)
        return False


def finish():
    # every mtime deterministic: files T_DEFAULT unless set, directories T_DIR; bottom-up so
    # that writing into a directory does not touch its mtime afterwards
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            path = os.path.join(dirpath, n)
            st = os.lstat(path)
            t = mtimes.get(path, T_DIR if stat.S_ISDIR(st.st_mode) else T_DEFAULT)
            os.utime(path, ns=(t, t), follow_symlinks=False)
    t = mtimes.get(root, T_DIR)
    os.utime(root, ns=(t, t))


os.makedirs(root)

if kind == "full":
    big = int(args[0])
    mkdir("files")
    write("files/empty", b"")
    write("files/hello.txt", b"hello world\n")
    write("files/compressible.txt", text(1, big))
    write("files/random.bin", randbytes(2, big))
    write("files/zeros-64k", b"\0" * 65536)
    write("files/unicode ünïcödé ☃.txt", "unicode name ✓\n".encode())
    write("files/with space & 'quote'.txt", b"odd characters\n")
    # sparse: 4 MiB with data at the start, in the middle and at the end, holes between
    sp = write("files/sparse.img", b"sparse head\n")
    with open(sp, "r+b") as f:
        f.seek(2 * 1024 * 1024)
        f.write(b"sparse middle\n")
        f.truncate(4 * 1024 * 1024)
        f.seek(4 * 1024 * 1024 - 12)
        f.write(b"sparse tail\n")

    # hard links: a group of 3; and a pair whose first member is excluded by the pattern
    # `sh:**/hl-excluded` (its directory x1 is made first, so it is traversed first)
    mkdir("links/sub")
    write("links/hl-a", b"hard link group of three\n")
    os.link(p("links/hl-a"), p("links/hl-b"))
    os.link(p("links/hl-a"), p("links/sub/hl-c"))
    mkdir("links/x1")
    mkdir("links/x2")
    write("links/x1/hl-excluded", b"hard link pair, first member excluded\n")
    os.link(p("links/x1/hl-excluded"), p("links/x2/hl-kept"))
    # symlinks
    os.symlink(b"../files/hello.txt", p("links/sym-rel"))
    os.symlink(b"/usr/share/doc", p("links/sym-abs"))
    os.symlink(b"does/not/exist", p("links/sym-dangling"))
    os.symlink(b"caf\xe9-target", p("links/sym-nonutf8"))
    os.symlink(b"sub", p("links/sym-dir"))

    # special files
    mkdir("special")
    os.mkfifo(p("special/fifo"), 0o644)
    if is_root:
        os.mknod(p("special/chardev"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(p("special/blockdev"), 0o660 | stat.S_IFBLK, os.makedev(7, 99))
    else:
        print("note: not root: no device nodes", file=sys.stderr)

    # non-UTF-8 names
    mkdir("names")
    write(("names", b"caf\xe9-latin1.txt"), b"latin-1 name\n")
    mkdir("names", b"dir-\xff\xfe")
    write(("names", b"dir-\xff\xfe", "inside.txt"), b"inside a non-UTF-8 directory\n")
    write(("names", "ok-ütf8.txt"), b"utf-8 name\n")

    # xattrs
    mkdir("xattrs/dir")
    x = write("xattrs/file", b"file with xattrs\n")
    xattr(x, b"user.comment", b"a comment")
    xattr(x, b"user.binary", b"\x00\x01\x02\xfe\xff binary \x00")
    xattr(x, b"user.empty", b"")
    xattr(x, "user.ünï".encode(), "value ✓".encode())
    xattr(p("xattrs/dir"), b"user.dir", b"on a directory")

    # POSIX ACLs are set by the shell (setfacl) on acl/file and acl/dir
    mkdir("acl/dir")
    write("acl/file", b"file with an ACL\n")

    # modes and owners
    mkdir("modes/sticky-dir")
    write("modes/setuid", b"#!/bin/sh\n", 0o4755)
    write("modes/setgid", b"#!/bin/sh\n", 0o2750)
    write("modes/exec", b"#!/bin/sh\necho hi\n", 0o755)
    write("modes/private", b"private\n", 0o600)
    os.chmod(p("modes/sticky-dir"), 0o1777)
    if is_root:
        write("modes/mode-0000", b"nobody may read me\n", 0o000)
        write("modes/owner-numeric", b"owned by 12345:54321 (no names)\n")
        os.chown(p("modes/owner-numeric"), 12345, 54321)
        write("modes/owner-nobody", b"owned by 65534:65534\n")
        os.chown(p("modes/owner-nobody"), 65534, 65534)
    else:
        print("note: not root: no 0000-mode file, no foreign owners", file=sys.stderr)

    # times
    mkdir("times")
    write("times/1970-01-02", b"1970-01-02\n", mtime=86400 * S)
    write("times/2100-01-01", b"2100-01-01\n", mtime=4102444800 * S)
    write("times/1960-01-01", b"before the epoch\n", mtime=-315619200 * S)
    write("times/nanos", b"nanoseconds\n", mtime=1234567890 * S + 123456789)
    write("times/nanos-1", b"1 ns\n", mtime=1234567890 * S + 1)
    write("times/whole", b"whole second\n", mtime=1234567890 * S)

    # a deep directory
    deep = ["deep"] + ["d%02d" % i for i in range(1, 21)]
    mkdir(*deep)
    write(tuple(deep + ["leaf.txt"]), b"20 levels down\n")
    finish()

elif kind == "tiny":
    mkdir("dir")
    x = write("hello.txt", b"hello world\n")
    xattr(x, b"user.comment", b"tiny \x00 xattr")
    write("empty", b"")
    write("dir/inner.txt", b"inner file\n", 0o600)
    write("random.bin", randbytes(3, 20000))
    write("hl-a", b"hard link pair\n")
    os.link(p("hl-a"), p("dir/hl-b"))
    os.symlink(b"hello.txt", p("sym"))
    write(b"caf\xe9.txt", b"latin-1 name\n")
    write("nanos", b"ns mtime\n", mtime=1234567890 * S + 123456789)
    write("2100", b"far future\n", mtime=4102444800 * S)
    finish()

elif kind == "comp":
    seed, size = int(args[0]), int(args[1])
    write("text.txt", text(100 + seed, size))
    write("random.bin", randbytes(200 + seed, max(size // 4, 64)))
    write("zeros.bin", b"%d" % seed + b"\0" * size)
    write("empty", b"")
    finish()

elif kind == "many":
    n = int(args[0])
    for i in range(n):
        d = "d%03d" % (i // 100)
        if i % 100 == 0:
            mkdir(d)
        write((d, "file-%05d.txt" % i), b"small file %d\n" % i)
    finish()

else:
    sys.exit("unknown tree kind " + kind)
PY
}

# b2_full_tree ROOT BIGSIZE: the full tree plus POSIX ACLs (when setfacl works).
b2_full_tree() {
    local root=$1
    b2_py full "$@"
    if setfacl -m u:65534:r--,g:65534:r-x "$root/acl/file" 2>/dev/null &&
        setfacl -m u:65534:rwx "$root/acl/dir" &&
        setfacl -d -m u::rwx,g::r-x,o::---,u:65534:r-x "$root/acl/dir"; then
        :
    else
        b2_note "setfacl failed: no POSIX ACLs in the tree"
    fi
}

b2_tiny_tree() { b2_py tiny "$1"; }

# b2_py_bytes SEED SIZE: SIZE pseudo-random bytes on stdout
b2_py_bytes() {
    python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(int(sys.argv[1])).randbytes(int(sys.argv[2])))' "$1" "$2"
}

# ---------------------------------------------------------------------------------------
# The repositories
# ---------------------------------------------------------------------------------------

B2_SUITES=(
    "aes256-ocb sha256" "aes256-ocb blake3"
    "chacha20-poly1305 sha256" "chacha20-poly1305 blake3"
    "authenticated-sha256 sha256" "authenticated-blake3 blake3"
)
B2_COMPRESSIONS=(
    lz4 zstd,3 zstd,-5 zlib zlib,9 lzma none auto,zstd auto,lzma
    obfuscate,250,zstd,3 obfuscate,110,lz4 obfuscate,3,none
)
B2_EXCLUDE='sh:**/hl-excluded'

b2_suites() { # b2_suites SRC (dir holding tree/)
    local src=$1 s enc hash loc name
    for s in "${B2_SUITES[@]}"; do
        read -r enc hash <<<"$s"
        for loc in repokey keyfile; do
            name=$enc-$hash-$loc
            [[ $enc == authenticated-* ]] && name=$enc-$loc
            b2_new_repo "$B2_OUT/$name" "$enc" "$hash" "$loc"
            b2_create "$B2_OUT/$name" first 2024-01-15T10:00:00 "$src" tree -- -e "$B2_EXCLUDE"
            b2_record "$name" "$enc" "$hash" "$loc" "$B2_PASSPHRASE" first
        done
    done
}

b2_compression() {
    local repo=$B2_OUT/compression i=0 spec size archives=()
    b2_new_repo "$repo" aes256-ocb blake3 repokey
    for spec in "${B2_COMPRESSIONS[@]}"; do
        i=$((i + 1))
        # obfuscate,3 pads by a random factor of up to 10000: keep its data tiny
        size=131072
        [[ $spec == obfuscate,3,* ]] && size=1000
        b2_py comp "$B2_WORK/comp-$i/data" "$i" "$size"
        b2_create "$repo" "$spec" "2024-02-$(printf %02d "$i")T12:00:00" "$B2_WORK/comp-$i" data -- -C "$spec"
        archives+=("$spec")
    done
    b2_record compression aes256-ocb blake3 repokey "$B2_PASSPHRASE" "${archives[@]}"
}

b2_samename() { # b2_samename SRC
    local src=$1 repo=$B2_OUT/samename-deleted n aid f=$1/tree/files
    b2_new_repo "$repo" chacha20-poly1305 sha256 repokey
    for n in 1 2 3; do
        # different content each time: a small file unique to n; the second archive also
        # adds a 600 kB file that the later ones keep, so that its pack stays in use after
        # the delete and only `compact --threshold 0` rewrites it
        b2_py_bytes $((300 + n)) 4000 >"$f/unique.bin"
        if [[ $n == 2 ]]; then
            b2_py_bytes 400 600000 >"$f/added-by-second.bin"
        fi
        touch -c -d @1700000000 "$f/unique.bin" "$f/added-by-second.bin"
        touch -d @1600000000.987654321 "$f"
        b2_create "$repo" same "2024-03-0${n}T08:00:00" "$src" tree -- -e "$B2_EXCLUDE"
    done
    rm "$f/unique.bin"
    touch -d @1600000000.987654321 "$f"
    b2_create "$repo" other 2024-03-04T08:00:00 "$src" tree -- -e "$B2_EXCLUDE"
    rm "$f/added-by-second.bin"
    touch -d @1600000000.987654321 "$f"
    # soft-delete the second "same" (selected by archive id), rename "other"
    aid=$(b2_out -r "$repo" repo-list --format '{id}{NL}' | sed -n 2p)
    [[ ${#aid} == 64 ]] || b2_die "samename: no id of the second archive"
    b2 -r "$repo" delete "aid:${aid:0:16}"
    b2 -r "$repo" rename other "renamed ✓"
    cp -a "$repo" "$B2_OUT/samename"
    cp -a "$repo" "$B2_OUT/samename-compact0"
    b2 -r "$B2_OUT/samename" compact
    b2 -r "$B2_OUT/samename-compact0" compact --threshold 0
    local r
    for r in samename-deleted samename samename-compact0; do
        b2_record "$r" chacha20-poly1305 sha256 repokey "$B2_PASSPHRASE" same same "renamed ✓"
    done
}

b2_multikey() { # b2_multikey SRC
    local src=$1 repo=$B2_OUT/multikey
    b2_new_repo "$repo" aes256-ocb blake3 repokey
    BORG_NEW_PASSPHRASE=$B2_PASSPHRASE2 b2 -r "$repo" key add --label second
    b2_create "$repo" by-admin 2024-04-01T09:00:00 "$src" tree/files/hello.txt tree/links tree/times
    BORG_PASSPHRASE=$B2_PASSPHRASE2 b2_create "$repo" by-second 2024-04-02T09:00:00 "$src" tree/files/hello.txt tree/xattrs \
        -- --tag oxiborg --tag second --comment "made with the second key ✓" --digests blake3,sha256
    b2_record multikey aes256-ocb blake3 repokey "$B2_PASSPHRASE,$B2_PASSPHRASE2" by-admin by-second
}

b2_transferred() { # b2_transferred SRC
    local src=$1 old=$B2_OUT/transferred-source-borg1 new=$B2_OUT/transferred out
    [[ -n $B2_BORG14 ]] || return 0
    if ! out=$("$B2_BORG14" init -e repokey "$old" 2>&1) ||
        ! out=$(cd "$src" && "$B2_BORG14" create --timestamp 2024-05-01T10:00:00 \
            -e "$B2_EXCLUDE" "$old::borg1-archive" tree 2>&1); then
        printf 'make_repos.sh: borg 1.4 failed:\n%s\n' "$out" >&2
        exit 1
    fi
    # same id hash (HMAC-SHA256) as the borg 1.x repokey repository: no re-chunking needed
    b2 -r "$new" repo-create -e chacha20-poly1305 -i sha256 --other-repo "$old" --from-borg1
    b2 -r "$new" transfer --other-repo "$old" --from-borg1
    b2_record transferred-source-borg1 borg1-repokey sha256 repokey "$B2_PASSPHRASE" borg1-archive
    b2_record transferred chacha20-poly1305 sha256 repokey "$B2_PASSPHRASE" borg1-archive
}

b2_repo_compress() { # b2_repo_compress SRC
    local src=$1 repo=$B2_OUT/repo-compress
    b2_new_repo "$repo" chacha20-poly1305 blake3 repokey -C lz4
    b2_create "$repo" lz4-then-lzma 2024-06-01T10:00:00 "$src" tree
    b2 -r "$repo" repo-compress -C lzma,6
    b2_record repo-compress chacha20-poly1305 blake3 repokey "$B2_PASSPHRASE" lz4-then-lzma
}

b2_index_invalid() {
    local from=$B2_OUT/chacha20-poly1305-blake3-repokey repo=$B2_OUT/index-invalid biggest
    cp -a "$from" "$repo"
    : >"$repo/cache/chunkindex-invalid"
    biggest=$(ls -S "$repo/index" | head -n 1)
    [[ -n $biggest ]] || b2_die "index-invalid: no index fragment"
    rm "$repo/index/$biggest"
    b2_record index-invalid chacha20-poly1305 blake3 repokey "$B2_PASSPHRASE" first
}

b2_big_items() {
    local repo=$B2_OUT/big-items
    b2_py many "$B2_WORK/many/many" 4000
    b2_new_repo "$repo" aes256-ocb sha256 repokey
    b2_create "$repo" many 2024-07-01T10:00:00 "$B2_WORK/many" many
    b2_record big-items aes256-ocb sha256 repokey "$B2_PASSPHRASE" many
}

b2_main() {
    set -euo pipefail
    if [[ $# -ne 1 || -z $1 || $1 == -* ]]; then
        echo "usage: tests/borg2/make_repos.sh OUTDIR" >&2
        exit 2
    fi
    local start=$SECONDS
    B2_OUT=$(realpath -m -- "$1")
    if [[ -e $B2_OUT ]]; then
        [[ -d $B2_OUT ]] || b2_die "$B2_OUT exists and is not a directory"
        if [[ -n $(ls -A "$B2_OUT") ]]; then
            [[ -e $B2_OUT/$B2_MARKER ]] ||
                b2_die "$B2_OUT is not empty and was not made by this script; refusing to clear it"
            find "$B2_OUT" -mindepth 1 -delete
        fi
    fi
    mkdir -p "$B2_OUT"
    : >"$B2_OUT/$B2_MARKER"
    : >"$B2_OUT/repos.tsv"
    local work
    work=$(mktemp -d "${TMPDIR:-/tmp}/oxiborg-borg2.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    b2_setup "$work" "$B2_OUT/keys"
    echo "borg 2: $B2_BORG ($("$B2_BORG" --version))"
    [[ -z $B2_BORG14 ]] || echo "borg 1.4: $B2_BORG14 ($("$B2_BORG14" --version))"

    b2_full_tree "$work/full/tree" $((3 * 1024 * 1024))
    b2_full_tree "$work/small/tree" $((192 * 1024))
    b2_suites "$work/full"
    b2_compression
    b2_samename "$work/small"
    b2_multikey "$work/small"
    b2_transferred "$work/small"
    b2_repo_compress "$work/small"
    b2_index_invalid
    b2_big_items

    echo
    local IFS=$'\t' repo enc hash loc pass archives
    while read -r repo enc hash loc pass archives; do
        printf '%s\n    suite: %s / %s / %s   passphrase(s): %s\n    archives: %s\n' \
            "$B2_OUT/$repo" "$enc" "$hash" "$loc" "$pass" "${archives//$'\t'/ | }"
    done <"$B2_OUT/repos.tsv"
    echo "BORG_KEYS_DIR=$B2_KEYS"
    echo "total: $(du -sh "$B2_OUT" | cut -f1), $((SECONDS - start)) s"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    b2_main "$@"
fi
