/* Hostile virtio guest: buffers and rings outside guest RAM (in the PCI hole, on the
 * device's own registers, beyond 4 GiB) and address + length sums that wrap around 2^64.
 * After each the device must report DEVICE_NEEDS_RESET, and work again after a reset.
 * Prints "PASS virtio-hostile-range"; the host checks vdi-hv logged the broken device and
 * that the image is unchanged. */
#include "rt.h"
#include "virtio_hostile.h"

#define NAME "virtio-hostile-range"

static struct vdev dev;
static uint8_t buf[512] __attribute__((aligned(512)));

static void expect_broken(const char *what)
{
	hostile_expect_broken(&dev, NAME, what, buf);
}

/* A read of one sector whose data buffer is [addr, addr + len). */
static void read_into(uint64_t addr, uint32_t len)
{
	blk_header(BLK_T_IN, 0);
	vq_desc(0, (uint64_t)vg_hdr, 16, D_NEXT, 1);
	vq_desc(1, addr, len, D_NEXT | D_WRITE, 2);
	vq_desc(2, (uint64_t)&vg_status, 1, D_WRITE, 0);
	vq_kick(&dev, 0);
}

static void bad_rings(const char *what, uint64_t desc, uint64_t avail, uint64_t used)
{
	rt_printf(NAME ": queue with rings at %lx %lx %lx\n", desc, avail, used);
	if (!vdev_negotiate(&dev, 0))
		rt_fail(NAME, "negotiation refused");
	vdev_queue_at(&dev, VG_QSIZE, desc, avail, used, VG_NO_VECTOR);
	if (mmio_read16(dev.common + CC_Q_ENABLE))
		rt_fail(NAME, "%s: queue enabled", what);
	expect_broken(what);
}

void guest_main(void)
{
	hostile_find(&dev, NAME);
	rt_printf(NAME ": device at 00:%02x.0, bar0 %lx\n", dev.slot, dev.bar[0]);
	hostile_start(&dev, NAME);

	rt_printf(NAME ": read into 0xf0000000 (PCI hole, not RAM)\n");
	read_into(0xF0000000ULL, 512);
	expect_broken("buffer in the PCI hole");

	rt_printf(NAME ": read into the device's own BAR\n");
	read_into(dev.bar[0], 512);
	expect_broken("buffer on MMIO registers");

	rt_printf(NAME ": read into 0x4000000000 (beyond RAM)\n");
	read_into(0x4000000000ULL, 512);
	expect_broken("buffer beyond RAM");

	rt_printf(NAME ": read into 0xfffffffffffff000 + 0x2000 (wraps)\n");
	read_into(0xFFFFFFFFFFFFF000ULL, 0x2000);
	expect_broken("address + length wraps");

	rt_printf(NAME ": header at 0xfffffffffffffff8 + 16 (wraps)\n");
	vq_desc(0, 0xFFFFFFFFFFFFFFF8ULL, 16, D_NEXT, 1);
	vq_desc(1, (uint64_t)&vg_status, 1, D_WRITE, 0);
	vq_kick(&dev, 0);
	expect_broken("header wraps");

	rt_printf(NAME ": indirect table at 0xf0000000\n");
	vq_desc(0, 0xF0000000ULL, 64, D_INDIRECT, 0);
	vq_kick(&dev, 0);
	expect_broken("indirect table outside RAM");

	bad_rings("descriptor ring in the PCI hole", 0xE0000000ULL, (uint64_t)vg_avail,
		  (uint64_t)vg_used);
	bad_rings("used ring wraps", (uint64_t)vg_desc, (uint64_t)vg_avail, 0xFFFFFFFFFFFFF000ULL);
	bad_rings("avail ring beyond RAM", (uint64_t)vg_desc, 0x4000000000ULL, (uint64_t)vg_used);

	rt_pass(NAME);
}
