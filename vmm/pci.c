/* PCI host bridge: bus 0, one function per slot, config space through ECAM
 * and through configuration mechanism #1 (0xCF8/0xCFC). The bus emulates
 * the type 0 header (IDs, command, BARs, interrupt line/pin, capability
 * pointer); the rest of config space belongs to the device (ops or the
 * cfg[]/wmask[] image). BARs are given addresses at registration and follow
 * the guest when it moves them or turns decoding off. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "acpi.h"
#include "pci.h"
#include "vm.h"

#define PCI_VENDOR_ID		0x00
#define PCI_DEVICE_ID		0x02
#define PCI_COMMAND		0x04
#define PCI_STATUS		0x06
#define PCI_REVISION		0x08
#define PCI_CLASS_PROG		0x09
#define PCI_CACHE_LINE		0x0C
#define PCI_LATENCY		0x0D
#define PCI_HEADER_TYPE		0x0E
#define PCI_BAR0		0x10
#define PCI_BAR_END		0x28
#define PCI_SUBSYS_VENDOR	0x2C
#define PCI_SUBSYS_ID		0x2E
#define PCI_ROM_ADDRESS		0x30
#define PCI_CAP_PTR		0x34
#define PCI_INT_LINE		0x3C
#define PCI_INT_PIN		0x3D
#define PCI_HEADER_END		0x40

#define PCI_CMD_IO		0x0001
#define PCI_CMD_MEM		0x0002
#define PCI_CMD_MASTER		0x0004
#define PCI_CMD_PARITY		0x0040
#define PCI_CMD_SERR		0x0100
#define PCI_CMD_INTX_DISABLE	0x0400
#define PCI_STATUS_CAP_LIST	0x0010

#define BAR_IO			0x1
#define BAR_MEM_64		0x4
#define BAR_MEM_PREFETCH	0x8
#define ROM_ENABLE		0x1
#define ROM_ADDR_MASK		0xFFFFF800u

static pthread_mutex_t pci_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pci_dev *slots[PCI_MAX_DEVICES];
static struct pci_dev host_bridge;
static uint32_t cf8;			/* config address register */
static uint64_t next_mmio32, next_mmio64, next_io;
static bool initialized;

static uint16_t get16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }

void pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(d->cfg, 0, sizeof(d->cfg));
	memset(d->wmask, 0, sizeof(d->wmask));
	memset(d->bars, 0, sizeof(d->bars));
	d->cap_end = 0;
	d->cap_last = 0;
	put16(d->cfg + PCI_VENDOR_ID, vendor);
	put16(d->cfg + PCI_DEVICE_ID, device);
	d->cfg[PCI_CLASS_PROG] = class_code;
	d->cfg[PCI_CLASS_PROG + 1] = class_code >> 8;
	d->cfg[PCI_CLASS_PROG + 2] = class_code >> 16;
	d->cfg[PCI_HEADER_TYPE] = 0;
	put16(d->cfg + PCI_SUBSYS_VENDOR, subsys_vendor);
	put16(d->cfg + PCI_SUBSYS_ID, subsys_id);
	put16(d->wmask + PCI_COMMAND, PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER |
	      PCI_CMD_PARITY | PCI_CMD_SERR | PCI_CMD_INTX_DISABLE);
	d->wmask[PCI_CACHE_LINE] = 0xFF;
	d->wmask[PCI_LATENCY] = 0xFF;
	d->wmask[PCI_INT_LINE] = 0xFF;
}

static uint32_t bar_flags(const struct pci_bar *b)
{
	switch (b->kind) {
	case PCI_BAR_IO:
		return BAR_IO;
	case PCI_BAR_MMIO64:
		return BAR_MEM_64 | (b->prefetch ? BAR_MEM_PREFETCH : 0);
	case PCI_BAR_MMIO32:
		return b->prefetch ? BAR_MEM_PREFETCH : 0;
	default:
		return 0;
	}
}

