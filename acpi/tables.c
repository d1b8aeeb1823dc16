/* ACPI table builder: see acpi.h. Layouts follow the ACPI 6.5 specification
 * (RSDP 5.2.5, XSDT 5.2.8, FADT 5.2.9, MADT 5.2.12, GAS 5.2.3.2) plus the
 * PCI Firmware spec (MCFG) and the VIOT definition of ACPI 6.4 (5.2.32).
 * All multi-byte fields are little-endian; x86 is too, so the packed structs
 * below are written in place. */
#include <errno.h>
#include <string.h>
#include "acpi.h"
#include "vm.h"

#define ACPI_OEM_ID		"LEANVM"	/* 6 bytes */
#define ACPI_OEM_TABLE_ID	"LEANVM  "	/* 8 bytes */
#define ACPI_OEM_REVISION	1
#define ACPI_CREATOR_ID		"LVMM"
#define ACPI_CREATOR_REVISION	1

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_rsdp {
	char signature[8];		/* "RSD PTR " */
	uint8_t checksum;		/* over the first 20 bytes */
	char oem_id[6];
	uint8_t revision;		/* 2: ACPI 2.0+ layout */
	uint32_t rsdt_address;
	uint32_t length;		/* of this structure: 36 */
	uint64_t xsdt_address;
	uint8_t extended_checksum;	/* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

/* Generic Address Structure. */
struct acpi_gas {
	uint8_t space_id;		/* 0 memory, 1 system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;		/* 1 byte, 2 word, 3 dword, 4 qword */
	uint64_t address;
} __attribute__((packed));

#define GAS_SYSTEM_IO		1
#define GAS_ACCESS_BYTE		1

struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
	uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	char hypervisor_vendor_id[8];
} __attribute__((packed));

#define FADT_REVISION		6
#define FADT_MINOR_VERSION	5	/* ACPI 6.5 */

/* FADT flags. */
#define FADT_F_WBINVD		(1u << 0)
#define FADT_F_PWR_BUTTON	(1u << 4)	/* set: no fixed power button */
#define FADT_F_SLP_BUTTON	(1u << 5)	/* set: no fixed sleep button */
#define FADT_F_RESET_REG_SUP	(1u << 10)
#define FADT_F_HW_REDUCED_ACPI	(1u << 20)

/* IA-PC boot architecture flags. */
#define BOOT_ARCH_LEGACY_DEVICES	(1u << 0)
#define BOOT_ARCH_8042			(1u << 1)
#define BOOT_ARCH_VGA_NOT_PRESENT	(1u << 2)
#define BOOT_ARCH_CMOS_RTC_NOT_PRESENT	(1u << 5)

