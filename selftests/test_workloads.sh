#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The example workloads end to end: the chains of examples/motion/motion.yaml
# and examples/parking/parking.yaml applied with `spry apply`, their
# functions started, requests sent with `spry chain invoke` and every
# answer checked byte for byte:
#   motion:  still samples, motion in the dark (light 30 s / 60 s), motion
#            in daylight, a blow (alarm), malformed events (fn_error);
#   parking: the shipped image's plate, entry then exit (fees by permit,
#            lost ticket), a blocklisted plate (refused), corrupt images
#            (fn_error), the ledger's lines; every function alive after;
#   HTTP:    through spryd's HTTP front, the functions' @status and
#            @content-type: 200 text/plain, 403 for a refused plate;
#   both:    400 randomly mutated requests, each answered ok or fn_error,
#            every function alive; SIGTERM: all exit 0 (under SAN=1: no
#            leak, no sanitizer report).
#
# Requests go through `spry chain invoke` (status and payload checked).
# Runs in a private network namespace with its own pin directory, control
# socket and temporary directory; kills only what it started.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

EX=$SPRY_OUT/examples
GEN=$EX/parking-gen-plate
require_bins "$SPRY" "$SPRYD" "$GEN" "$EX"/motion-{parse,detect,actuate} \
	"$EX"/parking-{detect,search,index,charge,persist}
command -v jq >/dev/null || tap_skip_all "jq not installed"

spry_test_env workloads
PORT=18081
DATA=$TMP/data/parking
FNS=()

all_live() { [ "$(n_live motion)" -eq 6 ] && [ "$(n_live parking)" -eq 5 ]; }

# invoke CHAIN data|file ARG: sets ST (status name) and OUT (payload).
# Plain `chain invoke`: the payload on stdout whatever the status, the
# status on stderr when not ok (`spry -j` reports only {"error":"failed"}
# then).
invoke() {
	if spry chain invoke "$1" "$2" "$3" sock "$SOCK" >"$TMP/invoke.out" 2>"$TMP/invoke.err"; then
		ST=ok
	else
		ST=$(sed -n "s/^spry: chain '.*' answered with status \([a-z_]*\)$/\1/p" "$TMP/invoke.err")
		[ -n "$ST" ] || ST=none
	fi
	OUT=$(cat "$TMP/invoke.out")
}

# expect NAME STATUS PAYLOAD: the last invoke answered exactly that
expect() {
	if [ "$ST" = "$2" ] && [ "$OUT" = "$3" ]; then
		tap_ok 0 "$1"
	else
		tap_diag "want [$2] '$3'"
		tap_diag "got  [$ST] '$OUT' $(head -c 200 "$TMP/invoke.err")"
		tap_ok 1 "$1"
	fi
}

# expect_err NAME PREFIX: fn_error with a payload starting "error: PREFIX"
expect_err() {
	case "$OUT" in
	"error: $2"*) [ "$ST" = fn_error ] ;;
	*) false ;;
	esac
	tap_ok $? "$1 -> fn_error '${OUT%%$'\n'*}'" || tap_diag "status $ST"
}

# motion ARGS...: invoke the motion chain with the lines given (one an arg)
motion() {
	local IFS=$'\n'
	invoke motion data "$*"
}

# parking EVENT TS IMAGE-ARGS...: a request with a generated image
parking() {
	local ev=$1 ts=$2
	shift 2
	"$GEN" -e "event=$ev ts=$ts" -o "$TMP/req.bin" "$@" || return 1
	invoke parking file "$TMP/req.bin"
}

alive() {
	local p
	for p in "${FNS[@]}"; do
		kill -0 "$p" 2>/dev/null || return 1
	done
}

tap_plan

setup() {
	spry load >/dev/null &&
	spry apply "$SPRY_DATA/motion/motion.yaml" >/dev/null &&
	spry apply "$SPRY_DATA/parking/parking.yaml" >/dev/null &&
	start_spryd --http "127.0.0.1:$PORT"
}
setup
tap_ok $? "setup: router loaded, motion.yaml and parking.yaml applied, spryd listening" || {
	tap_diag "$(cat "$TMP/spryd.log" 2>/dev/null)"
	tap_finish
}

# two instances of each (stateless) motion function, one of each
# parking function (index and persist are stateful: see parking.yaml)
for i in 1 2; do
	for f in parse:sensor-parse detect:detect actuate:actuate; do
		start "$EX/motion-${f%%:*}" "$TMP/motion-${f%%:*}-$i.log" \
			--chain motion --fn "${f#*:}" --sock "$SOCK"
		FNS+=("$LAST")
	done
done
for f in detect search index charge; do
	start "$EX/parking-$f" "$TMP/parking-$f.log" --chain parking --fn "$f" --sock "$SOCK"
	FNS+=("$LAST")
