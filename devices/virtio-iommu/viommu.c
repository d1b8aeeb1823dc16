/* The virtio-iommu device model: see viommu.h. Spec references are to the
 * virtio specification, section "IOMMU device" (device-types/iommu). */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "acpi.h"
#include "devices.h"
#include "iova_map.h"
#include "viommu.h"

#define DOMAIN_BUCKETS 1024

struct viommu_resv {
	uint64_t start, end;
	uint8_t subtype;
};

struct viommu_domain {
	uint32_t id;
	bool bypass;
	struct iova_map map;
	struct viommu_endpoint *eps;	/* attached endpoints */
	struct viommu_domain *hnext;
	void *be_dom;
	bool be_live;			/* the backend holds this domain */
};

struct viommu_endpoint {
	uint32_t id;
	struct viommu *v;
	struct viommu_domain *dom;	/* NULL: not attached */
	struct viommu_endpoint *dnext;	/* in dom->eps */
	void *be_ep;			/* NULL: emulated */
	/* Unattached, and the backend could not block it when bypass was
	 * cleared: it may still reach guest RAM. Retried at every bypass
	 * write and device reset until the backend manages. */
	bool be_stale;
	/* Changes whenever a translation this endpoint may have cached stops
	 * being valid. Values are unique process-wide (see bump()). */
	uint64_t gen;
	unsigned n_resv;
	struct viommu_resv resv[1 + VIOMMU_MAX_RESV];	/* [0]: the MSI window */
};

struct viommu {
	pthread_rwlock_t lock;
	struct viommu_params p;		/* as created (restrictions applied) */
	uint64_t driver_features;
	uint8_t bypass;
	uint16_t bdf;
	struct viommu_endpoint **eps;
	unsigned n_eps, cap_eps;
	struct viommu_domain *buckets[DOMAIN_BUCKETS];
	struct viommu_domain *last_dom;	/* one-entry cache for requests */
	uint32_t n_domains;
	uint64_t n_mappings;
	const struct viommu_backend_ops *be_ops;
	void *be;

	pthread_mutex_t flock;		/* the fault queue */
	struct virtio_iommu_fault *faults;
	unsigned fhead, fcount;
	void (*fault_notify)(void *opaque);
	void *fault_opaque;

	/* Counters: requests are serialised, faults are not: atomics. */
	uint64_t c_req[VIRTIO_IOMMU_T_PROBE + 1];
	uint64_t c_status[VIRTIO_IOMMU_S_NOMEM + 1];
	uint64_t c_unwritten, c_faults, c_faults_dropped, c_delivered, c_miss;
};

#define CNT_INC(x) __atomic_add_fetch(&(x), 1, __ATOMIC_RELAXED)
#define CNT_GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static uint64_t gen_source;

/* A new generation for ep: unique across all endpoints and viommus ever,
 * so a per-thread cache entry can never match a stale endpoint. */
static void bump(struct viommu_endpoint *ep)
{
	uint64_t g = __atomic_add_fetch(&gen_source, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&ep->gen, g, __ATOMIC_RELEASE);
}

static void bump_domain(struct viommu_domain *d)
{
	for (struct viommu_endpoint *ep = d->eps; ep; ep = ep->dnext)
		bump(ep);
}

void viommu_params_default(struct viommu_params *p)
{
	memset(p, 0, sizeof(*p));
	p->features = VIOMMU_DEFAULT_FEATURES;
	p->page_size_mask = ~0xfffULL;
	p->input_start = 0;
	p->input_end = UINT64_MAX;
	p->domain_start = 0;
	p->domain_end = 0xffff;
	/* 24 bytes per RESV_MEM property, rounded up. */
	p->probe_size = 512;
	p->bypass = 0;
	p->max_domains = 0x10000;
	p->max_mappings = 4u << 20;
	p->fault_queue_len = 64;
}

struct viommu *viommu_new(const struct viommu_params *p)
{
	struct viommu *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	if (p)
		v->p = *p;
	else
		viommu_params_default(&v->p);
	if (!v->p.page_size_mask)
		v->p.page_size_mask = ~0xfffULL;
	if (!v->p.fault_queue_len)
		v->p.fault_queue_len = 64;
	v->p.bypass &= 1;
	v->bypass = v->p.bypass;
	v->driver_features = v->p.features;
	v->faults = calloc(v->p.fault_queue_len, sizeof(*v->faults));
	if (!v->faults) {
		free(v);
		return NULL;
	}
	pthread_rwlock_init(&v->lock, NULL);
	pthread_mutex_init(&v->flock, NULL);
	return v;
}

static struct viommu_domain *find_domain(struct viommu *v, uint32_t id)
{
	if (v->last_dom && v->last_dom->id == id)
		return v->last_dom;
	for (struct viommu_domain *d = v->buckets[id % DOMAIN_BUCKETS]; d; d = d->hnext)
		if (d->id == id)
			return v->last_dom = d;
	return NULL;
}

static struct viommu_endpoint *find_ep(struct viommu *v, uint32_t id)
{
	for (unsigned i = 0; i < v->n_eps; i++)
		if (v->eps[i]->id == id)
			return v->eps[i];
	return NULL;
}

static struct viommu_domain *domain_new(struct viommu *v, uint32_t id, bool bypass)
{
	struct viommu_domain *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->id = id;
	d->bypass = bypass;
	iova_map_init(&d->map);
	d->hnext = v->buckets[id % DOMAIN_BUCKETS];
	v->buckets[id % DOMAIN_BUCKETS] = d;
	v->n_domains++;
	return d;
}

static void domain_destroy(struct viommu *v, struct viommu_domain *d)
{
	struct viommu_domain **pp = &v->buckets[d->id % DOMAIN_BUCKETS];
	while (*pp != d)
		pp = &(*pp)->hnext;
	*pp = d->hnext;
	if (v->last_dom == d)
		v->last_dom = NULL;
	if (d->be_live && v->be_ops && v->be_ops->domain_destroy)
		v->be_ops->domain_destroy(v->be, d->id, d->be_dom);
	v->n_mappings -= iova_map_count(&d->map);
	iova_map_destroy(&d->map);
	v->n_domains--;
	free(d);
}

