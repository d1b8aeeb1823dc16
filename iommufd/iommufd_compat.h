/* SPDX-License-Identifier: MIT */
/*
 * iommufd_compat.h - uAPI definitions newer than the kernel headers we build
 * against (Linux 6.12).
 *
 * The vIOMMU (IOMMU_VIOMMU_ALLOC), vDEVICE (IOMMU_VDEVICE_ALLOC) and vEVENTQ
 * (IOMMU_VEVENTQ_ALLOC) objects arrived upstream after 6.12. The project's
 * kernel patches add them ABI-compatibly, so the layouts and command numbers
 * below follow upstream's include/uapi/linux/iommufd.h. Each group is only
 * defined when the system header lacks it, so a newer <linux/iommufd.h> wins.
 *
 * Layout notes (all structures start with a __u32 size, kernel checks that
 * bytes beyond what it knows are zero, so a larger struct with zeroed tail is
 * accepted by an older kernel):
 *   viommu_alloc  : size flags type dev_id hwpt_id out_viommu_id
 *                   data_len __reserved data_uptr(u64)         = 40 bytes
 *                   (data_len/data_uptr were appended after the first
 *                   version; the first 24 bytes are the 6.13 layout)
 *   vdevice_alloc : size viommu_id dev_id out_vdevice_id virt_id(u64) = 24
 *   veventq_alloc : size flags viommu_id type veventq_depth
 *                   out_veventq_id out_veventq_fd __reserved    = 32 bytes
 */
#ifndef IOMMUFD_COMPAT_H
#define IOMMUFD_COMPAT_H

#include <linux/iommufd.h>
#include <linux/types.h>

#ifndef IOMMU_IOAS_MAP_FILE
#define IOMMUFD_COMPAT_CMD_IOAS_MAP_FILE 0x8f
#define IOMMU_IOAS_MAP_FILE _IO(IOMMUFD_TYPE, IOMMUFD_COMPAT_CMD_IOAS_MAP_FILE)
#endif

#ifndef IOMMU_VIOMMU_ALLOC
#define IOMMUFD_COMPAT_CMD_VIOMMU_ALLOC 0x90

enum iommu_viommu_type {
	IOMMU_VIOMMU_TYPE_DEFAULT = 0,
	IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1,
};

struct iommu_viommu_alloc {
	__u32 size;
	__u32 flags;
	__u32 type;
	__u32 dev_id;
	__u32 hwpt_id;
	__u32 out_viommu_id;
	__u32 data_len;
	__u32 __reserved;
	__aligned_u64 data_uptr;
};
#define IOMMU_VIOMMU_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_COMPAT_CMD_VIOMMU_ALLOC)
#endif


#ifndef IOMMU_VDEVICE_ALLOC
#define IOMMUFD_COMPAT_CMD_VDEVICE_ALLOC 0x91

struct iommu_vdevice_alloc {
	__u32 size;
	__u32 viommu_id;
	__u32 dev_id;
	__u32 out_vdevice_id;
	__aligned_u64 virt_id;
};
#define IOMMU_VDEVICE_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_COMPAT_CMD_VDEVICE_ALLOC)
#endif

#ifndef IOMMU_VEVENTQ_ALLOC
#define IOMMUFD_COMPAT_CMD_VEVENTQ_ALLOC 0x93

enum iommu_veventq_flag {
	IOMMU_VEVENTQ_FLAG_LOST_EVENTS = (1U << 0),
};

/* Every record read from a vEVENTQ fd starts with this header. */
struct iommufd_vevent_header {
	__u32 flags;
	__u32 sequence;
};

enum iommu_veventq_type {
	IOMMU_VEVENTQ_TYPE_DEFAULT = 0,
	IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1,
};

struct iommu_veventq_alloc {
	__u32 size;
	__u32 flags;
	__u32 viommu_id;
	__u32 type;
	__u32 veventq_depth;
	__u32 out_veventq_id;
	__u32 out_veventq_fd;
	__u32 __reserved;
};
#define IOMMU_VEVENTQ_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_COMPAT_CMD_VEVENTQ_ALLOC)
#endif

#endif /* IOMMUFD_COMPAT_H */
