/* virtio-blk (virtio 1.2, 5.2): one request queue backed by a host file or
 * block device, asynchronous I/O through Linux AIO (libaio) with completions
 * signalled on an eventfd that the event loop watches.
 *
 * A request is: 16-byte header (device-readable), data, one status byte
 * (device-writable, last). Reads and writes go straight between the file and
 * guest memory (preadv/pwritev-style iocbs over the translated segments);
 * with O_DIRECT, segments that are not sector-aligned go through a bounce
 * buffer, and a request the file refuses as misaligned (EINVAL) is retried
 * through a second, buffered descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include "devices.h"
#include "evloop.h"
#include "virtio.h"

#define SECTOR 512
#define BLK_QUEUE_SIZE 256
#define BLK_HDR_LEN 16
/* Host memory for bounce buffers of requests in flight: beyond it, a
 * misaligned request is done at once through the buffered descriptor (a
 * guest cannot make the host allocate more than this, however many large
 * misaligned requests it queues). */
#define BOUNCE_BUDGET (16u << 20)

struct blk_req {
	struct iocb iocb;
	struct vblk *b;
	uint16_t head;
	uint8_t type;		/* VIRTIO_BLK_T_IN / OUT / FLUSH */
	uint8_t *status;
	uint64_t offset;	/* bytes */
	size_t len;		/* data bytes */
	unsigned n;		/* data segments */
	struct iovec iov[VIRTQ_MAX_SEGS];
	void *bounce;
	struct iovec biov;
	int next_free;
};

struct vblk {
	struct virtio_dev vdev;
	const char *path;
	int fd;			/* the I/O descriptor (O_DIRECT if asked) */
	int fd_buffered;	/* same file without O_DIRECT (fallback), or fd */
	bool readonly, direct;
	uint64_t sectors;
	unsigned align;		/* O_DIRECT alignment */
	io_context_t ctx;
	int efd;
	bool aio_fsync_ok;
	struct blk_req *reqs;
	int free_head;
	unsigned inflight;
	size_t bounce_bytes;	/* in bounce buffers of requests in flight */
	bool stalled;		/* stopped popping: no free request slots */
	struct virtq_elem elem;
	char id[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_config cfg;
};

static struct blk_req *req_alloc(struct vblk *b)
{
	struct blk_req *r;

