/* Unit tests for vmm/pci.c: config space through ECAM and 0xCF8/0xCFC,
 * absent functions, BAR placement, sizing and relocation (checked on the
 * real I/O buses), the expansion ROM BAR, the command register,
 * capabilities, INTx routing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pci.h"
#include "vm.h"

#define MMIO64_BASE 0x200000000ULL

static struct pci_dev dev;
static unsigned hits;
static uint64_t last_off;
static void *last_opaque;
static struct { int bar; uint64_t old_addr, new_addr; bool enabled; unsigned calls; } moved;

static void bar_fn(void *opaque, uint64_t off, void *data, unsigned len, bool is_write)
{
	hits++;
	last_off = off;
	last_opaque = opaque;
	if (!is_write)
		memset(data, 0x5A, len);
}

static void bar_moved(struct pci_dev *d, int bar, uint64_t old_addr, uint64_t new_addr, bool enabled)
{
	moved.bar = bar;
	moved.old_addr = old_addr;
	moved.new_addr = new_addr;
	moved.enabled = enabled;
	moved.calls++;
}

static struct { uint16_t old_cmd, cmd; unsigned calls; } cmdw;

static void cmd_written(struct pci_dev *d, uint16_t old_cmd, uint16_t cmd)
{
	cmdw.old_cmd = old_cmd;
	cmdw.cmd = cmd;
	cmdw.calls++;
}

static const struct pci_dev_ops dev_ops = { .bar_moved = bar_moved, .cmd_written = cmd_written };

static uint32_t ecam_read(unsigned devfn, unsigned reg, unsigned len)
{
	uint32_t v = 0;

	io_bus_access(&the_vm.mmio, LAYOUT_PCI_ECAM + ((uint64_t)devfn << 12) + reg, &v, len, false);
	return v;
}

static void ecam_write(unsigned devfn, unsigned reg, uint32_t v, unsigned len)
{
	io_bus_access(&the_vm.mmio, LAYOUT_PCI_ECAM + ((uint64_t)devfn << 12) + reg, &v, len, true);
}

static void cf8_set(uint32_t v)
{
	io_bus_access(&the_vm.pio, PORT_PCI_CONFIG_ADDR, &v, 4, true);
}

static uint32_t cfc_read(unsigned byte, unsigned len)
{
	uint32_t v = 0;

	io_bus_access(&the_vm.pio, PORT_PCI_CONFIG_DATA + byte, &v, len, false);
	return v;
}

static void cfc_write(unsigned byte, uint32_t v, unsigned len)
{
	io_bus_access(&the_vm.pio, PORT_PCI_CONFIG_DATA + byte, &v, len, true);
}

static bool mmio_claimed(uint64_t addr)
{
	uint32_t v;

	return io_bus_access(&the_vm.mmio, addr, &v, 4, false);
}

static int group_setup(void **state)
{
	io_bus_init(&the_vm.pio);
	io_bus_init(&the_vm.mmio);
	the_vm.mmio64_base = MMIO64_BASE;
	return 0;
}

static int setup(void **state)
{
	assert_int_equal(pci_init(), 0);
	memset(&dev, 0, sizeof(dev));
	memset(&moved, 0, sizeof(moved));
	memset(&cmdw, 0, sizeof(cmdw));
	hits = 0;
	pci_dev_init(&dev, 0x1234, 0x5678, 0x020000, 0x1234, 0x0001);
	dev.ops = &dev_ops;
	dev.name = "test";
	pci_dev_set_bar(&dev, 0, PCI_BAR_MMIO32, 0x1000, false, bar_fn, (void *)1);
	pci_dev_set_bar(&dev, 2, PCI_BAR_MMIO64, 0x4000, true, bar_fn, (void *)2);
	pci_dev_set_bar(&dev, 4, PCI_BAR_IO, 0x20, false, bar_fn, (void *)4);
	dev.intx_pin = 1;
	return 0;
}

static void test_host_bridge(void **state)
{
	assert_int_equal(ecam_read(0, 0, 2), 0x1B36);
	assert_int_equal(ecam_read(0, 0x0A, 2), 0x0600);	/* class: host bridge */
	assert_int_equal(ecam_read(0, 0x0E, 1), 0);	/* header type 0 */
	assert_int_equal(pci_count(), 0);
	assert_null(pci_get(0));
}

