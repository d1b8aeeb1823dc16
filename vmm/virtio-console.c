/* virtio-console (virtio 1.2, 5.3): a single port, no multiport control
 * queue. Queue 0 (receiveq) carries input from stdin when the console is on
 * the terminal; queue 1 (transmitq) carries output to stdout, /dev/null or a
 * file. Emergency writes (VIRTIO_CONSOLE_F_EMERG_WRITE) go to the same
 * place. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include "devices.h"
#include "evloop.h"
#include "virtio.h"

#define CON_RXQ 0
#define CON_TXQ 1
#define CON_QUEUE_SIZE 128

struct vcon {
	struct virtio_dev vdev;
	int in_fd, out_fd;
	bool rx_starved;
	struct virtq_elem elem;
	struct virtio_console_config cfg;
};

static void write_all(int fd, const struct iovec *iov, unsigned n)
{
	struct iovec tmp[VIRTQ_MAX_SEGS];
	size_t total = 0, done = 0;

	if (fd < 0)
		return;
	for (unsigned i = 0; i < n; i++)
		total += iov[i].iov_len;
	while (done < total) {
		unsigned k = iov_slice(iov, n, done, total - done, tmp, VIRTQ_MAX_SEGS);
		ssize_t w = writev(fd, tmp, k);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* A non-blocking terminal that is full: wait. */
				usleep(1000);
				continue;
			}
			return;	/* output gone: drop it */
		}
		done += w;
	}
}

static void con_tx(struct vcon *c)
{
	struct virtq *vq = &c->vdev.vqs[CON_TXQ];
	bool any = false;
	int r;

	for (unsigned popped = 0; (r = virtq_pop(vq, &c->elem)) != 0; popped++) {
		any = true;
		if (r > 0) {
			write_all(c->out_fd, c->elem.iov, c->elem.n_out);
			virtq_push(vq, c->elem.head, 0);
		}
		/* A queue's worth at a time (see virtio_queue_rekick). */
		if (popped + 1 == vq->size && virtio_queue_rekick(&c->vdev, CON_TXQ))
			break;
	}
	if (any)
		virtio_notify_queue(&c->vdev, CON_TXQ);
}

static void con_rx(struct vcon *c)
{
	struct virtq *vq = &c->vdev.vqs[CON_RXQ];
	bool any = false;

	c->rx_starved = false;
	while (c->in_fd >= 0) {
		int r = virtq_pop(vq, &c->elem);

		if (r == 0) {
			c->rx_starved = true;
			break;
		}
		any = true;
		if (r < 0)
			continue;
		if (c->elem.n_in == 0) {
			virtq_push(vq, c->elem.head, 0);
			continue;
		}
		ssize_t n = readv(c->in_fd, &c->elem.iov[c->elem.n_out], c->elem.n_in);

		if (n <= 0) {
			virtq_unpop(vq);
			if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				/* End of input: stop listening. */
				evloop_del(c->in_fd);
				c->in_fd = -1;
			}
			break;
		}
		virtq_push(vq, c->elem.head, n);
	}
	if (any)
		virtio_notify_queue(&c->vdev, CON_RXQ);
}

static void con_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct vcon *c = d->priv;

	if (q == CON_TXQ)
		con_tx(c);
	else if (q == CON_RXQ && c->rx_starved)
		con_rx(c);
}

static void con_stdin_ready(void *opaque, uint32_t events)
{
	struct vcon *c = opaque;

	pthread_mutex_lock(&c->vdev.lock);
	if ((c->vdev.status & VIRTIO_CONFIG_S_DRIVER_OK) && c->vdev.vqs[CON_RXQ].ready)
		con_rx(c);
	else
		c->rx_starved = true;
	pthread_mutex_unlock(&c->vdev.lock);
}

static int con_activate(struct virtio_dev *d)
{
	con_rx(d->priv);
	return 0;
}

static void con_reset(struct virtio_dev *d)
{
	struct vcon *c = d->priv;

	c->rx_starved = false;
}

static void con_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	struct vcon *c = d->priv;

	memcpy(data, (uint8_t *)&c->cfg + off, len);
}

static void con_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	struct vcon *c = d->priv;

	if (off == offsetof(struct virtio_console_config, emerg_wr) && len == 4) {
		uint32_t v;

		memcpy(&v, data, 4);
		struct iovec iov = { &v, 1 };	/* the low byte: one character */

		write_all(c->out_fd, &iov, 1);
	}
}

static const struct virtio_dev_ops con_ops = {
	.config_read = con_config_read,
	.config_write = con_config_write,
	.queue_notify = con_queue_notify,
	.activate = con_activate,
	.reset = con_reset,
};

int virtio_console_create(const struct console_opts *o)
{
	struct vcon *c;
	int r;

	if (o->mode == CONSOLE_OFF)
		return 0;
	if (o->iommu && !the_viommu) {
		fprintf(stderr, "vmm: console: iommu requested but there is no virtio-iommu\n");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->in_fd = -1;
	switch (o->mode) {
	case CONSOLE_TTY:
		c->out_fd = STDOUT_FILENO;
		c->in_fd = STDIN_FILENO;
		break;
	case CONSOLE_NULL:
		c->out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		break;
	case CONSOLE_FILE:
		if (!o->file) {
			free(c);
			return -EINVAL;
		}
		c->out_fd = open(o->file, O_WRONLY | O_CREAT | O_CLOEXEC |
				 (vmm_rebooted ? O_APPEND : O_TRUNC), 0644);
		break;
	default:
		free(c);
		return -EINVAL;
	}
	if (c->out_fd < 0) {
		r = -errno;
		fprintf(stderr, "vmm: console: cannot open %s: %s\n",
			o->mode == CONSOLE_FILE ? o->file : "/dev/null", strerror(errno));
		free(c);
		return r;
	}

	struct virtio_dev *d = &c->vdev;

	d->ops = &con_ops;
	d->priv = c;
	d->name = "virtio-console";
	d->device_id = VIRTIO_ID_CONSOLE;
	d->host_features = 1ULL << VIRTIO_CONSOLE_F_EMERG_WRITE;
	d->config_size = sizeof(c->cfg);
	d->nqueues = 2;
	d->queue_max_size = CON_QUEUE_SIZE;
	d->iommu_platform = o->iommu;
	d->dma = (struct dma_space){ .mem = &the_vm.mem };

	r = virtio_pci_register(d);
	if (r < 0) {
		if (c->out_fd > STDERR_FILENO)
			close(c->out_fd);
		free(c);
		return r;
	}
	if (o->iommu) {
		r = viommu_endpoint_dma_init(the_viommu, d->bdf, &d->dma);
		if (r < 0) {
			fprintf(stderr, "vmm: console: cannot attach to the virtio-iommu: %s\n", strerror(-r));
			return r;
		}
	}
	if (c->in_fd >= 0) {
		console_take_stdin();
		if (evloop_add(c->in_fd, EPOLLIN | EPOLLET, con_stdin_ready, c) < 0)
			c->in_fd = -1;	/* not pollable (a regular file) or taken */
	}
	return 0;
}