/* Take ep out of its domain (no backend call); the domain goes when empty. */
static void unlink_ep(struct viommu *v, struct viommu_endpoint *ep)
{
	struct viommu_domain *d = ep->dom;
	if (!d)
		return;
	struct viommu_endpoint **pp = &d->eps;
	while (*pp != ep)
		pp = &(*pp)->dnext;
	*pp = ep->dnext;
	ep->dnext = NULL;
	ep->dom = NULL;
	bump(ep);
	if (!d->eps)
		domain_destroy(v, d);
}

void viommu_free(struct viommu *v)
{
	if (!v)
		return;
	viommu_reset(v);
	for (unsigned i = 0; i < v->n_eps; i++)
		free(v->eps[i]);
	free(v->eps);
	free(v->faults);
	pthread_rwlock_destroy(&v->lock);
	pthread_mutex_destroy(&v->flock);
	free(v);
}

void viommu_set_backend(struct viommu *v, const struct viommu_backend_ops *ops, void *be)
{
	pthread_rwlock_wrlock(&v->lock);
	v->be_ops = ops;
	v->be = be;
	pthread_rwlock_unlock(&v->lock);
}

int viommu_restrict(struct viommu *v, uint64_t page_size_mask, uint64_t input_start,
		    uint64_t input_end)
{
	int r = 0;
	pthread_rwlock_wrlock(&v->lock);
	uint64_t mask = v->p.page_size_mask;
	/* The coarser granule wins; larger sizes stay hints both agree on. */
	uint64_t g = (mask & -mask) > (page_size_mask & -page_size_mask) ?
		     (mask & -mask) : (page_size_mask & -page_size_mask);
	uint64_t nmask = (mask & page_size_mask & ~(g - 1)) | g;
	uint64_t s = input_start > v->p.input_start ? input_start : v->p.input_start;
	uint64_t e = input_end < v->p.input_end ? input_end : v->p.input_end;
	if (!page_size_mask || e < s || (e - s < g - 1)) {
		r = -EINVAL;
	} else {
		v->p.page_size_mask = nmask;
		v->p.input_start = s;
		v->p.input_end = e;
	}
	pthread_rwlock_unlock(&v->lock);
	return r;
}

/* Add [start, end] to ep's reserved regions minus what is already there. */
static int add_resv(struct viommu_endpoint *ep, uint64_t start, uint64_t end, uint8_t subtype)
{
	for (unsigned i = 0; i < ep->n_resv; i++) {
		const struct viommu_resv *r = &ep->resv[i];
		if (r->start > end || r->end < start)
			continue;
		int ret = 0;
		uint64_t rs = r->start, re = r->end;
		if (start < rs)
			ret = add_resv(ep, start, rs - 1, subtype);
		if (!ret && end > re)
			ret = add_resv(ep, re + 1, end, subtype);
		return ret;
	}
	if (ep->n_resv >= 1 + VIOMMU_MAX_RESV)
		return -ENOSPC;
	ep->resv[ep->n_resv++] = (struct viommu_resv){ start, end, subtype };
	return 0;
}

int viommu_endpoint_add_resv(struct viommu *v, uint32_t endpoint, uint64_t start,
			     uint64_t end, uint8_t subtype)
{
	if (end < start)
		return -EINVAL;
	pthread_rwlock_wrlock(&v->lock);
	struct viommu_endpoint *ep = find_ep(v, endpoint);
	int r = ep ? add_resv(ep, start, end, subtype) : -ENOENT;
	pthread_rwlock_unlock(&v->lock);
	return r;
}

int viommu_add_endpoint(struct viommu *v, uint32_t endpoint_id, void *be_ep)
{
	int r = 0;
	pthread_rwlock_wrlock(&v->lock);
	if (find_ep(v, endpoint_id)) {
		r = -EEXIST;
		goto out;
	}
	if (v->n_eps == v->cap_eps) {
		unsigned cap = v->cap_eps ? v->cap_eps * 2 : 16;
		void *n = realloc(v->eps, cap * sizeof(*v->eps));
		if (!n) {
			r = -ENOMEM;
			goto out;
		}
		v->eps = n;
		v->cap_eps = cap;
	}
	struct viommu_endpoint *ep = calloc(1, sizeof(*ep));
	if (!ep) {
		r = -ENOMEM;
		goto out;
	}
	ep->id = endpoint_id;
	ep->v = v;
	ep->be_ep = be_ep;
	ep->resv[0] = (struct viommu_resv){ VIOMMU_MSI_START, VIOMMU_MSI_END,
					    VIRTIO_IOMMU_RESV_MEM_T_MSI };
	ep->n_resv = 1;
	bump(ep);
	v->eps[v->n_eps++] = ep;
out:
	pthread_rwlock_unlock(&v->lock);
	return r;
}

int viommu_set_endpoint_id(struct viommu *v, uint32_t old_id, uint32_t new_id)
{
	int r = 0;
	pthread_rwlock_wrlock(&v->lock);
	struct viommu_endpoint *ep = find_ep(v, old_id);
	if (!ep)
		r = -ENOENT;
	else if (old_id != new_id && find_ep(v, new_id))
		r = -EEXIST;
	else
		ep->id = new_id;
	pthread_rwlock_unlock(&v->lock);
	return r;
}

unsigned viommu_endpoint_ids(struct viommu *v, uint32_t *ids, unsigned max)
{
	pthread_rwlock_rdlock(&v->lock);
	unsigned n = v->n_eps;
	for (unsigned i = 0; i < n && i < max; i++)
		ids[i] = v->eps[i]->id;
	pthread_rwlock_unlock(&v->lock);
	return n;
}

uint64_t viommu_device_features(const struct viommu *v)
{
	return v->p.features;
}

void viommu_set_driver_features(struct viommu *v, uint64_t features)
{
	__atomic_store_n(&v->driver_features, features & v->p.features, __ATOMIC_RELAXED);
}

static bool negotiated(const struct viommu *v, unsigned bit)
{
	return __atomic_load_n(&v->driver_features, __ATOMIC_RELAXED) & (1ULL << bit);
}

