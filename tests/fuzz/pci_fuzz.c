/* libFuzzer harness for PCI configuration and BAR decoding as a guest drives them
 * (hv/dev/pci.c) on the fake VM of tests/unit/fake_vm.c: a bus with two devices, one with
 * two memory BARs and INTA#, one with a BAR and a vendor capability that has writable
 * bits. The first byte picks the BAR sizes; then five-byte steps: an access of 1, 2 or 4
 * bytes to any of ports 0xCF8-0xCFF, read or write, or of 1 to 8 bytes anywhere in the
 * PCI window (near a BAR when the input says so), or a device's INTA# raised or lowered.
 * Checked after every step: what a device says it is (ids, class, header type,
 * interrupt pin, capability chain) never changes; a BAR reads back as a 64-bit memory
 * BAR aligned to its size; a config read through the ports returns what config space
 * holds; a BAR handler is called only with memory decoding on, at an offset and length
 * inside its BAR, for the guest address the BAR covers now; each INTx line is the OR of
 * the unmasked device lines wired to it. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/dev/pci.h"
#include "tests/unit/fake_vm.h"

#define NDEV 2

struct bar_handler {
	struct pci_device **dev;
	unsigned bar;
	uint64_t size;
};

static struct vm *fake;
static struct pci_device *devs[NDEV];
static struct bar_handler handlers[3];
static uint64_t accessed; /* the guest address of the MMIO access under way */
static uint8_t id_before[NDEV][PCI_CONFIG_SIZE];
static bool line_up[NDEV];

static uint64_t bar_addr(struct pci_device *dev, unsigned bar)
{
	return (pci_config_get(dev, PCI_BAR0 + 4 * bar, 4) & ~0xFull) |
	       (uint64_t)pci_config_get(dev, PCI_BAR0 + 4 * bar + 4, 4) << 32;
}

static void check_access(const struct bar_handler *h, uint64_t offset, unsigned len)
{
	struct pci_device *dev = *h->dev;

	if (!(pci_config_get(dev, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY))
		abort(); /* decoding off: nothing may reach the device */
	if (len == 0 || len > 8 || offset >= h->size || len > h->size - offset)
		abort();
	if (bar_addr(dev, h->bar) + offset != accessed)
		abort();
}

static void bar_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	check_access(opaque, offset, len);
	memset(data, 0xA5, len);
}

static void bar_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	(void)data;
	check_access(opaque, offset, len);
}

/* Config offsets the guest must not change: ids, revision, class, header type,
 * subsystem ids, interrupt pin, capability pointer and the capability's id and next. */
static bool read_only(unsigned o, int cap)
{
	return o < 0x04 || (o >= 0x08 && o < 0x0C) || o == 0x0E || (o >= 0x2C && o < 0x30) ||
	       o == PCI_INTERRUPT_PIN || o == PCI_CAPABILITY_LIST ||
	       (cap > 0 && (o == (unsigned)cap || o == (unsigned)cap + 1));
}

static int caps[NDEV];

