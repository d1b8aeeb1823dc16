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

/* iova_map_find must agree with the model: the mapping holding x, seen from
 * a block start at or after the mapping's start and at or before x. */
static void check_find(const struct iova_map *m, const struct model *md, uint64_t x)
{
	struct iova_mapping f;
	const struct iova_mapping *e = model_lookup(md, x);
	bool hit = iova_map_find(m, x, &f);
	assert_int_equal(hit, e != NULL);
	if (!e)
		return;
	assert_true(f.start >= e->start && f.start <= x);
	assert_int_equal(f.end, e->end);
	assert_int_equal(f.phys, e->phys + (f.start - e->start));
	assert_int_equal(f.flags, e->flags);
}

/* A page-aligned address: low pages, pages around 2 MiB / 1 GiB / 512 GiB
 * block edges, around the top of the radix index (2^48) and of the space. */
static uint64_t rand_page(unsigned universe)
{
	uint64_t a = rnd() % 2 ? (rnd() % universe) << 12 : 0;	/* block-aligned half the time */
	switch (rnd() % 8) {
	case 0:
		return (1ULL << 21) * (rnd() % 8) + a;
	case 1:
		return (1ULL << 30) * (rnd() % 4) + a;
	case 2:
		return (1ULL << 39) * (rnd() % 3) + a;
	case 3:
		return (1ULL << 48) - 0x100000 + a;
	case 4:
		return (UINT64_MAX - a) & ~0xfffULL;
	default:
		return a;
	}
}

/* The property test again with page-granular mappings, as a guest makes
 * them (the radix index in use), sizes from one page to blocks of 1 GiB and
 * more, with now and then an unaligned mapping that drops the index until
 * the map empties. Every lookup goes through iova_map_find too. */
static bool run_property_pages(uint64_t seed, unsigned ops, unsigned universe)
{
	struct iova_map m;
	struct model md = { 0 };
	bool indexed_seen = false, dropped_seen = false;
	iova_map_init(&m);
	rng_state = seed;
	for (unsigned op = 0; op < ops; op++) {
		unsigned k = rnd() % 16;
		uint64_t a = rand_page(universe);
		uint64_t pages;
		switch (rnd() % 8) {
		case 0:
			pages = (rnd() % 4 + 1) << 9;		/* 2 MiB multiples */
			break;
		case 1:
			pages = (rnd() % 2 + 1) << 18;		/* 1 GiB multiples */
			break;
		case 2:
			pages = rnd() % (universe * 2ULL) + 1;
			break;
		default:
			pages = rnd() % 8 + 1;
		}
		uint64_t b = a + (pages << 12) - 1 < a ? UINT64_MAX : a + (pages << 12) - 1;
		if (k < 7) {
			uint64_t p = rnd() & ~0xfffULL;
			uint32_t f = rnd() & 7;
			if (rnd() % 400 == 0)
				b -= 1;		/* end + 1 unaligned: drops the index */
			int r1 = iova_map_insert(&m, a, b, p, f);
			int r2 = model_insert(&md, a, b, p, f);
			assert_int_equal(r1, r2);
		} else if (k < 11) {
			if (rnd() % 64 == 0) {
				a = 0;
				b = UINT64_MAX;
			} else if (md.n && rnd() % 2) {
				/* Exactly one mapping, as a strict-mode guest
				 * unmaps (iova_map_remove's fast path). */
				const struct iova_mapping *e = &md.e[rnd() % md.n];
				a = e->start;
				b = e->end;
			}
			size_t n1, n2;
			int r1 = iova_map_remove(&m, a, b, NULL, NULL, &n1);
			int r2 = model_remove(&md, a, b, &n2);
			assert_int_equal(r1, r2);
			assert_int_equal(n1, n2);
		} else {
			for (int j = 0; j < 8; j++) {
				uint64_t x = j ? rand_page(universe) + (rnd() & 0xfff) : a;
				check_find(&m, &md, x);
			}
			/* Every mapping's first and last byte. */
			for (size_t i = 0; i < md.n && i < 16; i++) {
				const struct iova_mapping *e = &md.e[rnd() % md.n];
				check_find(&m, &md, e->start);
				check_find(&m, &md, e->end);
				if (e->start)
					check_find(&m, &md, e->start - 1);
				if (e->end != UINT64_MAX)
					check_find(&m, &md, e->end + 1);
			}
		}
		indexed_seen |= iova_map_indexed(&m);
		dropped_seen |= m.pt_off;
		assert_int_equal(iova_map_count(&m), md.n);
		if (op % 32 == 0)
			assert_int_equal(iova_map_validate(&m), 0);
	}
	assert_int_equal(iova_map_validate(&m), 0);
	assert_true(indexed_seen);
	iova_map_destroy(&m);
	free(md.e);
	return dropped_seen;
}

