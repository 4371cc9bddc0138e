#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Cloud-process workloads (issue 12, point 7 b and c; docs/PROCESS.md).
#
# (b) examples/docbuild: an incremental document build caching each
# section's rendering in its process's state.  Every answer is compared
# byte for byte with a Python reference of the same transform (written here
# from the rules in docbuild.c's header, not from its output), including
# the rebuilt/cached counts: a cold build rebuilds every section, the same
# document again none, one changed section exactly one, and the result
# equals a cold build of the changed document in a fresh process; after a
# swap and a wake the cache is still there.
#
# (c) the boutique cart as sessions (boutique --service cart-session): one
# cart per process, in its state, named by the process id; two sessions
# see only their own items, over several requests (also concurrent ones),
# across a swap, a wake and the kill -9 of the OS process (also in the
# middle of a stream of adds: every acknowledged one kept); an unknown
# session is 404.
#
# Private network namespace, pin directory, state directory, control socket.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

DOC=$SPRY_OUT/examples/docbuild
BQ=$SPRY_OUT/examples/boutique
require_bins "$SPRY" "$SPRYD" "$DOC" "$BQ"
command -v jq >/dev/null || tap_skip_all "jq not installed"
command -v curl >/dev/null || tap_skip_all "curl not installed"
command -v python3 >/dev/null || tap_skip_all "python3 not installed"

spry_test_env workloads-proc
export SPRY_STATE_DIR=$TMP/state
PORT=18437
URL=http://127.0.0.1:$PORT

spry_test_cleanup_extra() {
	local p e
	for p in $(pgrep -P "${SPRYD_PID:-0}" 2>/dev/null); do
		e=$(readlink /proc/$p/exe 2>/dev/null)
		[ "$e" = "$DOC" ] || [ "$e" = "$BQ" ] && kill -KILL "$p" 2>/dev/null
	done
}

pshow() { spry -j process show "$@" sock "$SOCK"; }
state_of() { pshow "$1" id "$2" | jq -r '.list[0].state'; }
trans_crashed() { pshow cart | jq -r '.transitions.crashed'; }
# build ID FILE OUT: POST FILE to docbuild process ID, the answer into OUT
build() { curl -s -m 10 --data-binary @"$2" -o "$3" -w '%{http_code}' "$URL/docbuild/$1/build"; }
# cart ID FN [DATA]: the answer's body of FN in session ID
cart() { curl -s -m 10 --data-binary "${3:-x}" "$URL/cart/$1/$2"; }
code() { curl -s -m 10 -o /dev/null -w '%{http_code}' --data-binary "${3:-x}" "$URL/$1/$2"; }

# The reference: ref.py DOC CACHE OUT renders DOC as docbuild does, with
# the section keys listed in CACHE (one per line, created when missing)
# taken as cached, writes the answer to OUT and adds the new keys to CACHE.
cat >"$TMP/ref.py" <<'PY'
import os, sys

def fnv(b):
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h

def esc(b):
    return (b.replace(b"&", b"&amp;").replace(b"<", b"&lt;")
             .replace(b">", b"&gt;").replace(b'"', b"&quot;"))

def inline(s):
    out, i, n = [], 0, len(s)
    while i < n:
        if s[i:i + 1] == b"`" and s.find(b"`", i + 1) >= 0:
            j = s.find(b"`", i + 1)
            out.append(b"<code>" + esc(s[i + 1:j]) + b"</code>"); i = j + 1
        elif s[i:i + 2] == b"**" and s.find(b"**", i + 2) >= 0:
            j = s.find(b"**", i + 2)
            out.append(b"<strong>" + esc(s[i + 2:j]) + b"</strong>"); i = j + 2
        elif s[i:i + 1] == b"*" and s.find(b"*", i + 1) >= 0:
            j = s.find(b"*", i + 1)
            out.append(b"<em>" + esc(s[i + 1:j]) + b"</em>"); i = j + 1
        else:
            out.append(esc(s[i:i + 1])); i += 1
    return b"".join(out)

