/* Unit tests for acpi/tables.c: walk the tables the way an OS does (RSDP ->
 * XSDT -> tables, FADT -> DSDT) and check layouts, values and checksums. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "acpi.h"
#include "vm.h"

#define BUF_SIZE LAYOUT_ACPI_SIZE
#define GPA LAYOUT_ACPI

static uint8_t *buf;

static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

static struct acpi_config default_cfg(unsigned ncpus)
{
	return (struct acpi_config){
		.ncpus = ncpus,
		.ecam_base = LAYOUT_PCI_ECAM,
		.bus_start = 0,
		.bus_end = 0,
		.mmio32_base = LAYOUT_PCI_MMIO32,
		.mmio32_size = LAYOUT_PCI_MMIO32_SIZE,
		.mmio64_base = 0x140000000ULL,
		.mmio64_size = LAYOUT_PCI_MMIO64_SIZE,
	};
}

static const struct acpi_pci_endpoint_range ranges3[] = {
	{ 0x0008, 0x0008 },	/* 00:01.0 */
	{ 0x0018, 0x0028 },	/* 00:03.0 - 00:05.0 */
	{ 0x0100, 0x01ff },	/* bus 1 */
};

static struct acpi_config viommu_cfg(void)
{
	struct acpi_config c = default_cfg(2);

	c.bus_end = 1;
	c.has_viommu = true;
	c.viommu_bdf = 0x0010;	/* 00:02.0 */
	c.n_viot_ranges = 3;
	c.viot_ranges = ranges3;
	return c;
}

static long build(const struct acpi_config *cfg)
{
	memset(buf, 0xA5, BUF_SIZE);
	return acpi_build(buf, GPA, BUF_SIZE, cfg);
}

/* Pointer into buf for a guest address range, failing the test if any of it
 * lies outside [0, used). */
static uint8_t *at(uint64_t gpa, size_t len, long used)
{
	assert_true(gpa >= GPA);
	assert_true(gpa - GPA + len <= (uint64_t)used);
	return buf + (gpa - GPA);
}

/* Check a table's header (signature, length in bounds, checksum, OEM). */
static void check_header(const uint8_t *t, const char *sig, long used)
{
	uint32_t len = get32(t + 4);

	assert_memory_equal(t, sig, 4);
	assert_true(len >= 36);
	assert_true((size_t)(t - buf) + len <= (size_t)used);
	assert_int_equal(sum(t, len), 0);
	assert_memory_equal(t + 10, "LEANVM", 6);
}

static const uint8_t *xsdt_of(long used)
{
	const uint8_t *rsdp = buf;
	const uint8_t *xsdt = at(get64(rsdp + 24), 36, used);

	check_header(xsdt, "XSDT", used);
	return xsdt;
}

/* Find a table through RSDP -> XSDT; NULL if absent. Checks its header. */
static const uint8_t *find_table(const char *sig, long used)
{
	const uint8_t *xsdt = xsdt_of(used);
	unsigned n = (get32(xsdt + 4) - 36) / 8;
	const uint8_t *found = NULL;

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *t = at(get64(xsdt + 36 + 8 * i), 36, used);

		if (memcmp(t, sig, 4) == 0) {
			assert_null(found);	/* no duplicates */
			found = t;
		}
	}
	if (found)
		check_header(found, sig, used);
	return found;
}

static const uint8_t *find_dsdt(long used)
{
	const uint8_t *fadt = find_table("FACP", used);
	const uint8_t *dsdt;

	assert_non_null(fadt);
	dsdt = at(get64(fadt + 140), 36, used);
	check_header(dsdt, "DSDT", used);
	return dsdt;
}

/* ---- RSDP / XSDT ---- */

static void test_rsdp(void **state)
{
	struct acpi_config c = default_cfg(1);
	long used = build(&c);

	assert_true(used > 0);
	assert_true(used <= (long)BUF_SIZE);
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(buf[15], 2);			/* revision */
	assert_int_equal(get32(buf + 20), 36);		/* length */
	assert_int_equal(sum(buf, 20), 0);		/* ACPI 1.0 checksum */
	assert_int_equal(sum(buf, 36), 0);		/* extended checksum */
	assert_memory_equal(buf + 9, "LEANVM", 6);
	assert_int_equal(get32(buf + 16), 0);		/* no RSDT */
	assert_int_equal(get64(buf + 24) % 8, 0);
	/* Nothing written past the returned size. */
	for (size_t i = (size_t)used; i < BUF_SIZE; i++)
		assert_int_equal(buf[i], 0xA5);
}

