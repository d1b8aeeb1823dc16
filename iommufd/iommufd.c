/* SPDX-License-Identifier: MIT */
/*
 * iommufd.c - context, errors, IOAS, HWPT, hardware info, vIOMMU objects and
 * the feature probe. See iommufd.h for the contract.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "iommufd.h"
#include "iommufd_priv.h"

struct iommufd_ctx {
	int fd;
	bool owns_fd;
};

/* ---- errors ----------------------------------------------------------- */

static __thread char last_error[256];

int iommufd__fail(int err, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (err > 0)
		err = -err;
	if (err == 0)
		err = -EIO;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	n = strlen(last_error);
	if (n < sizeof(last_error) - 1)
		snprintf(last_error + n, sizeof(last_error) - n, ": %s",
			 iommufd_strerror(err));
	return err;
}

const char *iommufd_last_error(void)
{
	return last_error;
}

const char *iommufd_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case ENOTTY:
		return "ioctl not supported by this kernel (ENOTTY)";
	case E2BIG:
		return "kernel does not know a field that is set (E2BIG)";
	case EOPNOTSUPP:
		return "value not supported by the kernel or IOMMU driver (EOPNOTSUPP)";
	case EINVAL:
		return "invalid argument (EINVAL)";
	case ENOENT:
		return "no such object ID, or nothing mapped there (ENOENT)";
	case EEXIST:
		return "IOVA range already mapped (EEXIST)";
	case EBUSY:
		return "object in use (EBUSY)";
	case EADDRINUSE:
		return "IOVA range collides with a reserved region (EADDRINUSE)";
	case ENOSPC:
		return "no free IOVA space (ENOSPC)";
	case EMSGSIZE:
		return "output array too small (EMSGSIZE)";
	case EOVERFLOW:
		return "arithmetic overflow in range (EOVERFLOW)";
	case ENOMEM:
		return "out of memory (ENOMEM)";
	case EPERM:
		return "not permitted (EPERM; e.g. no isolated MSI)";
	case ENODEV:
		return "no such device (ENODEV)";
	default: {
		const char *s = strerrordesc_np(err);
		return s ? s : "unknown error";
	}
	}
}

/* ---- context ---------------------------------------------------------- */

int iommufd_open_fd(int fd, bool take_ownership, struct iommufd_ctx **out)
{
	struct iommufd_ctx *ctx;

	if (fd < 0 || !out)
		return iommufd__fail(-EINVAL, "iommufd_open_fd fd=%d", fd);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return iommufd__fail(-ENOMEM, "iommufd_open_fd");
	ctx->fd = fd;
	ctx->owns_fd = take_ownership;
	*out = ctx;
	return 0;
}

int iommufd_open(struct iommufd_ctx **out)
{
	int fd, rc;

	fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return iommufd__fail(-errno, "open /dev/iommu");
	rc = iommufd_open_fd(fd, true, out);
	if (rc)
		close(fd);
	return rc;
}

void iommufd_close(struct iommufd_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->owns_fd)
		close(ctx->fd);
	free(ctx);
}

int iommufd_fd(const struct iommufd_ctx *ctx)
{
	return ctx->fd;
}

/* One ioctl; 0 or -errno (EINTR retried). */
static int xioctl(int fd, unsigned long cmd, void *arg)
{
	int rc;

	do
		rc = ioctl(fd, cmd, arg);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : 0;
}

int iommufd__ioctl(int fd, unsigned long cmd, void *arg)
{
	return xioctl(fd, cmd, arg);
}

int iommufd_destroy(struct iommufd_ctx *ctx, uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };
	int rc = xioctl(ctx->fd, IOMMU_DESTROY, &d);

	return rc ? iommufd__fail(rc, "IOMMU_DESTROY id=%u", id) : 0;
}

/* ---- IOAS ------------------------------------------------------------- */

int iommufd_ioas_alloc(struct iommufd_ctx *ctx, uint32_t *ioas_id)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	int rc = xioctl(ctx->fd, IOMMU_IOAS_ALLOC, &a);

	if (rc)
		return iommufd__fail(rc, "IOMMU_IOAS_ALLOC");
	*ioas_id = a.out_ioas_id;
	return 0;
}

