/* Unit tests for hv/dev/pci, virtio_pci, virtqueue and virtio_blk: the real devices on the
 * fake VM of fake_vm.c (guest RAM is a malloc'd buffer, port and MMIO handlers are
 * captured and called directly, interrupts are recorded). The test plays the guest
 * driver, well-behaved and hostile. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/dev/pci.h"
#include "hv/dev/virtio_blk.h"
#include "hv/dev/virtio_pci.h"
#include "hv/dev/virtqueue.h"
#include "hv/vm.h"
#include "lib/log.h"
#include "tests/unit/fake_vm.h"

#define RAM_SIZE (16u << 20)

static struct vm *fake;

/* Fixture: a bus with one disk on a 64-sector image. */

#define SECTORS 64
#define SLOT	1

struct fixture {
	char dir[64];
	char path[128];
	struct pci_bus *bus;
	struct virtio_blk *blk;
	FILE *log;
	bool log_mark_valid;
	uint64_t bar;
};

static struct fixture fx;

static void make_image(const char *path, unsigned sectors)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint8_t sector[512];

	assert_true(fd >= 0);
	for (unsigned s = 0; s < sectors; s++) {
		memset(sector, (int)(0xA0 + s % 16), sizeof(sector));
		assert_int_equal(pwrite(fd, sector, sizeof(sector), (off_t)s * 512), 512);
	}
	close(fd);
}

/* What was logged since the previous call. */
static char *log_text(void)
{
	static char buf[16384];
	static off_t mark;
	ssize_t n;

	if (!fx.log_mark_valid)
		mark = 0;
	fx.log_mark_valid = true;
	n = pread(fileno(fx.log), buf, sizeof(buf) - 1, mark);
	buf[n > 0 ? n : 0] = '\0';
	mark += n > 0 ? n : 0;
	return buf;
}

