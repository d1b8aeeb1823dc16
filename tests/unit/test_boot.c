/* The Linux boot protocol: zero page, e820 layout, kernel and initrd
 * placement, and refusal of images that are not bootable. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <lz4.h>
#include <string.h>
#include <cmocka.h>
#include <elf.h>
#include "boot.h"
#include "vm.h"

#define RAM (64ULL << 20)
#define KSIZE (64 * 1024)

static struct guest_mem mem;
static uint8_t *kimg;

static int setup(void **state)
{
	mem.host = calloc(1, RAM);
	mem.size = mem.low_size = RAM;
	mem.high_size = 0;
	kimg = calloc(1, KSIZE);
	struct boot_params *bp = (struct boot_params *)kimg;

	bp->hdr.setup_sects = 3;
	bp->hdr.boot_flag = 0xAA55;
	bp->hdr.header = 0x53726448;
	bp->hdr.version = 0x020f;
	bp->hdr.xloadflags = XLF_KERNEL_64;
	bp->hdr.cmdline_size = 2047;
	bp->hdr.initrd_addr_max = 0x7fffffff;
	bp->hdr.relocatable_kernel = 1;
	bp->hdr.init_size = 1 << 20;
	kimg[0x201] = 0x6a;	/* header ends at 0x26c, as in 6.x */
	for (int i = 4 * 512; i < KSIZE; i++)
		kimg[i] = (uint8_t)(i * 7);
	return 0;
}

static int teardown(void **state)
{
	free(mem.host);
	free(kimg);
	return 0;
}

static void test_e820_low_only(void **state)
{
	struct boot_e820_entry e[16];
	unsigned n = boot_build_e820(&mem, e, 16);
	uint64_t ram = 0;

	assert_int_equal(n, 5);
	for (unsigned i = 0; i < n; i++) {
		if (e[i].type == 1)
			ram += e[i].size;
		if (i)	/* sorted, no overlap */
			assert_true(e[i].addr >= e[i - 1].addr + e[i - 1].size);
	}
	assert_int_equal(ram, RAM - (0x100000 - LAYOUT_EBDA));
	assert_int_equal(e[0].addr, 0);
	assert_int_equal(e[0].size, LAYOUT_EBDA);
	/* The ACPI tables and ECAM are reserved. */
	assert_int_equal(e[2].addr, LAYOUT_ACPI);
	assert_int_equal(e[2].type, 2);
	assert_int_equal(e[4].addr, LAYOUT_PCI_ECAM);
	assert_int_equal(e[4].type, 2);
}

static void test_e820_high_memory(void **state)
{
	struct guest_mem big = { .size = 5ULL << 30, .low_size = GUEST_LOW_RAM_MAX,
				 .high_size = (5ULL << 30) - GUEST_LOW_RAM_MAX };
	struct boot_e820_entry e[16];
	unsigned n = boot_build_e820(&big, e, 16);

	assert_int_equal(n, 6);
	assert_int_equal(e[3].addr + e[3].size, GUEST_LOW_RAM_MAX);
	assert_int_equal(e[5].addr, GUEST_HIGH_RAM_BASE);
	assert_int_equal(e[5].size, big.high_size);
	assert_int_equal(e[5].type, 1);
	/* A short table is truncated, never overrun. */
	assert_int_equal(boot_build_e820(&big, e, 2), 2);
}