static int ioas_map(struct iommufd_ctx *ctx, uint32_t ioas_id, void *va,
		    uint64_t len, uint32_t flags, uint64_t *iova)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = flags,
		.ioas_id = ioas_id,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = *iova,
	};
	int rc;

	if (flags & ~(uint32_t)(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMUFD_PROT_RW))
		return iommufd__fail(-EINVAL, "IOMMU_IOAS_MAP flags=%#x", flags);
	rc = xioctl(ctx->fd, IOMMU_IOAS_MAP, &m);
	if (rc) {
		if (flags & IOMMU_IOAS_MAP_FIXED_IOVA)
			return iommufd__fail(rc,
				"IOMMU_IOAS_MAP ioas=%u iova=%#llx len=%#llx va=%p",
				ioas_id, (unsigned long long)*iova,
				(unsigned long long)len, va);
		return iommufd__fail(rc,
			"IOMMU_IOAS_MAP ioas=%u (auto iova) len=%#llx va=%p",
			ioas_id, (unsigned long long)len, va);
	}
	*iova = m.iova;
	return 0;
}

int iommufd_ioas_map_fixed(struct iommufd_ctx *ctx, uint32_t ioas_id,
			   void *va, uint64_t len, uint64_t iova,
			   uint32_t prot)
{
	return ioas_map(ctx, ioas_id, va, len,
			prot | IOMMU_IOAS_MAP_FIXED_IOVA, &iova);
}

int iommufd_ioas_map(struct iommufd_ctx *ctx, uint32_t ioas_id, void *va,
		     uint64_t len, uint32_t prot, uint64_t *iova)
{
	uint64_t got = 0;
	int rc = ioas_map(ctx, ioas_id, va, len, prot, &got);

	if (!rc)
		*iova = got;
	return rc;
}

int iommufd_ioas_unmap(struct iommufd_ctx *ctx, uint32_t ioas_id,
		       uint64_t iova, uint64_t len, uint64_t *unmapped)
{
	struct iommu_ioas_unmap u = {
		.size = sizeof(u),
		.ioas_id = ioas_id,
		.iova = iova,
		.length = len,
	};
	int rc = xioctl(ctx->fd, IOMMU_IOAS_UNMAP, &u);

	if (rc)
		return iommufd__fail(rc,
			"IOMMU_IOAS_UNMAP ioas=%u iova=%#llx len=%#llx",
			ioas_id, (unsigned long long)iova,
			(unsigned long long)len);
	if (unmapped)
		*unmapped = u.length;
	return 0;
}

int iommufd_ioas_unmap_all(struct iommufd_ctx *ctx, uint32_t ioas_id,
			   uint64_t *unmapped)
{
	return iommufd_ioas_unmap(ctx, ioas_id, 0, UINT64_MAX, unmapped);
}

int iommufd_ioas_copy(struct iommufd_ctx *ctx, uint32_t dst_ioas,
		      uint32_t src_ioas, uint64_t src_iova, uint64_t len,
		      uint32_t prot, bool fixed, uint64_t *dst_iova)
{
	struct iommu_ioas_copy c = {
		.size = sizeof(c),
		.flags = (prot & IOMMUFD_PROT_RW) |
			 (fixed ? IOMMU_IOAS_MAP_FIXED_IOVA : 0),
		.dst_ioas_id = dst_ioas,
		.src_ioas_id = src_ioas,
		.length = len,
		.dst_iova = fixed ? *dst_iova : 0,
		.src_iova = src_iova,
	};
	int rc = xioctl(ctx->fd, IOMMU_IOAS_COPY, &c);

	if (rc)
		return iommufd__fail(rc,
			"IOMMU_IOAS_COPY src=%u:%#llx dst=%u%s len=%#llx",
			src_ioas, (unsigned long long)src_iova, dst_ioas,
			fixed ? "(fixed)" : "", (unsigned long long)len);
	*dst_iova = c.dst_iova;
	return 0;
}

int iommufd_ioas_iova_ranges_buf(struct iommufd_ctx *ctx, uint32_t ioas_id,
				 struct iommu_iova_range *ranges, uint32_t *nr,
				 uint64_t *alignment)
{
	struct iommu_ioas_iova_ranges r = {
		.size = sizeof(r),
		.ioas_id = ioas_id,
		.num_iovas = *nr,
		.allowed_iovas = (uintptr_t)ranges,
	};
	int rc = xioctl(ctx->fd, IOMMU_IOAS_IOVA_RANGES, &r);

	if (rc == -EMSGSIZE) {
		unsigned room = *nr;

		*nr = r.num_iovas;
		return iommufd__fail(rc,
			"IOMMU_IOAS_IOVA_RANGES ioas=%u: room for %u, need %u",
			ioas_id, room, (unsigned)r.num_iovas);
	}
	if (rc)
		return iommufd__fail(rc, "IOMMU_IOAS_IOVA_RANGES ioas=%u",
				     ioas_id);
	*nr = r.num_iovas;
	if (alignment)
		*alignment = r.out_iova_alignment;
	return 0;
}

