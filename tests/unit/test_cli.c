/* Command-line parsing: good input fills the config, bad input names the
 * flag and is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "cli.h"

#define ARGV(...) ((char *[]){ "vmm", __VA_ARGS__, NULL })
#define ARGC(...) (int)(sizeof((char *[]){ "vmm", __VA_ARGS__ }) / sizeof(char *))
#define PARSE(c, ...) cli_parse(ARGC(__VA_ARGS__), dup_argv(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__)), c)

/* getopt and the key=value parser write into argv: give them copies. */
static char **dup_argv(int argc, char **argv)
{
	static char buf[16][256];
	static char *out[17];

	for (int i = 0; i < argc; i++) {
		snprintf(buf[i], sizeof(buf[i]), "%s", argv[i]);
		out[i] = buf[i];
	}
	out[argc] = NULL;
	return out;
}

static void test_minimal_defaults(void **state)
{
	struct vmm_config c;

	assert_int_equal(PARSE(&c, "--kernel", "bz"), CLI_OK);
	assert_string_equal(c.kernel, "bz");
	assert_int_equal(c.cpus, 1);
	assert_false(c.dedicated);
	assert_int_equal(c.memory, 512ULL << 20);
	assert_int_equal(c.serial, CONSOLE_TTY);
	assert_int_equal(c.console.mode, CONSOLE_OFF);
	assert_false(c.iommu);
}

static void test_full(void **state)
{
	struct vmm_config c;

	assert_int_equal(PARSE(&c, "--kernel", "bz", "--cpus", "boot=4", "--memory", "size=2G",
			       "--disk", "path=/d.img,readonly=on,iommu=on", "--iommu",
			       "--net", "tap=tap0,mac=52:54:00:12:34:56", "--serial", "off",
			       "--console", "file=/tmp/c.log"), CLI_OK);
	assert_int_equal(c.cpus, 4);
	assert_int_equal(c.memory, 2ULL << 30);
	assert_int_equal(c.ndisks, 1);
	assert_string_equal(c.disks[0].path, "/d.img");
	assert_true(c.disks[0].readonly);
	assert_true(c.disks[0].iommu);
	assert_true(c.disks[0].direct);
	assert_false(c.disks[0].indirect);	/* behind the IOMMU: off by default */
	assert_int_equal(c.nnets, 1);
	assert_string_equal(c.nets[0].tap, "tap0");
	assert_true(c.nets[0].mac_set);
	assert_int_equal(c.nets[0].mac[5], 0x56);
	assert_int_equal(c.serial, CONSOLE_OFF);
	assert_int_equal(c.console.mode, CONSOLE_FILE);
	assert_string_equal(c.console.file, "/tmp/c.log");
}

static void test_sizes(void **state)
{
	uint64_t v;

	assert_int_equal(cli_parse_size("512M", &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(cli_parse_size("1GiB", &v), 0);
	assert_int_equal(v, 1ULL << 30);
	assert_int_equal(cli_parse_size("256", &v), 0);
	assert_int_equal(v, 256ULL << 20);
	assert_int_equal(cli_parse_size("1x", &v), -EINVAL);
	assert_int_equal(cli_parse_size("-1G", &v), -EINVAL);
	assert_int_equal(cli_parse_size("", &v), -EINVAL);
	assert_int_equal(cli_parse_size("99999999999999999999G", &v), -EINVAL);
}

/* Each of these must be refused with status 2. */
static void test_bad_input(void **state)
{
	struct vmm_config c;

	assert_int_equal(PARSE(&c, "--cpus", "2"), CLI_ERROR);			/* no kernel */
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--cpus", "0"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--cpus", "65"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--cpus", "two"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--memory", "lots"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--memory", "16M"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--disk", "readonly=on"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--disk", "path=x,readonly=maybe"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--disk", "path=x,colour=red"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--net", "mac=52:54:00:00:00:01"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--net", "tap=t,mac=01:00:00:00:00:01"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--net", "tap=averyveryverylongname"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--serial", "loud"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--console", "tty"), CLI_ERROR);	/* tty taken */
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--frobnicate"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "stray"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel"), CLI_ERROR);				/* missing value */
	/* iommu=on without --iommu is a nonsense combination */
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--disk", "path=x,iommu=on"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--device", "path=/dev/vfio/devices/vfio0,iommu=on"), CLI_ERROR);
}