static void test_zero_page(void **state)
{
	static const char cmd[] = "console=ttyS0 root=/dev/vda";
	uint8_t initrd[10000];
	struct boot_info bi;
	const char *why;

	memset(initrd, 0x5a, sizeof(initrd));
	assert_int_equal(boot_load(&mem, kimg, KSIZE, initrd, sizeof(initrd), cmd, LAYOUT_ACPI, &bi, &why), 0);
	struct boot_params *zp = gpa_to_hva(&mem, LAYOUT_ZERO_PAGE, sizeof(*zp));

	assert_int_equal(zp->hdr.header, 0x53726448);
	assert_int_equal(zp->hdr.type_of_loader, 0xff);
	assert_true(zp->hdr.loadflags & CAN_USE_HEAP);
	assert_int_equal(zp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_string_equal((char *)gpa_to_hva(&mem, LAYOUT_CMDLINE, sizeof(cmd)), cmd);
	assert_int_equal(zp->acpi_rsdp_addr, LAYOUT_ACPI);
	assert_int_equal(zp->e820_entries, 5);
	/* initrd: page aligned, inside low RAM, after the kernel, intact */
	assert_int_equal(zp->hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(zp->hdr.ramdisk_image % 4096, 0);
	assert_true(zp->hdr.ramdisk_image + sizeof(initrd) <= RAM);
	assert_true(zp->hdr.ramdisk_image >= LAYOUT_KERNEL + (1 << 20));
	assert_memory_equal(gpa_to_hva(&mem, zp->hdr.ramdisk_image, sizeof(initrd)), initrd, sizeof(initrd));
	/* kernel body at 1 MiB, entry 0x200 into it */
	assert_memory_equal(gpa_to_hva(&mem, LAYOUT_KERNEL, KSIZE - 2048), kimg + 2048, KSIZE - 2048);
	assert_int_equal(bi.entry, LAYOUT_KERNEL + 0x200);
	assert_int_equal(bi.zero_page, LAYOUT_ZERO_PAGE);
}

static void test_rejects_non_bzimage(void **state)
{
	struct boot_info bi;
	const char *why;
	uint8_t junk[8192] = { 0 };

	assert_int_equal(boot_load(&mem, junk, sizeof(junk), NULL, 0, "", 0, &bi, &why), -ENOEXEC);
	assert_non_null(why);
	/* Too small to even hold the header. */
	assert_int_equal(boot_load(&mem, kimg, 100, NULL, 0, "", 0, &bi, &why), -ENOEXEC);
}

static void test_rejects_old_or_32bit(void **state)
{
	struct boot_params *bp = (struct boot_params *)kimg;
	struct boot_info bi;
	const char *why;

	bp->hdr.version = 0x0206;
	assert_int_equal(boot_load(&mem, kimg, KSIZE, NULL, 0, "", 0, &bi, &why), -ENOEXEC);
	bp->hdr.version = 0x020f;
	bp->hdr.xloadflags = 0;
	assert_int_equal(boot_load(&mem, kimg, KSIZE, NULL, 0, "", 0, &bi, &why), -ENOEXEC);
	bp->hdr.xloadflags = XLF_KERNEL_64;
}

static void test_cmdline_too_long(void **state)
{
	char *cmd = malloc(4096);
	struct boot_info bi;
	const char *why;

	memset(cmd, 'a', 4095);
	cmd[4095] = 0;
	assert_int_equal(boot_load(&mem, kimg, KSIZE, NULL, 0, cmd, 0, &bi, &why), -E2BIG);
	assert_string_equal(bi.bad_input, "--cmdline");
	free(cmd);
}

static void test_initrd_too_big(void **state)
{
	size_t sz = RAM - (1 << 20);
	uint8_t *big = calloc(1, sz);
	struct boot_info bi;
	const char *why;

	assert_int_equal(boot_load(&mem, kimg, KSIZE, big, sz, "", 0, &bi, &why), -ENOMEM);
	assert_non_null(why);
	assert_string_equal(bi.bad_input, "--initramfs");
	free(big);
}

/* A kernel that is not relocatable and prefers an address above low RAM
 * (in high RAM here) is refused, not copied where the boot page tables
 * and the 32-bit code32_start cannot reach. */
static void test_pref_address_above_low_ram(void **state)
{
	struct guest_mem m2 = mem;	/* high RAM claimed, never touched */
	struct boot_params *bp = (struct boot_params *)kimg;
	struct boot_info bi;
	const char *why = NULL;

	m2.high_size = 1ULL << 30;
	m2.size = m2.low_size + m2.high_size;
	bp->hdr.relocatable_kernel = 0;
	bp->hdr.pref_address = GUEST_HIGH_RAM_BASE;
	int r = boot_load(&m2, kimg, KSIZE, NULL, 0, "", 0, &bi, &why);
	bp->hdr.relocatable_kernel = 1;
	bp->hdr.pref_address = 0;
	assert_int_equal(r, -ENOMEM);
	assert_non_null(why);
	assert_non_null(strstr(why, "low RAM"));
	assert_string_equal(bi.bad_input, "--kernel");
}

/* A relocatable bzImage that decompresses itself works from its load
 * address rounded up to kernel_alignment, and no lower than pref_address,
 * for init_size bytes: a kernel that fits at 1 MiB but not there is
 * refused. The setup header copied into the zero page stops at the end of
 * struct setup_header, whatever the byte at 0x201 claims. */
static void test_bzimage_footprint(void **state)
{
	struct boot_params *bp = (struct boot_params *)kimg;
	struct boot_info bi;
	const char *why = NULL;

	bp->hdr.kernel_alignment = 16 << 20;
	bp->hdr.pref_address = 16 << 20;
	bp->hdr.init_size = RAM - (8 << 20);	/* fits at 1 MiB, not at 16 */
	assert_int_equal(boot_load(&mem, kimg, KSIZE, NULL, 0, "", 0, &bi, &why), -ENOMEM);
	assert_string_equal(bi.bad_input, "--kernel");
	bp->hdr.init_size = 32 << 20;		/* 16 + 32 MiB: fits */
	uint8_t initrd[4096];
	memset(initrd, 0x11, sizeof(initrd));
	assert_int_equal(boot_load(&mem, kimg, KSIZE, initrd, sizeof(initrd), "", 0, &bi, &why), 0);
	assert_true(bi.initrd_addr >= (48 << 20));	/* above the decompressor's room */
	bp->hdr.kernel_alignment = 0;
	bp->hdr.pref_address = 0;
	bp->hdr.init_size = 1 << 20;

	kimg[0x201] = 0xff;
	memset(kimg + 0x290, 0xEE, 0x40);	/* edd_mbr_sig_buffer's place */
	assert_int_equal(boot_load(&mem, kimg, KSIZE, NULL, 0, "", 0, &bi, &why), 0);
	kimg[0x201] = 0x6a;
	memset(kimg + 0x290, 0, 0x40);
	const uint8_t *zp = mem.host + LAYOUT_ZERO_PAGE;
	for (unsigned i = 0x1f1 + sizeof(struct setup_header); i < 0x2d0; i++)
		assert_int_equal(zp[i], 0);
}

static void test_small_memory(void **state)
{
	struct guest_mem tiny = { .host = mem.host, .size = 16 << 20, .low_size = 16 << 20 };
	struct boot_info bi;
	const char *why;

	assert_int_equal(boot_load(&tiny, kimg, KSIZE, NULL, 0, "", 0, &bi, &why), -EINVAL);
}

/* A small x86-64 ELF "vmlinux": two PT_LOAD segments (text at 16 MiB,
 * data with a bss tail after it) and a PT_NOTE that is not loaded. */
#define ELF_TEXT 0x1000000ULL
#define ELF_DATA 0x1200000ULL
struct mini_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[3];
	uint8_t text[256];
	uint8_t data[64];
};

static void make_elf(struct mini_elf *e)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
	e->eh.e_ident[EI_CLASS] = ELFCLASS64;
	e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e->eh.e_ident[EI_VERSION] = EV_CURRENT;
	e->eh.e_type = ET_EXEC;
	e->eh.e_machine = EM_X86_64;
	e->eh.e_entry = ELF_TEXT + 0x40;
	e->eh.e_phoff = offsetof(struct mini_elf, ph);
	e->eh.e_phentsize = sizeof(Elf64_Phdr);
	e->eh.e_phnum = 3;
	e->ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = offsetof(struct mini_elf, text),
				 .p_paddr = ELF_TEXT, .p_vaddr = 0xffffffff81000000ULL,
				 .p_filesz = sizeof(e->text), .p_memsz = sizeof(e->text) };
	e->ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 0, .p_paddr = 0,
				 .p_filesz = 16, .p_memsz = 16 };
	e->ph[2] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = offsetof(struct mini_elf, data),
				 .p_paddr = ELF_DATA, .p_filesz = sizeof(e->data), .p_memsz = 8192 };
	for (unsigned i = 0; i < sizeof(e->text); i++)
		e->text[i] = (uint8_t)(i * 3 + 1);
	memset(e->data, 0xd5, sizeof(e->data));
}

