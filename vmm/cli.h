/* The command line, in cloud-hypervisor's style (see --help). Parsing knows
 * nothing about KVM: it fills a vmm_config or says which flag is wrong. */
#ifndef VMM_CLI_H
#define VMM_CLI_H
#include <stdint.h>
#include "devices.h"

#define CLI_MAX_DISKS 8
#define CLI_MAX_MEMORY (1ULL << 40)	/* --memory at most 1 TiB */
#define CLI_MAX_NETS 8
#define CLI_MAX_DEVICES 8

struct vmm_config {
	const char *kernel, *initramfs, *cmdline;
	unsigned cpus;
	bool dedicated;		/* --cpus ...,dedicated=on: HLT and PAUSE stay in the guest */
	uint64_t memory;
	struct disk_opts disks[CLI_MAX_DISKS];
	unsigned ndisks;
	struct net_opts nets[CLI_MAX_NETS];
	unsigned nnets;
	struct passthrough_opts devices[CLI_MAX_DEVICES];
	unsigned ndevices;
	enum console_mode serial;
	const char *serial_file;
	struct console_opts console;
	bool iommu;
	unsigned iommu_poll_us;	/* --iommu poll=USEC; 0: no polling; auto: the ceiling */
	bool iommu_poll_auto;	/* --iommu poll=auto (the default): adaptive window */
	bool iommu_poll_one_cpu;	/* --iommu ...,force=on: poll on one CPU too */
	bool stats;		/* print device counters at exit */
	bool pio_notify;	/* --virtio-notify pio */
};

/* --iommu poll=auto: the adaptive window's ceiling. */
#define CLI_IOMMU_POLL_AUTO_MAX_US 2000

enum cli_result { CLI_OK = 0, CLI_EXIT = 1, CLI_ERROR = 2 };

/* CLI_EXIT: --help/--version printed, exit 0. CLI_ERROR: a message naming
 * the flag and the reason went to stderr, exit 2. */
enum cli_result cli_parse(int argc, char **argv, struct vmm_config *c);
/* "512M", "2G", "1048576K"; a bare number is MiB. -EINVAL if malformed. */
int cli_parse_size(const char *s, uint64_t *out);

#endif
