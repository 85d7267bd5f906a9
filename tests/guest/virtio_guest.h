/* A minimal virtio driver for the test guests (virtio_blk.c, virtio_hostile_*.c): PCI
 * configuration mechanism #1, finding a modern virtio-pci device and its capabilities, the
 * init sequence, one split queue of up to 16 entries in .bss, and virtio-blk requests.
 * Only rt.h; everything is static, so each guest has its own copy. Polls the used ring:
 * vdi-hv completes a request before the guest's notify write returns, the bound on the
 * polling only keeps a broken host from hanging the guest. */
#ifndef VIRTIO_GUEST_H
#define VIRTIO_GUEST_H

#include "rt.h"

#define VG_UNUSED __attribute__((unused))

#define VIRTIO_VENDOR	  0x1AF4
#define VIRTIO_BLK_PCI_ID 0x1042

#define F_INDIRECT_DESC (1ULL << 28)
#define F_VERSION_1	(1ULL << 32)
#define F_BLK_RO	(1ULL << 5)
#define F_BLK_FLUSH	(1ULL << 9)

#define S_ACKNOWLEDGE 0x01
#define S_DRIVER      0x02
#define S_DRIVER_OK   0x04
#define S_FEATURES_OK 0x08
#define S_NEEDS_RESET 0x40

/* struct virtio_pci_common_cfg */
#define CC_DFSELECT 0x00
#define CC_DF	    0x04
#define CC_GFSELECT 0x08
#define CC_GF	    0x0C
#define CC_MSIX	    0x10
#define CC_STATUS   0x14
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE   0x18
#define CC_Q_MSIX   0x1A
#define CC_Q_ENABLE 0x1C
#define CC_Q_NOFF   0x1E
#define CC_Q_DESC   0x20
#define CC_Q_DRIVER 0x28
#define CC_Q_DEVICE 0x30

#define D_NEXT	   1
#define D_WRITE	   2
#define D_INDIRECT 4

#define BLK_T_IN     0
#define BLK_T_OUT    1
#define BLK_T_FLUSH  4
#define BLK_T_GET_ID 8

#define VG_QSIZE     16
#define VG_NO_VECTOR 0xFFFF
#define VG_TIMEOUT   (-1)

static inline uint8_t mmio_read8(uint64_t a)
{
	return *(volatile uint8_t *)a;
}
static inline void mmio_write8(uint64_t a, uint8_t v)
{
	*(volatile uint8_t *)a = v;
}
static inline uint16_t mmio_read16(uint64_t a)
{
	return *(volatile uint16_t *)a;
}
static inline void mmio_write16(uint64_t a, uint16_t v)
{
	*(volatile uint16_t *)a = v;
}
static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static inline void pci_select(unsigned slot, unsigned off)
{
	outl(0xCF8, 0x80000000u | slot << 11 | (off & 0xFC));
}
static VG_UNUSED uint32_t pci_read32(unsigned slot, unsigned off)
{
	pci_select(slot, off);
	return inl(0xCFC);
}
static VG_UNUSED uint16_t pci_read16(unsigned slot, unsigned off)
{
	pci_select(slot, off);
	return inw((uint16_t)(0xCFC + (off & 2)));
}
static VG_UNUSED uint8_t pci_read8(unsigned slot, unsigned off)
{
	pci_select(slot, off);
	return inb((uint16_t)(0xCFC + (off & 3)));
}
static VG_UNUSED void pci_write16(unsigned slot, unsigned off, uint16_t v)
{
	pci_select(slot, off);
	outw((uint16_t)(0xCFC + (off & 2)), v);
}

struct vdev {
	unsigned slot;
	uint64_t bar[6];
	uint64_t common, notify, isr, device;
	uint32_t notify_mult;
	unsigned msix_cap;
	uint64_t msix_table;
	uint64_t features;
	uint16_t qsize;
	uint64_t notify_addr;
	uint16_t avail_idx, used_seen;
};

