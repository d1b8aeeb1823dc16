/* The virtio-iommu on the virtio-pci transport: device ID 23, requestq 0,
 * eventq 1 (virtio spec, "IOMMU device" / "Virtqueues").
 *
 * Requests are answered inside the vCPU's notify exit (notify_in_vcpu): the
 * Linux driver spins on the used ring for every MAP/UNMAP, so the answer is
 * there when the vCPU resumes, with no thread hand-off.
 *
 * With polling (virtio_iommu_set_poll: `--iommu poll=auto`, the default,
 * or `poll=USEC`) a kick is still served in the vCPU, and it also wakes a
 * poller thread that asks the driver not to kick any more (virtq_set_kick)
 * and serves the requestq by itself until it has been idle for the poll
 * window; then kicks are turned back on and the poller sleeps. A guest that
 * issues requests back to back (a strict-mode guest maps and unmaps around
 * every DMA) then pays no exit for them, at the price of a host CPU while
 * they flow. poll=USEC fixes the window; poll=auto sizes it from the gaps
 * between the guest's requests (virtio_iommu_poll_window_next), up to a
 * ceiling, so a guest that sends requests seldom costs no polling at all.
 * The host CPU it takes is only what no other thread wants: the poller runs
 * at idle priority (POLL_STALL_NS).
 *
 * Fault events are queued by the device model (viommu.c) from whatever
 * thread translated; they are written into eventq buffers here, under the
 * device lock, as soon as both a fault and a buffer are there. Lock order:
 * another device's lock -> this device's lock -> the viommu rwlock. */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/virtio_config.h>
#include "devices.h"
#include "virtio.h"
#include "virtq.h"
#include "viommu.h"
#include "virtio-iommu-dev.h"

struct viommu *the_viommu;

static bool default_bypass;
static unsigned poll_us;		/* the window, or with poll_auto its ceiling */
static bool poll_auto;		/* adapt the window to the guest's gaps */
static bool poll_one_cpu;	/* force=on: poll even with one CPU online */
static const char *poll_off_why = "";	/* for the stats */
static bool poll_yield;		/* ... and then yield while waiting */

/* The poller asks the scheduler for CPU time nobody else wants
 * (SCHED_IDLE): any other thread that wakes on its CPU, such as a disk's
 * completion handler, runs at once, and a CPU where only the poller runs
 * counts as free when a thread is placed. At normal priority a spinning
 * poller holds its CPU for a whole time slice (milliseconds) against such
 * a thread, while the vCPU waits on it. The risk is the other way round:
 * with kicks off, a request waits for the poller, and a poller kept off a
 * busy CPU for longer than this while a request waited goes back to normal
 * priority for good, or, where leaving SCHED_IDLE is not allowed (without
 * CAP_SYS_NICE and with RLIMIT_NICE below 20), stops polling for good. */
#define POLL_STALL_NS (20 * 1000000ull)

struct vio_dev {
	struct virtio_dev vdev;
	struct viommu *v;
	struct virtq_elem req;		/* requestq element (under vdev.lock) */
	struct virtq_elem ev;		/* eventq element (under vdev.lock) */
	/* Polling; all under vdev.lock. */
	pthread_cond_t poll_cv;
	bool polling;			/* the poller is serving the requestq */
	uint64_t poll_until;		/* CLOCK_MONOTONIC ns */
	uint64_t window_ns;		/* how long the poller waits for a request */
	uint64_t last_req_ns;		/* when a request was last served */
	uint64_t grown, shrunk;		/* adaptive window changes */
	uint64_t kicks;			/* requestq notifications */
	uint64_t requests;		/* requests served */
	uint64_t polled;		/* of which found by the poller */
	uint64_t polled_ns;		/* poller time serving them */
	const char *prio;		/* the poller's priority, for the stats */
	uint64_t stall_ns;		/* the stall that ended idle priority */
	bool poll_stopped;		/* ... and polling with it */
};

