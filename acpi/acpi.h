/* ACPI tables for the guest: RSDP, XSDT, FADT (hardware-reduced), DSDT
 * (compiled from acpi/dsdt.asl, a few values patched in at build time),
 * MADT, MCFG and, with a virtio-iommu, VIOT.
 *
 * The VMM builds them into a buffer, copies it to guest-physical LAYOUT_ACPI
 * (reserved in the e820 map) and passes the RSDP address (the start of the
 * buffer) in boot_params.acpi_rsdp_addr. */
#ifndef ACPI_ACPI_H
#define ACPI_ACPI_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PCI endpoints behind the IOMMU: bus/device/function numbers
 * (bus << 8 | dev << 3 | fn), inclusive range, segment 0. */
struct acpi_pci_endpoint_range { uint16_t bdf_start, bdf_end; };

struct acpi_config {
	unsigned ncpus;			/* LAPIC IDs 0..ncpus-1 (1..255) */
	/* ECAM for segment 0, buses bus_start..bus_end. ecam_base is the
	 * address of bus 0 (as in MCFG), so bus b lives at ecam_base + (b << 20).
	 * The window must lie below 4 GiB (the DSDT reserves it with a
	 * Memory32Fixed descriptor). */
	uint64_t ecam_base;
	uint8_t bus_start, bus_end;
	/* Host bridge memory windows (the DSDT's PCI0._CRS). mmio32 must lie
	 * below 4 GiB; a zero-sized mmio64 window is emitted as an empty
	 * (disabled) descriptor. */
	uint64_t mmio32_base, mmio32_size, mmio64_base, mmio64_size;
	/* virtio-iommu (VIOT), present when has_viommu: the virtio-iommu is
	 * the PCI function viommu_bdf on segment 0; the endpoints it manages
	 * are the BDF ranges below, and the endpoint ID the guest uses for
	 * each is its BDF. */
	bool has_viommu;
	uint16_t viommu_bdf;
	unsigned n_viot_ranges;
	const struct acpi_pci_endpoint_range *viot_ranges;
};

/* Build RSDP (first, at buf/gpa), XSDT, FADT, DSDT, MADT, MCFG and (if
 * has_viommu) VIOT into buf, which the guest sees at guest-physical address
 * gpa (16-byte aligned). No FACS: the FADT says hardware-reduced.
 * Returns the number of bytes used, -ENOSPC if size is too small, -EINVAL
 * for a bad configuration (or a DSDT whose placeholders cannot be found). */
long acpi_build(void *buf, uint64_t gpa, size_t size, const struct acpi_config *cfg);

/* Legacy PCI INTx routing, as the DSDT's _PRT describes it.
 *
 * pin is the PCI config-space Interrupt Pin value: 1 = INTA ... 4 = INTD
 * (the _PRT itself uses 0 = INTA ... 3 = INTD). The line of a function in
 * slot s (device number 0..31 on bus 0) with pin p goes to IOAPIC GSI
 *
 *	PCI_INTX_GSI_BASE + ((s + (p - 1)) % 8)		i.e. GSIs 16..23
 *
 * so slot 0 INTA -> 16, slot 0 INTB -> 17, slot 1 INTA -> 17, slot 7 INTB
 * -> 16. The guest programs these GSIs level-triggered, active-low (PCI
 * default for GSI-mode _PRT entries); the VMM asserts the line with level 1
 * through KVM. Returns 0 for a pin outside 1..4 or a slot outside 0..31. */
unsigned acpi_pci_intx_gsi(unsigned slot, unsigned pin);

/* The DSDT as compiled by iasl from acpi/dsdt.asl (Makefile rule), before
 * acpi_build() patches it. Exposed for the tests. */
extern const unsigned char dsdt_aml[];
extern const size_t dsdt_aml_len;

#endif