static void expect_poll(const struct vmm_config *c, unsigned us, bool autop, bool one_cpu)
{
	assert_int_equal(c->iommu_poll_us, us);
	assert_int_equal(c->iommu_poll_auto, autop);
	assert_int_equal(c->iommu_poll_one_cpu, one_cpu);
}

static void test_iommu_poll(void **state)
{
	struct vmm_config c;

	/* The default: an adaptive window, up to its ceiling. */
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--iommu"), CLI_OK);
	assert_true(c.iommu);
	expect_poll(&c, CLI_IOMMU_POLL_AUTO_MAX_US, true, false);
	static const struct { char *opt; unsigned us; bool autop, one_cpu; } ok[] = {
		{ "poll=250", 250, false, false },
		{ "poll=off", 0, false, false },
		{ "poll=0", 0, false, false },
		{ "poll=auto", CLI_IOMMU_POLL_AUTO_MAX_US, true, false },
		{ "poll=2000", 2000, false, false },
		/* force=on: poll on a single online CPU too; not with poll=off. */
		{ "poll=2000,force=on", 2000, false, true },
		{ "force=on,poll=30", 30, false, true },
		{ "poll=9,force=off", 9, false, false },
		{ "force=on", CLI_IOMMU_POLL_AUTO_MAX_US, true, true },
		{ "poll=auto,force=on", CLI_IOMMU_POLL_AUTO_MAX_US, true, true },
	};
	for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(PARSE(&c, "--kernel", "bz", "--iommu", ok[i].opt), CLI_OK);
		expect_poll(&c, ok[i].us, ok[i].autop, ok[i].one_cpu);
	}
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--iommu=poll=1000000", "--stats"), CLI_OK);
	assert_int_equal(c.iommu_poll_us, 1000000);
	assert_true(c.stats);
	/* The next flag is not taken for the option. */
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--iommu", "--disk", "path=x,iommu=on"), CLI_OK);
	assert_true(c.iommu_poll_auto);
	assert_true(c.disks[0].iommu);

	static char *const bad[] = {
		"poll=1000001", "poll=-1", "poll=", "poll=5us", "poll", "poll=Auto",
		"poll=0,force=on", "poll=off,force=on",	/* force=on with polling off */
		"poll=20,force=maybe", "poll=20,force", "poll=20,speed=2",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(PARSE(&c, "--kernel", "bz", "--iommu", bad[i]), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--iommu=fast"), CLI_ERROR);
}

/* Indirect descriptors: on by default, off by default behind the IOMMU,
 * and either way when said. */
static void test_disk_indirect(void **state)
{
	struct vmm_config c;

	assert_int_equal(PARSE(&c, "--kernel", "bz", "--disk", "path=a"), CLI_OK);
	assert_true(c.disks[0].indirect);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--disk", "path=a,indirect=off"), CLI_OK);
	assert_false(c.disks[0].indirect);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--iommu", "--disk", "path=a,iommu=on"), CLI_OK);
	assert_false(c.disks[0].indirect);
	/* Order does not matter: indirect=on before iommu=on still wins. */
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--iommu", "--disk",
			       "path=a,indirect=on,iommu=on"), CLI_OK);
	assert_true(c.disks[0].indirect);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--disk", "path=a,indirect=yes"), CLI_ERROR);
}

