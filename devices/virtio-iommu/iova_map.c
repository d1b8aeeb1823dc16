/* B+tree over the mappings of one domain (see iova_map.h).
 *
 * Leaves hold up to LEAF_MAX mappings sorted by start, with their starts
 * duplicated in a dense key array for the search, and are chained both ways.
 * Inner nodes hold up to INNER_MAX children; key[i] (i >= 1) is a lower
 * bound of every start in child[i] and greater than every start in
 * child[i-1]. Separators are not kept exact on removal, so a search can land
 * in a leaf whose keys are all above x: the answer is then the last mapping
 * of the previous leaf. Every node but the root is at least half full.
 *
 * Unused key slots hold UINT64_MAX so that a node is searched with a fixed,
 * branch-free binary search over 32 slots (the count is clamped to n). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "iova_map.h"

#define LEAF_MAX 32
#define LEAF_MIN (LEAF_MAX / 2)
#define INNER_MAX 32
#define INNER_MIN (INNER_MAX / 2)

/* Nodes are 64-byte aligned; the key arrays come first so that a search
 * touches as few cache lines as possible, and each 32-byte mapping sits in
 * one line. */
struct leaf {
	uint64_t key[LEAF_MAX];
	struct iova_mapping e[LEAF_MAX];
	struct leaf *prev, *next;
	unsigned n;
};

struct inner {
	/* key[0] unused; key[1..n-1] separators; key[n..INNER_MAX] padding */
	uint64_t key[INNER_MAX + 1];
	unsigned n;		/* children */
	void *child[INNER_MAX];
};

union node {
	struct leaf l;
	struct inner i;
};

#define NODE_SIZE ((sizeof(union node) + 63) & ~(size_t)63)

static void *node_new(void)
{
	void *p = aligned_alloc(64, NODE_SIZE);
	return p ? memset(p, 0, NODE_SIZE) : NULL;
}

static void *node_alloc(struct iova_map *m)
{
	if (m->nspare)
		return memset(m->spare[--m->nspare], 0, NODE_SIZE);
	return node_new();
}

static void node_free(struct iova_map *m, void *p)
{
	if (m->nspare < IOVA_MAP_SPARES)
		m->spare[m->nspare++] = p;
	else
		free(p);
}

static void pt_drop(struct iova_map *m, bool off);
static void pt_insert(struct iova_map *m, const struct iova_mapping *e);
static void pt_remove(struct iova_map *m, const struct iova_mapping *e);

void iova_map_init(struct iova_map *m)
{
	memset(m, 0, sizeof(*m));
}

static void free_subtree(void *node, unsigned h)
{
	if (h) {
		struct inner *in = node;
		for (unsigned i = 0; i < in->n; i++)
			free_subtree(in->child[i], h - 1);
	}
	free(node);
}

void iova_map_destroy(struct iova_map *m)
{
	if (m->root)
		free_subtree(m->root, m->height);
	for (unsigned i = 0; i < m->nspare; i++)
		free(m->spare[i]);
	pt_drop(m, false);
	while (m->pt_nspare)
		free(m->pt_spare[--m->pt_nspare]);
	memset(m, 0, sizeof(*m));
}

_Static_assert(LEAF_MAX == 32 && INNER_MAX == 32, "search32 assumes 32 slots");

/* How many of the 32 sorted slots k[] are <= x (branch-free). */
static inline unsigned search32(const uint64_t *k, uint64_t x)
{
	const uint64_t *b = k;
	b += b[15] <= x ? 16 : 0;
	b += b[7] <= x ? 8 : 0;
	b += b[3] <= x ? 4 : 0;
	b += b[1] <= x ? 2 : 0;
	b += b[0] <= x ? 1 : 0;
	return (unsigned)(b - k) + (b[0] <= x);
}

/* Index of the child of `in` whose range holds x. Below UINT64_MAX the
 * padding never counts, so n is only needed for that one value. */
static inline unsigned inner_pick(const struct inner *in, uint64_t x)
{
	unsigned c = search32(in->key + 1, x);
	return __builtin_expect(x == UINT64_MAX, 0) ? in->n - 1 : c;
}

/* Number of keys <= x in the leaf. */
static inline unsigned leaf_count_le(const struct leaf *l, uint64_t x)
{
	unsigned c = search32(l->key, x);
	return __builtin_expect(x == UINT64_MAX, 0) ? l->n : c;
}

