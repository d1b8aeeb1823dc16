/* SPDX-License-Identifier: MIT */
/* Internal helpers shared by the iommufd library's source files. */
#ifndef IOMMUFD_PRIV_H
#define IOMMUFD_PRIV_H

/* Record "<context>: <message>" as the thread's last error; returns -|err|. */
int iommufd__fail(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* ioctl() returning 0 or -errno, retrying EINTR. */
int iommufd__ioctl(int fd, unsigned long cmd, void *arg);

#endif
