/* The KVM virtual machine: guest RAM, in-kernel interrupt controllers and PIT, vCPU
 * threads and their exits, dispatch of port and MMIO accesses to device handlers,
 * pause/resume and stop. Knows no device; devices register themselves (hv/dev/). */
#include "hv/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "hv/cpuid.h"
#include "hv/sandbox.h"
#include "lib/log.h"

#define KICK_SIGNAL	 SIGUSR1
#define MAX_REGIONS	 64
#define TSS_GPA		 0xFFFBD000ULL
#define IDENTITY_MAP_GPA 0xFFFBC000ULL
/* Where vm_set_entry() puts the GDT and page tables for a long-mode entry: low memory the
 * Linux boot protocol leaves free (below the zero page at 0x7000). */
#define BOOT_GDT_GPA  0x500ULL
#define BOOT_PML4_GPA 0x9000ULL
#define BOOT_PDPT_GPA 0xA000ULL
#define BOOT_PD_GPA   0xB000ULL /* four tables: 0xB000..0xEFFF map 4 GiB */

struct vcpu {
	struct vm *vc_vm;
	int vc_id;
	int vc_fd;
	struct kvm_run *vc_run;
	size_t vc_run_size;
	pthread_t vc_thread;
	bool vc_started;
	bool vc_parked;
};

struct region_table {
	struct io_region rt_regions[MAX_REGIONS];
	size_t rt_count;
};

struct vm {
	int vm_kvm_fd;
	int vm_fd;
	uint8_t *vm_ram;
	uint64_t vm_ram_size;
	int vm_next_slot;
	int vm_ncpus;
	struct vcpu *vm_vcpus;
	struct region_table vm_pio;
	struct region_table vm_mmio;
	pthread_rwlock_t vm_regions_lock;

	pthread_mutex_t vm_lock; /* guards the pause state and stop_why */
	pthread_cond_t vm_cond;
	bool vm_paused;
	_Atomic int vm_stop;
	int vm_stop_eventfd;
	struct timespec vm_started_at;
	_Atomic uint64_t vm_exits_io, vm_exits_mmio, vm_exits_other;
};

static void kick_handler(int sig)
{
	(void)sig;
}

static int set_memory(struct vm *vm, int slot, uint64_t gpa, void *hva, uint64_t size,
		      uint32_t flags)
{
	struct kvm_userspace_memory_region region = {
	    .slot = (uint32_t)slot,
	    .flags = flags,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return -errno;
	return 0;
}

int vm_add_memory_slot(struct vm *vm, uint64_t gpa, void *hva, uint64_t size, bool log_dirty)
{
	int slot = vm->vm_next_slot;
	int r;

	if (((uintptr_t)hva & 4095) || (size & 4095) || (gpa & 4095) || !size)
		return -EINVAL;
	r = set_memory(vm, slot, gpa, hva, size, log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0);
	if (r < 0)
		return r;
	vm->vm_next_slot++;
	return slot;
}

int vm_get_dirty_log(struct vm *vm, int slot, uint64_t *bitmap)
{
	struct kvm_dirty_log log = {.slot = (uint32_t)slot, .dirty_bitmap = bitmap};

	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return -errno;
	return 0;
}

void *vm_guest_ptr(struct vm *vm, uint64_t gpa, uint64_t len)
{
	uint64_t end;
	uint64_t low = vm->vm_ram_size < VM_LOW_RAM_END ? vm->vm_ram_size : VM_LOW_RAM_END;

	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	if (end <= low)
		return vm->vm_ram + gpa;
	if (gpa >= VM_HIGH_RAM_START && end - VM_HIGH_RAM_START <= vm->vm_ram_size - low)
		return vm->vm_ram + low + (gpa - VM_HIGH_RAM_START);
	return NULL;
}

int vm_set_irq(struct vm *vm, unsigned gsi, bool level)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = level};

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		return -errno;
	return 0;
}

int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
	    .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};

	if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
		return -errno;
	return 0;
}

