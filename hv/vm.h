/* The virtual machine as devices see it: guest memory, interrupt lines, I/O port and
 * MMIO handlers, extra memory slots, and the request to stop. Owns the KVM VM file
 * descriptor and the vCPU threads (hv/vm.c). Devices live in hv/dev/, one file each. */
#ifndef VDI_HV_VM_H
#define VDI_HV_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Guest physical memory map. RAM is [0, VM_LOW_RAM_END) and, for the rest, from 4 GiB;
 * the hole below 4 GiB holds the framebuffer, PCI BARs and the APICs. */
#define VM_LOW_RAM_END	  0xC0000000ULL
#define VM_HIGH_RAM_START 0x100000000ULL
#define VM_FB_GPA	  0xC0000000ULL /* linear framebuffer, up to VM_FB_MAX bytes */
#define VM_FB_MAX	  0x04000000ULL /* 64 MiB */
#define VM_PCI_MMIO_START 0xD0000000ULL /* PCI memory BAR window */
#define VM_PCI_MMIO_END	  0xE0000000ULL
#define VM_IOAPIC_GPA	  0xFEC00000ULL
#define VM_LAPIC_GPA	  0xFEE00000ULL

/* Interrupt lines (GSIs on the in-kernel IOAPIC; ISA IRQs are identity-mapped). */
#define VM_IRQ_KEYBOARD 1
#define VM_IRQ_COM1	4
#define VM_IRQ_MOUSE	12
/* PCI INTA# of the device in slot s (1..31): IOAPIC pins 16..23, level, active high. */
#define VM_PCI_INTX_GSI(s) (16u + ((unsigned)(s) % 8u))

struct vm;

/* An I/O port range or MMIO range served by a device. offset is relative to io_base;
 * data holds len bytes (1, 2, 4 or 8), little-endian. Called from vCPU threads, possibly
 * several at once: the device does its own locking. A read handler fills all of data. */
struct io_region {
	const char *io_name;
	uint64_t io_base;
	uint64_t io_len;
	void (*io_read)(void *opaque, uint64_t offset, void *data, unsigned len);
	void (*io_write)(void *opaque, uint64_t offset, const void *data, unsigned len);
	void *io_opaque;
};

/* Registers a handler; overlapping ranges are refused (-EEXIST). The region is copied. */
int vm_register_pio(struct vm *vm, const struct io_region *r);
int vm_register_mmio(struct vm *vm, const struct io_region *r);

/* Host pointer to guest RAM [gpa, gpa + len), or NULL when any part of it is outside
 * RAM or the sum overflows. The only way devices may touch guest memory. */
void *vm_guest_ptr(struct vm *vm, uint64_t gpa, uint64_t len);

/* Drives a GSI to level (edge devices pulse 1 then 0). Returns 0 or -errno. */
int vm_set_irq(struct vm *vm, unsigned gsi, bool level);
/* Delivers a message-signalled interrupt (MSI/MSI-X). Returns 0 or -errno. */
int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data);

/* Maps host memory hva (page-aligned, size a multiple of 4 KiB) at gpa as an extra
 * KVM memory slot, optionally with dirty-page logging. Returns the slot id or -errno. */
int vm_add_memory_slot(struct vm *vm, uint64_t gpa, void *hva, uint64_t size, bool log_dirty);
/* Fetches and clears the dirty bitmap of slot (one bit per 4 KiB page, bitmap sized by
 * the caller to cover the slot, rounded up to 64 bits). Returns 0 or -errno. */
int vm_get_dirty_log(struct vm *vm, int slot, uint64_t *bitmap);

enum vm_stop_reason {
	VM_STOP_NONE,
	VM_STOP_RESET,	  /* guest asked for reset / reboot: exit 0 */
	VM_STOP_SHUTDOWN, /* guest powered off: exit 0 */
	VM_STOP_QUIT,	  /* control socket or signal asked: exit 0 */
	VM_STOP_ERROR,	  /* triple fault, KVM internal error, vCPU failure: exit 1 */
};

/* Asks every vCPU to stop and the main loop to end. The first reason wins. why is a
 * short human-readable reason, logged once. Safe from any thread. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *why);

/* ---- For the machine itself (hv/main.c, the loader, the control socket) ---- */

/* How the boot vCPU starts: in 64-bit long mode at entry with %rsi = boot_params (Linux
 * 64-bit boot protocol and plain ELF64 kernels), or in 32-bit protected mode with
 * paging off and %ebx = start_info (PVH). */
enum vm_entry_mode { VM_ENTRY_LONG64, VM_ENTRY_PVH32 };

struct vm_entry {
	enum vm_entry_mode ve_mode;
	uint64_t ve_rip;
	uint64_t ve_boot_info; /* boot_params (rsi) or start_info (ebx) */
};

struct vm_stats {
	const char *vs_state; /* "running", "paused", "stopping" */
	double vs_uptime;     /* seconds since vm_start() */
	uint64_t vs_exits_io, vs_exits_mmio, vs_exits_other;
	int vs_vcpus;
};

/* Creates the KVM VM with ram_bytes of guest RAM (a multiple of 2 MiB, at least 16 MiB),
 * in-kernel IOAPIC/PIC/LAPIC and PIT, and ncpus vCPUs with filtered CPUID. Returns NULL
 * with a log line on failure. Free with vm_free(). */
struct vm *vm_create(uint64_t ram_bytes, int ncpus);
void vm_free(struct vm *vm);
uint64_t vm_ram_size(const struct vm *vm);
int vm_ncpus(const struct vm *vm);
/* Sets the boot vCPU's registers for entry (and the boot page tables in guest RAM for a
 * long-mode entry). Done before vm_start(), and before the sandbox, which no longer
 * allows setting registers. Returns 0 or -errno. */
int vm_set_entry(struct vm *vm, const struct vm_entry *entry);
/* Starts every vCPU thread (the others wait for INIT/SIPI from the guest): the first
 * guest instruction runs. Returns 0 or -errno. */
int vm_start(struct vm *vm);
/* A file descriptor that becomes readable once a stop was requested. */
int vm_stop_fd(const struct vm *vm);
enum vm_stop_reason vm_stop_reason(const struct vm *vm);
/* Stops every vCPU (after vm_request_stop) and joins their threads. */
void vm_join(struct vm *vm);
/* Parks every vCPU outside KVM_RUN / lets them run again. Return 0 or -errno. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
void vm_get_stats(struct vm *vm, struct vm_stats *st);

#endif