static void pad_leaf(struct leaf *l)
{
	for (unsigned i = l->n; i < LEAF_MAX; i++)
		l->key[i] = UINT64_MAX;
}

static void pad_inner(struct inner *in)
{
	for (unsigned i = in->n; i <= INNER_MAX; i++)
		in->key[i] = UINT64_MAX;
}

/* Ask for every line of a node's key array at once: the binary search
 * then waits for one memory access instead of one per step. */
static inline void prefetch_keys(const void *node)
{
	const char *p = node;
	for (unsigned i = 0; i < 5; i++)
		__builtin_prefetch(p + 64 * i);
}

static inline struct leaf *find_leaf(const struct iova_map *m, uint64_t x)
{
	void *node = m->root;
	for (unsigned h = m->height; h; h--) {
		const struct inner *in = node;
		node = in->child[inner_pick(in, x)];
		prefetch_keys(node);
	}
	return node;
}

const struct iova_mapping *iova_map_lookup_le(const struct iova_map *m, uint64_t x)
{
	if (!m->root)
		return NULL;
	const struct leaf *l = find_leaf(m, x);
	unsigned c = leaf_count_le(l, x);
	if (c)
		return &l->e[c - 1];
	if (l->prev)
		return &l->prev->e[l->prev->n - 1];
	return NULL;
}

const struct iova_mapping *iova_map_lookup_ge(const struct iova_map *m, uint64_t x)
{
	if (!m->root)
		return NULL;
	const struct leaf *l = find_leaf(m, x);
	unsigned c = x ? leaf_count_le(l, x - 1) : 0;	/* keys < x */
	if (c < l->n)
		return &l->e[c];
	if (l->next)
		return &l->next->e[0];
	return NULL;
}

const struct iova_mapping *iova_map_lookup(const struct iova_map *m, uint64_t iova)
{
	const struct iova_mapping *e = iova_map_lookup_le(m, iova);
	return e && e->end >= iova ? e : NULL;
}

bool iova_map_overlaps(const struct iova_map *m, uint64_t start, uint64_t end)
{
	/* The last mapping starting at or before end intersects the range iff
	 * it ends at or after start (mappings are disjoint and sorted). */
	if (end < start)
		return false;
	const struct iova_mapping *e = iova_map_lookup_le(m, end);
	return e && e->end >= start;
}

/* ---- Radix index (see iova_map.h). ----
 *
 * Four levels of 512 entries, like an x86 page table: the root splits the
 * 48-bit space into 512 GiB blocks, then 1 GiB, 2 MiB and 4 KiB. An entry
 * is empty, a table, or a leaf for a block lying wholly inside one mapping
 * (so a 2 MiB-aligned stretch of a big mapping is one entry, not 512).
 * A leaf keeps what a translation needs in two words: w0 = phys - start of
 * the mapping (wrapping), w1 = the mapping's end with its low 12 bits
 * (always 0xfff for an expressible mapping) holding the entry type and the
 * flags. */
#define PT_BITS 9
#define PT_ENTRIES (1u << PT_BITS)
#define PT_TOP_SHIFT 39
#define PT_LIMIT (1ULL << 48)		/* the index covers IOVAs below this */
#define PT_EMPTY 0u
#define PT_TABLE 1u
#define PT_LEAF 2u
#define PT_TYPE 3u
#define PT_FLAGS_SHIFT 4
#define PT_FLAGS_MAX 0xffu

struct pt_ent {
	uint64_t w0, w1;
};

struct pt_table {
	struct pt_ent e[PT_ENTRIES];
	unsigned used;		/* non-empty entries */
};

static void pt_free_table(struct pt_table *t, unsigned shift)
{
	if (shift > 12)
		for (unsigned i = 0; i < PT_ENTRIES; i++)
			if ((t->e[i].w1 & PT_TYPE) == PT_TABLE)
				pt_free_table((struct pt_table *)(uintptr_t)t->e[i].w0, shift - PT_BITS);
	free(t);
}

/* Drop the index: lookups use the tree. off: keep it dropped until the map
 * is empty. */
static void pt_drop(struct iova_map *m, bool off)
{
	if (m->pt)
		pt_free_table(m->pt, PT_TOP_SHIFT);
	m->pt = NULL;
	m->pt_bytes = 0;
	m->pt_off = off;
}