static void test_virtio_notify(void **state)
{
	struct vmm_config c;

	assert_int_equal(PARSE(&c, "--kernel", "bz"), CLI_OK);
	assert_false(c.pio_notify);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--virtio-notify", "pio"), CLI_OK);
	assert_true(c.pio_notify);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--virtio-notify=mmio"), CLI_OK);
	assert_false(c.pio_notify);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--virtio-notify", "port"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--virtio-notify"), CLI_ERROR);
}

static void test_device_rom(void **state)
{
	struct vmm_config c;
	const char *dev = "path=/dev/vfio/devices/vfio0";

	assert_int_equal(PARSE(&c, "--kernel", "bz", "--device", (char *)dev), CLI_OK);
	assert_int_equal(c.ndevices, 1);
	assert_string_equal(c.devices[0].path, dev + 5);
	assert_false(c.devices[0].rom_off);		/* the device's ROM by default */
	assert_null(c.devices[0].romfile);
	assert_false(c.devices[0].mmap_off);		/* BARs mmapped by default */
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--device",
			       "path=/dev/vfio/devices/vfio0,rom=off"), CLI_OK);
	assert_true(c.devices[0].rom_off);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--device",
			       "path=/dev/vfio/devices/vfio0,rom=on,romfile=/x/vbios.rom"), CLI_OK);
	assert_false(c.devices[0].rom_off);
	assert_string_equal(c.devices[0].romfile, "/x/vbios.rom");
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--device",
			       "path=/dev/vfio/devices/vfio0,rom=off,romfile=/x/vbios.rom"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--device",
			       "path=/dev/vfio/devices/vfio0,rom=maybe"), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--device",
			       "path=/dev/vfio/devices/vfio0,romfile="), CLI_ERROR);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--device", "rom=off"), CLI_ERROR);
	/* mmap=off: every BAR access trapped. */
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--device",
			       "path=/dev/vfio/devices/vfio0,iommu=off,rom=off,mmap=off"), CLI_OK);
	assert_true(c.devices[0].mmap_off);
	assert_int_equal(PARSE(&c, "--kernel", "bz", "--device",
			       "path=/dev/vfio/devices/vfio0,mmap=no"), CLI_ERROR);
}

static void test_help_version(void **state)
{
	struct vmm_config c;

	assert_int_equal(PARSE(&c, "--version"), CLI_EXIT);
	assert_int_equal(PARSE(&c, "--help"), CLI_EXIT);
}

/* Parse with stderr captured: the message must name the flag and say why. */
#define PARSE_MSG(msg, ...) parse_msg(msg, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))
static enum cli_result parse_msg(char msg[512], int argc, char **argv)
{
	struct vmm_config c;
	FILE *f = tmpfile();
	int saved = dup(2);

	assert_non_null(f);
	fflush(stderr);
	dup2(fileno(f), 2);
	enum cli_result r = cli_parse(argc, dup_argv(argc, argv), &c);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	size_t n = fread(msg, 1, 511, f);
	msg[n] = 0;
	fclose(f);
	return r;
}

#define BAD(want, ...) do {							\
		char m_[512];							\
		assert_int_equal(PARSE_MSG(m_, __VA_ARGS__), CLI_ERROR);	\
		if (!strstr(m_, want))						\
			fail_msg("message '%s' lacks '%s'", m_, want);		\
	} while (0)

