#!/usr/bin/env bash
# benches/compare.sh: borg 1.4.5 and borg 2.0.0b25 `extract`/`list` vs `oxiborg`, side by side.
# See --help.
set -euo pipefail
{ # the whole script is one compound command: bash reads it completely before running it, so the
  # file can be edited while a (long) benchmark is running

usage() {
    cat <<'EOF'
Usage: benches/compare.sh [OPTIONS]

Benchmarks `borg extract` / `borg list` against `oxiborg extract` / `oxiborg list` on the same
repositories: borg 1.4.5 on borg 1.x repositories, and borg 2.0.0b25 on b25 repositories
("repository version 5") of the same data. Prints two Markdown tables, one per format (also
written to WORKDIR/results.md, raw timings to WORKDIR/results.tsv).

What it does:
  1. Makes the source tree on demand (cached in WORKDIR): 4 x 100 MB random files, 4 x 100 MB
     compressible text, 20,000 small files (100 B - 16 KiB, random) in 200 directories: ~900 MB.
  2. Makes two repositories with borg: repokey-blake2 + lz4, and repokey + zstd,3 (passphrase
     "oxiborg-bench", BORG_BASE_DIR=WORKDIR/borg-base), one archive "bench" each.
     With borg 2.0.0b25 (unless --no-borg2), two b25 repositories of the same tree:
     chacha20-poly1305 + blake3 ids + lz4, and aes256-ocb + sha256 ids + zstd,3 (repokey, same
     passphrase), one archive "bench" each.
  3. Makes a 1,000,000-item archive (1000 dirs x 1000 tiny files; repokey-blake2 + lz4), and the
     same as a b25 archive (chacha20-poly1305 + blake3 + lz4). On the 2-core development VM
     borg 1.4.5 needs 2-10 minutes for it, borg 2.0.0b25 about 8; they are cached in WORKDIR
     like everything else.
  4. Starts a loopback sshd (own config, host key and client key, free port, killed on exit)
     whose authorized_keys gives the client key a BorgWarehouse-style forced command
     (command="borg serve --restrict-to-path WORKDIR",restrict). borg and oxiborg go through
     BORG_RSH="ssh -i KEY -o UserKnownHostsFile=..." and ssh://root@127.0.0.1:PORT/... ;
     oxiborg also through its native SSH transport (HOME with .ssh/known_hosts,
     OXIBORG_SSH_IDENTITY=KEY).
  5. Times, alternating borg and oxiborg (the order flips every run), N runs each, medians:
       - local full extract of each repository
       - full extract over SSH (repokey-blake2 + lz4): oxiborg via BORG_RSH and native
       - the 20,000 small files alone (path src/small), local and over SSH
       - on the 1M-item archive: `list REPO::ARCHIVE` (stdout to /dev/null) and extracting
         one named file
     and the same for the b25 repositories, borg 2.0.0b25 against oxiborg, both with borg 2's
     command line (`-r REPO extract bench [PATH]`, `-r REPO list bench`): local full extract of
     each, the small files alone, and the two 1M-item cases. (No b25 SSH cases yet.)
     Every extract goes into its own empty directory on a fresh ext4 file system (a sparse
     image in WORKDIR, loop-mounted, with a journal), made for this run and deleted at its end;
     each tree is checked and deleted right after its run (untimed). A fresh file system keeps
     earlier runs out of the timings: on a journal-less ext4 (like this VM's root file system)
     creating files is many times slower for minutes after many files were deleted, for
     borg and oxiborg alike. With --out-fs workdir the trees go under WORKDIR/out instead,
     all created before the first run and deleted after the last. Nothing is dropped from
     the page cache; the repository is read once (warm-up) before each case, and `sync` runs
     (untimed) before every run.
  6. Peak memory: max RSS of each run via /usr/bin/time -f %M (the largest process of the
     tree, e.g. borg's python or the ssh child, not their sum); the table shows the
     largest value over the runs.
  7. Checks every extract (untimed): number of files and bytes, or the one file's content;
     before the `list` cases, that oxiborg lists every item of the 1M-item archive (untimed).

Options:
  --workdir DIR   Work directory (default /tmp/oxiborg-bench); data is generated on demand
                  and reused between runs ("full/" and "quick/" sizes kept apart).
  --runs N        Runs per tool and case (default 3).
  --quick         Everything ~10x smaller (4x10 MB + 4x10 MB + 2,000 small files in 20 dirs;
                  100x100 items), for testing this script (a few minutes in all).
  --borg PATH     borg 1.4.x binary (default: $BORG14 or /opt/borg145/bin/borg).
  --borg2 PATH    borg 2.0.0b25 binary (default: $OXIBORG_BORG2 or /opt/borg2/bin/borg).
  --no-borg2      Skip the borg 2 (b25) repositories and cases (and do not create them).
  --oxiborg PATH  oxiborg binary (default: target/release/oxiborg, after `cargo build --release`).
  --no-build      Do not run `cargo build --release` first.
  --no-ssh        Skip the SSH cases.
  --no-million    Skip the 1M-item archives (and do not create them).
  --out-fs MODE   Where the extracted trees go: "fresh" (default when run as root with
                  mkfs.ext4: a new loop-mounted ext4 per benchmark run, see 5.) or
                  "workdir" (WORKDIR/out, the file system WORKDIR is on).
  --keep          Keep the extracted trees (WORKDIR/out/RUN-ID) instead of deleting them.
  --cleanup       Only delete leftover extracted trees in WORKDIR/out, then exit.
  -h, --help      This text.

Environment: BORG14 (borg 1.4 binary), OXIBORG_BORG2 (borg 2 binary). Needs bash, python3, /usr/bin/time (GNU time), and for the
SSH cases /usr/sbin/sshd, ssh, ssh-keygen (run as root: it creates /run/sshd).
EOF
}

die() { echo "compare.sh: $*" >&2; exit 2; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
WORKDIR=/tmp/oxiborg-bench
RUNS=3
QUICK=0
BORG=${BORG14:-/opt/borg145/bin/borg}
BORG2=${OXIBORG_BORG2:-/opt/borg2/bin/borg}
B2=1
OXIBORG=""
BUILD=1
SSH_CASES=1
MILLION=1
KEEP=0
CLEANUP_ONLY=0
OUT_FS=""

while [ $# -gt 0 ]; do
    case "$1" in
        --workdir) [ $# -ge 2 ] || die "--workdir needs a value"; WORKDIR=$2; shift 2 ;;
        --workdir=*) WORKDIR=${1#*=}; shift ;;
        --runs) [ $# -ge 2 ] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --quick) QUICK=1; shift ;;
        --borg) [ $# -ge 2 ] || die "--borg needs a value"; BORG=$2; shift 2 ;;
        --borg=*) BORG=${1#*=}; shift ;;
        --borg2) [ $# -ge 2 ] || die "--borg2 needs a value"; BORG2=$2; shift 2 ;;
        --borg2=*) BORG2=${1#*=}; shift ;;
        --no-borg2) B2=0; shift ;;
        --oxiborg) [ $# -ge 2 ] || die "--oxiborg needs a value"; OXIBORG=$2; BUILD=0; shift 2 ;;
        --oxiborg=*) OXIBORG=${1#*=}; BUILD=0; shift ;;
        --no-build) BUILD=0; shift ;;
        --no-ssh) SSH_CASES=0; shift ;;
        --no-million) MILLION=0; shift ;;
        --out-fs) [ $# -ge 2 ] || die "--out-fs needs a value"; OUT_FS=$2; shift 2 ;;
        --out-fs=*) OUT_FS=${1#*=}; shift ;;
        --keep) KEEP=1; shift ;;
        --cleanup) CLEANUP_ONLY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd -P)
