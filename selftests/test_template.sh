#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Function templates (spryd/template.c, libspry's template mode; docs/
# ELASTIC.md, "Cold start"): a template started for a declared function
# clones instances that register and answer like exec'd ones, are the
# supervisor's children (CLONE_PARENT: reaped by it, no zombies), hold
# only the fds an exec'd instance holds; a killed template is reported on
# its pair; a template naming as its spare or clone a process that started
# before it (or before the FORK) is refused, and that process is left
# alone; a template for a function spryd does not have, or of an
# executable that does not exist, is refused with the reason.
#
# tmpl_ctl plays the supervisor (spryd's spawn room), driven line by line.
# Private netns, pins, socket and temporary directory; kills only what it
# started.

. "$(dirname "$0")/lib.sh"

require_root_bpf
spry_private_netns

E2E=$SPRY_HELPERS/e2e_client
WHOAMI=$SPRY_HELPERS/fn_whoami
CTL=$SPRY_HELPERS/tmpl_ctl
HOSTILE=$SPRY_HELPERS/tmpl_hostile
require_bins "$SPRY" "$SPRYD" "$E2E" "$WHOAMI" "$CTL" "$HOSTILE"
command -v jq >/dev/null || tap_skip_all "jq not installed"

spry_test_env template
chmod 755 "$TMP"

fn_live() {
	spry -j fn show | jq -e --arg n "$1" --argjson p "$2" \
		'[.[] | select(.name == $n) | .instances[] |
		  select(.pid == $p and .listed and (.flags | index("live")))] | length == 1' \
		>/dev/null
}
fn_gone() { ! fn_live "$@"; }
invoke() { timeout 10 "$E2E" invoke "$SOCK" "$@"; }

# ctl CMD...: one command to the driver, its answer in $REPLY
ctl() {
	echo "$*" >&"${TC[1]}"
	REPLY=
	read -r -t 10 REPLY <&"${TC[0]}"
}

