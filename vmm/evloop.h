/* The VMM's event loop: one thread, epoll over file descriptors (ioeventfds,
 * aio completion eventfds, taps, stdin). Callbacks run on that thread. */
#ifndef VMM_EVLOOP_H
#define VMM_EVLOOP_H
#include <stdint.h>

typedef void (*ev_fn)(void *opaque, uint32_t events);

int evloop_init(void);
/* events: EPOLLIN etc. The fd stays owned by the caller. */
int evloop_add(int fd, uint32_t events, ev_fn fn, void *opaque);
int evloop_del(int fd);
/* Runs callbacks until evloop_stop(); returns the code given to it. */
int evloop_run(void);
void evloop_stop(int code);

#endif