static void test_property_pages(void **st)
{
	bool dropped = false;

	for (uint64_t seed = 1; seed <= 12; seed++)
		dropped |= run_property_pages(seed * 0xA0761D6478BD642FULL, 4000, 600);
	assert_true(dropped);	/* the fall-back to the tree was exercised too */
}

/* The radix index by hand: blocks of every size, the 2^48 edge, an
 * unaligned mapping dropping it, an emptied map taking it back. */
static void test_radix_index(void **st)
{
	struct iova_map m;
	struct iova_mapping f;
	iova_map_init(&m);
	/* 4 KiB + 2 MiB + 1 GiB + 4 KiB: one mapping of many block sizes. */
	uint64_t s = (1ULL << 30) - (1ULL << 21) - 0x1000;
	uint64_t e = (2ULL << 30) + (1ULL << 21) + 0xfff;
	assert_int_equal(iova_map_insert(&m, s, e, 0x5000, 3), 0);
	assert_true(iova_map_indexed(&m));
	assert_int_equal(iova_map_validate(&m), 0);
	assert_true(iova_map_find(&m, s, &f));
	assert_int_equal(f.start, s);
	assert_int_equal(f.phys, 0x5000);
	assert_int_equal(f.end, e);
	assert_true(iova_map_find(&m, (1ULL << 30) + 0x12345, &f));
	assert_int_equal(f.start, 1ULL << 30);	/* the whole 1 GiB block */
	assert_int_equal(f.phys, 0x5000 + (1ULL << 30) - s);
	assert_int_equal(f.flags, 3);
	assert_true(iova_map_find(&m, e, &f));
	assert_false(iova_map_find(&m, s - 1, &f));
	assert_false(iova_map_find(&m, e + 1, &f));
	/* Straddling 2^48: the index holds the lower part, the tree the rest. */
	uint64_t t = (1ULL << 48) - 0x2000;
	assert_int_equal(iova_map_insert(&m, t, t + 0x3fff, 0x100000, 1), 0);
	assert_true(iova_map_find(&m, t + 0x1fff, &f));
	assert_int_equal(f.phys, 0x101000);
	assert_true(iova_map_find(&m, t + 0x2000, &f));
	assert_int_equal(f.phys + (t + 0x2000 - f.start), 0x102000);
	assert_false(iova_map_find(&m, t + 0x4000, &f));
	assert_int_equal(iova_map_validate(&m), 0);
	/* An unaligned mapping: the index goes, answers stay right. */
	assert_int_equal(iova_map_insert(&m, 0x10, 0x20, 0x7010, 1), 0);
	assert_false(iova_map_indexed(&m));
	assert_int_equal(iova_map_validate(&m), 0);
	assert_true(iova_map_find(&m, (1ULL << 30) + 0x12345, &f));
	assert_int_equal(f.phys + ((1ULL << 30) + 0x12345 - f.start), 0x5000 + (1ULL << 30) + 0x12345 - s);
	assert_true(iova_map_find(&m, 0x18, &f));
	assert_int_equal(f.phys, 0x7010);
	/* Removing the odd one is not enough: the index returns when empty. */
	size_t n;
	assert_int_equal(iova_map_remove(&m, 0, 0xfff, NULL, NULL, &n), 0);
	assert_false(iova_map_indexed(&m));
	assert_int_equal(iova_map_remove(&m, 0, UINT64_MAX, NULL, NULL, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(iova_map_validate(&m), 0);
	/* Back in the index; the big mapping removed on its own (every block
	 * size cleared, tables freed) while another one stays. */
	assert_int_equal(iova_map_insert(&m, s, e, 0x5000, 3), 0);
	assert_int_equal(iova_map_insert(&m, 0x3000, 0x3fff, 0x9000, 2), 0);
	size_t small = m.pt_bytes;
	assert_int_equal(iova_map_remove(&m, 0x2000, 0x4fff, NULL, NULL, &n), 0);
	assert_int_equal(iova_map_insert(&m, 0x3000, 0x3fff, 0x9000, 2), 0);
	assert_true(m.pt_bytes == small);
	assert_int_equal(iova_map_remove(&m, s, e, NULL, NULL, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(iova_map_validate(&m), 0);
	assert_false(iova_map_find(&m, (1ULL << 30) + 0x12345, &f));
	assert_false(iova_map_find(&m, s, &f));
	assert_true(m.pt_bytes < small);
	assert_int_equal(iova_map_remove(&m, 0, UINT64_MAX, NULL, NULL, &n), 0);
	assert_int_equal(iova_map_insert(&m, 0x10, 0x20, 0x7010, 1), 0);
	assert_int_equal(iova_map_insert(&m, s, e, 0x5000, 3), 0);
	assert_int_equal(iova_map_insert(&m, t, t + 0x3fff, 0x100000, 1), 0);
	assert_false(iova_map_indexed(&m));
	assert_int_equal(iova_map_remove(&m, 0, 0xfff, NULL, NULL, &n), 0);
	assert_false(iova_map_indexed(&m));
	assert_int_equal(iova_map_remove(&m, 0, UINT64_MAX, NULL, NULL, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(iova_map_validate(&m), 0);
	assert_int_equal(iova_map_insert(&m, 0x3000, 0x3fff, 0x9000, 2), 0);
	assert_true(iova_map_indexed(&m));
	assert_true(iova_map_find(&m, 0x3abc, &f));
	assert_int_equal(f.phys, 0x9000);
	assert_int_equal(iova_map_remove(&m, 0x3000, 0x3fff, NULL, NULL, &n), 0);
	assert_int_equal(iova_map_validate(&m), 0);
	assert_false(iova_map_find(&m, 0x3abc, &f));
	iova_map_destroy(&m);
}

/* A guest scattering single pages over the 48-bit space: the index stops
 * at its memory budget and the tree answers from then on. */
static void test_radix_budget(void **st)
{
	struct iova_map m;
	struct iova_mapping f;
	iova_map_init(&m);
	unsigned i;
	for (i = 0; i < 8192 && !m.pt_off; i++) {
		uint64_t s = (uint64_t)i << 30;	/* one page per 1 GiB: 2 tables each */
		assert_int_equal(iova_map_insert(&m, s, s + 0xfff, s, 1), 0);
		assert_true(m.pt_bytes <= IOVA_MAP_PT_MAX_BYTES);
	}
	assert_true(m.pt_off);
	assert_false(iova_map_indexed(&m));
	assert_int_equal(iova_map_validate(&m), 0);
	assert_true(iova_map_find(&m, ((uint64_t)(i - 1) << 30) + 0x10, &f));
	assert_int_equal(f.phys, (uint64_t)(i - 1) << 30);
	iova_map_destroy(&m);
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
		cmocka_unit_test(test_property_pages),
		cmocka_unit_test(test_radix_index),
		cmocka_unit_test(test_radix_budget),
		cmocka_unit_test(test_bulk_random_order),
		cmocka_unit_test(test_foreach_sorted),
	};
	return cmocka_run_group_tests_name("iova_map", tests, NULL, NULL);
}