static void test_absent(void **state)
{
	/* Empty slots, other functions, other buses: all-ones. */
	assert_int_equal(ecam_read(5 << 3, 0, 4), 0xFFFFFFFF);
	assert_int_equal(ecam_read(5 << 3, 0x10, 2), 0xFFFF);
	assert_int_equal(ecam_read(1, 0, 4), 0xFFFFFFFF);	/* 00:00.1 */
	assert_int_equal(ecam_read(31 << 3 | 7, 0xFFC, 4), 0xFFFFFFFF);
	cf8_set(0x80000000u | 1 << 16);			/* bus 1 */
	assert_int_equal(cfc_read(0, 4), 0xFFFFFFFF);
	cf8_set(0x80000000u | 9 << 11);			/* 00:09.0 */
	assert_int_equal(cfc_read(0, 4), 0xFFFFFFFF);
	/* Writes to absent functions go nowhere (and do not crash). */
	ecam_write(5 << 3, 0x04, 0xFFFF, 2);
	cfc_write(0, 0xFFFFFFFF, 4);
}

static void test_register_and_place(void **state)
{
	assert_int_equal(pci_register(&dev), 0);
	assert_int_equal(dev.devfn, 1 << 3);	/* first free slot */
	assert_int_equal(pci_count(), 1);
	assert_ptr_equal(pci_get(0), &dev);

	unsigned df = dev.devfn;

	assert_int_equal(ecam_read(df, 0, 4), 0x56781234);
	assert_int_equal(ecam_read(df, 0x0B, 1), 0x02);

	/* BAR0: 32-bit in the low window, naturally aligned. */
	uint64_t b0 = ecam_read(df, 0x10, 4);

	assert_int_equal(b0 & 0xF, 0);
	assert_true(b0 >= LAYOUT_PCI_MMIO32 && b0 + 0x1000 <= LAYOUT_PCI_MMIO32 + LAYOUT_PCI_MMIO32_SIZE);
	assert_int_equal(b0 & 0xFFF, 0);
	/* BAR2/3: 64-bit prefetchable above RAM. */
	uint32_t lo = ecam_read(df, 0x18, 4), hi = ecam_read(df, 0x1C, 4);
	uint64_t b2 = ((uint64_t)hi << 32) | (lo & ~0xFu);

	assert_int_equal(lo & 0xF, 0xC);
	assert_true(b2 >= MMIO64_BASE);
	assert_int_equal(b2 & 0x3FFF, 0);
	/* BAR4: I/O. */
	uint32_t b4 = ecam_read(df, 0x20, 4);

	assert_int_equal(b4 & 3, 1);
	assert_true((b4 & ~3u) >= PCI_IO_WINDOW_BASE);
	/* Decoding is on and the BARs answer. */
	assert_int_equal(ecam_read(df, 0x04, 2) & 3, 3);
	assert_true(mmio_claimed(b0 + 0x10));
	assert_int_equal(last_off, 0x10);
	assert_ptr_equal(last_opaque, (void *)1);
	assert_true(mmio_claimed(b2 + 0x3FFC));
	assert_ptr_equal(last_opaque, (void *)2);
	uint8_t v;

	assert_true(io_bus_access(&the_vm.pio, (b4 & ~3u) + 3, &v, 1, false));
	assert_ptr_equal(last_opaque, (void *)4);
	assert_true(dev.bars[0].mapped && dev.bars[2].mapped && dev.bars[4].mapped);

	/* A second device gets the next slot and non-overlapping BARs. */
	static struct pci_dev dev2;

	pci_dev_init(&dev2, 0x1234, 0x9999, 0, 0, 0);
	pci_dev_set_bar(&dev2, 0, PCI_BAR_MMIO32, 0x100, false, bar_fn, NULL);
	assert_int_equal(pci_register(&dev2), 0);
	assert_int_equal(dev2.devfn, 2 << 3);
	assert_true(dev2.bars[0].addr >= b0 + 0x1000 || dev2.bars[0].addr + 0x100 <= b0);
	assert_int_equal(dev2.bars[0].addr % 0x100, 0);
	/* Taking an occupied slot explicitly fails. */
	static struct pci_dev dev3;

	pci_dev_init(&dev3, 1, 1, 0, 0, 0);
	dev3.devfn = 2 << 3;
	assert_int_equal(pci_register(&dev3), -EBUSY);
}

