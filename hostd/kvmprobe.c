/* The KVM speed probe: a VM with 64 KiB of RAM, one vCPU in real mode at 0x1000
 * running "mov ecx, N; 1: dec ecx; jnz 1b; hlt", timed with CLOCK_MONOTONIC. */
#include "hostd/kvmprobe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"

#define LOOPS	 5000000u
#define MEM_SIZE 0x10000
#define CODE_AT	 0x1000

static void on_alarm(int sig)
{
	(void)sig; /* only interrupts KVM_RUN */
}

double kvmprobe_loops_per_second(int max_ms)
{
	const uint8_t code[] = {
	    0x66,	 0xb9, LOOPS & 0xff, (LOOPS >> 8) & 0xff, (LOOPS >> 16) & 0xff,
	    LOOPS >> 24,       /* mov ecx, LOOPS */
	    0x66,	 0x49, /* dec ecx */
	    0x75,	 0xfc, /* jnz -4 */
	    0xf4};	       /* hlt */
	struct sigaction sa = {.sa_handler = on_alarm}, old;
	struct itimerval timer = {.it_value = {max_ms / 1000, (max_ms % 1000) * 1000}}, off = {0};
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rip = CODE_AT, .rflags = 2};
	struct kvm_run *run = MAP_FAILED;
	double result = -EIO, t0;
	int kvm, vm = -1, vcpu = -1, run_size;
	uint8_t *mem;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return -errno;
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		goto out_close;
	memcpy(mem + CODE_AT, code, sizeof(code));
	region = (struct kvm_userspace_memory_region){.slot = 0,
						      .guest_phys_addr = 0,
						      .memory_size = MEM_SIZE,
						      .userspace_addr = (uintptr_t)mem};
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0 || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		goto out_unmap;
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || run_size <= 0)
		goto out_unmap;
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		goto out_unmap;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		goto out_unmap;

	sigaction(SIGALRM, &sa, &old);
	setitimer(ITIMER_REAL, &timer, NULL);
	t0 = monotonic_seconds();
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			result = errno == EINTR ? 0 : -errno; /* out of time: slow */
			break;
		}
		if (run->exit_reason == KVM_EXIT_HLT) {
			double elapsed = monotonic_seconds() - t0;

			result = LOOPS / (elapsed > 1e-6 ? elapsed : 1e-6);
			break;
		}
		if (run->exit_reason != KVM_EXIT_INTR) {
			result = -EIO; /* the emulator could not run it */
			break;
		}
	}
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);

out_unmap:
	if (run != MAP_FAILED)
		munmap(run, (size_t)run_size);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	munmap(mem, MEM_SIZE);
out_close:
	close(kvm);
	return result;
}