int iommufd_ioas_iova_ranges(struct iommufd_ctx *ctx, uint32_t ioas_id,
			     struct iommu_iova_range **ranges, uint32_t *nr,
			     uint64_t *alignment)
{
	struct iommu_iova_range *buf = NULL;
	uint32_t cap = 0, n;
	int rc, tries;

	/*
	 * Ask with the current capacity; on EMSGSIZE the kernel tells the
	 * count it needs. The ranges can change between the calls (a device
	 * attaching), hence the loop.
	 */
	for (tries = 0; tries < 8; tries++) {
		n = cap;
		rc = iommufd_ioas_iova_ranges_buf(ctx, ioas_id, buf, &n,
						  alignment);
		if (rc == 0) {
			if (n == 0) {
				free(buf);
				buf = NULL;
			}
			*ranges = buf;
			*nr = n;
			return 0;
		}
		if (rc != -EMSGSIZE)
			break;
		free(buf);
		cap = n;
		buf = calloc(cap, sizeof(*buf));
		if (!buf)
			return iommufd__fail(-ENOMEM,
					     "IOMMU_IOAS_IOVA_RANGES ioas=%u",
					     ioas_id);
	}
	free(buf);
	return rc;
}

int iommufd_ioas_allow_iovas(struct iommufd_ctx *ctx, uint32_t ioas_id,
			     const struct iommu_iova_range *ranges,
			     uint32_t nr)
{
	struct iommu_ioas_allow_iovas a = {
		.size = sizeof(a),
		.ioas_id = ioas_id,
		.num_iovas = nr,
		.allowed_iovas = (uintptr_t)ranges,
	};
	int rc = xioctl(ctx->fd, IOMMU_IOAS_ALLOW_IOVAS, &a);

	if (rc)
		return iommufd__fail(rc,
			"IOMMU_IOAS_ALLOW_IOVAS ioas=%u nr=%u%s%llx-%llx",
			ioas_id, nr, nr ? " first=" : "",
			nr ? (unsigned long long)ranges[0].start : 0ULL,
			nr ? (unsigned long long)ranges[0].last : 0ULL);
	return 0;
}

static int option(struct iommufd_ctx *ctx, uint16_t op, uint32_t opt,
		  uint32_t object_id, uint64_t *val)
{
	struct iommu_option o = {
		.size = sizeof(o),
		.option_id = opt,
		.op = op,
		.object_id = object_id,
		.val64 = *val,
	};
	int rc = xioctl(ctx->fd, IOMMU_OPTION, &o);

	if (rc)
		return iommufd__fail(rc, "IOMMU_OPTION %s option=%u object=%u",
				     op == IOMMU_OPTION_OP_GET ? "get" : "set",
				     opt, object_id);
	*val = o.val64;
	return 0;
}

int iommufd_option_get(struct iommufd_ctx *ctx, uint32_t opt,
		       uint32_t object_id, uint64_t *val)
{
	uint64_t v = 0;
	int rc = option(ctx, IOMMU_OPTION_OP_GET, opt, object_id, &v);

	if (!rc)
		*val = v;
	return rc;
}

int iommufd_option_set(struct iommufd_ctx *ctx, uint32_t opt,
		       uint32_t object_id, uint64_t val)
{
	return option(ctx, IOMMU_OPTION_OP_SET, opt, object_id, &val);
}

/* ---- HWPT and hardware info ------------------------------------------- */

static int hwpt_alloc(struct iommufd_ctx *ctx, uint32_t dev_id,
		      uint32_t pt_id, uint32_t flags, uint32_t data_type,
		      const void *data, uint32_t data_len, uint32_t *hwpt_id)
{
	struct iommu_hwpt_alloc a = {
		.size = sizeof(a),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
		.data_type = data_type,
		.data_len = data_len,
		.data_uptr = (uintptr_t)data,
	};
	int rc = xioctl(ctx->fd, IOMMU_HWPT_ALLOC, &a);

	if (rc)
		return iommufd__fail(rc,
			"IOMMU_HWPT_ALLOC dev=%u pt=%u flags=%#x data_type=%u",
			dev_id, pt_id, flags, data_type);
	*hwpt_id = a.out_hwpt_id;
	return 0;
}