static struct vio_dev *the_dev;
/* Set while this thread holds the device lock through one of our ops, so a
 * fault raised underneath is delivered without re-locking. */
static __thread bool in_dev_lock;

void virtio_iommu_set_default_bypass(bool bypass)
{
	default_bypass = bypass;
}

void virtio_iommu_set_poll(unsigned usec, bool adaptive, bool one_cpu)
{
	poll_us = usec;
	poll_auto = adaptive;
	poll_one_cpu = one_cpu;
}

uint64_t virtio_iommu_poll_window_next(uint64_t window_ns, uint64_t gap_ns, uint64_t max_ns)
{
	if (gap_ns > max_ns) {
		/* Idle for longer than polling would ever wait: a burst has
		 * ended. Halve, and stop polling below the starting size. */
		window_ns /= 2;
		return window_ns < VIRTIO_IOMMU_POLL_GROW_START_NS ? 0 : window_ns;
	}
	if (gap_ns <= window_ns)
		return window_ns;	/* it would have been caught */
	/* A longer window would have caught this request without a kick. */
	window_ns = window_ns < VIRTIO_IOMMU_POLL_GROW_START_NS ? VIRTIO_IOMMU_POLL_GROW_START_NS
								 : window_ns * 2;
	return window_ns < max_ns ? window_ns : max_ns;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Move pending faults into eventq buffers. Called with vdev.lock held. */
static void deliver_faults(struct vio_dev *vd)
{
	struct virtio_dev *d = &vd->vdev;
	struct virtq *vq = &d->vqs[1];
	struct virtio_iommu_fault f;
	bool pushed = false;

	if (!(d->status & VIRTIO_CONFIG_S_DRIVER_OK) || (d->status & VIRTIO_CONFIG_S_NEEDS_RESET) ||
	    !vq->ready || vq->broken)
		return;
	for (unsigned guard = 0; guard <= vq->size && viommu_peek_fault(vd->v, &f); guard++) {
		int r = virtq_pop(vq, &vd->ev);
		if (r == 0)
			break;
		if (r < 0) {
			if (vq->broken)
				break;
			continue;
		}
		const struct iovec *in = vd->ev.iov + vd->ev.n_out;
		if (vd->ev.in_len < sizeof(f)) {
			/* "SHOULD NOT use multiple buffers to describe it"; we
			 * have no shorter format: hand it back unused. */
			virtq_push(vq, vd->ev.head, 0);
			pushed = true;
			continue;
		}
		buf_to_iov(in, vd->ev.n_in, 0, &f, sizeof(f));
		viommu_pop_fault(vd->v, NULL);
		viommu_count_delivered(vd->v);
		virtq_push(vq, vd->ev.head, sizeof(f));
		pushed = true;
	}
	if (pushed)
		virtio_notify_queue(d, 1);
}

static void fault_kick(void *opaque)
{
	struct vio_dev *vd = opaque;
	if (in_dev_lock) {
		deliver_faults(vd);
		return;
	}
	pthread_mutex_lock(&vd->vdev.lock);
	in_dev_lock = true;
	deliver_faults(vd);
	in_dev_lock = false;
	pthread_mutex_unlock(&vd->vdev.lock);
}

/* Serve what the requestq holds; returns how many requests. */
static unsigned serve_requests(struct vio_dev *vd)
{
	struct virtio_dev *d = &vd->vdev;
	struct virtq *vq = &d->vqs[0];
	unsigned served = 0;

	/* Bounded so that a ring that keeps failing cannot hold the vCPU; a
	 * later kick serves what is left. */
	for (unsigned n = 0; n < 4u * VIRTQ_MAX_SIZE; n++) {
		int r = virtq_pop(vq, &vd->req);
		if (r == 0)
			break;
		/* Not before: an idle poller must not write shared state. */
		if (served++ == 0)
			viommu_set_driver_features(vd->v, d->guest_features);
		if (r < 0) {
			if (vq->broken)
				break;
			continue;	/* already returned with length 0 */
		}
		uint32_t written = 0;
		viommu_handle_request(vd->v, vd->req.iov, vd->req.n_out, vd->req.iov + vd->req.n_out,
				      vd->req.n_in, &written);
		virtq_push(vq, vd->req.head, written);
	}
	if (served) {
		virtio_notify_queue(d, 0);
		if (poll_auto)	/* the clock only where the window needs it */
			vd->last_req_ns = now_ns();
	}
	vd->requests += served;
	return served;
}

/* Start (or prolong) polling after a kick that came gap_ns after the
 * request before it. Called with vdev.lock held. */
static void poll_start(struct vio_dev *vd, uint64_t gap_ns)
{
	struct virtio_dev *d = &vd->vdev;

	if (!(d->status & VIRTIO_CONFIG_S_DRIVER_OK) || !d->vqs[0].ready || vd->poll_stopped)
		return;
	if (poll_auto && !vd->polling) {
		/* Only a kick the poller was not there for says anything
		 * about the window (one racing its start does not). */
		uint64_t w = virtio_iommu_poll_window_next(vd->window_ns, gap_ns,
							   poll_us * 1000ull);
		vd->grown += w > vd->window_ns;
		vd->shrunk += w < vd->window_ns;
		vd->window_ns = w;
	}
	if (!vd->window_ns)
		return;
	vd->poll_until = now_ns() + vd->window_ns;
	if (vd->polling)
		return;
	vd->polling = true;
	virtq_set_kick(&d->vqs[0], false);
	pthread_cond_signal(&vd->poll_cv);
}

static void *poller(void *opaque)
{
	struct vio_dev *vd = opaque;
	struct virtio_dev *d = &vd->vdev;
	struct virtq *vq = &d->vqs[0];
	struct sched_param sp = { 0 };
	bool idle_prio = false;
	uint64_t seen = 0;		/* when it was last seen on its CPU, 0 after a wait */

	/* Not with one CPU (force=on): the vCPU it shares that CPU with may be
	 * spinning on a request, and would starve it. */
	if (!poll_yield)
		idle_prio = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0;
	pthread_mutex_lock(&d->lock);
	vd->prio = idle_prio ? "idle" : poll_yield ? "normal, yielding" : "normal (SCHED_IDLE refused)";
	for (;;) {
		while (!vd->polling) {
			pthread_cond_wait(&vd->poll_cv, &d->lock);
			seen = 0;
		}
		/* A device that needs a reset serves nothing (as on kicks). */
		if (d->status & VIRTIO_CONFIG_S_NEEDS_RESET) {
			virtq_set_kick(vq, true);
			vd->polling = false;
			continue;
		}
		uint64_t t0 = now_ns();

		in_dev_lock = true;
		unsigned n = serve_requests(vd);
		in_dev_lock = false;
		uint64_t now = now_ns();

		/* Off its CPU between two looks at the ring, and a request
		 * waited meanwhile. (Time spent serving is not judged: one
		 * large MAP can take long; a poller preempted while serving
		 * holds the device lock, which the vCPUs need only for their
		 * kicks and register accesses, and kicks are off. Nor is the
		 * time a vCPU held the lock: the poller watched it, see below.) */
		uint64_t stall = seen ? t0 - seen : 0;
		if (idle_prio && n && stall > POLL_STALL_NS) {
			idle_prio = false;
			vd->stall_ns = stall;
			if (pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp) == 0) {
				vd->prio = "normal, after a stall";
			} else {
				vd->prio = "idle, polling stopped after a stall (normal priority refused)";
				vd->poll_stopped = true;
				vd->window_ns = 0;
			}
		}
		if (n) {
			vd->polled += n;
			vd->polled_ns += now - t0;
			vd->poll_until = now + vd->window_ns;
		}
		if (vd->poll_stopped) {
			/* Kicks back on for good; what raced in is served on
			 * the next round. */
			if (!virtq_set_kick(vq, true) || !vq->ready)
				vd->polling = false;
			continue;
		}
		if (!n && (now >= vd->poll_until || !vq->ready)) {
			/* Idle: kicks back on. One that raced in is served
			 * on the next round, and polling goes on. */
			if (virtq_set_kick(vq, true) && vq->ready) {
				virtq_set_kick(vq, false);
				vd->poll_until = now + vd->window_ns;
			} else {
				vd->polling = false;
			}
			continue;
		}
		/* Spin without the lock (and without writing anything the
		 * vCPUs share) until the driver adds a request or it is time
		 * to look at the clock again. */
		seen = now;
		pthread_mutex_unlock(&d->lock);
		if (poll_yield) {
			if (!virtq_avail_peek(vq))
				sched_yield();	/* the vCPU that would add one needs this CPU */
		} else {
			for (unsigned i = 0; i < 256 && !virtq_avail_peek(vq); i++)
				cpu_relax();
		}
		/* A vCPU may hold the lock for long (a config write the
		 * backend serves); at idle priority the poller keeps trying
		 * rather than sleep on it, so that each failed try shows it
		 * on its CPU. Otherwise there is no stall to judge. */
		if (!idle_prio) {
			pthread_mutex_lock(&d->lock);
		} else {
			while (pthread_mutex_trylock(&d->lock)) {
				seen = now_ns();
				cpu_relax();
			}
		}
	}
	return NULL;
}

