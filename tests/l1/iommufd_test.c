/* SPDX-License-Identifier: MIT */
/*
 * iommufd_test - the iommufd library against the real kernel, run as root
 * inside the nested runner's L1 (kernel with CONFIG_IOMMUFD_TEST).
 *
 * Uses the kernel's selftest mock (IOMMU_TEST_CMD): IOMMU_TEST_OP_MOCK_DOMAIN
 * creates a mock device bound to the iommufd and attached to an IOAS, and
 * IOMMU_TEST_OP_MD_CHECK_MAP checks what a mock domain really maps. Then, if
 * /dev/vfio/devices/vfio0 exists, drives a real vfio-pci device.
 *
 * Output: "ok N - name" / "not ok N - name # detail" per check, then
 * "N passed, N failed, N skipped". Exit status 1 if anything failed.
 *
 * Environment: IOMMUFD_EXPECT_VIOMMU=0|1 overrides the expectation of the
 * feature probe (default: absent on a 6.12 kernel, present on 6.13+).
 * IOMMUFD_VFIO_DEV overrides the VFIO cdev path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "iommufd.h"
#include "iommufd_test.h"

#include "tap.h"

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* ---- the kernel's selftest mock --------------------------------------- */

static int test_cmd(struct iommufd_ctx *ctx, struct iommu_test_cmd *cmd)
{
	cmd->size = sizeof(*cmd);
	return ioctl(iommufd_fd(ctx), IOMMU_TEST_CMD, cmd) ? -errno : 0;
}

struct mock_dev {
	uint32_t stdev_id;	/* selftest object: destroy it to unplug */
	uint32_t hwpt_id;	/* the HWPT the attach picked */
	uint32_t idev_id;	/* the device's iommufd ID (dev_id) */
};

static int mock_dev_add(struct iommufd_ctx *ctx, uint32_t pt_id,
			struct mock_dev *md)
{
	struct iommu_test_cmd cmd = { .op = IOMMU_TEST_OP_MOCK_DOMAIN,
				      .id = pt_id };
	int rc = test_cmd(ctx, &cmd);

	if (rc)
		return rc;
	md->stdev_id = cmd.mock_domain.out_stdev_id;
	md->hwpt_id = cmd.mock_domain.out_hwpt_id;
	md->idev_id = cmd.mock_domain.out_idev_id;
	return 0;
}

static int mock_dev_replace(struct iommufd_ctx *ctx, struct mock_dev *md,
			    uint32_t pt_id)
{
	struct iommu_test_cmd cmd = { .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
				      .id = md->stdev_id,
				      .mock_domain_replace.pt_id = pt_id };
	int rc = test_cmd(ctx, &cmd);

	if (!rc)
		md->hwpt_id = cmd.mock_domain_replace.pt_id;
	return rc;
}

/* Does mock HWPT hwpt_id map [iova, iova+len) onto the pages of va? */
static int md_check_map(struct iommufd_ctx *ctx, uint32_t hwpt_id,
			uint64_t iova, void *va, uint64_t len)
{
	struct iommu_test_cmd cmd = { .op = IOMMU_TEST_OP_MD_CHECK_MAP,
				      .id = hwpt_id,
				      .check_map = { .iova = iova,
						     .length = len,
						     .uptr = (uintptr_t)va } };
	return test_cmd(ctx, &cmd);
}

static int md_check_iotlb(struct iommufd_ctx *ctx, uint32_t hwpt_id,
			  uint32_t idx, uint32_t want)
{
	struct iommu_test_cmd cmd = { .op = IOMMU_TEST_OP_MD_CHECK_IOTLB,
				      .id = hwpt_id,
				      .check_iotlb = { .id = idx,
						       .iotlb = want } };
	return test_cmd(ctx, &cmd);
}

#define SZ_4K 0x1000ULL
#define SZ_64K 0x10000ULL
#define SZ_1M 0x100000ULL
#define BUF_SIZE (2 * SZ_1M)
#define BAD_ID 0xfffff0u

/* An IOVA in the mock aperture, well clear of its edges. */
#define MOCK_IOVA ((uint64_t)MOCK_APERTURE_START + 16 * SZ_1M)

static void *buf_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	memset(p, 0x5a, len);
	return p;
}

static bool range_in(const struct iommu_iova_range *r, uint32_t nr,
		     uint64_t start, uint64_t len)
{
	for (uint32_t i = 0; i < nr; i++)
		if (start >= r[i].start && start + len - 1 <= r[i].last)
			return true;
	return false;
}

/*
 * Why MOCK_DOMAIN failed, when it is the known case: on 6.12 a mock device
 * has no fwspec, so the IOMMU core probes it with the first IOMMU that
 * registered without a fwnode. Beside a real VT-d/AMD-Vi that is the real
 * driver, the mock device ends up without an IOMMU and bind fails EINVAL.
 * (Fixed upstream by giving the mock IOMMU a fwnode; the runner's kernel
 * needs the same fix for these tests to run next to the VFIO device.)
 */
