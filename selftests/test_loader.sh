#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The spry CLI against a private pin directory: load/unload, chains,
# authorizations, functions, stats, apply, argument checking, JSON.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root_bpf
[ -x "$SPRY" ] || tap_skip_all "$SPRY not built"
command -v python3 >/dev/null || tap_skip_all "python3 needed"
command -v bpftool >/dev/null || tap_skip_all "bpftool needed"

DIR=/sys/fs/bpf/spry-test-loader-$$
TMP=$(mktemp -d /tmp/spry-test-loader.XXXXXX)
cleanup() {
	if [ -d "$DIR" ]; then
		"$SPRY" -P "$DIR" unload >/dev/null 2>&1
		rm -rf "$DIR"
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

spry() { "$SPRY" -P "$DIR" "$@"; }

# jcheck EXPR: the JSON on stdin parses and EXPR (python, over d) holds.
jcheck() {
	python3 -c 'import json, sys
d = json.load(sys.stdin)
sys.exit(0 if ('"$1"') else 1)'
}

# fails NAME ARGS...: exit status non-zero and one "Error:" line on stderr.
fails() {
	local name=$1 rc
	shift
	spry "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	if [ $rc -ne 0 ] && [ "$(grep -c '^Error: ' "$TMP/err")" -ge 1 ]; then
		tap_ok 0 "$name"
	else
		tap_diag "rc=$rc stderr: $(cat "$TMP/err")"
		tap_ok 1 "$name"
	fi
}

PINS="skmsg_route spry_socks spry_senders spry_chains spry_fns spry_auth spry_inst
      spry_verdicts spry_fn_stats spry_reqloc spry_events"

tap_plan 50

# --- not loaded ----------------------------------------------------------------
out=$(spry -j chain show 2>/dev/null)
rc=$?
[ $rc -ne 0 ] && echo "$out" | jcheck '"error" in d and "not loaded" in d["error"]'
tap_ok $? "-j chain show on an unloaded dir: JSON error, non-zero exit"
fails "unload when not loaded fails" unload
[ ! -e "$DIR" ]
tap_ok $? "failed commands leave no pin directory behind"

# --- load ---------------------------------------------------------------------
spry load >/dev/null
tap_ok $? "load"
ok=0
for p in $PINS; do
	[ -e "$DIR/$p" ] || { tap_diag "missing pin $p"; ok=1; }
done
[ "$(stat -c %a "$DIR")" = 700 ] || { tap_diag "mode $(stat -c %a "$DIR")"; ok=1; }
tap_ok $ok "every map and the program pinned, directory mode 0700"
out=$(spry -j load) && echo "$out" | jcheck 'd["already"] is True'
tap_ok $? "second load is a no-op success"
abi=$(sed -n 's/^#define SPRY_ABI_VERSION[[:space:]]*\([0-9]*\).*/\1/p' "$SPRY_SRC/bpf/maps.h")
spry version | grep -q '^spry ' && spry -j version | jcheck "d['abi'] == ${abi:-0}"
tap_ok $? "version (text and JSON)"

# --- chain add/show/replace/del ---------------------------------------------------
spry chain add demo hops upper,reverse functions helper calls upper:helper \
	idempotent upper user root buffers 64 buffer-size 1024 max-inflight 32 \
	deadline 1500 cpus 3,0-1,7-8 >/dev/null
tap_ok $? "chain add demo"
spry -j chain show demo | jcheck '
d["name"] == "demo" and [h["name"] for h in d["hops"]] == ["upper", "reverse"]
and d["hops"][0]["idempotent"] and not d["hops"][1]["idempotent"]
and d["buffers"] == 64 and d["buffer_size"] == 1024 and d["max_inflight"] == 32
and d["deadline_ms"] == 1500 and d["uid"] == 0 and d["flags"] == ["active"]
and d["cpus"] == "0-1,3,7-8"
and [f["name"] for f in d["functions"]] == ["helper"]
and d["calls"] == [{"from": "upper", "to": "helper"}]'
tap_ok $? "chain show demo -j has the definition"
spry chain show demo | grep -q 'cpus 0-1,3,7-8$'
tap_ok $? "chain show demo prints the placement"
spry -p chain show | jcheck 'len(d) == 1 and d[0]["name"] == "demo"'
tap_ok $? "chain show (all), pretty JSON parses"
bpftool map dump pinned "$DIR/spry_chains" -j | jcheck '
any(e["formatted"]["value"]["n_hops"] == 2 and e["formatted"]["value"]["name"] == "demo"
    for e in d)'
tap_ok $? "bpftool map dump shows named fields (BTF)"
spry -j auth show chain demo | jcheck '
sorted((a["from"], a["to"]) for a in d) ==
sorted([("origin", "upper"), ("upper", "reverse"), ("reverse", "origin"), ("upper", "helper")])'
tap_ok $? "chain add writes the path and call authorizations"

# A live instance of upper (as spryd would register it) survives a replace.
upper=$(spry -j fn show chain demo | python3 -c 'import json,sys
print([f["id"] for f in json.load(sys.stdin) if f["name"] == "upper"][0])')
cid=$(spry -j chain show demo | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
python3 - "$upper" "$cid" >"$TMP/fnval" <<'EOF'
import struct, sys
fn, chain = int(sys.argv[1]), int(sys.argv[2])
inst = [3] + [0] * 31
v = struct.pack("<IHH32H32s", 1, chain, 1, *inst, b"upper")
print("key", " ".join("0x%02x" % b for b in struct.pack("<I", fn)),
      "value", " ".join("0x%02x" % b for b in v))
EOF
bpftool map update pinned "$DIR/spry_fns" $(cat "$TMP/fnval")
tap_ok $? "register a fake instance of upper in spry_fns"
spry chain add demo hops upper,wc >/dev/null &&
spry -j fn show chain demo | jcheck '
sorted(f["name"] for f in d) == ["upper", "wc"] and
[f for f in d if f["name"] == "upper"][0]["id"] == '"$upper"' and
[f for f in d if f["name"] == "upper"][0]["n_inst"] == 1 and
[f for f in d if f["name"] == "upper"][0]["instances"][0]["inst"] == 3'
tap_ok $? "replace keeps the function id and its live instances, drops the others"
spry -j auth show chain demo | jcheck '
sorted((a["from"], a["to"]) for a in d) ==
sorted([("origin", "upper"), ("upper", "wc"), ("wc", "origin")])'
tap_ok $? "replace drops the old authorizations"
spry -j chain show demo | jcheck 'd["id"] == '"$cid"' and d["buffers"] == 1024 and not d["hops"][0]["idempotent"]'
tap_ok $? "replace keeps the chain id, resets omitted settings to defaults"

# --- auth -----------------------------------------------------------------------
spry auth allow chain demo from wc to upper >/dev/null &&
spry -j auth show chain demo | jcheck '{"from": "wc", "to": "upper"} in [{"from": a["from"], "to": a["to"]} for a in d]'
tap_ok $? "auth allow"
spry auth deny chain demo from wc to upper >/dev/null &&
spry auth deny chain demo fr wc t origin >/dev/null &&
spry -j auth show | jcheck '
sorted((a["from"], a["to"]) for a in d) == sorted([("origin", "upper"), ("upper", "wc")])'
tap_ok $? "auth deny (keywords by prefix, origin)"
fails "auth allow of a function outside the chain" auth allow chain demo from upper to helper

# --- fn show / stats -----------------------------------------------------------------
spry -j fn show | jcheck '
all(set(("id", "name", "chain", "flags", "instances", "stats")) <= set(f) for f in d)
and all("active" in f["flags"] for f in d if f["id"])'
tap_ok $? "fn show JSON"
spry -j stats | jcheck '
len(d["verdicts"]) == 17 and "drop_flood" in d["verdicts"] and d["verdicts"]["forward"] >= 0 and "drop_auth" in d["verdicts"]
and sorted(f["name"] for f in d["functions"]) == ["upper", "wc"]'
tap_ok $? "stats JSON: every verdict, every function"
spry ch sh demo | grep -q 'upper' && spry fn sh >/dev/null && spry st >/dev/null
tap_ok $? "unambiguous prefixes (ch sh, fn sh, st)"
SPRY_PIN_DIR=$DIR "$SPRY" -j chain show | jcheck 'd[0]["name"] == "demo"' &&
SPRY_PIN_DIR=/nonexistent "$SPRY" -P "$DIR" chain show demo >/dev/null
tap_ok $? "\$SPRY_PIN_DIR names the pin directory, -P overrides it"

# --- argument errors -------------------------------------------------------------------
fails "unknown object" bogus
fails "ambiguous object prefix" a
fails "unknown command" chain frob
fails "number with junk (12x)" chain add x hops a buffers 12x
fails "negative number" chain add x hops a buffers -5
fails "overflowing number" chain add x hops a max-inflight 99999999999999999999999
fails "name too long" chain add abcdefghijklmnopqrstuvwxyz0123456789 hops a
fails "bad characters in a name" chain add 'x/y' hops a
fails "too many hops" chain add x hops a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q
fails "unknown user" chain add x hops a user no-such-user-spry
fails "missing value" chain add x hops
fails "keyword given twice" chain add x hops a hops b
fails "cpus not a list" chain add x hops a cpus all
fails "cpus range downwards" chain add x hops a cpus 4-2
fails "cpus past CPU 255" chain add x hops a cpus 256
fails "cpus empty" chain add x hops a cpus ""

# --- apply ------------------------------------------------------------------------------
cat >"$TMP/good.yaml" <<'EOF'
chains:
  - name: demo
    user: root
    hops: [upper, reverse]
    functions: [helper]        # reachable only by calls
    calls: [{from: upper, to: helper}]
    buffers: 1024
    buffer-size: 4096
    max-inflight: 256
    deadline-ms: 5000
    idempotent: [upper]
  - name: count
    user: 0
    hops: [wordcount]
EOF
spry apply "$TMP/good.yaml" >/dev/null &&
spry -j chain show | jcheck '
sorted(c["name"] for c in d) == ["count", "demo"] and
[c for c in d if c["name"] == "demo"][0]["hops"][1]["name"] == "reverse"'
tap_ok $? "apply a good file"
spry -j chain show >"$TMP/before.json"
# The first chain is fine; the second has an unknown key: nothing may change.
cat >"$TMP/bad.yaml" <<'EOF'
chains:
  - name: fresh
    hops: [a, b]
  - name: demo
    hops: [upper]
    bufers: 12
EOF
spry apply "$TMP/bad.yaml" >/dev/null 2>"$TMP/err"
rc=$?
spry -j chain show >"$TMP/after.json"
[ $rc -ne 0 ] && grep -q 'line 6' "$TMP/err" && cmp -s "$TMP/before.json" "$TMP/after.json"
tap_ok $? "apply of a bad file fails with a line number and changes nothing"
printf 'chains:\n  - name: x\n    hops: [a]\n    buffers: "8"\n' >"$TMP/bad2.yaml"
fails "apply: quoted number" apply "$TMP/bad2.yaml"
printf 'chains:\n  - &c {name: x, hops: [a]}\n  - *c\n' >"$TMP/bad3.yaml"
fails "apply: alias" apply "$TMP/bad3.yaml"
printf 'chains:\n  - name: count\n    hops: [wordcount]\n' >"$TMP/prune.yaml"
spry -j apply "$TMP/prune.yaml" --prune | jcheck 'd["pruned"] == ["demo"]' &&
spry -j chain show | jcheck '[c["name"] for c in d] == ["count"]' &&
spry -j auth show | jcheck 'all(a["chain"] == "count" for a in d)'
tap_ok $? "apply --prune deletes the other chains and their authorizations"

# --- del ---------------------------------------------------------------------------------
spry chain del count >/dev/null &&
spry -j chain show | jcheck 'd == []' &&
spry -j fn show | jcheck 'd == []' &&
spry -j auth show | jcheck 'd == []'
tap_ok $? "chain del removes the chain, its functions and authorizations"
fails "chain del of a missing chain" chain del count

# --- help -----------------------------------------------------------------------------------
ok=0
for o in chain fn auth load unload stats apply; do
	spry $o help | grep -q "Usage: spry $o" || { tap_diag "no help for $o"; ok=1; }
done
spry help | grep -q 'OBJECT :=' || ok=1
tap_ok $ok "help for every object"

# --- unload -----------------------------------------------------------------------------------
spry unload >/dev/null && [ ! -e "$DIR" ]
tap_ok $? "unload removes every pin and the directory"
spry -j stats 2>/dev/null | jcheck '"error" in d'
tap_ok $? "JSON error after unload"

tap_finish
