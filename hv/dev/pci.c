/* PCI bus 0: configuration mechanism #1 (ports 0xCF8-0xCFF), config space with write masks
 * (BAR sizing falls out of the masks), a capability list, INTA# lines ORed per GSI, and one
 * MMIO region over the PCI window that forwards accesses to the device whose memory BAR
 * currently covers them. Knows nothing of virtio or of any device's registers.
 *
 * Locking: bus->lock guards config space, the address latch, the slots and the INTx
 * levels. It is the innermost lock: nothing outside this file is called with it held except
 * vm_set_irq(), so device hooks and BAR handlers may call back into pci_* freely. */
#include "hv/dev/pci.h"
#include "hv/le.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

#define CONFIG_ADDRESS_PORT 0xCF8
#define CONFIG_PORTS_LEN    8 /* 0xCF8-0xCFB address, 0xCFC-0xCFF data */
#define CONFIG_ENABLE	    0x80000000u

#define HOST_BRIDGE_VENDOR 0x8086 /* the id pair Firecracker and Cloud Hypervisor use */
#define HOST_BRIDGE_DEVICE 0x0D57
#define CLASS_HOST_BRIDGE  0x060000

#define PCI_BAR_MEM_TYPE_64 0x04
#define PCI_HEADER_TYPE	    0x0E
#define PCI_CAP_START	    0x40
#define BAR_MIN_SIZE	    16
#define BAR_MAX_SIZE	    (256ULL << 20)
#define BAR_MIN_ALIGN	    4096 /* keep BARs page-aligned so guests can map them */
#define NUM_INTX_GSIS	    8

struct pci_bar {
	uint64_t size; /* 0: unused (or the upper half of the BAR below) */
	struct io_region region;
};

struct pci_device {
	struct pci_bus *bus;
	unsigned slot;
	struct pci_device_desc desc;
	uint8_t cfg[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE]; /* bits the guest may change */
	struct pci_bar bars[PCI_NUM_BARS];
	bool bar_used[PCI_NUM_BARS];
	unsigned cap_free; /* first config offset not used by capabilities */
	unsigned cap_last; /* offset of the last capability, 0 when none */
	bool intx_level;
};

struct pci_bus {
	struct vm *vm;
	pthread_mutex_t lock;
	uint32_t config_address;
	uint64_t mmio_next; /* BAR allocator: everything below is taken */
	bool gsi_level[NUM_INTX_GSIS];
	struct pci_device *slots[PCI_MAX_SLOTS];
};

static bool valid_access(unsigned offset, unsigned len)
{
	return (len == 1 || len == 2 || len == 4) && offset < PCI_CONFIG_SIZE &&
	       len <= PCI_CONFIG_SIZE - offset;
}

static uint16_t command_of(const struct pci_device *dev)
{
	return (uint16_t)le_get(dev->cfg + PCI_COMMAND, 2);
}

static uint64_t bar_address(const struct pci_device *dev, unsigned bar)
{
	const uint8_t *p = dev->cfg + PCI_BAR0 + 4 * bar;

	return (le_get(p, 4) & ~0xFu) | (uint64_t)le_get(p + 4, 4) << 32;
}

/* Drives each INTx GSI to the OR of the unmasked lines of the devices on it. */
static void update_intx_locked(struct pci_bus *bus)
{
	bool level[NUM_INTX_GSIS] = {false};

	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
		struct pci_device *dev = bus->slots[s];

		if (dev && dev->intx_level && !(command_of(dev) & PCI_COMMAND_INTX_DISABLE))
			level[VM_PCI_INTX_GSI(s) - VM_PCI_INTX_GSI(0)] = true;
	}
	for (unsigned i = 0; i < NUM_INTX_GSIS; i++) {
		if (level[i] == bus->gsi_level[i])
			continue;
		bus->gsi_level[i] = level[i];
		if (vm_set_irq(bus->vm, VM_PCI_INTX_GSI(0) + i, level[i]) < 0)
			log_warnx("pci: cannot drive gsi %u", VM_PCI_INTX_GSI(0) + i);
	}
}

/* The device addressed by the latch, or NULL; *offset gets the register. Bus lock held. */
static struct pci_device *addressed_locked(struct pci_bus *bus, unsigned reg, unsigned *offset)
{
	uint32_t a = bus->config_address;

	if (!(a & CONFIG_ENABLE) || ((a >> 16) & 0xFF) != 0 || ((a >> 8) & 0x7) != 0)
		return NULL;
	*offset = (a & 0xFC) + reg;
	return bus->slots[(a >> 11) & 0x1F];
}

