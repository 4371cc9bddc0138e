#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Large request bodies of test_gateway.sh, on a raw connection: the rest
of such a body is received straight into its pool buffer (spryd
--body-direct), and these are the ways a client can send it.

  body_direct.py PORT pieces BODY WANT
      POST /demo with BODY's bytes: the head and 1000 bytes, then the rest
      in 4 pieces 50 ms apart, the last one followed in the same write by
      a second request (body "abc").  Both answers must be 200, the first
      exactly WANT's bytes, the second "CBA" (the demo chain: upper, then
      reverse).
  body_direct.py PORT gone BODY
      The head and half the body, then close.
  body_direct.py PORT reset BODY
      The head and half the body, then a reset (SO_LINGER 0).
  body_direct.py PORT stall BODY
      The head and 2000 bytes of the body, then nothing: the answer must
      be 408 (spryd's --body-timeout).

Prints "ok", or "bad: " and what came; exit 1 unless ok.
"""
import socket
import struct
import sys
import time


def response(s):
    """(status line, body) of one response; (None, what came) at EOF."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    n = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            n = int(value)
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return lines[0], rest


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    body = open(sys.argv[3], "rb").read()
    head = b"POST /demo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    if mode == "pieces":
        want = open(sys.argv[4], "rb").read()
        n = len(body) // 4
        s.sendall(head + body[:1000])
        for a, b in ((1000, n), (n, 2 * n), (2 * n, 3 * n)):
            time.sleep(0.05)
            s.sendall(body[a:b])
        time.sleep(0.05)
        s.sendall(body[3 * n:] +
                  b"POST /demo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        st1, b1 = response(s)
        st2, b2 = response(s)
        ok = (st1 is not None and b" 200 " in st1 + b" " and b1 == want and
              st2 is not None and b" 200 " in st2 + b" " and b2 == b"CBA")
        what = "%r (%d bytes, %s) %r %r" % (st1, len(b1), "exact" if b1 == want
                                            else "not the transformed body", st2, b2)
    elif mode in ("gone", "reset"):
        s.sendall(head + body[:len(body) // 2])
        time.sleep(0.2)
        if mode == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ok, what = True, ""
    elif mode == "stall":
        s.sendall(head + body[:2000])
        st1, _ = response(s)
        ok = st1 is not None and b" 408 " in st1 + b" "
        what = repr(st1)
    else:
        print("body_direct.py: unknown mode %r" % mode, file=sys.stderr)
        return 2
    s.close()
    print("ok" if ok else "bad: " + what)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
