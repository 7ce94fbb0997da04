#!/usr/bin/env python3
"""Source trees for benches/compare.sh (deterministic: fixed seeds).

  gen.py tree DIR BIG_MB SMALL_FILES SMALL_DIRS
      DIR/random/r{1..4}.bin   4 x BIG_MB MB of random bytes (incompressible, no dedup)
      DIR/text/t{1..4}.txt     4 x BIG_MB MB of text made of random words (compressible, no dedup)
      DIR/small/dNNN/fNNNNN    SMALL_FILES files of 100 B - 16 KiB random bytes in SMALL_DIRS dirs

  gen.py million DIR DIRS FILES
      DIR/dNNNN/fNNNN          DIRS x FILES tiny files (each holds its own path, 12-16 bytes)

Writes into DIR, which must not exist yet (the caller renames it into place when done).
"""
import os
import random
import sys

MB = 1000 * 1000


def write_random(path, size, rng):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 << 20)
            f.write(rng.randbytes(n))
            left -= n


def vocabulary(rng, n=6000):
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12, 9, 8, 7.5, 7, 6.7, 6.3, 6, 5.9, 4.3, 4, 2.8, 2.8, 2.4, 2.4, 2.2, 2, 2, 1.9, 1.5,
               1, 0.8, 0.15, 0.15, 0.1, 0.07]
    words = set()
    while len(words) < n:
        k = rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6, 7, 8, 9, 10, 11, 12))
        words.add("".join(rng.choices(letters, weights, k=k)))
    words = sorted(words)
    rng.shuffle(words)
    toks = []
    for i, w in enumerate(words):
        toks.append(w)
        if i % 9 == 0:
            toks.append(w + ".\n")
        if i % 13 == 0:
            toks.append(w + ",")
    # Zipf-like frequencies
    cum, acc = [], 0.0
    for i in range(len(toks)):
        acc += 1.0 / (i + 8)
        cum.append(acc)
    return toks, cum


def write_text(path, size, rng, toks, cum):
    with open(path, "w", encoding="ascii") as f:
        left = size
        while left > 0:
            s = " ".join(rng.choices(toks, cum_weights=cum, k=60000)) + "\n"
            s = s[:left]
            f.write(s)
            left -= len(s)


def tree(out, big_mb, small_files, small_dirs):
    big = int(big_mb * MB)
    os.makedirs(out)
    os.mkdir(os.path.join(out, "random"))
    os.mkdir(os.path.join(out, "text"))
    for i in range(1, 5):
        write_random(os.path.join(out, "random", f"r{i}.bin"), big, random.Random(1000 + i))
    vr = random.Random(7)
    toks, cum = vocabulary(vr)
    for i in range(1, 5):
        write_text(os.path.join(out, "text", f"t{i}.txt"), big, random.Random(2000 + i), toks, cum)
    rng = random.Random(3000)
    small = os.path.join(out, "small")
    os.mkdir(small)
    per_dir = -(-small_files // small_dirs)
    for n in range(small_files):
        d = os.path.join(small, f"d{n // per_dir:03d}")
        if n % per_dir == 0:
            os.mkdir(d)
        size = rng.randint(100, 16384)
        with open(os.path.join(d, f"f{n:05d}"), "wb") as f:
            f.write(rng.randbytes(size))


def million(out, dirs, files):
    os.makedirs(out)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for d in range(dirs):
        dn = f"d{d:04d}"
        dp = os.path.join(out, dn)
        os.mkdir(dp)
        for i in range(files):
            name = f"f{i:04d}"
            fd = os.open(os.path.join(dp, name), flags, 0o644)
            os.write(fd, f"{dn}/{name}\n".encode())
            os.close(fd)


def main(argv):
    if len(argv) == 6 and argv[1] == "tree":
        tree(argv[2], float(argv[3]), int(argv[4]), int(argv[5]))
    elif len(argv) == 5 and argv[1] == "million":
        million(argv[2], int(argv[3]), int(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
