#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Who may invoke a chain through spryd's control socket, and whether the
# HTTP front serves it (`spry chain add ... invoke users/groups, http`,
# the same keys in `spry apply` files; docs/SECURITY.md):
#   - a user the chain does not list gets EACCES and a clear error from
#     `spry chain invoke`; nothing runs (pool whole, no delivery counted),
#     the refusal is counted in /metrics and logged once per connection;
#   - the chain's own user (the default), a listed uid, a member of a
#     listed group (supplementary via SO_PEERGROUPS, or primary) and root
#     succeed;
#   - `http off`: 404 over HTTP, /metrics and `chain invoke` still work;
#   - `chain show` prints the lists; bad users, groups and ids are refused
#     by `chain add` and `apply` (file and line named).
#
# Other users run copies of spry and e2e_client in the test's directory
# (0755), so that the check works wherever the tree is checked out.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

E2E=$SPRY_HELPERS/e2e_client
UPPER=$SPRY_OUT/examples/upper
require_bins "$SPRY" "$SPRYD" "$E2E" "$UPPER"
for c in jq curl setpriv; do
	command -v $c >/dev/null || tap_skip_all "$c not installed"
done

spry_test_env invoke-auth
chmod 755 "$TMP"	# the control socket and the copies are for any user
cp "$SPRY" "$TMP/spry" && cp "$E2E" "$TMP/e2e_client" &&
	chmod 755 "$TMP/spry" "$TMP/e2e_client" ||
	tap_skip_all "cannot copy spry and e2e_client to $TMP"

PORT=18090
URL=http://127.0.0.1:$PORT
CHAIN_UID=65534		# the chain's user
OTHER=4701		# a user no list names (no passwd entry needed)
GRP=4702		# a group only the group tests use

# as UID [GID [GROUPS]] CMD...: run CMD as UID (primary group GID, default
# UID; supplementary GROUPS, comma-separated, default none).
as() {
	local u=$1 g=$1 groups=
	shift
	case "${1:-}" in [0-9]*) g=$1; shift ;; esac
	case "${1:-}" in [0-9]*) groups=$1; shift ;; esac
	if [ -n "$groups" ]; then
		setpriv --reuid="$u" --regid="$g" --groups="$groups" "$@"
	else
		setpriv --reuid="$u" --regid="$g" --clear-groups "$@"
	fi
}

# invoke_as UID [GID [GROUPS]] PAYLOAD: `spry chain invoke demo` as that
# user; stdout in OUT, stderr in ERR, exit status in RC.
invoke_as() {
	local n=$#
	local payload=${!n}
	as "${@:1:n-1}" "$TMP/spry" chain invoke demo data "$payload" sock "$SOCK" \
		>"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
}

metric() {
	curl -s --max-time 10 "$URL/metrics" |
		awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}
delivered() { metric 'spry_fn_invocations_total{chain="demo",fn="upper",instance="all"}'; }
refused() { metric 'spry_invoke_refused_total{chain="demo"}'; }
http_code() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$@"; }
http_is() { [ "$(http_code "${@:2}")" = "$1" ]; }

# add ARGS...: (re)define chain demo (hops upper, user CHAIN_UID) with ARGS.
add() { spry chain add demo hops upper user "$CHAIN_UID" "$@" >/dev/null; }

# refused_clean: the last invoke_as was refused with the clear error, and
# nothing ran since DELIVERED was read.
refused_clean() {
	[ "$RC" -ne 0 ] && [ -z "$OUT" ] &&
	echo "$ERR" | grep -q "user $1 may not invoke chain 'demo' (Permission denied" &&
	[ "$(delivered)" = "$DELIVERED" ] && pool_whole demo && all_idle demo 1 || {
		tap_diag "rc $RC out '$OUT' err '$ERR' delivered $(delivered) (was $DELIVERED) pool $POOL"
		return 1
	}
}

# ok_as WHAT UID [GID [GROUPS]]: that user's invoke comes back upper-cased.
ok_as() {
	local what=$1
	shift
	invoke_as "$@" "from $what"
	[ "$RC" -eq 0 ] && [ "$OUT" = "FROM ${what^^}" ] || {
		tap_diag "$what: rc $RC out '$OUT' err '$ERR'"
		return 1
	}
}

tap_plan

# 1
setup() {
	spry load >/dev/null && add || return 1
	start_spryd --http "127.0.0.1:$PORT" || return 1
	start "$UPPER" "$TMP/upper.log" --chain demo --fn upper --sock "$SOCK"
	wait_for 5 all_idle demo 1 && wait_for 5 http_is 200 "$URL/metrics"
}
setup
tap_ok $? "setup: chain demo (user $CHAIN_UID, default invoke list), spryd with HTTP, upper live" || {
	tap_diag "$(cat "$TMP/spryd.log" "$TMP/upper.log" 2>/dev/null)"
	tap_finish
}