static void test_elf_vmlinux(void **state)
{
	static const char cmd[] = "console=ttyS0";
	struct mini_elf e;
	uint8_t initrd[5000];
	struct boot_info bi;
	const char *why;

	make_elf(&e);
	memset(gpa_to_hva(&mem, ELF_DATA, 8192), 0xff, 8192);	/* bss must be cleared */
	memset(initrd, 0x3c, sizeof(initrd));
	assert_int_equal(boot_load(&mem, &e, sizeof(e), initrd, sizeof(initrd), cmd, LAYOUT_ACPI,
				   &bi, &why), 0);
	assert_int_equal(bi.entry, ELF_TEXT + 0x40);
	assert_memory_equal(gpa_to_hva(&mem, ELF_TEXT, sizeof(e.text)), e.text, sizeof(e.text));
	uint8_t *d = gpa_to_hva(&mem, ELF_DATA, 8192);
	assert_memory_equal(d, e.data, sizeof(e.data));
	for (unsigned i = sizeof(e.data); i < 8192; i++)
		assert_int_equal(d[i], 0);

	struct boot_params *zp = gpa_to_hva(&mem, LAYOUT_ZERO_PAGE, sizeof(*zp));
	assert_int_equal(zp->hdr.header, 0x53726448);
	assert_int_equal(zp->hdr.boot_flag, 0xAA55);
	assert_int_equal(zp->hdr.type_of_loader, 0xff);
	assert_int_equal(zp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_string_equal((char *)gpa_to_hva(&mem, LAYOUT_CMDLINE, sizeof(cmd)), cmd);
	assert_int_equal(zp->acpi_rsdp_addr, LAYOUT_ACPI);
	assert_int_equal(zp->e820_entries, 5);
	/* initrd above everything the segments occupy */
	assert_true(zp->hdr.ramdisk_image >= ELF_DATA + 8192);
	assert_int_equal(zp->hdr.ramdisk_size, sizeof(initrd));
	assert_memory_equal(gpa_to_hva(&mem, zp->hdr.ramdisk_image, sizeof(initrd)), initrd,
			    sizeof(initrd));

	/* x86's command line limit: 2047 characters. */
	char *long_cmd = malloc(2049);
	memset(long_cmd, 'a', 2048);
	long_cmd[2047] = 0;
	assert_int_equal(boot_load(&mem, &e, sizeof(e), NULL, 0, long_cmd, 0, &bi, &why), 0);
	long_cmd[2047] = 'a';
	long_cmd[2048] = 0;
	assert_int_equal(boot_load(&mem, &e, sizeof(e), NULL, 0, long_cmd, 0, &bi, &why), -E2BIG);
	free(long_cmd);
}

/* Malformed ELF files: each refused with a reason, guest memory untouched. */
static void test_elf_malformed(void **state)
{
	struct mini_elf e;
	struct boot_info bi;
	const char *why;
	uint8_t *text = gpa_to_hva(&mem, ELF_TEXT, 256);

#define REFUSE(mutate, err) do {						\
		make_elf(&e);							\
		mutate;								\
		memset(text, 0x77, 256);					\
		why = NULL;							\
		assert_int_equal(boot_load(&mem, &e, sizeof(e), NULL, 0, "", 0, &bi, &why), err); \
		assert_non_null(why);						\
		for (unsigned i = 0; i < 256; i++)				\
			assert_int_equal(text[i], 0x77);			\
	} while (0)
	REFUSE(e.eh.e_ident[EI_CLASS] = ELFCLASS32, -ENOEXEC);
	REFUSE(e.eh.e_machine = EM_AARCH64, -ENOEXEC);
	REFUSE(e.eh.e_type = ET_REL, -ENOEXEC);
	REFUSE(e.eh.e_phoff = sizeof(e), -ENOEXEC);			/* headers past the end */
	REFUSE(e.eh.e_phnum = 0xffff, -ENOEXEC);
	REFUSE(e.eh.e_phentsize = 32, -ENOEXEC);
	REFUSE(e.ph[2].p_filesz = 1ULL << 40, -ENOEXEC);		/* segment past the file */
	REFUSE(e.ph[2].p_offset = ~0ULL, -ENOEXEC);
	REFUSE(e.ph[2].p_filesz = 8193, -ENOEXEC);			/* filesz > memsz */
	REFUSE(e.ph[2].p_paddr = 0x7000, -ENOEXEC);			/* over the zero page */
	REFUSE(e.ph[2].p_paddr = RAM - 4096, -ENOMEM);			/* past the end of RAM */
	REFUSE(e.ph[2].p_paddr = ~0ULL - 100, -ENOMEM);			/* wraps */
	REFUSE(e.ph[2].p_memsz = 1ULL << 62, -ENOMEM);
	REFUSE(e.eh.e_entry = ELF_DATA + 4096, -ENOEXEC);		/* entry in the bss */
	REFUSE(e.eh.e_entry = 0, -ENOEXEC);
#undef REFUSE
	/* Truncated to the ELF header alone. */
	make_elf(&e);
	assert_int_equal(boot_load(&mem, &e, sizeof(Elf64_Ehdr), NULL, 0, "", 0, &bi, &why), -ENOEXEC);
	assert_int_equal(boot_load(&mem, &e, 10, NULL, 0, "", 0, &bi, &why), -ENOEXEC);
}

