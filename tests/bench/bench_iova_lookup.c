/* Host microbenchmark of the virtio-iommu IOVA map: ns per lookup (random
 * and sequential-ish addresses) and per insert/remove at 1k, 100k and 1M
 * mappings of 4 KiB pages spread over the address space.
 * Built and run by scripts/bench-iova-lookup.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "iova_map.h"

static uint64_t rs = 88172645463325252ULL;
static uint64_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void bench(size_t n)
{
	struct iova_map m;
	iova_map_init(&m);
	/* Mapping i covers page 2i (every other page mapped, shuffled order). */
	uint64_t *order = malloc(n * sizeof(*order));
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rnd() % (i + 1);
		uint64_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	double t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		uint64_t s = order[i] * 0x2000;
		if (iova_map_insert(&m, s, s + 0xfff, s, 3)) {
			fprintf(stderr, "insert failed\n");
			exit(1);
		}
	}
	double t_ins = (now_ns() - t0) / n;

	enum { Q = 1 << 22 };
	uint64_t *q = malloc(Q * sizeof(*q));
	for (size_t i = 0; i < Q; i++)
		q[i] = (rnd() % n) * 0x2000 + (rnd() & 0xfff);
	uint64_t sum = 0;
	t0 = now_ns();
	for (size_t i = 0; i < Q; i++) {
		const struct iova_mapping *e = iova_map_lookup(&m, q[i]);
		sum += e ? e->phys : 1;
	}
	double t_rand = (now_ns() - t0) / Q;
	/* Locality: a window of 64 mappings at a time (a device's buffers). */
	for (size_t i = 0; i < Q; i++)
		q[i] = (((i / 4096) * 7919 + rnd() % 64) % n) * 0x2000 + (rnd() & 0xfff);
	t0 = now_ns();
	for (size_t i = 0; i < Q; i++) {
		const struct iova_mapping *e = iova_map_lookup(&m, q[i]);
		sum += e ? e->phys : 1;
	}
	double t_local = (now_ns() - t0) / Q;

	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		uint64_t s = order[i] * 0x2000;
		size_t r;
		if (iova_map_remove(&m, s, s + 0x1fff, NULL, NULL, &r) || r != 1) {
			fprintf(stderr, "remove failed\n");
			exit(1);
		}
	}
	double t_rem = (now_ns() - t0) / n;
	printf("%8zu mappings: lookup %6.1f ns random, %6.1f ns local; insert %6.1f ns, remove %6.1f ns  (%llu)\n",
	       n, t_rand, t_local, t_ins, t_rem, (unsigned long long)(sum & 1));
	iova_map_destroy(&m);
	free(q);
	free(order);
}

int main(int argc, char **argv)
{
	size_t sizes[] = { 1000, 100000, 1000000 };
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		bench(sizes[i]);
	return 0;
}