void pci_dev_set_bar(struct pci_dev *d, int i, enum pci_bar_kind kind, uint64_t size,
		     bool prefetch, io_handler_fn fn, void *opaque)
{
	struct pci_bar *b;
	uint64_t min = kind == PCI_BAR_IO ? 4 : 16;

	if (i < 0 || i > 5 || (kind == PCI_BAR_MMIO64 && i > 4))
		return;
	b = &d->bars[i];
	if (size < min)
		size = min;
	while (size & (size - 1))
		size += size & -size;	/* round up to a power of two */
	*b = (struct pci_bar){ .kind = kind, .size = size, .prefetch = prefetch,
			       .fn = fn, .opaque = opaque };
	put32(d->cfg + PCI_BAR0 + 4 * i, bar_flags(b));
	if (kind == PCI_BAR_MMIO64) {
		d->bars[i + 1] = (struct pci_bar){ 0 };
		put32(d->cfg + PCI_BAR0 + 4 * (i + 1), 0);
	}
}

void pci_dev_set_rom(struct pci_dev *d, uint64_t size, io_handler_fn fn, void *opaque)
{
	if (size < 2048 || size > 0x80000000ull || (size & (size - 1)))
		return;
	d->bars[PCI_ROM_BAR] = (struct pci_bar){ .kind = PCI_BAR_ROM, .size = size, .fn = fn,
						 .opaque = opaque };
	put32(d->cfg + PCI_ROM_ADDRESS, 0);
}

unsigned pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len)
{
	unsigned off = d->cap_end ? d->cap_end : PCI_HEADER_END;

	off = (off + 3) & ~3u;
	if (len < 2 || off + len > 256)
		return 0;
	d->cfg[off] = id;
	d->cfg[off + 1] = 0;
	if (d->cap_last)
		d->cfg[d->cap_last + 1] = off;
	else
		d->cfg[PCI_CAP_PTR] = off;
	d->cap_last = off;
	d->cap_end = off + len;
	put16(d->cfg + PCI_STATUS, get16(d->cfg + PCI_STATUS) | PCI_STATUS_CAP_LIST);
	return off;
}

/* ---- BARs ---- */

/* Current guest address of BAR i from its register(s). */
static uint64_t bar_addr(const struct pci_dev *d, int i)
{
	const struct pci_bar *b = &d->bars[i];

	if (b->kind == PCI_BAR_ROM)
		return get32(d->cfg + PCI_ROM_ADDRESS) & ROM_ADDR_MASK;
	uint32_t lo = get32(d->cfg + PCI_BAR0 + 4 * i);

	switch (b->kind) {
	case PCI_BAR_IO:
		return lo & ~3u;
	case PCI_BAR_MMIO32:
		return lo & ~15u;
	case PCI_BAR_MMIO64:
		return (lo & ~15u) | (uint64_t)get32(d->cfg + PCI_BAR0 + 4 * (i + 1)) << 32;
	default:
		return 0;
	}
}

static bool bar_decodes(const struct pci_dev *d, int i)
{
	const struct pci_bar *b = &d->bars[i];
	uint16_t cmd = get16(d->cfg + PCI_COMMAND);
	uint64_t limit;

	switch (b->kind) {
	case PCI_BAR_IO:
		if (!(cmd & PCI_CMD_IO))
			return false;
		limit = 0x10000;
		break;
	case PCI_BAR_MMIO32:
		if (!(cmd & PCI_CMD_MEM))
			return false;
		limit = 0xFFFFFFFF;
		break;
	case PCI_BAR_ROM:	/* decodes only while its own enable bit is set too */
		if (!(cmd & PCI_CMD_MEM) || !(get32(d->cfg + PCI_ROM_ADDRESS) & ROM_ENABLE))
			return false;
		limit = 0xFFFFFFFF;
		break;
	case PCI_BAR_MMIO64:
		if (!(cmd & PCI_CMD_MEM))
			return false;
		limit = UINT64_MAX;
		break;
	default:
		return false;
	}
	/* Address 0 is "unassigned"; a BAR reaching the top of its address
	 * space holds the sizing pattern, not an address. */
	return b->addr != 0 && b->addr + b->size - 1 < limit && b->addr + b->size > b->addr;
}

/* "BAR2", or "the expansion ROM", for messages. */
static const char *bar_name(int i, char buf[24])
{
	snprintf(buf, 24, i == PCI_ROM_BAR ? "the expansion ROM" : "BAR%d", i);
	return buf;
}

