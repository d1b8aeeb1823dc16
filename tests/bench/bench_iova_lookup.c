/* Host microbenchmark of the virtio-iommu IOVA map: ns per lookup (random
 * and sequential-ish addresses) and per insert/remove at 1k, 100k and 1M
 * mappings of 4 KiB pages spread over the address space; then the
 * translation path of an emulated device (viommu_endpoint_dma_init's hook:
 * per-thread cache hit, and miss = rwlock + tree lookup) and the cost of a
 * MAP + UNMAP request pair through the request handler.
 * Built and run by scripts/bench-iova-lookup.sh. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "devices.h"
#include "iova_map.h"
#include "viommu.h"

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

/* The machine may be shared (kernel builds): best of 5 passes.
 * tree: the B+tree's own lookup (iova_map_lookup); else the translation
 * lookup (iova_map_find: the radix index). */
static double time_lookups(const struct iova_map *m, const uint64_t *q, size_t nq, uint64_t *sum,
			   bool tree)
{
	double best = 1e18;
	for (int pass = 0; pass < 5; pass++) {
		double t0 = now_ns();
		if (tree) {
			for (size_t i = 0; i < nq; i++) {
				const struct iova_mapping *e = iova_map_lookup(m, q[i]);
				*sum += e ? e->phys : 1;
			}
		} else {
			for (size_t i = 0; i < nq; i++) {
				struct iova_mapping e;
				*sum += iova_map_find(m, q[i], &e) ? e.phys : 1;
			}
		}
		double t = (now_ns() - t0) / nq;
		if (t < best)
			best = t;
	}
	return best;
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

	enum { Q = 1 << 20 };
	uint64_t *q = malloc(Q * sizeof(*q));
	for (size_t i = 0; i < Q; i++)
		q[i] = (rnd() % n) * 0x2000 + (rnd() & 0xfff);
	uint64_t sum = 0;
	if (!iova_map_indexed(&m)) {
		fprintf(stderr, "radix index not in use\n");
		exit(1);
	}
	double t_rand = time_lookups(&m, q, Q, &sum, false);
	double t_rand_tree = time_lookups(&m, q, Q, &sum, true);
	/* Locality: a window of 64 mappings at a time (a device's buffers). */
	for (size_t i = 0; i < Q; i++)
		q[i] = (((i / 4096) * 7919 + rnd() % 64) % n) * 0x2000 + (rnd() & 0xfff);
	double t_local = time_lookups(&m, q, Q, &sum, false);
	double t_local_tree = time_lookups(&m, q, Q, &sum, true);

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
	printf("%8zu mappings: lookup %6.1f ns random, %6.1f ns local (B+tree alone %6.1f, %6.1f); "
	       "insert %6.1f ns, remove %6.1f ns  (%llu)\n",
	       n, t_rand, t_local, t_rand_tree, t_local_tree, t_ins, t_rem, (unsigned long long)(sum & 1));
	iova_map_destroy(&m);
	free(q);
	free(order);
}

static int req(struct viommu *v, const void *r, size_t len)
{
	uint8_t tail[4];
	struct iovec out = { (void *)r, len }, in = { tail, 4 };
	uint32_t w;
	return viommu_handle_request(v, &out, 1, &in, 1, &w);
}

static int map(struct viommu *v, uint64_t iova, uint64_t size, uint64_t gpa)
{
	struct virtio_iommu_req_map r = { .head.type = VIRTIO_IOMMU_T_MAP, .domain = 1,
					  .virt_start = iova, .virt_end = iova + size - 1,
					  .phys_start = gpa, .flags = 3 };
	return req(v, &r, offsetof(struct virtio_iommu_req_map, tail));
}

static int unmap(struct viommu *v, uint64_t iova, uint64_t size)
{
	struct virtio_iommu_req_unmap r = { .head.type = VIRTIO_IOMMU_T_UNMAP, .domain = 1,
					    .virt_start = iova, .virt_end = iova + size - 1 };
	return req(v, &r, offsetof(struct virtio_iommu_req_unmap, tail));
}

static void bench_translate(size_t n)
{
	struct guest_mem mem = { .size = 64 << 20, .low_size = 64 << 20 };
	mem.host = calloc(1, mem.size);
	struct viommu *v = viommu_new(NULL);
	struct dma_space s = { .mem = &mem };
	viommu_endpoint_dma_init(v, 8, &s);
	struct virtio_iommu_req_attach a = { .head.type = VIRTIO_IOMMU_T_ATTACH, .domain = 1,
					     .endpoint = 8 };
	req(v, &a, offsetof(struct virtio_iommu_req_attach, tail));
	for (size_t i = 0; i < n; i++)
		if (map(v, 0x100000000ULL + i * 0x2000, 0x1000, (i % 16384) * 0x1000)) {
			fprintf(stderr, "map failed\n");
			exit(1);
		}
	enum { Q = 1 << 21 };
	uint64_t run, sum = 0;
	int fault;
	/* Hits: a device working within a few buffers. */
	double t0 = now_ns();
	for (size_t i = 0; i < Q; i++) {
		uint64_t iova = 0x100000000ULL + (i & 3) * 0x2000 + (i & 0xff0);
		sum += (uintptr_t)s.translate(&s, iova, 64, DMA_READ, &run, &fault);
	}
	double t_hit = (now_ns() - t0) / Q;
	/* Misses: every access to a different random mapping. */
	uint64_t *q = malloc(Q * sizeof(*q));
	for (size_t i = 0; i < Q; i++)
		q[i] = 0x100000000ULL + (rnd() % n) * 0x2000 + (rnd() & 0xfc0);
	t0 = now_ns();
	for (size_t i = 0; i < Q; i++)
		sum += (uintptr_t)s.translate(&s, q[i], 64, DMA_READ, &run, &fault);
	double t_miss = (now_ns() - t0) / Q;
	/* A strict-mode driver: MAP then UNMAP of one page, n mappings live. */
	enum { R = 200000 };
	t0 = now_ns();
	for (size_t i = 0; i < R; i++) {
		uint64_t iova = 0x10000 + (i % 64) * 0x1000;
		if (map(v, iova, 0x1000, 0x1000) || unmap(v, iova, 0x1000)) {
			fprintf(stderr, "map/unmap failed\n");
			exit(1);
		}
	}
	double t_req = (now_ns() - t0) / R;
	printf("%8zu mappings: translate %6.1f ns cached, %6.1f ns uncached; MAP+UNMAP request pair %6.1f ns  (%llu)\n",
	       n, t_hit, t_miss, t_req, (unsigned long long)(sum & 1));
	viommu_free(v);
	free(mem.host);
	free(q);
}

int main(int argc, char **argv)
{
	size_t sizes[] = { 1000, 100000, 1000000 };
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		bench(sizes[i]);
	/* A strict-mode guest's domain holds a handful of mappings. */
	bench_translate(8);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		bench_translate(sizes[i]);
	return 0;
}