static void vio_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct vio_dev *vd = d->priv;
	in_dev_lock = true;
	if (q == 0) {
		uint64_t gap = poll_auto ? now_ns() - vd->last_req_ns : 0;

		vd->kicks++;
		serve_requests(vd);
		if (poll_us)
			poll_start(vd, gap);
	}
	deliver_faults(vd);
	in_dev_lock = false;
}

static void vio_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	struct vio_dev *vd = d->priv;
	viommu_config_read(vd->v, off, data, len);
}

static void vio_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	struct vio_dev *vd = d->priv;
	in_dev_lock = true;
	viommu_set_driver_features(vd->v, d->guest_features);
	/* An endpoint left able to reach guest RAM after the driver cleared
	 * bypass: the device cannot go on as the driver believes it does. */
	if (viommu_config_write(vd->v, off, data, len))
		virtio_set_needs_reset(d);
	in_dev_lock = false;
}

static int vio_activate(struct virtio_dev *d)
{
	struct vio_dev *vd = d->priv;
	in_dev_lock = true;
	viommu_set_driver_features(vd->v, d->guest_features);
	deliver_faults(vd);
	in_dev_lock = false;
	/* An endpoint the reset could not block either: the device still
	 * cannot keep the isolation the driver expects. */
	return viommu_unblocked_endpoints(vd->v) ? -EIO : 0;
}

