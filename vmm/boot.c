/* Linux x86 boot protocol: a bzImage, or an ELF vmlinux entered at
 * startup_64 with the same zero page. */
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <linux/kvm.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <time.h>
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
 * addresses (plus shift) and the entry is startup_64, which takes the same zero page as
 * the bzImage's 64-bit entry (the decompressor is what is skipped). */
static int load_elf(const struct guest_mem *m, const uint8_t *k, size_t size, uint64_t shift,
		    uint64_t *entry, uint64_t *end, const char **why)
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
			ph.p_paddr += shift;
			if (pass == 1) {
				uint8_t *dst = gpa_to_hva(m, ph.p_paddr, ph.p_memsz);

				if (!dst)	/* (pass 0 checked it: the file is ours alone) */
					return -ENOMEM;
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
			if (eh->e_entry + shift >= ph.p_paddr && eh->e_entry + shift - ph.p_paddr < ph.p_filesz)
				entry_ok = true;
			if (ph.p_paddr + ph.p_memsz > *end)
				*end = ph.p_paddr + ph.p_memsz;
		}
		if (pass == 0 && !entry_ok) {
			*why = "the ELF entry point is not inside a loaded segment";
			return -ENOEXEC;
		}
	}
	*entry = eh->e_entry + shift;
	return 0;
}

/* ---- a bzImage's LZ4 payload, decompressed by the VMM ----
 * The bzImage's decompressor, run in the guest, is the slowest part of
 * early boot where guest code is expensive: in the nested runner it took
 * 1.0-3.8 s more than a vmlinux boot, against ~1.9 s for the VMM to do it
 * (medians: kernel clock zero 3.3 s after launch against 2.3 s). The
 * payload is the kernel's ELF vmlinux, then its relocation table, in LZ4's
 * legacy frame format (magic, then blocks of at most 8 MiB each preceded by
 * its compressed size), the uncompressed size appended. The VMM
 * decompresses it (liblz4), loads the ELF and, like the kernel's own
 * decompressor, randomises where it runs (KASLR: physical and virtual base,
 * relocations applied) unless the command line says nokaslr. Other
 * compressions, a kernel without relocations, or any error leave the
 * bzImage to its own decompressor; so does VMM_GUEST_DECOMPRESS=1 in the
 * environment (for comparisons). */

#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u << 20)
#define START_KERNEL_MAP 0xffffffff80000000ULL	/* __START_KERNEL_map */
#define KERNEL_IMAGE_SIZE (1ULL << 30)		/* with RANDOMIZE_BASE */
#define KASLR_ALIGN (2ULL << 20)

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

uint8_t *boot_unlz4_legacy(const uint8_t *in, size_t in_len, size_t max_out, size_t *out_len)
{
	size_t size, pos = 4, done = 0;
	uint8_t *out;

	if (in_len < 12 || le32(in) != LZ4_LEGACY_MAGIC)
		return NULL;
	size = le32(in + in_len - 4);
	in_len -= 4;
	if (size == 0 || size > max_out || !(out = malloc(size)))
		return NULL;
	while (in_len - pos >= 4) {
		uint32_t c = le32(in + pos);
		size_t room = size - done < LZ4_LEGACY_BLOCK ? size - done : LZ4_LEGACY_BLOCK;
		int n;

		pos += 4;
		if (c == LZ4_LEGACY_MAGIC)
			continue;	/* concatenated frames */
		if (c == 0 || c > in_len - pos || c > INT32_MAX || room == 0)
			break;
		n = LZ4_decompress_safe((const char *)in + pos, (char *)out + done, (int)c, (int)room);
		if (n < 0)
			break;
		done += n;
		pos += c;
	}
	if (done != size || pos != in_len) {
		free(out);
		return NULL;
	}
	*out_len = size;
	return out;
}

/* The relocation table appended to a decompressed kernel, read from the
 * end backwards as the kernel's decompressor does: 32-bit entries, a zero,
 * inverse 32-bit entries, a zero, 64-bit entries, a zero. Each entry is
 * the (sign-extended) link-time virtual address of a field to adjust by
 * delta. img (image bytes, the loaded kernel) NULL: only check that every
 * entry lies in the image and the table ends above floor (the ELF's own
 * bytes). */