# 2
spry -j chain show demo >"$TMP/show.json" &&
jq -e --argjson u "$CHAIN_UID" '.invoke.users == [{uid: $u, name: .user}] and
	.invoke.groups == [] and .http == true' "$TMP/show.json" >/dev/null &&
spry chain show demo | grep -Eq "invoke users [a-z]*\\($CHAIN_UID\\)  groups none  \\(root always\\)  http on"
tap_ok $? "chain show: by default the chain's user may invoke, HTTP on" ||
	tap_diag "$(cat "$TMP/show.json"; spry chain show demo)"

# 3
ok_as root 0
tap_ok $? "root invokes the chain"

# 4
ok_as owner "$CHAIN_UID"
tap_ok $? "the chain's user ($CHAIN_UID) invokes it (the default list)"

# 5
DELIVERED=$(delivered)
invoke_as "$OTHER" "not mine"
refused_clean "$OTHER"
tap_ok $? "user $OTHER: 'may not invoke' on stderr, exit $RC, nothing ran (pool whole, no delivery)"

# 6: three refusals on one connection: logged once, all counted
before=$(refused)
as "$OTHER" "$TMP/e2e_client" -s "$SOCK" -c demo -n 3 -t 1 >/dev/null 2>"$TMP/e2e.err"
rc=$?
n_log=$(grep -c "INVOKE refused: user $OTHER " "$TMP/spryd.log")
[ $rc -ne 0 ] && grep -q "Permission denied" "$TMP/e2e.err" &&
[ "$(refused)" = $((before + 3)) ] && [ "$n_log" = 2 ] &&
[ "$(delivered)" = "$DELIVERED" ] && pool_whole demo
tap_ok $? "3 refused INVOKEs on one connection: counted in /metrics ($before -> $(refused)), logged once (2 lines for 2 connections: $n_log)"

# 7
add invoke users "$OTHER",0 && ok_as listed "$OTHER"
tap_ok $? "invoke users $OTHER,0: user $OTHER invokes"

# 8
DELIVERED=$(delivered)
invoke_as "$CHAIN_UID" "replaced"
refused_clean "$CHAIN_UID"
tap_ok $? "a list replaces the default: the chain's user is refused now"

# 9
add invoke groups "$GRP" && ok_as supplementary "$OTHER" "$OTHER" "$GRP"
tap_ok $? "invoke groups $GRP: a member by supplementary group (SO_PEERGROUPS) invokes"

# 10
ok_as primary "$OTHER" "$GRP"
tap_ok $? "invoke groups $GRP: a member by primary group invokes"

# 11: more groups than spryd's first SO_PEERGROUPS buffer holds (64)
many=$(seq -s, 5001 5099)
ok_as crowded "$OTHER" "$OTHER" "$many,$GRP"
tap_ok $? "invoke groups $GRP: a member with 100 supplementary groups, $GRP last, invokes"

# 12
DELIVERED=$(delivered)
invoke_as "$OTHER" "$OTHER" 4703,4704 "outsider"
refused_clean "$OTHER"
tap_ok $? "invoke groups $GRP: a user in other groups only is refused"

# 13
if gname=$(getent group 65534 | cut -d: -f1) && [ -n "$gname" ]; then
	add invoke groups "$gname" && ok_as named "$OTHER" "$OTHER" 65534 &&
	spry -j chain show demo | jq -e --arg g "$gname" \
		'.invoke.groups == [{gid: 65534, name: $g}] and .invoke.users == []' >/dev/null
	tap_ok $? "invoke groups $gname (by name): a member invokes; show lists it"
else
	tap_skip "invoke groups by name" "no group 65534 in the group database"
fi

# 14
add http off && ok_as still-invoked 0 && wait_for 3 http_is 404 -d x "$URL/demo" &&
http_is 200 "$URL/metrics" && spry -j chain show demo | jq -e '.http == false' >/dev/null &&
spry chain show demo | grep -q "http off" && spry chain show demo | grep -q "no-http"
tap_ok $? "http off: 404 over HTTP, /metrics still served, chain invoke still works, show says so"

# 15
add && wait_for 3 http_is 200 -d x "$URL/demo"
tap_ok $? "http on again (the default): served over HTTP"

