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
 * Not /dev/rtc's RTC_PIE_ON: Linux emulates that with an hrtimer, which
 * needs the very LAPIC timer interrupt that was lost. The kernel's rtc-cmos
 * driver owns IRQ 8 and acknowledges each interrupt (register C); it does
 * not turn PIE off by itself, but this re-asserts the setting every few
 * seconds anyway.
 *
 *   rtc_kick [HZ]   (default 8; a power of two, 2..256). Runs forever. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <unistd.h>

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
	for (;;) {
		unsigned char a = cmos_read(RTC_REG_A), b = cmos_read(RTC_REG_B);

		if ((a & 0x0f) != rate)
			cmos_write(RTC_REG_A, (a & 0xf0) | rate);
		if (!(b & RTC_B_PIE))
			cmos_write(RTC_REG_B, b | RTC_B_PIE);
		sleep(5);
	}
}
