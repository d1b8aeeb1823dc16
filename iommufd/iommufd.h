/* SPDX-License-Identifier: MIT */
/*
 * iommufd.h - a small C library over Linux iommufd (/dev/iommu) and the VFIO
 * device cdev (/dev/vfio/devices/vfioN).
 *
 * Contract
 * --------
 * - Every function returning int returns 0 on success or a negative errno on
 *   failure (the errno the kernel gave, or -EINVAL/-ENOMEM for problems found
 *   in userspace). Output parameters are written only on success, except
 *   where a function documents otherwise.
 * - On failure the library also records a one-line, human readable
 *   description of what failed ("IOMMU_IOAS_MAP ioas=3 iova=0x1000000
 *   len=0x2000: File exists"), retrievable with iommufd_last_error(). The
 *   string is thread-local and overwritten by the next failure in the same
 *   thread; successful calls leave it unchanged.
 * - The library never prints, except iommufd_features_report() which prints
 *   to the stream it is given.
 * - Object IDs are the kernel's u32 iommufd object IDs. 0 is never a valid ID.
 * - A struct iommufd_ctx may be shared between threads: the library keeps no
 *   mutable state in it, every call is one or a few ioctls on its fd.
 * - Kernel errno conventions (from the iommufd uAPI): ENOTTY = the ioctl does
 *   not exist in this kernel; E2BIG = a field the kernel does not know is set;
 *   EOPNOTSUPP = a known field has an unsupported value; EINVAL = a bad value;
 *   ENOENT = unknown object ID or nothing at that IOVA; EEXIST = the IOVA
 *   range is in use; EBUSY = the object is still referenced; EADDRINUSE = an
 *   IOVA range collides with a reserved region.
 *
 * Built against the Linux 6.12 uAPI; calls that 6.12 lacks (vIOMMU, vDEVICE,
 * vEVENTQ) are wrapped with upstream's ABI (see iommufd_compat.h) and return
 * -ENOTTY on a kernel without them. Use iommufd_probe_features() first.
 */
#ifndef IOMMUFD_LIB_H
#define IOMMUFD_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/iommufd.h>
#include "iommufd_compat.h"