static void explain_mock_failure(void)
{
	DIR *d = opendir("/sys/class/iommu");
	struct dirent *de;
	bool real = false, mock = false;

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (strstr(de->d_name, "iommufd_selftest"))
			mock = true;
		else
			real = true;
	}
	if (d)
		closedir(d);
	if (!mock)
		note("mock IOMMU not registered: kernel without CONFIG_IOMMUFD_TEST?");
	else if (real)
		note("mock devices are probed by the real IOMMU driver (6.12 "
		     "mock has no fwnode): the kernel needs the selftest "
		     "mock-fwnode fix; mock tests cannot run beside VT-d");
	note("skipping the remaining mock tests");
}

/* ---- tests ------------------------------------------------------------ */

static void test_context(void)
{
	struct iommufd_ctx *ctx = NULL, *ctx2 = NULL;
	uint32_t ioas;
	int fd;

	if (!check_ok(iommufd_open(&ctx), "open /dev/iommu"))
		exit(1);
	check(iommufd_fd(ctx) >= 0, "context has an fd");

	fd = dup(iommufd_fd(ctx));
	check_ok(iommufd_open_fd(fd, true, &ctx2), "open_fd wraps an fd");
	check_ok(iommufd_ioas_alloc(ctx2, &ioas), "ioas_alloc on wrapped fd");
	check_ok(iommufd_destroy(ctx, ioas),
		 "object visible through the dup'ed fd's context");
	iommufd_close(ctx2);
	check(fcntl(fd, F_GETFD) < 0 && errno == EBADF,
	      "close with ownership closes the fd");

	fd = dup(iommufd_fd(ctx));
	check_ok(iommufd_open_fd(fd, false, &ctx2), "open_fd without ownership");
	iommufd_close(ctx2);
	check(fcntl(fd, F_GETFD) >= 0, "close without ownership keeps the fd");
	close(fd);

	check_err(iommufd_open_fd(-1, false, &ctx2), EINVAL, "open_fd(-1) EINVAL");
	check(strstr(iommufd_last_error(), "iommufd_open_fd") != NULL,
	      "last_error names the failed call");
	check(strstr(iommufd_strerror(-ENOTTY), "ENOTTY") != NULL &&
	      strstr(iommufd_strerror(EBUSY), "EBUSY") != NULL &&
	      iommufd_strerror(-EHOSTDOWN)[0] != 0,
	      "strerror for iommufd and generic errnos");
	iommufd_close(ctx);
}

