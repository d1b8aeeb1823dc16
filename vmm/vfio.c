/* VFIO cdev passthrough: a host PCI function (bound to vfio-pci, opened as
 * /dev/vfio/devices/vfioN) becomes a function on our PCI bus.
 *
 * - DMA goes through iommufd (one context for the VMM). Without the
 *   virtio-iommu the device is attached to one IOAS that maps all guest RAM
 *   at IOVA = GPA, shared by every such device. Behind the virtio-iommu
 *   (iommu=on) the guest's domains decide, through the iommufd backend
 *   (devices/virtio-iommu/backend-iommufd.c).
 * - Config space: the header is virtual (IDs copied, BARs placed in our
 *   windows); the expansion ROM is a ROM BAR of ours whose reads are
 *   served from a copy of the device's ROM region, taken at the first read
 *   (or from a file: romfile=; none with rom=off); the capability list is
 *   re-linked to keep PM, PCI Express, MSI and MSI-X (MSI and MSI-X
 *   virtualised here) and drop the others; so is the extended list, but
 *   for a few we hide (vfio_ext_caps). Everything else at 0x40 and above
 *   goes to the device's config region (vfio-pci filters it further).
 * - BARs: the mmappable parts are KVM memory slots at the BAR's guest
 *   address (the guest touches the device directly), following the BAR
 *   when the guest moves it; the MSI-X table and PBA pages and whatever
 *   cannot be mmapped trap to us (pread/pwrite on the region).
 * - Interrupts: MSI-X/MSI vectors are KVM routes whose irqfd is also the
 *   VFIO trigger eventfd, so an interrupt goes device -> KVM without the
 *   VMM. The host enables only the MSI-X vectors up to the highest one the
 *   guest has unmasked, growing the set as the guest unmasks more.
 *   INTx is an irqfd with resample (VFIO unmasks on the guest's EOI).
 * - The physical command register gets memory and I/O enable at creation
 *   (the bus emulates the guest's view of them; BAR decoding is ours); bus
 *   mastering and INTx disable follow the guest's writes.
 * - Behind the virtio-iommu, each endpoint also gets a vDEVICE on a host
 *   vIOMMU whose virt_id is its endpoint ID (the BDF the VIOT names), when
 *   the kernel has vIOMMU/vDEVICE and the host IOMMU can allocate the
 *   nesting-parent HWPT the vIOMMU sits on; events the host IOMMU reports
 *   on the vIOMMU's vEVENTQ become virtio-iommu fault events
 *   (devices/virtio-iommu/vdevice.c). Otherwise one line says why and DMA
 *   goes by the IOAS path alone, which it does in either case.
 * - The device is reset at creation; a guest reboot re-executes the VMM,
 *   which opens and resets it again. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include "backend-iommufd.h"
#include "devices.h"
#include "evloop.h"
#include "iommufd.h"
#include "pci.h"
#include "vdevice.h"
#include "vfio.h"
#include "viommu.h"
#include "vm.h"

#define PAGE_SZ 4096ull
#define MAX_PIECES 8		/* memory slots per BAR */
#define MAX_VFIO_DEVICES 8

/* PCI config registers and capabilities (the values are fixed by PCI). */
#define CFG_VENDOR	0x00
#define CFG_DEVICE	0x02
#define CFG_COMMAND	0x04
#define CFG_STATUS	0x06
#define CFG_REVISION	0x08
#define CFG_CLASS	0x09
#define CFG_HEADER	0x0E
#define CFG_BAR0	0x10
#define CFG_SUBSYS_VENDOR 0x2C
#define CFG_SUBSYS_ID	0x2E
#define CFG_CAP_PTR	0x34
#define CFG_INT_PIN	0x3D
#define CMD_IO		0x1
#define CMD_MEM		0x2
#define CMD_MASTER	0x4
#define CMD_INTX_OFF	0x400
#define STATUS_INTX	0x08
#define STATUS_CAPS	0x10
#define CAP_PM		0x01
#define CAP_MSI		0x05
#define CAP_EXP		0x10
#define CAP_MSIX	0x11
#define MSIX_ENABLE	0x8000
#define MSIX_MASKALL	0x4000
#define MSIX_ENTRY_MASKED 0x1
#define MSI_ENABLE	0x0001
#define MSI_64BIT	0x0080
#define MSI_PVMASK	0x0100

#define CFG_PASS VFIO_CFG_PASS
#define CFG_EMUL VFIO_CFG_EMUL
#define CFG_ZERO VFIO_CFG_ZERO
#define ECAP_BASE	0x100
#define ECAP_MAX	128	/* a chain longer than this is taken to loop */

struct vfio_dev;

struct bar_piece {		/* an mmapped part of a BAR, as a memory slot */
	uint64_t off, size;
	void *host;
	int slot;
	bool on;
	uint64_t gpa;
};

struct vfio_bar {
	struct vfio_dev *vd;
	int index;
	uint64_t size, offset;	/* region size, offset in the device fd */
	uint32_t flags;
	struct { void *host; uint64_t off, size; } areas[MAX_PIECES];	/* mmaps */
	unsigned nareas;
	struct bar_piece pieces[MAX_PIECES];
	unsigned npieces;
};

struct vfio_dev {
	struct pci_dev pci;
	char name[64];
	const char *path;
	int fd;
	uint32_t dev_id;
	bool iommu;
	bool kvm_file;			/* fd added to the KVM-VFIO device */
	struct vfio_device_info info;
	uint64_t cfg_off, cfg_size;	/* config region */
	struct vfio_bar bars[6];
	uint8_t kind[PCI_CFG_SIZE];	/* enum vfio_cfg_kind per byte (>= 0x40) */
	pthread_mutex_t lock;		/* interrupts state */

	unsigned n_ecaps;		/* extended capabilities offered */

	/* MSI-X */
	unsigned msix_cap, msix_nvec;
	int msix_bar, pba_bar;
	uint64_t msix_off, pba_off;
	uint32_t (*msix_table)[4];
	struct msi_route *msix_routes;
	bool *msix_route_ok;
	bool msix_enabled, msix_masked, msix_vfio_on;
	unsigned msix_host_n;		/* vectors [0, n) enabled in VFIO */
	unsigned msix_fail_n;		/* a size VFIO refused (0: none) */
	bool msix_noresize;		/* VFIO cannot add vectors while enabled */
	/* MSI (one vector) */
	unsigned msi_cap;
	bool msi_64, msi_enabled, msi_route_ok;
	struct msi_route msi_route;
	/* INTx */
	int intx_fd, intx_rfd;
	bool intx_vfio_on;

	/* Expansion ROM: the guest's copy of rom_size bytes, rom_len of them
	 * from the device (at the guest's first read) or from romfile= (at
	 * start), the rest 0xFF as unprogrammed ROM reads. */
	uint8_t *rom;
	uint64_t rom_size, rom_len, rom_region_off;
	const char *romfile;
	bool rom_loaded;
	bool no_mmap;		/* mmap=off: no BAR in a memory slot, all trapped */
	uint64_t n_rom_reads;

	/* The physical command register: decoding as set at creation, bus
	 * mastering and INTx disable as the guest sets them. */
	uint16_t phys_cmd;
	uint64_t n_master_on, n_master_off;

	struct viommu_iommufd_ep be_ep;
	uint64_t n_cfg_pass, n_bar_traps, n_msix_writes, n_pending_delivered;
	uint64_t n_msix_grown_inplace, n_msix_grown_reenable;
	unsigned msix_host_max;		/* most host vectors enabled at once */
};

const char *vfio_iommufd_path = "/dev/iommu";

/* ---- the host side: one iommufd context, the shared IOASes ---- */

static struct iommufd_ctx *ictx;
static uint32_t identity_ioas, blocking_ioas;
static unsigned identity_builds, identity_attached;	/* --stats */
static struct vfio_dev *devices[MAX_VFIO_DEVICES];
static unsigned n_devices;
static struct viommu_iommufd *backend;

static int host_ctx(const char *what)
{
	if (ictx)
		return 0;
	int fd = open(vfio_iommufd_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			fprintf(stderr, "vmm: --device path=%s: this kernel has no iommufd (%s is "
				"missing; it needs CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV)\n",
				what, vfio_iommufd_path);
		else
			fprintf(stderr, "vmm: --device path=%s: cannot open %s: %s\n", what,
				vfio_iommufd_path, strerror(e));
		return -e;
	}
	int r = iommufd_open_fd(fd, true, &ictx);
	if (r) {
		close(fd);
		fprintf(stderr, "vmm: --device path=%s: %s\n", what, iommufd_last_error());
	}
	return r;
}

void vfio_host_release(void)
{
	if (n_devices || !ictx)
		return;
	iommufd_close(ictx);	/* destroys the IOASes with it */
	ictx = NULL;
	identity_ioas = blocking_ioas = 0;
}