def render(sec):
    out, blk = [], None
    lines = sec.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    def end():
        nonlocal blk
        if blk == "p": out.append(b"</p>\n")
        if blk == "ul": out.append(b"</ul>\n")
        blk = None
    for l in lines:
        lvl = len(l) - len(l.lstrip(b"#"))
        lvl = min(lvl, 3) if lvl else 0
        if lvl and len(l) > lvl and l[lvl:lvl + 1] == b" " and l[:lvl] == b"#" * lvl:
            end()
            out.append(b"<h%d>" % lvl + inline(l[lvl + 1:]) + b"</h%d>\n" % lvl)
        elif l.startswith(b"- "):
            if blk != "ul":
                end(); out.append(b"<ul>\n"); blk = "ul"
            out.append(b"<li>" + inline(l[2:]) + b"</li>\n")
        elif l == b"":
            end()
        else:
            if blk == "p":
                out.append(b" ")
            else:
                end(); out.append(b"<p>"); blk = "p"
            out.append(inline(l))
    end()
    return b"".join(out)

doc = open(sys.argv[1], "rb").read()
cache = set(open(sys.argv[2]).read().split()) if os.path.exists(sys.argv[2]) else set()
# sections: a line that is exactly "---" ends one; k markers, k + 1 sections
secs, start, at = [], 0, 0
while at < len(doc):
    nl = doc.find(b"\n", at)
    end = len(doc) if nl < 0 else nl
    if doc[at:end] == b"---":
        secs.append(doc[start:at]); start = at = end + 1
    else:
        at = end + 1 if nl >= 0 else len(doc)
secs.append(doc[start:])
body, rebuilt, cached = [], 0, 0
for i, s in enumerate(secs, 1):
    h = fnv(s)
    key = "sec/%016x/%d" % (h, len(s))
    if key in cache:
        cached += 1
    else:
        rebuilt += 1; cache.add(key)
    body.append(b'<section id="s%d" data-hash="%016x">\n' % (i, h) + render(s) + b"</section>\n")
out = b"docbuild sections %d rebuilt %d cached %d\n" % (len(secs), rebuilt, cached) + b"".join(body)
open(sys.argv[3], "wb").write(out)
open(sys.argv[2], "w").write("\n".join(sorted(cache)) + "\n")
PY
# ref DOC CACHE OUT, then the answer OUT2 compared with it byte for byte
same() { cmp -s "$1" "$2" || { tap_diag "$(diff <(head -c 2000 "$1") <(head -c 2000 "$2") | head -20)"; return 1; }; }

# A document of 12 sections: every rule, escapes, unclosed markers, an
# empty section, a repeated section (cached within one build), a marker as
# the last line (an empty section after it); doc2 changes section 5 only.
python3 - "$TMP" <<'PY'
import sys
d = sys.argv[1]
secs = []
for i in range(1, 10):
    secs.append(("# Part %d: *fast* & <safe>\n\nIntro of part %d, with `code<%d>` and **bold \"q\"**.\n"
                 "It goes on, one more line; an *unclosed star and ** and ` stay text.\n\n"
                 "## Items\n- item a%d\n- item **b%d**\n- `c&d`\n### tail %d\nlast words %s\n")
                % (i, i, i, i, i, i, "x" * (i * 37)))
secs.insert(3, "")                       # an empty section
secs.insert(6, secs[1])                  # a section repeated
secs.append("no newline at the end, ###not a heading, -not an item")
doc1 = "\n---\n".join(s.rstrip("\n") if s else s for s in secs)
doc2 = doc1.replace("Intro of part 4,", "Intro of PART 4 (edited),")
assert doc2 != doc1 and doc2.count("(edited)") == 1
open(d + "/doc1", "w").write(doc1)
open(d + "/doc2", "w").write(doc2)
open(d + "/doc3", "w").write("# only\n---\n")
# random lines of the subset's tokens, any bytes but NUL (seeded: the same each run)
import random
r = random.Random(12)
tok = [b"#", b"##", b"###", b"####", b" ", b"- ", b"-", b"*", b"**", b"`", b"&", b"<", b">",
       b'"', b"---", b"word", b"\xc3\xa9", b"\xff", b"\t", b"\r"]
lines = [b"".join(r.choice(tok) for _ in range(r.randrange(0, 9))) for _ in range(3000)]
open(d + "/doc4", "wb").write(b"\n".join(lines))
open(d + "/doc5", "w").write('"' * 16000)   # 96,105 bytes rendered: more than a pool buffer
PY