/* ---- a bzImage whose payload is LZ4: decompressed (and placed) by the VMM ---- */

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t put32(uint8_t *p, uint32_t v)
{
	p[0] = v, p[1] = v >> 8, p[2] = v >> 16, p[3] = v >> 24;
	return 4;
}

/* An LZ4 legacy frame of data cut into blocks of at most blk bytes,
 * compressed by liblz4, the uncompressed size appended; its length. */
static size_t lz4_frame(uint8_t *out, size_t cap, const uint8_t *data, size_t n, size_t blk)
{
	size_t o = put32(out, 0x184c2102);

	for (size_t d = 0; d < n; d += blk) {
		int len = (int)(n - d < blk ? n - d : blk);
		int c = LZ4_compress_default((const char *)data + d, (char *)out + o + 4, len,
					     (int)(cap - o - 8));
		assert_true(c > 0);
		o += put32(out + o, (uint32_t)c) + c;
	}
	return o + put32(out + o, (uint32_t)n);
}

static void test_unlz4(void **state)
{
	enum { N = 300000 };
	uint8_t *data = malloc(N), *frame = malloc(2 * N), *bad = malloc(2 * N);
	size_t n, len;

	for (size_t i = 0; i < N; i++)
		data[i] = (uint8_t)(i % 251 < 100 ? i / 7 : i * 13);
	len = lz4_frame(frame, 2 * N, data, N, 120000);	/* three blocks */
	uint8_t *o = boot_unlz4_legacy(frame, len, 1 << 20, &n);

	assert_non_null(o);
	assert_int_equal(n, N);
	assert_memory_equal(o, data, N);
	free(o);
	assert_null(boot_unlz4_legacy(frame, len, N - 1, &n));		/* over max_out */
	assert_null(boot_unlz4_legacy(frame, len - 1, 1 << 20, &n));	/* truncated */
	assert_null(boot_unlz4_legacy(frame + 4, len - 4, 1 << 20, &n));	/* no magic */
#define BAD(i, v) do {							\
		memcpy(bad, frame, len);				\
		bad[i] = v;						\
		assert_null(boot_unlz4_legacy(bad, len, 1 << 20, &n));	\
	} while (0)
	BAD(len - 3, frame[len - 3] + 1);	/* size says more than the blocks give */
	BAD(len - 4, frame[len - 4] - 1);	/* ... or less */
	BAD(6, 0x7f);				/* block longer than the input */
	BAD(4, frame[4] - 1);			/* first block cut short */