/* All guest RAM at IOVA = GPA (both RAM regions), built once. */
static int get_identity_ioas(void *ctx, uint32_t *ioas)
{
	const struct guest_mem *m = &the_vm.mem;
	uint32_t id;
	int r;

	if (identity_ioas) {
		*ioas = identity_ioas;
		return 0;
	}
	if ((r = iommufd_ioas_alloc(ictx, &id)))
		return r;
	r = iommufd_ioas_map_fixed(ictx, id, m->host, m->low_size, 0, IOMMUFD_PROT_RW);
	if (!r && m->high_size)
		r = iommufd_ioas_map_fixed(ictx, id, m->host + m->low_size, m->high_size,
					   GUEST_HIGH_RAM_BASE, IOMMUFD_PROT_RW);
	if (r) {
		iommufd_destroy(ictx, id);
		return r;
	}
	identity_ioas = *ioas = id;
	identity_builds++;
	return 0;
}

static int get_blocking_ioas(void *ctx, uint32_t *ioas)
{
	int r = 0;
	if (!blocking_ioas)
		r = iommufd_ioas_alloc(ictx, &blocking_ioas);
	if (!r)
		*ioas = blocking_ioas;
	return r;
}

static int op_ioas_alloc(void *ctx, uint32_t *ioas) { return iommufd_ioas_alloc(ictx, ioas); }
static int op_ioas_destroy(void *ctx, uint32_t ioas) { return iommufd_destroy(ictx, ioas); }
static int op_map(void *ctx, uint32_t ioas, void *va, uint64_t len, uint64_t iova, uint32_t prot)
{
	return iommufd_ioas_map_fixed(ictx, ioas, va, len, iova, prot);
}
static int op_unmap(void *ctx, uint32_t ioas, uint64_t iova, uint64_t len)
{
	if (len == 0)
		return iommufd_ioas_unmap_all(ictx, ioas, NULL);
	return iommufd_ioas_unmap(ictx, ioas, iova, len, NULL);
}
static int op_attach(void *ctx, int devfd, uint32_t ioas) { return iommufd_vfio_attach(devfd, ioas, NULL); }

static const struct viommu_iommufd_ops host_ops = {
	.ioas_alloc = op_ioas_alloc,
	.ioas_destroy = op_ioas_destroy,
	.map = op_map,
	.unmap = op_unmap,
	.attach = op_attach,
	.identity_ioas = get_identity_ioas,
	.blocking_ioas = get_blocking_ioas,
};

/* ---- the host vIOMMU: a vDEVICE per endpoint behind the virtio-iommu ---- */

static struct viommu_hw *host_viommu;
static bool host_viommu_failed;

static void host_viommu_events(void *opaque, uint32_t events)
{
	int r = viommu_hw_process_events(opaque);
	if (r < 0 && r != -EAGAIN) {
		fprintf(stderr, "vmm: virtio-iommu: reading the host vEVENTQ: %s; no more host "
			"faults are forwarded\n", strerror(-r));
		evloop_del(viommu_hw_event_fd(opaque));
	}
}

/* Give vd (endpoint ID `endpoint`) a vDEVICE; the first call creates the
 * vIOMMU on a nesting-parent HWPT of the identity IOAS. A kernel without
 * the objects is reported by viommu_hw_create() itself; a host IOMMU that
 * cannot be a nesting parent (QEMU's emulated VT-d, for one) is reported
 * here, once. Neither stops the device: its DMA never depends on this. */
static void host_viommu_add(struct vfio_dev *vd, uint32_t endpoint)
{
	struct iommufd_features f;
	uint32_t ioas;
	int r;

	if (host_viommu_failed)
		return;
	if (!host_viommu) {
		r = get_identity_ioas(NULL, &ioas);
		if (!r)
			r = viommu_hw_create(&host_viommu, ictx, the_viommu, vd->dev_id, ioas,
					     IOMMU_VIOMMU_TYPE_DEFAULT);
		if (r) {
			host_viommu_failed = true;
			if (r != -EOPNOTSUPP ||
			    (!iommufd_probe_features(ictx, &f) && f.viommu && f.vdevice))
				fprintf(stderr, "vmm: virtio-iommu: %s: the host IOMMU cannot back a "
					"vIOMMU (%s); using the IOAS path, host faults are not "
					"forwarded\n", vd->name, iommufd_last_error());
			return;
		}
		int fd = viommu_hw_event_fd(host_viommu);
		if (fd >= 0 && (r = evloop_add(fd, EPOLLIN, host_viommu_events, host_viommu)))
			fprintf(stderr, "vmm: virtio-iommu: host vEVENTQ not polled: %s\n",
				strerror(-r));
	}
	r = viommu_hw_add_endpoint(host_viommu, vd->dev_id, endpoint);
	if (r)
		fprintf(stderr, "vmm: virtio-iommu: %s: no vDEVICE for endpoint %#x: %s\n", vd->name,
			endpoint, strerror(-r));
	else
		fprintf(stderr, "vmm: virtio-iommu: %s: vDEVICE %u (virt_id %#x) on host vIOMMU "
			"%u%s\n", vd->name, viommu_hw_vdevice_id(host_viommu, endpoint), endpoint,
			viommu_hw_viommu_id(host_viommu),
			viommu_hw_event_fd(host_viommu) >= 0 ? ", faults forwarded" : "");
}

/* ---- small helpers ---- */

static uint16_t get16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }

static int set_irqs(struct vfio_dev *vd, uint32_t index, uint32_t flags, uint32_t start,
		    uint32_t count, const int32_t *fds)
{
	size_t sz = sizeof(struct vfio_irq_set) + (fds ? count * sizeof(int32_t) : 0);
	struct vfio_irq_set *s = calloc(1, sz);
	int r = 0;

	if (!s)
		return -ENOMEM;
	s->argsz = sz;
	s->flags = flags;
	s->index = index;
	s->start = start;
	s->count = count;
	if (fds)
		memcpy(s->data, fds, count * sizeof(int32_t));
	/* MSI/MSI-X enabling answers with a positive count when the host could
	 * not allocate them all (and has enabled none). */
	int rc = ioctl(vd->fd, VFIO_DEVICE_SET_IRQS, s);
	if (rc < 0)
		r = -errno;
	else if (rc > 0)
		r = -ENOSPC;
	free(s);
	return r;
}

