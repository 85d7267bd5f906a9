/* What the hostile virtio-blk guests (virtio_hostile_*.c) share: finding and starting the
 * disk the same way each time, and the check that a device a bad request broke says so
 * (DEVICE_NEEDS_RESET) and works again after a reset. `name` is the guest's name in its
 * verdict and log lines. Static, as virtio_guest.h: each guest has its own copy. */
#ifndef VIRTIO_HOSTILE_H
#define VIRTIO_HOSTILE_H

#include "rt.h"
#include "virtio_guest.h"

/* Finds the virtio-blk device, or fails the guest. */
static VG_UNUSED void hostile_find(struct vdev *d, const char *name)
{
	if (!vdev_find(d, VIRTIO_BLK_PCI_ID))
		rt_fail(name, "no virtio-blk device");
}

/* (Re)starts the device with INDIRECT_DESC and no MSI-X vector (the hostile guests
 * poll), or fails the guest. */
static VG_UNUSED void hostile_start(struct vdev *d, const char *name)
{
	if (!vdev_start(d, F_INDIRECT_DESC, VG_NO_VECTOR))
		rt_fail(name, "device does not start, status %x", vdev_status(d));
}

/* Fails the guest unless the device reports DEVICE_NEEDS_RESET after `what`. */
static VG_UNUSED void hostile_wait_broken(struct vdev *d, const char *name, const char *what)
{
	if (!vdev_wait_broken(d))
		rt_fail(name, "%s: device not broken, status %x", what, vdev_status(d));
}

/* After the restart that followed `what`: a one-sector read into buf must succeed. */
static VG_UNUSED void hostile_check_read(struct vdev *d, const char *name, const char *what,
					 void *buf)
{
	int status = blk_request(d, BLK_T_IN, 0, buf, 512, false, NULL);

	if (status != 0)
		rt_fail(name, "%s: read after reset: status %d", what, status);
}

/* The device must be broken after `what`, and work again after hostile_start(). buf is
 * 512 bytes for the read that shows it. */
static VG_UNUSED void hostile_expect_broken(struct vdev *d, const char *name, const char *what,
					    void *buf)
{
	hostile_wait_broken(d, name, what);
	rt_printf("%s: %s: device needs reset (status %x)\n", name, what, vdev_status(d));
	hostile_start(d, name);
	hostile_check_read(d, name, what, buf);
}

#endif
