/* The modern (non-transitional) virtio-pci transport, virtio 1.2 section 4.1.
 *
 * One 64-bit memory BAR (BAR0) holds every structure:
 *	0x0000	common configuration
 *	0x1000	ISR status
 *	0x2000	device-specific configuration
 *	0x3000	notifications: queue q at 0x3000 + 4 * q
 *	0x4000	MSI-X table (one vector per queue, plus one for config)
 *	0x5000	MSI-X PBA
 * With pio_notify the notify registers are instead in an I/O BAR (BAR2),
 * queue q at port BAR2 + 4 * q: a nested guest's port write exits with the
 * port, size and value in hand, where an MMIO write makes the hypervisor
 * fetch and decode the instruction.
 * Capabilities: MSI-X, then the vendor capabilities for common, notify, ISR,
 * device config and the PCI-config access window.
 *
 * Locks: d->lock covers the virtio state (status, features, queues) and is
 * held around every device op. vp->irq_lock covers the MSI-X table, PBA,
 * ISR and INTx level, so interrupts can be raised from any context. The
 * PCI bus lock is taken before either (config-space accesses). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include "evloop.h"
#include "virtio.h"

#define VP_COMMON	0x0000
#define VP_ISR		0x1000
#define VP_DEVICE	0x2000
#define VP_NOTIFY	0x3000
#define VP_MSIX_TABLE	0x4000
#define VP_MSIX_PBA	0x5000
#define VP_BAR_SIZE	0x8000
#define VP_COMMON_LEN	(VIRTIO_PCI_COMMON_Q_USEDHI + 4)
#define VP_NOTIFY_MULT	4
#define VP_PIO_BAR	2		/* the I/O BAR of pio_notify */
#define VP_MAX_VECTORS	(VIRTIO_MAX_QUEUES + 1)

#define PCI_CAP_ID_MSIX		0x11
#define PCI_CAP_ID_VNDR		0x09
#define MSIX_CTRL_ENABLE	0x8000
#define MSIX_CTRL_MASKALL	0x4000
#define MSIX_ENTRY_MASKED	0x1
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_INTERRUPT 0x0008

#define ISR_QUEUE	0x1
#define ISR_CONFIG	0x2

struct vp_kick {
	struct virtio_pci *vp;
	unsigned q;
	int fd;
};

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_dev *vdev;

	/* Common configuration (under vdev->lock). */
	uint32_t dfselect, gfselect;
	uint16_t queue_sel;
	uint16_t msix_config;
	uint16_t q_vector[VIRTIO_MAX_QUEUES];
	bool q_enabled[VIRTIO_MAX_QUEUES];
	uint8_t config_gen;

	/* Interrupts (under irq_lock). */
	pthread_mutex_t irq_lock;
	unsigned nvec;
	unsigned msix_cap;		/* config-space offset */
	bool msix_enabled, msix_masked;
	uint32_t msix_table[VP_MAX_VECTORS][4];
	uint64_t pba;
	struct msi_route routes[VP_MAX_VECTORS];
	bool route_ok[VP_MAX_VECTORS], route_failed[VP_MAX_VECTORS];
	uint8_t isr;
	bool intx_level;

	/* Notifications. */
	bool use_ioeventfd;
	struct vp_kick kicks[VIRTIO_MAX_QUEUES];

	unsigned cfgcap;		/* VIRTIO_PCI_CAP_PCI_CFG offset */
};

static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static uint16_t get16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }

static bool overlaps(uint32_t off, unsigned len, uint32_t start, unsigned n)
{
	return off < start + n && start < off + len;
}

/* ---- interrupts ---- */

static void intx_set(struct virtio_pci *vp, bool level)
{
	if (!vp->pci.intx_pin || level == vp->intx_level)
		return;
	vp->intx_level = level;
	vm_irq_line_shared(vp->pci.intx_gsi, level);
}

static bool vector_masked(struct virtio_pci *vp, unsigned v)
{
	return vp->msix_masked || (vp->msix_table[v][3] & MSIX_ENTRY_MASKED);
}

/* Keep the KVM route of vector v in step with its table entry. */
static void route_sync(struct virtio_pci *vp, unsigned v)
{
	uint64_t addr = vp->msix_table[v][0] | (uint64_t)vp->msix_table[v][1] << 32;
	bool en = vp->msix_enabled && !vector_masked(vp, v);

	if (!vp->route_ok[v]) {
		if (!en || vp->route_failed[v])
			return;
		int r = msi_route_alloc(&vp->routes[v]);

		if (r < 0) {
			fprintf(stderr, "vmm: %s: cannot allocate an MSI route: %s\n",
				vp->vdev->name, strerror(-r));
			vp->route_failed[v] = true;
			return;
		}
		vp->route_ok[v] = true;
	}
	msi_route_update(&vp->routes[v], addr, vp->msix_table[v][2], en);
}