/* A zeroed table. Tables emptied by removals (all zero already) are kept
 * for the next insert: a strict-mode guest maps and unmaps the same pages
 * over and over. */
static struct pt_table *pt_new_table(struct iova_map *m)
{
	struct pt_table *t;
	if (m->pt_bytes + sizeof(*t) > IOVA_MAP_PT_MAX_BYTES)
		return NULL;
	if (m->pt_nspare) {
		t = m->pt_spare[--m->pt_nspare];
	} else {
		t = aligned_alloc(64, (sizeof(*t) + 63) & ~(size_t)63);
		if (!t)
			return NULL;
		memset(t, 0, sizeof(*t));
	}
	m->pt_bytes += sizeof(*t);
	return t;
}

/* t is empty (every entry zero). */
static void pt_release_table(struct iova_map *m, struct pt_table *t)
{
	m->pt_bytes -= sizeof(*t);
	if (m->pt_nspare < IOVA_MAP_PT_SPARES)
		m->pt_spare[m->pt_nspare++] = t;
	else
		free(t);
}

/* The table pe (an entry of t) points to, made if pe is empty; NULL when
 * out of memory or budget. */
static struct pt_table *pt_child(struct iova_map *m, struct pt_table *t, struct pt_ent *pe)
{
	if ((pe->w1 & PT_TYPE) == PT_EMPTY) {
		struct pt_table *c = pt_new_table(m);
		if (!c)
			return NULL;
		pe->w0 = (uintptr_t)c;
		pe->w1 = PT_TABLE;
		t->used++;
	}
	return (struct pt_table *)(uintptr_t)pe->w0;
}

/* Fill [s, e] (inside t's span, a range no leaf covers yet) with leaves
 * for one mapping. -ENOMEM: out of memory or budget (the caller drops the
 * index). */
static int pt_fill(struct iova_map *m, struct pt_table *t, unsigned shift, uint64_t s,
		   uint64_t e, uint64_t w0, uint64_t w1)
{
	uint64_t size = 1ULL << shift;
	for (uint64_t x = s;;) {
		uint64_t lo = x & ~(size - 1), hi = lo + (size - 1);
		uint64_t end = e < hi ? e : hi;
		struct pt_ent *pe = &t->e[(x >> shift) & (PT_ENTRIES - 1)];
		if (x == lo && end == hi) {
			pe->w0 = w0;
			pe->w1 = w1;
			t->used++;
		} else {
			struct pt_table *c = pt_child(m, t, pe);
			if (!c)
				return -ENOMEM;
			int r = pt_fill(m, c, shift - PT_BITS, x, end, w0, w1);
			if (r)
				return r;
		}
		if (end == e)
			return 0;
		x = hi + 1;
	}
}

/* Empty [s, e] (the blocks of whole mappings), freeing tables left empty. */
static void pt_clear(struct iova_map *m, struct pt_table *t, unsigned shift, uint64_t s,
		     uint64_t e)
{
	uint64_t size = 1ULL << shift;
	for (uint64_t x = s;;) {
		uint64_t lo = x & ~(size - 1), hi = lo + (size - 1);
		uint64_t end = e < hi ? e : hi;
		struct pt_ent *pe = &t->e[(x >> shift) & (PT_ENTRIES - 1)];
		switch (pe->w1 & PT_TYPE) {
		case PT_LEAF:
			pe->w0 = pe->w1 = 0;
			t->used--;
			break;
		case PT_TABLE: {
			struct pt_table *c = (struct pt_table *)(uintptr_t)pe->w0;
			pt_clear(m, c, shift - PT_BITS, x, end);
			if (!c->used) {
				pt_release_table(m, c);
				pe->w0 = pe->w1 = 0;
				t->used--;
			}
			break;
		}
		}
		if (end == e)
			return;
		x = hi + 1;
	}
}

/* pt_fill for one 4 KiB page (what a strict-mode guest maps, one at a
 * time): straight down the four levels, no block arithmetic. */
static int pt_fill_page(struct iova_map *m, uint64_t iova, uint64_t w0, uint64_t w1)
{
	struct pt_table *t = m->pt;

	for (unsigned shift = PT_TOP_SHIFT; shift > 12; shift -= PT_BITS) {
		t = pt_child(m, t, &t->e[(iova >> shift) & (PT_ENTRIES - 1)]);
		if (!t)
			return -ENOMEM;
	}
	struct pt_ent *pe = &t->e[(iova >> 12) & (PT_ENTRIES - 1)];
	pe->w0 = w0;
	pe->w1 = w1;
	t->used++;
	return 0;
}