static int cfg_pread(struct vfio_dev *vd, uint32_t off, void *buf, size_t len)
{
	ssize_t n = pread(vd->fd, buf, len, vd->cfg_off + off);
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static int cfg_pwrite(struct vfio_dev *vd, uint32_t off, const void *buf, size_t len)
{
	ssize_t n = pwrite(vd->fd, buf, len, vd->cfg_off + off);
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

/* ---- interrupts ---- */

static void intx_enable(struct vfio_dev *vd, bool on)
{
	if (vd->intx_fd < 0 || vd->intx_vfio_on == on)
		return;
	int r;
	if (on) {
		int32_t fd = vd->intx_fd, rfd = vd->intx_rfd;
		r = set_irqs(vd, VFIO_PCI_INTX_IRQ_INDEX,
			     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, &fd);
		if (!r)
			r = set_irqs(vd, VFIO_PCI_INTX_IRQ_INDEX,
				     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK, 0, 1, &rfd);
	} else {
		r = set_irqs(vd, VFIO_PCI_INTX_IRQ_INDEX,
			     VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);
	}
	if (r)
		fprintf(stderr, "vmm: %s: INTx %s: %s\n", vd->name, on ? "enable" : "disable",
			strerror(-r));
	else
		vd->intx_vfio_on = on;
}

static void intx_teardown(struct vfio_dev *vd)
{
	if (vd->intx_fd >= 0)
		close(vd->intx_fd);
	if (vd->intx_rfd >= 0)
		close(vd->intx_rfd);
	vd->intx_fd = vd->intx_rfd = -1;
}

/* INTx: KVM raises the GSI when the trigger fires and signals the resample
 * eventfd at the guest's EOI, which VFIO takes as "unmask". */
static int intx_setup(struct vfio_dev *vd)
{
	struct kvm_irqfd irqfd = { 0 };

	vd->intx_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vd->intx_rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vd->intx_fd < 0 || vd->intx_rfd < 0)
		return -errno;
	irqfd.fd = vd->intx_fd;
	irqfd.gsi = vd->pci.intx_gsi;
	irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
	irqfd.resamplefd = vd->intx_rfd;
	if (ioctl(the_vm.vm_fd, KVM_IRQFD, &irqfd) < 0)
		return -errno;
	intx_enable(vd, true);
	return 0;
}

static bool msix_vec_live(struct vfio_dev *vd, unsigned v)
{
	return vd->msix_enabled && !vd->msix_masked &&
	       !(vd->msix_table[v][3] & MSIX_ENTRY_MASKED);
}

static void msix_grow(struct vfio_dev *vd, unsigned n);

/* One past the highest vector that is live and routed (0: none). */
static unsigned msix_live_end(struct vfio_dev *vd)
{
	unsigned n = 0;

	for (unsigned v = 0; v < vd->msix_nvec; v++)
		if (vd->msix_route_ok[v] && msix_vec_live(vd, v))
			n = v + 1;
	return n;
}

/* Keep vector v's KVM route in step with its entry. A masked vector's
 * irqfd is held back from KVM: what the device signals meanwhile waits in
 * it (the PBA shows it pending) and is delivered once when the vector is
 * unmasked; a vector unmasked with nothing pending gets nothing. Called
 * with vd->lock held. */
static void msix_sync(struct vfio_dev *vd, unsigned v)
{
	if (!vd->msix_route_ok[v])
		return;
	struct msi_route *rt = &vd->msix_routes[v];
	bool live = msix_vec_live(vd, v);

	if (live && vd->msix_vfio_on && v >= vd->msix_host_n)
		msix_grow(vd, v + 1);
	uint64_t addr = vd->msix_table[v][0] | (uint64_t)vd->msix_table[v][1] << 32;

	if (!live && msi_route_hold(rt))
		fprintf(stderr, "vmm: %s: MSI-X vector %u: cannot hold it while masked (what "
			"comes meanwhile is lost)\n", vd->name, v);
	msi_route_update(rt, addr, vd->msix_table[v][2], live);
	if (!live)
		return;
	int r = msi_route_release(rt);
	if (r > 0)
		vd->n_pending_delivered++;
	else if (r < 0)
		fprintf(stderr, "vmm: %s: MSI-X vector %u: cannot attach it to KVM at unmask: %s "
			"(it stays held until it is masked and unmasked again)\n", vd->name, v,
			strerror(-r));
}

/* The PBA: bit v is set while vector v is masked and its device has
 * signalled it. */
static void pba_read(struct vfio_dev *vd, uint64_t off, uint8_t *data, unsigned len)
{
	pthread_mutex_lock(&vd->lock);
	for (unsigned i = 0; i < len; i++) {
		data[i] = 0;
		for (unsigned b = 0; b < 8; b++) {
			uint64_t v = (off + i) * 8 + b;
			if (v < vd->msix_nvec && vd->msix_route_ok[v] && !msix_vec_live(vd, v) &&
			    msi_route_pending(&vd->msix_routes[v]))
				data[i] |= 1u << b;
		}
	}
	pthread_mutex_unlock(&vd->lock);
}

/* MSI-X on the host is enabled with the vectors the guest uses, not all the
 * table offers: vectors [0, n) where n - 1 is the highest vector the guest
 * has unmasked, at least one (so the device is in MSI-X mode whenever the
 * guest's view says so). A device with hundreds of vectors of which the
 * guest uses a few takes a few host interrupts, not hundreds. */
static int msix_host_set(struct vfio_dev *vd, unsigned start, unsigned n)
{
	int32_t *fds = calloc(n - start, sizeof(*fds));
	int r;

	if (!fds)
		return -ENOMEM;
	for (unsigned v = start; v < n; v++)
		fds[v - start] = vd->msix_route_ok[v] ? vd->msix_routes[v].irqfd : -1;
	r = set_irqs(vd, VFIO_PCI_MSIX_IRQ_INDEX,
		     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, start, n - start, fds);
	free(fds);
	if (r)
		return r;
	vd->msix_host_n = n;
	if (n > vd->msix_host_max)
		vd->msix_host_max = n;
	return 0;
}

/* The guest unmasked vector n - 1, beyond the host's [0, msix_host_n).
 * Where VFIO can add vectors to an enabled set (dynamic MSI-X) only the
 * new ones are set up. Otherwise (VFIO refuses that with EINVAL) MSI-X is
 * switched off and on again, with every vector the guest has programmed
 * (a Linux guest writes all its entries before it unmasks the first, so
 * one cycle covers them, not one per vector), and every vector live
 * before gets one interrupt, as anything the device sent in between was
 * lost. A size the host refused is not tried again until the guest
 * enables MSI-X anew. Called with vd->lock held. */
static void msix_grow(struct vfio_dev *vd, unsigned n)
{
	unsigned old = vd->msix_host_n;
	int r;

	if (vd->msix_fail_n && n >= vd->msix_fail_n)
		return;
	if (!vd->msix_noresize) {
		r = msix_host_set(vd, old, n);
		if (!r) {
			vd->n_msix_grown_inplace++;
			return;
		}
		if (r != -EINVAL) {
			fprintf(stderr, "vmm: %s: MSI-X vectors %u-%u: %s; keeping %u\n", vd->name,
				old, n - 1, strerror(-r), old);
			vd->msix_fail_n = n;
			return;
		}
		vd->msix_noresize = true;
	}
	for (unsigned v = n; v < vd->msix_nvec && !(vd->msix_fail_n && v + 1 >= vd->msix_fail_n); v++)
		if (vd->msix_table[v][0] | vd->msix_table[v][1])
			n = v + 1;
	set_irqs(vd, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
		 0, 0, NULL);
	r = msix_host_set(vd, 0, n);
	if (r) {
		fprintf(stderr, "vmm: %s: MSI-X with %u vectors: %s; keeping %u\n", vd->name, n,
			strerror(-r), old);
		vd->msix_fail_n = n;
		if (!old || msix_host_set(vd, 0, old))
			vd->msix_host_n = 0;
	} else {
		vd->n_msix_grown_reenable++;
	}
	for (unsigned v = 0; v < old && v < vd->msix_host_n; v++)
		if (vd->msix_route_ok[v])	/* (a masked one: pending) */
			msi_route_fire(&vd->msix_routes[v]);
}

static void msix_set_enable(struct vfio_dev *vd, bool en)
{
	if (en && !vd->msix_vfio_on) {
		for (unsigned v = 0; v < vd->msix_nvec; v++) {
			if (!vd->msix_route_ok[v]) {
				int r = msi_route_alloc(&vd->msix_routes[v]);
				if (r) {
					fprintf(stderr, "vmm: %s: MSI-X vector %u: no route: %s\n",
						vd->name, v, strerror(-r));
					continue;
				}
				vd->msix_route_ok[v] = true;
			}
		}
		/* What was held before the guest turned MSI-X off is not for
		 * the driver that turns it on (nothing comes while it is off). */
		for (unsigned v = 0; v < vd->msix_nvec; v++)
			if (vd->msix_route_ok[v])
				msi_route_drop_held(&vd->msix_routes[v]);
		unsigned n = msix_live_end(vd);
		if (n == 0)
			n = 1;
		intx_enable(vd, false);
		vd->msix_fail_n = 0;
		int r = msix_host_set(vd, 0, n);
		if (r) {
			fprintf(stderr, "vmm: %s: enabling MSI-X (%u vectors): %s\n", vd->name, n,
				strerror(-r));
			if (!vd->msi_enabled)
				intx_enable(vd, true);
			return;
		}
		vd->msix_vfio_on = true;
	} else if (!en && vd->msix_vfio_on) {
		set_irqs(vd, VFIO_PCI_MSIX_IRQ_INDEX,
			 VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);
		vd->msix_vfio_on = false;
		vd->msix_host_n = 0;
		if (!vd->msi_enabled)
			intx_enable(vd, true);
	}
}

/* The guest wrote the MSI-X message control. */
static void msix_ctrl_changed(struct vfio_dev *vd)
{
	uint16_t ctrl = get16(vd->pci.cfg + vd->msix_cap + 2);
	bool en = ctrl & MSIX_ENABLE, masked = ctrl & MSIX_MASKALL;

	pthread_mutex_lock(&vd->lock);
	vd->msix_masked = masked;
	if (en != vd->msix_enabled) {
		vd->msix_enabled = en;
		msix_set_enable(vd, en);
	}
	/* Unmasking the function may bring several vectors to life: grow the
	 * host's set once, to the highest of them, before syncing each. */
	if (vd->msix_vfio_on) {
		unsigned n = msix_live_end(vd);

		if (n > vd->msix_host_n)
			msix_grow(vd, n);
	}
	for (unsigned v = 0; v < vd->msix_nvec; v++)
		msix_sync(vd, v);
	pthread_mutex_unlock(&vd->lock);
}

static void msix_table_access(struct vfio_dev *vd, uint64_t off, void *data, unsigned len,
			      bool is_write)
{
	unsigned v = off / 16, o = off % 16;

	if (v >= vd->msix_nvec || o + len > 16) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&vd->lock);
	uint8_t *e = (uint8_t *)vd->msix_table[v];
	if (is_write) {
		vd->n_msix_writes++;
		memcpy(e + o, data, len);
		vd->msix_table[v][3] &= MSIX_ENTRY_MASKED;	/* other bits reserved */
		msix_sync(vd, v);
	} else {
		memcpy(data, e + o, len);
	}
	pthread_mutex_unlock(&vd->lock);
}

/* MSI, one vector (multiple messages and per-vector masking are not
 * offered). */
