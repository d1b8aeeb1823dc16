/* The virtio-iommu's iommufd backend (devices/virtio-iommu/backend-iommufd.c)
 * driven by real guest requests through the device model, over a fake
 * iommufd that counts calls and keeps each IOAS's mappings:
 *   - two passthrough endpoints in one guest domain share one IOAS, and one
 *     guest MAP is one IOAS_MAP;
 *   - UNMAP of nothing is success; DETACH/reset go to the blocking IOAS;
 *     bypass uses the identity IOAS; a domain created under existing
 *     mappings gets them replayed;
 *   - host IOVA ranges become the input range, page size and RESV_MEM.
 * And vfio_device_create's bad-input messages (no real VFIO here), and the
 * extended capabilities a passthrough function offers (vfio_ext_caps). */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/iommufd.h>
#include "backend-iommufd.h"
#include "devices.h"
#include "vfio.h"
#include "viommu.h"

#define EP_A 0x08
#define EP_B 0x10
#define EP_E 0x18	/* emulated */
#define IDENTITY 100
#define BLOCKING 101
#define MAXMAP 64

struct fake_ioas {
	uint32_t id;
	bool live;
	unsigned n;
	struct { uint64_t iova, len; void *va; uint32_t prot; } m[MAXMAP];
};

static struct fake {
	struct fake_ioas ioas[16];
	unsigned n_ioas;
	unsigned allocs, destroys, maps, unmaps, attaches;
	uint32_t dev_ioas[256];		/* devfd -> IOAS */
	int fail_map;
} F;

static struct fake_ioas *find_ioas(uint32_t id)
{
	for (unsigned i = 0; i < F.n_ioas; i++)
		if (F.ioas[i].id == id && F.ioas[i].live)
			return &F.ioas[i];
	return NULL;
}

static int f_alloc(void *ctx, uint32_t *id)
{
	F.allocs++;
	F.ioas[F.n_ioas] = (struct fake_ioas){ .id = F.n_ioas + 1, .live = true };
	*id = F.ioas[F.n_ioas++].id;
	return 0;
}

static int f_destroy(void *ctx, uint32_t id)
{
	struct fake_ioas *a = find_ioas(id);
	F.destroys++;
	if (!a)
		return -ENOENT;
	for (unsigned d = 0; d < 256; d++)
		if (F.dev_ioas[d] == id)
			return -EBUSY;	/* still attached */
	a->live = false;
	return 0;
}

static int f_map(void *ctx, uint32_t id, void *va, uint64_t len, uint64_t iova, uint32_t prot)
{
	struct fake_ioas *a = find_ioas(id);
	F.maps++;
	if (F.fail_map)
		return F.fail_map;
	if (!a || a->n == MAXMAP)
		return -ENOENT;
	for (unsigned i = 0; i < a->n; i++)
		if (iova < a->m[i].iova + a->m[i].len && a->m[i].iova < iova + len)
			return -EEXIST;
	a->m[a->n].iova = iova;
	a->m[a->n].len = len;
	a->m[a->n].va = va;
	a->m[a->n].prot = prot;
	a->n++;
	return 0;
}

static int f_unmap(void *ctx, uint32_t id, uint64_t iova, uint64_t len)
{
	struct fake_ioas *a = find_ioas(id);
	unsigned k = 0, gone = 0;
	F.unmaps++;
	if (!a)
		return -ENOENT;
	for (unsigned i = 0; i < a->n; i++) {
		if (len == 0 || (a->m[i].iova >= iova && a->m[i].iova + a->m[i].len <= iova + len)) {
			gone++;
			continue;
		}
		a->m[k++] = a->m[i];
	}
	a->n = k;
	return gone ? 0 : -ENOENT;
}

static int f_attach(void *ctx, int devfd, uint32_t id)
{
	F.attaches++;
	if (id != IDENTITY && id != BLOCKING && !find_ioas(id))
		return -ENOENT;
	F.dev_ioas[devfd] = id;
	return 0;
}

static int f_identity(void *ctx, uint32_t *id) { *id = IDENTITY; return 0; }
static int f_blocking(void *ctx, uint32_t *id) { *id = BLOCKING; return 0; }

