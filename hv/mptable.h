/* Intel MultiProcessor Specification 1.4 tables, so the guest finds every vCPU, the
 * IOAPIC and how ISA and PCI interrupts are wired. Written at 0xF0000 (reserved). */
#ifndef VDI_HV_MPTABLE_H
#define VDI_HV_MPTABLE_H

#include <stddef.h>

#include "hv/vm.h"

/* INTA# of the PCI device in slot mp_slot (bus 0) is wired to IOAPIC pin mp_gsi. */
struct mptable_pci_irq {
	unsigned mp_slot;
	unsigned mp_gsi;
};

/* Writes the floating pointer and configuration table for vm's vCPUs, ISA IRQs 0-15
 * (identity-mapped, edge) and the given PCI interrupts (level, active high). Returns
 * 0 or -errno. */
int mptable_write(struct vm *vm, const struct mptable_pci_irq *pci, size_t npci);

#endif