static void test_xsdt(void **state)
{
	struct acpi_config c = default_cfg(2);
	long used = build(&c);
	const uint8_t *xsdt;

	assert_true(used > 0);
	xsdt = xsdt_of(used);
	assert_int_equal(get32(xsdt + 4), 36 + 3 * 8);
	assert_non_null(find_table("FACP", used));
	assert_non_null(find_table("APIC", used));
	assert_non_null(find_table("MCFG", used));
	assert_null(find_table("VIOT", used));
	assert_null(find_table("DSDT", used));	/* reached via the FADT only */
	assert_null(find_table("FACS", used));

	c = viommu_cfg();
	used = build(&c);
	assert_true(used > 0);
	xsdt = xsdt_of(used);
	assert_int_equal(get32(xsdt + 4), 36 + 4 * 8);
	assert_non_null(find_table("VIOT", used));
}

/* Every table sums to 0 and is 4-byte aligned or better in the buffer. */
static void test_all_checksums(void **state)
{
	struct acpi_config c = viommu_cfg();
	long used = build(&c);
	const uint8_t *xsdt;

	assert_true(used > 0);
	xsdt = xsdt_of(used);
	for (unsigned i = 0; i < (get32(xsdt + 4) - 36) / 8; i++) {
		uint64_t gpa = get64(xsdt + 36 + 8 * i);
		const uint8_t *t = at(gpa, 36, used);

		assert_int_equal(gpa % 4, 0);
		assert_true((size_t)(t - buf) + get32(t + 4) <= (size_t)used);
		assert_int_equal(sum(t, get32(t + 4)), 0);
		assert_memory_equal(t + 10, "LEANVM", 6);
		assert_memory_equal(t + 28, "LVMM", 4);
	}
	find_dsdt(used);
}

/* ---- FADT ---- */

static void check_gas_io8(const uint8_t *g, uint16_t port)
{
	assert_int_equal(g[0], 1);	/* system I/O */
	assert_int_equal(g[1], 8);	/* bit width */
	assert_int_equal(g[2], 0);	/* bit offset */
	assert_int_equal(g[3], 1);	/* byte access */
	assert_int_equal(get64(g + 4), port);
}

static void test_fadt(void **state)
{
	struct acpi_config c = default_cfg(2);
	long used = build(&c);
	const uint8_t *f, *dsdt;
	uint32_t flags;
	uint16_t boot;

	assert_true(used > 0);
	f = find_table("FACP", used);
	assert_non_null(f);
	assert_int_equal(get32(f + 4), 276);
	assert_int_equal(f[8], 6);			/* revision */
	assert_true(f[131] >= 4);			/* minor: ACPI 6.4+ */
	flags = get32(f + 112);
	assert_true(flags & (1u << 20));		/* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10));		/* RESET_REG_SUP */
	boot = get16(f + 109);
	assert_true(boot & (1u << 2));			/* VGA not present */
	assert_false(boot & (1u << 1));			/* no 8042 */
	assert_int_equal(get32(f + 36), 0);		/* FIRMWARE_CTRL */
	assert_int_equal(get64(f + 132), 0);		/* X_FIRMWARE_CTRL */
	assert_int_equal(get32(f + 76), 0);		/* PM_TMR_BLK */
	assert_int_equal(get16(f + 46), 0);		/* SCI_INT */
	check_gas_io8(f + 116, PORT_ACPI_RESET);
	assert_int_equal(f[128], ACPI_RESET_VALUE);
	check_gas_io8(f + 244, PORT_ACPI_SLEEP_CTL);
	check_gas_io8(f + 256, PORT_ACPI_SLEEP_STS);

	/* X_DSDT -> the compiled DSDT, patched in place. */
	dsdt = find_dsdt(used);
	assert_int_equal(get64(f + 140), GPA + (uint64_t)(dsdt - buf));
	assert_int_equal(get32(dsdt + 4), dsdt_aml_len);
	assert_int_equal(get32(dsdt + 4), get32(dsdt_aml + 4));
	assert_int_equal(dsdt[8], 2);	/* 64-bit integers */
}

/* ---- DSDT ---- */

