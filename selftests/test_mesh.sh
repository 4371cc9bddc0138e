#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spry mesh: sockmap acceleration of plain local TCP (docs/MESH.md).  Real
# programs (nginx with sendfile, iperf3, redis, python's http.server, curl)
# and test_mesh_peer.py's cases (checksummed transfers, half-close,
# shutdown, a closing peer, MSG_PEEK, FIONREAD, epoll, 1,000 connections, a
# stalled reader) run in a cgroup this test makes under the cgroup2 mount,
# with the mesh attached to that cgroup only, in a private network
# namespace and pin directory.  After each case the counters show whether
# bytes were redirected where they should be and not where they should not.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root_bpf
require_bins "$SPRY"
for c in jq python3 unshare curl ip bpftool; do
	command -v "$c" >/dev/null || tap_skip_all "$c needed"
done
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CGROOT" ] || tap_skip_all "no cgroup2 file system mounted"
spry_private_netns
spry_test_env mesh

PEER=(python3 "$SPRY_SELFTESTS/test_mesh_peer.py")
# test_mesh_peer.py reads the counters itself (comeback) with these
export TEST_MESH_SPRY=$SPRY TEST_MESH_PIN=$PIN
CG=$CGROOT/spry-test-mesh-$$
ORIG=$CGROOT$(sed -n 's/^0:://p' /proc/self/cgroup)

spry_test_cleanup_extra() {
	kill_wait "${PIDS[@]}"
	PIDS=()
	echo $$ >"$ORIG/cgroup.procs" 2>/dev/null
	if [ -d "$CG/denied" ]; then
		wait_for 5 test ! -s "$CG/denied/cgroup.procs"
		rmdir "$CG/denied"
	fi
	if [ -d "$CG" ]; then
		wait_for 5 test ! -s "$CG/cgroup.procs"
		rmdir "$CG"
	fi
}

mkdir "$CG" 2>/dev/null || tap_skip_all "cannot make a cgroup under $CGROOT"
echo $$ >"$CG/cgroup.procs" 2>/dev/null || tap_skip_all "cannot move into $CG"

# snap: remember the counters; delta NAME: how much NAME grew since.
snap() { spry -j mesh show | jq .counters >"$TMP/snap.json"; }
delta() {	# (a counter missing from either side is an error, not 0)
	local now was
	now=$(spry -j mesh show | jq -e ".counters.$1 | numbers") &&
		was=$(jq -e ".$1 | numbers" "$TMP/snap.json") ||
		return 1
	echo $((now - was))
}
# expect NAME OP N: delta NAME compared with N (-gt, -eq, -ge), diag if not.
expect() {
	local d
	d=$(delta "$1") || { tap_diag "no counter $1 in spry mesh show"; return 1; }
	test "$d" "$2" "$3" && return 0
	tap_diag "counter $1 grew by $d, expected $2 $3"
	return 1
}
accelerated() { expect redirected_bytes -gt 0; }
not_accelerated() { expect redirected_bytes -eq 0 && expect inserted -eq 0; }

# peer CASE ARGS...: one case of test_mesh_peer.py, its output in $TMP/peer.
peer() {
	timeout 300 "${PEER[@]}" "$@" >"$TMP/peer" 2>&1 && return 0
	tap_diag "test_mesh_peer.py $*: $(tail -3 "$TMP/peer")"
	return 1
}

# hold_start: a peer that holds one connection open until $TMP/go exists
# (its pid in HOLD); returns once the connection is up.
hold_start() {
	rm -f "$TMP/ready" "$TMP/go"
	"${PEER[@]}" hold --ready "$TMP/ready" --go "$TMP/go" >"$TMP/hold" 2>&1 &
	HOLD=$!
	PIDS+=("$HOLD")
	wait_for 30 test -e "$TMP/ready"
}

# no_cgroup_progs: nothing is attached to the test's cgroup.
no_cgroup_progs() {
	[ "$(bpftool cgroup show "$CG" -j | jq -s 'map(.[]) | length')" = 0 ]
}

# listening PORT: something listens on 127.0.0.1:PORT.
listening() { ss -Hltn "sport = :$1" | grep -q .; }