static void test_bad_input_messages(void **state)
{
	/* A flag that takes no value, given one. */
	BAD("vmm: --stats: takes no value", "--kernel", "bz", "--stats=1");
	BAD("vmm: --help: takes no value", "--help=x");
	/* Empty values are named as such, not as unknown options. */
	BAD("vmm: --disk: path= needs a file name", "--kernel", "bz", "--disk", "path=");
	BAD("vmm: --net: tap= needs an interface name", "--kernel", "bz", "--net", "tap=");
	BAD("vmm: --net: mac='' is not a unicast MAC", "--kernel", "bz", "--net", "tap=t0,mac");
	BAD("vmm: --device: path= needs a device path", "--kernel", "bz", "--device", "path=");
	/* Signs and spaces are not numbers. */
	BAD("vmm: --cpus:", "--kernel", "bz", "--cpus", "-18446744073709551615");
	BAD("vmm: --cpus:", "--kernel", "bz", "--cpus", " 2");
	BAD("vmm: --memory:", "--kernel", "bz", "--memory", " -18446744073708503040K");
	BAD("vmm: --iommu:", "--kernel", "bz", "--iommu", "poll= -18446744073709551615");
	BAD("mac='02:-1:00:00:00:01'", "--kernel", "bz", "--net", "tap=t0,mac=02:-1:00:00:00:01");
	BAD("mac='2:54:00:12:34:56'", "--kernel", "bz", "--net", "tap=t0,mac=2:54:00:12:34:56");
	/* Given twice. */
	BAD("vmm: --kernel: given twice", "--kernel", "a", "--kernel", "b");
	BAD("vmm: --initramfs: given twice", "--kernel", "a", "--initramfs", "i", "--initramfs", "j");
	BAD("vmm: --disk: path= given twice", "--kernel", "bz", "--disk", "path=a,path=b");
	BAD("vmm: --device: path= given twice", "--kernel", "bz", "--device", "path=a,path=b");
	/* Memory beyond what a guest is given. */
	BAD("vmm: --memory: '2T' is more than", "--kernel", "bz", "--memory", "2T");
	/* And a MAC in full is still fine. */
	char m[512];
	assert_int_equal(PARSE_MSG(m, "--kernel", "bz", "--net", "tap=t0,mac=52:54:00:AB:cd:01"),
			 CLI_OK);
}

/* --cpus N|boot=N[,dedicated=on|off]: the count and the option in either
 * order; the option alone keeps one vCPU. */
static void test_cpus_dedicated(void **state)
{
	static const struct { const char *arg; unsigned cpus; bool dedicated; } good[] = {
		{ "2,dedicated=on", 2, true },
		{ "dedicated=on,boot=3", 3, true },
		{ "dedicated=on", 1, true },
		{ "4,dedicated=off", 4, false },
	};
	struct vmm_config c;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char arg[32];

		snprintf(arg, sizeof(arg), "%s", good[i].arg);	/* argv is not const */
		assert_int_equal(PARSE(&c, "--kernel", "bz", "--cpus", arg), CLI_OK);
		assert_int_equal(c.cpus, good[i].cpus);
		assert_int_equal(c.dedicated, good[i].dedicated);
	}
	BAD("vmm: --cpus: 'yes' must be on or off", "--kernel", "bz", "--cpus", "1,dedicated=yes");
	BAD("vmm: --cpus: 'dedicated' needs a value", "--kernel", "bz", "--cpus", "1,dedicated");
	BAD("vmm: --cpus: unknown option 'pin'", "--kernel", "bz", "--cpus", "1,pin=2");
	BAD("vmm: --cpus: unknown option '2'", "--kernel", "bz", "--cpus", "1,2");
	BAD("vmm: --cpus: the number of vCPUs given twice", "--kernel", "bz", "--cpus", "1,boot=2");
	BAD("vmm: --cpus: '65' is not a number", "--kernel", "bz", "--cpus", "65,dedicated=on");
	BAD("vmm: --cpus: '' is not a number", "--kernel", "bz", "--cpus", "boot=,dedicated=on");
	BAD("vmm: --cpus: '' is not a number", "--kernel", "bz", "--cpus", "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_bad_input_messages),
		cmocka_unit_test(test_iommu_poll),
		cmocka_unit_test(test_disk_indirect),
		cmocka_unit_test(test_virtio_notify),
		cmocka_unit_test(test_device_rom),
		cmocka_unit_test(test_help_version),
		cmocka_unit_test(test_cpus_dedicated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
