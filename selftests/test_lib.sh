#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The shell tests' harness (selftests/lib.sh) checked on itself: each
# scenario runs in a child bash that sources lib.sh; its TAP and exit status
# are read back.  A failing check must fail the test and print what it
# expected and what it got; the plan is counted, not written by hand.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

TMP=$(mktemp -d /tmp/spry-test-lib-XXXXXX) || tap_skip_all "mktemp failed"
trap 'rm -rf "$TMP"' EXIT

# run SCRIPT: SCRIPT on line 2 of scenario.sh, after sourcing lib.sh; its
# output in OUT, exit status in RC.
run() {
	printf '. "%s"\n%s\n' "$LIB" "$1" >"$TMP/scenario.sh"
	OUT=$(bash "$TMP/scenario.sh" 2>&1)
	RC=$?
}

# has TEXT: OUT holds TEXT (fixed string, may span lines).
has() {
	case "$OUT" in
	*"$1"*) return 0 ;;
	esac
	tap_diag "no '$1' in:"
	tap_diag "$OUT"
	return 1
}

tap_plan

run 'tap_ok 0 first; expect_eq a a second; tap_finish'
expect_eq "$RC" 0 "passing points: exit 0"
expect_eq "$OUT" "TAP version 13
ok 1 - first
ok 2 - second
1..2" "header first, plan counted and printed after the last point"

run 'expect_eq "$((1 + 1))" 3 "sum"; tap_finish'
expect_eq "$RC" 1 "a failing expect_eq: exit 1"
has "# scenario.sh:2: expected '3', got '2'
not ok 1 - sum
1..1"
tap_ok $? "expect_eq prints expected and actual before its not ok"

run 'expect_num 7 -ge 10 "enough"; expect_num x -eq 1 "number"; tap_finish'
has "expected a value -ge 10, got '7'" && has "expected a value -eq 1, got 'x'" &&
	[ "$RC" -eq 1 ]
tap_ok $? "expect_num prints the bound and the value, a non-number fails"

run 'expect_cmd -s 0 -o "^hello$" "echo" -- echo hello; echo "OUT=$OUT"; tap_finish'
[ "$RC" -eq 0 ] && has "ok 1 - echo" && has "OUT=hello"
tap_ok $? "expect_cmd: status and stdout as wanted passes, OUT kept"

run 'expect_cmd -s 0 -e "nope" "ls" -- ls /nonexistent-spry; tap_finish'
[ "$RC" -eq 1 ] && has "expected exit status 0, got 2; expected stderr matching /nope/" &&
	has "#   command: ls /nonexistent-spry" && has "#   exit status: 2" &&
	has "#   stderr: ls: cannot access" && has "not ok 1 - ls"
tap_ok $? "expect_cmd prints the command, its status and its output on failure"

run 'expect_cmd -s "!0" "false fails" -- false; tap_finish'
expect_eq "$RC" 0 "expect_cmd -s !0 passes on any failing status"

if command -v jq >/dev/null; then
	run 'json_check "{\"a\": 1, \"b\": [2]}" ".a == \$n" "a is 2" --argjson n 2; tap_finish'
	[ "$RC" -eq 1 ] && has '# scenario.sh:2: expected .a == $n to be true, got false
#   in: {"a":1,"b":[2]}
not ok 1 - a is 2'
	tap_ok $? "json_check prints the expression, its value and the document"

	run 'json_eq "{\"a\": {\"b\": \"x\"}}" ".a.b" "\"y\"" "b is y"; tap_finish'
	[ "$RC" -eq 1 ] && has '# scenario.sh:2: expected .a.b == "y", got "x"'
	tap_ok $? "json_eq prints expected and actual values"

	run 'json_check "{\"a\": 1}" ".a == 1" "a is 1"; json_check "not json" ".a" "bad"; tap_finish'
	[ "$RC" -eq 1 ] && has "ok 1 - a is 1" && has "not ok 2 - bad"
	tap_ok $? "json_check: a true expression passes, a document that is not JSON fails"
else
	tap_skip "json_check prints the expression, its value and the document" "jq not installed"
	tap_skip "json_eq prints expected and actual values" "jq not installed"
	tap_skip "json_check: a true expression passes, a document that is not JSON fails" "jq not installed"
fi

run 'tap_skip_all "no feature"'
expect_eq "$RC" 4 "tap_skip_all before any point: exit 4"
expect_eq "$OUT" "TAP version 13
1..0 # SKIP no feature" "tap_skip_all: an empty plan with the reason"

run 'tap_ok 0 one; tap_skip_all "gone"'
[ "$RC" -eq 1 ] && has "Bail out! gone"
tap_ok $? "tap_skip_all after a point ran: Bail out!, exit 1"

run 'tap_plan 3; tap_ok 0 one; tap_finish'
[ "$RC" -eq 1 ] && has "1..3" && has "# planned 3 tests, ran 1"
tap_ok $? "a computed plan that is not met fails"

run 'tap_skip a why; tap_finish'
expect_eq "$RC" 4 "only skipped points: exit 4"

run 'tap_plan; tap_finish'
[ "$RC" -eq 1 ] && has "# no test ran"
tap_ok $? "no point at all (a test that stopped early): exit 1"

tap_finish
