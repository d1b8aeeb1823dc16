/* Unit tests for vmm/virtio-blk.c over vmm/virtio-pci.c (and, on the same
 * transport, vmm/virtio-console.c and vmm/virtio-net.c), driven the way a
 * guest driver does it: config space through ECAM, the common/notify/ISR/
 * device structures through BAR0 MMIO on the real I/O bus, rings in a fake
 * guest memory, completions from the real event loop on its own thread.
 * No /dev/kvm: interrupt delivery calls fail quietly and are observed
 * through ISR and the MSI-X PBA instead. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_console.h>
#include <linux/virtio_net.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "devices.h"
#include "evloop.h"
#include "pci.h"
#include "virtio.h"
#include "vm.h"

#define MEM_SIZE (8u << 20)
#define QSZ 16
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x2000
#define USED_GPA 0x3000
#define HDR_GPA 0x10000
#define DATA_GPA 0x20000
#define STATUS_GPA 0x30000
#define DISK_SECTORS 64

/* The event loop keeps its per-fd entries for the life of the process
 * (only the epoll set points at them): not a leak of the code under test. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:evloop_add\n";
}

static pthread_t loop_thread;
static char disk_path[64], ro_path[64], con_path[64], pio_path[64];
static bool have_net;
#define DEV_CONSOLE 2
#define DEV_NET 3
static int disk_fd;

/* One driver instance per device under test. */
struct drv {
	struct pci_dev *pd;
	uint64_t bar;
	uint64_t pio;		/* notify I/O BAR's port (pio_notify devices), else 0 */
	unsigned nq;
	uint16_t avail_idx[4], used_seen[4];
};

/* Rings of queue q: queue 0 at DESC/AVAIL/USED_GPA, others higher up. */
static uint64_t ring_base(unsigned q)
{
	return q == 0 ? DESC_GPA : 0x40000 + (q - 1) * 0x4000;
}

static void *loop_main(void *arg)
{
	evloop_run();
	return NULL;
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

	io_bus_access(&the_vm.mmio, LAYOUT_PCI_ECAM + ((uint64_t)v->pd->devfn << 12) + reg, &x, len, false);
	return x;
}

static void cfg_wr(struct drv *v, unsigned reg, uint32_t x, unsigned len)
{
	io_bus_access(&the_vm.mmio, LAYOUT_PCI_ECAM + ((uint64_t)v->pd->devfn << 12) + reg, &x, len, true);
}

/* Find a capability (vendor caps: by cfg_type). */
static unsigned find_cap(struct drv *v, unsigned id, int vtype)
{
	for (unsigned p = cfg_rd(v, 0x34, 1); p; p = cfg_rd(v, p + 1, 1))
		if (cfg_rd(v, p, 1) == id && (vtype < 0 || cfg_rd(v, p + 3, 1) == (unsigned)vtype))
			return p;
	return 0;
}

static void *gpa(uint64_t a) { return the_vm.mem.host + a; }
static struct vring_desc *qdesc(unsigned q, unsigned i)
{
	return (struct vring_desc *)gpa(ring_base(q)) + i;
}
static struct vring_avail *qavail(unsigned q) { return gpa(ring_base(q) + 0x1000); }
static struct vring_used *qused(unsigned q) { return gpa(ring_base(q) + 0x2000); }
static struct vring_avail *avail(void) { return qavail(0); }
static struct vring_used *used(void) { return qused(0); }