done
start "$EX/parking-persist" "$TMP/parking-persist.log" --chain parking --fn persist \
	--sock "$SOCK" --data-dir "$DATA"
FNS+=("$LAST")
wait_for 15 all_live
tap_ok $? "11 instances registered (motion 2 x 3, parking 5)"

# --- motion ---------------------------------------------------------------
motion "device=cam7 ts=1700000000100 ax=0.02 ay=-0.01 az=9.80 lux=20" \
       "device=cam7 ts=1700000000200 ax=-0.03 ay=0.02 az=9.79 lux=20" \
       "device=cam7 ts=1700000000300 ax=0.01 ay=0 az=9.82 lux=20"
expect "motion: still samples in the dark -> nothing" ok \
	"device=cam7 ts=1700000000300 motion=no light=off alarm=off"

# a swing (0.23 g) that settles: 2 quiet samples end it
motion "device=cam7 ts=1700000000100 ax=0 ay=0 az=9.81 lux=12" \
       "device=cam7 ts=1700000000200 ax=7.0 ay=0.5 az=9.81 lux=12" \
       "device=cam7 ts=1700000000300 ax=-5.0 ay=0 az=9.81 lux=12" \
       "device=cam7 ts=1700000000400 ax=0.1 ay=0 az=9.80 lux=12" \
       "device=cam7 ts=1700000000500 ax=0 ay=0 az=9.81 lux=12"
expect "motion: a swing in low light -> light on 30s" ok \
	"device=cam7 ts=1700000000500 motion=yes light=on duration=30s alarm=off"

# still moving at the last sample
motion "device=cam7 ts=1700000000100 ax=0 ay=0 az=9.81 lux=12" \
       "device=cam7 ts=1700000000200 ax=7.0 ay=0.5 az=9.81 lux=12" \
       "device=cam7 ts=1700000000300 ax=-5.0 ay=0 az=9.81 lux=12"
expect "motion: still moving at the end, low light -> light on 60s" ok \
	"device=cam7 ts=1700000000300 motion=yes light=on duration=60s alarm=off"

# hysteresis: 1203 mm/s^2 (0.12 g) alone does not start motion...
motion "device=cam7 ts=1700000000100 ax=-5.0 ay=0 az=9.81 lux=12"
expect "motion: 0.12 g alone is below the 0.2 g threshold" ok \
	"device=cam7 ts=1700000000100 motion=no light=off alarm=off"

# daylight, field order free
motion "lux=800 ax=7.0 ay=0.5 az=9.81 ts=1700000001000 device=door-2"
expect "motion: in daylight -> light stays off" ok \
	"device=door-2 ts=1700000001000 motion=yes light=off alarm=off"

# a blow (1.7 g beyond gravity)
motion "device=cam7 ts=1700000000100 ax=25.0 ay=0 az=9.81 lux=300"
expect "motion: a blow -> alarm on" ok \
	"device=cam7 ts=1700000000100 motion=yes light=off alarm=on"

# malformed events
motion "device=cam7 ts=1700000000100 ax=0 ay=0 az=9.81"
expect_err "motion: a missing field" "line 1: missing lux"
motion "device=cam7 ts=1700000000100 ax=200 ay=0 az=9.81 lux=1"
expect_err "motion: ax out of range" "line 1: ax"
motion "device=cam7 ts=1700000000200 ax=0 ay=0 az=9.81 lux=1" \
       "device=cam7 ts=1700000000100 ax=0 ay=0 az=9.81 lux=1"
expect_err "motion: ts going back" "line 2: ts not increasing"
motion "device=cam7 ts=1700000000100 ax=0 ay=0 az=9.81 lux=1" \
       "device=cam8 ts=1700000000200 ax=0 ay=0 az=9.81 lux=1"
expect_err "motion: two devices in one event" "line 2: another device"
head -c 300 /dev/urandom >"$TMP/junk"
invoke motion file "$TMP/junk"
expect_err "motion: 300 random bytes" ""
motion "device=cam7 ts=1700000000100 ax=0 ay=0 az=9.81 lux=1 lux=2"
expect_err "motion: a field twice" "line 1: lux given twice"

# --- parking --------------------------------------------------------------
{ echo "event=entry ts=1700000000"; cat "$SPRY_DATA/parking/plate.pgm"; } >"$TMP/shipped.bin"
invoke parking file "$TMP/shipped.bin"
expect "parking: the shipped image, entry -> KA5791Z" ok \
	"OPEN plate=KA5791Z event=entry ts=1700000000 permit=none"

# its exit, two hours later, on another frame (shifted, other noise)
parking exit 1700007200 -t KA5791Z -x 5 -y 45 -s 99
expect "parking: KA5791Z exits after 2 h -> 500 cents" ok \
	"OPEN plate=KA5791Z event=exit ts=1700007200 permit=none entry=1700000000 duration=7200 fee=500"

