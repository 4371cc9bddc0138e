/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * TAP 13 / KTAP for spry's C selftests, in the manner of the kernel's
 * kselftest_harness.h: checks that print what they expected and what they
 * got, and plans the harness counts.
 *
 * A test is a table of named cases, each a void function:
 *
 *	static void case_forward(void)
 *	{
 *		EXPECT_EQ(verdict, SPRY_V_FORWARD, "forwarded to hop 2");
 *		ASSERT_STREQ(name, "demo");	// returns on failure
 *	}
 *	static const struct tap_case cases[] = {
 *		TAP_CASE(case_forward, "a request walks the chain"),
 *	};
 *	int main(void) { return tap_run_cases(cases, TAP_N(cases)); }
 *
 * tap_run_cases() prints the plan from the table (1..number of cases), runs
 * the cases in order, each as a KTAP subtest: its checks are the indented
 * points "    ok 1 - ...", its plan is printed after its last point, and the
 * case is "ok N - name" when every check passed, "not ok N - name" when one
 * failed.  A failing check prints its file:line, the expression and both
 * values as "# " lines before its "not ok":
 *
 *	    # test_router.c:123: expected verdict == SPRY_V_FORWARD (2), got 0
 *	    not ok 3 - forwarded to hop 2
 *
 * Outside a case (a plain main()), each check is a top-level point; the
 * header is printed before the first one and the plan "1..N" after the last
 * (a trailing plan is valid TAP 13 and KTAP), by tap_finish():
 *
 *	tap_ok(cond, "name %d", i);  EXPECT_EQ(a, b);  tap_skip("name", "why");
 *	return tap_finish();	// exit 0 all passed, 1 any failed, 4 all skipped
 *
 * Checks, each with an optional printf-style name after its operands (the
 * expression is the name without one); EXPECT_* go on after a failure,
 * ASSERT_* return from the (void) function they are in:
 *
 *	EXPECT_EQ/NE/LT/LE/GT/GE(actual, expected)	integers of any type,
 *		compared by value (a negative signed value is less than any
 *		unsigned one), printed in decimal and hex
 *	EXPECT_TRUE(cond), EXPECT_FALSE(cond)
 *	EXPECT_STREQ/STRNE(actual, expected)		C strings, NULL allowed
 *	EXPECT_MEMEQ(actual, expected, len)	prints the first differing offset
 *	tap_ok(cond, fmt, ...)			a check without values
 *
 * A whole program that cannot run (no privilege, no kernel feature) calls
 * tap_skip_all("reason"): exit 4 (KSFT_SKIP).  A case that cannot run calls
 * tap_skip_case("reason") and returns; a setup case that failed calls
 * tap_skip_rest("reason") so that the cases after it are skipped.
 * tap_bail_out() stops the program.
 */
#ifndef SPRY_TAP_H
#define SPRY_TAP_H

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

struct tap_case {
	const char *name;	/* the case's TAP name: what it shows */
	void (*fn)(void);
};

#define TAP_CASE(fn, name)	{ (name), (fn) }
#define TAP_N(arr)		(sizeof(arr) / sizeof((arr)[0]))

/* top level: points, failures, skips, plan printed first (0: at the end) */
static int tap__n, tap__fail, tap__skip, tap__planned;
static bool tap__header;
/* the running case (a subtest) */
static bool tap__in_case;
static char tap__rest_why[256];	/* set: the cases still to run are skipped */
static int tap__cn, tap__cfail, tap__cskip;
static char tap__cskip_why[256];

static inline const char *tap__indent(void)
{
	return tap__in_case ? "    " : "";
}

static inline void tap__start(void)
{
	if (!tap__header) {
		printf("TAP version 13\n");
		tap__header = true;
	}
}

/* A plan known before the first point, computed (never a hand count). */
static inline void tap_plan(int n)
{
	tap__start();
	printf("1..%d\n", n);
	tap__planned = n;
	fflush(stdout);
}

