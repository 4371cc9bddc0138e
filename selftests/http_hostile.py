#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
#
# Hostile HTTP clients against spryd's HTTP front (run by
# test_http_hostile.sh, which starts spryd with short timeouts and a chain
# "meta" served by fn_meta).  Raw sockets only (stdlib).  Prints TAP 13.
#
#   http_hostile.py PORT SPRYD_PID HEADER_TIMEOUT WRITE_TIMEOUT IDLE_TIMEOUT
import os
import re
import resource
import socket
import sys
import time

PORT = int(sys.argv[1])
PID = int(sys.argv[2])
HDR_TO = float(sys.argv[3])
WR_TO = float(sys.argv[4])
IDLE_TO = float(sys.argv[5])
ADDR = ('127.0.0.1', PORT)

n_test = 0
n_fail = 0


def ok(cond, name, diag=None):
    global n_test, n_fail
    n_test += 1
    if cond:
        print('ok %d - %s' % (n_test, name))
    else:
        n_fail += 1
        print('not ok %d - %s' % (n_test, name))
        if diag:
            for line in str(diag).splitlines()[:8]:
                print('# ' + line)
    sys.stdout.flush()
    return cond


def conn(timeout=5.0):
    s = socket.create_connection(ADDR, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_all(s, limit=4 << 20, timeout=5.0):
    """Read until EOF (or timeout): (bytes, closed)."""
    s.settimeout(timeout)
    buf = b''
    try:
        while len(buf) < limit:
            d = s.recv(65536)
            if not d:
                return buf, True
            buf += d
    except socket.timeout:
        return buf, False
    except (ConnectionResetError, BrokenPipeError):
        return buf, True
    return buf, False


def read_response(s, timeout=5.0, buf=b''):
    """One response: (status, headers dict, body, rest) or None.  @buf:
    bytes of it already read (the rest of the previous one)."""
    s.settimeout(timeout)
    try:
        while b'\r\n\r\n' not in buf:
            d = s.recv(65536)
            if not d:
                return None
            buf += d
        head, rest = buf.split(b'\r\n\r\n', 1)
        lines = head.decode('latin-1').split('\r\n')
        m = re.match(r'HTTP/1\.1 (\d{3}) ', lines[0])
        if not m:
            return None
        hdrs = {}
        for ln in lines[1:]:
            k, v = ln.split(':', 1)
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get('content-length', '0'))
        while len(rest) < n:
            d = s.recv(65536)
            if not d:
                return None
            rest += d
        return int(m.group(1)), hdrs, rest[:n], rest[n:]
    except (socket.timeout, ConnectionResetError):
        return None


def get(path):
    s = conn()
    s.sendall(b'GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' % path.encode())
    r = read_response(s)
    s.close()
    return r


def metric(name):
    r = get('/metrics')
    if not r or r[0] != 200:
        return None
    v = None
    for ln in r[2].decode().splitlines():
        parts = ln.split(' ')
        if parts[0] == name:
            v = float(parts[1])
    return 0.0 if v is None else v


def nfds():
    return len(os.listdir('/proc/%d/fd' % PID))


def rss_kb():
    with open('/proc/%d/status' % PID) as f:
        for ln in f:
            if ln.startswith('VmRSS:'):
                return int(ln.split()[1])
    return 0


def wait_for(fn, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.05)
    return fn()


def pool_free():
    return metric('spry_pool_buffers{chain="meta",state="used"}') == 0


def conns_are(n):
    return lambda: metric('spry_http_connections') == n


