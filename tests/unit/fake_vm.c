/* The fake VM of the device tests and fuzzers (see fake_vm.h): hv/vm.h's device-facing
 * functions on a heap buffer, and the guest driver's accesses to ports, MMIO, PCI config
 * space and virtqueue rings. Not a model of KVM: no vCPUs, no memory slots. */
#include "tests/unit/fake_vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/dev/virtio_pci.h"

struct vm *fake_vm_create(uint64_t ram_size)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->ram_size = ram_size;
	vm->ram = aligned_alloc(4096, ram_size);
	if (!vm->ram) {
		free(vm);
		return NULL;
	}
	fake_vm_reset(vm);
	return vm;
}

void fake_vm_free(struct vm *vm)
{
	if (!vm)
		return;
	free(vm->ram);
	free(vm);
}

void fake_vm_reset(struct vm *vm)
{
	uint8_t *ram = vm->ram;
	uint64_t ram_size = vm->ram_size;

	memset(vm, 0, sizeof(*vm));
	vm->ram = ram;
	vm->ram_size = ram_size;
	memset(ram, 0, ram_size);
}

/* hv/vm.h, as the devices see it */

void *vm_guest_ptr(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (gpa > vm->ram_size || len > vm->ram_size - gpa)
		return NULL;
	return vm->ram + gpa;
}

static int add_region(struct io_region *t, unsigned *n, const struct io_region *r)
{
	for (unsigned i = 0; i < *n; i++)
		if (r->io_base < t[i].io_base + t[i].io_len &&
		    t[i].io_base < r->io_base + r->io_len)
			return -EEXIST;
	if (*n == FAKE_VM_MAX_REGIONS)
		return -ENOSPC;
	t[(*n)++] = *r;
	return 0;
}

int vm_register_pio(struct vm *vm, const struct io_region *r)
{
	return add_region(vm->pio, &vm->npio, r);
}

int vm_register_mmio(struct vm *vm, const struct io_region *r)
{
	return add_region(vm->mmio, &vm->nmmio, r);
}

int vm_set_irq(struct vm *vm, unsigned gsi, bool level)
{
	if (gsi >= FAKE_VM_GSIS) {
		fprintf(stderr, "fake_vm: a device raised GSI %u, past the IOAPIC\n", gsi);
		abort();
	}
	__atomic_store_n(&vm->irq[gsi], level, __ATOMIC_RELAXED);
	__atomic_add_fetch(&vm->irq_changes, 1, __ATOMIC_RELAXED);
	return 0;
}

int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	unsigned i = __atomic_fetch_add(&vm->nmsi, 1, __ATOMIC_RELAXED);

	if (i < FAKE_VM_MAX_MSIS) {
		vm->msi_addr[i] = addr;
		vm->msi_data[i] = data;
	}
	return 0;
}

/* Guest accesses through the captured handlers, as vm.c would dispatch them. */

static const struct io_region *find(const struct vm *vm, bool mmio, uint64_t addr)
{
	const struct io_region *t = mmio ? vm->mmio : vm->pio;
	unsigned n = mmio ? vm->nmmio : vm->npio;

	for (unsigned i = 0; i < n; i++)
		if (addr >= t[i].io_base && addr - t[i].io_base < t[i].io_len)
			return &t[i];
	return NULL;
}

uint64_t fake_vm_read(struct vm *vm, bool mmio, uint64_t addr, unsigned len)
{
	const struct io_region *r = find(vm, mmio, addr);
	uint8_t data[8];
	uint64_t v = 0;

	memset(data, 0xFF, sizeof(data));
	if (r)
		r->io_read(r->io_opaque, addr - r->io_base, data, len);
	for (unsigned i = 0; i < len; i++)
		v |= (uint64_t)data[i] << (8 * i);
	return v;
}

void fake_vm_write(struct vm *vm, bool mmio, uint64_t addr, unsigned len, uint64_t v)
{
	const struct io_region *r = find(vm, mmio, addr);
	uint8_t data[8];

	for (unsigned i = 0; i < len; i++)
		data[i] = (uint8_t)(v >> (8 * i));
	if (r)
		r->io_write(r->io_opaque, addr - r->io_base, data, len);
}

/* PCI configuration mechanism #1 */

uint32_t fake_vm_cfg_addr(unsigned bus, unsigned slot, unsigned fn, unsigned off)
{
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (off & 0xFC);
}

uint32_t fake_vm_cfg_read(struct vm *vm, unsigned slot, unsigned off, unsigned len)
{
	fake_vm_write(vm, false, 0xCF8, 4, fake_vm_cfg_addr(0, slot, 0, off));
	return (uint32_t)fake_vm_read(vm, false, 0xCFC + (off & 3), len);
}

void fake_vm_cfg_write(struct vm *vm, unsigned slot, unsigned off, unsigned len, uint32_t v)
{
	fake_vm_write(vm, false, 0xCF8, 4, fake_vm_cfg_addr(0, slot, 0, off));
	fake_vm_write(vm, false, 0xCFC + (off & 3), len, v);
}

uint64_t fake_vm_bar0(struct vm *vm, unsigned slot)
{
	return (fake_vm_cfg_read(vm, slot, 0x10, 4) & ~0xFull) |
	       (uint64_t)fake_vm_cfg_read(vm, slot, 0x14, 4) << 32;
}

/* The virtio-pci common configuration */

uint64_t fake_vm_common_read(struct vm *vm, uint64_t bar, unsigned off, unsigned len)
{
	return fake_vm_read(vm, true, bar + VIRTIO_PCI_COMMON_OFF + off, len);
}

void fake_vm_common_write(struct vm *vm, uint64_t bar, unsigned off, unsigned len, uint64_t v)
{
	fake_vm_write(vm, true, bar + VIRTIO_PCI_COMMON_OFF + off, len, v);
}

/* Split virtqueue rings */

void fake_vm_put_desc(struct vm *vm, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		      uint16_t flags, uint16_t next)
{
	uint8_t *d = vm->ram + table + 16 * i;

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

void fake_vm_make_available(struct vm *vm, struct fake_vq *vq, uint16_t head, uint16_t step)
{
	uint8_t *avail = vm->ram + vq->avail;

	memcpy(avail + 4 + 2 * (vq->avail_idx % vq->size), &head, 2);
	vq->avail_idx = (uint16_t)(vq->avail_idx + step);
	__atomic_store_n((uint16_t *)(avail + 2), vq->avail_idx, __ATOMIC_RELEASE);
}

uint16_t fake_vm_used_idx(struct vm *vm, const struct fake_vq *vq)
{
	return __atomic_load_n((uint16_t *)(vm->ram + vq->used + 2), __ATOMIC_ACQUIRE);
}

bool fake_vm_take_used(struct vm *vm, struct fake_vq *vq, uint32_t *id, uint32_t *len)
{
	const uint8_t *e;

	if (fake_vm_used_idx(vm, vq) == vq->used_seen)
		return false;
	e = vm->ram + vq->used + 4 + 8 * (vq->used_seen % vq->size);
	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
	vq->used_seen++;
	return true;
}
