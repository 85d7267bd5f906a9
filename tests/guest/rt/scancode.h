/* Set-1 scan codes (what the i8042 hands over with translation on) to characters, for
 * the keyboard and desktop guests: the US layout's main block. Not a keyboard driver:
 * prefixes, modifiers and key releases are the caller's. */
#ifndef SCANCODE_H
#define SCANCODE_H

#include "rt.h"

/* The character make code `code` types with Shift and Caps Lock as given, or 0 when it
 * types none (Esc, modifiers, codes past the Space bar). */
char scancode_char(uint8_t code, bool shift, bool caps);

#endif
