/* SPDX-License-Identifier: MIT */
/*
 * vdevice_test - devices/virtio-iommu/vdevice.c (host vIOMMU, vDEVICEs and
 * vEVENTQ for passthrough endpoints) against the real kernel iommufd, run as
 * root inside the nested runner's L1 (kernel with CONFIG_IOMMUFD_TEST and the
 * project's vIOMMU patches).
 *
 * Mock devices come from IOMMU_TEST_OP_MOCK_DOMAIN; the mock driver's
 * IOMMU_VIOMMU_TYPE_SELFTEST has a vEVENTQ, and IOMMU_TEST_OP_TRIGGER_VEVENT
 * makes it report an event naming a device's vDEVICE by virt_id.
 *
 * Output: "ok N - name" / "not ok N - name # detail" per check, then
 * "N passed, N failed, N skipped". Exit status 1 if anything failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "iommufd.h"
#include "iommufd_test.h"
#include "vdevice.h"
#include "viommu.h"

/* VA_INIT/VQ_INIT below override fields of a default initialiser. */
#pragma GCC diagnostic ignored "-Woverride-init"

#include "tap.h"

/* ---- the kernel's selftest mock --------------------------------------- */

static int raw_ioctl(struct iommufd_ctx *ctx, unsigned long cmd, void *arg)
{
	return ioctl(iommufd_fd(ctx), cmd, arg) ? -errno : 0;
}

