/* The IOVA map of one virtio-iommu domain: a set of non-overlapping
 * mappings [start, end] (inclusive ends, anywhere in 0..UINT64_MAX) ->
 * phys + flags, as created by MAP requests and removed by UNMAP requests.
 *
 * A B+tree keyed by start holds the mappings: ordered queries, inserts and
 * removals in O(log n) with no large memmove. Beside it, a radix index in
 * the shape of a 4-level page table (4 KiB, 2 MiB, 1 GiB and 512 GiB
 * blocks) answers "what does this IOVA translate to" for IOVAs below 2^48
 * in four dependent loads, with no search: iova_map_find(). The index is
 * kept in step by insert and remove; it is dropped (and lookups fall back
 * to the tree) while the map holds a mapping it cannot express (start or
 * end + 1 not 4 KiB-aligned, flags above 0xff) or when it would outgrow
 * IOVA_MAP_PT_MAX_BYTES, and starts again once the map is empty.
 * What a strict-mode guest does over and over, MAP and UNMAP of one 4 KiB
 * page, takes the short ways: the index entry is set or cleared by a
 * straight walk down its four levels, and removing exactly one mapping
 * costs one lookup (iova_map_exact).
 * Not thread-safe: the owner (viommu.c) serialises writers against
 * readers. */
#ifndef VIOMMU_IOVA_MAP_H
#define VIOMMU_IOVA_MAP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct iova_mapping {
	uint64_t start, end;	/* inclusive */
	uint64_t phys;		/* address that start maps to */
	uint32_t flags;		/* VIRTIO_IOMMU_MAP_F_* */
};

#define IOVA_MAP_SPARES 12
#define IOVA_MAP_PT_SPARES 4

struct iova_map {
	void *root;		/* NULL when empty */
	unsigned height;	/* 0: the root is a leaf */
	size_t count;		/* mappings */
	/* Nodes kept aside so that an insert cannot fail half-way. */
	void *spare[IOVA_MAP_SPARES];
	unsigned nspare;
	void *pt;		/* radix index root, NULL when none */
	size_t pt_bytes;	/* memory held by the index */
	bool pt_off;		/* index dropped until the map is empty */
	void *pt_spare[IOVA_MAP_PT_SPARES];	/* emptied tables kept for reuse */
	unsigned pt_nspare;
};

/* Memory the radix index of one map may use (a guest scattering single
 * pages over the 48-bit space costs up to 3 tables of 8 KiB per page). */
#define IOVA_MAP_PT_MAX_BYTES ((size_t)64 << 20)

typedef void (*iova_map_fn)(void *opaque, const struct iova_mapping *m);

void iova_map_init(struct iova_map *m);
void iova_map_destroy(struct iova_map *m);	/* frees everything; map is empty */

/* Add [start, end] -> phys. 0, -EINVAL (end < start), -EEXIST (overlaps an
 * existing mapping; nothing changed), -ENOMEM (nothing changed). */
int iova_map_insert(struct iova_map *m, uint64_t start, uint64_t end, uint64_t phys,
		    uint32_t flags);

/* Would removing [start, end] split a mapping? -ERANGE if a mapping
 * straddles start or end, -EINVAL if end < start, else 0. */
int iova_map_check_remove(const struct iova_map *m, uint64_t start, uint64_t end);

/* Remove every mapping lying wholly inside [start, end]. If a mapping
 * straddles either edge nothing is removed and -ERANGE is returned (the
 * UNMAP rule of the virtio-iommu). fn (may be NULL) sees each mapping before
 * it goes. *removed (may be NULL) gets the number removed. */
int iova_map_remove(struct iova_map *m, uint64_t start, uint64_t end, iova_map_fn fn,
		    void *opaque, size_t *removed);

/* The mapping that is exactly [start, end], or NULL: then no other mapping
 * meets the range, and removing it is removing [start, end]. */
const struct iova_mapping *iova_map_exact(const struct iova_map *m, uint64_t start, uint64_t end);

/* Remove e, a mapping of the map (as iova_map_exact or a lookup gave it). */
void iova_map_remove_one(struct iova_map *m, const struct iova_mapping *e);

/* The mapping holding iova, or NULL. The pointer is valid until the map is
 * next modified. */
const struct iova_mapping *iova_map_lookup(const struct iova_map *m, uint64_t iova);

/* Translation lookup: the mapping holding iova, through the radix index
 * when it covers iova (else the tree). *out gets the mapping from the start
 * of iova's block in the index (4 KiB page or larger block, never before
 * the mapping's start) to the mapping's end, with the matching phys: what
 * a translation needs, not necessarily the mapping's own start. */
bool iova_map_find(const struct iova_map *m, uint64_t iova, struct iova_mapping *out);

/* Is the radix index in use (tests, benchmarks)? */
static inline bool iova_map_indexed(const struct iova_map *m)
{
	return m->pt != NULL;
}

/* The mapping with the largest start <= x / the smallest start >= x. */
const struct iova_mapping *iova_map_lookup_le(const struct iova_map *m, uint64_t x);
const struct iova_mapping *iova_map_lookup_ge(const struct iova_map *m, uint64_t x);

/* Does any mapping intersect [start, end]? */
bool iova_map_overlaps(const struct iova_map *m, uint64_t start, uint64_t end);

/* Every mapping in ascending order; stops early and returns fn's value when
 * it is nonzero. */
int iova_map_foreach(const struct iova_map *m,
		     int (*fn)(void *opaque, const struct iova_mapping *e), void *opaque);

static inline size_t iova_map_count(const struct iova_map *m)
{
	return m->count;
}

/* Check the tree's invariants (tests): 0, or a negative line-ish code. */
int iova_map_validate(const struct iova_map *m);

#endif
