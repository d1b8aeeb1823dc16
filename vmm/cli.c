/* Command-line parsing. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

#ifndef VMM_VERSION
#define VMM_VERSION "unknown"
#endif

static const char usage[] =
"Usage: vmm --kernel BZIMAGE [options]\n"
"\n"
"Boot a Linux guest on KVM.\n"
"\n"
"  --kernel PATH          bzImage to boot (required)\n"
"  --initramfs PATH       initramfs (cpio) to load beside it\n"
"  --cmdline STRING       kernel command line (default: \"console=ttyS0\")\n"
"  --cpus N | boot=N[,dedicated=on]\n"
"                         number of vCPUs, 1-64 (default 1); dedicated=on:\n"
"                         each has a host CPU to itself, so the guest's HLT\n"
"                         and PAUSE do not exit (an idle vCPU keeps its CPU\n"
"                         busy; QEMU's -overcommit cpu-pm=on)\n"
"  --memory SIZE | size=SIZE\n"
"                         guest RAM, e.g. 512M or 2G; a bare number is MiB\n"
"                         (default 512M)\n"
"  --disk path=FILE[,readonly=on][,direct=off][,iommu=on][,indirect=on|off]\n"
"                         virtio-blk on a host file (repeatable); direct=off\n"
"                         skips O_DIRECT; iommu=on puts it behind --iommu;\n"
"                         indirect: offer indirect descriptors (default on,\n"
"                         off with iommu=on: one DMA mapping less per I/O)\n"
"  --net tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,iommu=on]\n"
"                         virtio-net on a tap interface (created if absent)\n"
"  --device path=/dev/vfio/devices/vfioN[,iommu=on][,rom=off|romfile=FILE][,mmap=off]\n"
"                         pass a VFIO cdev device through (repeatable; path\n"
"                         may also be /sys/bus/pci/devices/BDF); the\n"
"                         guest sees the device's expansion ROM unless\n"
"                         rom=off, or FILE's contents with romfile=;\n"
"                         mmap=off traps every BAR access (slow; debugging)\n"
"  --serial tty|off|null|file=PATH\n"
"                         the 16550A UART at COM1 (default tty)\n"
"  --console tty|off|null|file=PATH[,iommu=on]\n"
"                         virtio-console (default off)\n"
"  --iommu [poll=auto|off|USEC][,force=on]\n"
"                         add a virtio-iommu device; its request queue is\n"
"                         served by a polling thread, with the guest's kicks\n"
"                         off, for a window after each request: auto (the\n"
"                         default) sizes the window from the gaps between\n"
"                         requests, up to 2000 us; USEC fixes it (0-1000000;\n"
"                         0 = off: every request kicks); with one CPU online\n"
"                         there is no polling unless force=on (the poller\n"
"                         then shares that CPU)\n"
"  --virtio-notify mmio|pio\n"
"                         where virtio devices' queue notify registers are:\n"
"                         in the memory BAR (mmio, default) or an I/O BAR\n"
"                         (pio: cheaper exits for a nested guest)\n"
"  --stats                print device counters when the VM stops\n"
"  --help                 this text\n"
"  --version              the version\n"
"\n"
"Exit status: 0 when the guest powers off, 1 on a VM error, 2 on bad\n"
"command-line input. A guest reboot restarts the VM.\n";

static int fail(const char *flag, const char *fmt, const char *arg)
{
	fprintf(stderr, "vmm: %s: ", flag);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return CLI_ERROR;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 20;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;	/* (strtoull would take spaces and a sign) */
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	case '\0': break;
	default: return -EINVAL;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* Split "k1=v1,k2=v2" in place. A bare word is given as key with value NULL. */
struct kv {
	char *key, *val;
};

static int split_kv(char *s, struct kv *kv, int max)
{
	int n = 0;

	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		char *eq = strchr(tok, '=');

		if (n == max)
			return -1;
		kv[n].key = tok;
		kv[n].val = NULL;
		if (eq) {
			*eq = '\0';
			kv[n].val = eq + 1;
		}
		n++;
	}
	return n;
}