static void test_bar_sizing(void **state)
{
	assert_int_equal(pci_register(&dev), 0);
	unsigned df = dev.devfn;
	uint32_t orig0 = ecam_read(df, 0x10, 4);

	/* Sizing the way Linux does it: decode off, all-ones, read, restore. */
	ecam_write(df, 0x04, 0, 2);
	ecam_write(df, 0x10, 0xFFFFFFFF, 4);
	assert_int_equal(ecam_read(df, 0x10, 4), 0xFFFFF000);
	ecam_write(df, 0x10, orig0, 4);
	assert_int_equal(ecam_read(df, 0x10, 4), orig0);

	ecam_write(df, 0x18, 0xFFFFFFFF, 4);
	ecam_write(df, 0x1C, 0xFFFFFFFF, 4);
	assert_int_equal(ecam_read(df, 0x18, 4), 0xFFFFC00C);
	assert_int_equal(ecam_read(df, 0x1C, 4), 0xFFFFFFFF);

	ecam_write(df, 0x20, 0xFFFFFFFF, 4);
	assert_int_equal(ecam_read(df, 0x20, 4), 0xFFFFFFE1);

	/* Unimplemented BARs and the ROM BAR read 0 whatever is written. */
	ecam_write(df, 0x14, 0xFFFFFFFF, 4);
	assert_int_equal(ecam_read(df, 0x14, 4), 0);
	ecam_write(df, 0x24, 0xFFFFFFFF, 4);
	assert_int_equal(ecam_read(df, 0x24, 4), 0);
	ecam_write(df, 0x30, 0xFFFFF800, 4);
	assert_int_equal(ecam_read(df, 0x30, 4), 0);

	/* Sizing with decode still on must not map the sizing pattern. */
	ecam_write(df, 0x10, orig0, 4);
	ecam_write(df, 0x04, 2, 2);
	ecam_write(df, 0x10, 0xFFFFFFFF, 4);
	assert_false(dev.bars[0].mapped);
	assert_false(mmio_claimed(0xFFFFF000));
	ecam_write(df, 0x10, orig0, 4);
	assert_true(dev.bars[0].mapped);
	assert_true(mmio_claimed(orig0));
}

/* The expansion ROM BAR: placed at registration but disabled; sized like
 * Linux sizes it (enable bit kept apart); decodes only with its enable bit
 * and memory decoding both on; writes through it change nothing. */