static void vector_fire(struct virtio_pci *vp, unsigned v)
{
	if (vp->route_ok[v])
		msi_route_fire(&vp->routes[v]);
}

/* Deliver the pending vectors that are no longer masked. */
static void msix_deliver_pending(struct virtio_pci *vp)
{
	if (!vp->msix_enabled)
		return;
	for (unsigned v = 0; v < vp->nvec; v++) {
		if ((vp->pba & (1ULL << v)) && !vector_masked(vp, v)) {
			vp->pba &= ~(1ULL << v);
			vector_fire(vp, v);
		}
	}
}

/* INTx is asserted while the ISR holds something, MSI-X is off and the
 * command register lets INTx out. Called with irq_lock held. */
static bool intx_pending(struct virtio_pci *vp)
{
	return !vp->msix_enabled && vp->isr;
}

static void intx_update(struct virtio_pci *vp)
{
	intx_set(vp, intx_pending(vp) && !(get16(vp->pci.cfg + 4) & PCI_COMMAND_INTX_DISABLE));
}

static void vp_signal(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
	pthread_mutex_lock(&vp->irq_lock);
	if (isr_bit == ISR_CONFIG || !vp->msix_enabled)
		vp->isr |= isr_bit;
	if (!vp->msix_enabled) {
		intx_update(vp);
	} else if (vector < vp->nvec) {
		if (vector_masked(vp, vector))
			vp->pba |= 1ULL << vector;
		else
			vector_fire(vp, vector);
	}
	/* VIRTIO_MSI_NO_VECTOR (or out of range): no notification. */
	pthread_mutex_unlock(&vp->irq_lock);
}

void virtio_notify_queue(struct virtio_dev *d, unsigned q)
{
	struct virtio_pci *vp = d->transport;

	if (!vp || q >= d->nqueues || !virtq_should_notify(&d->vqs[q]))
		return;
	vp_signal(vp, vp->q_vector[q], ISR_QUEUE);
}

bool virtio_queue_rekick(struct virtio_dev *d, unsigned q)
{
	struct virtio_pci *vp = d->transport;
	uint64_t one = 1;

	if (!vp || q >= d->nqueues || vp->kicks[q].fd < 0)
		return false;
	return write(vp->kicks[q].fd, &one, sizeof(one)) == sizeof(one);
}

void virtio_notify_config(struct virtio_dev *d)
{
	struct virtio_pci *vp = d->transport;

	if (!vp)
		return;
	vp->config_gen++;
	vp_signal(vp, vp->msix_config, ISR_CONFIG);
}

void virtio_set_needs_reset(struct virtio_dev *d)
{
	if (d->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	if (vm_guest_msg_ok())
		fprintf(stderr, "vmm: %s: device needs reset\n", d->name);
	d->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	if (d->status & VIRTIO_CONFIG_S_DRIVER_OK)
		virtio_notify_config(d);
}

/* ---- MSI-X table and PBA ---- */

static void msix_table_access(struct virtio_pci *vp, uint64_t off, void *data, unsigned len,
			      bool is_write)
{
	if (len == 8) {
		msix_table_access(vp, off, data, 4, is_write);
		msix_table_access(vp, off + 4, (uint8_t *)data + 4, 4, is_write);
		return;
	}
	unsigned v = off / 16, w = (off % 16) / 4;

	if (len != 4 || (off & 3) || v >= vp->nvec) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&vp->irq_lock);
	if (!is_write) {
		memcpy(data, &vp->msix_table[v][w], 4);
	} else {
		uint32_t val;

		memcpy(&val, data, 4);
		if (w == 3)
			val &= MSIX_ENTRY_MASKED;
		if (vp->msix_table[v][w] != val) {
			vp->msix_table[v][w] = val;
			route_sync(vp, v);
			if (w == 3)
				msix_deliver_pending(vp);
		}
	}
	pthread_mutex_unlock(&vp->irq_lock);
}

static void msix_pba_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned len)
{
	pthread_mutex_lock(&vp->irq_lock);
	uint64_t pba = vp->pba;
	pthread_mutex_unlock(&vp->irq_lock);

	memset(data, 0, len);
	if (off < 8) {
		uint8_t b[8];

		for (int i = 0; i < 8; i++)
			b[i] = pba >> (8 * i);
		memcpy(data, b + off, off + len > 8 ? 8 - off : len);
	}
}

