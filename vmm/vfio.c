/* VFIO cdev passthrough: not in this build yet (issue 4). The flag is
 * parsed so that the message can say so plainly. */
#include <errno.h>
#include <stdio.h>
#include "devices.h"

int vfio_device_create(const char *path, bool iommu)
{
	fprintf(stderr, "vmm: --device: passthrough of %s is not available in this build yet\n", path);
	return -ENOTSUP;
}