static bool kaslr_relocate(const uint8_t *buf, size_t len, size_t floor, uint8_t *img,
			   uint64_t image, uint64_t link_va, uint64_t delta)
{
	size_t p = len & ~(size_t)3;

	for (int set = 0; set < 3; set++) {
		for (;;) {
			int32_t r;

			if (p < floor + 4)
				return false;
			p -= 4;
			memcpy(&r, buf + p, 4);
			if (r == 0)
				break;
			uint64_t off = (uint64_t)(int64_t)r - link_va;
			unsigned w = set == 2 ? 8 : 4;

			if (image < w || off > image - w)
				return false;
			if (!img)
				continue;
			uint8_t *f = img + off;
			if (set == 2) {
				uint64_t v;
				memcpy(&v, f, 8);
				v += delta;
				memcpy(f, &v, 8);
			} else {
				uint32_t v;
				memcpy(&v, f, 4);
				v = set == 0 ? v + (uint32_t)delta : v - (uint32_t)delta;
				memcpy(f, &v, 4);
			}
		}
	}
	return true;
}

/* Bytes of the ELF file proper (headers, segments, section table). */
static size_t elf_file_end(const uint8_t *k, size_t size)
{
	const Elf64_Ehdr *eh = (const void *)k;
	size_t end = eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr);

	if (eh->e_shoff && eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize > end)
		end = eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, k + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_offset + ph.p_filesz > end)
			end = ph.p_offset + ph.p_filesz;
	}
	return end < size ? end : size;
}

static bool cmdline_has(const char *cmdline, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = cmdline; (p = strstr(p, word)); p += n)
		if ((p == cmdline || p[-1] == ' ') && (p[n] == 0 || p[n] == ' '))
			return true;
	return false;
}

static uint64_t random_below(uint64_t n)
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		r = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec;
	}
	return n ? r % n : 0;
}

/* The decompressed kernel elf (elf_len bytes, relocations at the end) into
 * guest memory, below limit; KASLR unless nokaslr. 0, or -ENOEXEC when the
 * guest's decompressor should do it instead. */
static int load_decompressed(const struct guest_mem *m, const uint8_t *elf, size_t elf_len,
			     const struct setup_header *h, const char *cmdline, uint64_t limit,
			     struct boot_params *zp, uint64_t *entry, uint64_t *end)
{
	const Elf64_Ehdr *eh = (const void *)elf;
	uint64_t lo = UINT64_MAX, hi = 0, link = h->pref_address;
	const char *why;

	if (elf_len < sizeof(*eh) || memcmp(elf, ELFMAG, SELFMAG) || eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff > elf_len || (elf_len - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
		return -ENOEXEC;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, elf + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_memsz > UINT64_MAX - ph.p_paddr)
			return -ENOEXEC;
		if (ph.p_paddr < lo)
			lo = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > hi)
			hi = ph.p_paddr + ph.p_memsz;
	}
	/* Only a relocatable kernel linked at its preferred address, with a
	 * well-formed relocation table, is ours to place. */
	uint64_t image = hi - lo, link_va = START_KERNEL_MAP + link;
	size_t floor = elf_file_end(elf, elf_len);

	if (lo != link || hi <= lo || image > KERNEL_IMAGE_SIZE || !h->relocatable_kernel ||
	    !kaslr_relocate(elf, elf_len, floor, NULL, image, link_va, 0))
		return -ENOEXEC;
	uint64_t phys = link, virt = link;
	uint64_t span = (image + KASLR_ALIGN - 1) & ~(KASLR_ALIGN - 1);

	if (!cmdline_has(cmdline, "nokaslr")) {
		/* Physical: any 2 MiB slot from the link address up to where
		 * the initramfs goes. Virtual: any slot of the kernel's 1 GiB
		 * window but the link address itself (so a randomised kernel
		 * always shows it). */
		if (limit > link + span)
			phys = link + random_below((limit - link - span) / KASLR_ALIGN + 1) * KASLR_ALIGN;
		if (KERNEL_IMAGE_SIZE > link + span)
			virt = link + (1 + random_below((KERNEL_IMAGE_SIZE - link - span) / KASLR_ALIGN)) *
					      KASLR_ALIGN;
		zp->hdr.loadflags |= KASLR_FLAG;
	}
	uint8_t *hva = gpa_to_hva(m, phys, image);

	if (!hva || phys + image > limit)
		return -ENOEXEC;
	int r = load_elf(m, elf, elf_len, phys - link, entry, end, &why);
	if (r)
		return r == -ENOMEM ? -ENOMEM : -ENOEXEC;
	if (virt != link && !kaslr_relocate(elf, elf_len, floor, hva, image, link_va, virt - link))
		return -ENOEXEC;
	return 0;
}

/* A bzImage: the protected-mode kernel after the setup sectors goes to
 * 1 MiB (or its preferred address); entry is its startup_64. The setup
 * header is copied into the zero page. */