[[ $WORKDIR =~ [[:space:]\"\'] ]] && die "--workdir must not contain spaces or quotes (it goes into BORG_RSH and authorized_keys)"
OUTROOT=$WORKDIR/out
if [ -z "$OUT_FS" ]; then
    if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null; then OUT_FS=fresh; else OUT_FS=workdir; fi
fi
case "$OUT_FS" in fresh|workdir) ;; *) die "--out-fs must be fresh or workdir" ;; esac

if [ $CLEANUP_ONLY = 1 ]; then
    log "deleting $OUTROOT"
    rm -rf "$OUTROOT"
    exit 0
fi

# ---------------------------------------------------------------- tools
[ -x "$BORG" ] || die "borg not found at $BORG (set BORG14 or --borg)"
if [ $B2 = 1 ]; then
    [ -x "$BORG2" ] || die "borg 2 not found at $BORG2 (set OXIBORG_BORG2 or --borg2, or use --no-borg2)"
    case "$("$BORG2" --version 2>/dev/null)" in
        "borg 2."*) ;;
        *) die "$BORG2 is not borg 2 ($("$BORG2" --version 2>&1 | head -n 1))" ;;
    esac
fi
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed"
PYTHON=$(command -v python3 || true)
[ -n "$PYTHON" ] || PYTHON=$(dirname "$BORG")/python3
[ -x "$PYTHON" ] || die "python3 not found"
if [ -z "$OXIBORG" ]; then
    if [ $BUILD = 1 ]; then
        log "cargo build --release"
        (cd "$ROOT" && cargo build --release --quiet) || die "cargo build failed"
    fi
    OXIBORG=$ROOT/target/release/oxiborg
