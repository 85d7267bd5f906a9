/* Virtio-blk test guest: finds the disk (1af4:1042) on PCI bus 0, negotiates VERSION_1
 * (+ FLUSH, INDIRECT_DESC), sets up one queue with MSI-X, reads the marker the host put in
 * sector 0, writes a pattern to sectors 1-4, flushes, reads them back (through an indirect
 * table) and compares, reads the serial (GET_ID), checks that a read past the end fails,
 * and prints "PASS virtio-blk". With a read-only disk (VIRTIO_BLK_F_RO) it checks that the
 * write is refused instead. The host test (tests/integration/test_hv_virtio.py) checks
 * the pattern in the image file: keep pattern_byte() in step with it. */
#include "rt.h"
#include "virtio_guest.h"

#define VEC_CONFIG	0x40
#define VEC_QUEUE	0x41
#define PATTERN_SECTOR	1
#define PATTERN_SECTORS 4
#define MARKER		"vdi virtio-blk test image"

static uint8_t wbuf[PATTERN_SECTORS * 512] __attribute__((aligned(512)));
static uint8_t rbuf[PATTERN_SECTORS * 512] __attribute__((aligned(512)));
static char serial[24];
static volatile unsigned queue_irqs, config_irqs;

static uint8_t pattern_byte(unsigned sector, unsigned i)
{
	return (uint8_t)(sector * 31 + i * 7);
}

static void on_queue(uint8_t vector)
{
	(void)vector;
	queue_irqs++;
	rt_lapic_eoi();
}

static void on_config(uint8_t vector)
{
	(void)vector;
	config_irqs++;
	rt_lapic_eoi();
}

static void check(int status, int want, const char *what)
{
	if (status == VG_TIMEOUT)
		rt_fail("virtio-blk", "%s: no completion", what);
	if (status != want)
		rt_fail("virtio-blk", "%s: status %d, expected %d", what, status, want);
}

void guest_main(void)
{
	struct vdev d;
	uint64_t capacity;
	uint32_t used = 0;
	bool ro;

	if (!vdev_find(&d, VIRTIO_BLK_PCI_ID))
		rt_fail("virtio-blk", "no virtio-blk device with its capabilities on bus 0");
	rt_printf("virtio-blk: found 00:%02x.0 bar0 %lx irq %u msix %s\n", d.slot, d.bar[0],
		  pci_read8(d.slot, 0x3C), d.msix_cap ? "yes" : "no");
	if (!d.device || !d.msix_cap)
		rt_fail("virtio-blk", "no device config or MSI-X capability");
	if (!vdev_negotiate(&d, F_BLK_FLUSH | F_INDIRECT_DESC | F_BLK_RO))
		rt_fail("virtio-blk", "feature negotiation refused, status %x", vdev_status(&d));
	if (!(d.features & F_BLK_FLUSH) || !(d.features & F_INDIRECT_DESC))
		rt_fail("virtio-blk", "FLUSH or INDIRECT_DESC not offered: %lx", d.features);
	ro = d.features & F_BLK_RO;
	capacity = blk_capacity(&d);
	rt_printf("virtio-blk: features %lx capacity %lu sectors%s\n", d.features, capacity,
		  ro ? " read-only" : "");
	if (capacity < PATTERN_SECTOR + PATTERN_SECTORS)
		rt_fail("virtio-blk", "disk too small");

	/* MSI-X: vector 0 for config changes, 1 for the queue. */
	rt_lapic_enable();
	rt_set_handler(VEC_QUEUE, on_queue);
	rt_set_handler(VEC_CONFIG, on_config);
	vdev_msix_entry(&d, 0, VEC_CONFIG);
	vdev_msix_entry(&d, 1, VEC_QUEUE);
	pci_write16(d.slot, d.msix_cap + 2, 0x8000);
	mmio_write16(d.common + CC_MSIX, 0);
	if (mmio_read16(d.common + CC_MSIX) != 0)
		rt_fail("virtio-blk", "config MSI-X vector refused");
	if (!vdev_queue(&d, 1) || mmio_read16(d.common + CC_Q_MSIX) != 1)
		rt_fail("virtio-blk", "queue setup failed");
	vdev_driver_ok(&d);
	irq_enable();
	rt_printf("virtio-blk: queue of %u entries, driver ok\n", d.qsize);

	check(blk_request(&d, BLK_T_IN, 0, rbuf, 512, false, &used), 0, "read sector 0");
	if (used != 513)
		rt_fail("virtio-blk", "read used length %u, expected 513", used);
	if (memcmp(rbuf, MARKER, sizeof(MARKER) - 1))
		rt_fail("virtio-blk", "sector 0 does not hold the host's marker");
	rt_printf("virtio-blk: sector 0 holds the marker\n");

	for (unsigned s = 0; s < PATTERN_SECTORS; s++)
		for (unsigned i = 0; i < 512; i++)
			wbuf[s * 512 + i] = pattern_byte(PATTERN_SECTOR + s, i);
	if (ro) {
		check(blk_request(&d, BLK_T_OUT, PATTERN_SECTOR, wbuf, sizeof(wbuf), false, NULL),
		      1, "write to a read-only disk");
		rt_printf("virtio-blk: read-only, write refused\n");
	} else {
		check(blk_request(&d, BLK_T_OUT, PATTERN_SECTOR, wbuf, sizeof(wbuf), false, &used),
		      0, "write");
		if (used != 1)
			rt_fail("virtio-blk", "write used length %u, expected 1", used);
		rt_printf("virtio-blk: wrote sectors %u-%u\n", PATTERN_SECTOR,
			  PATTERN_SECTOR + PATTERN_SECTORS - 1);
		check(blk_request(&d, BLK_T_FLUSH, 0, NULL, 0, false, NULL), 0, "flush");
		rt_printf("virtio-blk: flushed\n");
		memset(rbuf, 0, sizeof(rbuf));
		check(blk_request(&d, BLK_T_IN, PATTERN_SECTOR, rbuf, sizeof(rbuf), true, &used), 0,
		      "read back");
		if (used != sizeof(rbuf) + 1 || memcmp(rbuf, wbuf, sizeof(rbuf)))
			rt_fail("virtio-blk", "read back differs from what was written");
		rt_printf("virtio-blk: read back matches\n");
	}

	check(blk_request(&d, BLK_T_GET_ID, 0, serial, 20, false, &used), 0, "get id");
	serial[20] = '\0';
	rt_printf("virtio-blk: serial '%s'\n", serial);
	check(blk_request(&d, BLK_T_IN, capacity, rbuf, 512, false, NULL), 1, "read past the end");
	rt_printf("virtio-blk: read past the end refused\n");

	for (int i = 0; i < 1000 && !queue_irqs; i++)
		cpu_relax();
	if (!queue_irqs)
		rt_fail("virtio-blk", "no MSI-X queue interrupt");
	if (vdev_status(&d) & S_NEEDS_RESET)
		rt_fail("virtio-blk", "device needs reset");
	rt_printf("virtio-blk: %u queue interrupts, %u config interrupts\n", queue_irqs,
		  config_irqs);
	rt_pass("virtio-blk");
}