/* pt_clear for one 4 KiB page: down to its leaf, then release the tables
 * it leaves empty on the way back up (never the root). */
static void pt_clear_page(struct iova_map *m, uint64_t iova)
{
	struct pt_table *t = m->pt, *up[3];
	struct pt_ent *up_ent[3];
	unsigned lvl = 0;

	for (unsigned shift = PT_TOP_SHIFT; shift > 12; shift -= PT_BITS, lvl++) {
		struct pt_ent *pe = &t->e[(iova >> shift) & (PT_ENTRIES - 1)];
		if ((pe->w1 & PT_TYPE) != PT_TABLE)
			return;
		up[lvl] = t;
		up_ent[lvl] = pe;
		t = (struct pt_table *)(uintptr_t)pe->w0;
	}
	struct pt_ent *pe = &t->e[(iova >> 12) & (PT_ENTRIES - 1)];
	if ((pe->w1 & PT_TYPE) != PT_LEAF)
		return;
	pe->w0 = pe->w1 = 0;
	t->used--;
	while (lvl > 0 && !t->used) {
		lvl--;
		pt_release_table(m, t);
		up_ent[lvl]->w0 = up_ent[lvl]->w1 = 0;
		t = up[lvl];
		t->used--;
	}
}

/* A mapping was inserted: index it, or drop the index. */
static void pt_insert(struct iova_map *m, const struct iova_mapping *e)
{
	if (m->pt_off)
		return;
	if ((e->start & 0xfff) || ((e->end + 1) & 0xfff) || e->flags > PT_FLAGS_MAX) {
		pt_drop(m, true);
		return;
	}
	if (e->start >= PT_LIMIT)
		return;		/* above the index: the tree answers */
	if (!m->pt && !(m->pt = pt_new_table(m))) {
		pt_drop(m, true);
		return;
	}
	uint64_t w1 = (e->end & ~0xfffULL) | PT_LEAF | ((uint64_t)e->flags << PT_FLAGS_SHIFT);
	int r = e->end - e->start == 0xfff ?
		pt_fill_page(m, e->start, e->phys - e->start, w1) :
		pt_fill(m, m->pt, PT_TOP_SHIFT, e->start, e->end < PT_LIMIT ? e->end : PT_LIMIT - 1,
			e->phys - e->start, w1);
	if (r)
		pt_drop(m, true);
}

/* A mapping is going. */
static void pt_remove(struct iova_map *m, const struct iova_mapping *e)
{
	if (!m->pt || e->start >= PT_LIMIT)
		return;
	if (e->end - e->start == 0xfff)
		pt_clear_page(m, e->start);
	else
		pt_clear(m, m->pt, PT_TOP_SHIFT, e->start, e->end < PT_LIMIT ? e->end : PT_LIMIT - 1);
}

bool iova_map_find(const struct iova_map *m, uint64_t iova, struct iova_mapping *out)
{
	const struct pt_table *t = m->pt;
	if (t && iova < PT_LIMIT) {
		for (unsigned shift = PT_TOP_SHIFT;; shift -= PT_BITS) {
			const struct pt_ent *pe = &t->e[(iova >> shift) & (PT_ENTRIES - 1)];
			uint64_t w1 = pe->w1;
			switch (w1 & PT_TYPE) {
			case PT_TABLE:
				t = (const struct pt_table *)(uintptr_t)pe->w0;
				continue;
			case PT_LEAF:
				out->start = iova & ~((1ULL << shift) - 1);
				out->end = w1 | 0xfff;
				out->phys = out->start + pe->w0;
				out->flags = (uint32_t)(w1 >> PT_FLAGS_SHIFT) & PT_FLAGS_MAX;
				return true;
			default:
				return false;
			}
		}
	}
	const struct iova_mapping *e = iova_map_lookup(m, iova);
	if (!e)
		return false;
	*out = *e;
	return true;
}

/* Insert into the subtree; returns a new right sibling (separator in *sep)
 * when the node split. Nodes come from the spare pool filled beforehand. */