static bool offered(const struct viommu *v, unsigned bit)
{
	return v->p.features & (1ULL << bit);
}

void viommu_get_config(struct viommu *v, struct virtio_iommu_config *c)
{
	memset(c, 0, sizeof(*c));
	pthread_rwlock_rdlock(&v->lock);
	c->page_size_mask = htole64(v->p.page_size_mask);
	c->input_range.start = htole64(v->p.input_start);
	c->input_range.end = htole64(v->p.input_end);
	c->domain_range.start = htole32(v->p.domain_start);
	c->domain_range.end = htole32(v->p.domain_end);
	c->probe_size = htole32(offered(v, VIRTIO_IOMMU_F_PROBE) ? v->p.probe_size : 0);
	c->bypass = v->bypass;
	pthread_rwlock_unlock(&v->lock);
}

void viommu_config_read(struct viommu *v, uint32_t off, void *data, unsigned len)
{
	struct virtio_iommu_config c;
	viommu_get_config(v, &c);
	memset(data, 0, len);
	if (off < sizeof(c))
		memcpy(data, (uint8_t *)&c + off, len < sizeof(c) - off ? len : sizeof(c) - off);
}

/* Bypass of unattached endpoints changed: their translations change.
 * Endpoints the backend could not block before are tried again even when
 * it did not change. -EIO when one is left unblocked with bypass 0 (the
 * backend's detach falls back to blocking when it cannot bypass, so with
 * bypass 1 a failure leaves the endpoint blocked: safe, not reported). */
static int set_bypass(struct viommu *v, uint8_t b)
{
	bool changed = v->bypass != b;
	int r = 0;

	v->bypass = b;
	for (unsigned i = 0; i < v->n_eps; i++) {
		struct viommu_endpoint *ep = v->eps[i];
		if (ep->dom || (!changed && !ep->be_stale))
			continue;
		if (changed)
			bump(ep);
		if (!ep->be_ep || !v->be_ops || !v->be_ops->detach)
			continue;
		bool failed = v->be_ops->detach(v->be, ep->id, ep->be_ep, b) != 0;
		ep->be_stale = failed && !b;
		if (ep->be_stale)
			r = -EIO;
	}
	return r;
}

bool viommu_unblocked_endpoints(struct viommu *v)
{
	bool any = false;

	pthread_rwlock_rdlock(&v->lock);
	for (unsigned i = 0; i < v->n_eps; i++)
		any |= v->eps[i]->be_stale;	/* (an ATTACH clears it) */
	pthread_rwlock_unlock(&v->lock);
	return any;
}

int viommu_config_write(struct viommu *v, uint32_t off, const void *data, unsigned len)
{
	/* "Device configuration layout": the driver MAY write bypass when
	 * BYPASS_CONFIG is negotiated and MUST NOT write anything else. */
	const uint32_t boff = offsetof(struct virtio_iommu_config, bypass);
	if (!negotiated(v, VIRTIO_IOMMU_F_BYPASS_CONFIG) || off > boff || len == 0 ||
	    boff - off >= len)
		return 0;
	uint8_t b = ((const uint8_t *)data)[boff - off] & 1;
	pthread_rwlock_wrlock(&v->lock);
	int r = set_bypass(v, b);
	pthread_rwlock_unlock(&v->lock);
	return r;
}

/* A passthrough endpoint the backend could not move off its domain at
 * reset: the domain stays (its host object cannot go while the device is
 * attached to it), emptied, so the device reaches nothing the guest had
 * mapped; the guest's next ATTACH of the endpoint moves it as usual. */
static void keep_emptied(struct viommu *v, struct viommu_endpoint *ep)
{
	struct viommu_domain *d = ep->dom;

	fprintf(stderr, "vmm: virtio-iommu: endpoint %#x: could not be detached at reset; its "
		"domain %u is kept, emptied\n", ep->id, d->id);
	if (d->be_live && v->be_ops->unmap && iova_map_count(&d->map))
		v->be_ops->unmap(v->be, d->id, d->be_dom, 0, UINT64_MAX);
	v->n_mappings -= iova_map_count(&d->map);
	iova_map_destroy(&d->map);
	bump(ep);
}

static void reset_locked(struct viommu *v)
{
	for (unsigned i = 0; i < v->n_eps; i++) {
		struct viommu_endpoint *ep = v->eps[i];
		if (ep->dom && ep->be_ep && v->be_ops && v->be_ops->detach &&
		    v->be_ops->detach(v->be, ep->id, ep->be_ep, v->bypass)) {
			keep_emptied(v, ep);
			continue;
		}
		unlink_ep(v, ep);
		bump(ep);
	}
	/* Every domain had an endpoint, so they are all gone now (but those
	 * kept for an endpoint that could not leave them). An endpoint left
	 * unblocked by an earlier bypass write is tried again. */
	(void)set_bypass(v, v->bypass);
	v->driver_features = v->p.features;
}

void viommu_reset(struct viommu *v)
{
	pthread_rwlock_wrlock(&v->lock);
	reset_locked(v);
	pthread_rwlock_unlock(&v->lock);
	pthread_mutex_lock(&v->flock);
	v->fhead = v->fcount = 0;
	pthread_mutex_unlock(&v->flock);
}

void viommu_system_reset(struct viommu *v)
{
	viommu_reset(v);
	pthread_rwlock_wrlock(&v->lock);
	(void)set_bypass(v, v->p.bypass);	/* a failure is said by the backend */
	pthread_rwlock_unlock(&v->lock);
}

/* ---- Request parsing helpers: never touch bytes outside the iovecs. ---- */

static size_t iov_total(const struct iovec *iov, unsigned n)
{
	size_t t = 0;
	for (unsigned i = 0; i < n; i++) {
		if (t + iov[i].iov_len < t)
			return SIZE_MAX;
		t += iov[i].iov_len;
	}
	return t;
}

static size_t iov_read(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t c = iov[i].iov_len - off;
		if (c > len - done)
			c = len - done;
		memcpy((uint8_t *)buf + done, (const uint8_t *)iov[i].iov_base + off, c);
		done += c;
		off = 0;
	}
	return done;
}

