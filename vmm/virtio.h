/* A virtio device on the modern virtio-pci transport (virtio 1.x, 4.1).
 * The device model (blk, net, console, iommu) fills a virtio_dev and its ops;
 * virtio-pci.c provides the PCI function, capabilities, common/notify/ISR/
 * device config, MSI-X, and calls the ops. The model knows nothing of PCI.
 *
 * Threads: config accesses arrive on vCPU threads; queue notifications on the
 * event loop thread (ioeventfd) or, when notify_in_vcpu is set, directly on
 * the vCPU thread that wrote the notify register. dev->lock is held around
 * every op call. */
#ifndef VMM_VIRTIO_H
#define VMM_VIRTIO_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "dma.h"
#include "pci.h"
#include "virtq.h"
#include "vm.h"

#define VIRTIO_MAX_QUEUES 8

struct virtio_dev;

struct virtio_dev_ops {
	/* Device-specific config space (read/write at off within it). */
	void (*config_read)(struct virtio_dev *d, uint32_t off, void *data, unsigned len);
	void (*config_write)(struct virtio_dev *d, uint32_t off, const void *data, unsigned len);
	/* The driver kicked queue q. */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
	/* DRIVER_OK was set: features are final, queues are started. */
	int (*activate)(struct virtio_dev *d);
	/* The driver reset the device (status = 0) or the VM is resetting. */
	void (*reset)(struct virtio_dev *d);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *priv;
	const char *name;
	uint16_t device_id;		/* virtio device ID (2 blk, 1 net, 3 console, 23 iommu) */
	uint64_t host_features;		/* offered; VIRTIO_F_VERSION_1 is added */
	uint64_t guest_features;	/* accepted by the driver */
	uint32_t config_size;		/* device-specific config bytes */
	unsigned nqueues;
	struct virtq vqs[VIRTIO_MAX_QUEUES];
	uint16_t queue_max_size;	/* default 256 */
	bool notify_in_vcpu;		/* handle notify in the vCPU exit */
	bool iommu_platform;		/* offer VIRTIO_F_ACCESS_PLATFORM */
	bool no_indirect;		/* do not offer VIRTIO_RING_F_INDIRECT_DESC */
	bool pio_notify;		/* notify registers in an I/O BAR (BAR2), not BAR0 */
	uint8_t status;
	/* The address space of this device's DMA (GPA, or through the
	 * virtio-iommu when iommu_platform). Set before virtio_pci_register. */
	struct dma_space dma;
	pthread_mutex_t lock;
	struct virtio_pci *transport;
	/* Bus/device/function the device landed on, after registration. */
	uint16_t bdf;
};

/* Devices registered from now on put their notify registers in an I/O BAR
 * (d->pio_notify) when on is true. */
void virtio_pci_set_pio_notify(bool on);

/* Create the PCI function for d and register it. Initializes d->lock,
 * defaults queue_max_size (256) and d->dma.mem (guest RAM), and adds the
 * transport's features to host_features: VIRTIO_F_VERSION_1,
 * VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC (unless no_indirect) and, with
 * iommu_platform, VIRTIO_F_ACCESS_PLATFORM. */
int virtio_pci_register(struct virtio_dev *d);
/* The PCI function of a registered device (tests, ACPI). */
struct pci_dev *virtio_pci_dev(struct virtio_dev *d);
/* Tell the driver that queue q has used buffers (MSI-X vector of the queue,
 * or INTx + ISR), subject to virtq_should_notify(). Call with d->lock held
 * (as in the ops), like every use of d->vqs. */
void virtio_notify_queue(struct virtio_dev *d, unsigned q);
/* Have queue q's notify handler run again from the event loop, as if the
 * guest had kicked it: for a handler that stops after a queue's worth of
 * requests so that it does not hold the loop while a guest keeps the ring
 * full. false: the queue is not served from the event loop (its kicks are
 * handled in the vCPU), so the handler must go on itself. */
bool virtio_queue_rekick(struct virtio_dev *d, unsigned q);
/* Tell the driver the device config changed. */
void virtio_notify_config(struct virtio_dev *d);
/* Mark the device broken (DEVICE_NEEDS_RESET) after an unrecoverable error. */
void virtio_set_needs_reset(struct virtio_dev *d);
static inline bool virtio_has_feature(const struct virtio_dev *d, unsigned bit)
{
	return d->guest_features & (1ULL << bit);
}

#endif