static void *ins(struct iova_map *m, void *node, unsigned h, const struct iova_mapping *e,
		 uint64_t *sep)
{
	if (h == 0) {
		struct leaf *l = node, *r = NULL, *t = l;
		unsigned pos = leaf_count_le(l, e->start);
		if (l->n == LEAF_MAX) {
			r = node_alloc(m);
			unsigned half = LEAF_MAX / 2;
			r->n = LEAF_MAX - half;
			memcpy(r->key, l->key + half, r->n * sizeof(r->key[0]));
			memcpy(r->e, l->e + half, r->n * sizeof(r->e[0]));
			l->n = half;
			r->next = l->next;
			r->prev = l;
			if (l->next)
				l->next->prev = r;
			l->next = r;
			if (pos > half) {
				t = r;
				pos -= half;
			}
		}
		memmove(t->key + pos + 1, t->key + pos, (t->n - pos) * sizeof(t->key[0]));
		memmove(t->e + pos + 1, t->e + pos, (t->n - pos) * sizeof(t->e[0]));
		t->key[pos] = e->start;
		t->e[pos] = *e;
		t->n++;
		/* Slots past n still hold the padding, unless l was split. */
		if (r) {
			pad_leaf(l);
			pad_leaf(r);
			*sep = r->key[0];
		}
		return r;
	}
	struct inner *in = node, *r = NULL, *t = in;
	unsigned i = inner_pick(in, e->start);
	uint64_t s;
	void *nc = ins(m, in->child[i], h - 1, e, &s);
	if (!nc)
		return NULL;
	unsigned pos = i + 1;
	if (in->n == INNER_MAX) {
		r = node_alloc(m);
		unsigned half = INNER_MAX / 2;
		r->n = INNER_MAX - half;
		memcpy(r->child, in->child + half, r->n * sizeof(r->child[0]));
		memcpy(r->key, in->key + half, r->n * sizeof(r->key[0]));
		*sep = r->key[0];
		in->n = half;
		if (pos > half) {
			t = r;
			pos -= half;
		}
	}
	memmove(t->child + pos + 1, t->child + pos, (t->n - pos) * sizeof(t->child[0]));
	memmove(t->key + pos + 1, t->key + pos, (t->n - pos) * sizeof(t->key[0]));
	t->child[pos] = nc;
	t->key[pos] = s;
	t->n++;
	pad_inner(in);
	if (r)
		pad_inner(r);
	return r;
}

int iova_map_insert(struct iova_map *m, uint64_t start, uint64_t end, uint64_t phys,
		    uint32_t flags)
{
	if (end < start)
		return -EINVAL;
	if (iova_map_overlaps(m, start, end))
		return -EEXIST;
	/* A split may climb to the root and add a level: height + 2 nodes. */
	while (m->nspare < m->height + 2) {
		void *p = node_new();
		if (!p)
			return -ENOMEM;
		m->spare[m->nspare++] = p;
	}
	struct iova_mapping e = { .start = start, .end = end, .phys = phys, .flags = flags };
	if (!m->root) {
		m->root = node_alloc(m);
		pad_leaf(m->root);
		m->height = 0;
	}
	uint64_t sep;
	void *r = ins(m, m->root, m->height, &e, &sep);
	if (r) {
		struct inner *nr = node_alloc(m);
		nr->n = 2;
		nr->child[0] = m->root;
		nr->child[1] = r;
		nr->key[1] = sep;
		pad_inner(nr);
		m->root = nr;
		m->height++;
	}
	m->count++;
	pt_insert(m, &e);
	return 0;
}

static void inner_remove_child(struct inner *in, unsigned i)
{
	memmove(in->child + i, in->child + i + 1, (in->n - i - 1) * sizeof(in->child[0]));
	memmove(in->key + i, in->key + i + 1, (in->n - i - 1) * sizeof(in->key[0]));
	in->n--;
	pad_inner(in);
}

/* Child i of `in` (at height ch) may have dropped below half: borrow from a
 * sibling or merge with it. */
