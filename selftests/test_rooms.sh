#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# spryd's rooms (docs/DESIGN.md, "spryd's rooms"): the includes between
# rooms form no cycle, the request core (entry.c) names no front, the
# loop names no room, and the fronts reach the core only through front.h.
# A room is spryd/NAME.c + spryd/NAME.h (NAME_part.c and NAME_int.h belong
# to NAME); spryd/spryd.h is the shared state, not a room.  The checks are
# first run on a small tree made to break them, so they can fail.
. "$(dirname "$0")/lib.sh"

command -v tsort >/dev/null || tap_skip_all "needs tsort (coreutils)"
[ -d "$SPRY_SRC/spryd" ] || tap_skip_all "no spryd/ sources in $SPRY_SRC"

tap_plan 8
tmp=$(mktemp -d /tmp/spry-test-rooms.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

room() {
	local b
	b=$(basename "$1")
	b=${b%.[ch]}
	echo "${b%%_*}"
}

# "FROM TO" for every include of another room's header under DIR/spryd.
edges() {
	local f inc from to
	for f in "$1"/spryd/*.[ch]; do
		from=$(room "$f")
		[ "$from" = spryd ] && continue
		for inc in $(sed -n 's|^#include "spryd/\([a-z_]*\.h\)".*|\1|p' "$f"); do
			to=$(room "$inc")
			[ "$to" = spryd ] || [ "$to" = "$from" ] || echo "$from $to"
		done
	done | sort -u
}

# Prints the cycle tsort found; status 0 when there is none.
no_cycle() {
	local out
	out=$(edges "$1" | tsort 2>&1 >/dev/null)
	[ -z "$out" ] || { echo "$out" | head -4; return 1; }
}

# Front names the request core must not use (code and includes).
FRONT_NAMES='gateway|dgram|gw_|dg_|ctl_|spryd_conn|xsk|REQ_OWN_|spryd/http\.h'

core_names_no_front() {
	! grep -nE "$FRONT_NAMES" "$1/spryd/entry.c" "$1/spryd/entry.h"
}

loop_names_no_room() {
	! grep -nE "$FRONT_NAMES|front|entry_|origin_|registrar_|#include \"spryd/[a-z_]+\.h\"" \
		"$1/spryd/loop.c" "$1/spryd/loop.h" | grep -vE 'spryd/(loop|spryd)\.h'
}

# --- the checks can fail: a tree with a cycle and a core naming a front
mkdir -p "$tmp/bad/spryd"
printf '#include "spryd/b.h"\n' >"$tmp/bad/spryd/a.c"
printf '#include "spryd/c.h"\n' >"$tmp/bad/spryd/b.c"
printf '#include "spryd/a.h"\n#include "spryd/spryd.h"\n' >"$tmp/bad/spryd/c_part.c"
printf '#include "spryd/entry.h"\nvoid f(void) { gateway_complete(); }\n' >"$tmp/bad/spryd/entry.c"
: >"$tmp/bad/spryd/entry.h"
printf '#include "spryd/ctl.h"\n' >"$tmp/bad/spryd/loop.c"
: >"$tmp/bad/spryd/loop.h"
! no_cycle "$tmp/bad" >/dev/null
tap_ok $? "the cycle check finds a -> b -> c -> a"
! core_names_no_front "$tmp/bad" >/dev/null
tap_ok $? "the core check finds entry.c calling gateway_complete"
! loop_names_no_room "$tmp/bad" >/dev/null
tap_ok $? "the loop check finds loop.c including ctl.h"

# --- spryd itself
out=$(no_cycle "$SPRY_SRC")
tap_ok $? "spryd's rooms include each other without a cycle${out:+ (tsort: $out)}"

out=$(core_names_no_front "$SPRY_SRC")
tap_ok $? "entry.c and entry.h name no front${out:+ ($out)}"

out=$(loop_names_no_room "$SPRY_SRC")
tap_ok $? "loop.c and loop.h name no room${out:+ ($out)}"

# Every front registers its ops and includes no other front.
bad=
for f in ctl gateway dgram; do
	grep -q 'front_register(d, &' "$SPRY_SRC/spryd/$f.c" || bad="$bad $f:no-register"
	for g in ctl gateway dgram; do
		[ $f = $g ] && continue
		grep -qE "#include \"spryd/$g(_[a-z]+)?\.h\"" "$SPRY_SRC"/spryd/$f*.c &&
			bad="$bad $f->$g"
	done
done
[ -z "$bad" ]
tap_ok $? "each front registers its ops and includes no other front${bad:+ (${bad# })}"

# Every room's file says what the room is in its header comment.
bad=
for f in "$SPRY_SRC"/spryd/*.c; do
	head -8 "$f" | grep -qw room ||
		bad="$bad $(basename "$f")"
done
[ -z "$bad" ]
tap_ok $? "every spryd/*.c says which room it is in its header comment${bad:+ (not:$bad)}"

tap_finish
