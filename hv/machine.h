/* The machine vdi-hv assembles: the VM and its devices, as the control socket and the
 * main loop need to reach them. Built in one place, hv/main.c, in boot order. */
#ifndef VDI_HV_MACHINE_H
#define VDI_HV_MACHINE_H

#include <stddef.h>

#include "display/vnc_input.h"

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
	struct virtio_input *m_tablet; /* NULL without a framebuffer or virtio-input */
	struct control *m_control;
	struct display *m_display; /* NULL without --vnc */
	/* The keyboard, tablet and PS/2 mouse as the VNC server and the control socket's
	 * pointer verb drive them. */
	struct vnc_input_sink m_input;
};

#endif
