/* Address-range dispatch for port I/O and MMIO exits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "iobus.h"

void io_bus_init(struct io_bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	pthread_rwlock_init(&bus->lock, NULL);
}

/* Index of the first range whose base is > addr. */
static unsigned upper_bound(const struct io_bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (bus->ranges[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    io_handler_fn fn, void *opaque)
{
	unsigned i;
	int ret = 0;

	if (len == 0 || base + len - 1 < base)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	i = upper_bound(bus, base);
	if ((i > 0 && bus->ranges[i - 1].base + bus->ranges[i - 1].len > base) ||
	    (i < bus->n && bus->ranges[i].base <= base + len - 1)) {
		ret = -EEXIST;
		goto out;
	}
	if (bus->n == bus->cap) {
		unsigned cap = bus->cap ? bus->cap * 2 : 16;
		struct io_range *r = realloc(bus->ranges, cap * sizeof(*r));

		if (!r) {
			ret = -ENOMEM;
			goto out;
		}
		bus->ranges = r;
		bus->cap = cap;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->n - i) * sizeof(bus->ranges[0]));
	bus->ranges[i] = (struct io_range){ base, len, fn, opaque };
	bus->n++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int io_bus_unregister(struct io_bus *bus, uint64_t base)
{
	unsigned i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	i = upper_bound(bus, base);
	if (i > 0 && bus->ranges[i - 1].base == base) {
		i--;
		memmove(&bus->ranges[i], &bus->ranges[i + 1], (bus->n - i - 1) * sizeof(bus->ranges[0]));
		bus->n--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

bool io_bus_access(struct io_bus *bus, uint64_t addr, void *data, unsigned len,
		   bool is_write)
{
	struct io_range r;
	unsigned i;
	bool found = false;

	pthread_rwlock_rdlock(&bus->lock);
	i = upper_bound(bus, addr);
	if (i > 0 && addr - bus->ranges[i - 1].base < bus->ranges[i - 1].len) {
		r = bus->ranges[i - 1];
		found = true;
	}
	pthread_rwlock_unlock(&bus->lock);
	/* The handler runs unlocked: it may itself move BARs. */
	if (found)
		r.fn(r.opaque, addr - r.base, data, len, is_write);
	else if (!is_write)
		memset(data, 0xff, len);
	return found;
}
