// SPDX-License-Identifier: GPL-2.0-only
/*
 * The harness of the C selftests (selftests/tap.h) checked on itself: each
 * case runs a small program of checks in a child (this binary with a
 * scenario name) and reads its TAP and exit status.  A failing check must
 * fail its case and the program, and print the expression, the expected
 * and the actual value; passing checks must not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "tap.h"

/* ------------------------------------------------- the child's scenarios */

static void pass_all(void)
{
	int i = -1;
	unsigned int u = 0;
	char a[4] = "abc", b[4] = "abc";

	EXPECT_EQ(2 + 2, 4);
	EXPECT_NE(i, 1, "named check %d", 7);
	EXPECT_LT(i, u, "-1 < 0u compares by value");
	EXPECT_LE(u, 0);
	EXPECT_GT(~0ull, 1);
	EXPECT_GE(i, -1);
	EXPECT_TRUE(u == 0);
	EXPECT_FALSE(i == 0);
	EXPECT_STREQ(a, "abc");
	EXPECT_STRNE(a, NULL);
	EXPECT_MEMEQ(a, b, sizeof(a));
	tap_ok(1, "plain tap_ok");
}

static int verdict(void) { return 0; }
#define V_FORWARD 2

static void fail_eq(void)
{
	EXPECT_EQ(verdict(), V_FORWARD, "forwarded");
	EXPECT_EQ(4096u, 4097, "hex");
	EXPECT_GE(-5, 3u);
}

static void fail_assert(void)
{
	ASSERT_TRUE(verdict() == V_FORWARD, "stops here");
	tap_ok(1, "never reached");
}

static void fail_str(void)
{
	EXPECT_STREQ("got\n", "want", "strings");
	EXPECT_STREQ(NULL, "want", "null");
}

static void fail_mem(void)
{
	unsigned char x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	unsigned char y[8] = { 1, 2, 3, 4, 0x55, 6, 7, 8 };

	EXPECT_MEMEQ(x, y, sizeof(x), "buffers");
}

static void skipped(void)
{
	tap_skip_case("no such feature");
}

static void checks_nothing(void)
{
}

/* (apart from child_cases: "all" keeps its six) */
static const struct tap_case empty_case = TAP_CASE(checks_nothing, "a case that checks nothing");

static const struct tap_case child_cases[] = {
	TAP_CASE(pass_all, "every check passes"),
	TAP_CASE(fail_eq, "integer checks fail"),
	TAP_CASE(fail_assert, "an assert stops its case"),
	TAP_CASE(fail_str, "string checks fail"),
	TAP_CASE(fail_mem, "memory checks fail"),
	TAP_CASE(skipped, "a skipped case"),
};

static int child(const char *what)
{
	size_t i;

	if (!strcmp(what, "toplevel")) {	/* no cases: trailing plan */
		tap_ok(1, "first");
		EXPECT_EQ(1, 1, "second");
		return tap_finish();
	}
	if (!strcmp(what, "toplevel-fail")) {
		EXPECT_EQ(1, 2, "fails");
		return tap_finish();
	}
	if (!strcmp(what, "nothing"))	/* no point, no skip: a failure */
		return tap_finish();
	if (!strcmp(what, empty_case.name))
		return tap_run_cases(&empty_case, 1);
	for (i = 0; i < TAP_N(child_cases); i++)
		if (!strcmp(what, child_cases[i].name))
			return tap_run_cases(&child_cases[i], 1);
	if (!strcmp(what, "all"))
		return tap_run_cases(child_cases, TAP_N(child_cases));
	fprintf(stderr, "test_tap: no scenario '%s'\n", what);
	return 2;
}

/* -------------------------------------------------------- the parent */

static char out[16384];
static int status;