static int register_region(struct vm *vm, struct region_table *t, const struct io_region *r)
{
	int ret = 0;

	if (!r->io_len || r->io_base + r->io_len < r->io_base)
		return -EINVAL;
	pthread_rwlock_wrlock(&vm->vm_regions_lock);
	if (t->rt_count == MAX_REGIONS) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	for (size_t i = 0; i < t->rt_count; i++) {
		const struct io_region *o = &t->rt_regions[i];

		if (r->io_base < o->io_base + o->io_len && o->io_base < r->io_base + r->io_len) {
			ret = -EEXIST;
			goto out_unlock;
		}
	}
	t->rt_regions[t->rt_count++] = *r;
out_unlock:
	pthread_rwlock_unlock(&vm->vm_regions_lock);
	return ret;
}

int vm_register_pio(struct vm *vm, const struct io_region *r)
{
	return register_region(vm, &vm->vm_pio, r);
}

int vm_register_mmio(struct vm *vm, const struct io_region *r)
{
	return register_region(vm, &vm->vm_mmio, r);
}

/* Calls the handler covering addr; unclaimed reads see all ones, writes vanish. */
static void dispatch(struct vm *vm, struct region_table *t, uint64_t addr, void *data, unsigned len,
		     bool is_write)
{
	const struct io_region *found = NULL;
	struct io_region r;

	pthread_rwlock_rdlock(&vm->vm_regions_lock);
	for (size_t i = 0; i < t->rt_count; i++) {
		const struct io_region *o = &t->rt_regions[i];

		if (addr >= o->io_base && addr - o->io_base < o->io_len) {
			r = *o;
			found = &r;
			break;
		}
	}
	pthread_rwlock_unlock(&vm->vm_regions_lock);
	if (!found) {
		if (!is_write)
			memset(data, 0xFF, len);
		return;
	}
	if (is_write) {
		if (found->io_write)
			found->io_write(found->io_opaque, addr - found->io_base, data, len);
	} else if (found->io_read) {
		found->io_read(found->io_opaque, addr - found->io_base, data, len);
	} else {
		memset(data, 0xFF, len);
	}
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *why)
{
	int expected = VM_STOP_NONE;
	uint64_t one = 1;

	if (!atomic_compare_exchange_strong(&vm->vm_stop, &expected, (int)reason))
		return;
	if (reason == VM_STOP_ERROR)
		log_err("vm stopping: %s", why);
	else
		log_info("vm stopping: %s", why);
	if (write(vm->vm_stop_eventfd, &one, sizeof(one)) < 0)
		log_warn("stop eventfd");
	pthread_mutex_lock(&vm->vm_lock);
	for (int i = 0; i < vm->vm_ncpus; i++) {
		struct vcpu *vc = &vm->vm_vcpus[i];

		if (vc->vc_run)
			vc->vc_run->immediate_exit = 1;
		if (vc->vc_started && !pthread_equal(vc->vc_thread, pthread_self()))
			pthread_kill(vc->vc_thread, KICK_SIGNAL);
	}
	pthread_cond_broadcast(&vm->vm_cond);
	pthread_mutex_unlock(&vm->vm_lock);
}

static void dump_registers(struct vcpu *vc)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vc->vc_fd, KVM_GET_REGS, &r) < 0 || ioctl(vc->vc_fd, KVM_GET_SREGS, &s) < 0) {
		log_warn("vcpu%d: cannot read registers", vc->vc_id);
		return;
	}
	fprintf(stderr,
		"vcpu%d registers:\n"
		" rip %016llx rflags %08llx rsp %016llx rbp %016llx\n"
		" rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
		" rsi %016llx rdi %016llx r8  %016llx r9  %016llx\n"
		" r10 %016llx r11 %016llx r12 %016llx r13 %016llx\n"
		" r14 %016llx r15 %016llx\n"
		" cs %04x base %llx l %d db %d  ss %04x  ds %04x\n"
		" cr0 %llx cr2 %llx cr3 %llx cr4 %llx efer %llx\n"
		" gdt %llx/%x idt %llx/%x\n",
		vc->vc_id, r.rip, r.rflags, r.rsp, r.rbp, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi,
		r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cs.selector, s.cs.base,
		s.cs.l, s.cs.db, s.ss.selector, s.ds.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer,
		s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
}

static void handle_io(struct vcpu *vc)
{
	struct vm *vm = vc->vc_vm;
	struct kvm_run *run = vc->vc_run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	atomic_fetch_add(&vm->vm_exits_io, 1);
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		dispatch(vm, &vm->vm_pio, run->io.port, data, run->io.size, is_write);
}

