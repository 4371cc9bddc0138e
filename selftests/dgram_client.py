#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Datagram request client of test_dgram_e2e.sh (docs/DATAGRAM.md).

  dgram_client.py run HOST PORT CHAIN_ID N WINDOW [SRC]
      N requests with unique payloads, WINDOW in flight, each response
      checked byte for byte against upper-then-reverse of its payload
      (magic, version, RESPONSE flag, chain, req_id echoed, status OK).
      Prints "ok N" or the first mismatch; exit 1 on any failure.
  dgram_client.py one HOST PORT HEXBYTES TIMEOUT [SRC]
      Send one raw UDP payload; print the response as hex, or "none".
  dgram_client.py burst HOST PORT CHAIN_ID OTHER_ID NSOCKS SRC
      One request from each of NSOCKS sockets (each its own source port),
      all sent before any answer is read, so they reach the server as one
      batch; every 4th names chain OTHER_ID.  The chain's function is
      fn_meta: an OK answer must be exactly "proto: udp\nsrc: SRC:PORT\n"
      (PORT: that socket's) "--\n" then the payload.  A request of CHAIN_ID
      may be refused NO_INSTANCE (chain at its in-flight bound), one of
      OTHER_ID must be answered NO_CHAIN, both with an empty payload.
      Prints "ok=A busy=B nochain=C"; exit 1 on any other answer or one
      missing after 5 s.
"""
import os
import select
import socket
import struct
import sys
import time

MAGIC = 0x53505251
HDR = struct.Struct("!IBBH8sB3sI")   # magic ver flags chain req_id status pad len


def sock(src, host):
    v6 = ":" in host
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((src or ("::" if v6 else "0.0.0.0"), 0))
    return s


def request(chain, rid, payload):
    return HDR.pack(MAGIC, 1, 0, chain, rid, 0, b"\0\0\0", len(payload)) + payload


def run(host, port, chain, n, window, src):
    s = sock(src, host)
    s.setblocking(False)
    pending = {}
    sent = done = 0
    deadline = time.monotonic() + 60
    while done < n:
        while sent < n and len(pending) < window:
            rid = struct.pack("!Q", 0x5a00000000000000 | sent)
            body = ("req-%06d-%s" % (sent, "abcxyz"[: sent % 7])).encode()
            body += bytes(range(0x61, 0x61 + sent % 20))
            pending[rid] = (body.upper()[::-1], time.monotonic())
            s.sendto(request(chain, rid, body), (host, port))
            sent += 1
        if time.monotonic() > deadline:
            print("timeout: %d of %d answered" % (done, n))
            return 1
        r, _, _ = select.select([s], [], [], 0.2)
        if not r:
            # a request unanswered for 5 s is a failure (nothing is lost here)
            now = time.monotonic()
            for rid, (want, t) in list(pending.items()):
                if now - t > 5.0:
                    print("# no answer for %s after 5 s" % rid.hex())
                    return 1
            continue
        while True:
            try:
                data, peer = s.recvfrom(65536)
            except BlockingIOError:
                break
            if peer[:2] != (host, port):
                print("answer from %s" % (peer,))
                return 1
            if len(data) < HDR.size:
                print("short answer %r" % data)
                return 1
            magic, ver, flags, ch, rid, st, pad, ln = HDR.unpack_from(data)
            if rid not in pending:
                print("unexpected req_id %s" % rid.hex())
                return 1
            want = pending.pop(rid)[0]
            body = data[HDR.size:]
            if (magic, ver, flags, ch, st, pad, ln) != (MAGIC, 1, 1, chain, 0, b"\0\0\0",
                                                       len(want)) or body != want:
                print("bad answer for %s: %r (want %r)" % (rid.hex(), data, want))
                return 1
            done += 1
    print("ok %d" % done)
    return 0


def one(host, port, hexbytes, timeout, src):
    s = sock(src, host)
    s.sendto(bytes.fromhex(hexbytes), (host, port))
    r, _, _ = select.select([s], [], [], timeout)
    if not r:
        print("none")
        return 0
    print(s.recv(65536).hex())
    return 0


def burst(host, port, chain, other, nsocks, src):
    socks, want = [], {}
    for i in range(nsocks):
        s = sock(src, host)
        s.setblocking(False)
        socks.append(s)
    for i, s in enumerate(socks):
        ch = other if i % 4 == 3 else chain
        rid = struct.pack("!Q", 0x5b00000000000000 | i)
        body = ("burst-%04d" % i).encode()
        meta = "proto: udp\nsrc: %s:%d\n--\n" % (src, s.getsockname()[1])
        want[s.fileno()] = (ch, rid, meta.encode() + body)
        s.sendto(request(ch, rid, body), (host, port))
    ok = busy = nochain = 0
    left = {s.fileno(): s for s in socks}
    deadline = time.monotonic() + 5
    while left:
        t = deadline - time.monotonic()
        r, _, _ = select.select(list(left.values()), [], [], max(t, 0))
        if not r:
            print("no answer on %d sockets after 5 s (ok=%d busy=%d nochain=%d)" %
                  (len(left), ok, busy, nochain))
            return 1
        for s in r:
            data = s.recv(65536)
            ch, rid, body = want[s.fileno()]
            del left[s.fileno()]
            magic, ver, flags, rch, rrid, st, pad, ln = HDR.unpack_from(data)
            got = data[HDR.size:]
            if (magic, ver, flags, rch, rrid, pad, ln) != (MAGIC, 1, 1, ch, rid, b"\0\0\0",
                                                         len(got)):
                print("bad header %r" % data)
                return 1
            if ch == other and st == 2 and not got:
                nochain += 1
            elif ch == chain and st == 1 and not got:
                busy += 1
            elif ch == chain and st == 0 and got == body:
                ok += 1
            else:
                print("bad answer status %d %r (want %r)" % (st, got, body))
                return 1
    print("ok=%d busy=%d nochain=%d" % (ok, busy, nochain))
    return 0


def main(a):
    if a[0] == "run":
        return run(a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]),
                   a[6] if len(a) > 6 else None)
    if a[0] == "one":
        return one(a[1], int(a[2]), a[3], float(a[4]), a[5] if len(a) > 5 else None)
    if a[0] == "burst":
        return burst(a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]), a[6])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
