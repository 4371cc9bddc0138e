#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Both ends of local TCP connections for test_mesh.sh.

Each command runs a server and its client(s) in this one process (so in
the test's cgroup), checks what it is about and exits 0 on success, 1 with
a line on stderr on failure.  Every wait has a timeout: nothing hangs.

  xfer [--bytes N] [--dir up|down|both] [--host H] [--bind B] [--family 4|6]
       [--port P]
        N bytes each way, content checked by sha256 and by position
  hold --ready F --go F       establish, create F(ready), wait for F(go),
                              then xfer 1 MiB both ways on that connection
  halfclose                   shutdown(SHUT_WR) each way, the other side
                              keeps sending; write after shutdown: EPIPE
  peerclose [--stalled]       the reader closes while the other is sending
  peek                        MSG_PEEK then recv return the same bytes
  fionread                    FIONREAD counts unread bytes
  epoll [--rounds N]          non-blocking client on epoll, echo rounds
  many [--n N]                N concurrent connections, echo each
  stall [--bytes N]           reader stops; the sender is bounded (blocks)
                              before N bytes; FIONREAD counts what arrived;
                              the reader resumes; all arrive
  comeback [--cycles N]       step by step, with the counters of
                              `spry mesh show` ($TEST_MESH_SPRY, $TEST_MESH_PIN)
                              after each step: redirect; the reader stalls
                              (one fallback); it drains; the next send comes
                              back to the redirect (one comeback); every
                              byte checked by position
  stallxfer [--bytes N] [--dir D] [--pause-every B] [--pause S]
            [--wpause-every W]
                              N bytes each way, readers that stop for S
                              seconds after every B bytes, writers that wait
                              for their reader to catch up after every W
                              bytes: many fallbacks and comebacks; sha256
                              checked
  halfmapped --deny-cgroup DIR
                              the server end in this cgroup, the client end
                              made in DIR (a denied cgroup): only one end is
                              mapped; FIONREAD and MSG_PEEK answer as on TCP
                              each way

  gen --bytes N               the stream's first N bytes on stdout

xfer also takes --cport P (the client's port), --seed S (another stream)
and --ready F --go F (establish, create F(ready), wait for F(go)).
"""
import argparse
import fcntl
import hashlib
import json
import os
import select
import socket
import struct
import subprocess
import sys
import termios
import threading
import time

TIMEOUT = 60.0
CHUNK = 65536


def fail(msg):
    sys.stderr.write("test_mesh_peer: %s\n" % msg)
    sys.exit(1)


SEED = 0
BLOCKS = 257		# distinct random chunks; a window of 257 * 64 KiB
_blocks = {}


def pattern(i):
    """Chunk i of the stream: its index (8 bytes) and then random bytes of
    one of BLOCKS blocks, so any 16 bytes of the stream say where they
    belong (within BLOCKS chunks) and reordering or duplication shows, and
    where (locate())."""
    j = i % BLOCKS
    b = _blocks.get(j)
    if b is None:
        b = _blocks[j] = hashlib.shake_128(struct.pack("<QQ", SEED, j)).digest(CHUNK)
    return struct.pack("<Q", i) + b[8:]


def stream_bytes(n):
    """Yield the stream of n bytes in CHUNK pieces."""
    i = 0
    while n > 0:
        b = pattern(i)[:n]
        n -= len(b)
        i += 1
        yield b


def stream_at(off, n):
    """Bytes off..off+n of the stream."""
    out = []
    while n > 0:
        i, o = divmod(off, CHUNK)
        b = pattern(i)[o:o + n]
        out.append(b)
        off += len(b)
        n -= len(b)
    return b"".join(out)


def expected_sha(n):
    h = hashlib.sha256()
    for b in stream_bytes(n):
        h.update(b)
    return h.hexdigest()


def locate(data, near, span=8 << 20):
    """Where data (at least 16 bytes of a received stream) is in the sent
    stream: the offset closest to near within span, or None."""
    lo = max(0, near - span)
    hay = stream_at(lo, 2 * span)
    probe = data[:64]
    best, at = None, hay.find(probe)
    while at >= 0:
        if best is None or abs(lo + at - near) < abs(best - near):
            best = lo + at
        at = hay.find(probe, at + 1)
    return best


def explain(got, off):
    """What a received stretch got (from stream offset off on) holds,
    as runs of 'received [a, b) = sent [c, d)'; got starts at the first
    byte that differs from what was sent there."""
    runs, pos = [], 0
    while pos < len(got) - 64 and len(runs) < 4:
        src = locate(got[pos:], off + pos)
        if src is None:
            runs.append("received %d.. = nothing sent near it" % (off + pos))
            break
        ref = stream_at(src, len(got) - pos)
        n = next((k for k in range(0, len(ref), 4096) if got[pos + k:pos + k + 4096] != ref[k:k + 4096]),
                 len(ref))
        if n < len(ref):	# narrow down to the byte
            n += next(k for k in range(4096) if got[pos + n + k] != ref[n + k])
        runs.append("received [%d, %d) = sent [%d, %d) (%+d)" % (off + pos, off + pos + n, src, src + n,
                                                                  src - off - pos))
        pos += max(n, 1)
    return "; ".join(runs)


class Checker:
    """Checks a received stream byte for byte as it arrives; at the first
    difference it keeps what follows (up to KEEP bytes) and explain()s it:
    a run from later in the stream is reordering, one from earlier is
    duplication."""
    KEEP = 8 << 20

    def __init__(self, name):
        self.name, self.pos, self.bad, self.kept = name, 0, None, []
        self.nkept = 0
        self.h = hashlib.sha256()

    def feed(self, b):
        self.h.update(b)
        if self.bad is None:
            want = stream_at(self.pos, len(b))
            if b == want:
                self.pos += len(b)
                return
            k = next(k for k in range(len(b)) if b[k] != want[k])
            self.bad = self.pos + k
            b = b[k:]
        if self.nkept < self.KEEP:
            self.kept.append(b)
            self.nkept += len(b)

    def report(self):
        if self.bad is None:
            return None
        return "%s: first difference at byte %d: %s" % (self.name, self.bad,
                                                        explain(b"".join(self.kept), self.bad))


def pair(host="127.0.0.1", bind=None, family=4, port=0, cport=0, client_cgroup=None,
         rcvbuf=0):
    """A connected (client, server) pair; the listener is closed.

    client_cgroup: make the client socket in that cgroup (a socket's
    cgroup is its maker's at socket()), then come back.  rcvbuf: the
    server's SO_RCVBUF (set on the listener, which the accepted socket
    inherits)."""
    fam = socket.AF_INET6 if family == 6 else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if fam == socket.AF_INET6:
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind((bind if bind is not None else host, port))
    ls.listen(16)
    ls.settimeout(TIMEOUT)
    port = ls.getsockname()[1]
    home = None
    cfam = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    if client_cgroup:
        home = own_cgroup()
        move_to(client_cgroup)
    try:
        c = socket.socket(cfam, socket.SOCK_STREAM)
    finally:
        if home:
            move_to(home)
    c.settimeout(TIMEOUT)
    if cport:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        c.bind((host, cport))
    c.connect((host, port))
    s, _ = ls.accept()
    s.settimeout(TIMEOUT)
    ls.close()
    return c, s


def cgroup2_root():
    with open("/proc/mounts") as f:
        for line in f:
            w = line.split()
            if w[2] == "cgroup2":
                return w[1]
    fail("no cgroup2 mount")


def own_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return cgroup2_root() + line[3:].strip()
    fail("no cgroup v2 line in /proc/self/cgroup")


def move_to(cg):
    with open(os.path.join(cg, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def send_stream(sock, n):
    for b in stream_bytes(n):
        sock.sendall(b)


def recv_sha(sock, n, out):
    h = hashlib.sha256()
    got = 0
    while got < n:
        b = sock.recv(min(1 << 20, n - got))
        if not b:
            break
        h.update(b)
        got += len(b)
    out.append((got, h.hexdigest()))


def run_threads(*targets):
    ts = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join(TIMEOUT * 4)
        if t.is_alive():
            fail("a transfer did not finish in time")


def xfer_on(c, s, n, direction):
    want = expected_sha(n)
    res_up, res_down, errs = [], [], []

    def guard(f):
        def g():
            try:
                f()
            except OSError as e:
                errs.append(e)
        return g
    targets = []
    if direction in ("up", "both"):
        targets += [guard(lambda: send_stream(c, n)), guard(lambda: recv_sha(s, n, res_up))]
    if direction in ("down", "both"):
        targets += [guard(lambda: send_stream(s, n)), guard(lambda: recv_sha(c, n, res_down))]
    run_threads(*targets)
    if errs:
        fail("transfer failed: %s" % errs[0])
    for name, r in (("client->server", res_up), ("server->client", res_down)):
        if not r:
            continue
        got, sha = r[0]
        if got != n or sha != want:
            fail("%s: %d of %d bytes, sha256 %s, expected %s" % (name, got, n, sha, want))
    print("ok %d bytes %s sha256 %s" % (n, direction, want))


def cmd_xfer(a):
    c, s = pair(a.host, a.bind, a.family, a.port, a.cport)
    if a.ready:
        open(a.ready, "w").close()
        wait_file(a.go)
    xfer_on(c, s, a.bytes, a.dir)
    c.close()
    s.close()


def wait_file(path):
    deadline = time.time() + TIMEOUT
    while not os.path.exists(path):
        if time.time() > deadline:
            fail("no %s in time" % path)
        time.sleep(0.02)


def cmd_hold(a):
    c, s = pair()
    open(a.ready, "w").close()
    wait_file(a.go)
    xfer_on(c, s, 1 << 20, "both")
    c.close()
    s.close()


def read_all(sock):
    got = b""
    while True:
        b = sock.recv(CHUNK)
        if not b:
            return got
        got += b


def recv_upto(sock, n):
    """n bytes from sock, or fewer when the peer closes first."""
    got = b""
    while len(got) < n:
        b = sock.recv(n - len(got))
        if not b:
            break
        got += b
    return got


def cmd_halfclose(a):
    for first in ("client", "server"):
        c, s = pair()
        x, y = (c, s) if first == "client" else (s, c)
        x.sendall(b"request" * 1000)
        x.shutdown(socket.SHUT_WR)
        if read_all(y) != b"request" * 1000:
            fail("%s half-close: the other side did not read the bytes then EOF" % first)
        # the half-closed side still receives
        y.sendall(b"reply" * 1000)
        y.shutdown(socket.SHUT_WR)
        if read_all(x) != b"reply" * 1000:
            fail("%s half-close: no reply after shutdown(SHUT_WR)" % first)
        # writing after one's own shutdown fails as on plain TCP
        try:
            x.send(b"late")
            fail("%s: send after shutdown(SHUT_WR) succeeded" % first)
        except BrokenPipeError:
            pass
        c.close()
        s.close()
    print("ok halfclose")


def cmd_peerclose(a):
    """The reader closes mid-stream; the sender's next sends must fail.

    --stalled: the reader never reads, so the sender is blocked on a full
    window when the reader closes (docs/MESH.md: the error then waits for
    the closed end's FIN_WAIT2 timeout, net.ipv4.tcp_fin_timeout)."""
    c, s = pair()
    c.settimeout(TIMEOUT)
    stop = threading.Event()

    def reader():
        if not a.stalled:
            deadline = time.time() + 0.3
            while time.time() < deadline:
                s.recv(CHUNK)
        else:
            stop.wait(0.3)
        s.close()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    err = None
    sent = 0
    start = time.time()
    while time.time() < start + TIMEOUT:
        try:
            sent += c.send(b"x" * (CHUNK if a.stalled else 4096))
        except (BrokenPipeError, ConnectionResetError) as e:
            err = e
            break
        except socket.timeout:
            break
        if not a.stalled:
            time.sleep(0.001)
    t.join(TIMEOUT)
    if err is None:
        fail("sending to a closed peer never failed (%d bytes sent)" % sent)
    print("ok peerclose%s: %s after %d bytes, %.1f s" %
          (" (stalled)" if a.stalled else "", type(err).__name__, sent, time.time() - start))


def cmd_peek(a):
    c, s = pair()
    c.sendall(b"peekaboo")
    p = s.recv(8, socket.MSG_PEEK)
    while len(p) < 8:
        time.sleep(0.01)
        p = s.recv(8, socket.MSG_PEEK)
    r = s.recv(8)
    if p != b"peekaboo" or r != b"peekaboo":
        fail("peek %r then recv %r" % (p, r))
    print("ok peek")


def fionread(sock):
    return struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"))[0]


def outqueue(sock):
    """Bytes the socket sent that the peer has not acknowledged (SIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(sock, termios.TIOCOUTQ, b"\0\0\0\0"))[0]


def cmd_fionread(a):
    c, s = pair()
    for x, y, name in ((c, s, "server"), (s, c, "client")):
        x.sendall(b"y" * 1000)
        deadline = time.time() + TIMEOUT
        while fionread(y) < 1000 and time.time() < deadline:
            time.sleep(0.01)
        n = fionread(y)
        if n != 1000:
            fail("%s FIONREAD %d, expected 1000" % (name, n))
        if len(y.recv(2000)) != 1000 or fionread(y) != 0:
            fail("%s FIONREAD not 0 after reading" % name)
    print("ok fionread")


def cmd_epoll(a):
    c, s = pair()

    def echo():
        try:
            while True:
                b = s.recv(CHUNK)
                if not b:
                    return
                s.sendall(b)
        except OSError:
            return
    t = threading.Thread(target=echo, daemon=True)
    t.start()
    c.setblocking(False)
    ep = select.epoll()
    ep.register(c.fileno(), select.EPOLLIN)
    for i in range(a.rounds):
        msg = struct.pack("<I", i) * 25
        c.send(msg)
        got = b""
        while len(got) < len(msg):
            if not ep.poll(10.0):
                fail("epoll: no wake-up in round %d (lost wake-up)" % i)
            try:
                got += c.recv(CHUNK)
            except BlockingIOError:
                continue
        if got != msg:
            fail("epoll: round %d echoed %r" % (i, got[:16]))
    ep.close()
    c.close()
    t.join(TIMEOUT)
    s.close()
    print("ok epoll %d rounds" % a.rounds)


def cmd_many(a):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(a.n)
    ls.settimeout(TIMEOUT)
    port = ls.getsockname()[1]
    clients, servers = [], []
    for i in range(a.n):
        clients.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
        servers.append(ls.accept()[0])
    ls.close()
    # every connection open at once: each sends, the other echoes
    for i, c in enumerate(clients):
        c.sendall(struct.pack("<I", i) * 16)
    for i, s in enumerate(servers):
        s.settimeout(TIMEOUT)
        want = struct.pack("<I", i) * 16
        got = recv_upto(s, len(want))
        if got != want:
            fail("connection %d: server got %r" % (i, got[:8]))
        s.sendall(got)
    for i, c in enumerate(clients):
        want = struct.pack("<I", i) * 16
        got = recv_upto(c, len(want))
        if got != want:
            fail("connection %d: client got %r" % (i, got[:8]))
    for x in clients + servers:
        x.close()
    print("ok many %d" % a.n)


def send_until_stalled(c, n, chunk=None):
    """The reader does not read: send the stream's first n bytes without
    blocking until the sender cannot go on (1 s with no room).  Returns
    (bytes sent, the rest of the chunk being sent, the generator)."""
    c.setblocking(False)
    gen = stream_bytes(n)
    pending = b""
    sent = 0
    while sent < n:
        if not pending:
            pending = next(gen)
        try:
            k = c.send(pending[:chunk] if chunk else pending)
            sent += k
            pending = pending[k:]
        except BlockingIOError:
            _, w, _ = select.select([], [c], [], 1.0)
            if not w:
                break
    if sent >= n:
        fail("stalled reader: the sender wrote all %d bytes unbounded" % n)
    return sent, pending, gen


def resume_and_check(c, s, n, pending, gen):
    """The reader resumes: the rest is sent, and all n bytes must arrive,
    in order."""
    res = []
    t = threading.Thread(target=recv_sha, args=(s, n, res), daemon=True)
    t.start()
    c.setblocking(True)
    c.settimeout(TIMEOUT)
    if pending:
        c.sendall(pending)
    for b in gen:
        c.sendall(b)
    t.join(TIMEOUT * 2)
    if not res:
        fail("the resumed reader did not get everything in time")
    got, sha = res[0]
    want = expected_sha(n)
    if got != n or sha != want:
        fail("after the stall: %d of %d bytes, sha256 %s, expected %s" % (got, n, sha, want))


def cmd_stall(a):
    c, s = pair()
    n = a.bytes
    sent, pending, gen = send_until_stalled(c, n)
    print("bounded at %d bytes" % sent)
    sys.stdout.flush()
    # What arrived is the redirected bytes plus what TCP brought after the
    # fallback: FIONREAD must count both (the mapped reader's TCP bytes
    # need the SK_SKB verdict program), and the sender's unacknowledged
    # bytes are the rest.
    deadline = time.time() + TIMEOUT
    while True:
        inq, outq = fionread(s), outqueue(c)
        if inq + outq == sent or time.time() > deadline:
            break
        time.sleep(0.05)
    if inq + outq != sent:
        fail("FIONREAD %d + unsent %d != %d bytes sent" % (inq, outq, sent))
    resume_and_check(c, s, n, pending, gen)
    print("ok stall %d bytes" % n)


SO_MEMINFO = 55


def meminfo(sock):
    """(receive memory, receive buffer) of a socket: SK_MEMINFO_RMEM_ALLOC
    and SK_MEMINFO_RCVBUF of SO_MEMINFO, what ss -m shows as r and rb."""
    v = struct.unpack("9I", sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 36))
    return v[0], v[1]


def cmd_rcvbuf(a):
    """A reader with a small SO_RCVBUF stops reading: what its peer may
    queue in it is what TCP admits, its receive buffer (plus a segment),
    not max-queued; then everything arrives in order."""
    c, s = pair(rcvbuf=a.rcvbuf)
    n = a.bytes
    sent, pending, gen = send_until_stalled(c, n, 64 << 10)
    time.sleep(0.2)
    rmem, rb = meminfo(s)
    print("sent %d before blocking; reader's receive memory %d, buffer %d" % (sent, rmem, rb))
    sys.stdout.flush()
    if rmem > rb + a.slack:
        fail("the stalled reader holds %d bytes, over its buffer %d + %d" % (rmem, rb, a.slack))
    resume_and_check(c, s, n, pending, gen)
    print("ok rcvbuf %d bytes" % n)


def counters():
    """The mesh counters, from `spry -j mesh show`."""
    cmd = [os.environ.get("TEST_MESH_SPRY", "spry")]
    if os.environ.get("TEST_MESH_PIN"):
        cmd += ["-P", os.environ["TEST_MESH_PIN"]]
    r = subprocess.run(cmd + ["-j", "mesh", "show"], capture_output=True, timeout=30)
    if r.returncode:
        fail("spry mesh show: %s" % r.stderr.decode().strip())
    return json.loads(r.stdout)["counters"]


class Delta:
    """Counter growth since the last mark."""

    def __init__(self):
        self.mark()

    def mark(self):
        self.base = counters()

    def check(self, step, **want):
        """want: name=N (grew by exactly N) or name=(">=", N)."""
        now = counters()
        for name, w in want.items():
            d = now[name] - self.base[name]
            op, n = w if isinstance(w, tuple) else ("==", w)
            ok = d >= n if op == ">=" else d == n
            if not ok:
                fail("%s: counter %s grew by %d, expected %s %d" % (step, name, d, op, n))
        self.base = now


class Reader:
    """Reads the stream on a socket, checking each byte by its position."""

    def __init__(self, sock):
        self.sock = sock
        self.pos = 0

    def read(self, n, step):
        while n > 0:
            b = self.sock.recv(min(n, 1 << 20))
            if not b:
                fail("%s: EOF at byte %d" % (step, self.pos))
            if b != stream_at(self.pos, len(b)):
                fail("%s: bytes %d..%d are not the stream's (reordered or lost)" %
                     (step, self.pos, self.pos + len(b)))
            self.pos += len(b)
            n -= len(b)


def send_until_blocked(c, off):
    """Non-blocking sends of the stream from off until the socket stays
    unwritable for 1 s: the new offset."""
    c.setblocking(False)
    pending = b""
    while off < (1 << 30):
        if not pending:
            pending = stream_at(off, CHUNK)
        try:
            k = c.send(pending)
            off += k
            pending = pending[k:]
        except BlockingIOError:
            _, w, _ = select.select([], [c], [], 1.0)
            if not w:
                break
    c.setblocking(True)
    c.settimeout(TIMEOUT)
    return off


def wait_acked(c, step):
    deadline = time.time() + TIMEOUT
    while outqueue(c) and time.time() < deadline:
        time.sleep(0.01)
    if outqueue(c):
        fail("%s: %d bytes still unacknowledged after the drain" % (step, outqueue(c)))


def cmd_comeback(a):
    c, s = pair()
    d = Delta()
    r = Reader(s)
    off = 0
    c.sendall(stream_at(off, 256 << 10))
    off += 256 << 10
    r.read(256 << 10, "redirect")
    d.check("redirect", redirected_bytes=(">=", 256 << 10), fallback_stalled=0, comeback=0,
            passed_bytes=0)
    for cycle in range(a.cycles):
        step = "cycle %d" % (cycle + 1)
        # the reader stalls: the sender falls back once, then TCP's window stops it
        start = off
        off = send_until_blocked(c, off)
        d.check(step + " stall", fallback_stalled=1, pass_stalled=(">=", 1), comeback=0)
        # the reader drains everything, in order; the sender's bytes are acknowledged
        r.read(off - start, step + " drain")
        wait_acked(c, step)
        d.check(step + " drain", comeback=0, fallback_stalled=0)
        # The next send comes back to the redirect, behind everything read.
        # Unless the stall's last send failed inside the kernel's push to
        # TCP: then the kernel reuses that verdict (pass) for one more send
        # without running the program (no counter moves), and the send
        # after that one comes back.
        for attempt in (1, 2):
            c.sendall(stream_at(off, 64 << 10))
            off += 64 << 10
            r.read(64 << 10, step + " after the drain")
            now = counters()
            if attempt == 1 and all(now[k] == d.base[k] for k in
                                    ("comeback", "pass_stalled", "redirected", "passed_bytes")):
                wait_acked(c, step)
                d.mark()
                continue
            break
        d.check(step + " comeback", comeback=1, redirected_bytes=(">=", 64 << 10),
                pass_stalled=0, passed_bytes=0)
    c.close()
    if s.recv(1):
        fail("bytes after the end of the stream")
    s.close()
    print("ok comeback: %d cycles, %d bytes in order" % (a.cycles, off))


def cmd_stallxfer(a):
    """Both directions at once; readers stall, writers pause."""
    c, s = pair()
    n = a.bytes
    want = expected_sha(n)
    res = {}
    errs = []
    progress = {"client->server": 0, "server->client": 0}

    def writer(sock, name):
        try:
            sent = 0
            for b in stream_bytes(n):
                sock.sendall(b)
                sent += len(b)
                if sent % a.wpause_every == 0:
                    # wait for the reader to catch up: the next send may
                    # come back to the redirect
                    deadline = time.time() + TIMEOUT
                    while progress[name] < sent and time.time() < deadline:
                        time.sleep(0.001)
        except OSError as e:
            errs.append("%s writer: %s" % (name, e))

    def reader(sock, name):
        chk = Checker(name)
        got = 0
        mark = a.pause_every
        try:
            while got < n:
                b = sock.recv(min(1 << 20, n - got))
                if not b:
                    break
                chk.feed(b)
                got += len(b)
                progress[name] = got
                if got >= mark:
                    time.sleep(a.pause)
                    mark += a.pause_every
        except OSError as e:
            errs.append("%s reader: %s" % (name, e))
        res[name] = (got, chk.h.hexdigest(), chk.report())
    targets = []
    if a.dir in ("up", "both"):
        targets += [lambda: writer(c, "client->server"), lambda: reader(s, "client->server")]
    if a.dir in ("down", "both"):
        targets += [lambda: writer(s, "server->client"), lambda: reader(c, "server->client")]
    run_threads(*targets)
    if errs:
        fail(errs[0])
    for name, (got, sha, why) in res.items():
        if got != n or sha != want:
            fail("%s: %d of %d bytes, sha256 %s, expected %s%s" % (name, got, n, sha, want,
                                                                 "; " + why if why else ""))
    c.close()
    s.close()
    print("ok stallxfer %d bytes %s sha256 %s" % (n, a.dir, want))


def cmd_halfmapped(a):
    """One end mapped (the server), the other refused (made in a denied
    cgroup): FIONREAD and MSG_PEEK answer as on plain TCP each way."""
    c, s = pair(client_cgroup=a.deny_cgroup)
    for x, y, name in ((c, s, "client->server (mapped reader)"),
                       (s, c, "server->client (unmapped reader)")):
        data = stream_at(0, 3000)
        x.sendall(data)
        deadline = time.time() + TIMEOUT
        while fionread(y) < len(data) and time.time() < deadline:
            time.sleep(0.01)
        n = fionread(y)
        if n != len(data):
            fail("%s: FIONREAD %d, expected %d" % (name, n, len(data)))
        p = y.recv(len(data), socket.MSG_PEEK)
        if p != data[:len(p)] or not p:
            fail("%s: MSG_PEEK returned %d bytes, not the first ones sent" % (name, len(p)))
        if fionread(y) != len(data):
            fail("%s: FIONREAD %d after MSG_PEEK, expected %d" % (name, fionread(y), len(data)))
        got = recv_upto(y, len(data))
        if got != data:
            fail("%s: recv after MSG_PEEK returned other bytes" % name)
        if fionread(y) != 0:
            fail("%s: FIONREAD %d after reading all, expected 0" % (name, fionread(y)))
    c.close()
    s.close()
    print("ok halfmapped")


def cmd_gen(a):
    """The stream's first N bytes on stdout (a file for iperf3 -F)."""
    out = sys.stdout.buffer
    for b in stream_bytes(a.bytes):
        out.write(b)
    out.flush()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    x = sub.add_parser("xfer")
    x.add_argument("--bytes", type=int, default=1 << 20)
    x.add_argument("--dir", choices=("up", "down", "both"), default="both")
    x.add_argument("--host", default="127.0.0.1")
    x.add_argument("--bind")
    x.add_argument("--family", type=int, choices=(4, 6), default=4)
    x.add_argument("--port", type=int, default=0)
    x.add_argument("--cport", type=int, default=0)
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--ready")
    x.add_argument("--go")
    h = sub.add_parser("hold")
    h.add_argument("--ready", required=True)
    h.add_argument("--go", required=True)
    sub.add_parser("halfclose")
    pc = sub.add_parser("peerclose")
    pc.add_argument("--stalled", action="store_true")
    sub.add_parser("peek")
    sub.add_parser("fionread")
    e = sub.add_parser("epoll")
    e.add_argument("--rounds", type=int, default=2000)
    m = sub.add_parser("many")
    m.add_argument("--n", type=int, default=1000)
    st = sub.add_parser("stall")
    st.add_argument("--bytes", type=int, default=96 << 20)
    rb = sub.add_parser("rcvbuf")
    rb.add_argument("--bytes", type=int, default=64 << 20)
    rb.add_argument("--rcvbuf", type=int, default=256 << 10)
    rb.add_argument("--slack", type=int, default=256 << 10)
    cb = sub.add_parser("comeback")
    cb.add_argument("--cycles", type=int, default=3)
    sx = sub.add_parser("stallxfer")
    sx.add_argument("--bytes", type=int, default=1 << 30)
    sx.add_argument("--dir", choices=("up", "down", "both"), default="both")
    sx.add_argument("--pause-every", type=int, default=16 << 20)
    sx.add_argument("--pause", type=float, default=0.02)
    sx.add_argument("--wpause-every", type=int, default=8 << 20)
    g = sub.add_parser("gen")
    g.add_argument("--bytes", type=int, required=True)
    hm = sub.add_parser("halfmapped")
    hm.add_argument("--deny-cgroup", required=True)
    a = p.parse_args()
    global SEED
    SEED = getattr(a, "seed", 0)
    try:
        globals()["cmd_" + a.cmd](a)
    except (OSError, socket.timeout) as e:
        fail("%s: %s" % (a.cmd, e))


if __name__ == "__main__":
    main()