static void handle_mmio(struct vcpu *vc)
{
	struct vm *vm = vc->vc_vm;
	struct kvm_run *run = vc->vc_run;
	unsigned len = run->mmio.len;

	atomic_fetch_add(&vm->vm_exits_mmio, 1);
	if (len == 0 || len > 8)
		return;
	dispatch(vm, &vm->vm_mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
}

/* Waits while the VM is paused; returns false once a stop was requested. */
static bool wait_unpaused(struct vcpu *vc)
{
	struct vm *vm = vc->vc_vm;

	pthread_mutex_lock(&vm->vm_lock);
	while (vm->vm_paused && !atomic_load(&vm->vm_stop)) {
		vc->vc_parked = true;
		pthread_cond_broadcast(&vm->vm_cond);
		pthread_cond_wait(&vm->vm_cond, &vm->vm_lock);
	}
	vc->vc_parked = false;
	vc->vc_run->immediate_exit = 0;
	pthread_mutex_unlock(&vm->vm_lock);
	return !atomic_load(&vm->vm_stop);
}

static void handle_system_event(struct vcpu *vc)
{
	struct vm *vm = vc->vc_vm;

	switch (vc->vc_run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(vm, VM_STOP_SHUTDOWN, "guest powered off");
		break;
	case KVM_SYSTEM_EVENT_RESET: vm_request_stop(vm, VM_STOP_RESET, "guest reset"); break;
	default:
		dump_registers(vc);
		vm_request_stop(vm, VM_STOP_ERROR, "guest crashed (system event)");
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vc = arg;
	struct vm *vm = vc->vc_vm;
	char why[128];
	sigset_t set;

	snprintf(why, sizeof(why), "vcpu%d", vc->vc_id);
	pthread_setname_np(pthread_self(), why);
	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (sandbox_enter_vcpu() < 0) {
		snprintf(why, sizeof(why), "vcpu%d: cannot narrow its sandbox", vc->vc_id);
		vm_request_stop(vm, VM_STOP_ERROR, why);
		return NULL;
	}

	while (wait_unpaused(vc)) {
		if (ioctl(vc->vc_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(why, sizeof(why), "vcpu%d: KVM_RUN failed: %s", vc->vc_id,
				 strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR, why);
			break;
		}
		switch (vc->vc_run->exit_reason) {
		case KVM_EXIT_IO: handle_io(vc); break;
		case KVM_EXIT_MMIO: handle_mmio(vc); break;
		case KVM_EXIT_INTR: atomic_fetch_add(&vm->vm_exits_other, 1); break;
		case KVM_EXIT_SYSTEM_EVENT: handle_system_event(vc); break;
		case KVM_EXIT_SHUTDOWN:
			dump_registers(vc);
			snprintf(why, sizeof(why), "vcpu%d: triple fault", vc->vc_id);
			vm_request_stop(vm, VM_STOP_ERROR, why);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			dump_registers(vc);
			snprintf(why, sizeof(why), "vcpu%d: KVM internal error, suberror %u",
				 vc->vc_id, vc->vc_run->internal.suberror);
			vm_request_stop(vm, VM_STOP_ERROR, why);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			dump_registers(vc);
			snprintf(why, sizeof(why), "vcpu%d: VM entry failed, reason %llx",
				 vc->vc_id,
				 (unsigned long long)
				     vc->vc_run->fail_entry.hardware_entry_failure_reason);
			vm_request_stop(vm, VM_STOP_ERROR, why);
			break;
		default:
			dump_registers(vc);
			snprintf(why, sizeof(why), "vcpu%d: unexpected exit reason %u", vc->vc_id,
				 vc->vc_run->exit_reason);
			vm_request_stop(vm, VM_STOP_ERROR, why);
		}
	}
	return NULL;
}

static int create_vcpu(struct vm *vm, int id)
{
	struct vcpu *vc = &vm->vm_vcpus[id];
	int mmap_size, r;

	vc->vc_vm = vm;
	vc->vc_id = id;
	vc->vc_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);
	if (vc->vc_fd < 0)
		return -errno;
	mmap_size = ioctl(vm->vm_kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < 0)
		return -errno;
	vc->vc_run_size = (size_t)mmap_size;
	vc->vc_run = mmap(NULL, vc->vc_run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vc->vc_fd, 0);
	if (vc->vc_run == MAP_FAILED) {
		vc->vc_run = NULL;
		return -errno;
	}
	r = cpuid_setup_vcpu(vm->vm_kvm_fd, vc->vc_fd, id, vm->vm_ncpus);
	if (r < 0)
		return r;
	/* LINT0 delivers ExtINT (the PIC), LINT1 NMI: what the MP table tells the guest. */
	struct kvm_lapic_state lapic;
	if (ioctl(vc->vc_fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	uint32_t *lint0 = (uint32_t *)&lapic.regs[0x350], *lint1 = (uint32_t *)&lapic.regs[0x360];
	*lint0 = (*lint0 & ~0x700u) | (7u << 8);
	*lint1 = (*lint1 & ~0x700u) | (4u << 8);
	if (ioctl(vc->vc_fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

struct vm *vm_create(uint64_t ram_bytes, int ncpus)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	struct sigaction sa = {.sa_handler = kick_handler};
	struct vm *vm;
	uint64_t low;
	sigset_t set;
	int r;

	if (ram_bytes < (16ULL << 20) || (ram_bytes & ((2ULL << 20) - 1)) || ncpus < 1 ||
	    ncpus > 64) {
		log_warnx("vm: invalid size (%llu bytes, %d vCPUs)", (unsigned long long)ram_bytes,
			  ncpus);
		return NULL;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return NULL;
	vm->vm_kvm_fd = vm->vm_fd = vm->vm_stop_eventfd = -1;
	vm->vm_ncpus = ncpus;
	pthread_mutex_init(&vm->vm_lock, NULL);
	pthread_cond_init(&vm->vm_cond, NULL);
	pthread_rwlock_init(&vm->vm_regions_lock, NULL);

	/* vCPU threads are kicked out of KVM_RUN with this signal; other threads block it. */
	sigaction(KICK_SIGNAL, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	vm->vm_kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->vm_kvm_fd < 0) {
		log_warn("vm: cannot open /dev/kvm");
		goto out_free;
	}
	if (ioctl(vm->vm_kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		log_warnx("vm: unsupported KVM API version");
		goto out_free;
	}
	if (ioctl(vm->vm_kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
		log_warnx("vm: KVM lacks KVM_CAP_IMMEDIATE_EXIT");
		goto out_free;
	}
	vm->vm_fd = ioctl(vm->vm_kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		log_warn("vm: KVM_CREATE_VM");
		goto out_free;
	}
	vm->vm_stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->vm_stop_eventfd < 0) {
		log_warn("vm: eventfd");
		goto out_free;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)TSS_GPA) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){IDENTITY_MAP_GPA}) < 0) {
		log_warn("vm: TSS / identity map");
		goto out_free;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_warn("vm: KVM_CREATE_IRQCHIP");
		goto out_free;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_warn("vm: KVM_CREATE_PIT2");
		goto out_free;
	}

	vm->vm_ram_size = ram_bytes;
	vm->vm_ram = mmap(NULL, ram_bytes, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->vm_ram == MAP_FAILED) {
		vm->vm_ram = NULL;
		log_warn("vm: cannot map %llu MiB of guest RAM",
			 (unsigned long long)(ram_bytes >> 20));
		goto out_free;
	}
	madvise(vm->vm_ram, ram_bytes, MADV_MERGEABLE);
	low = ram_bytes < VM_LOW_RAM_END ? ram_bytes : VM_LOW_RAM_END;
	r = set_memory(vm, vm->vm_next_slot++, 0, vm->vm_ram, low, 0);
	if (r == 0 && ram_bytes > low)
		r = set_memory(vm, vm->vm_next_slot++, VM_HIGH_RAM_START, vm->vm_ram + low,
			       ram_bytes - low, 0);
	if (r < 0) {
		errno = -r;
		log_warn("vm: KVM_SET_USER_MEMORY_REGION");
		goto out_free;
	}

	vm->vm_vcpus = calloc((size_t)ncpus, sizeof(*vm->vm_vcpus));
	if (!vm->vm_vcpus)
		goto out_free;
	for (int i = 0; i < ncpus; i++)
		vm->vm_vcpus[i].vc_fd = -1;
	for (int i = 0; i < ncpus; i++) {
		r = create_vcpu(vm, i);
		if (r < 0) {
			errno = -r;
			log_warn("vm: cannot create vcpu%d", i);
			goto out_free;
		}
	}
	return vm;

out_free:
	vm_free(vm);
	return NULL;
}

static void write_boot_tables(struct vm *vm)
{
	uint64_t *gdt = vm_guest_ptr(vm, BOOT_GDT_GPA, 4 * 8);
	uint64_t *pml4 = vm_guest_ptr(vm, BOOT_PML4_GPA, 4096);
	uint64_t *pdpt = vm_guest_ptr(vm, BOOT_PDPT_GPA, 4096);
	uint64_t *pd = vm_guest_ptr(vm, BOOT_PD_GPA, 4 * 4096);

	/* The Linux 64-bit boot protocol wants __BOOT_CS = 0x10 and __BOOT_DS = 0x18. */
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = 0x00AF9B000000FFFFULL; /* 64-bit code */
	gdt[3] = 0x00CF93000000FFFFULL; /* data */
	memset(pml4, 0, 4096);
	pml4[0] = BOOT_PDPT_GPA | 3;
	memset(pdpt, 0, 4096);
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD_GPA + i * 4096) | 3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */
}

static void flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type, bool code64)
{
	*s = (struct kvm_segment){.base = 0,
				  .limit = 0xFFFFFFFF,
				  .selector = selector,
				  .type = type,
				  .present = 1,
				  .dpl = 0,
				  .db = code64 ? 0 : 1,
				  .s = 1,
				  .l = code64,
				  .g = 1};
}

static int setup_boot_vcpu(struct vm *vm, const struct vm_entry *entry)
{
	struct vcpu *vc = &vm->vm_vcpus[0];
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rflags = 2, .rip = entry->ve_rip};

	if (ioctl(vc->vc_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	if (entry->ve_mode == VM_ENTRY_LONG64) {
		if (vm->vm_ram_size < 0x10000)
			return -EINVAL;
		write_boot_tables(vm);
		flat_segment(&sregs.cs, 0x10, 0xB, true);
		flat_segment(&sregs.ds, 0x18, 0x3, false);
		sregs.gdt.base = BOOT_GDT_GPA;
		sregs.gdt.limit = 4 * 8 - 1;
		sregs.cr3 = BOOT_PML4_GPA;
		sregs.cr4 = 1u << 5;		     /* PAE */
		sregs.cr0 = 0x80000011;		     /* PG | ET | PE */
		sregs.efer = (1u << 8) | (1u << 10); /* LME | LMA */
		regs.rsi = entry->ve_boot_info;
	} else {
		/* PVH: 32-bit flat protected mode, paging off. */
		flat_segment(&sregs.cs, 0x08, 0xB, false);
		flat_segment(&sregs.ds, 0x10, 0x3, false);
		sregs.cr0 = 0x11; /* ET | PE */
		sregs.cr4 = 0;
		sregs.efer = 0;
		regs.rbx = entry->ve_boot_info;
	}
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	if (ioctl(vc->vc_fd, KVM_SET_SREGS, &sregs) < 0 ||
	    ioctl(vc->vc_fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

int vm_set_entry(struct vm *vm, const struct vm_entry *entry)
{
	return setup_boot_vcpu(vm, entry);
}

int vm_start(struct vm *vm)
{
	int r;

	clock_gettime(CLOCK_MONOTONIC, &vm->vm_started_at);
	for (int i = 0; i < vm->vm_ncpus; i++) {
		struct vcpu *vc = &vm->vm_vcpus[i];

		pthread_mutex_lock(&vm->vm_lock);
		r = pthread_create(&vc->vc_thread, NULL, vcpu_thread, vc);
		vc->vc_started = r == 0;
		pthread_mutex_unlock(&vm->vm_lock);
		if (r) {
			vm_request_stop(vm, VM_STOP_ERROR, "cannot start a vCPU thread");
			return -r;
		}
	}
	return 0;
}

int vm_stop_fd(const struct vm *vm)
{
	return vm->vm_stop_eventfd;
}

enum vm_stop_reason vm_stop_reason(const struct vm *vm)
{
	return (enum vm_stop_reason)atomic_load(&((struct vm *)vm)->vm_stop);
}

void vm_join(struct vm *vm)
{
	vm_request_stop(vm, VM_STOP_QUIT, "shutting down");
	for (int i = 0; i < vm->vm_ncpus; i++) {
		struct vcpu *vc = &vm->vm_vcpus[i];

		if (vc->vc_started) {
			pthread_join(vc->vc_thread, NULL);
			vc->vc_started = false;
		}
	}
}

static bool all_parked(struct vm *vm)
{
	for (int i = 0; i < vm->vm_ncpus; i++)
		if (vm->vm_vcpus[i].vc_started && !vm->vm_vcpus[i].vc_parked)
			return false;
	return true;
}

int vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->vm_lock);
	if (atomic_load(&vm->vm_stop)) {
		pthread_mutex_unlock(&vm->vm_lock);
		return -ESHUTDOWN;
	}
	vm->vm_paused = true;
	for (int i = 0; i < vm->vm_ncpus; i++) {
		struct vcpu *vc = &vm->vm_vcpus[i];

		vc->vc_run->immediate_exit = 1;
		if (vc->vc_started)
			pthread_kill(vc->vc_thread, KICK_SIGNAL);
	}
	while (!all_parked(vm) && !atomic_load(&vm->vm_stop)) {
		struct timespec deadline;

		/* A vCPU blocked in a halted KVM_RUN wakes on the kick; re-kick meanwhile. */
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 50 * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&vm->vm_cond, &vm->vm_lock, &deadline);
		for (int i = 0; i < vm->vm_ncpus; i++) {
			struct vcpu *vc = &vm->vm_vcpus[i];

			if (vc->vc_started && !vc->vc_parked)
				pthread_kill(vc->vc_thread, KICK_SIGNAL);
		}
	}
	pthread_mutex_unlock(&vm->vm_lock);
	return 0;
}

int vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->vm_lock);
	vm->vm_paused = false;
	pthread_cond_broadcast(&vm->vm_cond);
	pthread_mutex_unlock(&vm->vm_lock);
	return 0;
}

void vm_get_stats(struct vm *vm, struct vm_stats *st)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&vm->vm_lock);
	st->vs_state = atomic_load(&vm->vm_stop) ? "stopping"
		       : vm->vm_paused		 ? "paused"
						 : "running";
	pthread_mutex_unlock(&vm->vm_lock);
	st->vs_uptime = (double)(now.tv_sec - vm->vm_started_at.tv_sec) +
			(double)(now.tv_nsec - vm->vm_started_at.tv_nsec) / 1e9;
	st->vs_exits_io = atomic_load(&vm->vm_exits_io);
	st->vs_exits_mmio = atomic_load(&vm->vm_exits_mmio);
	st->vs_exits_other = atomic_load(&vm->vm_exits_other);
	st->vs_vcpus = vm->vm_ncpus;
}

uint64_t vm_ram_size(const struct vm *vm)
{
	return vm->vm_ram_size;
}

int vm_ncpus(const struct vm *vm)
{
	return vm->vm_ncpus;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	if (vm->vm_vcpus) {
		vm_join(vm);
		for (int i = 0; i < vm->vm_ncpus; i++) {
			struct vcpu *vc = &vm->vm_vcpus[i];

			if (vc->vc_run)
				munmap(vc->vc_run, vc->vc_run_size);
			if (vc->vc_fd >= 0)
				close(vc->vc_fd);
		}
		free(vm->vm_vcpus);
	}
	if (vm->vm_ram)
		munmap(vm->vm_ram, vm->vm_ram_size);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->vm_kvm_fd >= 0)
		close(vm->vm_kvm_fd);
	if (vm->vm_stop_eventfd >= 0)
		close(vm->vm_stop_eventfd);
	pthread_rwlock_destroy(&vm->vm_regions_lock);
	pthread_cond_destroy(&vm->vm_cond);
	pthread_mutex_destroy(&vm->vm_lock);
	free(vm);
}