static void test_ioas_basic(struct iommufd_ctx *ctx)
{
	struct iommu_iova_range *r = NULL, one[1];
	uint32_t ioas, ioas2, nr = 0;
	uint64_t align = 0, iova, unmapped = 0;
	void *buf = buf_alloc(BUF_SIZE);

	check_ok(iommufd_ioas_alloc(ctx, &ioas), "ioas_alloc");
	check_ok(iommufd_ioas_alloc(ctx, &ioas2), "ioas_alloc second");
	check(ioas != ioas2 && ioas && ioas2, "IOAS IDs distinct and nonzero");

	/* A fresh IOAS spans everything with no alignment constraint. */
	if (check_ok(iommufd_ioas_iova_ranges(ctx, ioas, &r, &nr, &align),
		     "iova_ranges on empty IOAS"))
		check(nr == 1 && r[0].start == 0 && r[0].last >= 0xffffffffULL &&
		      align >= 1, "empty IOAS: one full range, align %" PRIu64,
		      align);
	free(r);

	/* No mock device yet: any alignment works, kernel picks IOVA. */
	check_ok(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K, SZ_1M,
					IOMMUFD_PROT_RW),
		 "map fixed on empty IOAS");
	check_err(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K, SZ_1M + SZ_4K,
					 IOMMUFD_PROT_RW),
		  EEXIST, "overlapping fixed map EEXIST");
	check_err(iommufd_ioas_map_fixed(ctx, ioas, buf, 0, 8 * SZ_1M,
					 IOMMUFD_PROT_RW),
		  EINVAL, "zero-length map EINVAL");
	check_err(iommufd_ioas_map_fixed(ctx, BAD_ID, buf, SZ_64K, SZ_1M,
					 IOMMUFD_PROT_RW),
		  ENOENT, "map on bad IOAS ID ENOENT");
	check_err(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K, 8 * SZ_1M,
					 0x100),
		  EINVAL, "map with unknown flag EINVAL (library check)");
	iova = 0;
	check_ok(iommufd_ioas_map(ctx, ioas, buf, SZ_64K, IOMMUFD_PROT_READ,
				  &iova), "map with kernel-chosen IOVA");
	check(iova + SZ_64K <= SZ_1M || iova >= SZ_1M + SZ_64K,
	      "chosen IOVA %#" PRIx64 " does not overlap the fixed map", iova);

	check_err(iommufd_ioas_unmap(ctx, ioas, 64 * SZ_1M, SZ_64K, NULL),
		  ENOENT, "unmap of nothing ENOENT");
	check_err(iommufd_ioas_unmap(ctx, ioas, SZ_1M, SZ_4K, NULL), ENOENT,
		  "unmap splitting a mapping ENOENT");
	check_err(iommufd_ioas_unmap(ctx, BAD_ID, SZ_1M, SZ_64K, NULL), ENOENT,
		  "unmap on bad IOAS ID ENOENT");
	check_err(iommufd_ioas_unmap(ctx, ioas, SZ_1M, 0, NULL), EINVAL,
		  "unmap of zero length EINVAL");
	if (check_ok(iommufd_ioas_unmap(ctx, ioas, SZ_1M, SZ_64K, &unmapped),
		     "unmap fixed mapping"))
		check(unmapped == SZ_64K, "unmap returned length %#" PRIx64,
		      unmapped);
	check_ok(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K, SZ_1M,
					IOMMUFD_PROT_RW),
		 "map again after unmap");
	unmapped = 0;
	if (check_ok(iommufd_ioas_unmap_all(ctx, ioas, &unmapped), "unmap_all"))
		check(unmapped == 2 * SZ_64K, "unmap_all returned %#" PRIx64
		      " (both mappings)", unmapped);
	unmapped = 1;
	if (check_ok(iommufd_ioas_unmap_all(ctx, ioas, &unmapped),
		     "unmap_all on empty IOAS succeeds"))
		check(unmapped == 0, "unmap_all of nothing returns 0");

	/* copy between IOAS */
	check_ok(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K, SZ_1M,
					IOMMUFD_PROT_RW), "map source for copy");
	iova = 4 * SZ_1M;
	check_ok(iommufd_ioas_copy(ctx, ioas2, ioas, SZ_1M, SZ_64K,
				   IOMMUFD_PROT_RW, true, &iova),
		 "copy to fixed IOVA in another IOAS");
	check_err(iommufd_ioas_copy(ctx, ioas2, ioas, SZ_1M, SZ_64K,
				    IOMMUFD_PROT_RW, true, &iova),
		  EEXIST, "copy onto used IOVA EEXIST");
	iova = 0;
	check_ok(iommufd_ioas_copy(ctx, ioas2, ioas, SZ_1M, SZ_64K,
				   IOMMUFD_PROT_RW, false, &iova),
		 "copy to kernel-chosen IOVA");
	check(iova != 4 * SZ_1M, "copy chose a fresh IOVA %#" PRIx64, iova);
	check_err(iommufd_ioas_copy(ctx, ioas2, ioas, 32 * SZ_1M, SZ_64K,
				    IOMMUFD_PROT_RW, false, &iova),
		  ENOENT, "copy of unmapped source ENOENT");
	check_err(iommufd_ioas_copy(ctx, ioas2, BAD_ID, SZ_1M, SZ_64K,
				    IOMMUFD_PROT_RW, false, &iova),
		  ENOENT, "copy from bad IOAS ID ENOENT");
	unmapped = 0;
	check_ok(iommufd_ioas_unmap_all(ctx, ioas2, &unmapped),
		 "unmap copies");
	check(unmapped == 2 * SZ_64K, "both copies were mapped (%#" PRIx64 ")",
	      unmapped);

	/* allow_iovas steers the kernel's IOVA choice */
	one[0].start = 256 * SZ_1M;
	one[0].last = 260 * SZ_1M - 1;
	check_ok(iommufd_ioas_allow_iovas(ctx, ioas2, one, 1), "allow_iovas");
	iova = 0;
	if (check_ok(iommufd_ioas_map(ctx, ioas2, buf, SZ_64K, IOMMUFD_PROT_RW,
				      &iova), "auto map after allow_iovas"))
		check(iova >= one[0].start && iova + SZ_64K - 1 <= one[0].last,
		      "auto IOVA %#" PRIx64 " inside allowed range", iova);
	check_err(iommufd_ioas_allow_iovas(ctx, BAD_ID, one, 1), ENOENT,
		  "allow_iovas bad IOAS ENOENT");
	one[0].last = one[0].start - 1;
	check_err(iommufd_ioas_allow_iovas(ctx, ioas2, one, 1), EINVAL,
		  "allow_iovas with last < start EINVAL");
	check_ok(iommufd_ioas_allow_iovas(ctx, ioas2, NULL, 0),
		 "allow_iovas clear");

	/* iova_ranges buffer API: EMSGSIZE reports the needed count */
	nr = 0;
	check_err(iommufd_ioas_iova_ranges_buf(ctx, ioas, NULL, &nr, NULL),
		  EMSGSIZE, "iova_ranges_buf with no room EMSGSIZE");
	check(nr == 1, "EMSGSIZE reported needed count %u", nr);
	check_err(iommufd_ioas_iova_ranges(ctx, BAD_ID, &r, &nr, NULL), ENOENT,
		  "iova_ranges bad IOAS ENOENT");

	/* options */
	uint64_t v = 99;
	if (check_ok(iommufd_option_get(ctx, IOMMU_OPTION_HUGE_PAGES, ioas, &v),
		     "option get HUGE_PAGES"))
		check(v == 1, "HUGE_PAGES defaults to 1");
	check_ok(iommufd_option_set(ctx, IOMMU_OPTION_HUGE_PAGES, ioas2, 0),
		 "option set HUGE_PAGES=0");
	v = 99;
	if (check_ok(iommufd_option_get(ctx, IOMMU_OPTION_HUGE_PAGES, ioas2,
					&v), "option get after set"))
		check(v == 0, "HUGE_PAGES now 0");
	check_ok(iommufd_option_get(ctx, IOMMU_OPTION_RLIMIT_MODE, 0, &v),
		 "option get RLIMIT_MODE");
	check_err(iommufd_option_get(ctx, 77, 0, &v), EOPNOTSUPP,
		  "unknown option EOPNOTSUPP");
	check_err(iommufd_option_get(ctx, IOMMU_OPTION_HUGE_PAGES, BAD_ID, &v),
		  ENOENT, "option on bad object ENOENT");

	check_ok(iommufd_destroy(ctx, ioas2), "destroy IOAS with mappings");
	check_ok(iommufd_destroy(ctx, ioas), "destroy IOAS");
	check_err(iommufd_destroy(ctx, ioas), ENOENT, "destroy twice ENOENT");
	check_err(iommufd_destroy(ctx, BAD_ID), ENOENT, "destroy bad ID ENOENT");
	munmap(buf, BUF_SIZE);
}

