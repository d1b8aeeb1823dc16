/* What main() needs from the device set as a whole. */
#include <errno.h>
#include <stdio.h>
#include "devices.h"

void devices_print_stats(FILE *f)
{
	if (the_viommu)
		viommu_print_stats(f);
	vfio_print_stats(f);
}