tap_plan

spry load >/dev/null
spry app add docbuild fns build,forget exec "$DOC" create manual idle 0 \
	swap-dir "$TMP/swap" >/dev/null &&
	spry app add cart fns add,get,empty exec "$BQ" create manual idle 0 \
		swap-dir "$TMP/swap-cart" args --service cart-session >/dev/null
tap_ok $? "apps docbuild and cart (boutique --service cart-session) added"
start_spryd --http 127.0.0.1:$PORT --start-timeout 3 --stop-timeout 1
wait_for 5 sh -c "'$SPRY' -P '$PIN' process show cart sock '$SOCK' >/dev/null 2>&1"
tap_ok $? "spryd read the apps"
for i in 1 2; do spry process create docbuild id $i sock "$SOCK" >/dev/null; done
for i in 1 2; do spry process create cart id $i sock "$SOCK" >/dev/null; done

# --- (b) incremental document build ------------------------------------------
python3 "$TMP/ref.py" "$TMP/doc1" "$TMP/c1" "$TMP/r1" &&
	python3 "$TMP/ref.py" "$TMP/doc1" "$TMP/c1" "$TMP/r1b" &&
	python3 "$TMP/ref.py" "$TMP/doc2" "$TMP/c1" "$TMP/r2" &&
	python3 "$TMP/ref.py" "$TMP/doc2" "$TMP/c2" "$TMP/r2cold" &&
	python3 "$TMP/ref.py" "$TMP/doc2" "$TMP/c1" "$TMP/r2b" &&
	python3 "$TMP/ref.py" "$TMP/doc3" "$TMP/c3" "$TMP/r3"
tap_ok $? "the Python reference rendered the documents"
expect_eq "$(head -1 "$TMP/r1")" "docbuild sections 12 rebuilt 11 cached 1" \
	"reference: 12 sections, the repeated one cached within the build"

expect_eq "$(build 1 "$TMP/doc1" "$TMP/o1")" 200 "process 1 builds doc1"
expect_eq "$(head -1 "$TMP/o1")" "docbuild sections 12 rebuilt 11 cached 1" \
	"cold build: every distinct section rebuilt"
same "$TMP/r1" "$TMP/o1"
tap_ok $? "cold build equals the reference byte for byte ($(stat -c %s "$TMP/o1") bytes)"
expect_eq "$(build 1 "$TMP/doc1" "$TMP/o1b")" 200 "process 1 builds doc1 again"
expect_eq "$(head -1 "$TMP/o1b")" "docbuild sections 12 rebuilt 0 cached 12" \
	"the same document again: 0 rebuilt"
same "$TMP/r1b" "$TMP/o1b" && cmp -s <(tail -n +2 "$TMP/o1") <(tail -n +2 "$TMP/o1b")
tap_ok $? "the cached build equals the reference and the cold build's document byte for byte"
expect_eq "$(build 1 "$TMP/doc2" "$TMP/o2")" 200 "process 1 builds doc2 (one section changed)"
expect_eq "$(head -1 "$TMP/o2")" "docbuild sections 12 rebuilt 1 cached 11" \
	"one changed section: exactly 1 rebuilt"
same "$TMP/r2" "$TMP/o2"
tap_ok $? "the incremental build equals the reference byte for byte"
expect_eq "$(build 2 "$TMP/doc2" "$TMP/o2cold")" 200 "fresh process 2 builds doc2 cold"
expect_eq "$(head -1 "$TMP/o2cold")" "docbuild sections 12 rebuilt 11 cached 1" \
	"process 2 has no cache of process 1's: cold"
same "$TMP/r2cold" "$TMP/o2cold" && cmp -s <(tail -n +2 "$TMP/o2") <(tail -n +2 "$TMP/o2cold")
tap_ok $? "incremental build (process 1) equals the cold build (process 2) byte for byte"

expect_cmd -o 'process 1 swapped' "docbuild process 1 swapped" -- \
	spry process swap docbuild id 1 sock "$SOCK"