# free_port: a TCP port nothing listens on.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

tap_plan 34

# The big transfers are the kernel's work and the Python peers', the same
# in either build; under ASan+UBSan (check-san) only spry's CLI is
# instrumented, so they move an eighth of the bytes there.
BIG=$((1 << 30)) XFER=$((256 << 20)) TRANSITIONS=200
if ldd "$SPRY" 2>/dev/null | grep -q libasan; then
	BIG=$((128 << 20)) XFER=$((32 << 20)) TRANSITIONS=25
	tap_diag "SAN build: transfers of 128 and 32 MiB (the plain build: 1 GiB and 256 MiB)"
fi
size() { if [ "$1" -ge $((1 << 30)) ]; then echo "$(($1 >> 30)) GiB"; else echo "$(($1 >> 20)) MiB"; fi; }

# --- CLI, before anything is loaded --------------------------------------------
ok=0
spry -j mesh show | jq -e '.loaded == false and .cgroups == [] and .rules == []' >/dev/null ||
	{ tap_diag "show before load"; ok=1; }
for args in "attach cgroup /nonexistent" "attach cgroup /tmp" "attach bogus x" \
	    "attach cgroup" "detach cgroup /tmp" "allow" "allow port" "allow port 0" \
	    "allow port 70000" "allow port 5-3" "allow port 1-2-3" "deny prefix 1.2.3.4/33" \
	    "deny prefix 10.0.0.1/8" "deny prefix foo" "allow cgroup /nonexistent" \
	    "allow port 80 extra" "set" "set max-queued x" "set default maybe" "bogus"; do
	# shellcheck disable=SC2086
	spry_fails "$args" mesh $args || ok=1
done
spry_fails "del before load" mesh del port 80 && grep -q "not loaded" "$TMP/err" || ok=1
[ ! -e "$PIN" ] || { tap_diag "a failed command left $PIN"; ok=1; }
tap_ok $ok "bad arguments fail with one error line; nothing pinned"

# --- a connection made before attach ------------------------------------------
hold_start

out=$(spry -j mesh attach cgroup "$CG") &&
echo "$out" | jq -e --arg cg "$CG" '.cgroup == $cg and .loaded and (.already | not)' >/dev/null
tap_ok $? "attach cgroup (the test's own): JSON result"

ok=0
for p in mesh_sockops mesh_msg mesh_skb spry_mesh_socks spry_mesh_conn spry_mesh_psocks \
	 spry_mesh_ports spry_mesh_pol4 spry_mesh_pol6 spry_mesh_cgroups spry_mesh_config \
	 spry_mesh_stats; do
	[ -e "$PIN/$p" ] || { tap_diag "missing pin $p"; ok=1; }
done
cgid=$(stat -c %i "$CG")
[ -e "$PIN/mesh_link_$cgid" ] || { tap_diag "no link pin"; ok=1; }
bpftool cgroup show "$CG" -j | jq -e '[.[] | select(.attach_type == "cgroup_sock_ops" and .name == "mesh_sockops")] | length == 1' >/dev/null ||
	{ tap_diag "bpftool cgroup show: no mesh_sockops"; ok=1; }
bpftool map dump pinned "$PIN/spry_mesh_config" -j |
	jq -e '.[0].formatted.value | .max_queued == 4194304 and .def_action == 1' >/dev/null ||
	{ tap_diag "bpftool map dump shows no named config fields"; ok=1; }
spry -j mesh attach cgroup "$CG" | jq -e '.already' >/dev/null ||
	{ tap_diag "second attach not 'already'"; ok=1; }
spry -j mesh show | jq -e --argjson id "$cgid" '.loaded and .cgroups[0].cgroup_id == $id and
	.config.default == "allow" and .sockets == 0' >/dev/null ||
	{ tap_diag "show after attach: $(spry -j mesh show)"; ok=1; }
tap_ok $ok "programs, maps and the cgroup link pinned; bpftool sees them with BTF names"

snap
touch "$TMP/go"
wait "$HOLD" && not_accelerated
tap_ok $? "a connection established before attach stays plain TCP (data intact)"