static uint64_t dev_features(struct drv *v)
{
	wr(v, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	uint64_t f = rd(v, VIRTIO_PCI_COMMON_DF, 4);

	wr(v, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	return f | rd(v, VIRTIO_PCI_COMMON_DF, 4) << 32;
}

static void set_features(struct drv *v, uint64_t f)
{
	wr(v, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	wr(v, VIRTIO_PCI_COMMON_GF, (uint32_t)f, 4);
	wr(v, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	wr(v, VIRTIO_PCI_COMMON_GF, f >> 32, 4);
}

/* The driver's initialization sequence (virtio 1.2, 3.1.1). */
static void drv_init_dev(struct drv *v, unsigned dev_index, uint16_t pci_id, unsigned nq,
			 uint64_t features)
{
	memset(gpa(0), 0, 0x60000);
	memset(v, 0, sizeof(*v));
	v->pd = pci_get(dev_index);
	assert_non_null(v->pd);
	v->bar = v->pd->bars[0].addr;
	v->nq = nq;
	assert_int_equal(cfg_rd(v, 0, 2), 0x1AF4);
	assert_int_equal(cfg_rd(v, 2, 2), pci_id);
	assert_int_equal(cfg_rd(v, 8, 1), 1);

	wr(v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	assert_int_equal(rd(v, VIRTIO_PCI_COMMON_STATUS, 1), 0);
	wr(v, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE, 1);
	wr(v, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER, 1);
	set_features(v, features);
	wr(v, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
	   VIRTIO_CONFIG_S_FEATURES_OK, 1);
	assert_true(rd(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);

	assert_int_equal(rd(v, VIRTIO_PCI_COMMON_NUMQ, 2), nq);
	for (unsigned q = 0; q < nq; q++) {
		wr(v, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
		assert_true(rd(v, VIRTIO_PCI_COMMON_Q_SIZE, 2) >= QSZ);
		wr(v, VIRTIO_PCI_COMMON_Q_SIZE, QSZ, 2);
		wr(v, VIRTIO_PCI_COMMON_Q_DESCLO, ring_base(q), 4);
		wr(v, VIRTIO_PCI_COMMON_Q_DESCHI, 0, 4);
		wr(v, VIRTIO_PCI_COMMON_Q_AVAILLO, ring_base(q) + 0x1000, 4);
		wr(v, VIRTIO_PCI_COMMON_Q_AVAILHI, 0, 4);
		wr(v, VIRTIO_PCI_COMMON_Q_USEDLO, ring_base(q) + 0x2000, 4);
		wr(v, VIRTIO_PCI_COMMON_Q_USEDHI, 0, 4);
		wr(v, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
		assert_int_equal(rd(v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
		assert_int_equal(rd(v, VIRTIO_PCI_COMMON_Q_NOFF, 2), q);
	}
	wr(v, VIRTIO_PCI_COMMON_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
	   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK, 1);
	assert_int_equal(rd(v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
}

static void drv_init(struct drv *v, unsigned dev_index, uint64_t features)
{
	drv_init_dev(v, dev_index, 0x1042, 1, features);
	wr(v, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
}

#define BASE_FEATURES (1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_FLUSH | \
		       1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE)

/* Make the chain at head available on queue q and kick. */
static void submit_q(struct drv *v, unsigned q, uint16_t head)
{
	struct vring_avail *a = qavail(q);

	a->ring[v->avail_idx[q] % QSZ] = head;
	__atomic_store_n(&a->idx, ++v->avail_idx[q], __ATOMIC_RELEASE);
	if (v->pio) {
		uint16_t x = q;

		io_bus_access(&the_vm.pio, v->pio + 4 * q, &x, 2, true);
	} else {
		wr(v, 0x3000 + 4 * q, q, 2);	/* notify queue q */
	}
}

/* Wait (up to 5 s) for the next used entry of queue q; false on timeout. */
static bool wait_used(struct drv *v, unsigned q, struct vring_used_elem *out)
{
	struct vring_used *u = qused(q);

	for (int i = 0; i < 5000; i++) {
		if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) != v->used_seen[q]) {
			*out = u->ring[v->used_seen[q]++ % QSZ];
			return true;
		}
		usleep(1000);
	}
	return false;
}

/* Submit the chain at head on queue 0 and wait for the device to return it. */
static uint32_t submit_wait(struct drv *v, uint16_t head)
{
	struct vring_used_elem u = { 0 };

	submit_q(v, 0, head);
	assert_true(wait_used(v, 0, &u));
	assert_int_equal(u.id, head);
	return u.len;
}

static void set_qdesc(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		      uint16_t next)
{
	*qdesc(q, i) = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	set_qdesc(0, i, addr, len, flags, next);
}

/* A request: header, data (data_len bytes at data_gpa, none if 0), status. */
static uint8_t request(struct drv *v, uint32_t type, uint64_t sector, uint64_t data_gpa,
		       uint32_t data_len, bool data_write, uint32_t *used_len)
{
	struct virtio_blk_outhdr *h = gpa(HDR_GPA);
	uint8_t *st = gpa(STATUS_GPA);

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	*st = 0xEE;
	set_desc(0, HDR_GPA, sizeof(*h), VRING_DESC_F_NEXT, 1);
	if (data_len) {
		set_desc(1, data_gpa, data_len, VRING_DESC_F_NEXT | (data_write ? VRING_DESC_F_WRITE : 0), 2);
		set_desc(2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	} else {
		set_desc(1, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	}
	uint32_t len = submit_wait(v, 0);

	if (used_len)
		*used_len = len;
	return *st;
}

static int group_setup(void **state)
{
	io_bus_init(&the_vm.pio);
	io_bus_init(&the_vm.mmio);
	the_vm.mmio64_base = 0x200000000ULL;
	the_vm.mem.host = aligned_alloc(4096, MEM_SIZE);
	assert_non_null(the_vm.mem.host);
	the_vm.mem.size = the_vm.mem.low_size = MEM_SIZE;
	assert_int_equal(pci_init(), 0);
	assert_int_equal(evloop_init(), 0);

	/* The disk: on the build machine's real filesystem, so that O_DIRECT
	 * is exercised. */
	snprintf(disk_path, sizeof(disk_path), "/tmp/vmm-test-blk-XXXXXX");
	disk_fd = mkstemp(disk_path);
	assert_true(disk_fd >= 0);
	assert_int_equal(ftruncate(disk_fd, DISK_SECTORS * 512), 0);
	snprintf(ro_path, sizeof(ro_path), "/tmp/vmm-test-blkro-XXXXXX");
	int fd = mkstemp(ro_path);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8 * 512 + 100), 0);	/* partial last sector */
	close(fd);

	struct disk_opts o = { .path = disk_path, .direct = true, .indirect = true };

	assert_int_equal(virtio_blk_create(&o), 0);
	struct disk_opts ro = { .path = ro_path, .readonly = true, .direct = false };

	assert_int_equal(virtio_blk_create(&ro), 0);

	snprintf(con_path, sizeof(con_path), "/tmp/vmm-test-con-XXXXXX");
	fd = mkstemp(con_path);
	assert_true(fd >= 0);
	close(fd);
	struct console_opts co = { .mode = CONSOLE_FILE, .file = con_path };

	assert_int_equal(virtio_console_create(&co), 0);
	/* A tap needs CAP_NET_ADMIN: without it the net test is skipped. */
	struct net_opts no = { .tap = NULL };

	have_net = virtio_net_create(&no) == 0;
	/* One writer per file: the same file as a second writable disk is
	 * refused (it holds the lock), before any PCI function exists. */
	assert_int_equal(virtio_blk_create(&o), -EWOULDBLOCK);
	/* Last: a disk with its notify registers in an I/O BAR (a file of
	 * its own). */
	snprintf(pio_path, sizeof(pio_path), "/tmp/vmm-test-blkpio-XXXXXX");
	fd = mkstemp(pio_path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, DISK_SECTORS * 512), 0);
	close(fd);
	struct disk_opts po = { .path = pio_path, .direct = true, .indirect = true };

	virtio_pci_set_pio_notify(true);
	assert_int_equal(virtio_blk_create(&po), 0);
	virtio_pci_set_pio_notify(false);
	assert_int_equal(pthread_create(&loop_thread, NULL, loop_main, NULL), 0);
	return 0;
}

static int group_teardown(void **state)
{
	evloop_stop(0);
	pthread_join(loop_thread, NULL);
	close(disk_fd);
	unlink(disk_path);
	unlink(ro_path);
	unlink(pio_path);
	unlink(con_path);
	return 0;
}

static void test_identity_and_config(void **state)
{
	struct drv v;

	drv_init(&v, 0, BASE_FEATURES);
	uint64_t f = dev_features(&v);

	assert_true(f & 1ULL << VIRTIO_F_VERSION_1);
	assert_true(f & 1ULL << VIRTIO_RING_F_EVENT_IDX);
	assert_true(f & 1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	assert_false(f & 1ULL << VIRTIO_F_ACCESS_PLATFORM);
	assert_true(f & 1ULL << VIRTIO_BLK_F_FLUSH);
	assert_false(f & 1ULL << VIRTIO_BLK_F_RO);

	unsigned dc = find_cap(&v, 0x09, VIRTIO_PCI_CAP_DEVICE_CFG);

	assert_true(dc);
	uint32_t off = cfg_rd(&v, dc + 8, 4);

	assert_int_equal(rd(&v, off + offsetof(struct virtio_blk_config, capacity), 8), DISK_SECTORS);
	assert_int_equal(rd(&v, off + offsetof(struct virtio_blk_config, seg_max), 4), 254);
	assert_int_equal(rd(&v, off + offsetof(struct virtio_blk_config, blk_size), 4), 512);
	assert_true(find_cap(&v, 0x09, VIRTIO_PCI_CAP_COMMON_CFG));
	assert_true(find_cap(&v, 0x09, VIRTIO_PCI_CAP_ISR_CFG));
	assert_true(find_cap(&v, 0x09, VIRTIO_PCI_CAP_PCI_CFG));
	unsigned nc = find_cap(&v, 0x09, VIRTIO_PCI_CAP_NOTIFY_CFG);

	assert_true(nc);
	assert_int_equal(cfg_rd(&v, nc + 16, 4), 4);	/* notify_off_multiplier */
	assert_int_equal(cfg_rd(&v, nc + 8, 4), 0x3000);
	unsigned mc = find_cap(&v, 0x11, -1);

	assert_true(mc);
	assert_int_equal(cfg_rd(&v, mc + 2, 2) & 0x7FF, 1);	/* 2 vectors */
}

static void test_feature_negotiation(void **state)
{
	struct drv v = { .pd = pci_get(0) };

	v.bar = v.pd->bars[0].addr;
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 3, 1);
	/* Without VERSION_1: refused. */
	set_features(&v, 1ULL << VIRTIO_BLK_F_FLUSH);
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK, 1);
	assert_false(rd(&v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	/* A feature that was not offered: refused. */
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 3, 1);
	set_features(&v, 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_DISCARD);
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK, 1);
	assert_false(rd(&v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	/* Fine, and then the features are frozen. */
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 3, 1);
	set_features(&v, 1ULL << VIRTIO_F_VERSION_1);
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 3 | VIRTIO_CONFIG_S_FEATURES_OK, 1);
	assert_true(rd(&v, VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_FEATURES_OK);
	set_features(&v, 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_BLK_F_FLUSH);
	wr(&v, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_GF, 4), 0);
	/* Reset clears everything. */
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_STATUS, 1), 0);
	wr(&v, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_GF, 4), 0);
	/* Queue beyond num_queues reads size 0. */
	wr(&v, VIRTIO_PCI_COMMON_Q_SELECT, 5, 2);
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
}

static void test_write_read(void **state)
{
	struct drv v;
	uint32_t len;
	uint8_t buf[1024];

	drv_init(&v, 0, BASE_FEATURES);
	for (int i = 0; i < 1024; i++)
		((uint8_t *)gpa(DATA_GPA))[i] = i * 7 + 3;
	assert_int_equal(request(&v, VIRTIO_BLK_T_OUT, 3, DATA_GPA, 1024, false, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1);
	assert_int_equal(pread(disk_fd, buf, 1024, 3 * 512), 1024);
	assert_memory_equal(buf, gpa(DATA_GPA), 1024);

	memset(gpa(DATA_GPA), 0, 4096);
	assert_int_equal(request(&v, VIRTIO_BLK_T_IN, 3, DATA_GPA, 1024, true, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1025);
	assert_memory_equal(buf, gpa(DATA_GPA), 1024);

	/* Misaligned guest buffer: O_DIRECT needs the bounce buffer. */
	memset(gpa(DATA_GPA), 0, 4096);
	assert_int_equal(request(&v, VIRTIO_BLK_T_IN, 3, DATA_GPA + 8, 512, true, &len), VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, (uint8_t *)gpa(DATA_GPA) + 8, 512);
	memset((uint8_t *)gpa(DATA_GPA) + 3, 0x42, 512);
	assert_int_equal(request(&v, VIRTIO_BLK_T_OUT, 10, DATA_GPA + 3, 512, false, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(disk_fd, buf, 512, 10 * 512), 512);
	assert_memory_equal(buf, (uint8_t *)gpa(DATA_GPA) + 3, 512);

	/* The last sector is in range; one past it is not. */
	assert_int_equal(request(&v, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, DATA_GPA, 512, true, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(request(&v, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, DATA_GPA, 1024, true, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(&v, VIRTIO_BLK_T_OUT, DISK_SECTORS, DATA_GPA, 512, false, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(&v, VIRTIO_BLK_T_IN, UINT64_MAX, DATA_GPA, 512, true, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(&v, VIRTIO_BLK_T_IN, UINT64_MAX / 512, DATA_GPA, 512, true, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* Not a whole number of sectors. */
	assert_int_equal(request(&v, VIRTIO_BLK_T_IN, 0, DATA_GPA, 100, true, NULL), VIRTIO_BLK_S_IOERR);
}

static void test_flush_getid_unsupp(void **state)
{
	struct drv v;
	uint32_t len;

	drv_init(&v, 0, BASE_FEATURES);
	assert_int_equal(request(&v, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 1);
	memset(gpa(DATA_GPA), 0, 64);
	assert_int_equal(request(&v, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 20, true, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 21);
	assert_memory_equal(gpa(DATA_GPA), "vmm-test-blk-", 13);
	assert_int_equal(request(&v, VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 16, false, &len),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(len, 1);
	assert_int_equal(request(&v, 0x1234, 0, 0, 0, false, NULL), VIRTIO_BLK_S_UNSUPP);
}

static void test_malformed_requests(void **state)
{
	struct drv v;

	drv_init(&v, 0, BASE_FEATURES);
	/* No status byte (all device-readable): returned, length 0. */
	set_desc(0, HDR_GPA, 16, 0, 0);
	assert_int_equal(submit_wait(&v, 0), 0);
	/* Header too short. */
	set_desc(0, HDR_GPA, 8, VRING_DESC_F_NEXT, 1);
	set_desc(1, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	assert_int_equal(submit_wait(&v, 0), 0);
	/* Buffer outside RAM: the chain is refused by the queue. */
	set_desc(0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, MEM_SIZE - 256, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	assert_int_equal(submit_wait(&v, 0), 0);
	/* A loop. */
	set_desc(0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	set_desc(1, STATUS_GPA, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	assert_int_equal(submit_wait(&v, 0), 0);
	/* The device still works. */
	assert_int_equal(request(&v, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
}

static void test_readonly(void **state)
{
	struct drv v;
	uint32_t len;

	drv_init(&v, 1, BASE_FEATURES | 1ULL << VIRTIO_BLK_F_RO);
	assert_true(dev_features(&v) & 1ULL << VIRTIO_BLK_F_RO);
	/* Created with indirect = false: the feature is not offered. */
	assert_false(dev_features(&v) & 1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	assert_true(dev_features(&v) & 1ULL << VIRTIO_RING_F_EVENT_IDX);
	unsigned dc = find_cap(&v, 0x09, VIRTIO_PCI_CAP_DEVICE_CFG);

	assert_int_equal(rd(&v, cfg_rd(&v, dc + 8, 4), 8), 8);	/* partial sector dropped */
	assert_int_equal(request(&v, VIRTIO_BLK_T_OUT, 0, DATA_GPA, 512, false, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(&v, VIRTIO_BLK_T_IN, 7, DATA_GPA, 512, true, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(len, 513);
	assert_int_equal(request(&v, VIRTIO_BLK_T_IN, 8, DATA_GPA, 512, true, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(request(&v, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
}

static void test_intx_isr(void **state)
{
	struct drv v;

	drv_init(&v, 0, BASE_FEATURES);
	unsigned ic = find_cap(&v, 0x09, VIRTIO_PCI_CAP_ISR_CFG);
	uint32_t isr_off = cfg_rd(&v, ic + 8, 4);

	rd(&v, isr_off, 1);	/* clear */
	assert_int_equal(request(&v, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	/* MSI-X is off: the queue interrupt went through INTx + ISR, and
	 * the status register's Interrupt Status shows it pending. */
	assert_int_equal(cfg_rd(&v, 0x06, 2) & 0x08, 0x08);
	assert_int_equal(rd(&v, isr_off, 1), 1);
	assert_int_equal(cfg_rd(&v, 0x06, 2) & 0x08, 0);
	assert_int_equal(rd(&v, isr_off, 1), 0);	/* read clears */
	/* With Interrupt Disable set the interrupt is still pending (the
	 * status bit), and reading the ISR still takes it. */
	cfg_wr(&v, 0x04, cfg_rd(&v, 0x04, 2) | 0x400, 2);
	assert_int_equal(request(&v, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(cfg_rd(&v, 0x06, 2) & 0x08, 0x08);
	cfg_wr(&v, 0x04, cfg_rd(&v, 0x04, 2) & ~0x400u, 2);
	assert_int_equal(rd(&v, isr_off, 1), 1);
	assert_int_equal(cfg_rd(&v, 0x06, 2) & 0x08, 0);
}

static void test_msix_mask_pba(void **state)
{
	struct drv v;

	drv_init(&v, 0, BASE_FEATURES);
	unsigned mc = find_cap(&v, 0x11, -1);
	uint32_t table = cfg_rd(&v, mc + 4, 4), pba = cfg_rd(&v, mc + 8, 4);

	assert_int_equal(table & 7, 0);		/* BIR 0 */
	wr(&v, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	wr(&v, VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_Q_MSIX, 2), 1);
	wr(&v, VIRTIO_PCI_COMMON_MSIX, 7, 2);	/* no such vector */
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	cfg_wr(&v, mc + 2, 0x8000, 2);		/* MSI-X enable */
	assert_int_equal(cfg_rd(&v, mc + 2, 2), 0x8001);

	/* Entries start masked. */
	assert_int_equal(rd(&v, table + 16 + 12, 4), 1);
	wr(&v, table + 16, 0xFEE00000, 4);
	wr(&v, table + 16 + 4, 0, 4);
	wr(&v, table + 16 + 8, 0x4041, 4);
	assert_int_equal(rd(&v, table + 16 + 8, 4), 0x4041);

	/* A completion while masked sets the pending bit. */
	assert_int_equal(request(&v, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	usleep(2000);
	assert_int_equal(rd(&v, pba, 8), 2);
	/* Unmasking delivers it. */
	wr(&v, table + 16 + 12, 0, 4);
	assert_int_equal(rd(&v, pba, 8), 0);

	/* Function mask: pending again, delivered when cleared. */
	cfg_wr(&v, mc + 2, 0xC000, 2);
	assert_int_equal(request(&v, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	usleep(2000);
	assert_int_equal(rd(&v, pba, 4), 2);
	cfg_wr(&v, mc + 2, 0x8000, 2);
	assert_int_equal(rd(&v, pba, 4), 0);
	cfg_wr(&v, mc + 2, 0, 2);
}

static void test_pci_cfg_window(void **state)
{
	struct drv v;

	drv_init(&v, 0, BASE_FEATURES);
	unsigned cc = find_cap(&v, 0x09, VIRTIO_PCI_CAP_PCI_CFG);

	/* Read num_queues through the config-space window. */
	cfg_wr(&v, cc + 4, 0, 1);
	cfg_wr(&v, cc + 8, VIRTIO_PCI_COMMON_NUMQ, 4);
	cfg_wr(&v, cc + 12, 2, 4);
	assert_int_equal(cfg_rd(&v, cc + 16, 2), 1);
	/* Write queue_select through it. */
	cfg_wr(&v, cc + 8, VIRTIO_PCI_COMMON_Q_SELECT, 4);
	cfg_wr(&v, cc + 16, 3, 2);
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_Q_SELECT, 2), 3);
}

/* Post request head 0 on queue 0 and kick: nothing is served. */
static void assert_kick_ignored(struct drv *v)
{
	uint16_t before = used()->idx;

	avail()->ring[v->avail_idx[0] % QSZ] = 0;
	avail()->idx = ++v->avail_idx[0];
	wr(v, 0x3000, 0, 2);
	usleep(10000);
	assert_int_equal(used()->idx, before);
}

static void test_reset_stops_queue(void **state)
{
	struct drv v;

	drv_init(&v, 0, BASE_FEATURES | 1ULL << VIRTIO_RING_F_EVENT_IDX |
		 1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	assert_int_equal(request(&v, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	wr(&v, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	/* A kick after reset touches nothing. */
	assert_kick_ignored(&v);
}

/* A driver that clears a status bit (here DRIVER_OK) without a reset:
 * the write is refused and the device needs a reset; the queue serves
 * nothing until the reset. */
static void test_status_bit_cleared(void **state)
{
	struct drv v;
	const uint8_t ok = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			   VIRTIO_CONFIG_S_FEATURES_OK;

	drv_init(&v, 0, BASE_FEATURES);
	assert_int_equal(request(&v, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	wr(&v, VIRTIO_PCI_COMMON_STATUS, ok, 1);
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_STATUS, 1),
			 ok | VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_kick_ignored(&v);
	wr(&v, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	assert_int_equal(rd(&v, VIRTIO_PCI_COMMON_STATUS, 1), 0);
}

/* --virtio-notify pio: the notify capability points at an I/O BAR (BAR2),
 * port writes there kick the queue, the memory BAR's notify area does not,
 * and the config-space window reaches the I/O BAR too. */
static void test_pio_notify(void **state)
{
	struct drv v;
	uint32_t len;

	drv_init_dev(&v, have_net ? 4 : 3, 0x1042, 1, BASE_FEATURES);
	wr(&v, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	unsigned nc = find_cap(&v, 0x09, VIRTIO_PCI_CAP_NOTIFY_CFG);

	assert_true(nc);
	assert_int_equal(cfg_rd(&v, nc + 4, 1), 2);		/* bar */
	assert_int_equal(cfg_rd(&v, nc + 8, 4), 0);		/* offset */
	assert_int_equal(cfg_rd(&v, nc + 12, 4), 4);		/* length: one queue */
	assert_int_equal(cfg_rd(&v, nc + 16, 4), 4);		/* notify_off_multiplier */
	assert_int_equal(cfg_rd(&v, 0x18, 4) & 1, 1);		/* BAR2: I/O space */
	assert_int_equal(v.pd->bars[2].kind, PCI_BAR_IO);
	assert_true(v.pd->bars[2].mapped);
	v.pio = v.pd->bars[2].addr;

	/* A request kicked through the port completes. */
	memset(gpa(DATA_GPA), 0x5c, 512);
	assert_int_equal(request(&v, VIRTIO_BLK_T_OUT, 7, DATA_GPA, 512, false, &len), VIRTIO_BLK_S_OK);
	memset(gpa(DATA_GPA), 0, 512);
	assert_int_equal(request(&v, VIRTIO_BLK_T_IN, 7, DATA_GPA, 512, true, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(((uint8_t *)gpa(DATA_GPA))[511], 0x5c);

	/* A write to the memory BAR's notify offset is not a kick here. */
	struct vring_desc *d = qdesc(0, 0);
	struct virtio_blk_outhdr *h = gpa(HDR_GPA);
	uint16_t before = used()->idx;

	*h = (struct virtio_blk_outhdr){ .type = VIRTIO_BLK_T_FLUSH };
	*(uint8_t *)gpa(STATUS_GPA) = 0xff;
	d[0] = (struct vring_desc){ HDR_GPA, sizeof(*h), VRING_DESC_F_NEXT, 1 };
	d[1] = (struct vring_desc){ STATUS_GPA, 1, VRING_DESC_F_WRITE, 0 };
	avail()->ring[v.avail_idx[0] % QSZ] = 0;
	__atomic_store_n(&avail()->idx, ++v.avail_idx[0], __ATOMIC_RELEASE);
	wr(&v, 0x3000, 0, 2);
	usleep(20000);
	assert_int_equal(used()->idx, before);
	/* Through the config-space window onto BAR2: the kick lands. */
	unsigned cc = find_cap(&v, 0x09, VIRTIO_PCI_CAP_PCI_CFG);

	cfg_wr(&v, cc + 4, 2, 1);
	cfg_wr(&v, cc + 8, 0, 4);
	cfg_wr(&v, cc + 12, 2, 4);
	cfg_wr(&v, cc + 16, 0, 2);
	struct vring_used_elem u;

	assert_true(wait_used(&v, 0, &u));
	assert_int_equal(*(uint8_t *)gpa(STATUS_GPA), VIRTIO_BLK_S_OK);
	cfg_wr(&v, cc + 4, 0, 1);
}

static void test_indirect_request(void **state)
{
	struct drv v;
	struct virtio_blk_outhdr *h = gpa(HDR_GPA);
	struct vring_desc *ind = gpa(0x8000);

	drv_init(&v, 0, BASE_FEATURES | 1ULL << VIRTIO_RING_F_INDIRECT_DESC |
		 1ULL << VIRTIO_RING_F_EVENT_IDX);
	memset(gpa(DATA_GPA), 0x99, 2048);
	h->type = VIRTIO_BLK_T_OUT;
	h->sector = 20;
	ind[0] = (struct vring_desc){ HDR_GPA, 16, VRING_DESC_F_NEXT, 1 };
	ind[1] = (struct vring_desc){ DATA_GPA, 1024, VRING_DESC_F_NEXT, 2 };
	ind[2] = (struct vring_desc){ DATA_GPA + 1024, 1024, VRING_DESC_F_NEXT, 3 };
	ind[3] = (struct vring_desc){ STATUS_GPA, 1, VRING_DESC_F_WRITE, 0 };
	set_desc(0, 0x8000, 4 * 16, VRING_DESC_F_INDIRECT, 0);
	*(uint8_t *)gpa(STATUS_GPA) = 0xEE;
	assert_int_equal(submit_wait(&v, 0), 1);
	assert_int_equal(*(uint8_t *)gpa(STATUS_GPA), VIRTIO_BLK_S_OK);
	uint8_t buf[2048];

	assert_int_equal(pread(disk_fd, buf, 2048, 20 * 512), 2048);
	assert_memory_equal(buf, gpa(DATA_GPA), 2048);
}

static void test_console(void **state)
{
	struct drv v;
	struct vring_used_elem u;
	char out[64] = { 0 };
	int fd;

	drv_init_dev(&v, DEV_CONSOLE, 0x1043, 2,
		     1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_CONSOLE_F_EMERG_WRITE);
	assert_true(dev_features(&v) & 1ULL << VIRTIO_CONSOLE_F_EMERG_WRITE);
	/* transmitq: two buffers in one chain. */
	memcpy(gpa(DATA_GPA), "hello, console\n", 15);
	set_qdesc(1, 0, DATA_GPA, 8, VRING_DESC_F_NEXT, 1);
	set_qdesc(1, 1, DATA_GPA + 8, 7, 0, 0);
	submit_q(&v, 1, 0);
	assert_true(wait_used(&v, 1, &u));
	assert_int_equal(u.id, 0);
	assert_int_equal(u.len, 0);
	/* Emergency write through the device config. */
	unsigned dc = find_cap(&v, 0x09, VIRTIO_PCI_CAP_DEVICE_CFG);
	uint32_t off = cfg_rd(&v, dc + 8, 4);

	wr(&v, off + offsetof(struct virtio_console_config, emerg_wr), 'Z', 4);
	fd = open(con_path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, out, sizeof(out)), 16);
	close(fd);
	assert_string_equal(out, "hello, console\nZ");
	/* receiveq: no input source in file mode, the buffer stays. */
	set_qdesc(0, 0, DATA_GPA + 0x1000, 64, VRING_DESC_F_WRITE, 0);
	submit_q(&v, 0, 0);
	usleep(20000);
	assert_int_equal(qused(0)->idx, 0);
}

/* The tap the device opened: the interface name is in the fd's fdinfo. */
static int tap_ifindex(void)
{
	char path[64], line[128];

	for (int fd = 3; fd < 1024; fd++) {
		char target[64] = { 0 };

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (readlink(path, target, sizeof(target) - 1) < 0 || strcmp(target, "/dev/net/tun"))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
		FILE *f = fopen(path, "r");

		while (f && fgets(line, sizeof(line), f)) {
			char name[IFNAMSIZ + 1];

			if (sscanf(line, "iff: %16s", name) == 1) {
				fclose(f);
				return if_nametoindex(name);
			}
		}
		if (f)
			fclose(f);
	}
	return -1;
}

/* Send a 60-byte frame (EtherType 0x88B5) through the transmit queue
 * (header and frame in descriptors head and head + 1); whether the packet
 * socket ps then sees it, recognised by the tag after its header. */
static bool net_tx_seen(struct drv *v, int ps, const uint8_t *frame, unsigned head,
			const char *tag)
{
	struct vring_used_elem u;
	uint8_t buf[2048];

	memcpy(gpa(DATA_GPA + 12), frame, 60);
	set_qdesc(1, head, DATA_GPA, 12, VRING_DESC_F_NEXT, head + 1);
	set_qdesc(1, head + 1, DATA_GPA + 12, 60, 0, 0);
	submit_q(v, 1, head);
	assert_true(wait_used(v, 1, &u));
	assert_int_equal(u.id, head);
	for (int i = 0; i < 50; i++) {
		ssize_t n = recv(ps, buf, sizeof(buf), 0);

		if (n < 0)
			return false;
		if (n >= 60 && buf[12] == 0x88 && buf[13] == 0xB5 && !memcmp(buf + 14, tag, strlen(tag)))
			return true;
	}
	return false;
}

static void test_net(void **state)
{
	struct drv v;
	struct vring_used_elem u;
	uint8_t mac[6], frame[60] = { 0 };

	if (!have_net)
		skip();
	drv_init_dev(&v, DEV_NET, 0x1041, 2, 1ULL << VIRTIO_F_VERSION_1 |
		     1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS);
	unsigned dc = find_cap(&v, 0x09, VIRTIO_PCI_CAP_DEVICE_CFG);
	uint32_t off = cfg_rd(&v, dc + 8, 4);

	for (int i = 0; i < 6; i++)
		mac[i] = rd(&v, off + i, 1);
	assert_int_equal(mac[0] & 3, 2);	/* unicast, locally administered */
	assert_int_equal(rd(&v, off + offsetof(struct virtio_net_config, status), 2),
			 VIRTIO_NET_S_LINK_UP);

	int ifindex = tap_ifindex();

	assert_true(ifindex > 0);
	int ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));

	assert_true(ps >= 0);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = ifindex };
	struct timeval tv = { .tv_sec = 1 };

	assert_int_equal(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);
	setsockopt(ps, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	/* transmit: header and frame in separate descriptors. */
	struct virtio_net_hdr_v1 *h = gpa(DATA_GPA);

	memset(h, 0, sizeof(*h));
	memset(frame, 0xFF, 6);
	memcpy(frame + 6, mac, 6);
	frame[12] = 0x88;
	frame[13] = 0xB5;
	memcpy(frame + 14, "vmm-tx-test", 11);
	assert_true(net_tx_seen(&v, ps, frame, 0, "vmm-tx-test"));

	/* A header asking the host for a checksum offload it never offered,
	 * at an offset past the frame: the device sends a zeroed header, so
	 * the frame goes out as sent (the host's tap refuses that header). */
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->csum_start = 200;
	h->csum_offset = 4;
	frame[14 + 11] = '2';
	assert_true(net_tx_seen(&v, ps, frame, 2, "vmm-tx-test2"));

	/* receive: post buffers, inject a frame on the host side. */
	for (unsigned i = 0; i < 8; i++) {
		set_qdesc(0, i, 0x50000 + 0x800 * i, 0x800, VRING_DESC_F_WRITE, 0);
		memset(gpa(0x50000 + 0x800 * i), 0xAA, 0x800);
		submit_q(&v, 0, i);
	}
	memcpy(frame, mac, 6);
	memset(frame + 6, 0x02, 6);
	frame[13] = 0xB6;
	memcpy(frame + 14, "vmm-rx-test", 11);
	sll.sll_halen = 6;
	memcpy(sll.sll_addr, mac, 6);
	assert_int_equal(sendto(ps, frame, 60, 0, (struct sockaddr *)&sll, sizeof(sll)), 60);
	bool seen = false;

	for (int i = 0; i < 8 && !seen && wait_used(&v, 0, &u); i++) {
		uint8_t *b = gpa(0x50000 + 0x800 * u.id);

		assert_true(u.id < 8);
		if (u.len < 12 + 60 || b[12 + 12] != 0x88 || b[12 + 13] != 0xB6)
			continue;	/* the host's own traffic (IPv6 and such) */
		seen = true;
		assert_int_equal(u.len, 12 + 60);
		assert_memory_equal(b + 12, frame, 60);
		struct virtio_net_hdr_v1 rh;

		memcpy(&rh, b, sizeof(rh));
		assert_int_equal(rh.flags, 0);
		assert_int_equal(rh.gso_type, 0);
		assert_int_equal(rh.num_buffers, 1);
	}
	assert_true(seen);
	close(ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_and_config),
		cmocka_unit_test(test_feature_negotiation),
		cmocka_unit_test(test_write_read),
		cmocka_unit_test(test_flush_getid_unsupp),
		cmocka_unit_test(test_malformed_requests),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_intx_isr),
		cmocka_unit_test(test_msix_mask_pba),
		cmocka_unit_test(test_pci_cfg_window),
		cmocka_unit_test(test_reset_stops_queue),
		cmocka_unit_test(test_status_bit_cleared),
		cmocka_unit_test(test_indirect_request),
		cmocka_unit_test(test_pio_notify),
		cmocka_unit_test(test_console),
		cmocka_unit_test(test_net),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