#undef BAD
	free(data);
	free(frame);
	free(bad);
}

/* A mini kernel: the ELF, then its relocation table (read backwards: 32-bit
 * entries, 0, inverse 32-bit, 0, 64-bit, 0), as a bzImage's payload. */
#define LINK_VA(pa) (0xffffffff80000000ULL + (pa))
#define F32 (ELF_TEXT + 0x10)		/* fields the table names */
#define FINV (ELF_TEXT + 0x20)
#define F64 (ELF_DATA + 0x8)

struct mini_kernel {
	struct mini_elf e;
	int32_t rel[8];		/* rel[0]: not the table's, pads to 8 bytes */
};

/* extra: one more 32-bit entry (the field at ELF_TEXT + 0x30, or one
 * outside the image). */
static size_t make_kernel_payload(struct mini_kernel *k, int32_t extra)
{
	struct boot_params *bp = (struct boot_params *)kimg;
	size_t setup = (bp->hdr.setup_sects + 1) * 512;

	make_elf(&k->e);
	memcpy(k->e.text + 0x10, &(uint32_t){ 0x81000100 }, 4);
	memcpy(k->e.text + 0x20, &(int32_t){ 0x1000 }, 4);
	memcpy(k->e.data + 0x8, &(uint64_t){ LINK_VA(ELF_TEXT + 0x80) }, 8);
	int32_t rel[8] = { 0, 0, (int32_t)LINK_VA(F64), 0, (int32_t)LINK_VA(FINV), 0, extra,
			   (int32_t)LINK_VA(F32) };
	memcpy(k->rel, rel, sizeof(rel));
	size_t len = lz4_frame(kimg + setup + 0x100, KSIZE - setup - 0x100, (const uint8_t *)k,
			       sizeof(*k), 8u << 20);
	bp->hdr.payload_offset = 0x100;
	bp->hdr.payload_length = (uint32_t)len;
	bp->hdr.pref_address = ELF_TEXT;
	return len;
}