static void msi_changed(struct vfio_dev *vd)
{
	const uint8_t *c = vd->pci.cfg + vd->msi_cap;
	bool en = get16(c + 2) & MSI_ENABLE;
	uint64_t addr = get32(c + 4);
	uint16_t data;

	if (vd->msi_64) {
		addr |= (uint64_t)get32(c + 8) << 32;
		data = get16(c + 12);
	} else {
		data = get16(c + 8);
	}
	pthread_mutex_lock(&vd->lock);
	if (en && !vd->msi_route_ok) {
		int r = msi_route_alloc(&vd->msi_route);
		if (r)
			fprintf(stderr, "vmm: %s: MSI: no route: %s\n", vd->name, strerror(-r));
		else
			vd->msi_route_ok = true;
	}
	if (vd->msi_route_ok)
		msi_route_update(&vd->msi_route, addr, data, en);
	if (en != vd->msi_enabled && vd->msi_route_ok) {
		int r;
		if (en) {
			int32_t fd = vd->msi_route.irqfd;
			intx_enable(vd, false);
			r = set_irqs(vd, VFIO_PCI_MSI_IRQ_INDEX,
				     VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, &fd);
		} else {
			r = set_irqs(vd, VFIO_PCI_MSI_IRQ_INDEX,
				     VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);
			if (!vd->msix_enabled)
				intx_enable(vd, true);
		}
		if (r)
			fprintf(stderr, "vmm: %s: MSI %s: %s\n", vd->name, en ? "enable" : "disable",
				strerror(-r));
		vd->msi_enabled = en;
	}
	pthread_mutex_unlock(&vd->lock);
}

/* ---- config space (0x40 and up; the bus serves the header) ---- */

static void vfio_cfg_read(struct pci_dev *d, uint32_t off, void *data, unsigned len)
{
	struct vfio_dev *vd = d->priv;
	uint8_t buf[4], *out = data;
	bool pass = false;

	if (len > sizeof(buf)) {	/* the bus gives 1, 2 or 4 */
		memset(data, 0xff, len);
		return;
	}
	for (unsigned i = 0; i < len; i++)
		pass |= vd->kind[off + i] == CFG_PASS;
	if (pass && (off + len > vd->cfg_size || cfg_pread(vd, off, buf, len)))
		memset(buf, 0xff, sizeof(buf));
	for (unsigned i = 0; i < len; i++) {
		switch (vd->kind[off + i]) {
		case CFG_PASS:
			out[i] = buf[i];
			break;
		case CFG_EMUL:
			out[i] = d->cfg[off + i];
			break;
		default:
			out[i] = 0;
		}
	}
	if (pass)
		vd->n_cfg_pass++;
}

static bool touches(uint32_t off, unsigned len, unsigned start, unsigned n)
{
	return start && off < start + n && start < off + len;
}

static void vfio_cfg_write(struct pci_dev *d, uint32_t off, const void *data, unsigned len)
{
	struct vfio_dev *vd = d->priv;
	const uint8_t *in = data;

	for (unsigned i = 0; i < len;) {
		unsigned k = vd->kind[off + i], j = i;
		while (j < len && vd->kind[off + j] == k)
			j++;
		if (k == CFG_PASS && off + j <= vd->cfg_size) {
			cfg_pwrite(vd, off + i, in + i, j - i);
			vd->n_cfg_pass++;
		} else if (k == CFG_EMUL) {
			pci_cfg_default_write(d, off + i, in + i, j - i);
		}
		i = j;
	}
	if (touches(off, len, vd->msix_cap + 2, 2))
		msix_ctrl_changed(vd);
	if (touches(off, len, vd->msi_cap + 2, vd->msi_64 ? 12 : 8))
		msi_changed(vd);
}

/* Extended capabilities the guest does not get: SR-IOV (it cannot make or
 * take virtual functions; their BARs are not ours to place), ARI (it would
 * speak of function numbers our bus does not have), Resizable BAR, of the
 * function and of its VFs (a resize would change a BAR beneath our
 * emulation of it), and ATS, PRI and PASID (the virtio-iommu offers none
 * of them). */
static bool ecap_hidden(uint16_t id)
{
	switch (id) {
	case 0x0E: case 0x0F: case 0x10: case 0x13: case 0x15: case 0x1B: case 0x24:
		return true;
	default:
		return false;
	}
}

unsigned vfio_ext_caps(const uint8_t *phys, unsigned size, uint8_t *cfg, uint8_t *kind)
{
	unsigned off[ECAP_MAX], n = 0, kept[ECAP_MAX], nk = 0;

	memset(cfg + ECAP_BASE, 0, PCI_CFG_SIZE - ECAP_BASE);
	memset(kind + ECAP_BASE, CFG_ZERO, PCI_CFG_SIZE - ECAP_BASE);
	if (size > PCI_CFG_SIZE)
		size = PCI_CFG_SIZE;
	for (unsigned p = ECAP_BASE; p >= ECAP_BASE && p + 4 <= size && n < ECAP_MAX;) {
		uint32_t h = get32(phys + p);
		if (h == 0 || h == 0xffffffff)
			break;
		off[n++] = p;
		p = (h >> 20) & ~3u;
	}
	for (unsigned i = 0; i < n; i++) {
		uint16_t id = get16(phys + off[i]);
		unsigned end = size;
		bool seen = false;
		for (unsigned j = 0; j < n; j++) {
			seen |= j < i && off[j] == off[i];
			if (off[j] > off[i] && off[j] < end)
				end = off[j];
		}
		if (seen || id == 0 || ecap_hidden(id))
			continue;
		memset(kind + off[i], CFG_EMUL, 4);
		memset(kind + off[i] + 4, CFG_PASS, end - off[i] - 4);
		kept[nk++] = off[i];
	}
	if (nk && kept[0] != ECAP_BASE) {
		put32(cfg + ECAP_BASE, (uint32_t)kept[0] << 20);
		memset(kind + ECAP_BASE, CFG_EMUL, 4);
	}
	for (unsigned i = 0; i < nk; i++) {
		uint32_t h = get32(phys + kept[i]) & 0xfffff;	/* ID and version */
		put32(cfg + kept[i], h | (i + 1 < nk ? (uint32_t)kept[i + 1] << 20 : 0));
	}
	return nk;
}

/* Re-link the capability list: keep PM, PCI Express (passed through), MSI
 * and MSI-X (virtualised); hide the rest. Extended capabilities: those of
 * a PCI Express function, but the ones vfio_ext_caps hides. */
static int build_caps(struct vfio_dev *vd, const uint8_t *phys, const struct vfio_irq_info *irqs)
{
	uint8_t *cfg = vd->pci.cfg, *wm = vd->pci.wmask;
	unsigned last = 0, guard = 0;
	bool express = false;

	cfg[CFG_CAP_PTR] = 0;
	vfio_ext_caps(phys, 0, cfg, vd->kind);
	if (!(get16(phys + CFG_STATUS) & STATUS_CAPS))
		return 0;
	for (unsigned p = phys[CFG_CAP_PTR] & ~3u; p >= 0x40 && p < 0x100 && guard++ < 48;
	     p = phys[p + 1] & ~3u) {
		uint8_t id = phys[p];
		bool keep = false;

		switch (id) {
		case CAP_PM:
			keep = true;
			break;
		case CAP_EXP:
			keep = express = true;
			break;
		case CAP_MSIX:
			if (irqs[VFIO_PCI_MSIX_IRQ_INDEX].count == 0 || p + 12 > 0x100)
				break;
			keep = true;
			vd->msix_cap = p;
			memcpy(cfg + p, phys + p, 12);
			/* Table size and locations read-only; enable and
			 * function mask are ours. */
			put16(cfg + p + 2, get16(phys + p + 2) & 0x7ff);
			wm[p + 3] = 0xC0;
			memset(vd->kind + p, CFG_EMUL, 12);
			break;
		case CAP_MSI: {
			if (irqs[VFIO_PCI_MSI_IRQ_INDEX].count == 0)
				break;
			uint16_t ctrl = get16(phys + p + 2);
			unsigned n = (ctrl & MSI_64BIT ? 14 : 10) + (ctrl & MSI_PVMASK ? 10 : 0);
			if (p + n > 0x100)
				break;
			keep = true;
			vd->msi_cap = p;
			vd->msi_64 = ctrl & MSI_64BIT;
			memset(cfg + p, 0, n);
			cfg[p] = CAP_MSI;
			put16(cfg + p + 2, ctrl & MSI_64BIT);	/* 1 vector, no masking */
			wm[p + 2] = MSI_ENABLE;
			put32(wm + p + 4, 0xfffffffc);
			if (vd->msi_64) {
				put32(wm + p + 8, 0xffffffff);
				put16(wm + p + 12, 0xffff);
			} else {
				put16(wm + p + 8, 0xffff);
			}
			memset(vd->kind + p, CFG_EMUL, n);
			break;
		}
		default:
			break;
		}
		if (!keep) {
			vd->kind[p] = vd->kind[p + 1] = CFG_ZERO;
			continue;
		}
		cfg[p] = id;
		cfg[p + 1] = 0;
		vd->kind[p] = vd->kind[p + 1] = CFG_EMUL;
		if (last)
			cfg[last + 1] = p;
		else
			cfg[CFG_CAP_PTR] = p;
		last = p;
	}
	if (last)
		put16(cfg + CFG_STATUS, get16(cfg + CFG_STATUS) | STATUS_CAPS);
	if (express)
		vd->n_ecaps = vfio_ext_caps(phys, vd->cfg_size, cfg, vd->kind);
	return 0;
}

