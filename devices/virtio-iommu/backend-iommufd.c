/* The iommufd backend of the virtio-iommu: see backend-iommufd.h.
 *
 * Calls arrive with the viommu's lock held for writing, from the thread
 * serving the request queue, so the backend's own state needs no lock; the
 * counters are read by --stats after the vCPUs stopped. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/iommufd.h>
#include <linux/virtio_iommu.h>
#include "backend-iommufd.h"
#include "viommu.h"
#include "vm.h"

#define LAT_SAMPLES 4096

struct viommu_iommufd {
	struct viommu *v;
	const struct viommu_iommufd_ops *ops;
	void *ctx;
	const struct guest_mem *mem;
	struct viommu_iommufd_stats st;
	/* Latency of the host map/unmap calls (ring of the latest). */
	uint32_t map_ns[LAT_SAMPLES], unmap_ns[LAT_SAMPLES];
	uint64_t n_map_ns, n_unmap_ns;
};

/* The backend's handle of a domain. */
struct be_dom {
	uint32_t ioas;
	bool bypass;		/* the shared identity IOAS, not ours */
	bool replaying;		/* created, not attached yet: maps are replays */
};

static struct viommu_iommufd *the_backend;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void sample(uint32_t *ring, uint64_t *n, uint64_t ns)
{
	ring[*n % LAT_SAMPLES] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
	(*n)++;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t median(const uint32_t *ring, uint64_t n)
{
	unsigned k = n < LAT_SAMPLES ? (unsigned)n : LAT_SAMPLES;
	if (!k)
		return 0;
	uint32_t *c = malloc(k * sizeof(*c));
	if (!c)
		return 0;
	memcpy(c, ring, k * sizeof(*c));
	qsort(c, k, sizeof(*c), cmp_u32);
	uint64_t m = c[k / 2];
	free(c);
	return m;
}

/* ---- backend ops ---- */

static int be_domain_create(void *opaque, uint32_t domain, bool bypass, void **dom_priv)
{
	struct viommu_iommufd *b = opaque;
	struct be_dom *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->bypass = bypass;
	d->replaying = true;
	r = bypass ? b->ops->identity_ioas(b->ctx, &d->ioas) : b->ops->ioas_alloc(b->ctx, &d->ioas);
	if (r) {
		b->st.errors++;
		fprintf(stderr, "vmm: virtio-iommu: domain %u: cannot create its IOAS: %s\n", domain,
			strerror(-r));
		free(d);
		return r == -ENOMEM ? -ENOMEM : -EIO;
	}
	if (!bypass) {
		b->st.ioas_alloc++;
		b->st.ioas_live++;
	}
	*dom_priv = d;
	return 0;
}

static void be_domain_destroy(void *opaque, uint32_t domain, void *dom_priv)
{
	struct viommu_iommufd *b = opaque;
	struct be_dom *d = dom_priv;

	if (!d)
		return;
	if (!d->bypass) {
		/* Its endpoints were moved away before this: destroying the
		 * IOAS drops (and unpins) whatever it still maps. */
		int r = b->ops->ioas_destroy(b->ctx, d->ioas);
		if (r) {
			b->st.errors++;
			fprintf(stderr, "vmm: virtio-iommu: domain %u: IOAS %u not destroyed: %s\n",
				domain, d->ioas, strerror(-r));
		}
		b->st.ioas_live--;
	}
	free(d);
}

static int attach_to(struct viommu_iommufd *b, struct viommu_iommufd_ep *ep, uint32_t ioas)
{
	if (ep->cur_ioas == ioas)
		return 0;
	b->st.attach++;
	int r = b->ops->attach(b->ctx, ep->devfd, ioas);
	if (r) {
		b->st.errors++;
		fprintf(stderr, "vmm: virtio-iommu: %s: cannot attach to IOAS %u: %s\n", ep->name,
			ioas, strerror(-r));
		return r;
	}
	ep->cur_ioas = ioas;
	return 0;
}

static int be_attach(void *opaque, uint32_t endpoint, void *ep_priv, uint32_t domain,
		     void *dom_priv)
{
	struct viommu_iommufd *b = opaque;
	struct be_dom *d = dom_priv;
	int r = attach_to(b, ep_priv, d->ioas);
	if (!r)
		d->replaying = false;
	/* EADDRINUSE: the domain maps IOVAs this device reserves. */
	return r == -EADDRINUSE ? -EOPNOTSUPP : r ? -EIO : 0;
}

static int be_detach(void *opaque, uint32_t endpoint, void *ep_priv, bool bypass)
{
	struct viommu_iommufd *b = opaque;
	uint32_t ioas;
	int r;

	if (bypass) {
		r = b->ops->identity_ioas(b->ctx, &ioas);
		if (!r && !(r = attach_to(b, ep_priv, ioas)))
			return 0;
		b->st.errors++;
		fprintf(stderr, "vmm: virtio-iommu: endpoint %#x: cannot bypass (%s): its DMA is "
			"blocked instead\n", endpoint, strerror(-r));
	}
	r = b->ops->blocking_ioas(b->ctx, &ioas);
	if (!r)
		r = attach_to(b, ep_priv, ioas);
	if (r) {
		b->st.errors++;
		fprintf(stderr, "vmm: virtio-iommu: endpoint %#x: cannot block its DMA: %s\n",
			endpoint, strerror(-r));
	}
	return r;
}

static int be_map(void *opaque, uint32_t domain, void *dom_priv, uint64_t iova, uint64_t last,
		  uint64_t gpa, uint32_t flags)
{
	struct viommu_iommufd *b = opaque;
	struct be_dom *d = dom_priv;
	uint64_t len = last - iova + 1;
	uint32_t prot = 0;

	if (d->replaying)
		b->st.replay_map++;
	else
		b->st.guest_map++;
	if (last - iova == UINT64_MAX)
		return -ERANGE;		/* the whole 64-bit space: cannot be RAM */
	/* Only guest RAM may be mapped: never hand iommufd a host address
	 * outside it. */
	void *va = gpa_to_hva(b->mem, gpa, len);
	if (!va)
		return -EFAULT;
	if (flags & VIRTIO_IOMMU_MAP_F_READ)
		prot |= IOMMU_IOAS_MAP_READABLE;
	if (flags & VIRTIO_IOMMU_MAP_F_WRITE)
		prot |= IOMMU_IOAS_MAP_WRITEABLE;
	if (!prot) {
		/* A mapping that allows nothing: no DMA either way. */
		b->st.no_access++;
		return 0;
	}
	b->st.ioas_map++;
	uint64_t t0 = now_ns();
	int r = b->ops->map(b->ctx, d->ioas, va, len, iova, prot);
	sample(b->map_ns, &b->n_map_ns, now_ns() - t0);
	if (r) {
		b->st.errors++;
		if (vm_guest_msg_ok())
			fprintf(stderr, "vmm: virtio-iommu: domain %u: IOMMU_IOAS_MAP iova %#" PRIx64
				" len %#" PRIx64 ": %s\n", domain, iova, len, strerror(-r));
		switch (r) {
		case -ENOMEM:
			return -ENOMEM;
		case -EADDRINUSE:	/* a host reserved region */
		case -EEXIST:
			return -EINVAL;
		case -EINVAL:
			return -ERANGE;	/* alignment or range */
		default:
			return -EIO;
		}
	}
	return 0;
}

static int be_unmap(void *opaque, uint32_t domain, void *dom_priv, uint64_t iova, uint64_t last)
{
	struct viommu_iommufd *b = opaque;
	struct be_dom *d = dom_priv;
	uint64_t len = last - iova + 1;	/* 0: the whole space */

	b->st.guest_unmap++;
	b->st.ioas_unmap++;
	uint64_t t0 = now_ns();
	int r = b->ops->unmap(b->ctx, d->ioas, iova, len);
	sample(b->unmap_ns, &b->n_unmap_ns, now_ns() - t0);
	if (r == -ENOENT) {
		b->st.unmap_nothing++;
		return 0;
	}
	if (r) {
		b->st.errors++;
		if (vm_guest_msg_ok())
			fprintf(stderr, "vmm: virtio-iommu: domain %u: IOMMU_IOAS_UNMAP iova %#" PRIx64
				" len %#" PRIx64 ": %s\n", domain, iova, len, strerror(-r));
		return -EIO;
	}
	return 0;
}

const struct viommu_backend_ops viommu_iommufd_backend_ops = {
	.domain_create = be_domain_create,
	.domain_destroy = be_domain_destroy,
	.attach = be_attach,
	.detach = be_detach,
	.map = be_map,
	.unmap = be_unmap,
};

/* ---- setup ---- */

struct viommu_iommufd *viommu_iommufd_get(struct viommu *v, const struct viommu_iommufd_ops *ops,
					  void *ctx, const struct guest_mem *mem)
{
	if (the_backend && the_backend->v == v)
		return the_backend;
	struct viommu_iommufd *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->v = v;
	b->ops = ops;
	b->ctx = ctx;
	b->mem = mem;
	viommu_set_backend(v, &viommu_iommufd_backend_ops, b);
	the_backend = b;
	return b;
}

void viommu_iommufd_free(struct viommu_iommufd *b)
{
	if (the_backend == b)
		the_backend = NULL;
	free(b);
}

int viommu_iommufd_add_endpoint(struct viommu_iommufd *b, struct viommu_iommufd_ep *ep)
{
	struct virtio_iommu_config c;
	int r = viommu_add_endpoint(b->v, ep->endpoint, ep);

	if (r)
		return r;
	/* Unattached: the config's bypass decides (blocking by default). */
	viommu_get_config(b->v, &c);
	uint32_t ioas;
	r = c.bypass ? b->ops->identity_ioas(b->ctx, &ioas) : b->ops->blocking_ioas(b->ctx, &ioas);
	if (!r)
		r = attach_to(b, ep, ioas);
	return r;
}

int viommu_iommufd_constrain(struct viommu *v, uint32_t endpoint,
			     const struct iommu_iova_range *ranges, unsigned n, uint64_t alignment)
{
	if (!n)
		return -EINVAL;
	if (alignment < 4096 || (alignment & (alignment - 1)))
		alignment = 4096;
	int r = viommu_restrict(v, ~(alignment - 1), ranges[0].start, ranges[n - 1].last);
	if (r)
		return r;
	for (unsigned i = 1; i < n; i++) {
		if (ranges[i].start <= ranges[i - 1].last + 1)
			continue;
		r = viommu_endpoint_add_resv(v, endpoint, ranges[i - 1].last + 1, ranges[i].start - 1,
					     VIRTIO_IOMMU_RESV_MEM_T_RESERVED);
		if (r)
			return r;
	}
	return 0;
}

void viommu_iommufd_get_stats(struct viommu_iommufd *b, struct viommu_iommufd_stats *st)
{
	*st = b->st;
	st->map_ns_median = median(b->map_ns, b->n_map_ns);
	st->unmap_ns_median = median(b->unmap_ns, b->n_unmap_ns);
}

void viommu_iommufd_print_stats(struct viommu_iommufd *b, FILE *f)
{
	struct viommu_iommufd_stats st;

	if (!b)
		return;
	viommu_iommufd_get_stats(b, &st);
	fprintf(f, "virtio-iommu/iommufd: guest map %" PRIu64 " -> IOAS_MAP %" PRIu64
		" (replayed %" PRIu64 ", no-access %" PRIu64 "); guest unmap %" PRIu64
		" -> IOAS_UNMAP %" PRIu64 " (nothing there %" PRIu64 "); errors %" PRIu64 "\n",
		st.guest_map, st.ioas_map, st.replay_map, st.no_access, st.guest_unmap,
		st.ioas_unmap, st.unmap_nothing, st.errors);
	fprintf(f, "virtio-iommu/iommufd: attach %" PRIu64 "; domain IOAS created %" PRIu64
		" live %" PRIu64 "; median IOAS_MAP %" PRIu64 " ns, IOAS_UNMAP %" PRIu64 " ns\n",
		st.attach, st.ioas_alloc, st.ioas_live, st.map_ns_median, st.unmap_ns_median);
}
