/* vmm: boot a Linux guest on KVM with virtio devices, optionally behind a
 * virtio-iommu. main() wires the parsed command line to the devices; the
 * devices know nothing about the command line. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "acpi.h"
#include "boot.h"
#include "cli.h"
#include "devices.h"
#include "virtio-iommu-dev.h"
#include "virtio.h"
#include "evloop.h"
#include "kvm.h"
#include "pci.h"
#include "power.h"
#include "vm.h"

static void *read_file(const char *flag, const char *path, uint64_t max, size_t *size)
{
	struct stat st;
	void *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);	/* (a FIFO: refused below) */

	if (fd < 0) {
		fprintf(stderr, "vmm: %s: cannot open %s: %s\n", flag, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		fprintf(stderr, "vmm: %s: %s is not a non-empty regular file\n", flag, path);
		close(fd);
		return NULL;
	}
	if ((uint64_t)st.st_size > max) {
		fprintf(stderr, "vmm: %s: %s is larger than guest memory (%llu MiB)\n", flag, path,
			(unsigned long long)(max >> 20));
		close(fd);
		return NULL;
	}
	/* Read, not mapped: the kernel is parsed in two passes and a
	 * mapping would show another process's later writes (or SIGBUS
	 * after a truncation) between them. */
	p = malloc(st.st_size);
	if (!p) {
		fprintf(stderr, "vmm: %s: %s: %s\n", flag, path, strerror(ENOMEM));
		close(fd);
		return NULL;
	}
	for (size_t done = 0; done < (size_t)st.st_size;) {
		ssize_t n = read(fd, (uint8_t *)p + done, st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "vmm: %s: cannot read %s: %s\n", flag, path,
				n < 0 ? strerror(errno) : "it shrank while being read");
			free(p);
			close(fd);
			return NULL;
		}
		done += n;
	}
	close(fd);
	*size = st.st_size;
	return p;
}

static int create_devices(const struct vmm_config *c)
{
	int ret;

	virtio_pci_set_pio_notify(c->pio_notify);
	if (c->iommu) {
		virtio_iommu_set_poll(c->iommu_poll_us, c->iommu_poll_auto, c->iommu_poll_one_cpu);
		if ((ret = virtio_iommu_create()))
			return ret;
	}
	for (unsigned i = 0; i < c->ndisks; i++)
		if ((ret = virtio_blk_create(&c->disks[i])))
			return ret;
	for (unsigned i = 0; i < c->nnets; i++)
		if ((ret = virtio_net_create(&c->nets[i])))
			return ret;
	for (unsigned i = 0; i < c->ndevices; i++)
		if ((ret = vfio_device_create(&c->devices[i])))
			return ret;
	if (c->console.mode != CONSOLE_OFF && (ret = virtio_console_create(&c->console)))
		return ret;
	return 0;
}

/* Returns the exit status on failure: 2 for the kernel, initramfs or
 * command line given, 1 for the VM's own errors; 0 on success. */
