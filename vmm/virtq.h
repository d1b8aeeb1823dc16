/* Split virtqueues (virtio 1.x, section 2.7): the device side. Every guest
 * address (rings, descriptors, indirect tables, buffers) goes through the
 * queue's dma_space, so a malformed or hostile chain (loops, addresses
 * outside RAM or unmapped, zero or huge lengths, too many descriptors) is an
 * error for that request, never a crash or an access outside guest RAM. */
#ifndef VMM_VIRTQ_H
#define VMM_VIRTQ_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include "dma.h"

#define VIRTQ_MAX_SIZE 1024
#define VIRTQ_MAX_SEGS 256	/* iovecs per element, after translation */

struct virtq {
	uint16_t size;		/* power of two, <= VIRTQ_MAX_SIZE */
	bool ready;
	bool event_idx;		/* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;		/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	uint64_t desc_addr, avail_addr, used_addr;	/* device addresses */
	struct dma_space *dma;
	/* Host pointers to the rings, valid while cached_gen == dma_gen(). */
	struct virtq_desc_raw *desc;
	struct virtq_avail_raw *avail;
	struct virtq_used_raw *used;
	uint64_t cached_gen;
	uint16_t last_avail;	/* next avail index to consume */
	uint16_t used_idx;	/* shadow of used->idx */
	uint16_t signalled_used;	/* for EVENT_IDX */
	bool signalled_valid;
	bool broken;		/* the ring itself is unreachable */
	bool no_kick;		/* the driver is asked not to notify (polling) */
};

/* One request: device-readable segments first (out), then device-writable
 * ones (in), already translated to host memory. */
struct virtq_elem {
	uint16_t head;
	unsigned n_out, n_in;
	uint64_t out_len, in_len;	/* total bytes */
	struct iovec iov[VIRTQ_MAX_SEGS];
};

/* Bind the rings (after the driver set them and enabled the queue).
 * Returns -EFAULT if they are not in reachable memory. */
int virtq_start(struct virtq *vq);
void virtq_reset(struct virtq *vq);

/* 1: *e holds a request; 0: queue empty; <0: the chain at the head is
 * malformed (-EINVAL loop/bad index/too long, -EFAULT unreachable memory,
 * -EPERM forbidden, -E2BIG too many segments). On error the head has been
 * consumed and returned to the used ring with length 0 (virtq_push), so the
 * caller just carries on; e->head is valid for reporting.
 * Limits: at most `size` descriptors per chain (direct and indirect
 * together), no zero-length buffer, at most 1 GiB per element, indirect
 * tables only when negotiated, not nested, not with NEXT, a non-zero
 * multiple of 16 bytes, host-contiguous. A queue that is not ready, or whose
 * rings became unreachable (vq->broken: an avail index more than `size`
 * ahead, or rings unmapped by the IOMMU), returns 0. */
int virtq_pop(struct virtq *vq, struct virtq_elem *e);
/* Put back the element the last virtq_pop returned (it was not used, e.g.
 * no packet to receive after all); the next pop returns it again. */
void virtq_unpop(struct virtq *vq);
/* Return a request to the driver with `written` bytes written into it. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t written);
/* True if the driver has made buffers available that were not popped yet.
 * Safe without the lock that guards the queue (a poller's spin): it only
 * reads, and a stale answer is settled by the virtq_pop that follows. */
bool virtq_avail_peek(const struct virtq *vq);
/* Ask the driver to notify (kick) the device for new buffers, or not to
 * (a device that polls): VRING_USED_F_NO_NOTIFY, or avail_event with
 * EVENT_IDX (virtio 1.2, 2.7.10). virtq_pop keeps the setting. When kicks
 * are turned back on, returns true if buffers are already waiting (they
 * were added while the driver was told not to kick: serve them). */
bool virtq_set_kick(struct virtq *vq, bool want);
/* True when the driver wants an interrupt for what was pushed since the last
 * call (honours VRING_AVAIL_F_NO_INTERRUPT and EVENT_IDX). */
bool virtq_should_notify(struct virtq *vq);

/* Copy helpers over an element's segments. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
size_t buf_to_iov(const struct iovec *iov, unsigned n, size_t off, const void *buf, size_t len);
/* The iovecs covering bytes [off, off + len) of iov[0..n) into dst (at most
 * max entries); returns how many were written. */
unsigned iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len,
		   struct iovec *dst, unsigned max);

#endif