static void bars_retry_refused(void);

/* Bring the registration of BAR i in line with its register and the
 * command register. A BAR that would overlap another range is refused
 * (said once) and mapped when a range goes away and it fits. */
static void bar_update(struct pci_dev *d, int i)
{
	struct pci_bar *b = &d->bars[i];
	struct io_bus *bus = b->kind == PCI_BAR_IO ? &the_vm.pio : &the_vm.mmio;
	uint64_t old = b->mapped ? b->mapped_addr : 0;
	bool en, freed = false, was_refused = b->refused;

	if (b->kind == PCI_BAR_NONE)
		return;
	b->addr = bar_addr(d, i);
	en = bar_decodes(d, i);
	b->refused = false;
	if (b->mapped && (!en || b->mapped_addr != b->addr)) {
		if (b->fn) {
			io_bus_unregister(bus, b->mapped_addr);
			freed = true;
		}
		b->mapped = false;
	} else if (b->mapped || !en) {
		return;		/* nothing changes */
	}
	if (en) {
		int r = b->fn ? io_bus_register(bus, b->addr, b->size, b->fn, b->opaque) : 0;

		if (r < 0) {
			char what[24];

			b->refused = true;
			if ((!was_refused || old) && vm_guest_msg_ok())
				fprintf(stderr, "vmm: pci %s: %s at %#llx+%#llx overlaps another range, "
					"not mapped (until that range goes)\n", d->name ? d->name : "?",
					bar_name(i, what), (unsigned long long)b->addr,
					(unsigned long long)b->size);
		} else {
			b->mapped = true;
			b->mapped_addr = b->addr;
		}
	}
	if (i < PCI_ROM_BAR && d->ops && d->ops->bar_moved && (old || b->mapped))
		d->ops->bar_moved(d, i, old, b->addr, b->mapped);
	if (freed)
		bars_retry_refused();
}

/* A range went away: map the BARs it had kept out, if they fit now. (They
 * only register, so this does not recurse further.) */
static void bars_retry_refused(void)
{
	for (unsigned s = 0; s < PCI_MAX_DEVICES; s++)
		for (int i = 0; slots[s] && i <= PCI_ROM_BAR; i++)
			if (slots[s]->bars[i].refused)
				bar_update(slots[s], i);
}

static void bars_update(struct pci_dev *d)
{
	for (int i = 0; i <= PCI_ROM_BAR; i++)
		bar_update(d, i);
}

/* The guest wrote dword value v to BAR register i. */
static void bar_write(struct pci_dev *d, int i, uint32_t v)
{
	struct pci_bar *b = &d->bars[i];
	uint32_t reg;

	if (b->kind == PCI_BAR_NONE) {
		if (i > 0 && d->bars[i - 1].kind == PCI_BAR_MMIO64) {
			/* Upper half of a 64-bit BAR. */
			reg = v & (uint32_t)(~(d->bars[i - 1].size - 1) >> 32);
			put32(d->cfg + PCI_BAR0 + 4 * i, reg);
			bar_update(d, i - 1);
		}
		return;
	}
	if (b->kind == PCI_BAR_IO)
		reg = (v & ~(uint32_t)(b->size - 1) & ~3u) | bar_flags(b);
	else
		reg = (v & (uint32_t)~(b->size - 1) & ~15u) | bar_flags(b);
	put32(d->cfg + PCI_BAR0 + 4 * i, reg);
	bar_update(d, i);
}

/* ---- config space ---- */

void pci_cfg_default_read(struct pci_dev *d, uint32_t off, void *data, unsigned len)
{
	memcpy(data, d->cfg + off, len);
}

void pci_cfg_default_write(struct pci_dev *d, uint32_t off, const void *data, unsigned len)
{
	const uint8_t *v = data;

	for (unsigned i = 0; i < len; i++)
		d->cfg[off + i] = (d->cfg[off + i] & ~d->wmask[off + i]) | (v[i] & d->wmask[off + i]);
}