static void test_mock(struct iommufd_ctx *ctx)
{
	struct iommu_iova_range *r = NULL;
	struct iommu_iova_range one;
	struct mock_dev md;
	struct iommufd_hw_info hi;
	struct iommu_test_hw_info thi;
	uint32_t ioas = 0, nr = 0, hwpt = 0, parent = 0, nested = 0, nested2 = 0;
	uint64_t align = 0, iova, unmapped;
	void *buf = buf_alloc(BUF_SIZE);
	bool ranges_ok = true;

	check_ok(iommufd_ioas_alloc(ctx, &ioas), "mock: ioas_alloc");
	if (!check_ok(mock_dev_add(ctx, ioas, &md),
		      "mock: MOCK_DOMAIN attaches a mock device")) {
		explain_mock_failure();
		munmap(buf, BUF_SIZE);
		return;
	}
	check(md.hwpt_id != ioas && md.idev_id != 0,
	      "mock: got stdev=%u hwpt=%u idev=%u", md.stdev_id, md.hwpt_id,
	      md.idev_id);
	check_err(mock_dev_add(ctx, BAD_ID, &(struct mock_dev){ 0 }), ENOENT,
		  "mock: MOCK_DOMAIN on bad IOAS ENOENT");

	/* Attaching narrows the ranges to the mock aperture. */
	if (check_ok(iommufd_ioas_iova_ranges(ctx, ioas, &r, &nr, &align),
		     "mock: iova_ranges after attach")) {
		for (uint32_t i = 0; i < nr; i++) {
			note("range %u: %#llx-%#llx", i,
			     (unsigned long long)r[i].start,
			     (unsigned long long)r[i].last);
			if (r[i].start > r[i].last ||
			    r[i].start < MOCK_APERTURE_START ||
			    r[i].last > MOCK_APERTURE_LAST ||
			    (i && r[i].start <= r[i - 1].last))
				ranges_ok = false;
		}
		check(nr >= 1 && ranges_ok,
		      "mock: %u ranges, sorted, inside the aperture", nr);
		check(align > 1 && (align & (align - 1)) == 0 &&
		      align <= (uint64_t)sysconf(_SC_PAGESIZE),
		      "mock: alignment %#" PRIx64 " is a power of 2 <= page",
		      align);
	}

	/* map, verified in the mock domain itself */
	check_ok(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K, MOCK_IOVA,
					IOMMUFD_PROT_RW), "mock: map fixed");
	check(range_in(r, nr, MOCK_IOVA, SZ_64K), "mock: test IOVA is usable");
	check_ok(md_check_map(ctx, md.hwpt_id, MOCK_IOVA, buf, SZ_64K),
		 "mock: MD_CHECK_MAP sees the mapping");
	check_err(md_check_map(ctx, md.hwpt_id, MOCK_IOVA, (char *)buf + SZ_64K,
			       SZ_4K), EINVAL,
		  "mock: MD_CHECK_MAP rejects the wrong pages");
	check_err(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K,
					 MOCK_IOVA + SZ_4K, IOMMUFD_PROT_RW),
		  EEXIST, "mock: overlapping map EEXIST");
	check_err(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K,
					 MOCK_IOVA + SZ_1M + 1, IOMMUFD_PROT_RW),
		  EINVAL, "mock: misaligned IOVA EINVAL");
	check_err(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K + 1,
					 MOCK_IOVA + SZ_1M, IOMMUFD_PROT_RW),
		  EINVAL, "mock: misaligned length EINVAL");
	check_err(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K, 0,
					 IOMMUFD_PROT_RW),
		  EINVAL, "mock: map into the reserved area below the aperture EINVAL");
	iova = 0;
	if (check_ok(iommufd_ioas_map(ctx, ioas, (char *)buf + SZ_1M, SZ_64K,
				      IOMMUFD_PROT_RW, &iova),
		     "mock: map with kernel-chosen IOVA")) {
		check(range_in(r, nr, iova, SZ_64K) && iova % align == 0,
		      "mock: chosen IOVA %#" PRIx64 " aligned, in range", iova);
		check_ok(md_check_map(ctx, md.hwpt_id, iova,
				      (char *)buf + SZ_1M, SZ_64K),
			 "mock: MD_CHECK_MAP sees the auto mapping");
	}
	free(r);
	r = NULL;

	/* allow_iovas cannot cover what the mock reserves */
	one.start = 0;
	one.last = SZ_1M - 1;
	check_err(iommufd_ioas_allow_iovas(ctx, ioas, &one, 1), EADDRINUSE,
		  "mock: allow_iovas over the reserved hole EADDRINUSE");

	/* objects in use */
	check_err(iommufd_destroy(ctx, ioas), EBUSY,
		  "mock: destroy IOAS with a device attached EBUSY");
	check_err(iommufd_destroy(ctx, md.hwpt_id), EBUSY,
		  "mock: destroy attached HWPT EBUSY");

	/* unmap: the domain loses the mapping */
	unmapped = 0;
	if (check_ok(iommufd_ioas_unmap(ctx, ioas, MOCK_IOVA, SZ_64K,
					&unmapped), "mock: unmap"))
		check(unmapped == SZ_64K, "mock: unmapped %#" PRIx64, unmapped);
	check_err(md_check_map(ctx, md.hwpt_id, MOCK_IOVA, buf, SZ_4K), EINVAL,
		  "mock: MD_CHECK_MAP no longer sees it");
	check_err(iommufd_ioas_unmap(ctx, ioas, MOCK_IOVA, SZ_64K, NULL),
		  ENOENT, "mock: unmap again ENOENT");

	/* hardware info */
	memset(&thi, 0, sizeof(thi));
	if (check_ok(iommufd_get_hw_info(ctx, md.idev_id, &thi, sizeof(thi), &hi),
		     "mock: get_hw_info"))
		check(hi.type == IOMMU_HW_INFO_TYPE_SELFTEST &&
		      thi.test_reg == IOMMU_HW_INFO_SELFTEST_REGVAL &&
		      hi.data_len == sizeof(thi),
		      "mock: hw_info type %#x reg %#x len %u", hi.type,
		      thi.test_reg, hi.data_len);
	check_ok(iommufd_get_hw_info(ctx, md.idev_id, NULL, 0, &hi),
		 "mock: get_hw_info without a buffer");
	check_err(iommufd_get_hw_info(ctx, BAD_ID, NULL, 0, &hi), ENOENT,
		  "mock: get_hw_info bad dev ENOENT");
	check_err(iommufd_get_hw_info(ctx, ioas, NULL, 0, &hi), ENOENT,
		  "mock: get_hw_info on a non-device ID ENOENT");

	/* HWPT: paging, nest parent, nested */
	check_ok(iommufd_hwpt_alloc(ctx, md.idev_id, ioas, 0, &hwpt),
		 "mock: hwpt_alloc paging");
	check_ok(iommufd_hwpt_alloc(ctx, md.idev_id, ioas,
				    IOMMU_HWPT_ALLOC_NEST_PARENT, &parent),
		 "mock: hwpt_alloc NEST_PARENT");
	check_err(iommufd_hwpt_alloc(ctx, BAD_ID, ioas, 0, &nested), ENOENT,
		  "mock: hwpt_alloc bad dev ENOENT");
	/* (the kernel answers EINVAL, not ENOENT, for an unknown pt_id) */
	check_err(iommufd_hwpt_alloc(ctx, md.idev_id, BAD_ID, 0, &nested),
		  EINVAL, "mock: hwpt_alloc bad pt_id EINVAL");
	check_err(iommufd_hwpt_alloc(ctx, md.idev_id, ioas, 1u << 30, &nested),
		  EOPNOTSUPP, "mock: hwpt_alloc unknown flag EOPNOTSUPP");

	struct iommu_hwpt_selftest sdata = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	if (check_ok(iommufd_hwpt_alloc_nested(ctx, md.idev_id, parent, 0,
					       IOMMU_HWPT_DATA_SELFTEST, &sdata,
					       sizeof(sdata), &nested),
		     "mock: hwpt_alloc nested on the nest parent")) {
		check_ok(md_check_iotlb(ctx, nested, 0,
					IOMMU_TEST_IOTLB_DEFAULT),
			 "mock: nested iotlb[0] holds the default");
		struct iommu_hwpt_invalidate_selftest inv = { .iotlb_id = 0 };
		uint32_t num = 1;
		if (check_ok(iommufd_hwpt_invalidate(ctx, nested,
				IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, &inv,
				sizeof(inv), &num),
			     "mock: hwpt_invalidate nested"))
			check(num == 1, "mock: one invalidation handled");
		check_ok(md_check_iotlb(ctx, nested, 0, 0),
			 "mock: iotlb[0] cleared by the invalidation");
		check_err(iommufd_destroy(ctx, parent), EBUSY,
			  "mock: destroy parent with a nested child EBUSY");
	}
	check_err(iommufd_hwpt_alloc_nested(ctx, md.idev_id, hwpt, 0,
					    IOMMU_HWPT_DATA_SELFTEST, &sdata,
					    sizeof(sdata), &nested2),
		  EINVAL, "mock: nested on a non-parent HWPT EINVAL");
	check_err(iommufd_hwpt_alloc_nested(ctx, md.idev_id, parent, 0,
					    0x7777, &sdata, sizeof(sdata),
					    &nested2),
		  EOPNOTSUPP, "mock: nested with unknown data type EOPNOTSUPP");

	/* Move the device to the explicit HWPT; maps reach it too. */
	if (check_ok(mock_dev_replace(ctx, &md, hwpt),
		     "mock: replace device onto allocated HWPT")) {
		check(md.hwpt_id == hwpt, "mock: device now on HWPT %u", hwpt);
		check_ok(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K,
						MOCK_IOVA, IOMMUFD_PROT_RW),
			 "mock: map after replace");
		check_ok(md_check_map(ctx, hwpt, MOCK_IOVA, buf, SZ_64K),
			 "mock: allocated HWPT sees the map");
		check_ok(md_check_map(ctx, parent, MOCK_IOVA, buf, SZ_64K),
			 "mock: unattached NEST_PARENT HWPT sees the map too");
		check_err(iommufd_destroy(ctx, hwpt), EBUSY,
			  "mock: destroy HWPT in use EBUSY");
	}
	if (nested && mock_dev_replace(ctx, &md, nested) == 0) {
		check(md.hwpt_id == nested, "mock: device on the nested HWPT");
		check_ok(mock_dev_replace(ctx, &md, hwpt),
			 "mock: device back to paging HWPT");
	}

	check_ok(iommufd_destroy(ctx, nested), "mock: destroy nested HWPT");
	check_ok(iommufd_destroy(ctx, parent), "mock: destroy parent HWPT");
	check_ok(iommufd_destroy(ctx, md.stdev_id), "mock: unplug mock device");
	check_ok(iommufd_destroy(ctx, hwpt),
		 "mock: destroy HWPT after its device left");
	check_ok(iommufd_destroy(ctx, ioas), "mock: destroy IOAS now unused");
	munmap(buf, BUF_SIZE);
}

