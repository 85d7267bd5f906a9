/* MP tables (MultiProcessor Specification 1.4): floating pointer, configuration table
 * header, then processor, bus, IOAPIC, I/O interrupt and local interrupt entries. */
#include "hv/mptable.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define MPTABLE_GPA 0xF0000ULL
#define MPTABLE_MAX 0x4000U

enum { ENTRY_PROCESSOR, ENTRY_BUS, ENTRY_IOAPIC, ENTRY_IOINT, ENTRY_LOCALINT };
enum { BUS_PCI, BUS_ISA };
enum { INT_VECTORED = 0, INT_NMI = 1, INT_EXTINT = 3 };
#define POLARITY_HIGH 0x1
#define TRIGGER_EDGE  0x4
#define TRIGGER_LEVEL 0xC

struct mp_floating {
	char signature[4];
	uint32_t config_table;
	uint8_t length, spec_rev, checksum, feature[5];
} __attribute__((packed));

struct mp_header {
	char signature[4];
	uint16_t length;
	uint8_t spec_rev, checksum;
	char oem[8], product[12];
	uint32_t oem_table;
	uint16_t oem_table_size, entry_count;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum, reserved;
} __attribute__((packed));

struct mp_processor {
	uint8_t type, apic_id, apic_version, flags;
	uint32_t signature, features;
	uint32_t reserved[2];
} __attribute__((packed));

struct mp_bus {
	uint8_t type, id;
	char name[6];
} __attribute__((packed));

struct mp_ioapic {
	uint8_t type, id, version, flags;
	uint32_t address;
} __attribute__((packed));

struct mp_interrupt {
	uint8_t type, int_type;
	uint16_t flags;
	uint8_t src_bus, src_irq, dst_id, dst_pin;
} __attribute__((packed));

static uint8_t checksum(const void *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += ((const uint8_t *)p)[i];
	return (uint8_t)-sum;
}

int mptable_write(struct vm *vm, const struct mptable_pci_irq *pci, size_t npci)
{
	uint8_t *base = vm_guest_ptr(vm, MPTABLE_GPA, MPTABLE_MAX);
	int ncpus = vm_ncpus(vm);
	uint8_t ioapic_id = (uint8_t)ncpus;
	struct mp_floating *mpf;
	struct mp_header *hdr;
	uint8_t *p;
	uint16_t count = 0;

	if (!base)
		return -ERANGE;
	if (sizeof(*mpf) + sizeof(*hdr) + (size_t)ncpus * sizeof(struct mp_processor) +
		2 * sizeof(struct mp_bus) + sizeof(struct mp_ioapic) +
		(16 + npci + 2) * sizeof(struct mp_interrupt) >
	    MPTABLE_MAX)
		return -E2BIG;
	memset(base, 0, MPTABLE_MAX);
	mpf = (struct mp_floating *)base;
	hdr = (struct mp_header *)(base + sizeof(*mpf));
	p = (uint8_t *)(hdr + 1);

	for (int i = 0; i < ncpus; i++) {
		struct mp_processor *cpu = (void *)p;

		*cpu = (struct mp_processor){.type = ENTRY_PROCESSOR,
					     .apic_id = (uint8_t)i,
					     .apic_version = 0x14,
					     .flags = (uint8_t)(1 | (i == 0 ? 2 : 0)),
					     .signature = 0x600,
					     .features = 0x201};
		p += sizeof(*cpu);
		count++;
	}
	memcpy(p, &(struct mp_bus){ENTRY_BUS, BUS_PCI, "PCI   "}, sizeof(struct mp_bus));
	p += sizeof(struct mp_bus);
	memcpy(p, &(struct mp_bus){ENTRY_BUS, BUS_ISA, "ISA   "}, sizeof(struct mp_bus));
	p += sizeof(struct mp_bus);
	count += 2;
	*(struct mp_ioapic *)p =
	    (struct mp_ioapic){ENTRY_IOAPIC, ioapic_id, 0x11, 1, (uint32_t)VM_IOAPIC_GPA};
	p += sizeof(struct mp_ioapic);
	count++;

	/* ISA IRQs go to the same-numbered IOAPIC pin (KVM's default routing); 2 is the
	 * PIC cascade and has no device behind it. */
	for (uint8_t irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue;
		*(struct mp_interrupt *)p = (struct mp_interrupt){
		    ENTRY_IOINT, INT_VECTORED, 0, BUS_ISA, irq, ioapic_id, irq};
		p += sizeof(struct mp_interrupt);
		count++;
	}
	for (size_t i = 0; i < npci; i++) {
		*(struct mp_interrupt *)p = (struct mp_interrupt){
		    ENTRY_IOINT,
		    INT_VECTORED,
		    POLARITY_HIGH | TRIGGER_LEVEL,
		    BUS_PCI,
		    (uint8_t)(pci[i].mp_slot << 2), /* device number, pin INTA# */
		    ioapic_id,
		    (uint8_t)pci[i].mp_gsi};
		p += sizeof(struct mp_interrupt);
		count++;
	}
	*(struct mp_interrupt *)p =
	    (struct mp_interrupt){ENTRY_LOCALINT, INT_EXTINT, 0, BUS_ISA, 0, 0xFF, 0};
	p += sizeof(struct mp_interrupt);
	*(struct mp_interrupt *)p =
	    (struct mp_interrupt){ENTRY_LOCALINT, INT_NMI, 0, BUS_ISA, 0, 0xFF, 1};
	p += sizeof(struct mp_interrupt);
	count += 2;

	memcpy(hdr->signature, "PCMP", 4);
	hdr->length = (uint16_t)(p - (uint8_t *)hdr);
	hdr->spec_rev = 4;
	memcpy(hdr->oem, "VDI     ", 8);
	memcpy(hdr->product, "VDI-HV      ", 12);
	hdr->entry_count = count;
	hdr->lapic = (uint32_t)VM_LAPIC_GPA;
	hdr->checksum = checksum(hdr, hdr->length);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->config_table = (uint32_t)(MPTABLE_GPA + sizeof(*mpf));
	mpf->length = 1;
	mpf->spec_rev = 4;
	mpf->checksum = checksum(mpf, sizeof(*mpf));
	return 0;
}