static int setup_bus(void)
{
	fake = fake_vm_create(RAM_SIZE);
	if (!fake)
		return -1;
	memset(&fx, 0, sizeof(fx));
	fx.log = tmpfile();
	if (!fx.log)
		return -1;
	log_init("test", LOG_LEVEL_INFO, false);
	log_set_fd(fileno(fx.log));
	strcpy(fx.dir, "/tmp/virtio_test.XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.path, sizeof(fx.path), "%s/disk-serial.img", fx.dir);
	fx.bus = pci_create(fake);
	return fx.bus ? 0 : -1;
}

static int setup_ro(bool ro)
{
	if (setup_bus() < 0)
		return -1;
	make_image(fx.path, SECTORS);
	fx.blk = virtio_blk_create(fake, fx.bus, fx.path, ro);
	if (!fx.blk)
		return -1;
	fx.bar = fake_vm_bar0(fake, SLOT);
	log_text(); /* tests look at what comes after the start-up lines */
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return setup_ro(false);
}

static int setup_readonly(void **state)
{
	(void)state;
	return setup_ro(true);
}

static int setup_empty(void **state)
{
	(void)state;
	return setup_bus();
}

static int teardown(void **state)
{
	(void)state;
	virtio_blk_free(fx.blk);
	pci_free(fx.bus);
	unlink(fx.path);
	rmdir(fx.dir);
	log_set_fd(-1);
	fclose(fx.log);
	fake_vm_free(fake);
	fake = NULL;
	return 0;
}

/* The test's virtio driver */

#define DESC_GPA   0x10000u
#define AVAIL_GPA  0x20000u
#define USED_GPA   0x30000u
#define TABLE_GPA  0x40000u
#define HDR_GPA	   0x100000u
#define DATA_GPA   0x110000u
#define STATUS_GPA 0xF00000u

#define F_VERSION_1 (1ULL << 32)
#define F_INDIRECT  (1ULL << 28)
#define F_SEG_MAX   (1ULL << 2)
#define F_RO	    (1ULL << 5)
#define F_BLK_SIZE  (1ULL << 6)
#define F_FLUSH	    (1ULL << 9)

#define T_IN	 0
#define T_OUT	 1
#define T_FLUSH	 4
#define T_GET_ID 8

static struct fake_vq drv = {.desc = DESC_GPA, .avail = AVAIL_GPA, .used = USED_GPA};

static uint64_t common_rd(unsigned off, unsigned len)
{
	return fake_vm_common_read(fake, fx.bar, off, len);
}

static void common_wr(unsigned off, unsigned len, uint64_t v)
{
	fake_vm_common_write(fake, fx.bar, off, len, v);
}

static uint8_t status(void)
{
	return (uint8_t)common_rd(CC_STATUS, 1);
}

static uint64_t device_features(void)
{
	common_wr(CC_DFSELECT, 4, 0);
	uint64_t lo = common_rd(CC_DF, 4);
	common_wr(CC_DFSELECT, 4, 1);
	return lo | common_rd(CC_DF, 4) << 32;
}

static bool negotiate(uint64_t features)
{
	common_wr(CC_STATUS, 1, 0);
	common_wr(CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	common_wr(CC_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	common_wr(CC_GFSELECT, 4, 0);
	common_wr(CC_GF, 4, (uint32_t)features);
	common_wr(CC_GFSELECT, 4, 1);
	common_wr(CC_GF, 4, (uint32_t)(features >> 32));
	common_wr(CC_STATUS, 1,
		  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	return status() & VIRTIO_STATUS_FEATURES_OK;
}

/* Negotiates, sets up queue 0 with qsize entries (not checked) and sets DRIVER_OK. */
static void drv_start_features(uint16_t qsize, uint64_t features)
{
	memset(fake->ram + DESC_GPA, 0, 0x30000);
	drv.size = qsize;
	drv.avail_idx = drv.used_seen = 0;
	assert_true(negotiate(features));
	common_wr(CC_Q_SELECT, 2, 0);
	common_wr(CC_Q_SIZE, 2, qsize);
	/* 64-bit addresses written as two halves, as Linux does. */
	common_wr(CC_Q_DESC, 4, DESC_GPA);
	common_wr(CC_Q_DESC + 4, 4, 0);
	common_wr(CC_Q_DRIVER, 8, AVAIL_GPA);
	common_wr(CC_Q_DEVICE, 8, USED_GPA);
	common_wr(CC_Q_ENABLE, 2, 1);
	common_wr(CC_STATUS, 1,
		  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		      VIRTIO_STATUS_DRIVER_OK);
}

static void drv_start(uint16_t qsize)
{
	drv_start_features(qsize, F_VERSION_1 | F_FLUSH | F_INDIRECT);
}

static void put_hdr(uint32_t type, uint64_t sector)
{
	uint8_t *h = fake->ram + HDR_GPA;
	uint32_t zero = 0;

	memcpy(h, &type, 4);
	memcpy(h + 4, &zero, 4);
	memcpy(h + 8, &sector, 8);
}

static uint16_t avail_idx_in_ram(void)
{
	uint16_t v;

	memcpy(&v, fake->ram + AVAIL_GPA + 2, 2);
	return v;
}

/* Makes head available (the avail index moves by step, normally 1) and notifies. */
static void submit_step(uint16_t head, uint16_t step)
{
	fake_vm_make_available(fake, &drv, head, step);
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_NOTIFY_OFF, 2, 0);
}

static void submit(uint16_t head)
{
	submit_step(head, 1);
}

static uint16_t used_idx(void)
{
	return fake_vm_used_idx(fake, &drv);
}

/* The next used element: asserts there is one, returns its length, checks its id. */
static uint32_t take_used(uint16_t head)
{
	uint32_t id, len;

	assert_true(fake_vm_take_used(fake, &drv, &id, &len));
	assert_int_equal(id, head);
	return len;
}

/* A three-descriptor request: header, data (len bytes at DATA_GPA, device-writable when
 * reading), status. Returns the status byte; *used gets the used length. */
static uint8_t request(uint32_t type, uint64_t sector, uint32_t len, uint32_t *used)
{
	bool in = type == T_IN || type == T_GET_ID;
	uint32_t u;

	put_hdr(type, sector);
	fake->ram[STATUS_GPA] = 0xEE;
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	if (len) {
		fake_vm_put_desc(fake, DESC_GPA, 1, DATA_GPA, len,
				 VIRTQ_DESC_F_NEXT | (in ? VIRTQ_DESC_F_WRITE : 0), 2);
		fake_vm_put_desc(fake, DESC_GPA, 2, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	} else {
		fake_vm_put_desc(fake, DESC_GPA, 1, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	}
	submit(0);
	u = take_used(0);
	if (used)
		*used = u;
	return fake->ram[STATUS_GPA];
}

static bool broken(void)
{
	return status() & VIRTIO_STATUS_NEEDS_RESET;
}

/* Finds the vendor capability of cfg_type, or the capability with id when cfg_type is 0. */
static unsigned find_cap(unsigned slot, uint8_t id, uint8_t cfg_type)
{
	unsigned off = fake_vm_cfg_read(fake, slot, PCI_CAPABILITY_LIST, 1), guard = 0;

	while (off && guard++ < 48) {
		if (fake_vm_cfg_read(fake, slot, off, 1) == id &&
		    (!cfg_type || fake_vm_cfg_read(fake, slot, off + 3, 1) == cfg_type))
			return off;
		off = fake_vm_cfg_read(fake, slot, off + 1, 1);
	}
	return 0;
}

/* PCI */

static void test_pci_config_space(void **state)
{
	(void)state;
	/* The address latch reads back; the host bridge is at 00:00.0. */
	fake_vm_write(fake, false, 0xCF8, 4, 0x80000000);
	assert_int_equal(fake_vm_read(fake, false, 0xCF8, 4), 0x80000000);
	assert_int_equal(fake_vm_cfg_read(fake, 0, 0x00, 2), 0x8086);
	assert_int_equal(fake_vm_cfg_read(fake, 0, 0x0A, 2), 0x0600);
	assert_int_equal(fake_vm_cfg_read(fake, 0, PCI_INTERRUPT_PIN, 1), 0);
	/* The disk in slot 1: virtio 1af4:1042, modern (revision >= 1), INTA# on GSI 17. */
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x00, 4), 0x10421AF4);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x08, 1), 1);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x0B, 1), 0x01);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x2C, 2), 0x1AF4);
	assert_true(fake_vm_cfg_read(fake, SLOT, 0x2E, 2) >= 0x40);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x0E, 1), 0);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, PCI_INTERRUPT_PIN, 1), 1);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, PCI_INTERRUPT_LINE, 1),
			 VM_PCI_INTX_GSI(SLOT));
	assert_int_equal(VM_PCI_INTX_GSI(SLOT), 17);
	/* Bytes and words at every offset of 0xCFC-0xCFF agree with the dword. */
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x01, 1), 0x1A);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x02, 2), 0x1042);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x03, 1), 0x10);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x01, 2), 0x421A);
	/* Nothing elsewhere: empty slot, other functions, other buses, latch disabled. */
	assert_int_equal(fake_vm_cfg_read(fake, 5, 0x00, 4), 0xFFFFFFFF);
	fake_vm_write(fake, false, 0xCF8, 4, fake_vm_cfg_addr(0, SLOT, 1, 0));
	assert_int_equal(fake_vm_read(fake, false, 0xCFC, 4), 0xFFFFFFFF);
	fake_vm_write(fake, false, 0xCF8, 4, fake_vm_cfg_addr(1, SLOT, 0, 0));
	assert_int_equal(fake_vm_read(fake, false, 0xCFC, 4), 0xFFFFFFFF);
	fake_vm_write(fake, false, 0xCF8, 4, fake_vm_cfg_addr(0, SLOT, 0, 0) & 0x7FFFFFFF);
	assert_int_equal(fake_vm_read(fake, false, 0xCFC, 4), 0xFFFFFFFF);
	/* Byte accesses to 0xCF8-0xCFB do not touch the latch (Linux's type 1 probe). */
	fake_vm_write(fake, false, 0xCF8, 4, 0x80000000);
	fake_vm_write(fake, false, 0xCFB, 1, 0x01);
	assert_int_equal(fake_vm_read(fake, false, 0xCF8, 4), 0x80000000);
	/* Read-only registers stay put. */
	fake_vm_cfg_write(fake, SLOT, 0x00, 4, 0);
	fake_vm_cfg_write(fake, SLOT, 0x08, 4, 0);
	fake_vm_cfg_write(fake, SLOT, PCI_INTERRUPT_PIN, 1, 4);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x00, 4), 0x10421AF4);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x08, 1), 1);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, PCI_INTERRUPT_PIN, 1), 1);
	/* The interrupt line is the guest's scratch register. */
	fake_vm_cfg_write(fake, SLOT, PCI_INTERRUPT_LINE, 1, 11);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, PCI_INTERRUPT_LINE, 1), 11);
}

