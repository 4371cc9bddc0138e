#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Chain isolation.  Chain alpha belongs to nobody (65534), chain bravo to
# daemon (uid 1, an existing system user: no user is created); each chain's
# functions run as its user (setpriv).  Checked:
#  - bravo's pool is 0600 and owned by daemon (a hugetlbfs file when pages
#    can be had): alpha's user cannot open it (EACCES), nor spryd's
#    descriptor of it through /proc/SPRYD/fd/N (EACCES);
#  - alpha's user cannot register a function of bravo (EPERM);
#  - a function of alpha (selftests/fn_hostile, registered as nobody)
#    sending a descriptor that names bravo, a hop that is not its own, or
#    an offset outside its pool: the router refuses it (drop_chain,
#    drop_hop, drop_bounds counted by spry stats), spryd logs the
#    quarantine and removes the instance, alpha's request fails (502) and
#    nothing of bravo is touched;
#  - meanwhile wrk on bravo sees no error, and bravo's and alpha's pools
#    end with every buffer free.
#  - least privilege (docs/SECURITY.md): spryd's effective, permitted and
#    bounding sets are exactly bpf, net_admin, net_raw, chown and ipc_lock, nothing inheritable or ambient, no_new_privs; the functions
#    hold no capability; the pin directory is 0700.
# The registrar's other refusals (wrong user for a chain, UDP, unconnected,
# listening, elsewhere-connected and AF_UNIX sockets, a registration
# flood) are test_spryd.sh's.
#
# Private network namespace, pins, control socket and temporary directory;
# hugepages reserved for the test are given back; kills only what it
# started.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns "$@"
HOSTILE=$SPRY_HELPERS/fn_hostile
require_bins "$SPRY" "$SPRYD" "$HOSTILE" "$SPRY_OUT"/examples/{upper,reverse}
for c in curl wrk jq setpriv; do
	command -v $c >/dev/null || tap_skip_all "$c not installed"
done
UID_A=65534
UID_B=1
getent passwd $UID_A >/dev/null && getent passwd $UID_B >/dev/null ||
	tap_skip_all "needs users $UID_A and $UID_B"
spry_test_env iso
chmod 0755 "$TMP"	# the functions run as other users

PORT=18092
URL=http://127.0.0.1:$PORT
POOLS=$TMP/pools
mkdir -p "$POOLS"
HUGE=0
HUGE_ADDED=0
NR_HUGE=/proc/sys/vm/nr_hugepages

spry_test_cleanup_extra() {
	[ $HUGE -eq 1 ] && umount "$POOLS" 2>/dev/null
	if [ $HUGE_ADDED -gt 0 ]; then
		echo $(( $(cat $NR_HUGE) - HUGE_ADDED )) > $NR_HUGE 2>/dev/null
	fi
}

free_huge=$(sed -n 's/^HugePages_Free: *//p' /proc/meminfo)
if [ "${free_huge:-0}" -lt 4 ]; then
	before=$(cat $NR_HUGE)
	echo $(( before + 4 - ${free_huge:-0} )) > $NR_HUGE 2>/dev/null
	HUGE_ADDED=$(( $(cat $NR_HUGE) - before ))
	free_huge=$(sed -n 's/^HugePages_Free: *//p' /proc/meminfo)
fi
if [ "${free_huge:-0}" -ge 4 ] &&
   mount -t hugetlbfs -o pagesize=2M,mode=0711 none "$POOLS" 2>/dev/null; then
	HUGE=1
fi

c() { curl -s --max-time 10 "$@"; }
code() { c -o /dev/null -w '%{http_code}' "$@"; }
metric() {
	c "$URL/metrics" | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}