static uint32_t config_read(struct pci_device *dev, unsigned offset, unsigned len)
{
	struct pci_bus *bus = dev->bus;
	uint32_t v;

	pthread_mutex_lock(&bus->lock);
	v = le_get(dev->cfg + offset, len);
	pthread_mutex_unlock(&bus->lock);
	if (dev->desc.config_read)
		dev->desc.config_read(dev->desc.opaque, offset, len, &v);
	return v;
}

static void config_write(struct pci_device *dev, unsigned offset, unsigned len, uint32_t v)
{
	struct pci_bus *bus = dev->bus;
	bool command = false;

	pthread_mutex_lock(&bus->lock);
	for (unsigned i = 0; i < len; i++) {
		unsigned o = offset + i;
		uint8_t b = (uint8_t)(v >> (8 * i));

		dev->cfg[o] = (uint8_t)((dev->cfg[o] & ~dev->wmask[o]) | (b & dev->wmask[o]));
		if (o == PCI_COMMAND + 1)
			command = true;
	}
	if (command)
		update_intx_locked(bus);
	pthread_mutex_unlock(&bus->lock);
	if (dev->desc.config_write)
		dev->desc.config_write(dev->desc.opaque, offset, len, v);
}

static void pio_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct pci_bus *bus = opaque;
	struct pci_device *dev = NULL;
	unsigned reg = 0;
	uint32_t v = 0xFFFFFFFF;

	if (offset == 0 && len == 4) {
		pthread_mutex_lock(&bus->lock);
		v = bus->config_address;
		pthread_mutex_unlock(&bus->lock);
	} else if (offset >= 4 && offset - 4 + len <= 4 && len <= 4) {
		pthread_mutex_lock(&bus->lock);
		dev = addressed_locked(bus, (unsigned)offset - 4, &reg);
		pthread_mutex_unlock(&bus->lock);
		if (dev)
			v = config_read(dev, reg, len);
	}
	memset(data, 0xFF, len);
	le_put(data, len < 4 ? len : 4, v);
}

static void pio_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct pci_bus *bus = opaque;
	struct pci_device *dev;
	unsigned reg = 0;

	/* Byte and word writes to 0xCF8-0xCFB (mechanism #2 probes, 0xCF9 reset) are ignored. */
	if (offset == 0 && len == 4) {
		pthread_mutex_lock(&bus->lock);
		bus->config_address = le_get(data, 4) & 0x80FFFFFCu;
		pthread_mutex_unlock(&bus->lock);
		return;
	}
	if (offset < 4 || len > 4 || offset - 4 + len > 4)
		return;
	pthread_mutex_lock(&bus->lock);
	dev = addressed_locked(bus, (unsigned)offset - 4, &reg);
	pthread_mutex_unlock(&bus->lock);
	if (dev)
		config_write(dev, reg, len, le_get(data, len));
}

/* The BAR region covering [gpa, gpa + len) with memory decoding on; *base gets its address. */
static bool find_bar_locked(struct pci_bus *bus, uint64_t gpa, unsigned len,
			    struct io_region *region, uint64_t *base)
{
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_device *dev = bus->slots[s];

		if (!dev || !(command_of(dev) & PCI_COMMAND_MEMORY))
			continue;
		for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
			uint64_t a = bar_address(dev, b), size = dev->bars[b].size;

			if (!size || gpa < a || gpa - a >= size || len > size - (gpa - a))
				continue;
			*region = dev->bars[b].region;
			*base = a;
			return true;
		}
	}
	return false;
}

/* The BAR region that holds len bytes at offset into the MMIO window, and the offset
 * into that region. */
static bool mmio_lookup(struct pci_bus *bus, uint64_t offset, unsigned len, struct io_region *r,
			uint64_t *region_offset)
{
	uint64_t gpa = VM_PCI_MMIO_START + offset, base = 0;
	bool found;

	pthread_mutex_lock(&bus->lock);
	found = find_bar_locked(bus, gpa, len, r, &base);
	pthread_mutex_unlock(&bus->lock);
	*region_offset = gpa - base;
	return found;
}

static void mmio_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct io_region r;
	uint64_t off;

	if (mmio_lookup(opaque, offset, len, &r, &off) && r.io_read)
		r.io_read(r.io_opaque, off, data, len);
	else
		memset(data, 0xFF, len);
}

static void mmio_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct io_region r;
	uint64_t off;

	if (mmio_lookup(opaque, offset, len, &r, &off) && r.io_write)
		r.io_write(r.io_opaque, off, data, len);
}