[ -s "$TMP/swap/1.swap" ]
tap_ok $? "its state (the cache) is in the swap file"
expect_cmd -o 'process 1 active' "and woken" -- spry process wake docbuild id 1 sock "$SOCK"
expect_eq "$(build 1 "$TMP/doc2" "$TMP/o2b")" 200 "process 1 builds doc2 after the wake"
expect_eq "$(head -1 "$TMP/o2b")" "docbuild sections 12 rebuilt 0 cached 12" \
	"after swap and wake the cache survived: 0 rebuilt"
same "$TMP/r2b" "$TMP/o2b"
tap_ok $? "the build from the woken cache equals the reference byte for byte"
P=$(pshow docbuild id 1 | jq -r '.list[0].pid')
kill -KILL "$P" 2>/dev/null
wait_for 5 sh -c "[ \"\$('$SPRY' -P '$PIN' -j process show docbuild id 1 sock '$SOCK' | jq -r '.list[0].state')\" = allocated ]"
tap_ok $? "kill -9 of docbuild process 1's OS process"
build 1 "$TMP/doc2" "$TMP/o2c" >/dev/null
expect_eq "$(head -1 "$TMP/o2c")" "docbuild sections 12 rebuilt 0 cached 12" \
	"restarted after kill -9: the cache is still there"
expect_eq "$(build 2 "$TMP/doc3" "$TMP/o3")" 200 "a marker as the last line"
same "$TMP/r3" "$TMP/o3" && [ "$(head -1 "$TMP/o3")" = "docbuild sections 2 rebuilt 2 cached 0" ]
tap_ok $? "... gives an empty last section, as the reference"
python3 "$TMP/ref.py" "$TMP/doc4" "$TMP/c4" "$TMP/r4" &&
	[ "$(build 2 "$TMP/doc4" "$TMP/o4")" = 200 ] && same "$TMP/r4" "$TMP/o4"
tap_ok $? "3,000 random lines of the subset's tokens: equal to the reference ($(head -1 "$TMP/o4" | cut -d' ' -f2-3))"
expect_eq "$(curl -s -m 10 -d x "$URL/docbuild/2/forget")" "forgot $((13 + $(head -1 "$TMP/r4" | cut -d' ' -f5)))" \
	"forget drops process 2's cached sections (11 of doc2, 2 of doc3, doc4's)"
build 2 "$TMP/doc2" "$TMP/o2d" >/dev/null
expect_eq "$(head -1 "$TMP/o2d")" "docbuild sections 12 rebuilt 11 cached 1" "and the next build is cold"
expect_eq "$(code docbuild/9 build)" 404 "an unknown docbuild process: 404"
C5=$(build 2 "$TMP/doc5" "$TMP/o5")
expect_eq "$C5 $(cat "$TMP/o5")" "413 error: the rendered document (96105 bytes) does not fit a buffer" \
	"a rendering too big for a buffer: 413 with the reason"

# --- (c) cart sessions ----------------------------------------------------------
expect_eq "$(cart 1 add 'P1 P3')" "OK 2" "session 1: add P1 P3"
expect_eq "$(cart 2 add 'P2')" "OK 1" "session 2: add P2"
expect_eq "$(cart 1 add 'P3 P5')" "OK 4" "session 1: add P3 P5"
expect_eq "$(cart 2 add 'P2 P9 P2')" "OK 4" "session 2: add P2 P9 P2"
A1=$'P1 1\nP3 2\nP5 1' B1=$'P2 3\nP9 1'
expect_eq "$(cart 1 get)" "$A1" "session 1 sees only its items"
expect_eq "$(cart 2 get)" "$B1" "session 2 sees only its items"
expect_eq "$(code cart/1 add 'P4 P123456789')" 409 "a bad id: 409"
expect_eq "$(cart 1 get)" "$A1" "... and nothing of that request added (all or nothing)"
expect_eq "$(code cart/1 add ' ')" 400 "add without an id: 400"
H=$(curl -s -m 10 -D - -o /dev/null -d x "$URL/cart/get" -H 'Spry-Process: 2' | tr -d '\r' |
	grep -i '^spry-process:')
expect_eq "$H" "Spry-Process: 2" "the Spry-Process header names the session too"
expect_eq "$(curl -s -m 10 -d x -H 'Spry-Process: 2' "$URL/cart/get")" "$B1" "... with its cart"