static void rebalance(struct iova_map *m, struct inner *in, unsigned i, unsigned ch)
{
	if (ch == 0) {
		struct leaf *c = in->child[i];
		if (c->n >= LEAF_MIN)
			return;
		if (i > 0) {
			struct leaf *L = in->child[i - 1];
			if (L->n > LEAF_MIN) {
				memmove(c->key + 1, c->key, c->n * sizeof(c->key[0]));
				memmove(c->e + 1, c->e, c->n * sizeof(c->e[0]));
				L->n--;
				c->key[0] = L->key[L->n];
				c->e[0] = L->e[L->n];
				c->n++;
				in->key[i] = c->key[0];
				return;
			}
			memcpy(L->key + L->n, c->key, c->n * sizeof(c->key[0]));
			memcpy(L->e + L->n, c->e, c->n * sizeof(c->e[0]));
			L->n += c->n;
			L->next = c->next;
			if (c->next)
				c->next->prev = L;
			node_free(m, c);
			inner_remove_child(in, i);
			return;
		}
		struct leaf *R = in->child[1];
		if (R->n > LEAF_MIN) {
			c->key[c->n] = R->key[0];
			c->e[c->n] = R->e[0];
			c->n++;
			R->n--;
			memmove(R->key, R->key + 1, R->n * sizeof(R->key[0]));
			memmove(R->e, R->e + 1, R->n * sizeof(R->e[0]));
			in->key[1] = R->key[0];
			return;
		}
		memcpy(c->key + c->n, R->key, R->n * sizeof(R->key[0]));
		memcpy(c->e + c->n, R->e, R->n * sizeof(R->e[0]));
		c->n += R->n;
		c->next = R->next;
		if (R->next)
			R->next->prev = c;
		node_free(m, R);
		inner_remove_child(in, 1);
		return;
	}
	struct inner *c = in->child[i];
	if (c->n >= INNER_MIN)
		return;
	if (i > 0) {
		struct inner *L = in->child[i - 1];
		if (L->n > INNER_MIN) {
			memmove(c->child + 1, c->child, c->n * sizeof(c->child[0]));
			memmove(c->key + 1, c->key, c->n * sizeof(c->key[0]));
			c->child[0] = L->child[L->n - 1];
			c->key[1] = in->key[i];
			in->key[i] = L->key[L->n - 1];
			L->n--;
			c->n++;
			return;
		}
		L->key[L->n] = in->key[i];
		for (unsigned j = 0; j < c->n; j++) {
			L->child[L->n + j] = c->child[j];
			if (j)
				L->key[L->n + j] = c->key[j];
		}
		L->n += c->n;
		node_free(m, c);
		inner_remove_child(in, i);
		return;
	}
	struct inner *R = in->child[1];
	if (R->n > INNER_MIN) {
		c->child[c->n] = R->child[0];
		c->key[c->n] = in->key[1];
		c->n++;
		in->key[1] = R->key[1];
		memmove(R->child, R->child + 1, (R->n - 1) * sizeof(R->child[0]));
		memmove(R->key, R->key + 1, (R->n - 1) * sizeof(R->key[0]));
		R->n--;
		return;
	}
	c->key[c->n] = in->key[1];
	for (unsigned j = 0; j < R->n; j++) {
		c->child[c->n + j] = R->child[j];
		if (j)
			c->key[c->n + j] = R->key[j];
	}
	c->n += R->n;
	node_free(m, R);
	inner_remove_child(in, 1);
}

static void fix_child(struct iova_map *m, struct inner *in, unsigned i, unsigned ch)
{
	rebalance(m, in, i, ch);
	/* Re-pad what may have changed: the parent, the child and both its
	 * neighbours (indexes may have shifted by a merge). */
	pad_inner(in);
	for (unsigned j = i ? i - 1 : 0; j <= i + 1 && j < in->n; j++) {
		if (ch)
			pad_inner(in->child[j]);
		else
			pad_leaf(in->child[j]);
	}
}

/* Remove the mapping starting at k (it exists). */
static void del(struct iova_map *m, void *node, unsigned h, uint64_t k)
{
	if (h == 0) {
		struct leaf *l = node;
		unsigned pos = leaf_count_le(l, k) - 1;
		l->n--;
		memmove(l->key + pos, l->key + pos + 1, (l->n - pos) * sizeof(l->key[0]));
		memmove(l->e + pos, l->e + pos + 1, (l->n - pos) * sizeof(l->e[0]));
		l->key[l->n] = UINT64_MAX;	/* the one slot freed */
		return;
	}
	struct inner *in = node;
	unsigned i = inner_pick(in, k);
	del(m, in->child[i], h - 1, k);
	fix_child(m, in, i, h - 1);
}

static void del_one(struct iova_map *m, uint64_t k)
{
	del(m, m->root, m->height, k);
	m->count--;
	while (m->height && ((struct inner *)m->root)->n == 1) {
		void *old = m->root;
		m->root = ((struct inner *)old)->child[0];
		m->height--;
		node_free(m, old);
	}
	if (m->height == 0 && ((struct leaf *)m->root)->n == 0) {
		node_free(m, m->root);
		m->root = NULL;
	}
}

