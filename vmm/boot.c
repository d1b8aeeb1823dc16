/* Linux x86 boot protocol. */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include "boot.h"
#include "vm.h"

#define E820_RAM 1
#define E820_RESERVED 2
#define LAYOUT_GDT 0x500ULL
#define BOOT_CS 0x10
#define BOOT_DS 0x18
#define SETUP_HDR_MAGIC 0x53726448	/* "HdrS" */

unsigned boot_build_e820(const struct guest_mem *m, struct boot_e820_entry *e, unsigned max)
{
	unsigned n = 0;

#define ADD(a, s, t) do { if (n < max) e[n++] = (struct boot_e820_entry){ (a), (s), (t) }; } while (0)
	ADD(0, LAYOUT_EBDA, E820_RAM);
	ADD(LAYOUT_EBDA, 0xA0000 - LAYOUT_EBDA, E820_RESERVED);
	ADD(LAYOUT_ACPI, 0x100000 - LAYOUT_ACPI, E820_RESERVED);
	ADD(LAYOUT_KERNEL, m->low_size - LAYOUT_KERNEL, E820_RAM);
	/* ECAM must be reserved or Linux ignores the MCFG. */
	ADD(LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE, E820_RESERVED);
	if (m->high_size)
		ADD(GUEST_HIGH_RAM_BASE, m->high_size, E820_RAM);
#undef ADD
	return n;
}

int boot_load(const struct guest_mem *m, const void *kernel, size_t kernel_size,
	      const void *initrd, size_t initrd_size, const char *cmdline,
	      uint64_t rsdp_addr, struct boot_info *bi, const char **why)
{
	const struct boot_params *img = kernel;
	struct boot_params *zp;
	size_t setup_size, hdr_end, cmdlen = strlen(cmdline) + 1;
	unsigned setup_sects;
	uint64_t initrd_max, initrd_addr;
	void *dst;

	*why = NULL;
	if (m->low_size < 32ULL << 20) {
		*why = "guest memory below 32 MiB is too small to boot Linux";
		return -EINVAL;
	}
	if (kernel_size < 0x1000 || img->hdr.header != SETUP_HDR_MAGIC || img->hdr.boot_flag != 0xAA55) {
		*why = "not a Linux bzImage (no HdrS boot header)";
		return -ENOEXEC;
	}
	if (img->hdr.version < 0x020c || !(img->hdr.xloadflags & XLF_KERNEL_64)) {
		*why = "kernel too old or without a 64-bit entry point (boot protocol 2.12+ needed)";
		return -ENOEXEC;
	}
	setup_sects = img->hdr.setup_sects ? img->hdr.setup_sects : 4;
	setup_size = (setup_sects + 1) * 512;
	if (setup_size >= kernel_size) {
		*why = "truncated bzImage";
		return -ENOEXEC;
	}
	if (cmdlen > img->hdr.cmdline_size || cmdlen > LAYOUT_CMDLINE_MAX) {
		*why = "command line longer than the kernel accepts";
		return -E2BIG;
	}
	/* The protected-mode kernel runs where it is loaded when relocatable;
	 * otherwise it must sit at its preferred address. 1 MiB satisfies
	 * both for the kernels we build (pref_address is used if above). */
	uint64_t load = LAYOUT_KERNEL;

	if (!img->hdr.relocatable_kernel && img->hdr.pref_address > load)
		load = img->hdr.pref_address;
	dst = gpa_to_hva(m, load, kernel_size - setup_size);
	uint64_t need = img->hdr.init_size > kernel_size - setup_size ? img->hdr.init_size
								       : kernel_size - setup_size;
	if (!dst || !gpa_to_hva(m, load, need)) {
		*why = "kernel does not fit in guest memory";
		return -ENOMEM;
	}
	memcpy(dst, (const uint8_t *)kernel + setup_size, kernel_size - setup_size);

	zp = gpa_to_hva(m, LAYOUT_ZERO_PAGE, sizeof(*zp));
	if (!zp) {
		*why = "guest memory too small for the zero page";
		return -ENOMEM;
	}
	memset(zp, 0, sizeof(*zp));
	/* The setup header runs from 0x1f1 to 0x202 + the byte at 0x201. */
	hdr_end = 0x202 + ((const uint8_t *)kernel)[0x201];
	if (hdr_end > sizeof(*zp))
		hdr_end = sizeof(*zp);
	memcpy((uint8_t *)zp + 0x1f1, (const uint8_t *)kernel + 0x1f1, hdr_end - 0x1f1);
	zp->hdr.type_of_loader = 0xff;
	zp->hdr.loadflags |= CAN_USE_HEAP | LOADED_HIGH;
	zp->hdr.heap_end_ptr = 0xfe00;
	zp->hdr.vid_mode = 0xffff;
	zp->hdr.code32_start = load;
	memcpy(gpa_to_hva(m, LAYOUT_CMDLINE, cmdlen), cmdline, cmdlen);
	zp->hdr.cmd_line_ptr = LAYOUT_CMDLINE;
	zp->acpi_rsdp_addr = rsdp_addr;
	zp->e820_entries = boot_build_e820(m, zp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);

	if (initrd && initrd_size) {
		initrd_max = img->hdr.initrd_addr_max ? img->hdr.initrd_addr_max : 0x37ffffff;
		if (initrd_max >= m->low_size)
			initrd_max = m->low_size - 1;
		if (initrd_size > initrd_max + 1) {
			*why = "initramfs does not fit below the kernel's initrd limit";
			return -ENOMEM;
		}
		initrd_addr = (initrd_max + 1 - initrd_size) & ~0xfffULL;
		if (initrd_addr < load + need) {
			*why = "initramfs does not fit in guest memory beside the kernel";
			return -ENOMEM;
		}
		memcpy(gpa_to_hva(m, initrd_addr, initrd_size), initrd, initrd_size);
		zp->hdr.ramdisk_image = (uint32_t)initrd_addr;
		zp->hdr.ramdisk_size = (uint32_t)initrd_size;
		bi->initrd_addr = initrd_addr;
		bi->initrd_size = initrd_size;
	} else {
		bi->initrd_addr = bi->initrd_size = 0;
	}
	/* startup_64 is 512 bytes into the protected-mode kernel. */
	bi->entry = load + 0x200;
	bi->zero_page = LAYOUT_ZERO_PAGE;
	return 0;
}

