#!/usr/bin/env python3
"""Writes an archive whose items look like what borg on macOS stores, using borg's Python API.

Used by tests/extract_macos.rs (borg 1.2 or 1.4 Python package, e.g. the 1.4 venv's python).
Unlike tests/extract_support/make_archive.py it passes arbitrary item keys through, so that
macOS-only metadata (bsdflags, birthtime, acl_extended, com.apple.* xattrs) can be stored.

usage: extract_macos_archive.py REPO ARCHIVE SPEC.json

SPEC.json is a list of items, in archive order. Every item has
  "path": text, "kind": "file" | "dir" | "symlink" | "hardlink" | "fifo",
and optionally
  "data": HEX (file content; stored as one chunk), "source": text (symlink target /
  hard-link master path), "perm": INT (permission bits incl. suid/sgid/sticky),
  "master": BOOL (file: hardlink_master), "xattrs": {NAME: HEX or null},
  "acl_extended" / "acl_access" / "acl_default" / "acl_nfs4": text (stored as bytes),
  and any other item key (uid, gid, user, group, mtime, atime, ctime, birthtime,
  bsdflags, rdev, ...) whose value is stored as is (ints, str).
The environment (BORG_PASSPHRASE, BORG_BASE_DIR, ...) must be the one borg itself would get.
"""
import json
import stat
import sys

from borg.archive import Archive
from borg.cache import Cache
from borg.helpers import Manifest, StableDict
from borg.item import Item
from borg.logger import setup_logging
from borg.repository import Repository

KINDS = {
    "file": stat.S_IFREG,
    "hardlink": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "fifo": stat.S_IFIFO,
}
BYTES_KEYS = ("acl_extended", "acl_access", "acl_default", "acl_nfs4")


def main():
    repo_path, name, spec_path = sys.argv[1:4]
    setup_logging(level='warning')
    with open(spec_path) as f:
        spec = json.load(f)
    with Repository(repo_path, exclusive=True) as repository:
        manifest, key = Manifest.load(repository, (Manifest.Operation.WRITE,))
        with Cache(repository, key, manifest, warn_if_unencrypted=False) as cache:
            archive = Archive(repository, key, manifest, name, cache=cache, create=True)
            for e in spec:
                e = dict(e)
                kind = e.pop("kind")
                default_perm = 0o755 if kind in ("dir", "symlink") else 0o644
                perm = e.pop("perm", default_perm)
                data = bytes.fromhex(e.pop("data", ""))
                master = e.pop("master", None)
                kw = {"mode": KINDS[kind] | perm}
                for k, v in e.items():
                    if k == "xattrs":
                        kw[k] = StableDict({n.encode(): (None if x is None else bytes.fromhex(x))
                                            for n, x in v.items()})
                    elif k in BYTES_KEYS:
                        kw[k] = v.encode()
                    else:
                        kw[k] = v
                item = Item(**kw)
                if kind == "file":
                    chunks = []
                    if data:
                        chunks.append(cache.add_chunk(key.id_hash(data), data, archive.stats))
                    item.chunks = chunks
                    item.size = len(data)
                    if master is not None:
                        item.hardlink_master = bool(master)
                archive.add_item(item, show_progress=False)
            archive.save()


if __name__ == "__main__":
    main()