static void test_pci_capabilities(void **state)
{
	unsigned msix;

	(void)state;
	assert_true(fake_vm_cfg_read(fake, SLOT, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (uint8_t type = 1; type <= 5; type++) {
		unsigned cap = find_cap(SLOT, PCI_CAP_ID_VNDR, type);

		assert_int_not_equal(cap, 0);
		assert_int_equal(fake_vm_cfg_read(fake, SLOT, cap + 4, 1), 0); /* BAR 0 */
	}
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, find_cap(SLOT, PCI_CAP_ID_VNDR, 1) + 8, 4),
			 VIRTIO_PCI_COMMON_OFF);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, find_cap(SLOT, PCI_CAP_ID_VNDR, 2) + 16, 4),
			 VIRTIO_PCI_NOTIFY_MULT);
	msix = find_cap(SLOT, PCI_CAP_ID_MSIX, 0);
	assert_int_not_equal(msix, 0);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, msix + 2, 2) & 0x7FF, 1); /* two vectors */
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, msix + 4, 4), VIRTIO_PCI_MSIX_TABLE_OFF);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, msix + 8, 4), VIRTIO_PCI_MSIX_PBA_OFF);
}

static void test_pci_bar_sizing_and_moving(void **state)
{
	uint64_t moved = 0xD8000000;

	(void)state;
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x10, 4) & 0xF, 0x4); /* 64-bit memory */
	assert_true(fx.bar >= VM_PCI_MMIO_START && fx.bar < VM_PCI_MMIO_END);
	assert_int_equal(fx.bar % VIRTIO_PCI_BAR_SIZE, 0);
	assert_true(fake_vm_cfg_read(fake, SLOT, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY);
	/* Sizing, the way Linux does it: all-ones, read back, restore. */
	fake_vm_cfg_write(fake, SLOT, PCI_COMMAND, 2, 0);
	fake_vm_cfg_write(fake, SLOT, 0x10, 4, 0xFFFFFFFF);
	fake_vm_cfg_write(fake, SLOT, 0x14, 4, 0xFFFFFFFF);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x10, 4),
			 (uint32_t) ~(VIRTIO_PCI_BAR_SIZE - 1) | 0x4);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x14, 4), 0xFFFFFFFF);
	/* Unused BARs size to 0. */
	fake_vm_cfg_write(fake, SLOT, 0x18, 4, 0xFFFFFFFF);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x18, 4), 0);
	fake_vm_cfg_write(fake, SLOT, 0x30, 4, 0xFFFFFFFF);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, 0x30, 4), 0);
	/* Move the BAR; the registers follow it, only while memory decoding is on. */
	fake_vm_cfg_write(fake, SLOT, 0x10, 4, (uint32_t)moved);
	fake_vm_cfg_write(fake, SLOT, 0x14, 4, 0);
	assert_int_equal(fake_vm_bar0(fake, SLOT), moved);
	assert_int_equal(fake_vm_read(fake, true, moved + VIRTIO_PCI_COMMON_OFF + CC_NUMQ, 2),
			 0xFFFF);
	fake_vm_cfg_write(fake, SLOT, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, PCI_COMMAND, 2),
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	assert_int_equal(fake_vm_read(fake, true, moved + VIRTIO_PCI_COMMON_OFF + CC_NUMQ, 2), 1);
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_COMMON_OFF + CC_NUMQ, 2),
			 0xFFFF);
	/* A sub-dword write changes only its bytes. */
	fake_vm_cfg_write(fake, SLOT, 0x12, 2, 0xD900);
	assert_int_equal(fake_vm_bar0(fake, SLOT), 0xD9000000);
	/* Moved outside the window: no longer reachable, nothing breaks. */
	fake_vm_cfg_write(fake, SLOT, 0x14, 4, 1);
	assert_int_equal(fake_vm_read(fake, true, 0xD9000000 + CC_NUMQ, 2), 0xFFFF);
}

struct slot_list {
	unsigned *seen, *n;
};

static void collect_slot(void *arg, unsigned slot, unsigned gsi)
{
	struct slot_list *l = arg;

	l->seen[(*l->n)++] = slot << 8 | gsi;
}

static void test_pci_two_disks(void **state)
{
	char path2[160];
	struct virtio_blk *second;
	unsigned seen[4], n = 0;

	(void)state;
	snprintf(path2, sizeof(path2), "%s/second.img", fx.dir);
	make_image(path2, 8);
	second = virtio_blk_create(fake, fx.bus, path2, true);
	assert_non_null(second);
	assert_int_equal(fake_vm_cfg_read(fake, 2, 0x00, 4), 0x10421AF4);
	assert_int_not_equal(fake_vm_bar0(fake, 2), fake_vm_bar0(fake, SLOT));
	/* Its capacity comes through its own BAR. */
	assert_int_equal(fake_vm_read(fake, true, fake_vm_bar0(fake, 2) + VIRTIO_PCI_DEVICE_OFF, 8),
			 8);
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF, 8), SECTORS);

	struct slot_list acc = {seen, &n};
	assert_int_equal(pci_for_each_device(fx.bus, collect_slot, &acc), 2);
	assert_int_equal(n, 2);
	assert_int_equal(seen[0], 1 << 8 | 17);
	assert_int_equal(seen[1], 2 << 8 | 18);
	virtio_blk_free(second);
	assert_int_equal(fake_vm_cfg_read(fake, 2, 0x00, 4), 0xFFFFFFFF);
	unlink(path2);
}

