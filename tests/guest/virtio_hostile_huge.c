/* Hostile virtio guest: huge lengths (a 4 GiB buffer, a 4 GiB indirect table), sectors
 * past the end of the disk and sector numbers whose byte offset overflows, a data length
 * that is not whole sectors, an avail index jump, and queue sizes that are not powers of
 * two. Each ends with DEVICE_NEEDS_RESET or with the request failed (VIRTIO_BLK_S_IOERR).
 * Prints "PASS virtio-hostile-huge"; the host checks the image is unchanged (no write past
 * its end grew it) and vdi-hv logged the broken device. */
#include "rt.h"
#include "virtio_hostile.h"

#define NAME "virtio-hostile-huge"

static struct vdev dev;
static uint8_t buf[1024] __attribute__((aligned(512)));

static void expect_broken(const char *what)
{
	hostile_expect_broken(&dev, NAME, what, buf);
}

static void expect_ioerr(const char *what, uint32_t type, uint64_t sector, uint32_t len)
{
	int status = blk_request(&dev, type, sector, buf, len, false, NULL);

	if (status != 1)
		rt_fail(NAME, "%s: status %d, expected 1 (IOERR)", what, status);
	if (vdev_status(&dev) & S_NEEDS_RESET)
		rt_fail(NAME, "%s: a failed request broke the device", what);
	rt_printf(NAME ": %s: request failed with IOERR\n", what);
}

static void bad_size(uint16_t size)
{
	rt_printf(NAME ": queue size %u\n", size);
	if (!vdev_negotiate(&dev, 0))
		rt_fail(NAME, "negotiation refused");
	vdev_queue_at(&dev, size, (uint64_t)vg_desc, (uint64_t)vg_avail, (uint64_t)vg_used,
		      VG_NO_VECTOR);
	expect_broken("queue size not a power of two in range");
}

void guest_main(void)
{
	uint64_t capacity;

	hostile_find(&dev, NAME);
	hostile_start(&dev, NAME);
	capacity = blk_capacity(&dev);
	rt_printf(NAME ": device at 00:%02x.0, %lu sectors\n", dev.slot, capacity);

	rt_printf(NAME ": read of 0xffffffff bytes\n");
	blk_header(BLK_T_IN, 0);
	vq_desc(0, (uint64_t)vg_hdr, 16, D_NEXT, 1);
	vq_desc(1, (uint64_t)buf, 0xFFFFFFFF, D_NEXT | D_WRITE, 2);
	vq_desc(2, (uint64_t)&vg_status, 1, D_WRITE, 0);
	vq_kick(&dev, 0);
	expect_broken("4 GiB buffer");

	rt_printf(NAME ": indirect table of 0xfffffff0 bytes\n");
	vq_desc(0, (uint64_t)vg_indirect, 0xFFFFFFF0, D_INDIRECT, 0);
	vq_kick(&dev, 0);
	expect_broken("4 GiB indirect table");

	expect_ioerr("read at the capacity", BLK_T_IN, capacity, 512);
	expect_ioerr("write at the capacity", BLK_T_OUT, capacity, 512);
	expect_ioerr("write across the end", BLK_T_OUT, capacity - 1, 1024);
	expect_ioerr("read at sector 2^64-1", BLK_T_IN, ~0ULL, 512);
	expect_ioerr("write at sector 2^55 (offset overflows)", BLK_T_OUT, 1ULL << 55, 512);
	expect_ioerr("read of 100 bytes", BLK_T_IN, 0, 100);

	rt_printf(NAME ": avail index moved by 1000\n");
	blk_header(BLK_T_IN, 0);
	vq_desc(0, (uint64_t)vg_hdr, 16, D_NEXT, 1);
	vq_desc(1, (uint64_t)&vg_status, 1, D_WRITE, 0);
	vq_kick_step(&dev, 0, 1000);
	expect_broken("avail index jump");

	rt_printf(NAME ": head index past the queue\n");
	vq_kick(&dev, (uint16_t)(dev.qsize + 5));
	expect_broken("head out of range");

	bad_size(100);
	bad_size(0x8000);
	bad_size(0);

	rt_pass(NAME);
}