/* Write len bytes of buf (NULL: zeroes) at off. */
static size_t iov_write(const struct iovec *iov, unsigned n, size_t off, const void *buf,
			size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t c = iov[i].iov_len - off;
		if (c > len - done)
			c = len - done;
		if (buf)
			memcpy((uint8_t *)iov[i].iov_base + off, (const uint8_t *)buf + done, c);
		else
			memset((uint8_t *)iov[i].iov_base + off, 0, c);
		done += c;
		off = 0;
	}
	return done;
}

static uint8_t errno_status(int e)
{
	switch (e) {
	case 0:
		return VIRTIO_IOMMU_S_OK;
	case -ENOMEM:
	case -ENOSPC:
		return VIRTIO_IOMMU_S_NOMEM;
	case -EINVAL:
	case -EEXIST:
		return VIRTIO_IOMMU_S_INVAL;
	case -ERANGE:
		return VIRTIO_IOMMU_S_RANGE;
	case -ENOENT:
		return VIRTIO_IOMMU_S_NOENT;
	case -EFAULT:
		return VIRTIO_IOMMU_S_FAULT;
	case -EOPNOTSUPP:
		return VIRTIO_IOMMU_S_UNSUPP;
	default:
		return VIRTIO_IOMMU_S_DEVERR;
	}
}

static bool domain_in_range(const struct viommu *v, uint32_t dom)
{
	if (!offered(v, VIRTIO_IOMMU_F_DOMAIN_RANGE))
		return true;
	return dom >= v->p.domain_start && dom <= v->p.domain_end;
}

static bool input_in_range(const struct viommu *v, uint64_t s, uint64_t e)
{
	if (!offered(v, VIRTIO_IOMMU_F_INPUT_RANGE))
		return true;
	return s >= v->p.input_start && e <= v->p.input_end;
}

/* Does [s, e] meet a reserved region of an endpoint attached to d? */
static bool hits_resv_of(const struct viommu_endpoint *ep, uint64_t s, uint64_t e)
{
	for (unsigned i = 0; i < ep->n_resv; i++)
		if (ep->resv[i].start <= e && ep->resv[i].end >= s)
			return true;
	return false;
}

/* Does the domain hold a mapping in one of ep's reserved regions? */
static bool map_hits_resv(const struct viommu_domain *d, const struct viommu_endpoint *ep)
{
	for (unsigned i = 0; i < ep->n_resv; i++)
		if (iova_map_overlaps(&d->map, ep->resv[i].start, ep->resv[i].end))
			return true;
	return false;
}

struct replay_ctx {
	struct viommu *v;
	struct viommu_domain *d;
};

static int replay_one(void *opaque, const struct iova_mapping *e)
{
	struct replay_ctx *c = opaque;
	return c->v->be_ops->map(c->v->be, c->d->id, c->d->be_dom, e->start, e->end, e->phys,
				 e->flags);
}

/* The backend forgets d (its host object goes). */
static void backend_domain_drop(struct viommu *v, struct viommu_domain *d)
{
	if (d->be_live && v->be_ops->domain_destroy)
		v->be_ops->domain_destroy(v->be, d->id, d->be_dom);
	d->be_live = false;
	d->be_dom = NULL;
}

/* The backend learns about d (first backend endpoint): create and replay. */
static int backend_domain_live(struct viommu *v, struct viommu_domain *d)
{
	if (d->be_live)
		return 0;
	if (!v->be_ops)
		return -EOPNOTSUPP;
	if (v->be_ops->domain_create) {
		int r = v->be_ops->domain_create(v->be, d->id, d->bypass, &d->be_dom);
		if (r)
			return r;
	}
	d->be_live = true;
	if (v->be_ops->map && iova_map_count(&d->map)) {
		struct replay_ctx c = { v, d };
		int r = iova_map_foreach(&d->map, replay_one, &c);
		if (r) {
			backend_domain_drop(v, d);
			return r < 0 ? r : -EIO;
		}
	}
	return 0;
}

/* ---- Requests. Each returns the status. ---- */

static uint8_t do_attach(struct viommu *v, const struct virtio_iommu_req_attach *r)
{
	uint32_t domain = le32toh(r->domain), endpoint = le32toh(r->endpoint);
	uint32_t flags = le32toh(r->flags);
	uint32_t known = negotiated(v, VIRTIO_IOMMU_F_BYPASS_CONFIG) ?
			 VIRTIO_IOMMU_ATTACH_F_BYPASS : 0;
	static const uint8_t zero[4];

	/* "ATTACH request" device requirements: reserved not zero -> INVAL;
	 * an unrecognised flags bit -> INVAL. */
	if (memcmp(r->reserved, zero, sizeof(r->reserved)))
		return VIRTIO_IOMMU_S_INVAL;
	if (flags & ~known)
		return VIRTIO_IOMMU_S_INVAL;
	if (!domain_in_range(v, domain))
		return VIRTIO_IOMMU_S_RANGE;
	struct viommu_endpoint *ep = find_ep(v, endpoint);
	if (!ep)
		return VIRTIO_IOMMU_S_NOENT;
	bool bypass = flags & VIRTIO_IOMMU_ATTACH_F_BYPASS;
	struct viommu_domain *d = find_domain(v, domain);
	if (d) {
		/* "the VIRTIO_IOMMU_ATTACH_F_BYPASS flag is not consistent with
		 * that domain" -> INVAL. */
		if (d->bypass != bypass)
			return VIRTIO_IOMMU_S_INVAL;
		if (ep->dom == d)
			return VIRTIO_IOMMU_S_OK;
		/* Properties (reserved regions) incompatible with the domain's
		 * mappings -> UNSUPP. */
		if (map_hits_resv(d, ep))
			return VIRTIO_IOMMU_S_UNSUPP;
	} else {
		if (v->n_domains >= v->p.max_domains)
			return VIRTIO_IOMMU_S_NOMEM;
		d = domain_new(v, domain, bypass);
		if (!d)
			return VIRTIO_IOMMU_S_NOMEM;
	}
	if (ep->be_ep) {
		bool was_live = d->be_live;
		int e = backend_domain_live(v, d);
		if (!e && v->be_ops->attach)
			e = v->be_ops->attach(v->be, ep->id, ep->be_ep, d->id, d->be_dom);
		if (e) {
			/* Joining a domain that has endpoints already: one it
			 * cannot join is UNSUPP ("ATTACH request"), whatever
			 * the backend's reason. The host object made for it
			 * goes (its other endpoints are emulated ones). */
			if (d->eps) {
				if (!was_live)
					backend_domain_drop(v, d);
				return VIRTIO_IOMMU_S_UNSUPP;
			}
			domain_destroy(v, d);
			return errno_status(e);
		}
		ep->be_stale = false;
	}
	/* Implicit detach from the previous domain ("as if the driver issued
	 * a DETACH request"): the backend attach above replaced it. */
	unlink_ep(v, ep);
	ep->dom = d;
	ep->dnext = d->eps;
	d->eps = ep;
	bump(ep);
	return VIRTIO_IOMMU_S_OK;
}