/* ---- BARs ---- */

static void bar_io(void *opaque, uint64_t off, void *data, unsigned len, bool is_write)
{
	struct vfio_bar *b = opaque;
	struct vfio_dev *vd = b->vd;

	vd->n_bar_traps++;
	if (vd->msix_cap && b->index == vd->msix_bar && off >= vd->msix_off &&
	    off < vd->msix_off + 16ull * vd->msix_nvec) {
		msix_table_access(vd, off - vd->msix_off, data, len, is_write);
		return;
	}
	if (vd->msix_cap && b->index == vd->pba_bar && off >= vd->pba_off &&
	    off < vd->pba_off + 8ull * ((vd->msix_nvec + 63) / 64)) {
		if (!is_write)
			pba_read(vd, off - vd->pba_off, data, len);
		return;
	}
	/* Past the BAR, or an access that begins before the table or the PBA
	 * and runs into it (the spec allows aligned dwords and qwords only):
	 * all-ones, writes dropped, never the device's own table. */
	bool into_table = vd->msix_cap && b->index == vd->msix_bar && off < vd->msix_off &&
			  off + len > vd->msix_off;
	bool into_pba = vd->msix_cap && b->index == vd->pba_bar && off < vd->pba_off &&
			off + len > vd->pba_off;

	if (off + len > b->size || into_table || into_pba) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	ssize_t n = is_write ? pwrite(vd->fd, data, len, b->offset + off)
			     : pread(vd->fd, data, len, b->offset + off);
	if (n != (ssize_t)len && !is_write)
		memset(data, 0xff, len);
}

static void vfio_bar_moved(struct pci_dev *d, int bar, uint64_t old_addr, uint64_t new_addr,
			   bool enabled)
{
	struct vfio_dev *vd = d->priv;
	struct vfio_bar *b = &vd->bars[bar];

	for (unsigned i = 0; i < b->npieces; i++) {
		struct bar_piece *p = &b->pieces[i];
		if (p->on) {
			vm_set_memslot(p->slot, p->gpa, 0, p->host, false);
			p->on = false;
		}
		if (!enabled)
			continue;
		p->gpa = new_addr + p->off;
		int r = vm_set_memslot(p->slot, p->gpa, p->size, p->host, false);
		if (!r)
			p->on = true;
		else if (vm_guest_msg_ok())
			fprintf(stderr, "vmm: %s: BAR%d: memory slot at %#" PRIx64 "+%#" PRIx64
				": %s (accesses trap instead)\n", vd->name, bar, p->gpa, p->size,
				strerror(-r));
	}
}

/* Subtract page-rounded [s, e) ranges from an mmapped area: the pieces
 * left become memory slots. */
static void add_pieces(struct vfio_bar *b, void *host, uint64_t aoff, uint64_t asize,
		       uint64_t (*trap)[2], unsigned ntrap)
{
	uint64_t cur = aoff, end = aoff + asize;

	if (ntrap == 2 && trap[1][0] < trap[0][0]) {
		uint64_t t0 = trap[0][0], t1 = trap[0][1];
		trap[0][0] = trap[1][0];
		trap[0][1] = trap[1][1];
		trap[1][0] = t0;
		trap[1][1] = t1;
	}
	for (unsigned t = 0; t <= ntrap && cur < end && b->npieces < MAX_PIECES; t++) {
		uint64_t stop = t < ntrap ? trap[t][0] : end;
		if (stop > end)
			stop = end;
		if (stop > cur)
			b->pieces[b->npieces++] = (struct bar_piece){
				.off = cur, .size = stop - cur, .host = (uint8_t *)host + (cur - aoff),
				.slot = vm_alloc_memslot() };
		if (t < ntrap && trap[t][1] > cur)
			cur = trap[t][1];
	}
}

/* Region info with its capability chain (caller frees). */
static struct vfio_region_info *region_info(int fd, unsigned index)
{
	struct vfio_region_info *ri = calloc(1, sizeof(*ri));

	if (!ri)
		return NULL;
	ri->argsz = sizeof(*ri);
	ri->index = index;
	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, ri) < 0) {
		free(ri);
		return NULL;
	}
	if (ri->argsz > sizeof(*ri)) {
		uint32_t sz = ri->argsz;
		struct vfio_region_info *n = realloc(ri, sz);
		if (!n) {
			free(ri);
			return NULL;
		}
		ri = n;
		memset(ri, 0, sz);
		ri->argsz = sz;
		ri->index = index;
		if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, ri) < 0) {
			free(ri);
			return NULL;
		}
	}
	return ri;
}

static const struct vfio_info_cap_header *region_cap(const struct vfio_region_info *ri,
						      uint16_t id)
{
	if (!(ri->flags & VFIO_REGION_INFO_FLAG_CAPS) || !ri->cap_offset)
		return NULL;
	uint32_t off = ri->cap_offset;
	for (unsigned guard = 0; off && off + sizeof(struct vfio_info_cap_header) <= ri->argsz &&
	     guard < 32; guard++) {
		const struct vfio_info_cap_header *h = (const void *)((const uint8_t *)ri + off);
		if (h->id == id)
			return h;
		off = h->next;
	}
	return NULL;
}

/* Read BAR i's region and flags, mmap what may be mmapped. */
static int setup_bar(struct vfio_dev *vd, int i, const uint8_t *phys, bool *skip_next)
{
	struct vfio_bar *b = &vd->bars[i];
	struct vfio_region_info *ri = region_info(vd->fd, VFIO_PCI_BAR0_REGION_INDEX + i);
	uint32_t reg = get32(phys + CFG_BAR0 + 4 * i);

	b->vd = vd;
	b->index = i;
	if (!ri)
		return 0;	/* no such region: no BAR */
	b->size = ri->size;
	b->offset = ri->offset;
	b->flags = ri->flags;
	if (!b->size) {
		free(ri);
		return 0;
	}
	if (b->size & (b->size - 1)) {
		fprintf(stderr, "vmm: %s: BAR%d size %#" PRIx64 " is not a power of two\n",
			vd->name, i, b->size);
		free(ri);
		return -EINVAL;
	}
	enum pci_bar_kind kind;
	bool prefetch = false;
	if (reg & 1) {
		kind = PCI_BAR_IO;
	} else {
		kind = (reg & 6) == 4 ? PCI_BAR_MMIO64 : PCI_BAR_MMIO32;
		prefetch = reg & 8;
		*skip_next = kind == PCI_BAR_MMIO64;
	}
	pci_dev_set_bar(&vd->pci, i, kind, b->size, prefetch, bar_io, b);

	if (kind == PCI_BAR_IO || !(ri->flags & VFIO_REGION_INFO_FLAG_MMAP) || b->size < PAGE_SZ ||
	    vd->no_mmap) {
		free(ri);
		return 0;	/* every access traps */
	}
	/* What to leave trapping: the MSI-X table and PBA pages. */
	uint64_t trap[2][2];
	unsigned ntrap = 0;
	if (vd->msix_cap && vd->msix_bar == i) {
		trap[ntrap][0] = vd->msix_off & ~(PAGE_SZ - 1);
		trap[ntrap][1] = (vd->msix_off + 16ull * vd->msix_nvec + PAGE_SZ - 1) & ~(PAGE_SZ - 1);
		ntrap++;
	}
	if (vd->msix_cap && vd->pba_bar == i) {
		trap[ntrap][0] = vd->pba_off & ~(PAGE_SZ - 1);
		trap[ntrap][1] = (vd->pba_off + 8ull * ((vd->msix_nvec + 63) / 64) + PAGE_SZ - 1) &
				 ~(PAGE_SZ - 1);
		ntrap++;
	}
	const struct vfio_region_info_cap_sparse_mmap *sp =
		(const void *)region_cap(ri, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
	unsigned nareas = sp ? sp->nr_areas : 1;
	for (unsigned a = 0; a < nareas && b->nareas < MAX_PIECES; a++) {
		uint64_t aoff = sp ? sp->areas[a].offset : 0;
		uint64_t asz = sp ? sp->areas[a].size : b->size;
		if (!asz || (aoff | asz) & (PAGE_SZ - 1) || aoff + asz > b->size)
			continue;
		int prot = PROT_READ | PROT_WRITE;
		void *h = mmap(NULL, asz, prot, MAP_SHARED, vd->fd, b->offset + aoff);
		if (h == MAP_FAILED) {
			fprintf(stderr, "vmm: %s: BAR%d: mmap of %#" PRIx64 "+%#" PRIx64
				" failed: %s (accesses trap instead)\n", vd->name, i, aoff, asz,
				strerror(errno));
			continue;
		}
		b->areas[b->nareas].host = h;
		b->areas[b->nareas].off = aoff;
		b->areas[b->nareas].size = asz;
		b->nareas++;
		add_pieces(b, h, aoff, asz, trap, ntrap);
	}
	free(ri);
	return 0;
}

/* ---- creation ---- */

static void vfio_dev_free(struct vfio_dev *vd)
{
	if (!vd)
		return;
	for (int i = 0; i < 6; i++)
		for (unsigned a = 0; a < vd->bars[i].nareas; a++)
			munmap(vd->bars[i].areas[a].host, vd->bars[i].areas[a].size);
	if (vd->intx_fd >= 0)
		close(vd->intx_fd);
	if (vd->intx_rfd >= 0)
		close(vd->intx_rfd);
	if (vd->kvm_file)
		vm_vfio_file(vd->fd, false);
	if (vd->fd >= 0)
		close(vd->fd);
	free(vd->msix_table);
	free(vd->msix_routes);
	free(vd->msix_route_ok);
	free(vd->rom);
	pthread_mutex_destroy(&vd->lock);
	free(vd);
}

/* Bus mastering and INTx disable go to the device as the guest sets them:
 * a guest that stops a device's DMA (driver unbind, shutdown, kexec) stops
 * it on the host too, and vfio-pci masks INTx for a guest that disables
 * it. Memory and I/O decoding stay on in the device (the guest's view of
 * them is the bus's, through the memory slots and traps). */
static void vfio_cmd_written(struct pci_dev *d, uint16_t old_cmd, uint16_t cmd)
{
	struct vfio_dev *vd = d->priv;
	uint16_t pass = CMD_MASTER | CMD_INTX_OFF;
	uint16_t phys = (vd->phys_cmd & ~pass) | (cmd & pass);
	uint8_t c2[2];

	if (phys == vd->phys_cmd)
		return;
	if ((phys ^ vd->phys_cmd) & CMD_MASTER) {
		if (phys & CMD_MASTER)
			vd->n_master_on++;
		else
			vd->n_master_off++;
	}
	put16(c2, phys);
	if (cfg_pwrite(vd, CFG_COMMAND, c2, 2) == 0)
		vd->phys_cmd = phys;
	else
		fprintf(stderr, "vmm: %s: cannot write the device's command register "
			"(bus master %s)\n", vd->name, phys & CMD_MASTER ? "on" : "off");
}

/* Interrupt Status: the device's own, as its INTx is pending or not. */
static uint16_t vfio_status_read(struct pci_dev *d)
{
	struct vfio_dev *vd = d->priv;
	uint8_t st[2];

	if (!d->intx_pin || cfg_pread(vd, CFG_STATUS, st, 2))
		return 0;
	vd->n_cfg_pass++;
	return get16(st) & STATUS_INTX;
}

static const struct pci_dev_ops vfio_pci_ops = {
	.cfg_read = vfio_cfg_read,
	.cfg_write = vfio_cfg_write,
	.bar_moved = vfio_bar_moved,
	.cmd_written = vfio_cmd_written,
	.status_read = vfio_status_read,
};

#define FAIL(...) do { fprintf(stderr, "vmm: --device path=%s: ", path); \
		       fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } while (0)

