/* Guest RAM: one host mapping, seen by the guest as a low part at GPA 0 and,
 * for guests larger than the 32-bit hole allows, a high part at 4 GiB.
 * Every device access to guest memory goes through gpa_to_hva(), which
 * refuses ranges that are not wholly inside one RAM region. */
#ifndef VMM_GUEST_MEM_H
#define VMM_GUEST_MEM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_LOW_RAM_MAX 0xC0000000ULL  /* 3 GiB: the MMIO hole starts here */
#define GUEST_HIGH_RAM_BASE 0x100000000ULL
#define GUEST_RAM_ALIGN (2ULL << 20)	/* host alignment: a huge page */

struct guest_mem {
	uint8_t *host;		/* host address of guest RAM, low part first */
	uint64_t size;		/* total bytes of RAM */
	uint64_t low_size;	/* bytes at GPA [0, low_size) */
	uint64_t high_size;	/* bytes at GPA [4 GiB, 4 GiB + high_size) */
	bool thp;		/* MADV_HUGEPAGE accepted for it */
};

/* Host address of [gpa, gpa + len), or NULL when any byte of it lies outside
 * guest RAM, the range wraps, or len is 0. */
static inline void *gpa_to_hva(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (len == 0 || gpa + len < gpa)
		return NULL;
	if (gpa + len <= m->low_size)
		return m->host + gpa;
	if (gpa >= GUEST_HIGH_RAM_BASE && gpa - GUEST_HIGH_RAM_BASE + len <= m->high_size)
		return m->host + m->low_size + (gpa - GUEST_HIGH_RAM_BASE);
	return NULL;
}

/* Bytes of RAM from gpa to the end of the region holding it (0 if none). */
static inline uint64_t gpa_ram_extent(const struct guest_mem *m, uint64_t gpa)
{
	if (gpa < m->low_size)
		return m->low_size - gpa;
	if (gpa >= GUEST_HIGH_RAM_BASE && gpa - GUEST_HIGH_RAM_BASE < m->high_size)
		return m->high_size - (gpa - GUEST_HIGH_RAM_BASE);
	return 0;
}

/* Where the host's THP settings are read (sysfs; tests point it elsewhere). */
extern const char *guest_mem_thp_dir;

/* Map size bytes of RAM at a GUEST_RAM_ALIGN-aligned host address, asking
 * for transparent huge pages (said once on stderr when the kernel has none
 * or its 2 MiB THP are set to "never");
 * 0 or -errno. */
int guest_mem_alloc(struct guest_mem *m, uint64_t size);
void guest_mem_free(struct guest_mem *m);

#endif
