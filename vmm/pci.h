/* PCI: one host bridge, bus 0, reached through ECAM (MCFG) and the legacy
 * 0xCF8/0xCFC ports. A device supplies config-space ops and BAR handlers;
 * the bus places BARs in the MMIO windows, keeps the I/O buses in step when
 * the guest moves or disables a BAR, and answers for absent functions. */
#ifndef VMM_PCI_H
#define VMM_PCI_H
#include <stdbool.h>
#include <stdint.h>
#include "iobus.h"

#define PCI_MAX_DEVICES 32	/* one function per slot on bus 0 */
#define PCI_CFG_SIZE 4096

struct pci_dev;

enum pci_bar_kind {
	PCI_BAR_NONE = 0,
	PCI_BAR_MMIO32,
	PCI_BAR_MMIO64,		/* uses two BAR registers */
	PCI_BAR_IO,
	PCI_BAR_ROM,		/* the expansion ROM (bars[PCI_ROM_BAR]) */
};

#define PCI_ROM_BAR 6		/* bars[] index of the expansion ROM */

struct pci_bar {
	enum pci_bar_kind kind;
	uint64_t size;		/* power of two */
	bool prefetch;
	uint64_t addr;		/* current guest address (0 when unassigned) */
	bool mapped;		/* registered on a bus / memslot */
	uint64_t mapped_addr;	/* where it is registered, while mapped */
	bool refused;		/* decodes, but overlapped another range: mapped
				 * when that range goes */
	/* Emulated BAR: accesses are dispatched here. */
	io_handler_fn fn;
	void *opaque;
	/* Or: the BAR is backed by host memory through a KVM memory slot
	 * (passthrough); the device's map_bar op does it. */
};

struct pci_dev_ops {
	/* Config space beyond what the bus emulates: offsets 0x40 and up
	 * (the type 0 header, 0x00-0x3F, is always served from cfg[] by the
	 * bus, BARs and command register included; fill cfg[] at init).
	 * NULL = read/write the cfg[] array with the wmask[] rules. */
	void (*cfg_read)(struct pci_dev *d, uint32_t off, void *data, unsigned len);
	void (*cfg_write)(struct pci_dev *d, uint32_t off, const void *data, unsigned len);
	/* BAR i moved, or was enabled/disabled through the command register.
	 * For emulated BARs the bus handles registration itself (and then
	 * still calls this, e.g. for ioeventfds that follow the BAR); for
	 * passthrough BARs (fn NULL) this does the mapping. old_addr is where
	 * the BAR was mapped (0: it was not), new_addr its address now, enabled
	 * whether it is mapped now. Called with the bus's config lock held. */
	void (*bar_moved)(struct pci_dev *d, int bar, uint64_t old_addr, uint64_t new_addr, bool enabled);
	/* The guest wrote the command register: old_cmd was its value, cmd
	 * is (the bus has already followed memory and I/O decoding). For a
	 * device that passes bits on, e.g. bus mastering. Called with the
	 * bus's config lock held. */
	void (*cmd_written)(struct pci_dev *d, uint16_t old_cmd, uint16_t cmd);
	/* Status bits that follow the device's state rather than cfg[]
	 * (Interrupt Status, 0x0008: an INTx is pending, whether or not the
	 * command register's Interrupt Disable lets it out); ORed into the
	 * status register as the guest reads it. */
	uint16_t (*status_read)(struct pci_dev *d);
};

struct pci_dev {
	const struct pci_dev_ops *ops;
	void *priv;
	uint8_t devfn;			/* slot << 3 */
	uint8_t cfg[PCI_CFG_SIZE];	/* config space image */
	uint8_t wmask[PCI_CFG_SIZE];	/* bits the guest may write */
	struct pci_bar bars[7];		/* BAR0-5, then the expansion ROM */
	uint8_t intx_pin;		/* 1..4, 0 = none */
	unsigned intx_gsi;
	const char *name;
	/* Capability list bookkeeping (pci_dev_add_cap). */
	uint16_t cap_end;		/* next free offset, 0 = 0x40 */
	uint8_t cap_last;		/* offset of the last capability */
};

/* I/O port window for I/O BARs (none of the VMM's own devices has one). */
#define PCI_IO_WINDOW_BASE 0xC000
#define PCI_IO_WINDOW_SIZE 0x4000

/* Fill the standard header: IDs, class, header type 0. */
void pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id);
/* Declare BAR i (emulated: fn/opaque set; passthrough: fn NULL). */
void pci_dev_set_bar(struct pci_dev *d, int i, enum pci_bar_kind kind, uint64_t size,
		     bool prefetch, io_handler_fn fn, void *opaque);
/* Give the device an expansion ROM of size bytes (a power of two, at least
 * 2 KiB): register 0x30 becomes a ROM BAR the guest can size, place and
 * enable; while enabled (and memory decoding on) reads at its address go
 * to fn (writes to it are dropped by the bus). */
void pci_dev_set_rom(struct pci_dev *d, uint64_t size, io_handler_fn fn, void *opaque);
/* Append a capability of len bytes (first two bytes: id, next) and return
 * its offset in config space; the caller fills the body. */
unsigned pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len);

/* The default config-space behaviour for offsets >= 0x40 (what is used
 * when ops->cfg_read/cfg_write are NULL): the cfg[] image, writes filtered
 * through wmask[]. For ops that only want to watch some registers. */
void pci_cfg_default_read(struct pci_dev *d, uint32_t off, void *data, unsigned len);
void pci_cfg_default_write(struct pci_dev *d, uint32_t off, const void *data, unsigned len);

/* Config-space access to a registered device as the guest sees it (bus
 * rules for the header, BAR sizing and remapping). off + len <= 4096,
 * len 1, 2 or 4, naturally aligned. */
void pci_cfg_access(struct pci_dev *d, uint32_t off, void *data, unsigned len, bool is_write);

/* Place the device on bus 0 (next free slot if devfn is 0), assign its BARs
 * addresses in the windows and register them. */
int pci_register(struct pci_dev *d);
/* Create the host bridge: ECAM on the MMIO bus, 0xCF8/0xCFC on the PIO bus. */
int pci_init(void);
/* Devices present, for the ACPI tables (VIOT) and the DSDT. The host
 * bridge (00:00.0) is not counted. */
unsigned pci_count(void);
struct pci_dev *pci_get(unsigned i);

#endif