int iova_map_check_remove(const struct iova_map *m, uint64_t start, uint64_t end)
{
	if (end < start)
		return -EINVAL;
	const struct iova_mapping *e;
	if (start > 0) {
		e = iova_map_lookup_le(m, start - 1);
		if (e && e->end >= start)
			return -ERANGE;
	}
	e = iova_map_lookup_le(m, end);
	if (e && e->start >= start && e->end > end)
		return -ERANGE;
	return 0;
}

static struct leaf *leftmost(const struct iova_map *m)
{
	void *node = m->root;
	for (unsigned h = m->height; h; h--)
		node = ((struct inner *)node)->child[0];
	return node;
}

static struct leaf *rightmost(const struct iova_map *m)
{
	void *node = m->root;
	for (unsigned h = m->height; h; h--) {
		struct inner *in = node;
		node = in->child[in->n - 1];
	}
	return node;
}

const struct iova_mapping *iova_map_exact(const struct iova_map *m, uint64_t start, uint64_t end)
{
	/* The last mapping starting at or before end: if it is [start, end],
	 * no other mapping meets the range (they are disjoint). */
	const struct iova_mapping *e = iova_map_lookup_le(m, end);
	return e && e->start == start && e->end == end ? e : NULL;
}

void iova_map_remove_one(struct iova_map *m, const struct iova_mapping *e)
{
	pt_remove(m, e);
	del_one(m, e->start);
	if (!m->count)
		m->pt_off = false;	/* empty: index again from here */
}

int iova_map_remove(struct iova_map *m, uint64_t start, uint64_t end, iova_map_fn fn,
		    void *opaque, size_t *removed)
{
	size_t n = 0;
	const struct iova_mapping *x = iova_map_exact(m, start, end);
	if (x) {
		/* One mapping, exactly the range (a strict-mode UNMAP). */
		if (fn)
			fn(opaque, x);
		iova_map_remove_one(m, x);
		if (removed)
			*removed = 1;
		return 0;
	}
	int r = iova_map_check_remove(m, start, end);
	if (removed)
		*removed = 0;
	if (r || !m->root)
		return r;
	const struct leaf *first = leftmost(m), *last = rightmost(m);
	if (first->key[0] >= start && last->e[last->n - 1].end <= end) {
		/* Everything goes (full-range unmap, domain teardown). */
		for (const struct leaf *l = first; l; l = l->next)
			for (unsigned i = 0; i < l->n && fn; i++)
				fn(opaque, &l->e[i]);
		n = m->count;
		pt_drop(m, false);
		free_subtree(m->root, m->height);
		m->root = NULL;
		m->height = 0;
		m->count = 0;
	} else {
		const struct iova_mapping *e;
		while ((e = iova_map_lookup_ge(m, start)) && e->start <= end) {
			uint64_t k = e->start;
			if (fn)
				fn(opaque, e);
			pt_remove(m, e);
			del_one(m, k);
			n++;
		}
		if (!m->count)
			m->pt_off = false;	/* empty: index again from here */
	}
	if (removed)
		*removed = n;
	return 0;
}

int iova_map_foreach(const struct iova_map *m,
		     int (*fn)(void *opaque, const struct iova_mapping *e), void *opaque)
{
	if (!m->root)
		return 0;
	for (const struct leaf *l = leftmost(m); l; l = l->next)
		for (unsigned i = 0; i < l->n; i++) {
			int r = fn(opaque, &l->e[i]);
			if (r)
				return r;
		}
	return 0;
}

struct vstate {
	const struct leaf *prev_leaf;
	const struct iova_mapping *prev;
	size_t count;
	unsigned leaf_depth;
	int depth_set;
};

