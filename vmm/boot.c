/* Linux x86 boot protocol: a bzImage, or an ELF vmlinux entered at
 * startup_64 with the same zero page. */
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
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
#define ELF_CMDLINE_MAX 2048		/* x86's COMMAND_LINE_SIZE */

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

/* An x86-64 ELF vmlinux: its PT_LOAD segments go to their physical
 * addresses and the entry is startup_64, which takes the same zero page as
 * the bzImage's 64-bit entry (the decompressor is what is skipped). */
static int load_elf(const struct guest_mem *m, const uint8_t *k, size_t size, uint64_t *entry,
		    uint64_t *end, const char **why)
{
	const Elf64_Ehdr *eh = (const void *)k;
	bool entry_ok = false;

	if (size < sizeof(*eh) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64 ||
	    (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)) {
		*why = "an ELF file, but not a 64-bit x86 executable";
		return -ENOEXEC;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phoff > size || (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum) {
		*why = "ELF program headers missing or outside the file";
		return -ENOEXEC;
	}
	*end = 0;
	for (unsigned pass = 0; pass < 2; pass++) {
		/* Pass 0 checks every segment, pass 1 copies: a bad file
		 * leaves guest memory as it was. */
		for (unsigned i = 0; i < eh->e_phnum; i++) {
			Elf64_Phdr ph;

			memcpy(&ph, k + eh->e_phoff + i * sizeof(ph), sizeof(ph));
			if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
				continue;
			if (pass == 1) {
				uint8_t *dst = gpa_to_hva(m, ph.p_paddr, ph.p_memsz);

				memcpy(dst, k + ph.p_offset, ph.p_filesz);
				memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
				continue;
			}
			if (ph.p_filesz > ph.p_memsz || ph.p_offset > size ||
			    ph.p_filesz > size - ph.p_offset) {
				*why = "an ELF segment is larger than the file";
				return -ENOEXEC;
			}
			if (ph.p_paddr < LAYOUT_KERNEL || ph.p_memsz > m->low_size ||
			    ph.p_paddr > m->low_size - ph.p_memsz) {
				*why = ph.p_paddr < LAYOUT_KERNEL
					       ? "an ELF segment loads below 1 MiB"
					       : "kernel does not fit in guest memory";
				return ph.p_paddr < LAYOUT_KERNEL ? -ENOEXEC : -ENOMEM;
			}
			if (eh->e_entry >= ph.p_paddr && eh->e_entry - ph.p_paddr < ph.p_filesz)
				entry_ok = true;
			if (ph.p_paddr + ph.p_memsz > *end)
				*end = ph.p_paddr + ph.p_memsz;
		}
		if (pass == 0 && !entry_ok) {
			*why = "the ELF entry point is not inside a loaded segment";
			return -ENOEXEC;
		}
	}
	*entry = eh->e_entry;
	return 0;
}

/* A bzImage: the protected-mode kernel after the setup sectors goes to
 * 1 MiB (or its preferred address); entry is its startup_64. The setup
 * header is copied into the zero page. */
static int load_bzimage(const struct guest_mem *m, const uint8_t *k, size_t size,
			struct boot_params *zp, uint64_t *entry, uint64_t *end, const char **why)
{
	const struct boot_params *img = (const void *)k;
	size_t setup_size, hdr_end;
	unsigned setup_sects;
	void *dst;

	if (size < 0x1000 || img->hdr.header != SETUP_HDR_MAGIC || img->hdr.boot_flag != 0xAA55) {
		*why = "not a Linux bzImage (no HdrS boot header) nor an ELF vmlinux";
		return -ENOEXEC;
	}
	if (img->hdr.version < 0x020c || !(img->hdr.xloadflags & XLF_KERNEL_64)) {
		*why = "kernel too old or without a 64-bit entry point (boot protocol 2.12+ needed)";
		return -ENOEXEC;
	}
	setup_sects = img->hdr.setup_sects ? img->hdr.setup_sects : 4;
	setup_size = (setup_sects + 1) * 512;
	if (setup_size >= size) {
		*why = "truncated bzImage";
		return -ENOEXEC;
	}
	/* The protected-mode kernel runs where it is loaded when relocatable;
	 * otherwise it must sit at its preferred address. 1 MiB satisfies
	 * both for the kernels we build (pref_address is used if above). */
	uint64_t load = LAYOUT_KERNEL;

	if (!img->hdr.relocatable_kernel && img->hdr.pref_address > load)
		load = img->hdr.pref_address;
	dst = gpa_to_hva(m, load, size - setup_size);
	uint64_t need = img->hdr.init_size > size - setup_size ? img->hdr.init_size : size - setup_size;
	if (!dst || !gpa_to_hva(m, load, need)) {
		*why = "kernel does not fit in guest memory";
		return -ENOMEM;
	}
	memcpy(dst, k + setup_size, size - setup_size);

	/* The setup header runs from 0x1f1 to 0x202 + the byte at 0x201. */
	hdr_end = 0x202 + k[0x201];
	if (hdr_end > sizeof(*zp))
		hdr_end = sizeof(*zp);
	memcpy((uint8_t *)zp + 0x1f1, k + 0x1f1, hdr_end - 0x1f1);
	zp->hdr.code32_start = load;
	/* startup_64 is 512 bytes into the protected-mode kernel. */
	*entry = load + 0x200;
	*end = load + need;
	return 0;
}

int boot_load(const struct guest_mem *m, const void *kernel, size_t kernel_size,
	      const void *initrd, size_t initrd_size, const char *cmdline,
	      uint64_t rsdp_addr, struct boot_info *bi, const char **why)
{
	struct boot_params zp_new, *zp = &zp_new, *gzp;
	size_t cmdlen = strlen(cmdline) + 1;
	uint64_t initrd_max, initrd_addr, kend;
	bool elf = kernel_size >= SELFMAG && !memcmp(kernel, ELFMAG, SELFMAG);
	int r;

	*why = NULL;
	if (m->low_size < 32ULL << 20) {
		*why = "guest memory below 32 MiB is too small to boot Linux";
		return -EINVAL;
	}
	gzp = gpa_to_hva(m, LAYOUT_ZERO_PAGE, sizeof(*gzp));
	if (!gzp || !gpa_to_hva(m, LAYOUT_CMDLINE, LAYOUT_CMDLINE_MAX)) {
		*why = "guest memory too small for the zero page";
		return -ENOMEM;
	}
	memset(zp, 0, sizeof(*zp));
	if (elf) {
		r = load_elf(m, kernel, kernel_size, &bi->entry, &kend, why);
		/* What a bzImage's header would have said, for a kernel
		 * entered at startup_64. */
		zp->hdr.boot_flag = 0xAA55;
		zp->hdr.header = SETUP_HDR_MAGIC;
		zp->hdr.version = 0x020f;
		zp->hdr.kernel_alignment = 0x1000000;
		zp->hdr.cmdline_size = ELF_CMDLINE_MAX - 1;
		zp->hdr.initrd_addr_max = 0x7fffffff;
	} else {
		r = load_bzimage(m, kernel, kernel_size, zp, &bi->entry, &kend, why);
	}
	if (r)
		return r;
	if (cmdlen > (size_t)zp->hdr.cmdline_size + 1 || cmdlen > LAYOUT_CMDLINE_MAX) {
		*why = "command line longer than the kernel accepts";
		return -E2BIG;
	}
	zp->hdr.type_of_loader = 0xff;
	zp->hdr.loadflags |= CAN_USE_HEAP | LOADED_HIGH;
	zp->hdr.heap_end_ptr = 0xfe00;
	zp->hdr.vid_mode = 0xffff;
	memcpy(gpa_to_hva(m, LAYOUT_CMDLINE, cmdlen), cmdline, cmdlen);
	zp->hdr.cmd_line_ptr = LAYOUT_CMDLINE;
	zp->acpi_rsdp_addr = rsdp_addr;
	zp->e820_entries = boot_build_e820(m, zp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);

	if (initrd && initrd_size) {
		initrd_max = zp->hdr.initrd_addr_max ? zp->hdr.initrd_addr_max : 0x37ffffff;
		if (initrd_max >= m->low_size)
			initrd_max = m->low_size - 1;
		if (initrd_size > initrd_max + 1) {
			*why = "initramfs does not fit below the kernel's initrd limit";
			return -ENOMEM;
		}
		initrd_addr = (initrd_max + 1 - initrd_size) & ~0xfffULL;
		if (initrd_addr < kend) {
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
	memcpy(gzp, zp, sizeof(*zp));
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
