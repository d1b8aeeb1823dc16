/* Device DMA address translation: GPAs checked against guest RAM, or IOVAs
 * through an IOMMU hook. See dma.h. */
#include <errno.h>
#include "dma.h"

/* Translate one run starting at addr (at most len bytes). Returns the host
 * address and sets *run, or NULL with *err set. */
static void *dma_run(struct dma_space *s, uint64_t addr, uint64_t len,
		     enum dma_access acc, uint64_t *run, int *err)
{
	if (!s->translate) {
		void *p = gpa_to_hva(s->mem, addr, len);

		if (!p) {
			*err = -EFAULT;
			return NULL;
		}
		*run = len;
		return p;
	}
	int fault = -EFAULT;
	uint64_t r = 0;
	void *p = s->translate(s, addr, len, acc, &r, &fault);

	if (!p || r == 0 || r > len) {
		*err = fault < 0 ? fault : -EFAULT;
		return NULL;
	}
	*run = r;
	return p;
}

int dma_translate(struct dma_space *s, uint64_t addr, uint64_t len,
		  enum dma_access acc, struct iovec *iov, int max)
{
	int n = 0;

	if (len == 0 || addr + len < addr)
		return -EINVAL;
	while (len) {
		uint64_t run;
		int err = 0;
		void *p = dma_run(s, addr, len, acc, &run, &err);

		if (!p)
			return err;
		if (n > 0 && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == p) {
			iov[n - 1].iov_len += run;
		} else {
			if (n >= max)
				return -E2BIG;
			iov[n].iov_base = p;
			iov[n].iov_len = run;
			n++;
		}
		addr += run;
		len -= run;
	}
	return n;
}

void *dma_map_contig(struct dma_space *s, uint64_t addr, uint64_t len,
		     enum dma_access acc)
{
	struct iovec iov;

	if (dma_translate(s, addr, len, acc, &iov, 1) != 1)
		return NULL;
	return iov.iov_base;
}
