/* The iommufd backend of the virtio-iommu: mirrors the guest's domains that
 * hold passthrough (VFIO cdev) endpoints onto host IOASes.
 *
 *   one guest domain        = one IOAS, created on the first attach of a
 *                             passthrough endpoint, shared by all of them, so
 *                             one guest MAP = one IOMMU_IOAS_MAP whatever the
 *                             number of devices
 *   MAP / UNMAP             = IOMMU_IOAS_MAP (FIXED_IOVA) / IOMMU_IOAS_UNMAP
 *                             ("nothing there" is success)
 *   bypass domain/unattached
 *   endpoint with bypass=1  = the shared identity IOAS (all guest RAM at
 *                             GPA = IOVA, built once by the host side)
 *   DETACH, reset, unattached
 *   endpoint with bypass=0  = the shared blocking IOAS (empty: no DMA)
 *
 * Every call into iommufd goes through struct viommu_iommufd_ops, so tests
 * can count calls with a fake; vmm/vfio.c passes the real one. */
#ifndef VIOMMU_BACKEND_IOMMUFD_H
#define VIOMMU_BACKEND_IOMMUFD_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "guest_mem.h"

struct viommu;

/* Host operations (0 or a negative errno). prot: IOMMU_IOAS_MAP_READABLE /
 * _WRITEABLE. unmap: len 0 means everything; -ENOENT when nothing was
 * there. */
struct viommu_iommufd_ops {
	int (*ioas_alloc)(void *ctx, uint32_t *ioas);
	int (*ioas_destroy)(void *ctx, uint32_t ioas);
	int (*map)(void *ctx, uint32_t ioas, void *va, uint64_t len, uint64_t iova, uint32_t prot);
	int (*unmap)(void *ctx, uint32_t ioas, uint64_t iova, uint64_t len);
	int (*attach)(void *ctx, int devfd, uint32_t ioas);
	/* The shared identity (all guest RAM) and blocking (empty) IOASes. */
	int (*identity_ioas)(void *ctx, uint32_t *ioas);
	int (*blocking_ioas)(void *ctx, uint32_t *ioas);
};

/* A passthrough endpoint as the backend sees it (owned by the caller,
 * alive as long as the viommu). */
struct viommu_iommufd_ep {
	int devfd;			/* the bound VFIO cdev */
	uint32_t endpoint;		/* its endpoint ID (BDF) */
	const char *name;		/* for messages */
	uint32_t cur_ioas;		/* what it is attached to now (0: nothing) */
};

struct viommu_iommufd_stats {
	uint64_t guest_map;		/* MAPs of the guest reaching a live domain */
	uint64_t guest_unmap;		/* UNMAPs of the guest reaching a live domain */
	uint64_t replay_map;		/* mappings replayed into a new IOAS */
	uint64_t ioas_map;		/* IOMMU_IOAS_MAP calls */
	uint64_t ioas_unmap;		/* IOMMU_IOAS_UNMAP calls */
	uint64_t unmap_nothing;		/* ... that found nothing (success) */
	uint64_t no_access;		/* MAPs without READ/WRITE (nothing to map) */
	uint64_t errors;		/* host calls that failed */
	uint64_t attach;		/* VFIO_DEVICE_ATTACH_IOMMUFD_PT calls */
	uint64_t ioas_alloc, ioas_live;	/* domain IOASes created / alive now */
	uint64_t map_ns_median, unmap_ns_median;	/* host call latency */
};

struct viommu_iommufd;

/* The backend of v (created and handed to v with viommu_set_backend on the
 * first call; later calls return the same one). NULL on ENOMEM. */
struct viommu_iommufd *viommu_iommufd_get(struct viommu *v, const struct viommu_iommufd_ops *ops,
					  void *ctx, const struct guest_mem *mem);
/* Register a passthrough endpoint behind v: viommu_add_endpoint with ep,
 * and the initial state (blocking, or identity when the config's bypass is
 * set). The host's constraints are applied by the caller afterwards
 * (viommu_iommufd_constrain), before the guest starts. 0 or a negative
 * errno. */
int viommu_iommufd_add_endpoint(struct viommu_iommufd *b, struct viommu_iommufd_ep *ep);
/* Apply a device's host IOVA constraints to v and its endpoint: `ranges`
 * are the usable IOVA ranges (inclusive, sorted) of an IOAS the device is
 * attached to, alignment the IOAS's iova_alignment. The page size mask and
 * the input range are narrowed, the holes between ranges (below the input
 * range's end) become RESV_MEM regions of the endpoint. The endpoint must be
 * registered. */
struct iommu_iova_range;
int viommu_iommufd_constrain(struct viommu *v, uint32_t endpoint,
			     const struct iommu_iova_range *ranges, unsigned n, uint64_t alignment);

void viommu_iommufd_get_stats(struct viommu_iommufd *b, struct viommu_iommufd_stats *st);
void viommu_iommufd_print_stats(struct viommu_iommufd *b, FILE *f);
/* The backend's ops table (tests drive it directly). */
extern const struct viommu_backend_ops viommu_iommufd_backend_ops;
/* Free a backend that was never handed to a viommu (tests). */
void viommu_iommufd_free(struct viommu_iommufd *b);

#endif