static void test_rom_bar(void **state)
{
	pci_dev_set_rom(&dev, 0x400, bar_fn, (void *)6);	/* under 2 KiB: ignored */
	assert_int_equal(dev.bars[PCI_ROM_BAR].kind, PCI_BAR_NONE);
	pci_dev_set_rom(&dev, 0x3000, bar_fn, (void *)6);	/* not a power of two */
	assert_int_equal(dev.bars[PCI_ROM_BAR].kind, PCI_BAR_NONE);
	pci_dev_set_rom(&dev, 0x8000, bar_fn, (void *)6);
	assert_int_equal(pci_register(&dev), 0);
	unsigned df = dev.devfn;
	uint32_t rom = ecam_read(df, 0x30, 4);

	assert_int_not_equal(rom, 0);
	assert_int_equal(rom & 0x7FFF, 0);		/* aligned, disabled */
	assert_true(rom >= LAYOUT_PCI_MMIO32 && rom < LAYOUT_PCI_MMIO32 + LAYOUT_PCI_MMIO32_SIZE);
	assert_true(rom != dev.bars[0].addr);
	assert_false(dev.bars[PCI_ROM_BAR].mapped);
	assert_false(mmio_claimed(rom));
	/* Memory decoding is on (registration); the ROM stays off until its
	 * own enable bit is set. */
	assert_int_equal(ecam_read(df, 0x04, 2) & 2, 2);

	/* Sizing: all-ones in the address bits, enable bit kept clear. */
	ecam_write(df, 0x30, 0xFFFFF800, 4);
	assert_int_equal(ecam_read(df, 0x30, 4), 0xFFFF8000);
	assert_false(dev.bars[PCI_ROM_BAR].mapped);
	ecam_write(df, 0x30, rom, 4);
	assert_int_equal(ecam_read(df, 0x30, 4), rom);

	/* Enabled: reads at its address go to the ROM's handler. */
	moved.calls = 0;
	ecam_write(df, 0x30, rom | 1, 4);
	assert_int_equal(ecam_read(df, 0x30, 4), rom | 1);
	assert_true(dev.bars[PCI_ROM_BAR].mapped);
	hits = 0;
	assert_true(mmio_claimed(rom + 0x1234));
	assert_int_equal(hits, 1);
	assert_int_equal(last_off, 0x1234);
	assert_ptr_equal(last_opaque, (void *)6);
	/* The ROM is no BAR0-5: bar_moved is not told of it. */
	assert_int_equal(moved.calls, 0);

	/* Memory decoding off unmaps it; on again maps it. */
	ecam_write(df, 0x04, 0, 2);
	assert_false(mmio_claimed(rom));
	ecam_write(df, 0x04, 2, 2);
	assert_true(mmio_claimed(rom));

	/* Moved while enabled (byte writes too), then disabled. */
	uint32_t rom2 = rom + 0x10000;
	for (unsigned i = 0; i < 4; i++)
		ecam_write(df, 0x30 + i, ((rom2 | 1) >> (8 * i)) & 0xFF, 1);
	assert_false(mmio_claimed(rom));
	assert_true(mmio_claimed(rom2));
	ecam_write(df, 0x30, rom2, 4);
	assert_false(mmio_claimed(rom2));
	assert_false(dev.bars[PCI_ROM_BAR].mapped);
}

static void test_bar_relocation(void **state)
{
	assert_int_equal(pci_register(&dev), 0);
	unsigned df = dev.devfn;
	uint64_t old0 = dev.bars[0].addr, new0 = LAYOUT_PCI_MMIO32 + 0x100000;

	assert_true(mmio_claimed(old0));
	moved.calls = 0;
	ecam_write(df, 0x10, (uint32_t)new0, 4);
	assert_int_equal(dev.bars[0].addr, new0);
	assert_false(mmio_claimed(old0));
	hits = 0;
	assert_true(mmio_claimed(new0 + 0x800));
	assert_int_equal(hits, 1);
	assert_int_equal(last_off, 0x800);
	/* bar_moved reports the move. */
	assert_int_equal(moved.calls, 1);
	assert_int_equal(moved.bar, 0);
	assert_int_equal(moved.old_addr, old0);
	assert_int_equal(moved.new_addr, new0);
	assert_true(moved.enabled);

	/* 64-bit BAR moved below 4 GiB, one half at a time. */
	uint64_t old2 = dev.bars[2].addr, new2 = 0xD0000000ULL;

	ecam_write(df, 0x1C, 0, 4);
	ecam_write(df, 0x18, (uint32_t)new2, 4);
	assert_int_equal(dev.bars[2].addr, new2);
	assert_false(mmio_claimed(old2));
	assert_true(mmio_claimed(new2));
	assert_ptr_equal(last_opaque, (void *)2);

	/* Byte-wise writes of a BAR take effect too. */
	uint64_t new0b = new0 + 0x10000;

	for (unsigned i = 0; i < 4; i++)
		ecam_write(df, 0x10 + i, (uint32_t)(new0b >> (8 * i)) & 0xFF, 1);
	assert_int_equal(dev.bars[0].addr, new0b);
	assert_true(mmio_claimed(new0b));
	assert_false(mmio_claimed(new0));

	/* Moving onto another range: refused by the bus, left unmapped. */
	ecam_write(df, 0x10, (uint32_t)LAYOUT_PCI_ECAM, 4);
	assert_false(dev.bars[0].mapped);
	ecam_write(df, 0x10, (uint32_t)new0, 4);
	assert_true(dev.bars[0].mapped);
}

