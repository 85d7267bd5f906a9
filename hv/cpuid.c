/* CPUID for our vCPUs: start from what KVM can virtualise (KVM_GET_SUPPORTED_CPUID)
 * and change only what must match the machine we build:
 *  - leaf 1: initial APIC id = vCPU index, logical processor count = ncpus, HTT set when
 *    ncpus > 1, HYPERVISOR set (guests then trust the KVM leaves below).
 *  - leaf 4: cores per package = ncpus, one thread each, so the guest's topology matches
 *    the MP table.
 *  - leaf 6 (thermal and power) and leaf 0xA (architectural PMU) are zeroed: we emulate
 *    neither the thermal MSRs nor performance counters, and a guest that believed in them
 *    would read MSRs that fault.
 *  - leaf 0xB (x2APIC topology): x2APIC id = vCPU index in EDX, one thread per core.
 *  - leaves 0x40000000.. (KVM paravirtual) are kept: kvm-clock gives the guest a stable
 *    clock at no cost.
 * Everything else is passed through as KVM reports it. */
#include "hv/cpuid.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#define MAX_ENTRIES 256

static void filter_entry(struct kvm_cpuid_entry2 *e, int vcpu_id, int ncpus)
{
	switch (e->function) {
	case 1:
		e->ebx &= 0x0000FFFF;
		e->ebx |= ((unsigned)vcpu_id << 24) | ((unsigned)(ncpus & 0xFF) << 16);
		if (ncpus > 1)
			e->edx |= 1u << 28; /* HTT: the logical count field is valid */
		e->ecx |= 1u << 31;	    /* HYPERVISOR */
		break;
	case 4:
		if (e->eax & 0x1F) { /* a valid cache level */
			e->eax &= 0x03FFC3FF;
			e->eax |= (unsigned)(ncpus - 1) << 26; /* cores per package - 1 */
			/* threads sharing this cache - 1: 0 (one thread per core) */
		}
		break;
	case 6:
	case 0xA: e->eax = e->ebx = e->ecx = e->edx = 0; break;
	case 0xB:
		e->edx = (unsigned)vcpu_id;
		if (e->index == 0) {
			e->eax = 0; /* shift to the core level: one thread per core */
			e->ebx = 1;
		} else if (e->index == 1) {
			unsigned shift = 0;

			while ((1u << shift) < (unsigned)ncpus)
				shift++;
			e->eax = shift;
			e->ebx = (unsigned)ncpus;
		}
		break;
	}
}

int cpuid_setup_vcpu(int kvm_fd, int vcpu_fd, int vcpu_id, int ncpus)
{
	struct kvm_cpuid2 *cpuid;
	int r = 0;

	cpuid = calloc(1, sizeof(*cpuid) + MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
	if (!cpuid)
		return -ENOMEM;
	cpuid->nent = MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		r = -errno;
		goto out_free;
	}
	for (unsigned i = 0; i < cpuid->nent; i++)
		filter_entry(&cpuid->entries[i], vcpu_id, ncpus);
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
		r = -errno;
out_free:
	free(cpuid);
	return r;
}