fi
[ -x "$OXIBORG" ] || die "oxiborg not found at $OXIBORG"
OXIBORG=$(cd "$(dirname "$OXIBORG")" && pwd -P)/$(basename "$OXIBORG")
if [ $SSH_CASES = 1 ]; then
    for t in /usr/sbin/sshd ssh ssh-keygen; do
        command -v "$t" >/dev/null || die "$t not found (or use --no-ssh)"
    done
fi

# ---------------------------------------------------------------- sizes
if [ $QUICK = 1 ]; then
    SCALE=quick BIG_MB=10 SMALL_FILES=2000 SMALL_DIRS=20 M_DIRS=100 M_FILES=100
else
    SCALE=full BIG_MB=100 SMALL_FILES=20000 SMALL_DIRS=200 M_DIRS=1000 M_FILES=1000
fi
M_ITEMS=$((M_DIRS * M_FILES))
thousands() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
DATA=$WORKDIR/$SCALE
SRC=$DATA/src                       # archived as "src/..."
MSRC=$DATA/million                  # archived as "million/..."
REPO_B2=$DATA/repo-blake2-lz4
REPO_ZS=$DATA/repo-repokey-zstd3
REPO_M=$DATA/repo-million
REPO2_CB=$DATA/repo2-chacha-blake3-lz4     # borg 2.0.0b25 repositories
REPO2_OS=$DATA/repo2-ocb-sha256-zstd3
REPO2_M=$DATA/repo2-million
ONE_FILE=$(printf 'million/d%04d/f%04d' $((M_DIRS / 2)) $((M_FILES / 2)))

# ---------------------------------------------------------------- environment for both tools
unset BORG_REPO BORG_RSH BORG_PASSCOMMAND BORG_PASSPHRASE_FD BORG_KEY_FILE BORG_REMOTE_PATH \
    OXIBORG_SSH_IDENTITY OXIBORG_SSH_KNOWN_HOSTS || true
export BORG_PASSPHRASE=oxiborg-bench
export BORG_BASE_DIR=$WORKDIR/borg-base
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO
export LANG=C.UTF-8 LC_ALL=C.UTF-8
mkdir -p "$BORG_BASE_DIR" "$DATA"

