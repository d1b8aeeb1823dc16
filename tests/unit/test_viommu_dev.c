/* The virtio-iommu as the guest sees it: a virtio-pci function (device ID
 * 23, requestq 0 and eventq 1, "IOMMU device" / "Virtqueues"), driven
 * through ECAM and its BAR like a driver would, with a virtio-blk behind it
 * (VIRTIO_F_ACCESS_PLATFORM) whose rings and buffers are IOVAs: requests go
 * through the request queue, the disk's DMA is translated, and a DMA to an
 * unmapped or read-only IOVA fails the disk request and reaches the driver
 * as a fault event on the eventq ("Fault reporting"). test_viommu_poll.c
 * builds the same tests with the request queue polled (--iommu poll). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_iommu.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include "acpi.h"
#include "devices.h"
#include "evloop.h"
#include "pci.h"
#include "virtio.h"
#include "viommu.h"
#include "virtio-iommu-dev.h"
#include "vm.h"

#define MEM_SIZE (8u << 20)
#define QSZ 16

/* Guest-physical layout of the test. */
#define IOMMU_RINGS 0x1000	/* q0 desc/avail/used at +0/+0x1000/+0x2000, q1 at +0x3000.. */
#define REQ_GPA 0x10000
#define EVBUF_GPA 0x11000
#define BLK_RINGS 0x20000
#define BLK_HDR 0x30000
#define BLK_DATA 0x31000
#define BLK_STATUS 0x32000
#define IOVA_OFF 0x100000	/* the disk sees GPA x at IOVA x + IOVA_OFF */

/* The event loop keeps its per-fd entries for the life of the process. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:evloop_add\n";
}

struct vq {
	uint64_t desc, avail, used;	/* guest-physical */
	uint16_t avail_idx, used_seen;
	uint64_t notify;		/* BAR offset */
};

struct drv {
	struct pci_dev *pd;
	uint64_t bar, devcfg;
	struct vq q[2];
};

static struct drv iommu, blk;
static pthread_t loop_thread;
static char disk_path[64];
static int disk_fd;

static void *loop_main(void *arg)
{
	evloop_run();
	return NULL;
}

static void *gpa(uint64_t a)
{
	return the_vm.mem.host + a;
}

static uint64_t rd(struct drv *v, uint64_t off, unsigned len)
{
	uint64_t x = 0;
	io_bus_access(&the_vm.mmio, v->bar + off, &x, len, false);
	return x;
}

static void wr(struct drv *v, uint64_t off, uint64_t x, unsigned len)
{
	io_bus_access(&the_vm.mmio, v->bar + off, &x, len, true);
}

static uint32_t cfg_rd(struct drv *v, unsigned reg, unsigned len)
{
	uint32_t x = 0;
	io_bus_access(&the_vm.mmio, LAYOUT_PCI_ECAM + ((uint64_t)v->pd->devfn << 12) + reg, &x,
		      len, false);
	return x;
}

static unsigned find_vcap(struct drv *v, unsigned type)
{
	for (unsigned p = cfg_rd(v, 0x34, 1); p; p = cfg_rd(v, p + 1, 1))
		if (cfg_rd(v, p, 1) == 0x09 && cfg_rd(v, p + 3, 1) == type)
			return p;
	return 0;
}