static int load_guest(const struct vmm_config *c)
{
	struct acpi_config ac = {
		.ncpus = c->cpus,
		.ecam_base = LAYOUT_PCI_ECAM,
		.bus_start = 0,
		.bus_end = 0,
		.mmio32_base = LAYOUT_PCI_MMIO32,
		.mmio32_size = LAYOUT_PCI_MMIO32_SIZE,
		.mmio64_base = the_vm.mmio64_base,
		.mmio64_size = LAYOUT_PCI_MMIO64_SIZE,
	};
	struct acpi_pci_endpoint_range ranges[PCI_MAX_DEVICES];
	void *kernel, *initrd = NULL;
	size_t ksize, isize = 0;
	struct boot_info bi;
	const char *why;
	long alen;
	int ret;

	if (the_viommu) {
		ac.has_viommu = true;
		ac.viommu_bdf = viommu_bdf(the_viommu);
		ac.n_viot_ranges = viommu_pci_ranges(the_viommu, ranges, PCI_MAX_DEVICES);
		ac.viot_ranges = ranges;
	}
	alen = acpi_build(gpa_to_hva(&the_vm.mem, LAYOUT_ACPI, LAYOUT_ACPI_SIZE), LAYOUT_ACPI,
			  LAYOUT_ACPI_SIZE, &ac);
	if (alen < 0) {
		fprintf(stderr, "vmm: building the ACPI tables: %s\n", strerror(-alen));
		return 1;
	}
	kernel = read_file("--kernel", c->kernel, c->memory, &ksize);
	if (!kernel)
		return 2;
	if (c->initramfs && !(initrd = read_file("--initramfs", c->initramfs, c->memory, &isize))) {
		free(kernel);
		return 2;
	}
	ret = boot_load(&the_vm.mem, kernel, ksize, initrd, isize, c->cmdline, LAYOUT_ACPI, &bi, &why);
	free(kernel);
	free(initrd);
	if (ret) {
		/* Name the input at fault. */
		if (!strcmp(bi.bad_input, "--cmdline"))
			fprintf(stderr, "vmm: --cmdline: %s (%zu characters)\n", why, strlen(c->cmdline));
		else
			fprintf(stderr, "vmm: %s: cannot boot with %s: %s\n", bi.bad_input,
				!strcmp(bi.bad_input, "--initramfs") ? c->initramfs : c->kernel, why);
		return 2;
	}
	boot_build_page_tables(&the_vm.mem);
	ret = boot_setup_vcpu(kvm_vcpu_fd(0), &bi);
	if (ret) {
		fprintf(stderr, "vmm: setting up the boot vCPU: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}

/* A kernel or initramfs must be a readable, non-empty regular file (a FIFO
 * would block the start for ever), said before the VM exists. */
static bool input_file_ok(const char *flag, const char *path)
{
	struct stat st;

	if (access(path, R_OK) != 0) {
		fprintf(stderr, "vmm: %s: cannot read %s: %s\n", flag, path, strerror(errno));
		return false;
	}
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		fprintf(stderr, "vmm: %s: %s is not a non-empty regular file\n", flag, path);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	struct vmm_config c;
	char **argv_copy = calloc(argc + 1, sizeof(char *));
	int ret;

	/* A reboot re-executes the VMM with this set (output files are then
	 * appended to). */
	vmm_rebooted = getenv("LEAN_VMM_REBOOTED") != NULL;
	unsetenv("LEAN_VMM_REBOOTED");
	/* Parsing splits option values in place; a reboot re-executes the
	 * original command line. */
	for (int i = 0; argv_copy && i < argc; i++)
		argv_copy[i] = strdup(argv[i]);
	switch (cli_parse(argc, argv, &c)) {
	case CLI_EXIT:
		return 0;
	case CLI_ERROR:
		return 2;
	case CLI_OK:
		break;
	}
	if (!input_file_ok("--kernel", c.kernel) ||
	    (c.initramfs && !input_file_ok("--initramfs", c.initramfs)))
		return 2;
	if ((ret = evloop_init()) || (ret = kvm_vm_create(c.memory, c.cpus)))
		return 1;
	if (c.dedicated)
		kvm_vm_dedicate();
	if ((ret = kvm_vcpus_create()))
		return 1;
	if ((ret = pci_init()) || (ret = power_init()) ||
	    (ret = serial_init(c.serial, c.serial_file))) {
		fprintf(stderr, "vmm: platform setup: %s\n", strerror(-ret));
		return 1;
	}
	if (create_devices(&c))
		return 2;
	if ((ret = load_guest(&c)))
		return ret;
	if ((ret = kvm_vcpus_start())) {
		fprintf(stderr, "vmm: starting vCPUs: %s\n", strerror(-ret));
		return 1;
	}
	evloop_run();
	kvm_vcpus_join();
	serial_flush();
	console_set_raw(false);
	if (c.stats) {
		kvm_print_stats(stderr);
		devices_print_stats(stderr);
	}

	switch (the_vm.exit_reason) {
	case VM_POWEROFF:
		return 0;
	case VM_REBOOT:
		/* A reboot is a fresh VM: the same command line, a new process
		 * image, every device and KVM object reset by construction.
		 * Disk contents live in the host files and survive. */
		fflush(NULL);
		setenv("LEAN_VMM_REBOOTED", "1", 1);
		execv("/proc/self/exe", argv_copy);
		fprintf(stderr, "vmm: reboot: cannot re-execute: %s\n", strerror(errno));
		return 1;
	default:
		return 1;
	}
}
