/* virtio-net (virtio 1.2, 5.1) on a host tap interface. Queue 0 receives,
 * queue 1 transmits; no control queue, no offloads. The tap carries a
 * 12-byte virtio_net_hdr_v1 in front of every frame (IFF_VNET_HDR), the same
 * layout the driver uses, so frames go between tap and guest buffers
 * without copies.
 *
 * Receive: the tap is on the event loop edge-triggered; each wakeup moves
 * frames until the tap is empty or the guest has no receive buffers left.
 * In the latter case the next kick of queue 0 resumes. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include "devices.h"
#include "evloop.h"
#include "virtio.h"

#define NET_RXQ 0
#define NET_TXQ 1
#define NET_QUEUE_SIZE 256
/* Frames received per turn of the event loop (a NAPI weight's worth), so a
 * flood on the tap leaves the loop time for the other devices. */
#define NET_RX_BUDGET 64
#define NET_HDR_LEN ((unsigned)sizeof(struct virtio_net_hdr_v1))

struct vnet {
	struct virtio_dev vdev;
	char ifname[IFNAMSIZ];
	int tap;
	bool rx_pending;	/* the tap may hold frames not delivered: the guest
				 * had no rx buffers, or a budget's worth went in */
	struct virtq_elem elem;
	struct virtio_net_config cfg;
};

static void net_rx(struct vnet *n)
{
	struct virtq *vq = &n->vdev.vqs[NET_RXQ];
	bool any = false;

	n->rx_pending = false;
	for (unsigned popped = 0;; popped++) {
		/* NET_RX_BUDGET frames at a time; the rekick comes back here
		 * (the tap's readiness is edge-triggered: its edge is spent). */
		if (popped == NET_RX_BUDGET && virtio_queue_rekick(&n->vdev, NET_RXQ)) {
			n->rx_pending = true;
			break;
		}
		int r = virtq_pop(vq, &n->elem);

		if (r == 0) {
			n->rx_pending = true;
			break;
		}
		if (r < 0) {
			any = true;
			continue;
		}
		struct virtq_elem *e = &n->elem;

		if (e->n_out || e->in_len < NET_HDR_LEN) {
			/* Not a receive buffer. */
			virtq_push(vq, e->head, 0);
			any = true;
			continue;
		}
		ssize_t len = readv(n->tap, &e->iov[e->n_out], e->n_in);

		if (len < 0) {
			virtq_unpop(vq);
			if (errno != EAGAIN && errno != EINTR)
				fprintf(stderr, "vmm: virtio-net %s: read: %s\n", n->ifname, strerror(errno));
			break;
		}
		if ((size_t)len > e->in_len) {
			/* The tap says how long the frame was, not how much of
			 * it fitted: a frame longer than the buffer is dropped,
			 * the buffer kept for the next. */
			virtq_unpop(vq);
			continue;
		}
		/* The tap filled the header in for its own offloads; none is
		 * negotiated here, so the driver sees a plain header. */
		struct virtio_net_hdr_v1 hdr = { .num_buffers = 1 };

		buf_to_iov(&e->iov[e->n_out], e->n_in, 0, &hdr, sizeof(hdr));
		virtq_push(vq, e->head, len < (ssize_t)NET_HDR_LEN ? NET_HDR_LEN : (uint32_t)len);
		any = true;
	}
	if (any)
		virtio_notify_queue(&n->vdev, NET_RXQ);
}

static void net_tx(struct vnet *n)
{
	struct virtq *vq = &n->vdev.vqs[NET_TXQ];
	bool any = false;

	for (unsigned popped = 0;; popped++) {
		/* A queue's worth at a time: a guest that keeps the ring
		 * full must not hold the event loop. */
		if (popped == vq->size && virtio_queue_rekick(&n->vdev, NET_TXQ))
			break;
		int r = virtq_pop(vq, &n->elem);

		if (r == 0)
			break;
		any = true;
		if (r < 0)
			continue;
		struct virtq_elem *e = &n->elem;

		if (e->out_len > NET_HDR_LEN && e->n_out) {
			/* With no offloads negotiated the header asks nothing
			 * of the host: a zeroed one goes to the tap, whatever
			 * checksum or GSO request the guest's carried. */
			struct virtio_net_hdr_v1 hdr = { 0 };
			struct iovec iov[1 + VIRTQ_MAX_SEGS];	/* (not zeroed: 4 KiB) */

			iov[0] = (struct iovec){ &hdr, NET_HDR_LEN };
			unsigned k = 1 + iov_slice(e->iov, e->n_out, NET_HDR_LEN,
						   e->out_len - NET_HDR_LEN, iov + 1, VIRTQ_MAX_SEGS);
			ssize_t w;

			do
				w = writev(n->tap, iov, k);
			while (w < 0 && errno == EINTR);
			/* Errors (EAGAIN when the tap's queue is full, EIO
			 * when it is down) drop the frame, as a wire would. */
		}
		virtq_push(vq, e->head, 0);
	}
	if (any)
		virtio_notify_queue(&n->vdev, NET_TXQ);
}

