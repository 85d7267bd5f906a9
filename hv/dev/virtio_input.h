/* Virtio input device (virtio 1.2, section 5.8) over the modern PCI transport, as an absolute
 * tablet: the guest pointer lands on the pixel the VNC viewer points at. Config space (name,
 * serial, ids, event and axis bits), the event queue fed from the host with a small bounded
 * backlog that coalesces motion, and the status queue (LEDs, ignored). Not here: keyboards
 * (the i8042 does those), multi-touch, force feedback.
 *
 * Threading: virtio_input_tablet_event() and virtio_input_tablet_ready() may be called from
 * any thread (the display thread) while vCPU threads run the queues. */
#ifndef VDI_HV_DEV_VIRTIO_INPUT_H
#define VDI_HV_DEV_VIRTIO_INPUT_H

#include <stdbool.h>

#include "hv/dev/pci.h"
#include "hv/vm.h"

/* Absolute axes run over [0, VIRTIO_INPUT_ABS_MAX]; pixel x maps to round(x *
 * VIRTIO_INPUT_ABS_MAX / (width - 1)), so the edges map to 0 and the maximum. */
#define VIRTIO_INPUT_ABS_MAX 32767

struct virtio_input;

/* Adds a tablet (PCI 1af4:1052, virtio device id 18) to bus for a screen of width x height
 * pixels (1..65535 each). Returns it, or NULL with a log line. Free with virtio_input_free()
 * once the vCPUs have stopped and the display thread no longer sends events. */
struct virtio_input *virtio_input_create_tablet(struct vm *vm, struct pci_bus *bus, unsigned width,
						unsigned height);
/* Removes the device from its bus and frees it. NULL is ignored. */
void virtio_input_free(struct virtio_input *t);

/* Whether the guest driver is up: DRIVER_OK set, the device not broken nor reset since, and
 * the driver has given the event queue buffers. Stays true while the driver is momentarily out
 * of buffers (events wait in the backlog), so callers do not flip between this and another
 * pointing device during a burst. Thread-safe. */
bool virtio_input_tablet_ready(struct virtio_input *t);

/* The pointer is at (x, y) framebuffer pixels (clamped to the screen) with buttons held (RFB
 * mask: 1 left, 2 middle, 4 right; other bits ignored) and wheel clicks (+1 up, -1 down, 0
 * none). Sends what changed, then SYN_REPORT. When the guest has no buffers the report waits
 * in a bounded backlog where motion is coalesced; when even that is full, the backlog is
 * replaced by one report of the current state (intermediate clicks and wheel steps are lost,
 * the final state is not). Thread-safe. */
void virtio_input_tablet_event(struct virtio_input *t, unsigned x, unsigned y, unsigned buttons,
			       int wheel);

#endif