/* AML integer at p: ZeroOp, OneOp, Byte/Word/DWord/QWord prefix. Returns
 * its size in bytes. */
static size_t aml_int(const uint8_t *p, uint64_t *v)
{
	switch (p[0]) {
	case 0x00: *v = 0; return 1;
	case 0x01: *v = 1; return 1;
	case 0xFF: *v = ~0ULL; return 1;
	case 0x0A: *v = p[1]; return 2;
	case 0x0B: *v = get16(p + 1); return 3;
	case 0x0C: *v = get32(p + 1); return 5;
	case 0x0E: *v = get64(p + 1); return 9;
	}
	fail_msg("not an AML integer: opcode 0x%02x", p[0]);
	return 0;
}

/* AML PkgLength at p: returns the number of bytes of the encoding. */
static size_t aml_pkglen(const uint8_t *p, size_t *len)
{
	unsigned extra = p[0] >> 6;

	if (!extra) {
		*len = p[0] & 0x3F;
		return 1;
	}
	*len = p[0] & 0x0F;
	for (unsigned i = 0; i < extra; i++)
		*len |= (size_t)p[1 + i] << (4 + 8 * i);
	return 1 + extra;
}

/* The unique offset of pattern in the DSDT (failing if absent/duplicated). */
static size_t dsdt_find(const uint8_t *dsdt, const void *pat, size_t n)
{
	size_t len = get32(dsdt + 4), found = 0, count = 0;

	for (size_t i = 36; i + n <= len; i++)
		if (memcmp(dsdt + i, pat, n) == 0) {
			found = i;
			count++;
		}
	assert_int_equal(count, 1);
	return found;
}

static bool dsdt_has(const uint8_t *dsdt, const void *pat, size_t n)
{
	size_t len = get32(dsdt + 4);

	for (size_t i = 36; i + n <= len; i++)
		if (memcmp(dsdt + i, pat, n) == 0)
			return true;
	return false;
}

/* EisaId("ABCnnnn") as the 32-bit value AML stores (DWordPrefix + LE). */
static void eisaid(const char *id, uint8_t out[5])
{
	uint16_t v = (uint16_t)(((id[0] - 0x40) << 10) | ((id[1] - 0x40) << 5) | (id[2] - 0x40));
	uint32_t hex = (uint32_t)strtoul(id + 3, NULL, 16);

	out[0] = 0x0C;
	out[1] = (uint8_t)(v >> 8);
	out[2] = (uint8_t)v;
	out[3] = (uint8_t)(hex >> 8);
	out[4] = (uint8_t)hex;
}

static void test_dsdt_s5(void **state)
{
	struct acpi_config c = default_cfg(1);
	long used = build(&c);
	const uint8_t *d;
	size_t off, plen, n;
	uint64_t typ;

	assert_true(used > 0);
	d = find_dsdt(used);
	/* Name (_S5, Package (...) { SLP_TYPa, ... }) */
	off = dsdt_find(d, "\x08_S5_\x12", 6) + 6;
	off += aml_pkglen(d + off, &plen);
	assert_true(d[off] >= 1);	/* NumElements */
	off++;
	n = aml_int(d + off, &typ);
	assert_true(n > 0);
	assert_int_equal(typ, ACPI_S5_SLP_TYP);
}

static void test_dsdt_devices(void **state)
{
	struct acpi_config c = default_cfg(1);
	long used = build(&c);
	const uint8_t *d;
	uint8_t id[5];
	/* IO (Decode16, 0x3F8, 0x3F8, 1, 8); IRQNoFlags () { 4 } */
	static const uint8_t com1_io[] = { 0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08 };
	static const uint8_t com1_irq[] = { 0x22, 0x10, 0x00 };
	/* WordIO 0x0000-0x0CF7 and 0x0D00-0xFFFF (min, max, transl, len) */
	static const uint8_t io_lo[] = { 0x00, 0x00, 0xF7, 0x0C, 0x00, 0x00, 0xF8, 0x0C };
	static const uint8_t io_hi[] = { 0x00, 0x0D, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xF3 };

	assert_true(used > 0);
	d = find_dsdt(used);
	assert_true(dsdt_has(d, "PCI0", 4));
	eisaid("PNP0A08", id);
	assert_true(dsdt_has(d, id, 5));
	eisaid("PNP0A03", id);
	assert_true(dsdt_has(d, id, 5));
	eisaid("PNP0501", id);
	assert_true(dsdt_has(d, id, 5));
	eisaid("PNP0C02", id);
	assert_true(dsdt_has(d, id, 5));
	dsdt_find(d, com1_io, sizeof(com1_io));
	dsdt_find(d, com1_irq, sizeof(com1_irq));
	dsdt_find(d, io_lo, sizeof(io_lo));
	dsdt_find(d, io_hi, sizeof(io_hi));
	assert_true(dsdt_has(d, "_SEG", 4));
	assert_true(dsdt_has(d, "_UID", 4));
	/* No legacy devices other than COM1. */
	eisaid("PNP0303", id);	/* keyboard */
	assert_false(dsdt_has(d, id, 5));
	eisaid("PNP0B00", id);	/* RTC */
	assert_false(dsdt_has(d, id, 5));
}

