/* VFIO cdev passthrough (vfio.c). vfio_device_create() and the stats hook
 * are declared in devices.h; this header has what tests need. */
#ifndef VMM_VFIO_H
#define VMM_VFIO_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The iommufd character device (tests point it elsewhere to show the
 * "kernel without iommufd" message). Default "/dev/iommu". */
extern const char *vfio_iommufd_path;

/* Counters of every passthrough device and of the virtio-iommu's iommufd
 * backend (--stats). */
void vfio_print_stats(FILE *f);

/* Close the VMM's iommufd context if no device uses it (tests). */
void vfio_host_release(void);

/* How a config-space byte of a passthrough function is served: from the
 * device's config region (vfio-pci filters it further), from our image of
 * it (cfg[] with its wmask[]), or as zero. */
enum vfio_cfg_kind { VFIO_CFG_PASS = 0, VFIO_CFG_EMUL, VFIO_CFG_ZERO };

/* The extended capabilities (0x100 up) the guest sees, from `phys`, the
 * function's config space as VFIO shows it (`size` bytes, 256 or 4096).
 * Each one kept stays at its offset, its body passed through and its
 * header ours, re-linked past the ones hidden: SR-IOV, ARI, Resizable BAR
 * (PF and VF), ATS, PRI, PASID. If the first is hidden, 0x100 holds an
 * empty header (ID 0) that points at the first one kept. Fills cfg[] and
 * kind[] (4096 each) from 0x100 up; returns the number kept. */
unsigned vfio_ext_caps(const uint8_t *phys, unsigned size, uint8_t *cfg, uint8_t *kind);

/* Why the device whose sysfs directory is devdir cannot be passed
 * through, if another device of its IOMMU group is on a host driver:
 * "its IOMMU group G also holds BDF, bound to DRIVER" into buf, return 1;
 * 0 if no such device (or no group to look at). */
int vfio_group_conflict(const char *devdir, char *buf, size_t n);

#endif