/* The guest wrote the MSI-X message control register. */
static void msix_ctrl_changed(struct virtio_pci *vp)
{
	uint16_t ctrl = get16(vp->pci.cfg + vp->msix_cap + 2);

	pthread_mutex_lock(&vp->irq_lock);
	bool was = vp->msix_enabled;

	vp->msix_enabled = ctrl & MSIX_CTRL_ENABLE;
	vp->msix_masked = ctrl & MSIX_CTRL_MASKALL;
	for (unsigned v = 0; v < vp->nvec; v++)
		route_sync(vp, v);
	if (vp->msix_enabled != was)
		intx_update(vp);	/* off INTx (line dropped), or back on it */
	msix_deliver_pending(vp);
	pthread_mutex_unlock(&vp->irq_lock);
}

/* ---- common configuration ---- */

static uint64_t offered_features(struct virtio_dev *d)
{
	return d->host_features;
}

static void common_image(struct virtio_pci *vp, uint8_t *img)
{
	struct virtio_dev *d = vp->vdev;
	uint64_t f = offered_features(d);
	unsigned q = vp->queue_sel;

	memset(img, 0, VP_COMMON_LEN);
	put32(img + VIRTIO_PCI_COMMON_DFSELECT, vp->dfselect);
	put32(img + VIRTIO_PCI_COMMON_DF, vp->dfselect < 2 ? (uint32_t)(f >> (32 * vp->dfselect)) : 0);
	put32(img + VIRTIO_PCI_COMMON_GFSELECT, vp->gfselect);
	put32(img + VIRTIO_PCI_COMMON_GF,
	      vp->gfselect < 2 ? (uint32_t)(d->guest_features >> (32 * vp->gfselect)) : 0);
	put16(img + VIRTIO_PCI_COMMON_MSIX, vp->msix_config);
	put16(img + VIRTIO_PCI_COMMON_NUMQ, d->nqueues);
	img[VIRTIO_PCI_COMMON_STATUS] = d->status;
	img[VIRTIO_PCI_COMMON_CFGGENERATION] = vp->config_gen;
	put16(img + VIRTIO_PCI_COMMON_Q_SELECT, vp->queue_sel);
	if (q < d->nqueues) {
		struct virtq *vq = &d->vqs[q];

		put16(img + VIRTIO_PCI_COMMON_Q_SIZE, vq->size);
		put16(img + VIRTIO_PCI_COMMON_Q_MSIX, vp->q_vector[q]);
		put16(img + VIRTIO_PCI_COMMON_Q_ENABLE, vp->q_enabled[q]);
		put16(img + VIRTIO_PCI_COMMON_Q_NOFF, q);
		put32(img + VIRTIO_PCI_COMMON_Q_DESCLO, vq->desc_addr);
		put32(img + VIRTIO_PCI_COMMON_Q_DESCHI, vq->desc_addr >> 32);
		put32(img + VIRTIO_PCI_COMMON_Q_AVAILLO, vq->avail_addr);
		put32(img + VIRTIO_PCI_COMMON_Q_AVAILHI, vq->avail_addr >> 32);
		put32(img + VIRTIO_PCI_COMMON_Q_USEDLO, vq->used_addr);
		put32(img + VIRTIO_PCI_COMMON_Q_USEDHI, vq->used_addr >> 32);
	}
}

static void vp_reset(struct virtio_pci *vp, bool call_op)
{
	struct virtio_dev *d = vp->vdev;

	if (call_op && d->ops->reset)
		d->ops->reset(d);
	for (unsigned q = 0; q < d->nqueues; q++) {
		virtq_reset(&d->vqs[q]);
		d->vqs[q].size = d->queue_max_size;
		vp->q_vector[q] = VIRTIO_MSI_NO_VECTOR;
		vp->q_enabled[q] = false;
	}
	d->guest_features = 0;
	d->status = 0;
	vp->dfselect = vp->gfselect = 0;
	vp->queue_sel = 0;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	pthread_mutex_lock(&vp->irq_lock);
	vp->isr = 0;
	vp->pba = 0;
	intx_set(vp, false);
	pthread_mutex_unlock(&vp->irq_lock);
}

static bool features_ok(struct virtio_dev *d)
{
	uint64_t g = d->guest_features;

	if (g & ~offered_features(d))
		return false;
	if (!(g & (1ULL << VIRTIO_F_VERSION_1)))
		return false;
	/* Behind the IOMMU the device can only work with translated
	 * addresses: a driver that refuses that cannot use it. */
	if (d->iommu_platform && !(g & (1ULL << VIRTIO_F_ACCESS_PLATFORM)))
		return false;
	return true;
}

