/* libFuzzer target: the IOVA map (B+tree and radix index) against a brute-force model, for
 * arbitrary sequences of inserts (single and bulk, so that the tree grows
 * several levels), range removals (with the no-split rule), lookups and
 * structural checks.
 *
 * Record: op:u8 a:u16 b:u16 c:u8 (short input reads as zeroes). Addresses
 * come from a small universe, scaled and sometimes mirrored to the top of
 * the 64-bit space so that edges and collisions are frequent. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "iova_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXM 1200

static struct iova_mapping model[MAXM];
static size_t nmodel;

static uint64_t take(const uint8_t **p, size_t *n, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++) {
		uint8_t b = 0;
		if (*n) {
			b = *(*p)++;
			(*n)--;
		}
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

static uint64_t addr(uint64_t a, uint8_t mode)
{
	switch (mode & 3) {
	case 0:
		return a;
	case 1:
		return a << 12;
	case 2:
		return UINT64_MAX - a;
	default:
		return UINT64_MAX - (a << 12);
	}
}

static int m_insert(uint64_t s, uint64_t e, uint64_t p)
{
	if (e < s)
		return -EINVAL;
	for (size_t i = 0; i < nmodel; i++)
		if (model[i].start <= e && model[i].end >= s)
			return -EEXIST;
	if (nmodel == MAXM)
		return 1;	/* model full: caller skips */
	model[nmodel++] = (struct iova_mapping){ s, e, p, 0 };
	return 0;
}

static int m_remove(uint64_t s, uint64_t e, size_t *n)
{
	*n = 0;
	if (e < s)
		return -EINVAL;
	for (size_t i = 0; i < nmodel; i++)
		if (model[i].start <= e && model[i].end >= s &&
		    (model[i].start < s || model[i].end > e))
			return -ERANGE;
	for (size_t i = 0; i < nmodel;) {
		if (model[i].start >= s && model[i].end <= e) {
			model[i] = model[--nmodel];
			(*n)++;
		} else {
			i++;
		}
	}
	return 0;
}

static const struct iova_mapping *m_lookup(uint64_t x)
{
	for (size_t i = 0; i < nmodel; i++)
		if (model[i].start <= x && model[i].end >= x)
			return &model[i];
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iova_map m;
	iova_map_init(&m);
	nmodel = 0;
	for (unsigned steps = 0; size; steps++) {
		uint8_t op = take(&data, &size, 1);
		uint64_t a = take(&data, &size, 2), b = take(&data, &size, 2);
		uint8_t c = take(&data, &size, 1);
		uint64_t s = addr(a, op >> 4), e;
		if ((op >> 6) == 3 && ((op >> 4) & 3) == 1)
			e = s + ((b + 1) << 12) - 1;		/* whole pages: indexed */
		else if ((op >> 6) == 3)
			e = s < (s + b) ? s + b : UINT64_MAX;	/* forward length */
		else
			e = addr(b, op >> 4);			/* any order */
		switch (op % 6) {
		case 0:
		case 1: {
			int r2 = m_insert(s, e, a * 7);
			if (r2 == 1)
				break;
			int r1 = iova_map_insert(&m, s, e, a * 7, 0);
			if (r1 != r2)
				abort();
			break;
		}
		case 2: {
			/* Bulk: c * 4 adjacent mappings of (b % 16 + 1) units. */
			uint64_t len = b % 16 + 1, base = s;
			for (unsigned i = 0; i < c * 4u; i++) {
				uint64_t st = base + i * len, en = st + len - 1;
				if (st < base || en < st)
					break;
				int r2 = m_insert(st, en, i);
				if (r2 == 1)
					break;
				if (iova_map_insert(&m, st, en, i, 0) != r2)
					abort();
			}
			break;
		}
		case 3: {
			size_t n1, n2;
			if (c == 0xff) {
				s = 0;
				e = UINT64_MAX;
			}
			int r1 = iova_map_remove(&m, s, e, NULL, NULL, &n1);
			int r2 = m_remove(s, e, &n2);
			if (r1 != r2 || n1 != n2)
				abort();
			break;
		}
		default: {
			uint64_t xs[3] = { s, e, s + c };
			for (int i = 0; i < 3; i++) {
				const struct iova_mapping *x = iova_map_lookup(&m, xs[i]);
				const struct iova_mapping *y = m_lookup(xs[i]);
				if (!x != !y)
					abort();
				if (x && (x->start != y->start || x->end != y->end || x->phys != y->phys))
					abort();
				/* The translation lookup (radix index when in use). */
				struct iova_mapping f;
				if (iova_map_find(&m, xs[i], &f) != !!y)
					abort();
				if (y && (f.start < y->start || f.start > xs[i] || f.end != y->end ||
					  f.phys != y->phys + (f.start - y->start)))
					abort();
			}
			bool o = false;
			for (size_t i = 0; i < nmodel && e >= s; i++)
				o |= model[i].start <= e && model[i].end >= s;
			if (iova_map_overlaps(&m, s, e) != o)
				abort();
			break;
		}
		}
		if (iova_map_count(&m) != nmodel)
			abort();
		if (steps % 32 == 0 && iova_map_validate(&m))
			abort();
	}
	if (iova_map_validate(&m))
		abort();
	iova_map_destroy(&m);
	return 0;
}
