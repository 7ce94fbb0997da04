"""A hostile `borg serve --rest` for tests/rest.rs.

Used as BORG_RSH: `python3 rest_hostile_server.py MODE STATE_DIR [what the client appends]`.
The client appends `[-p PORT] HOST BORG serve --rest --backend FILE:<path>`; this proxy runs
that real `BORG serve --rest ...` (so everything it does not tamper with is genuine), passes
the client's HTTP requests through one at a time, and changes the response to the first request
of the kind MODE targets — a range GET by default, a gather with `@gather`, a listing with
`@list` — according to MODE:

  pass            nothing (a control: the client must work through the proxy)
  status-200      answers with status 200 instead of 206 (the same body)
  short-body      sends the headers and half the body, then exits (the connection drops)
  huge-length     announces a 4 GiB body, sends a few bytes and keeps the connection open
  garbage         answers with bytes that are not HTTP and keeps the connection open
  many-headers    answers with 100 000 header lines
  short-gather    answers a gather with one byte less (and a Content-Length that says so)
  stall           stops answering (keeps the connection open for 60 s)
  write-only      runs the real server with `--permissions write-only` (it refuses reads)

`MODE-once` misbehaves in the first session only (STATE_DIR counts the sessions), so the
client's reconnection can be seen to work.
"""

import os
import subprocess
import sys
import time

MODE, STATE = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
serve = args.index("serve")
command = args[serve - 1 :]

target = "range"
if "@" in MODE:
    MODE, target = MODE.split("@", 1)
once = MODE.endswith("-once")
if once:
    MODE = MODE[: -len("-once")]

counter = os.path.join(STATE, "sessions")
session = int(open(counter).read() or "0") if os.path.exists(counter) else 0
with open(counter, "w") as f:
    f.write(str(session + 1))
active = not once or session == 0

if MODE == "write-only":
    command = command[:2] + ["--permissions", "write-only"] + command[2:]

server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
client_in = sys.stdin.buffer
client_out = sys.stdout.buffer


def read_message(f, head=False):
    """One HTTP message: (start line, header lines, body), or None at EOF."""
    line = f.readline()
    if not line:
        return None
    headers = []
    length = 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        headers.append(h)
        name, _, value = h.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = b"" if head else f.read(length)
    return line, headers, body


def send(line, headers, body):
    client_out.write(line + b"".join(headers) + b"\r\n" + body)
    client_out.flush()


def hang(seconds=60):
    time.sleep(seconds)
    server.kill()
    os._exit(1)


def kind(line, headers):
    if line.startswith(b"HEAD "):
        return "head"
    if b"cmd=gather" in line:
        return "gather"
    if line.split()[1].endswith(b"/"):
        return "list"
    if any(h.lower().startswith(b"range:") for h in headers):
        return "range"
    return "other"


done = False
while True:
    req = read_message(client_in)
    if req is None:
        break
    line, headers, body = req
    head = line.startswith(b"HEAD ")
    server.stdin.write(line + b"".join(headers) + b"\r\n" + body)
    server.stdin.flush()
    resp = read_message(server.stdout, head=head)
    if resp is None:
        break
    status, rheaders, rbody = resp
    if not active or done or kind(line, headers) != target or MODE in ("pass", "write-only"):
        send(status, rheaders, rbody)
        continue
    done = True
    if MODE == "status-200":
        send(b"HTTP/1.1 200 OK\r\n", rheaders, rbody)
    elif MODE == "short-body":
        client_out.write(status + b"".join(rheaders) + b"\r\n" + rbody[: len(rbody) // 2])
        client_out.flush()
        server.kill()
        os._exit(1)
    elif MODE == "huge-length":
        client_out.write(status + b"Content-Length: 4294967296\r\n\r\nBORG")
        client_out.flush()
        hang()
    elif MODE == "garbage":
        client_out.write(b"\x93\x01\xc4\x20" + os.urandom(64))
        client_out.flush()
        hang()
    elif MODE == "many-headers":
        client_out.write(status + b"X-Filler: yes\r\n" * 100000)
        client_out.flush()
        hang()
    elif MODE == "short-gather":
        short = rbody[:-1]
        kept = [h for h in rheaders if not h.lower().startswith(b"content-length:")]
        send(status, kept + [b"Content-Length: %d\r\n" % len(short)], short)
    elif MODE == "stall":
        hang()
    else:
        sys.stderr.write("rest_hostile_server.py: unknown mode %r\n" % MODE)
        os._exit(2)

server.stdin.close()
server.wait()