static void net_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct vnet *n = d->priv;

	if (q == NET_RXQ) {
		if (n->rx_pending)
			net_rx(n);
	} else if (q == NET_TXQ) {
		net_tx(n);
	}
}

static void net_tap_ready(void *opaque, uint32_t events)
{
	struct vnet *n = opaque;

	pthread_mutex_lock(&n->vdev.lock);
	if ((n->vdev.status & VIRTIO_CONFIG_S_DRIVER_OK) && n->vdev.vqs[NET_RXQ].ready)
		net_rx(n);
	else
		n->rx_pending = true;	/* drained once the driver kicks rx */
	pthread_mutex_unlock(&n->vdev.lock);
}

static int net_activate(struct virtio_dev *d)
{
	struct vnet *n = d->priv;

	/* Frames may have queued up while the driver was getting ready. */
	net_rx(n);
	return 0;
}

static void net_reset(struct virtio_dev *d)
{
	struct vnet *n = d->priv;

	n->rx_pending = false;
}

static void net_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	struct vnet *n = d->priv;

	memcpy(data, (uint8_t *)&n->cfg + off, len);
}

static const struct virtio_dev_ops net_ops = {
	.config_read = net_config_read,
	.queue_notify = net_queue_notify,
	.activate = net_activate,
	.reset = net_reset,
};

static int tap_open(struct vnet *n, const char *name)
{
	struct ifreq ifr = { 0 };
	int hdr = NET_HDR_LEN;
	int fd, s;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (name)
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	memcpy(n->ifname, ifr.ifr_name, IFNAMSIZ);
	n->ifname[IFNAMSIZ - 1] = 0;

	/* Bring the link up (best effort: addresses are the host's business). */
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		struct ifreq up = { 0 };

		memcpy(up.ifr_name, n->ifname, IFNAMSIZ);
		if (ioctl(s, SIOCGIFFLAGS, &up) == 0 && !(up.ifr_flags & IFF_UP)) {
			up.ifr_flags |= IFF_UP;
			ioctl(s, SIOCSIFFLAGS, &up);
		}
		close(s);
	}
	n->tap = fd;
	return 0;
}

int virtio_net_create(const struct net_opts *o)
{
	struct vnet *n;
	int r;

	if (o->iommu && !the_viommu) {
		fprintf(stderr, "vmm: net %s: iommu requested but there is no virtio-iommu\n",
			o->tap ? o->tap : "");
		return -EINVAL;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	r = tap_open(n, o->tap);
	if (r < 0) {
		fprintf(stderr, "vmm: net %s: cannot open the tap: %s\n", o->tap ? o->tap : "", strerror(-r));
		free(n);
		return r;
	}
	if (o->mac_set) {
		memcpy(n->cfg.mac, o->mac, 6);
	} else {
		if (getrandom(n->cfg.mac, 6, 0) != 6) {
			for (int i = 0; i < 6; i++)
				n->cfg.mac[i] = rand();
		}
		n->cfg.mac[0] = (n->cfg.mac[0] & 0xFE) | 0x02;	/* unicast, locally administered */
	}
	n->cfg.status = VIRTIO_NET_S_LINK_UP;
	n->cfg.max_virtqueue_pairs = 1;

	struct virtio_dev *d = &n->vdev;

	d->ops = &net_ops;
	d->priv = n;
	d->name = "virtio-net";
	d->device_id = VIRTIO_ID_NET;
	d->host_features = 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS;
	d->config_size = offsetof(struct virtio_net_config, mtu);
	d->nqueues = 2;
	d->queue_max_size = NET_QUEUE_SIZE;
	d->iommu_platform = o->iommu;
	d->dma = (struct dma_space){ .mem = &the_vm.mem };

	r = virtio_pci_register(d);
	if (r < 0)
		goto fail;
	if (o->iommu) {
		r = viommu_endpoint_dma_init(the_viommu, d->bdf, &d->dma);
		if (r < 0) {
			fprintf(stderr, "vmm: net %s: cannot attach to the virtio-iommu: %s\n",
				n->ifname, strerror(-r));
			return r;
		}
	}
	r = evloop_add(n->tap, EPOLLIN | EPOLLET, net_tap_ready, n);
	if (r < 0) {
		fprintf(stderr, "vmm: net %s: event loop: %s\n", n->ifname, strerror(-r));
		return r;
	}
	return 0;
fail:
	close(n->tap);
	free(n);
	return r;
}
