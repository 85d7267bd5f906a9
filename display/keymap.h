/* X11 keysyms, as RFB KeyEvent messages carry them, to Linux input keycodes (KEY_*) for a
 * US keyboard layout, and whether the keysym is typed with Shift there; and the keys of
 * the PC scan codes QEMU's extended key events carry. Pure lookups: no state, no I/O
 * (the keyboard devices turn keycodes into whatever their bus speaks). The one table of the US
 * layout: vdi-hv's VNC server, its control socket's "type" (hv/keys.c) and the Shift synthesis
 * (display/rfbkeys.c). */
#ifndef VDI_DISPLAY_KEYMAP_H
#define VDI_DISPLAY_KEYMAP_H

#include <stdint.h>

/* The key that produces keysym on a US keyboard, or 0 when there is none. A shifted
 * symbol maps to its base key ('A' and 'a' to KEY_A, '!' to KEY_1): Shift is the
 * caller's (keymap_keysym_level()). Keypad keysyms map to the keypad whatever their NumLock meaning
 * (XK_KP_End and XK_KP_1 both to KEY_KP1). */
unsigned keymap_keysym_to_keycode(uint32_t keysym);

/* Whether a keysym needs Shift on a US keyboard. The layout has no AltGr level: nothing
 * needs AltGr. */
enum keymap_level {
	KEYMAP_LEVEL_ANY,   /* Shift does not change what the key means (Return, F1, Shift
			     * itself), or the keysym has no key */
	KEYMAP_LEVEL_PLAIN, /* typed without Shift ('a', '4', '-') */
	KEYMAP_LEVEL_SHIFT, /* typed with Shift ('A', '$', '_', ISO_Left_Tab) */
};

enum keymap_level keymap_keysym_level(uint32_t keysym);

/* The key of a QEMU extended key event's key number: a PC set-1 scan code, the
 * E0-prefixed ones as 0x80 | their second byte (Up, E0 48, is 0xc8). Positional, so
 * whatever layout the viewer's keyboard has, the guest's layout gives the key its
 * meaning (the ISO key left of Z, 0x56, is KEY_102ND). 0 for no key. */
unsigned keymap_qnum_to_keycode(uint32_t qnum);

#endif
