/* The virtual machine: KVM file descriptors, guest memory, the I/O buses and
 * interrupt plumbing. One global instance, set up by main(). */
#ifndef VMM_VM_H
#define VMM_VM_H
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include "guest_mem.h"
#include "iobus.h"

/* Guest-physical layout (x86). */
#define LAYOUT_ZERO_PAGE	0x7000ULL
#define LAYOUT_PML4		0x9000ULL	/* boot page tables, 0x9000-0xBFFF */
#define LAYOUT_CMDLINE		0x20000ULL
#define LAYOUT_CMDLINE_MAX	0x10000ULL
#define LAYOUT_EBDA		0x9FC00ULL
#define LAYOUT_ACPI		0xE0000ULL	/* RSDP first, then the tables */
#define LAYOUT_ACPI_SIZE	0x20000ULL
#define LAYOUT_KERNEL		0x100000ULL
#define LAYOUT_PCI_MMIO32	0xC0000000ULL	/* 32-bit BAR window */
#define LAYOUT_PCI_MMIO32_SIZE	0x20000000ULL
#define LAYOUT_PCI_ECAM		0xE0000000ULL	/* bus 0 only: 1 MiB */
#define LAYOUT_PCI_ECAM_SIZE	0x100000ULL
#define LAYOUT_IOAPIC		0xFEC00000ULL
#define LAYOUT_LAPIC		0xFEE00000ULL
#define LAYOUT_PCI_MMIO64_SIZE	0x4000000000ULL	/* 256 GiB above RAM */

/* Port I/O. */
#define PORT_COM1		0x3F8
#define IRQ_COM1		4
#define PORT_ACPI_SLEEP_CTL	0x600	/* FADT sleep control register */
#define PORT_ACPI_SLEEP_STS	0x601	/* FADT sleep status register */
#define PORT_ACPI_RESET		0x602	/* FADT reset register */
#define ACPI_RESET_VALUE	0x1
#define ACPI_S5_SLP_TYP		5	/* \_S5 value in the DSDT */
#define PORT_PCI_CONFIG_ADDR	0xCF8
#define PORT_PCI_CONFIG_DATA	0xCFC

/* Legacy PCI INTx lines: GSIs 16..23 on the IOAPIC (the DSDT's _PRT). */
#define PCI_INTX_GSI_BASE	16

enum vm_exit_reason { VM_RUNNING, VM_POWEROFF, VM_REBOOT, VM_ERROR };

struct vcpu;

struct vm {
	int kvm_fd, vm_fd;
	int vcpu_mmap_size;
	struct guest_mem mem;
	unsigned ncpus;
	struct vcpu **vcpus;
	struct io_bus pio, mmio;
	uint64_t mmio64_base;	/* 64-bit BAR window base (above RAM) */
	volatile int exit_reason;	/* enum vm_exit_reason */
};

extern struct vm the_vm;

/* Messages a guest can cause again and again (a BAR moved onto another
 * range, a device driven into needing a reset) share one budget of
 * VM_GUEST_MSG_BUDGET, so that a guest cannot flood stderr: true while it
 * lasts; the first call past it says that no more are said. */
#define VM_GUEST_MSG_BUDGET 64
bool vm_guest_msg_ok(void);

/* Ask every vCPU and the event loop to stop with this reason. */
void vm_request_exit(enum vm_exit_reason why);

/* Level or edge interrupt on a GSI through the in-kernel irqchip. */
int vm_irq_line(unsigned gsi, int level);
/* One device's level on a line other devices may share (PCI INTx, GSIs
 * 16-23): KVM_IRQ_LINE sets the line for every caller alike, so the line
 * follows the OR of the devices' levels, counted here. A device calls it
 * on its own level's changes only. 1: the line changed, 0: it did not
 * (another device holds it up), <0: the KVM error. */
int vm_irq_line_shared(unsigned gsi, bool level);

/* MSI through KVM GSI routing + irqfd. A route is one GSI with an eventfd
 * bound to it; writing the eventfd (or calling msi_route_fire) raises the
 * MSI programmed into it. Routes are updated as the guest writes MSI-X/MSI
 * entries. */
struct msi_route {
	int gsi;
	int irqfd;	/* eventfd registered with KVM_IRQFD */
	uint64_t addr;
	uint32_t data;
	bool enabled;
	bool held;	/* irqfd detached from KVM: signals wait in it */
};
int msi_route_alloc(struct msi_route *r);
int msi_route_update(struct msi_route *r, uint64_t addr, uint32_t data, bool enabled);
void msi_route_fire(struct msi_route *r);
void msi_route_free(struct msi_route *r);
/* A masked vector whose source signals the irqfd itself (VFIO): hold
 * detaches the irqfd from KVM, so what the source signals stays in the
 * eventfd (the vector's pending bit: msi_route_pending) instead of being
 * dropped; release attaches it again and delivers, once, what was held
 * (returns 1 if something was, 0 if not, -errno if KVM refused the irqfd:
 * it stays held); drop_held forgets what is held. */
int msi_route_hold(struct msi_route *r);
int msi_route_release(struct msi_route *r);
bool msi_route_pending(const struct msi_route *r);
void msi_route_drop_held(struct msi_route *r);

/* ioeventfd: KVM signals fd when the guest writes addr (any value). */
int vm_ioeventfd(uint64_t addr, unsigned len, bool pio, int fd, bool assign);
/* Coalesced port writes: KVM buffers guest writes to [port, port+len) in a
 * ring instead of exiting, and the VMM replays them, in order, at the start
 * of the next exit of any vCPU (vm_coalesced_drain). Only for registers
 * whose writes nobody needs to see at once: a device that owes the guest
 * an interrupt after such a write must turn the zone off first. -ENOTSUP
 * when KVM cannot (the writes then exit as usual). */
int vm_coalesce_pio(uint16_t port, unsigned len, bool on);
void vm_coalesced_drain(void);

/* Tell KVM about a passthrough device's VFIO file (add) or take it back
 * (!add), through the KVM-VFIO device (created with the first add). KVM
 * then knows the VM has assigned devices, whether their DMA snoops the CPU
 * caches (if not, it honours the guest's memory types and WBINVD), and the
 * VFIO driver gets the VM (some drivers need it before the device is
 * bound). 1: done; 0: nothing to tell (no VM, or KVM has no VFIO device:
 * said once on stderr); -EINVAL: KVM does not take the file as VFIO's;
 * other negative errno: refused. */
int vm_vfio_file(int fd, bool add);

/* A KVM memory slot backed by host memory (guest RAM, VFIO BARs). */
int vm_set_memslot(uint32_t slot, uint64_t gpa, uint64_t size, void *host, bool readonly);
int vm_alloc_memslot(void);

#endif