static int test_cmd(struct iommufd_ctx *ctx, struct iommu_test_cmd *cmd)
{
	cmd->size = sizeof(*cmd);
	return raw_ioctl(ctx, IOMMU_TEST_CMD, cmd);
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

static int trigger_vevent(struct iommufd_ctx *ctx, uint32_t dev_id)
{
	struct iommu_test_cmd cmd = { .op = IOMMU_TEST_OP_TRIGGER_VEVENT,
				      .trigger_vevent = { .dev_id = dev_id } };
	return test_cmd(ctx, &cmd);
}

/* ---- fixture ------------------------------------------------------------ */

#define EP0 0x0008u	/* 00:01.0 */
#define EP1 0x0010u	/* 00:02.0 */
#define EP_SPARE 0x0018u
#define BAD_ID 0xfffff0u
#define FAULT_QUEUE 256

struct fix {
	struct iommufd_ctx *ctx;
	uint32_t ioas;
	struct mock_dev md[3];	/* md[0], md[1]: the endpoints; md[2]: spare */
	struct viommu *v;
	struct viommu_hw *h;
	/* every object ID the viommu_hw made, for the ENOENT check */
	uint32_t ids[8];
	unsigned n_ids;
};

static bool fix_setup(struct fix *f, struct iommufd_ctx *ctx, const char *tag)
{
	struct viommu_params p;

	memset(f, 0, sizeof(*f));
	f->ctx = ctx;
	if (!check_ok(iommufd_ioas_alloc(ctx, &f->ioas), "%s: IOAS", tag))
		return false;
	for (int i = 0; i < 3; i++)
		if (!check_ok(mock_dev_add(ctx, f->ioas, &f->md[i]),
			      "%s: mock device %d", tag, i))
			return false;
	viommu_params_default(&p);
	p.fault_queue_len = FAULT_QUEUE;
	f->v = viommu_new(&p);
	if (!check(f->v != NULL, "%s: device model", tag))
		return false;
	check_ok(viommu_add_endpoint(f->v, EP0, NULL), "%s: model endpoint %#x", tag, EP0);
	check_ok(viommu_add_endpoint(f->v, EP1, NULL), "%s: model endpoint %#x", tag, EP1);

	int rc = viommu_hw_create(&f->h, ctx, f->v, f->md[0].idev_id, f->ioas,
				  VIOMMU_HW_TYPE_SELFTEST);
	if (!check_ok(rc, "%s: viommu_hw_create (SELFTEST type)", tag))
		return false;
	check(viommu_hw_hwpt_id(f->h) && viommu_hw_viommu_id(f->h) &&
	      viommu_hw_veventq_id(f->h), "%s: HWPT %u, vIOMMU %u, vEVENTQ %u", tag,
	      viommu_hw_hwpt_id(f->h), viommu_hw_viommu_id(f->h), viommu_hw_veventq_id(f->h));
	check(viommu_hw_event_fd(f->h) >= 0, "%s: event fd %d", tag, viommu_hw_event_fd(f->h));
	check_ok(viommu_hw_add_endpoint(f->h, f->md[0].idev_id, EP0),
		 "%s: vDEVICE for endpoint %#x", tag, EP0);
	check_ok(viommu_hw_add_endpoint(f->h, f->md[1].idev_id, EP1),
		 "%s: vDEVICE for endpoint %#x", tag, EP1);
	f->ids[f->n_ids++] = viommu_hw_vdevice_id(f->h, EP0);
	f->ids[f->n_ids++] = viommu_hw_vdevice_id(f->h, EP1);
	f->ids[f->n_ids++] = viommu_hw_veventq_id(f->h);
	f->ids[f->n_ids++] = viommu_hw_viommu_id(f->h);
	f->ids[f->n_ids++] = viommu_hw_hwpt_id(f->h);
	check(f->ids[0] && f->ids[1] && f->ids[0] != f->ids[1],
	      "%s: vDEVICE IDs %u, %u", tag, f->ids[0], f->ids[1]);
	return true;
}

static void check_all_gone(struct fix *f, const char *tag)
{
	for (unsigned i = 0; i < f->n_ids; i++)
		check_err(iommufd_destroy(f->ctx, f->ids[i]), ENOENT,
			  "%s: object %u is gone (IOMMU_DESTROY ENOENT)", tag, f->ids[i]);
}

static void fix_unplug(struct fix *f, const char *tag)
{
	for (int i = 0; i < 3; i++)
		if (f->md[i].stdev_id)
			check_ok(iommufd_destroy(f->ctx, f->md[i].stdev_id),
				 "%s: unplug mock device %d", tag, i);
	check_ok(iommufd_destroy(f->ctx, f->ioas), "%s: IOAS destroyed", tag);
	viommu_free(f->v);
}

/* ---- events --------------------------------------------------------------- */

static void test_events(struct fix *f)
{
	struct virtio_iommu_fault flt;
	struct viommu_hw_stats st;
	int rc;

	check(viommu_hw_process_events(f->h) == 0, "events: none waiting, 0 raised");

	check_ok(trigger_vevent(f->ctx, f->md[0].idev_id), "events: inject for mock device 0");
	check_ok(trigger_vevent(f->ctx, f->md[1].idev_id), "events: inject for mock device 1");
	rc = viommu_hw_process_events(f->h);
	check(rc == 2, "events: process_events raised 2 faults (rc=%d)", rc);
	bool got = viommu_pop_fault(f->v, &flt);
	check(got && le32toh(flt.endpoint) == EP0 && flt.reason == VIRTIO_IOMMU_FAULT_R_UNKNOWN,
	      "events: first fault for endpoint %#x (got %d, ep %#x, reason %u)", EP0, got,
	      le32toh(flt.endpoint), flt.reason);
	got = viommu_pop_fault(f->v, &flt);
	check(got && le32toh(flt.endpoint) == EP1,
	      "events: second fault for endpoint %#x (got %d, ep %#x)", EP1, got,
	      le32toh(flt.endpoint));
	check(!viommu_pop_fault(f->v, &flt), "events: no third fault");

	/* In the reverse order, to be sure the mapping is by virt_id. */
	check_ok(trigger_vevent(f->ctx, f->md[1].idev_id), "events: inject for 1 then 0 (1)");
	check_ok(trigger_vevent(f->ctx, f->md[0].idev_id), "events: inject for 1 then 0 (0)");
	check(viommu_hw_process_events(f->h) == 2, "events: 2 raised");
	got = viommu_pop_fault(f->v, &flt);
	check(got && le32toh(flt.endpoint) == EP1, "events: reversed: first for %#x", EP1);
	got = viommu_pop_fault(f->v, &flt);
	check(got && le32toh(flt.endpoint) == EP0, "events: reversed: second for %#x", EP0);

	check_err(trigger_vevent(f->ctx, f->md[2].idev_id), ENOENT,
		  "events: inject for a device without vDEVICE");
	check_err(trigger_vevent(f->ctx, BAD_ID), ENOENT, "events: inject for a bad dev_id");

	/* Overflow: depth events fit, 3 are dropped and one LOST_EVENTS
	 * header follows; the next event shows a sequence gap of 3. */
	int over = 0, okc = 0;
	for (unsigned i = 0; i < VIOMMU_HW_VEVENTQ_DEPTH + 3; i++) {
		rc = trigger_vevent(f->ctx, f->md[0].idev_id);
		okc += rc == 0;
		over += rc == -EOVERFLOW;
	}
	check(okc == VIOMMU_HW_VEVENTQ_DEPTH && over == 3,
	      "overflow: %u queued, 3 EOVERFLOW (got %d, %d)", VIOMMU_HW_VEVENTQ_DEPTH, okc, over);
	rc = viommu_hw_process_events(f->h);
	check(rc == (int)VIOMMU_HW_VEVENTQ_DEPTH, "overflow: %d faults raised (want %u)", rc,
	      VIOMMU_HW_VEVENTQ_DEPTH);
	viommu_hw_get_stats(f->h, &st);
	check(st.lost_records == 1, "overflow: 1 LOST_EVENTS header counted (%llu)",
	      (unsigned long long)st.lost_records);
	check_ok(trigger_vevent(f->ctx, f->md[1].idev_id), "overflow: one more event");
	check(viommu_hw_process_events(f->h) == 1, "overflow: it is raised");
	viommu_hw_get_stats(f->h, &st);
	check(st.lost_events == 3, "overflow: sequence gap says 3 lost (%llu)",
	      (unsigned long long)st.lost_events);
	check(st.unknown == 0 && st.malformed == 0, "stats: no unknown or malformed records");
	int n = 0;
	while (viommu_pop_fault(f->v, &flt))
		n++;
	check(n == (int)VIOMMU_HW_VEVENTQ_DEPTH + 1, "overflow: %d faults in the model", n);

	/* A read buffer too small for one record: EINVAL (uAPI). */
	check_ok(trigger_vevent(f->ctx, f->md[0].idev_id), "read: inject");
	char small[4];
	ssize_t r = read(viommu_hw_event_fd(f->h), small, sizeof(small));
	check(r < 0 && errno == EINVAL, "read: 4-byte buffer gives EINVAL (r=%zd)", r);
	check(viommu_hw_process_events(f->h) == 1, "read: event still there afterwards");
	viommu_pop_fault(f->v, NULL);
}

/* ---- bad input --------------------------------------------------------- */

static void test_bad_input(struct fix *f)
{
	struct iommufd_ctx *ctx = f->ctx;
	uint32_t viommu = viommu_hw_viommu_id(f->h), id;
	struct {
		struct iommu_viommu_alloc a;
		uint64_t tail;
	} big;
	struct iommu_viommu_alloc va;
	struct iommu_vdevice_alloc vd;
	struct iommu_veventq_alloc vq;
	int fd;

	/* vIOMMU: a nest parent of our own to try things on */
	uint32_t parent, plain;
	check_ok(iommufd_hwpt_alloc(ctx, f->md[2].idev_id, f->ioas,
				    IOMMU_HWPT_ALLOC_NEST_PARENT, &parent), "bad: nest parent HWPT");
	check_ok(iommufd_hwpt_alloc(ctx, f->md[2].idev_id, f->ioas, 0, &plain),
		 "bad: plain HWPT");
#define VA_INIT(...) (struct iommu_viommu_alloc){ .size = sizeof(va), \
		.type = VIOMMU_HW_TYPE_SELFTEST, .dev_id = f->md[2].idev_id, \
		.hwpt_id = parent, __VA_ARGS__ }
	va = VA_INIT(.size = 20);
	check_err(raw_ioctl(ctx, IOMMU_VIOMMU_ALLOC, &va), EINVAL, "viommu: size 20 EINVAL");
	memset(&big, 0, sizeof(big));
	big.a = VA_INIT(.size = sizeof(big));
	big.tail = 1;
	check_err(raw_ioctl(ctx, IOMMU_VIOMMU_ALLOC, &big), E2BIG,
		  "viommu: non-zero bytes past the struct E2BIG");
	va = VA_INIT(.flags = 1);
	check_err(raw_ioctl(ctx, IOMMU_VIOMMU_ALLOC, &va), EOPNOTSUPP, "viommu: flags EOPNOTSUPP");
	va = VA_INIT(.__reserved = 1);
	check_err(raw_ioctl(ctx, IOMMU_VIOMMU_ALLOC, &va), EOPNOTSUPP,
		  "viommu: __reserved EOPNOTSUPP");
	va = VA_INIT(.data_len = 8);
	check_err(raw_ioctl(ctx, IOMMU_VIOMMU_ALLOC, &va), EINVAL,
		  "viommu: data_len without data_uptr EINVAL");
	va = VA_INIT(.dev_id = BAD_ID);
	check_err(raw_ioctl(ctx, IOMMU_VIOMMU_ALLOC, &va), ENOENT, "viommu: bad dev_id ENOENT");
	va = VA_INIT(.hwpt_id = BAD_ID);
	check_err(raw_ioctl(ctx, IOMMU_VIOMMU_ALLOC, &va), ENOENT, "viommu: bad hwpt_id ENOENT");
	va = VA_INIT(.hwpt_id = plain);
	check_err(raw_ioctl(ctx, IOMMU_VIOMMU_ALLOC, &va), EINVAL,
		  "viommu: non-nest-parent HWPT EINVAL");
	va = VA_INIT(.hwpt_id = f->md[2].hwpt_id);
	check_err(raw_ioctl(ctx, IOMMU_VIOMMU_ALLOC, &va), EINVAL,
		  "viommu: the attach's auto HWPT (not nest parent) EINVAL");
	va = VA_INIT(.hwpt_id = f->ioas);
	check_err(raw_ioctl(ctx, IOMMU_VIOMMU_ALLOC, &va), ENOENT, "viommu: an IOAS ID ENOENT");
	va = VA_INIT(.type = 0x1234);
	check_err(raw_ioctl(ctx, IOMMU_VIOMMU_ALLOC, &va), EOPNOTSUPP,
		  "viommu: type the mock driver lacks EOPNOTSUPP");
	/* Driver data through the library (the mock echoes in_data into
	 * out_data), whatever the system header's struct looks like. */
	struct iommu_viommu_selftest sd = { .in_data = 0x5a5a1234 };
	uint32_t vid;
	if (check_ok(iommufd_viommu_alloc(ctx, f->md[2].idev_id, parent, VIOMMU_HW_TYPE_SELFTEST,
					  &sd, sizeof(sd), &vid),
		     "viommu: driver data through iommufd_viommu_alloc")) {
		check_ok(sd.out_data == 0x5a5a1234 ? 0 : -EIO,
			 "viommu: the mock echoed the driver data (out_data %#x)", sd.out_data);
		check_ok(iommufd_destroy(ctx, vid), "viommu: the one with driver data destroyed");
	}
	check_ok(iommufd_destroy(ctx, plain), "bad: plain HWPT destroyed");
	check_ok(iommufd_destroy(ctx, parent), "bad: nest parent destroyed");

	/* vDEVICE */
	vd = (struct iommu_vdevice_alloc){ .size = 16, .viommu_id = viommu,
		.dev_id = f->md[2].idev_id, .virt_id = EP_SPARE };
	check_err(raw_ioctl(ctx, IOMMU_VDEVICE_ALLOC, &vd), EINVAL, "vdevice: size 16 EINVAL");
	check_err(iommufd_vdevice_alloc(ctx, BAD_ID, f->md[2].idev_id, EP_SPARE, &id), ENOENT,
		  "vdevice: bad viommu_id ENOENT");
	check_err(iommufd_vdevice_alloc(ctx, viommu, BAD_ID, EP_SPARE, &id), ENOENT,
		  "vdevice: bad dev_id ENOENT");
	check_err(iommufd_vdevice_alloc(ctx, viommu, f->md[2].idev_id, EP0, &id), EEXIST,
		  "vdevice: duplicate virt_id EEXIST (library)");
	check_err(viommu_hw_add_endpoint(f->h, f->md[2].idev_id, EP1), EEXIST,
		  "vdevice: duplicate virt_id EEXIST (viommu_hw_add_endpoint)");
	check_err(viommu_hw_add_endpoint(f->h, f->md[0].idev_id, EP_SPARE), EEXIST,
		  "vdevice: second vDEVICE of one device on one vIOMMU EEXIST");
	check_err(viommu_hw_add_endpoint(f->h, BAD_ID, EP_SPARE), ENOENT,
		  "vdevice: viommu_hw_add_endpoint bad dev_id ENOENT");
	check_err(viommu_hw_del_endpoint(f->h, EP_SPARE), ENOENT,
		  "vdevice: del of an endpoint without vDEVICE ENOENT");

	/* vEVENTQ */
#define VQ_INIT(...) (struct iommu_veventq_alloc){ .size = sizeof(vq), .viommu_id = viommu, \
		.type = VIOMMU_HW_VEVENTQ_SELFTEST, .veventq_depth = 4, __VA_ARGS__ }
	vq = VQ_INIT(.size = 24);
	check_err(raw_ioctl(ctx, IOMMU_VEVENTQ_ALLOC, &vq), EINVAL, "veventq: size 24 EINVAL");
	vq = VQ_INIT(.flags = 1);
	check_err(raw_ioctl(ctx, IOMMU_VEVENTQ_ALLOC, &vq), EOPNOTSUPP, "veventq: flags EOPNOTSUPP");
	vq = VQ_INIT(.__reserved = 1);
	check_err(raw_ioctl(ctx, IOMMU_VEVENTQ_ALLOC, &vq), EOPNOTSUPP,
		  "veventq: __reserved EOPNOTSUPP");
	vq = VQ_INIT(.type = IOMMU_VEVENTQ_TYPE_DEFAULT);
	check_err(raw_ioctl(ctx, IOMMU_VEVENTQ_ALLOC, &vq), EOPNOTSUPP,
		  "veventq: type DEFAULT EOPNOTSUPP");
	vq = VQ_INIT(.veventq_depth = 0);
	check_err(raw_ioctl(ctx, IOMMU_VEVENTQ_ALLOC, &vq), EINVAL, "veventq: depth 0 EINVAL");
	check_err(iommufd_veventq_alloc(ctx, BAD_ID, VIOMMU_HW_VEVENTQ_SELFTEST, 4, &id, &fd),
		  ENOENT, "veventq: bad viommu_id ENOENT");
	check_err(iommufd_veventq_alloc(ctx, viommu, VIOMMU_HW_VEVENTQ_SELFTEST, 4, &id, &fd),
		  EEXIST, "veventq: second queue of the type EEXIST");

	/* Lifetime rules */
	check_err(iommufd_destroy(ctx, viommu), EBUSY, "destroy: vIOMMU with vDEVICEs EBUSY");
	check_err(iommufd_destroy(ctx, viommu_hw_hwpt_id(f->h)), EBUSY,
		  "destroy: nest parent under a vIOMMU EBUSY");
	check_err(iommufd_destroy(ctx, viommu_hw_veventq_id(f->h)), EBUSY,
		  "destroy: vEVENTQ with its fd open EBUSY");

	/* viommu_hw_create failures leave nothing behind: the next object
	 * gets the ID the failed ones had. */
	struct viommu_hw *h2 = NULL;
	uint32_t probe1, probe2;
	check_ok(iommufd_ioas_alloc(ctx, &probe1), "create-fail: probe ID %u", probe1);
	check_ok(iommufd_destroy(ctx, probe1), "create-fail: probe freed");
	check_err(viommu_hw_create(&h2, ctx, f->v, f->md[2].idev_id, f->ioas, 0x1234),
		  EOPNOTSUPP, "create-fail: vIOMMU type the driver lacks EOPNOTSUPP");
	check_err(viommu_hw_create(&h2, ctx, f->v, BAD_ID, f->ioas, VIOMMU_HW_TYPE_SELFTEST),
		  ENOENT, "create-fail: bad dev_id ENOENT");
	/* IOMMU_HWPT_ALLOC answers an unknown pt_id with EINVAL, not ENOENT
	 * (hw_pagetable.c, as upstream). */
	check_err(viommu_hw_create(&h2, ctx, f->v, f->md[2].idev_id, BAD_ID,
				   VIOMMU_HW_TYPE_SELFTEST), EINVAL, "create-fail: bad IOAS EINVAL");
	check(h2 == NULL, "create-fail: *out untouched");
	check_ok(iommufd_ioas_alloc(ctx, &probe2), "create-fail: probe again");
	check(probe2 == probe1, "create-fail: no leftover objects (ID %u again, got %u)",
	      probe1, probe2);
	iommufd_destroy(ctx, probe2);
}