# the kinds of a process's fds past stdio, sorted: socket, pipe,
# anon_inode:[eventpoll], the pool file (memfd or hugetlbfs, as "pool")
fd_kinds() {
	local f l
	for f in /proc/"$1"/fd/*; do
		[ "${f##*/}" -ge 3 ] || continue
		l=$(readlink "$f") || continue
		case $l in
		socket:*) echo socket ;;
		pipe:*) echo pipe ;;
		anon_inode:*) echo "$l" ;;
		/memfd:*|*spry*pool*|/dev/hugepages/*|/mnt/*) echo pool ;;
		*) echo "other:$l" ;;
		esac
	done | sort | tr '\n' ' '
}

tap_plan

setup() {
	spry load >/dev/null &&
	spry chain add tp hops whoami >/dev/null &&
	start_spryd
}
setup
tap_ok $? "setup: router loaded, chain tp (whoami), spryd listening" || {
	tap_diag "$(cat "$TMP/spryd.log" 2>/dev/null)"
	tap_finish
}

# tmpl_hostile's script (it lies about its clones as told there)
export TMPL_HOSTILE_DIR=$TMP/hostile
mkdir -p "$TMPL_HOSTILE_DIR"
coproc TC { exec "$CTL" 2>"$TMP/tmpl.log"; }
CTL_PID=$TC_PID
PIDS+=("$CTL_PID")

ctl start "$WHOAMI" --chain tp --fn whoami --sock "$SOCK"
TPL=${REPLY#started }
[[ $REPLY == started* ]]
tap_ok $? "the template starts ($REPLY)"

ctl wait
expect_eq "ready" "$REPLY" "the template gets the chain's pool and says READY"
grep -q 'template for tp/whoami' "$TMP/spryd.log"
tap_ok $? "spryd logged the template (no instance registered for it)"
live_is tp 0
tap_ok $? "a template is not an instance: no live instance in fn show"
ctl spare
SP=${REPLY#spare }
[ "${SP:-0}" -gt 0 ] 2>/dev/null && ctl parent "$SP" && [ "$REPLY" = "parent yes" ]
tap_ok $? "the template keeps a spare clone ahead, the supervisor's child ($SP)"
sleep 0.2
live_is tp 0
tap_ok $? "the spare is not registered"

INST=()
for i in 1 2 3; do
	ctl fork
	[[ $REPLY == pid* ]] && INST+=("${REPLY#pid }")
done
expect_eq 3 "${#INST[@]}" "three instances cloned (${INST[*]})"
expect_eq "$SP" "${INST[0]}" "the first is the spare, woken"

ok=0
for p in "${INST[@]}"; do wait_for 3 fn_live whoami "$p" && ok=$((ok + 1)); done
expect_eq 3 "$ok" "each clone registers: fn show lists it live under its own pid"

par=0
for p in "${INST[@]}"; do ctl parent "$p"; [ "$REPLY" = "parent yes" ] && par=$((par + 1)); done
expect_eq 3 "$par" "the clones are the supervisor's children, not the template's"

bad=0
seen=
for i in $(seq 1 30); do
	out=$(invoke tp "req $i") || { bad=$((bad + 1)); continue; }
	p=${out%%:*}
	[ "${out#*:}" = "req $i" ] || bad=$((bad + 1))
	case " ${INST[*]} " in *" $p "*) seen="$seen $p" ;; *) bad=$((bad + 1)) ;; esac
done
expect_eq 0 "$bad" "30 requests answered by the clones with their own bodies"

# an exec'd instance of the same binary, for the fd comparison
start "$WHOAMI" "$TMP/exec.log" --chain tp --fn whoami --sock "$SOCK"
EX=$LAST
wait_for 3 fn_live whoami "$EX"
tap_ok $? "an exec'd instance of the same binary registers too"
# what an instance needs past stdio: the control connection and the data
# socket, the signalfd, the pool's file (no epoll: an instance with one
# data socket waits in a blocking recv(), libspry(3) SPRY_FN_WAIT)
NEED="anon_inode:[signalfd] pool socket socket "
k_cl=$(fd_kinds "${INST[0]}")
expect_eq "$k_cl" "$NEED" "a clone holds only the fds an instance needs"
k_ex=$(fd_kinds "$EX")
miss=$(comm -23 <(tr ' ' '\n' <<<"$NEED" | sort) <(tr ' ' '\n' <<<"$k_ex" | sort) | tr -d '\n')
expect_eq "$miss" "" "an exec'd instance holds them too (and what this shell left open: $k_ex)"
expect_eq "anon_inode:[signalfd] pool socket socket socket " "$(fd_kinds "$TPL")" \
	"the template holds the signalfd, the pool, its control connection, its pair, its spare's wake-up"
ctl spare
SP=${REPLY#spare }
expect_eq "anon_inode:[signalfd] pool socket socket " "$(fd_kinds "$SP")" \
	"the new spare ($SP) holds the signalfd, the pool, its control connection and its wake-up"

kill -TERM "${INST[0]}"
ctl reap "${INST[0]}"
[[ $REPLY == "reaped ${INST[0]} 0" ]]
tap_ok $? "a clone's SIGTERM exit is reaped by the supervisor ($REPLY)"
wait_for 3 fn_gone whoami "${INST[0]}"
tap_ok $? "its registration went with it"

kill -KILL "$TPL"
ctl dead
expect_eq "dead -32" "$REPLY" "a killed template is seen on its pair (-EPIPE)"
ctl reap "$TPL"
[[ $REPLY == "reaped $TPL 9" ]]
tap_ok $? "the template was the supervisor's child too ($REPLY)"
ctl reap "$SP"
[[ $REPLY == "reaped $SP 0" ]]
tap_ok $? "its spare leaves with it, cleanly ($REPLY)"
out=$(invoke tp "after") && [[ "$out" == *:after ]]
tap_ok $? "the clones outlive their template ('$out')"
ctl fork
[[ $REPLY == "error -32 "* ]]
tap_ok $? "forking from a dead template: -EPIPE ($REPLY)"

# A template naming as its spare or clone a process that started before it
# (or before the FORK): a clone of the earlier template, the supervisor's
# child of the same user, that no hook says is known (tmpl_ctl has none).
V=${INST[1]}
ctl start "$HOSTILE" --chain tp --fn whoami
ctl wait
expect_eq "ready" "$REPLY" "a hostile template (tmpl_hostile) says READY"
echo "$V" >"$TMPL_HOSTILE_DIR/spare"
wait_for 3 test -e "$TMPL_HOSTILE_DIR/spare.sent"
sleep 0.2
ctl spare
expect_eq "spare 0" "$REPLY" "it announces clone $V of the earlier template as its spare: not recorded"
grep -q "refused pid $V as the template's spare: started at tick" "$TMP/tmpl.log"
tap_ok $? "refused: it started before the template ($(grep -o "pid $V as the template's spare: .*" "$TMP/tmpl.log"))"
echo "$V" >"$TMPL_HOSTILE_DIR/forked"
ctl fork
expect_eq "error -1 Operation not permitted" "$REPLY" "it answers FORKED naming $V: the fork fails"
grep -q "refused pid $V as the template's clone: started at tick" "$TMP/tmpl.log"
tap_ok $? "refused: it started before the FORK"
ctl stop
ctl parent "$V"
expect_eq "parent yes" "$REPLY" "the hostile template stopped; clone $V not reaped with it (still ours, alive)"

for p in "${INST[@]:1}"; do kill -TERM "$p"; ctl reap "$p"; done
ctl zombies
expect_eq "zombies 0" "$REPLY" "no zombies left behind"

ctl start "$WHOAMI" --chain tp --fn nosuch --sock "$SOCK"
ctl wait
expect_eq "error -43 Identifier removed" "$REPLY" "a function spryd does not have: refused (-EIDRM)"
wait_for 3 grep -q "refused the template.*unknown chain or function" "$TMP/tmpl.log"
tap_ok $? "with the reason on the template's stderr"
grep -q "template refused: tp/nosuch.*unknown function" "$TMP/spryd.log"
tap_ok $? "and in spryd's log"

ctl start "$TMP/no-such-binary" --chain tp --fn whoami
ctl wait
expect_eq "error -2 No such file or directory" "$REPLY" "a missing executable: its exec error (-ENOENT)"

ctl start /bin/true
ctl wait
expect_eq "error -32 Broken pipe" "$REPLY" "a program that is not a spry function: it exits, -EPIPE"

ctl stop
ctl zombies
expect_eq "zombies 0" "$REPLY" "every template reaped"

exec {TC[1]}>&-
wait "$CTL_PID"
tap_ok $? "the driver exits cleanly"
kill_wait "$EX"
! grep -E "Sanitizer|runtime error" "$TMP/tmpl.log" "$TMP/exec.log"
tap_ok $? "no sanitizer report from the templates, spares and clones"
tap_finish
