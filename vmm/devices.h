/* Constructors of the VMM's devices, called by main() from the parsed
 * command line. Each returns 0 or a negative errno after printing a message
 * that names the device and the reason. */
#ifndef VMM_DEVICES_H
#define VMM_DEVICES_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "dma.h"

struct viommu;

struct disk_opts {
	const char *path;
	bool readonly;
	bool direct;		/* O_DIRECT (default on; off for tmpfs) */
	bool iommu;		/* behind the virtio-iommu */
	/* Offer VIRTIO_RING_F_INDIRECT_DESC. Default: on, off with iommu=on
	 * (behind a strict vIOMMU, an indirect table is one more MAP and
	 * UNMAP request per I/O). */
	bool indirect;
};
struct net_opts {
	const char *tap;	/* tap interface name, created if missing */
	uint8_t mac[6];
	bool mac_set;
	bool iommu;
};
enum console_mode { CONSOLE_OFF, CONSOLE_TTY, CONSOLE_NULL, CONSOLE_FILE };
struct console_opts {
	enum console_mode mode;
	const char *file;
	bool iommu;
};

/* The virtio-iommu, if --iommu was given (NULL otherwise). Created before
 * the devices that sit behind it. */
extern struct viommu *the_viommu;

int serial_init(enum console_mode mode, const char *file);
/* Write out the serial output the UART still buffers (at VM stop). */
void serial_flush(void);
int virtio_blk_create(const struct disk_opts *o);
int virtio_net_create(const struct net_opts *o);
int virtio_console_create(const struct console_opts *o);
int virtio_iommu_create(void);

/* Make `s` translate through the virtio-iommu endpoint `endpoint_id` (the
 * PCI BDF the VIOT names). Implemented by devices/virtio-iommu. */
int viommu_endpoint_dma_init(struct viommu *v, uint32_t endpoint_id, struct dma_space *s);

/* The virtio-iommu's own BDF and the PCI ranges of the endpoints behind it,
 * for the ACPI VIOT table (struct acpi_pci_endpoint_range from acpi.h).
 * Implemented by devices/virtio-iommu. */
struct acpi_pci_endpoint_range;
uint16_t viommu_bdf(struct viommu *v);
unsigned viommu_pci_ranges(struct viommu *v, struct acpi_pci_endpoint_range *r, unsigned max);
void viommu_print_stats(FILE *f);

/* VFIO cdev passthrough (vmm/vfio.c). */
struct passthrough_opts {
	const char *path;	/* /dev/vfio/devices/vfioN */
	bool iommu;
	bool rom_off;		/* rom=off: no expansion ROM for the guest */
	const char *romfile;	/* romfile=FILE: the guest's ROM, not the device's */
	bool mmap_off;		/* mmap=off: every BAR access traps to the VMM */
};
int vfio_device_create(const struct passthrough_opts *o);
/* Counters of the passthrough devices and the iommufd backend. */
void vfio_print_stats(FILE *f);

/* Counters of every device that keeps them (--stats, and at exit). */
void devices_print_stats(FILE *f);

/* Stdin is shared by the serial port and the console: whichever is on tty. */
void console_set_raw(bool on);
/* The terminal on stdin for guest input: non-blocking and raw, both undone
 * by console_set_raw(false) and at exit. */
void console_take_stdin(void);
/* This run of the VMM is the re-execution that follows a guest reboot:
 * output files (--serial/--console file=) are appended to, not truncated. */
extern bool vmm_rebooted;

#endif