/* Queue memory and request buffers. */
static uint8_t vg_desc[4096] __attribute__((aligned(4096)));
static uint8_t vg_avail[4096] __attribute__((aligned(4096)));
static uint8_t vg_used[4096] __attribute__((aligned(4096)));
static uint8_t vg_indirect[4096] __attribute__((aligned(4096)));
static uint8_t vg_hdr[16] __attribute__((aligned(16)));
static volatile uint8_t vg_status __attribute__((aligned(16)));

/* Finds the first device with this PCI device id, turns on memory decoding and bus
 * mastering, and reads its virtio and MSI-X capabilities. */
static VG_UNUSED bool vdev_find(struct vdev *d, uint16_t device_id)
{
	memset(d, 0, sizeof(*d));
	for (unsigned slot = 0; slot < 32; slot++) {
		unsigned off, guard = 0;

		if (pci_read32(slot, 0) != ((uint32_t)device_id << 16 | VIRTIO_VENDOR))
			continue;
		d->slot = slot;
		for (unsigned b = 0; b < 6; b++) {
			uint32_t lo = pci_read32(slot, 0x10 + 4 * b);

			if (lo & 1)
				continue; /* I/O BAR */
			d->bar[b] = lo & ~0xFu;
			if ((lo & 6) == 4 && b < 5) {
				d->bar[b] |= (uint64_t)pci_read32(slot, 0x14 + 4 * b) << 32;
				b++;
			}
		}
		pci_write16(slot, 0x04, pci_read16(slot, 0x04) | 0x6); /* memory, master */
		if (!(pci_read16(slot, 0x06) & 0x10))
			return false;
		for (off = pci_read8(slot, 0x34) & 0xFC; off && guard < 48; guard++) {
			uint8_t id = pci_read8(slot, off);

			if (id == 0x09) {
				uint8_t type = pci_read8(slot, off + 3),
					bar = pci_read8(slot, off + 4);
				uint64_t a =
				    (bar < 6 ? d->bar[bar] : 0) + pci_read32(slot, off + 8);

				if (type == 1 && !d->common)
					d->common = a;
				else if (type == 2 && !d->notify) {
					d->notify = a;
					d->notify_mult = pci_read32(slot, off + 16);
				} else if (type == 3 && !d->isr)
					d->isr = a;
				else if (type == 4 && !d->device)
					d->device = a;
			} else if (id == 0x11) {
				uint32_t t = pci_read32(slot, off + 4);

				d->msix_cap = off;
				d->msix_table = d->bar[t & 7] + (t & ~7u);
			}
			off = pci_read8(slot, off + 1) & 0xFC;
		}
		return d->common && d->notify && d->isr;
	}
	return false;
}

static VG_UNUSED uint8_t vdev_status(struct vdev *d)
{
	return mmio_read8(d->common + CC_STATUS);
}

static VG_UNUSED void vdev_set_status(struct vdev *d, uint8_t s)
{
	mmio_write8(d->common + CC_STATUS, s);
}

/* Resets the device; true when the status reads back 0. */
static VG_UNUSED bool vdev_reset(struct vdev *d)
{
	vdev_set_status(d, 0);
	for (int i = 0; i < 1000; i++)
		if (vdev_status(d) == 0)
			return true;
	return false;
}

/* Reset, ACKNOWLEDGE, DRIVER, features (offered & wanted; VERSION_1 required),
 * FEATURES_OK. Returns false when the device refuses. */