/* ---- default vIOMMU type: vDEVICEs, no events -------------------------- */

static void test_default_type(struct iommufd_ctx *ctx)
{
	struct fix f;
	struct viommu_hw *h = NULL;

	memset(&f, 0, sizeof(f));
	f.ctx = ctx;
	check_ok(iommufd_ioas_alloc(ctx, &f.ioas), "default: IOAS");
	if (!check_ok(mock_dev_add(ctx, f.ioas, &f.md[0]), "default: mock device"))
		return;
	f.v = viommu_new(NULL);
	int rc = viommu_hw_create(&h, ctx, f.v, f.md[0].idev_id, f.ioas, IOMMU_VIOMMU_TYPE_DEFAULT);
	if (check_ok(rc, "default: viommu_hw_create (DEFAULT type)")) {
		check(viommu_hw_event_fd(h) < 0 && !viommu_hw_veventq_id(h),
		      "default: no vEVENTQ (type has no events), not an error");
		check(viommu_hw_process_events(h) == 0, "default: process_events is a no-op");
		check_ok(viommu_hw_add_endpoint(h, f.md[0].idev_id, EP0), "default: vDEVICE");
		f.ids[f.n_ids++] = viommu_hw_vdevice_id(h, EP0);
		f.ids[f.n_ids++] = viommu_hw_viommu_id(h);
		f.ids[f.n_ids++] = viommu_hw_hwpt_id(h);
		check_ok(viommu_hw_destroy_rc(h), "default: destroy");
		check_all_gone(&f, "default");
	}
	fix_unplug(&f, "default");
}

