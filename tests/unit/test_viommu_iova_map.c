/* The virtio-iommu IOVA map (devices/virtio-iommu/iova_map.c): edge cases
 * of the 64-bit interval arithmetic, the UNMAP examples of the spec
 * ("UNMAP request", examples (1)-(7)), and a seeded property test against a
 * brute-force model. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "iova_map.h"

static uint64_t rng_state;
static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static void test_empty(void **st)
{
	struct iova_map m;
	iova_map_init(&m);
	assert_null(iova_map_lookup(&m, 0));
	assert_null(iova_map_lookup(&m, UINT64_MAX));
	assert_false(iova_map_overlaps(&m, 0, UINT64_MAX));
	size_t n = 99;
	assert_int_equal(iova_map_remove(&m, 0, UINT64_MAX, NULL, NULL, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(iova_map_validate(&m), 0);
	iova_map_destroy(&m);
}

static void test_full_range_mapping(void **st)
{
	struct iova_map m;
	iova_map_init(&m);
	assert_int_equal(iova_map_insert(&m, 0, UINT64_MAX, 0, 3), 0);
	const struct iova_mapping *e = iova_map_lookup(&m, UINT64_MAX);
	assert_non_null(e);
	assert_int_equal(e->start, 0);
	assert_true(e->end == UINT64_MAX);
	assert_non_null(iova_map_lookup(&m, 0));
	assert_int_equal(iova_map_insert(&m, 5, 5, 0, 1), -EEXIST);
	assert_int_equal(iova_map_insert(&m, UINT64_MAX, UINT64_MAX, 0, 1), -EEXIST);
	/* Any partial unmap would split it. */
	assert_int_equal(iova_map_remove(&m, 0, UINT64_MAX - 1, NULL, NULL, NULL), -ERANGE);
	assert_int_equal(iova_map_remove(&m, 1, UINT64_MAX, NULL, NULL, NULL), -ERANGE);
	assert_int_equal(iova_map_count(&m), 1);
	size_t n;
	assert_int_equal(iova_map_remove(&m, 0, UINT64_MAX, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	assert_null(iova_map_lookup(&m, 0));
	iova_map_destroy(&m);
}

static void test_top_edge(void **st)
{
	struct iova_map m;
	iova_map_init(&m);
	assert_int_equal(iova_map_insert(&m, UINT64_MAX, UINT64_MAX, 7, 1), 0);
	assert_int_equal(iova_map_insert(&m, UINT64_MAX - 0xfff, UINT64_MAX - 1, 8, 1), 0);
	assert_int_equal(iova_map_insert(&m, 0, 0, 9, 1), 0);
	assert_int_equal(iova_map_lookup(&m, UINT64_MAX)->phys, 7);
	assert_int_equal(iova_map_lookup(&m, UINT64_MAX - 1)->phys, 8);
	assert_int_equal(iova_map_lookup(&m, 0)->phys, 9);
	assert_null(iova_map_lookup(&m, 1));
	assert_null(iova_map_lookup(&m, UINT64_MAX - 0x1000));
	assert_int_equal(iova_map_insert(&m, 5, 3, 0, 1), -EINVAL);
	assert_int_equal(iova_map_remove(&m, 5, 3, NULL, NULL, NULL), -EINVAL);
	size_t n;
	assert_int_equal(iova_map_remove(&m, UINT64_MAX, UINT64_MAX, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(iova_map_remove(&m, 1, UINT64_MAX, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(iova_map_count(&m), 1);
	assert_int_equal(iova_map_validate(&m), 0);
	iova_map_destroy(&m);
}

static void test_adjacency(void **st)
{
	struct iova_map m;
	iova_map_init(&m);
	assert_int_equal(iova_map_insert(&m, 10, 19, 0, 1), 0);
	assert_int_equal(iova_map_insert(&m, 0, 9, 0, 1), 0);
	assert_int_equal(iova_map_insert(&m, 20, 29, 0, 1), 0);
	assert_int_equal(iova_map_insert(&m, 9, 9, 0, 1), -EEXIST);
	assert_int_equal(iova_map_insert(&m, 29, 30, 0, 1), -EEXIST);
	assert_int_equal(iova_map_insert(&m, 19, 20, 0, 1), -EEXIST);
	assert_int_equal(iova_map_insert(&m, 0, 100, 0, 1), -EEXIST);
	assert_int_equal(iova_map_lookup(&m, 19)->start, 10);
	assert_int_equal(iova_map_lookup(&m, 20)->start, 20);
	assert_true(iova_map_overlaps(&m, 29, 29));
	assert_false(iova_map_overlaps(&m, 30, UINT64_MAX));
	assert_int_equal(iova_map_lookup_ge(&m, 11)->start, 20);
	assert_int_equal(iova_map_lookup_le(&m, 11)->start, 10);
	assert_null(iova_map_lookup_ge(&m, 21));
	iova_map_destroy(&m);
}

/* The seven examples of the spec's UNMAP request section. */
static void test_spec_unmap_examples(void **st)
{
	struct iova_map m;
	size_t n;
	iova_map_init(&m);
	/* (1) unmap(0, 4) on an empty space: succeeds, unmaps nothing */
	assert_int_equal(iova_map_remove(&m, 0, 4, NULL, NULL, &n), 0);
	assert_int_equal(n, 0);
	/* (2) a = map(0, 9); unmap(0, 9) -> unmaps a */
	assert_int_equal(iova_map_insert(&m, 0, 9, 0, 1), 0);
	assert_int_equal(iova_map_remove(&m, 0, 9, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	/* (3) a = map(0, 4); b = map(5, 9); unmap(0, 9) -> a and b */
	assert_int_equal(iova_map_insert(&m, 0, 4, 0, 1), 0);
	assert_int_equal(iova_map_insert(&m, 5, 9, 0, 1), 0);
	assert_int_equal(iova_map_remove(&m, 0, 9, NULL, NULL, &n), 0);
	assert_int_equal(n, 2);
	/* (4) a = map(0, 9); unmap(0, 4) -> fails, nothing unmapped */
	assert_int_equal(iova_map_insert(&m, 0, 9, 0, 1), 0);
	assert_int_equal(iova_map_remove(&m, 0, 4, NULL, NULL, &n), -ERANGE);
	assert_int_equal(n, 0);
	assert_non_null(iova_map_lookup(&m, 0));
	assert_int_equal(iova_map_remove(&m, 5, 9, NULL, NULL, &n), -ERANGE);
	assert_int_equal(iova_map_remove(&m, 0, 9, NULL, NULL, &n), 0);
	/* (5) a = map(0, 4); b = map(5, 9); unmap(0, 4) -> a only */
	assert_int_equal(iova_map_insert(&m, 0, 4, 0, 1), 0);
	assert_int_equal(iova_map_insert(&m, 5, 9, 0, 1), 0);
	assert_int_equal(iova_map_remove(&m, 0, 4, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	assert_non_null(iova_map_lookup(&m, 5));
	assert_int_equal(iova_map_remove(&m, 0, 9, NULL, NULL, &n), 0);
	/* (6) a = map(0, 4); unmap(0, 9) -> a */
	assert_int_equal(iova_map_insert(&m, 0, 4, 0, 1), 0);
	assert_int_equal(iova_map_remove(&m, 0, 9, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	/* (7) a = map(0, 4); b = map(10, 14); unmap(0, 14) -> a and b */
	assert_int_equal(iova_map_insert(&m, 0, 4, 0, 1), 0);
	assert_int_equal(iova_map_insert(&m, 10, 14, 0, 1), 0);
	assert_int_equal(iova_map_remove(&m, 0, 14, NULL, NULL, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(iova_map_count(&m), 0);
	iova_map_destroy(&m);
}

/* Brute-force model. */
struct model {
	struct iova_mapping *e;
	size_t n, cap;
};

static int model_insert(struct model *md, uint64_t s, uint64_t e, uint64_t p, uint32_t f)
{
	if (e < s)
		return -EINVAL;
	for (size_t i = 0; i < md->n; i++)
		if (md->e[i].start <= e && md->e[i].end >= s)
			return -EEXIST;
	if (md->n == md->cap) {
		md->cap = md->cap ? md->cap * 2 : 64;
		md->e = realloc(md->e, md->cap * sizeof(*md->e));
	}
	md->e[md->n++] = (struct iova_mapping){ s, e, p, f };
	return 0;
}

static int model_remove(struct model *md, uint64_t s, uint64_t e, size_t *removed)
{
	*removed = 0;
	if (e < s)
		return -EINVAL;
	for (size_t i = 0; i < md->n; i++)
		if (md->e[i].start <= e && md->e[i].end >= s &&
		    (md->e[i].start < s || md->e[i].end > e))
			return -ERANGE;
	for (size_t i = 0; i < md->n;) {
		if (md->e[i].start >= s && md->e[i].end <= e) {
			md->e[i] = md->e[--md->n];
			(*removed)++;
		} else {
			i++;
		}
	}
	return 0;
}

static const struct iova_mapping *model_lookup(const struct model *md, uint64_t x)
{
	for (size_t i = 0; i < md->n; i++)
		if (md->e[i].start <= x && md->e[i].end >= x)
			return &md->e[i];
	return NULL;
}

/* An address in a small universe (so operations collide), sometimes pushed
 * to the top of the 64-bit space. */
static uint64_t rand_addr(unsigned universe)
{
	uint64_t a = rnd() % universe;
	switch (rnd() % 8) {
	case 0:
		return UINT64_MAX - a;
	case 1:
		return a * 4096;
	default:
		return a;
	}
}

static size_t cb_count;
static void count_cb(void *opaque, const struct iova_mapping *e)
{
	(void)opaque;
	(void)e;
	cb_count++;
}

static void run_property(uint64_t seed, unsigned ops, unsigned universe)
{
	struct iova_map m;
	struct model md = { 0 };
	iova_map_init(&m);
	rng_state = seed;
	for (unsigned op = 0; op < ops; op++) {
		unsigned k = rnd() % 16;
		uint64_t a = rand_addr(universe);
		uint64_t len = rnd() % 4 == 0 ? rnd() % (universe * 4ULL) : rnd() % 8;
		uint64_t b = a + len < a ? UINT64_MAX : a + len;
		if (rnd() % 50 == 0)
			b = a - 1;	/* end < start (or wrapping) */
		if (k < 7) {
			uint64_t p = rnd();
			uint32_t f = rnd() & 3;
			int r1 = iova_map_insert(&m, a, b, p, f);
			int r2 = model_insert(&md, a, b, p, f);
			assert_int_equal(r1, r2);
		} else if (k < 11) {
			if (rnd() % 64 == 0) {
				a = 0;
				b = UINT64_MAX;
			}
			size_t n1, n2;
			cb_count = 0;
			int r1 = iova_map_remove(&m, a, b, count_cb, NULL, &n1);
			int r2 = model_remove(&md, a, b, &n2);
			assert_int_equal(r1, r2);
			assert_int_equal(n1, n2);
			assert_int_equal(cb_count, n1);
		} else {
			for (int j = 0; j < 8; j++) {
				uint64_t x = j ? rand_addr(universe) : a;
				const struct iova_mapping *e1 = iova_map_lookup(&m, x);
				const struct iova_mapping *e2 = model_lookup(&md, x);
				if (!e2) {
					assert_null(e1);
					continue;
				}
				assert_non_null(e1);
				assert_int_equal(e1->start, e2->start);
				assert_int_equal(e1->end, e2->end);
				assert_int_equal(e1->phys, e2->phys);
				assert_int_equal(e1->flags, e2->flags);
			}
			assert_int_equal(iova_map_overlaps(&m, a, b),
					 b >= a && ({
						 bool o = false;
						 for (size_t i = 0; i < md.n; i++)
							 o |= md.e[i].start <= b && md.e[i].end >= a;
						 o;
					 }));
		}
		assert_int_equal(iova_map_count(&m), md.n);
		if (op % 64 == 0)
			assert_int_equal(iova_map_validate(&m), 0);
	}
	assert_int_equal(iova_map_validate(&m), 0);
	iova_map_destroy(&m);
	free(md.e);
}

static void test_property_small_universe(void **st)
{
	for (uint64_t seed = 1; seed <= 20; seed++)
		run_property(seed * 0x9E3779B97F4A7C15ULL, 3000, 200);
}

static void test_property_large_universe(void **st)
{
	/* Enough mappings for a tree of three levels and more. */
	for (uint64_t seed = 1; seed <= 3; seed++)
		run_property(seed * 0xD1B54A32D192ED03ULL, 30000, 100000);
}

/* Many mappings: fill, check every lookup arithmetically, remove in random
 * order, with structural checks along the way. */
static void test_bulk_random_order(void **st)
{
	enum { N = 60000 };
	struct iova_map m;
	uint32_t *perm = malloc(N * sizeof(*perm));
	iova_map_init(&m);
	rng_state = 12345;
	for (unsigned i = 0; i < N; i++)
		perm[i] = i;
	for (unsigned i = N - 1; i > 0; i--) {
		unsigned j = rnd() % (i + 1);
		uint32_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (unsigned i = 0; i < N; i++) {
		uint64_t s = (uint64_t)perm[i] * 0x3000;
		assert_int_equal(iova_map_insert(&m, s, s + 0x1fff, s * 2, 1), 0);
	}
	assert_int_equal(iova_map_validate(&m), 0);
	for (unsigned i = 0; i < N; i++) {
		uint64_t s = (uint64_t)i * 0x3000;
		const struct iova_mapping *e = iova_map_lookup(&m, s + 0x1234);
		assert_non_null(e);
		assert_int_equal(e->start, s);
		assert_int_equal(e->phys, s * 2);
		assert_null(iova_map_lookup(&m, s + 0x2000));
	}
	for (unsigned i = 0; i < N; i++) {
		uint64_t s = (uint64_t)perm[i] * 0x3000;
		size_t n;
		assert_int_equal(iova_map_remove(&m, s + 1, s + 0x2fff, NULL, NULL, &n), -ERANGE);
		assert_int_equal(iova_map_remove(&m, s, s + 0x2fff, NULL, NULL, &n), 0);
		assert_int_equal(n, 1);
		if (i % 4096 == 0)
			assert_int_equal(iova_map_validate(&m), 0);
	}
	assert_int_equal(iova_map_count(&m), 0);
	assert_int_equal(iova_map_validate(&m), 0);
	/* Refill and drop the lot with one range (the bulk path). */
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(iova_map_insert(&m, (uint64_t)i * 16, (uint64_t)i * 16 + 7, 0, 1), 0);
	size_t n;
	cb_count = 0;
	assert_int_equal(iova_map_remove(&m, 0, UINT64_MAX, count_cb, NULL, &n), 0);
	assert_int_equal(n, N);
	assert_int_equal(cb_count, N);
	assert_int_equal(iova_map_validate(&m), 0);
	/* And a middle range of a full map (the one-by-one path). */
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(iova_map_insert(&m, (uint64_t)i * 16, (uint64_t)i * 16 + 7, 0, 1), 0);
	assert_int_equal(iova_map_remove(&m, 16 * 100, 16 * 50000 - 1, NULL, NULL, &n), 0);
	assert_int_equal(n, 49900);
	assert_int_equal(iova_map_count(&m), N - 49900);
	assert_int_equal(iova_map_validate(&m), 0);
	assert_non_null(iova_map_lookup(&m, 16 * 99));
	assert_null(iova_map_lookup(&m, 16 * 100));
	assert_non_null(iova_map_lookup(&m, 16 * 50000));
	iova_map_destroy(&m);
	free(perm);
}

static int foreach_cb(void *opaque, const struct iova_mapping *e)
{
	uint64_t *prev = opaque;
	if (*prev != UINT64_MAX && e->start <= *prev)
		return -1;
	*prev = e->start;
	return 0;
}

static void test_foreach_sorted(void **st)
{
	struct iova_map m;
	iova_map_init(&m);
	rng_state = 99;
	for (int i = 0; i < 5000; i++) {
		uint64_t s = rnd() & ~0xfffULL;
		iova_map_insert(&m, s, s + 0xfff, 0, 1);
	}
	uint64_t prev = UINT64_MAX;
	assert_int_equal(iova_map_foreach(&m, foreach_cb, &prev), 0);
	iova_map_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_full_range_mapping),
		cmocka_unit_test(test_top_edge),
		cmocka_unit_test(test_adjacency),
		cmocka_unit_test(test_spec_unmap_examples),
		cmocka_unit_test(test_property_small_universe),
		cmocka_unit_test(test_property_large_universe),
		cmocka_unit_test(test_bulk_random_order),
		cmocka_unit_test(test_foreach_sorted),
	};
	return cmocka_run_group_tests_name("iova_map", tests, NULL, NULL);
}
