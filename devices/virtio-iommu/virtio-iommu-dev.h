/* The virtio-iommu PCI device (virtio-iommu-dev.c). virtio_iommu_create(),
 * the_viommu, viommu_bdf(), viommu_pci_ranges() and viommu_print_stats() are
 * declared in vmm/devices.h. */
#ifndef VIOMMU_VIRTIO_IOMMU_DEV_H
#define VIOMMU_VIRTIO_IOMMU_DEV_H
#include <stdbool.h>

/* Initial value of the config field `bypass` (unattached endpoints bypass
 * the IOMMU); call before virtio_iommu_create(). Default: false (block). */
void virtio_iommu_set_default_bypass(bool bypass);

/* Poll the request queue for usec microseconds after each kick or request,
 * with the driver's kicks turned off meanwhile (0, the default: every
 * request is a kick). With one CPU online polling is refused unless
 * one_cpu is set; the poller then yields to the vCPUs while it waits.
 * Call before virtio_iommu_create(). */
void virtio_iommu_set_poll(unsigned usec, bool one_cpu);

/* The BDF of the virtio-iommu's PCI function, or -1 before creation. */
int virtio_iommu_bdf(void);

#endif