static const struct viommu_iommufd_ops fake_ops = {
	.ioas_alloc = f_alloc, .ioas_destroy = f_destroy, .map = f_map, .unmap = f_unmap,
	.attach = f_attach, .identity_ioas = f_identity, .blocking_ioas = f_blocking,
};

/* ---- a viommu with two passthrough endpoints and an emulated one ---- */

struct env {
	struct viommu *v;
	struct viommu_iommufd *b;
	struct guest_mem mem;
	struct viommu_iommufd_ep a, bb;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	memset(&F, 0, sizeof(F));
	e->mem.size = e->mem.low_size = 16 << 20;
	e->mem.host = calloc(1, e->mem.size);
	e->v = viommu_new(NULL);
	e->b = viommu_iommufd_get(e->v, &fake_ops, NULL, &e->mem);
	e->a = (struct viommu_iommufd_ep){ .devfd = 3, .endpoint = EP_A, .name = "a" };
	e->bb = (struct viommu_iommufd_ep){ .devfd = 4, .endpoint = EP_B, .name = "b" };
	assert_int_equal(viommu_iommufd_add_endpoint(e->b, &e->a), 0);
	assert_int_equal(viommu_iommufd_add_endpoint(e->b, &e->bb), 0);
	assert_int_equal(viommu_add_endpoint(e->v, EP_E, NULL), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	viommu_free(e->v);
	viommu_iommufd_free(e->b);
	free(e->mem.host);
	free(e);
	return 0;
}

/* One request through the device model; returns the status. */
static int req(struct env *e, void *r, size_t size)
{
	struct virtio_iommu_req_tail *tail = (void *)((uint8_t *)r + size - sizeof(*tail));
	struct iovec out = { r, size - sizeof(*tail) }, in = { tail, sizeof(*tail) };
	uint32_t written = 0;
	return viommu_handle_request(e->v, &out, 1, &in, 1, &written);
}

static int attach(struct env *e, uint32_t dom, uint32_t ep, uint32_t flags)
{
	struct virtio_iommu_req_attach r = { .head.type = VIRTIO_IOMMU_T_ATTACH,
		.domain = htole32(dom), .endpoint = htole32(ep), .flags = htole32(flags) };
	return req(e, &r, sizeof(r));
}

static int detach(struct env *e, uint32_t dom, uint32_t ep)
{
	struct virtio_iommu_req_detach r = { .head.type = VIRTIO_IOMMU_T_DETACH,
		.domain = htole32(dom), .endpoint = htole32(ep) };
	return req(e, &r, sizeof(r));
}

static int map(struct env *e, uint32_t dom, uint64_t vs, uint64_t ve, uint64_t ps, uint32_t fl)
{
	struct virtio_iommu_req_map r = { .head.type = VIRTIO_IOMMU_T_MAP,
		.domain = htole32(dom), .virt_start = htole64(vs), .virt_end = htole64(ve),
		.phys_start = htole64(ps), .flags = htole32(fl) };
	return req(e, &r, sizeof(r));
}

static int unmap(struct env *e, uint32_t dom, uint64_t vs, uint64_t ve)
{
	struct virtio_iommu_req_unmap r = { .head.type = VIRTIO_IOMMU_T_UNMAP,
		.domain = htole32(dom), .virt_start = htole64(vs), .virt_end = htole64(ve) };
	return req(e, &r, sizeof(r));
}

#define RW (VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE)

static void test_initial_state_blocking(void **state)
{
	assert_int_equal(F.dev_ioas[3], BLOCKING);
	assert_int_equal(F.dev_ioas[4], BLOCKING);
	assert_int_equal(F.allocs, 0);
}

static void test_two_endpoints_one_ioas_one_map(void **state)
{
	struct env *e = *state;
	struct viommu_iommufd_stats st;

	assert_int_equal(attach(e, 1, EP_A, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(attach(e, 1, EP_B, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(F.allocs, 1);
	assert_int_equal(F.dev_ioas[3], F.dev_ioas[4]);
	uint32_t ioas = F.dev_ioas[3];
	assert_int_not_equal(ioas, BLOCKING);

	assert_int_equal(map(e, 1, 0x100000, 0x1fffff, 0x200000, RW), VIRTIO_IOMMU_S_OK);
	assert_int_equal(F.maps, 1);
	struct fake_ioas *a = find_ioas(ioas);
	assert_non_null(a);
	assert_int_equal(a->n, 1);
	assert_int_equal(a->m[0].iova, 0x100000);
	assert_int_equal(a->m[0].len, 0x100000);
	assert_ptr_equal(a->m[0].va, e->mem.host + 0x200000);
	assert_int_equal(a->m[0].prot, IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE);

	/* Read-only mapping: READABLE only. */
	assert_int_equal(map(e, 1, 0x300000, 0x300fff, 0x1000, VIRTIO_IOMMU_MAP_F_READ),
			 VIRTIO_IOMMU_S_OK);
	assert_int_equal(a->m[1].prot, IOMMU_IOAS_MAP_READABLE);

	assert_int_equal(unmap(e, 1, 0, 0xffffffff), VIRTIO_IOMMU_S_OK);
	assert_int_equal(F.unmaps, 1);
	assert_int_equal(a->n, 0);
	/* Nothing there: still OK, and asked once. */
	assert_int_equal(unmap(e, 1, 0, 0xffffffff), VIRTIO_IOMMU_S_OK);

	viommu_iommufd_get_stats(e->b, &st);
	assert_int_equal(st.guest_map, 2);
	assert_int_equal(st.ioas_map, 2);
	assert_int_equal(st.ioas_alloc, 1);
	assert_int_equal(st.ioas_live, 1);
}

static void test_detach_blocks_and_destroys(void **state)
{
	struct env *e = *state;

	assert_int_equal(attach(e, 1, EP_A, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(attach(e, 1, EP_B, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(e, 1, 0, 0xfff, 0, RW), VIRTIO_IOMMU_S_OK);
	assert_int_equal(detach(e, 1, EP_A), VIRTIO_IOMMU_S_OK);
	assert_int_equal(F.dev_ioas[3], BLOCKING);
	assert_int_equal(F.destroys, 0);	/* B still there */
	assert_int_equal(detach(e, 1, EP_B), VIRTIO_IOMMU_S_OK);
	assert_int_equal(F.dev_ioas[4], BLOCKING);
	assert_int_equal(F.destroys, 1);
	assert_null(find_ioas(1));

	/* Device reset: the same. */
	assert_int_equal(attach(e, 2, EP_A, 0), VIRTIO_IOMMU_S_OK);
	viommu_reset(e->v);
	assert_int_equal(F.dev_ioas[3], BLOCKING);
	assert_int_equal(F.destroys, 2);
}

static void test_move_between_domains(void **state)
{
	struct env *e = *state;

	assert_int_equal(attach(e, 1, EP_A, 0), VIRTIO_IOMMU_S_OK);
	uint32_t first = F.dev_ioas[3];
	assert_int_equal(attach(e, 2, EP_A, 0), VIRTIO_IOMMU_S_OK);
	assert_int_not_equal(F.dev_ioas[3], first);
	assert_int_equal(F.destroys, 1);	/* domain 1 lost its only endpoint */
}

static void test_bypass_uses_identity(void **state)
{
	struct env *e = *state;
	struct viommu_iommufd_stats st;

	assert_int_equal(attach(e, 5, EP_A, VIRTIO_IOMMU_ATTACH_F_BYPASS), VIRTIO_IOMMU_S_OK);
	assert_int_equal(F.dev_ioas[3], IDENTITY);
	assert_int_equal(F.allocs, 0);
	assert_int_equal(detach(e, 5, EP_A), VIRTIO_IOMMU_S_OK);
	assert_int_equal(F.dev_ioas[3], BLOCKING);
	assert_int_equal(F.destroys, 0);	/* the identity IOAS is not ours */
	/* Config bypass: unattached endpoints go to identity. */
	uint8_t one = 1;
	viommu_config_write(e->v, offsetof(struct virtio_iommu_config, bypass), &one, 1);
	assert_int_equal(F.dev_ioas[3], IDENTITY);
	assert_int_equal(F.dev_ioas[4], IDENTITY);
	viommu_iommufd_get_stats(e->b, &st);
	assert_int_equal(st.ioas_live, 0);
}

static void test_replay_on_first_passthrough_attach(void **state)
{
	struct env *e = *state;
	struct viommu_iommufd_stats st;

	assert_int_equal(attach(e, 3, EP_E, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(e, 3, 0x10000, 0x1ffff, 0x10000, RW), VIRTIO_IOMMU_S_OK);
	assert_int_equal(map(e, 3, 0x40000, 0x40fff, 0x40000, RW), VIRTIO_IOMMU_S_OK);
	assert_int_equal(F.maps, 0);		/* emulated only: no backend */
	assert_int_equal(attach(e, 3, EP_A, 0), VIRTIO_IOMMU_S_OK);
	assert_int_equal(F.maps, 2);
	assert_int_equal(find_ioas(F.dev_ioas[3])->n, 2);
	assert_int_equal(map(e, 3, 0x80000, 0x80fff, 0x80000, RW), VIRTIO_IOMMU_S_OK);
	viommu_iommufd_get_stats(e->b, &st);
	assert_int_equal(st.replay_map, 2);
	assert_int_equal(st.guest_map, 1);
	assert_int_equal(st.ioas_map, 3);
}

static void test_map_outside_ram_refused(void **state)
{
	struct env *e = *state;

	assert_int_equal(attach(e, 1, EP_A, 0), VIRTIO_IOMMU_S_OK);
	/* guest RAM is 16 MiB: a physical range past it is never mapped */
	assert_int_not_equal(map(e, 1, 0, 0x1fff, (16 << 20) - 0x1000, RW), VIRTIO_IOMMU_S_OK);
	assert_int_equal(F.maps, 0);
	/* and a host failure fails the request, leaving no mapping */
	F.fail_map = -ENOMEM;
	assert_int_equal(map(e, 1, 0, 0xfff, 0, RW), VIRTIO_IOMMU_S_NOMEM);
	F.fail_map = 0;
	assert_int_equal(map(e, 1, 0, 0xfff, 0, RW), VIRTIO_IOMMU_S_OK);
}

static void test_constrain_from_iova_ranges(void **state)
{
	struct env *e = *state;
	struct iommu_iova_range r[2] = {
		{ .start = 0, .last = 0xfedfffff },
		{ .start = 0xfef00000, .last = (1ULL << 39) - 1 },
	};
	struct virtio_iommu_config c;

	assert_int_equal(viommu_iommufd_constrain(e->v, EP_A, r, 2, 4096), 0);
	viommu_get_config(e->v, &c);
	assert_int_equal(le64toh(c.input_range.end), (1ULL << 39) - 1);
	assert_int_equal(le64toh(c.page_size_mask) & 0xfff, 0);
	assert_true(le64toh(c.page_size_mask) & 0x1000);
	assert_int_equal(attach(e, 1, EP_A, 0), VIRTIO_IOMMU_S_OK);
	/* beyond the input range: RANGE; in the host hole: refused */
	assert_int_equal(map(e, 1, 1ULL << 39, (1ULL << 39) + 0xfff, 0, RW), VIRTIO_IOMMU_S_RANGE);
	assert_int_equal(map(e, 1, 0xfee00000, 0xfee00fff, 0, RW), VIRTIO_IOMMU_S_INVAL);
	assert_int_equal(map(e, 1, 0xfef00000, 0xfef00fff, 0, RW), VIRTIO_IOMMU_S_OK);
}

/* ---- vfio_device_create: bad input ---- */

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Run vfio_device_create with stderr captured into buf. */
static int create_captured(const char *path, char *buf, size_t len)
{
	char tmpl[] = "/tmp/test_vfio.XXXXXX";
	int t = mkstemp(tmpl), saved = dup(2);
	unlink(tmpl);
	fflush(stderr);
	dup2(t, 2);
	int r = vfio_device_create(&(struct passthrough_opts){ .path = path });
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(t, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	close(t);
	return r;
}

static void test_bad_input_messages(void **state)
{
	char msg[1024], file[] = "/tmp/test_vfio_file.XXXXXX";
	int before = count_fds(), r;

	r = create_captured("/nonexistent/vfio9", msg, sizeof(msg));
	assert_true(r < 0);
	assert_non_null(strstr(msg, "--device path=/nonexistent/vfio9: cannot open"));

	int f = mkstemp(file);
	close(f);
	r = create_captured(file, msg, sizeof(msg));
	unlink(file);
	assert_true(r < 0);
	assert_non_null(strstr(msg, "not a VFIO device cdev"));

	/* A kernel without iommufd. */
	vfio_iommufd_path = "/nonexistent/iommu";
	r = create_captured("/dev/null", msg, sizeof(msg));
	assert_int_equal(r, -ENOENT);
	assert_non_null(strstr(msg, "--device path=/dev/null: this kernel has no iommufd"));

	/* A character device that is not VFIO (an iommufd stand-in that
	 * answers ENOTTY like /dev/null does). */
	vfio_iommufd_path = "/dev/null";
	r = create_captured("/dev/null", msg, sizeof(msg));
	assert_true(r < 0);
	assert_non_null(strstr(msg, "--device path=/dev/null: not a VFIO device cdev"));
	/* One line each time. */
	assert_int_equal(strchr(msg, '\n') - msg + 1, (long)strlen(msg));
	vfio_iommufd_path = "/dev/iommu";
	vfio_host_release();
	assert_int_equal(count_fds(), before);
}

/* path= naming the function in sysfs: resolved through its vfio-dev/
 * directory, or refused saying why (stand-in sysfs directories). */
static void test_sysfs_path(void **state)
{
	char dir[] = "/tmp/test_vfio_sysfs.XXXXXX", p[256], msg[1024];
	int before = count_fds(), r;

	assert_non_null(mkdtemp(dir));
	/* Not a PCI function's directory. */
	r = create_captured(dir, msg, sizeof(msg));
	assert_int_equal(r, -ENODEV);
	assert_non_null(strstr(msg, "a directory, not a PCI function's in sysfs"));
	/* A function with no driver, then one bound to nvme. */
	snprintf(p, sizeof(p), "%s/config", dir);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	r = create_captured(dir, msg, sizeof(msg));
	assert_int_equal(r, -ENODEV);
	assert_non_null(strstr(msg, "the function has no driver: bind it to vfio-pci"));
	snprintf(p, sizeof(p), "%s/driver", dir);
	assert_int_equal(symlink("../../../bus/pci/drivers/nvme", p), 0);
	r = create_captured(dir, msg, sizeof(msg));
	assert_int_equal(r, -ENODEV);
	assert_non_null(strstr(msg, "the function is bound to nvme, not vfio-pci"));
	/* Bound to vfio-pci: its cdev is the one opened (none here). */
	snprintf(p, sizeof(p), "%s/vfio-dev", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/vfio-dev/vfio977", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	r = create_captured(dir, msg, sizeof(msg));
	assert_true(r < 0);
	snprintf(p, sizeof(p), "--device path=%s: cannot open its VFIO cdev /dev/vfio/devices/vfio977", dir);
	assert_non_null(strstr(msg, p));
	assert_int_equal(strchr(msg, '\n') - msg + 1, (long)strlen(msg));
	assert_int_equal(count_fds(), before);

	snprintf(p, sizeof(p), "rm -rf %s", dir);
	assert_int_equal(system(p), 0);
}

/* Extended capabilities: a chain as VFIO shows it, in a 4096-byte config
 * space; the guest's view as vfio_ext_caps builds it. */
static void ecap(uint8_t *c, unsigned off, uint16_t id, unsigned ver, unsigned next)
{
	uint32_t h = id | ver << 16 | next << 20;
	memcpy(c + off, &(uint32_t){ htole32(h) }, 4);
}

static uint32_t hdr(const uint8_t *c, unsigned off)
{
	uint32_t h;
	memcpy(&h, c + off, 4);
	return le32toh(h);
}

static void assert_kind(const uint8_t *kind, unsigned from, unsigned to, int k)
{
	for (unsigned i = from; i < to; i++)
		if (kind[i] != k)
			fail_msg("byte %#x: kind %d, want %d", i, kind[i], k);
}

static void test_ext_caps(void **state)
{
	static uint8_t phys[4096], cfg[4096], kind[4096];
	(void)state;

	/* AER, SR-IOV (hidden), DSN: AER links straight to DSN; the
	 * bodies kept pass through, SR-IOV's reads as zero. */
	memset(phys, 0, sizeof(phys));
	memset(cfg, 0xAA, sizeof(cfg));
	ecap(phys, 0x100, 0x0001, 2, 0x148);
	ecap(phys, 0x148, 0x0010, 1, 0x188);
	ecap(phys, 0x188, 0x0003, 1, 0);
	assert_int_equal(vfio_ext_caps(phys, 4096, cfg, kind), 2);
	assert_int_equal(hdr(cfg, 0x100), 0x0001 | 2 << 16 | 0x188 << 20);
	assert_int_equal(hdr(cfg, 0x188), 0x0003 | 1 << 16);
	assert_int_equal(hdr(cfg, 0x148), 0);
	assert_kind(kind, 0x100, 0x104, VFIO_CFG_EMUL);
	assert_kind(kind, 0x104, 0x148, VFIO_CFG_PASS);
	assert_kind(kind, 0x148, 0x188, VFIO_CFG_ZERO);
	assert_kind(kind, 0x188, 0x18c, VFIO_CFG_EMUL);
	assert_kind(kind, 0x18c, 4096, VFIO_CFG_PASS);

	/* The first one hidden (ARI): 0x100 becomes an empty header that
	 * points at the first one kept; ATS, PRI, PASID, Resizable BAR
	 * hidden too, wherever they are. */
	memset(phys, 0, sizeof(phys));
	ecap(phys, 0x100, 0x000E, 1, 0x200);
	ecap(phys, 0x200, 0x000F, 1, 0x180);	/* out of address order */
	ecap(phys, 0x180, 0x0018, 1, 0x300);	/* LTR: kept */
	ecap(phys, 0x300, 0x0013, 1, 0x320);
	ecap(phys, 0x320, 0x001B, 1, 0x340);
	ecap(phys, 0x340, 0x0015, 1, 0x380);
	ecap(phys, 0x380, 0x0024, 1, 0x3c0);
	ecap(phys, 0x3c0, 0x000B, 1, 0);	/* vendor-specific: kept */
	assert_int_equal(vfio_ext_caps(phys, 4096, cfg, kind), 2);
	assert_int_equal(hdr(cfg, 0x100), 0x180 << 20);
	assert_int_equal(hdr(cfg, 0x180), 0x0018 | 1 << 16 | 0x3c0 << 20);
	assert_int_equal(hdr(cfg, 0x3c0), 0x000B | 1 << 16);
	assert_kind(kind, 0x100, 0x104, VFIO_CFG_EMUL);
	assert_kind(kind, 0x104, 0x180, VFIO_CFG_ZERO);
	assert_kind(kind, 0x184, 0x200, VFIO_CFG_PASS);	/* up to the next one */
	assert_kind(kind, 0x200, 0x3c0, VFIO_CFG_ZERO);
	assert_kind(kind, 0x3c4, 4096, VFIO_CFG_PASS);

	/* All hidden: nothing offered, 0x100 reads zero (no list). */
	memset(phys, 0, sizeof(phys));
	ecap(phys, 0x100, 0x0010, 1, 0);
	assert_int_equal(vfio_ext_caps(phys, 4096, cfg, kind), 0);
	assert_int_equal(hdr(cfg, 0x100), 0);
	assert_kind(kind, 0x100, 4096, VFIO_CFG_ZERO);

	/* A chain that loops back on itself ends; each one kept once. */
	memset(phys, 0, sizeof(phys));
	ecap(phys, 0x100, 0x0001, 2, 0x140);
	ecap(phys, 0x140, 0x0003, 1, 0x100);
	assert_int_equal(vfio_ext_caps(phys, 4096, cfg, kind), 2);
	assert_int_equal(hdr(cfg, 0x100), 0x0001 | 2 << 16 | 0x140 << 20);
	assert_int_equal(hdr(cfg, 0x140), 0x0003 | 1 << 16);

	/* A next pointer below 0x100 or past the config space ends the
	 * chain; so does a header of all ones (no device there). */
	ecap(phys, 0x140, 0x0003, 1, 0x40);
	assert_int_equal(vfio_ext_caps(phys, 4096, cfg, kind), 2);
	ecap(phys, 0x100, 0x0001, 2, 0xffc);
	memset(phys + 0xffc, 0xff, 4);
	assert_int_equal(vfio_ext_caps(phys, 4096, cfg, kind), 1);
	assert_int_equal(hdr(cfg, 0x100), 0x0001 | 2 << 16);
	assert_kind(kind, 0x104, 4096, VFIO_CFG_PASS);
	ecap(phys, 0x100, 0x0001, 2, 0x140);
	assert_int_equal(vfio_ext_caps(phys, 0x120, cfg, kind), 1);
	assert_kind(kind, 0x104, 0x120, VFIO_CFG_PASS);
	assert_kind(kind, 0x120, 4096, VFIO_CFG_ZERO);

	/* A conventional PCI function: 256 bytes, none. */
	assert_int_equal(vfio_ext_caps(phys, 256, cfg, kind), 0);
	assert_kind(kind, 0x100, 4096, VFIO_CFG_ZERO);
	assert_int_equal(hdr(cfg, 0x100), 0);
}

/* An IOMMU group with another device on a host driver (stand-in sysfs):
 * named; one on vfio-pci, pci-stub or pcieport, or on none, is no bar. */
static void test_group_conflict(void **state)
{
	char dir[] = "/tmp/test_vfio_group.XXXXXX", p[512], q[512], msg[1024];
	(void)state;

	assert_non_null(mkdtemp(dir));
	const char *mk[] = { "devices/0000:00:1f.2", "devices/0000:00:1f.3", "devices/0000:00:1f.0",
			     "groups/5/devices", "drivers/i801_smbus", "drivers/vfio-pci",
			     "drivers/pcieport" };
	for (unsigned i = 0; i < sizeof(mk) / sizeof(mk[0]); i++) {
		snprintf(p, sizeof(p), "mkdir -p %s/%s", dir, mk[i]);
		assert_int_equal(system(p), 0);
	}
	const char *ln[][2] = {
		{ "../../groups/5", "devices/0000:00:1f.2/iommu_group" },
		{ "../../groups/5", "devices/0000:00:1f.3/iommu_group" },
		{ "../../../devices/0000:00:1f.2", "groups/5/devices/0000:00:1f.2" },
		{ "../../../devices/0000:00:1f.3", "groups/5/devices/0000:00:1f.3" },
		{ "../../../devices/0000:00:1f.0", "groups/5/devices/0000:00:1f.0" },
		{ "../../drivers/vfio-pci", "devices/0000:00:1f.2/driver" },
	};
	for (unsigned i = 0; i < sizeof(ln) / sizeof(ln[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, ln[i][1]);
		assert_int_equal(symlink(ln[i][0], p), 0);
	}
	snprintf(p, sizeof(p), "%s/devices/0000:00:1f.2", dir);
	/* 1f.0 on no driver, 1f.3 on none yet: no conflict. */
	assert_int_equal(vfio_group_conflict(p, msg, sizeof(msg)), 0);
	/* 1f.3 on a host driver: named. */
	snprintf(q, sizeof(q), "%s/devices/0000:00:1f.3/driver", dir);
	assert_int_equal(symlink("../../drivers/i801_smbus", q), 0);
	assert_int_equal(vfio_group_conflict(p, msg, sizeof(msg)), 1);
	assert_string_equal(msg, "its IOMMU group 5 also holds 0000:00:1f.3, bound to i801_smbus");
	/* On vfio-pci or pcieport: no bar. */
	unlink(q);
	assert_int_equal(symlink("../../drivers/vfio-pci", q), 0);
	assert_int_equal(vfio_group_conflict(p, msg, sizeof(msg)), 0);
	unlink(q);
	assert_int_equal(symlink("../../drivers/pcieport", q), 0);
	assert_int_equal(vfio_group_conflict(p, msg, sizeof(msg)), 0);
	/* No group link at all (no IOMMU): nothing to say. */
	snprintf(q, sizeof(q), "%s/devices/0000:00:1f.0", dir);
	assert_int_equal(vfio_group_conflict(q, msg, sizeof(msg)), 0);

	snprintf(p, sizeof(p), "rm -rf %s", dir);
	assert_int_equal(system(p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_initial_state_blocking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_endpoints_one_ioas_one_map, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_blocks_and_destroys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_between_domains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bypass_uses_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_on_first_passthrough_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_outside_ram_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_constrain_from_iova_ranges, setup, teardown),
		cmocka_unit_test(test_bad_input_messages),
		cmocka_unit_test(test_sysfs_path),
		cmocka_unit_test(test_ext_caps),
		cmocka_unit_test(test_group_conflict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