# --- real programs --------------------------------------------------------------
snap
peer xfer --bytes $XFER --dir both && accelerated && expect inserted -eq 2
tap_ok $? "$(size $XFER) each way on one connection, sha256 and order checked, redirected"

# iperf3 -F: the client sends a file, the server writes what it reads to
# another (-R: the other way round).  iperf3's server stops reading when
# the client's end-of-test message arrives on the control connection,
# which can overtake the last bytes still queued on the data connection
# (plain TCP too): client->server, the server's file is a prefix of the
# source, exactly as long as the server reports having read.
if command -v iperf3 >/dev/null; then
	port=$(free_port)
	"${PEER[@]}" gen --bytes $BIG >"$TMP/ip.src"
	snap
	ok=0
	for dir in up down; do
		rm -f "$TMP/ip.dst"
		if [ $dir = up ]; then
			start iperf3 "$TMP/iperf3.log" -s -1 -p "$port" -B 127.0.0.1 --logfile "$TMP/ip.srv" -F "$TMP/ip.dst"
			cli=$TMP/ip.src rev=()
		else
			start iperf3 "$TMP/iperf3.log" -s -1 -p "$port" -B 127.0.0.1 --logfile "$TMP/ip.srv" -F "$TMP/ip.src"
			cli=$TMP/ip.dst rev=(-R)
		fi
		IPERF=$LAST
		{ wait_for 10 listening "$port" &&
		  timeout 120 iperf3 -c 127.0.0.1 -p "$port" -n "$BIG" -F "$cli" "${rev[@]}" -J \
			>"$TMP/ip.cli.json" 2>>"$TMP/iperf3.log"; } ||
			{ ok=1; tap_diag "iperf3 $dir: $(tail -3 "$TMP/iperf3.log")"; }
		wait "$IPERF" 2>/dev/null
		got=$(stat -c %s "$TMP/ip.dst" 2>/dev/null || echo 0)
		sent=$(jq '.end.sum_sent.bytes' "$TMP/ip.cli.json" 2>/dev/null)
		read_=$(jq '.end.sum_received.bytes' "$TMP/ip.cli.json" 2>/dev/null)
		if [ $dir = down ] && [ "$got" != "$BIG" ]; then
			ok=1; tap_diag "iperf3 -R: the client wrote $got bytes, expected $BIG"
		elif [ $dir = up ] && { [ "$sent" != "$BIG" ] || [ "$got" != "$read_" ]; }; then
			ok=1; tap_diag "iperf3: sent $sent, the server read $read_ and wrote $got"
		fi
		if ! cmp -s -n "$got" "$TMP/ip.src" "$TMP/ip.dst"; then
			ok=1; tap_diag "iperf3 $dir: the $got bytes written are not the source's: $(cmp -n "$got" "$TMP/ip.src" "$TMP/ip.dst" 2>&1)"
		fi
		echo "$dir $got" >>"$TMP/ip.got"
	done
	[ $ok -eq 0 ] && accelerated
	tap_ok $? "iperf3 -F $(size $BIG) each way (-R the other): what was read equals the source byte for byte ($(tr '\n' ' ' <"$TMP/ip.got"))"
	rm -f "$TMP/ip.src" "$TMP/ip.dst"
else
	tap_skip "iperf3" "iperf3 not installed"
fi