static void test_command_register(void **state)
{
	assert_int_equal(pci_register(&dev), 0);
	unsigned df = dev.devfn;
	uint64_t b0 = dev.bars[0].addr, b4 = dev.bars[4].addr;
	uint8_t v;

	/* Memory decode off: the memory BARs go, the I/O BAR stays. */
	ecam_write(df, 0x04, 1, 2);
	assert_false(mmio_claimed(b0));
	assert_false(dev.bars[0].mapped);
	assert_false(dev.bars[2].mapped);
	assert_true(io_bus_access(&the_vm.pio, b4, &v, 1, false));
	assert_false(moved.enabled);
	/* I/O off too, then memory back on. */
	ecam_write(df, 0x04, 0, 2);
	assert_false(io_bus_access(&the_vm.pio, b4, &v, 1, false));
	ecam_write(df, 0x04, 2 | 4 | 0x400, 2);
	assert_true(mmio_claimed(b0));
	assert_false(io_bus_access(&the_vm.pio, b4, &v, 1, false));
	assert_int_equal(ecam_read(df, 0x04, 2), 2 | 4 | 0x400);
	/* The device hears of every write of the command register, with the
	 * value before and after (bus mastering on here), not of others. */
	assert_int_equal(cmdw.calls, 3);
	assert_int_equal(cmdw.old_cmd, 0);
	assert_int_equal(cmdw.cmd, 2 | 4 | 0x400);
	ecam_write(df, 0x05, 0, 1);		/* its high byte alone */
	assert_int_equal(cmdw.calls, 4);
	assert_int_equal(cmdw.cmd, 2 | 4);
	ecam_write(df, 0x06, 0, 2);		/* the status register */
	ecam_write(df, 0x0C, 0x10, 1);
	assert_int_equal(cmdw.calls, 4);
	ecam_write(df, 0x04, 2 | 4 | 0x400, 2);
	/* Read-only bits stay. */
	ecam_write(df, 0x04, 0xF8B0, 2);
	assert_int_equal(ecam_read(df, 0x04, 2), 0);
	ecam_write(df, 0x00, 0xFFFFFFFF, 4);
	assert_int_equal(ecam_read(df, 0x00, 4), 0x56781234);
	ecam_write(df, 0x08, 0xFFFFFFFF, 4);
	assert_int_equal(ecam_read(df, 0x08, 4), 0x02000000);
}