static void vio_reset(struct virtio_dev *d)
{
	struct vio_dev *vd = d->priv;
	/* "When the device is reset, endpoints are not attached to any
	 * domain"; bypass keeps its value. */
	in_dev_lock = true;
	viommu_reset(vd->v);
	vd->polling = false;	/* the queue's own reset drops no_kick */
	in_dev_lock = false;
}

static const struct virtio_dev_ops vio_ops = {
	.config_read = vio_config_read,
	.config_write = vio_config_write,
	.queue_notify = vio_queue_notify,
	.activate = vio_activate,
	.reset = vio_reset,
};

/* The poller thread, if polling is asked for and can help: on a single
 * online CPU it would only take time from the vCPUs. Failing to start it
 * leaves kicks on, which always work. */
static void poller_start(struct vio_dev *vd)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t t;
	int r;

	if (cpus < 2 && !poll_one_cpu) {
		/* The default (auto) says nothing: nothing was asked for. */
		if (!poll_auto)
			fprintf(stderr, "vmm: virtio-iommu: poll=%u ignored: one CPU online, a poller "
					"would only take time from the vCPUs (force=on polls anyway); "
					"requests are served on kicks\n", poll_us);
		poll_us = 0;
		poll_off_why = " (one CPU online)";
		return;
	}
	if (cpus < 2) {
		char mode[16] = "auto";

		if (!poll_auto)
			snprintf(mode, sizeof(mode), "%u", poll_us);
		fprintf(stderr, "vmm: virtio-iommu: poll=%s with force=on on one online CPU: the "
				"poller yields to the vCPUs while it waits\n", mode);
		poll_yield = true;
	}
	pthread_cond_init(&vd->poll_cv, NULL);
	r = pthread_create(&t, NULL, poller, vd);
	if (r) {
		fprintf(stderr, "vmm: virtio-iommu: no poller thread (%s); requests are served on kicks\n",
			strerror(r));
		poll_us = 0;
		poll_off_why = " (no thread)";
		return;
	}
	pthread_setname_np(t, "viommu-poll");
	pthread_detach(t);
}