void boot_build_page_tables(const struct guest_mem *m)
{
	uint64_t *pml4 = gpa_to_hva(m, LAYOUT_PML4, 0x1000);
	uint64_t *pdpt = gpa_to_hva(m, LAYOUT_PML4 + 0x1000, 0x1000);
	uint64_t *pd = gpa_to_hva(m, LAYOUT_PML4 + 0x2000, 0x4000);
	uint64_t *gdt = gpa_to_hva(m, LAYOUT_GDT, 4 * 8);

	memset(pml4, 0, 0x6000);
	pml4[0] = (LAYOUT_PML4 + 0x1000) | 0x3;		/* present, writable */
	for (int i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PML4 + 0x2000 + i * 0x1000) | 0x3;
	for (int i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;	/* present, writable, 2 MiB */

	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = 0x00af9b000000ffffULL;	/* BOOT_CS: 64-bit code */
	gdt[3] = 0x00cf93000000ffffULL;	/* BOOT_DS: flat data */
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = code64 ? 0 : 1, .s = 1, .l = code64, .g = 1,
	};
}

int boot_setup_vcpu(int fd, const struct boot_info *bi)
{
	struct kvm_sregs s;
	struct kvm_regs r = { 0 };

	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	s.gdt.base = LAYOUT_GDT;
	s.gdt.limit = 4 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	set_seg(&s.cs, BOOT_CS, 0xb, true);
	set_seg(&s.ds, BOOT_DS, 0x3, false);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.cr3 = LAYOUT_PML4;
	s.cr4 = 1 << 5;				/* PAE */
	s.cr0 = 0x80000033;			/* PG | NE | ET | MP | PE */
	s.efer = (1 << 8) | (1 << 10);		/* LME | LMA */
	if (ioctl(fd, KVM_SET_SREGS, &s) < 0)
		return -errno;
	r.rip = bi->entry;
	r.rsi = bi->zero_page;
	r.rflags = 0x2;
	if (ioctl(fd, KVM_SET_REGS, &r) < 0)
		return -errno;
	return 0;
}
