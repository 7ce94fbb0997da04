#!/usr/bin/env python3
"""Writes an archive with hand-made items into an existing borg 1.x repository.

Used by tests/extract_hostile.rs to craft archives that `borg create` would never write
(paths with "..", absolute paths, hard-link sources outside the archive, files below
symlinks, ...). Needs borg's Python package (borg 1.2 or 1.4, e.g. the venv's python).

usage: make_archive.py REPO ARCHIVE SPEC.json

SPEC.json is a list of items, in archive order:
  {"path": HEX, "kind": "file"|"dir"|"symlink"|"hardlink"|"fifo",
   "data": HEX (file), "zeros": INT (file: that many zero bytes instead of data, as ONE
   chunk, whatever its size), "source": HEX (symlink target / hard-link master path),
   "mode": INT (permission bits, optional), "master": BOOL (file: hardlink_master)}
Paths and sources are hex so that any byte (non-UTF-8, NUL) can be used. The
environment (BORG_PASSPHRASE, BORG_BASE_DIR, ...) must be the one borg itself would get;
OXIBORG_COMPRESSION (e.g. "zstd,3") sets the compression of the new chunks (default lz4).
"""
import json
import os
import stat
import sys

from borg.archive import Archive
from borg.cache import Cache
from borg.compress import CompressionSpec
from borg.helpers import Manifest
from borg.item import Item
from borg.logger import setup_logging
from borg.repository import Repository

MTIME_NS = 1_600_000_000_123_456_789


def text(hexstr):
    # borg items keep paths as surrogate-escaped str
    return os.fsdecode(bytes.fromhex(hexstr))


def main():
    repo_path, name, spec_path = sys.argv[1:4]
    setup_logging(level='warning')
    with open(spec_path) as f:
        spec = json.load(f)
    with Repository(repo_path, exclusive=True) as repository:
        manifest, key = Manifest.load(repository, (Manifest.Operation.WRITE,))
        key.compressor = CompressionSpec(os.environ.get("OXIBORG_COMPRESSION", "lz4")).compressor
        with Cache(repository, key, manifest, warn_if_unencrypted=False) as cache:
            archive = Archive(repository, key, manifest, name, cache=cache, create=True)
            for e in spec:
                kind = e["kind"]
                perm = e.get("mode", 0o755 if kind == "dir" else 0o644)
                item = Item(path=text(e["path"]), uid=0, gid=0, user="root", group="root",
                            mtime=MTIME_NS)
                if kind == "file":
                    data = bytes(e["zeros"]) if "zeros" in e else bytes.fromhex(e.get("data", ""))
                    chunks = []
                    if data:
                        chunks.append(cache.add_chunk(key.id_hash(data), data, archive.stats))
                    item.mode = stat.S_IFREG | perm
                    item.chunks = chunks
                    item.size = len(data)
                    item.hardlink_master = bool(e.get("master", False))
                elif kind == "hardlink":
                    item.mode = stat.S_IFREG | perm
                    item.source = text(e["source"])
                elif kind == "dir":
                    item.mode = stat.S_IFDIR | perm
                elif kind == "symlink":
                    item.mode = stat.S_IFLNK | 0o777
                    item.source = text(e["source"])
                elif kind == "fifo":
                    item.mode = stat.S_IFIFO | perm
                else:
                    raise SystemExit("unknown kind %r" % kind)
                archive.add_item(item, show_progress=False)
            archive.save()


if __name__ == "__main__":
    main()
