/* X11 keysyms, as RFB KeyEvent messages carry them, to Linux input keycodes (KEY_*) for a
 * US keyboard layout. A pure lookup: no state, no I/O, no scan codes (the keyboard
 * devices turn keycodes into whatever their bus speaks). */
#ifndef VDI_DISPLAY_KEYMAP_H
#define VDI_DISPLAY_KEYMAP_H

#include <stdint.h>

/* The key that produces keysym on a US keyboard, or 0 when there is none. A shifted
 * symbol maps to its base key ('A' and 'a' to KEY_A, '!' to KEY_1): the viewer sends
 * Shift itself. Keypad keysyms map to the keypad whatever their NumLock meaning
 * (XK_KP_End and XK_KP_1 both to KEY_KP1). */
unsigned keymap_keysym_to_keycode(uint32_t keysym);

#endif
