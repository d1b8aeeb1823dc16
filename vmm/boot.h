/* Linux x86 boot protocol (Documentation/arch/x86/boot.rst): load a bzImage
 * (or an uncompressed ELF vmlinux, which skips the decompressor: its
 * segments go to their physical addresses and it is entered at startup_64
 * with the same zero page) and an initramfs into guest RAM, build the zero page (boot_params) with the
 * command line and the e820 map, and put the boot vCPU in 64-bit mode at the
 * kernel's 64-bit entry point. */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H
#include <asm/bootparam.h>
#include <stddef.h>
#include <stdint.h>
#include "guest_mem.h"

struct boot_info {
	uint64_t entry;		/* 64-bit entry point */
	uint64_t zero_page;	/* GPA of boot_params */
	uint64_t initrd_addr, initrd_size;
	/* On failure, the input at fault: "--kernel", "--initramfs" or
	 * "--cmdline" (the flag that names it). */
	const char *bad_input;
};

/* Fill the e820 table for this memory size; returns the entry count. */
unsigned boot_build_e820(const struct guest_mem *m, struct boot_e820_entry *e, unsigned max);

/* Load kernel (bzImage or ELF vmlinux bytes) and initrd into m, write boot_params at
 * LAYOUT_ZERO_PAGE and the command line at LAYOUT_CMDLINE. Returns 0 or a
 * negative errno with *why set to a message for the user. */
int boot_load(const struct guest_mem *m, const void *kernel, size_t kernel_size,
	      const void *initrd, size_t initrd_size, const char *cmdline,
	      uint64_t rsdp_addr, struct boot_info *bi, const char **why);

/* Decompress an LZ4 legacy frame with the uncompressed size appended (a
 * bzImage's payload); a malloc'ed buffer or NULL if it is not one, is
 * corrupt or would exceed max_out bytes. */
uint8_t *boot_unlz4_legacy(const uint8_t *in, size_t in_len, size_t max_out, size_t *out_len);

/* Identity page tables (4 GiB with 2 MiB pages) and a GDT in guest RAM. */
void boot_build_page_tables(const struct guest_mem *m);

/* Registers of the boot vCPU: long mode, paging on, rip = entry, rsi = zero
 * page. */
int boot_setup_vcpu(int vcpu_fd, const struct boot_info *bi);

#endif
