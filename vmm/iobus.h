/* Port-I/O and MMIO dispatch. A device registers a handler for an address
 * range; vCPU threads look the range up on every exit (sorted array, binary
 * search, read-mostly lock so PCI BAR moves can happen at run time). */
#ifndef VMM_IOBUS_H
#define VMM_IOBUS_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* offset is relative to the registered base; len is 1, 2, 4 or 8. */
typedef void (*io_handler_fn)(void *opaque, uint64_t offset, void *data,
			      unsigned len, bool is_write);

struct io_range {
	uint64_t base, len;
	io_handler_fn fn;
	void *opaque;
};

struct io_bus {
	pthread_rwlock_t lock;
	struct io_range *ranges;	/* sorted by base, non-overlapping */
	unsigned n, cap;
};

void io_bus_init(struct io_bus *bus);
/* -EEXIST if the range overlaps one already registered. */
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    io_handler_fn fn, void *opaque);
int io_bus_unregister(struct io_bus *bus, uint64_t base);
/* Dispatch an access; reads of unclaimed addresses return all-ones.
 * Returns false when nothing claimed the address. */
bool io_bus_access(struct io_bus *bus, uint64_t addr, void *data, unsigned len,
		   bool is_write);

#endif
