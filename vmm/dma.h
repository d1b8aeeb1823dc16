/* The address space a device's DMA goes through. Without an IOMMU a device
 * address is a guest-physical address; behind the virtio-iommu it is an IOVA
 * translated by the endpoint's domain (devices/virtio-iommu/viommu.h).
 *
 * dma_translate() turns [addr, addr + len) into host segments, checking the
 * access direction. It never returns memory outside guest RAM. */
#ifndef VMM_DMA_H
#define VMM_DMA_H
#include <stdint.h>
#include <sys/uio.h>
#include "guest_mem.h"

enum dma_access {
	DMA_READ = 1,	/* the device reads guest memory (driver->device) */
	DMA_WRITE = 2,	/* the device writes guest memory (device->driver) */
};

struct dma_space;

/* An IOMMU hook: translate one contiguous IOVA run. Returns the host address
 * for the first *run bytes of [iova, iova + len) (0 < *run <= len), or NULL
 * with *fault set to a negative errno: -EFAULT unmapped, -EPERM forbidden.
 * The hook reports the fault to the guest itself (virtio-iommu eventq). */
typedef void *(*dma_translate_fn)(struct dma_space *s, uint64_t iova, uint64_t len,
				  enum dma_access acc, uint64_t *run, int *fault);

struct dma_space {
	const struct guest_mem *mem;
	dma_translate_fn translate;	/* NULL: device addresses are GPAs */
	void *iommu;			/* owner of translate (endpoint) */
	/* Bumped by the IOMMU whenever a mapping the device may have cached
	 * disappears; users that cache host pointers (ring addresses) compare
	 * it to the value they cached under. */
	const volatile uint64_t *gen;
};

/* Translate [addr, addr + len) into at most max iovecs, appended at iov.
 * Returns the number of iovecs written, or a negative errno:
 * -EFAULT (outside RAM or unmapped), -EPERM (forbidden by the mapping),
 * -E2BIG (needs more than max segments), -EINVAL (len 0 or wrap-around). */
int dma_translate(struct dma_space *s, uint64_t addr, uint64_t len,
		  enum dma_access acc, struct iovec *iov, int max);

/* Host pointer for a range that must be contiguous on the host (ring
 * structures, small headers); NULL if it is not or cannot be translated. */
void *dma_map_contig(struct dma_space *s, uint64_t addr, uint64_t len,
		     enum dma_access acc);

static inline uint64_t dma_gen(const struct dma_space *s)
{
	return s->gen ? *s->gen : 0;
}

#endif