static void restore_kimg(void)
{
	struct boot_params *bp = (struct boot_params *)kimg;

	bp->hdr.payload_offset = bp->hdr.payload_length = 0;
	bp->hdr.pref_address = 0;
	bp->hdr.relocatable_kernel = 1;
	for (size_t i = (bp->hdr.setup_sects + 1) * 512; i < KSIZE; i++)
		kimg[i] = (uint8_t)(i * 7);
}

static void test_bzimage_lz4_kaslr(void **state)
{
	struct mini_kernel k;
	struct boot_info bi;
	const char *why;
	struct boot_params *zp = gpa_to_hva(&mem, LAYOUT_ZERO_PAGE, sizeof(*zp));
	uint64_t image = ELF_DATA + 8192 - ELF_TEXT, phys0 = 0, delta0 = 0;
	bool moved = false;
	uint8_t initrd[3 << 20];

	memset(initrd, 0x3c, sizeof(initrd));
	make_kernel_payload(&k, (int32_t)LINK_VA(ELF_TEXT + 0x30));
	for (int run = 0; run < 16; run++) {
		memset(mem.host, 0xee, RAM);
		assert_int_equal(boot_load(&mem, kimg, KSIZE, initrd, sizeof(initrd), "console=ttyS0",
					   LAYOUT_ACPI, &bi, &why), 0);
		assert_true(zp->hdr.loadflags & KASLR_FLAG);
		/* Physical: a 2 MiB slot from the link address, below the
		 * initramfs. */
		uint64_t phys = bi.entry - 0x40;
		assert_int_equal(phys % (2 << 20), 0);
		assert_true(phys >= ELF_TEXT && phys + image <= bi.initrd_addr);
		uint8_t *t = gpa_to_hva(&mem, phys, image);
		assert_memory_equal(t + 0x40, k.e.text + 0x40, 16);
		/* Virtual: the 64-bit field moved by delta, a 2 MiB multiple
		 * keeping the kernel in its 1 GiB window, never 0. */
		uint64_t v64, delta;
		uint32_t v32;
		int32_t vinv;
		memcpy(&v64, t + (F64 - ELF_TEXT), 8);
		delta = v64 - LINK_VA(ELF_TEXT + 0x80);
		assert_true(delta != 0 && delta % (2 << 20) == 0);
		assert_true(ELF_TEXT + delta + image <= 1ULL << 30);
		memcpy(&v32, t + (F32 - ELF_TEXT), 4);
		assert_int_equal(v32, (uint32_t)(0x81000100 + delta));
		memcpy(&vinv, t + (FINV - ELF_TEXT), 4);
		assert_int_equal(vinv, (int32_t)(0x1000 - (uint32_t)delta));
		memcpy(&v32, t + 0x30, 4);
		assert_int_equal(v32, (uint32_t)(le32(k.e.text + 0x30) + delta));
		/* One the table does not name stays; bss is cleared. */
		assert_int_equal(t[0x50], k.e.text[0x50]);
		assert_int_equal(t[ELF_DATA - ELF_TEXT + 4096], 0);
		if (run && (phys != phys0 || delta != delta0))
			moved = true;
		phys0 = phys;
		delta0 = delta;
	}
	assert_true(moved);	/* 16 draws of ~23 x ~500 slots */

	/* nokaslr: at the link address, nothing relocated. */
	assert_int_equal(boot_load(&mem, kimg, KSIZE, NULL, 0, "console=ttyS0 nokaslr", LAYOUT_ACPI,
				   &bi, &why), 0);
	assert_int_equal(bi.entry, ELF_TEXT + 0x40);
	assert_false(zp->hdr.loadflags & KASLR_FLAG);
	assert_memory_equal(gpa_to_hva(&mem, ELF_TEXT, sizeof(k.e.text)), k.e.text, sizeof(k.e.text));

	/* Not ours to place: the guest's decompressor (entry 0x200 into the
	 * protected-mode kernel at 1 MiB). A table entry outside the image: */
	make_kernel_payload(&k, (int32_t)LINK_VA(ELF_TEXT + image));
	assert_int_equal(boot_load(&mem, kimg, KSIZE, NULL, 0, "", LAYOUT_ACPI, &bi, &why), 0);
	assert_int_equal(bi.entry, LAYOUT_KERNEL + 0x200);
	/* A kernel that is not relocatable: */
	make_kernel_payload(&k, (int32_t)LINK_VA(ELF_TEXT + 0x30));
	((struct boot_params *)kimg)->hdr.relocatable_kernel = 0;
	assert_int_equal(boot_load(&mem, kimg, KSIZE, NULL, 0, "", LAYOUT_ACPI, &bi, &why), 0);
	assert_int_equal(bi.entry, ELF_TEXT + 0x200);	/* at its preferred address */
	((struct boot_params *)kimg)->hdr.relocatable_kernel = 1;
	/* VMM_GUEST_DECOMPRESS=1: */
	setenv("VMM_GUEST_DECOMPRESS", "1", 1);
	assert_int_equal(boot_load(&mem, kimg, KSIZE, NULL, 0, "", LAYOUT_ACPI, &bi, &why), 0);
	unsetenv("VMM_GUEST_DECOMPRESS");
	assert_int_equal(bi.entry, LAYOUT_KERNEL + 0x200);
	/* A corrupt payload: */
	size_t len = make_kernel_payload(&k, (int32_t)LINK_VA(ELF_TEXT + 0x30));
	((struct boot_params *)kimg)->hdr.payload_length = (uint32_t)len - 1;
	assert_int_equal(boot_load(&mem, kimg, KSIZE, NULL, 0, "", LAYOUT_ACPI, &bi, &why), 0);
	assert_int_equal(bi.entry, LAYOUT_KERNEL + 0x200);
	restore_kimg();
}

