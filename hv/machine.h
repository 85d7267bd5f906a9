/* The machine vdi-hv assembles: the VM and its devices, as the control socket and the
 * main loop need to reach them. Built in one place, hv/main.c, in boot order. */
#ifndef VDI_HV_MACHINE_H
#define VDI_HV_MACHINE_H

#include <stddef.h>

#define MACHINE_MAX_DISKS 8

struct machine {
	struct vm *m_vm;
	struct mainloop *m_loop;
	struct serial *m_serial;
	struct rtc *m_rtc;
	struct i8042 *m_i8042;
	struct fb *m_fb; /* NULL with --fb none */
	struct pci_bus *m_pci;
	struct virtio_blk *m_disks[MACHINE_MAX_DISKS];
	size_t m_ndisks;
	struct control *m_control;
};

#endif
