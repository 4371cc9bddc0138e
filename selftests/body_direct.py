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
  body_direct.py PORT hold BODY
      The head and 2000 bytes of the body, then nothing: prints "sent",
      then waits (10 s at most) for the connection to close without an
      answer (spryd shutting down with the body half received).
  body_direct.py PORT stall BODY
      The head and 2000 bytes of the body, then nothing: the answer must
      be 408 (spryd's --body-timeout).

Prints "ok", or "bad: " and what came; exit 1 unless ok.
"""
import socket
import struct
import sys
import time


class Reader:
    """Responses one by one from a socket: what is read past one is the next's."""

    def __init__(self, s):
        self.s, self.buf = s, b""

    def response(self):
        """(status line, body) of the next response; (None, what came) at EOF."""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                return None, self.buf
            self.buf += d
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        n = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                n = int(value)
        while len(rest) < n:
            d = self.s.recv(65536)
            if not d:
                break
            rest += d
        self.buf = rest[n:]
        return lines[0], rest[:n]


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    body = open(sys.argv[3], "rb").read()
    head = b"POST /demo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    rd = Reader(s)
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
        st1, b1 = rd.response()
        st2, b2 = rd.response()
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
    elif mode == "hold":
        # until spryd closes the connection (its shutdown): EOF, no answer
        s.sendall(head + body[:2000])
        print("sent", flush=True)
        try:
            st1, b1 = rd.response()
        except ConnectionResetError:
            st1, b1 = None, b""
        ok = st1 is None
        what = "an answer: %r" % st1
    elif mode == "stall":
        s.sendall(head + body[:2000])
        st1, _ = rd.response()
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
