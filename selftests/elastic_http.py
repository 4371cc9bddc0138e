#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""HTTP helper of test_elastic.sh (not a test itself).

  elastic_http.py burst PORT CHAIN N [GAP_MS]
      N requests, each on its own connection, sent in order GAP_MS apart
      (default 2) before any answer is read; body "req-I".  Prints one line
      per request: "I STATUS RETRY_AFTER BODY".
  elastic_http.py cycles PORT CHAIN N PAUSE_MS
      N requests one after the other on one keep-alive connection, PAUSE_MS
      between them; prints "ok K" with K answered 200 and right (the body
      ends with "req-I", any case).  An answer "PID:..." (fn_whoami) names
      the instance: the next request waits until that process is gone (5 s
      at most), so that each one finds the function at zero instances.
"""
import socket
import sys
import time


def request(chain, i, keep=False):
    body = ("req-%d" % i).encode()
    return (b"POST /%s/%d HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n"
            % (chain.encode(), i, len(body),
               b"" if keep else b"Connection: close\r\n")) + body


def read_response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, hdrs, rest[:n].decode("latin-1")


def burst(port, chain, n, gap_ms):
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(request(chain, i))
        socks.append(s)
        time.sleep(gap_ms / 1000.0)
    for i, s in enumerate(socks):
        r = read_response(s)
        s.close()
        if r is None:
            print(i, "none", "-", "-")
        else:
            st, h, b = r
            print(i, st, h.get("retry-after", "-"), b.strip().replace(" ", "_") or "-")


def wait_gone(pid, secs):
    """Until process PID is gone or a zombie (its parent reaps it)."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.0005)


def cycles(port, chain, n, pause_ms):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    ok = 0
    for i in range(n):
        s.sendall(request(chain, i, keep=True))
        r = read_response(s)
        if r is None:
            print("request", i, "got no answer", file=sys.stderr)
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            continue
        st, _, b = r
        if st == 200 and b.lower().endswith("req-%d" % i):
            ok += 1
        else:
            print("request", i, "got", st, b.strip()[:80], file=sys.stderr)
        pid = b.split(":", 1)[0]
        if pid.isdigit():
            wait_gone(int(pid), 5.0)
        time.sleep(pause_ms / 1000.0)
    print("ok", ok)


def main():
    mode, port, chain, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if mode == "burst":
        burst(port, chain, n, float(sys.argv[5]) if len(sys.argv) > 5 else 2)
    elif mode == "cycles":
        cycles(port, chain, n, float(sys.argv[5]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