static void test_page_tables(void **state)
{
	boot_build_page_tables(&mem);
	uint64_t *pml4 = gpa_to_hva(&mem, LAYOUT_PML4, 8);
	uint64_t *pd = gpa_to_hva(&mem, LAYOUT_PML4 + 0x2000, 4 * 4096);

	assert_int_equal(pml4[0] & ~0xfffULL, LAYOUT_PML4 + 0x1000);
	/* 2 MiB identity pages covering 4 GiB */
	assert_int_equal(pd[0], 0x83);
	assert_int_equal(pd[2047] & ~0xfffULL, 2047ULL << 21);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_e820_low_only),
		cmocka_unit_test(test_e820_high_memory),
		cmocka_unit_test(test_zero_page),
		cmocka_unit_test(test_rejects_non_bzimage),
		cmocka_unit_test(test_rejects_old_or_32bit),
		cmocka_unit_test(test_cmdline_too_long),
		cmocka_unit_test(test_initrd_too_big),
		cmocka_unit_test(test_pref_address_above_low_ram),
		cmocka_unit_test(test_bzimage_footprint),
		cmocka_unit_test(test_small_memory),
		cmocka_unit_test(test_elf_vmlinux),
		cmocka_unit_test(test_elf_malformed),
		cmocka_unit_test(test_unlz4),
		cmocka_unit_test(test_bzimage_lz4_kaslr),
		cmocka_unit_test(test_page_tables),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