if command -v nginx >/dev/null; then
	port=$(free_port)
	mkdir -p "$TMP/www" "$TMP/nginx"
	head -c $((16 << 20)) /dev/urandom >"$TMP/www/big.bin"
	cat >"$TMP/nginx.conf" <<-EOF
	daemon off;
	worker_processes 1;
	user root;
	pid $TMP/nginx/nginx.pid;
	error_log $TMP/nginx/error.log;
	events { worker_connections 256; }
	http {
		access_log off;
		sendfile on;
		client_body_temp_path $TMP/nginx;
		proxy_temp_path $TMP/nginx;
		fastcgi_temp_path $TMP/nginx;
		uwsgi_temp_path $TMP/nginx;
		scgi_temp_path $TMP/nginx;
		server {
			listen 127.0.0.1:$port;
			root $TMP/www;
		}
	}
	EOF
	start nginx "$TMP/nginx.log" -c "$TMP/nginx.conf" -p "$TMP/nginx"
	NGINX=$LAST
	snap
	ok=1
	if wait_for 10 listening "$port"; then
		curl -sf -m 60 -o "$TMP/big.got" "http://127.0.0.1:$port/big.bin" &&
		[ "$(sha256sum <"$TMP/big.got")" = "$(sha256sum <"$TMP/www/big.bin")" ] &&
		accelerated && ok=0
	fi
	[ $ok -eq 0 ] || tap_diag "nginx: $(cat "$TMP/nginx.log" "$TMP/nginx/error.log" 2>/dev/null | tail -3)"
	tap_ok $ok "curl of a 16 MiB static file from nginx (sendfile): sha256 matches, redirected"
	kill_wait "$NGINX"
else
	tap_skip "nginx" "nginx not installed"
fi

if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
	port=$(free_port)
	start redis-server "$TMP/redis.log" --port "$port" --bind 127.0.0.1 --save "" \
		--appendonly no --dir "$TMP" --logfile "$TMP/redis.log"
	REDIS=$LAST
	snap
	ok=1
	if wait_for 10 listening "$port"; then
		timeout 120 redis-benchmark -p "$port" -n 2000 -c 8 -t set,get,lpush -q \
			>"$TMP/redis.out" 2>&1 &&
		! grep -qi error "$TMP/redis.out" &&
		[ "$(grep -c 'requests per second' "$TMP/redis.out")" -eq 3 ] &&
		accelerated && ok=0
	fi
	[ $ok -eq 0 ] || tap_diag "redis: $(tail -3 "$TMP/redis.out")"
	tap_ok $ok "redis-benchmark against redis-server: no errors, redirected"
	kill_wait "$REDIS"
else
	tap_skip "redis" "redis-server or redis-benchmark not installed"
fi

port=$(free_port)
head -c $((1 << 20)) /dev/urandom >"$TMP/small.bin"
# (http.server prints its banner on stdout: keep it out of the TAP)
start bash "$TMP/http.log" -c 'exec python3 -m http.server --bind 127.0.0.1 --directory "$1" "$2" >/dev/null' \
	http "$TMP" "$port"
HTTPD=$LAST
snap
ok=1
if wait_for 10 listening "$port"; then
	curl -sf -m 60 -o "$TMP/small.got" "http://127.0.0.1:$port/small.bin" &&
	cmp -s "$TMP/small.got" "$TMP/small.bin" && accelerated && ok=0
fi
tap_ok $ok "python3 -m http.server: curl fetch intact, redirected"
kill_wait "$HTTPD"

# --- socket semantics -----------------------------------------------------------
snap
peer many --n 1000 && expect inserted -eq 2000 && accelerated
tap_ok $? "1,000 concurrent connections, each echoed, all inserted"

snap
peer halfclose && accelerated && expect pass_state -ge 2
tap_ok $? "half-close each way; write after shutdown(SHUT_WR) fails with EPIPE (passed to TCP)"

snap
peer peerclose && accelerated
tap_ok $? "the reader closes while the other sends: the sender gets EPIPE/ECONNRESET"

# A reader that never read and closes: see docs/MESH.md (FIN, not RST; the
# sender's error waits for tcp_fin_timeout, shortened in this namespace).
sysctl -qw net.ipv4.tcp_fin_timeout=3
snap
peer peerclose --stalled && expect fallback_stalled -ge 1
tap_ok $? "a stalled reader closes: the blocked sender fails after tcp_fin_timeout"

snap
peer peek && accelerated
tap_ok $? "MSG_PEEK then recv return the same redirected bytes"

snap
peer fionread && accelerated
tap_ok $? "FIONREAD counts unread redirected bytes, each way"

snap
peer epoll --rounds 2000 && expect redirected -ge 4000
tap_ok $? "non-blocking client on epoll: 2000 echo rounds, no lost wake-up"