/* Each line of the message a "# " comment at the current level. */
static inline void tap__vdiag(const char *fmt, va_list ap)
{
	char buf[4096], *line, *nl;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (line = buf; line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		if (nl && !*nl)
			nl = NULL;	/* no empty comment for a final newline */
		printf("%s# %s\n", tap__indent(), line);
	}
	fflush(stdout);
}

static inline void tap_diag(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	tap__start();
	va_start(ap, fmt);
	tap__vdiag(fmt, ap);
	va_end(ap);
}

/* One point at the current level, named by @fmt/@ap (or @dflt if empty). */
static inline void tap__point(bool pass, const char *dflt, const char *fmt,
			      va_list ap)
{
	int n;

	tap__start();
	if (tap__in_case) {
		n = ++tap__cn;
		if (!pass)
			tap__cfail++;
	} else {
		n = ++tap__n;
		if (!pass)
			tap__fail++;
	}
	printf("%s%sok %d - ", tap__indent(), pass ? "" : "not ", n);
	if (fmt && *fmt)
		vprintf(fmt, ap);
	else
		fputs(dflt ? dflt : "", stdout);
	printf("\n");
	fflush(stdout);
}

static inline int tap_ok(int cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap__point(cond, NULL, fmt, ap);
	va_end(ap);
	return cond;
}

static inline void tap_skip(const char *name, const char *why)
{
	tap__start();
	if (tap__in_case) {
		printf("    ok %d - %s # SKIP %s\n", ++tap__cn, name, why);
		tap__cskip++;
		snprintf(tap__cskip_why, sizeof(tap__cskip_why), "%s", why);
	} else {
		printf("ok %d - %s # SKIP %s\n", ++tap__n, name, why);
		tap__skip++;
	}
	fflush(stdout);
}

/* The running case cannot run: it is reported "ok N - name # SKIP why". */
static inline void tap_skip_case(const char *why)
{
	tap__cskip = tap__cn + 1;	/* more skips than points: skipped */
	snprintf(tap__cskip_why, sizeof(tap__cskip_why), "%s", why);
}

/*
 * The cases after the running one cannot run (their setup failed, which the
 * running case's failed check reports): each is "ok N - name # SKIP why".
 */
static inline void tap_skip_rest(const char *why)
{
	snprintf(tap__rest_why, sizeof(tap__rest_why), "%s", why);
}

static inline void tap_skip_all(const char *why)
{
	tap__start();
	if (!tap__n && !tap__planned) {
		printf("1..0 # SKIP %s\n", why);
		fflush(stdout);
		exit(KSFT_SKIP);
	}
	/* points already ran: the rest is not run, which is a failure */
	printf("Bail out! %s\n", why);
	fflush(stdout);
	exit(KSFT_FAIL);
}