# ---------------------------------------------------------------- cleanup on exit
SSHD_PID=""
RUN_OUT=""
OUT_MOUNTED=""
OUT_IMG=$WORKDIR/out.img
cleanup() {
    local rc=$?
    if [ -n "$SSHD_PID" ]; then
        kill "$SSHD_PID" 2>/dev/null || true
        wait "$SSHD_PID" 2>/dev/null || true
    fi
    if [ -n "$RUN_OUT" ] && [ -d "$RUN_OUT" ] && [ $KEEP = 0 ] && [ "$OUT_FS" = workdir ]; then
        log "deleting extracted trees in $RUN_OUT" || true
        rm -rf "$RUN_OUT"
        log "deleted" || true
    fi
    if [ -n "$OUT_MOUNTED" ] && [ $KEEP = 0 ]; then
        umount "$OUTROOT" 2>/dev/null || umount -l "$OUTROOT" 2>/dev/null || true
        rm -f "$OUT_IMG"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 141' PIPE    # output piped into `head` etc.: still clean up

# ---------------------------------------------------------------- data and repositories
if [ ! -f "$SRC/.complete" ]; then
    log "generating $SRC (4x${BIG_MB} MB random, 4x${BIG_MB} MB text, $SMALL_FILES small files)"
    rm -rf "$SRC" "$SRC.tmp"
    "$PYTHON" "$SCRIPT_DIR/compare/gen.py" tree "$SRC.tmp" "$BIG_MB" "$SMALL_FILES" "$SMALL_DIRS"
    mv "$SRC.tmp" "$SRC"
    touch "$SRC/.complete"
fi

# $1 repo, $2 encryption, $3 compression, $4 directory to archive (relative to $DATA)
make_repo() {
    local repo=$1 enc=$2 comp=$3 what=$4
    [ -f "$repo.complete" ] && return 0
    log "creating $repo ($enc, $comp) from $DATA/$what"
    rm -rf "$repo"
    "$BORG" init --encryption "$enc" "$repo" >/dev/null 2>&1 \
        || { "$BORG" init --encryption "$enc" "$repo"; die "borg init $repo failed"; }
    local t0=$SECONDS
    local rc=0
    (cd "$DATA" && "$BORG" create --compression "$comp" "$repo::bench" "$what") || rc=$?
    [ $rc -le 1 ] || die "borg create $repo failed (exit $rc)"    # 1: warnings only
    log "  borg create took $((SECONDS - t0)) s"
    touch "$repo.complete"
}
# the same for borg 2: $1 repo, $2 encryption, $3 id hash, $4 compression, $5 directory
make_repo2() {
    local repo=$1 enc=$2 idh=$3 comp=$4 what=$5
    [ -f "$repo.complete" ] && return 0
    log "creating b25 $repo ($enc, $idh ids, $comp) from $DATA/$what"
    rm -rf "$repo"
    "$BORG2" -r "$repo" repo-create -e "$enc" -i "$idh" --key-location repokey >/dev/null 2>&1 \
        || { "$BORG2" -r "$repo" repo-create -e "$enc" -i "$idh" --key-location repokey; die "borg2 repo-create $repo failed"; }
    local t0=$SECONDS
    local rc=0
    (cd "$DATA" && "$BORG2" -r "$repo" create -C "$comp" bench "$what") || rc=$?
    [ $rc -le 1 ] || die "borg2 create $repo failed (exit $rc)"    # 1: warnings only
    log "  borg2 create took $((SECONDS - t0)) s"
    touch "$repo.complete"
}
make_repo "$REPO_B2" repokey-blake2 lz4 src
make_repo "$REPO_ZS" repokey zstd,3 src
if [ $B2 = 1 ]; then
    make_repo2 "$REPO2_CB" chacha20-poly1305 blake3 lz4 src
    make_repo2 "$REPO2_OS" aes256-ocb sha256 zstd,3 src
fi
if [ $MILLION = 1 ]; then
    if [ ! -f "$REPO_M.complete" ] || { [ $B2 = 1 ] && [ ! -f "$REPO2_M.complete" ]; }; then
        if [ ! -f "$MSRC/.complete" ]; then
            log "generating $MSRC ($M_DIRS x $M_FILES tiny files)"
            rm -rf "$MSRC" "$MSRC.tmp"
            "$PYTHON" "$SCRIPT_DIR/compare/gen.py" million "$MSRC.tmp" "$M_DIRS" "$M_FILES"
            mv "$MSRC.tmp" "$MSRC"
            touch "$MSRC/.complete"
        fi
        make_repo "$REPO_M" repokey-blake2 lz4 million
        if [ $B2 = 1 ]; then make_repo2 "$REPO2_M" chacha20-poly1305 blake3 lz4 million; fi
    fi
fi

# expected file count and bytes of a subtree of $SRC (the archive also holds the marker
# file .complete; it is not counted on either side)
count_tree() { # $1 dir -> "FILES BYTES"
    find "$1" -type f ! -name .complete -printf '%s\n' | awk '{n++; s+=$1} END {printf "%d %d\n", n, s}'
}
EXP_ALL=$(count_tree "$SRC")
EXP_SMALL=$(count_tree "$SRC/small")
SRC_FILES=${EXP_ALL% *}
SRC_MB=$(( ${EXP_ALL#* } / 1000000 ))
SMALL_N=$(thousands "${EXP_SMALL% *}")

# ---------------------------------------------------------------- sshd
SSHDIR=$WORKDIR/ssh
SSH_PORT=""
start_sshd() {
    mkdir -p "$SSHDIR/home/.ssh" "$SSHDIR/server-base" /run/sshd
    chmod 700 "$SSHDIR/home/.ssh"
    chmod 755 /run/sshd
    [ -f "$SSHDIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C oxiborg-bench-host -f "$SSHDIR/host_ed25519"
    [ -f "$SSHDIR/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C oxiborg-bench-client -f "$SSHDIR/client_ed25519"
    KEY=$SSHDIR/client_ed25519
    printf 'command="cd %s;BORG_BASE_DIR=%s %s serve --restrict-to-path %s",restrict %s\n' \
        "$WORKDIR" "$SSHDIR/server-base" "$BORG" "$WORKDIR" "$(cat "$KEY.pub")" >"$SSHDIR/authorized_keys"
    local attempt
    for attempt in 1 2 3 4; do
        SSH_PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        cat >"$SSHDIR/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $SSHDIR/host_ed25519
AuthorizedKeysFile $SSHDIR/authorized_keys
PidFile $SSHDIR/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin yes
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
MaxStartups 64
MaxSessions 64
LogLevel INFO
EOF
        /usr/sbin/sshd -D -e -f "$SSHDIR/sshd_config" </dev/null >/dev/null 2>"$SSHDIR/sshd.log" &
        SSHD_PID=$!
        local i
        for i in $(seq 1 100); do
            kill -0 "$SSHD_PID" 2>/dev/null || break
            if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SSH_PORT && head -c 8 <&3" 2>/dev/null | grep -q '^SSH-2.0'; then
                printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$SSHDIR/host_ed25519.pub")" \
                    >"$SSHDIR/home/.ssh/known_hosts"
                log "sshd (pid $SSHD_PID) on 127.0.0.1:$SSH_PORT"
                return 0
            fi
            sleep 0.1
        done
        kill "$SSHD_PID" 2>/dev/null || true
        wait "$SSHD_PID" 2>/dev/null || true
        SSHD_PID=""
    done
    cat "$SSHDIR/sshd.log" >&2
    die "sshd did not start"
}
if [ $SSH_CASES = 1 ]; then
    start_sshd
    RSH="ssh -F /dev/null -i $KEY -o IdentitiesOnly=yes -o UserKnownHostsFile=$SSHDIR/home/.ssh/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o LogLevel=ERROR"
    SSH_B2=ssh://root@127.0.0.1:$SSH_PORT$REPO_B2
    # connectivity check, so that a broken setup fails here and not in the middle
    BORG_RSH=$RSH "$BORG" list "$SSH_B2" >/dev/null 2>"$SSHDIR/check.log" \
        || { cat "$SSHDIR/check.log" >&2; tail -n 20 "$SSHDIR/sshd.log" >&2; die "borg over SSH does not work"; }
fi

# ---------------------------------------------------------------- timing machinery
RUN_ID=$(date +%Y%m%d-%H%M%S)
RUN_OUT=$OUTROOT/$RUN_ID
RAW=$WORKDIR/results.tsv
LOGDIR=$WORKDIR/logs/$RUN_ID
if [ "$OUT_FS" = fresh ]; then
    mountpoint -q "$OUTROOT" 2>/dev/null && umount "$OUTROOT"
    rm -f "$OUT_IMG"
    mkdir -p "$OUTROOT"
    truncate -s 64G "$OUT_IMG"
    mkfs.ext4 -q -F "$OUT_IMG" || die "mkfs.ext4 $OUT_IMG failed"
    mount -o loop "$OUT_IMG" "$OUTROOT" || die "cannot loop-mount $OUT_IMG (use --out-fs workdir)"
    OUT_MOUNTED=1
    log "extracting into a fresh ext4 on $OUTROOT ($OUT_IMG)"
fi
mkdir -p "$RUN_OUT" "$LOGDIR"
if [ "$OUT_FS" = workdir ] && [ -d "$OUTROOT" ] && [ -n "$(ls -A "$OUTROOT" | grep -v "^$RUN_ID\$" || true)" ]; then
    log "note: leftover trees in $OUTROOT from an earlier run (delete with --cleanup, not now)"
fi
printf 'case\ttool\trun\tseconds\tmaxrss_kib\trc\tuser_s\tsys_s\n' >"$RAW"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
STAT0=$(head -n 1 /proc/stat)    # for the CPU steal time over the runs (a shared VM)

# Cases: id | label | tools (space separated) | kind
#   tools: borg (1.4.5), borg2 (2.0.0b25), ox (same transport as borg), oxnative (native SSH);
#   the first tool is the reference the others are compared with. Ids starting with "b2-" are
#   b25 cases (borg 2's command line, reported in their own table).
CASES=()
CASES+=("local-b2|local full extract, repokey-blake2 + lz4|borg ox|full")
CASES+=("local-zs|local full extract, repokey + zstd,3|borg ox|full")
if [ $SSH_CASES = 1 ]; then
    CASES+=("ssh-b2|SSH full extract, repokey-blake2 + lz4|borg ox oxnative|full")
fi
CASES+=("local-small|local extract of the $SMALL_N small files only (repokey-blake2 + lz4)|borg ox|small")
if [ $SSH_CASES = 1 ]; then
    CASES+=("ssh-small|SSH extract of the $SMALL_N small files only|borg ox oxnative|small")
fi
if [ $MILLION = 1 ]; then
    CASES+=("m-list|$(thousands $M_ITEMS)-item archive: list REPO::ARCHIVE > /dev/null|borg ox|list")
    CASES+=("m-one|$(thousands $M_ITEMS)-item archive: extract one named file|borg ox|one")
fi
if [ $B2 = 1 ]; then
    CASES+=("b2-local-cb|local full extract, chacha20-poly1305 + blake3 + lz4|borg2 ox|full")
    CASES+=("b2-local-os|local full extract, aes256-ocb + sha256 + zstd,3|borg2 ox|full")
    # b25 over SSH goes here once oxiborg speaks borg 2's ssh:// (`borg serve --rest`, HTTP over
    # the ssh pipe): e.g. "b2-ssh-cb|SSH full extract, ...|borg2 ox oxnative|full" and
    # "b2-ssh-small"; timed() then needs the b25 URL form ssh://root@127.0.0.1:PORT//abs/path
    # (double slash: a single one is relative to the login directory in borg 2) and
    # authorized_keys a forced command that runs $BORG2 serve (BORG2-FORMAT.md §10).
    CASES+=("b2-local-small|local extract of the $SMALL_N small files only (chacha20-poly1305 + blake3 + lz4)|borg2 ox|small")
    if [ $MILLION = 1 ]; then
        CASES+=("b2-m-list|$(thousands $M_ITEMS)-item archive: -r REPO list ARCHIVE > /dev/null|borg2 ox|list")
        CASES+=("b2-m-one|$(thousands $M_ITEMS)-item archive: extract one named file|borg2 ox|one")
    fi
fi

# create every target directory up front
for c in "${CASES[@]}"; do
    IFS='|' read -r id _ tools kind <<<"$c"
    [ "$kind" = list ] && continue
    for t in $tools; do
        for i in $(seq 1 "$RUNS"); do mkdir -p "$RUN_OUT/$id/$t-$i"; done
    done
done

case_repo() { # $1 case id -> repository (local path) for that case
    case "$1" in
        local-zs) echo "$REPO_ZS" ;;
        m-*) echo "$REPO_M" ;;
        b2-local-os) echo "$REPO2_OS" ;;
        b2-m-*) echo "$REPO2_M" ;;
        b2-*) echo "$REPO2_CB" ;;
        *) echo "$REPO_B2" ;;
    esac
}