static void test_cf8_cfc(void **state)
{
	assert_int_equal(pci_register(&dev), 0);
	unsigned df = dev.devfn;

	cf8_set(0x80000000u | df << 8);
	/* The address register reads back. */
	uint32_t a = 0;

	io_bus_access(&the_vm.pio, PORT_PCI_CONFIG_ADDR, &a, 4, false);
	assert_int_equal(a, 0x80000000u | df << 8);
	assert_int_equal(cfc_read(0, 4), 0x56781234);
	assert_int_equal(cfc_read(0, 2), 0x1234);
	assert_int_equal(cfc_read(2, 2), 0x5678);
	assert_int_equal(cfc_read(1, 1), 0x12);
	assert_int_equal(cfc_read(3, 1), 0x56);

	/* Interrupt line (byte 0 of dword 0x3C) through a byte write. */
	cf8_set(0x80000000u | df << 8 | 0x3C);
	cfc_write(0, 0xAB, 1);
	assert_int_equal(cfc_read(0, 1), 0xAB);
	assert_int_equal(cfc_read(1, 1), 1);	/* pin INTA */
	assert_int_equal(ecam_read(df, 0x3C, 1), 0xAB);
	/* A word at 0xCFE. */
	cf8_set(0x80000000u | df << 8 | 0x04);
	cfc_write(2, 0xFFFF, 2);		/* status: read-only */
	cfc_write(0, 0x0006, 2);
	assert_int_equal(cfc_read(0, 2), 0x0006);
	assert_int_equal(ecam_read(df, 0x04, 2), 0x0006);

	/* The enable bit off: all-ones. */
	cf8_set(df << 8);
	assert_int_equal(cfc_read(0, 4), 0xFFFFFFFF);
	/* Non-dword accesses to 0xCF8 do not change the address. */
	cf8_set(0x80000000u | df << 8);
	uint8_t b = 0;

	io_bus_access(&the_vm.pio, PORT_PCI_CONFIG_ADDR, &b, 1, true);
	assert_int_equal(cfc_read(0, 2), 0x1234);
	/* Host bridge at 00:00.0 through 0xCF8 too. */
	cf8_set(0x80000000u);
	assert_int_equal(cfc_read(0, 2), 0x1B36);
}

static void test_capabilities(void **state)
{
	unsigned c1 = pci_dev_add_cap(&dev, 0x11, 12);
	unsigned c2 = pci_dev_add_cap(&dev, 0x09, 16);
	unsigned c3 = pci_dev_add_cap(&dev, 0x09, 19);

	assert_int_equal(c1, 0x40);
	assert_int_equal(c2, 0x4C);
	assert_int_equal(c3, 0x5C);
	assert_int_equal(pci_dev_add_cap(&dev, 0x09, 200), 0);	/* does not fit */
	assert_int_equal(pci_register(&dev), 0);
	unsigned df = dev.devfn;

	assert_true(ecam_read(df, 0x06, 2) & 0x10);
	unsigned p = ecam_read(df, 0x34, 1), n = 0;
	unsigned ids[4];

	while (p && n < 4) {
		ids[n++] = ecam_read(df, p, 1);
		p = ecam_read(df, p + 1, 1);
	}
	assert_int_equal(n, 3);
	assert_int_equal(ids[0], 0x11);
	assert_int_equal(ids[1], 0x09);
	/* Capability bodies are read-only without wmask. */
	ecam_write(df, c2 + 4, 0xFFFFFFFF, 4);
	assert_int_equal(ecam_read(df, c2 + 4, 4), 0);
	dev.wmask[c2 + 4] = 0xFF;
	ecam_write(df, c2 + 4, 0xFFFFFFFF, 4);
	assert_int_equal(ecam_read(df, c2 + 4, 4), 0xFF);
}

static void test_intx_routing(void **state)
{
	assert_int_equal(pci_register(&dev), 0);
	unsigned slot = dev.devfn >> 3;

	assert_int_equal(dev.intx_gsi, PCI_INTX_GSI_BASE + (slot % 8));
	assert_int_equal(ecam_read(dev.devfn, 0x3D, 1), 1);

	static struct pci_dev d2;

	pci_dev_init(&d2, 1, 2, 0, 0, 0);
	d2.intx_pin = 2;
	d2.devfn = 12 << 3;
	assert_int_equal(pci_register(&d2), 0);
	assert_int_equal(d2.intx_gsi, PCI_INTX_GSI_BASE + (12 + 1) % 8);
}

/* Functions in slots s and s + 8 share a GSI: the line is the OR of their
 * levels (KVM_IRQ_LINE sets it for any caller), so it goes up with the
 * first device and down with the last. Here KVM is a closed fd: a call
 * that reaches it answers EBADF, one that need not answers 0. */
