/* The CPUID a vCPU presents: KVM's supported set, filtered. Not the vCPU's registers. */
#ifndef VDI_HV_CPUID_H
#define VDI_HV_CPUID_H

/* Fetches KVM_GET_SUPPORTED_CPUID once per call, filters it for vCPU vcpu_id of ncpus
 * and applies it with KVM_SET_CPUID2. Returns 0 or -errno. */
int cpuid_setup_vcpu(int kvm_fd, int vcpu_fd, int vcpu_id, int ncpus);

#endif
