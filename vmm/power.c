/* Power and reset: the FADT's sleep control/status and reset registers
 * (hardware-reduced ACPI), the i8042 reset line Linux falls back to, and
 * port 0x80 (POST codes, written by io_delay) so it costs no lookup miss. */
#include <stdio.h>
#include <string.h>
#include "power.h"
#include "vm.h"

#define SLP_EN (1 << 5)

static void acpi_io(void *opaque, uint64_t off, void *data, unsigned len, bool is_write)
{
	uint8_t v = *(uint8_t *)data;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	switch (PORT_ACPI_SLEEP_CTL + off) {
	case PORT_ACPI_SLEEP_CTL:
		if ((v & SLP_EN) && ((v >> 2) & 7) == ACPI_S5_SLP_TYP)
			vm_request_exit(VM_POWEROFF);
		break;
	case PORT_ACPI_RESET:
		if (v == ACPI_RESET_VALUE)
			vm_request_exit(VM_REBOOT);
		break;
	}
}

static void i8042_io(void *opaque, uint64_t off, void *data, unsigned len, bool is_write)
{
	if (!is_write) {
		memset(data, 0, len);	/* status: nothing to read, ready for input */
		return;
	}
	if (off == 4 && *(uint8_t *)data == 0xfe)	/* pulse the reset line */
		vm_request_exit(VM_REBOOT);
}

static void sink_io(void *opaque, uint64_t off, void *data, unsigned len, bool is_write)
{
	if (!is_write)
		memset(data, 0xff, len);
}

int power_init(void)
{
	int ret = io_bus_register(&the_vm.pio, PORT_ACPI_SLEEP_CTL, 3, acpi_io, NULL);

	if (!ret)
		ret = io_bus_register(&the_vm.pio, 0x60, 5, i8042_io, NULL);
	if (!ret)
		ret = io_bus_register(&the_vm.pio, 0x80, 1, sink_io, NULL);
	return ret;
}
