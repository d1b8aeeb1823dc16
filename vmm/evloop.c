/* One epoll thread for everything that is not a vCPU exit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "evloop.h"

struct ev_entry {
	int fd;
	ev_fn fn;
	void *opaque;
};

static int epfd = -1;
static int stop_fd = -1;
static volatile int stop_code;
static volatile int stopping;

int evloop_init(void)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return -errno;
	stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (stop_fd < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, stop_fd, &ev) < 0)
		return -errno;
	return 0;
}

int evloop_add(int fd, uint32_t events, ev_fn fn, void *opaque)
{
	struct ev_entry *e = calloc(1, sizeof(*e));
	struct epoll_event ev = { .events = events };

	if (!e)
		return -ENOMEM;
	e->fd = fd;
	e->fn = fn;
	e->opaque = opaque;
	ev.data.ptr = e;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;

		free(e);
		return err;
	}
	return 0;
}

int evloop_del(int fd)
{
	/* The entry leaks deliberately: a callback for it may be running.
	 * Deletions are rare (device teardown at exit). */
	if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
		return -errno;
	return 0;
}

int evloop_run(void)
{
	struct epoll_event evs[32];

	while (!stopping) {
		int n = epoll_wait(epfd, evs, 32, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !stopping; i++) {
			struct ev_entry *e = evs[i].data.ptr;

			if (e)
				e->fn(e->opaque, evs[i].events);
		}
	}
	return stop_code;
}

void evloop_stop(int code)
{
	uint64_t one = 1;

	stop_code = code;
	stopping = 1;
	if (stop_fd >= 0 && write(stop_fd, &one, sizeof(one)) < 0) {
		/* Counter overflow only; the flag is already set. */
	}
}
