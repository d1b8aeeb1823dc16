/* VM and vCPU lifecycle (vmm/kvm.c). */
#ifndef VMM_KVM_H
#define VMM_KVM_H
#include <stdint.h>
#include <stdio.h>

/* Open /dev/kvm, create the VM, irqchip, PIT and guest RAM. Prints why on
 * failure. */
int kvm_vm_create(uint64_t ram_size, unsigned ncpus);
/* --cpus ...,dedicated=on, between the two calls around it: the guest's
 * HLT and PAUSE no longer exit to KVM (KVM_CAP_X86_DISABLE_EXITS), for
 * vCPUs that each have a host CPU to themselves. A KVM that cannot is said
 * once and the vCPUs exit as usual. */
void kvm_vm_dedicate(void);
int kvm_vcpus_create(void);
int kvm_vcpu_fd(unsigned i);
int kvm_vcpus_start(void);
void kvm_vcpus_join(void);
/* --stats: the vCPUs' exits to KVM, and how many were HLT. */
void kvm_print_stats(FILE *f);

#endif
