/* exitcost: the cost of one guest exit of each kind, timed from inside the
 * guest (it runs in L2, carried by build/images/l2-tools.cpio):
 *
 *	pio-in		inb from the 8250's scratch register (0x3ff)
 *	pio-out		outb to it
 *	mmio-in		32-bit read of a virtio-pci BAR register
 *	mmio-out	32-bit write of it (the value read, written back)
 *	mmio-kick	16-bit write of a queue notify register (ioeventfd, when
 *			the VMM registered one)
 *	pio-kick	16-bit port write of a queue notify register in an I/O
 *			BAR (-p PORT; the VMM's --virtio-notify pio)
 *
 *   exitcost [-n N] [-p PORT] RESOURCE_FILE REG_OFFSET [NOTIFY_OFFSET]
 *
 * RESOURCE_FILE is a PCI BAR in sysfs (/sys/bus/pci/devices/.../resource0);
 * REG_OFFSET a register whose read has no side effect and whose write of
 * the same value changes nothing (virtio common config device_feature_select).
 * Prints "EXITCOST KIND: ns_per_exit=X" for each, the median of 5 rounds of N. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

enum kind { PIO_IN, PIO_OUT, MMIO_IN, MMIO_OUT, MMIO_KICK, PIO_KICK };
static const char *const names[] = { "pio-in", "pio-out", "mmio-in", "mmio-out", "mmio-kick",
				     "pio-kick" };

static volatile uint8_t *bar;
static unsigned long reg, notify, port;

static double round_ns(enum kind k, unsigned n)
{
	volatile uint32_t *r = (volatile uint32_t *)(bar + reg);
	volatile uint16_t *q = (volatile uint16_t *)(bar + notify);
	uint32_t v = bar ? *r : 0;
	double t0 = now_ns();

	for (unsigned i = 0; i < n; i++) {
		switch (k) {
		case PIO_IN:
			(void)inb(0x3ff);
			break;
		case PIO_OUT:
			outb(0x5a, 0x3ff);
			break;
		case MMIO_IN:
			(void)*r;
			break;
		case MMIO_OUT:
			*r = v;
			break;
		case MMIO_KICK:
			*q = 0;
			break;
		case PIO_KICK:
			outw(0, port);
			break;
		}
	}
	return (now_ns() - t0) / n;
}

int main(int argc, char **argv)
{
	unsigned n = 500;
	int a = 1;

	for (; argc - a > 1 && argv[a][0] == '-'; a += 2) {
		if (!strcmp(argv[a], "-n"))
			n = strtoul(argv[a + 1], NULL, 0);
		else if (!strcmp(argv[a], "-p"))
			port = strtoul(argv[a + 1], NULL, 0);
		else
			break;
	}
	if (argc - a < 2 || !n || port > 0xfffe) {
		fprintf(stderr, "usage: exitcost [-n N] [-p PORT] RESOURCE_FILE REG_OFFSET [NOTIFY_OFFSET]\n");
		return 2;
	}
	/* The ports through the TSS bitmap (iopl(3) faulted under QEMU 7.2's
	 * TCG in this setup). */
	if (ioperm(0x3f8, 8, 1) || (port && ioperm(port, 2, 1))) {
		perror("exitcost: ioperm");
		return 1;
	}
	int fd = open(argv[a], O_RDWR | O_SYNC);
	if (fd < 0) {
		perror(argv[a]);
		return 1;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("exitcost: mmap");
		return 1;
	}
	bar = p;
	reg = strtoul(argv[a + 1], NULL, 0);
	notify = argc - a > 2 ? strtoul(argv[a + 2], NULL, 0) : 0;
	if (reg + 4 > (unsigned long)size || notify + 2 > (unsigned long)size) {
		fprintf(stderr, "exitcost: offsets beyond the BAR (%lld bytes)\n", (long long)size);
		return 2;
	}
	for (enum kind k = PIO_IN; k <= PIO_KICK; k++) {
		double t[5];

		if ((k == MMIO_KICK && argc - a < 3) || (k == PIO_KICK && !port))
			continue;
		(void)round_ns(k, n / 10 + 1);		/* warm up */
		for (int i = 0; i < 5; i++)
			t[i] = round_ns(k, n);
		qsort(t, 5, sizeof(t[0]), cmp);
		printf("EXITCOST %s: ns_per_exit=%.0f\n", names[k], t[2]);
		fflush(stdout);
	}
	return 0;
}