/* Check the values acpi_build patches into the DSDT for configuration c. */
static void check_dsdt_patches(const struct acpi_config *c)
{
	long used = build(c);
	const uint8_t *d;
	size_t off;
	uint64_t v;
	unsigned differ = 0;

	assert_true(used > 0);
	d = find_dsdt(used);

	off = dsdt_find(d, "\x08_BBN", 5) + 5;
	aml_int(d + off, &v);
	assert_int_equal(v, c->bus_start);

	/* WordBusNumber (tag 0x88, type 2) */
	off = dsdt_find(d, "\x88\x0D\x00\x02", 4);
	assert_int_equal(get16(d + off + 8), c->bus_start);
	assert_int_equal(get16(d + off + 10), c->bus_end);
	assert_int_equal(get16(d + off + 14), c->bus_end - c->bus_start + 1);

	/* DWordMemory (tag 0x87, type 0) */
	off = dsdt_find(d, "\x87\x17\x00\x00", 4);
	assert_int_equal(d[off + 4] & 1, 0);	/* producer */
	assert_int_equal(get32(d + off + 10), c->mmio32_base);
	assert_int_equal(get32(d + off + 14), c->mmio32_base + c->mmio32_size - 1);
	assert_int_equal(get32(d + off + 22), c->mmio32_size);

	/* QWordMemory (tag 0x8A, type 0) */
	off = dsdt_find(d, "\x8A\x2B\x00\x00", 4);
	assert_int_equal(d[off + 4] & 1, 0);	/* producer */
	assert_int_equal((d[off + 5] >> 1) & 3, 0);	/* non-cacheable, not prefetch */
	assert_int_equal(get64(d + off + 14), c->mmio64_base);
	assert_int_equal(get64(d + off + 22), c->mmio64_base + c->mmio64_size - 1);
	assert_int_equal(get64(d + off + 38), c->mmio64_size);

	/* Memory32Fixed reserving ECAM (PNP0C02) */
	off = dsdt_find(d, "\x86\x09\x00", 3);
	assert_int_equal(get32(d + off + 4), c->ecam_base + ((uint64_t)c->bus_start << 20));
	assert_int_equal(get32(d + off + 8), (uint64_t)(c->bus_end - c->bus_start + 1) << 20);

	/* Same length as the AML, and only patched bytes differ: at most the
	 * checksum, _BBN (1), bus (6), mmio32 (12), mmio64 (24), ECAM (8). */
	assert_int_equal(get32(d + 4), dsdt_aml_len);
	for (size_t i = 0; i < dsdt_aml_len; i++)
		differ += d[i] != dsdt_aml[i];
	assert_true(differ <= 1 + 1 + 6 + 12 + 24 + 8);
}

static void test_dsdt_patch_default(void **state)
{
	struct acpi_config c = default_cfg(2);

	check_dsdt_patches(&c);
}

static void test_dsdt_patch_other(void **state)
{
	struct acpi_config c = default_cfg(4);

	c.ecam_base = 0xB0000000ULL;
	c.bus_start = 0;
	c.bus_end = 15;
	c.mmio32_base = 0x90000000ULL;
	c.mmio32_size = 0x10000000ULL;
	c.mmio64_base = 0x1000000000ULL;
	c.mmio64_size = 0x800000000ULL;
	check_dsdt_patches(&c);
}