static void test_create_errors(void **state)
{
	char missing[160];

	(void)state;
	snprintf(missing, sizeof(missing), "%s/missing.img", fx.dir);
	assert_null(virtio_blk_create(fake, fx.bus, missing, false));
	assert_non_null(strstr(log_text(), "cannot open"));
	/* The image is locked: a second writer is refused. */
	make_image(fx.path, 4);
	fx.blk = virtio_blk_create(fake, fx.bus, fx.path, false);
	assert_non_null(fx.blk);
	assert_null(virtio_blk_create(fake, fx.bus, fx.path, false));
	assert_non_null(strstr(log_text(), "cannot lock"));
	/* The bus fills up at 31 devices. */
	for (unsigned i = 2; i < 32; i++) {
		struct pci_device_desc d = {.name = "dummy", .vendor_id = 0x1234};

		assert_non_null(pci_add_device(fx.bus, &d));
	}
	struct pci_device_desc d = {.name = "one-too-many", .vendor_id = 0x1234};
	assert_null(pci_add_device(fx.bus, &d));
}

/* Features and status */

static void test_feature_negotiation(void **state)
{
	uint64_t f;

	(void)state;
	f = device_features();
	assert_true(f & F_VERSION_1);
	assert_true(f & F_FLUSH);
	assert_true(f & F_SEG_MAX);
	assert_true(f & F_BLK_SIZE);
	assert_false(f & F_RO);
	assert_int_equal(common_rd(CC_NUMQ, 2), 1);
	/* Capacity, seg_max and blk_size in the device config. */
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF, 8), SECTORS);
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF + 0x0C, 4),
			 VIRTQ_MAX_SIZE - 2);
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF + 0x14, 4), 512);
	/* A legacy driver (no VERSION_1) and unknown bits are refused. */
	assert_false(negotiate(F_FLUSH));
	assert_false(negotiate(F_VERSION_1 | 1ULL << 40));
	assert_true(negotiate(F_VERSION_1 | F_FLUSH));
	/* Features are frozen after FEATURES_OK. */
	common_wr(CC_GFSELECT, 4, 0);
	common_wr(CC_GF, 4, 0xFFFFFFFF);
	assert_int_equal(common_rd(CC_GF, 4), (uint32_t)F_FLUSH);
	/* Queue registers: size offered, notify offset, no queue 1. */
	assert_int_equal(common_rd(CC_Q_SIZE, 2), VIRTQ_MAX_SIZE);
	assert_int_equal(common_rd(CC_Q_NOFF, 2), 0);
	common_wr(CC_Q_SELECT, 2, 1);
	assert_int_equal(common_rd(CC_Q_SIZE, 2), 0);
	common_wr(CC_Q_SELECT, 2, 0);
	/* Reset clears status and features. */
	common_wr(CC_STATUS, 1, 0);
	assert_int_equal(status(), 0);
	assert_int_equal(common_rd(CC_GF, 4), 0);
}

static void test_pci_cfg_access_capability(void **state)
{
	unsigned cap;

	(void)state;
	cap = find_cap(SLOT, PCI_CAP_ID_VNDR, 5);
	assert_int_not_equal(cap, 0);
	/* Read num_queues through the window in config space, with decoding off. */
	fake_vm_cfg_write(fake, SLOT, PCI_COMMAND, 2, 0);
	fake_vm_cfg_write(fake, SLOT, cap + 4, 1, 0);
	fake_vm_cfg_write(fake, SLOT, cap + 8, 4, VIRTIO_PCI_COMMON_OFF + CC_NUMQ);
	fake_vm_cfg_write(fake, SLOT, cap + 12, 4, 2);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, cap + 16, 2), 1);
	/* Write the device status through it. */
	fake_vm_cfg_write(fake, SLOT, cap + 8, 4, VIRTIO_PCI_COMMON_OFF + CC_STATUS);
	fake_vm_cfg_write(fake, SLOT, cap + 12, 4, 1);
	fake_vm_cfg_write(fake, SLOT, cap + 16, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, cap + 16, 1), VIRTIO_STATUS_ACKNOWLEDGE);
	/* Nonsense lengths and offsets do nothing. */
	fake_vm_cfg_write(fake, SLOT, cap + 12, 4, 3);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, cap + 16, 4), 0);
	fake_vm_cfg_write(fake, SLOT, cap + 8, 4, 0xFFFFFFFC);
	fake_vm_cfg_write(fake, SLOT, cap + 12, 4, 4);
	fake_vm_cfg_write(fake, SLOT, cap + 16, 4, 0);
	assert_int_equal(fake_vm_cfg_read(fake, SLOT, cap + 16, 4), 0);
}

/* Requests */