int iommufd_hwpt_alloc(struct iommufd_ctx *ctx, uint32_t dev_id,
		       uint32_t pt_id, uint32_t flags, uint32_t *hwpt_id)
{
	return hwpt_alloc(ctx, dev_id, pt_id, flags, IOMMU_HWPT_DATA_NONE,
			  NULL, 0, hwpt_id);
}

int iommufd_hwpt_alloc_nested(struct iommufd_ctx *ctx, uint32_t dev_id,
			      uint32_t parent_id, uint32_t flags,
			      uint32_t data_type, const void *data,
			      uint32_t data_len, uint32_t *hwpt_id)
{
	return hwpt_alloc(ctx, dev_id, parent_id, flags, data_type, data,
			  data_len, hwpt_id);
}

int iommufd_hwpt_invalidate(struct iommufd_ctx *ctx, uint32_t hwpt_id,
			    uint32_t data_type, const void *entries,
			    uint32_t entry_len, uint32_t *entry_num)
{
	struct iommu_hwpt_invalidate inv = {
		.size = sizeof(inv),
		.hwpt_id = hwpt_id,
		.data_uptr = (uintptr_t)entries,
		.data_type = data_type,
		.entry_len = entry_len,
		.entry_num = *entry_num,
	};
	int rc = xioctl(ctx->fd, IOMMU_HWPT_INVALIDATE, &inv);

	/* The kernel reports how many it handled; a call it refused before
	 * looking at the array (no such ioctl, a bad argument) leaves our
	 * count, which must not read as "all handled". */
	if (rc && inv.entry_num == *entry_num)
		inv.entry_num = 0;
	*entry_num = inv.entry_num;
	if (rc)
		return iommufd__fail(rc,
			"IOMMU_HWPT_INVALIDATE hwpt=%u type=%u handled=%u",
			hwpt_id, data_type, inv.entry_num);
	return 0;
}

int iommufd_get_hw_info(struct iommufd_ctx *ctx, uint32_t dev_id, void *buf,
			uint32_t buf_len, struct iommufd_hw_info *info)
{
	struct iommu_hw_info h = {
		.size = sizeof(h),
		.dev_id = dev_id,
		.data_len = buf_len,
		.data_uptr = (uintptr_t)buf,
	};
	int rc = xioctl(ctx->fd, IOMMU_GET_HW_INFO, &h);

	if (rc)
		return iommufd__fail(rc, "IOMMU_GET_HW_INFO dev=%u", dev_id);
	info->type = h.out_data_type;
	info->data_len = h.data_len;
	info->capabilities = h.out_capabilities;
	info->max_pasid_log2 = h.out_max_pasid_log2;
	return 0;
}

/* ---- vIOMMU / vDEVICE / vEVENTQ --------------------------------------- */

/*
 * IOMMU_VIOMMU_ALLOC's argument in upstream's full layout, whatever the
 * system header declares: the first version had 24 bytes (no driver data);
 * a kernel that knows only those takes the longer struct while its tail is
 * zero and refuses driver data with E2BIG, which is then the answer.
 */
struct viommu_alloc_arg {
	uint32_t size, flags, type, dev_id, hwpt_id, out_viommu_id;
	uint32_t data_len, reserved;
	uint64_t data_uptr;
};
_Static_assert(sizeof(struct viommu_alloc_arg) == 40, "IOMMU_VIOMMU_ALLOC layout");

int iommufd_viommu_alloc(struct iommufd_ctx *ctx, uint32_t dev_id,
			 uint32_t hwpt_id, uint32_t type, const void *data,
			 uint32_t data_len, uint32_t *viommu_id)
{
	struct viommu_alloc_arg a = {
		.size = sizeof(a),
		.type = type,
		.dev_id = dev_id,
		.hwpt_id = hwpt_id,
		.data_len = data_len,
		.data_uptr = (uintptr_t)data,
	};
	int rc;

	rc = xioctl(ctx->fd, IOMMU_VIOMMU_ALLOC, &a);
	if (rc)
		return iommufd__fail(rc,
			"IOMMU_VIOMMU_ALLOC dev=%u hwpt=%u type=%u", dev_id,
			hwpt_id, type);
	*viommu_id = a.out_viommu_id;
	return 0;
}