static uint8_t do_detach(struct viommu *v, const struct virtio_iommu_req_detach *r)
{
	uint32_t domain = le32toh(r->domain), endpoint = le32toh(r->endpoint);
	/* "DETACH request": reserved is ignored. */
	if (!domain_in_range(v, domain))
		return VIRTIO_IOMMU_S_RANGE;
	struct viommu_endpoint *ep = find_ep(v, endpoint);
	if (!ep)
		return VIRTIO_IOMMU_S_NOENT;
	struct viommu_domain *d = find_domain(v, domain);
	/* Domain unknown, or endpoint not attached to it: MAY INVAL. */
	if (!d || ep->dom != d)
		return VIRTIO_IOMMU_S_INVAL;
	/* The endpoint must not reach the domain's mappings after a DETACH:
	 * if the backend cannot move it off them, it stays attached (the
	 * guest may retry) and the request fails. */
	if (ep->be_ep && v->be_ops && v->be_ops->detach &&
	    v->be_ops->detach(v->be, ep->id, ep->be_ep, v->bypass))
		return VIRTIO_IOMMU_S_DEVERR;
	unlink_ep(v, ep);
	return VIRTIO_IOMMU_S_OK;
}

static uint8_t do_map(struct viommu *v, const struct virtio_iommu_req_map *r)
{
	uint32_t domain = le32toh(r->domain), flags = le32toh(r->flags);
	uint64_t vs = le64toh(r->virt_start), ve = le64toh(r->virt_end);
	uint64_t ps = le64toh(r->phys_start);
	uint32_t known = VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE;

	if (!negotiated(v, VIRTIO_IOMMU_F_MAP_UNMAP))
		return VIRTIO_IOMMU_S_UNSUPP;
	if (negotiated(v, VIRTIO_IOMMU_F_MMIO))
		known |= VIRTIO_IOMMU_MAP_F_MMIO;
	/* "MAP request": unrecognised flags bit -> INVAL (MMIO is only
	 * recognised with VIRTIO_IOMMU_F_MMIO). */
	if (flags & ~known)
		return VIRTIO_IOMMU_S_INVAL;
	if (!domain_in_range(v, domain))
		return VIRTIO_IOMMU_S_RANGE;
	struct viommu_domain *d = find_domain(v, domain);
	if (!d)
		return VIRTIO_IOMMU_S_NOENT;
	if (d->bypass)
		return VIRTIO_IOMMU_S_INVAL;
	/* virt_end MUST be greater than virt_start (driver); a reversed range
	 * is invalid. */
	if (ve < vs)
		return VIRTIO_IOMMU_S_INVAL;
	uint64_t gran = v->p.page_size_mask & -v->p.page_size_mask;
	if ((vs | ps | (ve + 1)) & (gran - 1))
		return VIRTIO_IOMMU_S_RANGE;
	if (!input_in_range(v, vs, ve))
		return VIRTIO_IOMMU_S_RANGE;
	if (ps + (ve - vs) < ps)
		return VIRTIO_IOMMU_S_RANGE;	/* physical range wraps */
	if (iova_map_overlaps(&d->map, vs, ve))
		return VIRTIO_IOMMU_S_INVAL;
	/* "Property RESV_MEM": SHOULD reject a MAP overlapping a RESV_MEM
	 * region (of any endpoint attached to the domain). */
	for (struct viommu_endpoint *ep = d->eps; ep; ep = ep->dnext)
		if (hits_resv_of(ep, vs, ve))
			return VIRTIO_IOMMU_S_INVAL;
	if (v->n_mappings >= v->p.max_mappings)
		return VIRTIO_IOMMU_S_NOMEM;
	if (d->be_live && v->be_ops->map) {
		int e = v->be_ops->map(v->be, d->id, d->be_dom, vs, ve, ps, flags);
		if (e)
			return errno_status(e);
	}
	int e = iova_map_insert(&d->map, vs, ve, ps, flags);
	if (e) {
		if (d->be_live && v->be_ops->unmap)
			v->be_ops->unmap(v->be, d->id, d->be_dom, vs, ve);
		return errno_status(e);
	}
	v->n_mappings++;
	return VIRTIO_IOMMU_S_OK;
}

