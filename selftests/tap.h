/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Minimal TAP 13 for spry's C selftests (kselftest style).
 *
 *   tap_plan(n);  tap_ok(cond, "name %d", i);  tap_skip("name", "why");
 *   return tap_finish();   // exit 0 all passed, 1 any failed, 4 all skipped
 *
 * A whole program that cannot run (no privilege, no kernel feature) calls
 * tap_skip_all("reason"), which exits with 4 (KSFT_SKIP).
 */
#ifndef SPRY_TAP_H
#define SPRY_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

static int tap__n, tap__fail, tap__skip, tap__planned;

static inline void tap_plan(int n)
{
	printf("TAP version 13\n1..%d\n", n);
	tap__planned = n;
	fflush(stdout);
}

static inline void tap_diag(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline int tap_ok(int cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tap__n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap__fail++;
	return cond;
}

static inline void tap_skip(const char *name, const char *why)
{
	printf("ok %d - %s # SKIP %s\n", ++tap__n, name, why);
	fflush(stdout);
	tap__skip++;
}

static inline void tap_skip_all(const char *why)
{
	printf("TAP version 13\n1..0 # SKIP %s\n", why);
	fflush(stdout);
	exit(KSFT_SKIP);
}

static inline int tap_finish(void)
{
	if (tap__planned && tap__n != tap__planned) {
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

#endif /* SPRY_TAP_H */