# 16: bad users, groups and ids are refused, the chain left as it was
bad_add() {
	local want=$1
	shift
	if add "$@" 2>"$TMP/add.err"; then
		tap_diag "chain add $* succeeded"
		return 1
	fi
	grep -q "$want" "$TMP/add.err" || { tap_diag "chain add $*: $(cat "$TMP/add.err")"; return 1; }
}
spry -j chain show demo >"$TMP/before.json"
bad_add "unknown user 'no-such-user-x'" invoke users no-such-user-x &&
bad_add "unknown group 'no-such-group-x'" invoke groups 0,no-such-group-x &&
bad_add "out of range" invoke users 4294967295 &&
bad_add "unknown user '-1'" invoke users -1 &&
bad_add "unknown group '12x'" invoke groups 12x &&
bad_add "listed twice" invoke users 7,7 &&
bad_add "more than 8" invoke users 1,2,3,4,5,6,7,8,9 &&
bad_add "empty entry" invoke users 1,,2 &&
bad_add "'invoke users' given twice" invoke users 1 invoke users 2 &&
bad_add "unknown invoke keyword 'members'" invoke members 1 &&
bad_add "missing word after 'invoke'" invoke &&
bad_add "unknown http value" http maybe &&
bad_add "ambiguous keyword 'h'" h on &&
spry -j chain show demo | cmp -s - "$TMP/before.json"
tap_ok $? "chain add refuses unknown users and groups, bad ids, duplicates, bad keywords; demo unchanged"

# 17: apply
cat >"$TMP/ok.yaml" <<EOF
chains:
  - name: demo
    user: $CHAIN_UID
    hops: [upper]
    invoke:
      users: [$OTHER, root]
      groups: [$GRP]
    http: false
  - name: second
    hops: [f]
    invoke: {groups: []}
EOF
spry apply "$TMP/ok.yaml" >/dev/null &&
spry -j chain show demo | jq -e --argjson o "$OTHER" --argjson g "$GRP" \
	'[.invoke.users[].uid] == [$o, 0] and [.invoke.groups[].gid] == [$g] and .http == false' \
	>/dev/null &&
spry -j chain show second | jq -e '.invoke == {users: [], groups: []} and .http' >/dev/null &&
ok_as applied "$OTHER" && wait_for 3 http_is 404 -d x "$URL/demo"
tap_ok $? "apply: invoke users/groups and http false stored, shown and enforced; groups [] leaves root only"

# 18
bad_apply() {	# bad_apply WANT YAML-BODY-OF-DEMO
	printf 'chains:\n  - name: demo\n    hops: [upper]\n%b\n' "$2" >"$TMP/bad.yaml"
	if spry apply "$TMP/bad.yaml" >/dev/null 2>"$TMP/apply.err"; then
		tap_diag "apply of '$2' succeeded"
		return 1
	fi
	grep -q "$TMP/bad.yaml: $1" "$TMP/apply.err" ||
		{ tap_diag "apply of '$2': $(cat "$TMP/apply.err")"; return 1; }
}
spry -j chain show demo >"$TMP/before.json"
bad_apply "line 5: invoke users: unknown user 'no-such-user-x'" \
	"    invoke:\n      users: [root, no-such-user-x]" &&
bad_apply "line 6: invoke groups: unknown group 'nope-grp'" \
	"    invoke:\n      users: [1]\n      groups: [nope-grp]" &&
bad_apply "line 4: invoke users: user id 4294967295 out of range" \
	"    invoke: {users: [4294967295]}" &&
bad_apply "line 4: invoke users: '1' (id 1) listed twice" \
	"    invoke: {users: [1, 1]}" &&
bad_apply "line 4: invoke users: more than 8 entries" \
	"    invoke: {users: [1, 2, 3, 4, 5, 6, 7, 8, 9]}" &&
bad_apply "line 4: invoke: unknown key 'members'" \
	"    invoke: {members: [1]}" &&
bad_apply "line 4: invoke: give users, groups or both" \
	"    invoke: {}" &&
bad_apply "line 4: invoke users: expected a list" \
	"    invoke: {users: root}" &&
bad_apply "line 4: invoke: expected a mapping" \
	"    invoke: [root]" &&
bad_apply "line 4: http: expected true or false, found 'off'" \
	"    http: off" &&
bad_apply "line 4: http: expected true or false, found 'true'" \
	"    http: \"true\"" &&
spry -j chain show demo | cmp -s - "$TMP/before.json"
tap_ok $? "apply refuses bad users, groups, ids, keys and http values, naming file and line"

# 19
grep -q "INVOKE refused: user $CHAIN_UID " "$TMP/spryd.log" &&
! grep -q "INVOKE refused: user 0 " "$TMP/spryd.log" &&
[ "$(refused)" -ge 6 ]
tap_ok $? "spryd logged the refusals by user and chain; /metrics counts $(refused)"

# 20
term_all "$SPRYD_PID"
tap_ok $? "spryd exits cleanly on SIGTERM" || tap_diag "$(tail -n 20 "$TMP/spryd.log")"

tap_finish