static void test_dsdt_patch_empty_mmio64(void **state)
{
	struct acpi_config c = default_cfg(1);
	long used;
	const uint8_t *d;
	size_t off;

	c.mmio64_size = 0;
	used = build(&c);
	assert_true(used > 0);
	d = find_dsdt(used);
	off = dsdt_find(d, "\x8A\x2B\x00\x00", 4);
	assert_int_equal(get64(d + off + 38), 0);	/* length 0: unassigned */
}

/* Parse the _PRT package and check it against acpi_pci_intx_gsi(). */
static void test_dsdt_prt(void **state)
{
	struct acpi_config c = default_cfg(1);
	long used = build(&c);
	const uint8_t *d;
	size_t off, plen, end;
	unsigned n;
	bool seen[32][4] = { { false } };

	assert_true(used > 0);
	d = find_dsdt(used);
	off = dsdt_find(d, "\x08_PRT\x12", 6) + 6;
	end = off;
	off += aml_pkglen(d + off, &plen);
	end += plen;
	n = d[off++];
	assert_int_equal(n, 128);
	for (unsigned i = 0; i < n; i++) {
		uint64_t addr, pin, src, gsi;
		size_t elen, start;

		assert_int_equal(d[off++], 0x12);	/* PackageOp */
		start = off;
		off += aml_pkglen(d + off, &elen);
		assert_int_equal(d[off++], 4);
		off += aml_int(d + off, &addr);
		off += aml_int(d + off, &pin);
		off += aml_int(d + off, &src);
		off += aml_int(d + off, &gsi);
		assert_int_equal(off, start + elen);
		assert_int_equal(addr & 0xFFFF, 0xFFFF);	/* any function */
		assert_true((addr >> 16) < 32);
		assert_true(pin < 4);
		assert_int_equal(src, 0);			/* GSI mode */
		assert_int_equal(gsi, acpi_pci_intx_gsi((unsigned)(addr >> 16), (unsigned)pin + 1));
		assert_false(seen[addr >> 16][pin]);
		seen[addr >> 16][pin] = true;
	}
	assert_int_equal(off, end);
	for (unsigned s = 0; s < 32; s++)
		for (unsigned p = 0; p < 4; p++)
			assert_true(seen[s][p]);
}

static void test_intx_gsi(void **state)
{
	assert_int_equal(acpi_pci_intx_gsi(0, 1), 16);
	assert_int_equal(acpi_pci_intx_gsi(0, 2), 17);
	assert_int_equal(acpi_pci_intx_gsi(1, 1), 17);
	assert_int_equal(acpi_pci_intx_gsi(3, 4), 22);
	assert_int_equal(acpi_pci_intx_gsi(7, 2), 16);
	assert_int_equal(acpi_pci_intx_gsi(8, 1), 16);
	assert_int_equal(acpi_pci_intx_gsi(31, 4), 18);
	assert_int_equal(acpi_pci_intx_gsi(0, 0), 0);
	assert_int_equal(acpi_pci_intx_gsi(0, 5), 0);
	assert_int_equal(acpi_pci_intx_gsi(32, 1), 0);
	for (unsigned s = 0; s < 32; s++)
		for (unsigned p = 1; p <= 4; p++) {
			unsigned g = acpi_pci_intx_gsi(s, p);
			assert_true(g >= PCI_INTX_GSI_BASE && g < PCI_INTX_GSI_BASE + 8);
		}
}

/* ---- MADT ---- */

static void check_madt(unsigned ncpus)
{
	struct acpi_config c = default_cfg(ncpus);
	long used = build(&c);
	const uint8_t *m;
	size_t off, len;
	unsigned nlapic = 0, nioapic = 0, niso = 0;

	assert_true(used > 0);
	m = find_table("APIC", used);
	assert_non_null(m);
	len = get32(m + 4);
	assert_int_equal(get32(m + 36), LAYOUT_LAPIC);
	assert_true(get32(m + 40) & 1);		/* PCAT_COMPAT */
	for (off = 44; off < len; off += m[off + 1]) {
		const uint8_t *e = m + off;

		assert_true(e[1] >= 2);
		assert_true(off + e[1] <= len);
		switch (e[0]) {
		case 0:	/* Processor Local APIC */
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], nlapic);		/* UID */
			assert_int_equal(e[3], nlapic);		/* APIC ID */
			assert_int_equal(get32(e + 4) & 1, 1);	/* enabled */
			nlapic++;
			break;
		case 1:	/* IOAPIC */
			assert_int_equal(e[1], 12);
			assert_int_equal(get32(e + 4), LAYOUT_IOAPIC);
			assert_int_equal(get32(e + 8), 0);	/* GSI base */
			assert_true(e[2] == 0 || e[2] == ncpus);
			nioapic++;
			break;
		case 2:	/* Interrupt Source Override */
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);		/* ISA */
			assert_int_equal(e[3], 0);		/* IRQ0 */
			assert_int_equal(get32(e + 4), 2);	/* -> GSI2 */
			assert_int_not_equal((get16(e + 8) >> 2) & 3, 3); /* not level */
			niso++;
			break;
		case 4:	/* LAPIC NMI */
			assert_int_equal(e[1], 6);
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
	}
	assert_int_equal(off, len);
	assert_int_equal(nlapic, ncpus);
	assert_int_equal(nioapic, 1);
	assert_int_equal(niso, 1);
}

