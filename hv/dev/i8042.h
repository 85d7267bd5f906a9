/* The i8042 keyboard controller (ports 0x60 and 0x64) with a PS/2 keyboard on IRQ 1 and
 * a PS/2 IntelliMouse on IRQ 12, fed by host input events (VNC, the control socket).
 * It is what Linux's i8042, atkbd and psmouse drivers need; not an A20 gate, not a
 * keyboard lock, not an active PS/2 multiplexer, and no typematic repeat (the host
 * sends repeats as events). */
#ifndef VDI_HV_DEV_I8042_H
#define VDI_HV_DEV_I8042_H

#include <stdbool.h>

struct vm;

/* Registers ports 0x60 and 0x64. Returns NULL with a log line on failure. Free with
 * i8042_free() once the vCPU threads have stopped. */
struct i8042 *i8042_create(struct vm *vm);
void i8042_free(struct i8042 *kbc);

/* A key went down (down = true) or up. keycode is a Linux input keycode (KEY_* from
 * <linux/input-event-codes.h>); keys a PC keyboard has no scancode for are ignored.
 * Input arriving while the guest has scanning disabled, or while the queue is full, is
 * dropped whole. Thread-safe. */
void i8042_key_event(struct i8042 *kbc, unsigned keycode, bool down);

/* Relative motion: dx to the right, dy downward (pixels), dz wheel clicks (positive =
 * away from the user, scrolling up), buttons held: 1 left, 2 right, 4 middle.
 * Thread-safe. */
void i8042_mouse_event(struct i8042 *kbc, int dx, int dy, int dz, unsigned buttons);

#endif