static int parse_onoff(const char *flag, const struct kv *kv, bool *out)
{
	if (!kv->val)
		return fail(flag, "'%s' needs a value (on or off)", kv->key);
	if (!strcmp(kv->val, "on") || !strcmp(kv->val, "true"))
		*out = true;
	else if (!strcmp(kv->val, "off") || !strcmp(kv->val, "false"))
		*out = false;
	else
		return fail(flag, "'%s' must be on or off", kv->val);
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	/* Exactly six pairs of hex digits with colons between them. */
	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    (i < 5 && p[2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t)strtoul((char[]){ p[0], p[1], 0 }, NULL, 16);
	}
	if (mac[0] & 1)
		return -EINVAL;	/* multicast */
	return 0;
}

static int parse_disk(char *arg, struct disk_opts *d)
{
	struct kv kv[8];
	int n = split_kv(arg, kv, 8);
	bool indirect_given = false;

	*d = (struct disk_opts){ .direct = true };
	if (n < 0)
		return fail("--disk", "too many options in '%s'", arg);
	for (int i = 0; i < n; i++) {
		int r = 0;

		if (!strcmp(kv[i].key, "path")) {
			if (!kv[i].val || !*kv[i].val)
				return fail("--disk", "%spath= needs a file name", "");
			if (d->path)
				return fail("--disk", "%spath= given twice", "");
			d->path = kv[i].val;
		} else if (!strcmp(kv[i].key, "readonly"))
			r = parse_onoff("--disk", &kv[i], &d->readonly);
		else if (!strcmp(kv[i].key, "direct"))
			r = parse_onoff("--disk", &kv[i], &d->direct);
		else if (!strcmp(kv[i].key, "iommu"))
			r = parse_onoff("--disk", &kv[i], &d->iommu);
		else if (!strcmp(kv[i].key, "indirect")) {
			r = parse_onoff("--disk", &kv[i], &d->indirect);
			indirect_given = true;
		} else
			return fail("--disk", "unknown option '%s' (path, readonly, direct, iommu, indirect)",
				    kv[i].key);
		if (r)
			return r;
	}
	if (!d->path)
		return fail("--disk", "%spath=FILE is required", "");
	if (!indirect_given)
		d->indirect = !d->iommu;
	return 0;
}

static int parse_net(char *arg, struct net_opts *o)
{
	struct kv kv[8];
	int n = split_kv(arg, kv, 8);

	*o = (struct net_opts){ 0 };
	if (n < 0)
		return fail("--net", "too many options in '%s'", arg);
	for (int i = 0; i < n; i++) {
		int r = 0;

		if (!strcmp(kv[i].key, "tap")) {
			if (!kv[i].val || !*kv[i].val)
				return fail("--net", "%stap= needs an interface name", "");
			if (strlen(kv[i].val) >= 16)
				return fail("--net", "tap name '%s' is longer than 15 characters",
					    kv[i].val);
			o->tap = kv[i].val;
		} else if (!strcmp(kv[i].key, "mac")) {
			if (!kv[i].val || parse_mac(kv[i].val, o->mac))
				return fail("--net", "mac='%s' is not a unicast MAC address (like "
					    "52:54:00:12:34:56)", kv[i].val ? kv[i].val : "");
			o->mac_set = true;
		} else if (!strcmp(kv[i].key, "iommu")) {
			r = parse_onoff("--net", &kv[i], &o->iommu);
		} else {
			return fail("--net", "unknown option '%s' (tap, mac, iommu)", kv[i].key);
		}
		if (r)
			return r;
	}
	if (!o->tap)
		return fail("--net", "%stap=NAME is required", "");
	return 0;
}