# staff, 25 h: 2000 + 250, halved
parking entry 1700000000 -t ST200BB -s 5 -x 40 -y 8
expect "parking: staff ST200BB enters" ok \
	"OPEN plate=ST200BB event=entry ts=1700000000 permit=staff"
parking exit 1700090000 -t ST200BB -s 6 -c 3 -W 200 -H 100 -x 20 -y 40
expect "parking: staff ST200BB exits after 25 h (scale-3 frame) -> 1125 cents" ok \
	"OPEN plate=ST200BB event=exit ts=1700090000 permit=staff entry=1700000000 duration=90000 fee=1125"

# resident pays nothing
parking entry 1700000100 -t RS100AA -s 7 && parking exit 1700050000 -t RS100AA -s 8
expect "parking: resident RS100AA in and out -> 0" ok \
	"OPEN plate=RS100AA event=exit ts=1700050000 permit=resident entry=1700000100 duration=49900 fee=0"

# the 15-minute grace
parking entry 1700000000 -t XY98ZT2 -s 9 && parking exit 1700000900 -t XY98ZT2 -s 10
expect "parking: visitor out within 15 min -> 0" ok \
	"OPEN plate=XY98ZT2 event=exit ts=1700000900 permit=none entry=1700000000 duration=900 fee=0"

# exit with no entry: lost ticket
parking exit 1700003600 -t LT000ZZ -s 11
expect "parking: exit without an entry -> lost ticket 2500" ok \
	"OPEN plate=LT000ZZ event=exit ts=1700003600 permit=none entry=none fee=2500"

# blocklisted
parking entry 1700000500 -t BL666CK -s 12
expect "parking: blocklisted BL666CK -> refused" ok \
	"REFUSED plate=BL666CK event=entry ts=1700000500 permit=blocked reason=stolen"

# an exit before its entry is refused, the entry kept
parking entry 1700000000 -t EX1T000 -s 13 && parking exit 1699999000 -t EX1T000 -s 14
expect_err "parking: exit before entry" "exit at 1699999000 before entry at 1700000000"

# corrupt requests
head -c 5000 "$TMP/shipped.bin" >"$TMP/trunc.bin"
invoke parking file "$TMP/trunc.bin"
expect_err "parking: truncated PGM" "image: truncated PGM raster"
sed '2s/^P5/P6/' "$TMP/shipped.bin" >"$TMP/magic.bin"
invoke parking file "$TMP/magic.bin"
expect_err "parking: wrong magic" "image: not a binary PGM"
printf 'event=entry ts=1700000000\nP5\n60000 60000\n255\n' >"$TMP/huge.bin"
head -c 1000 /dev/zero >>"$TMP/huge.bin"
invoke parking file "$TMP/huge.bin"
expect_err "parking: huge dimensions" "image: image too large"
tail -c +27 "$TMP/shipped.bin" >"$TMP/nohead.bin"
invoke parking file "$TMP/nohead.bin"
expect_err "parking: no header line" "bad header line"
{ echo "event=entry ts=1700000000"; printf 'P5\n160 80\n255\n'; head -c 12800 /dev/zero | tr '\0' 'd'; } >"$TMP/noplate.bin"
invoke parking file "$TMP/noplate.bin"
expect_err "parking: an image without a plate" "no plate found in the image"
{ echo "event=entry ts=1700000000"; head -c 20000 /dev/urandom; } >"$TMP/junk.bin"
invoke parking file "$TMP/junk.bin"
expect_err "parking: random bytes as the image" "image: "

alive && all_live
tap_ok $? "every function is alive and registered after the bad requests"

cat >"$TMP/ledger.want" <<'LEDGER'
event=entry ts=1700000000 plate=KA5791Z permit=none occupancy=1 fee=0 decision=open
event=exit ts=1700007200 plate=KA5791Z permit=none entry=1700000000 duration=7200 fee=500 decision=open
event=entry ts=1700000000 plate=ST200BB permit=staff occupancy=1 fee=0 decision=open
event=exit ts=1700090000 plate=ST200BB permit=staff entry=1700000000 duration=90000 fee=1125 decision=open
event=entry ts=1700000100 plate=RS100AA permit=resident occupancy=1 fee=0 decision=open
event=exit ts=1700050000 plate=RS100AA permit=resident entry=1700000100 duration=49900 fee=0 decision=open
event=entry ts=1700000000 plate=XY98ZT2 permit=none occupancy=1 fee=0 decision=open
event=exit ts=1700000900 plate=XY98ZT2 permit=none entry=1700000000 duration=900 fee=0 decision=open
event=exit ts=1700003600 plate=LT000ZZ permit=none entry=none fee=2500 decision=open
event=entry ts=1700000500 plate=BL666CK permit=blocked reason=stolen fee=0 decision=refused
event=entry ts=1700000000 plate=EX1T000 permit=none occupancy=1 fee=0 decision=open
LEDGER
diff -u "$TMP/ledger.want" "$DATA/ledger.log" >"$TMP/ledger.diff"
tap_ok $? "the ledger holds exactly the 11 records, in order" ||
	tap_diag "$(head -30 "$TMP/ledger.diff")"