static void test_read_write_flush_get_id(void **state)
{
	uint8_t buf[1024], expect[1024];
	uint32_t used;
	int fd;

	(void)state;
	drv_start(8);
	/* Read sectors 2-3: the image pattern. */
	assert_int_equal(request(T_IN, 2, 1024, &used), 0);
	assert_int_equal(used, 1024 + 1);
	memset(expect, 0xA2, 512);
	memset(expect + 512, 0xA3, 512);
	assert_memory_equal(fake->ram + DATA_GPA, expect, 1024);
	/* Write sectors 5-6, flush, read them back, and find them in the file. */
	for (unsigned i = 0; i < 1024; i++)
		fake->ram[DATA_GPA + i] = (uint8_t)(i * 7 + 3);
	memcpy(expect, fake->ram + DATA_GPA, 1024);
	assert_int_equal(request(T_OUT, 5, 1024, &used), 0);
	assert_int_equal(used, 1);
	assert_int_equal(request(T_FLUSH, 0, 0, &used), 0);
	assert_int_equal(used, 1);
	memset(fake->ram + DATA_GPA, 0, 1024);
	assert_int_equal(request(T_IN, 5, 1024, NULL), 0);
	assert_memory_equal(fake->ram + DATA_GPA, expect, 1024);
	fd = open(fx.path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, 1024, 5 * 512), 1024);
	close(fd);
	assert_memory_equal(buf, expect, 1024);
	/* The last sector is readable. */
	assert_int_equal(request(T_IN, SECTORS - 1, 512, NULL), 0);
	/* GET_ID: the file name, NUL-padded to 20 bytes. */
	memset(fake->ram + DATA_GPA, 0xFF, 20);
	assert_int_equal(request(T_GET_ID, 0, 20, &used), 0);
	assert_int_equal(used, 21);
	assert_memory_equal(fake->ram + DATA_GPA, "disk-serial.img\0\0\0\0\0", 20);
	/* Unknown request types. */
	assert_int_equal(request(11 /* discard */, 0, 0, NULL), 2);
	assert_int_equal(request(0x12345678, 0, 0, NULL), 2);
	assert_false(broken());
}

static void test_any_layout_and_indirect(void **state)
{
	uint8_t expect[512];

	(void)state;
	drv_start(8);
	/* Data and status share one writable buffer (any layout is allowed since 1.0). */
	put_hdr(T_IN, 1);
	fake_vm_put_desc(fake, DESC_GPA, 3, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 4);
	fake_vm_put_desc(fake, DESC_GPA, 4, DATA_GPA, 513, VIRTQ_DESC_F_WRITE, 0);
	submit(3);
	assert_int_equal(take_used(3), 513);
	memset(expect, 0xA1, 512);
	assert_memory_equal(fake->ram + DATA_GPA, expect, 512);
	assert_int_equal(fake->ram[DATA_GPA + 512], 0);
	/* The same request through an indirect table, header split in two. */
	memset(fake->ram + DATA_GPA, 0, 600);
	put_hdr(T_IN, 4);
	fake_vm_put_desc(fake, TABLE_GPA, 0, HDR_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	fake_vm_put_desc(fake, TABLE_GPA, 1, HDR_GPA + 8, 8, VIRTQ_DESC_F_NEXT, 2);
	fake_vm_put_desc(fake, TABLE_GPA, 2, DATA_GPA, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
			 3);
	fake_vm_put_desc(fake, TABLE_GPA, 3, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	fake_vm_put_desc(fake, DESC_GPA, 5, TABLE_GPA, 4 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake->ram[STATUS_GPA] = 0xEE;
	submit(5);
	assert_int_equal(take_used(5), 513);
	assert_int_equal(fake->ram[STATUS_GPA], 0);
	memset(expect, 0xA4, 512);
	assert_memory_equal(fake->ram + DATA_GPA, expect, 512);
	assert_false(broken());
}

static void test_full_ring_in_one_notify(void **state)
{
	uint8_t *avail = fake->ram + AVAIL_GPA;

	(void)state;
	drv_start(8);
	fake->irq_changes = 0;
	/* Eight reads, one per descriptor through its own indirect table, one notify. */
	for (uint16_t i = 0; i < 8; i++) {
		uint64_t table = TABLE_GPA + 0x100 * i, hdr = HDR_GPA + 0x100 * i;
		uint32_t type = T_IN;
		uint64_t sector = i;

		memcpy(fake->ram + hdr, &type, 4);
		memcpy(fake->ram + hdr + 8, &sector, 8);
		fake_vm_put_desc(fake, table, 0, hdr, 16, VIRTQ_DESC_F_NEXT, 1);
		fake_vm_put_desc(fake, table, 1, DATA_GPA + 512 * i, 512,
				 VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
		fake_vm_put_desc(fake, table, 2, STATUS_GPA + i, 1, VIRTQ_DESC_F_WRITE, 0);
		fake_vm_put_desc(fake, DESC_GPA, i, table, 48, VIRTQ_DESC_F_INDIRECT, 0);
		memcpy(avail + 4 + 2 * i, &i, 2);
	}
	drv.avail_idx = 8;
	memcpy(avail + 2, &drv.avail_idx, 2);
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	assert_int_equal(used_idx(), 8);
	for (uint16_t i = 0; i < 8; i++) {
		assert_int_equal(take_used(i), 513);
		assert_int_equal(fake->ram[STATUS_GPA + i], 0);
		assert_int_equal(fake->ram[DATA_GPA + 512 * i + 511], 0xA0 + i);
	}
	/* One interrupt for the batch. */
	assert_int_equal(fake->irq_changes, 1);
	assert_false(broken());
}

static void test_read_only(void **state)
{
	uint8_t buf[512];
	int fd;

	(void)state;
	assert_true(device_features() & F_RO);
	drv_start(8);
	memset(fake->ram + DATA_GPA, 0x55, 512);
	assert_int_equal(request(T_OUT, 0, 512, NULL), 1);
	/* Refused by the device, not by a failed write on the host. */
	assert_null(strstr(log_text(), "writing"));
	assert_int_equal(request(T_IN, 0, 512, NULL), 0);
	assert_int_equal(request(T_FLUSH, 0, 0, NULL), 0);
	fd = open(fx.path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, 512, 0), 512);
	close(fd);
	assert_int_equal(buf[0], 0xA0);
	assert_false(broken());
}

/* Interrupts */

static void test_intx_and_isr(void **state)
{
	(void)state;
	drv_start(8);
	assert_false(fake->irq[17]);
	assert_int_equal(request(T_IN, 0, 512, NULL), 0);
	assert_true(fake->irq[17]);
	assert_true(fake_vm_cfg_read(fake, SLOT, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	/* Reading the ISR acknowledges: bit 0 (queue), then the line drops. */
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_ISR_OFF, 1), 1);
	assert_false(fake->irq[17]);
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_ISR_OFF, 1), 0);
	/* The command register's interrupt-disable bit masks the line. */
	fake_vm_cfg_write(fake, SLOT, PCI_COMMAND, 2,
			  PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE);
	assert_int_equal(request(T_IN, 0, 512, NULL), 0);
	assert_false(fake->irq[17]);
	fake_vm_cfg_write(fake, SLOT, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_true(fake->irq[17]);
	fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_ISR_OFF, 1);
	assert_false(fake->irq[17]);
	/* VIRTQ_AVAIL_F_NO_INTERRUPT: no interrupt for this one. */
	fake->ram[AVAIL_GPA] = VIRTQ_AVAIL_F_NO_INTERRUPT;
	assert_int_equal(request(T_IN, 0, 512, NULL), 0);
	assert_false(fake->irq[17]);
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_ISR_OFF, 1), 0);
}