static VG_UNUSED bool vdev_negotiate(struct vdev *d, uint64_t wanted)
{
	uint64_t offered;

	if (!vdev_reset(d))
		return false;
	vdev_set_status(d, S_ACKNOWLEDGE);
	vdev_set_status(d, S_ACKNOWLEDGE | S_DRIVER);
	mmio_write32(d->common + CC_DFSELECT, 0);
	offered = mmio_read32(d->common + CC_DF);
	mmio_write32(d->common + CC_DFSELECT, 1);
	offered |= (uint64_t)mmio_read32(d->common + CC_DF) << 32;
	if (!(offered & F_VERSION_1))
		return false;
	d->features = offered & (wanted | F_VERSION_1);
	mmio_write32(d->common + CC_GFSELECT, 0);
	mmio_write32(d->common + CC_GF, (uint32_t)d->features);
	mmio_write32(d->common + CC_GFSELECT, 1);
	mmio_write32(d->common + CC_GF, (uint32_t)(d->features >> 32));
	vdev_set_status(d, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	return vdev_status(d) & S_FEATURES_OK;
}

/* Programs queue 0 with size entries (written as is: hostile guests pass bad ones) and
 * the given rings and MSI-X vector, then enables it. */
static VG_UNUSED void vdev_queue_at(struct vdev *d, uint16_t size, uint64_t desc, uint64_t avail,
				    uint64_t used, uint16_t vector)
{
	d->qsize = size;
	d->avail_idx = d->used_seen = 0;
	mmio_write16(d->common + CC_Q_SELECT, 0);
	mmio_write16(d->common + CC_Q_SIZE, size);
	mmio_write32(d->common + CC_Q_DESC, (uint32_t)desc);
	mmio_write32(d->common + CC_Q_DESC + 4, (uint32_t)(desc >> 32));
	mmio_write32(d->common + CC_Q_DRIVER, (uint32_t)avail);
	mmio_write32(d->common + CC_Q_DRIVER + 4, (uint32_t)(avail >> 32));
	mmio_write32(d->common + CC_Q_DEVICE, (uint32_t)used);
	mmio_write32(d->common + CC_Q_DEVICE + 4, (uint32_t)(used >> 32));
	mmio_write16(d->common + CC_Q_MSIX, vector);
	d->notify_addr = d->notify + (uint64_t)mmio_read16(d->common + CC_Q_NOFF) * d->notify_mult;
	mmio_write16(d->common + CC_Q_ENABLE, 1);
}

/* The usual queue: VG_QSIZE entries (or fewer if the device offers fewer) in .bss. */
static VG_UNUSED bool vdev_queue(struct vdev *d, uint16_t vector)
{
	uint16_t max;

	mmio_write16(d->common + CC_Q_SELECT, 0);
	max = mmio_read16(d->common + CC_Q_SIZE);
	if (max == 0)
		return false;
	memset(vg_desc, 0, sizeof(vg_desc));
	memset(vg_avail, 0, sizeof(vg_avail));
	memset(vg_used, 0, sizeof(vg_used));
	vdev_queue_at(d, max < VG_QSIZE ? max : VG_QSIZE, (uint64_t)vg_desc, (uint64_t)vg_avail,
		      (uint64_t)vg_used, vector);
	return mmio_read16(d->common + CC_Q_ENABLE) == 1;
}

/* Points MSI-X table entry `entry` at vector on LAPIC 0 (fixed delivery), unmasked. */
static VG_UNUSED void vdev_msix_entry(struct vdev *d, unsigned entry, uint8_t vector)
{
	uint64_t e = d->msix_table + 16 * entry;

	mmio_write32(e, 0xFEE00000);
	mmio_write32(e + 4, 0);
	mmio_write32(e + 8, vector);
	mmio_write32(e + 12, 0);
}

static VG_UNUSED void vdev_driver_ok(struct vdev *d)
{
	vdev_set_status(d, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

/* Full start: negotiate, queue 0, DRIVER_OK. */
static VG_UNUSED bool vdev_start(struct vdev *d, uint64_t wanted, uint16_t vector)
{
	if (!vdev_negotiate(d, wanted) || !vdev_queue(d, vector))
		return false;
	vdev_driver_ok(d);
	return !(vdev_status(d) & S_NEEDS_RESET);
}

static VG_UNUSED void vq_desc_in(uint8_t *table, unsigned i, uint64_t addr, uint32_t len,
				 uint16_t flags, uint16_t next)
{
	uint8_t *p = table + 16 * i;

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static VG_UNUSED void vq_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
			      uint16_t next)
{
	vq_desc_in(vg_desc, i, addr, len, flags, next);
}

static VG_UNUSED uint16_t vq_used_idx(void)
{
	return *(volatile uint16_t *)(vg_used + 2);
}

/* Puts head on the avail ring, moving the index by step (1 normally), and notifies. */
static VG_UNUSED void vq_kick_step(struct vdev *d, uint16_t head, uint16_t step)
{
	*(volatile uint16_t *)(vg_avail + 4 + 2 * (d->avail_idx % d->qsize)) = head;
	barrier(); /* x86 keeps stores in order; the compiler must too */
	d->avail_idx = (uint16_t)(d->avail_idx + step);
	*(volatile uint16_t *)(vg_avail + 2) = d->avail_idx;
	barrier();
	mmio_write16(d->notify_addr, 0);
}

static VG_UNUSED void vq_kick(struct vdev *d, uint16_t head)
{
	vq_kick_step(d, head, 1);
}

/* Waits for the next used element; returns its length or VG_TIMEOUT. */
static VG_UNUSED int64_t vq_wait(struct vdev *d)
{
	uint32_t len;

	for (long i = 0; i < 100000 && vq_used_idx() == d->used_seen; i++)
		cpu_relax();
	if (vq_used_idx() == d->used_seen)
		return VG_TIMEOUT;
	barrier();
	memcpy(&len, vg_used + 4 + 8 * (d->used_seen % d->qsize) + 4, 4);
	d->used_seen++;
	return len;
}

static VG_UNUSED void blk_header(uint32_t type, uint64_t sector)
{
	memset(vg_hdr, 0, sizeof(vg_hdr));
	memcpy(vg_hdr, &type, 4);
	memcpy(vg_hdr + 8, &sector, 8);
}

/* One virtio-blk request (header, data if len, status) in descriptors 0-2, or through an
 * indirect table. Returns the status byte, or VG_TIMEOUT; *used gets the used length. */
static VG_UNUSED int blk_request(struct vdev *d, uint32_t type, uint64_t sector, void *buf,
				 uint32_t len, bool indirect, uint32_t *used)
{
	bool in = type == BLK_T_IN || type == BLK_T_GET_ID;
	uint8_t *table = indirect ? vg_indirect : vg_desc;
	int64_t r;
	unsigned n = 0;

	blk_header(type, sector);
	vg_status = 0xEE;
	vq_desc_in(table, n, (uint64_t)vg_hdr, 16, D_NEXT, (uint16_t)(n + 1));
	n++;
	if (len) {
		vq_desc_in(table, n, (uint64_t)buf, len, D_NEXT | (in ? D_WRITE : 0),
			   (uint16_t)(n + 1));
		n++;
	}
	vq_desc_in(table, n, (uint64_t)&vg_status, 1, D_WRITE, 0);
	n++;
	if (indirect)
		vq_desc(0, (uint64_t)vg_indirect, 16 * n, D_INDIRECT, 0);
	vq_kick(d, 0);
	r = vq_wait(d);
	if (r < 0)
		return VG_TIMEOUT;
	if (used)
		*used = (uint32_t)r;
	return vg_status;
}

/* Waits (bounded) for the device to report DEVICE_NEEDS_RESET. */
static VG_UNUSED bool vdev_wait_broken(struct vdev *d)
{
	for (int i = 0; i < 1000; i++)
		if (vdev_status(d) & S_NEEDS_RESET)
			return true;
	return false;
}

static VG_UNUSED uint64_t blk_capacity(struct vdev *d)
{
	return mmio_read32(d->device) | (uint64_t)mmio_read32(d->device + 4) << 32;
}

#endif