static struct pci_device *new_device(struct pci_bus *bus, unsigned slot,
				     const struct pci_device_desc *desc)
{
	struct pci_device *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	dev->bus = bus;
	dev->slot = slot;
	dev->desc = *desc;
	dev->cap_free = PCI_CAP_START;
	le_put(dev->cfg + 0x00, 2, desc->vendor_id);
	le_put(dev->cfg + 0x02, 2, desc->device_id);
	dev->cfg[0x08] = desc->revision;
	le_put(dev->cfg + 0x09, 3, desc->class_code);
	dev->cfg[PCI_HEADER_TYPE] = 0x00; /* type 0, single function */
	le_put(dev->cfg + 0x2C, 2, desc->subsystem_vendor_id);
	le_put(dev->cfg + 0x2E, 2, desc->subsystem_id);
	/* Command: I/O, memory, bus master, parity, SERR#, interrupt disable. */
	le_put(dev->wmask + PCI_COMMAND, 2, 0x0547);
	dev->wmask[0x0C] = 0xFF; /* cache line size */
	dev->wmask[0x0D] = 0xFF; /* latency timer */
	if (slot) {
		dev->cfg[PCI_INTERRUPT_LINE] = (uint8_t)VM_PCI_INTX_GSI(slot);
		dev->cfg[PCI_INTERRUPT_PIN] = 1; /* INTA# */
		dev->wmask[PCI_INTERRUPT_LINE] = 0xFF;
	}
	return dev;
}

struct pci_bus *pci_create(struct vm *vm)
{
	static const struct pci_device_desc host_bridge = {
	    .name = "host-bridge",
	    .vendor_id = HOST_BRIDGE_VENDOR,
	    .device_id = HOST_BRIDGE_DEVICE,
	    .class_code = CLASS_HOST_BRIDGE,
	};
	struct pci_bus *bus = calloc(1, sizeof(*bus));
	struct io_region r;
	int err;

	if (!bus) {
		log_warn("pci: cannot allocate the bus");
		return NULL;
	}
	bus->vm = vm;
	bus->mmio_next = VM_PCI_MMIO_START;
	pthread_mutex_init(&bus->lock, NULL);
	bus->slots[0] = new_device(bus, 0, &host_bridge);
	if (!bus->slots[0]) {
		log_warn("pci: cannot allocate the host bridge");
		goto out_free_bus;
	}
	r = (struct io_region){.io_name = "pci-config",
			       .io_base = CONFIG_ADDRESS_PORT,
			       .io_len = CONFIG_PORTS_LEN,
			       .io_read = pio_read,
			       .io_write = pio_write,
			       .io_opaque = bus};
	err = vm_register_pio(vm, &r);
	if (err < 0) {
		log_warnx("pci: cannot register ports 0xcf8-0xcff: %s", strerror(-err));
		goto out_free_bus;
	}
	r = (struct io_region){.io_name = "pci-mmio",
			       .io_base = VM_PCI_MMIO_START,
			       .io_len = VM_PCI_MMIO_END - VM_PCI_MMIO_START,
			       .io_read = mmio_read,
			       .io_write = mmio_write,
			       .io_opaque = bus};
	err = vm_register_mmio(vm, &r);
	if (err < 0) {
		log_warnx("pci: cannot register the MMIO window: %s", strerror(-err));
		goto out_free_bus;
	}
	return bus;

out_free_bus:
	free(bus->slots[0]);
	pthread_mutex_destroy(&bus->lock);
	free(bus);
	return NULL;
}

void pci_free(struct pci_bus *bus)
{
	if (!bus)
		return;
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++)
		free(bus->slots[s]);
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

struct pci_device *pci_add_device(struct pci_bus *bus, const struct pci_device_desc *desc)
{
	struct pci_device *dev = NULL;
	unsigned slot;

	pthread_mutex_lock(&bus->lock);
	for (slot = 1; slot < PCI_MAX_SLOTS && bus->slots[slot]; slot++)
		;
	if (slot < PCI_MAX_SLOTS) {
		dev = new_device(bus, slot, desc);
		bus->slots[slot] = dev;
	}
	pthread_mutex_unlock(&bus->lock);
	if (!dev)
		log_warnx("pci: no room for %s: %s", desc->name,
			  slot < PCI_MAX_SLOTS ? "out of memory" : "all 31 slots taken");
	else
		log_debug("pci: %s at 00:%02x.0 %04x:%04x gsi %u", desc->name, slot,
			  desc->vendor_id, desc->device_id, VM_PCI_INTX_GSI(slot));
	return dev;
}

void pci_remove_device(struct pci_device *dev)
{
	struct pci_bus *bus;

	if (!dev)
		return;
	bus = dev->bus;
	pthread_mutex_lock(&bus->lock);
	bus->slots[dev->slot] = NULL;
	update_intx_locked(bus);
	pthread_mutex_unlock(&bus->lock);
	free(dev);
}

