/* A tiny TAP-ish harness shared by the static test programs that run in
 * the runner's L1: "ok N - name" / "not ok N - name # detail" lines and
 * counters for the final "N passed, N failed" line. Each program includes
 * it once. */
#ifndef TESTS_L1_TAP_H
#define TESTS_L1_TAP_H
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "iommufd.h"

static int n_test, n_pass, n_fail, n_skip;

static void vreport(bool ok, const char *detail, const char *fmt, va_list ap)
{
	n_test++;
	if (ok)
		n_pass++;
	else
		n_fail++;
	printf("%sok %d - ", ok ? "" : "not ", n_test);
	vprintf(fmt, ap);
	if (!ok && detail)
		printf(" # %s", detail);
	printf("\n");
	fflush(stdout);
}

__attribute__((format(printf, 2, 3)))
static bool check(bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ok, "condition false", fmt, ap);
	va_end(ap);
	return ok;
}

/* rc must be 0. */
__attribute__((format(printf, 2, 3)))
static bool check_ok(int rc, const char *fmt, ...)
{
	char detail[400];
	va_list ap;

	snprintf(detail, sizeof(detail), "rc=%d (%s); last library error: %s",
		 rc, rc ? strerrorname_np(-rc) : "0", iommufd_last_error());
	va_start(ap, fmt);
	vreport(rc == 0, detail, fmt, ap);
	va_end(ap);
	return rc == 0;
}

/* rc must be -want. */
__attribute__((format(printf, 3, 4)))
static bool check_err(int rc, int want, const char *fmt, ...)
{
	char detail[400];
	va_list ap;

	snprintf(detail, sizeof(detail), "want -%s, got %d (%s)",
		 strerrorname_np(want), rc,
		 rc ? strerrorname_np(-rc) : "success");
	va_start(ap, fmt);
	vreport(rc == -want, detail, fmt, ap);
	va_end(ap);
	return rc == -want;
}

__attribute__((format(printf, 1, 2)))
static void skip(const char *fmt, ...)
{
	va_list ap;

	n_test++;
	n_skip++;
	printf("ok %d - ", n_test);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP\n");
}

#endif