struct acpi_madt {
	struct acpi_header h;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

#define MADT_REVISION		5
#define MADT_PCAT_COMPAT	(1u << 0)

struct madt_lapic {		/* type 0 */
	uint8_t type, length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;			/* bit 0 enabled */
} __attribute__((packed));

struct madt_ioapic {		/* type 1 */
	uint8_t type, length;
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

struct madt_iso {		/* type 2: interrupt source override */
	uint8_t type, length;
	uint8_t bus;			/* 0: ISA */
	uint8_t source;			/* ISA IRQ */
	uint32_t gsi;
	uint16_t flags;			/* MPS INTI flags */
} __attribute__((packed));

struct madt_lapic_nmi {		/* type 4 */
	uint8_t type, length;
	uint8_t processor_uid;		/* 0xFF: all processors */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

#define MADT_LAPIC		0
#define MADT_IOAPIC		1
#define MADT_ISO		2
#define MADT_LAPIC_NMI		4
#define MADT_LAPIC_ENABLED	1
/* MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2. */
#define MPS_POLARITY_HIGH	0x1
#define MPS_TRIGGER_EDGE	0x4

struct acpi_mcfg {
	struct acpi_header h;
	uint8_t reserved[8];
} __attribute__((packed));

struct mcfg_allocation {
	uint64_t base;
	uint16_t segment;
	uint8_t bus_start, bus_end;
	uint32_t reserved;
} __attribute__((packed));

struct acpi_viot {
	struct acpi_header h;
	uint16_t node_count;
	uint16_t node_offset;		/* of the first node, from table start */
	uint8_t reserved[8];
} __attribute__((packed));

struct viot_virtio_pci {	/* type 3: virtio-pci IOMMU */
	uint8_t type, reserved0;
	uint16_t length;
	uint16_t segment;
	uint16_t bdf;
	uint8_t reserved1[8];
} __attribute__((packed));

struct viot_pci_range {		/* type 1: PCI range of endpoints */
	uint8_t type, reserved0;
	uint16_t length;
	uint32_t endpoint_start;
	uint16_t segment_start, segment_end;
	uint16_t bdf_start, bdf_end;
	uint16_t output_node;		/* offset of the IOMMU node */
	uint8_t reserved1[6];
} __attribute__((packed));

#define VIOT_REVISION		0
#define VIOT_NODE_PCI_RANGE	1
#define VIOT_NODE_VIRTIO_PCI	3

_Static_assert(sizeof(struct acpi_header) == 36, "header");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "rsdp");
_Static_assert(sizeof(struct acpi_gas) == 12, "gas");
_Static_assert(sizeof(struct acpi_fadt) == 276, "fadt");
_Static_assert(__builtin_offsetof(struct acpi_fadt, flags) == 112, "fadt flags");
_Static_assert(__builtin_offsetof(struct acpi_fadt, x_dsdt) == 140, "fadt x_dsdt");
_Static_assert(__builtin_offsetof(struct acpi_fadt, sleep_control_reg) == 244, "fadt sleep");
_Static_assert(sizeof(struct acpi_madt) == 44, "madt");
_Static_assert(sizeof(struct madt_lapic) == 8, "lapic");
_Static_assert(sizeof(struct madt_ioapic) == 12, "ioapic");
_Static_assert(sizeof(struct madt_iso) == 10, "iso");
_Static_assert(sizeof(struct madt_lapic_nmi) == 6, "nmi");
_Static_assert(sizeof(struct acpi_mcfg) == 44, "mcfg");
_Static_assert(sizeof(struct mcfg_allocation) == 16, "mcfg alloc");
_Static_assert(sizeof(struct acpi_viot) == 48, "viot");
_Static_assert(sizeof(struct viot_virtio_pci) == 16, "viot iommu");
_Static_assert(sizeof(struct viot_pci_range) == 24, "viot range");

static uint8_t acpi_sum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (len--)
		s += *b++;
	return s;
}

static void header_init(struct acpi_header *h, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = ACPI_OEM_REVISION;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = ACPI_CREATOR_REVISION;
}

/* Set the checksum byte so that the table's bytes add up to 0. */
static void header_checksum(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = (uint8_t)-acpi_sum(h, h->length);
}

static struct acpi_gas gas_io8(uint16_t port)
{
	return (struct acpi_gas){
		.space_id = GAS_SYSTEM_IO,
		.bit_width = 8,
		.bit_offset = 0,
		.access_size = GAS_ACCESS_BYTE,
		.address = port,
	};
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* ---- DSDT patching ----
 * The placeholders dsdt.asl carries. Each is located by its resource
 * descriptor header plus placeholder values; exactly one match is required. */

/* Find the unique occurrence of pat[0..n) in aml[0..len); -1 if none or
 * more than one. */
static long find_unique(const uint8_t *aml, size_t len, const uint8_t *pat, size_t n)
{
	long found = -1;

	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(aml + i, pat, n) == 0) {
			if (found >= 0)
				return -1;
			found = (long)i;
		}
	}
	return found;
}

/* Name (_BBN, 0xBB): NameOp, "_BBN", BytePrefix, 0xBB. The byte patched is
 * the last. */
static const uint8_t dsdt_ph_bbn[] = { 0x08, '_', 'B', 'B', 'N', 0x0A, 0xBB };

/* WordBusNumber: tag 0x88, length 13, type 2 (bus), general flags
 * (producer, MinFixed, MaxFixed: 0x0C), type flags 0, granularity 0, min 0,
 * max 0, translation 0, length 1. Values start at byte 6. */
static const uint8_t dsdt_ph_bus[] = {
	0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
};

/* DWordMemory: tag 0x87, length 23, type 0 (memory), general flags 0x0C,
 * type flags 0x01 (read-write, non-cacheable), granularity 0,
 * min 0xC0000000, max 0xDFFFFFFF, translation 0, length 0x20000000. */
static const uint8_t dsdt_ph_mmio32[] = {
	0x87, 0x17, 0x00, 0x00, 0x0C, 0x01,
	0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0xC0,
	0xFF, 0xFF, 0xFF, 0xDF,
	0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x20,
};

/* QWordMemory: tag 0x8A, length 43, same flags, granularity 0,
 * min 0x80_0000_0000, max 0xBF_FFFF_FFFF, translation 0,
 * length 0x40_0000_0000. */
static const uint8_t dsdt_ph_mmio64[] = {
	0x8A, 0x2B, 0x00, 0x00, 0x0C, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,
	0xFF, 0xFF, 0xFF, 0xFF, 0xBF, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00,
};

