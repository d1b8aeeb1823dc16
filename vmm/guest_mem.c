/* Guest RAM: one anonymous host mapping, aligned to 2 MiB and marked for
 * transparent huge pages. Where the host backs it with huge pages, KVM can
 * map the guest with 2 MiB second-level entries and the IOMMU (an IOAS of
 * all guest RAM, or the guest's own mappings) with 2 MiB IOPTEs: fewer
 * levels to walk on every TLB miss, in the guest and in DMA. */
#include "guest_mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const char *guest_mem_thp_dir = "/sys/kernel/mm/transparent_hugepage";

static bool mode_is(const char *dir, const char *file, const char *mode)
{
	char path[512], buf[128] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (!(f = fopen(path, "r")))
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strstr(buf, mode) != NULL;
}

/* 2 MiB transparent huge pages are off on this host: madvise(MADV_HUGEPAGE)
 * succeeds there, but no huge page ever backs the mapping. The 2 MiB size
 * has its own setting (kernels with multi-size THP), which follows the
 * global one when it says "inherit". */
static bool thp_never(void)
{
	const char *d = guest_mem_thp_dir;
	char own[512];

	snprintf(own, sizeof(own), "%s/hugepages-2048kB", d);
	if (mode_is(own, "enabled", "[") && !mode_is(own, "enabled", "[inherit]"))
		return mode_is(own, "enabled", "[never]");
	return mode_is(d, "enabled", "[never]");
}

int guest_mem_alloc(struct guest_mem *m, uint64_t size)
{
	static bool thp_noted;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t span = (size + page - 1) & ~(page - 1);
	uint64_t len = span + GUEST_RAM_ALIGN, skip;
	uint8_t *raw, *p;

	if (size == 0 || len < size)
		return -EINVAL;
	/* Over-allocate by the alignment, then give back the ends. */
	raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return -errno;
	skip = -(uintptr_t)raw & (GUEST_RAM_ALIGN - 1);
	p = raw + skip;
	if (skip)
		munmap(raw, skip);
	munmap(p + span, len - skip - span);
	madvise(p, span, MADV_DONTDUMP);
	m->thp = madvise(p, span, MADV_HUGEPAGE) == 0;
	if (!m->thp && !thp_noted) {
		thp_noted = true;
		fprintf(stderr, "vmm: note: guest RAM in 4 KiB pages: no transparent huge pages "
			"(madvise MADV_HUGEPAGE: %s)\n", strerror(errno));
	} else if (m->thp && !thp_noted && thp_never()) {
		thp_noted = true;
		fprintf(stderr, "vmm: note: guest RAM in 4 KiB pages: the host's 2 MiB "
			"transparent huge pages are set to never (%s)\n", guest_mem_thp_dir);
	}
	m->host = p;
	m->size = size;
	m->low_size = size < GUEST_LOW_RAM_MAX ? size : GUEST_LOW_RAM_MAX;
	m->high_size = size - m->low_size;
	return 0;
}

void guest_mem_free(struct guest_mem *m)
{
	if (m->host)
		munmap(m->host, m->size);
	m->host = NULL;
}
