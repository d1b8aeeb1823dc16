/* SPDX-License-Identifier: MIT */
/*
 * iommufd_vfio.c - VFIO device cdev binding to iommufd: open, bind,
 * attach/detach to an IOAS or HWPT. See iommufd.h for the contract.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "iommufd.h"
#include "iommufd_priv.h"

int iommufd_vfio_open(const char *path, int *devfd)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return iommufd__fail(-errno, "open %s", path);
	*devfd = fd;
	return 0;
}

int iommufd_vfio_cdev_path(const char *bdf, char *path, size_t len)
{
	char dir[256];
	struct dirent *de;
	DIR *d;
	int rc = -ENOENT;

	if (!bdf || strchr(bdf, '/'))
		return iommufd__fail(-EINVAL, "vfio cdev lookup: bad BDF");
	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	d = opendir(dir);
	if (!d)
		return iommufd__fail(-errno,
			"vfio cdev lookup %s (is it bound to vfio-pci?)", dir);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "vfio", 4) != 0)
			continue;
		if ((size_t)snprintf(path, len, "/dev/vfio/devices/%s",
				     de->d_name) >= len)
			rc = -ENAMETOOLONG;
		else
			rc = 0;
		break;
	}
	closedir(d);
	if (rc)
		return iommufd__fail(rc, "vfio cdev lookup %s", dir);
	return 0;
}

int iommufd_vfio_bind(struct iommufd_ctx *ctx, int devfd, uint32_t *dev_id)
{
	struct vfio_device_bind_iommufd b = {
		.argsz = sizeof(b),
		.iommufd = iommufd_fd(ctx),
	};
	int rc = iommufd__ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &b);

	if (rc)
		return iommufd__fail(rc, "VFIO_DEVICE_BIND_IOMMUFD devfd=%d",
				     devfd);
	*dev_id = b.out_devid;
	return 0;
}

int iommufd_vfio_attach(int devfd, uint32_t pt_id, uint32_t *out_pt_id)
{
	struct vfio_device_attach_iommufd_pt a = {
		.argsz = sizeof(a),
		.pt_id = pt_id,
	};
	int rc = iommufd__ioctl(devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);

	if (rc)
		return iommufd__fail(rc,
			"VFIO_DEVICE_ATTACH_IOMMUFD_PT devfd=%d pt=%u", devfd,
			pt_id);
	if (out_pt_id)
		*out_pt_id = a.pt_id;
	return 0;
}

int iommufd_vfio_detach(int devfd)
{
	struct vfio_device_detach_iommufd_pt d = { .argsz = sizeof(d) };
	int rc = iommufd__ioctl(devfd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d);

	if (rc)
		return iommufd__fail(rc, "VFIO_DEVICE_DETACH_IOMMUFD_PT devfd=%d",
				     devfd);
	return 0;
}