static void test_msix(void **state)
{
	unsigned msix;
	uint64_t table;

	(void)state;
	msix = find_cap(SLOT, PCI_CAP_ID_MSIX, 0);
	table = fx.bar + VIRTIO_PCI_MSIX_TABLE_OFF;
	/* Vector 0: config, vector 1: queue 0. Entries start masked. */
	assert_int_equal(fake_vm_read(fake, true, table + 12, 4), 1);
	for (unsigned v = 0; v < 2; v++) {
		fake_vm_write(fake, true, table + 16 * v, 4, 0xFEE00000);
		fake_vm_write(fake, true, table + 16 * v + 4, 4, 0);
		fake_vm_write(fake, true, table + 16 * v + 8, 4, 0x40 + v);
		fake_vm_write(fake, true, table + 16 * v + 12, 4, 0);
	}
	fake_vm_cfg_write(fake, SLOT, msix + 2, 2, 0x8000);
	drv_start(8);
	common_wr(CC_MSIX, 2, 0);
	common_wr(CC_Q_SELECT, 2, 0);
	common_wr(CC_Q_MSIX, 2, 1);
	assert_int_equal(common_rd(CC_Q_MSIX, 2), 1);
	/* A vector that does not exist reads back as NO_VECTOR. */
	common_wr(CC_MSIX, 2, 7);
	assert_int_equal(common_rd(CC_MSIX, 2), 0xFFFF);
	common_wr(CC_MSIX, 2, 0);
	assert_int_equal(request(T_IN, 0, 512, NULL), 0);
	assert_int_equal(fake->nmsi, 1);
	assert_int_equal(fake->msi_addr[0], 0xFEE00000);
	assert_int_equal(fake->msi_data[0], 0x41);
	assert_false(fake->irq[17]);
	/* Masked: the PBA holds it; unmasking delivers it. */
	fake_vm_write(fake, true, table + 16 + 12, 4, 1);
	assert_int_equal(request(T_IN, 0, 512, NULL), 0);
	assert_int_equal(fake->nmsi, 1);
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_MSIX_PBA_OFF, 8), 2);
	fake_vm_write(fake, true, table + 16 + 12, 4, 0);
	assert_int_equal(fake->nmsi, 2);
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_MSIX_PBA_OFF, 8), 0);
	/* Function mask, then unmask through config space. */
	fake_vm_cfg_write(fake, SLOT, msix + 2, 2, 0xC000);
	assert_int_equal(request(T_IN, 0, 512, NULL), 0);
	assert_int_equal(fake->nmsi, 2);
	fake_vm_cfg_write(fake, SLOT, msix + 2, 2, 0x8000);
	assert_int_equal(fake->nmsi, 3);
	/* A driver error raises the config vector. */
	submit_step(0, 100);
	assert_true(broken());
	assert_int_equal(fake->nmsi, 4);
	assert_int_equal(fake->msi_data[3], 0x40);
}

/* Hostile drivers: each ends with the device broken (needs reset) or the request failed,
 * and the device usable again after a reset. */

static void expect_broken(const char *reason)
{
	const char *log = log_text();

	assert_true(broken());
	/* One line, naming the device. */
	assert_non_null(strstr(log, "virtio-blk 00:01.0: driver error, device needs reset: "));
	assert_int_equal(strchr(log, '\n') - log + 1, strlen(log));
	if (reason && !strstr(log, reason))
		fail_msg("expected '%s' in the log: %s", reason, log);
	/* Still broken: further notifies are ignored. */
	uint16_t before = used_idx();
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_NOTIFY_OFF, 2, 0);
	assert_int_equal(used_idx(), before);
	/* A reset brings it back. */
	common_wr(CC_STATUS, 1, 0);
	assert_int_equal(status(), 0);
	drv_start(8);
	assert_int_equal(request(T_IN, 0, 512, NULL), 0);
	assert_false(broken());
}

static void test_hostile_descriptor_loop(void **state)
{
	(void)state;
	drv_start(8);
	put_hdr(T_IN, 0);
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_vm_put_desc(fake, DESC_GPA, 1, DATA_GPA, 512, VIRTQ_DESC_F_NEXT, 0);
	submit(0);
	assert_int_equal(used_idx(), 0);
	assert_true(fake->irq[17]); /* config interrupt via INTx */
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_ISR_OFF, 1) & 2, 2);
	expect_broken("loops");
}