/*
 * The design's core claim: one virtio-iommu domain = one IOAS; all
 * endpoints attached to it see one IOAS_MAP. Two mock devices on one IOAS,
 * on two distinct HWPTs (the auto one and an explicitly allocated one), so
 * this is not one domain checked twice.
 */
static void test_shared_ioas(struct iommufd_ctx *ctx)
{
	struct mock_dev a, b;
	uint32_t ioas, hwpt_b;
	uint64_t unmapped = 0;
	void *buf = buf_alloc(BUF_SIZE);
	const uint64_t iova1 = MOCK_IOVA, iova2 = MOCK_IOVA + 4 * SZ_1M;

	check_ok(iommufd_ioas_alloc(ctx, &ioas), "shared: ioas_alloc");
	if (!check_ok(mock_dev_add(ctx, ioas, &a), "shared: endpoint A attached") ||
	    !check_ok(mock_dev_add(ctx, ioas, &b), "shared: endpoint B attached"))
		return;
	note("A on HWPT %u, B on HWPT %u (the kernel may share one)",
	     a.hwpt_id, b.hwpt_id);

	check_ok(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_64K, iova1,
					IOMMUFD_PROT_RW),
		 "shared: one IOAS_MAP before B gets its own domain");

	/* Give B a domain of its own, still fed by the same IOAS. */
	check_ok(iommufd_hwpt_alloc(ctx, b.idev_id, ioas, 0, &hwpt_b),
		 "shared: allocate a second HWPT from the IOAS");
	check_ok(mock_dev_replace(ctx, &b, hwpt_b), "shared: move B onto it");
	check(a.hwpt_id != b.hwpt_id, "shared: A (%u) and B (%u) on distinct "
	      "domains", a.hwpt_id, b.hwpt_id);

	check_ok(md_check_map(ctx, a.hwpt_id, iova1, buf, SZ_64K),
		 "shared: A sees the early mapping");
	check_ok(md_check_map(ctx, b.hwpt_id, iova1, buf, SZ_64K),
		 "shared: B's new domain was filled with it");

	check_ok(iommufd_ioas_map_fixed(ctx, ioas, (char *)buf + SZ_1M, SZ_64K,
					iova2, IOMMUFD_PROT_RW),
		 "shared: one more IOAS_MAP");
	check_ok(md_check_map(ctx, a.hwpt_id, iova2, (char *)buf + SZ_1M,
			      SZ_64K), "shared: A sees it");
	check_ok(md_check_map(ctx, b.hwpt_id, iova2, (char *)buf + SZ_1M,
			      SZ_64K), "shared: B sees it");

	if (check_ok(iommufd_ioas_unmap(ctx, ioas, iova2, SZ_64K, &unmapped),
		     "shared: one IOAS_UNMAP"))
		check(unmapped == SZ_64K, "shared: unmapped %#" PRIx64, unmapped);
	check_err(md_check_map(ctx, a.hwpt_id, iova2, (char *)buf + SZ_1M,
			       SZ_4K), EINVAL, "shared: gone from A");
	check_err(md_check_map(ctx, b.hwpt_id, iova2, (char *)buf + SZ_1M,
			       SZ_4K), EINVAL, "shared: gone from B");
	check_ok(md_check_map(ctx, b.hwpt_id, iova1, buf, SZ_64K),
		 "shared: the other mapping stays in B");

	check_ok(iommufd_destroy(ctx, b.stdev_id), "shared: unplug B");
	check_ok(iommufd_destroy(ctx, hwpt_b), "shared: destroy B's HWPT");
	check_ok(iommufd_destroy(ctx, a.stdev_id), "shared: unplug A");
	check_ok(iommufd_destroy(ctx, ioas), "shared: destroy IOAS");
	munmap(buf, BUF_SIZE);
}