# runs one timed command for case $1, tool $2, run $3 (cwd: its target dir);
# appends to $RAW; returns the command's exit status
timed() {
    local id=$1 tool=$2 i=$3 repo loc paths=() stdout=/dev/null
    local dir=$RUN_OUT/$id/$tool-$i tf=$LOGDIR/$id-$tool-$i.time ef=$LOGDIR/$id-$tool-$i.stderr
    local -a cmd env=()
    repo=$(case_repo "$id")
    loc=$repo
    case "$id" in ssh-*) loc=ssh://root@127.0.0.1:$SSH_PORT$repo ;; esac
    case "$id" in
        *-small) paths=(src/small) ;;
        m-one|b2-m-one) paths=("$ONE_FILE") ;;
    esac
    local exe=$OXIBORG
    case "$tool" in borg) exe=$BORG ;; borg2) exe=$BORG2 ;; esac
    case "$id" in
        m-list) cmd=("$exe" list "$loc::bench"); dir=$LOGDIR ;;
        b2-m-list) cmd=("$exe" -r "$loc" list bench); dir=$LOGDIR ;;
        b2-*) cmd=("$exe" -r "$loc" extract bench "${paths[@]}") ;;    # borg 2's command line
        *) cmd=("$exe" extract "$loc::bench" "${paths[@]}") ;;
    esac
    case "$id:$tool" in
        ssh-*:borg|ssh-*:ox) env=(BORG_RSH="$RSH") ;;
        ssh-*:oxnative) env=(HOME="$SSHDIR/home" OXIBORG_SSH_IDENTITY="$KEY") ;;
    esac
    sync
    local t0 t1 rc=0
    t0=$(date +%s%N)
    (cd "$dir" && env "${env[@]}" /usr/bin/time -f '%M %U %S' -o "$tf" "${cmd[@]}" >"$stdout" 2>"$ef") || rc=$?
    t1=$(date +%s%N)
    local secs rss=0 usr=- sys=- line
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    line=$(tail -n 1 "$tf" 2>/dev/null || true)
    if [[ $line =~ ^([0-9]+)\ ([0-9.]+)\ ([0-9.]+)$ ]]; then
        rss=${BASH_REMATCH[1]} usr=${BASH_REMATCH[2]} sys=${BASH_REMATCH[3]}
    fi
    # untimed check of what was written
    local why=""
    if [ $rc -eq 0 ]; then
        case "$id" in
            local-b2|local-zs|ssh-b2|b2-local-cb|b2-local-os) [ "$(count_tree "$dir/src")" = "$EXP_ALL" ] || why="file count/bytes differ: $(count_tree "$dir/src") vs $EXP_ALL" ;;
            *-small) [ "$(count_tree "$dir/src/small")" = "$EXP_SMALL" ] || why="file count/bytes differ: $(count_tree "$dir/src/small") vs $EXP_SMALL"
                     [ -z "$why" ] && [ -e "$dir/src/random" ] && why="extracted more than src/small" ;;
            m-one|b2-m-one) cmp -s "$dir/$ONE_FILE" "$DATA/$ONE_FILE" || why="$ONE_FILE missing or different"
                   [ -z "$why" ] && [ "$(find "$dir" -type f | wc -l)" != 1 ] && why="extracted more than one file" ;;
        esac
        [ -n "$why" ] && rc=99
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$tool" "$i" "$secs" "$rss" "$rc" "$usr" "$sys" >>"$RAW"
    if [ "$OUT_FS" = fresh ] && [ $KEEP = 0 ] && [ "$dir" != "$LOGDIR" ]; then
        rm -rf "$dir"    # untimed; the journal makes the inodes reusable at once
    fi
    if [ $rc -ne 0 ]; then
        log "  FAILED: $id $tool run $i (exit $rc${why:+, $why}); stderr ($ef):"
        tail -n 5 "$ef" | sed 's/^/    /' >&2
    else
        log "  $id $tool run $i: ${secs} s (user $usr, sys $sys), $((rss / 1024)) MiB"
    fi
    return 0
}

