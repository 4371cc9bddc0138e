#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Cold start of a cloud process (docs/PROCESS.md, "Started from the
# template") by its two ways, against the two ways a declared function
# starts from zero (docs/ELASTIC.md "Cold start"), in the same run,
# interleaved (examples/counter's whoami for the processes,
# examples/upper for the declared function: two small libspry programs,
# each answering a request without touching anything else):
#   - process, start exec (the baseline): process 1 of an app declared
#     `start exec`, swapped (`spry process swap`, no OS process), then one
#     request naming it: spryd wakes it by fork + exec, it registers and
#     answers;
#   - process, start template: the same in an app declared `start
#     template` (the default): the app's template clones it, the clone
#     sets its id and state from the FORK's body and registers;
#   - declared, start template: a chain whose function is declared min 0,
#     at zero, then one request: spryd clones the template;
#   - declared, start exec: the same with fork + exec (the process path's
#     baseline: both exec the binary).
# Wall time of the request as an HTTP client sees it (keep-alive), p50 and
# p90, and the ratios to the process path.  Writes
# bench/results/proc_coldstart.md.  Needs root (loads the router); private
# network namespace, pins, socket.
# Environment: OUT (build dir), BENCH_PCS_N (starts per way, default 40),
# BENCH_RESULTS.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$SRC/build}
N=${BENCH_PCS_N:-40}
RES=${BENCH_RESULTS:-$SRC/bench/results}
SPRY=$OUT/spry
SPRYD=$OUT/spryd
CTR=$OUT/examples/counter
FN=$OUT/examples/upper
PORT=18541

die() { echo "proc_coldstart_bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (loads the router)"
for b in "$SPRY" "$SPRYD" "$CTR" "$FN"; do
	[ -x "$b" ] || die "$b not built (make)"
done
command -v python3 >/dev/null || die "python3 not installed"
. "$SRC/bench/lib.sh"
bench_private_netns proc_coldstart_bench "$@"

bench_spry_env proc_coldstart_bench
export SPRY_STATE_DIR=$TMP/state
"$SPRY" -P "$PIN" app add pc fns whoami exec "$CTR" idle 0 create manual start exec >/dev/null &&
	"$SPRY" -P "$PIN" app add pt fns whoami exec "$CTR" idle 0 create manual \
		start template >/dev/null &&
	"$SPRY" -P "$PIN" chain add zt hops upper >/dev/null &&
	"$SPRY" -P "$PIN" chain add ze hops upper >/dev/null &&
	"$SPRY" -P "$PIN" fn declare zt upper exec "$FN" min 0 max 1 idle 0.001 \
		start template args --quiet >/dev/null &&
	"$SPRY" -P "$PIN" fn declare ze upper exec "$FN" min 0 max 1 idle 0.001 \
		start exec args --quiet >/dev/null || die "app add / chain add / fn declare failed"
bench_start "$TMP/spryd.log" "$SPRYD" -P "$PIN" -s "$SOCK" --http 127.0.0.1:$PORT \
	--scale-tick 0.005
for i in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || die "spryd did not start: $(cat "$TMP/spryd.log")"
for i in $(seq 100); do
	"$SPRY" -P "$PIN" process create pc id 1 sock "$SOCK" >/dev/null 2>&1 &&
		"$SPRY" -P "$PIN" process create pt id 1 sock "$SOCK" >/dev/null 2>&1 && break
	sleep 0.05
done
for i in $(seq 200); do
	grep -q 'fn zt/upper: template pid [0-9]* ready' "$TMP/spryd.log" &&
		grep -q 'fn pt/proc: template pid [0-9]* ready' "$TMP/spryd.log" && break
	sleep 0.05
done
bench_wait_port $PORT || die "no HTTP front"

echo "proc_coldstart_bench: $N starts per way" >&2
python3 - "$PORT" "$N" "$SPRY" "$PIN" "$SOCK" >"$TMP/table.md" 2>"$TMP/drv.log" <<'PY'
import http.client, json, subprocess, sys, time
port, n, spry, pin, sock = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
def cli(*args):
    return subprocess.run([spry, "-P", pin] + list(args), capture_output=True, text=True)
def post(path):
    t = time.perf_counter()
    c.request("POST", path, b"x")
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit("%s: HTTP %d %r" % (path, r.status, data[:200]))
    return (time.perf_counter() - t) * 1e6
def at_zero(chain):
    for _ in range(400):
        j = json.loads(cli("-j", "fn", "show", "chain", chain).stdout or "[]")
        if not [i for f in j for i in f.get("instances", []) if i.get("listed")]:
            return
        time.sleep(0.005)
    sys.exit("chain %s did not go back to zero" % chain)
times = {"p": [], "pt": [], "zt": [], "ze": []}
for k in range(n):
    if cli("process", "swap", "pc", "id", "1", "sock", sock).returncode:
        sys.exit("process swap failed")
    times["p"].append(post("/pc/1/whoami"))
    if cli("process", "swap", "pt", "id", "1", "sock", sock).returncode:
        sys.exit("process swap failed")
    times["pt"].append(post("/pt/1/whoami"))
    at_zero("zt")
    times["zt"].append(post("/zt"))
    at_zero("ze")
    times["ze"].append(post("/ze"))
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]
base = pct(times["p"], 0.5)
print("| start | p50 | p90 | p50 / process by exec |")
print("|---|---:|---:|---:|")
for way, name in (("p", "process, woken from swap, start exec: fork + exec (baseline)"),
                  ("pt", "process, woken from swap, start template: cloned by the app's template"),
                  ("zt", "declared function at zero, start template (clone)"),
                  ("ze", "declared function at zero, start exec (fork + exec)")):
    p50 = pct(times[way], 0.5)
    print("| %s | %.0f us | %.0f us | %.2f |" % (name, p50, pct(times[way], 0.9), p50 / base))
PY
rc=$?
cat "$TMP/table.md"
[ $rc -eq 0 ] || { cat "$TMP/drv.log" >&2; die "the driver failed (rc $rc)"; }

mkdir -p "$RES"
{
	echo "# Cloud processes: cold start, exec against the app's template"
	echo
	echo "Generated by bench/proc_coldstart_bench.sh ($(date -u '+%Y-%m-%d %H:%M UTC'))."
	echo "Started from nothing $N times per way, interleaved (examples/counter's whoami"
	echo "for the processes, examples/upper for the declared function),"
	echo "one keep-alive HTTP client: a swapped process woken by its request, of an"
	echo "app declared start exec (fork + exec) and of one declared start template"
	echo "(cloned by the app's template: the default), and a"
	echo "declared function at zero started by its request from its template or by"
	echo "fork + exec (spryd's --scale-tick 5 ms: the declared ones include the"
	echo "activation's decision). Wall time of the request."
	echo
	echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
	echo "kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "(a machine shared with other jobs)."
	echo
	cat "$TMP/table.md"
} >"$RES/proc_coldstart.md.new" && mv "$RES/proc_coldstart.md.new" "$RES/proc_coldstart.md"
echo "proc_coldstart_bench: wrote $RES/proc_coldstart.md" >&2