/* Attach to a scratch IOAS to learn the device's usable IOVA ranges. */
static int probe_ranges(struct vfio_dev *vd, struct iommu_iova_range **ranges, uint32_t *n,
			uint64_t *align)
{
	uint32_t tmp;
	int r = iommufd_ioas_alloc(ictx, &tmp);
	if (r)
		return r;
	r = iommufd_vfio_attach(vd->fd, tmp, NULL);
	if (!r)
		r = iommufd_ioas_iova_ranges(ictx, tmp, ranges, n, align);
	/* Leave the device blocked: on the blocking IOAS, or else detached
	 * (a bound device with no attachment does no DMA either), so the
	 * scratch IOAS is free to go. */
	uint32_t block;
	if (get_blocking_ioas(NULL, &block) || iommufd_vfio_attach(vd->fd, block, NULL))
		iommufd_vfio_detach(vd->fd);
	iommufd_destroy(ictx, tmp);
	return r;
}

/* ---- expansion ROM ---- */

/* Copy the device's ROM region once (vfio-pci maps the ROM for each read
 * of the region, so the guest's many small reads go to our copy). What
 * cannot be read reads as 0xFF, and is said once. */
static void rom_load(struct vfio_dev *vd)
{
	uint64_t done = 0;

	while (done < vd->rom_size) {
		size_t chunk = vd->rom_size - done > 65536 ? 65536 : vd->rom_size - done;
		ssize_t n = pread(vd->fd, vd->rom + done, chunk, vd->rom_region_off + done);
		if (n <= 0) {
			if (!done)
				fprintf(stderr, "vmm: %s: the device's expansion ROM cannot be read (%s): "
					"the guest reads 0xFF from it\n", vd->name,
					n < 0 ? strerror(errno) : "empty");
			break;
		}
		done += n;
	}
	vd->rom_len = done;
	memset(vd->rom + done, 0xff, vd->rom_size - done);
}

static void rom_io(void *opaque, uint64_t off, void *data, unsigned len, bool is_write)
{
	struct vfio_dev *vd = opaque;

	if (is_write)
		return;		/* read-only */
	pthread_mutex_lock(&vd->lock);
	if (!vd->rom_loaded) {
		rom_load(vd);
		vd->rom_loaded = true;
	}
	vd->n_rom_reads++;
	pthread_mutex_unlock(&vd->lock);
	memset(data, 0xff, len);
	if (off < vd->rom_size)
		memcpy(data, vd->rom + off, len < vd->rom_size - off ? len : vd->rom_size - off);
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 2048;	/* the smallest ROM BAR */

	while (p < v)
		p <<= 1;
	return p;
}

#define ROM_MAX (16ull << 20)	/* the largest ROM offered, from a file or the device */

/* The guest's expansion ROM: romfile= read now (so a bad file stops the
 * VMM before the guest runs), or the device's ROM region if it has one. */
static int setup_rom(struct vfio_dev *vd, const struct passthrough_opts *o)
{
	const char *path = o->path;

	if (o->rom_off)
		return 0;
	if (o->romfile) {
		int fd = open(o->romfile, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			int e = errno;
			FAIL("romfile=%s: %s", o->romfile, strerror(e));
			if (fd >= 0)
				close(fd);
			return -e;
		}
		if (!S_ISREG(st.st_mode) || st.st_size == 0 || (uint64_t)st.st_size > ROM_MAX) {
			FAIL("romfile=%s: %s", o->romfile, !S_ISREG(st.st_mode) ? "not a regular file" :
			     st.st_size == 0 ? "empty" : "larger than 16 MiB");
			close(fd);
			return -EINVAL;
		}
		vd->rom_size = pow2_at_least(st.st_size);
		vd->rom = malloc(vd->rom_size);
		ssize_t n = vd->rom ? read(fd, vd->rom, st.st_size) : -1;
		int e = vd->rom ? errno : ENOMEM;
		close(fd);
		if (n != st.st_size) {
			FAIL("romfile=%s: %s", o->romfile, n < 0 ? strerror(e) : "short read");
			return n < 0 ? -e : -EIO;
		}
		memset(vd->rom + n, 0xff, vd->rom_size - n);
		vd->rom_len = n;
		vd->rom_loaded = true;
		vd->romfile = o->romfile;
	} else {
		struct vfio_region_info *ri = region_info(vd->fd, VFIO_PCI_ROM_REGION_INDEX);
		if (!ri || !ri->size || !(ri->flags & VFIO_REGION_INFO_FLAG_READ)) {
			free(ri);
			return 0;	/* no ROM */
		}
		vd->rom_size = pow2_at_least(ri->size);
		vd->rom_region_off = ri->offset;
		free(ri);
		if (vd->rom_size > ROM_MAX) {
			fprintf(stderr, "vmm: %s: expansion ROM of %#" PRIx64 " bytes not offered to "
				"the guest (more than 16 MiB)\n", vd->name, vd->rom_size);
			vd->rom_size = 0;
			return 0;
		}
		if (!(vd->rom = malloc(vd->rom_size))) {
			FAIL("out of memory");
			return -ENOMEM;
		}
	}
	pci_dev_set_rom(&vd->pci, vd->rom_size, rom_io, vd);
	return 0;
}

/* path=/sys/bus/pci/devices/BDF (cloud-hypervisor's way of naming the
 * device): the function's VFIO cdev is the vfio-dev/vfioN in that directory,
 * which exists while vfio-pci drives it. 0: not a directory, use path as it
 * is; 1: cdev set; < 0: said why not. */