static inline void tap_bail_out(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
static inline void tap_bail_out(const char *fmt, ...)
{
	va_list ap;

	tap__start();
	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(KSFT_FAIL);
}

/* The plan when none was printed; no point at all is a failure. */
static inline int tap_finish(void)
{
	tap__start();
	if (!tap__n) {
		printf("# no test ran\n");
		tap__fail++;
	}
	if (!tap__planned)
		printf("1..%d\n", tap__n);
	else if (tap__n != tap__planned) {
		printf("# planned %d tests, ran %d\n", tap__planned, tap__n);
		tap__fail++;
	}
	fflush(stdout);
	if (tap__fail)
		return KSFT_FAIL;
	if (tap__n && tap__skip == tap__n)
		return KSFT_SKIP;
	return KSFT_PASS;
}

/* Run @n cases, each a subtest and one top-level point; tap_finish(). */
static inline int tap_run_cases(const struct tap_case *cases, size_t n)
{
	size_t i;

	tap_plan((int)n);
	for (i = 0; i < n; i++) {
		if (tap__rest_why[0]) {
			printf("ok %d - %s # SKIP %s\n", ++tap__n, cases[i].name,
			       tap__rest_why);
			tap__skip++;
			continue;
		}
		printf("# Subtest: %s\n", cases[i].name);
		fflush(stdout);
		tap__in_case = true;
		tap__cn = tap__cfail = tap__cskip = 0;
		tap__cskip_why[0] = '\0';
		cases[i].fn();
		printf("    1..%d\n", tap__cn);
		tap__in_case = false;
		if (tap__cfail) {
			printf("not ok %d - %s\n", ++tap__n, cases[i].name);
			tap__fail++;
		} else if (tap__cskip && tap__cskip >= tap__cn) {
			printf("ok %d - %s # SKIP %s\n", ++tap__n, cases[i].name,
			       tap__cskip_why);
			tap__skip++;
		} else if (!tap__cn) {
			/* a case that checked nothing has shown nothing */
			printf("# %s: no check ran\n", cases[i].name);
			printf("not ok %d - %s\n", ++tap__n, cases[i].name);
			tap__fail++;
		} else {
			printf("ok %d - %s\n", ++tap__n, cases[i].name);
		}
		fflush(stdout);
	}
	return tap_finish();
}

/* ------------------------------------------------------------ checks */

/* An integer of any type as sign and magnitude: compared by value. */
struct tap__int {
	bool neg;
	uintmax_t mag;
};

#define tap__is_signed(x)	((__typeof__(x))-1 < (__typeof__(x))1)
static inline struct tap__int tap__int_s(intmax_t v)
{
	return (struct tap__int){ .neg = v < 0, .mag = v < 0 ? -(uintmax_t)v : (uintmax_t)v };
}

static inline struct tap__int tap__int_u(uintmax_t v)
{
	return (struct tap__int){ .neg = false, .mag = v };
}

/* @x evaluated once: only one branch of the ?: runs. */
#define tap__int_of(x)							\
	(tap__is_signed(x) ? tap__int_s((intmax_t)(x)) : tap__int_u((uintmax_t)(x)))

enum tap__op { TAP_EQ, TAP_NE, TAP_LT, TAP_LE, TAP_GT, TAP_GE };

static inline int tap__int_cmp(struct tap__int a, struct tap__int b)
{
	if (a.neg != b.neg)
		return a.neg ? -1 : 1;
	if (a.mag == b.mag)
		return 0;
	return (a.mag < b.mag) != a.neg ? -1 : 1;
}

static inline void tap__int_str(char *buf, size_t len, struct tap__int v)
{
	if (v.neg)
		snprintf(buf, len, "-%ju", v.mag);
	else if (v.mag > 9)
		snprintf(buf, len, "%ju (0x%jx)", v.mag, v.mag);
	else
		snprintf(buf, len, "%ju", v.mag);
}

/* @name: the caller's name format; " " and nothing else means none. */
/* __FILE__ without its directories, as the kernel's harness prints it */
static inline const char *tap__base(const char *file)
{
	const char *slash = strrchr(file, '/');

	return slash ? slash + 1 : file;
}

static inline bool tap__cmp_int(const char *file, int line, enum tap__op op,
				const char *sa, const char *sb, struct tap__int a,
				struct tap__int b, const char *name, ...)
{
	static const char *const ops[] = { "==", "!=", "<", "<=", ">", ">=" };
	char expr[512], va[64], vb[64];
	int c = tap__int_cmp(a, b);
	bool pass;
	va_list ap;

	switch (op) {
	case TAP_EQ: pass = c == 0; break;
	case TAP_NE: pass = c != 0; break;
	case TAP_LT: pass = c < 0; break;
	case TAP_LE: pass = c <= 0; break;
	case TAP_GT: pass = c > 0; break;
	default: pass = c >= 0; break;
	}
	snprintf(expr, sizeof(expr), "%s %s %s", sa, ops[op], sb);
	if (!pass) {
		tap__int_str(va, sizeof(va), a);
		tap__int_str(vb, sizeof(vb), b);
		tap_diag("%s:%d: expected %s (%s), got %s", tap__base(file), line, expr, vb, va);
	}
	va_start(ap, name);
	tap__point(pass, expr, name + 1, ap);
	va_end(ap);
	return pass;
}

static inline bool tap__check_bool(const char *file, int line, bool want,
				   const char *expr, bool got, const char *name, ...)
{
	char dflt[512];
	va_list ap;

	snprintf(dflt, sizeof(dflt), "%s%s", want ? "" : "!", expr);
	if (got != want)
		tap_diag("%s:%d: expected %s to be %s, got %s", tap__base(file), line, expr,
			 want ? "true" : "false", got ? "true" : "false");
	va_start(ap, name);
	tap__point(got == want, dflt, name + 1, ap);
	va_end(ap);
	return got == want;
}

/* @s quoted and escaped into @buf, at most 80 characters of it. */
static inline void tap__quote(char *buf, size_t len, const char *s)
{
	size_t o = 0, i;

	if (!s) {
		snprintf(buf, len, "NULL");
		return;
	}
	buf[o++] = '"';
	for (i = 0; s[i] && o + 8 < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (i == 80) {
			o += snprintf(buf + o, len - o, "...");
			break;
		}
		if (ch == '"' || ch == '\\')
			o += snprintf(buf + o, len - o, "\\%c", ch);
		else if (ch == '\n')
			o += snprintf(buf + o, len - o, "\\n");
		else if (ch == '\r')
			o += snprintf(buf + o, len - o, "\\r");
		else if (isprint(ch))
			buf[o++] = (char)ch;
		else
			o += snprintf(buf + o, len - o, "\\x%02x", ch);
	}
	snprintf(buf + o, len - o, "\"");
}

static inline bool tap__cmp_str(const char *file, int line, bool eq, const char *sa,
				const char *sb, const char *a, const char *b,
				const char *name, ...)
{
	char expr[512], qa[400], qb[400];
	bool same = a && b ? !strcmp(a, b) : a == b;
	va_list ap;

	snprintf(expr, sizeof(expr), "%s %s %s", sa, eq ? "==" : "!=", sb);
	if (same != eq) {
		tap__quote(qa, sizeof(qa), a);
		tap__quote(qb, sizeof(qb), b);
		tap_diag("%s:%d: expected %s (%s), got %s", tap__base(file), line, expr, qb, qa);
	}
	va_start(ap, name);
	tap__point(same == eq, expr, name + 1, ap);
	va_end(ap);
	return same == eq;
}

static inline bool tap__cmp_mem(const char *file, int line, const char *sa,
				const char *sb, const void *a, const void *b,
				size_t len, const char *name, ...)
{
	const unsigned char *pa = a, *pb = b;
	char expr[512];
	size_t i = 0;
	va_list ap;

	snprintf(expr, sizeof(expr), "%s == %s (%zu bytes)", sa, sb, len);
	if (!pa || !pb) {
		tap_diag("%s:%d: expected %s, got a NULL buffer", tap__base(file), line, expr);
		i = 0;
	} else {
		while (i < len && pa[i] == pb[i])
			i++;
		if (i < len)
			tap_diag("%s:%d: expected %s, first difference at offset %zu: "
				 "expected 0x%02x, got 0x%02x", tap__base(file), line, expr, i,
				 pb[i], pa[i]);
	}
	va_start(ap, name);
	tap__point(pa && pb && i == len, expr, name + 1, ap);
	va_end(ap);
	return pa && pb && i == len;
}

/*
 * The optional name: " " plus the caller's format literal, so that none at
 * all is " " (no empty format to warn about); the sizeof() has the compiler
 * check the format against its arguments without evaluating them.
 */
#define tap__fmtcheck(...)	((void)sizeof(printf(" " __VA_ARGS__)))

/*
 * The operands are stringified here, by the macro the test calls, so that
 * the diagnostic shows them as written (V_FORWARD, not 2).
 */
#define tap__int_check(op, sa, sb, a, b, ...) ({			\
	tap__fmtcheck(__VA_ARGS__);					\
	tap__cmp_int(__FILE__, __LINE__, op, sa, sb, tap__int_of(a),	\
		     tap__int_of(b), " " __VA_ARGS__);			\
	})