# through the HTTP front: @status and @content-type set by the
# last function
printf 'device=cam7 ts=1700000000100 ax=0 ay=0 az=9.81 lux=12\ndevice=cam7 ts=1700000000200 ax=7.0 ay=0.5 az=9.81 lux=12\n' >"$TMP/motion.txt"
if command -v curl >/dev/null; then
	got=$(curl -s --max-time 10 -o "$TMP/http.out" -w '%{http_code} %{content_type}' \
		--data-binary @"$TMP/motion.txt" "http://127.0.0.1:$PORT/motion")
	[ "$got" = "200 text/plain" ] &&
		[ "$(cat "$TMP/http.out")" = "device=cam7 ts=1700000000200 motion=yes light=on duration=60s alarm=off" ]
	tap_ok $? "HTTP POST /motion: $got, light on 60s" ||
		tap_diag "$(head -c 200 "$TMP/http.out")"
	"$GEN" -e "event=entry ts=1700000600" -t BL666CK -s 15 -o "$TMP/req.bin"
	got=$(curl -s --max-time 10 -o "$TMP/http.out" -w '%{http_code} %{content_type}' \
		--data-binary @"$TMP/req.bin" "http://127.0.0.1:$PORT/parking")
	[ "$got" = "403 text/plain" ] &&
		[ "$(cat "$TMP/http.out")" = "REFUSED plate=BL666CK event=entry ts=1700000600 permit=blocked reason=stolen" ]
	tap_ok $? "HTTP POST /parking, blocklisted plate: $got, refused" ||
		tap_diag "$(head -c 200 "$TMP/http.out")"
	# a handler that fails says why: its @status and message, not a bare 500
	got=$(curl -s --max-time 10 -o "$TMP/http.out" -w '%{http_code}' \
		--data-binary 'device=cam7 ts=oops' "http://127.0.0.1:$PORT/motion")
	[ "$got" = 400 ] && grep -q '^error: ' "$TMP/http.out"
	tap_ok $? "HTTP POST /motion, malformed event: $got with the function's message" ||
		tap_diag "$(head -c 200 "$TMP/http.out")"
else
	tap_skip "HTTP POST /motion" "curl not installed"
	tap_skip "HTTP POST /parking" "curl not installed"
	tap_skip "HTTP POST /motion, malformed" "curl not installed"
fi

# mutate FILE N: overwrite N random bytes, half of them in the first 64
mutate() {
	local f=$1 n=$2 size off i
	size=$(stat -c %s "$f")
	for ((i = 0; i < n; i++)); do
		if ((RANDOM % 2)); then off=$((RANDOM % 64)); else off=$(((RANDOM * 32768 + RANDOM) % size)); fi
		printf "\\x$(printf %02x $((RANDOM % 256)))" |
			dd of="$f" bs=1 seek="$off" conv=notrunc status=none
	done
}

bad=0
declare -A seen=()
for ((k = 0; k < 200; k++)); do
	cp "$TMP/motion.txt" "$TMP/fuzz.bin"
	mutate "$TMP/fuzz.bin" $((1 + k % 4))
	invoke motion file "$TMP/fuzz.bin"
	seen[motion-$ST]=$((${seen[motion-$ST]:-0} + 1))
	case $ST in ok|fn_error) ;; *) bad=$((bad + 1)); tap_diag "motion fuzz $k: status $ST" ;; esac
	cp "$TMP/shipped.bin" "$TMP/fuzz.bin"
	mutate "$TMP/fuzz.bin" $((1 + k % 4))
	invoke parking file "$TMP/fuzz.bin"
	seen[parking-$ST]=$((${seen[parking-$ST]:-0} + 1))
	case $ST in ok|fn_error) ;; *) bad=$((bad + 1)); tap_diag "parking fuzz $k: status $ST" ;; esac
done
tap_diag "answers: $(for k in "${!seen[@]}"; do printf '%s=%s ' "$k" "${seen[$k]}"; done)"
tap_ok $bad "400 mutated requests (200 per chain): each answered ok or fn_error"

alive && all_live
tap_ok $? "every function is alive and registered after the mutated requests"

term_all "${FNS[@]}"
ok=$?
[ $ok -eq 0 ] || tap_diag "$(grep -h -A5 'ERROR\|runtime error' "$TMP"/motion-*.log "$TMP"/parking-*.log | head -40)"
tap_ok $ok "SIGTERM: all 11 function instances exit 0"

tap_finish