static uint8_t do_unmap(struct viommu *v, const struct virtio_iommu_req_unmap *r)
{
	uint32_t domain = le32toh(r->domain);
	uint64_t vs = le64toh(r->virt_start), ve = le64toh(r->virt_end);
	static const uint8_t zero[4];

	if (!negotiated(v, VIRTIO_IOMMU_F_MAP_UNMAP))
		return VIRTIO_IOMMU_S_UNSUPP;
	/* "UNMAP request": reserved not zero MAY be INVAL; we do not unmap
	 * then. */
	if (memcmp(r->reserved, zero, sizeof(r->reserved)))
		return VIRTIO_IOMMU_S_INVAL;
	if (!domain_in_range(v, domain))
		return VIRTIO_IOMMU_S_RANGE;
	struct viommu_domain *d = find_domain(v, domain);
	if (!d)
		return VIRTIO_IOMMU_S_NOENT;
	if (d->bypass)
		return VIRTIO_IOMMU_S_INVAL;
	if (ve < vs)
		return VIRTIO_IOMMU_S_INVAL;
	if (!input_in_range(v, vs, ve))
		return VIRTIO_IOMMU_S_RANGE;
	/* Would split a mapping -> RANGE, nothing removed. */
	int e;
	/* A strict-mode guest unmaps exactly what it mapped: one lookup
	 * says the range splits nothing and is not empty. */
	const struct iova_mapping *one = iova_map_exact(&d->map, vs, ve);
	if (!one) {
		e = iova_map_check_remove(&d->map, vs, ve);
		if (e)
			return errno_status(e);
		if (!iova_map_overlaps(&d->map, vs, ve))
			return VIRTIO_IOMMU_S_OK;	/* nothing there: success */
	}
	if (d->be_live && v->be_ops->unmap) {
		e = v->be_ops->unmap(v->be, d->id, d->be_dom, vs, ve);
		if (e)
			return errno_status(e);
	}
	size_t n = 1;
	if (one)	/* the backend leaves d->map alone: still valid */
		iova_map_remove_one(&d->map, one);
	else
		iova_map_remove(&d->map, vs, ve, NULL, NULL, &n);
	v->n_mappings -= n;
	bump_domain(d);
	return VIRTIO_IOMMU_S_OK;
}

struct probe_out {
	const struct iovec *in;
	unsigned n_in;
	size_t off, room;
};

static uint8_t do_probe(struct viommu *v, const struct virtio_iommu_req_probe *r,
			struct probe_out *po)
{
	/* "PROBE request": the properties list smaller than probe_size ->
	 * write no property, INVAL. reserved is ignored. */
	if (po->room < v->p.probe_size)
		return VIRTIO_IOMMU_S_INVAL;
	struct viommu_endpoint *ep = find_ep(v, le32toh(r->endpoint));
	if (!ep)
		return VIRTIO_IOMMU_S_NOENT;
	for (unsigned i = 0; i < ep->n_resv; i++) {
		struct virtio_iommu_probe_resv_mem p;
		if (po->off + sizeof(p) > v->p.probe_size)
			break;
		memset(&p, 0, sizeof(p));
		p.head.type = htole16(VIRTIO_IOMMU_PROBE_T_RESV_MEM);
		p.head.length = htole16(sizeof(p) - sizeof(p.head));
		p.subtype = ep->resv[i].subtype;
		p.start = htole64(ep->resv[i].start);
		p.end = htole64(ep->resv[i].end);
		iov_write(po->in, po->n_in, po->off, &p, sizeof(p));
		po->off += sizeof(p);
	}
	return VIRTIO_IOMMU_S_OK;
}

int viommu_handle_request(struct viommu *v, const struct iovec *out, unsigned n_out,
			  const struct iovec *in, unsigned n_in, uint32_t *written)
{
	union {
		struct virtio_iommu_req_head head;
		struct virtio_iommu_req_attach attach;
		struct virtio_iommu_req_detach detach;
		struct virtio_iommu_req_map map;
		struct virtio_iommu_req_unmap unmap;
		struct virtio_iommu_req_probe probe;
		uint8_t raw[sizeof(struct virtio_iommu_req_probe)];
	} req;
	size_t out_len = iov_total(out, n_out), in_len = iov_total(in, n_in);
	struct virtio_iommu_req_tail tail = { 0 };
	struct probe_out po = { in, n_in, 0, 0 };
	unsigned type = 0;

	*written = 0;
	/* "Device operations": a request whose tail cannot be found is
	 * returned without being written. */
	if (in_len < sizeof(tail) || in_len > VIOMMU_MAX_WRITABLE) {
		CNT_INC(v->c_unwritten);
		return -1;
	}
	po.room = in_len - sizeof(tail);
	if (out_len < sizeof(req.head)) {
		tail.status = VIRTIO_IOMMU_S_IOERR;
		goto reply;
	}
	/* One copy of as much as the largest request: what the type needs
	 * is checked below. */
	iov_read(out, n_out, 0, &req, out_len < sizeof(req) ? out_len : sizeof(req));
	size_t need;
	switch (req.head.type) {
	case VIRTIO_IOMMU_T_ATTACH:
		need = offsetof(struct virtio_iommu_req_attach, tail);
		break;
	case VIRTIO_IOMMU_T_DETACH:
		need = offsetof(struct virtio_iommu_req_detach, tail);
		break;
	case VIRTIO_IOMMU_T_MAP:
		need = offsetof(struct virtio_iommu_req_map, tail);
		break;
	case VIRTIO_IOMMU_T_UNMAP:
		need = offsetof(struct virtio_iommu_req_unmap, tail);
		break;
	case VIRTIO_IOMMU_T_PROBE:
		/* Without VIRTIO_IOMMU_F_PROBE offered: not written, used
		 * length zero. */
		if (!offered(v, VIRTIO_IOMMU_F_PROBE)) {
			CNT_INC(v->c_req[0]);
			CNT_INC(v->c_unwritten);
			return -1;
		}
		need = sizeof(struct virtio_iommu_req_probe);
		break;
	default:
		/* "If a request type is not recognized, the device SHOULD NOT
		 * write the buffer and SHOULD set the used length to zero." */
		CNT_INC(v->c_req[0]);
		CNT_INC(v->c_unwritten);
		return -1;
	}
	type = req.head.type;
	if (out_len < need) {
		tail.status = VIRTIO_IOMMU_S_IOERR;
		goto reply;
	}
	if (type == VIRTIO_IOMMU_T_PROBE) {
		pthread_rwlock_rdlock(&v->lock);
		tail.status = do_probe(v, &req.probe, &po);
		pthread_rwlock_unlock(&v->lock);
	} else {
		pthread_rwlock_wrlock(&v->lock);
		switch (type) {
		case VIRTIO_IOMMU_T_ATTACH:
			tail.status = do_attach(v, &req.attach);
			break;
		case VIRTIO_IOMMU_T_DETACH:
			tail.status = do_detach(v, &req.detach);
			break;
		case VIRTIO_IOMMU_T_MAP:
			tail.status = do_map(v, &req.map);
			break;
		default:
			tail.status = do_unmap(v, &req.unmap);
			break;
		}
		pthread_rwlock_unlock(&v->lock);
	}
reply:
	/* Zero what is not a property ("SHOULD fill the remaining bytes of
	 * properties with zeroes"), then the tail, always the last 4 bytes. */
	if (po.room > po.off)
		iov_write(in, n_in, po.off, NULL, po.room - po.off);
	iov_write(in, n_in, po.room, &tail, sizeof(tail));
	*written = (uint32_t)in_len;
	CNT_INC(v->c_req[type]);
	CNT_INC(v->c_status[tail.status]);
	return tail.status;
}