static void header_write(struct pci_dev *d, uint32_t off, const uint8_t *v, unsigned len)
{
	uint16_t old_cmd = get16(d->cfg + PCI_COMMAND);

	if (off >= PCI_BAR0 && off < PCI_BAR_END) {
		unsigned i = (off - PCI_BAR0) / 4;
		uint8_t reg[4];

		memcpy(reg, d->cfg + PCI_BAR0 + 4 * i, 4);
		memcpy(reg + (off & 3), v, len);
		bar_write(d, i, get32(reg));
		return;
	}
	if (off >= PCI_ROM_ADDRESS && off < PCI_ROM_ADDRESS + 4) {
		struct pci_bar *b = &d->bars[PCI_ROM_BAR];
		uint8_t reg[4];

		if (b->kind != PCI_BAR_ROM)
			return;		/* no ROM: the register reads 0 */
		memcpy(reg, d->cfg + PCI_ROM_ADDRESS, 4);
		memcpy(reg + (off & 3), v, len);
		put32(d->cfg + PCI_ROM_ADDRESS,
		      (get32(reg) & ROM_ADDR_MASK & ~(uint32_t)(b->size - 1)) | (get32(reg) & ROM_ENABLE));
		bar_update(d, PCI_ROM_BAR);
		return;
	}
	pci_cfg_default_write(d, off, v, len);
	if ((get16(d->cfg + PCI_COMMAND) ^ old_cmd) & (PCI_CMD_IO | PCI_CMD_MEM))
		bars_update(d);
	if (off < PCI_COMMAND + 2 && off + len > PCI_COMMAND && d->ops && d->ops->cmd_written)
		d->ops->cmd_written(d, old_cmd, get16(d->cfg + PCI_COMMAND));
}

void pci_cfg_access(struct pci_dev *d, uint32_t off, void *data, unsigned len, bool is_write)
{
	if (off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off) {
		if (!is_write)
			memset(data, 0xFF, len);
		return;
	}
	if (off < PCI_HEADER_END) {
		if (is_write) {
			header_write(d, off, data, len);
		} else {
			pci_cfg_default_read(d, off, data, len);
			if (d->ops && d->ops->status_read && off < PCI_STATUS + 2 &&
			    off + len > PCI_STATUS) {
				uint16_t st = d->ops->status_read(d);
				for (unsigned k = 0; k < 2; k++)
					if (off <= PCI_STATUS + k && PCI_STATUS + k < off + len)
						((uint8_t *)data)[PCI_STATUS + k - off] |= st >> (8 * k);
			}
		}
	} else if (is_write) {
		if (d->ops && d->ops->cfg_write)
			d->ops->cfg_write(d, off, data, len);
		else
			pci_cfg_default_write(d, off, data, len);
	} else {
		if (d->ops && d->ops->cfg_read)
			d->ops->cfg_read(d, off, data, len);
		else
			pci_cfg_default_read(d, off, data, len);
	}
}

/* An access to bus 0, devfn, register reg; absent functions read as
 * all-ones and ignore writes. */
static void cfg_dispatch(unsigned bus, unsigned devfn, uint32_t reg, void *data,
			 unsigned len, bool is_write)
{
	struct pci_dev *d = NULL;

	pthread_mutex_lock(&pci_lock);
	if (bus == 0 && (devfn & 7) == 0)
		d = slots[devfn >> 3];
	if (d && (len == 1 || len == 2 || len == 4) && (reg & (len - 1)) == 0)
		pci_cfg_access(d, reg, data, len, is_write);
	else if (!is_write)
		memset(data, 0xFF, len);
	pthread_mutex_unlock(&pci_lock);
}

static void ecam_io(void *opaque, uint64_t off, void *data, unsigned len, bool is_write)
{
	if (len == 8) {
		ecam_io(opaque, off, data, 4, is_write);
		ecam_io(opaque, off + 4, (uint8_t *)data + 4, 4, is_write);
		return;
	}
	if (len != 1 && len != 2 && len != 4) {
		/* KVM splits an access that crosses a page (a function's 4 KiB)
		 * at the boundary: 3, 5, 6 or 7 bytes of it arrive. Byte by
		 * byte, as the function sees an access split into bytes. */
		for (unsigned i = 0; i < len; i++)
			ecam_io(opaque, off + i, (uint8_t *)data + i, 1, is_write);
		return;
	}
	cfg_dispatch(off >> 20, (off >> 12) & 0xFF, off & 0xFFF, data, len, is_write);
}