static int load_bzimage(const struct guest_mem *m, const uint8_t *k, size_t size,
			const char *cmdline, uint64_t limit, struct boot_params *zp, uint64_t *entry,
			uint64_t *end, const char **why)
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
	/* The payload decompressed here, when it is LZ4 and a relocatable ELF. */
	const char *guest_dec = getenv("VMM_GUEST_DECOMPRESS");
	size_t pl_off = setup_size + img->hdr.payload_offset, elf_len;
	uint8_t *elf;

	hdr_end = 0x202 + k[0x201];
	if (hdr_end > 0x1f1 + sizeof(struct setup_header))
		hdr_end = 0x1f1 + sizeof(struct setup_header);	/* no further into the zero page */
	if (!(guest_dec && *guest_dec == '1') && pl_off < size &&
	    img->hdr.payload_length <= size - pl_off &&
	    (elf = boot_unlz4_legacy(k + pl_off, img->hdr.payload_length, m->low_size, &elf_len))) {
		int r;

		memcpy((uint8_t *)zp + 0x1f1, k + 0x1f1, hdr_end - 0x1f1);
		r = load_decompressed(m, elf, elf_len, &img->hdr, cmdline, limit, zp, entry, end);
		free(elf);
		if (r == 0)
			return 0;
		/* Not ours to place: the guest's decompressor will do. */
		memset(zp, 0, sizeof(*zp));
	}

	/* The protected-mode kernel runs where it is loaded when relocatable;
	 * otherwise it must sit at its preferred address. 1 MiB satisfies
	 * both for the kernels we build (pref_address is used if above). */
	uint64_t load = LAYOUT_KERNEL;

	if (!img->hdr.relocatable_kernel && img->hdr.pref_address > load)
		load = img->hdr.pref_address;
	dst = gpa_to_hva(m, load, size - setup_size);
	uint64_t need = img->hdr.init_size > size - setup_size ? img->hdr.init_size : size - setup_size;
	/* A relocatable kernel's decompressor works at the load address
	 * rounded up to kernel_alignment, and no lower than pref_address,
	 * for init_size bytes: all of that must be RAM, below the initramfs. */
	uint64_t base = load, align = img->hdr.kernel_alignment;

	if (img->hdr.relocatable_kernel) {
		if (align && !(align & (align - 1)) && align <= m->low_size)
			base = (load + align - 1) & ~(align - 1);
		if (img->hdr.pref_address > base)
			base = img->hdr.pref_address;
	}
	/* Below the end of low RAM: the boot page tables map 4 GiB, and
	 * code32_start is 32 bits. */
	if (!dst || !gpa_to_hva(m, load, need) || load + need > m->low_size ||
	    base > m->low_size || img->hdr.init_size > m->low_size - base) {
		*why = "kernel does not fit in guest memory (below its 3 GiB of low RAM)";
		return -ENOMEM;
	}
	if (base + img->hdr.init_size > load + need)
		need = base + img->hdr.init_size - load;
	memcpy(dst, k + setup_size, size - setup_size);

	/* The setup header runs from 0x1f1 to 0x202 + the byte at 0x201. */
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
	bi->bad_input = "--kernel";
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
		r = load_elf(m, kernel, kernel_size, 0, &bi->entry, &kend, why);
		/* What a bzImage's header would have said, for a kernel
		 * entered at startup_64. */
		zp->hdr.boot_flag = 0xAA55;
		zp->hdr.header = SETUP_HDR_MAGIC;
		zp->hdr.version = 0x020f;
		zp->hdr.kernel_alignment = 0x1000000;
		zp->hdr.cmdline_size = ELF_CMDLINE_MAX - 1;
		zp->hdr.initrd_addr_max = 0x7fffffff;
	} else {
		/* Where the initramfs will go bounds a randomised kernel. */
		const struct boot_params *ih = kernel;
		uint64_t limit = m->low_size;

		if (kernel_size >= sizeof(*ih) && initrd && initrd_size) {
			uint64_t imax = ih->hdr.initrd_addr_max ? ih->hdr.initrd_addr_max : 0x37ffffff;

			if (imax >= m->low_size)
				imax = m->low_size - 1;
			if (initrd_size <= imax + 1)
				limit = (imax + 1 - initrd_size) & ~0xfffULL;
		}
		r = load_bzimage(m, kernel, kernel_size, cmdline, limit, zp, &bi->entry, &kend, why);
	}
	if (r)
		return r;
	if (cmdlen > (size_t)zp->hdr.cmdline_size + 1 || cmdlen > LAYOUT_CMDLINE_MAX) {
		*why = "command line longer than the kernel accepts";
		bi->bad_input = "--cmdline";
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
			bi->bad_input = "--initramfs";
			return -ENOMEM;
		}
		initrd_addr = (initrd_max + 1 - initrd_size) & ~0xfffULL;
		if (initrd_addr < kend) {
			*why = "initramfs does not fit in guest memory beside the kernel";
			bi->bad_input = "--initramfs";
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