/* Memory32Fixed: tag 0x86, length 9, read-write, base 0xE0000000,
 * length 0x00100000. */
static const uint8_t dsdt_ph_ecam[] = {
	0x86, 0x09, 0x00, 0x01,
	0x00, 0x00, 0x00, 0xE0,
	0x00, 0x00, 0x10, 0x00,
};

#define FIND(aml, len, ph) find_unique(aml, len, ph, sizeof(ph))

/* Copy the DSDT to dst and patch in the configuration. */
static int build_dsdt(uint8_t *dst, const struct acpi_config *cfg)
{
	size_t len = dsdt_aml_len;
	long bbn, bus, m32, m64, ecam;
	uint64_t ecam_start, ecam_size;

	memcpy(dst, dsdt_aml, len);
	bbn = FIND(dst, len, dsdt_ph_bbn);
	bus = FIND(dst, len, dsdt_ph_bus);
	m32 = FIND(dst, len, dsdt_ph_mmio32);
	m64 = FIND(dst, len, dsdt_ph_mmio64);
	ecam = FIND(dst, len, dsdt_ph_ecam);
	if (bbn < 0 || bus < 0 || m32 < 0 || m64 < 0 || ecam < 0)
		return -EINVAL;

	dst[bbn + 6] = cfg->bus_start;

	put16(dst + bus + 8, cfg->bus_start);
	put16(dst + bus + 10, cfg->bus_end);
	put16(dst + bus + 14, (uint16_t)(cfg->bus_end - cfg->bus_start + 1));

	/* Empty windows become zero-length descriptors, which Linux treats
	 * as unassigned and skips. */
	if (cfg->mmio32_size) {
		put32(dst + m32 + 10, (uint32_t)cfg->mmio32_base);
		put32(dst + m32 + 14, (uint32_t)(cfg->mmio32_base + cfg->mmio32_size - 1));
		put32(dst + m32 + 22, (uint32_t)cfg->mmio32_size);
	} else {
		put32(dst + m32 + 10, 0);
		put32(dst + m32 + 14, 0);
		put32(dst + m32 + 22, 0);
	}
	if (cfg->mmio64_size) {
		put64(dst + m64 + 14, cfg->mmio64_base);
		put64(dst + m64 + 22, cfg->mmio64_base + cfg->mmio64_size - 1);
		put64(dst + m64 + 38, cfg->mmio64_size);
	} else {
		put64(dst + m64 + 14, 0);
		put64(dst + m64 + 22, 0);
		put64(dst + m64 + 38, 0);
	}

	ecam_start = cfg->ecam_base + ((uint64_t)cfg->bus_start << 20);
	ecam_size = (uint64_t)(cfg->bus_end - cfg->bus_start + 1) << 20;
	put32(dst + ecam + 4, (uint32_t)ecam_start);
	put32(dst + ecam + 8, (uint32_t)ecam_size);

	header_checksum((struct acpi_header *)dst);
	return 0;
}

/* ---- the other tables ---- */

static void build_rsdp(struct acpi_rsdp *r, uint64_t xsdt_gpa)
{
	memcpy(r->signature, "RSD PTR ", 8);
	memcpy(r->oem_id, ACPI_OEM_ID, 6);
	r->revision = 2;
	r->rsdt_address = 0;	/* XSDT only */
	r->length = sizeof(*r);
	r->xsdt_address = xsdt_gpa;
	r->checksum = 0;
	r->checksum = (uint8_t)-acpi_sum(r, 20);
	r->extended_checksum = 0;
	r->extended_checksum = (uint8_t)-acpi_sum(r, sizeof(*r));
}

static void build_fadt(struct acpi_fadt *f, uint64_t dsdt_gpa)
{
	header_init(&f->h, "FACP", sizeof(*f), FADT_REVISION);
	f->minor_version = FADT_MINOR_VERSION;
	/* No FACS: allowed with HW_REDUCED_ACPI when both pointers are 0. */
	f->firmware_ctrl = 0;
	f->x_firmware_ctrl = 0;
	f->dsdt = 0;		/* X_DSDT only */
	f->x_dsdt = dsdt_gpa;
	f->flags = FADT_F_WBINVD | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON |
		   FADT_F_RESET_REG_SUP | FADT_F_HW_REDUCED_ACPI;
	/* No legacy devices listed, no 8042, no VGA, no CMOS RTC. */
	f->iapc_boot_arch = BOOT_ARCH_VGA_NOT_PRESENT | BOOT_ARCH_CMOS_RTC_NOT_PRESENT;
	f->reset_reg = gas_io8(PORT_ACPI_RESET);
	f->reset_value = ACPI_RESET_VALUE;
	f->sleep_control_reg = gas_io8(PORT_ACPI_SLEEP_CTL);
	f->sleep_status_reg = gas_io8(PORT_ACPI_SLEEP_STS);
	memcpy(f->hypervisor_vendor_id, "LEANVM  ", 8);
	header_checksum(&f->h);
}