static void test_intx_shared_line(void **state)
{
	int saved = the_vm.vm_fd;
	const unsigned gsi = PCI_INTX_GSI_BASE + 5;

	the_vm.vm_fd = -1;
	assert_int_equal(vm_irq_line_shared(gsi, true), -EBADF);	/* A: up */
	assert_int_equal(vm_irq_line_shared(gsi, true), 0);		/* B: already up */
	assert_int_equal(vm_irq_line_shared(gsi, false), 0);		/* A done, B holds it */
	assert_int_equal(vm_irq_line_shared(gsi, false), -EBADF);	/* B done: down */
	assert_int_equal(vm_irq_line_shared(gsi, false), 0);		/* nobody: no underflow */
	assert_int_equal(vm_irq_line_shared(gsi, true), -EBADF);
	assert_int_equal(vm_irq_line_shared(gsi, false), -EBADF);
	assert_int_equal(vm_irq_line_shared(24, true), -EINVAL);
	the_vm.vm_fd = saved;
}

static unsigned sized_bytes;

static void sized_access(uint32_t off, unsigned len)
{
	assert_true(len == 1 || len == 2 || len == 4);
	assert_int_equal(off & (len - 1), 0);
	sized_bytes += len;
}

static void sized_read(struct pci_dev *d, uint32_t off, void *data, unsigned len)
{
	sized_access(off, len);
	memset(data, 0x5A, len);
}

static void sized_write(struct pci_dev *d, uint32_t off, const void *data, unsigned len)
{
	sized_access(off, len);
}

static const struct pci_dev_ops sized_ops = { .cfg_read = sized_read, .cfg_write = sized_write };

/* The guest's repeatable messages (overlapping BARs among them) stop
 * after a budget. */
static void test_guest_msg_budget(void **state)
{
	unsigned yes = 0;

	for (unsigned i = 0; i < 2 * VM_GUEST_MSG_BUDGET; i++)
		yes += vm_guest_msg_ok();
	assert_true(yes >= 1 && yes <= VM_GUEST_MSG_BUDGET);	/* (earlier tests spent some) */
	assert_false(vm_guest_msg_ok());
}

static void test_misaligned_and_wide(void **state)
{
	assert_int_equal(pci_register(&dev), 0);
	unsigned df = dev.devfn;

	assert_int_equal(ecam_read(df, 1, 2), 0xFFFF);
	assert_int_equal(ecam_read(df, 2, 4), 0xFFFFFFFF);
	uint64_t q = 0;

	io_bus_access(&the_vm.mmio, LAYOUT_PCI_ECAM + ((uint64_t)df << 12), &q, 8, false);
	assert_int_equal(q, 0x0000000056781234ULL | (uint64_t)ecam_read(df, 4, 4) << 32);
	/* Beyond the header, with no ops: the cfg[] image. */
	assert_int_equal(ecam_read(df, 0xFFC, 4), 0);
	/* What KVM leaves of an access crossing into the next function's
	 * page: 3, 5, 6, 7 bytes at the end of this one, served as bytes
	 * (a device's config ops see only 1, 2 or 4 bytes, aligned). */
	const struct pci_dev_ops *saved = dev.ops;
	dev.ops = &sized_ops;
	for (unsigned n = 3; n <= 7; n++) {
		if (n == 4)
			continue;
		uint8_t b[8];
		memset(b, 0, sizeof(b));
		io_bus_access(&the_vm.mmio, LAYOUT_PCI_ECAM + ((uint64_t)df << 12) + 0x1000 - n, b, n,
			      false);
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(b[i], 0x5A);
		memset(b, 0xA5, sizeof(b));
		io_bus_access(&the_vm.mmio, LAYOUT_PCI_ECAM + ((uint64_t)df << 12) + 0x1000 - n, b, n,
			      true);
	}
	dev.ops = saved;
	assert_int_equal(sized_bytes, 2 * (3 + 5 + 6 + 7));
}

/* A BAR refused for overlapping another range is mapped once that range
 * moves away; an I/O BAR may end at port 0xFFFF. */