static void check(void)
{
	for (unsigned d = 0; d < NDEV; d++) {
		for (unsigned o = 0; o < PCI_CONFIG_SIZE; o++)
			if (read_only(o, caps[d]) &&
			    pci_config_get(devs[d], o, 1) != id_before[d][o])
				abort();
	}
	for (unsigned i = 0; i < 3; i++) {
		const struct bar_handler *h = &handlers[i];
		uint32_t lo = pci_config_get(*h->dev, PCI_BAR0 + 4 * h->bar, 4);

		if ((lo & 0xF) != 0x4 || (bar_addr(*h->dev, h->bar) & (h->size - 1)))
			abort();
	}
	for (unsigned d = 0; d < NDEV; d++) {
		unsigned slot = pci_device_slot(devs[d]);
		bool want = false;

		for (unsigned e = 0; e < NDEV; e++)
			if (VM_PCI_INTX_GSI(pci_device_slot(devs[e])) == VM_PCI_INTX_GSI(slot) &&
			    line_up[e] &&
			    !(pci_config_get(devs[e], PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE))
				want = true;
		if (fake->irq[VM_PCI_INTX_GSI(slot)] != want)
			abort();
	}
}

static uint64_t field(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t vendor_cap[16] = {PCI_CAP_ID_VNDR, 0, 16, 1, 2, 3, 4, 5};
	static const uint8_t vendor_wmask[16] = {0, 0, 0, 0, 0xFF, 0x0F, 0, 0xFF, 0xFF};
	static const unsigned lens[] = {1, 2, 4};
	struct pci_bus *bus;

	if (size < 1)
		return 0;
	if (!fake)
		fake = fake_vm_create(1 << 20);
	else
		fake_vm_reset(fake);
	if (!fake)
		abort();
	bus = pci_create(fake);
	if (!bus)
		abort();
	for (unsigned d = 0; d < NDEV; d++) {
		struct pci_device_desc desc = {.name = d ? "b" : "a",
					       .vendor_id = 0x1AF4,
					       .device_id = (uint16_t)(0x1050 + d),
					       .subsystem_vendor_id = 0x1AF4,
					       .subsystem_id = (uint16_t)d,
					       .revision = 1,
					       .class_code = 0x038000};

		devs[d] = pci_add_device(bus, &desc);
		if (!devs[d])
			abort();
	}
	handlers[0] = (struct bar_handler){&devs[0], 0, 16ull << (data[0] & 7)};
	handlers[1] = (struct bar_handler){&devs[0], 2, 4096ull << ((data[0] >> 3) & 7)};
	handlers[2] = (struct bar_handler){&devs[1], 0, 1ull << 20};
	for (unsigned i = 0; i < 3; i++) {
		struct io_region r = {
		    .io_read = bar_read, .io_write = bar_write, .io_opaque = &handlers[i]};

		if (pci_add_bar(*handlers[i].dev, handlers[i].bar, handlers[i].size, &r) < 0)
			abort();
	}
	caps[0] = 0;
	caps[1] = pci_add_capability(devs[1], vendor_cap, sizeof(vendor_cap), vendor_wmask);
	if (caps[1] < 0)
		abort();
	for (unsigned d = 0; d < NDEV; d++) {
		for (unsigned o = 0; o < PCI_CONFIG_SIZE; o++)
			id_before[d][o] = (uint8_t)pci_config_get(devs[d], o, 1);
		line_up[d] = false;
	}
	check();
	for (size_t i = 1; i + 5 <= size; i += 5) {
		const uint8_t *s = data + i;
		unsigned op = s[0] & 7, len = lens[(s[0] >> 3) % 3];
		unsigned port = 0xCF8 + ((s[0] >> 5) & 7);

		switch (op) {
		case 0: /* a config-space access, as Linux makes them: address, then data */
			fake_vm_write(fake, false, 0xCF8, 4,
				      0x80000000u |
					  (uint32_t)pci_device_slot(devs[s[1] & 1]) << 11 |
					  (s[2] & 0xFCu));
			if (s[1] & 2) {
				unsigned off = (s[2] & 0xFCu) + (s[1] >> 6) % (5 - len);
				uint32_t want = pci_config_get(devs[s[1] & 1], off, len);

				if ((uint32_t)fake_vm_read(fake, false, 0xCFC + (off & 3), len) !=
				    want)
					abort();
			} else {
				fake_vm_write(fake, false, 0xCFC + ((s[1] >> 6) % (5 - len)), len,
					      field(s + 3, 2) * 0x10001u);
			}
			break;
		case 1: fake_vm_read(fake, false, port, len); break;
		case 2: fake_vm_write(fake, false, port, len, field(s + 1, 4)); break;
		case 3:
		case 4: { /* MMIO: near a BAR's current address, or anywhere in the window */
			const struct bar_handler *h = &handlers[s[1] % 3];
			uint64_t gpa = (s[1] & 0x80) ? VM_PCI_MMIO_START + (field(s + 2, 3) << 8)
						     : bar_addr(*h->dev, h->bar) - h->size / 2 +
							   field(s + 2, 3) % (2 * h->size);
			unsigned n = 1 + (s[0] >> 5);

			accessed = gpa;
			if (op == 3)
				fake_vm_read(fake, true, gpa, n);
			else
				fake_vm_write(fake, true, gpa, n, field(s + 1, 4));
			break;
		}
		case 5: /* a device's INTA# */
			line_up[s[1] & 1] = s[2] & 1;
			pci_set_intx(devs[s[1] & 1], line_up[s[1] & 1]);
			break;
		default: /* BAR sizing as firmware does it: all ones, read, put an address back */
			fake_vm_write(fake, false, 0xCF8, 4,
				      0x80000000u |
					  (uint32_t)pci_device_slot(devs[s[1] & 1]) << 11 |
					  (PCI_BAR0 + 4 * (s[2] % 6)));
			fake_vm_write(fake, false, 0xCFC, 4, 0xFFFFFFFFu);
			fake_vm_read(fake, false, 0xCFC, 4);
			fake_vm_write(fake, false, 0xCFC, 4, field(s + 3, 2) << 16);
			break;
		}
		check();
	}
	for (unsigned d = 0; d < NDEV; d++)
		pci_remove_device(devs[d]);
	pci_free(bus);
	return 0;
}