/* lo <= every start in node < hi (hi_inf: no upper bound). */
static int validate_node(const void *node, unsigned h, bool is_root, uint64_t lo, uint64_t hi,
			 bool hi_inf, struct vstate *st)
{
	if (h == 0) {
		const struct leaf *l = node;
		if (l->n > LEAF_MAX || (!is_root && l->n < LEAF_MIN) || l->n == 0)
			return -1;
		if (l->prev != st->prev_leaf)
			return -2;
		for (unsigned i = l->n; i < LEAF_MAX; i++)
			if (l->key[i] != UINT64_MAX)
				return -13;
		if (st->prev_leaf && st->prev_leaf->next != l)
			return -3;
		for (unsigned i = 0; i < l->n; i++) {
			const struct iova_mapping *e = &l->e[i];
			if (l->key[i] != e->start || e->end < e->start)
				return -4;
			if (e->start < lo || (!hi_inf && e->start >= hi))
				return -5;
			if (st->prev && st->prev->end >= e->start)
				return -6;
			st->prev = e;
			st->count++;
		}
		st->prev_leaf = l;
		return 0;
	}
	const struct inner *in = node;
	if (in->n > INNER_MAX || in->n < (is_root ? 2u : (unsigned)INNER_MIN))
		return -7;
	for (unsigned i = in->n; i <= INNER_MAX; i++)
		if (in->key[i] != UINT64_MAX)
			return -14;
	for (unsigned i = 0; i < in->n; i++) {
		uint64_t clo = i ? in->key[i] : lo;
		uint64_t chi = i + 1 < in->n ? in->key[i + 1] : hi;
		bool cinf = i + 1 < in->n ? false : hi_inf;
		if (i && (in->key[i] < lo || (!hi_inf && in->key[i] >= hi)))
			return -8;
		if (i > 1 && in->key[i] <= in->key[i - 1])
			return -9;
		int r = validate_node(in->child[i], h - 1, false, clo, chi, cinf, st);
		if (r)
			return r;
	}
	return 0;
}

/* Every leaf of the index agrees with the tree; counts pages covered,
 * tables and their used counts. */
static int validate_pt(const struct iova_map *m, const struct pt_table *t, unsigned shift,
		       uint64_t base, uint64_t *pages, size_t *bytes)
{
	unsigned used = 0;
	*bytes += sizeof(*t);
	for (unsigned i = 0; i < PT_ENTRIES; i++) {
		const struct pt_ent *pe = &t->e[i];
		uint64_t lo = base + ((uint64_t)i << shift), hi = lo + ((1ULL << shift) - 1);
		switch (pe->w1 & PT_TYPE) {
		case PT_EMPTY:
			if (pe->w0 || pe->w1)
				return -20;
			continue;
		case PT_TABLE: {
			if (shift == 12)
				return -21;
			int r = validate_pt(m, (const struct pt_table *)(uintptr_t)pe->w0,
					    shift - PT_BITS, lo, pages, bytes);
			if (r)
				return r;
			break;
		}
		case PT_LEAF: {
			const struct iova_mapping *e = iova_map_lookup(m, lo);
			if (!e || e->end < hi || e->end != (pe->w1 | 0xfff) ||
			    e->phys - e->start != pe->w0 ||
			    e->flags != ((pe->w1 >> PT_FLAGS_SHIFT) & PT_FLAGS_MAX))
				return -22;
			*pages += 1ULL << (shift - 12);
			break;
		}
		default:
			return -23;
		}
		used++;
	}
	if (used != t->used)
		return -24;
	/* A table emptied by removals is released (the root stays). */
	return used || shift == PT_TOP_SHIFT ? 0 : -28;
}

static int count_pages_below(void *opaque, const struct iova_mapping *e)
{
	if (e->start < PT_LIMIT) {
		uint64_t end = e->end < PT_LIMIT ? e->end : PT_LIMIT - 1;
		*(uint64_t *)opaque += ((end - e->start) >> 12) + 1;
	}
	return 0;
}

static int validate_index(const struct iova_map *m)
{
	uint64_t want = 0, have = 0;
	size_t bytes = 0;
	if (m->pt_off)
		return m->pt ? -25 : 0;
	iova_map_foreach(m, count_pages_below, &want);
	if (!m->pt)
		return want ? -26 : 0;
	int r = validate_pt(m, m->pt, PT_TOP_SHIFT, 0, &have, &bytes);
	if (r)
		return r;
	return have == want && bytes == m->pt_bytes ? 0 : -27;
}

int iova_map_validate(const struct iova_map *m)
{
	struct vstate st = { 0 };
	if (!m->root)
		return m->count == 0 && m->height == 0 && !m->pt_off ? validate_index(m) : -10;
	int r = validate_node(m->root, m->height, true, 0, 0, true, &st);
	if (r)
		return r;
	if (st.prev_leaf->next)
		return -11;
	if (st.count != m->count)
		return -12;
	return validate_index(m);
}