static int expect_viommu(void)
{
	const char *e = getenv("IOMMUFD_EXPECT_VIOMMU");
	struct utsname u;
	int maj = 0, min = 0;

	if (e && *e)
		return atoi(e) != 0;
	if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &maj, &min) == 2)
		return maj > 6 || (maj == 6 && min >= 13);
	return -1;
}

static void test_features(struct iommufd_ctx *ctx)
{
	struct iommufd_features f;
	uint32_t id = 0;
	int fd = -1, want = expect_viommu(), rc;
	char line[256];

	if (!check_ok(iommufd_probe_features(ctx, &f), "features: probe"))
		return;
	iommufd_features_format(&f, line, sizeof(line));
	note("%s", line);
	check(iommufd_features_report(&f, stdout), "features: first report prints");
	check(!iommufd_features_report(&f, stdout),
	      "features: second report is silent");
	check(f.hwpt_invalidate && f.fault_queue,
	      "features: 6.12 baseline ioctls (HWPT_INVALIDATE, FAULT_QUEUE) present");
	check(iommufd_probe_ioctl(ctx, _IO(IOMMUFD_TYPE, 0xfe)) == 0,
	      "features: unknown ioctl probes absent");
	check(iommufd_probe_ioctl(ctx, IOMMU_IOAS_ALLOC) == 1,
	      "features: IOAS_ALLOC probes present");
	if (want >= 0)
		check(f.viommu == want, "features: vIOMMU %s as expected",
		      want ? "present" : "absent");
	else
		skip("features: no expectation for vIOMMU");

	/* The wrappers agree with the probe. */
	rc = iommufd_viommu_alloc(ctx, BAD_ID, BAD_ID, 0, NULL, 0, &id);
	check(f.viommu ? rc != -ENOTTY : rc == -ENOTTY,
	      "features: viommu_alloc %s ENOTTY (rc=%d)",
	      f.viommu ? "not" : "is", rc);
	if (!f.viommu)
		check(strstr(iommufd_last_error(), "IOMMU_VIOMMU_ALLOC") != NULL,
		      "features: last_error names IOMMU_VIOMMU_ALLOC");
	rc = iommufd_vdevice_alloc(ctx, BAD_ID, BAD_ID, 1, &id);
	check(f.vdevice ? rc != -ENOTTY : rc == -ENOTTY,
	      "features: vdevice_alloc %s ENOTTY (rc=%d)",
	      f.vdevice ? "not" : "is", rc);
	rc = iommufd_veventq_alloc(ctx, BAD_ID, 0, 16, &id, &fd);
	check(f.veventq ? rc != -ENOTTY : rc == -ENOTTY,
	      "features: veventq_alloc %s ENOTTY (rc=%d)",
	      f.veventq ? "not" : "is", rc);
	if (f.viommu)
		check(iommufd_viommu_alloc(ctx, 0, BAD_ID, 0, NULL, 0, &id) ==
		      -ENOENT, "features: viommu_alloc bad IDs ENOENT");
}