# A reader's SO_RCVBUF bounds what is redirected into it, as TCP's window
# does: redirected bytes are charged to its receive memory, and past its
# buffer the fallback's TCP segments would find no room (dropped, each
# costing the sender a retransmission timeout).
snap
peer rcvbuf --bytes $((64 << 20)) --rcvbuf $((256 << 10)) && expect fallback_stalled -ge 1 &&
	accelerated
tap_ok $? "a stalled reader with SO_RCVBUF 256 KiB: $(head -1 "$TMP/peer" | sed 's/ before blocking//'); all arrives in order"

spry mesh set max-queued $((1 << 20)) >/dev/null
snap
peer stall --bytes $((64 << 20)) && expect fallback_stalled -ge 1 &&
	expect pass_stalled -gt 0 && accelerated
tap_ok $? "stalled reader: sender bounded ($(head -1 "$TMP/peer")), nothing lost after it resumes"

# The comeback: a stalled direction returns to the redirect once the reader
# has read every byte sent by TCP (docs/MESH.md, "Ordering").
if spry -j mesh show | jq -e .config.comeback >/dev/null; then
	snap
	peer comeback --cycles 3 && expect comeback -eq 3 && expect fallback_stalled -eq 3
	tap_ok $? "step by step: redirect; stalled reader, fallback counted; drained; the next send comes back, counted; bytes in order"

	# Many transitions each way (a 256 KiB bound, readers that pause
	# every 4 MiB, writers every 2 MiB), every byte checked in place:
	# a difference names its first byte and whether it is reordering or
	# duplication.  No TCP segment may reach a psock out of sequence.
	spry mesh set max-queued $((256 << 10)) >/dev/null
	snap
	peer stallxfer --bytes $BIG --pause-every $((4 << 20)) --pause 0.005 \
		--wpause-every $((2 << 20)) && expect fallback_stalled -ge $TRANSITIONS &&
		expect comeback -ge $TRANSITIONS && expect rx_unordered -eq 0
	tap_ok $? "$(size $BIG) each way through $(delta fallback_stalled) fallbacks and $(delta comeback) comebacks, every byte in place ($(delta rx_overlap) overlapping TCP segments trimmed)"
else
	tap_skip "comeback step by step" "this kernel's copied_seq counts redirected bytes (no __sk_msg_recvmsg): a stalled direction stays on TCP"
	snap
	peer stallxfer --bytes $XFER && expect fallback_stalled -ge 1 && expect comeback -eq 0 &&
		expect rx_unordered -eq 0
	tap_ok $? "$(size $XFER) each way, readers that pause: fallback to TCP for good, sha256 equal"
fi
spry mesh set max-queued 0 >/dev/null

# One end mapped, the other not (made in a denied cgroup).
mkdir "$CG/denied" && spry mesh deny cgroup "$CG/denied" >/dev/null
snap
peer halfmapped --deny-cgroup "$CG/denied" && expect inserted -eq 1 && expect refused_deny -eq 1 &&
	expect redirected_bytes -eq 0 && expect pass_no_peer -ge 1
tap_ok $? "one end mapped: FIONREAD and MSG_PEEK answer as on TCP each way"
spry mesh del cgroup "$CG/denied" >/dev/null
rmdir "$CG/denied"

# The same address pair at once in two network namespaces: two entries,
# each connection's bytes to its own peer.
snap
rm -f "$TMP/go" "$TMP/ready.1" "$TMP/ready.2"
NSP=()
for seed in 1 2; do
	unshare -n bash -c 'ip link set lo up && exec "$@"' ns "${PEER[@]}" xfer --port 40100 \
		--cport 40101 --seed $seed --bytes $((16 << 20)) --ready "$TMP/ready.$seed" \
		--go "$TMP/go" >"$TMP/ns.$seed" 2>&1 &
	NSP+=($!)
	PIDS+=($!)
done
ok=0
wait_for 30 test -e "$TMP/ready.1" -a -e "$TMP/ready.2" || { ok=1; tap_diag "the two namespaces did not connect"; }
touch "$TMP/go"
for p in "${NSP[@]}"; do
	wait "$p" || { ok=1; tap_diag "$(tail -2 "$TMP"/ns.*)"; }