static size_t madt_size(const struct acpi_config *cfg)
{
	return sizeof(struct acpi_madt) + cfg->ncpus * sizeof(struct madt_lapic) +
	       sizeof(struct madt_ioapic) + sizeof(struct madt_iso) +
	       sizeof(struct madt_lapic_nmi);
}

static void build_madt(uint8_t *p, const struct acpi_config *cfg)
{
	struct acpi_madt *m = (struct acpi_madt *)p;
	size_t off = sizeof(*m);

	header_init(&m->h, "APIC", (uint32_t)madt_size(cfg), MADT_REVISION);
	m->lapic_address = (uint32_t)LAYOUT_LAPIC;
	m->flags = MADT_PCAT_COMPAT;

	for (unsigned i = 0; i < cfg->ncpus; i++) {
		struct madt_lapic *l = (struct madt_lapic *)(p + off);

		l->type = MADT_LAPIC;
		l->length = sizeof(*l);
		l->processor_uid = (uint8_t)i;
		l->apic_id = (uint8_t)i;
		l->flags = MADT_LAPIC_ENABLED;
		off += sizeof(*l);
	}

	/* KVM's in-kernel IOAPIC: 24 pins from GSI 0. Its ID register
	 * resets to 0, so the MADT says 0 too (on x86-64 Linux takes the
	 * MADT value as is). */
	struct madt_ioapic *io = (struct madt_ioapic *)(p + off);
	io->type = MADT_IOAPIC;
	io->length = sizeof(*io);
	io->ioapic_id = 0;
	io->address = (uint32_t)LAYOUT_IOAPIC;
	io->gsi_base = 0;
	off += sizeof(*io);

	/* ISA IRQ 0 (PIT) is wired to IOAPIC pin 2. */
	struct madt_iso *iso = (struct madt_iso *)(p + off);
	iso->type = MADT_ISO;
	iso->length = sizeof(*iso);
	iso->bus = 0;
	iso->source = 0;
	iso->gsi = 2;
	iso->flags = MPS_POLARITY_HIGH | MPS_TRIGGER_EDGE;
	off += sizeof(*iso);

	/* LINT1 of every processor is NMI (bus-default polarity/trigger). */
	struct madt_lapic_nmi *nmi = (struct madt_lapic_nmi *)(p + off);
	nmi->type = MADT_LAPIC_NMI;
	nmi->length = sizeof(*nmi);
	nmi->processor_uid = 0xFF;
	nmi->flags = 0;
	nmi->lint = 1;
	off += sizeof(*nmi);

	header_checksum(&m->h);
}

static void build_mcfg(uint8_t *p, const struct acpi_config *cfg)
{
	struct acpi_mcfg *m = (struct acpi_mcfg *)p;
	struct mcfg_allocation *a = (struct mcfg_allocation *)(p + sizeof(*m));

	header_init(&m->h, "MCFG", sizeof(*m) + sizeof(*a), 1);
	a->base = cfg->ecam_base;
	a->segment = 0;
	a->bus_start = cfg->bus_start;
	a->bus_end = cfg->bus_end;
	header_checksum(&m->h);
}

static size_t viot_size(const struct acpi_config *cfg)
{
	return sizeof(struct acpi_viot) + sizeof(struct viot_virtio_pci) +
	       cfg->n_viot_ranges * sizeof(struct viot_pci_range);
}

static void build_viot(uint8_t *p, const struct acpi_config *cfg)
{
	struct acpi_viot *v = (struct acpi_viot *)p;
	const uint16_t iommu_off = sizeof(*v);
	size_t off = iommu_off;

	header_init(&v->h, "VIOT", (uint32_t)viot_size(cfg), VIOT_REVISION);
	v->node_count = (uint16_t)(1 + cfg->n_viot_ranges);
	v->node_offset = iommu_off;

	struct viot_virtio_pci *iommu = (struct viot_virtio_pci *)(p + off);
	iommu->type = VIOT_NODE_VIRTIO_PCI;
	iommu->length = sizeof(*iommu);
	iommu->segment = 0;
	iommu->bdf = cfg->viommu_bdf;
	off += sizeof(*iommu);

	for (unsigned i = 0; i < cfg->n_viot_ranges; i++) {
		struct viot_pci_range *r = (struct viot_pci_range *)(p + off);

		r->type = VIOT_NODE_PCI_RANGE;
		r->length = sizeof(*r);
		/* Endpoint ID = BDF: Linux computes
		 * endpoint_start + (bdf - bdf_start). */
		r->endpoint_start = cfg->viot_ranges[i].bdf_start;
		r->segment_start = 0;
		r->segment_end = 0;
		r->bdf_start = cfg->viot_ranges[i].bdf_start;
		r->bdf_end = cfg->viot_ranges[i].bdf_end;
		r->output_node = iommu_off;
		off += sizeof(*r);
	}
	header_checksum(&v->h);
}