/* ---- Faults. ---- */

void viommu_set_fault_notify(struct viommu *v, void (*fn)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&v->flock);
	v->fault_notify = fn;
	v->fault_opaque = opaque;
	pthread_mutex_unlock(&v->flock);
}

void viommu_report_fault(struct viommu *v, uint8_t reason, uint32_t flags, uint32_t endpoint,
			 uint64_t address)
{
	struct virtio_iommu_fault f;
	memset(&f, 0, sizeof(f));
	f.reason = reason;
	f.flags = htole32(flags);
	f.endpoint = htole32(endpoint);
	f.address = htole64(flags & VIRTIO_IOMMU_FAULT_F_ADDRESS ? address : 0);
	pthread_mutex_lock(&v->flock);
	if (v->fcount == v->p.fault_queue_len) {
		pthread_mutex_unlock(&v->flock);
		CNT_INC(v->c_faults_dropped);
		return;
	}
	v->faults[(v->fhead + v->fcount) % v->p.fault_queue_len] = f;
	v->fcount++;
	void (*fn)(void *) = v->fault_notify;
	void *opaque = v->fault_opaque;
	pthread_mutex_unlock(&v->flock);
	CNT_INC(v->c_faults);
	if (fn)
		fn(opaque);
}

bool viommu_peek_fault(struct viommu *v, struct virtio_iommu_fault *f)
{
	pthread_mutex_lock(&v->flock);
	bool any = v->fcount > 0;
	if (any)
		*f = v->faults[v->fhead];
	pthread_mutex_unlock(&v->flock);
	return any;
}

bool viommu_pop_fault(struct viommu *v, struct virtio_iommu_fault *f)
{
	pthread_mutex_lock(&v->flock);
	bool any = v->fcount > 0;
	if (any) {
		if (f)
			*f = v->faults[v->fhead];
		v->fhead = (v->fhead + 1) % v->p.fault_queue_len;
		v->fcount--;
	}
	pthread_mutex_unlock(&v->flock);
	return any;
}

/* ---- Translation for emulated devices. ---- */

struct tcache_ent {
	const struct viommu_endpoint *ep;
	uint64_t gen;
	struct iova_mapping m;
};

#define TCACHE_WAYS 4
static __thread struct tcache_ent tcache[TCACHE_WAYS];
static __thread unsigned tcache_next;

static void *viommu_translate(struct dma_space *s, uint64_t iova, uint64_t len,
			      enum dma_access acc, uint64_t *run, int *fault)
{
	struct viommu_endpoint *ep = s->iommu;
	struct viommu *v = ep->v;
	uint32_t fflags = (acc == DMA_WRITE ? VIRTIO_IOMMU_FAULT_F_WRITE : VIRTIO_IOMMU_FAULT_F_READ) |
			  VIRTIO_IOMMU_FAULT_F_ADDRESS;
	uint8_t reason;
	struct iova_mapping m;
	const struct tcache_ent *hit = NULL;

	if (len == 0 || !s->mem) {
		*fault = -EFAULT;
		return NULL;
	}
	uint64_t gen = __atomic_load_n(&ep->gen, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < TCACHE_WAYS; i++) {
		const struct tcache_ent *c = &tcache[i];
		if (c->ep == ep && c->gen == gen && iova >= c->m.start && iova <= c->m.end) {
			hit = c;
			break;
		}
	}
	if (hit) {
		m = hit->m;
	} else {
		bool ok = true;
		CNT_INC(v->c_miss);
		pthread_rwlock_rdlock(&v->lock);
		gen = __atomic_load_n(&ep->gen, __ATOMIC_ACQUIRE);
		const struct viommu_domain *d = ep->dom;
		if ((!d && v->bypass) || (d && d->bypass)) {
			/* "All accesses from an endpoint in bypass mode are
			 * allowed and translated using the identity function." */
			m = (struct iova_mapping){ 0, UINT64_MAX, 0,
						   VIRTIO_IOMMU_MAP_F_READ | VIRTIO_IOMMU_MAP_F_WRITE };
		} else if (!d) {
			ok = false;
			reason = VIRTIO_IOMMU_FAULT_R_DOMAIN;
		} else {
			ok = iova_map_find(&d->map, iova, &m);
			reason = VIRTIO_IOMMU_FAULT_R_MAPPING;
		}
		pthread_rwlock_unlock(&v->lock);
		if (!ok) {
			*fault = -EFAULT;
			goto report;
		}
		struct tcache_ent *c = &tcache[tcache_next++ % TCACHE_WAYS];
		c->ep = ep;
		c->gen = gen;
		c->m = m;
	}
	/* "MUST NOT allow writes to a range mapped without
	 * VIRTIO_IOMMU_MAP_F_WRITE"; reads need F_READ. */
	if (!(m.flags & (acc == DMA_WRITE ? VIRTIO_IOMMU_MAP_F_WRITE : VIRTIO_IOMMU_MAP_F_READ))) {
		*fault = -EPERM;
		reason = VIRTIO_IOMMU_FAULT_R_MAPPING;
		goto report;
	}
	uint64_t avail = m.end - iova;		/* bytes after iova in the mapping */
	uint64_t r = len - 1 <= avail ? len : avail + 1;
	uint64_t gpa = m.phys + (iova - m.start);
	uint64_t ext = gpa < m.phys ? 0 : gpa_ram_extent(s->mem, gpa);
	if (r > ext)
		r = ext;
	void *hva = r ? gpa_to_hva(s->mem, gpa, r) : NULL;
	if (!hva) {
		/* Mapped, but not to guest RAM: never touch the host there. */
		*fault = -EFAULT;
		reason = VIRTIO_IOMMU_FAULT_R_UNKNOWN;
		goto report;
	}
	*run = r;
	return hva;
report:
	viommu_report_fault(v, reason, fflags, ep->id, iova);
	return NULL;
}

