/* Backends of the virtio-iommu: what mirrors the guest's domains onto
 * something real. The emulated path (the VMM's own virtio devices) needs no
 * backend: it translates through the device model's IOVA maps. A backend
 * (iommufd, for passthrough endpoints) registers once per viommu and is told
 * about every domain that holds at least one of its endpoints.
 *
 * Calls are made with the viommu's lock held for writing, from the thread
 * serving the request queue. A negative errno return fails the guest request
 * with the matching status: -ENOMEM NOMEM, -EINVAL INVAL, -ERANGE RANGE,
 * -ENOENT NOENT, -EFAULT FAULT, -EOPNOTSUPP UNSUPP, anything else DEVERR.
 *
 * Address ranges are inclusive ([iova, last]) so that the whole 64-bit space
 * can be named. */
#ifndef VIOMMU_BACKEND_H
#define VIOMMU_BACKEND_H
#include <stdbool.h>
#include <stdint.h>

struct viommu_backend_ops {
	/* A domain gets its first backend endpoint: create the backend object
	 * (an IOAS; for bypass, use the identity one). *dom_priv is the
	 * backend's handle for it. Mappings the domain already holds are then
	 * replayed through map(). */
	int (*domain_create)(void *be, uint32_t domain, bool bypass, void **dom_priv);
	/* The domain ceased to exist (last endpoint detached, or reset). */
	void (*domain_destroy)(void *be, uint32_t domain, void *dom_priv);
	/* Attach endpoint (ep_priv: what viommu_add_endpoint was given) to the
	 * domain, replacing any previous attachment of that endpoint. */
	int (*attach)(void *be, uint32_t endpoint, void *ep_priv, uint32_t domain, void *dom_priv);
	/* Put the endpoint in the blocking state (no DMA), or in bypass when
	 * `bypass` (the config field says unattached endpoints bypass); if it
	 * cannot bypass, blocking instead. Nonzero: not even blocking, so it
	 * still reaches its domain's mappings. */
	int (*detach)(void *be, uint32_t endpoint, void *ep_priv, bool bypass);
	/* [iova, last] -> guest-physical gpa, flags VIRTIO_IOMMU_MAP_F_*. */
	int (*map)(void *be, uint32_t domain, void *dom_priv, uint64_t iova, uint64_t last,
		   uint64_t gpa, uint32_t flags);
	/* Remove the mappings inside [iova, last] (never splits one: the
	 * device model checked). */
	int (*unmap)(void *be, uint32_t domain, void *dom_priv, uint64_t iova, uint64_t last);
};

struct viommu;

/* Hand the viommu a backend (one per viommu). */
void viommu_set_backend(struct viommu *v, const struct viommu_backend_ops *ops, void *be);

/* The backend's constraints, applied to the config the driver reads: the
 * page size mask is intersected (the granule never shrinks), the input
 * range narrowed. Call before the guest starts. -EINVAL if the result would
 * be empty. */
int viommu_restrict(struct viommu *v, uint64_t page_size_mask, uint64_t input_start,
		    uint64_t input_end);

/* Extra reserved region of an endpoint (host holes, e.g. from
 * IOMMU_IOAS_IOVA_RANGES), reported by PROBE as RESV_MEM and refused by MAP.
 * subtype: VIRTIO_IOMMU_RESV_MEM_T_RESERVED or _MSI. */
int viommu_endpoint_add_resv(struct viommu *v, uint32_t endpoint, uint64_t start,
			     uint64_t end, uint8_t subtype);

/* A fault the backend learnt about (host vEVENTQ), forwarded to the guest
 * on the eventq. reason/flags: VIRTIO_IOMMU_FAULT_R_* / _F_*. */
void viommu_report_fault(struct viommu *v, uint8_t reason, uint32_t flags, uint32_t endpoint,
			 uint64_t address);

#endif