static int parse_device(char *arg, struct passthrough_opts *o)
{
	struct kv kv[7];
	int n = split_kv(arg, kv, 7);

	*o = (struct passthrough_opts){ 0 };
	if (n < 0)
		return fail("--device", "too many options in '%s'", arg);
	for (int i = 0; i < n; i++) {
		int r = 0;

		if (!strcmp(kv[i].key, "path")) {
			if (!kv[i].val || !*kv[i].val)
				return fail("--device", "%spath= needs a device path", "");
			if (o->path)
				return fail("--device", "%spath= given twice", "");
			o->path = kv[i].val;
		} else if (!strcmp(kv[i].key, "iommu")) {
			r = parse_onoff("--device", &kv[i], &o->iommu);
		} else if (!strcmp(kv[i].key, "rom")) {
			bool on = true;
			r = parse_onoff("--device", &kv[i], &on);
			o->rom_off = !on;
		} else if (!strcmp(kv[i].key, "romfile")) {
			if (!kv[i].val || !*kv[i].val)
				return fail("--device", "%sromfile= needs a file name", "");
			o->romfile = kv[i].val;
		} else if (!strcmp(kv[i].key, "mmap")) {
			bool on = true;
			r = parse_onoff("--device", &kv[i], &on);
			o->mmap_off = !on;
		} else {
			return fail("--device", "unknown option '%s' (path, iommu, rom, romfile, mmap)",
				    kv[i].key);
		}
		if (r)
			return r;
	}
	if (!o->path)
		return fail("--device", "%spath=/dev/vfio/devices/vfioN is required", "");
	if (o->rom_off && o->romfile)
		return fail("--device", "%srom=off and romfile= contradict each other", "");
	return 0;
}

/* "N", "boot=N", then options: "2,dedicated=on". */
static int parse_cpus(char *arg, struct vmm_config *c)
{
	struct kv kv[4];
	int n = split_kv(arg, kv, 4);
	bool count = false;

	if (n <= 0)
		return fail("--cpus", "'%s' is not a number of vCPUs from 1 to 64", arg);
	for (int i = 0; i < n; i++) {
		const char *v = NULL;

		if (i == 0 && !kv[i].val)
			v = kv[i].key;
		else if (!strcmp(kv[i].key, "boot"))
			v = kv[i].val ? kv[i].val : "";
		if (v) {
			char *end;
			unsigned long cpus;

			errno = 0;
			cpus = isdigit((unsigned char)*v) ? strtoul(v, &end, 10) : 0;
			if (!isdigit((unsigned char)*v) || errno || *end || cpus < 1 || cpus > 64)
				return fail("--cpus", "'%s' is not a number of vCPUs from 1 to 64", v);
			if (count)
				return fail("--cpus", "%sthe number of vCPUs given twice", "");
			count = true;
			c->cpus = cpus;
		} else if (!strcmp(kv[i].key, "dedicated")) {
			int r = parse_onoff("--cpus", &kv[i], &c->dedicated);

			if (r)
				return r;
		} else {
			return fail("--cpus", "unknown option '%s' (N or boot=N, dedicated=on)",
				    kv[i].key);
		}
	}
	return 0;
}

static int parse_iommu(char *arg, struct vmm_config *c)
{
	struct kv kv[4];
	int n = split_kv(arg, kv, 4);
	bool force = false;

	if (n < 0)
		return fail("--iommu", "too many options in '%s'", arg);
	for (int i = 0; i < n; i++) {
		if (!strcmp(kv[i].key, "poll")) {
			char *end;
			unsigned long us;

			if (kv[i].val && !strcmp(kv[i].val, "auto")) {
				c->iommu_poll_auto = true;
				c->iommu_poll_us = CLI_IOMMU_POLL_AUTO_MAX_US;
				continue;
			}
			if (kv[i].val && !strcmp(kv[i].val, "off")) {
				c->iommu_poll_auto = false;
				c->iommu_poll_us = 0;
				continue;
			}
			errno = 0;
			us = kv[i].val && isdigit((unsigned char)kv[i].val[0]) ?
			     strtoul(kv[i].val, &end, 10) : 0;
			if (!kv[i].val || !isdigit((unsigned char)kv[i].val[0]) || errno || *end ||
			    us > 1000000)
				return fail("--iommu", "'%s' is not poll=auto, poll=off or poll=USEC with "
					    "USEC from 0 to 1000000", kv[i].val ? kv[i].val : "poll");
			c->iommu_poll_auto = false;
			c->iommu_poll_us = us;
		} else if (!strcmp(kv[i].key, "force")) {
			int r = parse_onoff("--iommu", &kv[i], &force);
			if (r)
				return r;
		} else {
			return fail("--iommu", "unknown option '%s' (poll=auto|off|USEC, force=on)",
				    kv[i].key);
		}
	}
	if (force && !c->iommu_poll_us)
		return fail("--iommu", "%sforce=on applies to polling, which poll=off turns off", "");
	c->iommu_poll_one_cpu = force;
	return 0;
}

