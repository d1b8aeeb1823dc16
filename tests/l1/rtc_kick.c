/* rtc_kick: keep the CMOS RTC's periodic interrupt running in the runner's
 * L1, programmed in the chip itself.
 *
 * QEMU 7.2's TCG, running L1 with KVM (AMD SVM emulation) inside it, now and
 * then leaves L1's only CPU halted with the LAPIC timer's vector pending in
 * the IRR and nothing to wake it: L1, and the L2 on top, stop until some
 * other interrupt reaches the LAPIC (docs/runner.md, "L1 stalls"). The RTC's
 * periodic interrupt, once the rate and PIE are set in registers A and B, is
 * raised by QEMU's RTC model every period whatever L1's CPU does (QEMU's
 * IO-APIC delivers an edge-triggered pin on every raise), so it wakes the
 * CPU, which then takes the pending timer interrupt too. That bounds any
 * such stall to one period.
 *
 * With more than one CPU the RTC's interrupt reaches one of them; another
 * may stall the same way. So one thread per CPU, pinned there, sleeps
 * 100 ms at a time on its own timer; when that sleep ends it wakes every
 * other CPU's thread, and a wakeup of a thread pinned to a halted CPU is an
 * IPI to that CPU, which then takes its pending timer interrupt. A CPU
 * whose timer was lost is so woken by the others within 100 ms (and the
 * RTC's CPU keeps its timers running even if all stalled at once).
 *
 * Not /dev/rtc's RTC_PIE_ON: Linux emulates that with an hrtimer, which
 * needs the very LAPIC timer interrupt that was lost. The kernel's rtc-cmos
 * driver owns IRQ 8 and acknowledges each interrupt (register C); it does
 * not turn PIE off by itself, but this re-asserts the setting every few
 * seconds anyway.
 *
 *   rtc_kick [HZ]   (default 8; a power of two, 2..256). Runs forever. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/io.h>
#include <unistd.h>

#define MAX_CPUS 64

static int ncpus;
static int wake_fd[MAX_CPUS];

/* One per CPU: see above. */
static void *cpu_poker(void *arg)
{
	int me = (int)(intptr_t)arg;
	struct pollfd p = { .fd = wake_fd[me], .events = POLLIN };
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(me, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	for (;;) {
		uint64_t n;

		if (poll(&p, 1, 100) > 0) {
			if (read(wake_fd[me], &n, sizeof(n)) < 0) {
				/* EAGAIN: nothing to drain. */
			}
			continue;
		}
		n = 1;
		for (int c = 0; c < ncpus; c++)
			if (c != me && write(wake_fd[c], &n, sizeof(n)) < 0) {
				/* The counter is saturated: it is awake anyway. */
			}
	}
	return NULL;
}

static void start_pokers(void)
{
	ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpus < 2)
		return;
	if (ncpus > MAX_CPUS)
		ncpus = MAX_CPUS;
	for (int c = 0; c < ncpus; c++) {
		wake_fd[c] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (wake_fd[c] < 0) {
			fprintf(stderr, "rtc_kick: eventfd: %s (CPUs other than the RTC's are not kicked)\n",
				strerror(errno));
			return;
		}
	}
	for (int c = 0; c < ncpus; c++) {
		pthread_t t;
		int r = pthread_create(&t, NULL, cpu_poker, (void *)(intptr_t)c);

		if (r) {
			fprintf(stderr, "rtc_kick: thread for CPU %d: %s\n", c, strerror(r));
			return;
		}
	}
}

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_B_PIE 0x40

static unsigned char cmos_read(unsigned char reg)
{
	outb(reg, CMOS_INDEX);
	return inb(CMOS_DATA);
}

static void cmos_write(unsigned char reg, unsigned char v)
{
	outb(reg, CMOS_INDEX);
	outb(v, CMOS_DATA);
}

int main(int argc, char **argv)
{
	unsigned long hz = argc > 1 ? strtoul(argv[1], NULL, 0) : 8;
	unsigned rate = 0;

	if (hz < 2 || hz > 256 || (hz & (hz - 1))) {
		fprintf(stderr, "rtc_kick: HZ: want a power of two from 2 to 256, got %s\n", argv[1]);
		return 2;
	}
	/* Periodic rate: 32768 >> (rate - 1) Hz, rate 3..15. */
	while ((32768ul >> rate) != hz)
		rate++;
	rate++;
	if (ioperm(CMOS_INDEX, 2, 1) < 0) {
		fprintf(stderr, "rtc_kick: ioperm: %s (L1 stalls will not be bounded)\n",
			strerror(errno));
		return 1;
	}
	start_pokers();
	for (;;) {
		unsigned char a = cmos_read(RTC_REG_A), b = cmos_read(RTC_REG_B);

		if ((a & 0x0f) != rate)
			cmos_write(RTC_REG_A, (a & 0xf0) | rate);
		if (!(b & RTC_B_PIE))
			cmos_write(RTC_REG_B, b | RTC_B_PIE);
		sleep(5);
	}
}
