#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""K-Means over the P processes of an app (examples/kmeans, docs/PROCESS.md).

  kmeans_client.py ref N D K SEED ITERS
      the algorithm in Python, written from the rules in examples/kmeans.h's
      header (not from the C code): the text of each iteration, as
      `kmeans reference` prints it
  kmeans_client.py run URL APP IDS N D K SEED ITERS [--rounds R] [--times FILE]
      load shard r of the data set into process IDS[r] (IDS: comma
      separated), then iterations 1, 2, ...: `step` on every process at
      once (P parallel HTTP requests); every process must answer the same
      text; stop at ITERS or when an iteration changes nothing.  Prints the
      texts (the transcript); --rounds runs it R times (loading again
      before each) and --times writes one line per iteration of every
      round: the wall time from the first request to the last answer, us.
Exit 1 with the reason on stderr on any failure (HTTP error, processes
disagreeing, a round's transcript different from the first one's).
"""
import http.client
import sys
import threading
import time
import urllib.parse

M64 = (1 << 64) - 1


def mix(x):
    x = (x + 0x9e3779b97f4a7c15) & M64
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M64
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def rnd(seed, i):
    return mix(seed ^ mix(i & M64))


def points(n, d, k, seed):
    centers = [[(1 << 17) + rnd(seed, (1 << 62) + c * d + j) % ((1 << 20) - (1 << 18))
                for j in range(d)] for c in range(k)]
    pts = []
    for g in range(n):
        base = g * (d + 1)
        c = rnd(seed, base) % k
        pts.append([centers[c][j] + rnd(seed, base + 1 + j) % (1 << 18) - (1 << 17)
                    for j in range(d)])
    return pts


def reference(n, d, k, seed, iters):
    pts = points(n, d, k, seed)
    cent = [list(p) for p in pts[:k]]
    asg = [None] * n
    out = []
    for it in range(1, iters + 1):
        sums = [[0] * d for _ in range(k)]
        counts = [0] * k
        changed = 0
        for i, p in enumerate(pts):
            best, bc = None, 0
            for c in range(k):
                dist = sum((p[j] - cent[c][j]) ** 2 for j in range(d))
                if best is None or dist < best:
                    best, bc = dist, c
            if asg[i] != bc:
                changed += 1
            asg[i] = bc
            counts[bc] += 1
            for j in range(d):
                sums[bc][j] += p[j]
        for c in range(k):
            if counts[c]:
                cent[c] = [sums[c][j] // counts[c] for j in range(d)]
        out.append("iter %d changed %d\n" % (it, changed) +
                   "".join("%d %s\n" % (counts[c], " ".join(str(v) for v in cent[c]))
                           for c in range(k)))
        if not changed:
            break
    return "".join(out)


class Fail(Exception):
    pass


def post(conn, path, body):
    conn.request("POST", path, body)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise Fail("%s: HTTP %d %s" % (path, r.status, data[:300].decode(errors="replace").strip()))
    return data.decode()


def run(url, app, ids, n, d, k, seed, iters, rounds, times_file):
    u = urllib.parse.urlsplit(url)
    p = len(ids)
    conns = [http.client.HTTPConnection(u.hostname, u.port, timeout=60) for _ in ids]
    first = None
    times = []
    for rnd_no in range(rounds):
        for r, pid in enumerate(ids):
            got = post(conns[r], "/%s/%d/load" % (app, pid), "%d %d %d %d %d %d" % (n, d, k, seed, r, p))
            if not got.startswith("loaded shard %d of %d " % (r, p)):
                raise Fail("load of process %d: %r" % (pid, got))
        texts = []
        for it in range(1, iters + 1):
            answers = [None] * p
            errors = []
            start = threading.Barrier(p + 1)

            def one(r):
                try:
                    start.wait()
                    answers[r] = post(conns[r], "/%s/%d/step" % (app, ids[r]), str(it))
                except Exception as e:  # reported below, with the process
                    errors.append("process %d: %s" % (ids[r], e))
            ths = [threading.Thread(target=one, args=(r,)) for r in range(p)]
            for t in ths:
                t.start()
            start.wait()
            t0 = time.perf_counter()
            for t in ths:
                t.join()
            dt = time.perf_counter() - t0
            if errors:
                raise Fail("iteration %d: %s" % (it, "; ".join(errors)))
            for r in range(1, p):
                if answers[r] != answers[0]:
                    raise Fail("iteration %d: process %d answered %r, process %d %r" %
                               (it, ids[0], answers[0][:200], ids[r], answers[r][:200]))
            times.append((rnd_no, it, dt * 1e6))
            texts.append(answers[0])
            if answers[0].startswith("iter %d changed 0\n" % it):
                break
        text = "".join(texts)
        if first is None:
            first = text
        elif text != first:
            raise Fail("round %d: a transcript different from round 0's" % rnd_no)
    if times_file:
        with open(times_file, "w") as f:
            for rnd_no, it, us in times:
                f.write("%d %d %.1f\n" % (rnd_no, it, us))
    return first


def main(argv):
    try:
        if len(argv) == 7 and argv[1] == "ref":
            n, d, k, seed, iters = (int(a) for a in argv[2:7])
            sys.stdout.write(reference(n, d, k, seed, iters))
            return 0
        if len(argv) >= 10 and argv[1] == "run":
            rest, rounds, times_file = argv[10:], 1, None
            while rest:
                if rest[0] == "--rounds" and len(rest) > 1:
                    rounds = int(rest[1])
                elif rest[0] == "--times" and len(rest) > 1:
                    times_file = rest[1]
                else:
                    raise Fail("unknown option %r" % rest[0])
                rest = rest[2:]
            ids = [int(i) for i in argv[4].split(",")]
            n, d, k, seed, iters = (int(a) for a in argv[5:10])
            sys.stdout.write(run(argv[2], argv[3], ids, n, d, k, seed, iters, rounds, times_file))
            return 0
        sys.stderr.write(__doc__)
        return 2
    except (Fail, OSError, ValueError) as e:
        sys.stderr.write("kmeans_client: %s\n" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
