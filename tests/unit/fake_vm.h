/* A fake of hv/vm.h for tests that run the real devices of hv/dev/ without KVM: guest RAM
 * is a heap buffer (so ASan sees any access outside it), port and MMIO handlers are
 * captured and called directly, interrupts are recorded. Plus what a test needs to play the
 * guest driver: port and MMIO accesses, PCI configuration mechanism #1, the virtio-pci
 * common configuration, and split virtqueue rings built in guest RAM.
 * Not for: tests of hv/vm.c itself, or tests that keep their own fake of it. No cmocka
 * here (the fuzzers link it too): a broken device aborts. */
#ifndef VDI_TESTS_FAKE_VM_H
#define VDI_TESTS_FAKE_VM_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/vm.h"

#define FAKE_VM_MAX_REGIONS 8
#define FAKE_VM_MAX_MSIS    64
#define FAKE_VM_GSIS	    32

/* struct virtio_pci_common_cfg (virtio 1.2, 4.1.4.3), as the test's driver sees it. */
#define CC_DFSELECT 0x00
#define CC_DF	    0x04
#define CC_GFSELECT 0x08
#define CC_GF	    0x0C
#define CC_MSIX	    0x10
#define CC_NUMQ	    0x12
#define CC_STATUS   0x14
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE   0x18
#define CC_Q_MSIX   0x1A
#define CC_Q_ENABLE 0x1C
#define CC_Q_NOFF   0x1E
#define CC_Q_DESC   0x20
#define CC_Q_DRIVER 0x28
#define CC_Q_DEVICE 0x30

/* Interrupt state is updated atomically: a device may raise one from another thread. */
struct vm {
	uint8_t *ram;
	uint64_t ram_size;
	struct io_region pio[FAKE_VM_MAX_REGIONS], mmio[FAKE_VM_MAX_REGIONS];
	unsigned npio, nmmio;
	bool irq[FAKE_VM_GSIS]; /* the level of each GSI */
	unsigned irq_changes;	/* vm_set_irq() calls */
	unsigned nmsi;		/* MSIs signalled; the first FAKE_VM_MAX_MSIS are recorded */
	uint64_t msi_addr[FAKE_VM_MAX_MSIS];
	uint32_t msi_data[FAKE_VM_MAX_MSIS];
};

/* Returns a new VM with ram_size bytes of zeroed, page-aligned RAM, or NULL; free with
 * fake_vm_free(). */
struct vm *fake_vm_create(uint64_t ram_size);
void fake_vm_free(struct vm *vm);
/* Zeroes RAM and forgets every handler and interrupt, for the next run on the same VM. */
void fake_vm_reset(struct vm *vm);

/* A guest access of len bytes (1..8) to a port (mmio false) or MMIO address, dispatched
 * as hv/vm.c would. Reads of nothing return all ones; writes to nothing are dropped. */
uint64_t fake_vm_read(struct vm *vm, bool mmio, uint64_t addr, unsigned len);
void fake_vm_write(struct vm *vm, bool mmio, uint64_t addr, unsigned len, uint64_t v);

/* PCI configuration mechanism #1 (ports 0xCF8 and 0xCFC-0xCFF), bus 0, function 0. */
uint32_t fake_vm_cfg_addr(unsigned bus, unsigned slot, unsigned fn, unsigned off);
uint32_t fake_vm_cfg_read(struct vm *vm, unsigned slot, unsigned off, unsigned len);
void fake_vm_cfg_write(struct vm *vm, unsigned slot, unsigned off, unsigned len, uint32_t v);
/* The address of the 64-bit memory BAR 0 of the device in slot. */
uint64_t fake_vm_bar0(struct vm *vm, unsigned slot);

/* The virtio-pci common configuration of the device whose BAR 0 is at bar. */
uint64_t fake_vm_common_read(struct vm *vm, uint64_t bar, unsigned off, unsigned len);
void fake_vm_common_write(struct vm *vm, uint64_t bar, unsigned off, unsigned len, uint64_t v);

/* The driver's side of a split virtqueue in guest RAM (virtio 1.2, 2.7). */
struct fake_vq {
	uint64_t desc, avail, used; /* guest addresses of the three rings */
	uint16_t size;
	uint16_t avail_idx; /* the driver's avail index, as last published */
	uint16_t used_seen; /* used elements taken so far */
};

/* Writes descriptor i of the table at guest address table. */
void fake_vm_put_desc(struct vm *vm, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		      uint16_t flags, uint16_t next);
/* Puts head on the avail ring and publishes the index moved by step (normally 1), without
 * notifying. */
void fake_vm_make_available(struct vm *vm, struct fake_vq *vq, uint16_t head, uint16_t step);
/* The device's used index. */
uint16_t fake_vm_used_idx(struct vm *vm, const struct fake_vq *vq);
/* Takes the next used element: its id and length. False when there is none. */
bool fake_vm_take_used(struct vm *vm, struct fake_vq *vq, uint32_t *id, uint32_t *len);

#endif