pool_clean() { [ "$(metric "spry_pool_buffers{chain=\"$1\",state=\"used\"}")" = 0 ]; }
GID_A=$(getent passwd $UID_A | cut -d: -f4)
GID_B=$(getent passwd $UID_B | cut -d: -f4)
AS_A=(--reuid=$UID_A --regid=$GID_A --clear-groups)
AS_B=(--reuid=$UID_B --regid=$GID_B --clear-groups)
as() {	# as UID CMD...: run CMD as the user (setpriv execs it)
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$(getent passwd "$u" | cut -d: -f4)" --clear-groups "$@"
}
verdict() { spry -j stats | jq ".verdicts.$1"; }
# spryd's descriptor of CHAIN's pool
pool_fd() {
	local fd
	for fd in /proc/"$SPRYD_PID"/fd/*; do
		case "$(readlink "$fd")" in
		"/memfd:spry-$1 "*|"/memfd:spry-$1"|*/"spry-$1") echo "$fd"; return 0 ;;
		esac
	done
	return 1
}

tap_plan

spry load >/dev/null &&
spry chain add alpha hops hostile user $UID_A buffers 16 >/dev/null &&
spry chain add bravo hops upper,reverse user $UID_B buffers 64 >/dev/null &&
start_spryd --pool-dir "$POOLS" --http "127.0.0.1:$PORT" &&
	wait_for 5 c -o /dev/null "$URL/metrics"
ok=$?
if [ $ok -eq 0 ]; then
	start setpriv "$TMP/upper.log" "${AS_B[@]}" "$SPRY_OUT/examples/upper" \
		--chain bravo --fn upper --sock "$SOCK"
	start setpriv "$TMP/reverse.log" "${AS_B[@]}" "$SPRY_OUT/examples/reverse" \
		--chain bravo --fn reverse --sock "$SOCK"
	REV=$LAST
	wait_for 5 live_is 2 && [ "$(c -d hello "$URL/bravo")" = OLLEH ] &&
		[ "$(awk '/^Uid:/ { print $2 }' /proc/$REV/status)" = $UID_B ]
	ok=$?
fi
tap_ok $ok "setup: chains alpha (uid $UID_A) and bravo (uid $UID_B), bravo's functions run as uid $UID_B and answer" ||
	{ tap_diag "$(tail -20 "$TMP/spryd.log")"; tap_finish; }

# the pool
BFD=$(pool_fd bravo)
if [ $HUGE -eq 1 ]; then
	st=$(stat -c '%a %u' "$POOLS/spry-bravo")
	[ "$st" = "600 $UID_B" ]
	tap_ok $? "bravo's pool is a hugetlbfs file, mode 0600, owned by uid $UID_B ($st)" ||
		tap_diag "$(grep -a 'pool' "$TMP/spryd.log"; grep '^HugePages' /proc/meminfo)"
	out=$(as $UID_A "$HOSTILE" open "$POOLS/spry-bravo")
	[ "$out" = "open EACCES" ]
	tap_ok $? "alpha's user cannot open bravo's pool file ($out)"
else
	st=$(stat -L -c '%a %u' "$BFD")
	[ "$st" = "600 $UID_B" ]
	tap_ok $? "bravo's pool (memfd, no hugepages) is mode 0600, owned by uid $UID_B ($st)"
	tap_skip "alpha's user cannot open bravo's pool file" "no hugepages: the pool is a memfd"
fi
out=$(as $UID_A "$HOSTILE" open "$BFD")
[ "$out" = "open EACCES" ]
tap_ok $? "alpha's user cannot open spryd's descriptor of it, $BFD ($out)"

out=$(as $UID_A "$HOSTILE" -s "$SOCK" bravo upper flood 1)
[ "$out" = "register: Operation not permitted" ]
tap_ok $? "alpha's user cannot register a function of bravo ($out)"

# hostile descriptors from a function of alpha, under load on bravo
printf 'wrk.method = "POST"\nwrk.body = "load"\n' > "$TMP/post.lua"
wrk -t1 -c4 -d6s -s "$TMP/post.lua" "$URL/bravo" > "$TMP/wrk.out" 2>&1 &
WRK=$!
BRAVO_ID=$(spry -j chain show | jq '.[] | select(.name == "bravo") | .id')
n=0
for mode in "chain $BRAVO_ID drop_chain" "hop 3 drop_hop" "bounds 0 drop_bounds"; do
	set -- $mode
	n=$((n + 1))
	v0=$(verdict "$3")
	setpriv "${AS_A[@]}" "$HOSTILE" -s "$SOCK" alpha hostile "$1" "$2" > "$TMP/h$n.out" 2>&1 &
	H=$!
	PIDS+=("$H")
	wait_for 5 grep -q registered "$TMP/h$n.out"
	r=$(code -d evil "$URL/alpha")
	wait_for 5 proc_gone "$H"
	wait_for 3 grep -q "quarantine: .*: $3" "$TMP/spryd.log" &&
		[ "$(verdict "$3")" -eq $((v0 + 1)) ] && [ "$r" = 502 ] &&
		grep -q 'errno EACCES' "$TMP/h$n.out" && wait_for 3 live_is 2
	tap_ok $? "alpha's function sends a descriptor with $1 $2: refused ($3 $v0 -> $(verdict "$3")), quarantined and logged, its request 502 ($r)" ||
		tap_diag "$(cat "$TMP/h$n.out"; grep quarantine "$TMP/spryd.log")"
done
wait "$WRK"
reqs=$(awk '/requests in/ { print $1 }' "$TMP/wrk.out")
[ "${reqs:-0}" -gt 50 ] && ! grep -q 'Non-2xx\|Socket errors' "$TMP/wrk.out"
tap_ok $? "bravo under wrk meanwhile: $reqs requests, no error" || tap_diag "$(cat "$TMP/wrk.out")"
wait_for 3 pool_clean bravo && wait_for 3 pool_clean alpha &&
	[ "$(c -d again "$URL/bravo")" = NIAGA ]
tap_ok $? "every buffer of both pools free, bravo still answers"

grep -c 'quarantine:' "$TMP/spryd.log" | grep -qx 3
tap_ok $? "three quarantines logged, one per hostile descriptor"

# privileges.  CAP_CHOWN 0, CAP_KILL 5, CAP_SETGID 6, CAP_SETUID 7,
# CAP_NET_ADMIN 12, CAP_NET_RAW 13, CAP_IPC_LOCK 14, CAP_BPF 39.
KEEP=00000080000070e1
caps() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
[ "$(caps "$SPRYD_PID" CapEff)" = $KEEP ] && [ "$(caps "$SPRYD_PID" CapPrm)" = $KEEP ] &&
	[ "$(caps "$SPRYD_PID" CapBnd)" = $KEEP ] &&
	[ "$(caps "$SPRYD_PID" CapInh)" = 0000000000000000 ] &&
	[ "$(caps "$SPRYD_PID" CapAmb)" = 0000000000000000 ] &&
	[ "$(caps "$SPRYD_PID" NoNewPrivs)" = 1 ]
tap_ok $? "spryd keeps bpf, net_admin, net_raw, chown, ipc_lock, setuid, setgid, kill only (CapEff $(caps "$SPRYD_PID" CapEff), CapBnd $(caps "$SPRYD_PID" CapBnd), NoNewPrivs $(caps "$SPRYD_PID" NoNewPrivs))"
[ "$(caps "$REV" CapEff)" = 0000000000000000 ] && [ "$(caps "$REV" CapPrm)" = 0000000000000000 ] &&
	[ "$(stat -c %a "$PIN")" = 700 ]
tap_ok $? "functions hold no capability (CapEff $(caps "$REV" CapEff)); pin directory mode $(stat -c %a "$PIN")"

tap_finish