int iommufd_vdevice_alloc(struct iommufd_ctx *ctx, uint32_t viommu_id,
			  uint32_t dev_id, uint64_t virt_id,
			  uint32_t *vdevice_id)
{
	struct iommu_vdevice_alloc a = {
		.size = sizeof(a),
		.viommu_id = viommu_id,
		.dev_id = dev_id,
		.virt_id = virt_id,
	};
	int rc = xioctl(ctx->fd, IOMMU_VDEVICE_ALLOC, &a);

	if (rc)
		return iommufd__fail(rc,
			"IOMMU_VDEVICE_ALLOC viommu=%u dev=%u virt_id=%#llx",
			viommu_id, dev_id, (unsigned long long)virt_id);
	*vdevice_id = a.out_vdevice_id;
	return 0;
}

int iommufd_veventq_alloc(struct iommufd_ctx *ctx, uint32_t viommu_id,
			  uint32_t type, uint32_t depth, uint32_t *veventq_id,
			  int *fd)
{
	struct iommu_veventq_alloc a = {
		.size = sizeof(a),
		.viommu_id = viommu_id,
		.type = type,
		.veventq_depth = depth,
	};
	int rc = xioctl(ctx->fd, IOMMU_VEVENTQ_ALLOC, &a);

	if (rc)
		return iommufd__fail(rc,
			"IOMMU_VEVENTQ_ALLOC viommu=%u type=%u depth=%u",
			viommu_id, type, depth);
	*veventq_id = a.out_veventq_id;
	*fd = (int)a.out_veventq_fd;
	return 0;
}

/* ---- feature probe ---------------------------------------------------- */

int iommufd_probe_ioctl(struct iommufd_ctx *ctx, unsigned long cmd)
{
	/*
	 * Every iommufd argument starts with a u32 size. Size 0 is below any
	 * command's minimum, so a kernel that knows the command answers
	 * EINVAL without acting; one that does not answers ENOTTY.
	 */
	uint64_t zero = 0;
	int rc = xioctl(ctx->fd, cmd, &zero);

	if (rc == -ENOTTY)
		return 0;
	if (rc == 0 || rc == -EINVAL || rc == -EOPNOTSUPP || rc == -E2BIG ||
	    rc == -EFAULT)
		return 1;
	return iommufd__fail(rc, "probe ioctl %#lx", cmd);
}

int iommufd_probe_features(struct iommufd_ctx *ctx,
			   struct iommufd_features *f)
{
	static const struct {
		unsigned long cmd;
		size_t off;
	} probes[] = {
		{ IOMMU_VIOMMU_ALLOC, offsetof(struct iommufd_features, viommu) },
		{ IOMMU_VDEVICE_ALLOC, offsetof(struct iommufd_features, vdevice) },
		{ IOMMU_VEVENTQ_ALLOC, offsetof(struct iommufd_features, veventq) },
		{ IOMMU_IOAS_MAP_FILE, offsetof(struct iommufd_features, ioas_map_file) },
		{ IOMMU_HWPT_INVALIDATE, offsetof(struct iommufd_features, hwpt_invalidate) },
		{ IOMMU_FAULT_QUEUE_ALLOC, offsetof(struct iommufd_features, fault_queue) },
	};
	struct iommufd_features r = { 0 };
	size_t i;

	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		int rc = iommufd_probe_ioctl(ctx, probes[i].cmd);

		if (rc < 0)
			return rc;
		*(bool *)((char *)&r + probes[i].off) = rc == 1;
	}
	*f = r;
	return 0;
}

void iommufd_features_format(const struct iommufd_features *f, char *buf,
			     size_t len)
{
	snprintf(buf, len,
		 "iommufd: vIOMMU %s, vDEVICE %s, vEVENTQ %s, IOAS_MAP_FILE %s, "
		 "HWPT_INVALIDATE %s, FAULT_QUEUE %s%s",
		 f->viommu ? "yes" : "no", f->vdevice ? "yes" : "no",
		 f->veventq ? "yes" : "no", f->ioas_map_file ? "yes" : "no",
		 f->hwpt_invalidate ? "yes" : "no",
		 f->fault_queue ? "yes" : "no",
		 f->viommu ? "" : " (no vIOMMU: using the IOAS path)");
}

bool iommufd_features_report(const struct iommufd_features *f, FILE *out)
{
	static atomic_flag reported = ATOMIC_FLAG_INIT;
	char line[256];

	if (atomic_flag_test_and_set(&reported))
		return false;
	iommufd_features_format(f, line, sizeof(line));
	fprintf(out, "%s\n", line);
	return true;
}
