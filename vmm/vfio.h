/* VFIO cdev passthrough (vfio.c). vfio_device_create() and the stats hook
 * are declared in devices.h; this header has what tests need. */
#ifndef VMM_VFIO_H
#define VMM_VFIO_H
#include <stdio.h>

/* The iommufd character device (tests point it elsewhere to show the
 * "kernel without iommufd" message). Default "/dev/iommu". */
extern const char *vfio_iommufd_path;

/* Counters of every passthrough device and of the virtio-iommu's iommufd
 * backend (--stats). */
void vfio_print_stats(FILE *f);

/* Close the VMM's iommufd context if no device uses it (tests). */
void vfio_host_release(void);

#endif