static int sysfs_to_cdev(const char *path, char *cdev, size_t n)
{
	char p[PATH_MAX], drv[PATH_MAX];
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	snprintf(p, sizeof(p), "%s/vfio-dev", path);
	DIR *d = opendir(p);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (!strncmp(de->d_name, "vfio", 4))
				break;
		if (de)
			snprintf(cdev, n, "/dev/vfio/devices/%s", de->d_name);
		closedir(d);
		if (de)
			return 1;
	}
	snprintf(p, sizeof(p), "%s/config", path);
	if (access(p, F_OK) != 0) {
		FAIL("a directory, not a PCI function's in sysfs (expected "
		     "/sys/bus/pci/devices/DDDD:BB:DD.F or /dev/vfio/devices/vfioN)");
		return -ENODEV;
	}
	snprintf(p, sizeof(p), "%s/driver", path);
	ssize_t k = readlink(p, drv, sizeof(drv) - 1);
	if (k > 0) {
		drv[k] = 0;
		const char *name = strrchr(drv, '/');
		FAIL("the function is bound to %s, not vfio-pci (bind it to vfio-pci; "
		     "see docs/passthrough.md)", name ? name + 1 : drv);
	} else {
		FAIL("the function has no driver: bind it to vfio-pci (see docs/passthrough.md)");
	}
	return -ENODEV;
}

/* Drivers that leave a device's DMA to whoever owns its IOMMU group
 * (the kernel's driver_managed_dma): a group member on one of them does
 * not keep the group from a VMM; a member on any other host driver does. */
static bool group_neutral_driver(const char *drv)
{
	return !strcmp(drv, "vfio-pci") || !strcmp(drv, "pci-stub") || !strcmp(drv, "pcieport");
}

int vfio_group_conflict(const char *devdir, char *buf, size_t n)
{
	char p[PATH_MAX], q[PATH_MAX + 300], self[PATH_MAX], other[PATH_MAX], link[PATH_MAX];
	int found = 0;

	snprintf(p, sizeof(p), "%s/iommu_group", devdir);
	ssize_t k = readlink(p, link, sizeof(link) - 1);
	if (k <= 0 || !realpath(devdir, self))
		return 0;
	link[k] = 0;
	char group[64];
	snprintf(group, sizeof(group), "%.63s", strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
	snprintf(p, sizeof(p), "%s/iommu_group/devices", devdir);
	DIR *d = opendir(p);
	if (!d)
		return 0;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(q, sizeof(q), "%s/%s", p, de->d_name);
		if (!realpath(q, other) || !strcmp(other, self))
			continue;
		snprintf(q, sizeof(q), "%s/%s/driver", p, de->d_name);
		k = readlink(q, link, sizeof(link) - 1);
		if (k <= 0)
			continue;
		link[k] = 0;
		const char *drv = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
		if (group_neutral_driver(drv))
			continue;
		snprintf(buf, n, "its IOMMU group %s also holds %s, bound to %s", group,
			 de->d_name, drv);
		found = 1;
	}
	closedir(d);
	return found;
}