/* Run scenario @what in a child; its output in out, exit status in status. */
static void run(const char *what)
{
	char cmd[4096], self[2048];
	ssize_t n;
	size_t len = 0;
	FILE *f;
	int st;

	out[0] = '\0';
	status = -1;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return;
	self[n] = '\0';
	snprintf(cmd, sizeof(cmd), "'%s' '%s'", self, what);
	f = popen(cmd, "r");
	if (!f)
		return;
	while (len < sizeof(out) - 1 && fgets(out + len, sizeof(out) - len, f))
		len += strlen(out + len);
	st = pclose(f);
	status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool has(const char *s)
{
	bool found = strstr(out, s) != NULL;

	if (!found)
		tap_diag("no line with '%s' in:\n%s", s, out);
	return found;
}

static void case_pass(void)
{
	run("every check passes");
	EXPECT_EQ(status, KSFT_PASS, "exit status 0");
	EXPECT_TRUE(has("TAP version 13\n1..1\n# Subtest: every check passes\n"),
		    "plan from the table before the subtest");
	EXPECT_TRUE(has("    ok 2 - named check 7\n"), "a check's own name");
	EXPECT_TRUE(has("    ok 1 - 2 + 2 == 4\n"), "unnamed: the expression");
	EXPECT_TRUE(has("    ok 12 - plain tap_ok\n    1..12\nok 1 - every check passes\n"),
		    "the subtest's plan after its last point, then the case");
	EXPECT_FALSE(strstr(out, "not ok") || strstr(out, "expected"),
		     "nothing failed, no diagnostics");
}

static void case_eq(void)
{
	run("integer checks fail");
	EXPECT_EQ(status, KSFT_FAIL, "exit status 1");
	EXPECT_TRUE(has("    # test_tap.c:"), "file:line of the check");
	EXPECT_TRUE(has(": expected verdict() == V_FORWARD (2), got 0\n    not ok 1 - forwarded\n"),
		    "expression, expected and actual before its not ok");
	EXPECT_TRUE(has("expected 4096u == 4097 (4097 (0x1001)), got 4096 (0x1000)"),
		    "hex of larger values");
	EXPECT_TRUE(has("expected -5 >= 3u (3), got -5\n"), "signed against unsigned by value");
	EXPECT_TRUE(has("not ok 1 - integer checks fail\n"), "the case fails");
}

static void case_assert(void)
{
	run("an assert stops its case");
	EXPECT_EQ(status, KSFT_FAIL, "exit status 1");
	EXPECT_TRUE(has("expected verdict() == V_FORWARD to be true, got false\n"
			"    not ok 1 - stops here\n    1..1\n"), "boolean form");
	EXPECT_FALSE(strstr(out, "never reached"), "nothing after the assert ran");
}

static void case_str(void)
{
	run("string checks fail");
	EXPECT_EQ(status, KSFT_FAIL, "exit status 1");
	EXPECT_TRUE(has("expected \"got\\n\" == \"want\" (\"want\"), got \"got\\n\"\n"),
		    "both strings quoted and escaped");
	EXPECT_TRUE(has("(\"want\"), got NULL\n"), "NULL");
}

static void case_mem(void)
{
	run("memory checks fail");
	EXPECT_EQ(status, KSFT_FAIL, "exit status 1");
	EXPECT_TRUE(has("expected x == y (8 bytes), first difference at offset 4: "
			"expected 0x55, got 0x05\n"), "first differing offset and bytes");
}

static void case_skip(void)
{
	run("a skipped case");
	EXPECT_EQ(status, KSFT_SKIP, "exit status 4");
	EXPECT_TRUE(has("ok 1 - a skipped case # SKIP no such feature\n"), "reason");
}

static void case_empty(void)
{
	run("a case that checks nothing");
	EXPECT_EQ(status, KSFT_FAIL, "exit status 1");
	EXPECT_TRUE(has("    1..0\n# a case that checks nothing: no check ran\n"
			"not ok 1 - a case that checks nothing\n"), "said so, then not ok");
}

static void case_all(void)
{
	run("all");
	EXPECT_EQ(status, KSFT_FAIL, "exit status 1");
	EXPECT_TRUE(has("1..6\n"), "plan: the number of cases");
	EXPECT_TRUE(has("ok 1 - every check passes\n"), "a passing case among failing ones");
	EXPECT_TRUE(has("not ok 5 - memory checks fail\n# Subtest: a skipped case\n"
			"    1..0\nok 6 - a skipped case # SKIP no such feature\n"),
		    "each case numbered in order");
}

static void case_toplevel(void)
{
	run("toplevel");
	EXPECT_EQ(status, KSFT_PASS, "exit status 0");
	EXPECT_STREQ(out, "TAP version 13\nok 1 - first\nok 2 - second\n1..2\n",
		     "points at top level, plan counted at the end");
	run("toplevel-fail");
	EXPECT_EQ(status, KSFT_FAIL, "exit status 1 on a failing point");
	EXPECT_TRUE(has("expected 1 == 2 (2), got 1\nnot ok 1 - fails\n1..1\n"),
		    "diagnostic, then not ok, then the plan");
	run("nothing");
	EXPECT_EQ(status, KSFT_FAIL, "no point at all: exit 1");
	EXPECT_STREQ(out, "TAP version 13\n# no test ran\n1..0\n", "no point: said so");
}

static const struct tap_case cases[] = {
	TAP_CASE(case_pass, "passing checks: named points, no diagnostics, exit 0"),
	TAP_CASE(case_eq, "EXPECT_EQ/GE print expression, expected and actual; exit 1"),
	TAP_CASE(case_assert, "ASSERT_TRUE prints true/false and returns from the case"),
	TAP_CASE(case_str, "EXPECT_STREQ prints both strings, escaped, NULL as NULL"),
	TAP_CASE(case_mem, "EXPECT_MEMEQ prints the first differing offset"),
	TAP_CASE(case_skip, "tap_skip_case: the case is SKIP, exit 4"),
	TAP_CASE(case_empty, "a case that ran no check fails"),
	TAP_CASE(case_all, "a case table: plan counted, cases numbered"),
	TAP_CASE(case_toplevel, "no table: points at top level, trailing plan"),
};

int main(int argc, char **argv)
{
	if (argc > 1)
		return child(argv[1]);
	return tap_run_cases(cases, TAP_N(cases));
}
