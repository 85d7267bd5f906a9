/* Key names for the control socket: QEMU "sendkey" combinations and text typed on a US
 * layout, turned into Linux input keycodes (KEY_*) that the keyboard devices take. Knows
 * nothing of scan codes or devices. */
#ifndef VDI_HV_KEYS_H
#define VDI_HV_KEYS_H

#include <stddef.h>

/* Parses a QEMU-sendkey combination of QEMU key names (qcodes) joined by '-', such as
 * "a", "ret", "shift-a", "ctrl-alt-delete", "f1", "kp_1", "meta_l", "bracket_left",
 * into Linux keycodes in press order (release in reverse). Names are matched without
 * regard to case. Returns the count (> 0), -EINVAL for an empty or unknown name, or
 * -E2BIG when there are more than max keys. */
int keys_parse_combo(const char *spec, unsigned *codes, size_t max);

/* The keycodes that type character c on a US layout, modifiers first: 'a' -> KEY_A,
 * 'A' -> KEY_LEFTSHIFT, KEY_A; '\n' -> KEY_ENTER; '\t' -> KEY_TAB. Returns the count,
 * -EINVAL for a character a US keyboard cannot type (other control characters,
 * non-ASCII bytes), or -E2BIG when max is too small. */
int keys_for_char(char c, unsigned *codes, size_t max);

#endif