static void test_bar_overlap_then_free(void **state)
{
	static struct pci_dev other;

	assert_int_equal(pci_register(&dev), 0);
	pci_dev_init(&other, 0x1234, 0x9999, 0, 0, 0);
	pci_dev_set_bar(&other, 0, PCI_BAR_MMIO32, 0x1000, false, bar_fn, (void *)9);
	assert_int_equal(pci_register(&other), 0);
	unsigned df = dev.devfn, of = other.devfn;
	uint64_t taken = other.bars[0].addr, elsewhere = LAYOUT_PCI_MMIO32 + 0x200000;

	ecam_write(df, 0x10, (uint32_t)taken, 4);
	assert_false(dev.bars[0].mapped);
	assert_true(dev.bars[0].refused);
	assert_true(mmio_claimed(taken));
	assert_ptr_equal(last_opaque, (void *)9);	/* still the other's */
	/* The other BAR moves away (decoding on, as Linux does it): ours
	 * now decodes at its address. */
	ecam_write(of, 0x10, (uint32_t)elsewhere, 4);
	assert_true(dev.bars[0].mapped);
	assert_false(dev.bars[0].refused);
	assert_true(mmio_claimed(taken + 4));
	assert_ptr_equal(last_opaque, (void *)1);
	assert_true(mmio_claimed(elsewhere));
	assert_ptr_equal(last_opaque, (void *)9);
	/* Refused, then decoding turned off: nothing waits any more. */
	ecam_write(df, 0x10, (uint32_t)elsewhere, 4);
	assert_true(dev.bars[0].refused);
	ecam_write(df, 0x04, 1, 2);
	assert_false(dev.bars[0].refused);
	ecam_write(df, 0x04, 3, 2);

	/* I/O BAR at the top of the port space: 0xFFE0-0xFFFF decodes. */
	uint8_t v;

	ecam_write(df, 0x20, 0xFFE0 | 1, 4);
	assert_true(dev.bars[4].mapped);
	assert_true(io_bus_access(&the_vm.pio, 0xFFFF, &v, 1, false));
	assert_ptr_equal(last_opaque, (void *)4);
}

static uint16_t status_bits;

static uint16_t status_read(struct pci_dev *d)
{
	return status_bits;
}

/* Interrupt Status follows the device (status_read), whatever the width
 * of the read that covers it. */
static void test_status_read(void **state)
{
	static const struct pci_dev_ops ops = { .status_read = status_read };

	dev.ops = &ops;
	assert_int_equal(pci_register(&dev), 0);
	unsigned df = dev.devfn;
	uint16_t base = ecam_read(df, 0x06, 2);

	status_bits = 0;
	assert_int_equal(ecam_read(df, 0x06, 2) & 0x08, 0);
	status_bits = 0x08;
	assert_int_equal(ecam_read(df, 0x06, 2), base | 0x08);
	assert_int_equal(ecam_read(df, 0x04, 4) >> 16, base | 0x08);
	assert_int_equal(ecam_read(df, 0x06, 1), (base & 0xFF) | 0x08);
	assert_int_equal(ecam_read(df, 0x07, 1), base >> 8);
	assert_int_equal(ecam_read(df, 0x04, 2), ecam_read(df, 0x04, 4) & 0xFFFF);
	cf8_set(0x80000000u | df << 8 | 0x04);
	assert_int_equal(cfc_read(2, 2), base | 0x08);
	status_bits = 0;
	assert_int_equal(cfc_read(2, 2), base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup(f, setup)
		T(test_host_bridge),
		T(test_absent),
		T(test_register_and_place),
		T(test_bar_sizing),
		T(test_rom_bar),
		T(test_bar_relocation),
		T(test_command_register),
		T(test_cf8_cfc),
		T(test_capabilities),
		T(test_intx_routing),
		T(test_intx_shared_line),
		T(test_misaligned_and_wide),
		T(test_bar_overlap_then_free),
		T(test_status_read),
		T(test_guest_msg_budget),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