int pci_add_bar(struct pci_device *dev, unsigned bar, uint64_t size, const struct io_region *r)
{
	struct pci_bus *bus = dev->bus;
	uint64_t align = size > BAR_MIN_ALIGN ? size : BAR_MIN_ALIGN, base;
	uint8_t *p = dev->cfg + PCI_BAR0 + 4 * bar;
	uint8_t *m = dev->wmask + PCI_BAR0 + 4 * bar;
	int err = 0;

	if (bar + 1 >= PCI_NUM_BARS || size < BAR_MIN_SIZE || size > BAR_MAX_SIZE ||
	    (size & (size - 1)))
		return -EINVAL;
	pthread_mutex_lock(&bus->lock);
	base = (bus->mmio_next + align - 1) & ~(align - 1);
	if (dev->bar_used[bar] || dev->bar_used[bar + 1]) {
		err = -EINVAL;
	} else if (base >= VM_PCI_MMIO_END || size > VM_PCI_MMIO_END - base) {
		err = -ENOSPC;
	} else {
		bus->mmio_next = base + size;
		dev->bar_used[bar] = dev->bar_used[bar + 1] = true;
		dev->bars[bar].size = size;
		dev->bars[bar].region = *r;
		le_put(p, 4, (uint32_t)base | PCI_BAR_MEM_TYPE_64);
		le_put(p + 4, 4, (uint32_t)(base >> 32));
		/* Writable address bits only: writing all-ones reads back ~(size - 1). */
		le_put(m, 4, (uint32_t) ~(size - 1) & ~0xFu);
		le_put(m + 4, 4, 0xFFFFFFFF);
		/* Decoding on, as firmware leaves a device whose BARs it assigned. */
		dev->cfg[PCI_COMMAND] |= PCI_COMMAND_MEMORY;
	}
	pthread_mutex_unlock(&bus->lock);
	if (err == -ENOSPC)
		log_warnx("pci: %s: no room for a %llu-byte BAR in the PCI window", dev->desc.name,
			  (unsigned long long)size);
	return err;
}

int pci_add_capability(struct pci_device *dev, const uint8_t *cap, unsigned len,
		       const uint8_t *wmask)
{
	struct pci_bus *bus = dev->bus;
	unsigned off;
	int ret;

	if (len < 4)
		return -EINVAL;
	pthread_mutex_lock(&bus->lock);
	off = (dev->cap_free + 3) & ~3u;
	if (off > PCI_CONFIG_SIZE || len > PCI_CONFIG_SIZE - off) {
		ret = -ENOSPC;
	} else {
		memcpy(dev->cfg + off, cap, len);
		dev->cfg[off + 1] = 0;
		if (wmask)
			memcpy(dev->wmask + off, wmask, len);
		dev->wmask[off] = dev->wmask[off + 1] = 0;
		if (dev->cap_last)
			dev->cfg[dev->cap_last + 1] = (uint8_t)off;
		else
			dev->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
		dev->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
		dev->cap_last = off;
		dev->cap_free = off + len;
		ret = (int)off;
	}
	pthread_mutex_unlock(&bus->lock);
	return ret;
}

uint32_t pci_config_get(struct pci_device *dev, unsigned offset, unsigned len)
{
	uint32_t v;

	if (!valid_access(offset, len))
		return 0xFFFFFFFF;
	pthread_mutex_lock(&dev->bus->lock);
	v = le_get(dev->cfg + offset, len);
	pthread_mutex_unlock(&dev->bus->lock);
	return v;
}

void pci_set_intx(struct pci_device *dev, bool level)
{
	struct pci_bus *bus = dev->bus;

	pthread_mutex_lock(&bus->lock);
	dev->intx_level = level;
	if (level)
		dev->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		dev->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
	update_intx_locked(bus);
	pthread_mutex_unlock(&bus->lock);
}

unsigned pci_device_slot(const struct pci_device *dev)
{
	return dev->slot;
}

int pci_for_each_device(struct pci_bus *bus, void (*fn)(void *arg, unsigned slot, unsigned gsi),
			void *arg)
{
	unsigned slots[PCI_MAX_SLOTS], n = 0;

	pthread_mutex_lock(&bus->lock);
	for (unsigned s = 1; s < PCI_MAX_SLOTS; s++)
		if (bus->slots[s] && bus->slots[s]->cfg[PCI_INTERRUPT_PIN])
			slots[n++] = s;
	pthread_mutex_unlock(&bus->lock);
	for (unsigned i = 0; i < n; i++)
		fn(arg, slots[i], VM_PCI_INTX_GSI(slots[i]));
	return (int)n;
}