warm() { # read a repository once into the page cache
    find "$1" -type f -exec cat {} + >/dev/null
}

# ---------------------------------------------------------------- run
log "workdir $WORKDIR ($SCALE), $RUNS run(s) per tool and case; extracts into $RUN_OUT ($OUT_FS)"
for c in "${CASES[@]}"; do
    IFS='|' read -r id label tools kind <<<"$c"
    repo=$(case_repo "$id")
    log "warm-up read of $repo"
    warm "$repo"
    log "case $id: $label"
    if [ "$kind" = list ]; then
        # untimed: oxiborg lists every item (stdout goes to /dev/null in the timed runs)
        [ -n "${EXP_LIST:-}" ] || EXP_LIST=$(find "$MSRC" | wc -l)    # + "million" itself
        case "$id" in
            b2-*) got=$("$OXIBORG" -r "$repo" list bench 2>"$LOGDIR/$id-check.stderr" | wc -l) ;;
            *) got=$("$OXIBORG" list "$repo::bench" 2>"$LOGDIR/$id-check.stderr" | wc -l) ;;
        esac
        if [ "$got" != "$EXP_LIST" ]; then
            log "  FAILED: $id: oxiborg lists $got items, the source has $EXP_LIST"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" ox check - 0 99 - - >>"$RAW"
        else
            log "  oxiborg lists all $got items"
        fi
    fi
    read -r -a tl <<<"$tools"
    for i in $(seq 1 "$RUNS"); do
        # alternate: borg first in odd runs, oxiborg first in even runs
        order=("${tl[@]}")
        if [ $((i % 2)) = 0 ]; then
            order=("${tl[@]:1}" "${tl[0]}")
        fi
        for t in "${order[@]}"; do timed "$id" "$t" "$i"; done
    done