done
[ $ok -eq 0 ] && expect inserted -eq 4 && expect insert_failed -eq 0 && accelerated
tap_ok $? "the same 127.0.0.1:40101 -> 127.0.0.1:40100 in two network namespaces: both mapped, data intact"

snap
peer xfer --host ::1 --family 6 && accelerated &&
peer xfer --host 127.0.0.1 --bind :: --family 6 && accelerated && expect inserted -eq 4
tap_ok $? "IPv6 ::1 and an IPv4 client of a dual-stack server (v4-mapped) are redirected"

# --- policy -------------------------------------------------------------------------
ok=0
ip link add name mesh0 type veth peer name mesh1 2>"$TMP/err" || ok=1
ip addr add 10.199.0.1/24 dev mesh0 && ip link set mesh0 up && ip link set mesh1 up || ok=1
if [ $ok -eq 0 ]; then
	snap
	peer xfer --host 10.199.0.1 && not_accelerated && expect refused_not_local -eq 2
	tap_ok $? "a non-loopback address (a veth's) passes as plain TCP, counted"
	spry mesh allow prefix 10.199.0.0/24 >/dev/null
	snap
	peer xfer --host 10.199.0.1 && accelerated
	tap_ok $? "'allow prefix 10.199.0.0/24' extends acceleration to it"
	spry mesh del prefix 10.199.0.0/24 >/dev/null
else
	tap_skip "veth" "cannot make a veth pair: $(cat "$TMP/err")"
	tap_skip "veth prefix" "cannot make a veth pair"
fi

port=$(free_port)
spry mesh deny port $((port - 1))-$((port + 1)) >/dev/null
snap
peer xfer --port "$port" && not_accelerated && expect refused_deny -eq 2
tap_ok $? "a denied port passes as plain TCP, counted"

spry -j mesh show | jq -e --arg r "$((port - 1))-$((port + 1))" \
	'[.rules[] | select(.kind == "port")] == [{kind: "port", port: $r, action: "deny"}]' >/dev/null
tap_ok $? "show -j lists the port range rule"

spry mesh del port $((port - 1))-$((port + 1)) >/dev/null &&
spry mesh set default deny >/dev/null &&
snap && peer xfer && not_accelerated && expect refused_default -eq 2 &&
spry mesh allow port "$port" >/dev/null && snap && peer xfer --port "$port" && accelerated
tap_ok $? "default deny refuses; an allow port rule accepts (new connections, no reload)"
spry mesh set default allow >/dev/null
spry mesh del port "$port" >/dev/null

spry mesh deny cgroup "$CG" >/dev/null
snap
peer xfer && not_accelerated && expect refused_deny -eq 2 &&
spry -j mesh show | jq -e --arg cg "$CG" '.rules == [{kind: "cgroup", cgroup: $cg, action: "deny", cgroup_id: (.rules[0].cgroup_id)}]' >/dev/null
tap_ok $? "a deny cgroup rule refuses the cgroup's connections; show names the cgroup"
spry mesh del cgroup "$CG" >/dev/null

# --- detach and unload with live connections ---------------------------------------
hold_start
spry -j mesh detach cgroup "$CG" | jq -e '.detached == 1' >/dev/null &&
[ ! -e "$PIN/mesh_link_$cgid" ] &&
no_cgroup_progs
tap_ok $? "detach removes the cgroup link"

snap
touch "$TMP/go"
wait "$HOLD" && accelerated && expect inserted -eq 0
tap_ok $? "a connection accelerated before detach stays accelerated (data intact)"

snap
peer xfer && not_accelerated
tap_ok $? "a connection made after detach is plain TCP"

spry mesh attach cgroup "$CG" >/dev/null
hold_start
msg_id=$(bpftool prog show pinned "$PIN/mesh_msg" -j | jq .id)
spry unload >/dev/null && [ ! -e "$PIN" ] &&
no_cgroup_progs
tap_ok $? "spry unload detaches the cgroup and removes every pin"

bpftool prog show id "$msg_id" >/dev/null 2>&1 && touch "$TMP/go" && wait "$HOLD"
tap_ok $? "after unload, the live connection's program lives on and its data arrives intact"

tap_finish