expect_cmd -o 'process 1 swapped' "session 1 swapped" -- spry process swap cart id 1 sock "$SOCK"
expect_cmd -o 'process 2 swapped' "session 2 swapped" -- spry process swap cart id 2 sock "$SOCK"
[ -s "$TMP/swap-cart/1.swap" ] && [ -s "$TMP/swap-cart/2.swap" ]
tap_ok $? "both carts in their swap files"
expect_eq "$(cart 2 get)" "$B1" "a request wakes session 2: its cart is back"
expect_eq "$(state_of cart 2) $(state_of cart 1)" "active swapped" "session 1 still swapped"
expect_eq "$(cart 1 get)" "$A1" "session 1 woken: its cart is back"
expect_eq "$(cart 1 add 'P7')" "OK 5" "session 1: add P7 after the wake"

P=$(pshow cart id 1 | jq -r '.list[0].pid')
kill -KILL "$P" 2>/dev/null
wait_for 5 sh -c "[ \"\$('$SPRY' -P '$PIN' -j process show cart id 1 sock '$SOCK' | jq -r '.list[0].state')\" = allocated ]"
tap_ok $? "kill -9 of session 1's OS process"
expect_eq "$(cart 1 get)" "$A1"$'\nP7 1' "session 1 restarted: every completed add is there"
expect_eq "$(cart 2 get)" "$B1" "session 2 untouched"
expect_eq "$(cart 2 empty)" "OK 0" "session 2 emptied"
expect_eq "$(cart 2 get)" "" "session 2's cart is empty"
expect_eq "$(cart 1 get)" "$A1"$'\nP7 1' "session 1's cart kept"

seq 40 | xargs -P 8 -I{} curl -s -m 10 -o /dev/null --data-binary P8 "$URL/cart/1/add"
expect_eq "$(cart 1 get)" "$A1"$'\nP7 1\nP8 40' "40 adds from 8 clients at once: none lost"
expect_eq "$(code cart/99 get) $(code cart/99 add P1)" "404 404" "an unknown session: 404"

# kill -9 in the middle of a stream of adds: every acknowledged add is
# kept (and at most the one in flight besides)
python3 - "$URL" >"$TMP/acked" 2>"$TMP/stream.err" <<'PY' &
import sys, urllib.request, urllib.error
acked = 0
for i in range(800):		# 10 ids, 80 each (a line holds 99 at most)
    try:
        r = urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/cart/2/add",
                                   data=b"P%d" % (9 + i % 10)), timeout=10)
        if r.read().startswith(b"OK "):
            acked += 1
    except urllib.error.HTTPError as e:
        print("add %d: HTTP %d" % (i, e.code), file=sys.stderr)
print(acked)
PY
STREAM=$!
is_state() { [ "$(state_of "$1" "$2")" = "$3" ]; }
wait_for 5 is_state cart 2 active
cart_sum() { [ "$(cart 2 get | awk '{n += $2} END {print n + 0}')" -ge "$1" ]; }
CR0=$(trans_crashed)
wait_for 10 cart_sum 100	# a tenth of the way
kill -0 "$STREAM" 2>/dev/null
MID=$?
kill -KILL "$(pshow cart id 2 | jq -r '.list[0].pid')" 2>/dev/null
wait "$STREAM"
ACK=$(cat "$TMP/acked")
GOT=$(cart 2 get | awk '{n += $2} END {print n + 0}')
[ $MID -eq 0 ] && [ -n "$ACK" ] && [ "$GOT" -ge "$ACK" ] 2>/dev/null &&
	[ "$GOT" -le $((ACK + 1)) ] && [ "$(trans_crashed)" -gt "$CR0" ]
tap_ok $? "kill -9 during 800 adds: $ACK acknowledged, the cart has $GOT (every acknowledged add, at most the one in flight more)" ||
	tap_diag "$(head -3 "$TMP/stream.err")"
spry process del cart id 2 sock "$SOCK" >/dev/null
expect_eq "$(code cart/2 get)" 404 "a deleted session: 404, never another's cart"
spry process create cart id 2 sock "$SOCK" >/dev/null
expect_eq "$(cart 2 get)" "" "a session created again under id 2 starts empty"

term_all "$SPRYD_PID"
tap_ok $? "spryd stops cleanly"
tap_finish