/* ---- teardown orders --------------------------------------------------- */

static void test_endpoints_first(struct iommufd_ctx *ctx)
{
	struct fix f;

	if (!fix_setup(&f, ctx, "ep-first"))
		return;
	test_events(&f);
	test_bad_input(&f);
	check_ok(viommu_hw_del_endpoint(f.h, EP0), "ep-first: del endpoint %#x", EP0);
	check_err(viommu_hw_del_endpoint(f.h, EP0), ENOENT, "ep-first: del again ENOENT");
	check_err(trigger_vevent(ctx, f.md[0].idev_id), ENOENT,
		  "ep-first: no events for a device without vDEVICE");
	check_ok(viommu_hw_del_endpoint(f.h, EP1), "ep-first: del endpoint %#x", EP1);
	check_ok(viommu_hw_destroy_rc(f.h), "ep-first: destroy");
	check_all_gone(&f, "ep-first");
	fix_unplug(&f, "ep-first");
}

static void test_owner_first(struct iommufd_ctx *ctx)
{
	struct fix f;

	if (!fix_setup(&f, ctx, "owner-first"))
		return;
	/* Unplug the device the vIOMMU was created with, and the other
	 * endpoint's, while their vDEVICEs exist. */
	check_ok(iommufd_destroy(ctx, f.md[0].stdev_id), "owner-first: unplug vIOMMU's device");
	f.md[0].stdev_id = 0;
	check_err(trigger_vevent(ctx, f.md[0].idev_id), ENOENT,
		  "owner-first: unplugged device is gone");
	check_ok(trigger_vevent(ctx, f.md[1].idev_id), "owner-first: other device still reports");
	check(viommu_hw_process_events(f.h) == 1, "owner-first: and it is raised");
	check(viommu_pop_fault(f.v, NULL), "owner-first: fault queued");
	check_ok(iommufd_destroy(ctx, f.md[1].stdev_id), "owner-first: unplug the other device");
	f.md[1].stdev_id = 0;
	check_ok(viommu_hw_destroy_rc(f.h), "owner-first: destroy (inert vDEVICEs too)");
	check_all_gone(&f, "owner-first");
	fix_unplug(&f, "owner-first");
}