#define tap__bool_check(want, sc, c, ...) ({				\
	tap__fmtcheck(__VA_ARGS__);					\
	tap__check_bool(__FILE__, __LINE__, want, sc, !!(c),		\
			" " __VA_ARGS__);				\
	})
#define tap__str_check(eq, sa, sb, a, b, ...) ({			\
	tap__fmtcheck(__VA_ARGS__);					\
	tap__cmp_str(__FILE__, __LINE__, eq, sa, sb, (a), (b),		\
		     " " __VA_ARGS__);					\
	})
#define tap__mem_check(sa, sb, a, b, len, ...) ({			\
	tap__fmtcheck(__VA_ARGS__);					\
	tap__cmp_mem(__FILE__, __LINE__, sa, sb, (a), (b), (len),	\
		     " " __VA_ARGS__);					\
	})

#define EXPECT_EQ(a, b, ...)	tap__int_check(TAP_EQ, #a, #b, a, b, __VA_ARGS__)
#define EXPECT_NE(a, b, ...)	tap__int_check(TAP_NE, #a, #b, a, b, __VA_ARGS__)
#define EXPECT_LT(a, b, ...)	tap__int_check(TAP_LT, #a, #b, a, b, __VA_ARGS__)
#define EXPECT_LE(a, b, ...)	tap__int_check(TAP_LE, #a, #b, a, b, __VA_ARGS__)
#define EXPECT_GT(a, b, ...)	tap__int_check(TAP_GT, #a, #b, a, b, __VA_ARGS__)
#define EXPECT_GE(a, b, ...)	tap__int_check(TAP_GE, #a, #b, a, b, __VA_ARGS__)
#define EXPECT_TRUE(c, ...)	tap__bool_check(true, #c, c, __VA_ARGS__)
#define EXPECT_FALSE(c, ...)	tap__bool_check(false, #c, c, __VA_ARGS__)
#define EXPECT_STREQ(a, b, ...)	tap__str_check(true, #a, #b, a, b, __VA_ARGS__)
#define EXPECT_STRNE(a, b, ...)	tap__str_check(false, #a, #b, a, b, __VA_ARGS__)
#define EXPECT_MEMEQ(a, b, len, ...)					\
	tap__mem_check(#a, #b, a, b, len, __VA_ARGS__)

/* ASSERT_*: the EXPECT_* check; on failure return from a void function. */
#define tap__assert(check)	do { if (!(check)) return; } while (0)
#define ASSERT_EQ(a, b, ...)	tap__assert(tap__int_check(TAP_EQ, #a, #b, a, b, __VA_ARGS__))
#define ASSERT_NE(a, b, ...)	tap__assert(tap__int_check(TAP_NE, #a, #b, a, b, __VA_ARGS__))
#define ASSERT_LT(a, b, ...)	tap__assert(tap__int_check(TAP_LT, #a, #b, a, b, __VA_ARGS__))
#define ASSERT_LE(a, b, ...)	tap__assert(tap__int_check(TAP_LE, #a, #b, a, b, __VA_ARGS__))
#define ASSERT_GT(a, b, ...)	tap__assert(tap__int_check(TAP_GT, #a, #b, a, b, __VA_ARGS__))
#define ASSERT_GE(a, b, ...)	tap__assert(tap__int_check(TAP_GE, #a, #b, a, b, __VA_ARGS__))
#define ASSERT_TRUE(c, ...)	tap__assert(tap__bool_check(true, #c, c, __VA_ARGS__))
#define ASSERT_FALSE(c, ...)	tap__assert(tap__bool_check(false, #c, c, __VA_ARGS__))
#define ASSERT_STREQ(a, b, ...)	tap__assert(tap__str_check(true, #a, #b, a, b, __VA_ARGS__))
#define ASSERT_STRNE(a, b, ...)	tap__assert(tap__str_check(false, #a, #b, a, b, __VA_ARGS__))
#define ASSERT_MEMEQ(a, b, len, ...)					\
	tap__assert(tap__mem_check(#a, #b, a, b, len, __VA_ARGS__))

#endif /* SPRY_TAP_H */