static int check_config(const struct acpi_config *cfg)
{
	if (cfg->ncpus < 1 || cfg->ncpus > 255)
		return -EINVAL;
	if (cfg->bus_start > cfg->bus_end)
		return -EINVAL;
	/* The DSDT reserves ECAM with a 32-bit descriptor. */
	if ((cfg->ecam_base & 0xFFFFF) || cfg->ecam_base >= 0x100000000ULL ||
	    cfg->ecam_base + (((uint64_t)cfg->bus_end + 1) << 20) > 0x100000000ULL)
		return -EINVAL;
	if (cfg->mmio32_size &&
	    (cfg->mmio32_base >= 0x100000000ULL ||
	     cfg->mmio32_size > 0x100000000ULL - cfg->mmio32_base))
		return -EINVAL;
	if (cfg->mmio64_size && cfg->mmio64_base + cfg->mmio64_size - 1 < cfg->mmio64_base)
		return -EINVAL;
	if (cfg->has_viommu) {
		if (cfg->n_viot_ranges && !cfg->viot_ranges)
			return -EINVAL;
		if (cfg->n_viot_ranges > 0xFFFE)
			return -EINVAL;
		for (unsigned i = 0; i < cfg->n_viot_ranges; i++)
			if (cfg->viot_ranges[i].bdf_start > cfg->viot_ranges[i].bdf_end)
				return -EINVAL;
	}
	return 0;
}

#define ALIGN16(x) (((x) + 15) & ~(size_t)15)

long acpi_build(void *buf, uint64_t gpa, size_t size, const struct acpi_config *cfg)
{
	uint8_t *p = buf;
	size_t off_xsdt, off_fadt, off_dsdt, off_madt, off_mcfg, off_viot, end;
	unsigned nxsdt = cfg->has_viommu ? 4 : 3;
	int ret;

	if (gpa & 15)
		return -EINVAL;
	ret = check_config(cfg);
	if (ret)
		return ret;

	/* Layout: every table 16-byte aligned, RSDP first. */
	off_xsdt = ALIGN16(sizeof(struct acpi_rsdp));
	off_fadt = ALIGN16(off_xsdt + sizeof(struct acpi_header) + 8 * nxsdt);
	off_dsdt = ALIGN16(off_fadt + sizeof(struct acpi_fadt));
	off_madt = ALIGN16(off_dsdt + dsdt_aml_len);
	off_mcfg = ALIGN16(off_madt + madt_size(cfg));
	end = off_mcfg + sizeof(struct acpi_mcfg) + sizeof(struct mcfg_allocation);
	off_viot = ALIGN16(end);
	if (cfg->has_viommu)
		end = off_viot + viot_size(cfg);
	if (end > size)
		return -ENOSPC;
	memset(p, 0, end);

	ret = build_dsdt(p + off_dsdt, cfg);
	if (ret)
		return ret;
	build_fadt((struct acpi_fadt *)(p + off_fadt), gpa + off_dsdt);
	build_madt(p + off_madt, cfg);
	build_mcfg(p + off_mcfg, cfg);
	if (cfg->has_viommu)
		build_viot(p + off_viot, cfg);

	struct acpi_header *xsdt = (struct acpi_header *)(p + off_xsdt);
	uint8_t *ent = p + off_xsdt + sizeof(*xsdt);
	header_init(xsdt, "XSDT", (uint32_t)(sizeof(*xsdt) + 8 * nxsdt), 1);
	put64(ent + 0, gpa + off_fadt);
	put64(ent + 8, gpa + off_madt);
	put64(ent + 16, gpa + off_mcfg);
	if (cfg->has_viommu)
		put64(ent + 24, gpa + off_viot);
	header_checksum(xsdt);

	build_rsdp((struct acpi_rsdp *)p, gpa + off_xsdt);
	return (long)end;
}

unsigned acpi_pci_intx_gsi(unsigned slot, unsigned pin)
{
	if (slot > 31 || pin < 1 || pin > 4)
		return 0;
	return PCI_INTX_GSI_BASE + (slot + pin - 1) % 8;
}
