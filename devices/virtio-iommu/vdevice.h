/* Host vIOMMU objects for the passthrough endpoints of a virtio-iommu.
 *
 * On a kernel whose iommufd has vIOMMU / vDEVICE / vEVENTQ (upstream 6.13+,
 * or 6.12 with kernel-patches/), each passthrough endpoint gets a vDEVICE
 * whose virt_id is the endpoint ID the guest sees (its BDF, as named by the
 * VIOT). The physical IOMMU driver then names the device by that ID in the
 * events it reports on the vIOMMU's vEVENTQ, and this module turns those
 * events into virtio-iommu fault events for the guest.
 *
 * Objects, created by viommu_hw_create() in this order and destroyed by
 * viommu_hw_destroy() in the reverse one:
 *   HWPT_PAGING (IOMMU_HWPT_ALLOC_NEST_PARENT, on the caller's IOAS)
 *   vIOMMU on it
 *   vEVENTQ on the vIOMMU (only if the vIOMMU type has events)
 *   vDEVICEs (viommu_hw_add_endpoint)
 *
 * Threads: every function may be called from any thread; a mutex inside
 * serialises them. viommu_hw_process_events() calls viommu_report_fault()
 * with that mutex held (the device model's fault queue has its own lock and
 * never calls back into this module).
 *
 * The caller keeps the iommufd context and the device model alive until
 * viommu_hw_destroy(), and destroys the viommu_hw before it closes the VFIO
 * device fds (a vDEVICE whose device went first is inert but still needs its
 * IOMMU_DESTROY, which viommu_hw_destroy() does anyway). */
#ifndef VIOMMU_VDEVICE_H
#define VIOMMU_VDEVICE_H
#include <stdint.h>

struct iommufd_ctx;
struct viommu;
struct viommu_hw;

/* vIOMMU type of the kernel's CONFIG_IOMMUFD_TEST mock driver, and the
 * vEVENTQ type it reports on (values of drivers/iommu/iommufd/iommufd_test.h,
 * repeated here so that the VMM needs no kernel-internal header). */
#define VIOMMU_HW_TYPE_SELFTEST 0xdeadbeefu
#define VIOMMU_HW_VEVENTQ_SELFTEST 0xbeefbeefu

/* Depth of the vEVENTQ (events the kernel buffers before reporting loss). */
#define VIOMMU_HW_VEVENTQ_DEPTH 64u
/* Endpoints (vDEVICEs) per viommu_hw. */
#define VIOMMU_HW_MAX_ENDPOINTS 64u

/* Create the host objects for passthrough device first_dev_id (an iommufd
 * device ID, bound to ictx) on IOAS ioas_id, with vIOMMU type viommu_type
 * (IOMMU_VIOMMU_TYPE_DEFAULT on VT-d; VIOMMU_HW_TYPE_SELFTEST for the mock).
 *
 * The kernel's features are probed first. Without vIOMMU/vDEVICE, one line
 * "vmm: virtio-iommu: kernel has no iommufd vIOMMU/vDEVICE; using the IOAS
 * path" goes to stderr (once per process) and -EOPNOTSUPP is returned: the
 * caller carries on without this module. A vIOMMU type without events (the
 * kernel says ENOTTY or EOPNOTSUPP to the vEVENTQ) is not an error: there is
 * then no event fd.
 *
 * 0 and *out, or a negative errno with nothing left behind in the kernel
 * (the iommufd library's iommufd_last_error() says what failed). */
int viommu_hw_create(struct viommu_hw **out, struct iommufd_ctx *ictx, struct viommu *v,
		     uint32_t first_dev_id, uint32_t ioas_id, uint32_t viommu_type);

/* A vDEVICE for iommufd device dev_id with virt_id = endpoint_id. -EEXIST
 * if endpoint_id or dev_id already has one (from the kernel, or found here
 * first), -ENOSPC beyond VIOMMU_HW_MAX_ENDPOINTS, or the kernel's errno. */
int viommu_hw_add_endpoint(struct viommu_hw *h, uint32_t dev_id, uint32_t endpoint_id);
/* IOMMU_DESTROY of endpoint_id's vDEVICE. -ENOENT if it has none here. */
int viommu_hw_del_endpoint(struct viommu_hw *h, uint32_t endpoint_id);

/* The vEVENTQ's fd (readable when events wait; the kernel's read never
 * blocks), or -1 when the vIOMMU type has no events. Owned by h. */
int viommu_hw_event_fd(struct viommu_hw *h);

/* Drain the vEVENTQ: every event naming one of our vDEVICEs becomes a
 * virtio-iommu fault (VIRTIO_IOMMU_FAULT_R_UNKNOWN: the mock's events carry
 * no address) for that endpoint through viommu_report_fault(); events for
 * unknown virt_ids are counted and dropped; LOST_EVENTS records are counted
 * and reported on stderr. Returns the number of faults raised (0 if there
 * is no queue or nothing waits) or a negative errno from read(). */
int viommu_hw_process_events(struct viommu_hw *h);

struct viommu_hw_stats {
	uint64_t events;	/* records with event data read */
	uint64_t faults;	/* of those, raised as virtio-iommu faults */
	uint64_t unknown;	/* event for a virt_id we have no vDEVICE for */
	uint64_t malformed;	/* truncated record or unknown queue type */
	uint64_t lost_records;	/* LOST_EVENTS headers seen */
	uint64_t lost_events;	/* events lost, from the sequence numbers */
};
void viommu_hw_get_stats(struct viommu_hw *h, struct viommu_hw_stats *st);

/* Object IDs (tests): 0 when absent. */
uint32_t viommu_hw_viommu_id(struct viommu_hw *h);
uint32_t viommu_hw_hwpt_id(struct viommu_hw *h);
uint32_t viommu_hw_veventq_id(struct viommu_hw *h);
/* The vDEVICE ID of an endpoint, 0 if none. */
uint32_t viommu_hw_vdevice_id(struct viommu_hw *h, uint32_t endpoint_id);

/* Destroy everything: vDEVICEs, vEVENTQ (fd closed first, which the kernel
 * requires), vIOMMU, HWPT; free h. NULL is a no-op. Errors from the kernel
 * (e.g. the context was closed under us) are ignored: the objects then go
 * with the context. Returns nothing; viommu_hw_destroy_rc() gives the first
 * IOMMU_DESTROY error (0 if all went). */
void viommu_hw_destroy(struct viommu_hw *h);
int viommu_hw_destroy_rc(struct viommu_hw *h);

#endif
