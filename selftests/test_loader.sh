#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The spry CLI against a private pin directory: load/unload, chains,
# authorizations, functions, stats, apply, argument checking, JSON.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root_bpf
require_bins "$SPRY"
command -v python3 >/dev/null || tap_skip_all "python3 needed"
command -v bpftool >/dev/null || tap_skip_all "bpftool needed"

spry_test_env loader
DIR=$PIN

# fails NAME ARGS...: exit status non-zero and one "Error:" line on stderr.
fails() {
	local name=$1
	shift
	expect_cmd -s '!0' -e '^Error: ' "$name" -- spry "$@"
}

PINS="skmsg_route spry_socks spry_senders spry_chains spry_fns spry_auth spry_inst
      spry_verdicts spry_fn_stats spry_reqloc spry_events spry_procs spry_fanrec"

tap_plan

# --- not loaded ----------------------------------------------------------------
out=$(spry -j chain show 2>/dev/null)
rc=$?
expect_num $rc -ne 0 "-j chain show on an unloaded dir: non-zero exit"
json_check "$out" '.error | test("not loaded")' "-j chain show on an unloaded dir: JSON error"
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
expect_cmd -o '"already": ?true' "second load is a no-op success" -- spry -j load
expect_cmd -o '^spry ' "version (text)" -- spry version
json_eq "$(spry -j version)" .abi 7 "version (JSON): ABI 7"

# --- chain add/show/replace/del ---------------------------------------------------
spry chain add demo hops upper,reverse functions helper calls upper:helper \
	idempotent upper user root buffers 64 buffer-size 1024 max-inflight 32 \
	deadline 1500 cpus 3,0-1,7-8 >/dev/null
tap_ok $? "chain add demo"
json_check "$(spry -j chain show demo)" '
.name == "demo" and [.hops[].name] == ["upper", "reverse"]
and .hops[0].idempotent and (.hops[1].idempotent | not)
and .buffers == 64 and .buffer_size == 1024 and .max_inflight == 32
and .deadline_ms == 1500 and .uid == 0 and .flags == ["active"]
and .cpus == "0-1,3,7-8"
and [.functions[].name] == ["helper"]
and .calls == [{"from": "upper", "to": "helper"}]' "chain show demo -j has the definition"
spry chain show demo | grep -q 'cpus 0-1,3,7-8$'
tap_ok $? "chain show demo prints the placement"
json_check "$(spry -p chain show)" 'length == 1 and .[0].name == "demo"' \
	"chain show (all), pretty JSON parses"
json_check "$(bpftool map dump pinned "$DIR/spry_chains" -j)" '
	any(.[].formatted.value; .n_hops == 2 and .name == "demo")' \
	"bpftool map dump shows named fields (BTF)"
json_eq "$(spry -j auth show chain demo)" '[.[] | [.from, .to]] | sort' \
	'[["origin","upper"],["reverse","origin"],["upper","helper"],["upper","reverse"]]' \
	"chain add writes the path and call authorizations"

# A live instance of upper (as spryd would register it) survives a replace.
upper=$(spry -j fn show chain demo | jq '[.[] | select(.name == "upper")][0].id')
cid=$(spry -j chain show demo | jq .id)
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
expect_cmd "chain add demo again replaces it" -- spry chain add demo hops upper,wc
json_check "$(spry -j fn show chain demo)" '
	([.[].name] | sort) == ["upper", "wc"] and
	([.[] | select(.name == "upper")][0] |
	 .id == $id and .n_inst == 1 and .instances[0].inst == 3)' \
	"replace keeps the function id and its live instances, drops the others" \
	--argjson id "$upper"
json_eq "$(spry -j auth show chain demo)" '[.[] | [.from, .to]] | sort' \
	'[["origin","upper"],["upper","wc"],["wc","origin"]]' \
	"replace drops the old authorizations"
json_check "$(spry -j chain show demo)" '.id == $cid and .buffers == 1024 and (.hops[0].idempotent | not)' \
	"replace keeps the chain id, resets omitted settings to defaults" --argjson cid "$cid"

# --- auth -----------------------------------------------------------------------
spry auth allow chain demo from wc to upper >/dev/null
json_check "$(spry -j auth show chain demo)" 'any(.[]; .from == "wc" and .to == "upper")' "auth allow"
spry auth deny chain demo from wc to upper >/dev/null &&
spry auth deny chain demo fr wc t origin >/dev/null
json_eq "$(spry -j auth show)" '[.[] | [.from, .to]] | sort' '[["origin","upper"],["upper","wc"]]' \
	"auth deny (keywords by prefix, origin)"
fails "auth allow of a function outside the chain" auth allow chain demo from upper to helper

# --- fn show / stats -----------------------------------------------------------------
json_check "$(spry -j fn show)" '
	all(.[]; has("id") and has("name") and has("chain") and has("flags") and
		 has("instances") and has("stats")) and
	all(.[] | select(.id != 0); .flags | index("active"))' "fn show JSON"
json_check "$(spry -j stats)" '
	(.verdicts | length == 28 and has("next") and has("fan_gone") and has("fan_orphan") and has("fan_refused") and has("mail") and has("drop_flood") and has("no_process") and .forward >= 0 and has("drop_auth")) and
	([.functions[].name] | sort) == ["upper", "wc"]' "stats JSON: every verdict, every function"
spry ch sh demo | grep -q 'upper' && spry fn sh >/dev/null && spry st >/dev/null
tap_ok $? "unambiguous prefixes (ch sh, fn sh, st)"
json_eq "$(SPRY_PIN_DIR=$DIR "$SPRY" -j chain show)" '.[0].name' '"demo"' \
	"\$SPRY_PIN_DIR names the pin directory"
SPRY_PIN_DIR=/nonexistent expect_cmd "-P overrides \$SPRY_PIN_DIR" -- "$SPRY" -P "$DIR" chain show demo

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
spry apply "$TMP/good.yaml" >/dev/null
json_check "$(spry -j chain show)" '
	([.[].name] | sort) == ["count", "demo"] and
	([.[] | select(.name == "demo")][0].hops[1].name == "reverse")' "apply a good file"
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
json_eq "$(spry -j apply "$TMP/prune.yaml" --prune)" .pruned '["demo"]' "apply --prune: demo pruned"
json_eq "$(spry -j chain show)" '[.[].name]' '["count"]' "apply --prune deletes the other chains"
json_check "$(spry -j auth show)" 'all(.[]; .chain == "count")' \
	"apply --prune deletes the other chains' authorizations"

# --- del ---------------------------------------------------------------------------------
spry chain del count >/dev/null
json_eq "$(spry -j chain show)" . '[]' "chain del removes the chain"
json_eq "$(spry -j fn show)" . '[]' "chain del removes its functions"
json_eq "$(spry -j auth show)" . '[]' "chain del removes its authorizations"
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
json_check "$(spry -j stats 2>/dev/null)" 'has("error")' "JSON error after unload"

tap_finish