int vfio_device_create(const struct passthrough_opts *o)
{
	const char *path = o->path;
	bool iommu = o->iommu;
	struct vfio_irq_info irqs[VFIO_PCI_NUM_IRQS] = { 0 };
	uint8_t phys[PCI_CFG_SIZE];
	struct stat st;
	int r;

	if (iommu && !the_viommu) {
		FAIL("iommu=on needs the virtio-iommu (--iommu)");
		return -EINVAL;
	}
	if (n_devices == MAX_VFIO_DEVICES) {
		FAIL("at most %d passthrough devices", MAX_VFIO_DEVICES);
		return -ENOSPC;
	}
	struct vfio_dev *vd = calloc(1, sizeof(*vd));
	if (!vd) {
		FAIL("out of memory");
		return -ENOMEM;
	}
	vd->fd = vd->intx_fd = vd->intx_rfd = -1;
	vd->path = path;
	vd->iommu = iommu;
	vd->no_mmap = o->mmap_off;
	pthread_mutex_init(&vd->lock, NULL);
	char cdev[PATH_MAX];
	const char *open_path = path;
	if ((r = sysfs_to_cdev(path, cdev, sizeof(cdev))) < 0)
		goto fail;
	if (r == 1)
		open_path = cdev;
	const char *base = strrchr(open_path, '/');
	snprintf(vd->name, sizeof(vd->name), "vfio %.58s", base ? base + 1 : open_path);

	vd->fd = open(open_path, O_RDWR | O_CLOEXEC);
	if (vd->fd < 0) {
		r = -errno;
		if (open_path != path)
			FAIL("cannot open its VFIO cdev %s: %s", open_path, strerror(-r));
		else
			FAIL("cannot open: %s", strerror(-r));
		goto fail;
	}
	if (fstat(vd->fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
		FAIL("not a VFIO device cdev (not a character device; expected "
		     "/dev/vfio/devices/vfioN)");
		r = -ENODEV;
		goto fail;
	}
	if ((r = host_ctx(path)))
		goto fail;
	/* KVM first: a VFIO driver that needs the VM takes it at bind time. */
	r = vm_vfio_file(vd->fd, true);
	if (r == -EINVAL) {
		FAIL("not a VFIO device cdev (KVM does not take it as a VFIO file; expected "
		     "/dev/vfio/devices/vfioN)");
		r = -ENODEV;
		goto fail;
	} else if (r < 0) {
		FAIL("KVM_DEV_VFIO_FILE_ADD: %s", strerror(-r));
		goto fail;
	}
	vd->kvm_file = r > 0;
	r = iommufd_vfio_bind(ictx, vd->fd, &vd->dev_id);
	if (r) {
		char devdir[64], why[PATH_MAX + 128];
		snprintf(devdir, sizeof(devdir), "/sys/dev/char/%u:%u/device", major(st.st_rdev),
			 minor(st.st_rdev));
		if (r == -ENOTTY)
			FAIL("not a VFIO device cdev (VFIO_DEVICE_BIND_IOMMUFD: not supported by "
			     "this file; expected /dev/vfio/devices/vfioN)");
		else if (r == -EBUSY || r == -EINVAL)
			/* EBUSY: its VFIO group is open (e.g. QEMU with
			 * /dev/vfio/N); EINVAL: the cdev is bound already (the
			 * cdev path allows one user). */
			FAIL("the device is busy: already in use by another VMM or process "
			     "(VFIO_DEVICE_BIND_IOMMUFD: %s)", strerror(EBUSY));
		else if (r == -EPERM && vfio_group_conflict(devdir, why, sizeof(why)))
			/* The group's DMA is the host driver's (iommufd could
			 * not claim it). */
			FAIL("%s: a device can be passed through only when every device of its "
			     "IOMMU group is on vfio-pci or on no driver (VFIO_DEVICE_BIND_IOMMUFD: %s)",
			     why, strerror(-r));
		else if (r == -EPERM)
			FAIL("the host IOMMU cannot isolate this device's interrupts (no interrupt "
			     "remapping?), or another device of its IOMMU group is in use by another "
			     "VMM: VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(-r));
		else
			FAIL("%s", iommufd_last_error());
		if (r == -EINVAL)
			r = -EBUSY;
		goto fail;
	}

	vd->info.argsz = sizeof(vd->info);
	if (ioctl(vd->fd, VFIO_DEVICE_GET_INFO, &vd->info) < 0) {
		r = -errno;
		FAIL("VFIO_DEVICE_GET_INFO: %s", strerror(-r));
		goto fail;
	}
	if (!(vd->info.flags & VFIO_DEVICE_FLAGS_PCI) ||
	    vd->info.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
		FAIL("not a PCI device (only PCI passthrough is supported)");
		r = -ENODEV;
		goto fail;
	}
	if (vd->info.flags & VFIO_DEVICE_FLAGS_RESET) {
		if (ioctl(vd->fd, VFIO_DEVICE_RESET) < 0)
			fprintf(stderr, "vmm: %s: VFIO_DEVICE_RESET: %s (continuing)\n", vd->name,
				strerror(errno));
	}
	for (unsigned i = 0; i < VFIO_PCI_NUM_IRQS && i < vd->info.num_irqs; i++) {
		irqs[i].argsz = sizeof(irqs[i]);
		irqs[i].index = i;
		if (ioctl(vd->fd, VFIO_DEVICE_GET_IRQ_INFO, &irqs[i]) < 0)
			irqs[i].count = 0;
	}

	/* DMA: identity IOAS now, or blocking until the guest's IOMMU driver
	 * attaches it. */
	uint32_t ioas;
	struct iommu_iova_range *ranges = NULL;
	uint32_t nranges = 0;
	uint64_t align = 0;
	if (iommu) {
		r = probe_ranges(vd, &ranges, &nranges, &align);
		if (r) {
			FAIL("cannot learn the device's IOVA ranges: %s", iommufd_last_error());
			goto fail;
		}
	} else {
		r = get_identity_ioas(NULL, &ioas);
		if (!r)
			r = iommufd_vfio_attach(vd->fd, ioas, NULL);
		if (r) {
			FAIL("cannot map guest RAM for the device's DMA: %s", iommufd_last_error());
			goto fail;
		}
		identity_attached++;
	}

	/* Config space. */
	struct vfio_region_info *cri = region_info(vd->fd, VFIO_PCI_CONFIG_REGION_INDEX);
	if (!cri || cri->size < 0x40) {
		free(cri);
		free(ranges);
		FAIL("no PCI config region");
		r = -ENODEV;
		goto fail;
	}
	vd->cfg_off = cri->offset;
	vd->cfg_size = cri->size < PCI_CFG_SIZE ? cri->size : PCI_CFG_SIZE;
	free(cri);
	memset(phys, 0, sizeof(phys));
	if ((r = cfg_pread(vd, 0, phys, vd->cfg_size))) {
		free(ranges);
		FAIL("cannot read its config space: %s", strerror(-r));
		goto fail;
	}
	if ((phys[CFG_HEADER] & 0x7f) != 0) {
		free(ranges);
		FAIL("not a type 0 (endpoint) function: bridges cannot be passed through");
		r = -ENODEV;
		goto fail;
	}
	struct pci_dev *d = &vd->pci;
	pci_dev_init(d, get16(phys + CFG_VENDOR), get16(phys + CFG_DEVICE),
		     phys[CFG_CLASS] | phys[CFG_CLASS + 1] << 8 | phys[CFG_CLASS + 2] << 16,
		     get16(phys + CFG_SUBSYS_VENDOR), get16(phys + CFG_SUBSYS_ID));
	d->cfg[CFG_REVISION] = phys[CFG_REVISION];
	d->ops = &vfio_pci_ops;
	d->priv = vd;
	d->name = vd->name;
	build_caps(vd, phys, irqs);
	if (vd->msix_cap) {
		uint16_t ctrl = get16(phys + vd->msix_cap + 2);
		uint32_t t = get32(phys + vd->msix_cap + 4), p = get32(phys + vd->msix_cap + 8);
		vd->msix_nvec = (ctrl & 0x7ff) + 1;
		/* VMM_DEBUG_MSIX_NORESIZE=1: grow by re-enabling even where VFIO
		 * could grow in place (the runner's kernel can; its tests use
		 * this to cover the other way). */
		const char *nr = getenv("VMM_DEBUG_MSIX_NORESIZE");
		vd->msix_noresize = (irqs[VFIO_PCI_MSIX_IRQ_INDEX].flags & VFIO_IRQ_INFO_NORESIZE) ||
				    (nr && !strcmp(nr, "1"));
		vd->msix_bar = t & 7;
		vd->msix_off = t & ~7u;
		vd->pba_bar = p & 7;
		vd->pba_off = p & ~7u;
		vd->msix_table = calloc(vd->msix_nvec, sizeof(*vd->msix_table));
		vd->msix_routes = calloc(vd->msix_nvec, sizeof(*vd->msix_routes));
		vd->msix_route_ok = calloc(vd->msix_nvec, sizeof(*vd->msix_route_ok));
		if (!vd->msix_table || !vd->msix_routes || !vd->msix_route_ok) {
			free(ranges);
			FAIL("out of memory");
			r = -ENOMEM;
			goto fail;
		}
		for (unsigned v = 0; v < vd->msix_nvec; v++)
			vd->msix_table[v][3] = MSIX_ENTRY_MASKED;
	}
	bool skip = false;
	for (int i = 0; i < 6; i++) {
		if (skip) {
			skip = false;
			continue;
		}
		if ((r = setup_bar(vd, i, phys, &skip))) {
			free(ranges);
			FAIL("cannot set up BAR%d", i);
			goto fail;
		}
	}
	if ((r = setup_rom(vd, o))) {
		free(ranges);
		goto fail;
	}
	if (irqs[VFIO_PCI_INTX_IRQ_INDEX].count && phys[CFG_INT_PIN] >= 1 && phys[CFG_INT_PIN] <= 4)
		d->intx_pin = phys[CFG_INT_PIN];

	/* The device decodes; what the guest sees is ours. It masters (DMA,
	 * MSIs) once the guest turns bus mastering on (vfio_cmd_written). */
	uint16_t cmd = (get16(phys + CFG_COMMAND) | CMD_MEM) & ~(CMD_MASTER | CMD_INTX_OFF);
	for (int i = 0; i < 6; i++)
		if (d->bars[i].kind == PCI_BAR_IO)
			cmd |= CMD_IO;
	uint8_t c2[2];
	put16(c2, cmd);
	cfg_pwrite(vd, CFG_COMMAND, c2, 2);
	vd->phys_cmd = cmd;

	r = pci_register(d);
	if (r) {
		free(ranges);
		FAIL("no room on the PCI bus: %s", strerror(-r));
		/* Not on the bus: nothing refers to vd. */
		goto fail;
	}
	/* From here on the bus refers to vd: failures leave it allocated
	 * (the VMM exits). */
	if (d->intx_pin && (r = intx_setup(vd))) {
		fprintf(stderr, "vmm: %s: INTx not available: %s\n", vd->name, strerror(-r));
		intx_teardown(vd);
		d->intx_pin = 0;		/* the guest sees no pin */
		d->cfg[CFG_INT_PIN] = 0;
	}
	if (iommu) {
		vd->be_ep = (struct viommu_iommufd_ep){ .devfd = vd->fd, .endpoint = d->devfn,
							.name = vd->name };
		backend = viommu_iommufd_get(the_viommu, &host_ops, NULL, &the_vm.mem);
		r = backend ? viommu_iommufd_add_endpoint(backend, &vd->be_ep) : -ENOMEM;
		if (!r)
			r = viommu_iommufd_constrain(the_viommu, d->devfn, ranges, nranges, align);
		free(ranges);
		if (r) {
			FAIL("cannot put it behind the virtio-iommu: %s", strerror(-r));
			return r;
		}
		host_viommu_add(vd, d->devfn);
	}
	devices[n_devices++] = vd;
	fprintf(stderr, "vmm: %s: %04x:%04x at 00:%02x.0%s, %u MSI-X vectors%s%s%s\n", vd->name,
		get16(phys), get16(phys + 2), d->devfn >> 3, iommu ? " behind the virtio-iommu" : "",
		vd->msix_nvec, vd->msi_cap ? ", MSI" : "", d->intx_pin ? ", INTx" : "",
		!vd->rom_size ? "" : vd->romfile ? ", ROM from romfile=" : ", ROM");
	return 0;
fail:
	vfio_dev_free(vd);
	vfio_host_release();
	return r < 0 ? r : -EIO;
}

void vfio_print_stats(FILE *f)
{
	for (unsigned i = 0; i < n_devices; i++) {
		struct vfio_dev *vd = devices[i];
		fprintf(f, "%s: config accesses to the device %" PRIu64 ", BAR traps %" PRIu64
			", MSI-X table writes %" PRIu64 ", held while masked and delivered at unmask %"
			PRIu64 "\n", vd->name, vd->n_cfg_pass, vd->n_bar_traps, vd->n_msix_writes,
			vd->n_pending_delivered);
		unsigned pieces = 0;
		for (unsigned b = 0; b < 6; b++)
			pieces += vd->bars[b].npieces;
		fprintf(f, "%s: BAR pieces in KVM memory slots: %u%s\n", vd->name, pieces,
			vd->no_mmap ? " (mmap=off)" : "");
		fprintf(f, "%s: extended capabilities offered: %u\n", vd->name, vd->n_ecaps);
		fprintf(f, "%s: known to KVM (KVM-VFIO device): %s\n", vd->name,
			vd->kvm_file ? "yes" : "no");
		fprintf(f, "%s: bus master (the guest's, on the device): %s; turned on %" PRIu64
			", off %" PRIu64 " times\n", vd->name, vd->phys_cmd & CMD_MASTER ? "on" : "off",
			vd->n_master_on, vd->n_master_off);
		if (vd->rom_size)
			fprintf(f, "%s: expansion ROM: %" PRIu64 " KiB BAR from %s%s, %" PRIu64
				" bytes of content, %" PRIu64 " guest reads\n", vd->name,
				vd->rom_size >> 10, vd->romfile ? "romfile=" : "the device",
				vd->romfile ? vd->romfile : "", vd->rom_len, vd->n_rom_reads);
		else
			fprintf(f, "%s: expansion ROM: none\n", vd->name);
		if (vd->msix_cap)
			fprintf(f, "%s: MSI-X host vectors: at most %u of %u enabled; grown %" PRIu64
				" times in place, %" PRIu64 " by re-enabling\n", vd->name,
				vd->msix_host_max, vd->msix_nvec, vd->n_msix_grown_inplace,
				vd->n_msix_grown_reenable);
	}
	if (identity_attached)
		fprintf(f, "vfio: identity IOAS (guest RAM at IOVA = GPA) built %u time%s, "
			"%u device%s attached\n", identity_builds, identity_builds == 1 ? "" : "s",
			identity_attached, identity_attached == 1 ? "" : "s");
	if (backend)
		viommu_iommufd_print_stats(backend, f);
}