static int parse_console(const char *flag, char *arg, enum console_mode *mode,
			 const char **file, bool *iommu)
{
	struct kv kv[4];
	int n = split_kv(arg, kv, 4);

	if (n <= 0)
		return fail(flag, "'%s' is not tty, off, null or file=PATH", arg);
	for (int i = 0; i < n; i++) {
		if (!strcmp(kv[i].key, "iommu") && iommu) {
			int r = parse_onoff(flag, &kv[i], iommu);

			if (r)
				return r;
		} else if (i == 0 && !kv[i].val && !strcmp(kv[i].key, "tty")) {
			*mode = CONSOLE_TTY;
		} else if (i == 0 && !kv[i].val && !strcmp(kv[i].key, "off")) {
			*mode = CONSOLE_OFF;
		} else if (i == 0 && !kv[i].val && !strcmp(kv[i].key, "null")) {
			*mode = CONSOLE_NULL;
		} else if (i == 0 && !strcmp(kv[i].key, "file") && kv[i].val && *kv[i].val) {
			*mode = CONSOLE_FILE;
			*file = kv[i].val;
		} else {
			return fail(flag, "'%s' is not tty, off, null or file=PATH", kv[i].key);
		}
	}
	return 0;
}

enum {
	OPT_KERNEL = 256, OPT_INITRAMFS, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_DISK,
	OPT_NET, OPT_DEVICE, OPT_SERIAL, OPT_CONSOLE, OPT_IOMMU, OPT_STATS, OPT_HELP,
	OPT_VERSION, OPT_VIRTIO_NOTIFY,
};

static const struct option options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initramfs", required_argument, NULL, OPT_INITRAMFS },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "iommu", optional_argument, NULL, OPT_IOMMU },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "virtio-notify", required_argument, NULL, OPT_VIRTIO_NOTIFY },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ 0 },
};

static const char *strip_prefix(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(s, prefix, n) == 0 ? s + n : s;
}

enum cli_result cli_parse(int argc, char **argv, struct vmm_config *c)
{
	int opt, r;

	*c = (struct vmm_config){
		.cmdline = "console=ttyS0",
		.cpus = 1,
		.memory = 512ULL << 20,
		.serial = CONSOLE_TTY,
		.console = { .mode = CONSOLE_OFF },
	};
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		const char *v;