static void test_vfio(struct iommufd_ctx *ctx)
{
	const char *path = getenv("IOMMUFD_VFIO_DEV");
	struct iommu_iova_range *r = NULL;
	struct iommufd_hw_info hi;
	uint8_t hwbuf[64];
	uint32_t ioas, ioas2, dev_id = 0, hwpt = 0, hwpt2 = 0, nr = 0;
	uint64_t align = 0, iova, unmapped = 0;
	void *buf;
	int devfd;

	if (!path)
		path = "/dev/vfio/devices/vfio0";
	if (access(path, F_OK) != 0) {
		skip("vfio: %s absent", path);
		return;
	}
	if (!check_ok(iommufd_vfio_open(path, &devfd), "vfio: open %s", path))
		return;
	check_err(iommufd_vfio_attach(devfd, 1, NULL), EINVAL,
		  "vfio: attach before bind EINVAL");
	if (!check_ok(iommufd_vfio_bind(ctx, devfd, &dev_id), "vfio: bind")) {
		close(devfd);
		return;
	}
	check(dev_id != 0, "vfio: dev_id %u", dev_id);

	if (check_ok(iommufd_get_hw_info(ctx, dev_id, hwbuf, sizeof(hwbuf), &hi),
		     "vfio: get_hw_info"))
		note("hw_info type %u (1 = Intel VT-d), data_len %u, caps %#llx",
		     hi.type, hi.data_len, (unsigned long long)hi.capabilities);

	check_ok(iommufd_ioas_alloc(ctx, &ioas), "vfio: ioas_alloc");
	if (check_ok(iommufd_vfio_attach(devfd, ioas, &hwpt),
		     "vfio: attach to IOAS"))
		check(hwpt != 0 && hwpt != ioas,
		      "vfio: kernel created HWPT %u for IOAS %u", hwpt, ioas);
	check_err(iommufd_vfio_attach(devfd, BAD_ID, NULL), ENOENT,
		  "vfio: attach to bad ID ENOENT");

	if (check_ok(iommufd_ioas_iova_ranges(ctx, ioas, &r, &nr, &align),
		     "vfio: iova_ranges")) {
		for (uint32_t i = 0; i < nr; i++)
			note("range %u: %#llx-%#llx", i,
			     (unsigned long long)r[i].start,
			     (unsigned long long)r[i].last);
		check(nr >= 1 && !range_in(r, nr, 0xfee00000ULL, SZ_4K),
		      "vfio: %u ranges, the MSI window is excluded", nr);
		check(align >= 1 && align <= (uint64_t)sysconf(_SC_PAGESIZE),
		      "vfio: alignment %#" PRIx64, align);
	}

	buf = buf_alloc(BUF_SIZE);
	iova = SZ_1M;
	if (!range_in(r, nr, iova, SZ_1M))
		iova = r && nr ? (r[0].start + SZ_1M - 1) & ~(SZ_1M - 1) : SZ_1M;
	check_ok(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_1M, iova,
					IOMMUFD_PROT_RW),
		 "vfio: map 1 MiB at %#" PRIx64, iova);
	check_err(iommufd_ioas_map_fixed(ctx, ioas, buf, SZ_1M, iova,
					 IOMMUFD_PROT_RW),
		  EEXIST, "vfio: map again EEXIST");
	if (check_ok(iommufd_ioas_unmap(ctx, ioas, iova, SZ_1M, &unmapped),
		     "vfio: unmap"))
		check(unmapped == SZ_1M, "vfio: unmapped %#" PRIx64, unmapped);
	iova = 0;
	if (check_ok(iommufd_ioas_map(ctx, ioas, buf, SZ_64K, IOMMUFD_PROT_READ,
				      &iova), "vfio: map at kernel-chosen IOVA"))
		check(range_in(r, nr, iova, SZ_64K),
		      "vfio: chosen IOVA %#" PRIx64 " usable", iova);
	free(r);

	check_err(iommufd_destroy(ctx, ioas), EBUSY,
		  "vfio: destroy IOAS with device attached EBUSY");

	struct vfio_device_info info = { .argsz = sizeof(info) };
	if (check(ioctl(devfd, VFIO_DEVICE_GET_INFO, &info) == 0,
		  "vfio: VFIO_DEVICE_GET_INFO"))
		check((info.flags & VFIO_DEVICE_FLAGS_PCI) &&
		      info.num_regions >= VFIO_PCI_CONFIG_REGION_INDEX + 1 &&
		      info.num_irqs >= 1,
		      "vfio: PCI device, %u regions, %u irqs",
		      info.num_regions, info.num_irqs);

	/* explicit HWPT, replace, and a second IOAS sharing the mapping */
	if (check_ok(iommufd_hwpt_alloc(ctx, dev_id, ioas, 0, &hwpt2),
		     "vfio: hwpt_alloc paging for the device")) {
		uint32_t got = 0;
		if (check_ok(iommufd_vfio_attach(devfd, hwpt2, &got),
			     "vfio: replace onto allocated HWPT"))
			check(got == hwpt2, "vfio: attach reports HWPT %u", got);
	}
	check_ok(iommufd_ioas_alloc(ctx, &ioas2), "vfio: second IOAS");
	check_ok(iommufd_vfio_attach(devfd, ioas2, NULL),
		 "vfio: move the device to the second IOAS");
	uint64_t dst = 8 * SZ_1M;
	check_ok(iommufd_ioas_copy(ctx, ioas2, ioas, iova, SZ_64K,
				   IOMMUFD_PROT_READ, true, &dst),
		 "vfio: copy a mapping into the device's IOAS");
	check_ok(iommufd_vfio_detach(devfd), "vfio: detach");
	if (hwpt2)
		check_ok(iommufd_destroy(ctx, hwpt2),
			 "vfio: destroy HWPT after detach");
	check_ok(iommufd_ioas_unmap_all(ctx, ioas2, NULL), "vfio: unmap all");
	check_ok(iommufd_destroy(ctx, ioas2), "vfio: destroy second IOAS");
	check_ok(iommufd_destroy(ctx, ioas), "vfio: destroy IOAS after detach");
	check_err(iommufd_vfio_attach(devfd, ioas, NULL), ENOENT,
		  "vfio: attach to destroyed IOAS ENOENT");
	close(devfd);
	munmap(buf, BUF_SIZE);
}

int main(void)
{
	struct iommufd_ctx *ctx;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# iommufd library test (pid %d)\n", getpid());
	test_context();
	if (iommufd_open(&ctx)) {
		printf("not ok - open /dev/iommu # %s\n", iommufd_last_error());
		return 1;
	}
	test_ioas_basic(ctx);
	test_mock(ctx);
	test_shared_ioas(ctx);
	test_features(ctx);
	test_vfio(ctx);
	iommufd_close(ctx);

	printf("%d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
	return n_fail ? 1 : 0;
}