static void vp_start_queue(struct virtio_pci *vp, unsigned q)
{
	struct virtio_dev *d = vp->vdev;
	struct virtq *vq = &d->vqs[q];
	int r;

	vq->event_idx = virtio_has_feature(d, VIRTIO_RING_F_EVENT_IDX);
	vq->indirect = virtio_has_feature(d, VIRTIO_RING_F_INDIRECT_DESC);
	vq->dma = &d->dma;
	r = virtq_start(vq);
	if (r < 0) {
		if (vm_guest_msg_ok())
			fprintf(stderr, "vmm: %s: queue %u: rings unusable (%s)\n", d->name, q,
				strerror(-r));
		virtio_set_needs_reset(d);
	}
}

static void vp_driver_ok(struct virtio_pci *vp)
{
	struct virtio_dev *d = vp->vdev;

	if (!(d->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
		virtio_set_needs_reset(d);
		return;
	}
	for (unsigned q = 0; q < d->nqueues; q++)
		if (vp->q_enabled[q])
			vp_start_queue(vp, q);
	if (d->ops->activate && d->ops->activate(d) < 0)
		virtio_set_needs_reset(d);
}

static void write_status(struct virtio_pci *vp, uint8_t val)
{
	struct virtio_dev *d = vp->vdev;
	uint8_t old = d->status;

	if (val == 0) {
		vp_reset(vp, true);
		return;
	}
	/* "The driver MUST NOT clear a device status bit" (only a reset,
	 * writing 0, does): a driver that does would restart the queues
	 * under requests in flight at the next DRIVER_OK. */
	if (old & ~val & (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			  VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK)) {
		virtio_set_needs_reset(d);
		return;
	}
	if ((val & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !features_ok(d))
		val &= ~VIRTIO_CONFIG_S_FEATURES_OK;
	d->status = val | (old & VIRTIO_CONFIG_S_NEEDS_RESET);
	if ((val & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK))
		vp_driver_ok(vp);
}

static uint16_t check_vector(struct virtio_pci *vp, uint16_t v)
{
	return v < vp->nvec ? v : VIRTIO_MSI_NO_VECTOR;
}

static void common_field_write(struct virtio_pci *vp, unsigned field, const uint8_t *img)
{
	struct virtio_dev *d = vp->vdev;
	unsigned q = vp->queue_sel;
	struct virtq *vq = q < d->nqueues ? &d->vqs[q] : NULL;
	/* Queue registers are frozen once the queue is enabled. */
	bool q_writable = vq && !vp->q_enabled[q];

	switch (field) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		vp->dfselect = get32(img + field);
		break;
	case VIRTIO_PCI_COMMON_GFSELECT:
		vp->gfselect = get32(img + field);
		break;
	case VIRTIO_PCI_COMMON_GF:
		if (vp->gfselect < 2 && !(d->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
			unsigned sh = 32 * vp->gfselect;

			d->guest_features = (d->guest_features & ~(0xFFFFFFFFULL << sh)) |
					    (uint64_t)get32(img + field) << sh;
		}
		break;
	case VIRTIO_PCI_COMMON_MSIX:
		vp->msix_config = check_vector(vp, get16(img + field));
		break;
	case VIRTIO_PCI_COMMON_STATUS:
		write_status(vp, img[field]);
		break;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		vp->queue_sel = get16(img + field);
		break;
	case VIRTIO_PCI_COMMON_Q_SIZE: {
		uint16_t s = get16(img + field);

		if (q_writable && s && !(s & (s - 1)) && s <= d->queue_max_size)
			vq->size = s;
		break;
	}
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (vq)
			vp->q_vector[q] = check_vector(vp, get16(img + field));
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (q_writable && get16(img + field) == 1) {
			vp->q_enabled[q] = true;
			/* Enabled after DRIVER_OK: start it now. */
			if (d->status & VIRTIO_CONFIG_S_DRIVER_OK)
				vp_start_queue(vp, q);
		}
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
		if (q_writable)
			vq->desc_addr = get32(img + VIRTIO_PCI_COMMON_Q_DESCLO) |
					(uint64_t)get32(img + VIRTIO_PCI_COMMON_Q_DESCHI) << 32;
		break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
		if (q_writable)
			vq->avail_addr = get32(img + VIRTIO_PCI_COMMON_Q_AVAILLO) |
					 (uint64_t)get32(img + VIRTIO_PCI_COMMON_Q_AVAILHI) << 32;
		break;
	case VIRTIO_PCI_COMMON_Q_USEDLO:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		if (q_writable)
			vq->used_addr = get32(img + VIRTIO_PCI_COMMON_Q_USEDLO) |
					(uint64_t)get32(img + VIRTIO_PCI_COMMON_Q_USEDHI) << 32;
		break;
	default:
		break;	/* read-only */
	}
}

static const struct { uint8_t off, len; } common_fields[] = {
	{ VIRTIO_PCI_COMMON_DFSELECT, 4 }, { VIRTIO_PCI_COMMON_DF, 4 },
	{ VIRTIO_PCI_COMMON_GFSELECT, 4 }, { VIRTIO_PCI_COMMON_GF, 4 },
	{ VIRTIO_PCI_COMMON_MSIX, 2 }, { VIRTIO_PCI_COMMON_NUMQ, 2 },
	{ VIRTIO_PCI_COMMON_STATUS, 1 }, { VIRTIO_PCI_COMMON_CFGGENERATION, 1 },
	{ VIRTIO_PCI_COMMON_Q_SELECT, 2 }, { VIRTIO_PCI_COMMON_Q_SIZE, 2 },
	{ VIRTIO_PCI_COMMON_Q_MSIX, 2 }, { VIRTIO_PCI_COMMON_Q_ENABLE, 2 },
	{ VIRTIO_PCI_COMMON_Q_NOFF, 2 },
	{ VIRTIO_PCI_COMMON_Q_DESCLO, 4 }, { VIRTIO_PCI_COMMON_Q_DESCHI, 4 },
	{ VIRTIO_PCI_COMMON_Q_AVAILLO, 4 }, { VIRTIO_PCI_COMMON_Q_AVAILHI, 4 },
	{ VIRTIO_PCI_COMMON_Q_USEDLO, 4 }, { VIRTIO_PCI_COMMON_Q_USEDHI, 4 },
};

static void common_access(struct virtio_pci *vp, uint64_t off, void *data, unsigned len,
			  bool is_write)
{
	uint8_t img[VP_COMMON_LEN];

	if (off >= VP_COMMON_LEN || len > VP_COMMON_LEN - off) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	common_image(vp, img);
	if (!is_write) {
		memcpy(data, img + off, len);
		return;
	}
	memcpy(img + off, data, len);
	for (unsigned i = 0; i < sizeof(common_fields) / sizeof(common_fields[0]); i++)
		if (overlaps(off, len, common_fields[i].off, common_fields[i].len))
			common_field_write(vp, common_fields[i].off, img);
}

/* ---- the BAR ---- */

static void vp_queue_kick(struct virtio_pci *vp, unsigned q)
{
	struct virtio_dev *d = vp->vdev;

	pthread_mutex_lock(&d->lock);
	if (q < d->nqueues && (d->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(d->status & VIRTIO_CONFIG_S_NEEDS_RESET) && d->vqs[q].ready && d->ops->queue_notify)
		d->ops->queue_notify(d, q);
	pthread_mutex_unlock(&d->lock);
}

static void vp_bar_io(void *opaque, uint64_t off, void *data, unsigned len, bool is_write)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *d = vp->vdev;

	if (off < VP_ISR) {
		pthread_mutex_lock(&d->lock);
		common_access(vp, off - VP_COMMON, data, len, is_write);
		pthread_mutex_unlock(&d->lock);
	} else if (off < VP_DEVICE) {
		if (is_write)
			return;
		memset(data, 0, len);
		if (off == VP_ISR) {
			pthread_mutex_lock(&vp->irq_lock);
			*(uint8_t *)data = vp->isr;
			vp->isr = 0;
			intx_update(vp);
			pthread_mutex_unlock(&vp->irq_lock);
		}
	} else if (off < VP_NOTIFY) {
		uint64_t o = off - VP_DEVICE;

		if (o >= d->config_size || len > d->config_size - o) {
			if (!is_write)
				memset(data, 0, len);
			return;
		}
		pthread_mutex_lock(&d->lock);
		if (is_write) {
			if (d->ops->config_write)
				d->ops->config_write(d, o, data, len);
		} else if (d->ops->config_read) {
			d->ops->config_read(d, o, data, len);
		} else {
			memset(data, 0, len);
		}
		pthread_mutex_unlock(&d->lock);
	} else if (off < VP_MSIX_TABLE) {
		if (!is_write) {
			memset(data, 0, len);
			return;
		}
		uint64_t q = (off - VP_NOTIFY) / VP_NOTIFY_MULT;

		if (q < d->nqueues && !d->pio_notify)
			vp_queue_kick(vp, q);
	} else if (off < VP_MSIX_PBA) {
		msix_table_access(vp, off - VP_MSIX_TABLE, data, len, is_write);
	} else if (!is_write) {
		msix_pba_read(vp, off - VP_MSIX_PBA, data, len);
	}
}

/* The I/O BAR of pio_notify: queue q's notify register at 4 * q. */
static void vp_pio_notify(void *opaque, uint64_t off, void *data, unsigned len, bool is_write)
{
	struct virtio_pci *vp = opaque;
	uint64_t q = off / VP_NOTIFY_MULT;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (q < vp->vdev->nqueues)
		vp_queue_kick(vp, q);
}

/* ---- notifications through ioeventfd ---- */

static void vp_kick_ready(void *opaque, uint32_t events)
{
	struct vp_kick *k = opaque;
	uint64_t cnt;

	if (read(k->fd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: another wakeup consumed it. */
	}
	vp_queue_kick(k->vp, k->q);
}

/* base: the notify registers' first address (BAR0 + VP_NOTIFY, or the
 * I/O BAR's port). */
static void vp_ioeventfds(struct virtio_pci *vp, uint64_t base, bool assign)
{
	for (unsigned q = 0; q < vp->vdev->nqueues; q++) {
		int r = vm_ioeventfd(base + VP_NOTIFY_MULT * q, 2, vp->vdev->pio_notify,
				     vp->kicks[q].fd, assign);

		if (r < 0 && assign)
			/* The MMIO exit path still handles the write. */
			fprintf(stderr, "vmm: %s: ioeventfd for queue %u: %s\n",
				vp->vdev->name, q, strerror(-r));
	}
}

static void vp_bar_moved(struct pci_dev *pd, int bar, uint64_t old_addr, uint64_t new_addr,
			 bool enabled)
{
	struct virtio_pci *vp = pd->priv;

	uint64_t off = vp->vdev->pio_notify ? 0 : VP_NOTIFY;

	if (bar != (vp->vdev->pio_notify ? VP_PIO_BAR : 0) || !vp->use_ioeventfd)
		return;
	if (old_addr)
		vp_ioeventfds(vp, old_addr + off, false);
	if (enabled)
		vp_ioeventfds(vp, new_addr + off, true);
}

/* ---- PCI config space ---- */

/* VIRTIO_PCI_CAP_PCI_CFG: a window onto a BAR through config space (BAR0,
 * or the notify I/O BAR). The handler of the BAR the window points at. */
static io_handler_fn cfgcap_window(struct virtio_pci *vp, uint64_t *off, unsigned *len)
{
	const uint8_t *c = vp->pci.cfg + vp->cfgcap;
	uint8_t bar = c[VIRTIO_PCI_CAP_BAR];

	*off = get32(c + VIRTIO_PCI_CAP_OFFSET);
	*len = get32(c + VIRTIO_PCI_CAP_LENGTH);
	if (!(*len == 1 || *len == 2 || *len == 4) || (*off & (*len - 1)))
		return NULL;
	if (bar == 0 && *off + *len <= VP_BAR_SIZE)
		return vp_bar_io;
	if (bar == VP_PIO_BAR && vp->vdev->pio_notify && *off + *len <= vp->pci.bars[bar].size)
		return vp_pio_notify;
	return NULL;
}

static void vp_cfg_read(struct pci_dev *pd, uint32_t off, void *data, unsigned len)
{
	struct virtio_pci *vp = pd->priv;
	uint32_t data_off = vp->cfgcap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	uint64_t boff;
	unsigned blen;
	io_handler_fn fn;

	if (overlaps(off, len, data_off, 4) && (fn = cfgcap_window(vp, &boff, &blen)))
		fn(vp, boff, pd->cfg + data_off, blen, false);
	pci_cfg_default_read(pd, off, data, len);
}

static void vp_cfg_write(struct pci_dev *pd, uint32_t off, const void *data, unsigned len)
{
	struct virtio_pci *vp = pd->priv;
	uint32_t data_off = vp->cfgcap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	uint64_t boff;
	unsigned blen;
	io_handler_fn fn;

	pci_cfg_default_write(pd, off, data, len);
	if (overlaps(off, len, vp->msix_cap + 2, 2))
		msix_ctrl_changed(vp);
	if (overlaps(off, len, data_off, 4) && (fn = cfgcap_window(vp, &boff, &blen)))
		fn(vp, boff, pd->cfg + data_off, blen, true);
}

/* Interrupt Status: an INTx is pending (the ISR holds something, MSI-X
 * off) until the guest reads the ISR, whether or not INTx is let out. */
static uint16_t vp_status_read(struct pci_dev *d)
{
	struct virtio_pci *vp = d->priv;

	pthread_mutex_lock(&vp->irq_lock);
	bool p = intx_pending(vp);
	pthread_mutex_unlock(&vp->irq_lock);
	return p ? PCI_STATUS_INTERRUPT : 0;
}

/* Interrupt Disable written: the line follows. */
static void vp_cmd_written(struct pci_dev *d, uint16_t old_cmd, uint16_t cmd)
{
	struct virtio_pci *vp = d->priv;

	if (!((old_cmd ^ cmd) & PCI_COMMAND_INTX_DISABLE))
		return;
	pthread_mutex_lock(&vp->irq_lock);
	intx_update(vp);
	pthread_mutex_unlock(&vp->irq_lock);
}

static const struct pci_dev_ops vp_pci_ops = {
	.cfg_read = vp_cfg_read,
	.cfg_write = vp_cfg_write,
	.bar_moved = vp_bar_moved,
	.cmd_written = vp_cmd_written,
	.status_read = vp_status_read,
};

static void add_vndr_cap(struct pci_dev *pd, uint8_t type, uint8_t bar, uint32_t offset,
			 uint32_t length, unsigned caplen)
{
	unsigned c = pci_dev_add_cap(pd, PCI_CAP_ID_VNDR, caplen);

	pd->cfg[c + VIRTIO_PCI_CAP_LEN] = caplen;
	pd->cfg[c + VIRTIO_PCI_CAP_CFG_TYPE] = type;
	pd->cfg[c + VIRTIO_PCI_CAP_BAR] = bar;
	put32(pd->cfg + c + VIRTIO_PCI_CAP_OFFSET, offset);
	put32(pd->cfg + c + VIRTIO_PCI_CAP_LENGTH, length);
	if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
		put32(pd->cfg + c + VIRTIO_PCI_NOTIFY_CAP_MULT, VP_NOTIFY_MULT);
	if (type == VIRTIO_PCI_CAP_PCI_CFG) {
		struct virtio_pci *vp = pd->priv;

		vp->cfgcap = c;
		/* bar, offset, length and the data window are the driver's. */
		pd->wmask[c + VIRTIO_PCI_CAP_BAR] = 0xFF;
		memset(pd->wmask + c + VIRTIO_PCI_CAP_OFFSET, 0xFF, 8);
		memset(pd->wmask + c + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data), 0xFF, 4);
		put32(pd->cfg + c + VIRTIO_PCI_CAP_OFFSET, 0);
		put32(pd->cfg + c + VIRTIO_PCI_CAP_LENGTH, 0);
	}
}

static uint32_t class_of(uint16_t id)
{
	switch (id) {
	case 1: return 0x020000;	/* network controller, ethernet */
	case 2: return 0x018000;	/* mass storage, other */
	case 3: return 0x078000;	/* communication, other */
	case 23: return 0x088000;	/* system peripheral, other (IOMMU) */
	default: return 0xFF0000;
	}
}

static bool pio_notify_default;

void virtio_pci_set_pio_notify(bool on)
{
	pio_notify_default = on;
}

int virtio_pci_register(struct virtio_dev *d)
{
	struct virtio_pci *vp;
	struct pci_dev *pd;
	int r;

	if (d->nqueues == 0 || d->nqueues > VIRTIO_MAX_QUEUES ||
	    d->config_size > VP_NOTIFY - VP_DEVICE)
		return -EINVAL;
	vp = calloc(1, sizeof(*vp));
	if (!vp)
		return -ENOMEM;
	vp->vdev = d;
	d->pio_notify |= pio_notify_default;
	pthread_mutex_init(&vp->irq_lock, NULL);
	pthread_mutex_init(&d->lock, NULL);
	if (!d->queue_max_size)
		d->queue_max_size = 256;
	if (d->queue_max_size > VIRTQ_MAX_SIZE)
		d->queue_max_size = VIRTQ_MAX_SIZE;
	if (!d->dma.mem)
		d->dma.mem = &the_vm.mem;
	d->host_features |= 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (!d->no_indirect)
		d->host_features |= 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	if (d->iommu_platform)
		d->host_features |= 1ULL << VIRTIO_F_ACCESS_PLATFORM;
	else
		d->host_features &= ~(1ULL << VIRTIO_F_ACCESS_PLATFORM);
	for (unsigned q = 0; q < d->nqueues; q++)
		d->vqs[q].dma = &d->dma;
	vp->nvec = d->nqueues + 1;
	d->transport = vp;
	vp_reset(vp, false);

	pd = &vp->pci;
	pd->priv = vp;
	pd->ops = &vp_pci_ops;
	pd->name = d->name;
	pci_dev_init(pd, 0x1AF4, 0x1040 + d->device_id, class_of(d->device_id), 0x1AF4,
		     0x1040 + d->device_id);
	pd->cfg[8] = 1;		/* revision 1: modern */
	pd->intx_pin = 1;
	pci_dev_set_bar(pd, 0, PCI_BAR_MMIO64, VP_BAR_SIZE, false, vp_bar_io, vp);

	/* MSI-X: table and PBA in BAR0. */
	vp->msix_cap = pci_dev_add_cap(pd, PCI_CAP_ID_MSIX, 12);
	put16(pd->cfg + vp->msix_cap + 2, vp->nvec - 1);
	put32(pd->cfg + vp->msix_cap + 4, VP_MSIX_TABLE | 0);
	put32(pd->cfg + vp->msix_cap + 8, VP_MSIX_PBA | 0);
	put16(pd->wmask + vp->msix_cap + 2, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
	for (unsigned v = 0; v < vp->nvec; v++)
		vp->msix_table[v][3] = MSIX_ENTRY_MASKED;

	add_vndr_cap(pd, VIRTIO_PCI_CAP_COMMON_CFG, 0, VP_COMMON, VP_COMMON_LEN,
		     sizeof(struct virtio_pci_cap));
	if (d->pio_notify) {
		pci_dev_set_bar(pd, VP_PIO_BAR, PCI_BAR_IO, VP_NOTIFY_MULT * d->nqueues, false,
				vp_pio_notify, vp);
		add_vndr_cap(pd, VIRTIO_PCI_CAP_NOTIFY_CFG, VP_PIO_BAR, 0,
			     VP_NOTIFY_MULT * d->nqueues, sizeof(struct virtio_pci_notify_cap));
	} else {
		add_vndr_cap(pd, VIRTIO_PCI_CAP_NOTIFY_CFG, 0, VP_NOTIFY,
			     VP_NOTIFY_MULT * d->nqueues, sizeof(struct virtio_pci_notify_cap));
	}
	add_vndr_cap(pd, VIRTIO_PCI_CAP_ISR_CFG, 0, VP_ISR, 1, sizeof(struct virtio_pci_cap));
	if (d->config_size)
		add_vndr_cap(pd, VIRTIO_PCI_CAP_DEVICE_CFG, 0, VP_DEVICE, d->config_size,
			     sizeof(struct virtio_pci_cap));
	add_vndr_cap(pd, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 0, sizeof(struct virtio_pci_cfg_cap));

	/* Queue notifications on the event loop, unless handled in the vCPU. */
	for (unsigned q = 0; q < d->nqueues; q++)
		vp->kicks[q] = (struct vp_kick){ .vp = vp, .q = q, .fd = -1 };
	if (!d->notify_in_vcpu) {
		vp->use_ioeventfd = true;
		for (unsigned q = 0; q < d->nqueues && vp->use_ioeventfd; q++) {
			vp->kicks[q].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (vp->kicks[q].fd < 0 ||
			    evloop_add(vp->kicks[q].fd, EPOLLIN, vp_kick_ready, &vp->kicks[q]) < 0) {
				fprintf(stderr, "vmm: %s: no ioeventfd for queue %u, notifications exit to the VMM\n",
					d->name, q);
				vp->use_ioeventfd = false;
			}
		}
		if (!vp->use_ioeventfd) {
			for (unsigned q = 0; q < d->nqueues; q++) {
				if (vp->kicks[q].fd >= 0) {
					evloop_del(vp->kicks[q].fd);
					close(vp->kicks[q].fd);
					vp->kicks[q].fd = -1;
				}
			}
		}
	}

	r = pci_register(pd);
	if (r < 0) {
		fprintf(stderr, "vmm: %s: cannot register the PCI function: %s\n", d->name, strerror(-r));
		/* vp stays allocated: its fds may still be on the event loop. */
		d->transport = NULL;
		return r;
	}
	d->bdf = pd->devfn;
	return 0;
}

/* For the tests: the PCI function of a registered device. */
struct pci_dev *virtio_pci_dev(struct virtio_dev *d)
{
	return d->transport ? &d->transport->pci : NULL;
}