		switch (opt) {
		case OPT_KERNEL:
			if (c->kernel)
				return fail("--kernel", "%sgiven twice", "");
			c->kernel = optarg;
			break;
		case OPT_INITRAMFS:
			if (c->initramfs)
				return fail("--initramfs", "%sgiven twice", "");
			c->initramfs = optarg;
			break;
		case OPT_CMDLINE:
			c->cmdline = optarg;
			break;
		case OPT_CPUS:
			r = parse_cpus(optarg, c);
			if (r)
				return r;
			break;
		case OPT_MEMORY:
			v = strip_prefix(optarg, "size=");
			if (cli_parse_size(v, &c->memory))
				return fail("--memory", "'%s' is not a size (e.g. 512M, 2G)", optarg);
			if (c->memory < (32ULL << 20))
				return fail("--memory", "'%s' is below the 32 MiB a Linux guest needs", optarg);
			if (c->memory & 0xfff)
				return fail("--memory", "'%s' is not a multiple of 4 KiB", optarg);
			if (c->memory > CLI_MAX_MEMORY)
				return fail("--memory", "'%s' is more than the 1 TiB this VMM gives a guest",
					    optarg);
			break;
		case OPT_DISK:
			if (c->ndisks == CLI_MAX_DISKS)
				return fail("--disk", "more than %s disks", "8");
			r = parse_disk(optarg, &c->disks[c->ndisks++]);
			if (r)
				return r;
			break;
		case OPT_NET:
			if (c->nnets == CLI_MAX_NETS)
				return fail("--net", "more than %s interfaces", "8");
			r = parse_net(optarg, &c->nets[c->nnets++]);
			if (r)
				return r;
			break;
		case OPT_DEVICE:
			if (c->ndevices == CLI_MAX_DEVICES)
				return fail("--device", "more than %s devices", "8");
			r = parse_device(optarg, &c->devices[c->ndevices++]);
			if (r)
				return r;
			break;
		case OPT_SERIAL:
			r = parse_console("--serial", optarg, &c->serial, &c->serial_file, NULL);
			if (r)
				return r;
			break;
		case OPT_CONSOLE:
			r = parse_console("--console", optarg, &c->console.mode, &c->console.file,
					  &c->console.iommu);
			if (r)
				return r;
			break;
		case OPT_IOMMU:
			c->iommu = true;
			c->iommu_poll_auto = true;
			c->iommu_poll_us = CLI_IOMMU_POLL_AUTO_MAX_US;
			/* "--iommu=poll=N", or "--iommu poll=N" like the other flags. */
			if (!optarg && optind < argc &&
			    (!strncmp(argv[optind], "poll=", 5) || !strncmp(argv[optind], "force=", 6)))
				optarg = argv[optind++];
			if (optarg && (r = parse_iommu(optarg, c)))
				return r;
			break;
		case OPT_STATS:
			c->stats = true;
			break;
		case OPT_VIRTIO_NOTIFY:
			if (!strcmp(optarg, "pio"))
				c->pio_notify = true;
			else if (!strcmp(optarg, "mmio"))
				c->pio_notify = false;
			else
				return fail("--virtio-notify", "'%s' is neither mmio nor pio", optarg);
			break;
		case OPT_HELP:
			fputs(usage, stdout);
			return CLI_EXIT;
		case OPT_VERSION:
			printf("vmm %s\n", VMM_VERSION);
			return CLI_EXIT;
		case ':':
			return fail(argv[optind - 1], "%smissing value", "");
		default:
			if (optopt >= OPT_KERNEL) {
				/* A known flag given a value it does not take. */
				char flag[64];
				snprintf(flag, sizeof(flag), "%.*s", (int)strcspn(argv[optind - 1], "="),
					 argv[optind - 1]);
				return fail(flag, "%stakes no value", "");
			}
			if (optopt)
				return fail("option", "'-%c' is unknown (see --help)",
					    (const char[]){ (char)optopt, 0 });
			return fail(argv[optind - 1], "%sunknown option (see --help)", "");
		}
	}
	if (optind < argc)
		return fail(argv[optind], "%sunexpected argument (options are --name VALUE)", "");
	if (!c->kernel)
		return fail("--kernel", "%sis required", "");
	if (c->serial == CONSOLE_TTY && c->console.mode == CONSOLE_TTY)
		return fail("--console", "%stty is taken by --serial; use --serial off|null|file=", "");

	/* iommu=on needs the IOMMU to exist. */
	bool behind = c->console.iommu;

	for (unsigned i = 0; i < c->ndisks; i++)
		behind |= c->disks[i].iommu;
	for (unsigned i = 0; i < c->nnets; i++)
		behind |= c->nets[i].iommu;
	for (unsigned i = 0; i < c->ndevices; i++)
		behind |= c->devices[i].iommu;
	if (behind && !c->iommu)
		return fail("iommu=on", "%sneeds --iommu (there is no virtio-iommu to sit behind)", "");
	if (c->console.iommu && c->console.mode == CONSOLE_OFF)
		return fail("--console", "%siommu=on given for a console that is off", "");
	return CLI_OK;
}
