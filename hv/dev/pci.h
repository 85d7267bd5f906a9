/* PCI bus 0 as the guest sees it: configuration mechanism #1 on ports 0xCF8-0xCFF, a host
 * bridge at 00:00.0 and one single-function device per slot (1..31), each with 64-bit memory
 * BARs allocated in [VM_PCI_MMIO_START, VM_PCI_MMIO_END), a capability list and INTA#.
 * Not here: what a device does (virtio_pci.c), I/O BARs, bridges, extended config space. */
#ifndef VDI_HV_DEV_PCI_H
#define VDI_HV_DEV_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/vm.h"

#define PCI_MAX_SLOTS	32
#define PCI_CONFIG_SIZE 256
#define PCI_NUM_BARS	6

/* Standard config-space registers and bits used by the devices. */
#define PCI_COMMAND		 0x04
#define PCI_COMMAND_MEMORY	 0x0002
#define PCI_COMMAND_MASTER	 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS		 0x06
#define PCI_STATUS_INTERRUPT	 0x0008
#define PCI_STATUS_CAP_LIST	 0x0010
#define PCI_BAR0		 0x10
#define PCI_CAPABILITY_LIST	 0x34
#define PCI_INTERRUPT_LINE	 0x3C
#define PCI_INTERRUPT_PIN	 0x3D
#define PCI_CAP_ID_VNDR		 0x09
#define PCI_CAP_ID_MSIX		 0x11

struct pci_bus;
struct pci_device;

/* What a device is and how it hears about config-space accesses. The hooks are optional
 * and are called without any PCI lock held, from vCPU threads. */
struct pci_device_desc {
	const char *name; /* for log lines, e.g. "virtio-blk" */
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subsystem_vendor_id;
	uint16_t subsystem_id;
	uint8_t revision;
	uint32_t class_code; /* base class << 16 | subclass << 8 | programming interface */
	/* After the guest wrote len bytes (value, little-endian) at config offset. */
	void (*config_write)(void *opaque, unsigned offset, unsigned len, uint32_t value);
	/* Before a config read of len bytes at offset returns *value: may replace it. */
	void (*config_read)(void *opaque, unsigned offset, unsigned len, uint32_t *value);
	void *opaque;
};

/* Returns the bus with its host bridge at 00:00.0, with ports 0xCF8-0xCFF and the MMIO
 * window [VM_PCI_MMIO_START, VM_PCI_MMIO_END) registered on vm, or NULL (logged). Free
 * with pci_free() after the vCPUs have stopped. */
struct pci_bus *pci_create(struct vm *vm);
/* Frees the bus. Devices must have been freed by their owners first. */
void pci_free(struct pci_bus *bus);

/* Puts a device in the next free slot (1..31) with INTA# wired to VM_PCI_INTX_GSI(slot),
 * or returns NULL (logged) when the bus is full. desc is copied. The device belongs to
 * the bus: its owner calls pci_remove_device() (which frees it) before freeing what
 * opaque points to, once the vCPUs have stopped; pci_free() frees any left. */
struct pci_device *pci_add_device(struct pci_bus *bus, const struct pci_device_desc *desc);
void pci_remove_device(struct pci_device *dev);

/* Gives the device a 64-bit non-prefetchable memory BAR of size bytes (a power of two,
 * 16 bytes to 256 MiB) in BAR slot bar (0, 2 or 4), placed inside the PCI window now; the
 * guest may move it. r's handlers get offsets relative to the BAR's current address, only
 * while the command register's memory-space bit is set (r->io_base and io_len are
 * ignored). Returns 0, -EINVAL or -ENOSPC (window full). */
int pci_add_bar(struct pci_device *dev, unsigned bar, uint64_t size, const struct io_region *r);

/* Appends a capability (cap[0] is its id; cap[1], the next pointer, is filled in here) of
 * len bytes, 4 <= len, to the list. wmask, if not NULL, holds len bytes of guest-writable
 * bits. Returns the capability's config offset or -ENOSPC. Call before the guest runs. */
int pci_add_capability(struct pci_device *dev, const uint8_t *cap, unsigned len,
		       const uint8_t *wmask);

/* Reads len (1, 2 or 4) bytes of config space at offset, as stored (hooks not called);
 * all-ones when the access is out of range. */
uint32_t pci_config_get(struct pci_device *dev, unsigned offset, unsigned len);

/* Drives the device's INTA# line. Devices sharing a GSI are ORed; the command register's
 * interrupt-disable bit masks the line and the status register's interrupt bit follows it. */
void pci_set_intx(struct pci_device *dev, bool level);

/* Bus master enable, as the guest set it in the command register. */
bool pci_bus_master(struct pci_device *dev);

/* The device's slot on bus 0 (1..31). */
unsigned pci_device_slot(const struct pci_device *dev);

/* For the MP table / interrupt routing: calls fn once per device that has INTA#, in slot
 * order, with its slot (bus 0, function 0, so the MP source bus IRQ is slot << 2 | 0) and
 * the GSI its INTA# is wired to (VM_PCI_INTX_GSI(slot): IOAPIC input, level-triggered,
 * active high). The host bridge has no interrupt and is skipped. Returns how many
 * devices fn was called for. */
int pci_for_each_device(struct pci_bus *bus, void (*fn)(void *arg, unsigned slot, unsigned gsi),
			void *arg);

#endif