done

# ---------------------------------------------------------------- report
# share of the CPU time the hypervisor gave to others while the runs went on ("cpu" line of
# /proc/stat: user nice system idle iowait irq softirq steal ...)
STEAL=$(printf '%s\n%s\n' "$STAT0" "$(head -n 1 /proc/stat)" | awk '
    { t[NR] = 0; for (i = 2; i <= 9; i++) t[NR] += $i; st[NR] = $9 }
    END { d = t[2] - t[1]; printf "%.0f", (d > 0 ? 100 * (st[2] - st[1]) / d : 0) }')
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
stat_of() { # $1 case $2 tool -> "MEDIAN_S MAX_RSS_KIB FAILS"
    awk -F'\t' -v c="$1" -v t="$2" '
        NR > 1 && $1 == c && $2 == t { if ($6 == 0) { v[n++] = $4 + 0 } else f++; if ($5 > m) m = $5 }
        END {
            if (n == 0) { printf "- %d %d\n", m, f + 0; exit }
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
            med = (n % 2) ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
            printf "%.2f %d %d\n", med, m, f + 0
        }' "$RAW"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$CPU" ] || CPU=$(uname -m)
MEM_GIB=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
BORG_VER=$("$BORG" --version 2>/dev/null | awk '{print $2}')
OX_VER=$("$OXIBORG" --version 2>/dev/null | awk '{print $2}')
GIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(cd "$ROOT" && git status --porcelain --untracked-files=no 2>/dev/null)" ]; then GIT="$GIT+dirty"; fi

# $1: "b1" (borg 1.x cases) or "b2" (b25 cases, ids b2-*); $2 reference tool; $3 its column title
table() {
    local fmt=$1 ref=$2 title=$3 c id label tools kind t l ratio bs os
    local bmed brss bfail omed orss ofail
    echo "| case | $title (s) | oxiborg (s) | ratio ($ref/oxiborg) | $ref peak MiB | oxiborg peak MiB |"
    echo "|---|---:|---:|---:|---:|---:|"
    for c in "${CASES[@]}"; do
        IFS='|' read -r id label tools kind <<<"$c"
        if [[ $id == b2-* ]]; then [ "$fmt" = b2 ] || continue; else [ "$fmt" = b1 ] || continue; fi
        read -r bmed brss bfail <<<"$(stat_of "$id" "$ref")"
        for t in ${tools#"$ref" }; do
            read -r omed orss ofail <<<"$(stat_of "$id" "$t")"
            l=$label
            case "$id:$t" in
                *ssh-*:ox) l="$label — oxiborg via BORG_RSH=ssh" ;;
                *ssh-*:oxnative) l="$label — oxiborg native SSH (same $ref runs)" ;;
            esac
            if [ "$bmed" != - ] && [ "$omed" != - ]; then
                ratio=$(awk -v a="$bmed" -v b="$omed" 'BEGIN { if (b > 0) printf "%.1f×", a / b; else print "∞" }')
            else
                ratio=n/a
            fi
            bs=$bmed; [ "$bfail" -gt 0 ] && bs="$bs ($bfail failed)"
            os=$omed; [ "$ofail" -gt 0 ] && os="$os ($ofail failed)"
            echo "| $l | $bs | $os | $ratio | $(mib "$brss") | $(mib "$orss") |"
        done
    done
}
B2_VER=""
[ $B2 = 1 ] && B2_VER=$("$BORG2" --version 2>/dev/null | awk '{print $2}')
if [ $SSH_CASES = 1 ]; then SSH_NOTE="sshd on 127.0.0.1 (borg serve $BORG_VER)"; else SSH_NOTE="no SSH cases"; fi

{
    echo "Machine: $(nproc) cores (nproc), $CPU, $MEM_GIB GiB RAM, Linux $(uname -r); borg $BORG_VER$([ $B2 = 1 ] && echo ", borg $B2_VER"), oxiborg $OX_VER ($GIT)."
    echo "Data: $(thousands "$SRC_FILES") files, $SRC_MB MB (4 random + 4 text files of $BIG_MB MB, $SMALL_N small files)$([ $MILLION = 1 ] && echo "; $(thousands $M_ITEMS) tiny files in $M_DIRS dirs"). Median of $RUNS run(s) (peak RSS: largest run), page cache warm, extracting into $([ "$OUT_FS" = fresh ] && echo "a fresh loop-mounted ext4" || echo "$(df --output=fstype "$OUTROOT" | tail -n 1) at $OUTROOT"), load average before the runs $LOAD0 and after them $LOAD1, CPU steal during the runs $STEAL%, $SSH_NOTE. borg uses one core, oxiborg all of them."
    echo
    echo "borg 1.x repositories (borg $BORG_VER):"
    echo
    table b1 borg "borg $BORG_VER"
    if [ $B2 = 1 ]; then
        echo
        echo "borg 2 repositories (repository version 5, made and read by borg $B2_VER; both tools with borg 2's \`-r REPO\` command line):"
        echo
        table b2 borg2 "borg $B2_VER"
    fi
} >"$WORKDIR/results.md"

echo
cat "$WORKDIR/results.md"
echo
log "written to $WORKDIR/results.md (raw: $RAW, logs: $LOGDIR)"
exit 0
}
