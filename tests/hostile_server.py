"""A hostile `borg serve` for tests/hostile.rs.

Used as BORG_RSH: `python hostile_server.py MODE STATE_DIR BORG [what the client appends]`.
It runs the real `BORG serve` (so everything it does not tamper with is genuine), passes the
client's requests through unchanged, and changes responses according to MODE:

  pass             nothing (a control: the client must work through the proxy)
  wrong-object     answers every other `get` with the data of the object fetched before it,
                   from the (HOSTILE_SKIP+1)-th non-manifest `get` on (default 2: the archive
                   metadata and the item stream pass, content chunks are swapped)
  record-manifest  saves the manifest object it forwards to STATE_DIR/manifest.bin
  replay-manifest  answers the manifest `get` with STATE_DIR/manifest.bin (an older one)
  drop-tam         removes the TAM from the manifest (unencrypted `authenticated` repositories
                   only: the proxy has no key) and re-compresses it
  huge-get         answers the first non-manifest `get` with a frame claiming a 4 GiB result,
                   then keeps the connection open without sending it
  stall-get        stops answering at the first non-manifest `get` (keeps the connection open)

Needs msgpack and borg's compressors: run it with the Python of a borg installation.
"""

import os
import sys
import subprocess
import threading
import time

import msgpack

MODE, STATE, BORG = sys.argv[1], sys.argv[2], sys.argv[3]
MANIFEST_ID = bytes(32)

server = subprocess.Popen([BORG, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
methods = {}  # msgid -> (method, args)
methods_lock = threading.Lock()


def key(d, name):
    """A dict value whatever the key type (str or bytes)."""
    if name in d:
        return d[name]
    return d.get(name.encode())


def pump_requests():
    unpacker = msgpack.Unpacker(raw=True)
    while True:
        data = os.read(0, 65536)
        if not data:
            break
        unpacker.feed(data)
        for msg in unpacker:
            if isinstance(msg, dict):
                with methods_lock:
                    methods[key(msg, "i")] = (key(msg, "m"), key(msg, "a") or {})
        server.stdin.write(data)
        server.stdin.flush()
    server.stdin.close()


def write(obj):
    os.write(1, msgpack.packb(obj, use_bin_type=False))


def hang():
    while True:
        time.sleep(60)


def drop_tam(data):
    from borg.compress import Compressor

    plain = Compressor("lz4").decompress(data[1:])
    manifest = msgpack.unpackb(plain, raw=True)
    manifest.pop(b"tam", None)
    packed = msgpack.packb(manifest, use_bin_type=False)
    return data[:1] + Compressor("lz4").compress(packed)


threading.Thread(target=pump_requests, daemon=True).start()
unpacker = msgpack.Unpacker(raw=True, max_buffer_size=1 << 30)
previous = None
gets = 0
SKIP = int(os.environ.get("HOSTILE_SKIP", "2"))
while True:
    data = os.read(server.stdout.fileno(), 1 << 20)
    if not data:
        break
    unpacker.feed(data)
    for msg in unpacker:
        if not isinstance(msg, dict) or key(msg, "r") is None:
            write(msg)
            continue
        with methods_lock:
            method, args = methods.get(key(msg, "i"), (b"", {}))
        if method not in (b"get", "get"):
            write(msg)
            continue
        oid, result = key(args, "id"), key(msg, "r")
        if oid == MANIFEST_ID:
            if MODE == "record-manifest":
                with open(os.path.join(STATE, "manifest.bin"), "wb") as f:
                    f.write(result)
            elif MODE == "replay-manifest":
                with open(os.path.join(STATE, "manifest.bin"), "rb") as f:
                    msg[b"r"] = f.read()
            elif MODE == "drop-tam":
                msg[b"r"] = drop_tam(result)
            write(msg)
            continue
        gets += 1
        if MODE == "wrong-object":
            if gets > SKIP and gets % 2 == 0 and previous is not None and previous[0] != oid:
                msg[b"r"] = previous[1]
            previous = (oid, result)
        elif MODE == "huge-get":
            # {"i": msgid, "r": <bin32 of 0xfffffff0 bytes>} and only 4 of them
            head = msgpack.packb({b"i": key(msg, "i")}, use_bin_type=False)
            frame = bytes([0x82]) + head[1:] + msgpack.packb(b"r", use_bin_type=False) + b"\xc6\xff\xff\xff\xf0abcd"
            os.write(1, frame)
            hang()
        elif MODE == "stall-get":
            hang()
        write(msg)
server.wait()
