/*
 * tsc_khz: print this machine's TSC rate in kHz, measured against
 * CLOCK_MONOTONIC (median of five 100 ms windows), the clock QEMU runs its
 * timers on, and so the ACPI PM timer L1 refines its TSC rate against. The
 * nested runner hands it to L1 as tsc_early_khz= (docs/runner.md, "L1's
 * TSC rate"): under TCG, L1's TSC is the host's, and L1's own early
 * calibration against the emulated PIT can be off by several hundred ppm
 * when the host is busy.
 * Prints nothing and exits 1 where there is no usable TSC.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#define WINDOWS 5
#define WINDOW_NS 100000000LL

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(void)
{
#if defined(__x86_64__) || defined(__i386__)
	uint64_t khz[WINDOWS];

	for (int i = 0; i < WINDOWS; i++) {
		int64_t t0 = now_ns();
		uint64_t c0 = __rdtsc();
		struct timespec w = { 0, WINDOW_NS };

		nanosleep(&w, NULL);
		int64_t t1 = now_ns();
		uint64_t c1 = __rdtsc();

		if (t1 <= t0 || c1 <= c0)
			return 1;
		khz[i] = (c1 - c0) * 1000000ULL / (uint64_t)(t1 - t0);
	}
	qsort(khz, WINDOWS, sizeof(khz[0]), cmp_u64);
	if (khz[WINDOWS / 2] == 0)
		return 1;
	printf("%llu\n", (unsigned long long)khz[WINDOWS / 2]);
	return 0;
#else
	return 1;
#endif
}