static void test_hostile_self_loop_and_indirect_loop(void **state)
{
	(void)state;
	drv_start(8);
	fake_vm_put_desc(fake, DESC_GPA, 2, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	submit(2);
	expect_broken("loops");
	/* A loop inside an indirect table. */
	fake_vm_put_desc(fake, TABLE_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_vm_put_desc(fake, TABLE_GPA, 1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	fake_vm_put_desc(fake, DESC_GPA, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	submit(0);
	expect_broken("loops");
}

static void test_hostile_chain_too_long(void **state)
{
	(void)state;
	drv_start(8);
	/* An indirect table longer than any queue: 257 entries chained in order. */
	for (unsigned i = 0; i < VIRTQ_MAX_SIZE + 1; i++)
		fake_vm_put_desc(fake, TABLE_GPA, i, HDR_GPA, 16, VIRTQ_DESC_F_NEXT,
				 (uint16_t)(i + 1));
	fake_vm_put_desc(fake, DESC_GPA, 0, TABLE_GPA, 16 * (VIRTQ_MAX_SIZE + 1),
			 VIRTQ_DESC_F_INDIRECT, 0);
	submit(0);
	expect_broken("indirect table length");
	/* Direct descriptors then an indirect table: more buffers than the limit. */
	for (unsigned i = 0; i < 7; i++)
		fake_vm_put_desc(fake, DESC_GPA, i, HDR_GPA, 16, VIRTQ_DESC_F_NEXT,
				 (uint16_t)(i + 1));
	fake_vm_put_desc(fake, DESC_GPA, 7, TABLE_GPA, 16 * VIRTQ_MAX_SIZE, VIRTQ_DESC_F_INDIRECT,
			 0);
	for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
		fake_vm_put_desc(fake, TABLE_GPA, i, HDR_GPA, 16,
				 i + 1 < VIRTQ_MAX_SIZE ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	submit(0);
	expect_broken("longer than");
	/* Nested indirect, and indirect with NEXT. */
	fake_vm_put_desc(fake, TABLE_GPA, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	fake_vm_put_desc(fake, DESC_GPA, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	submit(0);
	expect_broken("inside an indirect table");
	fake_vm_put_desc(fake, DESC_GPA, 0, TABLE_GPA, 16,
			 VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	submit(0);
	expect_broken("next flag");
	/* Indirect without the feature. */
	drv_start_features(8, F_VERSION_1);
	fake_vm_put_desc(fake, DESC_GPA, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	submit(0);
	expect_broken("without the feature");
}

static void test_hostile_out_of_ram(void **state)
{
	(void)state;
	drv_start(8);
	put_hdr(T_IN, 0);
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_vm_put_desc(fake, DESC_GPA, 1, RAM_SIZE - 8, 16, VIRTQ_DESC_F_WRITE, 0);
	submit(0);
	expect_broken("outside guest RAM");
	fake_vm_put_desc(fake, DESC_GPA, 0, 0xF0000000ULL, 16, 0, 0);
	submit(0);
	expect_broken("outside guest RAM");
	/* An indirect table outside RAM. */
	fake_vm_put_desc(fake, DESC_GPA, 0, RAM_SIZE, 32, VIRTQ_DESC_F_INDIRECT, 0);
	submit(0);
	expect_broken("indirect table");
}

static void test_hostile_address_overflow(void **state)
{
	(void)state;
	drv_start(8);
	put_hdr(T_IN, 0);
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_vm_put_desc(fake, DESC_GPA, 1, 0xFFFFFFFFFFFFF000ULL, 0x2000, VIRTQ_DESC_F_WRITE, 0);
	submit(0);
	expect_broken("wraps around");
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_vm_put_desc(fake, DESC_GPA, 1, 0xFFFFFFFFFFFFFFFFULL, 1, VIRTQ_DESC_F_WRITE, 0);
	submit(0);
	expect_broken("wraps around");
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_vm_put_desc(fake, DESC_GPA, 1, 0xFFFFFFFFFFFFFF00ULL, 16, VIRTQ_DESC_F_WRITE, 0);
	submit(0);
	expect_broken("outside guest RAM");
}

static void test_hostile_huge_lengths(void **state)
{
	(void)state;
	drv_start(8);
	put_hdr(T_IN, 0);
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_vm_put_desc(fake, DESC_GPA, 1, DATA_GPA, 0xFFFFFFFF,
			 VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	fake_vm_put_desc(fake, DESC_GPA, 2, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	submit(0);
	expect_broken("outside guest RAM");
	/* Lengths that fit in RAM but not in the disk: the request fails, nothing breaks. */
	assert_int_equal(request(T_IN, 0, 8u << 20, NULL), 1);
	assert_int_equal(request(T_OUT, 0, 8u << 20, NULL), 1);
	/* Not a whole number of sectors. */
	assert_int_equal(request(T_IN, 0, 100, NULL), 1);
	assert_false(broken());
}

static void test_hostile_sector_past_end(void **state)
{
	(void)state;
	drv_start(8);
	assert_int_equal(request(T_IN, SECTORS, 512, NULL), 1);
	assert_int_equal(request(T_IN, SECTORS - 1, 1024, NULL), 1);
	assert_int_equal(request(T_OUT, SECTORS, 512, NULL), 1);
	/* sector * 512 would overflow 64 bits. */
	assert_int_equal(request(T_IN, UINT64_MAX / 512 + 1, 512, NULL), 1);
	assert_int_equal(request(T_OUT, UINT64_MAX - 1, 1024, NULL), 1);
	/* Zero-length reads at the end are fine. */
	assert_int_equal(request(T_IN, SECTORS, 0, NULL), 0);
	assert_false(broken());
	assert_int_equal(request(T_IN, SECTORS - 1, 512, NULL), 0);
}

static void test_hostile_queue_setup(void **state)
{
	(void)state;
	/* Not a power of two. */
	assert_true(negotiate(F_VERSION_1));
	common_wr(CC_Q_SIZE, 2, 100);
	common_wr(CC_Q_DESC, 8, DESC_GPA);
	common_wr(CC_Q_DRIVER, 8, AVAIL_GPA);
	common_wr(CC_Q_DEVICE, 8, USED_GPA);
	common_wr(CC_Q_ENABLE, 2, 1);
	assert_int_equal(common_rd(CC_Q_ENABLE, 2), 0);
	expect_broken("power of two");
	/* Larger than offered, and zero. */
	static const uint16_t bad_sizes[] = {512, 0, 0x8000};
	for (unsigned i = 0; i < 3; i++) {
		assert_true(negotiate(F_VERSION_1));
		common_wr(CC_Q_SIZE, 2, bad_sizes[i]);
		common_wr(CC_Q_ENABLE, 2, 1);
		expect_broken("power of two");
	}
	/* Rings outside RAM, straddling its end, misaligned. */
	static const uint64_t bad_rings[][3] = {
	    {0xF0000000ULL, AVAIL_GPA, USED_GPA},	  {DESC_GPA, RAM_SIZE - 8, USED_GPA},
	    {DESC_GPA, AVAIL_GPA, 0xFFFFFFFFFFFFFFF0ULL}, {DESC_GPA + 8, AVAIL_GPA, USED_GPA},
	    {DESC_GPA, AVAIL_GPA + 1, USED_GPA},
	};
	for (unsigned i = 0; i < sizeof(bad_rings) / sizeof(bad_rings[0]); i++) {
		assert_true(negotiate(F_VERSION_1));
		common_wr(CC_Q_SIZE, 2, 8);
		common_wr(CC_Q_DESC, 8, bad_rings[i][0]);
		common_wr(CC_Q_DRIVER, 8, bad_rings[i][1]);
		common_wr(CC_Q_DEVICE, 8, bad_rings[i][2]);
		common_wr(CC_Q_ENABLE, 2, 1);
		expect_broken(NULL);
	}
	/* Queue registers cannot change under an enabled queue. */
	drv_start(8);
	common_wr(CC_Q_DESC, 8, 0xF0000000ULL);
	common_wr(CC_Q_SIZE, 2, 3);
	assert_int_equal(common_rd(CC_Q_DESC, 8), DESC_GPA);
	assert_int_equal(common_rd(CC_Q_SIZE, 2), 8);
	assert_int_equal(request(T_IN, 0, 512, NULL), 0);
}

static void test_hostile_avail_ring(void **state)
{
	(void)state;
	drv_start(8);
	/* The index jumps by more than the queue size. */
	put_hdr(T_IN, 0);
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_vm_put_desc(fake, DESC_GPA, 1, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	submit_step(0, 9);
	assert_int_equal(avail_idx_in_ram(), 9);
	expect_broken("avail index jumped");
	/* A head or a next past the table. */
	submit(8);
	expect_broken("out of range");
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 8);
	submit(0);
	expect_broken("out of range");
	/* Readable after writable; no status byte; no header. */
	fake_vm_put_desc(fake, DESC_GPA, 0, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
			 1);
	fake_vm_put_desc(fake, DESC_GPA, 1, HDR_GPA, 16, 0, 0);
	submit(0);
	expect_broken("readable buffer after");
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 16, 0, 0);
	submit(0);
	expect_broken("no status byte");
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	fake_vm_put_desc(fake, DESC_GPA, 1, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	submit(0);
	expect_broken("no header");
}

static void test_hostile_notify_before_driver_ok(void **state)
{
	(void)state;
	/* Buffers and a notify before DRIVER_OK are not touched; DRIVER_OK picks them up. */
	assert_true(negotiate(F_VERSION_1));
	drv.size = 8;
	drv.avail_idx = drv.used_seen = 0;
	common_wr(CC_Q_SIZE, 2, 8);
	common_wr(CC_Q_DESC, 8, DESC_GPA);
	common_wr(CC_Q_DRIVER, 8, AVAIL_GPA);
	common_wr(CC_Q_DEVICE, 8, USED_GPA);
	common_wr(CC_Q_ENABLE, 2, 1);
	put_hdr(T_IN, 0);
	fake_vm_put_desc(fake, DESC_GPA, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	fake_vm_put_desc(fake, DESC_GPA, 1, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	submit(0);
	assert_int_equal(used_idx(), 0);
	common_wr(CC_STATUS, 1,
		  VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		      VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(take_used(0), 1);
	/* The driver cannot set DEVICE_NEEDS_RESET itself... */
	common_wr(CC_STATUS, 1, 0xFF);
	assert_false(broken());
	/* ... and odd accesses to the BAR do nothing harmful. */
	for (unsigned off = 0; off < VIRTIO_PCI_BAR_SIZE; off += 0x7F) {
		fake_vm_read(fake, true, fx.bar + off, 8);
		fake_vm_read(fake, true, fx.bar + off, 1);
	}
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_ISR_OFF, 4, 0xFFFFFFFF);
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_MSIX_PBA_OFF, 8, ~0ULL);
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF, 8, ~0ULL);
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_COMMON_OFF + 0x36, 8, ~0ULL);
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_NOTIFY_OFF + 4, 4, 0);
	fake_vm_write(fake, true, fx.bar + VIRTIO_PCI_BAR_SIZE - 4, 8, ~0ULL);
	assert_int_equal(fake_vm_read(fake, true, fx.bar + VIRTIO_PCI_DEVICE_OFF, 8), SECTORS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pci_config_space, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_capabilities, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_bar_sizing_and_moving, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_two_disks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_create_errors, setup_empty, teardown),
	    cmocka_unit_test_setup_teardown(test_feature_negotiation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_cfg_access_capability, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_write_flush_get_id, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_any_layout_and_indirect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_ring_in_one_notify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_only, setup_readonly, teardown),
	    cmocka_unit_test_setup_teardown(test_intx_and_isr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_msix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_descriptor_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_self_loop_and_indirect_loop, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_chain_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_out_of_ram, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_address_overflow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_huge_lengths, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_sector_past_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_queue_setup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_avail_ring, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_notify_before_driver_ok, setup, teardown),
	};
	return cmocka_run_group_tests_name("virtio", tests, NULL, NULL);
}