static void test_madt_1(void **state) { check_madt(1); }
static void test_madt_2(void **state) { check_madt(2); }
static void test_madt_8(void **state) { check_madt(8); }
static void test_madt_255(void **state) { check_madt(255); }

/* ---- MCFG ---- */

static void test_mcfg(void **state)
{
	struct acpi_config c = default_cfg(1);
	long used = build(&c);
	const uint8_t *m;

	assert_true(used > 0);
	m = find_table("MCFG", used);
	assert_non_null(m);
	assert_int_equal(get32(m + 4), 44 + 16);
	assert_int_equal(get64(m + 44), LAYOUT_PCI_ECAM);
	assert_int_equal(get16(m + 52), 0);	/* segment */
	assert_int_equal(m[54], 0);
	assert_int_equal(m[55], 0);

	c.bus_start = 0;
	c.bus_end = 7;
	c.ecam_base = 0xD0000000ULL;
	used = build(&c);
	assert_true(used > 0);
	m = find_table("MCFG", used);
	assert_non_null(m);
	assert_int_equal(get64(m + 44), 0xD0000000ULL);
	assert_int_equal(m[54], 0);
	assert_int_equal(m[55], 7);
}

/* ---- VIOT ---- */

static void test_viot_absent(void **state)
{
	struct acpi_config c = default_cfg(2);
	long used;

	c.viommu_bdf = 0x10;	/* ignored without has_viommu */
	c.n_viot_ranges = 3;
	c.viot_ranges = ranges3;
	used = build(&c);
	assert_true(used > 0);
	assert_null(find_table("VIOT", used));
}

static void test_viot_present(void **state)
{
	struct acpi_config c = viommu_cfg();
	long used = build(&c);
	const uint8_t *v;
	uint16_t count, first;
	size_t off, len;
	unsigned nrange = 0, niommu = 0;

	assert_true(used > 0);
	v = find_table("VIOT", used);
	assert_non_null(v);
	len = get32(v + 4);
	assert_int_equal(len, 48 + 16 + 3 * 24);
	count = get16(v + 36);
	first = get16(v + 38);
	assert_int_equal(count, 4);
	assert_true(first >= 48);

	off = first;
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *n = v + off;
		uint16_t nlen = get16(n + 2);

		assert_true(nlen >= 4);
		assert_true(off + nlen <= len);
		if (n[0] == 3) {	/* virtio-pci IOMMU */
			assert_int_equal(nlen, 16);
			assert_int_equal(get16(n + 4), 0);	/* segment */
			assert_int_equal(get16(n + 6), 0x0010);	/* BDF */
			niommu++;
		} else if (n[0] == 1) {	/* PCI range */
			uint16_t out;

			assert_int_equal(nlen, 24);
			assert_int_equal(get32(n + 4), ranges3[nrange].bdf_start);
			assert_int_equal(get16(n + 8), 0);
			assert_int_equal(get16(n + 10), 0);
			assert_int_equal(get16(n + 12), ranges3[nrange].bdf_start);
			assert_int_equal(get16(n + 14), ranges3[nrange].bdf_end);
			out = get16(n + 16);
			assert_true(out >= first && out + 16u <= len);
			assert_int_equal(v[out], 3);		/* points at the IOMMU */
			assert_int_equal(get16(v + out + 6), 0x0010);
			nrange++;
		} else {
			fail_msg("unexpected VIOT node type %u", n[0]);
		}
		off += nlen;
	}
	assert_int_equal(off, len);
	assert_int_equal(niommu, 1);
	assert_int_equal(nrange, 3);
}