int viommu_endpoint_dma_init(struct viommu *v, uint32_t endpoint_id, struct dma_space *s)
{
	if (!v)
		return -ENODEV;
	pthread_rwlock_rdlock(&v->lock);
	struct viommu_endpoint *ep = find_ep(v, endpoint_id);
	pthread_rwlock_unlock(&v->lock);
	if (!ep) {
		int r = viommu_add_endpoint(v, endpoint_id, NULL);
		if (r && r != -EEXIST)
			return r;
		pthread_rwlock_rdlock(&v->lock);
		ep = find_ep(v, endpoint_id);
		pthread_rwlock_unlock(&v->lock);
		if (!ep)
			return -ENOENT;
	}
	s->translate = viommu_translate;
	s->iommu = ep;
	s->gen = &ep->gen;
	return 0;
}

/* ---- Topology for the VIOT. ---- */

void viommu_set_bdf(struct viommu *v, uint16_t bdf)
{
	v->bdf = bdf;
}

uint16_t viommu_bdf(struct viommu *v)
{
	return v->bdf;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Endpoint IDs that are PCI BDFs, sorted and merged into ranges. */
unsigned viommu_pci_ranges(struct viommu *v, struct acpi_pci_endpoint_range *r, unsigned max)
{
	pthread_rwlock_rdlock(&v->lock);
	unsigned n = 0, k = 0;
	uint32_t *ids = malloc((v->n_eps + 1) * sizeof(*ids));
	if (ids) {
		for (unsigned i = 0; i < v->n_eps; i++)
			if (v->eps[i]->id <= 0xffff)
				ids[k++] = v->eps[i]->id;
	}
	pthread_rwlock_unlock(&v->lock);
	if (!ids)
		return 0;
	qsort(ids, k, sizeof(*ids), cmp_u32);
	for (unsigned i = 0; i < k; i++) {
		if (n && r[n - 1].bdf_end + 1u == ids[i]) {
			r[n - 1].bdf_end = ids[i];
			continue;
		}
		if (n == max)
			break;
		r[n].bdf_start = r[n].bdf_end = ids[i];
		n++;
	}
	free(ids);
	return n;
}

int viommu_selfcheck(struct viommu *v)
{
	int r = 0;
	uint64_t maps = 0;
	uint32_t doms = 0;
	pthread_rwlock_rdlock(&v->lock);
	for (unsigned b = 0; b < DOMAIN_BUCKETS && !r; b++) {
		for (struct viommu_domain *d = v->buckets[b]; d && !r; d = d->hnext) {
			doms++;
			maps += iova_map_count(&d->map);
			if (d->id % DOMAIN_BUCKETS != b)
				r = -1;
			else if (!d->eps)
				r = -2;
			else if (iova_map_validate(&d->map))
				r = -3;
			else if (d->bypass && iova_map_count(&d->map))
				r = -4;
			for (struct viommu_endpoint *ep = d->eps; ep && !r; ep = ep->dnext)
				if (ep->dom != d)
					r = -5;
		}
	}
	if (!r && (doms != v->n_domains || maps != v->n_mappings))
		r = -6;
	for (unsigned i = 0; i < v->n_eps && !r; i++) {
		struct viommu_endpoint *ep = v->eps[i];
		if (!ep->dom)
			continue;
		struct viommu_endpoint *x = ep->dom->eps;
		while (x && x != ep)
			x = x->dnext;
		if (!x)
			r = -7;
	}
	if (!r && v->bypass > 1)
		r = -8;
	pthread_rwlock_unlock(&v->lock);
	return r;
}

/* ---- Counters. ---- */

void viommu_count_delivered(struct viommu *v)
{
	CNT_INC(v->c_delivered);
}

void viommu_get_stats(struct viommu *v, struct viommu_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i <= VIRTIO_IOMMU_T_PROBE; i++)
		st->req[i] = CNT_GET(v->c_req[i]);
	for (unsigned i = 0; i <= VIRTIO_IOMMU_S_NOMEM; i++)
		st->status[i] = CNT_GET(v->c_status[i]);
	st->unwritten = CNT_GET(v->c_unwritten);
	st->faults = CNT_GET(v->c_faults);
	st->faults_dropped = CNT_GET(v->c_faults_dropped);
	st->faults_delivered = CNT_GET(v->c_delivered);
	st->translate_miss = CNT_GET(v->c_miss);
	pthread_rwlock_rdlock(&v->lock);
	st->domains = v->n_domains;
	st->mappings = v->n_mappings;
	pthread_rwlock_unlock(&v->lock);
}

void viommu_dump_stats(struct viommu *v, FILE *f)
{
	static const char *const tn[] = { "unknown", "attach", "detach", "map", "unmap", "probe" };
	static const char *const sn[] = { "ok", "ioerr", "unsupp", "deverr", "inval",
					  "range", "noent", "fault", "nomem" };
	struct viommu_stats st;
	viommu_get_stats(v, &st);
	fprintf(f, "virtio-iommu: requests:");
	for (unsigned i = 1; i <= VIRTIO_IOMMU_T_PROBE; i++)
		fprintf(f, " %s %" PRIu64, tn[i], st.req[i]);
	fprintf(f, " %s %" PRIu64 "\n", tn[0], st.req[0]);
	fprintf(f, "virtio-iommu: status:");
	for (unsigned i = 0; i <= VIRTIO_IOMMU_S_NOMEM; i++)
		fprintf(f, " %s %" PRIu64, sn[i], st.status[i]);
	fprintf(f, " unwritten %" PRIu64 "\n", st.unwritten);
	fprintf(f, "virtio-iommu: faults %" PRIu64 " delivered %" PRIu64 " dropped %" PRIu64
		   "; translate misses %" PRIu64 "; live domains %" PRIu64 " mappings %" PRIu64 "\n",
		st.faults, st.faults_delivered, st.faults_dropped, st.translate_miss, st.domains,
		st.mappings);
}