	if (b->free_head < 0)
		return NULL;
	r = &b->reqs[b->free_head];
	b->free_head = r->next_free;
	r->bounce = NULL;
	return r;
}

static void req_free(struct vblk *b, struct blk_req *r)
{
	if (r->bounce)
		b->bounce_bytes -= r->len;
	free(r->bounce);
	r->bounce = NULL;
	r->next_free = b->free_head;
	b->free_head = r - b->reqs;
}

static void req_done(struct vblk *b, struct blk_req *r, uint8_t status, uint32_t written)
{
	*r->status = status;
	virtq_push(&b->vdev.vqs[0], r->head, written);
	req_free(b, r);
}

/* Whole-buffer synchronous I/O (fallbacks). Returns bytes or -errno. */
static ssize_t sync_rw(int fd, bool write, struct iovec *iov, unsigned n, uint64_t off, size_t len)
{
	size_t done = 0;
	struct iovec tmp[VIRTQ_MAX_SEGS];

	while (done < len) {
		unsigned k = iov_slice(iov, n, done, len - done, tmp, VIRTQ_MAX_SEGS);
		ssize_t r = write ? pwritev(fd, tmp, k, off + done) : preadv(fd, tmp, k, off + done);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;	/* end of file inside the disk: cannot be */
		done += r;
	}
	return done;
}

/* The I/O of r finished with result res (bytes or -errno). */
static void req_complete(struct vblk *b, struct blk_req *r, long res)
{
	if (r->type == VIRTIO_BLK_T_FLUSH) {
		req_done(b, r, res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, 1);
		return;
	}
	bool write = r->type == VIRTIO_BLK_T_OUT;
	struct iovec *io = r->bounce ? &r->biov : r->iov;
	unsigned n = r->bounce ? 1 : r->n;

	if (res == -EINVAL && b->fd_buffered != b->fd) {
		/* O_DIRECT refused this request's alignment. */
		res = sync_rw(b->fd_buffered, write, io, n, r->offset, r->len);
	}
	if (res >= 0 && (size_t)res < r->len) {
		/* Short transfer: finish the rest synchronously. */
		struct iovec rest[VIRTQ_MAX_SEGS];
		unsigned k = iov_slice(io, n, res, r->len - res, rest, VIRTQ_MAX_SEGS);
		ssize_t more = sync_rw(b->fd_buffered, write, rest, k, r->offset + res, r->len - res);

		res = more < 0 ? more : res + more;
	}
	if (res < 0 || (size_t)res != r->len) {
		req_done(b, r, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	if (!write && r->bounce)
		buf_to_iov(r->iov, r->n, 0, r->bounce, r->len);
	req_done(b, r, VIRTIO_BLK_S_OK, write ? 1 : r->len + 1);
}

static bool iov_aligned(const struct iovec *iov, unsigned n, unsigned align)
{
	for (unsigned i = 0; i < n; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (align - 1))
			return false;
	return true;
}

static void req_submit(struct vblk *b, struct blk_req *r)
{
	struct iocb *p = &r->iocb;
	int ret;

	if (r->type == VIRTIO_BLK_T_FLUSH) {
		if (b->aio_fsync_ok) {
			io_prep_fdsync(p, b->fd);
			io_set_eventfd(p, b->efd);
			p->data = r;
			ret = io_submit(b->ctx, 1, &p);
			if (ret == 1) {
				b->inflight++;
				return;
			}
			if (ret == -EINVAL)
				b->aio_fsync_ok = false;
		}
		req_complete(b, r, fdatasync(b->fd) < 0 ? -errno : 0);
		return;
	}

	bool write = r->type == VIRTIO_BLK_T_OUT;
	struct iovec *io = r->iov;
	unsigned n = r->n;

	if (b->direct && !iov_aligned(r->iov, r->n, b->align)) {
		if (b->bounce_bytes + r->len > BOUNCE_BUDGET) {
			req_complete(b, r, sync_rw(b->fd_buffered, write, r->iov, r->n, r->offset,
						   r->len));
			return;
		}
		if (posix_memalign(&r->bounce, 4096, r->len)) {
			r->bounce = NULL;
			req_complete(b, r, -ENOMEM);
			return;
		}
		b->bounce_bytes += r->len;
		if (write)
			iov_to_buf(r->iov, r->n, 0, r->bounce, r->len);
		r->biov = (struct iovec){ r->bounce, r->len };
		io = &r->biov;
		n = 1;
	}
	if (write)
		io_prep_pwritev(p, b->fd, io, n, r->offset);
	else
		io_prep_preadv(p, b->fd, io, n, r->offset);
	io_set_eventfd(p, b->efd);
	p->data = r;
	ret = io_submit(b->ctx, 1, &p);
	if (ret == 1) {
		b->inflight++;
		return;
	}
	/* No AIO for this one (EAGAIN, ...): do it now. */
	req_complete(b, r, sync_rw(b->fd, write, io, n, r->offset, r->len));
}

/* Parse the element in b->elem into a request and start it. */
static void handle_request(struct vblk *b, struct blk_req *r)
{
	struct virtq_elem *e = &b->elem;
	struct virtio_blk_outhdr hdr;
	struct iovec *in = &e->iov[e->n_out];

	r->head = e->head;
	if (e->out_len < BLK_HDR_LEN || e->in_len < 1) {
		/* No header or no room for a status: nothing to report into. */
		virtq_push(&b->vdev.vqs[0], e->head, 0);
		req_free(b, r);
		return;
	}
	iov_to_buf(e->iov, e->n_out, 0, &hdr, sizeof(hdr));
	r->status = (uint8_t *)in[e->n_in - 1].iov_base + in[e->n_in - 1].iov_len - 1;
	r->type = hdr.type;

	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool write = hdr.type == VIRTIO_BLK_T_OUT;

		if (write) {
			r->len = e->out_len - BLK_HDR_LEN;
			r->n = iov_slice(e->iov, e->n_out, BLK_HDR_LEN, r->len, r->iov, VIRTQ_MAX_SEGS);
		} else {
			r->len = e->in_len - 1;
			r->n = iov_slice(in, e->n_in, 0, r->len, r->iov, VIRTQ_MAX_SEGS);
		}
		if ((write && b->readonly) || r->len % SECTOR ||
		    hdr.sector > b->sectors || r->len / SECTOR > b->sectors - hdr.sector) {
			req_done(b, r, VIRTIO_BLK_S_IOERR, 1);
			return;
		}
		if (r->len == 0) {
			req_done(b, r, VIRTIO_BLK_S_OK, 1);
			return;
		}
		r->offset = hdr.sector * SECTOR;
		req_submit(b, r);
		return;
	}
	case VIRTIO_BLK_T_FLUSH:
		if (b->readonly) {
			req_done(b, r, VIRTIO_BLK_S_OK, 1);
			return;
		}
		req_submit(b, r);
		return;
	case VIRTIO_BLK_T_GET_ID: {
		size_t room = e->in_len - 1;
		size_t n = room < VIRTIO_BLK_ID_BYTES ? room : VIRTIO_BLK_ID_BYTES;

		buf_to_iov(in, e->n_in, 0, b->id, n);
		req_done(b, r, VIRTIO_BLK_S_OK, n + 1);
		return;
	}
	default:
		req_done(b, r, VIRTIO_BLK_S_UNSUPP, 1);
		return;
	}
}

static void blk_process(struct vblk *b)
{
	struct virtq *vq = &b->vdev.vqs[0];
	bool any = false;

	b->stalled = false;
	for (unsigned popped = 0;; popped++) {
		struct blk_req *r;
		int ret;

		/* A queue's worth at a time: a guest that keeps the ring full
		 * of requests done at once must not hold the event loop. */
		if (popped == vq->size && virtio_queue_rekick(&b->vdev, 0))
			break;
		r = req_alloc(b);
		if (!r) {
			b->stalled = true;	/* resumed by a completion */
			break;
		}
		ret = virtq_pop(vq, &b->elem);
		if (ret <= 0) {
			req_free(b, r);
			if (ret == 0)
				break;
			any = true;	/* the bad chain went back with length 0 */
			continue;
		}
		handle_request(b, r);
		any = true;
	}
	if (any)
		virtio_notify_queue(&b->vdev, 0);
}

static void blk_queue_notify(struct virtio_dev *d, unsigned q)
{
	if (q == 0)
		blk_process(d->priv);
}

/* Reap what completed. Called with the device lock held. */
static unsigned blk_reap(struct vblk *b, bool push)
{
	struct io_event ev[64];
	struct timespec zero = { 0, 0 };
	unsigned total = 0;
	int n;

	while (b->inflight && (n = io_getevents(b->ctx, 0, 64, ev, &zero)) > 0) {
		for (int i = 0; i < n; i++) {
			struct blk_req *r = ev[i].data;

			b->inflight--;
			if (push)
				req_complete(b, r, (long)ev[i].res);
			else
				req_free(b, r);
		}
		total += n;
	}
	return total;
}

static void blk_aio_ready(void *opaque, uint32_t events)
{
	struct vblk *b = opaque;
	uint64_t cnt;

	if (read(b->efd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: nothing new. */
	}
	pthread_mutex_lock(&b->vdev.lock);
	if (blk_reap(b, true)) {
		virtio_notify_queue(&b->vdev, 0);
		if (b->stalled)
			blk_process(b);
	}
	pthread_mutex_unlock(&b->vdev.lock);
}

static void blk_reset(struct virtio_dev *d)
{
	struct vblk *b = d->priv;

	/* The rings go away: wait for the I/O in flight, report nothing. */
	while (b->inflight) {
		struct io_event ev[64];
		int n = io_getevents(b->ctx, 1, 64, ev, NULL);

		if (n < 0) {
			if (n == -EINTR)
				continue;
			fprintf(stderr, "vmm: %s: io_getevents: %s\n", d->name, strerror(-n));
			break;
		}
		for (int i = 0; i < n; i++) {
			b->inflight--;
			req_free(b, ev[i].data);
		}
	}
	b->stalled = false;
}

static void blk_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	struct vblk *b = d->priv;

	memcpy(data, (uint8_t *)&b->cfg + off, len);
}

static const struct virtio_dev_ops blk_ops = {
	.config_read = blk_config_read,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
};

static int open_disk(struct vblk *b, const struct disk_opts *o)
{
	int flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;

	b->fd = b->fd_buffered = -1;
	if (o->direct) {
		b->fd = open(o->path, flags | O_DIRECT);
		if (b->fd >= 0) {
			b->direct = true;
			b->fd_buffered = open(o->path, flags);
			if (b->fd_buffered < 0)
				b->fd_buffered = b->fd;
			return 0;
		}
		if (errno != EINVAL)
			return -errno;
		fprintf(stderr, "vmm: disk %s: the filesystem refuses O_DIRECT, using the page cache\n",
			o->path);
	}
	b->fd = open(o->path, flags);
	if (b->fd < 0)
		return -errno;
	b->fd_buffered = b->fd;
	return 0;
}

int virtio_blk_create(const struct disk_opts *o)
{
	struct vblk *b;
	struct stat st;
	uint64_t bytes;
	int r;

	if (!o->path)
		return -EINVAL;
	if (o->iommu && !the_viommu) {
		fprintf(stderr, "vmm: disk %s: iommu requested but there is no virtio-iommu\n", o->path);
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->path = o->path;
	b->readonly = o->readonly;
	b->efd = -1;
	r = open_disk(b, o);
	if (r < 0) {
		fprintf(stderr, "vmm: disk %s: %s\n", o->path, strerror(-r));
		goto fail;
	}
	/* One writer per disk, or any number of readers: a second --disk or
	 * another process writing the same file would corrupt it. */
	if (flock(b->fd, (o->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		r = -errno;
		if (r == -EWOULDBLOCK)
			fprintf(stderr, "vmm: --disk path=%s: in use by another --disk of this VM or by "
				"another process%s\n", o->path,
				o->readonly ? " that writes it" : " (readonly=on disks may share a file)");
		else
			fprintf(stderr, "vmm: --disk path=%s: cannot lock it: %s\n", o->path,
				strerror(-r));
		goto fail;
	}
	if (fstat(b->fd, &st) < 0) {
		r = -errno;
		goto fail_msg;
	}
	b->align = SECTOR;
	if (S_ISBLK(st.st_mode)) {
		int ssz;

		if (ioctl(b->fd, BLKGETSIZE64, &bytes) < 0) {
			r = -errno;
			goto fail_msg;
		}
		if (ioctl(b->fd, BLKSSZGET, &ssz) == 0 && ssz > SECTOR && !(ssz & (ssz - 1)))
			b->align = ssz;
	} else if (S_ISREG(st.st_mode)) {
		bytes = st.st_size;
	} else {
		r = -EINVAL;
		goto fail_msg;
	}
	b->sectors = bytes / SECTOR;

	r = io_setup(BLK_QUEUE_SIZE, &b->ctx);
	if (r < 0)
		goto fail_msg;
	b->aio_fsync_ok = true;
	b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->efd < 0) {
		r = -errno;
		goto fail_msg;
	}
	b->reqs = calloc(BLK_QUEUE_SIZE, sizeof(*b->reqs));
	if (!b->reqs) {
		r = -ENOMEM;
		goto fail_msg;
	}
	for (int i = 0; i < BLK_QUEUE_SIZE; i++) {
		b->reqs[i].b = b;
		b->reqs[i].next_free = i + 1 < BLK_QUEUE_SIZE ? i + 1 : -1;
	}
	b->free_head = 0;

	/* The ID: the file name, as much as fits. */
	const char *base = strrchr(o->path, '/');

	const char *name = base ? base + 1 : o->path;
	size_t nl = strlen(name);

	memcpy(b->id, name, nl < sizeof(b->id) ? nl : sizeof(b->id));

	b->cfg.capacity = b->sectors;
	b->cfg.seg_max = BLK_QUEUE_SIZE - 2;	/* a chain holds header and status too */
	b->cfg.blk_size = b->align;

	struct virtio_dev *d = &b->vdev;

	d->ops = &blk_ops;
	d->priv = b;
	d->name = "virtio-blk";
	d->device_id = VIRTIO_ID_BLOCK;
	d->host_features = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
			   1ULL << VIRTIO_BLK_F_FLUSH;
	if (o->readonly)
		d->host_features |= 1ULL << VIRTIO_BLK_F_RO;
	d->config_size = sizeof(b->cfg);
	d->nqueues = 1;
	d->queue_max_size = BLK_QUEUE_SIZE;
	d->iommu_platform = o->iommu;
	/* Without indirect tables a chain of seg_max data descriptors plus
	 * header and status still fits the ring (BLK_QUEUE_SIZE). */
	d->no_indirect = !o->indirect;
	d->dma = (struct dma_space){ .mem = &the_vm.mem };

	r = virtio_pci_register(d);
	if (r < 0)
		goto fail;
	if (o->iommu) {
		r = viommu_endpoint_dma_init(the_viommu, d->bdf, &d->dma);
		if (r < 0) {
			fprintf(stderr, "vmm: disk %s: cannot attach to the virtio-iommu: %s\n",
				o->path, strerror(-r));
			return r;
		}
	}
	r = evloop_add(b->efd, EPOLLIN, blk_aio_ready, b);
	if (r < 0) {
		fprintf(stderr, "vmm: disk %s: event loop: %s\n", o->path, strerror(-r));
		return r;
	}
	return 0;

fail_msg:
	fprintf(stderr, "vmm: disk %s: %s\n", o->path, strerror(-r));
fail:
	if (b->efd >= 0)
		close(b->efd);
	if (b->fd_buffered >= 0 && b->fd_buffered != b->fd)
		close(b->fd_buffered);
	if (b->fd >= 0)
		close(b->fd);
	free(b->reqs);
	free(b);
	return r;
}
