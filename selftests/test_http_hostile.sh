#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spryd's HTTP front against hostile clients on raw sockets
# (selftests/http_hostile.py): malformed requests each answered with their
# status and a close, pipelining, clients closing early, a slowloris, a
# client that never reads, 1000 idle connections; afterwards the gateway
# serves, every pool buffer is free and spryd's fd count is back.
#
# Private network namespace, pin directory, control socket and temporary
# directory; kills only what it started.  Prints the script's TAP.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

META=$SPRY_HELPERS/fn_meta
require_bins "$SPRY" "$SPRYD" "$META"
command -v python3 >/dev/null || tap_skip_all "python3 not installed"

spry_test_env hostile
PORT=18081
HDR_TO=1
WR_TO=2
IDLE_TO=4

live() {
	"$SPRY" -P "$PIN" -j fn show | jq -e '[.[] | select(.chain == "meta") | .instances[] |
		select(.listed and (.flags | index("live")))] | length == 2' >/dev/null
}

if ! { "$SPRY" -P "$PIN" load >/dev/null && "$SPRY" -P "$PIN" chain add meta hops fn_meta >/dev/null; }; then
	tap_skip_all "cannot load spry"
fi
start "$SPRYD" "$TMP/spryd.log" -P "$PIN" -s "$SOCK" "${SPRYD_FRONT[@]}" --http "127.0.0.1:$PORT" \
	--header-timeout $HDR_TO --body-timeout $HDR_TO --write-timeout $WR_TO \
	--idle-timeout $IDLE_TO --max-body 65536
SPRYD_PID=$LAST
wait_for 5 test -S "$SOCK" || { tap_diag "$(cat "$TMP/spryd.log")"; tap_skip_all "spryd did not start"; }
start "$META" "$TMP/fn0.log" --chain meta --fn fn_meta --sock "$SOCK"
start "$META" "$TMP/fn1.log" --chain meta --fn fn_meta --sock "$SOCK"
wait_for 5 live || tap_skip_all "fn_meta did not register"

python3 "$SPRY_SELFTESTS/http_hostile.py" "$PORT" "$SPRYD_PID" $HDR_TO $WR_TO $IDLE_TO
rc=$?
[ $rc -eq 0 ] || tap_diag "$(tail -5 "$TMP/spryd.log")"
# spryd stops cleanly (under SAN=1: no leak, no sanitizer report)
kill -TERM "$SPRYD_PID"
wait_for 5 proc_gone "$SPRYD_PID"
wait "$SPRYD_PID"
src=$?
if [ $src -ne 0 ] || grep -qE 'Sanitizer|runtime error' "$TMP/spryd.log"; then
	tap_diag "spryd exited $src: $(grep -E -A5 'Sanitizer|runtime error' "$TMP/spryd.log" | head -20)"
	rc=1
fi
exit $rc
