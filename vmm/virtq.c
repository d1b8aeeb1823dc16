/* Split virtqueues, device side (virtio 1.2, 2.7). See virtq.h.
 *
 * The rings live in guest memory that the driver writes concurrently, so
 * every descriptor is copied out once and only the copy is checked and used;
 * ring indices are read with acquire semantics and the used index is
 * published with release semantics. Nothing here trusts a guest value before
 * it has been range-checked. */
#include <errno.h>
#include <string.h>
#include "virtq.h"

#define VRING_DESC_F_NEXT	1
#define VRING_DESC_F_WRITE	2
#define VRING_DESC_F_INDIRECT	4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY	1

/* Upper bound on the bytes of one element (all its buffers together): a
 * used length is 32 bits, and no device here needs more than this. */
#define VIRTQ_MAX_ELEM_BYTES	(1ULL << 30)

struct virtq_desc_raw {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail_raw {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];	/* size entries, then used_event */
};

struct virtq_used_elem_raw {
	uint32_t id;
	uint32_t len;
};

struct virtq_used_raw {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem_raw ring[];	/* size entries, then avail_event */
};

static uint64_t desc_bytes(uint16_t size) { return 16ULL * size; }
static uint64_t avail_bytes(uint16_t size) { return 6 + 2ULL * size; }
static uint64_t used_bytes(uint16_t size) { return 6 + 8ULL * size; }

static uint16_t load16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static volatile uint16_t *used_event_ptr(struct virtq *vq)
{
	return &vq->avail->ring[vq->size];
}

