/* Virtio 1.x over PCI, modern transport only (virtio 1.2, section 4.1): one 64-bit memory
 * BAR holding the common, ISR, device-config and notify structures and the MSI-X table and
 * PBA; the vendor capabilities that point at them (plus the PCI-config access one); feature
 * negotiation with VIRTIO_F_VERSION_1 required; queue setup through virtqueue.c; MSI-X
 * with INTx + ISR as the fallback; reset; the broken state (DEVICE_NEEDS_RESET).
 * Not here: what a device does with its buffers (virtio_blk.c, ...).
 *
 * Threading: all transport state sits behind one lock per device. A guest notify runs the
 * device's queue_notify callback synchronously in the vCPU thread that wrote the notify
 * register, with that lock held; so do virtio_pci_kick() callers. */
#ifndef VDI_HV_DEV_VIRTIO_PCI_H
#define VDI_HV_DEV_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "hv/dev/pci.h"
#include "hv/dev/virtqueue.h"
#include "hv/vm.h"

/* Feature bits the transport deals with (the device adds its own, below bit 24). */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_VERSION_1	    32

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER	  0x02
#define VIRTIO_STATUS_DRIVER_OK	  0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

#define VIRTIO_PCI_MAX_QUEUES  8
#define VIRTIO_PCI_VENDOR      0x1AF4
#define VIRTIO_PCI_DEVICE_BASE 0x1040 /* + virtio device id for modern devices */

/* Layout of BAR 0 (exported for tests and test guests; guests should walk the caps). */
#define VIRTIO_PCI_BAR_SIZE	  0x8000
#define VIRTIO_PCI_COMMON_OFF	  0x0000
#define VIRTIO_PCI_ISR_OFF	  0x1000
#define VIRTIO_PCI_DEVICE_OFF	  0x2000
#define VIRTIO_PCI_NOTIFY_OFF	  0x3000
#define VIRTIO_PCI_NOTIFY_MULT	  4
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x4000
#define VIRTIO_PCI_MSIX_PBA_OFF	  0x5000

struct virtio_pci;

struct virtio_pci_desc {
	const char *name;	 /* "virtio-blk"; log lines add the PCI address */
	uint16_t device_type;	 /* virtio device id: 2 block, 18 input, ... */
	uint32_t class_code;	 /* PCI class */
	uint64_t features;	 /* device-specific feature bits offered */
	unsigned num_queues;	 /* 1..VIRTIO_PCI_MAX_QUEUES */
	uint16_t queue_max_size; /* power of two <= VIRTQ_MAX_SIZE */
	/* Device config structure the guest reads (config_len <= 256 bytes). Owned by the
	 * device; change it only from callbacks or under virtio_pci_kick(). */
	const void *config;
	unsigned config_len;
	/* The driver made buffers available on queue (or a kick asked): pop them from vq,
	 * push them back, then call virtio_pci_queue_interrupt(). Lock held; only called
	 * while DRIVER_OK is set and the device is not broken. */
	void (*queue_notify)(void *opaque, struct virtio_pci *vp, unsigned queue, struct virtq *vq);
	/* Optional: the driver wrote len bytes of device config at offset (lock held). */
	void (*config_write)(void *opaque, unsigned offset, const void *data, unsigned len);
	/* Optional: the driver reset the device (lock held). */
	void (*reset)(void *opaque);
	void *opaque;
};

/* Adds a virtio device to bus (next free slot, BAR 0 allocated). Returns it or NULL
 * (logged). Free with virtio_pci_free() once the vCPUs have stopped. desc is copied. */
struct virtio_pci *virtio_pci_create(struct vm *vm, struct pci_bus *bus,
				     const struct virtio_pci_desc *desc);
void virtio_pci_free(struct virtio_pci *vp);

/* "virtio-blk 00:01.0", for log lines. */
const char *virtio_pci_name(const struct virtio_pci *vp);

/* Signals used buffers on queue unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT: its
 * MSI-X vector when MSI-X is on, else ISR bit 0 and INTA#. From queue_notify only. */
void virtio_pci_queue_interrupt(struct virtio_pci *vp, unsigned queue);

/* The driver broke the protocol: logs one line with why, sets DEVICE_NEEDS_RESET, sends a
 * config-change interrupt, and stops processing until the driver resets the device.
 * From callbacks only (lock held). Later calls before the reset are silent. */
void virtio_pci_fail(struct virtio_pci *vp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For devices that produce data on their own (virtio-input events, ...): takes the lock
 * and runs queue_notify for queue as if the driver had notified, when the device is
 * live. Any thread. */
void virtio_pci_kick(struct virtio_pci *vp, unsigned queue);

#endif