H = b'Host: t\r\n'
TABLE = [
    # name, request bytes, expected status
    ('no Host in HTTP/1.1', b'GET /meta HTTP/1.1\r\n\r\n', 400),
    ('garbage request line', b'GARBAGE\r\n\r\n', 400),
    ('unknown method', b'FOO /meta HTTP/1.1\r\n' + H + b'\r\n', 400),
    ('HTTP/0.9 style line', b'GET /meta\r\n\r\n', 400),
    ('HTTP/2.0 version', b'GET /meta HTTP/2.0\r\n' + H + b'\r\n', 505),
    ('non-ASCII in target', b'GET /m\xffta HTTP/1.1\r\n' + H + b'\r\n', 400),
    ('URI over max-line', b'GET /meta/' + b'a' * 9000 + b' HTTP/1.1\r\n' + H + b'\r\n', 414),
    ('one header over max-header-bytes',
     b'GET /meta HTTP/1.1\r\n' + H + b'X-Big: ' + b'b' * 20000 + b'\r\n\r\n', 431),
    ('100 header fields',
     b'GET /meta HTTP/1.1\r\n' + H + b''.join(b'X-H%d: v\r\n' % i for i in range(100)) + b'\r\n',
     431),
    ('duplicate Host', b'GET /meta HTTP/1.1\r\n' + H + H + b'\r\n', 400),
    ('duplicate X-Request-Id',
     b'GET /meta HTTP/1.1\r\n' + H + b'X-Request-Id: a\r\nX-Request-Id: b\r\n\r\n', 400),
    ('negative Content-Length',
     b'POST /meta HTTP/1.1\r\n' + H + b'Content-Length: -1\r\n\r\n', 400),
    ('overflowing Content-Length',
     b'POST /meta HTTP/1.1\r\n' + H + b'Content-Length: 184467440737095516160\r\n\r\n', 400),
    ('Content-Length over max-body',
     b'POST /meta HTTP/1.1\r\n' + H + b'Content-Length: 100000000\r\n\r\n', 413),
    ('two Content-Lengths',
     b'POST /meta HTTP/1.1\r\n' + H + b'Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
     400),
    ('Content-Length and chunked',
     b'POST /meta HTTP/1.1\r\n' + H +
     b'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400),
    ('Transfer-Encoding gzip', b'POST /meta HTTP/1.1\r\n' + H +
     b'Transfer-Encoding: gzip\r\n\r\n', 501),
    ('chunked in HTTP/1.0', b'POST /meta HTTP/1.0\r\n' + H +
     b'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400),
    ('bad chunk size', b'POST /meta HTTP/1.1\r\n' + H +
     b'Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', 400),
    ('huge chunk size', b'POST /meta HTTP/1.1\r\n' + H +
     b'Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n', 400),
    ('chunk data without CRLF', b'POST /meta HTTP/1.1\r\n' + H +
     b'Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n', 400),
    ('obs-fold continuation line', b'GET /meta HTTP/1.1\r\n' + H +
     b'X-Spry-A: b\r\n c\r\n\r\n', 400),
    ('bare CR in a value (injection)', b'GET /meta HTTP/1.1\r\n' + H +
     b'X-Spry-A: b\rX-Injected: 1\r\n\r\n', 400),
    ('NUL in a value', b'GET /meta HTTP/1.1\r\n' + H + b'X-Spry-A: b\x00c\r\n\r\n', 400),
    ('space before the colon', b'GET /meta HTTP/1.1\r\nHost : t\r\n\r\n', 400),
    ('"@status" header name', b'GET /meta HTTP/1.1\r\n' + H + b'@status: 200\r\n\r\n', 400),
    ('bad x-spry-* name', b'GET /meta HTTP/1.1\r\n' + H + b'X-Spry-a{b: 1\r\n\r\n', 400),
    ('Expect other than 100-continue', b'GET /meta HTTP/1.1\r\n' + H +
     b'Expect: 200-ok\r\n\r\n', 417),
    ('PUT with a body on a chain', b'PUT /meta HTTP/1.1\r\n' + H +
     b'Content-Length: 3\r\n\r\nabc', 405),
    ('PUT without a body (keep-alive)', b'PUT /meta HTTP/1.1\r\n' + H +
     b'Content-Length: 0\r\n\r\n', 405, False),
    ('POST /metrics (keep-alive)', b'POST /metrics HTTP/1.1\r\n' + H +
     b'Content-Length: 0\r\n\r\n', 405, False),
    ('GET /unknown (keep-alive)', b'GET /nochain/x HTTP/1.1\r\n' + H + b'\r\n', 404, False),
    ('unknown chain with a body (close)', b'POST /nochain HTTP/1.1\r\n' + H +
     b'Content-Length: 3\r\n\r\nabc', 404),
]


def run_table():
    for t in TABLE:
        name, req, want = t[:3]
        close = t[3] if len(t) > 3 else True
        s = conn()
        try:
            s.sendall(req)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = read_response(s)
        got = r[0] if r else None
        good = False
        if r and close:
            # nothing after the answer, then EOF
            rest, closed = read_all(s, timeout=3.0)
            good = closed and not r[3] and not rest
        elif r:
            # the connection goes on: a valid request is answered
            s.sendall(b'GET /meta/again HTTP/1.1\r\nHost: t\r\n\r\n')
            r2 = read_response(s)
            good = r2 is not None and r2[0] == 200
        s.close()
        ok(got == want and good, '%s: %s and %s' %
           (name, want, 'close' if close else 'the connection goes on'),
           'got %r, after it: %r' % (got, good))


def main():
    lim = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim[1], lim[1]))
    print('TAP version 13')
    print('1..%d' % (len(TABLE) + 15))

    # warm up: the chain's pool exists, then the baseline
    r = get('/meta/warm')
    base_fds = nfds()

    run_table()

    # pipelined: three requests in one write, answered in order
    s = conn()
    s.sendall(b''.join(b'GET /meta/p%d HTTP/1.1\r\nHost: t\r\n\r\n' % i for i in range(3)) +
              b'POST /meta/p3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n'
              b'5;ext=1\r\nhello\r\n0\r\n\r\n')
    paths = []
    rest = b''
    for i in range(4):
        r = read_response(s, buf=rest)
        if not r:
            break
        rest = r[3]
        m = re.search(rb'^path: (\S+)$', r[2], re.M)
        paths.append((r[0], m.group(1).decode() if m else None))
    s.close()
    ok(paths == [(200, '/p0'), (200, '/p1'), (200, '/p2'), (200, '/p3')],
       '4 pipelined requests (one chunked with an extension): answered in order', paths)

    # a client that closes early: mid-headers, mid-body (Content-Length and chunked)
    for req in (b'GET /meta HTTP/1.1\r\nHost: t\r\nX-Spry-A: b',
                b'POST /meta HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nabc',
                b'POST /meta HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc'):
        s = conn()
        s.sendall(req)
        time.sleep(0.1)
        s.close()
    ok(wait_for(conns_are(1), 3) and wait_for(pool_free, 3),
       'clients closing mid-headers and mid-body: connections gone, pool buffers free')

    # slowloris: one byte per 200 ms; others served meanwhile
    slow = conn()
    req = b'GET /meta/slow HTTP/1.1\r\nHost: t\r\nX-Spry-Pad: ' + b'a' * 200 + b'\r\n\r\n'
    t0 = time.time()
    served = 0
    closed_at = None
    got = None
    slow.settimeout(0.01)
    for i, b in enumerate(req):
        try:
            slow.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.time() - t0
            break
        if i % 3 == 0:
            r = get('/meta/other')
            served += 1 if r and r[0] == 200 else 0
        try:
            d = slow.recv(4096)
            got = d
            closed_at = time.time() - t0
            break
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed_at = time.time() - t0
            break
        time.sleep(0.2)
        if time.time() - t0 > HDR_TO + 5:
            break
    slow.close()
    ok(closed_at is not None and closed_at < HDR_TO + 1.0 and
       (got is None or got.startswith(b'HTTP/1.1 408 ')),
       'slowloris: 408 and closed at the %.1f s header timeout (%.2f s)' %
       (HDR_TO, closed_at or -1), got)
    ok(served >= 2, 'slowloris: %d other requests served meanwhile' % served)

    # a body that stalls: the head and 10 of its 100 bytes, then nothing;
    # closed with 408 at the body timeout while others are served
    stall = conn(timeout=HDR_TO + 5)
    stall.sendall(b'POST /meta/stall HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n' +
                  b'0123456789')
    served = 0
    for i in range(3):
        r = get('/meta/beside')
        served += 1 if r and r[0] == 200 else 0
    got, closed = read_all(stall, timeout=HDR_TO + 5)
    stall.close()
    ok(closed and got.startswith(b'HTTP/1.1 408 '),
       'stalled body (Content-Length 100, 10 bytes sent): 408 and closed at the '
       '%.1f s body timeout' % HDR_TO, got[:80])
    ok(served == 3, 'stalled body: %d of 3 other requests served meanwhile' % served)

    # a client that pipelines many requests and never reads
    before = rss_kb()
    s = conn()
    s.setblocking(False)
    req = b'GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n'
    sent = 0
    t0 = time.time()
    while time.time() - t0 < 1.0:
        try:
            sent += s.send(req * 64)
        except BlockingIOError:
            time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            break
    grew = rss_kb() - before
    ok(grew < 32 * 1024, 'non-reading client (%d request bytes sent): spryd grew %d KiB' %
       (sent, grew))
    ok(wait_for(conns_are(1), WR_TO + 3),
       'non-reading client: closed by the %.1f s write timeout' % WR_TO)
    s.close()

    # 1000 idle connections while another connection is served
    idle = []
    try:
        for i in range(1000):
            idle.append(conn())
    except OSError as e:
        print('# opening idle connections: %s' % e)
    n_ok = 0
    s = conn()
    for i in range(50):
        s.sendall(b'GET /meta/busy%d HTTP/1.1\r\nHost: t\r\n\r\n' % i)
        r = read_response(s)
        n_ok += 1 if r and r[0] == 200 and (b'path: /busy%d\n' % i) in r[2] else 0
    s.close()
    open_n = metric('spry_http_connections')
    ok(len(idle) == 1000 and n_ok == 50 and open_n is not None and open_n >= 1001,
       '1000 idle connections open (%s counted): 50 requests on another one succeed' % open_n)
    ok(wait_for(conns_are(1), IDLE_TO + 3),
       'the 1000 idle connections closed at the %.1f s idle timeout' % IDLE_TO)
    for c in idle:
        c.close()

    # afterwards
    r = get('/meta/after')
    ok(r is not None and r[0] == 200, 'the gateway is alive and serves')
    ok(wait_for(pool_free, 3), 'every pool buffer of the chain is free')
    ok(wait_for(lambda: metric('spry_inflight{chain="meta"}') == 0, 3),
       'nothing in flight')
    ok(wait_for(lambda: nfds() <= base_fds, 5),
       "spryd's fd count back to its baseline (%d <= %d)" % (nfds(), base_fds))
    ok(os.path.exists('/proc/%d' % PID), 'spryd still running')
    return 1 if n_fail else 0


sys.exit(main())
