/* kvm_hold: keep one idle KVM VM with a vCPU alive in the runner's L1 for
 * the whole run, so that starting and stopping VMMs does not patch L1's
 * kernel text.
 *
 * When the first KVM vCPU appears or the last one goes, Linux flips static
 * keys (the scheduler's preempt-notifier key, which KVM holds while it has
 * vCPUs, and KVM's own APIC keys), and each flip rewrites code through
 * text_poke with a temporary int3. With L1 on more than one CPU, QEMU 7.2's
 * multi-threaded TCG can run a stale translation of such an int3 on another
 * CPU after the patching finished; Linux then finds an int3 it did not
 * place and L1 dies ("Oops: int3" in __schedule, seen as a VMM exited).
 * A VM held open from boot keeps every one of those counts above zero, so
 * the keys never flip again (docs/runner.md, "L1 stalls" and after).
 *
 *   kvm_hold    runs until killed; exits 1 if /dev/kvm cannot be used. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm, vcpu;

	if (kvm < 0) {
		fprintf(stderr, "kvm_hold: /dev/kvm: %s\n", strerror(errno));
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		fprintf(stderr, "kvm_hold: KVM_CREATE_VM: %s\n", strerror(errno));
		return 1;
	}
	/* Like a VMM with an in-kernel irqchip: the vCPU's LAPIC is KVM's. */
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		fprintf(stderr, "kvm_hold: KVM_CREATE_IRQCHIP: %s (holding anyway)\n", strerror(errno));
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		fprintf(stderr, "kvm_hold: KVM_CREATE_VCPU: %s\n", strerror(errno));
		return 1;
	}
	for (;;)
		pause();
}
