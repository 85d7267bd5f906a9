/* Virtio block device (virtio 1.2, section 5.2) on a raw image file or block device, over
 * the modern PCI transport: one request queue; read, write, flush and get-id requests; a
 * read-only mode. Each disk takes one PCI slot. The image is raw, or a copy-on-write overlay
 * on a raw base (blk_overlay.h). Not here: other image formats.
 *
 * Threading: requests run synchronously in the vCPU thread that notified the queue, under
 * the device's transport lock (no I/O thread): a request is complete, used ring updated
 * and interrupt sent, when the guest's notify write returns. Simple and deterministic; a
 * flush stalls only the notifying vCPU. */
#ifndef VDI_HV_DEV_VIRTIO_BLK_H
#define VDI_HV_DEV_VIRTIO_BLK_H

#include <stdbool.h>

#include "hv/dev/pci.h"
#include "hv/vm.h"

struct virtio_blk;

/* Opens the image at path (read-write unless read_only; locked against a second writer with
 * flock) and adds a virtio-blk device for it to bus. Capacity is the size in whole 512-byte
 * sectors. Returns the disk, or NULL with a log line (missing file, locked, bus full, ...).
 * Free with virtio_blk_free() once the vCPUs have stopped. */
struct virtio_blk *virtio_blk_create(struct vm *vm, struct pci_bus *bus, const char *path,
				     bool read_only);
/* The same on the copy-on-write overlay at path over the raw image base (created when path
 * does not exist; see blk_overlay.h). The base is opened read-only. */
struct virtio_blk *virtio_blk_create_overlay(struct vm *vm, struct pci_bus *bus, const char *path,
					     const char *base, bool read_only);
/* Removes the device from its bus and closes the image. NULL is ignored. */
void virtio_blk_free(struct virtio_blk *blk);

#endif