int virtio_iommu_create(void)
{
	struct viommu_params p;
	struct vio_dev *vd;
	int r;

	if (the_viommu) {
		fprintf(stderr, "vmm: virtio-iommu: only one is supported\n");
		return -EEXIST;
	}
	viommu_params_default(&p);
	p.bypass = default_bypass;
	vd = calloc(1, sizeof(*vd));
	if (!vd || !(vd->v = viommu_new(&p))) {
		free(vd);
		fprintf(stderr, "vmm: virtio-iommu: out of memory\n");
		return -ENOMEM;
	}
	struct virtio_dev *d = &vd->vdev;
	d->ops = &vio_ops;
	d->priv = vd;
	d->name = "virtio-iommu";
	d->device_id = 23;
	d->host_features = viommu_device_features(vd->v) | 1ULL << VIRTIO_F_VERSION_1;
	d->config_size = sizeof(struct virtio_iommu_config);
	d->nqueues = 2;
	d->queue_max_size = 256;
	d->notify_in_vcpu = true;
	d->iommu_platform = false;	/* its own queues are guest-physical */
	d->dma = (struct dma_space){ .mem = &the_vm.mem };
	r = virtio_pci_register(d);
	if (r < 0) {
		fprintf(stderr, "vmm: virtio-iommu: cannot register the PCI function: %s\n",
			strerror(-r));
		viommu_free(vd->v);
		free(vd);
		return r;
	}
	viommu_set_bdf(vd->v, d->bdf);
	viommu_set_fault_notify(vd->v, fault_kick, vd);
	the_dev = vd;
	the_viommu = vd->v;
	vd->window_ns = poll_auto ? 0 : poll_us * 1000ull;
	vd->last_req_ns = now_ns();
	if (poll_us)
		poller_start(vd);
	return 0;
}

int virtio_iommu_bdf(void)
{
	return the_dev ? the_dev->vdev.bdf : -1;
}

void viommu_print_stats(FILE *f)
{
	if (!the_viommu)
		return;
	viommu_dump_stats(the_viommu, f);
	pthread_mutex_lock(&the_dev->vdev.lock);
	fprintf(f, "virtio-iommu: requestq kicks %" PRIu64 " requests %" PRIu64
		   " polled %" PRIu64 " (%.1f us each to serve)",
		the_dev->kicks, the_dev->requests, the_dev->polled,
		the_dev->polled ? the_dev->polled_ns / 1e3 / the_dev->polled : 0.0);
	if (!poll_us)
		fprintf(f, "; poll off%s\n", poll_off_why);
	else if (poll_auto)
		fprintf(f, "; poll auto: window %" PRIu64 " us of %u, grown %" PRIu64
			   " shrunk %" PRIu64 "\n", the_dev->window_ns / 1000, poll_us,
			the_dev->grown, the_dev->shrunk);
	else
		fprintf(f, "; poll %u us\n", poll_us);
	if (poll_us && the_dev->prio) {
		fprintf(f, "virtio-iommu: poller priority %s", the_dev->prio);
		if (the_dev->stall_ns)
			fprintf(f, " (off its CPU for %" PRIu64 " ms)", the_dev->stall_ns / 1000000);
		fputc('\n', f);
	}
	pthread_mutex_unlock(&the_dev->vdev.lock);
}
