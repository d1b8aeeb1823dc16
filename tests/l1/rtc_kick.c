/* rtc_kick: keep the RTC's periodic interrupt running in the runner's L1.
 *
 * QEMU 7.2's TCG, running L1 with KVM (AMD SVM emulation) inside it, now and
 * then leaves L1's only CPU halted with the LAPIC timer's vector pending in
 * the IRR and nothing to wake it: L1, and the L2 on top, stop until some
 * other interrupt reaches the LAPIC (docs/runner.md, "L1 stalls"). The RTC's
 * periodic interrupt is raised by QEMU's own timers, not by L1's CPU, so it
 * arrives anyway and wakes the CPU, which then takes the pending timer
 * interrupt too. Running this bounds any such stall to one RTC period.
 *
 *   rtc_kick [HZ]   (default 8; a power of two, 2..64)
 *
 * Stays in the foreground reading /dev/rtc0 (closing it would stop the
 * interrupts); run it in the background. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/rtc.h>

int main(int argc, char **argv)
{
	unsigned long hz = argc > 1 ? strtoul(argv[1], NULL, 0) : 8;
	unsigned long data;
	int fd;

	if (hz < 2 || hz > 64 || (hz & (hz - 1))) {
		fprintf(stderr, "rtc_kick: HZ: want a power of two from 2 to 64, got %s\n", argv[1]);
		return 2;
	}
	fd = open("/dev/rtc0", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "rtc_kick: /dev/rtc0: %s (L1 stalls will not be bounded)\n",
			strerror(errno));
		return 1;
	}
	if (ioctl(fd, RTC_IRQP_SET, hz) < 0 || ioctl(fd, RTC_PIE_ON, 0) < 0) {
		fprintf(stderr, "rtc_kick: periodic interrupt at %lu Hz: %s (L1 stalls will not "
			"be bounded)\n", hz, strerror(errno));
		return 1;
	}
	for (;;) {
		if (read(fd, &data, sizeof(data)) < 0 && errno != EINTR) {
			fprintf(stderr, "rtc_kick: read: %s\n", strerror(errno));
			return 1;
		}
	}
}
