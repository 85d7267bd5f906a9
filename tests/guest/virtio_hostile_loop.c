/* Hostile virtio guest: descriptor chains that loop (two descriptors pointing at each
 * other, one pointing at itself, a loop through the whole queue, a loop inside an indirect
 * table). After each the device must report DEVICE_NEEDS_RESET and raise a config
 * interrupt (on INTA# through the IOAPIC here, ISR bit 1), and work again after a reset.
 * Prints "PASS virtio-hostile-loop"; the host checks vdi-hv logged the broken device. */
#include "rt.h"
#include "virtio_hostile.h"

#define NAME	 "virtio-hostile-loop"
#define VEC_INTX 0x50

static struct vdev dev;
static uint8_t buf[512] __attribute__((aligned(512)));
static volatile unsigned intx_irqs;
static volatile uint8_t isr_seen;

static void on_intx(uint8_t vector)
{
	(void)vector;
	isr_seen |= mmio_read8(dev.isr); /* reading acknowledges and drops the line */
	intx_irqs++;
	rt_lapic_eoi();
}

static void start(void)
{
	hostile_start(&dev, NAME);
	if (!(dev.features & F_INDIRECT_DESC))
		rt_fail(NAME, "INDIRECT_DESC not offered");
}

/* The device must be broken, say so with a config interrupt, and recover on reset. */
static void expect_broken(const char *what)
{
	hostile_wait_broken(&dev, NAME, what);
	for (int i = 0; i < 1000 && !(isr_seen & 2); i++)
		cpu_relax();
	if (!(isr_seen & 2))
		rt_fail(NAME, "%s: no config interrupt (isr %x, %u interrupts)", what, isr_seen,
			intx_irqs);
	rt_printf(NAME ": %s: device needs reset (status %x), config interrupt seen\n", what,
		  vdev_status(&dev));
	isr_seen = 0;
	start();
	hostile_check_read(&dev, NAME, what, buf);
}

void guest_main(void)
{
	unsigned gsi;

	hostile_find(&dev, NAME);
	gsi = pci_read8(dev.slot, 0x3C);
	rt_printf(NAME ": device at 00:%02x.0, INTA# on gsi %u\n", dev.slot, gsi);
	rt_lapic_enable();
	rt_set_handler(VEC_INTX, on_intx);
	rt_ioapic_route(gsi, VEC_INTX, true);
	irq_enable();
	start();
	if (blk_request(&dev, BLK_T_IN, 0, buf, sizeof(buf), false, NULL) != 0)
		rt_fail(NAME, "a well-formed read fails");

	rt_printf(NAME ": chain 0 -> 1 -> 0\n");
	blk_header(BLK_T_IN, 0);
	vq_desc(0, (uint64_t)vg_hdr, 16, D_NEXT, 1);
	vq_desc(1, (uint64_t)buf, 512, D_NEXT, 0);
	vq_kick(&dev, 0);
	expect_broken("two-descriptor loop");

	rt_printf(NAME ": descriptor 3 -> 3\n");
	vq_desc(3, (uint64_t)vg_hdr, 16, D_NEXT, 3);
	vq_kick(&dev, 3);
	expect_broken("self loop");

	rt_printf(NAME ": every descriptor chained, the last back to the first\n");
	for (unsigned i = 0; i < dev.qsize; i++)
		vq_desc(i, (uint64_t)vg_hdr, 16, D_NEXT, (uint16_t)((i + 1) % dev.qsize));
	vq_kick(&dev, 0);
	expect_broken("whole-queue loop");

	rt_printf(NAME ": indirect table 0 -> 1 -> 0\n");
	vq_desc_in(vg_indirect, 0, (uint64_t)vg_hdr, 16, D_NEXT, 1);
	vq_desc_in(vg_indirect, 1, (uint64_t)buf, 512, D_NEXT, 0);
	vq_desc(0, (uint64_t)vg_indirect, 32, D_INDIRECT, 0);
	vq_kick(&dev, 0);
	expect_broken("indirect loop");

	rt_printf(NAME ": indirect table pointing at itself\n");
	vq_desc_in(vg_indirect, 0, (uint64_t)vg_indirect, 16, D_INDIRECT, 0);
	vq_desc(0, (uint64_t)vg_indirect, 16, D_INDIRECT, 0);
	vq_kick(&dev, 0);
	expect_broken("nested indirect");

	rt_pass(NAME);
}