static void test_viot_no_ranges(void **state)
{
	struct acpi_config c = viommu_cfg();
	long used;
	const uint8_t *v;

	c.n_viot_ranges = 0;
	c.viot_ranges = NULL;
	used = build(&c);
	assert_true(used > 0);
	v = find_table("VIOT", used);
	assert_non_null(v);
	assert_int_equal(get16(v + 36), 1);
	assert_int_equal(get32(v + 4), 48 + 16);
}

/* ---- errors ---- */

static void test_enospc(void **state)
{
	struct acpi_config cfgs[2] = { default_cfg(8), viommu_cfg() };

	for (unsigned k = 0; k < 2; k++) {
		long need = build(&cfgs[k]);

		assert_true(need > 0);
		assert_int_equal(acpi_build(buf, GPA, (size_t)need - 1, &cfgs[k]), -ENOSPC);
		assert_int_equal(acpi_build(buf, GPA, 36, &cfgs[k]), -ENOSPC);
		assert_int_equal(acpi_build(buf, GPA, 0, &cfgs[k]), -ENOSPC);
		assert_int_equal(acpi_build(buf, GPA, (size_t)need, &cfgs[k]), need);
	}
	/* A buffer sized for the tables without VIOT is too small with it. */
	long small = build(&cfgs[0]);
	assert_true(small < build(&cfgs[1]));
}

static void test_einval(void **state)
{
	struct acpi_config c = default_cfg(0);

	assert_int_equal(acpi_build(buf, GPA, BUF_SIZE, &c), -EINVAL);
	c = default_cfg(256);
	assert_int_equal(acpi_build(buf, GPA, BUF_SIZE, &c), -EINVAL);
	c = default_cfg(1);
	c.bus_start = 2;
	c.bus_end = 1;
	assert_int_equal(acpi_build(buf, GPA, BUF_SIZE, &c), -EINVAL);
	c = default_cfg(1);
	assert_int_equal(acpi_build(buf, GPA + 8, BUF_SIZE, &c), -EINVAL);
	c = default_cfg(1);
	c.ecam_base = 0x100000000ULL;	/* above 4 GiB */
	assert_int_equal(acpi_build(buf, GPA, BUF_SIZE, &c), -EINVAL);
	c = default_cfg(1);
	c.mmio32_base = 0xF0000000ULL;	/* crosses 4 GiB */
	assert_int_equal(acpi_build(buf, GPA, BUF_SIZE, &c), -EINVAL);
	c = viommu_cfg();
	c.viot_ranges = NULL;
	assert_int_equal(acpi_build(buf, GPA, BUF_SIZE, &c), -EINVAL);
}

/* The tables do not depend on where the buffer is, only on gpa. */
static void test_gpa_relative(void **state)
{
	struct acpi_config c = default_cfg(2);
	long used = build(&c);
	const uint8_t *f, *d;

	assert_true(used > 0);
	f = find_table("FACP", used);
	d = find_dsdt(used);
	assert_int_equal(get64(buf + 24) - GPA, (size_t)(xsdt_of(used) - buf));
	assert_int_equal(get64(f + 140) - GPA, (size_t)(d - buf));
}

static int setup(void **state)
{
	buf = malloc(BUF_SIZE);
	return buf ? 0 : -1;
}

static int teardown(void **state)
{
	free(buf);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsdp),
		cmocka_unit_test(test_xsdt),
		cmocka_unit_test(test_all_checksums),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_dsdt_s5),
		cmocka_unit_test(test_dsdt_devices),
		cmocka_unit_test(test_dsdt_patch_default),
		cmocka_unit_test(test_dsdt_patch_other),
		cmocka_unit_test(test_dsdt_patch_empty_mmio64),
		cmocka_unit_test(test_dsdt_prt),
		cmocka_unit_test(test_intx_gsi),
		cmocka_unit_test(test_madt_1),
		cmocka_unit_test(test_madt_2),
		cmocka_unit_test(test_madt_8),
		cmocka_unit_test(test_madt_255),
		cmocka_unit_test(test_mcfg),
		cmocka_unit_test(test_viot_absent),
		cmocka_unit_test(test_viot_present),
		cmocka_unit_test(test_viot_no_ranges),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_einval),
		cmocka_unit_test(test_gpa_relative),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