static void cf8_io(void *opaque, uint64_t off, void *data, unsigned len, bool is_write)
{
	if (off < 4) {
		/* Only a dword access at 0xCF8 reaches the address register. */
		if (off == 0 && len == 4) {
			if (is_write)
				memcpy(&cf8, data, 4);
			else
				memcpy(data, &cf8, 4);
		} else if (!is_write) {
			memset(data, 0xFF, len);
		}
		return;
	}
	uint32_t a = __atomic_load_n(&cf8, __ATOMIC_RELAXED);
	unsigned byte = off - 4;

	if (!(a & 0x80000000u) || byte + len > 4) {
		if (!is_write)
			memset(data, 0xFF, len);
		return;
	}
	/* Bits 27:24 extend the register number (as AMD does). */
	uint32_t reg = (a & 0xFC) | ((a >> 16) & 0xF00) | byte;

	cfg_dispatch((a >> 16) & 0xFF, (a >> 8) & 0xFF, reg, data, len, is_write);
}

/* ---- bus ---- */

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int bar_alloc(struct pci_bar *b, uint64_t *addr)
{
	uint64_t *next, end;

	switch (b->kind) {
	case PCI_BAR_IO:
		next = &next_io;
		end = PCI_IO_WINDOW_BASE + PCI_IO_WINDOW_SIZE;
		break;
	case PCI_BAR_MMIO64:
		if (the_vm.mmio64_base) {
			next = &next_mmio64;
			end = the_vm.mmio64_base + LAYOUT_PCI_MMIO64_SIZE;
			break;
		}
		/* No 64-bit window: place it below 4 GiB. */
		__attribute__((fallthrough));
	case PCI_BAR_MMIO32:
	case PCI_BAR_ROM:
		next = &next_mmio32;
		end = LAYOUT_PCI_MMIO32 + LAYOUT_PCI_MMIO32_SIZE;
		break;
	default:
		return -EINVAL;
	}
	if (next == &next_mmio64 && *next < the_vm.mmio64_base)
		*next = the_vm.mmio64_base;
	uint64_t a = align_up(*next, b->size);

	if (a < *next || a + b->size > end || a + b->size < a)
		return -ENOSPC;
	*addr = a;
	*next = a + b->size;
	return 0;
}

int pci_register(struct pci_dev *d)
{
	unsigned slot;
	int ret = 0;

	pthread_mutex_lock(&pci_lock);
	if (d->devfn) {
		slot = d->devfn >> 3;
		if ((d->devfn & 7) || slots[slot]) {
			ret = -EBUSY;
			goto out;
		}
	} else {
		for (slot = 1; slot < PCI_MAX_DEVICES && slots[slot]; slot++)
			;
		if (slot == PCI_MAX_DEVICES) {
			ret = -ENOSPC;
			goto out;
		}
	}

	uint64_t addr[7] = { 0 };
	uint16_t cmd = 0;

	for (int i = 0; i <= PCI_ROM_BAR; i++) {
		struct pci_bar *b = &d->bars[i];

		if (b->kind == PCI_BAR_NONE)
			continue;
		ret = bar_alloc(b, &addr[i]);
		if (ret < 0) {
			char what[24];

			fprintf(stderr, "vmm: pci %s: no room for %s (%#llx bytes)\n",
				d->name ? d->name : "?", bar_name(i, what), (unsigned long long)b->size);
			goto out;
		}
		if (i < PCI_ROM_BAR)
			cmd |= b->kind == PCI_BAR_IO ? PCI_CMD_IO : PCI_CMD_MEM;
	}
	d->devfn = slot << 3;
	slots[slot] = d;
	if (d->intx_pin >= 1 && d->intx_pin <= 4) {
		d->intx_gsi = acpi_pci_intx_gsi(slot, d->intx_pin);
		d->cfg[PCI_INT_PIN] = d->intx_pin;
		d->cfg[PCI_INT_LINE] = d->intx_gsi;
	} else {
		d->intx_pin = 0;
		d->cfg[PCI_INT_PIN] = 0;
	}
	for (int i = 0; i < 6; i++) {
		struct pci_bar *b = &d->bars[i];

		if (b->kind == PCI_BAR_NONE)
			continue;
		put32(d->cfg + PCI_BAR0 + 4 * i, (uint32_t)addr[i] | bar_flags(b));
		if (b->kind == PCI_BAR_MMIO64)
			put32(d->cfg + PCI_BAR0 + 4 * (i + 1), addr[i] >> 32);
	}
	/* The ROM gets an address but stays disabled, as firmware leaves it. */
	if (d->bars[PCI_ROM_BAR].kind == PCI_BAR_ROM)
		put32(d->cfg + PCI_ROM_ADDRESS, (uint32_t)addr[PCI_ROM_BAR]);
	/* Decoding on, as firmware would leave it. */
	put16(d->cfg + PCI_COMMAND, get16(d->cfg + PCI_COMMAND) | cmd);
	bars_update(d);
out:
	pthread_mutex_unlock(&pci_lock);
	return ret;
}