#ifdef __cplusplus
extern "C" {
#endif

struct iommufd_ctx;

/* ---- errors ----------------------------------------------------------- */

/* Message for a negative (or positive) errno, with iommufd's meanings. */
const char *iommufd_strerror(int err);
/* Context of the last failure in this thread ("" if none yet). */
const char *iommufd_last_error(void);

/* ---- context ---------------------------------------------------------- */

/* Open /dev/iommu (O_RDWR | O_CLOEXEC). */
int iommufd_open(struct iommufd_ctx **out);
/*
 * Wrap an already open iommufd (e.g. passed in by a management layer). If
 * take_ownership, iommufd_close() closes fd; otherwise the caller keeps it.
 */
int iommufd_open_fd(int fd, bool take_ownership, struct iommufd_ctx **out);
void iommufd_close(struct iommufd_ctx *ctx);
int iommufd_fd(const struct iommufd_ctx *ctx);

/* IOMMU_DESTROY of any object (IOAS, HWPT, vIOMMU, vDEVICE, ...). */
int iommufd_destroy(struct iommufd_ctx *ctx, uint32_t id);

/* ---- IOAS ------------------------------------------------------------- */

/* Access rights of a mapping (same bits as IOMMU_IOAS_MAP_*). */
enum {
	IOMMUFD_PROT_WRITE = IOMMU_IOAS_MAP_WRITEABLE,
	IOMMUFD_PROT_READ = IOMMU_IOAS_MAP_READABLE,
	IOMMUFD_PROT_RW = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
};

int iommufd_ioas_alloc(struct iommufd_ctx *ctx, uint32_t *ioas_id);

/*
 * Map [va, va+len) at exactly iova. prot: IOMMUFD_PROT_*. iova and len must
 * be multiples of the IOAS alignment (iommufd_ioas_iova_ranges()).
 * -EEXIST if any of the range is mapped, -EINVAL if misaligned or len == 0.
 */
int iommufd_ioas_map_fixed(struct iommufd_ctx *ctx, uint32_t ioas_id,
			   void *va, uint64_t len, uint64_t iova,
			   uint32_t prot);
/* Map [va, va+len) at an IOVA the kernel chooses, returned in *iova. */
int iommufd_ioas_map(struct iommufd_ctx *ctx, uint32_t ioas_id, void *va,
		     uint64_t len, uint32_t prot, uint64_t *iova);

/*
 * Unmap every mapping inside [iova, iova+len). A mapping that straddles an
 * end of the range is not split: the call fails with -ENOENT (mappings
 * before it in the range may already be gone; *unmapped is not written).
 * -ENOENT too if nothing was mapped there. *unmapped (may be NULL) gets the
 * number of bytes unmapped.
 */
int iommufd_ioas_unmap(struct iommufd_ctx *ctx, uint32_t ioas_id,
		       uint64_t iova, uint64_t len, uint64_t *unmapped);
/* Unmap everything; succeeds (with *unmapped = 0) on an empty IOAS. */
int iommufd_ioas_unmap_all(struct iommufd_ctx *ctx, uint32_t ioas_id,
			   uint64_t *unmapped);

/*
 * Copy the mapping at [src_iova, src_iova+len) of src_ioas (which must match
 * one earlier map exactly) into dst_ioas without pinning again. If
 * fixed, *dst_iova is the input IOVA; otherwise the kernel chooses and
 * writes it to *dst_iova.
 */
int iommufd_ioas_copy(struct iommufd_ctx *ctx, uint32_t dst_ioas,
		      uint32_t src_ioas, uint64_t src_iova, uint64_t len,
		      uint32_t prot, bool fixed, uint64_t *dst_iova);

/*
 * The usable IOVA ranges of an IOAS (they narrow as devices attach).
 * Allocates *ranges with malloc (caller frees; NULL when *nr == 0) and
 * handles the kernel's "array too small" (EMSGSIZE) retry. *alignment (may
 * be NULL) gets the minimum IOVA/length alignment for map and copy.
 */
int iommufd_ioas_iova_ranges(struct iommufd_ctx *ctx, uint32_t ioas_id,
			     struct iommu_iova_range **ranges, uint32_t *nr,
			     uint64_t *alignment);
/*
 * The same into a caller's buffer of *nr entries. On -EMSGSIZE, *nr is set
 * to the number needed (this is the one documented write on failure).
 */
int iommufd_ioas_iova_ranges_buf(struct iommufd_ctx *ctx, uint32_t ioas_id,
				 struct iommu_iova_range *ranges, uint32_t *nr,
				 uint64_t *alignment);

/*
 * Replace the IOAS's list of always-available IOVA ranges (nr == 0 clears
 * it). Kernel-chosen IOVAs then come from these; attaching a device that
 * would reserve part of them fails. -EADDRINUSE if a range is reserved now.
 */
int iommufd_ioas_allow_iovas(struct iommufd_ctx *ctx, uint32_t ioas_id,
			     const struct iommu_iova_range *ranges,
			     uint32_t nr);

/*
 * IOMMU_OPTION. option: IOMMU_OPTION_RLIMIT_MODE (object_id 0) or
 * IOMMU_OPTION_HUGE_PAGES (object_id = an IOAS).
 */
int iommufd_option_get(struct iommufd_ctx *ctx, uint32_t option,
		       uint32_t object_id, uint64_t *val);
int iommufd_option_set(struct iommufd_ctx *ctx, uint32_t option,
		       uint32_t object_id, uint64_t val);

/* ---- HWPT and hardware info ------------------------------------------- */

/*
 * A kernel-managed (paging) HWPT for device dev_id holding the mappings of
 * IOAS pt_id. flags: IOMMU_HWPT_ALLOC_NEST_PARENT, _DIRTY_TRACKING.
 */
int iommufd_hwpt_alloc(struct iommufd_ctx *ctx, uint32_t dev_id,
		       uint32_t pt_id, uint32_t flags, uint32_t *hwpt_id);
/*
 * A user-managed nested HWPT (stage 1) under nesting-parent HWPT parent_id
 * (or, with vIOMMU, a vIOMMU ID). data_type: enum iommu_hwpt_data_type.
 */
int iommufd_hwpt_alloc_nested(struct iommufd_ctx *ctx, uint32_t dev_id,
			      uint32_t parent_id, uint32_t flags,
			      uint32_t data_type, const void *data,
			      uint32_t data_len, uint32_t *hwpt_id);
/*
 * IOMMU_HWPT_INVALIDATE with an array of *entry_num entries of entry_len
 * bytes; *entry_num returns how many the kernel handled (written on
 * failure too).
 */
int iommufd_hwpt_invalidate(struct iommufd_ctx *ctx, uint32_t hwpt_id,
			    uint32_t data_type, const void *entries,
			    uint32_t entry_len, uint32_t *entry_num);

struct iommufd_hw_info {
	uint32_t type;		/* enum iommu_hw_info_type */
	uint32_t data_len;	/* bytes the kernel has (may exceed the buf) */
	uint64_t capabilities;	/* enum iommufd_hw_capabilities */
	uint8_t max_pasid_log2;
};
/*
 * IOMMU_GET_HW_INFO for a bound device: driver-specific data into
 * buf[0..buf_len) (buf may be NULL with buf_len 0) plus the generic part.
 */
int iommufd_get_hw_info(struct iommufd_ctx *ctx, uint32_t dev_id, void *buf,
			uint32_t buf_len, struct iommufd_hw_info *info);

/* ---- vIOMMU / vDEVICE / vEVENTQ (upstream 6.13+; -ENOTTY on 6.12) ------ */

/*
 * A vIOMMU of type (enum iommu_viommu_type) backed by dev_id's physical
 * IOMMU on nesting-parent HWPT hwpt_id. data/data_len: driver-specific data
 * (must be NULL/0 when the header's struct has no data fields).
 */
int iommufd_viommu_alloc(struct iommufd_ctx *ctx, uint32_t dev_id,
			 uint32_t hwpt_id, uint32_t type, const void *data,
			 uint32_t data_len, uint32_t *viommu_id);
/* A vDEVICE for dev_id on viommu_id with the guest-visible ID virt_id. */
int iommufd_vdevice_alloc(struct iommufd_ctx *ctx, uint32_t viommu_id,
			  uint32_t dev_id, uint64_t virt_id,
			  uint32_t *vdevice_id);
/*
 * A vEVENTQ of type (enum iommu_veventq_type) and depth events on viommu_id.
 * *fd is readable: records of struct iommufd_vevent_header + type data. The
 * caller closes *fd first, then destroys *veventq_id (the open file holds
 * the object: IOMMU_DESTROY before the close fails with EBUSY).
 */
int iommufd_veventq_alloc(struct iommufd_ctx *ctx, uint32_t viommu_id,
			  uint32_t type, uint32_t depth, uint32_t *veventq_id,
			  int *fd);

/* ---- feature probe ---------------------------------------------------- */

/*
 * What the running kernel's iommufd offers beyond the 6.12 baseline. Each
 * flag is found by issuing the ioctl with a zero-size argument: ENOTTY
 * means the command does not exist, any other answer (EINVAL) that it does.
 * Nothing is allocated by the probe.
 */
struct iommufd_features {
	bool viommu;		/* IOMMU_VIOMMU_ALLOC */
	bool vdevice;		/* IOMMU_VDEVICE_ALLOC */
	bool veventq;		/* IOMMU_VEVENTQ_ALLOC */
	bool ioas_map_file;	/* IOMMU_IOAS_MAP_FILE */
	bool hwpt_invalidate;	/* IOMMU_HWPT_INVALIDATE (6.8) */
	bool fault_queue;	/* IOMMU_FAULT_QUEUE_ALLOC (6.11) */
};
int iommufd_probe_features(struct iommufd_ctx *ctx,
			   struct iommufd_features *f);
/* Low level: 1 = ioctl cmd exists, 0 = ENOTTY, <0 = unexpected error. */
int iommufd_probe_ioctl(struct iommufd_ctx *ctx, unsigned long cmd);
/* One line describing f, e.g. "iommufd: vIOMMU no, vDEVICE no, ...". */
void iommufd_features_format(const struct iommufd_features *f, char *buf,
			     size_t len);
/*
 * Print that line to out, only the first time it is called in the process
 * (later calls return false and print nothing).
 */
bool iommufd_features_report(const struct iommufd_features *f, FILE *out);

/* ---- VFIO device cdev ------------------------------------------------- */

/* Open a VFIO cdev, e.g. "/dev/vfio/devices/vfio0", O_RDWR | O_CLOEXEC. */
int iommufd_vfio_open(const char *path, int *devfd);
/*
 * Find the cdev of PCI device bdf ("0000:00:04.0") through sysfs
 * (/sys/bus/pci/devices/<bdf>/vfio-dev/vfioN) and write its /dev path.
 */
int iommufd_vfio_cdev_path(const char *bdf, char *path, size_t len);
/* VFIO_DEVICE_BIND_IOMMUFD: *dev_id is the device's iommufd ID. */
int iommufd_vfio_bind(struct iommufd_ctx *ctx, int devfd, uint32_t *dev_id);
/*
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT to an IOAS or HWPT (replacing any current
 * attachment). *out_pt_id (may be NULL): the HWPT actually attached (the
 * one the kernel created for an IOAS, or pt_id itself).
 */
int iommufd_vfio_attach(int devfd, uint32_t pt_id, uint32_t *out_pt_id);
/* VFIO_DEVICE_DETACH_IOMMUFD_PT: the device can do no DMA afterwards. */
int iommufd_vfio_detach(int devfd);

#ifdef __cplusplus
}
#endif

#endif /* IOMMUFD_LIB_H */