static uint16_t *avail_event_ptr(struct virtq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

/* The avail_event to publish (EVENT_IDX): the next index, so the driver
 * kicks for the next buffer; or, while kicks are suppressed, half the index
 * space ahead, which the driver's "crossed the event" test
 * (virtio 1.2, 2.7.10) never meets for the at most `size` buffers it can
 * add before the device catches up. */
static uint16_t kick_event(const struct virtq *vq)
{
	return vq->no_kick ? (uint16_t)(vq->last_avail + 0x7fff) : vq->last_avail;
}

/* (Re)translate the ring addresses. */
static int map_rings(struct virtq *vq)
{
	uint64_t gen = dma_gen(vq->dma);

	vq->desc = dma_map_contig(vq->dma, vq->desc_addr, desc_bytes(vq->size), DMA_READ);
	vq->avail = dma_map_contig(vq->dma, vq->avail_addr, avail_bytes(vq->size), DMA_READ);
	vq->used = dma_map_contig(vq->dma, vq->used_addr, used_bytes(vq->size), DMA_WRITE);
	if (!vq->desc || !vq->avail || !vq->used) {
		vq->desc = NULL;
		vq->avail = NULL;
		vq->used = NULL;
		vq->broken = true;
		return -EFAULT;
	}
	vq->cached_gen = gen;
	return 0;
}

/* True when the ring pointers may be used. */
static bool rings_ok(struct virtq *vq)
{
	if (!vq->ready || vq->broken)
		return false;
	if (vq->cached_gen != dma_gen(vq->dma) && map_rings(vq) < 0)
		return false;
	return true;
}

int virtq_start(struct virtq *vq)
{
	vq->ready = false;
	vq->broken = false;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_valid = false;
	if (!vq->dma || vq->size == 0 || vq->size > VIRTQ_MAX_SIZE ||
	    (vq->size & (vq->size - 1)))
		return -EINVAL;
	if ((vq->desc_addr & 15) || (vq->avail_addr & 1) || (vq->used_addr & 3))
		return -EINVAL;
	if (map_rings(vq) < 0)
		return -EFAULT;
	vq->ready = true;
	return 0;
}

void virtq_reset(struct virtq *vq)
{
	struct dma_space *dma = vq->dma;
	uint16_t size = vq->size;

	memset(vq, 0, sizeof(*vq));
	vq->dma = dma;
	vq->size = size;
}

static void read_desc(const struct virtq_desc_raw *table, unsigned i, struct virtq_desc_raw *out)
{
	const volatile struct virtq_desc_raw *d = &table[i];

	out->addr = d->addr;
	out->len = d->len;
	out->flags = d->flags;
	out->next = d->next;
}

/* Walk the chain at `head` into e. Returns 1 or a negative errno. */
static int walk_chain(struct virtq *vq, uint16_t head, struct virtq_elem *e)
{
	const struct virtq_desc_raw *table = vq->desc;
	unsigned max = vq->size;	/* entries in the current table */
	unsigned idx = head;
	unsigned total = 0;		/* descriptors seen, all tables */
	unsigned in_table = 0;		/* descriptors seen in the current table */
	bool indirect = false;
	uint64_t bytes = 0;
	unsigned n = 0;

	e->head = head;
	e->n_out = e->n_in = 0;
	e->out_len = e->in_len = 0;

	for (;;) {
		struct virtq_desc_raw d;

		if (idx >= max)
			return -EINVAL;
		/* A chain longer than its table must revisit an entry. */
		if (++in_table > max || ++total > vq->size)
			return -EINVAL;
		read_desc(table, idx, &d);

		if (d.flags & VRING_DESC_F_INDIRECT) {
			struct iovec tiov;
			int r;

			if (!vq->indirect || indirect || (d.flags & VRING_DESC_F_NEXT))
				return -EINVAL;
			if (d.len == 0 || d.len % sizeof(struct virtq_desc_raw) ||
			    d.len / sizeof(struct virtq_desc_raw) > vq->size)
				return -EINVAL;
			r = dma_translate(vq->dma, d.addr, d.len, DMA_READ, &tiov, 1);
			if (r == -E2BIG)
				return -EFAULT;	/* not host-contiguous: cannot use */
			if (r < 0)
				return r;
			if ((uintptr_t)tiov.iov_base & 7)
				return -EINVAL;
			table = tiov.iov_base;
			max = d.len / sizeof(struct virtq_desc_raw);
			/* The indirect descriptor itself does not count. */
			total--;
			in_table = 0;
			idx = 0;
			indirect = true;
			continue;
		}

		if (d.len == 0)
			return -EINVAL;
		bytes += d.len;
		if (bytes > VIRTQ_MAX_ELEM_BYTES)
			return -EINVAL;

		bool w = d.flags & VRING_DESC_F_WRITE;
		if (!w && e->n_in)
			return -EINVAL;	/* readable after writable */
		int r = dma_translate(vq->dma, d.addr, d.len, w ? DMA_WRITE : DMA_READ,
				     &e->iov[n], VIRTQ_MAX_SEGS - n);
		if (r < 0)
			return r;
		n += r;
		if (w) {
			e->n_in += r;
			e->in_len += d.len;
		} else {
			e->n_out += r;
			e->out_len += d.len;
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 1;
		idx = d.next;
	}
}

int virtq_pop(struct virtq *vq, struct virtq_elem *e)
{
	if (!rings_ok(vq))
		return 0;

	uint16_t avail_idx = load16(&vq->avail->idx);

	if (avail_idx == vq->last_avail) {
		if (!vq->event_idx || vq->no_kick)
			return 0;
		/* Ask for a kick on the next buffer, then look again so a
		 * buffer added meanwhile is not missed. */
		store16(avail_event_ptr(vq), vq->last_avail);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = load16(&vq->avail->idx);
		if (avail_idx == vq->last_avail)
			return 0;
	}
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
		/* The driver claims more buffers than the ring holds. */
		vq->broken = true;
		return 0;
	}

	uint16_t head = ((volatile uint16_t *)vq->avail->ring)[vq->last_avail & (vq->size - 1)];

	vq->last_avail++;
	if (vq->event_idx)
		store16(avail_event_ptr(vq), kick_event(vq));

	int r = head < vq->size ? walk_chain(vq, head, e) : -EINVAL;

	if (r < 0) {
		e->head = head;
		e->n_out = e->n_in = 0;
		e->out_len = e->in_len = 0;
		virtq_push(vq, head, 0);
		return r;
	}
	return 1;
}

void virtq_unpop(struct virtq *vq)
{
	vq->last_avail--;
	if (vq->event_idx && rings_ok(vq))
		store16(avail_event_ptr(vq), kick_event(vq));
}

bool virtq_avail_peek(const struct virtq *vq)
{
	const struct virtq_avail_raw *a = __atomic_load_n(&vq->avail, __ATOMIC_ACQUIRE);

	return a && load16(&a->idx) != __atomic_load_n(&vq->last_avail, __ATOMIC_RELAXED);
}

bool virtq_set_kick(struct virtq *vq, bool want)
{
	vq->no_kick = !want;
	if (!rings_ok(vq))
		return false;
	if (vq->event_idx) {
		store16(avail_event_ptr(vq), kick_event(vq));
	} else {
		uint16_t f = load16(&vq->used->flags);

		f = want ? f & ~VRING_USED_F_NO_NOTIFY : f | VRING_USED_F_NO_NOTIFY;
		store16(&vq->used->flags, f);
	}
	if (!want)
		return false;
	/* A buffer made available before the driver could see the request
	 * for a kick would otherwise wait for the next one. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16(&vq->avail->idx) != vq->last_avail;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	if (!rings_ok(vq))
		return;

	volatile struct virtq_used_elem_raw *u = &vq->used->ring[vq->used_idx & (vq->size - 1)];

	u->id = head;
	u->len = written;
	vq->used_idx++;
	store16(&vq->used->idx, vq->used_idx);
}

/* virtio 1.2, 2.7.10: the driver wants an interrupt when the used index
 * crosses used_event. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool virtq_should_notify(struct virtq *vq)
{
	if (!rings_ok(vq))
		return false;

	uint16_t old = vq->signalled_used;
	bool valid = vq->signalled_valid;

	if (valid && old == vq->used_idx)
		return false;	/* nothing pushed since the last call */
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;

	/* The used index must be visible before the driver's flags are read. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	return need_event(*used_event_ptr(vq), vq->used_idx, old);
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
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
		memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + off, c);
		done += c;
		off = 0;
	}
	return done;
}

size_t buf_to_iov(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len)
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
		memcpy((uint8_t *)iov[i].iov_base + off, (const uint8_t *)buf + done, c);
		done += c;
		off = 0;
	}
	return done;
}

unsigned iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len,
		   struct iovec *dst, unsigned max)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len; i++) {
		if (off >= src[i].iov_len) {
			off -= src[i].iov_len;
			continue;
		}
		size_t c = src[i].iov_len - off;

		if (c > len)
			c = len;
		if (k == max)
			return k;
		dst[k].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[k].iov_len = c;
		k++;
		len -= c;
		off = 0;
	}
	return k;
}