int pci_init(void)
{
	int r;

	pthread_mutex_lock(&pci_lock);
	if (initialized) {
		/* Start over (tests): drop the old bus and its devices' BARs. */
		io_bus_unregister(&the_vm.mmio, LAYOUT_PCI_ECAM);
		io_bus_unregister(&the_vm.pio, PORT_PCI_CONFIG_ADDR);
		for (unsigned s = 0; s < PCI_MAX_DEVICES; s++) {
			struct pci_dev *d = slots[s];

			for (int i = 0; d && i <= PCI_ROM_BAR; i++) {
				struct pci_bar *b = &d->bars[i];

				if (b->mapped && b->fn)
					io_bus_unregister(b->kind == PCI_BAR_IO ? &the_vm.pio : &the_vm.mmio,
							  b->mapped_addr);
				b->mapped = false;
			}
			slots[s] = NULL;
		}
		initialized = false;
	}
	cf8 = 0;
	next_mmio32 = LAYOUT_PCI_MMIO32;
	next_mmio64 = the_vm.mmio64_base;
	next_io = PCI_IO_WINDOW_BASE;

	/* 00:00.0: the host bridge. */
	pci_dev_init(&host_bridge, 0x1B36, 0x0008, 0x060000, 0x1B36, 0x0008);
	host_bridge.name = "host-bridge";
	host_bridge.devfn = 0;
	/* A host bridge has no decoders the guest can turn off. */
	put16(host_bridge.wmask + PCI_COMMAND, 0);
	put16(host_bridge.cfg + PCI_COMMAND, PCI_CMD_MEM | PCI_CMD_IO);
	slots[0] = &host_bridge;

	r = io_bus_register(&the_vm.mmio, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE, ecam_io, NULL);
	if (r == 0) {
		r = io_bus_register(&the_vm.pio, PORT_PCI_CONFIG_ADDR, 8, cf8_io, NULL);
		if (r < 0)
			io_bus_unregister(&the_vm.mmio, LAYOUT_PCI_ECAM);
	}
	if (r < 0)
		fprintf(stderr, "vmm: pci: cannot claim the config-space ranges: %s\n", strerror(-r));
	else
		initialized = true;
	pthread_mutex_unlock(&pci_lock);
	return r;
}

unsigned pci_count(void)
{
	unsigned n = 0;

	pthread_mutex_lock(&pci_lock);
	for (unsigned s = 1; s < PCI_MAX_DEVICES; s++)
		n += slots[s] != NULL;
	pthread_mutex_unlock(&pci_lock);
	return n;
}

struct pci_dev *pci_get(unsigned i)
{
	struct pci_dev *d = NULL;

	pthread_mutex_lock(&pci_lock);
	for (unsigned s = 1; s < PCI_MAX_DEVICES; s++) {
		if (slots[s] && i-- == 0) {
			d = slots[s];
			break;
		}
	}
	pthread_mutex_unlock(&pci_lock);
	return d;
}
