/* VM and vCPU lifecycle (vmm/kvm.c). */
#ifndef VMM_KVM_H
#define VMM_KVM_H
#include <stdint.h>

/* Open /dev/kvm, create the VM, irqchip, PIT and guest RAM. Prints why on
 * failure. */
int kvm_vm_create(uint64_t ram_size, unsigned ncpus);
int kvm_vcpus_create(void);
int kvm_vcpu_fd(unsigned i);
int kvm_vcpus_start(void);
void kvm_vcpus_join(void);

#endif