static uint64_t dev_features(struct drv *v)
{
	wr(v, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	uint64_t f = rd(v, VIRTIO_PCI_COMMON_DF, 4);
	wr(v, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	return f | rd(v, VIRTIO_PCI_COMMON_DF, 4) << 32;
}

/* Initialization (virtio 1.x, 3.1.1) with queue rings at the given device
 * addresses (IOVAs for the disk). */
static void drv_init(struct drv *v, struct pci_dev *pd, uint64_t features, unsigned nq,
		     const uint64_t *ring_addr)
{
	v->pd = pd;
	v->bar = pd->bars[0].addr;
	unsigned ncap = find_vcap(v, VIRTIO_PCI_CAP_NOTIFY_CFG);
	unsigned dcap = find_vcap(v, VIRTIO_PCI_CAP_DEVICE_CFG);
	assert_true(ncap && dcap);
	uint64_t nbase = cfg_rd(v, ncap + 8, 4);
	uint32_t mult = cfg_rd(v, ncap + 16, 4);
	v->devcfg = cfg_rd(v, dcap + 8, 4);

	wr(v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(v, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER, 1);
	wr(v, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	wr(v, VIRTIO_PCI_COMMON_GF, (uint32_t)features, 4);
	wr(v, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	wr(v, VIRTIO_PCI_COMMON_GF, features >> 32, 4);
	wr(v, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
	   VIRTIO_CONFIG_S_FEATURES_OK, 1);
	assert_true(rd(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(rd(v, VIRTIO_PCI_COMMON_NUMQ, 2), nq);
	for (unsigned q = 0; q < nq; q++) {
		struct vq *x = &v->q[q];
		x->desc = ring_addr[q];
		x->avail = ring_addr[q] + 0x1000;
		x->used = ring_addr[q] + 0x2000;
		x->avail_idx = x->used_seen = 0;
		wr(v, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
		wr(v, VIRTIO_PCI_COMMON_Q_SIZE, QSZ, 2);
		wr(v, VIRTIO_PCI_COMMON_Q_DESCLO, x->desc, 4);
		wr(v, VIRTIO_PCI_COMMON_Q_DESCHI, 0, 4);
		wr(v, VIRTIO_PCI_COMMON_Q_AVAILLO, x->avail, 4);
		wr(v, VIRTIO_PCI_COMMON_Q_AVAILHI, 0, 4);
		wr(v, VIRTIO_PCI_COMMON_Q_USEDLO, x->used, 4);
		wr(v, VIRTIO_PCI_COMMON_Q_USEDHI, 0, 4);
		x->notify = nbase + rd(v, VIRTIO_PCI_COMMON_Q_NOFF, 2) * mult;
		wr(v, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	}
	wr(v, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
	   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK, 1);
	assert_int_equal(rd(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
}

/* Ring structures, reached through guest-physical memory (for the disk,
 * its IOVA rings live at GPA = IOVA - IOVA_OFF). */
static uint64_t ring_gpa(struct drv *v, uint64_t a)
{
	return v == &blk ? a - IOVA_OFF : a;
}

static struct vring_desc *desc(struct drv *v, unsigned q, unsigned i)
{
	return (struct vring_desc *)gpa(ring_gpa(v, v->q[q].desc)) + i;
}

static void post(struct drv *v, unsigned q, uint16_t head)
{
	struct vring_avail *a = gpa(ring_gpa(v, v->q[q].avail));
	a->ring[v->q[q].avail_idx % QSZ] = head;
	__atomic_store_n(&a->idx, ++v->q[q].avail_idx, __ATOMIC_RELEASE);
}

static void kick(struct drv *v, unsigned q)
{
	wr(v, v->q[q].notify, q, 2);
}

/* Wait for the next used element of queue q; returns its length. */
static uint32_t wait_used(struct drv *v, unsigned q, uint16_t head)
{
	struct vring_used *u = gpa(ring_gpa(v, v->q[q].used));
	for (int i = 0; i < 5000; i++) {
		if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) != v->q[q].used_seen)
			break;
		usleep(1000);
	}
	assert_int_not_equal(__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE), v->q[q].used_seen);
	struct vring_used_elem *e = &u->ring[v->q[q].used_seen % QSZ];
	v->q[q].used_seen++;
	assert_int_equal(e->id, head);
	return e->len;
}

static bool used_pending(struct drv *v, unsigned q)
{
	struct vring_used *u = gpa(ring_gpa(v, v->q[q].used));
	return __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) != v->q[q].used_seen;
}

/* One virtio-iommu request: `len` readable bytes at REQ_GPA, `wlen`
 * writable ones right after. Returns the used length; *status from the
 * tail (the last 4 writable bytes). */
static uint32_t iommu_req(const void *req, uint32_t len, uint32_t wlen, uint8_t *status)
{
	memcpy(gpa(REQ_GPA), req, len);
	memset(gpa(REQ_GPA + len), 0xEE, wlen);
	*desc(&iommu, 0, 0) = (struct vring_desc){ REQ_GPA, len, VRING_DESC_F_NEXT, 1 };
	*desc(&iommu, 0, 1) = (struct vring_desc){ REQ_GPA + len, wlen, VRING_DESC_F_WRITE, 0 };
	post(&iommu, 0, 0);
	kick(&iommu, 0);
	uint32_t used = wait_used(&iommu, 0, 0);
	*status = *(uint8_t *)gpa(REQ_GPA + len + wlen - 4);
	return used;
}

static uint8_t attach(uint32_t dom, uint32_t ep)
{
	struct virtio_iommu_req_attach r = { .head.type = VIRTIO_IOMMU_T_ATTACH, .domain = dom,
					     .endpoint = ep };
	uint8_t st;
	assert_int_equal(iommu_req(&r, offsetof(typeof(r), tail), 4, &st), 4);
	return st;
}

static uint8_t map(uint32_t dom, uint64_t iova, uint64_t size, uint64_t pa, uint32_t flags)
{
	struct virtio_iommu_req_map r = { .head.type = VIRTIO_IOMMU_T_MAP, .domain = dom,
					  .virt_start = iova, .virt_end = iova + size - 1,
					  .phys_start = pa, .flags = flags };
	uint8_t st;
	assert_int_equal(iommu_req(&r, offsetof(typeof(r), tail), 4, &st), 4);
	return st;
}

static uint8_t unmap(uint32_t dom, uint64_t iova, uint64_t size)
{
	struct virtio_iommu_req_unmap r = { .head.type = VIRTIO_IOMMU_T_UNMAP, .domain = dom,
					    .virt_start = iova, .virt_end = iova + size - 1 };
	uint8_t st;
	assert_int_equal(iommu_req(&r, offsetof(typeof(r), tail), 4, &st), 4);
	return st;
}

/* A disk read of sector 0 into BLK_DATA (IOVAs). Returns the used length;
 * *status is the status byte (0xEE if the device could not write it). */
static uint32_t blk_read(uint8_t *status)
{
	struct virtio_blk_outhdr *h = gpa(BLK_HDR);
	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_IN, .sector = 0 };
	*(uint8_t *)gpa(BLK_STATUS) = 0xEE;
	*desc(&blk, 0, 0) = (struct vring_desc){ BLK_HDR + IOVA_OFF, sizeof(*h), VRING_DESC_F_NEXT, 1 };
	*desc(&blk, 0, 1) = (struct vring_desc){ BLK_DATA + IOVA_OFF, 512,
						 VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2 };
	*desc(&blk, 0, 2) = (struct vring_desc){ BLK_STATUS + IOVA_OFF, 1, VRING_DESC_F_WRITE, 0 };
	post(&blk, 0, 0);
	kick(&blk, 0);
	uint32_t len = wait_used(&blk, 0, 0);
	*status = *(uint8_t *)gpa(BLK_STATUS);
	return len;
}

/* Give the eventq n fault buffers. */
static void post_event_buffers(unsigned n)
{
	static unsigned next;
	for (unsigned i = 0; i < n; i++, next++) {
		unsigned d = next % QSZ;
		memset(gpa(EVBUF_GPA + d * 64), 0xEE, 64);
		*desc(&iommu, 1, d) = (struct vring_desc){ EVBUF_GPA + d * 64,
							   sizeof(struct virtio_iommu_fault),
							   VRING_DESC_F_WRITE, 0 };
		post(&iommu, 1, d);
	}
	kick(&iommu, 1);
}

static int group_setup(void **state)
{
	io_bus_init(&the_vm.pio);
	io_bus_init(&the_vm.mmio);
	the_vm.mmio64_base = 0x200000000ULL;
	the_vm.mem.host = aligned_alloc(4096, MEM_SIZE);
	assert_non_null(the_vm.mem.host);
	memset(the_vm.mem.host, 0, MEM_SIZE);
	the_vm.mem.size = the_vm.mem.low_size = MEM_SIZE;
	assert_int_equal(pci_init(), 0);
	assert_int_equal(evloop_init(), 0);

#ifdef VIOMMU_TEST_POLL_US
	/* force=on: the poller runs on a one-CPU machine too (yielding). */
#ifdef VIOMMU_TEST_POLL_AUTO
	virtio_iommu_set_poll(VIOMMU_TEST_POLL_US, true, true);
#else
	virtio_iommu_set_poll(VIOMMU_TEST_POLL_US, false, true);
#endif
#endif
	assert_int_equal(virtio_iommu_create(), 0);
	assert_non_null(the_viommu);
	assert_int_equal(virtio_iommu_create(), -EEXIST);

	snprintf(disk_path, sizeof(disk_path), "/tmp/vmm-test-viommu-XXXXXX");
	disk_fd = mkstemp(disk_path);
	assert_true(disk_fd >= 0);
	char sector[512];
	memset(sector, 0x5A, sizeof(sector));
	assert_int_equal(pwrite(disk_fd, sector, 512, 0), 512);
	assert_int_equal(ftruncate(disk_fd, 64 * 512), 0);
	struct disk_opts o = { .path = disk_path, .direct = false, .iommu = true };
	assert_int_equal(virtio_blk_create(&o), 0);
	assert_int_equal(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);

	uint64_t rings[2] = { IOMMU_RINGS, IOMMU_RINGS + 0x3000 };
	drv_init(&iommu, pci_get(0), dev_features(&(struct drv){ .pd = pci_get(0),
						   .bar = pci_get(0)->bars[0].addr }), 2, rings);
	return 0;
}

static int group_teardown(void **state)
{
	evloop_stop(0);
	pthread_join(loop_thread, NULL);
	close(disk_fd);
	unlink(disk_path);
	return 0;
}

/* "Device ID" 23, the feature bits and the configuration layout through
 * the device-specific config window. */
static void test_identity_features_config(void **state)
{
	assert_int_equal(cfg_rd(&iommu, 0, 2), 0x1AF4);
	assert_int_equal(cfg_rd(&iommu, 2, 2), 0x1040 + 23);
	assert_int_equal(virtio_iommu_bdf(), iommu.pd->devfn);
	assert_int_equal(viommu_bdf(the_viommu), iommu.pd->devfn);
	uint64_t f = dev_features(&iommu);
	assert_true(f & 1ULL << VIRTIO_F_VERSION_1);
	assert_true(f & 1ULL << VIRTIO_IOMMU_F_MAP_UNMAP);
	assert_true(f & 1ULL << VIRTIO_IOMMU_F_INPUT_RANGE);
	assert_true(f & 1ULL << VIRTIO_IOMMU_F_DOMAIN_RANGE);
	assert_true(f & 1ULL << VIRTIO_IOMMU_F_PROBE);
	assert_true(f & 1ULL << VIRTIO_IOMMU_F_BYPASS_CONFIG);
	assert_false(f & 1ULL << VIRTIO_IOMMU_F_BYPASS);
	assert_false(f & 1ULL << VIRTIO_IOMMU_F_MMIO);
	assert_false(f & 1ULL << VIRTIO_F_ACCESS_PLATFORM);	/* not behind itself */
	assert_int_equal(rd(&iommu, iommu.devcfg + offsetof(struct virtio_iommu_config, page_size_mask), 8),
			 ~0xfffULL);
	assert_int_equal(rd(&iommu, iommu.devcfg + offsetof(struct virtio_iommu_config, input_range.end), 8),
			 UINT64_MAX);
	assert_int_equal(rd(&iommu, iommu.devcfg + offsetof(struct virtio_iommu_config, domain_range.end), 4),
			 0xffff);
	assert_int_equal(rd(&iommu, iommu.devcfg + offsetof(struct virtio_iommu_config, probe_size), 4), 512);
	assert_int_equal(rd(&iommu, iommu.devcfg + offsetof(struct virtio_iommu_config, bypass), 1), 0);
	/* The disk behind it is an endpoint with its BDF, for the VIOT. */
	struct acpi_pci_endpoint_range r[2];
	struct pci_dev *b = pci_get(1);
	assert_int_equal(viommu_pci_ranges(the_viommu, r, 2), 1);
	assert_int_equal(r[0].bdf_start, b->devfn);
	assert_int_equal(r[0].bdf_end, b->devfn);
}

/* Requests through the request queue: status in the tail, used length =
 * the writable part; unknown type and a missing tail: used length 0. */
static void test_request_queue(void **state)
{
	uint16_t ep = pci_get(1)->devfn;
	uint8_t st;
	struct virtio_iommu_req_probe p = { .head.type = VIRTIO_IOMMU_T_PROBE, .endpoint = ep };
	assert_int_equal(iommu_req(&p, sizeof(p), 512 + 4, &st), 512 + 4);
	assert_int_equal(st, VIRTIO_IOMMU_S_OK);
	struct virtio_iommu_probe_resv_mem *pr = gpa(REQ_GPA + sizeof(p));
	assert_int_equal(pr->head.type, VIRTIO_IOMMU_PROBE_T_RESV_MEM);
	assert_int_equal(pr->subtype, VIRTIO_IOMMU_RESV_MEM_T_MSI);
	assert_int_equal(pr->start, 0xfee00000);
	assert_int_equal(pr->end, 0xfeefffff);

	struct virtio_iommu_req_head h = { .type = 0x42 };
	assert_int_equal(iommu_req(&h, sizeof(h), 4, &st), 0);
	assert_int_equal(st, 0xEE);
	struct virtio_iommu_req_attach a = { .head.type = VIRTIO_IOMMU_T_ATTACH, .domain = 1,
					     .endpoint = ep };
	assert_int_equal(iommu_req(&a, offsetof(typeof(a), tail), 3, &st), 0);
	assert_int_equal(attach(7, 0x4242), VIRTIO_IOMMU_S_NOENT);
	assert_int_equal(map(7, 0, 0x1000, 0, 3), VIRTIO_IOMMU_S_NOENT);
}

/* The disk's DMA goes through its domain: rings and buffers at IOVAs. An
 * unmapped buffer fails the disk request and raises a MAPPING fault with
 * the disk's endpoint ID and the address, on the eventq; a read-only one
 * refuses the device's write. */
static void test_disk_behind_iommu(void **state)
{
	struct drv probe = { .pd = pci_get(1), .bar = pci_get(1)->bars[0].addr };
	uint64_t f = dev_features(&probe);
	assert_true(f & 1ULL << VIRTIO_F_ACCESS_PLATFORM);
	uint16_t ep = pci_get(1)->devfn;

	assert_int_equal(attach(1, ep), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(1, BLK_RINGS + IOVA_OFF, 0x3000, BLK_RINGS, 3), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(1, BLK_HDR + IOVA_OFF, 0x1000, BLK_HDR, VIRTIO_IOMMU_MAP_F_READ), 0);
	assert_int_equal(map(1, BLK_DATA + IOVA_OFF, 0x1000, BLK_DATA, 3), 0);
	assert_int_equal(map(1, BLK_STATUS + IOVA_OFF, 0x1000, BLK_STATUS, 3), 0);
	memset(gpa(BLK_RINGS), 0, 0x3000);
	uint64_t rings[1] = { BLK_RINGS + IOVA_OFF };
	drv_init(&blk, pci_get(1), 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_ACCESS_PLATFORM,
		 1, rings);

	uint8_t st;
	memset(gpa(BLK_DATA), 0, 512);
	assert_int_equal(blk_read(&st), 513);
	assert_int_equal(st, VIRTIO_BLK_S_OK);
	assert_int_equal(((uint8_t *)gpa(BLK_DATA))[0], 0x5A);
	assert_int_equal(((uint8_t *)gpa(BLK_DATA))[511], 0x5A);

	/* The driver has given the eventq a few buffers. */
	post_event_buffers(4);
	assert_false(used_pending(&iommu, 1));

	/* Unmap the data buffer: the read fails, a fault is reported. */
	assert_int_equal(unmap(1, BLK_DATA + IOVA_OFF, 0x1000), VIRTIO_IOMMU_S_OK);
	memset(gpa(BLK_DATA), 0, 512);
	blk_read(&st);
	assert_int_not_equal(st, VIRTIO_BLK_S_OK);
	assert_int_equal(((uint8_t *)gpa(BLK_DATA))[0], 0);
	unsigned head = iommu.q[1].used_seen % QSZ;
	assert_int_equal(wait_used(&iommu, 1, head), sizeof(struct virtio_iommu_fault));
	struct virtio_iommu_fault *ev = gpa(EVBUF_GPA + head * 64);
	assert_int_equal(ev->reason, VIRTIO_IOMMU_FAULT_R_MAPPING);
	assert_int_equal(ev->flags, VIRTIO_IOMMU_FAULT_F_WRITE | VIRTIO_IOMMU_FAULT_F_ADDRESS);
	assert_int_equal(ev->endpoint, ep);
	assert_int_equal(ev->address, BLK_DATA + IOVA_OFF);
	assert_int_equal(ev->reserved[0] | ev->reserved[1] | ev->reserved[2], 0);

	/* Read-only data buffer: the device may not write it. */
	assert_int_equal(map(1, BLK_DATA + IOVA_OFF, 0x1000, BLK_DATA, VIRTIO_IOMMU_MAP_F_READ), 0);
	blk_read(&st);
	assert_int_not_equal(st, VIRTIO_BLK_S_OK);
	head = iommu.q[1].used_seen % QSZ;
	assert_int_equal(wait_used(&iommu, 1, head), sizeof(struct virtio_iommu_fault));
	ev = gpa(EVBUF_GPA + head * 64);
	assert_int_equal(ev->reason, VIRTIO_IOMMU_FAULT_R_MAPPING);
	assert_int_equal(ev->flags, VIRTIO_IOMMU_FAULT_F_WRITE | VIRTIO_IOMMU_FAULT_F_ADDRESS);

	/* Writable again: the disk works. */
	assert_int_equal(unmap(1, BLK_DATA + IOVA_OFF, 0x1000), 0);
	assert_int_equal(map(1, BLK_DATA + IOVA_OFF, 0x1000, BLK_DATA, 3), 0);
	assert_int_equal(blk_read(&st), 513);
	assert_int_equal(st, VIRTIO_BLK_S_OK);

	/* A fault raised while the eventq has no buffer waits for one. */
	post_event_buffers(0);
	struct viommu_stats s0, s1;
	viommu_get_stats(the_viommu, &s0);
	viommu_report_fault(the_viommu, VIRTIO_IOMMU_FAULT_R_UNKNOWN, 0, ep, 0);
	viommu_report_fault(the_viommu, VIRTIO_IOMMU_FAULT_R_UNKNOWN, 0, ep, 0);
	viommu_report_fault(the_viommu, VIRTIO_IOMMU_FAULT_R_UNKNOWN, 0, ep, 0);
	/* two buffers were left: two delivered, one pending */
	for (int i = 0; i < 2; i++) {
		head = iommu.q[1].used_seen % QSZ;
		assert_int_equal(wait_used(&iommu, 1, head), sizeof(struct virtio_iommu_fault));
	}
	assert_false(used_pending(&iommu, 1));
	post_event_buffers(1);
	head = iommu.q[1].used_seen % QSZ;
	assert_int_equal(wait_used(&iommu, 1, head), sizeof(struct virtio_iommu_fault));
	viommu_get_stats(the_viommu, &s1);
	assert_int_equal(s1.faults_delivered - s0.faults_delivered, 3);

	/* DETACH: the disk is blocked again (config bypass is 0). */
	struct virtio_iommu_req_detach d = { .head.type = VIRTIO_IOMMU_T_DETACH, .domain = 1,
					     .endpoint = ep };
	assert_int_equal(iommu_req(&d, offsetof(typeof(d), tail), 4, &st), 4);
	assert_int_equal(st, VIRTIO_IOMMU_S_OK);
	post_event_buffers(2);
	*(uint8_t *)gpa(BLK_STATUS) = 0xEE;
	struct vring_avail *a = gpa(BLK_RINGS + 0x1000);
	a->ring[blk.q[0].avail_idx % QSZ] = 0;
	__atomic_store_n(&a->idx, ++blk.q[0].avail_idx, __ATOMIC_RELEASE);
	kick(&blk, 0);
	/* The disk cannot even reach its ring: the driver sees nothing, the
	 * IOMMU driver gets a DOMAIN fault. */
	head = iommu.q[1].used_seen % QSZ;
	assert_int_equal(wait_used(&iommu, 1, head), sizeof(struct virtio_iommu_fault));
	ev = gpa(EVBUF_GPA + head * 64);
	assert_int_equal(ev->reason, VIRTIO_IOMMU_FAULT_R_DOMAIN);
	assert_int_equal(ev->endpoint, ep);
	assert_int_equal(*(uint8_t *)gpa(BLK_STATUS), 0xEE);

	/* The driver turns bypass on: the disk reaches GPAs directly. */
	wr(&iommu, iommu.devcfg + offsetof(struct virtio_iommu_config, bypass), 1, 1);
	assert_int_equal(rd(&iommu, iommu.devcfg + offsetof(struct virtio_iommu_config, bypass), 1), 1);
	wr(&iommu, iommu.devcfg + offsetof(struct virtio_iommu_config, page_size_mask), 0, 8);
	assert_int_equal(rd(&iommu, iommu.devcfg + offsetof(struct virtio_iommu_config, page_size_mask), 8),
			 ~0xfffULL);

	char *buf = NULL;
	size_t len = 0;
	FILE *fs = open_memstream(&buf, &len);
	viommu_print_stats(fs);
	fclose(fs);
	assert_non_null(strstr(buf, "virtio-iommu: requests: attach"));
	free(buf);
}

#ifdef VIOMMU_TEST_POLL_US
/* The driver's rule for kicking after making buffers old..new available
 * (virtio 1.2, 2.7.10 with EVENT_IDX, which drv_init negotiated). */
static bool driver_would_kick(struct drv *v, unsigned q, uint16_t old, uint16_t new)
{
	struct vring_used *u = gpa(ring_gpa(v, v->q[q].used));
	uint16_t avail_event = __atomic_load_n((uint16_t *)&u->ring[QSZ], __ATOMIC_ACQUIRE);
	return vring_need_event(avail_event, new, old);
}

/* The number after `key` in the request queue's stats line. */
static uint64_t stat(const char *key)
{
	char *buf = NULL, *p;
	size_t len = 0;
	unsigned long long n = ~0ULL;
	FILE *fs = open_memstream(&buf, &len);
	viommu_print_stats(fs);
	fclose(fs);
	p = strstr(buf, key);
	assert_non_null(p);
	assert_int_equal(sscanf(p + strlen(key), "%llu", &n), 1);
	free(buf);
	return n;
}

static uint64_t stat_polled(void)
{
	return stat(" polled ");
}

/* A MAP of page i at IOVA 0x40000000 + i pages, posted as the driver
 * would: kicked only if the device asks for kicks. Returns whether it was. */
static bool map_as_driver(unsigned i)
{
	struct virtio_iommu_req_map r = {
		.head.type = VIRTIO_IOMMU_T_MAP, .domain = 3,
		.virt_start = 0x40000000 + i * 0x1000ull,
		.virt_end = 0x40000000 + i * 0x1000ull + 0xfff,
		.phys_start = 0x1000 * i, .flags = VIRTIO_IOMMU_MAP_F_READ,
	};
	uint32_t len = offsetof(typeof(r), tail);
	uint16_t old = iommu.q[0].avail_idx;
	bool kicked;

	memcpy(gpa(REQ_GPA), &r, len);
	memset(gpa(REQ_GPA + len), 0xEE, 4);
	*desc(&iommu, 0, 0) = (struct vring_desc){ REQ_GPA, len, VRING_DESC_F_NEXT, 1 };
	*desc(&iommu, 0, 1) = (struct vring_desc){ REQ_GPA + len, 4, VRING_DESC_F_WRITE, 0 };
	post(&iommu, 0, 0);
	kicked = driver_would_kick(&iommu, 0, old, iommu.q[0].avail_idx);
	if (kicked)
		kick(&iommu, 0);
	assert_int_equal(wait_used(&iommu, 0, 0), 4);
	assert_int_equal(*(uint8_t *)gpa(REQ_GPA + len), VIRTIO_IOMMU_S_OK);
	return kicked;
}

#ifdef VIOMMU_TEST_POLL_AUTO
/* --iommu poll=auto: the window starts closed (every request kicks), grows
 * while the guest's requests come closer together than the ceiling, until
 * the poller catches them without kicks; a pause longer than the ceiling
 * halves it. */
static void test_poll_auto(void **state)
{
	uint16_t ep = pci_get(1)->devfn;
	uint64_t polled0 = stat_polled(), grown0 = stat(" grown "), kicks0 = stat(" kicks ");
	unsigned late_kicks = 0, n = 40;

	assert_int_equal(attach(3, ep), VIRTIO_IOMMU_S_OK);
	for (unsigned i = 0; i < n; i++) {
		bool kicked = map_as_driver(i);
		late_kicks += kicked && i >= n - 10;
		usleep(300);	/* a gap well inside the 50 ms ceiling */
	}
	uint64_t window = stat(" window ");
	printf("poll auto: window %llu us, grown %llu, kicks %llu, polled %llu of %u\n",
	       (unsigned long long)window, (unsigned long long)(stat(" grown ") - grown0),
	       (unsigned long long)(stat(" kicks ") - kicks0),
	       (unsigned long long)(stat_polled() - polled0), n + 1);
	assert_true(stat(" grown ") > grown0);
	assert_true(window >= 256);		/* 300 us gaps need at least that */
	assert_true(window <= VIOMMU_TEST_POLL_US);
	assert_true(stat_polled() - polled0 > 0);
	assert_true(stat(" kicks ") - kicks0 < n);
	/* By then the window covers the gaps; a sleep that overran on a busy
	 * machine may still cost a kick (and grow the window again). */
	assert_true(late_kicks <= 3);

	/* Quiet for longer than the ceiling: the poller stops, and the next
	 * kick finds a gap no window would bridge: the window halves. */
	uint64_t shrunk0 = stat(" shrunk ");
	usleep(VIOMMU_TEST_POLL_US + window + 20000);
	assert_true(map_as_driver(n));		/* kicks are back on */
	assert_int_equal(stat(" shrunk "), shrunk0 + 1);
	assert_int_equal(stat(" window "), window / 2);
	assert_int_equal(unmap(3, 0x40000000, (n + 1) * 0x1000ull), VIRTIO_IOMMU_S_OK);
}
#else
static atomic_bool hog_run;

static void *hog(void *arg)
{
	(void)arg;
	while (atomic_load(&hog_run))
		;
	return NULL;
}

/* The poller thread's id, found by its name. */
static pid_t poller_tid(void)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *e;
	pid_t tid = -1;

	assert_non_null(dir);
	while (tid < 0 && (e = readdir(dir))) {
		char path[300], comm[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		if (e->d_name[0] == '.' || !(f = fopen(path, "r")))
			continue;
		if (fgets(comm, sizeof(comm), f) && !strcmp(comm, "viommu-poll\n"))
			tid = atoi(e->d_name);
		fclose(f);
	}
	closedir(dir);
	assert_true(tid > 0);
	return tid;
}

static bool stats_say(const char *what)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fs = open_memstream(&buf, &len);
	viommu_print_stats(fs);
	fclose(fs);
	bool yes = strstr(buf, what) != NULL;
	free(buf);
	return yes;
}

/* The busy thread and the poller's affinity, undone by the teardown even
 * when an assertion ends the test early. */
static pthread_t hog_thread;
static pid_t hog_poller = -1;
static cpu_set_t hog_saved;

static int poll_priority_teardown(void **state)
{
	(void)state;
	if (atomic_exchange(&hog_run, false))
		pthread_join(hog_thread, NULL);
	if (hog_poller > 0)
		sched_setaffinity(hog_poller, sizeof(hog_saved), &hog_saved);
	hog_poller = -1;
	return 0;
}

/* A vCPU holds the device lock for longer than the stall limit (here a
 * bypass write whose backend call takes 30 ms) while the poller spins and
 * a request comes: the poller waits for the lock, which is not a stall of
 * its own, so it stays at idle priority. */
static atomic_bool slow_holding;
static int slow_detach(void *be, uint32_t ep, void *ep_priv, bool bypass)
{
	atomic_store(&slow_holding, true);
	usleep(30000);
	return 0;
}

static void *flip_bypass(void *arg)
{
	wr(&iommu, iommu.devcfg + offsetof(struct virtio_iommu_config, bypass), *(uint8_t *)arg, 1);
	return NULL;
}

static void test_poll_lock_wait(void **state)
{
	static const struct viommu_backend_ops ops = { .detach = slow_detach };
	const uint64_t boff = iommu.devcfg + offsetof(struct virtio_iommu_config, bypass);
	uint16_t ep = pci_get(1)->devfn;
	pthread_t t;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || !stats_say("poller priority idle\n")) {
		printf("NOTE: the poller is not at idle priority (one CPU, or it stalled "
		       "before): its lock wait is not checked here\n");
		return;
	}
	viommu_set_backend(the_viommu, &ops, NULL);
	assert_int_equal(viommu_add_endpoint(the_viommu, 0x97, (void *)0x1), 0);
	uint8_t b = !rd(&iommu, boff, 1);
	unsigned tries, kicked = 1;
	for (tries = 0; tries < 5 && kicked; tries++) {
		assert_int_equal(attach(3, ep), VIRTIO_IOMMU_S_OK);	/* polling starts */
		atomic_store(&slow_holding, false);
		assert_int_equal(pthread_create(&t, NULL, flip_bypass, &b), 0);
		while (!atomic_load(&slow_holding))
			usleep(100);
		kicked = map_as_driver(tries);	/* posted while the lock is held */
		pthread_join(t, NULL);
		b = !b;
	}
	viommu_set_backend(the_viommu, NULL, NULL);
	assert_int_equal(unmap(3, 0x40000000, tries * 0x1000ull), VIRTIO_IOMMU_S_OK);
	printf("request found by the poller behind a held lock: %s (%u tries)\n",
	       kicked ? "no" : "yes", tries);
	assert_false(kicked);
	assert_true(stats_say("poller priority idle\n"));
	assert_int_equal(sched_getscheduler(poller_tid()), SCHED_IDLE);
}

/* The poller runs at idle priority (SCHED_IDLE), so any other thread on its
 * CPU goes first; held off its CPU while it polls (here by a busy thread
 * pinned with it) and a request waits, it answers late once, then goes
 * back to normal priority and shares the CPU fairly (or, where leaving
 * SCHED_IDLE is refused, stops polling: kicks on). With one CPU (force=on)
 * it stays at normal priority and yields. */
static void test_poll_priority(void **state)
{
	uint16_t ep = pci_get(1)->devfn;
	pid_t tid = poller_tid();

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		printf("NOTE: one CPU online: idle priority and its stall fallback are not "
		       "checked here, only the one-CPU mode (normal priority, yielding)\n");
		assert_true(stats_say("poller priority normal, yielding"));
		assert_int_equal(sched_getscheduler(tid), SCHED_OTHER);
		return;
	}
	if (stats_say("after a stall")) {
		/* The earlier tests' poller was held off its CPU (a loaded
		 * machine): the fallback already happened. */
		printf("NOTE: the poller stalled before this test: only the fallback is checked\n");
	} else {
		assert_true(stats_say("poller priority idle\n"));
		assert_int_equal(sched_getscheduler(tid), SCHED_IDLE);

		/* The poller and a busy thread on one CPU. */
		cpu_set_t one;
		int cpu = sched_getcpu();

		assert_int_equal(sched_getaffinity(tid, sizeof(hog_saved), &hog_saved), 0);
		CPU_ZERO(&one);
		CPU_SET(cpu < 0 ? 0 : cpu, &one);
		atomic_store(&hog_run, true);
		assert_int_equal(pthread_create(&hog_thread, NULL, hog, NULL), 0);
		assert_int_equal(pthread_setaffinity_np(hog_thread, sizeof(one), &one), 0);
		hog_poller = tid;
		assert_int_equal(sched_setaffinity(tid, sizeof(one), &one), 0);

		assert_int_equal(attach(3, ep), VIRTIO_IOMMU_S_OK);	/* polling starts */
		unsigned i;
		for (i = 0; i < 20 && !stats_say("after a stall"); i++)
			map_as_driver(i);	/* served, if late */
		poll_priority_teardown(NULL);
		printf("poller held off its CPU after %u requests\n", i);
		/* The ATTACH itself may have been the late one: then nothing
		 * was mapped (and an empty UNMAP range is not a request). */
		if (i)
			assert_int_equal(unmap(3, 0x40000000, i * 0x1000ull), VIRTIO_IOMMU_S_OK);
	}
	if (sched_getscheduler(tid) == SCHED_OTHER) {
		printf("poller back at normal priority\n");
		assert_true(stats_say("poller priority normal, after a stall (off its CPU for "));
	} else {
		/* Not allowed back to normal priority: kicks on for good. */
		printf("poller not allowed back to normal priority: polling stopped\n");
		assert_int_equal(sched_getscheduler(tid), SCHED_IDLE);
		assert_true(stats_say("polling stopped after a stall"));
		assert_true(map_as_driver(0));
		assert_true(map_as_driver(1));
		assert_int_equal(unmap(3, 0x40000000, 2 * 0x1000ull), VIRTIO_IOMMU_S_OK);
	}
}

/* --iommu poll: after a kick the device polls with kicks turned off, so
 * requests posted without a kick are answered; once idle for the poll
 * time it asks for kicks again. */
static void test_polling(void **state)
{
	uint16_t ep = pci_get(1)->devfn;
	uint64_t polled0 = stat_polled();

	assert_int_equal(attach(3, ep), VIRTIO_IOMMU_S_OK);	/* a kick: polling starts */
	for (unsigned i = 0; i < 3 * QSZ; i++)
		assert_false(map_as_driver(i));	/* told not to kick: the poller answers */
	assert_true(stat_polled() - polled0 >= 3 * QSZ);

	/* Idle: kicks are asked for again within the poll time (and some
	 * slack for a loaded machine). */
	bool kicks_back = false;
	for (int i = 0; i < 200 && !kicks_back; i++) {
		usleep(VIOMMU_TEST_POLL_US / 4 + 1000);
		kicks_back = driver_would_kick(&iommu, 0, iommu.q[0].avail_idx,
					       iommu.q[0].avail_idx + 1);
	}
	assert_true(kicks_back);
	assert_int_equal(unmap(3, 0x40000000, 3 * QSZ * 0x1000ull), VIRTIO_IOMMU_S_OK);
}
#endif
#endif

/* The adaptive poll window's rule, on its own. */
static void test_poll_window_next(void **state)
{
	const uint64_t start = VIRTIO_IOMMU_POLL_GROW_START_NS, max = 2000000;

	(void)state;
	/* Closed: a gap within the ceiling opens it at the start size. */
	assert_int_equal(virtio_iommu_poll_window_next(0, 50000, max), start);
	/* A gap the window did not bridge doubles it, up to the ceiling. */
	assert_int_equal(virtio_iommu_poll_window_next(start, 50000, max), 2 * start);
	assert_int_equal(virtio_iommu_poll_window_next(1500000, 1600000, max), max);
	assert_int_equal(virtio_iommu_poll_window_next(max, max, max), max);
	/* A gap it bridged (a kick racing the poller's start) changes nothing. */
	assert_int_equal(virtio_iommu_poll_window_next(512000, 100000, max), 512000);
	/* A gap beyond the ceiling halves it, and closes it below the start. */
	assert_int_equal(virtio_iommu_poll_window_next(1024000, max + 1, max), 512000);
	assert_int_equal(virtio_iommu_poll_window_next(2 * start, 10 * max, max), start);
	assert_int_equal(virtio_iommu_poll_window_next(start, 10 * max, max), 0);
	assert_int_equal(virtio_iommu_poll_window_next(0, UINT64_MAX, max), 0);
	/* A ceiling below the start size still bounds the window. */
	assert_int_equal(virtio_iommu_poll_window_next(0, 5000, 8000), 8000);
}

/* The driver clears bypass while a passthrough endpoint is unattached and
 * the backend cannot block it: the device says it needs a reset (its
 * status) rather than go on as if the endpoint's DMA were blocked. */
static int fail_block;
static int blockfail_detach(void *be, uint32_t ep, void *ep_priv, bool bypass)
{
	return bypass ? 0 : fail_block;
}

static void test_bypass_block_failure(void **state)
{
	static const struct viommu_backend_ops ops = { .detach = blockfail_detach };
	const uint64_t boff = iommu.devcfg + offsetof(struct virtio_iommu_config, bypass);

	viommu_set_backend(the_viommu, &ops, NULL);
	assert_int_equal(viommu_add_endpoint(the_viommu, 0x99, (void *)0x1), 0);
	wr(&iommu, boff, 1, 1);
	fail_block = 0;
	wr(&iommu, boff, 0, 1);
	assert_int_equal(rd(&iommu, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	wr(&iommu, boff, 1, 1);
	/* A request just before: where the device polls, it polls now. */
	assert_int_equal(attach(5, pci_get(1)->devfn), VIRTIO_IOMMU_S_OK);
	fail_block = -EIO;
	wr(&iommu, boff, 0, 1);
	assert_true(rd(&iommu, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	fail_block = 0;
	wr(&iommu, boff, 1, 1);
	viommu_set_backend(the_viommu, NULL, NULL);

	/* From then on no request is served, kicked or not (the poller
	 * stops too), until the driver resets the device. */
	struct virtio_iommu_req_detach r = { .head.type = VIRTIO_IOMMU_T_DETACH, .domain = 5,
					     .endpoint = pci_get(1)->devfn };
	uint32_t len = offsetof(typeof(r), tail);
	uint16_t old = iommu.q[0].avail_idx;

	memcpy(gpa(REQ_GPA), &r, len);
	*desc(&iommu, 0, 0) = (struct vring_desc){ REQ_GPA, len, VRING_DESC_F_NEXT, 1 };
	*desc(&iommu, 0, 1) = (struct vring_desc){ REQ_GPA + len, 4, VRING_DESC_F_WRITE, 0 };
	post(&iommu, 0, 0);
#ifdef VIOMMU_TEST_POLL_US
	if (driver_would_kick(&iommu, 0, old, iommu.q[0].avail_idx))
#else
	(void)old;
#endif
		kick(&iommu, 0);
	usleep(200000);
	assert_false(used_pending(&iommu, 0));
}

/* Device reset: "endpoints are not attached to any domain"; bypass kept. */
static void test_reset(void **state)
{
	wr(&iommu, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	struct viommu_stats s;
	viommu_get_stats(the_viommu, &s);
	assert_int_equal(s.domains, 0);
	assert_int_equal(s.mappings, 0);
	assert_int_equal(rd(&iommu, iommu.devcfg + offsetof(struct virtio_iommu_config, bypass), 1), 1);
	uint64_t rings[2] = { IOMMU_RINGS, IOMMU_RINGS + 0x3000 };
	memset(gpa(IOMMU_RINGS), 0, 0x6000);
	drv_init(&iommu, pci_get(0), 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_IOMMU_F_MAP_UNMAP, 2, rings);
	/* Without BYPASS_CONFIG accepted, the flag is unrecognised. */
	struct virtio_iommu_req_attach a = { .head.type = VIRTIO_IOMMU_T_ATTACH, .domain = 1,
					     .endpoint = pci_get(1)->devfn,
					     .flags = VIRTIO_IOMMU_ATTACH_F_BYPASS };
	uint8_t st;
	assert_int_equal(iommu_req(&a, offsetof(typeof(a), tail), 4, &st), 4);
	assert_int_equal(st, VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(attach(1, pci_get(1)->devfn), VIRTIO_IOMMU_S_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_features_config),
		cmocka_unit_test(test_request_queue),
		cmocka_unit_test(test_disk_behind_iommu),
		cmocka_unit_test(test_poll_window_next),
#if defined(VIOMMU_TEST_POLL_AUTO)
		cmocka_unit_test(test_poll_auto),
#elif defined(VIOMMU_TEST_POLL_US)
		cmocka_unit_test(test_polling),
		cmocka_unit_test(test_poll_lock_wait),
		cmocka_unit_test_teardown(test_poll_priority, poll_priority_teardown),
#endif
		cmocka_unit_test(test_bypass_block_failure),
		cmocka_unit_test(test_reset),
	};
	return cmocka_run_group_tests_name("viommu_dev", tests, group_setup, group_teardown);
}
