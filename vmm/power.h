#ifndef VMM_POWER_H
#define VMM_POWER_H
/* Register the ACPI sleep/reset ports and the i8042 reset line. */
int power_init(void);
#endif