static void test_context_close(void)
{
	struct iommufd_ctx *owner, *ctx;
	struct fix f;
	int fd, evfd;

	if (!check_ok(iommufd_open(&owner), "close: open /dev/iommu"))
		return;
	fd = iommufd_fd(owner);
	/* A wrapper that does not own fd, so that viommu_hw keeps a valid
	 * ctx pointer after the fd is closed under it. */
	if (!check_ok(iommufd_open_fd(fd, false, &ctx), "close: wrap fd"))
		return;
	if (!fix_setup(&f, ctx, "close"))
		return;
	evfd = viommu_hw_event_fd(f.h);
	check_ok(trigger_vevent(ctx, f.md[0].idev_id), "close: inject");
	iommufd_close(owner);	/* closes fd: the context goes under viommu_hw */
	check(fcntl(fd, F_GETFD) < 0, "close: iommufd fd closed");
	/* The vEVENTQ file keeps the context alive: the event is readable. */
	check(viommu_hw_process_events(f.h) == 1, "close: queued event still read after close");
	int rc = viommu_hw_destroy_rc(f.h);
	check_err(rc, EBADF, "close: destroy reports the closed context");
	check(fcntl(evfd, F_GETFD) < 0 && errno == EBADF, "close: vEVENTQ fd closed by destroy");
	iommufd_close(ctx);
	viommu_free(f.v);
}

int main(void)
{
	struct iommufd_ctx *ctx;
	struct iommufd_features feat;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# vdevice test (pid %d)\n", getpid());
	if (iommufd_open(&ctx)) {
		printf("not ok - open /dev/iommu # %s\n", iommufd_last_error());
		return 1;
	}
	if (!check_ok(iommufd_probe_features(ctx, &feat), "probe features") ||
	    !feat.viommu || !feat.vdevice || !feat.veventq) {
		check(false, "kernel has vIOMMU %d, vDEVICE %d, vEVENTQ %d", feat.viommu,
		      feat.vdevice, feat.veventq);
		printf("%d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
		return 1;
	}
	test_endpoints_first(ctx);
	test_owner_first(ctx);
	test_default_type(ctx);
	test_context_close();
	(void)skip;
	iommufd_close(ctx);

	printf("%d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
	return n_fail ? 1 : 0;
}
