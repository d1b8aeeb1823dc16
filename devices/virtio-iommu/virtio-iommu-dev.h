/* The virtio-iommu PCI device (virtio-iommu-dev.c). virtio_iommu_create(),
 * the_viommu, viommu_bdf(), viommu_pci_ranges() and viommu_print_stats() are
 * declared in vmm/devices.h. */
#ifndef VIOMMU_VIRTIO_IOMMU_DEV_H
#define VIOMMU_VIRTIO_IOMMU_DEV_H
#include <stdbool.h>

/* Initial value of the config field `bypass` (unattached endpoints bypass
 * the IOMMU); call before virtio_iommu_create(). Default: false (block). */
void virtio_iommu_set_default_bypass(bool bypass);

#include <stdint.h>

/* Poll the request queue after each kick or request, with the driver's
 * kicks turned off meanwhile, for a window of usec microseconds, or with
 * adaptive set for a window that virtio_iommu_poll_window_next sizes, up to
 * usec (usec 0, the default here: every request is a kick). With one CPU
 * online polling is refused (adaptive: silently) unless one_cpu is set; the
 * poller then yields to the vCPUs while it waits. Call before
 * virtio_iommu_create(). */
void virtio_iommu_set_poll(unsigned usec, bool adaptive, bool one_cpu);

/* The adaptive window's smallest size: it grows from here. */
#define VIRTIO_IOMMU_POLL_GROW_START_NS 16000u

/* The adaptive poll window after a kick that came gap_ns after the request
 * before it: a gap longer than the window but not than max_ns doubles it
 * (from the start size, up to max_ns): polling that much longer would have
 * spared the kick; a gap beyond max_ns halves it (to 0 below the start
 * size): the guest went quiet, so polling after its next request is less
 * likely to pay. */
uint64_t virtio_iommu_poll_window_next(uint64_t window_ns, uint64_t gap_ns, uint64_t max_ns);

/* The BDF of the virtio-iommu's PCI function, or -1 before creation. */
int virtio_iommu_bdf(void);

#endif
